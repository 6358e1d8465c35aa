//! What the CLI test files share: the binary, and running it with a clean environment.
// Each test file is its own crate and uses a part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `phivault` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_phivault"))
}

/// Variables a test must not inherit from the shell that runs it: root-key sources and the
/// vault location. A test that needs one passes it explicitly.
pub const CLEARED_ENV: [&str; 6] = [
    "PHIVAULT_PASSPHRASE",
    "PHIVAULT_VAULT",
    "PHIVAULT_PKCS11_MODULE",
    "PHIVAULT_PKCS11_TOKEN",
    "PHIVAULT_PKCS11_PIN",
    "PHIVAULT_PKCS11_KEY",
];

/// Runs the CLI with `args` and `envs` (after clearing [`CLEARED_ENV`]), writes `stdin`, and
/// waits. A child that fails early (a usage error) may exit before reading: a broken pipe is
/// not a test failure; the exit code is what tests check.
pub fn run_env(args: &[&str], envs: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for k in CLEARED_ENV {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("wait")
}

/// [`run_env`] without extra variables.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_env(args, &[], stdin)
}

/// [`run`] on the vault `vault` opened with the key file `key`.
pub fn run_on(
    vault: &std::path::Path,
    key: &std::path::Path,
    args: &[&str],
    stdin: &[u8],
) -> Output {
    let mut all = args.to_vec();
    all.extend([
        "--vault",
        vault.to_str().expect("utf8"),
        "--key-file",
        key.to_str().expect("utf8"),
    ]);
    run(&all, stdin)
}

/// A fresh vault with a new key file in a temporary directory.
pub struct Vault {
    /// The temporary directory holding key and vault.
    pub tmp: tempfile::TempDir,
    /// The vault directory.
    pub vault: PathBuf,
    /// The root key file.
    pub key: PathBuf,
}

impl Vault {
    /// `keygen`, then `init`.
    pub fn new() -> Vault {
        let tmp = tempfile::tempdir().expect("tmp");
        let key = tmp.path().join("root.key");
        assert!(
            run(&["keygen", key.to_str().expect("utf8")], b"")
                .status
                .success()
        );
        let vault = tmp.path().join("vault");
        let e = Vault { tmp, vault, key };
        assert!(e.pv(&["init"], b"").status.success());
        e
    }

    /// Runs the CLI on this vault.
    pub fn pv(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_on(&self.vault, &self.key, args, stdin)
    }

    /// A path in the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}
