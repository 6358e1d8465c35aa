//! Batch calls on a thread pool (`VaultOptions::threads`) give exactly the results of the
//! calling-thread path: same tokens for deterministic kinds, one token per value and unique
//! tokens for vaulted ones (also for equal values inside one batch), every record readable,
//! a complete rewrap, in the input order.

use phivault::lifecycle::RewrapOptions;
use phivault::records::PutOptions;
use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::tokens::View;
use phivault::{Context, Key32, Vault, VaultOptions};
use std::collections::{HashMap, HashSet};

fn vault(dir: &tempfile::TempDir, threads: usize) -> Vault {
    Vault::create_with(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[9u8; 32]).expect("32")),
        VaultOptions::new()
            .durability(Durability::Deferred)
            .threads(threads),
    )
    .expect("create")
}

#[test]
fn threads_setting_is_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut v = vault(&dir, 2);
    assert_eq!(v.threads(), if cfg!(feature = "parallel") { 2 } else { 1 });
    v.set_threads(1).expect("serial");
    assert_eq!(v.threads(), 1);
    v.set_threads(0).expect("per core");
    assert!(v.threads() >= 1);
}

#[test]
fn deterministic_kinds_agree_with_the_serial_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut v = vault(&dir, 1);
    let ssns: Vec<String> = (0..3000)
        .map(|i| format!("{:03}-45-{:04}", i % 900 + 100, i))
        .collect();
    let names: Vec<String> = (0..3000).map(|i| format!("patient-{i}")).collect();
    let serial_ff1 = v.owner().tokenize_many("ssn", &ssns).expect("ff1");
    let serial_psn = v.owner().tokenize_many("pseudonym", &names).expect("psn");
    v.set_threads(3).expect("pool");
    assert_eq!(
        v.owner().tokenize_many("ssn", &ssns).expect("ff1"),
        serial_ff1
    );
    assert_eq!(
        v.owner().tokenize_many("pseudonym", &names).expect("psn"),
        serial_psn
    );
    let back = v
        .owner()
        .detokenize_many("ssn", &serial_ff1, View::Plaintext)
        .expect("detok");
    assert_eq!(back.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ssns);
    // A bad token anywhere in a large batch fails the batch, as on the serial path.
    let mut bad = serial_ff1.clone();
    bad[2500] = "not-a-token".into();
    assert!(
        v.owner()
            .detokenize_many("ssn", &bad, View::Plaintext)
            .is_err()
    );
}

#[test]
fn vaulted_tokens_stay_one_per_value_and_unique_on_the_pool() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir, 4);
    // 4000 values with every value repeated four times, in scattered positions.
    let values: Vec<String> = (0..4000)
        .map(|i| format!("M{:09}", (i * 7919) % 1000))
        .collect();
    let tokens = v.owner().tokenize_many("mrn", &values).expect("tokenize");
    let mut by_value: HashMap<&str, &str> = HashMap::new();
    for (val, tok) in values.iter().zip(&tokens) {
        assert_ne!(val, tok);
        let prev = by_value.insert(val, tok);
        assert!(
            prev.is_none() || prev == Some(tok.as_str()),
            "one token per value"
        );
    }
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 1000, "unique tokens for distinct values");
    let back = v
        .owner()
        .detokenize_many("mrn", &tokens, View::Plaintext)
        .expect("detok");
    assert_eq!(
        back.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        values.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Tokenizing again (pool again) gives the same tokens.
    assert_eq!(
        v.owner().tokenize_many("mrn", &values).expect("again"),
        tokens
    );
}

#[test]
fn put_many_and_rewrap_on_the_pool() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir, 2);
    let ids: Vec<String> = (0..3000).map(|i| format!("rec-{i}")).collect();
    let bodies: Vec<Vec<u8>> = (0..3000)
        .map(|i| format!("note {i}").into_bytes())
        .collect();
    let items: Vec<(&str, &[u8])> = ids
        .iter()
        .map(String::as_str)
        .zip(bodies.iter().map(Vec::as_slice))
        .collect();
    v.owner()
        .put_many("notes", &items, &PutOptions::default())
        .expect("put_many");
    for (id, body) in &items {
        assert_eq!(
            v.owner()
                .get("notes", id)
                .expect("get")
                .expect("present")
                .as_slice(),
            *body
        );
    }
    v.rotate("default").expect("rotate");
    let report = v
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(report.rewrapped, 3000);
    assert_eq!(report.unreadable, 0);
    let again = v
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(again.rewrapped, 0);
    for (id, body) in &items {
        assert_eq!(
            v.owner()
                .get("notes", id)
                .expect("get")
                .expect("present")
                .as_slice(),
            *body
        );
    }
    // rewrap_envelopes keeps order and per-item results on the pool.
    let ctx = Context::new().with("k", "v");
    let mut envs: Vec<Vec<u8>> = (0..600)
        .map(|i| {
            v.owner()
                .encrypt(format!("x{i}").as_bytes(), &ctx)
                .expect("enc")
        })
        .collect();
    envs[300] = b"garbage".to_vec();
    v.rotate("default").expect("rotate");
    let out = v.rewrap_envelopes(&envs);
    assert_eq!(out.len(), 600);
    for (i, r) in out.iter().enumerate() {
        if i == 300 {
            assert!(r.is_err());
        } else {
            let pt = v
                .owner()
                .decrypt(r.as_ref().expect("rewrapped"), &ctx)
                .expect("dec");
            assert_eq!(pt.as_slice(), format!("x{i}").as_bytes());
        }
    }
}

#[test]
fn encrypt_many_and_decrypt_many_match_single_calls() {
    use phivault::EncryptOptions;
    for threads in [1, 2] {
        let dir = tempfile::tempdir().expect("tmp");
        let v = vault(&dir, threads);
        let ctx = Context::new().with("table", "notes");
        let bodies: Vec<Vec<u8>> = (0..1500).map(|i| vec![(i % 251) as u8; i % 90]).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let envs = v
            .owner()
            .encrypt_many(&refs, &ctx, &EncryptOptions::new())
            .expect("encrypt_many");
        assert_eq!(envs.len(), refs.len());
        let distinct: HashSet<&Vec<u8>> = envs.iter().collect();
        assert_eq!(
            distinct.len(),
            envs.len(),
            "a fresh data key and nonce per envelope"
        );
        for (e, b) in envs.iter().zip(&bodies) {
            assert_eq!(
                v.owner()
                    .decrypt(e, &ctx)
                    .expect("single decrypt")
                    .as_slice(),
                b.as_slice()
            );
        }
        let back = v.owner().decrypt_many(&envs, &ctx).expect("decrypt_many");
        assert!(
            back.iter()
                .zip(&bodies)
                .all(|(p, b)| p.as_slice() == b.as_slice())
        );
        // Deterministic: the same envelopes as single calls.
        let det = EncryptOptions::new().deterministic();
        let many = v
            .owner()
            .encrypt_many(&refs[..300], &ctx, &det)
            .expect("det many");
        for (e, p) in many.iter().zip(&refs[..300]) {
            assert_eq!(
                e,
                &v.owner().encrypt_with(p, &ctx, &det).expect("det single")
            );
        }
        // One bad envelope or another context fails the whole batch, with no output.
        let mut bad = envs.clone();
        let last = bad[777].len() - 1;
        bad[777][last] ^= 1;
        assert!(matches!(
            v.owner().decrypt_many(&bad, &ctx),
            Err(phivault::Error::AuthenticationFailed)
        ));
        let other = Context::new().with("table", "other");
        assert!(v.owner().decrypt_many(&envs, &other).is_err());
    }
}
