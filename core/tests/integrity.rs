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
    v.owner()
        .put_many("notes", &items[..n - 4], &Default::default())
        .expect("put_many");
    for (id, val) in &items[n - 4..] {
        v.owner().put("notes", id, val, None).expect("put");
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
            match v.owner().get("notes", &format!("r{i}")) {
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
    v.owner().put("notes", "r1", b"one", None).expect("put");
    drop(v);
    let old = dir.path().join("old");
    copy_dir(&path, &old);
    let v = Vault::open(&path, &key_file()).expect("open");
    v.owner().put("notes", "r2", b"two", None).expect("put");
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
    v.owner().put("notes", "r1", b"one", None).expect("put");
    // A crash before sled's background flush: simulated by the store as it was before.
    let before = dir.path().join("before");
    drop(v);
    copy_dir(&path, &before);
    let v = Vault::open_with(&before, &key_file(), opts).expect("deferred reopen");
    v.owner().put("notes", "r2", b"two", None).expect("put");
    std::mem::forget(v); // no clean close: the deferred writes may be lost
    let again = dir.path().join("again");
    copy_dir(&before, &again);
    Vault::open_with(&again, &key_file(), opts).expect("a lost deferred write is not a refusal");
}

// ---- verify -------------------------------------------------------------------------------

use phivault::store::{SledStore, Space, Store, WriteOp};
use phivault::tokens::{FieldSpec, TokenKind};

/// A vault with an entry of every kind: records (one tied to a subject), consistent vaulted
/// tokens (one tied to a subject), a defined field, a policy, an erasure, audit entries.
fn rich_vault(path: &Path) {
    let v = Vault::create(path, &key_file()).expect("create");
    v.owner().put("notes", "r1", b"one", None).expect("put");
    v.owner()
        .put("notes", "r2", b"two", Some("patient-2"))
        .expect("put");
    v.owner()
        .put("notes", "r3", b"three", Some("patient-3"))
        .expect("put");
    v.owner().tokenize("mrn", "MRN-0001").expect("tokenize");
    v.owner().tokenize("mrn", "MRN-0002").expect("tokenize");
    let mut f = FieldSpec::new("chart", TokenKind::Vaulted);
    f.subject = true;
    f.alphabet = "alphanumeric".into();
    v.define_field(f).expect("define");
    v.owner()
        .tokenize_for_subject("chart", "CHART-0000077", "patient-2")
        .expect("tokenize for subject");
    v.set_policy(&v.policy().expect("policy"))
        .expect("set policy");
    v.forget_subject("patient-3").expect("forget");
}

fn entries(path: &Path, space: Space) -> Vec<(Vec<u8>, Vec<u8>)> {
    let s = SledStore::open(&path.join("store"), Durability::Immediate).expect("sled");
    s.scan(space, &[], None, usize::MAX).expect("scan")
}

/// Edits the closed vault's store directly (outside phivault, as damage or an attacker would).
fn edit(path: &Path, ops: Vec<WriteOp>) {
    let s = SledStore::open(&path.join("store"), Durability::Immediate).expect("sled");
    s.write(ops).expect("write");
    s.flush().expect("flush");
}

fn flip(v: &[u8], at: usize) -> Vec<u8> {
    let mut v = v.to_vec();
    let i = at.min(v.len() - 1);
    v[i] ^= 0x01;
    v
}

fn verify(path: &Path) -> phivault::integrity::VerifyReport {
    Vault::open(path, &key_file())
        .expect("open")
        .verify()
        .expect("verify")
}

#[test]
fn verify_of_a_good_vault_is_clean() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    rich_vault(&path);
    let r = verify(&path);
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.count("record"), 3);
    assert_eq!(r.count("token-index"), 3);
    // One erasure record per destroyed subject key (the subject's id and its keyring key).
    assert_eq!(r.count("erasure"), 2);
    assert!(r.audit_entries > 5);
    assert_eq!(r.store_commit.is_some(), r.anchor_commit.is_some());
    // The forgotten subject's record is authentic but unreadable by design, not a problem.
    let rec = r
        .spaces
        .iter()
        .find(|s| s.space == "record")
        .expect("record");
    assert_eq!((rec.ok, rec.unreadable, rec.bad), (2, 1, 0));
}

/// Each kind of damage, injected into a copy of a good vault, is found where it lies.
#[test]
fn verify_finds_each_kind_of_damage() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = dir.path().join("good");
    rich_vault(&good);
    type Inject = Box<dyn Fn(&Path) -> Vec<WriteOp>>;
    let put = |space, key: Vec<u8>, value| WriteOp::Put { space, key, value };
    let first = move |p: &Path, s: Space| entries(p, s).into_iter().next().expect("an entry");
    let cases: Vec<(&str, &str, Inject)> = vec![
        (
            "record",
            "key part",
            Box::new(move |p| {
                // Every record: one of them belongs to the forgotten subject (unreadable anyway).
                entries(p, Space::Record)
                    .into_iter()
                    .map(|(k, v)| put(Space::Record, k, flip(&v, 40)))
                    .collect()
            }),
        ),
        (
            "record",
            "unknown keyring",
            Box::new(move |_| {
                vec![WriteOp::Delete {
                    space: Space::Keyring,
                    key: b"default".to_vec(),
                }]
            }),
        ),
        (
            "keyring",
            "keyring does not authenticate",
            Box::new(move |p| {
                let (k, v) = first(p, Space::Keyring);
                vec![put(Space::Keyring, k, flip(&v, 30))]
            }),
        ),
        (
            "token",
            "key part",
            Box::new(move |p| {
                let (k, v) = first(p, Space::Token);
                vec![put(Space::Token, k, flip(&v, 40))]
            }),
        ),
        (
            "token-index",
            "disagree",
            Box::new(move |p| {
                let idx = entries(p, Space::TokenIndex);
                let other = idx
                    .iter()
                    .find(|(_, t)| *t != idx[0].1 && t.starts_with(&idx[0].1[..4]))
                    .map(|(_, t)| t.clone())
                    .unwrap_or_else(|| idx[1].1.clone());
                vec![put(Space::TokenIndex, idx[0].0.clone(), other)]
            }),
        ),
        (
            "token",
            "no index entry",
            Box::new(move |p| {
                let (k, _) = first(p, Space::TokenIndex);
                vec![WriteOp::Delete {
                    space: Space::TokenIndex,
                    key: k,
                }]
            }),
        ),
        (
            "token-index",
            "not stored",
            Box::new(move |p| {
                let (k, _) = first(p, Space::Token);
                vec![WriteOp::Delete {
                    space: Space::Token,
                    key: k,
                }]
            }),
        ),
        (
            "subject",
            "subject key does not authenticate",
            Box::new(move |p| {
                let (k, v) = first(p, Space::Subject);
                vec![put(Space::Subject, k, flip(&v, v.len() - 3))]
            }),
        ),
        (
            "field",
            "field definition",
            Box::new(move |p| {
                let (k, v) = first(p, Space::Field);
                vec![put(Space::Field, k, flip(&v, 20))]
            }),
        ),
        (
            "meta",
            "policy",
            Box::new(move |p| {
                let v = entries(p, Space::Meta)
                    .into_iter()
                    .find(|(k, _)| k == b"policy")
                    .expect("policy")
                    .1;
                vec![put(Space::Meta, b"policy".to_vec(), flip(&v, 20))]
            }),
        ),
        (
            "erasure",
            "erasure record",
            Box::new(move |p| {
                let (k, v) = first(p, Space::Erasure);
                vec![put(Space::Erasure, k, flip(&v, 2))]
            }),
        ),
        (
            "audit",
            "audit",
            Box::new(move |p| {
                let all = entries(p, Space::Audit);
                vec![WriteOp::Delete {
                    space: Space::Audit,
                    key: all[all.len() / 2].0.clone(),
                }]
            }),
        ),
    ];
    for (i, (space, what, inject)) in cases.iter().enumerate() {
        let copy = dir.path().join(format!("c{i}"));
        copy_dir(&good, &copy);
        let ops = inject(&copy);
        edit(&copy, ops);
        let r = verify(&copy);
        assert!(!r.ok, "case {i} ({space}: {what}) not found");
        assert!(
            r.problems
                .iter()
                .any(|p| p.space == *space && p.what.contains(what)),
            "case {i}: expected {space}: {what}, got {:?}",
            r.problems
        );
    }
}

// ---- salvage ------------------------------------------------------------------------------

fn big_vault(path: &Path, n: usize, batches: usize) {
    let v = Vault::create(path, &key_file()).expect("create");
    let per = n / batches;
    for b in 0..batches {
        let ids: Vec<String> = (b * per..(b + 1) * per).map(|i| format!("r{i}")).collect();
        let vals: Vec<Vec<u8>> = (b * per..(b + 1) * per).map(value).collect();
        let items: Vec<(&str, &[u8])> = ids
            .iter()
            .zip(&vals)
            .map(|(i, v)| (i.as_str(), v.as_slice()))
            .collect();
        v.owner()
            .put_many("notes", &items, &Default::default())
            .expect("put_many");
    }
}

/// Entry-level damage in a vault of 20k records: every record outside the damaged entries is
/// salvaged and reads back exactly; the damaged ones are reported, not copied.
#[test]
fn salvage_recovers_every_record_outside_the_damage() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("src");
    let n = 20_000;
    big_vault(&src, n, 4);
    let records = entries(&src, Space::Record);
    let damaged: Vec<Vec<u8>> = records
        .iter()
        .step_by(500)
        .map(|(k, _)| k.clone())
        .collect();
    edit(
        &src,
        records
            .iter()
            .step_by(500)
            .map(|(k, v)| WriteOp::Put {
                space: Space::Record,
                key: k.clone(),
                value: flip(v, 45),
            })
            .collect(),
    );
    let before = std::fs::read(src.join("store.anchor")).expect("anchor");
    let to = dir.path().join("salvaged");
    let report = phivault::integrity::salvage(&src, &to, &key_file()).expect("salvage");
    assert_eq!(
        std::fs::read(src.join("store.anchor")).expect("anchor"),
        before,
        "source untouched"
    );
    let rec = report
        .spaces
        .iter()
        .find(|s| s.space == "record")
        .expect("record");
    assert_eq!(rec.entries, n as u64);
    assert_eq!(rec.bad, damaged.len() as u64);
    assert_eq!(report.commits_lost, Some(0));
    let v = Vault::open(&to, &key_file()).expect("open salvaged");
    let after = v.verify().expect("verify");
    assert!(after.ok, "{:?}", after.problems);
    let mut lost = 0;
    for i in 0..n {
        match v.owner().get("notes", &format!("r{i}")).expect("get") {
            Some(got) => assert_eq!(*got, value(i), "r{i}"),
            None => lost += 1,
        }
    }
    assert_eq!(lost, damaged.len());
}

/// File-level damage: bits flipped in the log of a 20k-record vault, one place per trial
/// (seeded). sled's own recovery cuts the log at the first damaged message; salvage steps over
/// the damaged messages it can do without and reads what follows. Every trial: the source is
/// never written and still refuses to open; salvage either fails with a typed error or
/// yields a vault whose every record reads back exactly, and loses no more than the records
/// of the damaged page (at most one leaf, here under 100 records) — unless it reports lost
/// commits, the damage sled cannot step over (the only state of a page).
#[test]
fn salvage_reads_past_damaged_log_messages() {
    let trials: usize = std::env::var("PV_SALVAGE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let seed = seed();
    println!("salvage_log: seed {seed} (replay with PV_INTEGRITY_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("src");
    let n = 20_000;
    big_vault(&src, n, 20);
    let bytes = std::fs::read(src.join("store").join("db")).expect("db");
    let (mut whole, mut stepped, mut cut, mut refused) = (0, 0, 0, 0);
    for t in 0..trials {
        let damaged = dir.path().join(format!("d{t}"));
        copy_dir(&src, &damaged);
        let mut b = bytes.clone();
        let at = rng.below(b.len() as u64) as usize;
        b[at] ^= 1 << rng.below(8);
        std::fs::write(damaged.join("store").join("db"), &b).expect("write");
        let anchor = std::fs::read(damaged.join("store.anchor")).expect("anchor");
        // Opening the damaged vault: a typed refusal, or every record exactly (no panic).
        let mut tally = Tally::default();
        trial(&damaged, n, &mut tally);
        assert_eq!(
            (tally.panics, tally.wrong, tally.absent, tally.read_errors),
            (0, 0, 0, 0),
            "trial {t} (seed {seed}): {tally:?}"
        );
        let to = dir.path().join(format!("s{t}"));
        let report = match phivault::integrity::salvage(&damaged, &to, &key_file()) {
            Ok(r) => r,
            Err(e) => {
                assert!(
                    matches!(e, Error::StoreCorrupted { .. } | Error::Store(_)),
                    "trial {t} (seed {seed}): {e:?}"
                );
                println!("salvage_log: trial {t} refused: {e}");
                refused += 1;
                continue;
            }
        };
        assert_eq!(
            std::fs::read(damaged.join("store.anchor")).expect("anchor"),
            anchor,
            "trial {t}: source untouched"
        );
        let v = Vault::open(&to, &key_file()).expect("open salvaged");
        assert!(v.verify().expect("verify").ok, "trial {t}");
        let mut present = 0;
        for i in 0..n {
            if let Some(got) = v.owner().get("notes", &format!("r{i}")).expect("get") {
                assert_eq!(*got, value(i), "trial {t} (seed {seed}): r{i}");
                present += 1;
            }
        }
        let rec = report
            .spaces
            .iter()
            .find(|s| s.space == "record")
            .expect("record");
        assert_eq!(present as u64, rec.ok, "trial {t}");
        let lost = n - present;
        match report.commits_lost {
            Some(0) => {
                assert!(lost < 100, "trial {t} (seed {seed}): {lost} records lost");
                if report.log_stretches_skipped > 0 {
                    stepped += 1;
                } else {
                    whole += 1;
                }
            }
            Some(c) => {
                // Each commit of this vault wrote 1000 records.
                assert!(
                    lost as u64 <= c * 1000 + 100,
                    "trial {t}: {lost} lost, {c} commits"
                );
                cut += 1;
            }
            None => panic!("trial {t}: the anchor file is intact, its counter known"),
        }
    }
    println!(
        "salvage_log: {trials} trials: {whole} untouched data, {stepped} stepped over, \
         {cut} cut short (commits lost, reported), {refused} refused"
    );
}

/// The capability itself: one flipped bit in the body of a page fragment in the middle of the
/// log of a 20k-record vault. The store's own recovery stops reading that log segment there
/// (the vault refuses to open when that lost commits, or opens with every record exact);
/// salvage steps over the one message and recovers every record outside it.
///
/// About one flip in twenty lands where sled's recovery cannot rebuild its page table even
/// with the message stepped over or the log ended there (issue 17's note; the seeded trials
/// above count them). So the test takes the first three such fragments: each must be either
/// stepped over with every record outside it exact, or refused cleanly as a damaged store —
/// never a panic, never a wrong value — and at least one must be stepped over.
#[test]
fn salvage_steps_over_one_damaged_message() {
    const FRAGMENT: u8 = 10;
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("src");
    let n = 20_000;
    big_vault(&src, n, 20);
    let messages = phivault::store::sled_repair::messages(&src.join("store")).expect("log");
    let middle = &messages[messages.len() / 3..2 * messages.len() / 3];
    let fragments: Vec<_> = middle
        .iter()
        .filter(|m| m.kind == FRAGMENT && m.len > 64)
        .take(3)
        .collect();
    assert!(
        !fragments.is_empty(),
        "no fragment in the middle of the log"
    );
    let bytes = std::fs::read(src.join("store").join("db")).expect("db");
    let (mut stepped, mut refused) = (0, 0);
    for (k, m) in fragments.iter().enumerate() {
        let damaged = dir.path().join(format!("d-{k}"));
        copy_dir(&src, &damaged);
        let mut b = bytes.clone();
        b[m.offset + m.len - 16] ^= 0x20;
        std::fs::write(damaged.join("store").join("db"), &b).expect("write");
        let mut tally = Tally::default();
        trial(&damaged, n, &mut tally);
        assert_eq!(
            (tally.panics, tally.wrong, tally.absent, tally.read_errors),
            (0, 0, 0, 0),
            "{m:?}: refused, or read exactly: {tally:?}"
        );
        let to = dir.path().join(format!("s-{k}"));
        let report = match phivault::integrity::salvage(&damaged, &to, &key_file()) {
            Ok(r) => r,
            Err(e @ (Error::StoreCorrupted { .. } | Error::Store(_))) => {
                println!("{m:?}: salvage refused cleanly: {e}");
                refused += 1;
                continue;
            }
            Err(e) => panic!("{m:?}: {e}"),
        };
        assert!(report.log_stretches_skipped >= 1, "{m:?}: {report:?}");
        assert_eq!(report.commits_lost, Some(0), "{m:?}: {report:?}");
        let v = Vault::open(&to, &key_file()).expect("open salvaged");
        let mut present = 0;
        for i in 0..n {
            if let Some(got) = v.owner().get("notes", &format!("r{i}")).expect("get") {
                assert_eq!(*got, value(i), "{m:?}: r{i}");
                present += 1;
            }
        }
        assert!(n - present <= 1, "{m:?}: {} records lost", n - present);
        stepped += 1;
    }
    println!("salvage_steps_over: {stepped} stepped over, {refused} refused cleanly");
    assert!(
        stepped >= 1,
        "no fragment was stepped over ({refused} refused)"
    );
}
