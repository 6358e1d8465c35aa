//! AES-256-GCM (NIST SP 800-38D) behind one small trait, with two interchangeable
//! implementations that produce byte-identical output:
//!
//! - [`Backend::Ring`] (default): `ring`, assembly-optimised with AES-NI/CLMUL/VAES.
//! - [`Backend::RustCrypto`]: the pure-Rust `aes-gcm` crate, for targets `ring` does not build
//!   on.
//! - [`Backend::AwsLc`] (feature `aws-lc`, on by default): AWS-LC through `aws-lc-rs`, the
//!   fastest on x86-64 with VAES/AVX-512, and the one with out-of-place sealing and opening
//!   (no extra copy of large payloads, see [`envelope::seal_into`](crate::envelope::seal_into)).
//!
//! Every backend is verified against the same Wycheproof and NIST vectors, and differential
//! tests and a fuzz target check that they write the same envelopes byte for byte.
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

    /// Encrypts `input` into `out` (exactly as long as `input`) and returns the tag. The
    /// default copies and encrypts in place; backends with an out-of-place primitive
    /// override it, so a large payload is read once and written once.
    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        if out.len() != input.len() {
            return Err(Error::Crypto("AES-256-GCM output length"));
        }
        out.copy_from_slice(input);
        self.seal_detached(nonce, aad, out)
    }

    /// Verifies `tag` and decrypts `input` into `out` (exactly as long as `input`). On
    /// failure `out` is wiped and [`Error::AuthenticationFailed`] is returned.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        if out.len() != input.len() {
            return Err(Error::Crypto("AES-256-GCM output length"));
        }
        out.copy_from_slice(input);
        self.open_detached(nonce, aad, out, tag)
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
    /// AWS-LC through `aws-lc-rs` (feature `aws-lc`): VAES/AVX-512 AES-GCM and out-of-place
    /// sealing. Without the feature, using it fails with [`Error::Crypto`].
    AwsLc,
}

impl Backend {
    /// Every backend built into this library (the ones [`Backend::aes256gcm`] accepts).
    pub const AVAILABLE: &'static [Backend] = &[
        Backend::Ring,
        Backend::RustCrypto,
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc,
    ];

    /// Expands `key` for this backend.
    pub fn aes256gcm(self, key: &Key32) -> Result<Box<dyn AeadKey>> {
        Ok(match self {
            Backend::Ring => Box::new(RingKey::new(key)?),
            Backend::RustCrypto => Box::new(RustCryptoKey::new(key)),
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => Box::new(aws_lc::AwsLcKey::new(key)?),
            #[cfg(not(feature = "aws-lc"))]
            Backend::AwsLc => {
                return Err(Error::Crypto(
                    "the aws-lc backend is not built in (cargo feature `aws-lc`)",
                ));
            }
        })
    }

    /// Seals `in_out` in place under `key` used for this one message (an envelope's payload
    /// key): the key schedule lives on the stack, with no allocation.
    pub(crate) fn seal_once(
        self,
        key: &Key32,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        match self {
            Backend::Ring => RingKey::new(key)?.seal_detached(nonce, aad, in_out),
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => aws_lc::AwsLcKey::new(key)?.seal_detached(nonce, aad, in_out),
            _ => self.aes256gcm(key)?.seal_detached(nonce, aad, in_out),
        }
    }

    /// Opens `in_out` in place under a one-message key, as [`Backend::seal_once`] sealed it.
    pub(crate) fn open_once(
        self,
        key: &Key32,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        match self {
            Backend::Ring => RingKey::new(key)?.open_detached(nonce, aad, in_out, tag),
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => aws_lc::AwsLcKey::new(key)?.open_detached(nonce, aad, in_out, tag),
            _ => self.aes256gcm(key)?.open_detached(nonce, aad, in_out, tag),
        }
    }

    /// A short name for status output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ring => "ring",
            Backend::RustCrypto => "rustcrypto-aes-gcm",
            Backend::AwsLc => "aws-lc-rs",
        }
    }

    /// The backend a user names in options and on command lines: `ring`, `rustcrypto` or
    /// `aws-lc`. `None` for any other name or a backend that is not built in.
    pub fn from_name(name: &str) -> Option<Backend> {
        let b = match name {
            "ring" => Backend::Ring,
            "rustcrypto" | "rustcrypto-aes-gcm" => Backend::RustCrypto,
            "aws-lc" | "aws-lc-rs" => Backend::AwsLc,
            _ => return None,
        };
        Backend::AVAILABLE.contains(&b).then_some(b)
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

/// AWS-LC through `aws-lc-rs`: the same primitive, with out-of-place seal and open.
#[cfg(feature = "aws-lc")]
mod aws_lc {
    use super::{AeadKey, NONCE_LEN, TAG_LEN};
    use crate::secret::Key32;
    use crate::{Error, Result};
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    pub(super) struct AwsLcKey(LessSafeKey);

    impl AwsLcKey {
        pub(super) fn new(key: &Key32) -> Result<Self> {
            let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
                .map_err(|_| Error::Crypto("AES-256-GCM key setup"))?;
            Ok(AwsLcKey(LessSafeKey::new(unbound)))
        }
    }

    impl AeadKey for AwsLcKey {
        fn seal_detached(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
        ) -> Result<[u8; TAG_LEN]> {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    in_out,
                )
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
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    tag,
                    in_out,
                )
                .map(|_| ())
                .map_err(|_| {
                    zeroize::Zeroize::zeroize(in_out);
                    Error::AuthenticationFailed
                })
        }

        fn seal_to(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            input: &[u8],
            out: &mut [u8],
        ) -> Result<[u8; TAG_LEN]> {
            let mut tag = [0u8; TAG_LEN];
            self.0
                .seal_out_of_place_scatter(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    input,
                    out,
                    &[],
                    &mut tag,
                )
                .map_err(|_| Error::Crypto("AES-256-GCM output length or input too long"))?;
            Ok(tag)
        }

        fn open_to(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            input: &[u8],
            tag: &[u8; TAG_LEN],
            out: &mut [u8],
        ) -> Result<()> {
            if out.len() != input.len() {
                return Err(Error::Crypto("AES-256-GCM output length"));
            }
            self.0
                .open_separate_gather(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    input,
                    tag,
                    out,
                )
                .map_err(|_| {
                    zeroize::Zeroize::zeroize(out);
                    Error::AuthenticationFailed
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKENDS: &[Backend] = Backend::AVAILABLE;

    /// Wycheproof `aes_gcm_test.json` (the `wycheproof` crate), 256-bit keys, 96-bit nonces,
    /// 128-bit tags: every valid vector seals to the expected bytes and opens; every invalid
    /// one is refused. Generated tamper cases: each valid vector with a flipped ciphertext or
    /// tag bit must be refused too.
    #[test]
    fn wycheproof_aes256_gcm() {
        let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm)
            .expect("wycheproof AES-GCM set");
        for &backend in BACKENDS {
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
                    // The out-of-place forms give the same answers as the in-place ones.
                    let (ct_part, tag_part) = expected.split_at(t.ct.len());
                    let mut out_of_place = vec![0xAAu8; t.ct.len()];
                    let res_to = tag_part
                        .try_into()
                        .map_err(|_| Error::AuthenticationFailed)
                        .and_then(|tag: [u8; TAG_LEN]| {
                            key.open_to(&nonce, &t.aad, ct_part, &tag, &mut out_of_place)
                        });
                    assert_eq!(
                        res.is_ok(),
                        res_to.is_ok(),
                        "{backend:?} tc {} open_to",
                        t.tc_id
                    );
                    if t.result.must_fail() {
                        assert!(res.is_err(), "{backend:?} tc {} must fail", t.tc_id);
                        assert!(out_of_place.iter().all(|&b| b == 0), "failed open_to wipes");
                    } else {
                        assert_eq!(
                            out_of_place,
                            t.pt.to_vec(),
                            "{backend:?} tc {} open_to",
                            t.tc_id
                        );
                        let mut sealed_to = vec![0u8; t.pt.len()];
                        let tag = key
                            .seal_to(&nonce, &t.aad, &t.pt, &mut sealed_to)
                            .expect("seal_to");
                        sealed_to.extend_from_slice(&tag);
                        assert_eq!(sealed_to, expected, "{backend:?} tc {} seal_to", t.tc_id);
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
        for &backend in BACKENDS {
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
