//! A summary of a vault for operators: keyrings, versions, states and record counts per
//! version (so ops can see when a rewrap is complete). Serializes to stable JSON.

use crate::Result;
use crate::keyring::KeyState;
use crate::vault::Vault;
use serde::Serialize;

/// The vault as a whole.
#[derive(Clone, Debug, Serialize)]
pub struct VaultStatus {
    /// Random vault id (hex).
    pub vault_id: String,
    /// Vault header format version.
    pub format_version: u32,
    /// Root key kind ("passphrase", "key file", ...).
    pub root_kind: String,
    /// AES-GCM backend.
    pub backend: &'static str,
    /// Total records.
    pub records: u64,
    /// Records tied to a data subject (counted under the version that wraps their subject key).
    pub subject_records: u64,
    /// Records of forgotten subjects: unrecoverable, kept until deleted.
    pub forgotten_records: u64,
    /// Keyrings by name.
    pub keyrings: Vec<KeyringStatus>,
}

/// One keyring.
#[derive(Clone, Debug, Serialize)]
pub struct KeyringStatus {
    /// Name.
    pub name: String,
    /// Active version.
    pub active_version: u32,
    /// Minimum decryption version.
    pub min_decryption_version: u32,
    /// Versions, oldest first.
    pub versions: Vec<VersionStatus>,
}

/// One key version.
#[derive(Clone, Debug, Serialize)]
pub struct VersionStatus {
    /// Version number.
    pub version: u32,
    /// State.
    pub state: KeyState,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
    /// Records that need this version (their envelope names it, or their subject key is
    /// wrapped by it). Zero on every old version means a rewrap is complete.
    pub records: u64,
    /// Vaulted token values that need this version.
    pub tokens: u64,
    /// Subject keys wrapped by this version.
    pub subject_keys: u64,
}

impl Vault {
    /// Summarises the vault; counts records by scanning headers (no decryption).
    pub fn status(&self) -> Result<VaultStatus> {
        let usage = self.usage()?;
        let keyrings = self
            .keyrings()?
            .into_iter()
            .map(|k| KeyringStatus {
                versions: k
                    .versions
                    .iter()
                    .map(|v| VersionStatus {
                        version: v.version,
                        state: v.state,
                        created_unix: v.created_unix,
                        records: usage
                            .by_version
                            .get(&(k.name.clone(), v.version))
                            .map_or(0, |u| u.records),
                        tokens: usage
                            .by_version
                            .get(&(k.name.clone(), v.version))
                            .map_or(0, |u| u.tokens),
                        subject_keys: usage
                            .by_version
                            .get(&(k.name.clone(), v.version))
                            .map_or(0, |u| u.subject_keys),
                    })
                    .collect(),
                name: k.name,
                active_version: k.active,
                min_decryption_version: k.min_decryption_version,
            })
            .collect();
        Ok(VaultStatus {
            vault_id: self.vault_id_hex(),
            format_version: crate::vault::HEADER_FORMAT,
            root_kind: self.root_kind().to_owned(),
            backend: self.backend().name(),
            records: usage.records,
            subject_records: usage.subject_records,
            forgotten_records: usage.forgotten_records,
            keyrings,
        })
    }
}
