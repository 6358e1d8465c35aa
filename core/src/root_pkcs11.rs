//! A hardware root of trust: a [`RootKeySource`] whose key is an AES-256 key inside a PKCS#11
//! token (an HSM, a smart card, SoftHSM2 for tests), feature `pkcs11`.
//!
//! The key is generated on the token as sensitive and non-extractable and never leaves it: the
//! vault master key is wrapped and unwrapped by the token itself, with `CKM_AES_GCM` (a fresh
//! 96-bit IV from the operating system per wrap, 128-bit tag, the vault header as associated
//! data). The vault header stores only the key's label (`RootParams::External`, kind
//! `pkcs11`), so rotating the root is [`Vault::rotate_root`](crate::Vault::rotate_root) to a
//! source naming a new label; the old key can then be destroyed on the token.
//!
//! ```no_run
//! use phivault::root_pkcs11::Pkcs11Root;
//! use phivault::Vault;
//! let hsm = Pkcs11Root::new("/usr/lib/softhsm/libsofthsm2.so", "phivault", "1234", "vault-root-1")?;
//! hsm.generate_key()?;                       // once: an AES-256 key that cannot be exported
//! let vault = Vault::create("./vault", &hsm)?;
//! # Ok::<(), phivault::Error>(())
//! ```
//!
//! # Security notes
//! The PIN is held in memory (zeroized on drop) for the life of the source. Every open costs one
//! session, one login and one `C_Decrypt` on the token; wrapping (create, root rotation) one
//! `C_Encrypt`. Anyone who holds the token and its PIN can unwrap the vault master key.
//!
//! PKCS#11 login state belongs to the whole process, not to a session: while one vault's
//! session is logged in, the token answers another `C_Login` with "already logged in" without
//! checking its PIN. So every new session logs the process out and logs in with its own PIN
//! (a wrong PIN is `Error::WrongRootKey` whatever else is open), and open keys log in again
//! with their verified PIN, and look their key handle up again, before each token operation.
//! Token work in one process is serialised by a lock; a wrong PIN counts against the token's
//! retry limit, as it should.

use crate::root::{RootKey, RootKeySource, RootParams};
use crate::secret::SecretBytes;
use crate::{Error, Result};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

/// The kind name stored in the vault header.
pub const KIND: &str = "pkcs11";
/// Format byte of the parameters stored in the header: `1 || key label (UTF-8)`.
const PARAMS_FORMAT: u8 = 1;
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

/// One initialised module per library path for the whole process: PKCS#11 allows a single
/// `C_Initialize`, and dropping a context would finalise it for everyone.
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = MODULES
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .map_err(|_| Error::Crypto("a lock was poisoned by a panic in another thread"))?;
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    let m = Pkcs11::new(path).map_err(|_| Error::Crypto("PKCS#11 module could not be loaded"))?;
    match m.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(cryptoki::error::Error::AlreadyInitialized) => {}
        Err(_) => return Err(Error::Crypto("PKCS#11 module could not be initialised")),
    }
    map.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// Serialises this process's token work: sessions share one login state per application, so
/// a session closing (and logging the token out) must not interleave with another's use.
static TOKEN: Mutex<()> = Mutex::new(());

fn token_lock() -> Result<std::sync::MutexGuard<'static, ()>> {
    TOKEN
        .lock()
        .map_err(|_| Error::Crypto("a lock was poisoned by a panic in another thread"))
}

fn token_error(_: cryptoki::error::Error) -> Error {
    // The token's return value is not shown: it could tell an attacker which check failed.
    Error::Crypto("PKCS#11 token operation failed")
}

/// Logs `session` in again with a PIN the token accepted when the key was unlocked: a later
/// [`Pkcs11Root`] session logs the whole process out before it checks its own PIN, and a wrong
/// PIN leaves it logged out. "Already logged in" is fine here, the PIN was verified before.
fn relogin(session: &Session, pin: &Zeroizing<String>) -> Result<()> {
    match session.login(UserType::User, Some(&AuthPin::new(pin.as_str().into()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
            Ok(())
        }
        Err(e) => Err(token_error(e)),
    }
}

/// A root key source on a PKCS#11 token: module, token label, user PIN, and the label of the
/// AES key that new vaults (and root rotations) use.
pub struct Pkcs11Root {
    module: PathBuf,
    token_label: String,
    pin: Zeroizing<String>,
    key_label: String,
}

impl std::fmt::Debug for Pkcs11Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Root")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Root {
    /// A source on the token labelled `token_label` in the PKCS#11 library `module`, logging in
    /// with the user `pin`; `key_label` names the AES key new vaults are wrapped with.
    pub fn new(
        module: impl AsRef<Path>,
        token_label: &str,
        pin: &str,
        key_label: &str,
    ) -> Result<Self> {
        if key_label.is_empty() || key_label.len() > 255 {
            return Err(Error::invalid(
                "PKCS#11 key label",
                "must be 1 to 255 bytes",
            ));
        }
        Ok(Pkcs11Root {
            module: module.as_ref().to_path_buf(),
            token_label: token_label.to_owned(),
            pin: Zeroizing::new(pin.to_owned()),
            key_label: key_label.to_owned(),
        })
    }

    /// The label of the key new vaults use.
    pub fn key_label(&self) -> &str {
        &self.key_label
    }

    /// A new session, logged in with this source's PIN. The PIN is always checked by the token:
    /// login state is shared by every session of the process, so a `C_Login` while another
    /// vault's session is logged in would answer "already logged in" without looking at the
    /// PIN. The process is logged out first (under the token lock; open keys log in again with
    /// their verified PIN before their next operation, see [`relogin`]).
    fn session(&self) -> Result<Session> {
        let m = module(&self.module)?;
        let slot = self.slot(&m)?;
        let session = m.open_rw_session(slot).map_err(token_error)?;
        match session.logout() {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserNotLoggedIn, _)) => {
            }
            Err(e) => return Err(token_error(e)),
        }
        match session.login(
            UserType::User,
            Some(&AuthPin::new(self.pin.as_str().into())),
        ) {
            Ok(()) => Ok(session),
            // After the logout nothing else may have logged in: fail closed.
            Err(_) => Err(Error::WrongRootKey),
        }
    }

    fn slot(&self, m: &Pkcs11) -> Result<Slot> {
        for slot in m.get_slots_with_token().map_err(token_error)? {
            let info = m.get_token_info(slot).map_err(token_error)?;
            if info.label().trim_end() == self.token_label {
                return Ok(slot);
            }
        }
        Err(Error::invalid("PKCS#11 token", "no token with that label"))
    }

    fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(token_error)?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(Error::invalid(
                "PKCS#11 key label",
                "names more than one key",
            )),
        }
    }

    /// Generates this source's AES-256 key on the token (sensitive, non-extractable, a token
    /// object), unless a key with its label exists. Returns whether one was generated.
    pub fn generate_key(&self) -> Result<bool> {
        let _token = token_lock()?;
        let session = self.session()?;
        if Self::find_key(&session, &self.key_label)?.is_some() {
            return Ok(false);
        }
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(self.key_label.as_bytes().to_vec()),
                ],
            )
            .map_err(token_error)?;
        Ok(true)
    }

    /// Destroys the key with this source's label on the token (after a root rotation away
    /// from it). Returns whether a key was found.
    pub fn destroy_key(&self) -> Result<bool> {
        let _token = token_lock()?;
        let session = self.session()?;
        match Self::find_key(&session, &self.key_label)? {
            Some(h) => {
                session.destroy_object(h).map_err(token_error)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn label_of(params: &RootParams) -> Result<&str> {
        let RootParams::External { kind, data } = params else {
            return Err(Error::RootKindMismatch {
                expected: match params {
                    RootParams::Passphrase { .. } => "passphrase",
                    _ => "key file",
                },
                given: KIND,
            });
        };
        if kind != KIND {
            return Err(Error::RootKindMismatch {
                expected: "external key source",
                given: KIND,
            });
        }
        match data.split_first() {
            Some((&PARAMS_FORMAT, label)) => {
                std::str::from_utf8(label).map_err(|_| Error::CorruptMetadata {
                    what: "PKCS#11 root parameters",
                })
            }
            _ => Err(Error::CorruptMetadata {
                what: "PKCS#11 root parameters",
            }),
        }
    }
}

impl RootKeySource for Pkcs11Root {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn new_params(&self) -> Result<RootParams> {
        let mut data = vec![PARAMS_FORMAT];
        data.extend_from_slice(self.key_label.as_bytes());
        Ok(RootParams::External {
            kind: KIND.to_owned(),
            data,
        })
    }

    fn unlock(&self, params: &RootParams) -> Result<Box<dyn RootKey>> {
        let label = Self::label_of(params)?;
        let _token = token_lock()?;
        let session = self.session()?;
        Self::find_key(&session, label)?.ok_or(Error::WrongRootKey)?;
        Ok(Box::new(Pkcs11Key {
            session: Mutex::new(Some(session)),
            label: label.to_owned(),
            pin: self.pin.clone(),
        }))
    }
}

/// An AES key on the token, with a logged-in session.
struct Pkcs11Key {
    session: Mutex<Option<Session>>,
    /// The key's label. Its handle is looked up per operation: tokens (SoftHSM2 among them)
    /// invalidate handles of private objects when the process logs out.
    label: String,
    /// The PIN the token accepted at unlock, to log in again after another source's check.
    pin: Zeroizing<String>,
}

impl Drop for Pkcs11Key {
    fn drop(&mut self) {
        // The session is closed here, under the token lock.
        let _token = token_lock();
        if let Ok(mut s) = self.session.lock() {
            drop(s.take());
        }
    }
}

impl Pkcs11Key {
    /// Runs `op` with the session logged in and the key's current handle, under the token lock.
    fn with_key<T>(&self, op: impl FnOnce(&Session, ObjectHandle) -> Result<T>) -> Result<T> {
        let _token = token_lock()?;
        let guard = self
            .session
            .lock()
            .map_err(|_| Error::Crypto("lock poisoned"))?;
        let session = guard
            .as_ref()
            .ok_or(Error::Crypto("PKCS#11 session closed"))?;
        relogin(session, &self.pin)?;
        let key = Pkcs11Root::find_key(session, &self.label)?.ok_or(Error::WrongRootKey)?;
        op(session, key)
    }
}

impl RootKey for Pkcs11Key {
    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
        let mut iv = [0u8; IV_LEN];
        crate::random::fill_random(&mut iv)?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, aad, TAG_BITS.into()).map_err(token_error)?;
        let ct = self.with_key(|session, key| {
            session
                .encrypt(&Mechanism::AesGcm(params), key, secret)
                .map_err(token_error)
        })?;
        let mut out = Vec::with_capacity(IV_LEN + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes> {
        if wrapped.len() < IV_LEN + 16 {
            return Err(Error::WrongRootKey);
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&wrapped[..IV_LEN]);
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(token_error)?;
        let plain = self.with_key(|session, key| {
            session
                .decrypt(&Mechanism::AesGcm(params), key, &wrapped[IV_LEN..])
                .map_err(|_| Error::WrongRootKey)
        })?;
        Ok(SecretBytes::new(plain))
    }
}
