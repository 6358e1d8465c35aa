//! The CLI with a PKCS#11 root (SoftHSM2): `init` on the token, every command opening the vault
//! through it, a wrong PIN refused, `rotate-root` from a key file into the token and between
//! two keys on the token. `scripts/test-pkcs11.sh` sets up a throwaway token and the
//! `PHIVAULT_PKCS11_*` variables and runs this `#[ignore]`d test with `--include-ignored`; a
//! plain `cargo test` lists it as ignored.

mod common;

use common::run_env as run;
use std::path::{Path, PathBuf};
use std::process::Output;

struct Token {
    module: String,
    label: String,
    pin: String,
}

/// The configured token. The test is `#[ignore]`d: `scripts/test-pkcs11.sh` makes a
/// throwaway SoftHSM2 token and runs it with `--include-ignored`; run without it, it fails.
fn token() -> Token {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("PHIVAULT_PKCS11_MODULE"),
        var("PHIVAULT_PKCS11_TOKEN"),
        var("PHIVAULT_PKCS11_PIN"),
    ) {
        (Some(module), Some(label), Some(pin)) => Token { module, label, pin },
        _ => panic!("no PKCS#11 token configured: run scripts/test-pkcs11.sh"),
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
#[ignore = "needs a PKCS#11 token (SoftHSM2): run by scripts/test-pkcs11.sh"]
fn an_hsm_rooted_vault_through_the_cli() {
    let t = token();
    let tmp = tempfile::tempdir().expect("tmp");
    let vault: PathBuf = tmp.path().join("vault");
    let hsm = |key: &str| -> Vec<String> {
        vec![
            "--vault".into(),
            s(&vault).into(),
            "--pkcs11-module".into(),
            t.module.clone(),
            "--pkcs11-token".into(),
            t.label.clone(),
            "--pkcs11-key".into(),
            key.into(),
        ]
    };
    let with = |cmd: &[&str], flags: &[String], pin: &str, stdin: &[u8]| {
        let mut all: Vec<&str> = cmd.to_vec();
        all.extend(flags.iter().map(String::as_str));
        run(&all, &[("PHIVAULT_PKCS11_PIN", pin)], stdin)
    };

    // init generates the key on the token, once.
    let err = ok(&with(&["init"], &hsm("cli-root-1"), &t.pin, b""));
    assert!(err.contains("generated AES-256 key 'cli-root-1'"), "{err}");
    assert!(err.contains("root: pkcs11"), "{err}");
    let flags = hsm("cli-root-1");
    ok(&with(
        &["put", "notes", "MRN-1"],
        &flags,
        &t.pin,
        b"chest pain",
    ));
    let got = with(&["get", "notes", "MRN-1"], &flags, &t.pin, b"");
    ok(&got);
    assert_eq!(got.stdout, b"chest pain");

    // A wrong PIN is refused with the wrong-root-key exit code, and says nothing more.
    let bad = with(&["get", "notes", "MRN-1"], &flags, "000000", b"");
    assert_eq!(bad.status.code(), Some(4), "wrong root key");
    assert!(bad.stdout.is_empty());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!err.contains(&t.pin) && !err.contains("000000"), "{err}");
    // No PIN at all (no terminal): a clear error, not a prompt.
    let none = run(
        &[
            "get",
            "notes",
            "MRN-1",
            "--vault",
            s(&vault),
            "--pkcs11-module",
            &t.module,
            "--pkcs11-token",
            &t.label,
        ],
        &[],
        b"",
    );
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("PHIVAULT_PKCS11_PIN"));
    // The PIN from a file works too.
    let pin_file = tmp.path().join("pin");
    std::fs::write(&pin_file, format!("{}\n", t.pin)).expect("pin file");
    let mut from_file = flags.clone();
    from_file.extend(["--pkcs11-pin-file".into(), s(&pin_file).into()]);
    ok(&run(
        &[
            &["status"][..],
            &from_file.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
        &[],
        b"",
    ));

    // Rotate the root to a second key on the token: the old label no longer matters (the
    // header names the new key), and the record is still there.
    let err = ok(&with(
        &["rotate-root", "--new-pkcs11-key", "cli-root-2"],
        &flags,
        &t.pin,
        b"",
    ));
    assert!(err.contains("generated AES-256 key 'cli-root-2'"), "{err}");
    let got = with(&["get", "notes", "MRN-1"], &hsm("any-label"), &t.pin, b"");
    ok(&got);
    assert_eq!(got.stdout, b"chest pain");
    // The audit chain is intact after all of it.
    ok(&with(&["audit", "verify"], &flags, &t.pin, b""));

    // A key-file vault moves into the token.
    let key = tmp.path().join("root.key");
    ok(&run(&["keygen", s(&key)], &[], b""));
    let kv = tmp.path().join("kv");
    ok(&run(
        &["init", "--vault", s(&kv), "--key-file", s(&key)],
        &[],
        b"",
    ));
    ok(&run(
        &["put", "n", "1", "--vault", s(&kv), "--key-file", s(&key)],
        &[],
        b"x",
    ));
    ok(&run(
        &[
            "rotate-root",
            "--vault",
            s(&kv),
            "--key-file",
            s(&key),
            "--pkcs11-module",
            &t.module,
            "--pkcs11-token",
            &t.label,
            "--new-pkcs11-key",
            "cli-root-2",
        ],
        &[("PHIVAULT_PKCS11_PIN", &t.pin)],
        b"",
    ));
    let old = run(
        &["get", "n", "1", "--vault", s(&kv), "--key-file", s(&key)],
        &[],
        b"",
    );
    assert!(!old.status.success(), "the old key file still opens it");
    let mut kv_flags = hsm("cli-root-2");
    kv_flags[1] = s(&kv).into();
    let got = with(&["get", "n", "1"], &kv_flags, &t.pin, b"");
    ok(&got);
    assert_eq!(got.stdout, b"x");
}
