//! Shared helpers of the phivault throughput benchmarks (issue 9).
//!
//! The criterion benches live in `benches/benches/*.rs`; the figures criterion is bad at
//! (rewrap of a million records with its peak memory, vault open time per Argon2 setting,
//! bytes on disk, one versus two threads) are measured by the `pvbench` binary
//! (`src/bin/pvbench.rs`). `benches/run.sh` runs everything and `benches/report.py` writes
//! `benches/RESULTS.md` from the measurements.
//!
//! Nothing here is a test: no figure is asserted.

use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::{Key32, Vault, VaultOptions};
use std::path::Path;

/// mimalloc rather than glibc malloc, in every bench binary (they all link this crate), as in
/// the CLI and the Python module: after sled's bulk writes glibc's heap is fragmented and
/// CPU-bound work in the same process ran about 3x slower (`pvbench afterwrites`,
/// benches/notes.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Payload sizes of the envelope benches: a field, a small document, a large one, a file.
pub const ENVELOPE_SIZES: [usize; 4] = [64, 1024, 64 * 1024, 1024 * 1024];

/// Batch size of the batch benches (tokenize, put, raw sled).
pub const BATCH: usize = 10_000;

/// A deterministic, non-constant payload of `len` bytes.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// A vault with a random key-file root (no Argon2 cost) in `dir`, with the given durability.
pub fn new_vault(dir: &Path, durability: Durability) -> Vault {
    let root = KeyFile::from_key(Key32::random().expect("system randomness"));
    Vault::create_with(dir, &root, VaultOptions::new().durability(durability))
        .expect("create vault")
}

/// A vault with the default options (ring backend, every write durable).
pub fn default_vault(dir: &Path) -> Vault {
    new_vault(dir, Durability::default())
}

/// Size in bytes of every regular file under `dir` (the store's space on disk, apparent size).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            total += dir_bytes(&e.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// A field of `/proc/self/status` in KiB (`VmHWM` is the peak resident set, `VmRSS` the
/// current one); `None` where there is no procfs.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Raw AES-256-GCM from one of the three implementations, with the key schedule expanded
/// once: the limit the envelope is measured against.
pub enum RawAead {
    /// `ring`.
    Ring(Box<ring::aead::LessSafeKey>),
    /// RustCrypto `aes-gcm`.
    RustCrypto(Box<aes_gcm::Aes256Gcm>),
    /// `aws-lc-rs` (AWS-LC).
    AwsLc(Box<aws_lc_rs::aead::LessSafeKey>),
}

impl RawAead {
    /// The three implementations, keyed with `key`, with their names.
    pub fn all(key: &[u8; 32]) -> Vec<(&'static str, RawAead)> {
        use aes_gcm::KeyInit;
        vec![
            (
                "raw-ring",
                RawAead::Ring(Box::new(ring::aead::LessSafeKey::new(
                    ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key).expect("key"),
                ))),
            ),
            (
                "raw-rustcrypto",
                RawAead::RustCrypto(Box::new(aes_gcm::Aes256Gcm::new(key.into()))),
            ),
            (
                "raw-aws-lc-rs",
                RawAead::AwsLc(Box::new(aws_lc_rs::aead::LessSafeKey::new(
                    aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
                        .expect("key"),
                ))),
            ),
        ]
    }

    /// Encrypts `buf` in place with `nonce` and returns the tag.
    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        match self {
            RawAead::Ring(k) => {
                let t = k
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::from(aad),
                        buf,
                    )
                    .expect("seal");
                out.copy_from_slice(t.as_ref());
            }
            RawAead::RustCrypto(k) => {
                use aes_gcm::aead::AeadInPlace;
                let t = k
                    .encrypt_in_place_detached(&nonce.into(), aad, buf)
                    .expect("seal");
                out.copy_from_slice(&t);
            }
            RawAead::AwsLc(k) => {
                let t = k
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::from(aad),
                        buf,
                    )
                    .expect("seal");
                out.copy_from_slice(t.as_ref());
            }
        }
        out
    }

    /// Verifies and decrypts `ct_and_tag` (ciphertext followed by the 16-byte tag) in place;
    /// returns the plaintext length. Panics on failure (benches only).
    pub fn open(&self, nonce: [u8; 12], aad: &[u8], ct_and_tag: &mut [u8]) -> usize {
        match self {
            RawAead::Ring(k) => k
                .open_in_place(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(aad),
                    ct_and_tag,
                )
                .expect("open")
                .len(),
            RawAead::RustCrypto(k) => {
                use aes_gcm::aead::AeadInPlace;
                let split = ct_and_tag.len() - 16;
                let (ct, tag) = ct_and_tag.split_at_mut(split);
                k.decrypt_in_place_detached(&nonce.into(), aad, ct, (&*tag).into())
                    .expect("open");
                split
            }
            RawAead::AwsLc(k) => k
                .open_in_place(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                    aws_lc_rs::aead::Aad::from(aad),
                    ct_and_tag,
                )
                .expect("open")
                .len(),
        }
    }
}

/// A counter nonce: 12 bytes, unique per call for one key (benches only).
pub fn counter_nonce(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_backends_agree_and_round_trip() {
        let key = [9u8; 32];
        let all = RawAead::all(&key);
        let mut outs = Vec::new();
        for (name, aead) in &all {
            let mut buf = payload(1000);
            let tag = aead.seal(counter_nonce(1), b"aad", &mut buf);
            buf.extend_from_slice(&tag);
            outs.push(buf.clone());
            let n = aead.open(counter_nonce(1), b"aad", &mut buf);
            assert_eq!(&buf[..n], payload(1000).as_slice(), "{name}");
        }
        assert!(outs.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn proc_status_parses() {
        if Path::new("/proc/self/status").exists() {
            assert!(proc_status_kib("VmHWM").is_some());
        }
    }
}
