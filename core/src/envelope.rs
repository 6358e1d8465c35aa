//! The versioned, authenticated envelope format (docs/FORMAT.md §Envelope v1).
//!
//! An envelope carries everything needed to decrypt it except keys and context: the keyring
//! id and key version (so stale envelopes can be found without decrypting), the data key
//! wrapped by that key-encryption key (KEK), a nonce and a key commitment.
//!
//! Two suites:
//! - [`Suite::Aes256GcmHkdf`] (default, randomized): a fresh 256-bit data key (DEK) per
//!   envelope; HKDF-SHA256 turns it into the AES-256-GCM payload key and a 32-byte key
//!   commitment; the DEK is wrapped with AES-256-GCM under the KEK. A rewrap replaces only the
//!   key version and the wrapped DEK, leaving the payload ciphertext as it is.
//! - [`Suite::Aes256Siv`] (opt-in, deterministic): AES-SIV (RFC 5297) under a key derived from
//!   the KEK version; the same plaintext and context give the same envelope, which is what
//!   makes equality lookups possible — and is exactly what leaks (see docs/FORMAT.md).
//!
//! Every header byte is authenticated: the stable part (magic, version, suite, flags, keyring,
//! nonce, commitment) is associated data of the payload; the key version and wrapped DEK are
//! authenticated by the wrap; the commitment ties the unwrapped DEK to the payload.
//!
//! ```
//! use phivault::{Backend, Context, Key32, envelope::{self, Kek}};
//! let kek = Kek::new(1, Key32::random()?, Backend::Ring)?;
//! let ctx = Context::new().with("record", "4711");
//! let ct = envelope::seal(Backend::Ring, "default", &kek, b"HbA1c 9.2%", &ctx)?;
//! let env = envelope::Envelope::parse(&ct)?;
//! assert_eq!((env.keyring(), env.key_version()), ("default", 1));
//! assert_eq!(envelope::open(Backend::Ring, &env, &kek, &ctx)?.expose(), b"HbA1c 9.2%");
//! assert!(envelope::open(Backend::Ring, &env, &kek, &Context::new()).is_err());
//! # Ok::<(), phivault::Error>(())
//! ```

use crate::backend::{AeadKey, Backend, NONCE_LEN, TAG_LEN};
use crate::context::Context;
use crate::kdf::{self, label};
use crate::secret::ct_eq;
use crate::secret::{KEY_LEN, Key32, SecretBytes};
use crate::{Error, Result};
use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

/// The first three bytes of every binary envelope.
pub const MAGIC: [u8; 3] = *b"PVE";
/// The envelope format version this code writes.
pub const VERSION: u8 = 1;
/// Prefix of the text form of format version 1.
pub const TEXT_PREFIX: &str = "pv1:";
/// Longest keyring id, in bytes.
pub const MAX_KEYRING_LEN: usize = 64;
/// Length of a subject key id.
pub const SUBJECT_ID_LEN: usize = 16;
/// Length of a wrapped DEK: nonce, encrypted key, tag.
pub const WRAPPED_DEK_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
const SIV_LEN: usize = 16;
const WRAP_AAD_LABEL: &[u8] = b"PVW1";
/// Flag bit: the DEK is wrapped by a subject key, whose id follows the keyring id.
pub const FLAG_SUBJECT: u8 = 0x01;
/// Flag bit: the envelope holds the vault's own data (a record's value or a vaulted token's
/// value). Its payload key is derived under its own label ([`Domain::Internal`]) and the
/// envelope API ([`crate::Session::decrypt`], sessions, C, Python) refuses it: only the record
/// and token paths, with their own policy decisions, open it.
pub const FLAG_INTERNAL: u8 = 0x02;

/// Whose envelope this is: the caller's (made by `encrypt`) or the vault's own (records and
/// vaulted token values). The domain is a header flag, authenticated like every header byte,
/// and selects the label of the payload-key derivation, so an envelope of one domain can
/// never be opened as one of the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Domain {
    /// Envelopes of the envelope API (`encrypt`, `encrypt_many`, ...).
    Caller,
    /// Records and vaulted token values (flag [`FLAG_INTERNAL`]).
    Internal,
}

impl Domain {
    fn flag(self) -> u8 {
        match self {
            Domain::Caller => 0,
            Domain::Internal => FLAG_INTERNAL,
        }
    }

    fn payload_label(self) -> &'static [u8] {
        match self {
            Domain::Caller => label::PAYLOAD,
            Domain::Internal => label::PAYLOAD_INTERNAL,
        }
    }
}

/// Algorithm suite of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// Randomized: per-envelope DEK, HKDF-SHA256, AES-256-GCM, key commitment (id 0x01).
    Aes256GcmHkdf,
    /// Deterministic: AES-256-SIV (RFC 5297) under a KEK-derived key (id 0x02).
    Aes256Siv,
}

impl Suite {
    /// The suite's byte on the wire.
    pub fn id(self) -> u8 {
        match self {
            Suite::Aes256GcmHkdf => 1,
            Suite::Aes256Siv => 2,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Suite::Aes256GcmHkdf),
            2 => Some(Suite::Aes256Siv),
            _ => None,
        }
    }
}

/// A key-encryption key (KEK): one version of a keyring, expanded for use.
///
/// The key itself is never used directly: HKDF-SHA256 derives the AES-256-GCM wrap key and,
/// for deterministic envelopes, the AES-SIV key and its commitment, each under its own label.
pub struct Kek {
    version: u32,
    key: Key32,
    aead: Box<dyn AeadKey>,
}

impl Kek {
    /// Makes a KEK from its version number (≥ 1) and key bytes.
    ///
    /// The wrap key lives as long as its keyring stays loaded. For [`Backend::Ring`] it is
    /// held by AWS-LC when that is built in (the default): AWS-LC keeps the key state in memory
    /// it allocates zeroed, while ring's key is a Rust value whose unused bytes stay
    /// uninitialised and reach ring's GCM assembly, which valgrind's memcheck reports in every
    /// embedder's program that unwraps a DEK (ffi/tests/valgrind.supp). The bytes on the wire
    /// are the same with every backend.
    pub fn new(version: u32, key: Key32, backend: Backend) -> Result<Self> {
        if version == 0 {
            return Err(Error::invalid("key version", "must be at least 1"));
        }
        let wrap_backend = match backend {
            #[cfg(feature = "aws-lc")]
            Backend::Ring => Backend::AwsLc,
            other => other,
        };
        let aead = wrap_backend.aes256gcm(&kdf::expand_key(&key, &[label::KEK_WRAP])?)?;
        Ok(Kek { version, key, aead })
    }

    /// The version number.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub(crate) fn key(&self) -> &Key32 {
        &self.key
    }

    /// Wraps a secret under this KEK: `nonce(12) || ciphertext || tag(16)`.
    pub(crate) fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
        wrap_with(self.aead.as_ref(), aad, secret)
    }

    /// Unwraps what [`Kek::wrap`] made; any failure is `AuthenticationFailed`.
    pub(crate) fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes> {
        unwrap_with(self.aead.as_ref(), aad, wrapped)
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek {{ version: {}, key: [redacted] }}", self.version)
    }
}

/// AES-256-GCM wrap with a random nonce: `nonce || ct || tag`.
pub(crate) fn wrap_with(key: &dyn AeadKey, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let mut body = Zeroizing::new(secret.to_vec());
    key.seal_in_place(&nonce, aad, &mut body)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Inverse of [`wrap_with`].
pub(crate) fn unwrap_with(key: &dyn AeadKey, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes> {
    if wrapped.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::AuthenticationFailed);
    }
    let (nonce, body) = wrapped.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::AuthenticationFailed)?;
    let mut buf = body.to_vec();
    key.open_in_place(&nonce, aad, &mut buf)?;
    Ok(SecretBytes::new(buf))
}

/// A parsed (not yet authenticated) envelope, borrowing the bytes.
#[derive(Clone, Copy)]
pub struct Envelope<'a> {
    bytes: &'a [u8],
    suite: Suite,
    domain: Domain,
    keyring: &'a str,
    subject: Option<&'a [u8]>,
    key_version: u32,
    /// Start and end of the rewrappable part (key version and wrapped DEK).
    key_part: (usize, usize),
    /// Start of the payload ciphertext (after nonce and commitment).
    body_start: usize,
}

impl std::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("suite", &self.suite)
            .field("domain", &self.domain)
            .field("keyring", &self.keyring)
            .field("key_version", &self.key_version)
            .field("subject", &self.subject.is_some())
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn valid_keyring(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEYRING_LEN
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Checks a keyring name: 1 to 64 characters from `A-Z a-z 0-9 _ - .`.
pub fn check_keyring_name(name: &str) -> Result<()> {
    if valid_keyring(name.as_bytes()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "keyring name",
            "must be 1 to 64 characters from A-Z a-z 0-9 _ - .",
        ))
    }
}

impl<'a> Envelope<'a> {
    /// Parses the header of a binary envelope. Structural damage gives
    /// [`Error::AuthenticationFailed`]; an envelope from a newer format version gives
    /// [`Error::UnsupportedVersion`]. Nothing is authenticated until it is opened.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let fail = || Error::AuthenticationFailed;
        if bytes.len() < 7 || bytes[..3] != MAGIC {
            return Err(fail());
        }
        if bytes[3] != VERSION {
            return Err(Error::UnsupportedVersion {
                what: "envelope",
                version: u32::from(bytes[3]),
            });
        }
        let suite = Suite::from_id(bytes[4]).ok_or_else(fail)?;
        let flags = bytes[5];
        let allowed = match suite {
            Suite::Aes256GcmHkdf => FLAG_SUBJECT | FLAG_INTERNAL,
            Suite::Aes256Siv => 0,
        };
        if flags & !allowed != 0 {
            return Err(fail());
        }
        let klen = usize::from(bytes[6]);
        let mut pos = 7;
        let name = bytes.get(pos..pos + klen).ok_or_else(fail)?;
        if !valid_keyring(name) {
            return Err(fail());
        }
        let keyring = std::str::from_utf8(name).map_err(|_| fail())?;
        pos += klen;
        let subject = if flags & FLAG_SUBJECT != 0 {
            let s = bytes.get(pos..pos + SUBJECT_ID_LEN).ok_or_else(fail)?;
            pos += SUBJECT_ID_LEN;
            Some(s)
        } else {
            None
        };
        let key_start = pos;
        let v: [u8; 4] = bytes
            .get(pos..pos + 4)
            .ok_or_else(fail)?
            .try_into()
            .map_err(|_| fail())?;
        let key_version = u32::from_be_bytes(v);
        if key_version == 0 {
            return Err(fail());
        }
        pos += 4;
        let (key_end, body_start, min_body) = match suite {
            Suite::Aes256GcmHkdf => {
                let key_end = pos + WRAPPED_DEK_LEN;
                (key_end, key_end + NONCE_LEN + COMMITMENT_LEN, TAG_LEN)
            }
            Suite::Aes256Siv => (pos, pos + COMMITMENT_LEN, SIV_LEN),
        };
        if bytes.len() < body_start + min_body {
            return Err(fail());
        }
        let domain = if flags & FLAG_INTERNAL != 0 {
            Domain::Internal
        } else {
            Domain::Caller
        };
        Ok(Envelope {
            bytes,
            suite,
            domain,
            keyring,
            subject,
            key_version,
            key_part: (key_start, key_end),
            body_start,
        })
    }

    /// The algorithm suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Whose envelope it is: the caller's or the vault's own (records, vaulted tokens).
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The keyring id.
    pub fn keyring(&self) -> &'a str {
        self.keyring
    }

    /// The key version: of the keyring's KEK, or of the subject key for subject envelopes.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The subject key id, when the DEK is wrapped by a subject key.
    pub fn subject_key_id(&self) -> Option<&'a [u8]> {
        self.subject
    }

    /// Whether this is a deterministic envelope.
    pub fn is_deterministic(&self) -> bool {
        self.suite == Suite::Aes256Siv
    }

    /// The whole envelope.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length of the plaintext this envelope decrypts to.
    pub fn plaintext_len(&self) -> usize {
        self.bytes.len() - self.body_start - TAG_LEN
    }

    fn wrap_aad(&self, version: u32) -> Vec<u8> {
        wrap_aad(&self.bytes[..self.key_part.0], version)
    }

    fn commitment(&self) -> &'a [u8] {
        &self.bytes[self.body_start - COMMITMENT_LEN..self.body_start]
    }
}

fn wrap_aad(stable_prefix: &[u8], version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_LABEL.len() + stable_prefix.len() + 4);
    aad.extend_from_slice(WRAP_AAD_LABEL);
    aad.extend_from_slice(stable_prefix);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn header_prefix(
    suite: Suite,
    keyring: &str,
    subject: Option<&[u8; SUBJECT_ID_LEN]>,
    domain: Domain,
) -> Result<Vec<u8>> {
    check_keyring_name(keyring)?;
    let mut out =
        Vec::with_capacity(7 + keyring.len() + SUBJECT_ID_LEN + 4 + WRAPPED_DEK_LEN + 44 + 64);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(suite.id());
    out.push(if subject.is_some() { FLAG_SUBJECT } else { 0 } | domain.flag());
    out.push(keyring.len() as u8);
    out.extend_from_slice(keyring.as_bytes());
    if let Some(s) = subject {
        out.extend_from_slice(s);
    }
    Ok(out)
}

/// Payload key and commitment derived from a DEK, under the label of the envelope's domain.
fn payload_keys(dek: &Key32, domain: Domain) -> Result<(Key32, [u8; COMMITMENT_LEN])> {
    let mut okm = Zeroizing::new([0u8; KEY_LEN + COMMITMENT_LEN]);
    kdf::expand(dek, &[domain.payload_label()], okm.as_mut())?;
    let key = Key32::from_slice(&okm[..KEY_LEN])?;
    let mut commit = [0u8; COMMITMENT_LEN];
    commit.copy_from_slice(&okm[KEY_LEN..]);
    Ok((key, commit))
}

/// The random inputs of one randomized envelope (fixed in tests for known answers).
pub(crate) struct SealRandomness {
    pub dek: Key32,
    pub wrap_nonce: [u8; NONCE_LEN],
    pub nonce: [u8; NONCE_LEN],
}

/// Random bytes one randomized envelope needs: DEK, wrap nonce, payload nonce.
const SEAL_RANDOM_LEN: usize = KEY_LEN + 2 * NONCE_LEN;

/// Envelopes whose randomness [`seal_many`] draws with one call to the OS CSPRNG (3.5 KiB).
pub(crate) const SEAL_MANY_CHUNK: usize = 64;

impl SealRandomness {
    pub(crate) fn fresh() -> Result<Self> {
        let mut buf = Zeroizing::new([0u8; SEAL_RANDOM_LEN]);
        crate::random::fill_random(buf.as_mut())?;
        Self::from_bytes(buf.as_ref())
    }

    /// Takes the randomness of one envelope from `SEAL_RANDOM_LEN` fresh random bytes; the
    /// caller wipes them.
    fn from_bytes(buf: &[u8]) -> Result<Self> {
        if buf.len() != SEAL_RANDOM_LEN {
            return Err(Error::Crypto("envelope randomness length"));
        }
        let dek = Key32::from_slice(&buf[..KEY_LEN])?;
        let mut wrap_nonce = [0u8; NONCE_LEN];
        wrap_nonce.copy_from_slice(&buf[KEY_LEN..KEY_LEN + NONCE_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&buf[KEY_LEN + NONCE_LEN..]);
        Ok(SealRandomness {
            dek,
            wrap_nonce,
            nonce,
        })
    }
}

/// Encrypts many plaintexts, each bound to its own context, into randomized envelopes under
/// `kek` of `keyring`: the same envelopes as [`seal`] called once per item (a fresh DEK and
/// fresh nonces for every envelope), but the randomness of up to 64 envelopes comes from one
/// call to the operating system's CSPRNG instead of one call each. For small values that call
/// is the largest single cost of an envelope (see benches/RESULTS.md).
///
/// Nothing is kept between calls (no user-space random pool), so this is as fork- and
/// VM-snapshot-safe as [`seal`]; the random bytes of a chunk are wiped as soon as the chunk is
/// sealed. Fails as a whole on the first error.
pub fn seal_many(
    backend: Backend,
    keyring: &str,
    kek: &Kek,
    items: &[(&[u8], &Context)],
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(items.len());
    let mut random = Zeroizing::new([0u8; SEAL_MANY_CHUNK * SEAL_RANDOM_LEN]);
    for chunk in items.chunks(SEAL_MANY_CHUNK) {
        let bytes = &mut random[..chunk.len() * SEAL_RANDOM_LEN];
        crate::random::fill_random(bytes)?;
        for ((plaintext, ctx), rnd) in chunk.iter().zip(bytes.chunks(SEAL_RANDOM_LEN)) {
            let rnd = SealRandomness::from_bytes(rnd)?;
            out.push(seal_with(
                backend,
                keyring,
                None,
                Domain::Caller,
                kek,
                plaintext,
                ctx,
                rnd,
            )?);
        }
        bytes.zeroize();
    }
    Ok(out)
}

/// Encrypts `plaintext` bound to `ctx` into a randomized envelope under `kek` of `keyring`.
pub fn seal(
    backend: Backend,
    keyring: &str,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
) -> Result<Vec<u8>> {
    seal_with(
        backend,
        keyring,
        None,
        Domain::Caller,
        kek,
        plaintext,
        ctx,
        SealRandomness::fresh()?,
    )
}

/// Like [`seal`], in the vault's own domain ([`Domain::Internal`]): records and vaulted
/// token values.
pub(crate) fn seal_internal(
    backend: Backend,
    keyring: &str,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
) -> Result<Vec<u8>> {
    seal_with(
        backend,
        keyring,
        None,
        Domain::Internal,
        kek,
        plaintext,
        ctx,
        SealRandomness::fresh()?,
    )
}

/// Like [`seal`], with the DEK wrapped by a subject key (id and key given by the caller), in
/// `domain`.
pub(crate) fn seal_for_subject(
    backend: Backend,
    keyring: &str,
    subject: &[u8; SUBJECT_ID_LEN],
    domain: Domain,
    subject_key: &Kek,
    plaintext: &[u8],
    ctx: &Context,
) -> Result<Vec<u8>> {
    seal_with(
        backend,
        keyring,
        Some(subject),
        domain,
        subject_key,
        plaintext,
        ctx,
        SealRandomness::fresh()?,
    )
}

#[allow(clippy::too_many_arguments)] // one internal constructor behind the public seal calls
pub(crate) fn seal_with(
    backend: Backend,
    keyring: &str,
    subject: Option<&[u8; SUBJECT_ID_LEN]>,
    domain: Domain,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
    rnd: SealRandomness,
) -> Result<Vec<u8>> {
    // Everything is reserved up front: the plaintext is copied once, into its final place,
    // and encrypted there, so no reallocation leaves a plaintext copy behind in freed memory.
    let head = seal_head(
        keyring,
        subject,
        domain,
        kek,
        ctx,
        &rnd,
        plaintext.len() + TAG_LEN,
    )?;
    let mut out = head.bytes;
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    match backend.seal_once(
        &head.payload_key,
        &rnd.nonce,
        &head.aad,
        &mut out[body_start..],
    ) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        Err(e) => {
            // The plaintext was copied into `out`: wipe it before the buffer is freed.
            out.zeroize();
            Err(e)
        }
    }
}

/// Like [`seal`], but writes the envelope into `out`, reusing its memory: `out` is
/// overwritten (its old contents are not kept) and ends up holding exactly the envelope.
///
/// For large payloads in a loop this is the fast form: once `out` has grown to the size
/// needed, no call allocates, and with [`Backend::AwsLc`] the payload is encrypted straight
/// from `plaintext` into `out` (read once, written once) instead of copied first.
pub fn seal_into(
    backend: Backend,
    keyring: &str,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<()> {
    seal_into_with(
        backend,
        keyring,
        kek,
        plaintext,
        ctx,
        SealRandomness::fresh()?,
        out,
    )
}

fn seal_into_with(
    backend: Backend,
    keyring: &str,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
    rnd: SealRandomness,
    out: &mut Vec<u8>,
) -> Result<()> {
    let head = seal_head(keyring, None, Domain::Caller, kek, ctx, &rnd, 0)?;
    let body_start = head.bytes.len();
    let body_end = body_start + plaintext.len();
    // Grow (zero-filled) only when `out` is too short; shrinking writes nothing.
    out.resize(body_end + TAG_LEN, 0);
    out[..body_start].copy_from_slice(&head.bytes);
    let sealed = backend.aes256gcm(&head.payload_key).and_then(|key| {
        key.seal_to(
            &rnd.nonce,
            &head.aad,
            plaintext,
            &mut out[body_start..body_end],
        )
    });
    match sealed {
        Ok(tag) => {
            out[body_end..].copy_from_slice(&tag);
            Ok(())
        }
        Err(e) => {
            // A backend that copies before sealing may have left plaintext in `out`.
            out.zeroize();
            Err(e)
        }
    }
}

/// The part of a randomized envelope before its body, and what sealing the body needs.
struct SealHead {
    /// Stable header, key part, payload nonce and commitment (the body goes after them).
    bytes: Vec<u8>,
    /// The payload's additional data: stable header, nonce, commitment, caller context.
    aad: Vec<u8>,
    /// The payload key derived from the DEK.
    payload_key: Key32,
}

fn seal_head(
    keyring: &str,
    subject: Option<&[u8; SUBJECT_ID_LEN]>,
    domain: Domain,
    kek: &Kek,
    ctx: &Context,
    rnd: &SealRandomness,
    body_capacity: usize,
) -> Result<SealHead> {
    let mut out = header_prefix(Suite::Aes256GcmHkdf, keyring, subject, domain)?;
    let stable_len = out.len();
    out.reserve_exact(4 + WRAPPED_DEK_LEN + NONCE_LEN + COMMITMENT_LEN + body_capacity);
    let (payload_key, commitment) = payload_keys(&rnd.dek, domain)?;

    // Key part: version and wrapped DEK.
    let waad = wrap_aad(&out, kek.version);
    out.extend_from_slice(&kek.version.to_be_bytes());
    out.extend_from_slice(&rnd.wrap_nonce);
    let dek_start = out.len();
    out.extend_from_slice(rnd.dek.expose());
    let wrap_tag = kek
        .aead
        .seal_detached(&rnd.wrap_nonce, &waad, &mut out[dek_start..])?;
    out.extend_from_slice(&wrap_tag);
    let key_end = out.len();

    out.extend_from_slice(&rnd.nonce);
    out.extend_from_slice(&commitment);

    let mut aad = Vec::with_capacity(stable_len + NONCE_LEN + COMMITMENT_LEN + 64);
    aad.extend_from_slice(&out[..stable_len]);
    aad.extend_from_slice(&out[key_end..]);
    ctx.encode_into(&mut aad)?;
    Ok(SealHead {
        bytes: out,
        aad,
        payload_key,
    })
}

/// Deterministic keys of a KEK version: the 64-byte AES-SIV key and its commitment.
fn siv_keys(kek: &Kek) -> Result<(Zeroizing<[u8; 64]>, [u8; COMMITMENT_LEN])> {
    let mut key = Zeroizing::new([0u8; 64]);
    kdf::expand(kek.key(), &[label::SIV_KEY], key.as_mut())?;
    let mut commit = [0u8; COMMITMENT_LEN];
    kdf::expand(kek.key(), &[label::SIV_COMMIT], &mut commit)?;
    Ok((key, commit))
}

/// Encrypts deterministically (AES-256-SIV): equal plaintexts under an equal context, keyring
/// and key version give equal envelopes. Use only where equality lookups are needed.
pub fn seal_deterministic(
    keyring: &str,
    kek: &Kek,
    plaintext: &[u8],
    ctx: &Context,
) -> Result<Vec<u8>> {
    use aes_siv::KeyInit;
    let mut out = header_prefix(Suite::Aes256Siv, keyring, None, Domain::Caller)?;
    out.extend_from_slice(&kek.version.to_be_bytes());
    let (key, commit) = siv_keys(kek)?;
    out.extend_from_slice(&commit);
    let mut ctx_bytes = Vec::new();
    ctx.encode_into(&mut ctx_bytes)?;
    let mut siv = aes_siv::siv::Aes256Siv::new(key.as_ref().into());
    let body = siv
        .encrypt([out.as_slice(), ctx_bytes.as_slice()], plaintext)
        .map_err(|_| Error::Crypto("AES-SIV encryption"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Authenticates and decrypts an envelope with the KEK (or subject key) its header names.
/// Every failure is [`Error::AuthenticationFailed`].
pub fn open(backend: Backend, env: &Envelope<'_>, kek: &Kek, ctx: &Context) -> Result<SecretBytes> {
    match env.suite {
        Suite::Aes256GcmHkdf => {
            let body = gcm_body(env, kek, ctx)?;
            let mut buf = body.ciphertext.to_vec();
            backend.open_once(
                &body.payload_key,
                &body.nonce,
                &body.aad,
                &mut buf,
                &body.tag,
            )?;
            Ok(SecretBytes::new(buf))
        }
        Suite::Aes256Siv => open_siv(env, kek, ctx),
    }
}

/// Like [`open`], but writes the plaintext into `out`, reusing its memory: on success `out`
/// holds exactly the plaintext; on any failure it is wiped (its whole capacity) and emptied,
/// and the error is [`Error::AuthenticationFailed`].
///
/// `out` then holds PHI: the caller owns its wiping (for example by keeping it in a
/// `zeroize::Zeroizing<Vec<u8>>`). Shrinking `out` leaves older, longer plaintexts in its
/// spare capacity until it is wiped or reused. With [`Backend::AwsLc`] the ciphertext is
/// decrypted straight into `out`, with no intermediate copy.
pub fn open_into(
    backend: Backend,
    env: &Envelope<'_>,
    kek: &Kek,
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<()> {
    let res = match env.suite {
        Suite::Aes256GcmHkdf => gcm_body(env, kek, ctx).and_then(|body| {
            out.resize(body.ciphertext.len(), 0);
            backend.aes256gcm(&body.payload_key)?.open_to(
                &body.nonce,
                &body.aad,
                body.ciphertext,
                &body.tag,
                out,
            )
        }),
        Suite::Aes256Siv => open_siv(env, kek, ctx).map(|pt| {
            out.clear();
            out.extend_from_slice(pt.expose());
        }),
    };
    if res.is_err() {
        out.zeroize();
    }
    res
}

/// What opening an AES-256-GCM envelope's body needs, after the DEK was unwrapped and checked
/// against the commitment.
struct GcmBody<'a> {
    payload_key: Key32,
    nonce: [u8; NONCE_LEN],
    aad: Vec<u8>,
    ciphertext: &'a [u8],
    tag: [u8; TAG_LEN],
}

fn gcm_body<'a>(env: &Envelope<'a>, kek: &Kek, ctx: &Context) -> Result<GcmBody<'a>> {
    if kek.version != env.key_version {
        return Err(Error::AuthenticationFailed);
    }
    let b = env.bytes;
    let (ks, ke) = env.key_part;
    let dek = kek_unwrap_dek(env, kek)?;
    let (payload_key, commitment) = payload_keys(&dek, env.domain)?;
    if !ct_eq(&commitment, env.commitment()) {
        return Err(Error::AuthenticationFailed);
    }
    let nonce: [u8; NONCE_LEN] = b[ke..ke + NONCE_LEN]
        .try_into()
        .map_err(|_| Error::AuthenticationFailed)?;
    let mut aad = Vec::with_capacity(ks + NONCE_LEN + COMMITMENT_LEN + 64);
    aad.extend_from_slice(&b[..ks]);
    aad.extend_from_slice(&b[ke..env.body_start]);
    ctx.encode_into(&mut aad)?;
    let body = &b[env.body_start..];
    let split = body
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(Error::AuthenticationFailed)?;
    let (ciphertext, tag) = body.split_at(split);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::AuthenticationFailed)?;
    Ok(GcmBody {
        payload_key,
        nonce,
        aad,
        ciphertext,
        tag,
    })
}

fn open_siv(env: &Envelope<'_>, kek: &Kek, ctx: &Context) -> Result<SecretBytes> {
    use aes_siv::KeyInit;
    if kek.version != env.key_version {
        return Err(Error::AuthenticationFailed);
    }
    let mut ctx_bytes = Vec::new();
    ctx.encode_into(&mut ctx_bytes)?;
    let b = env.bytes;
    let (key, commit) = siv_keys(kek)?;
    if !ct_eq(&commit, env.commitment()) {
        return Err(Error::AuthenticationFailed);
    }
    let mut siv = aes_siv::siv::Aes256Siv::new(key.as_ref().into());
    let pt = siv
        .decrypt(
            [&b[..env.body_start], ctx_bytes.as_slice()],
            &b[env.body_start..],
        )
        .map_err(|_| Error::AuthenticationFailed)?;
    Ok(SecretBytes::new(pt))
}

/// Rewraps a randomized envelope from `old` to `new` KEK of the same keyring: only the key
/// version and the wrapped DEK change; the payload ciphertext and its context binding stay.
/// The DEK is checked against the commitment before it is wrapped again.
pub fn rewrap(env: &Envelope<'_>, old: &Kek, new: &Kek) -> Result<Vec<u8>> {
    if env.suite != Suite::Aes256GcmHkdf {
        return Err(Error::invalid(
            "envelope",
            "deterministic envelopes are re-encrypted, not rewrapped",
        ));
    }
    if old.version != env.key_version {
        return Err(Error::AuthenticationFailed);
    }
    let b = env.bytes;
    let (ks, ke) = env.key_part;
    let mut dek = kek_unwrap_dek(env, old)?;
    let (_, commitment) = payload_keys(&dek, env.domain)?;
    if !ct_eq(&commitment, env.commitment()) {
        return Err(Error::AuthenticationFailed);
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..ks]);
    out.extend_from_slice(&new.version.to_be_bytes());
    let wrapped = new.wrap(&env.wrap_aad(new.version), dek.expose())?;
    dek.zeroize();
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&b[ke..]);
    Ok(out)
}

fn kek_unwrap_dek(env: &Envelope<'_>, kek: &Kek) -> Result<Key32> {
    let (ks, ke) = env.key_part;
    let dek = kek.unwrap(&env.wrap_aad(env.key_version), &env.bytes[ks + 4..ke])?;
    Key32::from_slice(dek.expose()).map_err(|_| Error::AuthenticationFailed)
}

/// Authenticates what of an envelope can be without its context (`integrity::verify`): for
/// the randomized suite, the header, key version and wrapped DEK (the wrap's tag) and the
/// commitment; for the deterministic suite only that `kek` has the envelope's version.
pub(crate) fn check_key_part(env: &Envelope<'_>, kek: &Kek) -> Result<()> {
    if kek.version != env.key_version {
        return Err(Error::AuthenticationFailed);
    }
    if env.suite != Suite::Aes256GcmHkdf {
        return Ok(());
    }
    let dek = kek_unwrap_dek(env, kek)?;
    let (_, commitment) = payload_keys(&dek, env.domain)?;
    if !ct_eq(&commitment, env.commitment()) {
        return Err(Error::AuthenticationFailed);
    }
    Ok(())
}

/// Encodes a binary envelope in its text form, `pv1:<keyring>:<version>:<base64url>`, for
/// database columns and CSV. The prefix shows keyring and key version without decrypting.
pub fn to_text(bytes: &[u8]) -> Result<String> {
    let env = Envelope::parse(bytes)?;
    Ok(format!(
        "{TEXT_PREFIX}{}:{}:{}",
        env.keyring,
        env.key_version,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Decodes the text form back to the binary envelope. The prefix must agree with the header
/// inside; otherwise the result is [`Error::AuthenticationFailed`]. A text form of another
/// format version (`pv2:`, ...) gives [`Error::UnsupportedVersion`].
pub fn from_text(text: &str) -> Result<Vec<u8>> {
    let text = text.trim_end_matches(['\n', '\r']);
    let Some(rest) = text.strip_prefix(TEXT_PREFIX) else {
        return Err(match text_version(text.as_bytes()) {
            Some(version) => Error::UnsupportedVersion {
                what: "text envelope",
                version,
            },
            None => Error::AuthenticationFailed,
        });
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(keyring), Some(version), Some(b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::AuthenticationFailed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Error::AuthenticationFailed)?;
    let env = Envelope::parse(&bytes)?;
    if env.keyring != keyring || version != env.key_version.to_string() {
        return Err(Error::AuthenticationFailed);
    }
    Ok(bytes)
}

/// The version number of a text form `pv<N>:...`, if `data` has that shape.
fn text_version(data: &[u8]) -> Option<u32> {
    let rest = data.strip_prefix(b"pv")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 9 || rest.get(digits) != Some(&b':') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Whether `data` looks like a text form of any version (`pv<N>:`); binary envelopes start
/// with the upper-case magic `PVE` and never match.
pub fn is_text(data: &[u8]) -> bool {
    text_version(data).is_some()
}

/// The binary form of an envelope given in either form: `data` itself when it is binary, the
/// decoded text form ([`from_text`]) otherwise. Nothing is checked beyond what [`from_text`]
/// checks; parse the result with [`Envelope::parse`].
pub fn to_binary(data: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if !is_text(data) {
        return Ok(std::borrow::Cow::Borrowed(data));
    }
    let text = std::str::from_utf8(data).map_err(|_| Error::AuthenticationFailed)?;
    Ok(std::borrow::Cow::Owned(from_text(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(v: u32, byte: u8, backend: Backend) -> Kek {
        Kek::new(v, Key32::from_slice(&[byte; 32]).expect("32"), backend).expect("kek")
    }

    fn fixed() -> SealRandomness {
        SealRandomness {
            dek: Key32::from_slice(&[0x11; 32]).expect("32"),
            wrap_nonce: [0x22; 12],
            nonce: [0x33; 12],
        }
    }

    /// Every backend built in, and the buffer-reusing `seal_into` / `open_into`, write and read
    /// exactly the envelopes `seal_with` writes with ring, for lengths around block, chunk and
    /// allocation boundaries, with `out` buffers that start empty, shorter and longer.
    #[test]
    fn every_backend_and_the_into_forms_agree() {
        let ctx = Context::new().with("record", "1").with("field", "note");
        let mut reused = Vec::new();
        for len in [0usize, 1, 15, 16, 17, 64, 1000, 70_000, 5, 300_000, 3] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let reference = seal_with(
                Backend::Ring,
                "default",
                None,
                Domain::Caller,
                &kek(1, 7, Backend::Ring),
                &pt,
                &ctx,
                fixed(),
            )
            .expect("ring");
            for &backend in Backend::AVAILABLE {
                let k = kek(1, 7, backend);
                let a = seal_with(
                    backend,
                    "default",
                    None,
                    Domain::Caller,
                    &k,
                    &pt,
                    &ctx,
                    fixed(),
                )
                .expect("seal");
                assert_eq!(a, reference, "{backend:?} len {len}");
                seal_into_with(backend, "default", &k, &pt, &ctx, fixed(), &mut reused)
                    .expect("seal_into");
                assert_eq!(reused, reference, "{backend:?} seal_into len {len}");
                let env = Envelope::parse(&reference).expect("parse");
                let mut opened = vec![0xEE; (len * 3) % 1000];
                open_into(backend, &env, &k, &ctx, &mut opened).expect("open_into");
                assert_eq!(opened, pt, "{backend:?} open_into len {len}");
                assert_eq!(
                    open(backend, &env, &k, &ctx).expect("open").expose(),
                    &pt[..]
                );
                // A flipped bit, another context or another key: authentication failed, and
                // `out` is wiped and emptied.
                let mut bad = reference.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                let bad_env = Envelope::parse(&bad).expect("parse");
                let other_ctx = Context::new().with("record", "2").with("field", "note");
                for (e, c, kk) in [
                    (&bad_env, &ctx, &k),
                    (&env, &other_ctx, &k),
                    (&env, &ctx, &kek(1, 8, backend)),
                ] {
                    let mut out = vec![0xEE; 40];
                    assert!(matches!(
                        open_into(backend, e, kk, c, &mut out),
                        Err(Error::AuthenticationFailed)
                    ));
                    assert!(out.is_empty(), "{backend:?}: out emptied after a failure");
                }
            }
            // A fresh `seal_into` (random DEK) opens too.
            seal_into(
                Backend::AVAILABLE[0],
                "default",
                &kek(1, 7, Backend::Ring),
                &pt,
                &ctx,
                &mut reused,
            )
            .expect("seal_into");
            let env = Envelope::parse(&reused).expect("parse");
            let opened = open(Backend::Ring, &env, &kek(1, 7, Backend::Ring), &ctx).expect("open");
            assert_eq!(opened.expose(), &pt[..]);
        }
    }

    #[test]
    fn seal_many_is_seal_per_item() {
        let k = kek(2, 5, Backend::Ring);
        let ctxs: Vec<Context> = (0..150)
            .map(|i| Context::new().with("record", i.to_string()))
            .collect();
        let pts: Vec<Vec<u8>> = (0..150).map(|i| vec![i as u8; i % 70]).collect();
        let items: Vec<(&[u8], &Context)> = pts
            .iter()
            .zip(&ctxs)
            .map(|(p, c)| (p.as_slice(), c))
            .collect();
        let many = seal_many(Backend::Ring, "default", &k, &items).expect("seal_many");
        assert_eq!(many.len(), items.len());
        let mut wrapped = std::collections::HashSet::new();
        let mut nonces = std::collections::HashSet::new();
        for ((ct, (pt, ctx)), single) in many.iter().zip(&items).zip(
            items
                .iter()
                .map(|(p, c)| seal(Backend::Ring, "default", &k, p, c).expect("seal")),
        ) {
            // Same layout as a single seal; opens under its own context only.
            assert_eq!(ct.len(), single.len());
            let env = Envelope::parse(ct).expect("parse");
            assert_eq!(
                open(Backend::Ring, &env, &k, ctx).expect("open").expose(),
                *pt
            );
            assert!(open(Backend::Ring, &env, &k, &Context::new()).is_err());
            // A fresh DEK and fresh nonces for every envelope.
            let (ks, ke) = env.key_part;
            assert!(wrapped.insert(ct[ks + 4..ke].to_vec()));
            assert!(nonces.insert(ct[ke..ke + NONCE_LEN].to_vec()));
        }
        assert!(
            seal_many(Backend::Ring, "default", &k, &[])
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let ctx = Context::new().with("record", "9");
        let k = kek(3, 9, Backend::Ring);
        for det in [false, true] {
            let ct = if det {
                seal_deterministic("notes", &k, b"PHI: 123-45-6789", &ctx)
            } else {
                seal(Backend::Ring, "notes", &k, b"PHI: 123-45-6789", &ctx)
            }
            .expect("seal");
            for bit in 0..ct.len() * 8 {
                let mut bad = ct.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let res = Envelope::parse(&bad).and_then(|e| open(Backend::Ring, &e, &k, &ctx));
                assert!(res.is_err(), "det={det} flip of bit {bit} was accepted");
            }
            for cut in 0..ct.len() {
                let res =
                    Envelope::parse(&ct[..cut]).and_then(|e| open(Backend::Ring, &e, &k, &ctx));
                assert!(res.is_err(), "truncation to {cut} accepted");
            }
        }
    }

    #[test]
    fn rewrap_keeps_payload_and_context() {
        let ctx = Context::new().with("record", "5");
        let (k1, k2) = (kek(1, 1, Backend::Ring), kek(2, 2, Backend::Ring));
        let ct = seal(Backend::Ring, "default", &k1, b"note", &ctx).expect("seal");
        let env = Envelope::parse(&ct).expect("parse");
        let re = rewrap(&env, &k1, &k2).expect("rewrap");
        assert_eq!(re.len(), ct.len());
        let renv = Envelope::parse(&re).expect("parse");
        assert_eq!(renv.key_version(), 2);
        // payload bytes unchanged
        assert_eq!(&re[renv.body_start..], &ct[env.body_start..]);
        assert_eq!(
            open(Backend::Ring, &renv, &k2, &ctx)
                .expect("open")
                .expose(),
            b"note"
        );
        assert!(
            open(
                Backend::Ring,
                &renv,
                &k2,
                &Context::new().with("record", "6")
            )
            .is_err()
        );
        assert!(open(Backend::Ring, &renv, &k1, &ctx).is_err());
    }

    #[test]
    fn swapped_wrapped_dek_is_rejected() {
        let ctx = Context::new();
        let k = kek(1, 1, Backend::Ring);
        let a = seal(Backend::Ring, "default", &k, b"aaaa", &ctx).expect("a");
        let b = seal(Backend::Ring, "default", &k, b"bbbb", &ctx).expect("b");
        let ea = Envelope::parse(&a).expect("a");
        let (ks, ke) = ea.key_part;
        let mut mixed = a.clone();
        mixed[ks..ke].copy_from_slice(&b[ks..ke]);
        let em = Envelope::parse(&mixed).expect("parse");
        assert!(matches!(
            open(Backend::Ring, &em, &k, &ctx),
            Err(Error::AuthenticationFailed)
        ));
    }

    #[test]
    fn deterministic_is_deterministic_and_bound() {
        let k = kek(1, 4, Backend::Ring);
        let c1 = Context::new().with("field", "ssn");
        let a = seal_deterministic("ids", &k, b"123-45-6789", &c1).expect("a");
        let b = seal_deterministic("ids", &k, b"123-45-6789", &c1).expect("b");
        let c = seal_deterministic("ids", &k, b"123-45-6780", &c1).expect("c");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let env = Envelope::parse(&a).expect("parse");
        assert!(env.is_deterministic());
        assert_eq!(
            open(Backend::Ring, &env, &k, &c1).expect("open").expose(),
            b"123-45-6789"
        );
        assert!(open(Backend::Ring, &env, &k, &Context::new()).is_err());
    }

    #[test]
    fn text_form_round_trips_and_checks_prefix() {
        let k = kek(7, 4, Backend::Ring);
        let ct = seal(Backend::Ring, "notes", &k, b"x", &Context::new()).expect("seal");
        let t = to_text(&ct).expect("text");
        assert!(t.starts_with("pv1:notes:7:"), "{t}");
        assert_eq!(from_text(&t).expect("from"), ct);
        let forged = t.replacen("pv1:notes:7:", "pv1:notes:8:", 1);
        assert!(from_text(&forged).is_err());
        assert!(from_text("pv1:notes:7:!!!").is_err());
        assert!(from_text("").is_err());
        assert!(matches!(
            from_text("pv9:a:1:AA"),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn unknown_version_is_named() {
        let k = kek(1, 4, Backend::Ring);
        let mut ct = seal(Backend::Ring, "default", &k, b"x", &Context::new()).expect("seal");
        ct[3] = 2;
        assert!(matches!(
            Envelope::parse(&ct),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
    }
}
