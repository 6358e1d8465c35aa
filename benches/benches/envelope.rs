#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Envelope encrypt and decrypt (fresh data key per value, key commitment, context binding)
//! next to raw AES-256-GCM on the same bytes from ring, RustCrypto aes-gcm and aws-lc-rs.
//!
//! The raw figures encrypt in place under one expanded key with a counter nonce: that is the
//! limit. `phivault-ring` / `phivault-rustcrypto` are the envelope itself through the public
//! `envelope::seal` / `envelope::open` with a KEK (a fresh DEK, HKDF, the DEK wrap, the
//! commitment, the payload AEAD, the output allocation): the score. `phivault-*-into` are
//! `envelope::seal_into` / `envelope::open_into`, which write into a caller's buffer reused
//! from call to call (and, with AWS-LC, encrypt and decrypt out of place, with no copy). `vault-audited` is the
//! `vault.owner().encrypt` / `.decrypt` API as shipped, which adds the keyring lookup, the policy
//! decision and one audit-log entry per call (the Vault API has no switch to turn auditing
//! off, so "audit off" is the envelope figure). Groups are `envelope-encrypt/<size>` and
//! `envelope-decrypt/<size>`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phivault::envelope::{self, Envelope, Kek};
use phivault::{Backend, Context, EncryptOptions, Key32, Vault, VaultOptions, root::KeyFile};
use phivault_benches::{ENVELOPE_SIZES, RawAead, counter_nonce, payload};
use std::hint::black_box;
use std::time::Duration;

fn vault(dir: &std::path::Path, backend: Backend) -> Vault {
    let root = KeyFile::from_key(Key32::random().expect("rng"));
    Vault::create_with(dir, &root, VaultOptions::new().backend(backend)).expect("vault")
}

fn label(len: usize) -> String {
    match len {
        l if l >= 1 << 20 => format!("{}MiB", l >> 20),
        l if l >= 1 << 10 => format!("{}KiB", l >> 10),
        l => format!("{l}B"),
    }
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    // The same Vault API with the logging of allowed reads off (`set_read_auditing(false)`):
    // policy decisions stay; writes, admin and denials are still logged.
    let unaudited = vault(&tmp.path().join("unaudited"), Backend::Ring);
    unaudited.set_read_auditing(false).expect("audit switch");
    let vault = vault(&tmp.path().join("ring"), Backend::Ring);
    let keks = [
        ("phivault-ring", Backend::Ring),
        ("phivault-rustcrypto", Backend::RustCrypto),
        ("phivault-aws-lc", Backend::AwsLc),
    ]
    .map(|(name, backend)| {
        let kek = Kek::new(1, Key32::random().expect("rng"), backend).expect("kek");
        (name, backend, kek)
    });
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let raws = RawAead::all(&[7u8; 32]);
    // The AAD the raw figures authenticate: about what an envelope authenticates.
    let aad = [0u8; 64];

    for len in ENVELOPE_SIZES {
        let pt = payload(len);
        let mut g = c.benchmark_group(format!("envelope-encrypt/{}", label(len)));
        g.throughput(Throughput::Bytes(len as u64));
        if len >= 64 * 1024 {
            g.sample_size(20);
        }
        for (name, backend, kek) in &keks {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    black_box(
                        envelope::seal(*backend, "default", kek, black_box(&pt), &ctx)
                            .expect("seal"),
                    )
                })
            });
        }
        // `seal_into`: the caller's output buffer is reused from call to call.
        for (name, backend, kek) in &keks {
            if *backend == Backend::RustCrypto {
                continue;
            }
            let mut out = Vec::new();
            g.bench_function(BenchmarkId::from_parameter(format!("{name}-into")), |b| {
                b.iter(|| {
                    envelope::seal_into(*backend, "default", kek, black_box(&pt), &ctx, &mut out)
                        .expect("seal_into");
                    black_box(&out);
                })
            });
        }
        g.bench_function(BenchmarkId::from_parameter("vault-audited"), |b| {
            b.iter(|| {
                black_box(
                    vault
                        .owner()
                        .encrypt(black_box(&pt), &ctx)
                        .expect("encrypt"),
                )
            })
        });
        g.bench_function(BenchmarkId::from_parameter("vault-reads-unaudited"), |b| {
            b.iter(|| {
                black_box(
                    unaudited
                        .owner()
                        .encrypt(black_box(&pt), &ctx)
                        .expect("encrypt"),
                )
            })
        });
        for (name, raw) in &raws {
            let mut buf = pt.clone();
            let mut n = 0u64;
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    n += 1;
                    black_box(raw.seal(counter_nonce(n), &aad, black_box(&mut buf)))
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("envelope-decrypt/{}", label(len)));
        g.throughput(Throughput::Bytes(len as u64));
        if len >= 64 * 1024 {
            g.sample_size(20);
        }
        for (name, backend, kek) in &keks {
            let ct = envelope::seal(*backend, "default", kek, &pt, &ctx).expect("seal");
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let env = Envelope::parse(black_box(&ct)).expect("parse");
                    black_box(envelope::open(*backend, &env, kek, &ctx).expect("open"))
                })
            });
        }
        for (name, backend, kek) in &keks {
            if *backend == Backend::RustCrypto {
                continue;
            }
            let ct = envelope::seal(*backend, "default", kek, &pt, &ctx).expect("seal");
            let mut out = Vec::new();
            g.bench_function(BenchmarkId::from_parameter(format!("{name}-into")), |b| {
                b.iter(|| {
                    let env = Envelope::parse(black_box(&ct)).expect("parse");
                    envelope::open_into(*backend, &env, kek, &ctx, &mut out).expect("open_into");
                    black_box(&out);
                })
            });
        }
        let ct = vault.owner().encrypt(&pt, &ctx).expect("encrypt");
        g.bench_function(BenchmarkId::from_parameter("vault-audited"), |b| {
            b.iter(|| {
                black_box(
                    vault
                        .owner()
                        .decrypt(black_box(&ct), &ctx)
                        .expect("decrypt"),
                )
            })
        });
        let ct2 = unaudited.owner().encrypt(&pt, &ctx).expect("encrypt");
        g.bench_function(BenchmarkId::from_parameter("vault-reads-unaudited"), |b| {
            b.iter(|| {
                black_box(
                    unaudited
                        .owner()
                        .decrypt(black_box(&ct2), &ctx)
                        .expect("decrypt"),
                )
            })
        });
        for (name, raw) in &raws {
            // Like the envelope (which decrypts into a fresh buffer), each iteration copies the
            // ciphertext into a work buffer first; the copy is part of the figure.
            let mut sealed = pt.clone();
            let tag = raw.seal(counter_nonce(0), &aad, &mut sealed);
            sealed.extend_from_slice(&tag);
            let mut work = sealed.clone();
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    work.copy_from_slice(&sealed);
                    black_box(raw.open(counter_nonce(0), &aad, black_box(&mut work)))
                })
            });
        }
        g.finish();
    }
}

/// Batches of small envelopes: `envelope::seal` per item vs `envelope::seal_many` (one call
/// to the OS CSPRNG per 64 envelopes). Throughput is per envelope.
fn batch(c: &mut Criterion) {
    const N: usize = 1000;
    let kek = Kek::new(1, Key32::random().expect("rng"), Backend::Ring).expect("kek");
    let tmp = tempfile::tempdir().expect("tmp");
    let vault1 = vault(&tmp.path().join("v1"), Backend::Ring);
    let mut vault2 = vault(&tmp.path().join("v2"), Backend::Ring);
    vault2.set_threads(2).expect("pool");
    let ctxs: Vec<Context> = (0..N)
        .map(|i| Context::new().with("record", i.to_string()))
        .collect();
    for len in [64usize, 1024] {
        let pt = payload(len);
        let items: Vec<(&[u8], &Context)> = ctxs.iter().map(|c| (pt.as_slice(), c)).collect();
        let mut g = c.benchmark_group(format!("envelope-encrypt-batch1000/{}", label(len)));
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function(BenchmarkId::from_parameter("seal-per-item"), |b| {
            b.iter(|| {
                for (p, ctx) in &items {
                    black_box(
                        envelope::seal(Backend::Ring, "default", &kek, p, ctx).expect("seal"),
                    );
                }
            })
        });
        g.bench_function(BenchmarkId::from_parameter("seal_many"), |b| {
            b.iter(|| {
                black_box(
                    envelope::seal_many(Backend::Ring, "default", &kek, &items).expect("seal"),
                )
            })
        });
        // `Session::encrypt_many` as shipped (one policy decision and audit entry per batch,
        // `seal_many` inside), on the calling thread and on a pool of 2.
        let ctx = Context::new().with("table", "notes");
        let pts: Vec<&[u8]> = (0..N).map(|_| pt.as_slice()).collect();
        for (threads, vault) in [(1usize, &vault1), (2, &vault2)] {
            g.bench_function(
                BenchmarkId::from_parameter(format!("vault-encrypt_many-{threads}thread")),
                |b| {
                    b.iter(|| {
                        black_box(
                            vault
                                .owner()
                                .encrypt_many(&pts, &ctx, &EncryptOptions::new())
                                .expect("encrypt_many"),
                        )
                    })
                },
            );
        }
        g.finish();
    }
}

fn config() -> Criterion {
    // Short but sufficient: the machine is shared; run.sh re-runs the key figures.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30)
}

criterion_group! {
    name = envelope;
    config = config();
    targets = benches, batch
}
criterion_main!(envelope);
