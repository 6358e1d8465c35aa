//! FF1 format-preserving encryption (NIST SP 800-38G Rev. 1, Algorithms 7 and 8) with AES.
//! Vaultless and reversible: the token has the value's alphabet, length and layout.
//!
//! FF1 is a mode of operation over the AES block cipher; the block cipher is the `aes` crate's
//! (AES-NI when the CPU has it, a constant-time bitsliced implementation otherwise, the key
//! schedule included). This module is the mode only, with native integer arithmetic: every
//! domain whose larger half fits in 64 bits (`radix^ceil(n/2) <= 2^64`: all preset identifiers,
//! up to 19 decimal digits a half) keeps its halves as `u64` numbers through the ten rounds,
//! so a round costs one AES block plus a few integer operations. Larger domains go to the
//! `fpe` crate (big integers), which computes the same function. The two agree on every NIST
//! sample and on millions of random cases (`core/tests/ff1_differential.rs`, the `ff1` fuzz
//! target).
//!
//! # Security notes
//! FF1 cannot authenticate: any well-formed token decrypts to *some* value, so a forged token
//! is not detected. Use vaulted tokens where forgery matters. FF3/FF3-1 are not offered (NIST
//! is withdrawing them). The round arithmetic (additions and reductions modulo `radix^m`) is
//! not constant-time, as in `fpe`: its timing depends on the value, not on the key.

use super::alphabet::Alphabet;
use crate::{Error, Result};
use aes::cipher::{BlockEncrypt, KeyInit};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Rounds of FF1.
const ROUNDS: u8 = 10;
/// Largest radix FF1 allows (SP 800-38G: 2 to 2^16).
const MAX_RADIX: u32 = 1 << 16;
/// Longest numeral string accepted (the spec allows 2^32; values are at most 4096 bytes).
const MAX_LEN: usize = 4096;

/// AES with the key length of the FF1 key.
enum Cipher {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

impl Cipher {
    fn new(key: &[u8]) -> Result<Self> {
        let bad = |_| Error::invalid("FF1 key", "must be 16, 24 or 32 bytes");
        Ok(match key.len() {
            16 => Cipher::Aes128(aes::Aes128::new_from_slice(key).map_err(bad)?),
            24 => Cipher::Aes192(aes::Aes192::new_from_slice(key).map_err(bad)?),
            32 => Cipher::Aes256(aes::Aes256::new_from_slice(key).map_err(bad)?),
            _ => return Err(Error::invalid("FF1 key", "must be 16, 24 or 32 bytes")),
        })
    }

    fn encrypt(&self, block: &mut [u8; 16]) {
        let b = aes::Block::from_mut_slice(block);
        match self {
            Cipher::Aes128(c) => c.encrypt_block(b),
            Cipher::Aes192(c) => c.encrypt_block(b),
            Cipher::Aes256(c) => c.encrypt_block(b),
        }
    }

    /// One CBC-MAC step: `state = CIPH(state ⊕ block)`.
    fn absorb(&self, state: &mut [u8; 16], block: &[u8]) {
        for (s, b) in state.iter_mut().zip(block) {
            *s ^= b;
        }
        self.encrypt(state);
    }
}

/// The `fpe` crate's FF1, for domains too large for native arithmetic.
enum Big {
    Aes128(fpe::ff1::FF1<aes::Aes128>),
    Aes192(fpe::ff1::FF1<aes::Aes192>),
    Aes256(fpe::ff1::FF1<aes::Aes256>),
}

/// An FF1 instance for one key and radix.
pub(crate) struct Ff1 {
    cipher: Cipher,
    radix: u32,
    /// Kept only to build the big-domain instance on first need.
    key: Zeroizing<Vec<u8>>,
    big: OnceLock<Big>,
}

/// The plan of one call: the halves' lengths and moduli, `b`, and the CBC-MAC state after `P`
/// and the blocks of `Q` that precede its last one (they depend on the tweak only).
struct Plan {
    u: usize,
    /// `radix^u`, `radix^v`.
    mod_u: u128,
    mod_v: u128,
    b: usize,
    d: usize,
    /// CBC-MAC state after `P` and the full blocks of `T ‖ 0^pad` before `Q`'s last block.
    state: [u8; 16],
    /// The first `16 - 1 - b` bytes of `Q`'s last block (the rest of `T ‖ 0^pad`).
    head: [u8; 16],
}

impl Ff1 {
    /// FF1 with a 16-, 24- or 32-byte AES key and `radix` (2 to 2^16).
    pub(crate) fn new(key: &[u8], radix: u32) -> Result<Self> {
        if !(2..=MAX_RADIX).contains(&radix) {
            return Err(Error::invalid("alphabet", "radix not supported by FF1"));
        }
        Ok(Ff1 {
            cipher: Cipher::new(key)?,
            radix,
            key: Zeroizing::new(key.to_vec()),
            big: OnceLock::new(),
        })
    }

    /// `radix^k`, or `None` beyond `u128`.
    fn pow(&self, k: usize) -> Option<u128> {
        let mut p: u128 = 1;
        for _ in 0..k {
            p = p.checked_mul(u128::from(self.radix))?;
        }
        Some(p)
    }

    /// The native plan for `n` numerals under `tweak`, or `None` when the domain is too large
    /// for it (then `fpe` runs).
    fn plan(&self, n: usize, tweak: &[u8]) -> Option<Plan> {
        let u = n / 2;
        let v = n - u;
        let mod_v = self.pow(v)?;
        if mod_v > u128::from(u64::MAX) + 1 {
            return None;
        }
        let mod_u = self.pow(u)?;
        // b = ceil(ceil(v·log2(radix)) / 8), exactly: ceil(v·log2(radix)) is the bit length
        // of radix^v - 1.
        let bits = 128 - (mod_v - 1).leading_zeros() as usize;
        let b = bits.div_ceil(8);
        let d = 4 * b.div_ceil(4) + 4;
        let t = tweak.len();
        let mut p = [0u8; 16];
        p[..3].copy_from_slice(&[1, 2, 1]);
        p[3..6].copy_from_slice(&self.radix.to_be_bytes()[1..]);
        p[6] = 10;
        p[7] = (u % 256) as u8;
        p[8..12].copy_from_slice(&(n as u32).to_be_bytes());
        p[12..16].copy_from_slice(&(t as u32).to_be_bytes());
        let mut state = [0u8; 16];
        self.cipher.absorb(&mut state, &p);
        // Q = T ‖ 0^((-t-b-1) mod 16) ‖ [i] ‖ [NUM(B)]^b: every block but the last depends on
        // the tweak only.
        let pad = (16 - (t + b + 1) % 16) % 16;
        let prefix_len = t + pad; // bytes of T ‖ 0^pad
        let last_start = prefix_len + 1 + b - 16;
        let mut block = [0u8; 16];
        let mut at = 0;
        while at < last_start {
            for (k, byte) in block.iter_mut().enumerate() {
                *byte = tweak.get(at + k).copied().unwrap_or(0);
            }
            self.cipher.absorb(&mut state, &block);
            at += 16;
        }
        let mut head = [0u8; 16];
        for (k, byte) in head.iter_mut().enumerate().take(15 - b) {
            *byte = tweak.get(last_start + k).copied().unwrap_or(0);
        }
        Some(Plan {
            u,
            mod_u,
            mod_v,
            b,
            d,
            state,
            head,
        })
    }

    /// `y = NUM(S)` reduced modulo `radix^m`, for round `i` with `x` as the `b`-byte half.
    fn round(&self, plan: &Plan, i: u8, x: u128, modulus: u128) -> u128 {
        let mut block = plan.head;
        block[15 - plan.b] = i;
        block[16 - plan.b..].copy_from_slice(&x.to_be_bytes()[16 - plan.b..]);
        let mut r = plan.state;
        self.cipher.absorb(&mut r, &block);
        // d ≤ 12 here (b ≤ 8): S is the first d bytes of R.
        let mut s = [0u8; 16];
        s[16 - plan.d..].copy_from_slice(&r[..plan.d]);
        u128::from_be_bytes(s) % modulus
    }

    fn num(&self, numerals: &[u16]) -> u128 {
        numerals.iter().fold(0u128, |acc, &x| {
            acc * u128::from(self.radix) + u128::from(x)
        })
    }

    fn str_m(&self, mut x: u128, out: &mut [u16]) {
        for slot in out.iter_mut().rev() {
            *slot = (x % u128::from(self.radix)) as u16;
            x /= u128::from(self.radix);
        }
    }

    fn check(&self, numerals: &[u16]) -> Result<()> {
        if numerals.len() < 2 || numerals.len() > MAX_LEN {
            return Err(Error::invalid("value", "FF1 needs 2 to 4096 numerals"));
        }
        if !super::alphabet::domain_is_large_enough(self.radix, numerals.len()) {
            return Err(Error::invalid(
                "value",
                "radix^length must be at least 1,000,000 (NIST SP 800-38G Rev. 1)",
            ));
        }
        if numerals.iter().any(|&x| u32::from(x) >= self.radix) {
            return Err(Error::invalid(
                "value",
                "numeral out of range for the radix",
            ));
        }
        Ok(())
    }

    /// Encrypts numerals (Algorithm 7).
    pub(crate) fn encrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        self.check(&numerals)?;
        let Some(plan) = self.plan(numerals.len(), tweak) else {
            return self.big_encrypt(tweak, numerals);
        };
        let (mut a, mut b) = (self.num(&numerals[..plan.u]), self.num(&numerals[plan.u..]));
        for i in 0..ROUNDS {
            let modulus = if i % 2 == 0 { plan.mod_u } else { plan.mod_v };
            let y = self.round(&plan, i, b, modulus);
            let c = (a % modulus + y) % modulus;
            a = b;
            b = c;
        }
        // After ten rounds A has u numerals and B has v again.
        let mut out = numerals;
        self.str_m(a, &mut out[..plan.u]);
        self.str_m(b, &mut out[plan.u..]);
        Ok(out)
    }

    /// Decrypts numerals (Algorithm 8).
    pub(crate) fn decrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        self.check(&numerals).map_err(|_| Error::InvalidToken {
            field: String::new(),
        })?;
        let Some(plan) = self.plan(numerals.len(), tweak) else {
            return self.big_decrypt(tweak, numerals);
        };
        let (mut a, mut b) = (self.num(&numerals[..plan.u]), self.num(&numerals[plan.u..]));
        for i in (0..ROUNDS).rev() {
            let modulus = if i % 2 == 0 { plan.mod_u } else { plan.mod_v };
            let y = self.round(&plan, i, a, modulus);
            let c = (b % modulus + modulus - y) % modulus;
            b = a;
            a = c;
        }
        let mut out = numerals;
        self.str_m(a, &mut out[..plan.u]);
        self.str_m(b, &mut out[plan.u..]);
        Ok(out)
    }

    fn big(&self) -> Result<&Big> {
        if let Some(b) = self.big.get() {
            return Ok(b);
        }
        let bad = |_| Error::invalid("alphabet", "radix not supported by FF1");
        let made = match self.key.len() {
            16 => Big::Aes128(fpe::ff1::FF1::new(&self.key, self.radix).map_err(bad)?),
            24 => Big::Aes192(fpe::ff1::FF1::new(&self.key, self.radix).map_err(bad)?),
            _ => Big::Aes256(fpe::ff1::FF1::new(&self.key, self.radix).map_err(bad)?),
        };
        Ok(self.big.get_or_init(|| made))
    }

    fn big_encrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        let ns = fpe::ff1::FlexibleNumeralString::from(numerals);
        let fail = |_| Error::invalid("value", "not a valid FF1 input (length or numerals)");
        Ok(match self.big()? {
            Big::Aes128(f) => f.encrypt(tweak, &ns).map_err(fail)?,
            Big::Aes192(f) => f.encrypt(tweak, &ns).map_err(fail)?,
            Big::Aes256(f) => f.encrypt(tweak, &ns).map_err(fail)?,
        }
        .into())
    }

    fn big_decrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        let ns = fpe::ff1::FlexibleNumeralString::from(numerals);
        let fail = |_| Error::InvalidToken {
            field: String::new(),
        };
        Ok(match self.big()? {
            Big::Aes128(f) => f.decrypt(tweak, &ns).map_err(fail)?,
            Big::Aes192(f) => f.decrypt(tweak, &ns).map_err(fail)?,
            Big::Aes256(f) => f.decrypt(tweak, &ns).map_err(fail)?,
        }
        .into())
    }

    /// Tokenizes a value: its alphabet characters are encrypted, the rest keep their places.
    pub(crate) fn tokenize(
        &self,
        alphabet: &Alphabet,
        tweak: &[u8],
        value: &str,
    ) -> Result<String> {
        let (numerals, template) = alphabet.split(value);
        alphabet.check_domain(numerals.len())?;
        let out = self.encrypt(tweak, numerals)?;
        Ok(alphabet.join(&out, &template))
    }

    /// Reverses [`Ff1::tokenize`].
    pub(crate) fn detokenize(
        &self,
        alphabet: &Alphabet,
        tweak: &[u8],
        token: &str,
    ) -> Result<String> {
        let (numerals, template) = alphabet.split(token);
        alphabet
            .check_domain(numerals.len())
            .map_err(|_| Error::InvalidToken {
                field: String::new(),
            })?;
        let out = self.decrypt(tweak, numerals)?;
        Ok(alphabet.join(&out, &template))
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Ff1 {
    /// Encrypts with `fpe` whatever the domain (differential tests).
    pub(crate) fn reference_encrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        self.check(&numerals)?;
        self.big_encrypt(tweak, numerals)
    }

    /// Whether `n` numerals take the native path.
    #[cfg(test)]
    pub(crate) fn is_native(&self, n: usize) -> bool {
        self.plan(n, b"").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38G FF1 samples 1-9 (core/tests/data/ff1_nist_samples.txt): AES-128, -192
    /// and -256, radix 10 and 36, with and without tweak. Encrypt and decrypt both, on the
    /// native path and on `fpe`.
    #[test]
    fn nist_ff1_samples() {
        let text = include_str!("../../tests/data/ff1_nist_samples.txt");
        let mut n = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = hex::decode(f[2]).expect("key");
            let radix: u32 = f[3].parse().expect("radix");
            let tweak = hex::decode(f[4]).expect("tweak");
            let nums = |s: &str| -> Vec<u16> {
                s.split_whitespace()
                    .map(|x| x.parse().expect("num"))
                    .collect()
            };
            let (pt, ct) = (nums(f[5]), nums(f[6]));
            let ff1 = Ff1::new(&key, radix).expect("ff1");
            assert!(ff1.is_native(pt.len()), "sample {} is native", f[0]);
            assert_eq!(
                ff1.encrypt(&tweak, pt.clone()).expect("enc"),
                ct,
                "sample {}",
                f[0]
            );
            assert_eq!(
                ff1.reference_encrypt(&tweak, pt.clone()).expect("enc"),
                ct,
                "sample {} (fpe)",
                f[0]
            );
            assert_eq!(ff1.decrypt(&tweak, ct).expect("dec"), pt, "sample {}", f[0]);
            n += 1;
        }
        assert_eq!(n, 9);
    }

    /// The edges of the native path: the largest halves that fit, the first that do not, and
    /// a numeral string over them both ways.
    #[test]
    fn native_path_edges_agree_with_fpe() {
        let key = [7u8; 32];
        for (radix, fits, too_big) in [
            (10u32, 38usize, 39usize),
            (2, 128, 129),
            (62, 20, 21),
            (256, 16, 17),
            (65536, 8, 9),
        ] {
            let f = Ff1::new(&key, radix).expect("ff1");
            assert!(f.is_native(fits), "radix {radix} n {fits}");
            assert!(!f.is_native(too_big), "radix {radix} n {too_big}");
            for n in [fits, too_big] {
                let x: Vec<u16> = (0..n)
                    .map(|i| ((i as u32 * 7 + 3) % radix) as u16)
                    .collect();
                let top: Vec<u16> = vec![(radix - 1) as u16; n];
                for pt in [x, top] {
                    let ct = f.encrypt(b"edge", pt.clone()).expect("enc");
                    assert_eq!(ct, f.reference_encrypt(b"edge", pt.clone()).expect("ref"));
                    assert_eq!(f.decrypt(b"edge", ct).expect("dec"), pt);
                }
            }
        }
    }

    /// A deterministic generator for the differential cases (test input, not key material).
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Differential test against the `fpe` crate: `PV_FF1_CASES` (default 1,000,000) random
    /// (key length, radix 2-62, length, tweak, value) cases, nine in ten inside the native
    /// domain and the rest beyond it; every ciphertext must equal `fpe`'s and decrypt back.
    /// Two threads share the cases.
    #[test]
    fn differential_against_fpe() {
        let total: u64 = std::env::var("PV_FF1_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let per_key = 200u64;
        let keys = total.div_ceil(per_key);
        let checked: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2u64)
                .map(|w| {
                    scope.spawn(move || {
                        let mut rng = SplitMix(0x5EED_0000 + w);
                        let mut n_checked = 0u64;
                        let mut native = 0u64;
                        for _ in (w..keys).step_by(2) {
                            let klen = [16usize, 24, 32][rng.below(3) as usize];
                            let key: Vec<u8> = (0..klen).map(|_| rng.next() as u8).collect();
                            let radix = 2 + rng.below(61) as u32;
                            let f = Ff1::new(&key, radix).expect("ff1");
                            let mut min_len = 2;
                            while !super::super::alphabet::domain_is_large_enough(radix, min_len) {
                                min_len += 1;
                            }
                            let mut max_native = min_len;
                            while f.is_native(max_native + 1) {
                                max_native += 1;
                            }
                            for _ in 0..per_key {
                                let n = if rng.below(10) == 0 {
                                    max_native + 1 + rng.below(8) as usize
                                } else {
                                    min_len + rng.below((max_native - min_len + 1) as u64) as usize
                                };
                                let tlen = rng.below(40) as usize;
                                let tweak: Vec<u8> = (0..tlen).map(|_| rng.next() as u8).collect();
                                let pt: Vec<u16> =
                                    (0..n).map(|_| rng.below(u64::from(radix)) as u16).collect();
                                let ct = f.encrypt(&tweak, pt.clone()).expect("enc");
                                let want = f.reference_encrypt(&tweak, pt.clone()).expect("fpe");
                                assert_eq!(ct, want, "radix {radix} n {n} tweak {tlen} key {klen}");
                                assert_eq!(f.decrypt(&tweak, ct).expect("dec"), pt);
                                n_checked += 1;
                                native += u64::from(f.is_native(n));
                            }
                        }
                        assert!(native * 10 >= n_checked * 8, "{native} of {n_checked}");
                        n_checked
                    })
                })
                .collect();
            workers.into_iter().map(|h| h.join().expect("worker")).sum()
        });
        assert!(checked >= total, "{checked} < {total}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(Ff1::new(&[0u8; 32], 1).is_err());
        assert!(Ff1::new(&[0u8; 32], MAX_RADIX + 1).is_err());
        assert!(Ff1::new(&[0u8; 20], 10).is_err());
        let f = Ff1::new(&[0u8; 32], 10).expect("ff1");
        assert!(f.encrypt(b"", vec![1]).is_err());
        assert!(f.encrypt(b"", vec![1, 10, 2, 3, 4, 5]).is_err());
        assert!(f.decrypt(b"", vec![1, 10, 2, 3, 4, 5]).is_err());
        // The Rev. 1 domain rule: 10^5 < 1,000,000 <= 10^6.
        assert!(f.encrypt(b"", vec![1; 5]).is_err());
        assert!(f.decrypt(b"", vec![1; 5]).is_err());
        assert!(f.encrypt(b"", vec![1; 6]).is_ok());
    }
}
