#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Records `put` / `put_many` / `get` with the durability users get by default (every write
//! flushed before it returns) next to raw sled doing the same writes and reads: same number of
//! entries, same key and value lengths (the value is as long as phivault's stored record), the
//! same sled configuration phivault uses, one flush per call.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phivault::Context;
use phivault_benches::{BATCH, default_vault, payload};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Length of a record key in the store: space byte, 16-byte collection tag, 32-byte id MAC.
const KEY_LEN: usize = 1 + 16 + 32;

fn raw_sled(dir: &std::path::Path) -> sled::Db {
    // The configuration phivault's SledStore uses with the default durability.
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(500))
        .open()
        .expect("sled")
}

fn raw_key(n: u64) -> Vec<u8> {
    let mut k = vec![0x72u8; KEY_LEN];
    // Spread keys like a MAC would (ids are hashed in phivault).
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    k[1..9].copy_from_slice(&h.to_be_bytes());
    k[9..17].copy_from_slice(&n.to_be_bytes());
    k
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = default_vault(&tmp.path().join("vault"));
    let db = raw_sled(&tmp.path().join("sled"));
    let pt = payload(64);
    // A stored record is one format byte and the envelope.
    let value_len = 1 + vault
        .owner()
        .encrypt(&pt, &Context::new().with("record", "x"))
        .expect("encrypt")
        .len();
    let raw_value = vec![0x5a; value_len];

    // ---- single durable puts -------------------------------------------------------------
    let mut g = c.benchmark_group("records-put-durable/64B");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function(BenchmarkId::from_parameter("phivault-put"), |b| {
        b.iter(|| {
            n += 1;
            vault
                .owner()
                .put("notes", &format!("MRN-{n:09}"), &pt, None)
                .expect("put")
        })
    });
    let mut m = 0u64;
    g.bench_function(BenchmarkId::from_parameter("raw-sled-insert+flush"), |b| {
        b.iter(|| {
            m += 1;
            db.insert(raw_key(m), raw_value.as_slice()).expect("insert");
            db.flush().expect("flush")
        })
    });
    g.finish();

    // ---- durable batches of 10k ----------------------------------------------------------
    let mut g = c.benchmark_group("records-put-batch10k/64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    let mut base = 1_000_000u64;
    g.bench_function(BenchmarkId::from_parameter("phivault-put_many"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ids: Vec<String> = (0..BATCH as u64)
                    .map(|i| format!("MRN-{:09}", base + i))
                    .collect();
                base += BATCH as u64;
                let items: Vec<(&str, &[u8])> =
                    ids.iter().map(|id| (id.as_str(), pt.as_slice())).collect();
                let t = Instant::now();
                vault
                    .owner()
                    .put_many("notes", &items, &Default::default())
                    .expect("put_many");
                total += t.elapsed();
            }
            total
        })
    });
    let mut rbase = 1_000_000u64;
    g.bench_function(BenchmarkId::from_parameter("raw-sled-batch+flush"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let keys: Vec<Vec<u8>> = (0..BATCH as u64).map(|i| raw_key(rbase + i)).collect();
                rbase += BATCH as u64;
                let t = Instant::now();
                let mut batch = sled::Batch::default();
                for k in keys {
                    batch.insert(k, raw_value.as_slice());
                }
                db.apply_batch(batch).expect("batch");
                db.flush().expect("flush");
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    // ---- point reads -----------------------------------------------------------------------
    // Reads hit 1000 entries written here (the puts above may be filtered out).
    let ids: Vec<String> = (1..=1000u64).map(|i| format!("GET-{i:09}")).collect();
    let items: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), pt.as_slice())).collect();
    vault
        .owner()
        .put_many("notes", &items, &Default::default())
        .expect("put_many");
    let mut batch = sled::Batch::default();
    for i in 1..=1000u64 {
        batch.insert(raw_key(u64::MAX - i), raw_value.as_slice());
    }
    db.apply_batch(batch).expect("batch");
    db.flush().expect("flush");
    let mut g = c.benchmark_group("records-get/64B");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function(BenchmarkId::from_parameter("phivault-get"), |b| {
        b.iter(|| {
            i = i % 1000 + 1;
            black_box(
                vault
                    .owner()
                    .get("notes", &ids[(i - 1) as usize])
                    .expect("get")
                    .expect("present"),
            )
        })
    });
    let mut j = 0u64;
    g.bench_function(BenchmarkId::from_parameter("raw-sled-get"), |b| {
        b.iter(|| {
            j = j % 1000 + 1;
            black_box(
                db.get(raw_key(u64::MAX - j))
                    .expect("get")
                    .expect("present"),
            )
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = records;
    config = config();
    targets = benches
}
criterion_main!(records);
