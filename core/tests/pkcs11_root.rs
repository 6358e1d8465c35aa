//! The PKCS#11 root of trust against SoftHSM2 (issue 11). `scripts/test-pkcs11.sh` installs
//! SoftHSM2, initialises a token in a temporary directory and sets `PHIVAULT_PKCS11_MODULE`,
//! `PHIVAULT_PKCS11_TOKEN` and `PHIVAULT_PKCS11_PIN`, and runs these `#[ignore]`d tests with
//! `--include-ignored`; a plain `cargo test` lists them as ignored.

#![cfg(feature = "pkcs11")]

use phivault::root::{KeyFile, RootKeySource};
use phivault::root_pkcs11::Pkcs11Root;
use phivault::{Error, Key32, Vault};

/// The configured token's key `label`. The tests are `#[ignore]`d: `scripts/test-pkcs11.sh`
/// makes a throwaway SoftHSM2 token, sets the variables and runs them with
/// `--include-ignored`; run without it, they fail instead of passing for nothing.
fn hsm(label: &str) -> Pkcs11Root {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("PHIVAULT_PKCS11_MODULE"),
        var("PHIVAULT_PKCS11_TOKEN"),
        var("PHIVAULT_PKCS11_PIN"),
    ) {
        (Some(m), Some(t), Some(p)) => Pkcs11Root::new(m, &t, &p, label).expect("source"),
        _ => panic!("no PKCS#11 token configured: run scripts/test-pkcs11.sh"),
    }
}

#[test]
#[ignore = "needs a PKCS#11 token (SoftHSM2): run by scripts/test-pkcs11.sh"]
fn a_vault_rooted_in_the_token_opens_and_its_root_rotates() {
    let root1 = hsm("pv-root-1");
    let root2 = hsm("pv-root-2");
    root1.generate_key().expect("generate key 1");
    assert!(
        !root1.generate_key().expect("idempotent"),
        "key generated twice"
    );
    root2.generate_key().expect("generate key 2");

    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let vault = Vault::create(&path, &root1).expect("create");
    assert_eq!(vault.root_kind(), "pkcs11");
    vault
        .owner()
        .put("notes", "MRN-1", b"chest pain", None)
        .expect("put");
    drop(vault);

    // The header holds only a key label: the token does the unwrapping.
    let header = std::fs::read(path.join("vault.header")).expect("header");
    assert!(header.windows(9).any(|w| w == b"pv-root-1"));
    let vault = Vault::open(&path, &root1).expect("open with the HSM");
    assert_eq!(
        &*vault
            .owner()
            .get("notes", "MRN-1")
            .expect("get")
            .expect("some"),
        b"chest pain"
    );
    // A key file cannot open it.
    drop(vault);
    let kf = KeyFile::from_key(Key32::random().expect("key"));
    assert!(matches!(
        Vault::open(&path, &kf),
        Err(Error::RootKindMismatch { .. })
    ));

    // Rotate the root to a new key on the token, then destroy the old key.
    let vault = Vault::open(&path, &root1).expect("open");
    vault.rotate_root(&root2).expect("rotate root");
    drop(vault);
    assert!(root1.destroy_key().expect("destroy old key"));
    let vault = Vault::open(&path, &root1).expect("the header names the new key");
    assert_eq!(
        &*vault
            .owner()
            .get("notes", "MRN-1")
            .expect("get")
            .expect("some"),
        b"chest pain"
    );
    drop(vault);

    // With the new key gone too, nothing opens the vault.
    assert!(root2.destroy_key().expect("destroy new key"));
    assert!(matches!(
        Vault::open(&path, &root2),
        Err(Error::WrongRootKey)
    ));
}

/// A vault rooted in the key `label` on the token (generated if absent), in a temporary
/// directory; `None` when no token is configured.
fn hsm_vault(label: &str) -> (Pkcs11Root, tempfile::TempDir) {
    let good = hsm(label);
    good.generate_key().expect("generate");
    let dir = tempfile::tempdir().expect("tmp");
    Vault::create(dir.path().join("v"), &good).expect("create");
    (good, dir)
}

/// The configured token and the key `label`, with a wrong PIN.
fn wrong_pin(label: &str) -> Pkcs11Root {
    let module = std::env::var("PHIVAULT_PKCS11_MODULE").expect("module");
    let token = std::env::var("PHIVAULT_PKCS11_TOKEN").expect("token");
    Pkcs11Root::new(module, &token, "000000", label).expect("source")
}

#[test]
#[ignore = "needs a PKCS#11 token (SoftHSM2): run by scripts/test-pkcs11.sh"]
fn a_wrong_pin_is_refused() {
    let (good, dir) = hsm_vault("pv-pin-test");
    let bad = wrong_pin("pv-pin-test");
    assert!(matches!(
        Vault::open(dir.path().join("v"), &bad),
        Err(Error::WrongRootKey)
    ));
    assert!(Vault::open(dir.path().join("v"), &good).is_ok());
}

/// PKCS#11 login state belongs to the whole process: while one key holds a logged-in session,
/// the token answers a second `C_Login` with "already logged in" whatever the PIN. A wrong PIN
/// must still be refused, and the key that was open must keep working afterwards.
#[test]
#[ignore = "needs a PKCS#11 token (SoftHSM2): run by scripts/test-pkcs11.sh"]
fn a_wrong_pin_is_refused_while_another_session_is_logged_in() {
    let (good, dir) = hsm_vault("pv-pin-held");
    let held = good
        .unlock(&good.new_params().expect("params"))
        .expect("unlock");
    let wrapped = held.wrap(b"aad", b"secret").expect("wrap");

    let bad = wrong_pin("pv-pin-held");
    assert!(matches!(
        Vault::open(dir.path().join("v"), &bad),
        Err(Error::WrongRootKey)
    ));
    assert!(matches!(
        bad.unlock(&good.new_params().expect("params")),
        Err(Error::WrongRootKey)
    ));
    // The wrong PIN logged the process out; the held key logs in again with its own PIN.
    let back = held
        .unwrap(b"aad", &wrapped)
        .expect("unwrap after the refused PIN");
    assert_eq!(back.expose(), b"secret");
    assert!(held.wrap(b"aad", b"again").is_ok());
    assert!(Vault::open(dir.path().join("v"), &good).is_ok());
}

#[test]
#[ignore = "needs a PKCS#11 token (SoftHSM2): run by scripts/test-pkcs11.sh"]
fn a_key_file_vault_moves_into_the_hsm() {
    let hsm_root = hsm("pv-move");
    hsm_root.generate_key().expect("generate");
    let dir = tempfile::tempdir().expect("tmp");
    let kf = KeyFile::from_key(Key32::random().expect("key"));
    let vault = Vault::create(dir.path().join("v"), &kf).expect("create");
    vault.owner().put("n", "1", b"x", None).expect("put");
    vault.rotate_root(&hsm_root).expect("to the HSM");
    drop(vault);
    assert!(Vault::open(dir.path().join("v"), &kf).is_err());
    let v = Vault::open(dir.path().join("v"), &hsm_root).expect("open");
    assert_eq!(&*v.owner().get("n", "1").expect("get").expect("some"), b"x");
}
