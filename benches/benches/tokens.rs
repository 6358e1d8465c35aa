#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Tokenize and detokenize for each token kind, single calls and batches of 10k, next to the
//! reference each kind is scored against:
//!
//! - vaulted (preset `mrn`: consistent, same-shape alphanumeric, new values each time,
//!   durable): raw sled inserts of the same number of entries, value length as phivault's
//!   stored token, one flush per call; detokenize against raw sled point reads;
//! - FF1 (preset `ssn`, 9 digits): the `fpe` crate's FF1 with AES-256 run directly, same key
//!   schedule reuse, same tweak;
//! - pseudonyms (preset `pseudonym`) and date shift (preset `dob`, which is tied to a subject,
//!   so single calls only: the batch calls take no subject): no peer, absolute.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fpe::ff1::{FF1, FlexibleNumeralString};
use phivault::tokens::mask::View;
use phivault_benches::{BATCH, default_vault};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn raw_sled(dir: &std::path::Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(500))
        .open()
        .expect("sled")
}

fn raw_key(n: u64) -> [u8; 33] {
    let mut k = [0x74u8; 33];
    k[1..9].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[9..17].copy_from_slice(&n.to_be_bytes());
    k
}

fn mrn(n: u64) -> String {
    format!("M{n:09}")
}

fn ssn(n: u64) -> String {
    format!("{:09}", n % 1_000_000_000)
}

fn digits(s: &str) -> Vec<u16> {
    s.bytes().map(|b| u16::from(b - b'0')).collect()
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut vault = default_vault(&tmp.path().join("vault"));
    let db = raw_sled(&tmp.path().join("sled"));
    // Stored vaulted token: format byte and an envelope of the value bound to field and token.
    let sample = vault.owner().tokenize("mrn", &mrn(0)).expect("tokenize");
    let value_len = 1 + vault
        .owner()
        .encrypt(
            mrn(0).as_bytes(),
            &phivault::Context::new()
                .with("field", "mrn")
                .with("token", sample.as_str()),
        )
        .expect("encrypt")
        .len();
    let raw_value = vec![0x5au8; value_len];
    let ff1 = FF1::<aes::Aes256>::new(&[3u8; 32], 10).expect("ff1");
    let mut counter = 1u64;
    let mut next = move || {
        counter += 1;
        counter
    };

    // ---- tokenize, single calls ----------------------------------------------------------
    let mut g = c.benchmark_group("tokenize-single");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("vaulted-mrn-durable"), |b| {
        b.iter(|| black_box(vault.owner().tokenize("mrn", &mrn(next())).expect("tok")))
    });
    let mut r = 0u64;
    g.bench_function(BenchmarkId::from_parameter("raw-sled-insert+flush"), |b| {
        b.iter(|| {
            r += 1;
            db.insert(raw_key(r), raw_value.as_slice()).expect("insert");
            db.flush().expect("flush")
        })
    });
    g.bench_function(BenchmarkId::from_parameter("ff1-ssn"), |b| {
        b.iter(|| black_box(vault.owner().tokenize("ssn", &ssn(next())).expect("tok")))
    });
    g.bench_function(BenchmarkId::from_parameter("fpe-crate-ff1-direct"), |b| {
        b.iter(|| {
            let ns = FlexibleNumeralString::from(digits(&ssn(next())));
            black_box(ff1.encrypt(b"ssn", &ns).expect("ff1"))
        })
    });
    g.bench_function(BenchmarkId::from_parameter("pseudonym"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .tokenize("pseudonym", &format!("patient-{}", next()))
                    .expect("psn"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("date-shift"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .tokenize_for_subject("dob", "1980-03-15", "patient-1")
                    .expect("shift"),
            )
        })
    });
    g.finish();

    // ---- tokenize, batches of 10k --------------------------------------------------------
    let mut g = c.benchmark_group("tokenize-batch10k");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    let batch_of = |next: &mut dyn FnMut() -> u64, f: fn(u64) -> String| -> Vec<String> {
        (0..BATCH).map(|_| f(next())).collect()
    };
    g.bench_function(BenchmarkId::from_parameter("vaulted-mrn-durable"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let values = batch_of(&mut next, mrn);
                let t = Instant::now();
                black_box(vault.owner().tokenize_many("mrn", &values).expect("tok"));
                total += t.elapsed();
            }
            total
        })
    });
    let mut rb = 1u64 << 40;
    g.bench_function(BenchmarkId::from_parameter("raw-sled-batch+flush"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let keys: Vec<[u8; 33]> = (0..BATCH as u64).map(|i| raw_key(rb + i)).collect();
                rb += BATCH as u64;
                let t = Instant::now();
                let mut batch = sled::Batch::default();
                for k in keys {
                    batch.insert(&k[..], raw_value.as_slice());
                }
                db.apply_batch(batch).expect("batch");
                db.flush().expect("flush");
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::from_parameter("ff1-ssn"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let values = batch_of(&mut next, ssn);
                let t = Instant::now();
                black_box(vault.owner().tokenize_many("ssn", &values).expect("tok"));
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::from_parameter("fpe-crate-ff1-direct"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let values = batch_of(&mut next, ssn);
                let t = Instant::now();
                for v in &values {
                    let ns = FlexibleNumeralString::from(digits(v));
                    black_box(ff1.encrypt(b"ssn", &ns).expect("ff1"));
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function(BenchmarkId::from_parameter("pseudonym"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let values = batch_of(&mut next, |n| format!("patient-{n}"));
                let t = Instant::now();
                black_box(
                    vault
                        .owner()
                        .tokenize_many("pseudonym", &values)
                        .expect("psn"),
                );
                total += t.elapsed();
            }
            total
        })
    });
    // The same batches on the vault's pool (`VaultOptions::threads(2)`): one call, two cores.
    vault.set_threads(2).expect("pool");
    for (name, field, make) in [
        (
            "vaulted-mrn-durable-2threads",
            "mrn",
            mrn as fn(u64) -> String,
        ),
        ("ff1-ssn-2threads", "ssn", ssn),
        ("pseudonym-2threads", "pseudonym", |n| {
            format!("patient-{n}")
        }),
    ] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let values = batch_of(&mut next, make);
                    let t = Instant::now();
                    black_box(vault.owner().tokenize_many(field, &values).expect("tok"));
                    total += t.elapsed();
                }
                total
            })
        });
    }
    vault.set_threads(1).expect("serial");
    g.finish();

    // ---- detokenize ------------------------------------------------------------------------
    let plain_mrns: Vec<String> = (0..BATCH as u64).map(|i| mrn((1 << 50) + i)).collect();
    let mrn_tokens = vault
        .owner()
        .tokenize_many("mrn", &plain_mrns)
        .expect("tok");
    let plain_ssns: Vec<String> = (0..BATCH as u64).map(|i| ssn(123_000_000 + i)).collect();
    let ssn_tokens = vault
        .owner()
        .tokenize_many("ssn", &plain_ssns)
        .expect("tok");
    let date_token = vault
        .owner()
        .tokenize_for_subject("dob", "1980-03-15", "patient-1")
        .expect("tok");
    let mut batch = sled::Batch::default();
    for i in 0..BATCH as u64 {
        batch.insert(&raw_key(u64::MAX - i)[..], raw_value.as_slice());
    }
    db.apply_batch(batch).expect("batch");
    db.flush().expect("flush");
    let ff1_ct: Vec<FlexibleNumeralString> = plain_ssns
        .iter()
        .map(|v| {
            ff1.encrypt(b"ssn", &FlexibleNumeralString::from(digits(v)))
                .expect("ff1")
        })
        .collect();

    let mut g = c.benchmark_group("detokenize-single");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut step = move || {
        i = (i + 1) % BATCH;
        i
    };
    g.bench_function(BenchmarkId::from_parameter("vaulted-mrn"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize("mrn", &mrn_tokens[step()], View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("raw-sled-get"), |b| {
        b.iter(|| {
            black_box(
                db.get(raw_key(u64::MAX - step() as u64))
                    .expect("get")
                    .expect("present"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("ff1-ssn"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize("ssn", &ssn_tokens[step()], View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("fpe-crate-ff1-direct"), |b| {
        b.iter(|| black_box(ff1.decrypt(b"ssn", &ff1_ct[step()]).expect("ff1")))
    });
    g.bench_function(BenchmarkId::from_parameter("date-shift"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize_for_subject("dob", &date_token, "patient-1", View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    // Auditing off for allowed reads (`set_read_auditing(false)`), same calls.
    vault.set_read_auditing(false).expect("audit off");
    g.bench_function(BenchmarkId::from_parameter("vaulted-mrn-unaudited"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize("mrn", &mrn_tokens[step()], View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("ff1-ssn-unaudited"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize("ssn", &ssn_tokens[step()], View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    vault.set_read_auditing(true).expect("audit on");
    g.finish();

    let mut g = c.benchmark_group("detokenize-batch10k");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::from_parameter("vaulted-mrn"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize_many("mrn", &mrn_tokens, View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("raw-sled-get"), |b| {
        b.iter(|| {
            for i in 0..BATCH as u64 {
                black_box(
                    db.get(raw_key(u64::MAX - i))
                        .expect("get")
                        .expect("present"),
                );
            }
        })
    });
    g.bench_function(BenchmarkId::from_parameter("ff1-ssn"), |b| {
        b.iter(|| {
            black_box(
                vault
                    .owner()
                    .detokenize_many("ssn", &ssn_tokens, View::Plaintext)
                    .expect("detok"),
            )
        })
    });
    g.bench_function(BenchmarkId::from_parameter("fpe-crate-ff1-direct"), |b| {
        b.iter(|| {
            for ct in &ff1_ct {
                black_box(ff1.decrypt(b"ssn", ct).expect("ff1"));
            }
        })
    });
    vault.set_threads(2).expect("pool");
    for (name, field, tokens) in [
        ("vaulted-mrn-2threads", "mrn", &mrn_tokens),
        ("ff1-ssn-2threads", "ssn", &ssn_tokens),
    ] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                black_box(
                    vault
                        .owner()
                        .detokenize_many(field, tokens, View::Plaintext)
                        .expect("detok"),
                )
            })
        });
    }
    vault.set_threads(1).expect("serial");
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = tokens;
    config = config();
    targets = benches
}
criterion_main!(tokens);
