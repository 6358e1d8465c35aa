//! Backups: a consistent snapshot of a live vault in one authenticated, encrypted file;
//! verification without any key; restore that never half-restores.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, backup::{self, RestoreOptions}};
//! let dir = tempfile::tempdir()?;
//! let root = KeyFile::from_key(Key32::random()?);
//! let vault = Vault::create(dir.path().join("v"), &root)?;
//! vault.owner().put("notes", "MRN-4711", b"Patient reports chest pain", None)?;
//! let file = dir.path().join("v.pvbak");
//! vault.backup(&file)?;                                  // writers may keep writing meanwhile
//! backup::verify_backup(&file)?;                          // no key needed (nightly check)
//! backup::restore(&file, dir.path().join("restored"), &root, &RestoreOptions::default())?;
//! let restored = Vault::open(dir.path().join("restored"), &root)?;
//! assert_eq!(&*restored.owner().get("notes", "MRN-4711")?.expect("stored"), b"Patient reports chest pain");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Consistency
//! [`Vault::backup`] starts a copy-on-write snapshot (see `core/src/store/snapshot.rs`): the file
//! holds every space of the store exactly as it was at one instant, while writers carry on
//! (slowed, not stopped). The vault header in the file is the one current at that instant.
//!
//! # File format (version 1)
//! All integers big-endian. `H(..)` is SHA-256, `Kenc`/`Kmac` are derived from the vault
//! master key (VMK) with HKDF-Expand and a per-backup random salt `S`:
//! `Kenc = HKDF-Expand(VMK, "phivault v1 backup seal" ‖ S, 32)`,
//! `Kmac = HKDF-Expand(VMK, "phivault v1 backup mac" ‖ S, 32)`.
//!
//! ```text
//! "PVBACKUP" ‖ u32 format (1) ‖ vault id (16) ‖ u64 created_unix ‖ S (32)
//!   ‖ u32 len ‖ vault header (as in vault.header: the VMK wrapped by the root key)
//! n × ( 0x01 ‖ u32 len ‖ nonce (12) ‖ AES-256-GCM(Kenc, chunk, AAD) ‖ tag (16) )
//! 0x02 ‖ u64 n ‖ HMAC-SHA256(Kmac, every byte before it) ‖ SHA-256(every byte before it)
//! ```
//!
//! A chunk's AAD is `"PVB1 chunk" ‖ vault id ‖ S ‖ u64 chunk index`; its plaintext is a run of
//! store entries `u8 space prefix ‖ u32 key len ‖ key ‖ u32 value len ‖ value`. The final
//! SHA-256 lets anyone check integrity without a key ([`verify_backup`]); the HMAC and the
//! per-chunk tags, checked by [`restore`] and [`verify_backup_with`], make any change by
//! someone without the VMK detectable, including reordering, dropping or adding chunks.
//!
//! # Security notes
//! - The file holds only what the store holds (ciphertext and non-secret metadata), encrypted
//!   once more, plus the vault header, which is as sensitive as `vault.header` (an offline
//!   passphrase guessing target for passphrase vaults: keep backups as safe as the vault).
//! - A backup holds the subject keys that existed when it was taken. Restoring it re-applies
//!   the erasures it holds and those of an erasure ledger exported from the live vault
//!   ([`RestoreOptions::erasures`]); a subject forgotten after the backup and missing from
//!   the ledger comes back readable. See docs/recovery.md.

use crate::backend::{AeadKey, Backend};
use crate::envelope::{unwrap_with, wrap_with};
use crate::erasure::ErasureRecord;
use crate::kdf;
use crate::keys::header::HEADER_FILE;
use crate::root::RootKeySource;
use crate::secret::Key32;
use crate::store::{Durability, SledStore, Space, Store, WriteOp};
use crate::vault::{STORE_DIR, Vault};
use crate::{Error, Result};
use ring::{digest, hmac};
use serde::Serialize;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// The backup file format version this code writes and reads.
pub const BACKUP_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"PVBACKUP";
const LABEL_SEAL: &[u8] = b"phivault v1 backup seal";
const LABEL_MAC: &[u8] = b"phivault v1 backup mac";
const CHUNK_AAD: &[u8] = b"PVB1 chunk";
const FRAME_CHUNK: u8 = 0x01;
const FRAME_END: u8 = 0x02;
const SALT_LEN: usize = 32;
/// Plaintext bytes gathered before a chunk is sealed.
const CHUNK_TARGET: usize = 256 * 1024;
/// Largest sealed chunk a reader accepts (bounds memory on hostile input).
const MAX_FRAME: usize = 64 * 1024 * 1024;
const MAX_HEADER: usize = 64 * 1024;
const SCAN_PAGE: usize = 1024;
const RESTORE_BATCH: usize = 4096;

fn damaged(what: &'static str) -> Error {
    Error::BackupDamaged { what }
}

/// What [`Vault::backup`] wrote.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BackupReport {
    /// Bytes in the file.
    pub bytes: u64,
    /// Store entries (all spaces).
    pub entries: u64,
    /// Records among them.
    pub records: u64,
    /// Encrypted chunks.
    pub chunks: u64,
}

/// What [`verify_backup`] found in an intact backup.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BackupInfo {
    /// File format version.
    pub format: u32,
    /// The vault's id, hex.
    pub vault_id: String,
    /// When the backup was taken (seconds since the Unix epoch).
    pub created_unix: u64,
    /// Encrypted chunks.
    pub chunks: u64,
    /// Bytes in the file.
    pub bytes: u64,
    /// Whether the contents were also authenticated with the vault's key (not only the
    /// keyless checksum).
    pub authenticated: bool,
    /// Store entries (known only when authenticated).
    pub entries: Option<u64>,
}

/// Options for [`restore`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// An erasure ledger from the live vault ([`Vault::erasures`], `phivault erasures
    /// --json`): these subjects' keys are dropped from the restored vault, so subjects
    /// forgotten after the backup stay forgotten.
    pub erasures: Vec<ErasureRecord>,
}

impl RestoreOptions {
    /// No ledger: only the backup's own erasures are re-applied.
    pub fn new() -> Self {
        Self::default()
    }

    /// Re-applies these erasures too.
    #[must_use]
    pub fn erasures(mut self, erasures: Vec<ErasureRecord>) -> Self {
        self.erasures = erasures;
        self
    }
}

/// What [`restore`] did.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored vault's id, hex.
    pub vault_id: String,
    /// Store entries written.
    pub entries: u64,
    /// Records among them.
    pub records: u64,
    /// Subject keys in the backup that were dropped because their subject was forgotten.
    pub subject_keys_dropped: u64,
    /// Erasure records from the ledger added to the restored vault.
    pub erasures_added: u64,
}

struct BackupKeys {
    seal: Box<dyn AeadKey>,
    mac: hmac::Key,
}

impl BackupKeys {
    fn derive(vmk: &Key32, salt: &[u8; SALT_LEN]) -> Result<Self> {
        let seal = kdf::expand_key(vmk, &[LABEL_SEAL, salt])?;
        let mac = kdf::expand_key(vmk, &[LABEL_MAC, salt])?;
        Ok(BackupKeys {
            seal: Backend::Ring.aes256gcm(&seal)?,
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac.expose()),
        })
    }
}

fn chunk_aad(vault_id: &[u8; 16], salt: &[u8; SALT_LEN], index: u64) -> Vec<u8> {
    let mut aad = CHUNK_AAD.to_vec();
    aad.extend_from_slice(vault_id);
    aad.extend_from_slice(salt);
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

/// A temporary path beside `path`, in the same directory (so a rename is atomic).
fn temp_beside(path: &Path, what: &str) -> Result<PathBuf> {
    let mut r = [0u8; 8];
    crate::random::fill_random(&mut r)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    Ok(path.with_file_name(format!(".{name}.{what}-{}", hex::encode(r))))
}

fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

// ---- writing --------------------------------------------------------------------------------

/// A writer that hashes (SHA-256) and MACs everything it writes.
struct HashingWriter<W: Write> {
    out: W,
    sha: digest::Context,
    mac: hmac::Context,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.sha.update(b);
        self.mac.update(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }
}

struct ChunkWriter<'k, W: Write> {
    w: HashingWriter<W>,
    keys: &'k BackupKeys,
    vault_id: [u8; 16],
    salt: [u8; SALT_LEN],
    buf: Zeroizing<Vec<u8>>,
    chunks: u64,
    entries: u64,
    records: u64,
}

impl<W: Write> ChunkWriter<'_, W> {
    fn entry(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        let (Ok(kl), Ok(vl)) = (u32::try_from(key.len()), u32::try_from(value.len())) else {
            return Err(Error::invalid("store entry", "too large for a backup"));
        };
        self.buf.push(space.prefix());
        self.buf.extend_from_slice(&kl.to_be_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&vl.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.entries += 1;
        if space == Space::Record {
            self.records += 1;
        }
        if self.buf.len() >= CHUNK_TARGET {
            self.seal_chunk()?;
        }
        Ok(())
    }

    fn seal_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let aad = chunk_aad(&self.vault_id, &self.salt, self.chunks);
        let sealed = wrap_with(self.keys.seal.as_ref(), &aad, &self.buf)?;
        self.buf.zeroize();
        let len = u32::try_from(sealed.len())
            .ok()
            .filter(|l| (*l as usize) <= MAX_FRAME)
            .ok_or(Error::invalid("store entry", "too large for a backup"))?;
        self.w.put(&[FRAME_CHUNK]).map_err(io_write)?;
        self.w.put(&len.to_be_bytes()).map_err(io_write)?;
        self.w.put(&sealed).map_err(io_write)?;
        self.chunks += 1;
        Ok(())
    }
}

fn io_write(e: std::io::Error) -> Error {
    Error::io("writing backup", e)
}

impl Vault {
    /// Writes a consistent backup of the whole vault (records, tokens, keyrings, subject keys,
    /// fields, policy, audit log, erasures, header) to `dest`, atomically (temporary file,
    /// fsync, rename). Writers may keep writing: the backup is the state at one instant.
    /// Audited before it starts.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref();
        self.audit
            .admin(crate::audit::Action::Admin, "vault", None, "backup".into())?;
        let tmp = temp_beside(dest, "tmp")?;
        let result = self.backup_to(&tmp);
        match result {
            Ok(report) => {
                std::fs::rename(&tmp, dest)
                    .map_err(|e| Error::io(format!("renaming to {}", dest.display()), e))?;
                sync_parent(dest)?;
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn backup_to(&self, tmp: &Path) -> Result<BackupReport> {
        let mut salt = [0u8; SALT_LEN];
        crate::random::fill_random(&mut salt)?;
        let keys = self.keys.with_vmk(|vmk| BackupKeys::derive(vmk, &salt))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .open(tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;

        let mut snap = self.snapshots.begin(self.store.as_ref())?;
        // Taken under the snapshot: the header current at the snapshot instant (a concurrent
        // root rotation is either before or after it).
        let header = self.keys.header_bytes()?;
        let header_len = u32::try_from(header.len())
            .ok()
            .filter(|l| (*l as usize) <= MAX_HEADER)
            .ok_or(Error::Crypto("vault header too large"))?;
        let mut cw = ChunkWriter {
            w: HashingWriter {
                out: BufWriter::with_capacity(1 << 20, file),
                sha: digest::Context::new(&digest::SHA256),
                mac: hmac::Context::with_key(&keys.mac),
                bytes: 0,
            },
            keys: &keys,
            vault_id: *self.keys.vault_id(),
            salt,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_TARGET + 4096)),
            chunks: 0,
            entries: 0,
            records: 0,
        };
        let mut pre = MAGIC.to_vec();
        pre.extend_from_slice(&BACKUP_FORMAT.to_be_bytes());
        pre.extend_from_slice(self.keys.vault_id());
        pre.extend_from_slice(&crate::keyring::now_unix().to_be_bytes());
        pre.extend_from_slice(&salt);
        pre.extend_from_slice(&header_len.to_be_bytes());
        pre.extend_from_slice(&header);
        cw.w.put(&pre).map_err(io_write)?;

        for space in Space::ALL {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = snap.page(space, after.as_deref(), SCAN_PAGE)?;
                for (k, v) in &page.entries {
                    cw.entry(space, k, v)?;
                }
                match page.next_after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
        }
        for (space, (k, v)) in snap.leftovers()? {
            cw.entry(space, &k, &v)?;
        }
        drop(snap);
        cw.seal_chunk()?;

        let mut w = cw.w;
        w.put(&[FRAME_END]).map_err(io_write)?;
        w.put(&cw.chunks.to_be_bytes()).map_err(io_write)?;
        let tag = w.mac.clone().sign();
        w.sha.update(tag.as_ref());
        w.out.write_all(tag.as_ref()).map_err(io_write)?;
        let sum = w.sha.clone().finish();
        w.out.write_all(sum.as_ref()).map_err(io_write)?;
        let bytes = w.bytes + 64;
        let file = w
            .out
            .into_inner()
            .map_err(|e| Error::io("writing backup", e.into_error()))?;
        file.sync_all().map_err(io_write)?;
        Ok(BackupReport {
            bytes,
            entries: cw.entries,
            records: cw.records,
            chunks: cw.chunks,
        })
    }
}

// ---- reading --------------------------------------------------------------------------------

/// A reader that hashes (and, once keyed, MACs) everything it reads.
struct HashingReader {
    inp: BufReader<File>,
    sha: digest::Context,
    mac: Option<hmac::Context>,
    /// Bytes read before the MAC context existed (the preamble), replayed into it.
    pending: Option<Vec<u8>>,
    bytes: u64,
}

impl HashingReader {
    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.inp.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                damaged("truncated")
            } else {
                Error::io("reading backup", e)
            }
        })?;
        self.absorb(&buf);
        Ok(buf)
    }

    fn absorb(&mut self, b: &[u8]) {
        self.sha.update(b);
        match (&mut self.mac, &mut self.pending) {
            (Some(m), _) => m.update(b),
            (None, Some(p)) => p.extend_from_slice(b),
            (None, None) => {}
        }
        self.bytes += b.len() as u64;
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    fn key_mac(&mut self, key: &hmac::Key) {
        let mut m = hmac::Context::with_key(key);
        if let Some(p) = self.pending.take() {
            m.update(&p);
        }
        self.mac = Some(m);
    }
}

struct Preamble {
    format: u32,
    vault_id: [u8; 16],
    created_unix: u64,
    salt: [u8; SALT_LEN],
    header: Vec<u8>,
}

enum Frame {
    Chunk(Vec<u8>),
    End { chunks: u64 },
}

struct BackupReader {
    r: HashingReader,
    pre: Preamble,
}

impl BackupReader {
    fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let mut r = HashingReader {
            inp: BufReader::with_capacity(1 << 20, file),
            sha: digest::Context::new(&digest::SHA256),
            mac: None,
            pending: Some(Vec::new()),
            bytes: 0,
        };
        let magic = r
            .take(MAGIC.len())
            .map_err(|_| damaged("not a phivault backup"))?;
        if magic != MAGIC {
            return Err(damaged("not a phivault backup"));
        }
        let format = r.u32()?;
        if format != BACKUP_FORMAT {
            return Err(Error::UnsupportedVersion {
                what: "backup",
                version: format,
            });
        }
        let mut vault_id = [0u8; 16];
        vault_id.copy_from_slice(&r.take(16)?);
        let created_unix = r.u64()?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&r.take(SALT_LEN)?);
        let hlen = r.u32()? as usize;
        if hlen > MAX_HEADER {
            return Err(damaged("vault header length out of range"));
        }
        let header = r.take(hlen)?;
        let hid = Vault::header_vault_id(&header).map_err(|_| damaged("vault header"))?;
        if hid != vault_id {
            return Err(damaged("vault id does not match the vault header"));
        }
        Ok(BackupReader {
            r,
            pre: Preamble {
                format,
                vault_id,
                created_unix,
                salt,
                header,
            },
        })
    }

    fn next_frame(&mut self) -> Result<Frame> {
        let kind = self.r.take(1)?;
        match kind[0] {
            FRAME_CHUNK => {
                let len = self.r.u32()? as usize;
                if !(12 + 16..=MAX_FRAME).contains(&len) {
                    return Err(damaged("chunk length out of range"));
                }
                Ok(Frame::Chunk(self.r.take(len)?))
            }
            FRAME_END => Ok(Frame::End {
                chunks: self.r.u64()?,
            }),
            _ => Err(damaged("unknown frame")),
        }
    }

    /// After the end frame: the MAC (checked when keyed), the checksum, then end of file.
    fn finish(mut self, seen_chunks: u64, end_chunks: u64) -> Result<u64> {
        let expected_mac = self.r.mac.take().map(|m| m.sign());
        let mac = self.r.take(32)?;
        let expected_sum = self.r.sha.clone().finish();
        let mut sum = [0u8; 32];
        self.r
            .inp
            .read_exact(&mut sum)
            .map_err(|_| damaged("truncated"))?;
        let mut extra = [0u8; 1];
        let trailing = self
            .r
            .inp
            .read(&mut extra)
            .map_err(|e| Error::io("reading backup", e))?;
        if !crate::secret::ct_eq(expected_sum.as_ref(), &sum) {
            return Err(damaged("checksum mismatch"));
        }
        if trailing != 0 {
            return Err(damaged("data after the end of the backup"));
        }
        if end_chunks != seen_chunks {
            return Err(damaged("chunk count mismatch"));
        }
        if let Some(t) = expected_mac
            && !crate::secret::ct_eq(t.as_ref(), &mac)
        {
            return Err(damaged("authentication failed"));
        }
        Ok(self.r.bytes + 32)
    }
}

/// Parses a chunk's plaintext into entries.
fn for_each_entry(
    plain: &[u8],
    mut f: impl FnMut(Space, &[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let mut rest = plain;
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if rest.len() < n {
            return Err(damaged("entry encoding"));
        }
        let (a, b) = rest.split_at(n);
        *rest = b;
        Ok(a.to_vec())
    };
    while !rest.is_empty() {
        let p = take(&mut rest, 1)?;
        let space = Space::from_prefix(p[0]).ok_or(damaged("unknown space"))?;
        let kl = take(&mut rest, 4)?;
        let k = take(
            &mut rest,
            u32::from_be_bytes([kl[0], kl[1], kl[2], kl[3]]) as usize,
        )?;
        let vl = take(&mut rest, 4)?;
        let v = Zeroizing::new(take(
            &mut rest,
            u32::from_be_bytes([vl[0], vl[1], vl[2], vl[3]]) as usize,
        )?);
        f(space, &k, &v)?;
    }
    Ok(())
}

/// Checks a backup file without any key: structure, lengths, the end frame and the SHA-256
/// checksum over the whole file. Any truncation, bit flip or appended data is refused with
/// [`Error::BackupDamaged`]. This proves integrity against accidents, not authenticity
/// against someone who rewrites the file and its checksum: [`verify_backup_with`] and
/// [`restore`] also check the MAC and every chunk's tag.
pub fn verify_backup(src: impl AsRef<Path>) -> Result<BackupInfo> {
    let mut rd = BackupReader::open(src.as_ref())?;
    rd.r.pending = None;
    let mut seen = 0u64;
    loop {
        match rd.next_frame()? {
            Frame::Chunk(_) => seen += 1,
            Frame::End { chunks } => {
                let info = (
                    rd.pre.format,
                    hex::encode(rd.pre.vault_id),
                    rd.pre.created_unix,
                );
                let bytes = rd.finish(seen, chunks)?;
                return Ok(BackupInfo {
                    format: info.0,
                    vault_id: info.1,
                    created_unix: info.2,
                    chunks: seen,
                    bytes,
                    authenticated: false,
                    entries: None,
                });
            }
        }
    }
}

/// Reads and authenticates a whole backup with the root key of the vault it came from
/// (the root key current when it was taken), calling `sink` for every entry.
fn read_authenticated(
    src: &Path,
    root: &dyn RootKeySource,
    mut sink: impl FnMut(Space, &[u8], &[u8]) -> Result<()>,
) -> Result<(BackupReader, u64, u64)> {
    let mut rd = BackupReader::open(src)?;
    let (vid, vmk) = Vault::unlock_header(&rd.pre.header, root)?;
    if vid != rd.pre.vault_id {
        return Err(damaged("vault id does not match the vault header"));
    }
    let keys = BackupKeys::derive(&vmk, &rd.pre.salt)?;
    drop(vmk);
    rd.r.key_mac(&keys.mac);
    let mut seen = 0u64;
    loop {
        match rd.next_frame()? {
            Frame::Chunk(sealed) => {
                let aad = chunk_aad(&rd.pre.vault_id, &rd.pre.salt, seen);
                let plain = unwrap_with(keys.seal.as_ref(), &aad, &sealed)
                    .map_err(|_| damaged("authentication failed"))?;
                for_each_entry(plain.expose(), &mut sink)?;
                seen += 1;
            }
            Frame::End { chunks } => return Ok((rd, seen, chunks)),
        }
    }
}

/// [`verify_backup`] plus authentication with the root key: decrypts every chunk and checks
/// the MAC, writing nothing. The deep check for a restore drill without restoring.
pub fn verify_backup_with(src: impl AsRef<Path>, root: &dyn RootKeySource) -> Result<BackupInfo> {
    let mut entries = 0u64;
    let (rd, seen, chunks) = read_authenticated(src.as_ref(), root, |_, _, _| {
        entries += 1;
        Ok(())
    })?;
    let info = (
        rd.pre.format,
        hex::encode(rd.pre.vault_id),
        rd.pre.created_unix,
    );
    let bytes = rd.finish(seen, chunks)?;
    Ok(BackupInfo {
        format: info.0,
        vault_id: info.1,
        created_unix: info.2,
        chunks: seen,
        bytes,
        authenticated: true,
        entries: Some(entries),
    })
}

/// Restores a backup into a new vault directory `dest` (which must not exist, or be an empty
/// directory), with the root key of the vault the backup was taken from.
///
/// Everything is checked (checksum, MAC, every chunk) while it is written into a temporary
/// directory beside `dest`; only a complete, authentic restore is renamed into place, so a
/// damaged backup leaves nothing behind. Subject keys of forgotten subjects — those in the
/// backup's own erasure records and those in `opts.erasures` — are never written. The restore
/// is recorded in the restored vault's audit log.
pub fn restore(
    src: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    root: &dyn RootKeySource,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let (src, dest) = (src.as_ref(), dest.as_ref());
    if dest.exists() {
        let empty_dir = std::fs::read_dir(dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty_dir {
            return Err(Error::VaultExists {
                path: dest.to_path_buf(),
            });
        }
    }
    let tmp = temp_beside(dest, "restore")?;
    let result = restore_into(src, &tmp, root, opts);
    match result {
        Ok(report) => {
            std::fs::rename(&tmp, dest)
                .map_err(|e| Error::io(format!("renaming to {}", dest.display()), e))
                .inspect_err(|_| {
                    let _ = std::fs::remove_dir_all(&tmp);
                })?;
            sync_parent(dest)?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn restore_into(
    src: &Path,
    tmp: &Path,
    root: &dyn RootKeySource,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;

    // Subjects to keep forgotten: the ledger's now, the backup's own as they are read (the
    // writer puts erasures first).
    let mut forgotten: HashSet<Vec<u8>> = HashSet::new();
    let mut ledger = Vec::new();
    for e in &opts.erasures {
        let id = e.subject_id()?.to_vec();
        forgotten.insert(id.clone());
        ledger.push((e, id));
    }
    let mut known_erasures: HashSet<Vec<u8>> = HashSet::new();

    let store = SledStore::open(&tmp.join(STORE_DIR), Durability::Deferred)?;
    let mut batch: Vec<WriteOp> = Vec::with_capacity(RESTORE_BATCH);
    let (mut entries, mut records, mut dropped) = (0u64, 0u64, 0u64);
    let mut sink = |space: Space, k: &[u8], v: &[u8]| -> Result<()> {
        match space {
            Space::Erasure if k.len() == crate::erasure::KEY_LEN => {
                forgotten.insert(k[8..].to_vec());
                known_erasures.insert(k[8..].to_vec());
            }
            Space::Subject if forgotten.contains(k) => {
                dropped += 1;
                return Ok(());
            }
            // The directory vault's header lives in `vault.header`, written below.
            Space::Meta if k == b"header" => return Ok(()),
            // The restored store starts its own commit anchor (anchor.rs) when it is opened.
            Space::Meta if k == crate::anchor::ANCHOR_KEY => return Ok(()),
            Space::Record => records += 1,
            _ => {}
        }
        entries += 1;
        batch.push(WriteOp::Put {
            space,
            key: k.to_vec(),
            value: v.to_vec(),
        });
        if batch.len() >= RESTORE_BATCH {
            store.write_unsynced(std::mem::take(&mut batch))?;
        }
        Ok(())
    };
    let (rd, seen, chunks) = read_authenticated(src, root, &mut sink)?;
    let vault_id = rd.pre.vault_id;
    let header = rd.pre.header.clone();
    rd.finish(seen, chunks)?;

    // Ledger erasures the backup does not know yet: recorded, so the restored vault lists them.
    let mut erasures_added = 0u64;
    for (rec, id) in &ledger {
        if known_erasures.contains(id) {
            continue;
        }
        batch.push(rec.write_op()?);
        erasures_added += 1;
    }
    if !batch.is_empty() {
        store.write_unsynced(batch)?;
    }
    store.flush()?;
    drop(store);
    crate::outfile::write_file_atomic(&tmp.join(HEADER_FILE), &header)?;

    // Open it as a vault: proves the keyrings unseal, and records the restore in its log.
    let vault = Vault::open(tmp, root)?;
    vault.keyrings()?;
    vault.audit.admin(
        crate::audit::Action::Admin,
        "vault",
        None,
        format!(
            "restored from backup ({records} records; {dropped} subject keys of forgotten subjects dropped, {erasures_added} ledger erasures added)"
        ),
    )?;
    vault.store.flush()?;
    drop(vault);
    Ok(RestoreReport {
        vault_id: hex::encode(vault_id),
        entries,
        records,
        subject_keys_dropped: dropped,
        erasures_added,
    })
}
