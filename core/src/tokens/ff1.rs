//! FF1 format-preserving encryption (NIST SP 800-38G) through the `fpe` crate, with AES-256.
//! Vaultless and reversible: the token has the value's alphabet, length and layout.
//!
//! # Security notes
//! FF1 cannot authenticate: any well-formed token decrypts to *some* value, so a forged token
//! is not detected. Use vaulted tokens where forgery matters. FF3/FF3-1 are not offered (NIST
//! is withdrawing them).

use super::alphabet::Alphabet;
use crate::{Error, Result};
use fpe::ff1::{FF1, FlexibleNumeralString};

/// An FF1 instance for one field and key.
pub(crate) enum Ff1 {
    /// AES-128 (only for NIST known-answer tests).
    Aes128(FF1<aes::Aes128>),
    /// AES-192 (only for NIST known-answer tests).
    Aes192(FF1<aes::Aes192>),
    /// AES-256, what fields use.
    Aes256(FF1<aes::Aes256>),
}

impl Ff1 {
    /// FF1 with a 16-, 24- or 32-byte AES key and `radix`.
    pub(crate) fn new(key: &[u8], radix: u32) -> Result<Self> {
        let bad = |_| Error::invalid("alphabet", "radix not supported by FF1");
        Ok(match key.len() {
            16 => Ff1::Aes128(FF1::new(key, radix).map_err(bad)?),
            24 => Ff1::Aes192(FF1::new(key, radix).map_err(bad)?),
            32 => Ff1::Aes256(FF1::new(key, radix).map_err(bad)?),
            _ => return Err(Error::invalid("FF1 key", "must be 16, 24 or 32 bytes")),
        })
    }

    /// Encrypts numerals.
    pub(crate) fn encrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        let ns = FlexibleNumeralString::from(numerals);
        let fail = |_| Error::invalid("value", "not a valid FF1 input (length or numerals)");
        Ok(match self {
            Ff1::Aes128(f) => f.encrypt(tweak, &ns).map_err(fail)?,
            Ff1::Aes192(f) => f.encrypt(tweak, &ns).map_err(fail)?,
            Ff1::Aes256(f) => f.encrypt(tweak, &ns).map_err(fail)?,
        }
        .into())
    }

    /// Decrypts numerals.
    pub(crate) fn decrypt(&self, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>> {
        let ns = FlexibleNumeralString::from(numerals);
        let fail = |_| Error::InvalidToken {
            field: String::new(),
        };
        Ok(match self {
            Ff1::Aes128(f) => f.decrypt(tweak, &ns).map_err(fail)?,
            Ff1::Aes192(f) => f.decrypt(tweak, &ns).map_err(fail)?,
            Ff1::Aes256(f) => f.decrypt(tweak, &ns).map_err(fail)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38G FF1 samples 1-9 (core/tests/data/ff1_nist_samples.txt): AES-128, -192
    /// and -256, radix 10 and 36, with and without tweak. Encrypt and decrypt both.
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
            assert_eq!(
                ff1.encrypt(&tweak, pt.clone()).expect("enc"),
                ct,
                "sample {}",
                f[0]
            );
            assert_eq!(ff1.decrypt(&tweak, ct).expect("dec"), pt, "sample {}", f[0]);
            n += 1;
        }
        assert_eq!(n, 9);
    }
}
