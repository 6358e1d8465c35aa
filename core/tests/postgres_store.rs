//! The PostgreSQL store against a live server (issue 11). `scripts/test-postgres.sh` starts a
//! throwaway cluster, sets `PHIVAULT_PG_URL` and runs these `#[ignore]`d tests with
//! `--include-ignored`; a plain `cargo test` lists them as ignored. Each test works in a PostgreSQL schema of its own, so they run in parallel.
//!
//! Several tests start child processes: this same test binary, running the ignored
//! `child_process` test with a role in `PV_PG_CHILD`.

#![cfg(feature = "postgres")]

#[path = "common/batch_contract.rs"]
mod batch_contract;

use phivault::lifecycle::RewrapOptions;
use phivault::policy::{Caller, Policy};
use phivault::root::KeyFile;
use phivault::store::postgres::{PgOptions, SCHEMA_VERSION};
use phivault::store::{CasItem, PgStore, Space, Store, WriteOp};
use phivault::tokens::{FieldSpec, TokenKind, View};
use phivault::{Backend, Context, Error, Key32, Vault};
use std::collections::HashSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const KEY_HEX: &str = "5f1c0d8e2a7b4c6d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";

/// The server these tests use. They are `#[ignore]`d: `scripts/test-postgres.sh` starts a
/// throwaway cluster, sets `PHIVAULT_PG_URL` and runs them with `--include-ignored`; run
/// without it, they fail instead of passing for nothing.
fn url() -> String {
    match std::env::var("PHIVAULT_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!("PHIVAULT_PG_URL is not set: run scripts/test-postgres.sh"),
    }
}

fn store(url: &str, schema: &'static str) -> PgStore {
    PgStore::connect_with(url, PgOptions::default().schema(schema)).expect("connect")
}

fn root() -> KeyFile {
    KeyFile::from_bytes(KEY_HEX.as_bytes()).expect("key")
}

/// A fresh, empty schema: dropped first if a previous run left it.
fn fresh(url: &str, schema: &'static str) -> PgStore {
    let s = store(url, schema);
    for space in Space::ALL {
        loop {
            let page = s.scan(space, &[], None, 1000).expect("scan");
            if page.is_empty() {
                break;
            }
            let ops = page
                .into_iter()
                .map(|(key, _)| WriteOp::Delete { space, key })
                .collect();
            s.write(ops).expect("clear");
        }
    }
    s
}

fn spawn_child(role: &str, schema: &str, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args([
        "--exact",
        "child_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("PV_PG_CHILD", role)
    .env("PV_PG_SCHEMA", schema);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The child side of the multi-process tests. Does nothing unless `PV_PG_CHILD` is set.
#[test]
#[ignore = "run by the multi-process tests as a child process"]
fn child_process() {
    let Ok(role) = std::env::var("PV_PG_CHILD") else {
        return;
    };
    let url = std::env::var("PHIVAULT_PG_URL").expect("url");
    let schema = leak(std::env::var("PV_PG_SCHEMA").expect("schema"));
    let vault =
        Vault::open_in(Box::new(store(&url, schema)), &root(), Backend::default()).expect("open");
    match role.as_str() {
        "tokenize" => {
            let n: usize = std::env::var("PV_N").expect("n").parse().expect("n");
            let out = std::env::var("PV_OUT").expect("out");
            let values: Vec<String> = (0..n).map(|i| format!("MRN{i:07}")).collect();
            let mut tokens = Vec::with_capacity(n);
            // Small batches: many audit appends race with the other processes'.
            for chunk in values.chunks(100) {
                tokens.extend(vault.owner().tokenize_many("mrn", chunk).expect("tokenize"));
            }
            std::fs::write(out, tokens.join("\n")).expect("write tokens");
        }
        "rewrap" => {
            let out = std::env::var("PV_OUT").expect("out");
            let opts = RewrapOptions {
                batch: 50,
                ..RewrapOptions::default()
            };
            let report = vault.rewrap(&opts, &mut |_| {}).expect("rewrap");
            std::fs::write(out, format!("{}", report.rewrapped)).expect("write report");
        }
        other => panic!("unknown child role {other}"),
    }
}

/// The batch calls are array statements on PostgreSQL (issue 21): the same contract as the
/// embedded stores (`store_batches.rs`).
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn batch_calls_keep_the_store_contract() {
    batch_contract::check(&fresh(&url(), "pvt_batches"));
}

/// `rewrite_page` with `skip_locked` passes over rows another transaction holds and says
/// so; the rows it took are swapped and durable (issue 21: rewrap workers take disjoint
/// pages).
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn rewrite_pages_skip_rows_another_worker_holds() {
    let url = url();
    let s = fresh(&url, "pvt_skip");
    let ops = (0u8..10)
        .map(|i| WriteOp::Put {
            space: Space::Record,
            key: vec![b'k', i],
            value: b"old".to_vec(),
        })
        .collect();
    s.write(ops).expect("write");
    // Another worker holds k2 and k3.
    let mut other = phivault::store::pg_connect::connect_client(&url).expect("client");
    let mut tx = other.transaction().expect("tx");
    tx.batch_execute("SET search_path TO pvt_skip")
        .expect("path");
    let held = tx
        .query(
            "SELECT key FROM phivault_kv WHERE space = $1 AND key = ANY($2) FOR UPDATE",
            &[
                &i16::from(Space::Record.prefix()),
                &vec![vec![b'k', 2u8], vec![b'k', 3u8]],
            ],
        )
        .expect("lock");
    assert_eq!(held.len(), 2);
    let mut seen = Vec::new();
    let out = s
        .rewrite_page(Space::Record, None, 4, true, &mut |page| {
            seen = page.iter().map(|(k, _)| k[1]).collect();
            Ok(page
                .iter()
                .map(|(k, v)| CasItem {
                    key: k.clone(),
                    expected: v.clone(),
                    new: b"new".to_vec(),
                })
                .collect())
        })
        .expect("page");
    assert_eq!(seen, vec![0, 1, 4, 5], "the held rows are passed over");
    assert!(out.skipped && out.full);
    assert_eq!(out.swapped, 4);
    assert_eq!(out.last, Some(vec![b'k', 5]));
    // The last page: nothing held after k5, nothing skipped.
    let out = s
        .rewrite_page(Space::Record, Some(&[b'k', 5]), 10, true, &mut |_| {
            Ok(Vec::new())
        })
        .expect("page");
    assert!(!out.skipped && !out.full);
    tx.rollback().expect("release");
    let after = s
        .get_many(Space::Record, &[b"k\x00", b"k\x02", b"k\x05"])
        .expect("get");
    assert_eq!(
        after,
        vec![
            Some(b"new".to_vec()),
            Some(b"old".to_vec()),
            Some(b"new".to_vec())
        ]
    );
}

/// A thread that holds the pool's only connection (inside a transaction) and reads through
/// the same store gets a connection beyond the size instead of waiting for itself (a backup's
/// pre-image read inside an audit append; a keyring read inside a rewrap page).
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn a_nested_read_inside_a_transaction_does_not_wait_for_itself() {
    let url = url();
    drop(fresh(&url, "pvt_nested"));
    let s = PgStore::connect_with(
        &url,
        PgOptions::default().schema("pvt_nested").max_connections(1),
    )
    .expect("connect");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let r = s.update_unsynced(Space::Meta, b"nested", &mut |_| {
                let other = s.get(Space::Meta, b"other")?;
                assert!(other.is_none());
                Ok(vec![WriteOp::Put {
                    space: Space::Meta,
                    key: b"nested".to_vec(),
                    value: b"done".to_vec(),
                }])
            });
            let _ = tx.send(r.is_ok());
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Ok(true),
            "the nested read waited for its own connection"
        );
    });
    assert_eq!(
        s.get(Space::Meta, b"nested").expect("get"),
        Some(b"done".to_vec())
    );
}

/// `update_unsynced` (the audit log's append) serialises writers of one key across
/// connections: concurrent read–increment–writes lose no increment.
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn concurrent_updates_of_one_key_queue_and_lose_nothing() {
    let url = url();
    drop(fresh(&url, "pvt_update"));
    let (threads, each) = (6, 40u64);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let st = store(&url, "pvt_update");
                for _ in 0..each {
                    st.update_unsynced(Space::Meta, b"counter", &mut |cur| {
                        let n =
                            cur.map_or(0, |c| u64::from_be_bytes(c.try_into().expect("8 bytes")));
                        Ok(vec![WriteOp::Put {
                            space: Space::Meta,
                            key: b"counter".to_vec(),
                            value: (n + 1).to_be_bytes().to_vec(),
                        }])
                    })
                    .expect("update");
                }
            });
        }
    });
    let v = store(&url, "pvt_update")
        .get(Space::Meta, b"counter")
        .expect("get")
        .expect("counter");
    assert_eq!(
        u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes")),
        threads * each
    );
}

#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn store_contract() {
    let url = url();
    let s = fresh(&url, "pvt_contract");
    let k = |b: &[u8]| b.to_vec();
    // batches
    s.write(vec![
        WriteOp::Put {
            space: Space::Record,
            key: k(b"a"),
            value: k(b"1"),
        },
        WriteOp::Put {
            space: Space::Token,
            key: k(b"a"),
            value: k(b"other space"),
        },
    ])
    .expect("write");
    assert_eq!(s.get(Space::Record, b"a").expect("get"), Some(k(b"1")));
    assert_eq!(
        s.get(Space::Token, b"a").expect("get"),
        Some(k(b"other space"))
    );
    assert_eq!(s.get(Space::Record, b"zz").expect("get"), None);
    // compare-and-swap, all four shapes
    assert!(
        !s.compare_and_swap(Space::Record, b"a", None, Some(k(b"x")))
            .expect("cas")
    );
    assert!(
        !s.compare_and_swap(Space::Record, b"a", Some(b"0"), Some(k(b"x")))
            .expect("cas")
    );
    assert!(
        s.compare_and_swap(Space::Record, b"a", Some(b"1"), Some(k(b"2")))
            .expect("cas")
    );
    assert!(
        s.compare_and_swap(Space::Record, b"b", None, Some(k(b"3")))
            .expect("cas")
    );
    assert!(
        s.compare_and_swap(Space::Record, b"b", Some(b"3"), None)
            .expect("cas")
    );
    assert!(
        s.compare_and_swap(Space::Record, b"b", None, None)
            .expect("cas")
    );
    assert!(
        !s.compare_and_swap(Space::Record, b"a", None, None)
            .expect("cas")
    );
    assert_eq!(s.get(Space::Record, b"a").expect("get"), Some(k(b"2")));
    // compare_and_swap_many: independent items
    let n = s
        .compare_and_swap_many(
            Space::Record,
            vec![
                CasItem {
                    key: k(b"a"),
                    expected: k(b"2"),
                    new: k(b"4"),
                },
                CasItem {
                    key: k(b"missing"),
                    expected: k(b"2"),
                    new: k(b"4"),
                },
            ],
        )
        .expect("cas many");
    assert_eq!(n, 1);
    // guarded batch
    let put = |v: &[u8]| WriteOp::Put {
        space: Space::Meta,
        key: k(b"guard"),
        value: v.to_vec(),
    };
    assert!(
        s.write_unsynced_if(Space::Meta, b"guard", None, vec![put(b"g1")])
            .expect("if")
    );
    assert!(
        !s.write_unsynced_if(Space::Meta, b"guard", None, vec![put(b"g2")])
            .expect("if")
    );
    assert!(
        !s.write_unsynced_if(Space::Meta, b"guard", Some(b"no"), vec![put(b"g2")])
            .expect("if")
    );
    assert!(
        s.write_unsynced_if(Space::Meta, b"guard", Some(b"g1"), vec![put(b"g2")])
            .expect("if")
    );
    // a claim of an absent guard that writes other keys only leaves the guard absent
    let other = WriteOp::Put {
        space: Space::Meta,
        key: k(b"other"),
        value: k(b"o"),
    };
    assert!(
        s.write_unsynced_if(Space::Meta, b"absent", None, vec![other])
            .expect("if")
    );
    assert_eq!(s.get(Space::Meta, b"absent").expect("get"), None);
    s.sync().expect("sync");
    assert_eq!(s.get(Space::Meta, b"guard").expect("get"), Some(k(b"g2")));
    // scans: key order (bytewise), prefix, resume after, limit; 0xff edges
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x01, 0xff],
        vec![0x01, 0xff, 0x00],
        vec![0x02],
        vec![0x7f, 0x80],
        vec![0xff],
        vec![0xff, 0xff],
    ];
    s.write(
        keys.iter()
            .map(|key| WriteOp::Put {
                space: Space::Subject,
                key: key.clone(),
                value: key.clone(),
            })
            .collect(),
    )
    .expect("write");
    let all: Vec<Vec<u8>> = s
        .scan(Space::Subject, &[], None, 100)
        .expect("scan")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(all, keys);
    let page = s
        .scan(Space::Subject, &[], Some(&[0x01, 0xff]), 2)
        .expect("scan");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].0, vec![0x01, 0xff, 0x00]);
    assert_eq!(page[1].0, vec![0x02]);
    let pre = s
        .scan(Space::Subject, &[0x01, 0xff], None, 100)
        .expect("scan");
    assert_eq!(pre.len(), 2);
    let pre = s.scan(Space::Subject, &[0xff], None, 100).expect("scan");
    assert_eq!(pre.len(), 2);
    let pre = s
        .scan(Space::Subject, &[0xff], Some(&[0xff]), 100)
        .expect("scan");
    assert_eq!(pre, vec![(vec![0xff, 0xff], vec![0xff, 0xff])]);
    // after below the prefix starts at the prefix
    let pre = s
        .scan(Space::Subject, &[0x7f], Some(&[0x01]), 100)
        .expect("scan");
    assert_eq!(pre.len(), 1);
    assert!(
        s.scan(Space::Subject, &[0x03], None, 100)
            .expect("scan")
            .is_empty()
    );
    assert_eq!(SCHEMA_VERSION, 3);
    // Version 3: pages keep room for the next version of hot rows (audit head, markers).
    let mut admin = phivault::store::pg_connect::connect_client(&url).expect("admin");
    let opts: Vec<String> = admin
        .query_one(
            "SELECT reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'pvt_contract' AND c.relname = 'phivault_kv'",
            &[],
        )
        .expect("reloptions")
        .get(0);
    assert_eq!(opts, vec!["fillfactor=90".to_owned()]);
    assert!(
        s.commit_counter().expect("counter").is_some(),
        "the shared store keeps a commit counter"
    );
}

#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn vault_lives_in_postgres_and_reopens() {
    let url = url();
    let s = fresh(&url, "pvt_vault");
    let vault = Vault::create_in(Box::new(s), &root(), Backend::default()).expect("create");
    vault
        .owner()
        .put("notes", "MRN-1", b"chest pain", None)
        .expect("put");
    let ctx = Context::new().with("record", "1");
    let ct = vault.owner().encrypt(b"HbA1c 9.2%", &ctx).expect("encrypt");
    let tok = vault
        .owner()
        .tokenize_many("mrn", &["MRN0000001"])
        .expect("tokenize");
    drop(vault);
    // A second vault in the same database cannot be created over it.
    assert!(
        Vault::create_in(
            Box::new(store(&url, "pvt_vault")),
            &root(),
            Backend::default()
        )
        .is_err()
    );
    let wrong = KeyFile::from_key(Key32::random().expect("key"));
    assert!(
        Vault::open_in(
            Box::new(store(&url, "pvt_vault")),
            &wrong,
            Backend::default()
        )
        .is_err()
    );
    let v = Vault::open_in(
        Box::new(store(&url, "pvt_vault")),
        &root(),
        Backend::default(),
    )
    .expect("reopen");
    assert_eq!(
        &*v.owner().get("notes", "MRN-1").expect("get").expect("some"),
        b"chest pain"
    );
    assert_eq!(
        &*v.owner().decrypt(&ct, &ctx).expect("decrypt"),
        b"HbA1c 9.2%"
    );
    let back = v
        .owner()
        .detokenize_many("mrn", &tok, View::Plaintext)
        .expect("detok");
    assert_eq!(back[0].as_str(), "MRN0000001");
    // Nothing in PostgreSQL is the plaintext.
    for space in Space::ALL {
        for (key, value) in store(&url, "pvt_vault")
            .scan(space, &[], None, 10_000)
            .expect("scan")
        {
            for needle in [&b"chest pain"[..], b"MRN-1", b"MRN0000001", b"HbA1c"] {
                assert!(!key.windows(needle.len()).any(|w| w == needle));
                assert!(!value.windows(needle.len()).any(|w| w == needle));
            }
        }
    }
    assert!(v.audit_verify().expect("verify").ok);
    // The store's integrity check runs over PostgreSQL as over sled (issue 21).
    let report = v.verify().expect("verify the store");
    assert!(report.ok, "{:?}", report.problems);
    assert!(report.entries > 0 && report.audit_entries > 0);
}

/// A database restored from an older backup under clients that saw it newer is refused
/// (issue 17). The restore is done as `pg_restore` of a logical dump does it: the table's rows
/// put back, the sequence set back with `setval`.
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn a_restored_older_database_is_refused() {
    let url = url();
    let s = fresh(&url, "pvt_rollback");
    let vault = Vault::create_in(Box::new(s), &root(), Backend::default()).expect("create");
    vault
        .owner()
        .put("notes", "MRN-1", b"before", None)
        .expect("put");
    let id = vault.vault_id_hex();
    drop(vault);
    let mut admin = phivault::store::pg_connect::connect_client(&url).expect("admin");
    admin
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS pvt_rollback_backup; \
             DROP TABLE IF EXISTS pvt_rollback_backup.kv; \
             CREATE TABLE pvt_rollback_backup.kv AS SELECT * FROM pvt_rollback.phivault_kv",
        )
        .expect("backup");
    let saved: i64 = admin
        .query_one(
            "SELECT last_value FROM pvt_rollback.phivault_commit_seq",
            &[],
        )
        .expect("seq")
        .get(0);
    // After the backup: more durable writes, seen by this client.
    let v = Vault::open_in(
        Box::new(store(&url, "pvt_rollback")),
        &root(),
        Backend::default(),
    )
    .expect("reopen before the restore");
    for i in 0..5 {
        v.owner()
            .put("notes", &format!("MRN-after-{i}"), b"after", None)
            .expect("put");
    }
    drop(v);
    admin
        .batch_execute(
            "TRUNCATE pvt_rollback.phivault_kv; \
             INSERT INTO pvt_rollback.phivault_kv SELECT * FROM pvt_rollback_backup.kv",
        )
        .expect("restore rows");
    admin
        .execute(
            "SELECT setval('pvt_rollback.phivault_commit_seq', $1)",
            &[&saved],
        )
        .expect("restore sequence");
    match Vault::open_in(
        Box::new(store(&url, "pvt_rollback")),
        &root(),
        Backend::default(),
    ) {
        Err(Error::StoreRolledBack { store, anchor }) => assert!(store < anchor),
        Err(e) => panic!("expected StoreRolledBack, got {e}"),
        Ok(_) => panic!("a restored older database opened: the writes after the backup are gone"),
    }
    // What the refusal prevents: a client without the anchor file (as every client was before
    // issue 17) opens the restored database and finds the later records absent.
    let file = phivault::anchor::client_state_dir()
        .expect("state dir")
        .join(format!("{id}.anchor"));
    std::fs::remove_file(&file).expect("remove anchor file");
    let v = Vault::open_in(
        Box::new(store(&url, "pvt_rollback")),
        &root(),
        Backend::default(),
    )
    .expect("opens without the anchor");
    assert!(
        v.owner()
            .get("notes", "MRN-after-0")
            .expect("get")
            .is_none()
    );
    assert!(v.owner().get("notes", "MRN-1").expect("get").is_some());
    drop(v);
    admin
        .batch_execute("DROP SCHEMA pvt_rollback_backup CASCADE")
        .expect("cleanup");
}

#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn four_processes_tokenize_identically_and_audit_verifies() {
    let url = url();
    let n: usize = std::env::var("PV_TOKENIZE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let schema = "pvt_tokens4";
    let vault = Vault::create_in(Box::new(fresh(&url, schema)), &root(), Backend::default())
        .expect("create");
    let dir = tempfile::tempdir().expect("tmp");
    let start = Instant::now();
    let children: Vec<(Child, std::path::PathBuf)> = (0..4)
        .map(|i| {
            let out = dir.path().join(format!("t{i}"));
            let c = spawn_child(
                "tokenize",
                schema,
                &[
                    ("PV_N", n.to_string()),
                    ("PV_OUT", out.display().to_string()),
                ],
            );
            (c, out)
        })
        .collect();
    let mut outputs = Vec::new();
    for (mut c, out) in children {
        assert!(
            c.wait().expect("wait").success(),
            "a tokenizing process failed"
        );
        outputs.push(std::fs::read_to_string(out).expect("tokens"));
    }
    eprintln!(
        "4 processes tokenized the same {n} values in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let first: Vec<&str> = outputs[0].lines().collect();
    assert_eq!(first.len(), n);
    for o in &outputs[1..] {
        assert_eq!(o, &outputs[0], "processes disagree on tokens");
    }
    let distinct: HashSet<&str> = first.iter().copied().collect();
    assert_eq!(distinct.len(), n, "two values share a token");
    // Exactly one stored token and one index entry per value: losers removed theirs.
    let s = store(&url, schema);
    let count = |space| {
        let mut total = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = s.scan(space, &[], after.as_deref(), 5000).expect("scan");
            if page.is_empty() {
                return total;
            }
            total += page.len();
            after = page.last().map(|(k, _)| k.clone());
        }
    };
    assert_eq!(count(Space::TokenIndex), n);
    assert_eq!(count(Space::Token), n);
    let report = vault.audit_verify().expect("verify");
    assert!(report.ok, "audit chain broken: {report:?}");
    // 4 processes × n/100 batches, all in one chain (identical batches in a row share an
    // entry: count calls).
    let batches: u64 = vault
        .audit_entries(0, None, false)
        .expect("entries")
        .iter()
        .filter(|e| e.action == phivault::audit::Action::Tokenize)
        .map(|e| e.calls)
        .sum();
    assert!(
        batches >= 4 * (n as u64).div_ceil(100),
        "{batches} tokenize calls logged"
    );
    let back = vault
        .owner()
        .detokenize_many("mrn", &first[..10], View::Plaintext)
        .expect("detokenize");
    assert_eq!(back[3].as_str(), "MRN0000003");
}

#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn two_rewrap_workers_one_killed_leave_every_record_on_the_new_key() {
    let url = url();
    let schema = "pvt_rewrap";
    let vault = Vault::create_in(Box::new(fresh(&url, schema)), &root(), Backend::default())
        .expect("create");
    let n = 3000;
    let items: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| (format!("MRN-{i}"), format!("note {i}").into_bytes()))
        .collect();
    for chunk in items.chunks(500) {
        let batch: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|(id, v)| (id.as_str(), v.as_slice()))
            .collect();
        vault
            .owner()
            .put_many("notes", &batch, &phivault::records::PutOptions::default())
            .expect("put");
    }
    let old = vault.keyrings().expect("keyrings");
    let v2 = vault.rotate("default").expect("rotate");
    let dir = tempfile::tempdir().expect("tmp");
    let (oa, ob) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = spawn_child("rewrap", schema, &[("PV_OUT", oa.display().to_string())]);
    let mut b = spawn_child("rewrap", schema, &[("PV_OUT", ob.display().to_string())]);
    // Kill worker a mid-way: once some records are on v2, before it reports.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let on_v2 = vault
            .usage()
            .expect("usage")
            .by_version
            .get(&("default".to_owned(), v2))
            .map_or(0, |u| u.records);
        if on_v2 > 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill().expect("kill");
    a.wait().expect("reap");
    assert!(
        b.wait().expect("wait").success(),
        "the surviving worker failed"
    );
    assert!(
        !oa.exists(),
        "worker a finished before it was killed: kill came too late"
    );
    let usage = vault.usage().expect("usage");
    let on_old = usage
        .by_version
        .get(&("default".to_owned(), 1))
        .map_or(0, |u| u.records);
    assert_eq!(on_old, 0, "records left on the old key");
    assert_eq!(
        usage
            .by_version
            .get(&("default".to_owned(), v2))
            .map_or(0, |u| u.records),
        n as u64
    );
    // Every record still decrypts, the chain verifies, and a rerun finds nothing to do.
    for (id, v) in items.iter().step_by(97) {
        assert_eq!(
            &*vault.owner().get("notes", id).expect("get").expect("some"),
            v.as_slice()
        );
    }
    assert!(vault.audit_verify().expect("verify").ok);
    let again = vault
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rerun");
    assert_eq!(again.rewrapped, 0);
    assert!(!old.is_empty());
}

#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn migrate_copies_a_sled_vault_and_verifies() {
    let url = url();
    let dir = tempfile::tempdir().expect("tmp");
    let src = Vault::create(dir.path().join("v"), &root()).expect("create");
    for i in 0..1500 {
        src.owner()
            .put(
                "notes",
                &format!("MRN-{i}"),
                format!("note {i}").as_bytes(),
                None,
            )
            .expect("put");
    }
    src.owner()
        .put("notes", "S-1", b"subject note", Some("patient-1"))
        .expect("put");
    let toks = src
        .owner()
        .tokenize_many("mrn", &["MRN0000001", "MRN0000002"])
        .expect("tokenize");
    src.rotate("default").expect("rotate");
    let dest = fresh(&url, "pvt_migrate");
    let (copy, report) = src.migrate_to(Box::new(dest), &root()).expect("migrate");
    assert!(report.audit_ok);
    assert_eq!(report.entries, report.verified);
    let records = report
        .per_space
        .iter()
        .find(|(c, _)| *c == 'r')
        .map_or(0, |(_, n)| *n);
    assert_eq!(records, 1501);
    for i in (0..1500).step_by(7) {
        assert_eq!(
            &*copy
                .owner()
                .get("notes", &format!("MRN-{i}"))
                .expect("get")
                .expect("some"),
            format!("note {i}").as_bytes()
        );
    }
    assert_eq!(
        &*copy
            .owner()
            .get("notes", "S-1")
            .expect("get")
            .expect("some"),
        b"subject note"
    );
    let back = copy
        .owner()
        .detokenize_many("mrn", &toks, View::Plaintext)
        .expect("detok");
    assert_eq!(back[1].as_str(), "MRN0000002");
    assert_eq!(copy.vault_id_hex(), src.vault_id_hex());
    // A second migration into the now non-empty store is refused.
    assert!(
        src.migrate_to(Box::new(store(&url, "pvt_migrate")), &root())
            .is_err()
    );
}

/// Another process's rotation, field redefinition and policy change are all seen within the
/// cache bound (`phivault::vault::CACHE_TTL_SECS`).
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn a_rotation_in_one_process_is_seen_by_another() {
    let url = url();
    let schema = "pvt_rotation";
    let a = Vault::create_in(Box::new(fresh(&url, schema)), &root(), Backend::default())
        .expect("create");
    let b =
        Vault::open_in(Box::new(store(&url, schema)), &root(), Backend::default()).expect("open");
    // The grant is set before b's first call: every call (the owner's too) loads the policy,
    // so b caches this one.
    a.set_policy(
        &Policy::from_toml(
            "[[principal]]\nname = \"analyst\"\nroles = [\"research\"]\n\n\
             [[rule]]\nroles = [\"research\"]\npurposes = [\"research\"]\n\
             actions = [\"tokenize\"]\nfields = [\"pid\"]\n",
        )
        .expect("policy"),
    )
    .expect("set policy");
    let ctx = Context::new().with("k", "v");
    let before = b.owner().encrypt(b"x", &ctx).expect("encrypt"); // b has loaded `default` v1
    assert_eq!(&*a.owner().decrypt(&before, &ctx).expect("decrypt"), b"x");
    a.rotate("default").expect("rotate");
    let after = a.owner().encrypt(b"y", &ctx).expect("encrypt");
    // b has never seen v2: it re-reads the keyring at once instead of failing
    assert_eq!(
        &*b.owner()
            .decrypt(&after, &ctx)
            .expect("decrypt new version"),
        b"y"
    );

    // A field and a policy that b has loaded, then changed by a.
    let mut pid = FieldSpec::new("pid", TokenKind::Pseudonym);
    pid.project = "study-1".into();
    a.define_field(pid.clone()).expect("define");
    let analyst = || b.session(Caller::new("analyst", "research"));
    let old_token = analyst().tokenize("pid", "MRN-7").expect("allowed");
    pid.project = "study-2".into();
    a.define_field(pid).expect("redefine");
    a.set_policy(&Policy::default()).expect("revoke");
    let new_token = a.owner().tokenize("pid", "MRN-7").expect("tokenize");
    assert_ne!(old_token, new_token);

    // After the cache TTL b encrypts under v2, uses the new field definition, and applies the
    // new policy (the analyst's access is gone).
    std::thread::sleep(Duration::from_secs(phivault::vault::CACHE_TTL_SECS + 1));
    assert_eq!(
        b.owner().tokenize("pid", "MRN-7").expect("tokenize"),
        new_token
    );
    assert!(matches!(
        analyst().tokenize("pid", "MRN-7"),
        Err(Error::AccessDenied { .. })
    ));
    let text = b
        .owner()
        .encrypt_text(b"z", &ctx, &phivault::EncryptOptions::new())
        .expect("encrypt");
    assert!(
        text.starts_with("pv1:default:2:"),
        "b still encrypts under v1"
    );
}

/// Throughput of tokenize and decrypt (and record get) on PostgreSQL and on sled, one thread,
/// printed for benches/RESULTS.md. Run by scripts/test-postgres.sh in release mode.
#[test]
#[ignore = "benchmark: scripts/test-postgres.sh runs it in release mode"]
fn throughput_postgres_vs_sled() {
    let url = url();
    let n: usize = std::env::var("PV_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("tmp");
    let sled = Vault::create(dir.path().join("v"), &root()).expect("sled vault");
    let pg = Vault::create_in(
        Box::new(fresh(&url, "pvt_bench")),
        &root(),
        Backend::default(),
    )
    .expect("pg vault");
    let values: Vec<String> = (0..n).map(|i| format!("MRN{i:07}")).collect();
    let ctx = Context::new().with("record", "1");
    for (name, v) in [("sled", &sled), ("postgres", &pg)] {
        let t = Instant::now();
        for chunk in values.chunks(1000) {
            v.owner().tokenize_many("mrn", chunk).expect("tokenize");
        }
        let tok_new = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for chunk in values.chunks(1000) {
            v.owner().tokenize_many("mrn", chunk).expect("tokenize");
        }
        let tok_again = n as f64 / t.elapsed().as_secs_f64();
        let ct = v.owner().encrypt(b"HbA1c 9.2%", &ctx).expect("encrypt");
        let t = Instant::now();
        for _ in 0..n {
            v.owner().decrypt(&ct, &ctx).expect("decrypt");
        }
        let dec = n as f64 / t.elapsed().as_secs_f64();
        let m = n.min(5000);
        let t = Instant::now();
        for value in &values[..m] {
            v.owner().put("notes", value, b"note", None).expect("put");
        }
        let put = m as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for value in &values[..m] {
            v.owner().get("notes", value).expect("get");
        }
        let get = m as f64 / t.elapsed().as_secs_f64();
        eprintln!(
            "BENCH {name}: tokenize new {tok_new:.0}/s, tokenize existing {tok_again:.0}/s, \
             decrypt {dec:.0}/s, durable record put {put:.0}/s, record get {get:.0}/s \
             (n = {n}, one thread)"
        );
    }
}

/// `Vault::create_at` / `open_at` map a `postgres://` URL to the PostgreSQL store — the one
/// place the CLI, C (`pv_vault_create`) and Python (`Vault.create`) all go through.
#[test]
#[ignore = "needs PostgreSQL (PHIVAULT_PG_URL): run by scripts/test-postgres.sh"]
fn vault_at_a_url_lives_in_postgresql() {
    let url = url();
    {
        let fresh_public = fresh(&url, "public");
        drop(fresh_public);
    }
    let v =
        Vault::create_at(&url, &root(), phivault::VaultOptions::default()).expect("create at url");
    v.owner()
        .put("notes", "url-1", b"via create_at", None)
        .expect("put");
    drop(v);
    let v = Vault::open_at(&url, &root(), phivault::VaultOptions::default()).expect("open at url");
    assert_eq!(
        &*v.owner().get("notes", "url-1").expect("get").expect("some"),
        b"via create_at"
    );
    assert!(matches!(
        Vault::create_at(&url, &root(), phivault::VaultOptions::default()),
        Err(phivault::Error::VaultExists { .. })
    ));
}
