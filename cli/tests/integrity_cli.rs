//! `phivault verify` and `phivault salvage` end to end, and a rolled-back store refused by
//! every command with exit 10 (store integrity, issue 17).

mod common;

use common::{run, run_on};
use std::path::Path;
use std::process::Output;

type Env = common::Vault;

fn pv_at(e: &Env, vault: &Path, args: &[&str]) -> Output {
    run_on(vault, &e.key, args, b"")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

#[test]
fn verify_reports_json_and_exit_codes() {
    let e = Env::new();
    for i in 0..5 {
        let id = format!("r{i}");
        assert!(
            e.pv(&["put", "notes", &id], b"note canary-91c")
                .status
                .success()
        );
    }
    let o = e.pv(&["verify", "--json"], b"");
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["ok"], true);
    let records = report["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .find(|s| s["space"] == "record")
        .expect("record space");
    assert_eq!(records["entries"], 5);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("canary"));
    // Owner-only: `--as` is a usage error here too.
    assert_eq!(code(&e.pv(&["verify", "--as", "mallory"], b"")), 2);
}

#[test]
fn a_rolled_back_store_is_refused_and_salvage_recovers_it() {
    let e = Env::new();
    assert!(e.pv(&["put", "notes", "r1"], b"one").status.success());
    let old = e.tmp.path().join("old-store");
    copy_dir(&e.vault.join("store"), &old);
    assert!(e.pv(&["put", "notes", "r2"], b"two").status.success());
    std::fs::remove_dir_all(e.vault.join("store")).expect("rm");
    copy_dir(&old, &e.vault.join("store"));
    for args in [vec!["status"], vec!["get", "notes", "r1"], vec!["verify"]] {
        let o = e.pv(&args, b"");
        assert_eq!(
            code(&o),
            10,
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("salvage") || err.contains("backup"), "{err}");
    }
    // Salvage copies what authenticates into a new vault (same key) and says what was lost.
    let to = e.tmp.path().join("salvaged");
    let o = run(
        &[
            "salvage",
            "--from",
            e.vault.to_str().expect("utf8"),
            "--to",
            to.to_str().expect("utf8"),
            "--key-file",
            e.key.to_str().expect("utf8"),
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        report["commits_lost"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    let got = pv_at(&e, &to, &["get", "notes", "r1"]);
    assert_eq!(got.stdout, b"one");
    assert_eq!(code(&pv_at(&e, &to, &["verify"])), 0);
}
