//! Vault-level behaviour: persistence, wrong keys, locking, concurrency, no plaintext at rest,
//! damaged stores.

use phivault::root::{Argon2Config, KeyFile, Passphrase};
use phivault::{Context, EncryptOptions, Error, Key32, Vault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn key_file(byte: u8) -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[byte; 32]).expect("32 bytes"))
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), std::fs::read(e.path()).expect("read"));
            }
        }
    }
    out
}

#[test]
fn records_survive_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    {
        let v = Vault::create(&path, &key_file(1)).expect("create");
        v.owner()
            .put("notes", "MRN-1", b"first", None)
            .expect("put");
        v.owner()
            .put("notes", "MRN-2", b"second", Some("patient-2"))
            .expect("put");
        v.owner().put("labs", "MRN-1", b"lab", None).expect("put");
    }
    let v = Vault::open(&path, &key_file(1)).expect("open");
    assert_eq!(
        v.owner()
            .get("notes", "MRN-1")
            .expect("get")
            .as_deref()
            .map(|b| b.as_slice()),
        Some(&b"first"[..])
    );
    assert_eq!(
        v.owner()
            .get("notes", "MRN-2")
            .expect("get")
            .as_deref()
            .map(|b| b.as_slice()),
        Some(&b"second"[..])
    );
    assert_eq!(
        v.owner()
            .get("labs", "MRN-1")
            .expect("get")
            .as_deref()
            .map(|b| b.as_slice()),
        Some(&b"lab"[..])
    );
    assert!(v.owner().get("notes", "MRN-3").expect("get").is_none());
    assert_eq!(v.scan("notes").count(), 2);
    assert_eq!(v.scan("labs").count(), 1);
}

#[test]
fn wrong_root_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    drop(Vault::create(&path, &key_file(1)).expect("create"));
    let before = snapshot(&path);
    assert!(matches!(
        Vault::open(&path, &key_file(2)),
        Err(Error::WrongRootKey)
    ));
    let pass = Passphrase::new("p");
    assert!(matches!(
        Vault::open(&path, &pass),
        Err(Error::RootKindMismatch { .. })
    ));
    let after = snapshot(&path);
    assert_eq!(before, after, "a refused open must not change any file");
    assert!(Vault::open(&path, &key_file(1)).is_ok());
}

#[test]
fn wrong_passphrase_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let good = Passphrase::new("correct horse").with_config(Argon2Config::testing());
    drop(Vault::create(&path, &good).expect("create"));
    assert!(matches!(
        Vault::open(&path, &Passphrase::new("correct horsf")),
        Err(Error::WrongRootKey)
    ));
    assert!(Vault::open(&path, &Passphrase::new("correct horse")).is_ok());
}

#[test]
fn second_opener_gets_vault_locked() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let _v = Vault::create(&path, &key_file(1)).expect("create");
    assert!(matches!(
        Vault::open(&path, &key_file(1)),
        Err(Error::VaultLocked { .. })
    ));
    assert!(matches!(
        Vault::create(&path, &key_file(1)),
        Err(Error::VaultLocked { .. } | Error::VaultExists { .. })
    ));
}

#[test]
fn create_refuses_existing_and_open_refuses_missing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    drop(Vault::create(&path, &key_file(1)).expect("create"));
    assert!(matches!(
        Vault::create(&path, &key_file(1)),
        Err(Error::VaultExists { .. })
    ));
    assert!(matches!(
        Vault::open(dir.path().join("nope"), &key_file(1)),
        Err(Error::VaultNotFound { .. })
    ));
}

#[cfg(unix)]
#[test]
fn vault_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let v = Vault::create(&path, &key_file(1)).expect("create");
    v.owner().put("c", "i", b"x", None).expect("put");
    drop(v);
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    for f in snapshot(&path).keys() {
        let m = std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", f.display());
    }
}

#[test]
fn context_keyring_and_key_are_all_bound() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("a"), &key_file(1)).expect("create");
    let other = Vault::create(dir.path().join("b"), &key_file(1)).expect("create");
    v.create_keyring("notes").expect("keyring");
    let ctx = Context::new().with("record", "1").with("field", "note");
    let ct = v
        .owner()
        .encrypt_with(b"PHI", &ctx, &EncryptOptions::new().keyring("notes"))
        .expect("enc");
    assert_eq!(&*v.owner().decrypt(&ct, &ctx).expect("dec"), b"PHI");
    // wrong context: other value, other order, extra pair, none
    for bad in [
        Context::new().with("record", "2").with("field", "note"),
        Context::new().with("field", "note").with("record", "1"),
        ctx.clone().with("x", "y"),
        Context::new(),
    ] {
        assert!(
            matches!(
                v.owner().decrypt(&ct, &bad),
                Err(Error::AuthenticationFailed)
            ),
            "{bad:?}"
        );
    }
    // another vault with the same root key has other keyrings: unknown keyring or auth failure
    assert!(other.owner().decrypt(&ct, &ctx).is_err());
    let ct_default = v.owner().encrypt(b"PHI", &ctx).expect("enc");
    assert!(matches!(
        other.owner().decrypt(&ct_default, &ctx),
        Err(Error::AuthenticationFailed)
    ));
    // a header naming another keyring of the same vault
    let mut moved = ct.clone();
    let env = phivault::envelope::Envelope::parse(&ct).expect("parse");
    assert_eq!(env.keyring(), "notes");
    moved[7..12].copy_from_slice(b"nope1");
    assert!(v.owner().decrypt(&moved, &ctx).is_err());
    assert!(matches!(
        v.owner()
            .encrypt_with(b"x", &ctx, &EncryptOptions::new().keyring("missing")),
        Err(Error::UnknownKeyring { .. })
    ));
}

#[test]
fn record_values_are_bound_to_their_id() {
    // Copy the stored value of one record over another in the store: get must fail, not
    // return the other patient's data.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let v = Vault::create(&path, &key_file(1)).expect("create");
    v.owner()
        .put("notes", "A", b"note of A", None)
        .expect("put");
    v.owner()
        .put("notes", "B", b"note of B", None)
        .expect("put");
    let ids: Vec<_> = v.scan("notes").map(|r| r.expect("info").id).collect();
    assert_eq!(ids.len(), 2);
    drop(v);
    // swap the two values with sled directly
    let db = open_sled(path.join("store"));
    let keys: Vec<_> = db.scan_prefix(b"r").map(|kv| kv.expect("kv")).collect();
    assert_eq!(keys.len(), 2);
    db.insert(&keys[0].0, keys[1].1.clone()).expect("insert");
    db.insert(&keys[1].0, keys[0].1.clone()).expect("insert");
    db.flush().expect("flush");
    drop(db);
    let v = Vault::open(&path, &key_file(1)).expect("open");
    assert!(matches!(
        v.owner().get("notes", "A"),
        Err(Error::AuthenticationFailed)
    ));
    assert!(matches!(
        v.owner().get("notes", "B"),
        Err(Error::AuthenticationFailed)
    ));
}

#[test]
fn tampered_keyring_and_header_are_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    drop(Vault::create(&path, &key_file(1)).expect("create"));
    let db = open_sled(path.join("store"));
    let (k, mut val) = db
        .scan_prefix(b"kdefault")
        .next()
        .expect("keyring")
        .expect("kv");
    let mut bytes = val.to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    val = bytes.into();
    db.insert(&k, val).expect("insert");
    db.flush().expect("flush");
    drop(db);
    let v = Vault::open(&path, &key_file(1)).expect("open");
    assert!(matches!(
        v.owner().encrypt(b"x", &Context::new()),
        Err(Error::CorruptMetadata { .. })
    ));
    drop(v);
    // header: flip a byte of the wrapped VMK
    let hp = path.join("vault.header");
    let mut h = std::fs::read(&hp).expect("header");
    let last = h.len() - 1;
    h[last] ^= 1;
    std::fs::write(&hp, &h).expect("write");
    assert!(matches!(
        Vault::open(&path, &key_file(1)),
        Err(Error::WrongRootKey)
    ));
    // truncated header
    std::fs::write(&hp, &h[..h.len() / 2]).expect("write");
    assert!(matches!(
        Vault::open(&path, &key_file(1)),
        Err(Error::CorruptMetadata { .. } | Error::WrongRootKey)
    ));
}

#[test]
fn eight_threads_encrypt_and_put_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Arc::new(Vault::create(dir.path().join("v"), &key_file(1)).expect("create"));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let id = format!("t{t}-r{i}");
                    let ctx = Context::new().with("id", id.clone());
                    let ct = v.owner().encrypt(id.as_bytes(), &ctx).expect("enc");
                    assert_eq!(&*v.owner().decrypt(&ct, &ctx).expect("dec"), id.as_bytes());
                    let subject = (i % 3 == 0).then(|| format!("s{}", i % 7));
                    v.owner()
                        .put("c", &id, id.as_bytes(), subject.as_deref())
                        .expect("put");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(v.scan("c").count(), 1600);
    for t in 0..8 {
        for i in (0..200).step_by(37) {
            let id = format!("t{t}-r{i}");
            assert_eq!(
                &*v.owner().get("c", &id).expect("get").expect("some"),
                id.as_bytes()
            );
        }
    }
}

#[test]
fn no_plaintext_at_rest() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let canaries = [
        "CANARY-SSN-987-65-4321",
        "CANARY-NAME-Zebulon Quartermaine",
        "CANARY-MRN-55555",
    ];
    let v = Vault::create(&path, &key_file(1)).expect("create");
    for (i, c) in canaries.iter().enumerate() {
        // as value, as id, as subject
        v.owner()
            .put("notes", c, format!("note {c}").as_bytes(), Some(c))
            .expect("put");
        v.owner()
            .put("notes", &format!("id{i}"), c.as_bytes(), None)
            .expect("put");
    }
    drop(v);
    for (file, bytes) in snapshot(&path) {
        for c in canaries {
            for needle in [c.as_bytes(), &c.as_bytes()[7..]] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds {c}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn subject_records_die_with_forget_subject() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &key_file(1)).expect("create");
    v.owner()
        .put("notes", "a1", b"alice 1", Some("alice"))
        .expect("put");
    v.owner()
        .put("notes", "a2", b"alice 2", Some("alice"))
        .expect("put");
    v.owner()
        .put("notes", "b1", b"bob 1", Some("bob"))
        .expect("put");
    let ctx = Context::new().with("k", "v");
    let outside = v
        .owner()
        .encrypt_for_subject(b"alice elsewhere", &ctx, "alice", &EncryptOptions::new())
        .expect("enc");
    assert!(v.forget_subject("alice").expect("forget"));
    assert!(!v.forget_subject("alice").expect("again"));
    assert!(matches!(
        v.owner().get("notes", "a1"),
        Err(Error::SubjectForgotten)
    ));
    assert!(matches!(
        v.owner().get("notes", "a2"),
        Err(Error::SubjectForgotten)
    ));
    assert!(matches!(
        v.owner().decrypt(&outside, &ctx),
        Err(Error::SubjectForgotten)
    ));
    assert_eq!(
        &*v.owner().get("notes", "b1").expect("get").expect("some"),
        b"bob 1"
    );
}

#[test]
fn damaged_store_files_give_errors_not_panics() {
    // Truncate or flip bytes in the sled files; opening and reading must return (Ok or Err),
    // never panic, and never return wrong data.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    {
        let v = Vault::create(&path, &key_file(1)).expect("create");
        for i in 0..50 {
            v.owner()
                .put("n", &format!("{i}"), format!("value {i}").as_bytes(), None)
                .expect("put");
        }
    }
    let files: Vec<PathBuf> = snapshot(&path)
        .into_keys()
        .filter(|p| !p.ends_with("phivault.lock"))
        .collect();
    let original = snapshot(&path);
    for (n, file) in files.iter().enumerate() {
        let len = original[file].len();
        for damage in 0..3 {
            // restore everything, then damage one file
            for (p, b) in &original {
                std::fs::write(p, b).expect("restore");
            }
            let mut bytes = original[file].clone();
            match damage {
                0 => bytes.truncate(len / 2),
                1 if len > 0 => bytes[(len * 7 / 13 + n) % len] ^= 0x10,
                _ => bytes.truncate(0),
            }
            std::fs::write(file, &bytes).expect("damage");
            let result = std::panic::catch_unwind(|| {
                if let Ok(v) = Vault::open(&path, &key_file(1)) {
                    for i in 0..50 {
                        if let Ok(Some(got)) = v.owner().get("n", &format!("{i}")) {
                            assert_eq!(
                                got.as_slice(),
                                format!("value {i}").as_bytes(),
                                "wrong data returned"
                            );
                        }
                    }
                }
            });
            assert!(
                result.is_ok(),
                "panic with damage {damage} to {}",
                file.display()
            );
        }
    }
}

#[test]
fn root_rotation_switches_keys_without_touching_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let v = Vault::create(&path, &key_file(1)).expect("create");
    v.owner().put("n", "1", b"kept", None).expect("put");
    let new_pass = Passphrase::new("new passphrase").with_config(Argon2Config::testing());
    v.rotate_root(&new_pass).expect("rotate root");
    drop(v);
    assert!(matches!(
        Vault::open(&path, &key_file(1)),
        Err(Error::RootKindMismatch { .. })
    ));
    let v = Vault::open(&path, &Passphrase::new("new passphrase")).expect("open");
    assert_eq!(
        &*v.owner().get("n", "1").expect("get").expect("some"),
        b"kept"
    );
    v.rotate_root(&key_file(9)).expect("back to a key file");
    drop(v);
    assert!(matches!(
        Vault::open(&path, &key_file(1)),
        Err(Error::WrongRootKey)
    ));
    assert!(Vault::open(&path, &key_file(9)).is_ok());
}

/// Opens the vault's sled database directly (to tamper with it). sled may release the previous
/// handle's file lock a moment after the vault is dropped (its background I/O), so retry briefly.
fn open_sled(path: impl AsRef<std::path::Path>) -> sled::Db {
    let path = path.as_ref();
    let mut last = None;
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("sled did not open: {last:?}");
}
