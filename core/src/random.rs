//! Randomness: every key, nonce and random identifier of phivault comes from here.
//!
//! AWS-LC's `RAND_bytes` (`aws-lc-rs`, feature `aws-lc`, on by default): a per-thread CTR-DRBG
//! (NIST SP 800-90A) seeded and periodically reseeded from the operating system, mixed with
//! RDRAND where the CPU has it, and wiped on fork or VM snapshot by AWS-LC's own detection.
//! Without the feature, `ring`'s `SystemRandom`: `getrandom` per call. The DRBG made 64-byte
//! envelopes 12-15% faster (`pvbench seal64`, `sealmany64`, `afterwrites`; benches/notes.md).

use crate::{Error, Result};
#[cfg(feature = "aws-lc")]
use aws_lc_rs::rand as provider;
use provider::SecureRandom;
#[cfg(not(feature = "aws-lc"))]
use ring::rand as provider;
use std::sync::OnceLock;

fn rng() -> &'static provider::SystemRandom {
    static RNG: OnceLock<provider::SystemRandom> = OnceLock::new();
    RNG.get_or_init(provider::SystemRandom::new)
}

/// Fills `buf` from the CSPRNG (see the module documentation).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    rng()
        .fill(buf)
        .map_err(|_| Error::Crypto("system random number generator failed"))
}
