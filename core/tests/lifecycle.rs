//! Key lifecycle: rotation, rewrap (100k records, concurrent writers), retirement,
//! destruction, envelopes outside the vault, re-encryption, erasure records.

use phivault::lifecycle::RewrapOptions;
use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::{Context, EncryptOptions, Error, Key32, KeyState, Vault, VaultOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn root() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[3u8; 32]).expect("32"))
}

fn vault(dir: &tempfile::TempDir) -> Vault {
    Vault::create(dir.path().join("v"), &root()).expect("create")
}

fn records_on(v: &Vault, keyring: &str, version: u32) -> u64 {
    v.status()
        .expect("status")
        .keyrings
        .iter()
        .find(|k| k.name == keyring)
        .and_then(|k| k.versions.iter().find(|x| x.version == version))
        .map_or(0, |x| x.records)
}

#[test]
fn rewrap_moves_100k_records_without_touching_payloads() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create_with(
        dir.path().join("v"),
        &root(),
        VaultOptions::new().durability(Durability::Deferred),
    )
    .expect("create");
    let n = 100_000usize;
    let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    for chunk in ids.chunks(5000) {
        let items: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|id| (id.as_str(), id.as_bytes()))
            .collect();
        v.owner()
            .put_many("bulk", &items, &Default::default())
            .expect("put_many");
    }
    assert_eq!(records_on(&v, "default", 1), n as u64);
    let v2 = v.rotate("default").expect("rotate");
    let mut batches = 0;
    let report = v
        .rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 4000,
            },
            &mut |_| batches += 1,
        )
        .expect("rewrap");
    assert_eq!(report.rewrapped, n as u64);
    assert_eq!(report.unreadable + report.raced, 0);
    assert!(batches >= n / 4000, "progress reported per batch");
    assert_eq!(records_on(&v, "default", 1), 0);
    assert_eq!(records_on(&v, "default", v2), n as u64);
    // idempotent
    let again = v
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!((again.rewrapped, again.up_to_date), (0, n as u64));
    for i in (0..n).step_by(997) {
        assert_eq!(
            &*v.owner().get("bulk", &ids[i]).expect("get").expect("some"),
            ids[i].as_bytes()
        );
    }
    // v1 can now be destroyed and nothing is lost
    v.destroy_key_version("default", 1, false).expect("destroy");
    for i in (0..n).step_by(4999) {
        assert!(v.owner().get("bulk", &ids[i]).expect("get").is_some());
    }
}

#[test]
fn concurrent_writers_during_rewrap_lose_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Arc::new(vault(&dir));
    for i in 0..3000 {
        v.owner()
            .put("c", &format!("k{i}"), b"old", None)
            .expect("put");
    }
    v.rotate("default").expect("rotate");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (v, stop) = (v.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for i in (t..3000).step_by(3) {
                        v.owner()
                            .put(
                                "c",
                                &format!("k{i}"),
                                format!("new {round}").as_bytes(),
                                None,
                            )
                            .expect("put");
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    v.owner()
                        .put("c", &format!("extra-{t}-{round}"), b"extra", None)
                        .expect("put");
                    round += 1;
                }
                round
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let report = v
        .rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 100,
            },
            &mut |_| {},
        )
        .expect("rewrap");
    stop.store(true, Ordering::Relaxed);
    let rounds: Vec<u64> = writers
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    assert!(report.scanned >= 3000);
    // every record readable; values are the old one or one the writers wrote, never lost
    for i in 0..3000 {
        let got = v
            .owner()
            .get("c", &format!("k{i}"))
            .expect("get")
            .expect("some");
        assert!(
            got.as_slice() == b"old" || got.starts_with(b"new "),
            "record {i}"
        );
    }
    for (t, r) in rounds.iter().enumerate() {
        for round in 0..*r {
            assert!(
                v.owner()
                    .get("c", &format!("extra-{t}-{round}"))
                    .expect("get")
                    .is_some()
            );
        }
    }
    // a second pass finishes the job
    v.rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(records_on(&v, "default", 1), 0);
}

#[test]
fn retire_is_reversible_and_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new().with("k", "v");
    let old = v.owner().encrypt(b"x", &ctx).expect("enc");
    let v2 = v.rotate("default").expect("rotate");
    v.set_min_decryption_version("default", v2).expect("retire");
    match v.owner().decrypt(&old, &ctx) {
        Err(Error::KeyRetired {
            keyring,
            version,
            min,
        }) => assert_eq!((keyring.as_str(), version, min), ("default", 1, 2)),
        other => panic!("expected KeyRetired, got {other:?}"),
    }
    assert_eq!(
        v.keyrings().expect("list")[0].versions[0].state,
        KeyState::Retired
    );
    assert!(
        v.set_min_decryption_version("default", 3).is_err(),
        "above active"
    );
    assert!(v.set_min_decryption_version("default", 0).is_err());
    v.set_min_decryption_version("default", 1)
        .expect("un-retire");
    assert_eq!(&*v.owner().decrypt(&old, &ctx).expect("dec"), b"x");
}

#[test]
fn destroy_refuses_while_in_use_unless_forced() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    v.owner().put("c", "1", b"one", None).expect("put");
    v.owner().put("c", "2", b"two", Some("subj")).expect("put");
    assert!(
        matches!(
            v.destroy_key_version("default", 1, false),
            Err(Error::InvalidInput { .. })
        ),
        "active"
    );
    v.rotate("default").expect("rotate");
    match v.destroy_key_version("default", 1, false) {
        Err(Error::KeyInUse {
            records,
            subject_keys,
            ..
        }) => assert_eq!((records, subject_keys), (2, 1)),
        other => panic!("expected KeyInUse, got {other:?}"),
    }
    assert!(matches!(
        v.destroy_key_version("default", 9, false),
        Err(Error::UnknownKeyVersion { .. })
    ));
    let deps = v.destroy_key_version("default", 1, true).expect("forced");
    assert_eq!(deps.records, 2);
    assert!(matches!(
        v.owner().get("c", "1"),
        Err(Error::KeyDestroyed { version: 1, .. })
    ));
    assert!(v.owner().get("c", "2").is_err());
    assert_eq!(
        v.keyrings().expect("list")[0].versions[0].state,
        KeyState::Destroyed
    );
    // destroyed is final, also across reopen
    drop(v);
    let v = Vault::open(dir.path().join("v"), &root()).expect("open");
    assert!(matches!(
        v.owner().get("c", "1"),
        Err(Error::KeyDestroyed { .. })
    ));
    assert!(v.set_min_decryption_version("default", 1).is_ok());
    assert!(matches!(
        v.owner().get("c", "1"),
        Err(Error::KeyDestroyed { .. })
    ));
}

#[test]
fn envelopes_outside_the_vault_are_rewrapped_with_their_context() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ctx = Context::new().with("table", "notes").with("row", "17");
    let bin = v.owner().encrypt(b"row 17", &ctx).expect("enc");
    let text = v
        .owner()
        .encrypt_text(b"row 17", &ctx, &EncryptOptions::new())
        .expect("enc");
    let det = v
        .owner()
        .encrypt_with(b"ssn", &ctx, &EncryptOptions::new().deterministic())
        .expect("det");
    v.rotate("default").expect("rotate");
    let out = v.rewrap_envelopes(&[bin.clone(), text.clone().into_bytes()]);
    let rb = out[0].as_ref().expect("bin");
    let rt = out[1].as_ref().expect("text");
    assert_eq!(
        phivault::envelope::Envelope::parse(rb)
            .expect("parse")
            .key_version(),
        2
    );
    assert!(rt.starts_with(b"pv1:default:2:"));
    assert_eq!(&*v.owner().decrypt(rb, &ctx).expect("dec"), b"row 17");
    assert_eq!(&*v.owner().decrypt(rt, &ctx).expect("dec"), b"row 17");
    assert!(matches!(
        v.owner()
            .decrypt(rb, &Context::new().with("table", "notes").with("row", "18")),
        Err(Error::AuthenticationFailed)
    ));
    // payload bytes are untouched by a rewrap: same length, same tail
    assert_eq!(rb.len(), bin.len());
    assert_eq!(rb[rb.len() - 40..], bin[bin.len() - 40..]);
    // current envelopes come back unchanged; deterministic ones need re-encryption
    assert_eq!(v.rewrap_envelope(rb).expect("again"), *rb);
    assert!(v.rewrap_envelope(&det).is_err());
    let re = v.reencrypt(&det, &ctx).expect("reencrypt det");
    assert_eq!(
        phivault::envelope::Envelope::parse(&re)
            .expect("parse")
            .key_version(),
        2
    );
    assert_eq!(
        re,
        v.owner()
            .encrypt_with(b"ssn", &ctx, &EncryptOptions::new().deterministic())
            .expect("det2")
    );
    // full re-encryption changes the payload too
    let fresh = v.reencrypt(&bin, &ctx).expect("reencrypt");
    assert_ne!(fresh[fresh.len() - 40..], bin[bin.len() - 40..]);
    assert_eq!(&*v.owner().decrypt(&fresh, &ctx).expect("dec"), b"row 17");
    assert!(v.rewrap_envelope(b"garbage").is_err());
}

#[test]
fn reencrypt_record_and_rotate_if_older_than() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    v.owner().put("c", "1", b"one", None).expect("put");
    assert_eq!(
        v.rotate_if_older_than("default", Duration::from_secs(3600))
            .expect("rot"),
        None
    );
    assert_eq!(
        v.rotate_if_older_than("default", Duration::from_secs(0))
            .expect("rot"),
        Some(2)
    );
    assert!(v.reencrypt_record("c", "1").expect("reencrypt"));
    assert!(!v.reencrypt_record("c", "nope").expect("reencrypt"));
    assert_eq!(records_on(&v, "default", 2), 1);
    assert_eq!(
        &*v.owner().get("c", "1").expect("get").expect("some"),
        b"one"
    );
}

#[test]
fn subject_keys_follow_rotation_and_erasures_are_recorded_without_ids() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    v.owner()
        .put("c", "a", b"alice", Some("patient-alice"))
        .expect("put");
    v.owner()
        .put("c", "b", b"bob", Some("patient-bob"))
        .expect("put");
    v.rotate("default").expect("rotate");
    let r = v
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!((r.subject_records, r.subject_keys_rewrapped), (2, 2));
    assert_eq!(records_on(&v, "default", 1), 0);
    v.destroy_key_version("default", 1, false)
        .expect("destroy v1");
    assert_eq!(
        &*v.owner().get("c", "a").expect("get").expect("some"),
        b"alice"
    );
    v.forget_subject("patient-alice").expect("forget");
    assert!(matches!(
        v.owner().get("c", "a"),
        Err(Error::SubjectForgotten)
    ));
    let erasures = v.erasures().expect("erasures");
    // One record per destroyed key: the subject's own id and its `default` key.
    assert_eq!(erasures.len(), 2);
    for e in &erasures {
        let json = serde_json_like(e);
        assert!(!json.contains("alice"), "{json}");
    }
    assert_eq!(v.status().expect("status").forgotten_records, 1);
}

fn serde_json_like(e: &phivault::erasure::ErasureRecord) -> String {
    format!("{e:?}")
}

#[test]
fn reserved_context_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let forged = Context::new()
        .with("phivault.collection", "c")
        .with("phivault.id", "1");
    assert!(matches!(
        v.owner().encrypt(b"x", &forged),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn interrupted_rewrap_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let ids: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
    let items: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
    v.owner()
        .put_many("c", &items, &Default::default())
        .expect("put");
    v.rotate("default").expect("rotate");
    // Interrupt after the third batch (a panic stands in for a crash).
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut n = 0;
        v.rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 100,
            },
            &mut |_| {
                n += 1;
                if n == 3 {
                    panic!("simulated crash");
                }
            },
        )
    }));
    assert!(crashed.is_err());
    assert_eq!(records_on(&v, "default", 1), 700);
    let r = v
        .rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 100,
            },
            &mut |_| {},
        )
        .expect("resume");
    assert!(r.resumed);
    assert_eq!((r.scanned, r.rewrapped), (700, 700));
    assert_eq!(records_on(&v, "default", 1), 0);
    // a rotation between crash and resume starts over instead of skipping records
    v.rotate("default").expect("rotate");
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v.rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 100,
            },
            &mut |_| panic!("crash"),
        )
    }));
    v.rotate("default").expect("rotate again");
    let r = v
        .rewrap(
            &RewrapOptions {
                keyring: None,
                batch: 100,
            },
            &mut |_| {},
        )
        .expect("rewrap");
    assert!(!r.resumed);
    assert_eq!(r.rewrapped, 1000);
}
