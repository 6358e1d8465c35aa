//! Backup, restore and recovery through the CLI: the contract of the acceptance script, exit
//! codes, files named in errors, share files' modes, and the erasure ledger on restore.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_phivault"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("PHIVAULT_PASSPHRASE")
        .env_remove("PHIVAULT_VAULT")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(b) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b)
            .expect("write");
    }
    child.wait_with_output().expect("wait")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    vault: PathBuf,
    key: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let key = dir.join("root.key");
    std::fs::write(&key, [0x33u8; 32]).expect("key");
    let vault = dir.join("vault");
    ok(&run(
        &["init", "--vault", s(&vault), "--key-file", s(&key)],
        None,
    ));
    for (id, subject) in [("n1", None), ("n2", None), ("s1", Some("patient-1"))] {
        let mut args = vec![
            "put",
            "--vault",
            s(&vault),
            "--key-file",
            s(&key),
            "notes",
            id,
        ];
        if let Some(sub) = subject {
            args.extend(["--subject", sub]);
        }
        ok(&run(&args, Some(format!("note {id}").as_bytes())));
    }
    Fixture {
        _tmp: tmp,
        dir,
        vault,
        key,
    }
}

fn get(vault: &Path, key: &Path, id: &str) -> Output {
    run(
        &[
            "get",
            "--vault",
            s(vault),
            "--key-file",
            s(key),
            "notes",
            id,
        ],
        None,
    )
}

#[test]
fn backup_verify_damage_restore() {
    let f = fixture();
    let b = f.dir.join("b.pvbak");
    ok(&run(
        &[
            "backup",
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&f.key),
            s(&b),
        ],
        None,
    ));
    let o = run(&["backup", "verify", s(&b)], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok:"));
    ok(&run(
        &["backup", "verify", "--key-file", s(&f.key), "--json", s(&b)],
        None,
    ));
    let bytes = std::fs::read(&b).expect("read");
    let bad = f.dir.join("bad.pvbak");
    std::fs::write(&bad, &bytes[..bytes.len() - 100]).expect("write");
    let o = run(&["backup", "verify", s(&bad)], None);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("damaged"));
    // A damaged file restores nothing.
    let o = run(
        &[
            "restore",
            s(&bad),
            "--vault",
            s(&f.dir.join("x")),
            "--key-file",
            s(&f.key),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(!f.dir.join("x").exists());
    // No key: refused, nothing restored.
    let o = run(&["restore", s(&b), "--vault", s(&f.dir.join("y"))], None);
    assert!(!o.status.success());
    assert!(!f.dir.join("y").exists());
    let r = f.dir.join("restored");
    ok(&run(
        &["restore", s(&b), "--vault", s(&r), "--key-file", s(&f.key)],
        None,
    ));
    let o = get(&r, &f.key, "n2");
    ok(&o);
    assert_eq!(o.stdout, b"note n2");
    // Not over an existing vault.
    let o = run(
        &["restore", s(&b), "--vault", s(&r), "--key-file", s(&f.key)],
        None,
    );
    assert!(!o.status.success());
}

#[test]
fn restore_with_erasure_ledger() {
    let f = fixture();
    let b = f.dir.join("b.pvbak");
    ok(&run(
        &[
            "backup",
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&f.key),
            s(&b),
        ],
        None,
    ));
    ok(&run(
        &[
            "forget-subject",
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&f.key),
            "patient-1",
        ],
        None,
    ));
    let o = run(
        &[
            "erasures",
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&f.key),
            "--json",
        ],
        None,
    );
    ok(&o);
    let ledger = f.dir.join("erasures.json");
    std::fs::write(&ledger, &o.stdout).expect("ledger");
    let r = f.dir.join("r");
    let o = run(
        &[
            "restore",
            s(&b),
            "--vault",
            s(&r),
            "--key-file",
            s(&f.key),
            "--erasures",
            s(&ledger),
            "--json",
        ],
        None,
    );
    ok(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["subject_keys_dropped"], 1);
    assert_eq!(get(&r, &f.key, "s1").status.code(), Some(7));
    ok(&get(&r, &f.key, "n1"));
}

#[test]
fn recovery_split_and_unlock() {
    let f = fixture();
    let out = f.dir.join("shares");
    ok(&run(
        &[
            "recovery",
            "split",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out",
            s(&out),
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&f.key),
        ],
        None,
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    #[cfg(unix)]
    for p in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "share file mode");
    }
    let new_key = f.dir.join("new.key");
    std::fs::write(&new_key, [0x44u8; 32]).expect("key");
    let unlock = |shares: &[&PathBuf]| {
        let mut args = vec!["recovery", "unlock", "--vault", s(&f.vault)];
        for p in shares {
            args.extend(["--share", s(p)]);
        }
        args.extend(["--new-key-file", s(&new_key)]);
        run(&args, None)
    };
    let o = unlock(&[&files[0], &files[3]]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not enough recovery shares"));
    // A mistyped share is named by its file.
    let typo = f.dir.join("typo.txt");
    let text = std::fs::read_to_string(&files[1]).expect("read");
    let pos = text.find("data: ").expect("data") + 10;
    let mut b = text.into_bytes();
    b[pos] = if b[pos] == b'a' { b'b' } else { b'a' };
    std::fs::write(&typo, b).expect("write");
    let o = unlock(&[&files[0], &typo, &files[2]]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("typo.txt") && err.contains("checksum"),
        "{err}"
    );
    ok(&unlock(&[&files[0], &files[2], &files[4]]));
    let o = get(&f.vault, &new_key, "n1");
    ok(&o);
    assert_eq!(o.stdout, b"note n1");
    assert_eq!(get(&f.vault, &f.key, "n1").status.code(), Some(4));
    // Both actions are in the audit log.
    let o = run(
        &[
            "audit",
            "show",
            "--vault",
            s(&f.vault),
            "--key-file",
            s(&new_key),
            "--json",
        ],
        None,
    );
    ok(&o);
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(log.contains("recovery split") && log.contains("recovery unlock"));
}

#[test]
fn share_of_another_vault_is_named() {
    let a = fixture();
    let b = fixture();
    let split = |f: &Fixture| {
        let out = f.dir.join("sh");
        ok(&run(
            &[
                "recovery",
                "split",
                "--shares",
                "3",
                "--threshold",
                "2",
                "--out",
                s(&out),
                "--vault",
                s(&f.vault),
                "--key-file",
                s(&f.key),
            ],
            None,
        ));
        let mut v: Vec<PathBuf> = std::fs::read_dir(&out)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    };
    let (sa, sb) = (split(&a), split(&b));
    let new_key = a.dir.join("new.key");
    std::fs::write(&new_key, [0x55u8; 32]).expect("key");
    let o = run(
        &[
            "recovery",
            "unlock",
            "--vault",
            s(&a.vault),
            "--share",
            s(&sa[0]),
            "--share",
            s(&sb[1]),
            "--new-key-file",
            s(&new_key),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    let name = sb[1]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        err.contains(&name) && err.contains("belongs to vault"),
        "{err}"
    );
    // The old key still opens it.
    ok(&get(&a.vault, &a.key, "n1"));
}
