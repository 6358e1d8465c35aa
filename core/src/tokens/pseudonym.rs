//! One-way pseudonyms: keyed HMAC-SHA256 of the value under a key per field, project and key
//! version, truncated to 128 bits and written as `psn_` + 26 base32 characters. Equal values
//! give equal pseudonyms (joins work); nobody, not even the vault, can turn one back.

use crate::kdf::Mac;
use crate::secret::ct_eq;

/// Prefix of every pseudonym.
pub const PREFIX: &str = "psn_";
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The pseudonym of `value`.
pub(crate) fn pseudonym(mac: &Mac, value: &str) -> String {
    let tag = mac.tag(&[value.as_bytes()]);
    let mut out = String::with_capacity(PREFIX.len() + 26);
    out.push_str(PREFIX);
    // 16 bytes = 128 bits → 26 base32 characters (the last carries 3 bits).
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in &tag[..16] {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Whether `candidate` is the pseudonym of `value` (constant-time comparison).
pub(crate) fn verify(mac: &Mac, value: &str, candidate: &str) -> bool {
    ct_eq(pseudonym(mac, value).as_bytes(), candidate.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_verification() {
        let m = Mac::new(&crate::secret::Key32::from_slice(&[1u8; 32]).expect("k"));
        let p = pseudonym(&m, "900-12-3456");
        assert_eq!(p.len(), 4 + 26);
        assert!(p.starts_with(PREFIX));
        assert_eq!(p, pseudonym(&m, "900-12-3456"));
        assert_ne!(p, pseudonym(&m, "900-12-3457"));
        assert!(verify(&m, "900-12-3456", &p));
        assert!(!verify(&m, "900-12-3457", &p));
    }
}
