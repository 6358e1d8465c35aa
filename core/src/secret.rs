//! Zeroizing containers for key material and plaintext.
//!
//! Secrets are wiped from memory when dropped and never print themselves: their `Debug` says
//! `[redacted]`.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Constant-time equality of two byte strings (MACs, tags, commitments, tokens, keys).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Length in bytes of every symmetric key phivault uses (AES-256, HMAC-SHA256).
pub const KEY_LEN: usize = 32;

/// A 256-bit secret key, wiped on drop. Equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key32([u8; KEY_LEN]);

impl PartialEq for Key32 {
    /// Constant-time: the time taken does not depend on where two keys differ.
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Key32 {}

impl Key32 {
    /// A fresh key from the operating system's CSPRNG, filled in place.
    pub fn random() -> crate::Result<Self> {
        let mut key = Key32([0u8; KEY_LEN]);
        crate::random::fill_random(&mut key.0)?;
        Ok(key)
    }

    /// Takes a key from a slice of exactly [`KEY_LEN`] bytes. The caller wipes its copy.
    pub fn from_slice(bytes: &[u8]) -> crate::Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| crate::Error::invalid("key", "must be exactly 32 bytes"))?;
        let key = Key32(arr);
        let mut arr = arr;
        arr.zeroize();
        Ok(key)
    }

    /// A zero key to be filled in place by a KDF.
    pub(crate) fn zero() -> Self {
        Key32([0u8; KEY_LEN])
    }

    /// The key bytes, for handing to a primitive.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32([redacted])")
    }
}

/// Secret bytes of any length (a decrypted plaintext, a passphrase), wiped on drop. Equality
/// is constant-time for equal lengths.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl PartialEq for SecretBytes {
    /// Constant-time in the contents (the lengths are compared first).
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

impl SecretBytes {
    /// Wraps bytes; they are wiped when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives the bytes up to a caller that takes over the duty to wipe them.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes::new(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = Key32::from_slice(&[0x41; 32]).expect("32 bytes");
        assert_eq!(format!("{k:?}"), "Key32([redacted])");
        let s = SecretBytes::new(b"SSN 123-45-6789".to_vec());
        let d = format!("{s:?}");
        assert!(!d.contains("123-45"), "{d}");
    }

    #[test]
    fn wrong_key_length_is_refused() {
        assert!(Key32::from_slice(&[0u8; 31]).is_err());
        assert!(Key32::from_slice(&[0u8; 33]).is_err());
    }
}
