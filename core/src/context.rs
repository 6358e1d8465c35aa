//! Encryption context: ordered key/value pairs bound to a ciphertext as associated data.
//!
//! A ciphertext made with `record=123, field=notes` decrypts only with exactly that context,
//! in that order, so a value copied to another record or field fails to decrypt.
//!
//! ```
//! use phivault::Context;
//! let ctx = Context::new().with("record", "123").with("field", "notes");
//! assert_eq!(ctx.len(), 2);
//! ```
//!
//! # Security notes
//! The context is authenticated, not encrypted, and never stored by phivault: the caller
//! supplies it again to decrypt. Values may be PHI (an MRN as record id), so `Debug` prints
//! only the keys.

use crate::{Error, Result};
use std::fmt;

/// Most pairs a context may hold.
pub const MAX_PAIRS: usize = 64;
/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 255;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 65_535;

/// Ordered key/value pairs bound to a ciphertext as associated data.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Context {
    pairs: Vec<(String, String)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// Adds a pair and returns the context (builder style). Limits are checked when the
    /// context is used, with [`Error::InvalidInput`].
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// Adds a pair.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the context has no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Checks the limits: at most [`MAX_PAIRS`] pairs, keys 1..=[`MAX_KEY_LEN`] bytes and
    /// unique, values at most [`MAX_VALUE_LEN`] bytes.
    pub fn validate(&self) -> Result<()> {
        if self.pairs.len() > MAX_PAIRS {
            return Err(Error::invalid("context", "more than 64 pairs"));
        }
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if k.is_empty() || k.len() > MAX_KEY_LEN {
                return Err(Error::invalid(
                    "context",
                    "a key is empty or longer than 255 bytes",
                ));
            }
            if v.len() > MAX_VALUE_LEN {
                return Err(Error::invalid(
                    "context",
                    "a value is longer than 65535 bytes",
                ));
            }
            if self.pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(Error::invalid("context", "a key appears twice"));
            }
        }
        Ok(())
    }

    /// Appends the canonical encoding (docs/FORMAT.md §Context): `count:u8`, then per pair
    /// `key_len:u8 key value_len:u16be value`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        self.validate()?;
        out.push(self.pairs.len() as u8);
        for (k, v) in &self.pairs {
            out.push(k.len() as u8);
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        Ok(())
    }
}

impl Drop for Context {
    /// Context values can be PHI (an MRN as record id): wipe them.
    fn drop(&mut self) {
        for (k, v) in &mut self.pairs {
            zeroize::Zeroize::zeroize(k);
            zeroize::Zeroize::zeroize(v);
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Context {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Context {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| format!("{k}=[redacted]")))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_canonical_and_ordered() {
        let a = Context::new().with("a", "1").with("b", "2");
        let b = Context::new().with("b", "2").with("a", "1");
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        a.encode_into(&mut ea).expect("a");
        b.encode_into(&mut eb).expect("b");
        assert_eq!(ea, [2, 1, b'a', 0, 1, b'1', 1, b'b', 0, 1, b'2']);
        assert_ne!(ea, eb);
    }

    #[test]
    fn limits_are_enforced() {
        let mut out = Vec::new();
        assert!(Context::new().with("", "x").encode_into(&mut out).is_err());
        assert!(
            Context::new()
                .with("a", "1")
                .with("a", "2")
                .encode_into(&mut out)
                .is_err()
        );
        let long = "k".repeat(256);
        assert!(
            Context::new()
                .with(long, "x")
                .encode_into(&mut out)
                .is_err()
        );
        let big = "v".repeat(65_536);
        assert!(Context::new().with("k", big).encode_into(&mut out).is_err());
        let many: Context = (0..65).map(|i| (format!("k{i}"), "v")).collect();
        assert!(many.encode_into(&mut out).is_err());
    }

    #[test]
    fn debug_hides_values() {
        let c = Context::new().with("mrn", "MRN-998877");
        assert!(!format!("{c:?}").contains("998877"));
    }
}
