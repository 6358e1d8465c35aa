//! Store integrity: a damaged or rolled-back store is refused (or read back exactly), never
//! read as empty; `verify` finds damage; `salvage` copies out what authenticates.
//!
//! The damage trials are seeded: the seed is printed, and `PV_INTEGRITY_SEED=<n>` replays a
//! run. `PV_INTEGRITY_TRIALS=<n>` changes the number of trials (default 200).

use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::{Error, Key32, Vault, VaultOptions};
use std::path::{Path, PathBuf};

fn key_file() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[7u8; 32]).expect("32 bytes"))
}

/// SplitMix64: a small seeded generator, so a failing trial can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("PV_INTEGRITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(17)
        })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else if e.file_name() != "phivault.lock" {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Every non-empty file of the store, and the anchor file.
fn store_files(vault: &Path) -> Vec<PathBuf> {
    let mut out = vec![vault.join("store.anchor")];
    let mut stack = vec![vault.join("store")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else if e.metadata().expect("meta").len() > 0 {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn value(i: usize) -> Vec<u8> {
    format!("note {i}: HbA1c {}.{}%", 5 + i % 5, i % 10).into_bytes()
}

/// A vault of `n` records: one durable `put_many`, then a few single durable puts (so the
/// store holds several commits), closed cleanly.
fn pristine(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("pristine");
    let v = Vault::create(&path, &key_file()).expect("create");
    let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let vals: Vec<Vec<u8>> = (0..n).map(value).collect();
    let items: Vec<(&str, &[u8])> = ids
        .iter()
        .zip(&vals)
        .map(|(i, v)| (i.as_str(), v.as_slice()))
        .collect();
    v.put_many("notes", &items[..n - 4], &Default::default())
        .expect("put_many");
    for (id, val) in &items[n - 4..] {
        v.put("notes", id, val, None).expect("put");
    }
    drop(v);
    path
}

#[derive(Default, Debug)]
struct Tally {
    refused: u64,
    /// Refusals by error kind (the anchor's own: `StoreRolledBack`, `StoreCorrupted`).
    kinds: std::collections::BTreeMap<String, u64>,
    exact: u64,
    read_errors: u64,
    absent: u64,
    wrong: u64,
    panics: u64,
}

/// One trial: open the damaged copy and read every record back.
fn trial(path: &Path, n: usize, t: &mut Tally) {
    let r = std::panic::catch_unwind(|| -> (u64, u64, u64, Option<Error>) {
        let v = match Vault::open(path, &key_file()) {
            Ok(v) => v,
            Err(e) => return (0, 0, 0, Some(e)),
        };
        let (mut absent, mut wrong, mut errors) = (0, 0, 0);
        for i in 0..n {
            match v.get("notes", &format!("r{i}")) {
                Ok(Some(got)) if *got == value(i) => {}
                Ok(Some(_)) => wrong += 1,
                Ok(None) => absent += 1,
                Err(_) => errors += 1,
            }
        }
        (absent, wrong, errors, None)
    });
    match r {
        Err(_) => t.panics += 1,
        Ok((_, _, _, Some(e))) => {
            t.refused += 1;
            let kind = format!("{e:?}");
            let kind = kind.split([' ', '(', '{']).next().unwrap_or("?").to_owned();
            *t.kinds.entry(kind).or_default() += 1;
        }
        Ok((absent, wrong, errors, None)) => {
            t.absent += absent;
            t.wrong += wrong;
            if errors > 0 {
                t.read_errors += 1;
            } else if absent == 0 && wrong == 0 {
                t.exact += 1;
            }
        }
    }
}

#[test]
fn random_bit_flips_are_refused_or_read_exactly() {
    let trials: u64 = std::env::var("PV_INTEGRITY_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed = seed();
    println!("random_bit_flips: seed {seed} (replay with PV_INTEGRITY_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tmp");
    let n = 400;
    let pristine = pristine(dir.path(), n);
    let files: Vec<PathBuf> = store_files(&pristine)
        .into_iter()
        .map(|p| p.strip_prefix(&pristine).expect("inside").to_path_buf())
        .collect();
    let mut tally = Tally::default();
    let start = std::time::Instant::now();
    for i in 0..trials {
        let copy = dir.path().join(format!("t{i}"));
        copy_dir(&pristine, &copy);
        // Every file gets its share of the trials; the bits within it are random.
        let file = copy.join(&files[(i as usize) % files.len()]);
        let mut bytes = std::fs::read(&file).expect("read");
        let flips = 1 + rng.below(16);
        for _ in 0..flips {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        std::fs::write(&file, &bytes).expect("write");
        trial(&copy, n, &mut tally);
        std::fs::remove_dir_all(&copy).expect("cleanup");
    }
    println!(
        "random_bit_flips: {trials} trials over {} files in {:.1?}: {tally:?}",
        files.len(),
        start.elapsed()
    );
    assert_eq!(tally.panics, 0, "seed {seed}: panics");
    assert_eq!(tally.wrong, 0, "seed {seed}: wrong bytes");
    assert_eq!(tally.absent, 0, "seed {seed}: records silently absent");
    assert_eq!(
        tally.refused + tally.exact + tally.read_errors,
        trials,
        "seed {seed}: every trial is accounted for"
    );
}

#[test]
fn older_store_under_newer_anchor_is_rolled_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let v = Vault::create(&path, &key_file()).expect("create");
    v.put("notes", "r1", b"one", None).expect("put");
    drop(v);
    let old = dir.path().join("old");
    copy_dir(&path, &old);
    let v = Vault::open(&path, &key_file()).expect("open");
    v.put("notes", "r2", b"two", None).expect("put");
    drop(v);
    std::fs::remove_dir_all(path.join("store")).expect("rm");
    copy_dir(&old.join("store"), &path.join("store"));
    match Vault::open(&path, &key_file()) {
        Err(Error::StoreRolledBack { store, anchor }) => {
            assert!(store < anchor, "{store} < {anchor}");
        }
        other => panic!("expected StoreRolledBack, got {other:?}"),
    }
    // The message says what to do.
    let msg = Vault::open(&path, &key_file())
        .expect_err("refused")
        .to_string();
    assert!(msg.contains("backup") && msg.contains("salvage"), "{msg}");
}

#[test]
fn missing_anchor_file_or_entry_is_corrupted() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    drop(Vault::create(&path, &key_file()).expect("create"));
    // The anchor file deleted: refused.
    let a = dir.path().join("a");
    copy_dir(&path, &a);
    std::fs::remove_file(a.join("store.anchor")).expect("rm");
    assert!(matches!(
        Vault::open(&a, &key_file()),
        Err(Error::StoreCorrupted { .. })
    ));
    // The anchor file damaged in both slots: refused.
    let b = dir.path().join("b");
    copy_dir(&path, &b);
    std::fs::write(b.join("store.anchor"), [0u8; 128]).expect("write");
    assert!(matches!(
        Vault::open(&b, &key_file()),
        Err(Error::StoreCorrupted { .. })
    ));
    // A store from another vault with the same root key under this anchor: refused.
    let c = dir.path().join("c");
    drop(Vault::create(&c, &key_file()).expect("create"));
    std::fs::remove_dir_all(c.join("store")).expect("rm");
    copy_dir(&path.join("store"), &c.join("store"));
    assert!(Vault::open(&c, &key_file()).is_err());
}

#[test]
fn deferred_loss_is_not_a_refusal() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let opts = VaultOptions::new().durability(Durability::Deferred);
    drop(Vault::create_with(&path, &key_file(), opts).expect("create"));
    let v = Vault::open_with(&path, &key_file(), opts).expect("open");
    v.put("notes", "r1", b"one", None).expect("put");
    // A crash before sled's background flush: simulated by the store as it was before.
    let before = dir.path().join("before");
    drop(v);
    copy_dir(&path, &before);
    let v = Vault::open_with(&before, &key_file(), opts).expect("deferred reopen");
    v.put("notes", "r2", b"two", None).expect("put");
    std::mem::forget(v); // no clean close: the deferred writes may be lost
    let again = dir.path().join("again");
    copy_dir(&before, &again);
    Vault::open_with(&again, &key_file(), opts).expect("a lost deferred write is not a refusal");
}
