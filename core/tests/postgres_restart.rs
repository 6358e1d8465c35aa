//! The PostgreSQL store across a server restart (issue 21): pooled connections die with the
//! server; the next calls reconnect, and nothing half-applied is left. Run alone, last, by
//! `scripts/test-postgres.sh` (it restarts the shared throwaway cluster, which would break
//! tests running beside it): `PHIVAULT_PG_URL` and `PHIVAULT_PG_RESTART` (a command that
//! restarts the server) come from `scripts/pg-cluster.sh`.

#![cfg(feature = "postgres")]

use phivault::root::KeyFile;
use phivault::store::PgStore;
use phivault::store::postgres::PgOptions;
use phivault::{Backend, Vault};
use std::process::Command;

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: run scripts/test-postgres.sh"),
    }
}

fn restart_server() {
    let status = Command::new("sh")
        .args(["-c", &env("PHIVAULT_PG_RESTART")])
        .status()
        .expect("restart");
    assert!(status.success(), "the server did not restart");
}

#[test]
#[ignore = "restarts the server of scripts/test-postgres.sh: run alone by it"]
fn calls_after_a_server_restart_reconnect() {
    let url = env("PHIVAULT_PG_URL");
    let key =
        KeyFile::from_bytes(b"5f1c0d8e2a7b4c6d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f")
            .expect("key");
    let store =
        PgStore::connect_with(&url, PgOptions::default().schema("pvt_restart")).expect("connect");
    let vault = match Vault::create_in(Box::new(store), &key, Backend::default()) {
        Ok(v) => v,
        Err(_) => Vault::open_in(
            Box::new(
                PgStore::connect_with(&url, PgOptions::default().schema("pvt_restart"))
                    .expect("connect"),
            ),
            &key,
            Backend::default(),
        )
        .expect("open"),
    };
    let values: Vec<String> = (0..300).map(|i| format!("MRN-R{i:05}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let before = vault.owner().tokenize_many("mrn", &refs).expect("tokenize");
    vault
        .owner()
        .put("notes", "r1", b"before restart", None)
        .expect("put");
    restart_server();
    // Every pooled connection is dead now. Reads and writes after the restart go through.
    let again = vault
        .owner()
        .tokenize_many("mrn", &refs)
        .expect("tokenize after restart");
    assert_eq!(again, before, "one token per value across the restart");
    assert_eq!(
        vault
            .owner()
            .get("notes", "r1")
            .expect("get")
            .as_deref()
            .map(|v| &v[..]),
        Some(&b"before restart"[..])
    );
    vault
        .owner()
        .put("notes", "r2", b"after restart", None)
        .expect("put after restart");
    restart_server();
    let more: Vec<String> = (0..300).map(|i| format!("MRN-S{i:05}")).collect();
    let more_refs: Vec<&str> = more.iter().map(String::as_str).collect();
    let fresh = vault
        .owner()
        .tokenize_many("mrn", &more_refs)
        .expect("new tokens right after a restart");
    let back = vault
        .owner()
        .detokenize_many(
            "mrn",
            &fresh.iter().map(String::as_str).collect::<Vec<_>>(),
            Default::default(),
        )
        .expect("detokenize");
    assert!(
        back.iter()
            .map(|v| v.as_str())
            .eq(more_refs.iter().copied())
    );
    assert!(
        vault.audit_verify().expect("verify").ok,
        "the audit chain survives"
    );
}
