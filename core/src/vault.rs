//! The [`Vault`]: create or open one, encrypt and decrypt bound to a context, manage keyrings.
//!
//! ```
//! use phivault::{Context, Vault, root::KeyFile, Key32};
//! let dir = tempfile::tempdir()?;
//! let root = KeyFile::from_key(Key32::random()?);
//! let vault = Vault::create(dir.path().join("v"), &root)?;
//! let ctx = Context::new().with("record", "4711").with("field", "note");
//! let ct = vault.owner().encrypt(b"HbA1c 9.2%", &ctx)?;
//! assert_eq!(&*vault.owner().decrypt(&ct, &ctx)?, b"HbA1c 9.2%");
//! assert!(vault.owner().decrypt(&ct, &Context::new().with("record", "4712")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::audit::{Action, AuditLog, AuditReport, AuditView};
use crate::backend::Backend;
use crate::keyring::KeyringInfo;
use crate::keys::Keys;
use crate::keys::header::{HEADER_FILE, HEADER_KEY, HeaderSlot, VaultHeader};
use crate::policy::{Guard, Policy};
use crate::records::{RecordInfo, Records};
use crate::root::RootKeySource;
use crate::secret::Key32;
use crate::store::snapshot::SnapshotGate;
use crate::store::{Durability, SledStore, Space, Store, WriteOp};
use crate::tokens::{FieldSpec, Tokens};
use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::cache::CACHE_TTL_SECS;
pub use crate::keys::HEADER_FORMAT;
pub use crate::keys::UNKNOWN_VERSION_RELOAD_SECS;
pub use crate::keys::{EncryptOptions, RESERVED_CONTEXT_PREFIX};
/// Longest time a cached keyring is used before it is read again from the store (seconds);
/// the same bound as [`CACHE_TTL_SECS`], which also covers field definitions and the policy.
pub const KEYRING_CACHE_TTL_SECS: u64 = CACHE_TTL_SECS;
const LOCK_FILE: &str = "phivault.lock";
pub(crate) const STORE_DIR: &str = "store";

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
        crate::keys::anchor_mac(vmk)?,
        vault_id,
        d == Durability::Immediate,
    )?))
}

/// An open vault. `Send + Sync`: share one across threads (for example in an `Arc`).
pub struct Vault {
    /// The store (wrapped: snapshot gate, commit anchor); the components hold it too.
    pub(crate) store: Arc<dyn Store>,
    path: Option<PathBuf>,
    root_kind: String,
    /// The key hierarchy: header and master key, derived keys, keyrings, subject keys.
    pub(crate) keys: Arc<Keys>,
    /// The chained audit log.
    pub(crate) audit: Arc<AuditLog>,
    /// The policy and its one decision point.
    pub(crate) guard: Guard,
    /// Field definitions and every token kind.
    pub(crate) tokens: Tokens,
    /// Records by hashed id.
    pub(crate) records: Records,
    /// Copy-on-write snapshots for online backups (backup.rs); the store above is wrapped.
    pub(crate) snapshots: Arc<SnapshotGate>,
    /// The thread pool of batch calls (none by default).
    pub(crate) parallel: crate::parallel::Parallel,
    /// Held by `begin_job` from its scan to its snapshot file, and by what revokes job
    /// snapshots until its key or policy change is written (jobs.rs): no snapshot taken
    /// before a shred lands after it.
    pub(crate) jobs_lock: std::sync::Mutex<()>,
    /// The directory lock, declared last so that it is released after the store is closed.
    _lock: Option<File>,
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
            .field("backend", &self.keys.backend)
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

fn is_vault_dir(dir: &Path) -> bool {
    dir.join(HEADER_FILE).is_file()
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
        crate::outfile::write_file_atomic(&header_path, &header.encode()?)?;
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
        let store =
            crate::anchor::client_anchored(store, crate::keys::anchor_mac(&vmk)?, header.vault_id)?;
        let vault = Vault::assemble(store, backend, &header, &vmk, HeaderSlot::Store)?;
        let mut ops = vec![WriteOp::Put {
            space: Space::Meta,
            key: HEADER_KEY.to_vec(),
            value: header.encode()?,
        }];
        ops.extend(vault.keys.default_keyrings()?);
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
        let store =
            crate::anchor::client_anchored(store, crate::keys::anchor_mac(&vmk)?, header.vault_id)?;
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
        more.extend(self.keys.default_keyrings()?);
        self.store.write(more)?;
        Ok(())
    }

    pub(crate) fn assemble(
        store: Box<dyn Store>,
        backend: Backend,
        header: &VaultHeader,
        vmk: &Key32,
        header_slot: HeaderSlot,
    ) -> Result<Vault> {
        let snapshots = Arc::new(SnapshotGate::default());
        let store: Arc<dyn Store> = Arc::from(SnapshotGate::wrap(&snapshots, store));
        let keys = Arc::new(Keys::new(store.clone(), backend, header, vmk, header_slot)?);
        let audit = Arc::new(AuditLog::new(store.clone(), vmk)?);
        Ok(Vault {
            path: None,
            root_kind: header.root.kind().to_owned(),
            guard: Guard::new(store.clone(), keys.clone(), audit.clone()),
            tokens: Tokens::new(store.clone(), keys.clone(), audit.clone()),
            records: Records::new(store.clone(), keys.clone()),
            store,
            keys,
            audit,
            snapshots,
            parallel: crate::parallel::Parallel::default(),
            jobs_lock: std::sync::Mutex::new(()),
            _lock: None,
        })
    }

    /// Changes the root key (a new passphrase, or a move to a key file) by rewrapping the
    /// vault master key only: O(1), no keyring or record is touched. The new header replaces
    /// the old one atomically.
    pub fn rotate_root(&self, new_root: &dyn RootKeySource) -> Result<()> {
        self.audit.admin(
            crate::audit::Action::Admin,
            "root",
            None,
            format!("rotate root to a {}", new_root.kind()),
        )?;
        self.keys.rotate_root(new_root)
    }

    /// The vault's random id, in hex.
    pub fn vault_id_hex(&self) -> String {
        hex::encode(self.keys.vault_id())
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
        self.keys.backend
    }

    // ---- keyrings -------------------------------------------------------------------------

    /// Creates a keyring with one active key version.
    pub fn create_keyring(&self, name: &str) -> Result<KeyringInfo> {
        Ok(self.keys.create_keyring_logged(&self.audit, name)?.info())
    }

    /// All keyrings, by name.
    pub fn keyrings(&self) -> Result<Vec<KeyringInfo>> {
        let mut out = Vec::new();
        for entry in crate::store::ScanIter::new(self.store.as_ref(), Space::Keyring, Vec::new()) {
            let (name, _) = entry?;
            let name = String::from_utf8(name).map_err(|_| Error::CorruptMetadata {
                what: "keyring name",
            })?;
            out.push(self.keys.keyring(&name)?.info());
        }
        Ok(out)
    }

    /// Makes a new key version of `keyring` active at once; older versions stay decrypt-only.
    /// Touches no data. Returns the new version.
    pub fn rotate(&self, keyring: &str) -> Result<u32> {
        self.audit
            .admin(crate::audit::Action::Admin, keyring, None, "rotate".into())?;
        self.keys.rotate(keyring)
    }

    // ---- the components' owner operations --------------------------------------------------
    // One-line forwards: each rule lives in its component (audit.rs, policy.rs, tokens/,
    // keys/); the admin operations log their entry here, before they change anything.

    /// Turns the logging of *allowed reads* (encrypt, decrypt, get, tokenize, detokenize) on
    /// (the default) or off. Writes, administration and every denial are always logged, and
    /// the change itself is. Off is for bulk pipelines that audit at the batch level elsewhere
    /// and for measuring the audit's cost; HIPAA's audit controls expect reads to be logged.
    pub fn set_read_auditing(&self, on: bool) -> Result<()> {
        let state = if on { "on" } else { "off" };
        self.audit.admin(
            Action::Admin,
            "audit",
            None,
            format!("read auditing {state}"),
        )?;
        self.audit.set_reads(on);
        Ok(())
    }

    /// Writes the audit entries waiting for group commit (the vault does this on close, before
    /// every write and verification, and on its own every [`crate::audit::MAX_PENDING`]
    /// entries).
    pub fn audit_flush(&self) -> Result<()> {
        self.audit.flush()
    }

    /// Writes every later audit entry at once, before its call returns, instead of letting
    /// entries of reads wait for group commit: for a worker process that may be ended at any
    /// time (Python `VaultHandle.open`). Costs a store sync per call.
    pub fn write_audit_entries_at_once(&self) {
        self.audit.write_every_entry();
    }

    /// Checks the whole audit chain: sequence numbers from 1 without gaps, every MAC, and the
    /// head anchor. Reports the first bad entry.
    pub fn audit_verify(&self) -> Result<AuditReport> {
        self.audit.verify()
    }

    /// [`Vault::audit_verify`], and that the log extends `anchor`, a head recorded outside
    /// the vault earlier as `SEQ:MACHEX` (from [`Vault::audit_head`]): a log rolled back or
    /// rewritten since fails (`ok` false, problem "the log does not extend the recorded head
    /// SEQ"). A malformed anchor is [`Error::InvalidInput`].
    pub fn audit_verify_extends(&self, anchor: &str) -> Result<AuditReport> {
        self.audit.verify_extends(anchor)
    }

    /// The MAC (hex) of audit entry `seq`, to compare with an anchor recorded outside the vault.
    pub fn audit_mac_at(&self, seq: u64) -> Result<Option<String>> {
        self.audit.mac_at(seq)
    }

    /// The audit head anchor (sequence number, MAC hex) to record outside the vault.
    pub fn audit_head(&self) -> Result<(u64, String)> {
        self.audit.head()
    }

    /// Audit entries with a call at or after `since_ms` (`last_ms >= since_ms`; an entry standing for
    /// several calls may start before it), optionally of one principal, oldest first.
    /// Reasons of break-the-glass entries are decrypted only when `include_reasons` is set.
    pub fn audit_entries(
        &self,
        since_ms: u64,
        principal: Option<&str>,
        include_reasons: bool,
    ) -> Result<Vec<AuditView>> {
        self.audit.entries(since_ms, principal, include_reasons)
    }

    /// Lists the records of `collection` (keyed-hash ids, keyring, key version) without
    /// decrypting anything, one page at a time in constant memory.
    pub fn scan(&self, collection: &str) -> impl Iterator<Item = Result<RecordInfo>> + '_ {
        self.records.scan(collection)
    }

    /// The stored policy (empty — only the owner may act — if none was set).
    pub fn policy(&self) -> Result<Policy> {
        self.guard.policy()
    }

    /// Replaces the policy (owner only), atomically with its audit entry.
    pub fn set_policy(&self, policy: &Policy) -> Result<()> {
        // Job snapshots carry the policy: a revoked grant must not live on in them.
        let _jobs = self.revoke_jobs()?;
        self.guard.set_policy(policy)
    }

    /// Defines (or redefines) a field, stored in the vault sealed under the vault master key.
    /// Redefining a field that already has tokens changes how new tokens look and may make
    /// old FF1 tokens undecryptable: give a new field a new name instead.
    pub fn define_field(&self, spec: FieldSpec) -> Result<()> {
        self.tokens.define_field(spec)
    }

    /// Defines every field of a TOML schema (`[[field]]` tables); returns how many.
    pub fn define_fields_toml(&self, text: &str) -> Result<usize> {
        self.tokens.define_fields_toml(text)
    }

    /// Every field usable in this vault: presets, then defined fields (which override presets
    /// of the same name).
    pub fn fields(&self) -> Result<Vec<FieldSpec>> {
        self.tokens.fields()
    }

    /// Whether `candidate` is the pseudonym of `value` in `field` (constant-time comparison).
    /// An equality oracle on values: it leaves an audit entry like a tokenization.
    pub fn verify_pseudonym(&self, field: &str, value: &str, candidate: &str) -> Result<bool> {
        self.tokens.verify_pseudonym(field, value, candidate)
    }

    /// Destroys the subject's keys: every record and envelope tied to the subject becomes
    /// undecryptable at once (O(1)), including copies outside the vault. Each destroyed key
    /// leaves an erasure record ([`Vault::erasures`]). Returns whether the subject had a key.
    pub fn forget_subject(&self, subject: &str) -> Result<bool> {
        let id = self.keys.subject_key_id(subject)?;
        // A job snapshot holds the subject's wrapped key: gone first (and none taken meanwhile).
        let _jobs = self.revoke_jobs()?;
        self.audit.admin(
            Action::ForgetSubject,
            "subject",
            Some(hex::encode(id)),
            "forget subject".into(),
        )?;
        let (writes, existed) = self.keys.forget_subject_writes(subject)?;
        self.store.write(writes)?;
        Ok(existed)
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
