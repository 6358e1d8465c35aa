//! The CLI end to end: every command and its error paths, with their exit codes.

mod common;

use common::{bin, run, run_on};
use std::path::PathBuf;
use std::process::{Command, Output};

struct Env {
    _tmp: tempfile::TempDir,
    vault: PathBuf,
    key: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tmp");
        let key = tmp.path().join("root.key");
        let out = run(&["keygen", key.to_str().expect("utf8")], b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vault = tmp.path().join("vault");
        let e = Env {
            _tmp: tmp,
            vault,
            key,
        };
        let out = e.pv(&["init"], b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        e
    }

    fn pv(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_on(&self.vault, &self.key, args, stdin)
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn one_line_error(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("phivault: error: "), "{err}");
}

#[test]
fn encrypt_decrypt_with_context_binary_and_text() {
    let e = Env::new();
    let pt = b"Patient 4711: HbA1c 9.2%";
    for text in [false, true] {
        let mut args = vec![
            "encrypt",
            "--context",
            "record=4711",
            "--context",
            "field=note",
        ];
        if text {
            args.push("--text");
        }
        let ct = e.pv(&args, pt);
        assert!(ct.status.success());
        if text {
            assert!(ct.stdout.starts_with(b"pv1:default:1:"));
        }
        let dec = e.pv(
            &[
                "decrypt",
                "--context",
                "record=4711",
                "--context",
                "field=note",
            ],
            &ct.stdout,
        );
        assert!(dec.status.success());
        assert_eq!(dec.stdout, pt);
        let wrong = e.pv(
            &[
                "decrypt",
                "--context",
                "record=4712",
                "--context",
                "field=note",
            ],
            &ct.stdout,
        );
        assert_eq!(code(&wrong), 3);
        one_line_error(&wrong);
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("authentication failed"));
        assert!(wrong.stdout.is_empty(), "no output on failure");
    }
}

#[test]
fn deterministic_and_subject_encryption() {
    let e = Env::new();
    let a = e.pv(
        &[
            "encrypt",
            "--deterministic",
            "--text",
            "--context",
            "field=ssn",
        ],
        b"900-12-3456",
    );
    let b = e.pv(
        &[
            "encrypt",
            "--deterministic",
            "--text",
            "--context",
            "field=ssn",
        ],
        b"900-12-3456",
    );
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let both = e.pv(&["encrypt", "--deterministic", "--subject", "p1"], b"x");
    assert_eq!(code(&both), 2, "conflicting flags are a usage error");
}

#[test]
fn put_get_delete_and_errors() {
    let e = Env::new();
    assert!(
        e.pv(&["put", "notes", "MRN-1"], b"note one")
            .status
            .success()
    );
    assert!(
        e.pv(
            &["put", "notes", "MRN-2", "--subject", "patient-2"],
            b"note two"
        )
        .status
        .success()
    );
    let got = e.pv(&["get", "notes", "MRN-1"], b"");
    assert_eq!(got.stdout, b"note one");
    let missing = e.pv(&["get", "notes", "MRN-9"], b"");
    assert_eq!(code(&missing), 6);
    one_line_error(&missing);
    assert!(
        !String::from_utf8_lossy(&missing.stderr).contains("MRN-9"),
        "errors never echo ids"
    );
    assert!(e.pv(&["delete", "notes", "MRN-1"], b"").status.success());
    assert_eq!(code(&e.pv(&["delete", "notes", "MRN-1"], b"")), 6);
    assert_eq!(code(&e.pv(&["get", "notes", "MRN-1"], b"")), 6);
    let bad_collection = e.pv(&["put", "no/slash", "x"], b"v");
    assert_eq!(code(&bad_collection), 1);
    one_line_error(&bad_collection);
}

#[test]
fn wrong_key_missing_vault_and_missing_key() {
    let e = Env::new();
    let other = e._tmp.path().join("other.key");
    std::fs::write(&other, [7u8; 32]).expect("write");
    let o = run(
        &[
            "get",
            "notes",
            "x",
            "--vault",
            e.vault.to_str().expect("utf8"),
            "--key-file",
            other.to_str().expect("utf8"),
        ],
        b"",
    );
    assert_eq!(code(&o), 4);
    one_line_error(&o);
    let o = run(
        &[
            "status",
            "--vault",
            "/nonexistent/vault",
            "--key-file",
            e.key.to_str().expect("utf8"),
        ],
        b"",
    );
    assert_eq!(code(&o), 6);
    let o = run(&["status", "--vault", e.vault.to_str().expect("utf8")], b"");
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no root key given"));
    let bad = e._tmp.path().join("short.key");
    std::fs::write(&bad, [7u8; 5]).expect("write");
    let o = run(
        &[
            "status",
            "--vault",
            e.vault.to_str().expect("utf8"),
            "--key-file",
            bad.to_str().expect("utf8"),
        ],
        b"",
    );
    assert_eq!(code(&o), 1);
    one_line_error(&o);
}

#[test]
fn passphrase_from_env_and_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = tmp.path().join("v");
    let pf = tmp.path().join("pass.txt");
    std::fs::write(&pf, "a long passphrase\n").expect("write");
    let v = vault.to_str().expect("utf8");
    let o = run(
        &[
            "init",
            "--vault",
            v,
            "--passphrase-file",
            pf.to_str().expect("utf8"),
            "--argon-memory-mib",
            "8",
            "--argon-passes",
            "1",
            "--argon-lanes",
            "1",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut cmd = Command::new(bin());
    let o = cmd
        .args(["status", "--vault", v, "--json"])
        .env("PHIVAULT_PASSPHRASE", "a long passphrase")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(bin())
        .args(["status", "--vault", v])
        .env("PHIVAULT_PASSPHRASE", "wrong")
        .output()
        .expect("run");
    assert_eq!(code(&o), 4);
}

#[test]
fn status_json_is_stable() {
    let e = Env::new();
    assert!(e.pv(&["put", "notes", "1"], b"x").status.success());
    let o = e.pv(&["status", "--json"], b"");
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["records"], 1);
    assert_eq!(v["root_kind"], "key file");
    assert_eq!(v["keyrings"][0]["name"], "default");
    assert_eq!(v["keyrings"][0]["versions"][0]["state"], "active");
    assert_eq!(v["keyrings"][0]["versions"][0]["records"], 1);
    let t = e.pv(&["status"], b"");
    assert!(String::from_utf8_lossy(&t.stdout).contains("default"));
}

#[test]
fn init_refuses_existing_vault_and_keygen_refuses_overwrite() {
    let e = Env::new();
    let o = e.pv(&["init"], b"");
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let o = run(&["keygen", e.key.to_str().expect("utf8")], b"");
    assert_eq!(code(&o), 1);
}

#[test]
fn context_must_be_key_value() {
    let e = Env::new();
    let o = e.pv(&["encrypt", "--context", "novalue"], b"x");
    assert_eq!(code(&o), 2);
    let o = e.pv(&["encrypt", "--context", "a=1", "--context", "a=2"], b"x");
    assert_eq!(code(&o), 1);
}

#[test]
fn demo_runs_and_checks_itself() {
    let o = run(&["demo"], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("demo complete: every check held"));
    assert!(out.contains("0 of 20 PHI strings found"));
}

#[test]
fn help_has_examples_for_every_command() {
    for cmd in [
        "init", "keygen", "encrypt", "decrypt", "put", "get", "delete", "status",
    ] {
        let o = run(&[cmd, "--help"], b"");
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
    let o = run(&["--help"], b"");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes"));
}
