//! AES-256-GCM (NIST SP 800-38D) behind one small trait, with two interchangeable
//! implementations that produce byte-identical output:
//!
//! - [`Backend::Ring`] (default): `ring`, assembly-optimised with AES-NI/CLMUL/VAES.
//! - [`Backend::RustCrypto`]: the pure-Rust `aes-gcm` crate, for targets `ring` does not build
//!   on. It is verified against the same Wycheproof and NIST vectors, and a differential test
//!   checks that both backends write the same envelopes byte for byte.
//!
//! # Security notes
//! A nonce must never repeat under one key. phivault uses a fresh random data key per
//! envelope (so the payload key encrypts exactly one message) and random 96-bit nonces for
//! wrapping keys, whose limits are documented in docs/FORMAT.md.

use crate::secret::Key32;
use crate::{Error, Result};

/// AES-GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM key with its key schedule expanded, ready to seal and open.
///
/// Implementations provide the detached forms; the `Vec` forms are built on them.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place and returns the 16-byte tag.
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]>;

    /// Verifies `tag` and decrypts `in_out` in place. On failure `in_out` is wiped and
    /// [`Error::AuthenticationFailed`] is returned.
    fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()>;

    /// Encrypts `buf` in place and appends the tag.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let tag = self.seal_detached(nonce, aad, buf)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Verifies and decrypts `buf` (ciphertext followed by the tag) in place and removes the
    /// tag. On failure `buf` is wiped and [`Error::AuthenticationFailed`] is returned.
    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        if buf.len() < TAG_LEN {
            zeroize::Zeroize::zeroize(buf);
            return Err(Error::AuthenticationFailed);
        }
        let split = buf.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buf[split..]);
        buf.truncate(split);
        self.open_detached(nonce, aad, buf, &tag)
    }
}

/// Which implementation of AES-256-GCM to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `ring` (default).
    #[default]
    Ring,
    /// RustCrypto `aes-gcm`, pure Rust.
    RustCrypto,
}

impl Backend {
    /// Expands `key` for this backend.
    pub fn aes256gcm(self, key: &Key32) -> Result<Box<dyn AeadKey>> {
        Ok(match self {
            Backend::Ring => Box::new(RingKey::new(key)?),
            Backend::RustCrypto => Box::new(RustCryptoKey::new(key)),
        })
    }

    /// A short name for status output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ring => "ring",
            Backend::RustCrypto => "rustcrypto-aes-gcm",
        }
    }
}

struct RingKey(ring::aead::LessSafeKey);

impl RingKey {
    fn new(key: &Key32) -> Result<Self> {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key.expose())
            .map_err(|_| Error::Crypto("AES-256-GCM key setup"))?;
        Ok(RingKey(ring::aead::LessSafeKey::new(unbound)))
    }
}

impl AeadKey for RingKey {
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), in_out)
            .map_err(|_| Error::Crypto("AES-256-GCM input too long"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
        let tag = ring::aead::Tag::from(*tag);
        self.0
            .open_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), tag, in_out, 0..)
            .map(|_| ())
            .map_err(|_| {
                zeroize::Zeroize::zeroize(in_out);
                Error::AuthenticationFailed
            })
    }
}

struct RustCryptoKey(Box<aes_gcm::Aes256Gcm>);

impl RustCryptoKey {
    fn new(key: &Key32) -> Self {
        use aes_gcm::KeyInit;
        RustCryptoKey(Box::new(aes_gcm::Aes256Gcm::new(key.expose().into())))
    }
}

impl AeadKey for RustCryptoKey {
    fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        use aes_gcm::aead::AeadInPlace;
        let tag = self
            .0
            .encrypt_in_place_detached(nonce.into(), aad, in_out)
            .map_err(|_| Error::Crypto("AES-256-GCM input too long"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        use aes_gcm::aead::AeadInPlace;
        self.0
            .decrypt_in_place_detached(nonce.into(), aad, in_out, tag.into())
            .map_err(|_| {
                zeroize::Zeroize::zeroize(in_out);
                Error::AuthenticationFailed
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKENDS: [Backend; 2] = [Backend::Ring, Backend::RustCrypto];

    /// Wycheproof `aes_gcm_test.json` (the `wycheproof` crate), 256-bit keys, 96-bit nonces,
    /// 128-bit tags: every valid vector seals to the expected bytes and opens; every invalid
    /// one is refused. Generated tamper cases: each valid vector with a flipped ciphertext or
    /// tag bit must be refused too.
    #[test]
    fn wycheproof_aes256_gcm() {
        let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm)
            .expect("wycheproof AES-GCM set");
        for backend in BACKENDS {
            let mut checked = 0;
            for group in &set.test_groups {
                if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                    continue;
                }
                for t in &group.tests {
                    let key = backend
                        .aes256gcm(&Key32::from_slice(&t.key).expect("key"))
                        .expect("key setup");
                    let nonce: [u8; NONCE_LEN] = t.nonce.as_slice().try_into().expect("nonce");
                    let mut expected = t.ct.to_vec();
                    expected.extend_from_slice(&t.tag);
                    let mut opened = expected.clone();
                    let res = key.open_in_place(&nonce, &t.aad, &mut opened);
                    if t.result.must_fail() {
                        assert!(res.is_err(), "{backend:?} tc {} must fail", t.tc_id);
                    } else {
                        res.unwrap_or_else(|_| panic!("{backend:?} tc {} must open", t.tc_id));
                        assert_eq!(opened, t.pt.to_vec(), "tc {}", t.tc_id);
                        let mut sealed = t.pt.to_vec();
                        key.seal_in_place(&nonce, &t.aad, &mut sealed)
                            .expect("seal");
                        assert_eq!(sealed, expected, "{backend:?} tc {}", t.tc_id);
                        for bit in [0, expected.len() * 8 - 1] {
                            let mut bad = expected.clone();
                            bad[bit / 8] ^= 1 << (bit % 8);
                            assert!(key.open_in_place(&nonce, &t.aad, &mut bad).is_err());
                        }
                    }
                    checked += 1;
                }
            }
            assert!(checked > 50, "only {checked} vectors checked");
        }
    }

    /// NIST known answer: "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega,
    /// revised 2005, Appendix B, Test Case 16 (AES-256, 60-byte plaintext, 20-byte AAD).
    #[test]
    fn nist_gcm_spec_test_case_16() {
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .expect("hex");
        let iv = hex::decode("cafebabefacedbaddecaf888").expect("hex");
        let pt = hex::decode(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ))
        .expect("hex");
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").expect("hex");
        let ct = concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        );
        let tag = "76fc6ece0f4e1768cddf8853bb2d551b";
        for backend in BACKENDS {
            let k = backend
                .aes256gcm(&Key32::from_slice(&key).expect("key"))
                .expect("key");
            let nonce: [u8; 12] = iv.as_slice().try_into().expect("iv");
            let mut buf = pt.clone();
            k.seal_in_place(&nonce, &aad, &mut buf).expect("seal");
            assert_eq!(hex::encode(&buf), format!("{ct}{tag}"), "{backend:?}");
            k.open_in_place(&nonce, &aad, &mut buf).expect("open");
            assert_eq!(buf, pt);
        }
    }
}
