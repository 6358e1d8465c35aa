//! The vault header: the vault's id, its root key parameters and the vault master key (VMK)
//! wrapped by the root key (docs/FORMAT.md §3). It lives in `vault.header` of a directory vault
//! or in the store's `Meta` space ([`HeaderSlot`]).

use crate::keyring::now_unix;
use crate::root::{RootKeySource, RootParams};
use crate::secret::Key32;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The vault-header format version this code writes.
pub const HEADER_FORMAT: u32 = 1;
/// The header's key in the `Meta` space of a vault that lives in a store.
pub(crate) const HEADER_KEY: &[u8] = b"header";
/// The header's file in a directory vault.
pub(crate) const HEADER_FILE: &str = "vault.header";
const VMK_AAD_LABEL: &[u8] = b"PVM1";

/// The decoded vault header.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct VaultHeader {
    pub(crate) format: u32,
    pub(crate) vault_id: [u8; 16],
    pub(crate) created_unix: u64,
    pub(crate) root: RootParams,
    pub(crate) wrapped_vmk: Vec<u8>,
}

impl VaultHeader {
    /// Associated data of the VMK wrap: everything in the header but the wrap itself.
    fn vmk_aad(
        format: u32,
        vault_id: &[u8; 16],
        created_unix: u64,
        root: &RootParams,
    ) -> Result<Vec<u8>> {
        let mut aad = VMK_AAD_LABEL.to_vec();
        aad.extend_from_slice(&format.to_be_bytes());
        aad.extend_from_slice(vault_id);
        aad.extend_from_slice(&created_unix.to_be_bytes());
        aad.extend(postcard::to_allocvec(root).map_err(|_| Error::Crypto("header encoding"))?);
        Ok(aad)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        // Strict (codec.rs): the format first, so a newer header is named as such, and
        // nothing may follow the header.
        crate::codec::check_format(bytes, HEADER_FORMAT, "vault header")?;
        crate::codec::decode_exact(bytes, "vault header")
    }
}

/// Where the vault header lives: in a file of a directory vault (so that a wrong root key is
/// refused before the store is opened, touching nothing), or in the store's `Meta` space.
#[derive(Debug)]
pub(crate) enum HeaderSlot {
    /// `<dir>/vault.header`, replaced atomically.
    File(PathBuf),
    /// `Space::Meta`, key `header`.
    Store,
}

impl VaultHeader {
    /// A header for a new vault, with a fresh vault id and vault master key.
    pub(crate) fn new(root: &dyn RootKeySource) -> Result<(Self, Key32)> {
        let params = root.new_params()?;
        let root_key = root.unlock(&params)?;
        let mut vault_id = [0u8; 16];
        crate::random::fill_random(&mut vault_id)?;
        let vmk = Key32::random()?;
        let created_unix = now_unix();
        let aad = Self::vmk_aad(HEADER_FORMAT, &vault_id, created_unix, &params)?;
        let wrapped_vmk = root_key.wrap(&aad, vmk.expose())?;
        Ok((
            VaultHeader {
                format: HEADER_FORMAT,
                vault_id,
                created_unix,
                root: params,
                wrapped_vmk,
            },
            vmk,
        ))
    }

    /// Unwraps the vault master key with the root key.
    pub(crate) fn unlock(&self, root: &dyn RootKeySource) -> Result<Key32> {
        let root_key = root.unlock(&self.root)?;
        let aad = Self::vmk_aad(self.format, &self.vault_id, self.created_unix, &self.root)?;
        let vmk = root_key.unwrap(&aad, &self.wrapped_vmk)?;
        Key32::from_slice(vmk.expose()).map_err(|_| Error::WrongRootKey)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|_| Error::Crypto("header encoding"))
    }
}

impl VaultHeader {
    /// This header with `vmk` wrapped by a new root key (root rotation: nothing else changes).
    pub(crate) fn rewrapped(&self, vmk: &Key32, new_root: &dyn RootKeySource) -> Result<Self> {
        let params = new_root.new_params()?;
        let root_key = new_root.unlock(&params)?;
        let aad = Self::vmk_aad(self.format, &self.vault_id, self.created_unix, &params)?;
        let wrapped_vmk = root_key.wrap(&aad, vmk.expose())?;
        Ok(VaultHeader {
            root: params,
            wrapped_vmk,
            ..self.clone()
        })
    }
}
