//! `pvbench`: the figures criterion is a poor fit for, printed as one JSON object per line.
//!
//! ```text
//! pvbench load DIR N        create a vault in DIR and store N 64-byte records (10k batches)
//! pvbench rewrap DIR        rotate `default` and rewrap every record: records/s, peak RSS
//! pvbench open              vault open time per Argon2id setting (and with a key file)
//! pvbench disk N            bytes on disk per record and per token, next to raw sled
//! pvbench threads           1 vs 2 threads on the batch calls and the envelope
//! pvbench seal64 N          N envelope::seal of 64 bytes (a loop to profile)
//! pvbench vault64 N         N owner-session encrypts of 64 bytes (policy + audit entry each)
//! pvbench sealmany64 N      N envelopes of 64 bytes by envelope::seal_many (1000 a call),
//!                           per backend
//! pvbench afterwrites N [vault]
//!                           pseudonym batches before and after N raw sled batches + flush
//!                           (with `vault`: N batches of new vaulted tokens in the vault)
//! ```
//!
//! Peak memory is `VmHWM` from `/proc/self/status`: `load` and `rewrap` are separate processes
//! so the rewrap's peak is its own.

use phivault::envelope::{self, Kek};
use phivault::records::PutOptions;
use phivault::root::{Argon2Config, KeyFile, Passphrase};
use phivault::store::Durability;
use phivault::tokens::View;
use phivault::{Backend, Context, EncryptOptions, Key32, Vault, VaultOptions};
use phivault_benches::{BATCH, default_vault, dir_bytes, new_vault, payload, proc_status_kib};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2)) {
        (Some("load"), Some(dir), Some(n)) => load(Path::new(dir), n.parse().expect("N")),
        (Some("rewrap"), Some(dir), None) => rewrap(Path::new(dir)),
        (Some("verify"), Some(dir), None) => verify(Path::new(dir)),
        (Some("open"), None, None) => open_times(),
        (Some("disk"), Some(n), None) => disk(n.parse().expect("N")),
        (Some("threads"), None, None) => threads(),
        (Some("sledcas"), Some(n), None) => sled_cas(n.parse().expect("N")),
        (Some("seal64"), Some(n), None) => seal64(n.parse().expect("N"), false),
        (Some("vault64"), Some(n), None) => seal64(n.parse().expect("N"), true),
        (Some("afterwrites"), Some(n), None) => after_writes(n.parse().expect("N"), false),
        (Some("afterwrites"), Some(n), Some("vault")) => after_writes(n.parse().expect("N"), true),
        (Some("sealmany64"), Some(n), None) => seal_many64(n.parse().expect("N")),
        _ => {
            eprintln!(
                "usage: pvbench load DIR N | rewrap DIR | verify DIR | open | disk N | threads | seal64 N"
            );
            std::process::exit(2);
        }
    }
}

/// The key file the `load`d vault is opened with again by `rewrap`.
fn key_path(dir: &Path) -> std::path::PathBuf {
    dir.with_extension("key")
}

fn load(dir: &Path, n: usize) {
    // PV_LOAD_START=S: append records S..S+N to the vault made by an earlier `load` (a large
    // vault is loaded by several processes: sled's memory grows with random-key bulk inserts).
    let start: usize = std::env::var("PV_LOAD_START")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let vault = if start > 0 {
        let key = std::fs::read(key_path(dir)).expect("key");
        Vault::open(dir, &KeyFile::from_bytes(&key).expect("key file")).expect("open")
    } else {
        let key = Key32::random().expect("rng");
        std::fs::write(key_path(dir), key.expose()).expect("write key");
        Vault::create(dir, &KeyFile::from_key(key)).expect("create")
    };
    let pt = payload(64);
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let m = BATCH.min(n - done);
        let ids: Vec<String> = (start + done..start + done + m)
            .map(|i| format!("MRN-{i:09}"))
            .collect();
        let items: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), pt.as_slice())).collect();
        vault
            .owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
        done += m;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(vault);
    println!(
        "{}",
        json!({
            "bench": "load", "records": n, "secs": secs,
            "records_per_s": n as f64 / secs,
            "peak_rss_kib": proc_status_kib("VmHWM"),
            "disk_bytes": dir_bytes(dir),
        })
    );
}

fn rewrap(dir: &Path) {
    let key = std::fs::read(key_path(dir)).expect("key");
    let root = KeyFile::from_bytes(&key).expect("key file");
    // PV_THREADS: the vault's batch pool (`VaultOptions::threads`); 1 (serial) by default.
    let threads: usize = std::env::var("PV_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let vault = Vault::open_with(dir, &root, VaultOptions::new().threads(threads)).expect("open");
    vault.rotate("default").expect("rotate");
    let rss_before = proc_status_kib("VmHWM");
    let t = Instant::now();
    let report = vault
        .rewrap(&Default::default(), &mut |_| {})
        .expect("rewrap");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "rewrap", "threads": vault.threads(),
            "rewrapped": report.rewrapped, "scanned": report.scanned,
            "secs": secs, "records_per_s": report.rewrapped as f64 / secs,
            "peak_rss_kib_before": rss_before,
            "peak_rss_kib": proc_status_kib("VmHWM"),
        })
    );
}

/// `Vault::verify` of a vault made by `load`, against the reference of the same run: a raw
/// scan of every entry of the same sled store (what any verify must at least read).
fn verify(dir: &Path) {
    let key = std::fs::read(key_path(dir)).expect("key");
    let root = KeyFile::from_bytes(&key).expect("key file");
    let raw_secs = {
        let db = sled::open(dir.join("store")).expect("sled");
        let t = Instant::now();
        let n = db.iter().filter(|e| e.is_ok()).count();
        assert!(n > 0);
        t.elapsed().as_secs_f64()
    };
    // The log check every open runs (store::sled_repair::damaged_messages), against reading
    // the log file alone.
    let store = dir.join("store");
    let t = Instant::now();
    let log_bytes = std::fs::read(store.join("db")).expect("db").len();
    let read_log_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let damaged = phivault::store::sled_repair::damaged_messages(&store).expect("log check");
    let log_check_secs = t.elapsed().as_secs_f64();
    assert_eq!(damaged, 0);
    let t = Instant::now();
    let vault = Vault::open(dir, &root).expect("open");
    let open_secs = t.elapsed().as_secs_f64();
    let rss_before = proc_status_kib("VmHWM");
    let t = Instant::now();
    let report = vault.verify().expect("verify");
    let secs = t.elapsed().as_secs_f64();
    assert!(report.ok, "{:?}", report.problems);
    println!(
        "{}",
        json!({
            "bench": "verify", "entries": report.entries, "secs": secs,
            "entries_per_s": report.entries as f64 / secs,
            "raw_sled_scan_secs": raw_secs,
            "ratio_to_raw_scan": secs / raw_secs,
            "log_bytes": log_bytes, "read_log_secs": read_log_secs,
            "log_check_secs": log_check_secs, "open_secs": open_secs,
            "peak_rss_kib_before": rss_before,
            "peak_rss_kib": proc_status_kib("VmHWM"),
        })
    );
}

fn open_times() {
    let tmp = tempfile::tempdir().expect("tmp");
    let settings: [(&str, Option<Argon2Config>); 5] = [
        ("key-file", None),
        (
            "argon2id m=8MiB t=1 p=1 (testing)",
            Some(Argon2Config::testing()),
        ),
        (
            "argon2id m=64MiB t=3 p=1",
            Some(Argon2Config {
                m_kib: 64 * 1024,
                t: 3,
                p: 1,
            }),
        ),
        (
            "argon2id m=64MiB t=3 p=4 (default)",
            Some(Argon2Config::default()),
        ),
        (
            "argon2id m=256MiB t=3 p=4",
            Some(Argon2Config {
                m_kib: 256 * 1024,
                t: 3,
                p: 4,
            }),
        ),
    ];
    for (i, (name, cfg)) in settings.iter().enumerate() {
        let dir = tmp.path().join(format!("v{i}"));
        let times: Vec<f64> = match cfg {
            None => {
                let root = KeyFile::from_key(Key32::random().expect("rng"));
                drop(Vault::create(&dir, &root).expect("create"));
                (0..5)
                    .map(|_| {
                        let t = Instant::now();
                        drop(Vault::open(&dir, &root).expect("open"));
                        t.elapsed().as_secs_f64()
                    })
                    .collect()
            }
            Some(cfg) => {
                let root = Passphrase::new("correct horse battery staple").with_config(*cfg);
                drop(Vault::create(&dir, &root).expect("create"));
                (0..3)
                    .map(|_| {
                        let t = Instant::now();
                        drop(Vault::open(&dir, &root).expect("open"));
                        t.elapsed().as_secs_f64()
                    })
                    .collect()
            }
        };
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({"bench": "open", "setting": name, "median_ms": sorted[sorted.len() / 2] * 1e3,
                   "runs_ms": times.iter().map(|t| t * 1e3).collect::<Vec<_>>()})
        );
    }
}

/// The ceiling of an in-place rewrap on sled: N entries shaped like phivault records (49-byte
/// keys, 252-byte values) stored in 10k batches, then every one replaced by a compare-and-swap
/// in key order, pages of 1000 with a flush each (what rewrap does, minus the crypto).
fn sled_cas(n: usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = raw_sled(&tmp.path().join("sled"));
    let key = |i: usize| {
        let mut k = [0u8; 49];
        k[..8].copy_from_slice(&(i as u64).to_be_bytes());
        k
    };
    let old = vec![1u8; 252];
    let new = vec![2u8; 252];
    for start in (0..n).step_by(BATCH) {
        let mut b = sled::Batch::default();
        for i in start..(start + BATCH).min(n) {
            b.insert(&key(i)[..], old.as_slice());
        }
        db.apply_batch(b).expect("batch");
    }
    db.flush().expect("flush");
    let t = Instant::now();
    for i in 0..n {
        db.compare_and_swap(key(i), Some(old.as_slice()), Some(new.as_slice()))
            .expect("cas")
            .expect("swapped");
        if i % 1000 == 999 {
            db.flush().expect("flush");
        }
    }
    db.flush().expect("flush");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"bench": "sledcas", "records": n, "secs": secs, "per_s": n as f64 / secs})
    );
}

fn raw_sled(dir: &Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(500))
        .open()
        .expect("sled")
}

fn disk(n: usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    let pt = payload(64);
    let ids: Vec<String> = (0..n).map(|i| format!("MRN-{i:09}")).collect();

    // Records.
    let vdir = tmp.path().join("records");
    let vault = default_vault(&vdir);
    let empty = dir_bytes(&vdir);
    let stored_value_len = 1 + vault
        .owner()
        .encrypt(&pt, &Context::new().with("a", "b"))
        .expect("encrypt")
        .len();
    for chunk in ids.chunks(BATCH) {
        let items: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|id| (id.as_str(), pt.as_slice()))
            .collect();
        vault
            .owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
    }
    drop(vault);
    let records = dir_bytes(&vdir) - empty;
    // The same entries in raw sled: key = space + collection tag + id MAC, value = record.
    let sdir = tmp.path().join("sled");
    let db = raw_sled(&sdir);
    let raw_empty = dir_bytes(&sdir);
    for (c, chunk) in ids.chunks(BATCH).enumerate() {
        let mut batch = sled::Batch::default();
        for i in 0..chunk.len() {
            let mut k = vec![0x72u8; 49];
            k[1..9].copy_from_slice(
                &((c * BATCH + i) as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .to_be_bytes(),
            );
            batch.insert(k, vec![0x5au8; stored_value_len]);
        }
        db.apply_batch(batch).expect("batch");
        db.flush().expect("flush");
    }
    drop(db);
    let raw = dir_bytes(&sdir) - raw_empty;
    let plain = (n * (ids[0].len() + pt.len())) as f64;
    println!(
        "{}",
        json!({
            "bench": "disk-records", "records": n, "payload": pt.len(), "id_len": ids[0].len(),
            "bytes_per_record": records as f64 / n as f64,
            "entry_bytes": 49 + stored_value_len,
            "raw_sled_bytes_per_record": raw as f64 / n as f64,
            "vs_plaintext": records as f64 / plain,
            "vs_raw_sled": records as f64 / raw as f64,
        })
    );

    // Vaulted tokens (consistent: a token entry and an index entry per value).
    let tdir = tmp.path().join("tokens");
    let vault = default_vault(&tdir);
    let values: Vec<String> = (0..n).map(|i| format!("M{i:09}")).collect();
    vault
        .owner()
        .tokenize("mrn", "M999999999")
        .expect("warm up");
    let empty = dir_bytes(&tdir);
    for chunk in values.chunks(BATCH) {
        vault.owner().tokenize_many("mrn", chunk).expect("tokenize");
    }
    drop(vault);
    let tokens = dir_bytes(&tdir) - empty;
    println!(
        "{}",
        json!({
            "bench": "disk-tokens", "tokens": n, "value_len": values[0].len(),
            "bytes_per_token": tokens as f64 / n as f64,
            "vs_plaintext": tokens as f64 / (n * values[0].len()) as f64,
        })
    );
}

/// Runs `work` on `threads` threads at once, `rounds` times each; returns items per second
/// over the whole run (each call of `work` does `items` items).
fn rate(threads: usize, rounds: usize, items: usize, work: &(dyn Fn(usize, usize) + Sync)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                for r in 0..rounds {
                    work(th, r);
                }
            });
        }
    });
    (threads * rounds * items) as f64 / t.elapsed().as_secs_f64()
}

fn threads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = new_vault(&tmp.path().join("v"), Durability::default());
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let pt = payload(64);
    let report = |name: &str, one: f64, two: f64| {
        println!(
            "{}",
            json!({"bench": "threads", "workload": name, "one_thread_per_s": one,
                   "two_threads_per_s": two, "speedup": two / one})
        );
    };
    // Warm up the keyrings and field caches.
    vault.owner().tokenize("mrn", "M000000000").expect("warm");
    vault.owner().tokenize("ssn", "000000000").expect("warm");

    let n = 200_000;
    let enc = |_: usize, _: usize| {
        for _ in 0..n {
            std::hint::black_box(vault.owner().encrypt(&pt, &ctx).expect("encrypt"));
        }
    };
    let best = |threads: usize, rounds: usize, items: usize, w: &(dyn Fn(usize, usize) + Sync)| {
        (0..3)
            .map(|_| rate(threads, rounds, items, w))
            .fold(0.0, f64::max)
    };
    report(
        "envelope-encrypt 64B",
        best(1, 1, n, &enc),
        best(2, 1, n, &enc),
    );

    let seq = std::sync::atomic::AtomicU64::new(0);
    let tok = |_: usize, _: usize| {
        let base = seq.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
        let values: Vec<String> = (0..BATCH as u64)
            .map(|i| format!("T{:09}", base + i))
            .collect();
        std::hint::black_box(
            vault
                .owner()
                .tokenize_many("mrn", &values)
                .expect("tokenize"),
        );
    };
    report(
        "tokenize_many vaulted 10k (durable)",
        best(1, 2, BATCH, &tok),
        best(2, 2, BATCH, &tok),
    );

    let ff1 = |_: usize, r: usize| {
        let values: Vec<String> = (0..BATCH)
            .map(|i| format!("{:09}", r * BATCH + i))
            .collect();
        std::hint::black_box(
            vault
                .owner()
                .tokenize_many("ssn", &values)
                .expect("tokenize"),
        );
    };
    report(
        "tokenize_many ff1 10k",
        best(1, 2, BATCH, &ff1),
        best(2, 2, BATCH, &ff1),
    );

    let put = |_: usize, _: usize| {
        let base = seq.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
        let ids: Vec<String> = (0..BATCH as u64)
            .map(|i| format!("P-{}", base + i))
            .collect();
        let items: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), pt.as_slice())).collect();
        vault
            .owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
    };
    report(
        "put_many 10k x 64B (durable)",
        best(1, 2, BATCH, &put),
        best(2, 2, BATCH, &put),
    );
    drop(vault);
    pool(&tmp.path().join("pool"));
}

/// One caller, one batch call at a time: the vault's pool of 2 (`VaultOptions::threads(2)`)
/// against the calling thread alone (threads 1), same vault, same batches.
fn pool(dir: &Path) {
    let mut vault = new_vault(dir, Durability::default());
    let ctx = Context::new().with("table", "notes");
    let pt = payload(64);
    let seq = std::sync::atomic::AtomicU64::new(0);
    let fresh = |prefix: &str| -> Vec<String> {
        let base = seq.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
        (0..BATCH as u64)
            .map(|i| format!("{prefix}{:09}", base + i))
            .collect()
    };
    let mrns: Vec<String> = (0..BATCH).map(|i| format!("D{i:09}")).collect();
    let mrn_tokens = vault.owner().tokenize_many("mrn", &mrns).expect("tokens");
    let ssns: Vec<String> = (0..BATCH)
        .map(|i| format!("{:09}", 100_000_000 + i))
        .collect();
    let ssn_tokens = vault.owner().tokenize_many("ssn", &ssns).expect("tokens");
    let pts: Vec<&[u8]> = (0..BATCH).map(|_| pt.as_slice()).collect();
    let envs = vault
        .owner()
        .encrypt_many(&pts, &ctx, &EncryptOptions::new())
        .expect("encrypt_many");
    type Work<'a> = Box<dyn Fn(&Vault) + Sync + 'a>;
    let workloads: Vec<(&str, Work<'_>)> = vec![
        (
            "tokenize_many ff1 10k",
            Box::new(|v: &Vault| {
                std::hint::black_box(v.owner().tokenize_many("ssn", &fresh("")).expect("ff1"));
            }),
        ),
        (
            "tokenize_many pseudonym 10k",
            Box::new(|v: &Vault| {
                std::hint::black_box(
                    v.owner()
                        .tokenize_many("pseudonym", &fresh("p"))
                        .expect("psn"),
                );
            }),
        ),
        (
            "tokenize_many vaulted 10k (durable)",
            Box::new(|v: &Vault| {
                std::hint::black_box(
                    v.owner()
                        .tokenize_many("mrn", &fresh("T"))
                        .expect("vaulted"),
                );
            }),
        ),
        (
            "detokenize_many vaulted 10k",
            Box::new(|v: &Vault| {
                std::hint::black_box(
                    v.owner()
                        .detokenize_many("mrn", &mrn_tokens, View::Plaintext)
                        .expect("detok"),
                );
            }),
        ),
        (
            "detokenize_many ff1 10k",
            Box::new(|v: &Vault| {
                std::hint::black_box(
                    v.owner()
                        .detokenize_many("ssn", &ssn_tokens, View::Plaintext)
                        .expect("detok"),
                );
            }),
        ),
        (
            "encrypt_many 10k x 64B",
            Box::new(|v: &Vault| {
                std::hint::black_box(
                    v.owner()
                        .encrypt_many(&pts, &ctx, &EncryptOptions::new())
                        .expect("enc"),
                );
            }),
        ),
        (
            "decrypt_many 10k x 64B",
            Box::new(|v: &Vault| {
                std::hint::black_box(v.owner().decrypt_many(&envs, &ctx).expect("dec"));
            }),
        ),
    ];
    let measure = |v: &Vault, w: &Work<'_>| -> f64 {
        w(v); // warm-up
        (0..3)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..3 {
                    w(v);
                }
                (3 * BATCH) as f64 / t.elapsed().as_secs_f64()
            })
            .fold(0.0, f64::max)
    };
    // Each workload on the calling thread and then on the pool, back to back: what ran before
    // (bulk durable writes) slows later CPU-bound work in the same process (benches/RESULTS.md),
    // so the two figures of a row are taken as close together as possible.
    for (name, w) in &workloads {
        vault.set_threads(1).expect("serial");
        let one = measure(&vault, w);
        vault.set_threads(2).expect("pool");
        let two = measure(&vault, w);
        println!(
            "{}",
            json!({"bench": "pool", "workload": name, "one_thread_per_s": one,
                   "pool_of_2_per_s": two, "speedup": two / one})
        );
    }
}

/// A loop of 64-byte envelope encryptions, for `perf record`: `envelope::seal` with a KEK, or
/// (`through_vault`) the audited `vault.owner().encrypt`.
fn seal64(n: u64, through_vault: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = default_vault(&tmp.path().join("v"));
    if std::env::var_os("PV_NO_READ_AUDIT").is_some() {
        vault.set_read_auditing(false).expect("audit off");
    }
    let kek = Kek::new(1, Key32::random().expect("rng"), Backend::Ring).expect("kek");
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let pt = payload(64);
    let t = Instant::now();
    for _ in 0..n {
        let pt = std::hint::black_box(&pt);
        let ct = if through_vault {
            vault.owner().encrypt(pt, &ctx)
        } else {
            envelope::seal(Backend::Ring, "default", &kek, pt, &ctx)
        };
        std::hint::black_box(ct.expect("encrypt"));
    }
    let secs = t.elapsed().as_secs_f64();
    let bench = if through_vault { "vault64" } else { "seal64" };
    println!(
        "{}",
        json!({"bench": bench, "n": n, "secs": secs, "per_s": n as f64 / secs})
    );
}

/// Pseudonym batches of 10k (the `tokens` bench's workload) timed before and after `n` raw
/// sled batches of 10k entries with a flush each (in a sled database of their own), with read
/// auditing on and off, and after the raw database is dropped: where does the same-process
/// slow-down of the CPU-bound token kinds come from?
fn after_writes(n: usize, through_vault: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = default_vault(&tmp.path().join("v"));
    let mut next = 0u64;
    let mut time = |vault: &Vault, label: &str| {
        let reps = 40;
        let mut best = f64::MAX;
        let t = Instant::now();
        for _ in 0..reps {
            let values: Vec<String> = (0..BATCH)
                .map(|_| {
                    next += 1;
                    format!("patient-{next}")
                })
                .collect();
            let t1 = Instant::now();
            std::hint::black_box(
                vault
                    .owner()
                    .tokenize_many("pseudonym", &values)
                    .expect("psn"),
            );
            best = best.min(t1.elapsed().as_secs_f64());
        }
        let mean = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{}",
            json!({"bench": "afterwrites", "phase": label,
                   "best_per_s": BATCH as f64 / best, "mean_batch_ms": mean * 1e3,
                   "threads": proc_status_kib("Threads"), "rss_kib": proc_status_kib("VmRSS")})
        );
    };
    time(&vault, "before");
    vault.set_read_auditing(false).expect("audit off");
    time(&vault, "before, read auditing off");
    vault.set_read_auditing(true).expect("audit on");
    if through_vault {
        for b in 0..n {
            let values: Vec<String> = (0..BATCH).map(|i| format!("{b:04}{i:06}")).collect();
            std::hint::black_box(
                vault
                    .owner()
                    .tokenize_many("mrn", &values)
                    .expect("vaulted"),
            );
        }
        time(&vault, "after vaulted token batches");
        vault.set_read_auditing(false).expect("audit off");
        time(&vault, "after vaulted token batches, read auditing off");
        return;
    }
    let db = sled::open(tmp.path().join("raw")).expect("sled");
    let value = payload(100);
    for b in 0..n {
        let mut batch = sled::Batch::default();
        for i in 0..BATCH as u64 {
            batch.insert(&((b as u64) << 32 | i).to_be_bytes()[..], value.as_slice());
        }
        db.apply_batch(batch).expect("batch");
        db.flush().expect("flush");
    }
    time(&vault, "after raw writes");
    vault.set_read_auditing(false).expect("audit off");
    time(&vault, "after raw writes, read auditing off");
    vault.set_read_auditing(true).expect("audit on");
    drop(db);
    time(&vault, "after the raw database is dropped");
    std::thread::sleep(std::time::Duration::from_secs(3));
    time(&vault, "3 s later");
}

/// `envelope::seal_many` of 64-byte payloads, 1000 per call, per backend: the 64 B target's
/// figure as a loop to profile.
fn seal_many64(n: usize) {
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let pt = payload(64);
    let items: Vec<(&[u8], &Context)> = (0..1000).map(|_| (pt.as_slice(), &ctx)).collect();
    for &backend in Backend::AVAILABLE {
        let kek = Kek::new(1, Key32::random().expect("rng"), backend).expect("kek");
        let t = Instant::now();
        let mut done = 0;
        while done < n {
            let out = envelope::seal_many(backend, "default", &kek, &items).expect("seal");
            done += std::hint::black_box(out).len();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"bench": "sealmany64", "backend": backend.name(), "n": done, "secs": secs,
                   "per_s": done as f64 / secs})
        );
    }
}
