#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Envelope encrypt and decrypt (fresh data key per value, key commitment, context binding)
//! next to raw AES-256-GCM on the same bytes from ring, RustCrypto aes-gcm and aws-lc-rs.
//!
//! The raw figures encrypt in place under one expanded key with a counter nonce: that is the
//! limit. The envelope figures go through the public `Vault::encrypt` / `Vault::decrypt` API
//! (keyring lookup, a fresh DEK, HKDF, the DEK wrap, the commitment, the payload AEAD, and the
//! output allocation). Groups are `envelope-encrypt/<size>` and `envelope-decrypt/<size>`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phivault::{Backend, Context, Key32, Vault, VaultOptions, root::KeyFile};
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
    let vaults = [
        (
            "phivault-ring",
            vault(&tmp.path().join("ring"), Backend::Ring),
        ),
        (
            "phivault-rustcrypto",
            vault(&tmp.path().join("rc"), Backend::RustCrypto),
        ),
    ];
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
        for (name, v) in &vaults {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| black_box(v.encrypt(black_box(&pt), &ctx).expect("encrypt")))
            });
        }
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
        for (name, v) in &vaults {
            let ct = v.encrypt(&pt, &ctx).expect("encrypt");
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| black_box(v.decrypt(black_box(&ct), &ctx).expect("decrypt")))
            });
        }
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
    targets = benches
}
criterion_main!(envelope);
