//! Root key sources: where the key that unlocks a vault comes from.
//!
//! The root key wraps the vault master key (VMK), which in turn protects the keyrings. A
//! [`RootKeySource`] turns the vault's stored [`RootParams`] into a [`RootKey`] that can wrap
//! and unwrap; it never has to hand out key bytes, so a PKCS#11 token or a cloud KMS can be a
//! source without changing any caller. Two sources ship:
//!
//! - [`Passphrase`]: Argon2id (RFC 9106) with a per-vault random salt and parameters stored in
//!   the vault header; defaults m = 64 MiB, t = 3, p = 4 (RFC 9106's second recommendation).
//! - [`KeyFile`]: 32 random bytes (raw, or as 64 hex digits) kept in a file.
//!
//! ```
//! use phivault::root::{Argon2Config, Passphrase, RootKeySource};
//! let src = Passphrase::new("correct horse battery staple").with_config(Argon2Config::testing());
//! assert_eq!(src.kind(), "passphrase");
//! ```

use crate::backend::Backend;
use crate::envelope::{unwrap_with, wrap_with};
use crate::kdf::{self, label};
use crate::secret::{Key32, SecretBytes};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

/// Parameters of a vault's root key, stored in clear in the vault header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RootParams {
    /// Argon2id over a passphrase.
    Passphrase {
        /// Random per-vault salt.
        salt: [u8; 16],
        /// Argon2 settings.
        config: Argon2Config,
    },
    /// A 32-byte key file.
    KeyFile,
    /// Another source (HSM, KMS), identified by its kind; `data` is the source's own.
    External {
        /// The source's kind.
        kind: String,
        /// Opaque parameters of the source (a key label, a key ARN).
        data: Vec<u8>,
    },
}

impl RootParams {
    /// The kind name of the source these parameters belong to.
    pub fn kind(&self) -> &str {
        match self {
            RootParams::Passphrase { .. } => "passphrase",
            RootParams::KeyFile => "key file",
            RootParams::External { kind, .. } => kind,
        }
    }
}

/// Argon2id cost settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Config {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// Most memory a vault header may ask for (4 GiB), so a forged header cannot exhaust memory.
pub const MAX_ARGON2_M_KIB: u32 = 4 * 1024 * 1024;
/// Most passes a vault header may ask for.
pub const MAX_ARGON2_T: u32 = 64;
/// Fewest KiB accepted (8 MiB; RFC 9106 itself allows as little as 8 × p KiB).
pub const MIN_ARGON2_M_KIB: u32 = 8 * 1024;

impl Default for Argon2Config {
    /// RFC 9106 §4, second recommended option: m = 64 MiB, t = 3, p = 4.
    fn default() -> Self {
        Argon2Config {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }
}

impl Argon2Config {
    /// Cheap settings for tests and examples only (8 MiB, t = 1, p = 1). Not for real vaults.
    pub fn testing() -> Self {
        Argon2Config {
            m_kib: MIN_ARGON2_M_KIB,
            t: 1,
            p: 1,
        }
    }

    fn check(&self) -> Result<()> {
        if self.m_kib < MIN_ARGON2_M_KIB || self.m_kib > MAX_ARGON2_M_KIB {
            return Err(Error::invalid(
                "Argon2 memory",
                "must be between 8 MiB and 4 GiB",
            ));
        }
        if self.t == 0 || self.t > MAX_ARGON2_T {
            return Err(Error::invalid("Argon2 passes", "must be between 1 and 64"));
        }
        if self.p == 0 || self.p > 64 {
            return Err(Error::invalid("Argon2 lanes", "must be between 1 and 64"));
        }
        Ok(())
    }
}

/// Something that can wrap and unwrap the vault master key. Implementations keep their key
/// wherever they like (memory, a token, a KMS).
pub trait RootKey: Send + Sync {
    /// Encrypts and authenticates `secret` bound to `aad`.
    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>>;
    /// Reverses [`RootKey::wrap`]; a wrong key or damaged input gives [`Error::WrongRootKey`].
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes>;
}

/// A source of a vault's root key.
pub trait RootKeySource: Send + Sync {
    /// The kind name ("passphrase", "key file", "pkcs11", ...), matched against the vault.
    fn kind(&self) -> &'static str;
    /// Fresh parameters for a new vault (a new salt, the configured costs).
    fn new_params(&self) -> Result<RootParams>;
    /// Derives or locates the root key for a vault with these parameters.
    fn unlock(&self, params: &RootParams) -> Result<Box<dyn RootKey>>;
}

/// A root key held in memory (derived from a passphrase or read from a key file): it wraps
/// with AES-256-GCM and a random nonce.
struct SoftwareRootKey {
    aead: Box<dyn crate::backend::AeadKey>,
}

impl SoftwareRootKey {
    fn new(key: &Key32) -> Result<Self> {
        Ok(SoftwareRootKey {
            aead: Backend::Ring.aes256gcm(key)?,
        })
    }
}

impl RootKey for SoftwareRootKey {
    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
        wrap_with(self.aead.as_ref(), aad, secret)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes> {
        unwrap_with(self.aead.as_ref(), aad, wrapped).map_err(|_| Error::WrongRootKey)
    }
}

/// A passphrase, stretched with Argon2id.
pub struct Passphrase {
    secret: Zeroizing<Vec<u8>>,
    config: Argon2Config,
}

impl Passphrase {
    /// A passphrase with the default (RFC 9106) costs for new vaults.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Passphrase {
            secret: Zeroizing::new(passphrase.into().into_bytes()),
            config: Argon2Config::default(),
        }
    }

    /// A passphrase given as bytes (any encoding, e.g. from C). Must not be empty.
    pub fn from_bytes(passphrase: Zeroizing<Vec<u8>>) -> Self {
        Passphrase {
            secret: passphrase,
            config: Argon2Config::default(),
        }
    }

    /// Sets the Argon2id costs used when creating a vault (opening uses the vault's own).
    #[must_use]
    pub fn with_config(mut self, config: Argon2Config) -> Self {
        self.config = config;
        self
    }

    /// Reads a passphrase from the first line of a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let raw =
            Zeroizing::new(std::fs::read(path).map_err(|e| {
                Error::io(format!("reading passphrase file {}", path.display()), e)
            })?);
        let text = std::str::from_utf8(&raw)
            .map_err(|_| Error::invalid("passphrase file", "is not UTF-8"))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(Error::invalid("passphrase file", "first line is empty"));
        }
        Ok(Passphrase::new(line))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Passphrase {{ secret: [redacted], config: {:?} }}",
            self.config
        )
    }
}

impl RootKeySource for Passphrase {
    fn kind(&self) -> &'static str {
        "passphrase"
    }

    fn new_params(&self) -> Result<RootParams> {
        self.config.check()?;
        if self.secret.is_empty() {
            return Err(Error::invalid("passphrase", "is empty"));
        }
        let mut salt = [0u8; 16];
        crate::random::fill_random(&mut salt)?;
        Ok(RootParams::Passphrase {
            salt,
            config: self.config,
        })
    }

    fn unlock(&self, params: &RootParams) -> Result<Box<dyn RootKey>> {
        let RootParams::Passphrase { salt, config } = params else {
            return Err(mismatch(params, self.kind()));
        };
        config.check().map_err(|_| Error::CorruptMetadata {
            what: "Argon2 parameters",
        })?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(config.m_kib, config.t, config.p, Some(32))
                .map_err(|_| Error::invalid("Argon2 parameters", "rejected by argon2"))?,
        );
        let mut key = Key32::zero();
        argon
            .hash_password_into(&self.secret, salt, key.expose_mut())
            .map_err(|_| Error::Crypto("Argon2id"))?;
        Ok(Box::new(SoftwareRootKey::new(&key)?))
    }
}

fn mismatch(params: &RootParams, given: &'static str) -> Error {
    let expected = match params {
        RootParams::Passphrase { .. } => "passphrase",
        RootParams::KeyFile => "key file",
        RootParams::External { .. } => "external key source",
    };
    Error::RootKindMismatch { expected, given }
}

/// A 32-byte root key kept in a file.
pub struct KeyFile {
    key: Key32,
}

impl KeyFile {
    /// Uses these 32 bytes as the root key.
    pub fn from_key(key: Key32) -> Self {
        KeyFile { key }
    }

    /// Reads a key file: exactly 32 raw bytes, or 64 hex digits optionally followed by a
    /// newline.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let raw = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| Error::io(format!("reading key file {}", path.display()), e))?,
        );
        Self::from_bytes(&raw)
    }

    /// Parses key-file contents (see [`KeyFile::from_file`]).
    pub fn from_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() == 32 {
            return Ok(KeyFile {
                key: Key32::from_slice(raw)?,
            });
        }
        let trimmed = raw.strip_suffix(b"\n").unwrap_or(raw);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed.len() == 64 && trimmed.iter().all(u8::is_ascii_hexdigit) {
            let mut bytes = Zeroizing::new([0u8; 32]);
            for (i, pair) in trimmed.chunks(2).enumerate() {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                bytes[i] = hex(pair[0]) << 4 | hex(pair[1]);
            }
            return Ok(KeyFile {
                key: Key32::from_slice(bytes.as_ref())?,
            });
        }
        Err(Error::invalid(
            "key file",
            "must hold exactly 32 bytes, or 64 hex digits",
        ))
    }

    /// Writes a fresh random key file (mode 0600, refusing to overwrite).
    pub fn generate(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let key = Key32::random()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(path)
            .map_err(|e| Error::io(format!("creating key file {}", path.display()), e))?;
        std::io::Write::write_all(&mut f, key.expose())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(format!("writing key file {}", path.display()), e))?;
        Ok(KeyFile { key })
    }
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFile([redacted])")
    }
}

impl RootKeySource for KeyFile {
    fn kind(&self) -> &'static str {
        "key file"
    }

    fn new_params(&self) -> Result<RootParams> {
        Ok(RootParams::KeyFile)
    }

    fn unlock(&self, params: &RootParams) -> Result<Box<dyn RootKey>> {
        if !matches!(params, RootParams::KeyFile) {
            return Err(mismatch(params, self.kind()));
        }
        let mut derived = kdf::extract_expand(b"", self.key.expose(), &[label::KEY_FILE_ROOT])?;
        let key = SoftwareRootKey::new(&derived);
        derived.zeroize();
        Ok(Box::new(key?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_formats() {
        assert!(KeyFile::from_bytes(&[1u8; 32]).is_ok());
        let hex = "ab".repeat(32);
        assert!(KeyFile::from_bytes(hex.as_bytes()).is_ok());
        assert!(KeyFile::from_bytes(format!("{hex}\n").as_bytes()).is_ok());
        assert!(KeyFile::from_bytes(&[1u8; 31]).is_err());
        assert!(KeyFile::from_bytes(b"").is_err());
        assert!(KeyFile::from_bytes("zz".repeat(32).as_bytes()).is_err());
    }

    #[test]
    fn wrong_passphrase_is_wrong_root_key() {
        let p = Passphrase::new("right").with_config(Argon2Config::testing());
        let params = p.new_params().expect("params");
        let wrapped = p
            .unlock(&params)
            .expect("unlock")
            .wrap(b"aad", b"vmk")
            .expect("wrap");
        let q = Passphrase::new("wrong");
        let res = q.unlock(&params).expect("derive").unwrap(b"aad", &wrapped);
        assert!(matches!(res, Err(Error::WrongRootKey)));
        assert!(matches!(
            KeyFile::from_bytes(&[0; 32]).expect("k").unlock(&params),
            Err(Error::RootKindMismatch { .. })
        ));
    }

    #[test]
    fn forged_argon2_costs_are_refused() {
        let p = Passphrase::new("x");
        let params = RootParams::Passphrase {
            salt: [0; 16],
            config: Argon2Config {
                m_kib: u32::MAX,
                t: 1,
                p: 1,
            },
        };
        assert!(matches!(
            p.unlock(&params),
            Err(Error::CorruptMetadata { .. })
        ));
    }
}
