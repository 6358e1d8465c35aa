//! The [`Vault`]: create or open one, encrypt and decrypt bound to a context, manage keyrings.
//!
//! ```
//! use phivault::{Context, Vault, root::KeyFile, Key32};
//! let dir = tempfile::tempdir()?;
//! let root = KeyFile::from_key(Key32::random()?);
//! let vault = Vault::create(dir.path().join("v"), &root)?;
//! let ctx = Context::new().with("record", "4711").with("field", "note");
//! let ct = vault.encrypt(b"HbA1c 9.2%", &ctx)?;
//! assert_eq!(&*vault.decrypt(&ct, &ctx)?, b"HbA1c 9.2%");
//! assert!(vault.decrypt(&ct, &Context::new().with("record", "4712")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::backend::{AeadKey, Backend};
use crate::cache::SharedCache;
use crate::context::Context;
use crate::envelope::{self, Envelope, Kek};
use crate::kdf::{self, Mac, label};
use crate::keyring::{
    DEFAULT_KEYRING, Keyring, KeyringInfo, KeyringRecord, VersionRecord, now_unix,
};
use crate::root::{RootKeySource, RootParams};
use crate::secret::Key32;
use crate::store::{Durability, SledStore, Space, Store, WriteOp};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The vault-header format version this code writes.
pub const HEADER_FORMAT: u32 = 1;
const HEADER_KEY: &[u8] = b"header";
pub use crate::cache::CACHE_TTL_SECS;
/// Longest time a cached keyring is used before it is read again from the store (seconds);
/// the same bound as [`CACHE_TTL_SECS`], which also covers field definitions and the policy.
pub const KEYRING_CACHE_TTL_SECS: u64 = CACHE_TTL_SECS;
const VMK_AAD_LABEL: &[u8] = b"PVM1";
const KEYRING_AAD_LABEL: &[u8] = b"PVK1";
const META_AAD_LABEL: &[u8] = b"PVX1";
const LOCK_FILE: &str = "phivault.lock";
pub(crate) const STORE_DIR: &str = "store";
pub(crate) const HEADER_FILE: &str = "vault.header";

/// Options for creating or opening a vault.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VaultOptions {
    /// The AES-GCM implementation.
    pub backend: Backend,
    /// When writes reach the disk.
    pub durability: Durability,
    /// Threads the batch calls may use: 1 (default) = the calling thread only, 0 = one per
    /// core. See [`crate::parallel`].
    pub threads: usize,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions {
            backend: Backend::default(),
            durability: Durability::default(),
            threads: 1,
        }
    }
}

impl VaultOptions {
    /// The defaults: `ring`, every write durable before it returns, batch calls on the
    /// calling thread.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many threads batch calls (`tokenize_many`, `detokenize_many`, `put_many`,
    /// `encrypt_many`, rewrap) may use: 1 = the calling thread only (the default), 0 = one
    /// per core. Results, their order and the audit log do not depend on it.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets the AES-GCM backend.
    #[must_use]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets the durability.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// How to encrypt: which keyring, randomized or deterministic.
#[derive(Clone, Debug, Default)]
pub struct EncryptOptions {
    keyring: Option<String>,
    deterministic: bool,
}

impl EncryptOptions {
    /// Randomized encryption under the `default` keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keyring name these options select.
    pub fn keyring_name(&self) -> &str {
        self.keyring.as_deref().unwrap_or(DEFAULT_KEYRING)
    }

    /// Uses the named keyring.
    #[must_use]
    pub fn keyring(mut self, name: impl Into<String>) -> Self {
        self.keyring = Some(name.into());
        self
    }

    /// Deterministic encryption (AES-SIV): equal plaintexts give equal ciphertexts under the
    /// same context and key version, which allows equality lookups and reveals equality.
    #[must_use]
    pub fn deterministic(mut self) -> Self {
        self.deterministic = true;
        self
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct VaultHeader {
    format: u32,
    vault_id: [u8; 16],
    created_unix: u64,
    root: RootParams,
    wrapped_vmk: Vec<u8>,
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

    fn decode(bytes: &[u8]) -> Result<Self> {
        // Strict (codec.rs): the format first, so a newer header is named as such, and
        // nothing may follow the header.
        crate::codec::check_format(bytes, HEADER_FORMAT, "vault header")?;
        crate::codec::decode_exact(bytes, "vault header")
    }
}

/// The MAC key of the commit anchor (anchor.rs).
pub(crate) fn anchor_mac(vmk: &Key32) -> Result<Mac> {
    Ok(Mac::new(&kdf::expand_key(vmk, &[label::STORE_ANCHOR])?))
}

/// The store of a directory vault: sled in `<dir>/store`, checked against and moving the
/// commit anchor `<dir>/store.anchor` (anchor.rs).
fn dir_store(dir: &Path, vmk: &Key32, vault_id: [u8; 16], d: Durability) -> Result<Box<dyn Store>> {
    // sled reads a damaged log message as the end of its segment and drops what follows
    // without a word: found here, before sled's recovery runs.
    let store_dir = dir.join(STORE_DIR);
    if store_dir.join("db").is_file() {
        let damaged = crate::store::sled_repair::damaged_messages(&store_dir)
            .map_err(|e| Error::io(format!("reading {}", store_dir.display()), e))?;
        if damaged > 0 {
            return Err(Error::StoreCorrupted {
                what: "the store's log has damaged entries",
            });
        }
    }
    let sled = SledStore::open(&store_dir, d).map_err(|e| match e {
        // Damage the store's own recovery found: the operator's tools apply.
        crate::error::StoreError::Corrupt(what) => Error::StoreCorrupted { what },
        other => Error::Store(other),
    })?;
    Ok(Box::new(crate::anchor::AnchoredStore::open(
        Box::new(sled),
        dir,
        anchor_mac(vmk)?,
        vault_id,
        d == Durability::Immediate,
    )?))
}

/// Keys derived from the vault master key.
pub(crate) struct VaultKeys {
    keyring_wrap: Box<dyn AeadKey>,
    pub(crate) record_id: Mac,
    pub(crate) subject_id: Mac,
    pub(crate) token_id: Mac,
    pub(crate) token_index: Mac,
    pub(crate) audit_mac: Mac,
    pub(crate) audit_seal: Box<dyn AeadKey>,
    meta_seal: Box<dyn AeadKey>,
    /// MAC of the commit anchor (anchor.rs).
    pub(crate) anchor: Mac,
}

impl VaultKeys {
    fn derive(vmk: &Key32) -> Result<Self> {
        Ok(VaultKeys {
            keyring_wrap: Backend::Ring
                .aes256gcm(&kdf::expand_key(vmk, &[label::KEYRING_WRAP])?)?,
            record_id: Mac::new(&kdf::expand_key(vmk, &[label::RECORD_ID])?),
            subject_id: Mac::new(&kdf::expand_key(vmk, &[label::SUBJECT_ID])?),
            token_id: Mac::new(&kdf::expand_key(vmk, &[label::TOKEN_ID])?),
            token_index: Mac::new(&kdf::expand_key(vmk, &[label::TOKEN_INDEX])?),
            meta_seal: Backend::Ring.aes256gcm(&kdf::expand_key(vmk, &[label::META_SEAL])?)?,
            audit_mac: Mac::new(&kdf::expand_key(vmk, &[label::AUDIT_MAC])?),
            audit_seal: Backend::Ring.aes256gcm(&kdf::expand_key(vmk, &[label::AUDIT_SEAL])?)?,
            anchor: anchor_mac(vmk)?,
        })
    }
}

/// An open vault. `Send + Sync`: share one across threads (for example in an `Arc`).
pub struct Vault {
    pub(crate) store: Box<dyn Store>,
    path: Option<PathBuf>,
    _lock: Option<File>,
    pub(crate) backend: Backend,
    vault_id: [u8; 16],
    root_kind: String,
    pub(crate) keys: VaultKeys,
    /// Loaded keyrings, re-read after [`CACHE_TTL_SECS`] (another process may rotate).
    keyrings: SharedCache<Arc<Keyring>>,
    keyring_writes: Mutex<()>,
    /// When each keyring was last re-read for an unknown key version (rate limit).
    keyring_reloads: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    pub(crate) tokens: crate::tokens::TokenState,
    pub(crate) audit: crate::audit::AuditState,
    /// The policy, under the name `""`; re-read after [`CACHE_TTL_SECS`].
    pub(crate) policy_cache: SharedCache<Arc<crate::policy::Policy>>,
    header_slot: HeaderSlot,
    header: Mutex<VaultHeader>,
    vmk: Key32,
    /// Copy-on-write snapshots for online backups (backup.rs); the store above is wrapped.
    pub(crate) snapshots: Arc<crate::store::snapshot::SnapshotGate>,
    /// The thread pool of batch calls (none by default).
    pub(crate) parallel: crate::parallel::Parallel,
}

impl Drop for Vault {
    /// Writes the audit entries still waiting for group commit. A failure here cannot be
    /// reported: call [`Vault::close`] to learn of it.
    fn drop(&mut self) {
        let _ = self.audit_flush();
    }
}

impl Vault {
    /// Writes the audit entries waiting for group commit and makes every write durable (also
    /// under [`Durability::Deferred`]). Fails with [`Error::AuditUnavailable`] when the audit
    /// log cannot be written (entries of calls that already returned data would be lost), or
    /// with the store's error when the store cannot be flushed.
    pub fn flush(&self) -> Result<()> {
        self.audit_flush()?;
        self.store.flush()?;
        Ok(())
    }

    /// Closes the vault, reporting what dropping it cannot: [`Vault::flush`], then the store
    /// and the directory lock are released and the keys wiped.
    pub fn close(self) -> Result<()> {
        self.flush()
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("vault_id", &self.vault_id_hex())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let f = opts
        .open(&lock_path)
        .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::VaultLocked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", lock_path.display()), e))
        }
    }
}

/// Restricts the vault directory to its owner: directories 0700, files 0600.
fn restrict_permissions(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(format!("restricting permissions of {}", p.display()), e))
        };
        set(dir, 0o700)?;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| Error::io(format!("listing {}", d.display()), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(format!("listing {}", d.display()), e))?;
                let ft = entry
                    .file_type()
                    .map_err(|e| Error::io(format!("listing {}", d.display()), e))?;
                if ft.is_dir() {
                    set(&entry.path(), 0o700)?;
                    stack.push(entry.path());
                } else if ft.is_file() {
                    set(&entry.path(), 0o600)?;
                }
            }
        }
    }
    Ok(())
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

fn is_vault_dir(dir: &Path) -> bool {
    dir.join(HEADER_FILE).is_file()
}

/// Writes `bytes` to `path` atomically and durably ([`crate::outfile::write_atomic`]).
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::outfile::write_atomic(path, bytes)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

impl VaultHeader {
    /// A header for a new vault, with a fresh vault id and vault master key.
    fn new(root: &dyn RootKeySource) -> Result<(Self, Key32)> {
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
    fn unlock(&self, root: &dyn RootKeySource) -> Result<Key32> {
        let root_key = root.unlock(&self.root)?;
        let aad = Self::vmk_aad(self.format, &self.vault_id, self.created_unix, &self.root)?;
        let vmk = root_key.unwrap(&aad, &self.wrapped_vmk)?;
        Key32::from_slice(vmk.expose()).map_err(|_| Error::WrongRootKey)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|_| Error::Crypto("header encoding"))
    }
}

impl Vault {
    /// Creates a vault in directory `path` (created with mode 0700; it must not hold a vault)
    /// with a `default` keyring, using the default options.
    pub fn create(path: impl AsRef<Path>, root: &dyn RootKeySource) -> Result<Vault> {
        Self::create_with(path, root, VaultOptions::default())
    }

    /// [`Vault::create`] with options.
    pub fn create_with(
        path: impl AsRef<Path>,
        root: &dyn RootKeySource,
        opts: VaultOptions,
    ) -> Result<Vault> {
        let dir = path.as_ref();
        if is_vault_dir(dir) {
            return Err(Error::VaultExists {
                path: dir.to_path_buf(),
            });
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| Error::io(format!("creating vault directory {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        if is_vault_dir(dir) {
            return Err(Error::VaultExists {
                path: dir.to_path_buf(),
            });
        }
        let (header, vmk) = VaultHeader::new(root)?;
        let store = dir_store(dir, &vmk, header.vault_id, opts.durability)?;
        let header_path = dir.join(HEADER_FILE);
        let mut vault = Vault::assemble(
            store,
            opts.backend,
            &header,
            &vmk,
            HeaderSlot::File(header_path.clone()),
        )?;
        vault.set_threads(opts.threads)?;
        vault.write_default_keyring(Vec::new())?;
        vault.store.flush()?;
        // The header file is the commit point: without it there is no vault.
        write_file_atomic(&header_path, &header.encode()?)?;
        restrict_permissions(dir)?;
        vault.path = Some(dir.to_path_buf());
        vault._lock = Some(lock);
        Ok(vault)
    }

    /// Opens the vault in directory `path` with the default options.
    pub fn open(path: impl AsRef<Path>, root: &dyn RootKeySource) -> Result<Vault> {
        Self::open_with(path, root, VaultOptions::default())
    }

    /// [`Vault::open`] with options. A wrong root key is refused before the store is opened:
    /// nothing on disk changes.
    pub fn open_with(
        path: impl AsRef<Path>,
        root: &dyn RootKeySource,
        opts: VaultOptions,
    ) -> Result<Vault> {
        let dir = path.as_ref();
        if !is_vault_dir(dir) {
            return Err(Error::VaultNotFound {
                path: dir.to_path_buf(),
            });
        }
        let lock = lock_dir(dir)?;
        let header_path = dir.join(HEADER_FILE);
        let bytes = std::fs::read(&header_path)
            .map_err(|e| Error::io(format!("reading {}", header_path.display()), e))?;
        let header = VaultHeader::decode(&bytes)?;
        let vmk = header.unlock(root)?;
        let store = dir_store(dir, &vmk, header.vault_id, opts.durability)?;
        let mut vault = Vault::assemble(
            store,
            opts.backend,
            &header,
            &vmk,
            HeaderSlot::File(header_path),
        )?;
        vault.set_threads(opts.threads)?;
        restrict_permissions(dir)?;
        vault.path = Some(dir.to_path_buf());
        vault._lock = Some(lock);
        Ok(vault)
    }

    /// Creates a vault at `location`: a directory, or — with the `postgres` feature — a
    /// `postgres://user@host:port/db` URL. The one place that maps locations to stores, for the
    /// CLI, C and Python alike.
    pub fn create_at(
        location: impl AsRef<Path>,
        root: &dyn RootKeySource,
        opts: VaultOptions,
    ) -> Result<Vault> {
        match database_url(location.as_ref())? {
            Some(url) => Vault::create_in(database_store(url)?, root, opts.backend)?
                .with_threads(opts.threads),
            None => Vault::create_with(location, root, opts),
        }
    }

    /// Opens the vault at `location` (a directory or a `postgres://` URL).
    pub fn open_at(
        location: impl AsRef<Path>,
        root: &dyn RootKeySource,
        opts: VaultOptions,
    ) -> Result<Vault> {
        match database_url(location.as_ref())? {
            Some(url) => {
                Vault::open_in(database_store(url)?, root, opts.backend)?.with_threads(opts.threads)
            }
            None => Vault::open_with(location, root, opts),
        }
    }

    /// Sets how many threads batch calls may use (see [`VaultOptions::threads`]): 1 = the
    /// calling thread only, 0 = one per core.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.parallel = crate::parallel::Parallel::new(threads)?;
        Ok(())
    }

    /// [`Vault::set_threads`] on an owned vault (the stores opened without `VaultOptions`).
    fn with_threads(mut self, threads: usize) -> Result<Vault> {
        self.set_threads(threads)?;
        Ok(self)
    }

    /// How many threads batch calls use (1: the calling thread only).
    pub fn threads(&self) -> usize {
        self.parallel.threads()
    }

    /// Creates a vault in an empty store of any kind (the header lives in the store).
    pub fn create_in(
        store: Box<dyn Store>,
        root: &dyn RootKeySource,
        backend: Backend,
    ) -> Result<Vault> {
        if store.get(Space::Meta, HEADER_KEY)?.is_some() {
            return Err(Error::VaultExists {
                path: PathBuf::from("(the store)"),
            });
        }
        let (header, vmk) = VaultHeader::new(root)?;
        let store = crate::anchor::client_anchored(store, anchor_mac(&vmk)?, header.vault_id)?;
        let vault = Vault::assemble(store, backend, &header, &vmk, HeaderSlot::Store)?;
        let mut ops = vec![WriteOp::Put {
            space: Space::Meta,
            key: HEADER_KEY.to_vec(),
            value: header.encode()?,
        }];
        ops.extend(vault.default_keyrings()?);
        // Atomic against a concurrent create on a shared store: only one header ever lands.
        if !vault
            .store
            .write_unsynced_if(Space::Meta, HEADER_KEY, None, ops)?
        {
            return Err(Error::VaultExists {
                path: PathBuf::from("(the store)"),
            });
        }
        vault.store.sync()?;
        Ok(vault)
    }

    /// Opens a vault that lives in `store`.
    pub fn open_in(
        store: Box<dyn Store>,
        root: &dyn RootKeySource,
        backend: Backend,
    ) -> Result<Vault> {
        let bytes = store
            .get(Space::Meta, HEADER_KEY)?
            .ok_or(Error::CorruptMetadata {
                what: "vault header is missing",
            })?;
        let header = VaultHeader::decode(&bytes)?;
        let vmk = header.unlock(root)?;
        // A shared store with a commit counter is checked against this client's anchor.
        let store = crate::anchor::client_anchored(store, anchor_mac(&vmk)?, header.vault_id)?;
        Vault::assemble(store, backend, &header, &vmk, HeaderSlot::Store)
    }

    /// A vault over `store` (a copy of a damaged store, for `integrity::salvage`) with the
    /// header of a directory vault: no lock, no anchor, nothing written.
    pub(crate) fn over_store(
        store: Box<dyn Store>,
        header_bytes: &[u8],
        root: &dyn RootKeySource,
    ) -> Result<Vault> {
        let header = VaultHeader::decode(header_bytes)?;
        let vmk = header.unlock(root)?;
        Vault::assemble(store, Backend::default(), &header, &vmk, HeaderSlot::Store)
    }

    /// Writes the `default` and `tokens` keyrings together with `more` in one atomic batch.
    fn write_default_keyring(&self, mut more: Vec<WriteOp>) -> Result<()> {
        more.extend(self.default_keyrings()?);
        self.store.write(more)?;
        Ok(())
    }

    /// The writes that create a new vault's keyrings, `default` and `tokens` (version 1 each):
    /// the one place that says which keyrings a vault starts with.
    fn default_keyrings(&self) -> Result<Vec<WriteOp>> {
        [DEFAULT_KEYRING, crate::tokens::TOKENS_KEYRING]
            .into_iter()
            .map(|name| {
                Ok(WriteOp::Put {
                    space: Space::Keyring,
                    key: name.as_bytes().to_vec(),
                    value: self.seal_keyring(&KeyringRecord::new(name)?)?,
                })
            })
            .collect()
    }

    fn assemble(
        store: Box<dyn Store>,
        backend: Backend,
        header: &VaultHeader,
        vmk: &Key32,
        header_slot: HeaderSlot,
    ) -> Result<Vault> {
        let snapshots = Arc::new(crate::store::snapshot::SnapshotGate::default());
        Ok(Vault {
            store: crate::store::snapshot::SnapshotGate::wrap(&snapshots, store),
            path: None,
            _lock: None,
            backend,
            vault_id: header.vault_id,
            root_kind: header.root.kind().to_owned(),
            keys: VaultKeys::derive(vmk)?,
            keyrings: SharedCache::new(),
            keyring_writes: Mutex::new(()),
            keyring_reloads: Mutex::new(std::collections::HashMap::new()),
            tokens: crate::tokens::TokenState::default(),
            audit: crate::audit::AuditState::default(),
            policy_cache: SharedCache::new(),
            header_slot,
            header: Mutex::new(header.clone()),
            vmk: vmk.clone(),
            snapshots,
            parallel: crate::parallel::Parallel::default(),
        })
    }

    /// Changes the root key (a new passphrase, or a move to a key file) by rewrapping the
    /// vault master key only: O(1), no keyring or record is touched. The new header replaces
    /// the old one atomically.
    pub fn rotate_root(&self, new_root: &dyn RootKeySource) -> Result<()> {
        self.audit_admin(
            crate::audit::Action::Admin,
            "root",
            None,
            format!("rotate root to a {}", new_root.kind()),
        )?;
        let mut header = self.header.lock().map_err(|_| Error::poisoned())?;
        let params = new_root.new_params()?;
        let root_key = new_root.unlock(&params)?;
        let aad = VaultHeader::vmk_aad(
            header.format,
            &header.vault_id,
            header.created_unix,
            &params,
        )?;
        let wrapped_vmk = root_key.wrap(&aad, self.vmk.expose())?;
        let new_header = VaultHeader {
            root: params,
            wrapped_vmk,
            ..header.clone()
        };
        let bytes = new_header.encode()?;
        match &self.header_slot {
            HeaderSlot::File(path) => write_file_atomic(path, &bytes)?,
            HeaderSlot::Store => self.store.write(vec![WriteOp::Put {
                space: Space::Meta,
                key: HEADER_KEY.to_vec(),
                value: bytes,
            }])?,
        }
        *header = new_header;
        Ok(())
    }

    /// The vault's random id, in hex.
    pub fn vault_id_hex(&self) -> String {
        hex::encode(self.vault_id)
    }

    /// The vault's directory, when it lives in one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The kind of root key that unlocks this vault.
    pub fn root_kind(&self) -> &str {
        &self.root_kind
    }

    /// The AES-GCM backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    // ---- keyrings -------------------------------------------------------------------------

    fn keyring_aad(&self, name: &str) -> Vec<u8> {
        let mut aad = KEYRING_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(name.as_bytes());
        aad
    }

    fn seal_keyring(&self, rec: &KeyringRecord) -> Result<Vec<u8>> {
        envelope::wrap_with(
            self.keys.keyring_wrap.as_ref(),
            &self.keyring_aad(&rec.name),
            &rec.encode()?,
        )
    }

    fn meta_aad(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut aad = META_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.vault_id);
        for p in parts {
            aad.extend_from_slice(&(p.len() as u64).to_be_bytes());
            aad.extend_from_slice(p);
        }
        aad
    }

    /// Seals vault metadata (field definitions, policy) under a key derived from the vault
    /// master key, bound to `parts` (what it is and its name).
    pub(crate) fn seal_meta(&self, parts: &[&[u8]], plain: &[u8]) -> Result<Vec<u8>> {
        envelope::wrap_with(self.keys.meta_seal.as_ref(), &self.meta_aad(parts), plain)
    }

    /// Opens what [`Vault::seal_meta`] sealed.
    pub(crate) fn unseal_meta(&self, parts: &[&[u8]], sealed: &[u8]) -> Result<crate::SecretBytes> {
        envelope::unwrap_with(self.keys.meta_seal.as_ref(), &self.meta_aad(parts), sealed)
    }

    pub(crate) fn unseal_keyring(&self, name: &str, sealed: &[u8]) -> Result<KeyringRecord> {
        let plain = envelope::unwrap_with(
            self.keys.keyring_wrap.as_ref(),
            &self.keyring_aad(name),
            sealed,
        )
        .map_err(|_| Error::CorruptMetadata { what: "keyring" })?;
        let rec = KeyringRecord::decode(plain.expose())?;
        if rec.name != name {
            return Err(Error::CorruptMetadata { what: "keyring" });
        }
        Ok(rec)
    }

    fn read_keyring_record(&self, name: &str) -> Result<(KeyringRecord, Vec<u8>)> {
        let sealed = self
            .store
            .get(Space::Keyring, name.as_bytes())?
            .ok_or_else(|| Error::UnknownKeyring {
                keyring: name.to_owned(),
            })?;
        Ok((self.unseal_keyring(name, &sealed)?, sealed))
    }

    /// The loaded keyring `name` (cached).
    pub(crate) fn keyring(&self, name: &str) -> Result<Arc<Keyring>> {
        // Bounded staleness when processes share a store (PostgreSQL): see `cache`.
        // Decryption re-reads a keyring at once when it meets an unknown version.
        if let Some(k) = self.keyrings.get(name)? {
            return Ok(k);
        }
        envelope::check_keyring_name(name)?;
        let (rec, _) = self.read_keyring_record(name)?;
        let loaded = Arc::new(rec.load(self.backend)?);
        self.keyrings.insert(name, loaded.clone())?;
        Ok(loaded)
    }

    /// Applies `change` to keyring `name` and stores it (serialised with other keyring writes).
    pub(crate) fn update_keyring<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut KeyringRecord) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.keyring_writes.lock().map_err(|_| Error::poisoned())?;
        let (mut rec, old) = self.read_keyring_record(name)?;
        let out = change(&mut rec)?;
        let sealed = self.seal_keyring(&rec)?;
        if !self.store.compare_and_swap(
            Space::Keyring,
            name.as_bytes(),
            Some(&old),
            Some(sealed),
        )? {
            return Err(Error::CorruptMetadata {
                what: "keyring changed underneath",
            });
        }
        self.keyrings
            .insert(name, Arc::new(rec.load(self.backend)?))?;
        Ok(out)
    }

    /// Creates a keyring with one active key version.
    pub fn create_keyring(&self, name: &str) -> Result<KeyringInfo> {
        envelope::check_keyring_name(name)?;
        self.audit_admin(
            crate::audit::Action::Admin,
            name,
            None,
            "create keyring".into(),
        )?;
        let _guard = self.keyring_writes.lock().map_err(|_| Error::poisoned())?;
        let rec = KeyringRecord::new(name)?;
        let sealed = self.seal_keyring(&rec)?;
        if !self
            .store
            .compare_and_swap(Space::Keyring, name.as_bytes(), None, Some(sealed))?
        {
            return Err(Error::KeyringExists {
                keyring: name.to_owned(),
            });
        }
        let loaded = Arc::new(rec.load(self.backend)?);
        let info = loaded.info();
        self.keyrings.insert(name, loaded)?;
        Ok(info)
    }

    /// All keyrings, by name.
    pub fn keyrings(&self) -> Result<Vec<KeyringInfo>> {
        let mut out = Vec::new();
        for entry in crate::store::ScanIter::new(self.store.as_ref(), Space::Keyring, Vec::new()) {
            let (name, _) = entry?;
            let name = String::from_utf8(name).map_err(|_| Error::CorruptMetadata {
                what: "keyring name",
            })?;
            out.push(self.keyring(&name)?.info());
        }
        Ok(out)
    }

    /// Makes a new key version of `keyring` active at once; older versions stay decrypt-only.
    /// Touches no data. Returns the new version.
    pub fn rotate(&self, keyring: &str) -> Result<u32> {
        self.audit_admin(crate::audit::Action::Admin, keyring, None, "rotate".into())?;
        self.update_keyring(keyring, |rec| {
            let next = rec
                .versions
                .last()
                .map_or(Some(1), |v| v.version.checked_add(1))
                .ok_or(Error::invalid("keyring", "has run out of version numbers"))?;
            let key = Key32::random()?;
            rec.versions.push(VersionRecord {
                version: next,
                created_unix: now_unix(),
                key: Some(*key.expose()),
            });
            rec.active = next;
            Ok(next)
        })
    }

    // ---- encryption -----------------------------------------------------------------------

    /// Encrypts with options (keyring, deterministic), refusing reserved context keys.
    pub(crate) fn encrypt_with_unguarded(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        check_caller_context(ctx)?;
        self.encrypt_inner(plaintext, ctx, opts)
    }

    /// [`Vault::encrypt_with`] without the reserved-key check (re-encryption keeps contexts).
    pub(crate) fn encrypt_inner(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        let name = opts.keyring.as_deref().unwrap_or(DEFAULT_KEYRING);
        let kek = self.keyring(name)?.active_kek()?;
        if opts.deterministic {
            envelope::seal_deterministic(name, &kek, plaintext, ctx)
        } else {
            envelope::seal(self.backend, name, &kek, plaintext, ctx)
        }
    }

    /// [`Vault::encrypt_with`] over many plaintexts under one context: one keyring lookup,
    /// randomness for 64 envelopes per CSPRNG call ([`envelope::seal_many`]), spread over the
    /// vault's pool when it has one ([`VaultOptions::threads`]).
    pub(crate) fn encrypt_many_unguarded(
        &self,
        plaintexts: &[&[u8]],
        ctx: &Context,
        opts: &EncryptOptions,
    ) -> Result<Vec<Vec<u8>>> {
        let name = opts.keyring.as_deref().unwrap_or(DEFAULT_KEYRING);
        let kek = self.keyring(name)?.active_kek()?;
        if opts.deterministic {
            return self.parallel.map(plaintexts, |p| {
                envelope::seal_deterministic(name, &kek, p, ctx)
            });
        }
        let chunks: Vec<&[&[u8]]> = plaintexts.chunks(envelope::SEAL_MANY_CHUNK).collect();
        let sealed = self.parallel.map_min(&chunks, 4, |chunk| {
            let items: Vec<(&[u8], &Context)> = chunk.iter().map(|p| (*p, ctx)).collect();
            envelope::seal_many(self.backend, name, &kek, &items)
        })?;
        Ok(sealed.into_iter().flatten().collect())
    }

    /// [`Vault::decrypt`] over many envelopes, spread over the vault's pool when it has one.
    pub(crate) fn decrypt_many_unguarded<T: AsRef<[u8]> + Sync>(
        &self,
        envelopes: &[T],
        ctx: &Context,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        self.parallel.map(envelopes, |e| {
            let bin = envelope::to_binary(e.as_ref())?;
            self.decrypt_parsed(&Envelope::parse(&bin)?, ctx)
        })
    }

    /// Decrypts a parsed envelope of the envelope API (for callers that looked at its header
    /// first). Only [`Domain::Caller`](envelope::Domain::Caller) envelopes under a context
    /// without reserved keys: records and vaulted token values are opened by their own paths
    /// only ([`Vault::open_internal`]), so decrypt rights on a keyring never reach them.
    pub(crate) fn decrypt_parsed(
        &self,
        env: &Envelope<'_>,
        ctx: &Context,
    ) -> Result<Zeroizing<Vec<u8>>> {
        check_caller_context(ctx)?;
        if env.domain() != envelope::Domain::Caller {
            return Err(Error::AuthenticationFailed);
        }
        self.open_internal(env, ctx)
    }

    /// Opens an envelope of any domain: a record or a vaulted token value (the vault's own
    /// domain, or a caller-domain envelope written before domains existed, bound to a reserved
    /// context), or — behind [`Vault::decrypt_parsed`]'s checks — a caller's envelope.
    pub(crate) fn open_internal(
        &self,
        env: &Envelope<'_>,
        ctx: &Context,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if env.subject_key_id().is_some() {
            return self.decrypt_subject(env, ctx);
        }
        let kek = self.decrypting_kek(env.keyring(), env.key_version())?;
        Ok(envelope::open(self.backend, env, &kek, ctx)?.into_zeroizing())
    }

    /// The KEK of `keyring` version `version` for decryption. A version this process has not
    /// seen may have been made by another process sharing the store: the keyring is re-read
    /// then, at most once per [`UNKNOWN_VERSION_RELOAD_SECS`] per keyring, so forged version
    /// numbers cannot make every call reload it.
    pub(crate) fn decrypting_kek(&self, keyring: &str, version: u32) -> Result<Arc<Kek>> {
        match self.keyring(keyring)?.decrypting_kek(version) {
            Err(Error::UnknownKeyVersion { .. }) if self.may_reload_keyring(keyring)? => {
                self.keyrings.remove(keyring)?;
                self.keyring(keyring)?.decrypting_kek(version)
            }
            other => other,
        }
    }

    /// Whether a keyring may be re-read now for an unknown key version (rate limit).
    fn may_reload_keyring(&self, keyring: &str) -> Result<bool> {
        let mut last = self.keyring_reloads.lock().map_err(|_| Error::poisoned())?;
        let now = std::time::Instant::now();
        let window = std::time::Duration::from_secs(UNKNOWN_VERSION_RELOAD_SECS);
        if last
            .get(keyring)
            .is_some_and(|t| now.duration_since(*t) < window)
        {
            return Ok(false);
        }
        if last.len() >= MAX_RELOAD_ENTRIES {
            last.retain(|_, t| now.duration_since(*t) < window);
        }
        if last.len() < MAX_RELOAD_ENTRIES {
            last.insert(keyring.to_owned(), now);
        }
        Ok(true)
    }

    fn decrypt_subject(&self, env: &Envelope<'_>, ctx: &Context) -> Result<Zeroizing<Vec<u8>>> {
        let id = env.subject_key_id().ok_or(Error::AuthenticationFailed)?;
        let key = self.subject_key_for_envelope(id, env.keyring())?;
        Ok(envelope::open(self.backend, env, &key, ctx)?.into_zeroizing())
    }

    /// Encrypts data tied to a data subject (a patient): the DEK is wrapped by the subject's
    /// key, so [`Vault::forget_subject`] makes it unrecoverable.
    pub(crate) fn encrypt_for_subject_unguarded(
        &self,
        plaintext: &[u8],
        ctx: &Context,
        subject: &str,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        self.encrypt_for_subject_in(envelope::Domain::Caller, plaintext, ctx, subject, opts)
    }

    /// [`Vault::encrypt_for_subject_unguarded`] in `domain` (records use the vault's own).
    pub(crate) fn encrypt_for_subject_in(
        &self,
        domain: envelope::Domain,
        plaintext: &[u8],
        ctx: &Context,
        subject: &str,
        opts: &EncryptOptions,
    ) -> Result<Vec<u8>> {
        if opts.deterministic {
            return Err(Error::invalid(
                "options",
                "deterministic encryption cannot be tied to a subject",
            ));
        }
        let name = opts.keyring.as_deref().unwrap_or(DEFAULT_KEYRING);
        let (id, key) = self.subject_key_for_write(subject, name)?;
        envelope::seal_for_subject(self.backend, name, &id, domain, &key, plaintext, ctx)
    }

    pub(crate) fn vault_id(&self) -> &[u8; 16] {
        &self.vault_id
    }

    /// Runs `f` with the vault master key (backup keys, recovery shares); the VMK never leaves
    /// the crate.
    pub(crate) fn with_vmk<T>(&self, f: impl FnOnce(&Key32) -> Result<T>) -> Result<T> {
        f(&self.vmk)
    }

    /// The current vault header, encoded as in `vault.header`.
    pub(crate) fn header_bytes(&self) -> Result<Vec<u8>> {
        self.header.lock().map_err(|_| Error::poisoned())?.encode()
    }

    /// Decodes an encoded vault header and unwraps its VMK with `root`: (vault id, VMK).
    pub(crate) fn unlock_header(
        bytes: &[u8],
        root: &dyn RootKeySource,
    ) -> Result<([u8; 16], Key32)> {
        let header = VaultHeader::decode(bytes)?;
        Ok((header.vault_id, header.unlock(root)?))
    }

    /// The vault id of an encoded vault header (no key needed).
    pub(crate) fn header_vault_id(bytes: &[u8]) -> Result<[u8; 16]> {
        Ok(VaultHeader::decode(bytes)?.vault_id)
    }
}

/// The database URL, when `location` names one (`postgres://` or `postgresql://`).
fn database_url(location: &Path) -> Result<Option<&str>> {
    match location.to_str() {
        Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => Ok(Some(s)),
        _ => Ok(None),
    }
}

#[cfg(feature = "postgres")]
fn database_store(url: &str) -> Result<Box<dyn Store>> {
    Ok(Box::new(crate::store::PgStore::connect(url)?))
}

#[cfg(not(feature = "postgres"))]
fn database_store(_url: &str) -> Result<Box<dyn Store>> {
    Err(Error::invalid(
        "vault location",
        "this build has no PostgreSQL support (feature `postgres`)",
    ))
}

/// Context keys starting with `phivault.` are reserved for the vault's own bindings (records,
/// vaulted tokens): the envelope API refuses them in both directions, so a caller can neither
/// forge a record's binding nor open a record's envelope taken from the store.
pub(crate) fn check_caller_context(ctx: &Context) -> Result<()> {
    if ctx
        .pairs()
        .any(|(k, _)| k.starts_with(RESERVED_CONTEXT_PREFIX))
    {
        return Err(Error::invalid(
            "context",
            "keys starting with 'phivault.' are reserved",
        ));
    }
    Ok(())
}

/// Shortest time between two re-reads of one keyring for unknown key versions (seconds): an
/// envelope with a forged version costs one store read per keyring per second at most.
pub const UNKNOWN_VERSION_RELOAD_SECS: u64 = 1;
/// Keyrings whose last re-read time is remembered at once (bounds that memory).
const MAX_RELOAD_ENTRIES: usize = 4096;

/// Prefix of context keys reserved for phivault.
pub const RESERVED_CONTEXT_PREFIX: &str = "phivault.";
