//! Jobs: the keys of a directory vault's stateless token kinds, opened by many worker
//! processes at once (Dask, Spark, `multiprocessing`) while one process holds the vault.
//!
//! sled admits one process. For a job, the owner process writes a *job snapshot*
//! (`<vault>/jobs/<id>.job`, [`Vault::begin_job`]): the entries of the vault's metadata,
//! keyrings, field definitions, subject keys and erasure records — what FF1 tokens,
//! pseudonyms, date shifts and envelope encryption read — sealed with AES-256-GCM under a key
//! derived from the vault master key, bound to the vault id and the job id, together with the
//! job's caller and its expiry. Records, vaulted tokens and the consistent-token index are not
//! in it.
//!
//! A worker opens it with the vault's root key ([`JobVault::open`]): the same key source as
//! the owner, so a worker without the root key gets [`Error::WrongRootKey`] or its key
//! source's error, and the snapshot alone opens nothing. The worker's vault runs over a
//! read-only in-memory copy: every data call goes through the same session, policy decision
//! and audit code as the owner's, as the caller sealed in the snapshot (never one the worker
//! names). A call that would write — a vaulted or consistent token, a new subject key, a
//! record — is refused with [`StoreError::ReadOnly`]: those need the owner process, or the
//! PostgreSQL store, which any number of processes share.
//!
//! Audit: a worker's entries chain after the audit head of the snapshot, and each of its audit
//! flushes appends the block to a spool file `<vault>/jobs/<id>/<pid>-<random>.spool`,
//! synced before the call returns (fail closed: a worker that cannot write its spool refuses
//! the call). The owner verifies every spool's chain and appends its entries to the vault's
//! own log ([`Vault::merge_job_audit`], [`Vault::end_job`]); a torn last record (a worker
//! killed mid-write) is reported, never merged. Formats: docs/FORMAT.md §6.14.
//!
//! Crypto-shredding: a snapshot holds wrapped keys. [`Vault::forget_subject`], key destruction,
//! retiring key versions and a new policy delete every job snapshot of the vault first, under a
//! lock that [`Vault::begin_job`] holds from its scan to its file (running workers keep what
//! they loaded until they exit); [`Vault::end_job`] deletes the job's.

use crate::audit::{self, AuditEntry};
use crate::backend::Backend;
use crate::envelope::{unwrap_with, wrap_with};
use crate::error::StoreError;
use crate::kdf::{self, label};
use crate::keys::header::{HEADER_FILE, HeaderSlot, VaultHeader};
use crate::policy::Caller;
use crate::root::RootKeySource;
use crate::session::Session;
use crate::store::{CasItem, Entry, MemoryStore, Space, Store, Update, WriteOp};
use crate::vault::{Vault, VaultOptions};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The folder of a directory vault that holds job snapshots and spools.
pub const JOBS_DIR: &str = "jobs";
const SNAPSHOT_MAGIC: &[u8; 4] = b"PVJ1";
const SPOOL_MAGIC: &[u8; 4] = b"PVS1";
/// Longest accepted snapshot file (a vault with millions of subjects stays well below).
const MAX_SNAPSHOT_BYTES: u64 = 1 << 32;
/// The spaces a job snapshot copies: what the stateless kinds and envelopes read.
const SNAPSHOT_SPACES: [Space; 5] = [
    Space::Erasure,
    Space::Meta,
    Space::Keyring,
    Space::Field,
    Space::Subject,
];

/// A job's id: 16 random bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobId([u8; 16]);

impl JobId {
    /// Parses 32 hex digits (nothing else: the id names files).
    pub fn parse(s: &str) -> Result<JobId> {
        let bad = || Error::invalid("job id", "must be 32 hex digits");
        if s.len() != 32 {
            return Err(bad());
        }
        let raw = hex::decode(s).map_err(|_| bad())?;
        Ok(JobId(raw.try_into().map_err(|_| bad())?))
    }

    /// The id's 16 bytes.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn random() -> Result<JobId> {
        let mut id = [0u8; 16];
        crate::random::fill_random(&mut id)?;
        Ok(JobId(id))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// A job begun by [`Vault::begin_job`]: what a worker needs besides the root key.
#[derive(Clone, Debug)]
pub struct Job {
    /// The job's id (names its snapshot file).
    pub id: JobId,
    /// The vault directory.
    pub dir: PathBuf,
    /// Seconds since the Unix epoch after which workers refuse the snapshot.
    pub expires_unix: u64,
}

/// What [`Vault::merge_job_audit`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Spool files read.
    pub spools: usize,
    /// Audit entries appended to the vault's log.
    pub entries: usize,
    /// Spool files whose last record was torn (a worker stopped while writing it): the torn
    /// record is not merged.
    pub torn: usize,
    /// Spool files refused because an entry does not chain (edited, or not the vault's):
    /// renamed to `*.bad`, kept for inspection, nothing of them merged.
    pub refused: usize,
}

/// A job found in a vault's `jobs/` folder ([`Vault::jobs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// The job's id.
    pub id: JobId,
    /// Whether its snapshot is there (workers can open it; it has not ended).
    pub live: bool,
    /// Worker spools waiting to be merged.
    pub spools: usize,
}

/// The sealed contents of a snapshot file.
#[derive(Serialize, Deserialize)]
struct Body {
    created_unix: u64,
    expires_unix: u64,
    principal: String,
    purpose: String,
    owner: bool,
    entries: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

impl Drop for Body {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, k, v) in &mut self.entries {
            k.zeroize();
            v.zeroize();
        }
    }
}

fn space_code(s: Space) -> u8 {
    match s {
        Space::Erasure => 0,
        Space::Meta => 1,
        Space::Keyring => 2,
        Space::Field => 3,
        Space::Subject => 4,
        _ => 255,
    }
}

fn space_of(code: u8) -> Result<Space> {
    Ok(match code {
        0 => Space::Erasure,
        1 => Space::Meta,
        2 => Space::Keyring,
        3 => Space::Field,
        4 => Space::Subject,
        _ => {
            return Err(Error::CorruptMetadata {
                what: "job snapshot",
            });
        }
    })
}

fn seal_key(vmk: &crate::secret::Key32) -> Result<Box<dyn crate::backend::AeadKey>> {
    Backend::Ring.aes256gcm(&kdf::expand_key(vmk, &[label::JOB_SNAPSHOT])?)
}

fn aad(vault_id: &[u8; 16], id: &JobId) -> Vec<u8> {
    let mut a = Vec::with_capacity(36);
    a.extend_from_slice(SNAPSHOT_MAGIC);
    a.extend_from_slice(vault_id);
    a.extend_from_slice(&id.0);
    a
}

fn jobs_dir(dir: &Path) -> PathBuf {
    dir.join(JOBS_DIR)
}

fn snapshot_path(dir: &Path, id: &JobId) -> PathBuf {
    jobs_dir(dir).join(format!("{id}.job"))
}

fn spool_dir(dir: &Path, id: &JobId) -> PathBuf {
    jobs_dir(dir).join(id.to_string())
}

fn make_private_dir(d: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(d)
        .map_err(|e| Error::io(format!("creating {}", d.display()), e))
}

fn now_unix() -> u64 {
    crate::keyring::now_unix()
}

impl Vault {
    /// The vault directory, or the error of a vault that has none (a PostgreSQL vault needs
    /// no job snapshot: every process opens it).
    fn job_dir(&self) -> Result<&Path> {
        self.path().ok_or(Error::InvalidInput {
            what: "job",
            why: "job snapshots are for directory vaults; open a PostgreSQL vault in each worker",
        })
    }

    /// Begins a job: writes a snapshot of the keys the stateless kinds need, sealed under the
    /// vault master key, that workers open with [`JobVault::open`] while this process keeps
    /// the vault. Workers act as `caller` (break-the-glass callers are refused: an emergency
    /// override is one person's call, not a batch job's). Logged as an administration entry.
    pub fn begin_job(&self, caller: &Caller, ttl: Duration) -> Result<Job> {
        let dir = self.job_dir()?.to_path_buf();
        if caller.break_glass.is_some() {
            return Err(Error::invalid(
                "caller",
                "a job cannot act with break-the-glass",
            ));
        }
        if ttl.is_zero() || ttl > Duration::from_secs(366 * 86_400) {
            return Err(Error::invalid("ttl", "must be 1 second to 366 days"));
        }
        let id = JobId::random()?;
        let created = now_unix();
        let expires = created.saturating_add(ttl.as_secs().max(1));
        self.audit.admin(
            crate::audit::Action::Admin,
            "job",
            Some(id.to_string()),
            format!(
                "begin job for principal {:?} purpose {:?}, expires {expires}",
                caller.principal, caller.purpose
            ),
        )?;
        // The snapshot's audit head is the one just written: workers chain after it.
        self.audit.flush()?;
        let _jobs = self.jobs_lock.lock().map_err(|_| Error::poisoned())?;
        let mut entries = Vec::new();
        for space in SNAPSHOT_SPACES {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = self.store.scan(space, &[], after.as_deref(), 1024)?;
                let full = page.len() == 1024;
                after = page.last().map(|(k, _)| k.clone());
                for (k, v) in page {
                    entries.push((space_code(space), k, v));
                }
                if !full {
                    break;
                }
            }
        }
        let body = Body {
            created_unix: created,
            expires_unix: expires,
            principal: caller.principal.clone(),
            purpose: caller.purpose.clone(),
            owner: caller.is_owner(),
            entries,
        };
        let plain = zeroize::Zeroizing::new(
            postcard::to_allocvec(&body).map_err(|_| Error::Crypto("job snapshot encoding"))?,
        );
        let sealed = self.keys.with_vmk(|vmk| {
            wrap_with(
                seal_key(vmk)?.as_ref(),
                &aad(self.keys.vault_id(), &id),
                &plain,
            )
        })?;
        let mut file = Vec::with_capacity(20 + sealed.len());
        file.extend_from_slice(SNAPSHOT_MAGIC);
        file.extend_from_slice(&id.0);
        file.extend_from_slice(&sealed);
        make_private_dir(&jobs_dir(&dir))?;
        crate::outfile::write_file_atomic(&snapshot_path(&dir, &id), &file)?;
        Ok(Job {
            id,
            dir,
            expires_unix: expires,
        })
    }

    /// Verifies the spool files of job `id` and appends their entries to this vault's audit
    /// log (then removes them). Safe to call while workers run: each spool is read and removed
    /// under its file lock, which a worker's append also takes; a worker whose spool was
    /// merged starts a new one.
    pub fn merge_job_audit(&self, id: &JobId) -> Result<MergeReport> {
        let dir = self.job_dir()?.to_path_buf();
        let sdir = spool_dir(&dir, id);
        let mut report = MergeReport::default();
        let list = match std::fs::read_dir(&sdir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(Error::io(format!("listing {}", sdir.display()), e)),
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for e in list {
            let e = e.map_err(|e| Error::io(format!("listing {}", sdir.display()), e))?;
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("spool") {
                paths.push(p);
            }
        }
        paths.sort();
        for p in paths {
            let io = |e| Error::io(format!("merging {}", p.display()), e);
            // The spool's lock, held until it is removed: a worker's append waits for it and
            // then finds the file gone, and starts a new spool (`JobStore::spool`).
            let mut f = match std::fs::OpenOptions::new().read(true).open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            f.lock().map_err(io)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map_err(io)?;
            let (entries, torn) = match read_spool(self.audit.mac(), id, &bytes) {
                Ok(x) => x,
                Err(Error::CorruptMetadata { .. }) => {
                    // Kept aside for the operator; the other spools are merged.
                    std::fs::rename(&p, p.with_extension("bad")).map_err(io)?;
                    report.refused += 1;
                    let _ = f.unlock();
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.spools += 1;
            report.torn += usize::from(torn);
            report.entries += entries.len();
            self.audit.append_entries(entries)?;
            // The log's copy is durable before the spool, the only other one, is removed.
            self.store.sync()?;
            std::fs::remove_file(&p).map_err(io)?;
            let _ = f.unlock();
        }
        if report.spools + report.refused > 0 {
            crate::outfile::sync_dir(&sdir)
                .map_err(|e| Error::io(format!("syncing {}", sdir.display()), e))?;
        }
        if report.spools + report.refused > 0 {
            self.audit.admin(
                crate::audit::Action::Admin,
                "job",
                Some(id.to_string()),
                format!(
                    "merged {} audit entries of {} worker spools ({} torn, {} refused)",
                    report.entries, report.spools, report.torn, report.refused
                ),
            )?;
        }
        Ok(report)
    }

    /// Ends job `id`: deletes its snapshot (workers can no longer open it), then merges its
    /// workers' audit entries ([`Vault::merge_job_audit`]).
    pub fn end_job(&self, id: &JobId) -> Result<MergeReport> {
        let dir = self.job_dir()?.to_path_buf();
        let snap = snapshot_path(&dir, id);
        match std::fs::remove_file(&snap) {
            Ok(()) => crate::outfile::sync_dir(&jobs_dir(&dir))
                .map_err(|e| Error::io(format!("syncing {}", jobs_dir(&dir).display()), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", snap.display()), e)),
        }
        let report = self.merge_job_audit(id)?;
        let sdir = spool_dir(&dir, id);
        // Left when a worker still runs, was killed inside `new_spool` (a `.tmp`), or a spool
        // was refused (`.bad`): `phivault audit jobs` lists it.
        let _ = std::fs::remove_dir(&sdir);
        self.audit.admin(
            crate::audit::Action::Admin,
            "job",
            Some(id.to_string()),
            "end job".into(),
        )?;
        Ok(report)
    }

    /// The jobs of this vault: live snapshots and jobs with spools not yet merged, by id.
    pub fn jobs(&self) -> Result<Vec<JobInfo>> {
        let jdir = jobs_dir(self.job_dir()?);
        let list = match std::fs::read_dir(&jdir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}", jdir.display()), e)),
        };
        let mut found: std::collections::BTreeMap<String, JobInfo> = Default::default();
        for e in list {
            let e = e.map_err(|e| Error::io(format!("listing {}", jdir.display()), e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let (stem, live) = match name.strip_suffix(".job") {
                Some(stem) => (stem.to_owned(), true),
                None => (name.clone(), false),
            };
            let Ok(id) = JobId::parse(&stem) else {
                continue;
            };
            let spools = if live {
                0
            } else {
                std::fs::read_dir(e.path())
                    .map(|l| {
                        l.filter_map(|x| x.ok())
                            .filter(|x| {
                                x.path().extension().and_then(|x| x.to_str()) == Some("spool")
                            })
                            .count()
                    })
                    .unwrap_or(0)
            };
            let info = found.entry(stem).or_insert(JobInfo {
                id,
                live: false,
                spools: 0,
            });
            info.live |= live;
            info.spools += spools;
        }
        Ok(found.into_values().collect())
    }

    /// Deletes every job snapshot of this vault (before a key is destroyed, a subject
    /// forgotten or the policy changed: a snapshot holds wrapped keys and the policy) and
    /// returns the jobs lock, which the caller holds until its change is written. Spools stay
    /// for merging.
    pub(crate) fn revoke_jobs(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        let guard = self.jobs_lock.lock().map_err(|_| Error::poisoned())?;
        let Some(dir) = self.path() else {
            return Ok(guard);
        };
        let jdir = jobs_dir(dir);
        let list = match std::fs::read_dir(&jdir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(guard),
            Err(e) => return Err(Error::io(format!("listing {}", jdir.display()), e)),
        };
        let mut removed = false;
        for e in list {
            let e = e.map_err(|e| Error::io(format!("listing {}", jdir.display()), e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            // Snapshots, and the temporary file of one a crash interrupted.
            if p.is_file() && (name.ends_with(".job") || name.ends_with(".partial")) {
                std::fs::remove_file(&p)
                    .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
                removed = true;
            }
        }
        if removed {
            crate::outfile::sync_dir(&jdir)
                .map_err(|e| Error::io(format!("syncing {}", jdir.display()), e))?;
        }
        Ok(guard)
    }
}

/// Parses a spool file: its verified entries, and whether its last record was torn.
pub(crate) fn read_spool(
    mac: &crate::kdf::Mac,
    id: &JobId,
    bytes: &[u8],
) -> Result<(Vec<AuditEntry>, bool)> {
    let bad = || Error::CorruptMetadata {
        what: "job audit spool",
    };
    if bytes.len() < 4 + 16 + 8 + 32 || &bytes[..4] != SPOOL_MAGIC || bytes[4..20] != id.0 {
        return Err(bad());
    }
    let mut seq = u64::from_be_bytes(bytes[20..28].try_into().map_err(|_| bad())?)
        .checked_add(1)
        .ok_or_else(bad)?;
    let mut prev: [u8; 32] = bytes[28..60].try_into().map_err(|_| bad())?;
    let mut rest = &bytes[60..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(len) = rest.get(..4) else {
            return Ok((out, true));
        };
        let len = u32::from_be_bytes(len.try_into().map_err(|_| bad())?) as usize;
        let Some(block) = rest.get(4..4 + len) else {
            return Ok((out, true));
        };
        for raw in audit::split_value(block)? {
            let d = audit::decode_entry(raw)?;
            if d.entry.seq != seq || !d.chains_after(mac, &prev) {
                return Err(Error::CorruptMetadata {
                    what: "job audit spool: an entry does not chain",
                });
            }
            prev = d.mac;
            seq = seq.checked_add(1).ok_or_else(bad)?;
            out.push(d.entry);
        }
        rest = &rest[4 + len..];
    }
    Ok((out, false))
}

/// The worker's store: a read-only copy of the snapshot's entries, whose audit appends go to
/// a spool file.
struct JobStore {
    mem: MemoryStore,
    /// The process that opened the job: a forked child must open the job itself (it would
    /// share this spool and chain from the same head).
    pid: u32,
    spool_dir: PathBuf,
    id: JobId,
    spool: Mutex<Option<std::fs::File>>,
}

fn read_only() -> StoreError {
    StoreError::ReadOnly(
        "a job snapshot is read-only: vaulted and consistent tokens, new subjects and records \
         need the vault's own process or the PostgreSQL store",
    )
}

impl JobStore {
    /// Appends `block` (an audit block chained after `start`, the current head) to this
    /// process's spool, synced before it returns. Each append holds the spool's file lock, as
    /// the owner's merge does while it reads and removes a spool: when the merge has taken the
    /// file away, the next append starts a new spool chained from `start`, so no entry is
    /// written to a file the merge already read.
    fn spool(&self, start: Option<&[u8]>, block: &[u8]) -> Result<(), StoreError> {
        if std::process::id() != self.pid {
            return Err(StoreError::ReadOnly(
                "this job was opened by the parent process: open it again after fork",
            ));
        }
        let mut g = self
            .spool
            .lock()
            .map_err(|_| StoreError::Backend("spool lock poisoned".into()))?;
        let len = u32::try_from(block.len()).map_err(|_| StoreError::Corrupt("audit block"))?;
        let mut rec = Vec::with_capacity(4 + block.len());
        rec.extend_from_slice(&len.to_be_bytes());
        rec.extend_from_slice(block);
        loop {
            if g.is_none() {
                *g = Some(self.new_spool(start)?);
            }
            let f = g.as_mut().ok_or_else(read_only)?;
            f.lock()?;
            // Merged and removed since the last append: start a new spool.
            if file_links(f)? == 0 {
                let _ = f.unlock();
                *g = None;
                continue;
            }
            let before = f.metadata()?.len();
            let written = f.write_all(&rec).and_then(|()| f.sync_data());
            if written.is_err() {
                // Cut back what may have reached the file; the next append starts a new spool
                // (the entries stay pending and are chained again from the same head).
                let _ = f.set_len(before);
                let _ = f.unlock();
                *g = None;
                return Ok(written?);
            }
            let _ = f.unlock();
            return Ok(());
        }
    }

    /// A new spool file whose chain starts at `start`: written under a temporary name, synced,
    /// then renamed to `<pid>-<random>.spool` (the merge never sees a file without its header).
    fn new_spool(&self, start: Option<&[u8]>) -> Result<std::fs::File, StoreError> {
        let (seq, mac) = match start {
            None => (0, [0u8; 32]),
            Some(h) => audit::decode_head(h).map_err(|_| StoreError::Corrupt("audit head"))?,
        };
        make_private_dir(&self.spool_dir)
            .map_err(|_| StoreError::Backend("cannot create the job's spool folder".into()))?;
        let mut rnd = [0u8; 8];
        crate::random::fill_random(&mut rnd)
            .map_err(|_| StoreError::Backend("no randomness".into()))?;
        let name = format!("{}-{}", std::process::id(), hex::encode(rnd));
        let tmp = self.spool_dir.join(format!("{name}.tmp"));
        let path = self.spool_dir.join(format!("{name}.spool"));
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        let mut head = Vec::with_capacity(60);
        head.extend_from_slice(SPOOL_MAGIC);
        head.extend_from_slice(&self.id.0);
        head.extend_from_slice(&seq.to_be_bytes());
        head.extend_from_slice(&mac);
        f.write_all(&head)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        crate::outfile::sync_dir(&self.spool_dir)?;
        Ok(f)
    }
}

/// How many names the open file `f` has (0: it was removed).
fn file_links(f: &std::fs::File) -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(f.metadata()?.nlink())
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        Ok(1)
    }
}

/// Whether `space` is in the snapshot (the audit log is this process's own chain).
fn in_snapshot(space: Space) -> bool {
    SNAPSHOT_SPACES.contains(&space) || space == Space::Audit
}

impl Store for JobStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // Records and vaulted tokens are not in the snapshot: refused, never read as absent.
        if !in_snapshot(space) {
            return Err(read_only());
        }
        self.mem.get(space, key)
    }
    fn write(&self, _ops: Vec<WriteOp>) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn compare_and_swap(
        &self,
        _space: Space,
        _key: &[u8],
        _expected: Option<&[u8]>,
        _new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn write_unsynced(&self, _ops: Vec<WriteOp>) -> Result<(), StoreError> {
        Err(read_only())
    }
    fn compare_and_swap_unsynced(
        &self,
        _space: Space,
        _key: &[u8],
        _expected: Option<&[u8]>,
        _new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn compare_and_swap_many(
        &self,
        _space: Space,
        _items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        Err(read_only())
    }
    fn insert_absent_many_unsynced(
        &self,
        _space: Space,
        _items: &[(&[u8], &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        Err(read_only())
    }
    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if !in_snapshot(space) {
            return Err(read_only());
        }
        self.mem.scan(space, prefix, after, limit)
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn write_unsynced_if(
        &self,
        _space: Space,
        _key: &[u8],
        _expected: Option<&[u8]>,
        _ops: Vec<WriteOp>,
    ) -> Result<bool, StoreError> {
        Err(read_only())
    }
    fn update_unsynced(
        &self,
        space: Space,
        key: &[u8],
        f: &mut Update<'_>,
    ) -> Result<(), StoreError> {
        // Only the audit log's append (a block and the new head) is let through, to the spool.
        if space != Space::Meta || key != audit::HEAD_KEY {
            return Err(read_only());
        }
        let current = self.mem.get(space, key)?;
        let ops = f(current.as_deref())?;
        let mut block = None;
        for op in &ops {
            match op {
                WriteOp::Put {
                    space: Space::Audit,
                    value,
                    ..
                } if block.is_none() => block = Some(value.as_slice()),
                WriteOp::Put {
                    space: Space::Meta,
                    key: k,
                    ..
                } if k == audit::HEAD_KEY => {}
                _ => return Err(read_only()),
            }
        }
        if let Some(b) = block {
            self.spool(current.as_deref(), b)?;
        }
        self.mem.write(ops)
    }
}

/// A job's vault in a worker process (see the module documentation).
pub struct JobVault {
    vault: Vault,
    caller: Caller,
    expires_unix: u64,
    id: JobId,
}

impl std::fmt::Debug for JobVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobVault")
            .field("job", &self.id)
            .field("principal", &self.caller.principal)
            .finish_non_exhaustive()
    }
}

impl JobVault {
    /// Opens job `id` of the directory vault at `dir` with the vault's root key. Fails with
    /// [`Error::WrongRootKey`] for another key, [`Error::InvalidInput`] (`job`) when the job
    /// has ended or expired, and "authentication failed" for a snapshot that is not this
    /// vault's or was changed.
    pub fn open(
        dir: impl AsRef<Path>,
        id: &JobId,
        root: &dyn RootKeySource,
        opts: VaultOptions,
    ) -> Result<JobVault> {
        let dir = dir.as_ref();
        let header_path = dir.join(HEADER_FILE);
        let hbytes = std::fs::read(&header_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::VaultNotFound {
                path: dir.to_path_buf(),
            },
            _ => Error::io(format!("reading {}", header_path.display()), e),
        })?;
        let header = VaultHeader::decode(&hbytes)?;
        let vmk = header.unlock(root)?;
        let path = snapshot_path(dir, id);
        let ended = || Error::InvalidInput {
            what: "job",
            why: "this job has ended or was revoked (its snapshot is gone): begin a new one",
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ended()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        if len > MAX_SNAPSHOT_BYTES {
            return Err(Error::CorruptMetadata {
                what: "job snapshot",
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut &file, &mut bytes)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if bytes.len() < 20 || &bytes[..4] != SNAPSHOT_MAGIC || bytes[4..20] != id.0 {
            return Err(Error::AuthenticationFailed);
        }
        let plain = unwrap_with(
            seal_key(&vmk)?.as_ref(),
            &aad(&header.vault_id, id),
            &bytes[20..],
        )?;
        let body: Body = crate::codec::decode_exact(plain.expose(), "job snapshot")?;
        if now_unix() >= body.expires_unix {
            return Err(Error::InvalidInput {
                what: "job",
                why: "this job's snapshot has expired: begin a new one",
            });
        }
        let mem = MemoryStore::new();
        let mut ops = Vec::with_capacity(body.entries.len());
        for (code, k, v) in &body.entries {
            ops.push(WriteOp::Put {
                space: space_of(*code)?,
                key: k.clone(),
                value: v.clone(),
            });
        }
        mem.write(ops)?;
        let store = JobStore {
            mem,
            pid: std::process::id(),
            spool_dir: spool_dir(dir, id),
            id: *id,
            spool: Mutex::new(None),
        };
        let mut vault = Vault::assemble(
            Box::new(store),
            opts.backend,
            &header,
            &vmk,
            HeaderSlot::Store,
        )?;
        vault.set_threads(opts.threads)?;
        // Each call's entry reaches the spool before the call returns (no group commit).
        vault.audit.write_every_entry();
        let caller = if body.owner {
            Caller::owner()
        } else {
            Caller::new(body.principal.clone(), body.purpose.clone())
        };
        Ok(JobVault {
            vault,
            caller,
            expires_unix: body.expires_unix,
            id: *id,
        })
    }

    /// The session every call of the job goes through: the job's caller, its policy decision
    /// and audit entries.
    pub fn session(&self) -> Session<'_> {
        self.vault.session(self.caller.clone())
    }

    /// The job's caller (sealed in the snapshot).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// When the snapshot expires (seconds since the Unix epoch).
    pub fn expires_unix(&self) -> u64 {
        self.expires_unix
    }

    /// Writes the audit entries still waiting for group commit to this worker's spool (do it
    /// after every batch: the call's entries are then on disk before its data leaves).
    pub fn flush(&self) -> Result<()> {
        self.vault.audit_flush()
    }

    /// The vault and the caller, for bindings that hold them apart (the Python `Session`).
    pub fn into_parts(self) -> (Vault, Caller) {
        (self.vault, self.caller)
    }

    /// The vault under the job (read-only; for the field list and the like).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }
}
