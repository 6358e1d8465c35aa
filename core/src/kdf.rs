//! Key derivation and MACs: HKDF-SHA256 (RFC 5869) and HMAC-SHA256 (RFC 2104), each from the
//! provider measured fastest for phivault's use (`pvbench seal64`, `sealmany64`; benches/
//! notes.md). The algorithms' outputs do not depend on the provider (RFC 5869 vectors below,
//! the frozen vectors of `testkit`). Randomness is [`crate::random`]'s; constant-time
//! comparison [`crate::secret::ct_eq`].
//!
//! - HKDF: AWS-LC with the feature (5% faster per envelope, where the HKDF key is a fresh DEK
//!   each time), else `ring`.
//! - HMAC: `ring` always: its keys are small and copying one per message is cheaper than
//!   AWS-LC's 1.2 KB context (pseudonyms and token indexes: short messages, one key).
//!
//! Every derived key has its own label (`info`), so no key is ever used for two purposes.

use crate::secret::{KEY_LEN, Key32};
use crate::{Error, Result};
#[cfg(feature = "aws-lc")]
use aws_lc_rs::hkdf;
#[cfg(not(feature = "aws-lc"))]
use ring::hkdf;
use ring::hmac;

/// HKDF labels: one per purpose, never reused. Listed in docs/FORMAT.md.
pub(crate) mod label {
    pub const PAYLOAD: &[u8] = b"phivault v1 payload key+commitment";
    pub const PAYLOAD_INTERNAL: &[u8] = b"phivault v1 internal payload key+commitment";
    pub const FIELD_KEY: &[u8] = b"phivault v1 field key";
    pub const TOKEN_ID: &[u8] = b"phivault v1 token id";
    pub const TOKEN_INDEX: &[u8] = b"phivault v1 token index";
    pub const SUBJECT_TOKEN_INDEX: &[u8] = b"phivault v1 subject token index";
    pub const AUDIT_MAC: &[u8] = b"phivault v1 audit mac";
    pub const AUDIT_SEAL: &[u8] = b"phivault v1 audit seal";
    pub const META_SEAL: &[u8] = b"phivault v1 metadata seal";
    pub const STREAM: &[u8] = b"phivault v1 stream key+commitment";
    pub const KEK_WRAP: &[u8] = b"phivault v1 kek wrap";
    pub const SIV_KEY: &[u8] = b"phivault v1 siv key";
    pub const SIV_COMMIT: &[u8] = b"phivault v1 siv commitment";
    pub const KEYRING_WRAP: &[u8] = b"phivault v1 keyring wrap";
    pub const RECORD_ID: &[u8] = b"phivault v1 record id";
    pub const SUBJECT_ID: &[u8] = b"phivault v1 subject id";
    pub const KEY_FILE_ROOT: &[u8] = b"phivault v1 key-file root";
    pub const STORE_ANCHOR: &[u8] = b"phivault v1 store anchor";
    pub const JOB_SNAPSHOT: &[u8] = b"phivault v1 job snapshot";
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand (RFC 5869 §2.3) with `prk` as the pseudorandom key. `prk` must be a uniformly
/// random 256-bit key (a DEK, a KEK, the vault master key), which is why Extract is skipped.
pub(crate) fn expand(prk: &Key32, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk.expose());
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::Crypto("HKDF output length"))
}

/// HKDF-Expand into a fresh 256-bit key.
pub(crate) fn expand_key(prk: &Key32, info: &[&[u8]]) -> Result<Key32> {
    let mut key = Key32::zero();
    expand(prk, info, key.expose_mut())?;
    Ok(key)
}

/// HKDF-Extract-then-Expand (RFC 5869) for input keying material that may not be uniform.
pub(crate) fn extract_expand(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Result<Key32> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut key = Key32::zero();
    prk.expand(info, Len(KEY_LEN))
        .and_then(|okm| okm.fill(key.expose_mut()))
        .map_err(|_| Error::Crypto("HKDF output length"))?;
    Ok(key)
}

/// A keyed HMAC-SHA256 for identifiers (record ids, subject ids, token indexes).
#[derive(Clone)]
pub(crate) struct Mac(hmac::Key);

impl Mac {
    pub(crate) fn new(key: &Key32) -> Self {
        Mac(hmac::Key::new(hmac::HMAC_SHA256, key.expose()))
    }

    /// HMAC over the length-prefixed concatenation of `parts` (unambiguous framing).
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mac([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ct_eq;

    /// RFC 5869 Appendix A.1 (HKDF-SHA256, basic test case).
    #[test]
    fn rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
        let mut okm = [0u8; 42];
        prk.expand(&[&info], Len(42))
            .and_then(|o| o.fill(&mut okm))
            .expect("42 bytes");
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn labels_separate_keys() {
        let k = Key32::from_slice(&[7u8; 32]).expect("32");
        let a = expand_key(&k, &[label::RECORD_ID]).expect("a");
        let b = expand_key(&k, &[label::SUBJECT_ID]).expect("b");
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn mac_framing_is_unambiguous() {
        let m = Mac::new(&Key32::from_slice(&[1u8; 32]).expect("32"));
        assert_ne!(m.tag(&[b"ab", b"c"]), m.tag(&[b"a", b"bc"]));
        assert!(ct_eq(&m.tag(&[b"x"]), &m.tag(&[b"x"])));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
