//! Keyrings: named lists of versioned key-encryption keys (KEKs) with one active version.
//!
//! A keyring is stored as one AES-256-GCM-sealed blob under the vault's keyring-wrap key
//! (derived from the vault master key), bound to the vault id and the keyring name, so KEKs
//! exist on disk only wrapped and an edit of the store cannot change a keyring unnoticed.
//! Each version's state is derived, never stored twice: `destroyed` when its key is gone,
//! `active` when it is the active version, `retired` below the minimum decryption version,
//! `decrypt-only` otherwise.

use crate::backend::Backend;
use crate::envelope::Kek;
use crate::secret::Key32;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The keyring every new vault has and that calls use when they name none.
pub const DEFAULT_KEYRING: &str = "default";
/// The keyring token fields use unless they name another: created with every vault (and on
/// first use in older ones).
pub const TOKENS_KEYRING: &str = "tokens";

/// Life-cycle state of a key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyState {
    /// Encrypts new data and decrypts.
    Active,
    /// Decrypts only (an older version).
    DecryptOnly,
    /// Below the keyring's minimum decryption version: refuses to decrypt, reversibly.
    Retired,
    /// Key material wiped: nothing under it can be decrypted, ever.
    Destroyed,
}

impl KeyState {
    /// The state's name as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::DecryptOnly => "decrypt-only",
            KeyState::Retired => "retired",
            KeyState::Destroyed => "destroyed",
        }
    }
}

/// Public description of one key version (no key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersionInfo {
    /// Version number, from 1.
    pub version: u32,
    /// State.
    pub state: KeyState,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

/// Public description of a keyring (no key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringInfo {
    /// Name.
    pub name: String,
    /// The active version.
    pub active: u32,
    /// Versions below this refuse to decrypt.
    pub min_decryption_version: u32,
    /// All versions, oldest first.
    pub versions: Vec<KeyVersionInfo>,
}

/// Stored form (inside the sealed blob). Key bytes are wiped on drop.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyringRecord {
    pub format: u8,
    pub name: String,
    pub active: u32,
    pub min_decrypt: u32,
    pub versions: Vec<VersionRecord>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub version: u32,
    pub created_unix: u64,
    pub key: Option<[u8; 32]>,
}

impl Drop for VersionRecord {
    fn drop(&mut self) {
        if let Some(k) = self.key.as_mut() {
            k.zeroize();
        }
    }
}

/// A keyring loaded into memory, keys expanded.
pub(crate) struct Keyring {
    pub name: String,
    pub active: u32,
    pub min_decrypt: u32,
    pub versions: BTreeMap<u32, LoadedVersion>,
}

pub(crate) struct LoadedVersion {
    pub created_unix: u64,
    pub kek: Option<Arc<Kek>>,
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const RECORD_FORMAT: u8 = 1;

impl KeyringRecord {
    /// A new keyring with one fresh active version.
    pub(crate) fn new(name: &str) -> Result<Self> {
        let key = Key32::random()?;
        Ok(KeyringRecord {
            format: RECORD_FORMAT,
            name: name.to_owned(),
            active: 1,
            min_decrypt: 1,
            versions: vec![VersionRecord {
                version: 1,
                created_unix: now_unix(),
                key: Some(*key.expose()),
            }],
        })
    }

    pub(crate) fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        postcard::to_allocvec(self)
            .map(Zeroizing::new)
            .map_err(|_| Error::Crypto("keyring encoding"))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        crate::codec::check_format(bytes, u32::from(RECORD_FORMAT), "keyring")?;
        let rec: KeyringRecord = crate::codec::decode_exact(bytes, "keyring")?;
        let ok = !rec.versions.is_empty()
            && rec.versions.windows(2).all(|w| w[0].version < w[1].version)
            && rec
                .versions
                .iter()
                .any(|v| v.version == rec.active && v.key.is_some())
            && rec.versions[0].version >= 1
            && rec.min_decrypt >= 1
            && rec.min_decrypt <= rec.active;
        if !ok {
            return Err(Error::CorruptMetadata { what: "keyring" });
        }
        Ok(rec)
    }

    pub(crate) fn load(&self, backend: Backend) -> Result<Keyring> {
        let mut versions = BTreeMap::new();
        for v in &self.versions {
            let kek = match &v.key {
                Some(k) => Some(Arc::new(Kek::new(
                    v.version,
                    Key32::from_slice(k)?,
                    backend,
                )?)),
                None => None,
            };
            versions.insert(
                v.version,
                LoadedVersion {
                    created_unix: v.created_unix,
                    kek,
                },
            );
        }
        Ok(Keyring {
            name: self.name.clone(),
            active: self.active,
            min_decrypt: self.min_decrypt,
            versions,
        })
    }
}

impl Keyring {
    pub(crate) fn state_of(&self, version: u32, v: &LoadedVersion) -> KeyState {
        if v.kek.is_none() {
            KeyState::Destroyed
        } else if version == self.active {
            KeyState::Active
        } else if version < self.min_decrypt {
            KeyState::Retired
        } else {
            KeyState::DecryptOnly
        }
    }

    pub(crate) fn info(&self) -> KeyringInfo {
        KeyringInfo {
            name: self.name.clone(),
            active: self.active,
            min_decryption_version: self.min_decrypt,
            versions: self
                .versions
                .iter()
                .map(|(&version, v)| KeyVersionInfo {
                    version,
                    state: self.state_of(version, v),
                    created_unix: v.created_unix,
                })
                .collect(),
        }
    }

    /// The active KEK, for encryption.
    pub(crate) fn active_kek(&self) -> Result<Arc<Kek>> {
        self.versions
            .get(&self.active)
            .and_then(|v| v.kek.clone())
            .ok_or(Error::CorruptMetadata {
                what: "keyring has no active key",
            })
    }

    /// The KEK of `version`, for decryption: refuses retired and destroyed versions by name.
    pub(crate) fn decrypting_kek(&self, version: u32) -> Result<Arc<Kek>> {
        let v = self
            .versions
            .get(&version)
            .ok_or_else(|| Error::UnknownKeyVersion {
                keyring: self.name.clone(),
                version,
            })?;
        match self.state_of(version, v) {
            KeyState::Destroyed => Err(Error::KeyDestroyed {
                keyring: self.name.clone(),
                version,
            }),
            KeyState::Retired => Err(Error::KeyRetired {
                keyring: self.name.clone(),
                version,
                min: self.min_decrypt,
            }),
            KeyState::Active | KeyState::DecryptOnly => v
                .kek
                .clone()
                .ok_or(Error::CorruptMetadata { what: "keyring" }),
        }
    }
}
