//! Alphabets of format-preserving tokens: which characters are numerals (and their order),
//! and which are kept in place (dashes, spaces, `@`).

use crate::{Error, Result};

/// A compiled alphabet: up to 256 distinct ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alphabet {
    chars: Vec<u8>,
    index: [u16; 128],
}

const NONE: u16 = u16::MAX;

impl Alphabet {
    /// Resolves a named alphabet (`digits`, `alphanumeric`, `upper`, `lower`, `hex`) or a
    /// literal one given as `custom:<characters>`.
    pub(crate) fn parse(name: &str) -> Result<Self> {
        let chars: Vec<u8> = match name {
            "digits" => b"0123456789".to_vec(),
            "alphanumeric" => {
                b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".to_vec()
            }
            "upper" => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec(),
            "lower" => b"0123456789abcdefghijklmnopqrstuvwxyz".to_vec(),
            "hex" => b"0123456789abcdef".to_vec(),
            other => match other.strip_prefix("custom:") {
                Some(c) => c.as_bytes().to_vec(),
                None => {
                    return Err(Error::invalid(
                        "alphabet",
                        "must be digits, alphanumeric, upper, lower, hex or custom:<characters>",
                    ));
                }
            },
        };
        if chars.len() < 2 || chars.len() > 256 || !chars.iter().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(
                "alphabet",
                "needs 2 to 256 printable ASCII characters",
            ));
        }
        let mut index = [NONE; 128];
        for (i, &c) in chars.iter().enumerate() {
            if index[usize::from(c)] != NONE {
                return Err(Error::invalid("alphabet", "has a character twice"));
            }
            index[usize::from(c)] = i as u16;
        }
        Ok(Alphabet { chars, index })
    }

    /// Number of numerals.
    pub(crate) fn radix(&self) -> u32 {
        self.chars.len() as u32
    }

    /// The numeral of `c`, if `c` belongs to the alphabet.
    pub(crate) fn numeral(&self, c: char) -> Option<u16> {
        let i = u32::from(c);
        if i < 128 {
            let n = self.index[i as usize];
            (n != NONE).then_some(n)
        } else {
            None
        }
    }

    /// The character of numeral `n`.
    pub(crate) fn char_of(&self, n: u16) -> char {
        char::from(self.chars[usize::from(n) % self.chars.len()])
    }

    /// Splits `value` into its numerals and a template that keeps every other character in
    /// place.
    pub(crate) fn split(&self, value: &str) -> (Vec<u16>, Vec<Option<char>>) {
        let mut numerals = Vec::with_capacity(value.len());
        let mut template = Vec::with_capacity(value.len());
        for c in value.chars() {
            match self.numeral(c) {
                Some(n) => {
                    numerals.push(n);
                    template.push(None);
                }
                None => template.push(Some(c)),
            }
        }
        (numerals, template)
    }

    /// Puts numerals back into a template.
    pub(crate) fn join(&self, numerals: &[u16], template: &[Option<char>]) -> String {
        let mut it = numerals.iter();
        template
            .iter()
            .map(|t| match t {
                Some(c) => *c,
                None => it.next().map_or('?', |&n| self.char_of(n)),
            })
            .collect()
    }

    /// NIST SP 800-38G Rev. 1: the domain radix^len must be at least 1,000,000.
    pub(crate) fn check_domain(&self, len: usize) -> Result<()> {
        if domain_is_large_enough(self.radix(), len) {
            return Ok(());
        }
        Err(Error::invalid(
            "value",
            "has too few alphabet characters: radix^length must be at least 1,000,000 (NIST SP 800-38G Rev. 1)",
        ))
    }
}

/// NIST SP 800-38G Rev. 1's domain rule: `radix^len >= 1,000,000`.
pub(crate) fn domain_is_large_enough(radix: u32, len: usize) -> bool {
    let mut domain: u64 = 1;
    for _ in 0..len {
        domain = domain.saturating_mul(u64::from(radix));
        if domain >= 1_000_000 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_keep_other_characters() {
        let a = Alphabet::parse("digits").expect("digits");
        let (n, t) = a.split("123-45-6789");
        assert_eq!(n.len(), 9);
        assert_eq!(a.join(&n, &t), "123-45-6789");
        assert!(a.check_domain(6).is_ok());
        assert!(a.check_domain(5).is_err());
        assert!(Alphabet::parse("custom:aa").is_err());
        assert!(Alphabet::parse("custom:a").is_err());
        assert!(Alphabet::parse("klingon").is_err());
        assert_eq!(Alphabet::parse("alphanumeric").expect("a").radix(), 62);
        assert_eq!(a.numeral('é'), None);
    }
}
