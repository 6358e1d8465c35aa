//! The commit anchor: how far a directory vault's committed history goes, kept outside the
//! store, so that a store which lost committed writes is refused instead of read as empty.
//!
//! sled treats a damaged part of its log as a torn tail and drops everything after it; an
//! operator may restore an older copy of `store/` under a newer vault. Neither is visible to
//! the store itself. The anchor makes both visible:
//!
//! - every durable commit (a durable write, compare-and-swap, sync or flush) raises a counter
//!   and writes `counter ‖ MAC` into the store (`Space::Meta`, key `anchor`) as the *last*
//!   write before the store's flush;
//! - after the flush has returned, the same counter and MAC are written into the file
//!   `store.anchor` beside the store (two fixed slots, written in turn in place, then
//!   `fdatasync`), so the file never runs ahead of what the store holds durably;
//! - on open, the store's counter must be at least the file's: smaller is
//!   [`Error::StoreRolledBack`]; an anchor entry missing or failing its MAC while the file
//!   exists is [`Error::StoreCorrupted`]; so is a missing or unreadable file while the store
//!   has an entry.
//!
//! Writes of [`Durability::Deferred`](crate::store::Durability::Deferred) are not durable when
//! they return and do not move the anchor: only [`Store::flush`] does, so losing the last
//! deferred writes (their documented risk) is never a refusal to open.
//!
//! The MAC key is derived from the vault master key (label `phivault v1 store anchor`) and
//! the MAC covers the vault id and the counter, so neither record can be forged or moved to
//! another vault without the root key. See docs/FORMAT.md §Commit anchor and SECURITY.md.

use crate::error::StoreError;
use crate::kdf::Mac;
use crate::secret::ct_eq;
use crate::store::{CasItem, Space, Store, Update, WriteOp};
use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The anchor file's name, beside `store/` in the vault directory.
pub const ANCHOR_FILE: &str = "store.anchor";
/// The key of the anchor entry in `Space::Meta`.
pub(crate) const ANCHOR_KEY: &[u8] = b"anchor";
const MAGIC: &[u8; 4] = b"PVA1";
/// Bytes of one anchor record: magic, counter (u64 BE), MAC.
pub(crate) const RECORD_LEN: usize = 4 + 8 + 32;
/// Bytes of one slot of the file (a record and zero padding).
const SLOT_LEN: u64 = 64;

/// The authenticated anchor record: `"PVA1" ‖ counter ‖ HMAC(K, "anchor", vault id, counter)`.
fn record(mac: &Mac, vault_id: &[u8; 16], counter: u64) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4..12].copy_from_slice(&counter.to_be_bytes());
    out[12..].copy_from_slice(&mac.tag(&[b"anchor", vault_id, &counter.to_be_bytes()]));
    out
}

/// The counter of an authentic record, `None` when it is not one.
pub(crate) fn parse(mac: &Mac, vault_id: &[u8; 16], bytes: &[u8]) -> Option<u64> {
    if bytes.len() < RECORD_LEN || &bytes[..4] != MAGIC {
        return None;
    }
    let counter = u64::from_be_bytes(bytes[4..12].try_into().ok()?);
    let want = record(mac, vault_id, counter);
    ct_eq(&want, &bytes[..RECORD_LEN]).then_some(counter)
}

fn corrupted(what: &'static str) -> Error {
    Error::StoreCorrupted { what }
}

/// The anchor file: two slots written in turn, so a torn write leaves the other one intact.
struct AnchorFile {
    file: File,
    path: PathBuf,
    /// The highest counter written, and the slot that holds it.
    written: u64,
    slot: u64,
}

impl AnchorFile {
    fn write(&mut self, rec: &[u8; RECORD_LEN], counter: u64) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if counter <= self.written {
            return Ok(()); // a later commit already wrote a larger counter
        }
        let slot = 1 - self.slot;
        let mut buf = [0u8; SLOT_LEN as usize];
        buf[..RECORD_LEN].copy_from_slice(rec);
        let io = |e| Error::io(format!("writing {}", self.path.display()), e);
        (&self.file)
            .seek(SeekFrom::Start(slot * SLOT_LEN))
            .and_then(|_| (&self.file).write_all(&buf))
            .and_then(|()| self.file.sync_data())
            .map_err(io)?;
        self.written = counter;
        self.slot = slot;
        Ok(())
    }
}

/// Reads the anchor file: `Ok(None)` when there is none; the largest authentic slot
/// (and which one it is) otherwise.
fn read_file(path: &Path, mac: &Mac, vault_id: &[u8; 16]) -> Result<Option<(u64, u64)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut best: Option<(u64, u64)> = None;
    for slot in 0..2u64 {
        let start = (slot * SLOT_LEN) as usize;
        if let Some(c) = bytes.get(start..).and_then(|b| parse(mac, vault_id, b))
            && best.is_none_or(|(b, _)| c > b)
        {
            best = Some((c, slot));
        }
    }
    best.map(Some)
        .ok_or_else(|| corrupted("the commit anchor file store.anchor is damaged"))
}

/// The store's anchor counter: `Ok(None)` when it has no entry, an error when the entry does
/// not authenticate.
pub(crate) fn store_counter(
    store: &dyn Store,
    mac: &Mac,
    vault_id: &[u8; 16],
) -> Result<Option<u64>> {
    match store.get(Space::Meta, ANCHOR_KEY)? {
        None => Ok(None),
        Some(v) => parse(mac, vault_id, &v)
            .map(Some)
            .ok_or_else(|| corrupted("the store's commit anchor entry does not authenticate")),
    }
}

/// The anchor counter in a vault directory's file (for `verify` and `salvage` reports):
/// `None` when the vault has no anchor file.
pub(crate) fn file_counter(dir: &Path, mac: &Mac, vault_id: &[u8; 16]) -> Result<Option<u64>> {
    Ok(read_file(&dir.join(ANCHOR_FILE), mac, vault_id)?.map(|(c, _)| c))
}

/// A [`Store`] whose durable commits move the commit anchor (see the module documentation).
pub(crate) struct AnchoredStore {
    inner: Box<dyn Store>,
    mac: Mac,
    vault_id: [u8; 16],
    /// Whether `write` and `compare_and_swap` are durable when they return (`Immediate`).
    each_write: bool,
    /// The last counter written into the store. Held while the anchor entry is written, so
    /// the store's entry only ever grows.
    counter: Mutex<u64>,
    file: Mutex<AnchorFile>,
    writes: WriteLedger,
}

/// Which writes of this process are known durable, so that a sync with nothing new to make
/// durable (a batch that only read) costs no flush and no anchor write.
///
/// Every write counts itself in `started` *before* it reaches the store and in `in_flight`
/// until it returns. A sync flushes unless `started` equals `durable`; after its flush it
/// raises `durable` to the `started` it saw, but only if no write was in flight and none had
/// started since, checked before the flush began. A caller that read data of some write W
/// (W's count happens before W's data is visible) therefore sees `started` past W, and skips
/// its flush only if a flush that began after W returned has completed. sled admits one
/// process, so every write to a directory vault's store passes here.
#[derive(Default)]
struct WriteLedger {
    started: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicU64,
    durable: std::sync::atomic::AtomicU64,
}

impl WriteLedger {
    /// Runs one write, counted.
    fn write<T>(&self, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        self.in_flight.fetch_add(1, SeqCst);
        self.started.fetch_add(1, SeqCst);
        let out = f();
        self.in_flight.fetch_sub(1, SeqCst);
        out
    }

    /// Whether every write counted so far is known durable.
    fn clean(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.load(SeqCst) == self.durable.load(SeqCst)
    }

    /// Before a flush: the mark the flush may set when it returns (`None`: a write was in
    /// flight, so the flush cannot vouch for it).
    fn before_flush(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        let started = self.started.load(SeqCst);
        (self.in_flight.load(SeqCst) == 0 && self.started.load(SeqCst) == started)
            .then_some(started)
    }

    /// After a flush that returned: writes up to `mark` are durable.
    fn flushed(&self, mark: Option<u64>) {
        if let Some(m) = mark {
            self.durable
                .fetch_max(m, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl AnchoredStore {
    /// Checks `store` against the anchor file in `dir` and wraps it. A vault that has neither
    /// (created before anchors existed, or just now) gets both.
    pub(crate) fn open(
        store: Box<dyn Store>,
        dir: &Path,
        mac: Mac,
        vault_id: [u8; 16],
        each_write: bool,
    ) -> Result<AnchoredStore> {
        let path = dir.join(ANCHOR_FILE);
        let in_file = read_file(&path, &mac, &vault_id)?;
        let in_store = match store_counter(store.as_ref(), &mac, &vault_id) {
            Err(e) if in_file.is_some() => return Err(e),
            Err(_) => None,
            Ok(c) => c,
        };
        let counter = match (in_store, in_file) {
            (Some(s), Some((f, _))) if s < f => {
                return Err(Error::StoreRolledBack {
                    store: s,
                    anchor: f,
                });
            }
            (Some(s), Some(_)) => s,
            // A file at 0 was written before anything was anchored: a crash during the first
            // anchoring left it, and the store has not committed under the anchor yet.
            (None, Some((0, _))) => 0,
            (None, Some(_)) => {
                return Err(corrupted(
                    "the store has no commit anchor entry but store.anchor exists",
                ));
            }
            (Some(_), None) => {
                return Err(corrupted("the commit anchor file store.anchor is missing"));
            }
            (None, None) => 0,
        };
        let (written, slot) = match in_file {
            Some(found) => found,
            None => {
                // First anchor of this vault: the file is made whole, at counter 0, before
                // the store holds any anchor entry (temporary file, sync, rename, directory
                // sync), so a crash at any point of the first anchoring leaves a vault that
                // opens: (no entry, file at 0) or (entry, file at 0).
                let mut first = vec![0u8; 2 * SLOT_LEN as usize];
                first[..RECORD_LEN].copy_from_slice(&record(&mac, &vault_id, 0));
                crate::outfile::write_atomic(&path, &first)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                (0, 0)
            }
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let anchored = AnchoredStore {
            inner: store,
            mac,
            vault_id,
            each_write,
            counter: Mutex::new(counter),
            file: Mutex::new(AnchorFile {
                file,
                path,
                written,
                slot,
            }),
            writes: WriteLedger::default(),
        };
        if in_file.is_none() {
            anchored.flush()?;
        }
        Ok(anchored)
    }

    fn lock_err() -> StoreError {
        StoreError::Backend("commit anchor lock poisoned".into())
    }

    /// Runs `apply` (unsynced writes) and then writes the next anchor entry, both under the
    /// counter lock, so the anchor entry is the last write of the commit; returns the counter.
    fn apply<T>(
        &self,
        apply: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
    ) -> Result<(T, u64), StoreError> {
        let mut c = self.counter.lock().map_err(|_| Self::lock_err())?;
        let out = self.writes.write(|| apply(self.inner.as_ref()))?;
        let next = *c + 1;
        self.writes.write(|| {
            self.inner.write_unsynced(vec![WriteOp::Put {
                space: Space::Meta,
                key: ANCHOR_KEY.to_vec(),
                value: record(&self.mac, &self.vault_id, next).to_vec(),
            }])
        })?;
        *c = next;
        Ok((out, next))
    }

    /// After the store's flush has returned: the file catches up to `counter`.
    fn anchor(&self, counter: u64) -> Result<(), StoreError> {
        let rec = record(&self.mac, &self.vault_id, counter);
        let mut f = self.file.lock().map_err(|_| Self::lock_err())?;
        f.write(&rec, counter).map_err(|e| match e {
            Error::Io { source, .. } => StoreError::Io(source),
            other => StoreError::Backend(other.to_string()),
        })
    }
}

impl Store for AnchoredStore {
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if !self.each_write {
            return self.inner.write(ops);
        }
        let ((), c) = self.apply(|s| s.write_unsynced(ops))?;
        self.inner.sync()?;
        self.anchor(c)
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        if !self.each_write {
            return self.inner.compare_and_swap(space, key, expected, new);
        }
        let (swapped, c) =
            self.apply(|s| s.compare_and_swap_unsynced(space, key, expected, new))?;
        if swapped {
            self.inner.sync()?;
            self.anchor(c)?;
        }
        Ok(swapped)
    }

    fn sync(&self) -> Result<(), StoreError> {
        if !self.each_write {
            return self.inner.sync();
        }
        // Nothing written since the last flush that covered every write: nothing to do.
        if self.writes.clean() {
            return Ok(());
        }
        let ((), c) = self.apply(|_| Ok(()))?;
        let mark = self.writes.before_flush();
        self.inner.sync()?;
        self.anchor(c)?;
        self.writes.flushed(mark);
        Ok(())
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        if !self.each_write {
            return self.inner.compare_and_swap_many(space, items);
        }
        let (swapped, c) = self.apply(|s| {
            let mut n = 0;
            for it in items {
                if s.compare_and_swap_unsynced(space, &it.key, Some(&it.expected), Some(it.new))? {
                    n += 1;
                }
            }
            Ok(n)
        })?;
        if swapped > 0 {
            self.inner.sync()?;
            self.anchor(c)?;
        }
        Ok(swapped)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let ((), c) = self.apply(|_| Ok(()))?;
        let mark = self.writes.before_flush();
        self.inner.flush()?;
        self.anchor(c)?;
        self.writes.flushed(mark);
        Ok(())
    }

    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.writes.write(|| self.inner.write_unsynced(ops))
    }

    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.writes.write(|| {
            self.inner
                .compare_and_swap_unsynced(space, key, expected, new)
        })
    }

    fn write_unsynced_if(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<WriteOp>,
    ) -> Result<bool, StoreError> {
        self.writes
            .write(|| self.inner.write_unsynced_if(space, key, expected, ops))
    }

    fn insert_absent_many_unsynced(
        &self,
        space: Space,
        items: &[(&[u8], &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        self.writes
            .write(|| self.inner.insert_absent_many_unsynced(space, items))
    }

    fn update_unsynced(
        &self,
        space: Space,
        key: &[u8],
        f: &mut Update<'_>,
    ) -> Result<(), StoreError> {
        self.writes
            .write(|| self.inner.update_unsynced(space, key, f))
    }

    // Unchanged: the wrapped store's own.
    crate::store::forward_store!(inner: get, get_many, scan);
}

// ---- The client-side anchor of a shared store ----------------------------------------------

/// Seconds between two catch-ups of a client's anchor file while the vault is in use (it also
/// catches up on every flush and when the vault is dropped).
const CLIENT_CATCH_UP_SECS: u64 = 1;

/// Where clients of shared stores keep their anchor files: `$PHIVAULT_STATE_DIR`, else
/// `$XDG_STATE_HOME/phivault`, else `$HOME/.local/state/phivault`.
pub fn client_state_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PHIVAULT_STATE_DIR")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("phivault")))
        .or_else(|| var("HOME").map(|d| d.join(".local/state/phivault")))
        .ok_or_else(|| {
            Error::invalid(
                "commit anchor",
                "no directory for the shared store's commit anchor: set PHIVAULT_STATE_DIR",
            )
        })
}

/// A shared store (PostgreSQL) checked against, and moving, this client's anchor file
/// `<state dir>/<vault id>.anchor`: the highest commit counter this client has seen the store
/// hold, MACed like the directory anchor. On open, a store whose counter is below the file's
/// was restored from an older copy: [`Error::StoreRolledBack`]. The file catches up on flush,
/// on drop and at most every [`CLIENT_CATCH_UP_SECS`] while writing; processes of one host
/// share it (each writes the counter it read from the store, so the file only ever names a
/// value the store held). See SECURITY.md for what this does and does not catch.
pub(crate) struct ClientAnchoredStore {
    inner: Box<dyn Store>,
    path: PathBuf,
    mac: Mac,
    vault_id: [u8; 16],
    /// The counter last written into the file, and when the file was last caught up.
    state: Mutex<(u64, std::time::Instant)>,
}

/// Wraps `store` in a [`ClientAnchoredStore`] when it keeps a commit counter (and returns it
/// as it is otherwise), checking it against this client's anchor file first.
pub(crate) fn client_anchored(
    store: Box<dyn Store>,
    mac: Mac,
    vault_id: [u8; 16],
) -> Result<Box<dyn Store>> {
    let Some(counter) = store.commit_counter()? else {
        return Ok(store);
    };
    let dir = client_state_dir()?;
    let io = |e| Error::io(format!("creating {}", dir.display()), e);
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(io)?;
    let path = dir.join(format!("{}.anchor", hex::encode(vault_id)));
    let seen = match std::fs::read(&path) {
        Ok(b) => Some(parse(&mac, &vault_id, &b).ok_or_else(|| {
            corrupted("this client's commit anchor file for the vault does not authenticate")
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    if let Some(seen) = seen
        && counter < seen
    {
        return Err(Error::StoreRolledBack {
            store: counter,
            anchor: seen,
        });
    }
    let anchored = ClientAnchoredStore {
        inner: store,
        path,
        mac,
        vault_id,
        state: Mutex::new((seen.unwrap_or(0), std::time::Instant::now())),
    };
    anchored.catch_up(true).map_err(Error::Store)?;
    Ok(Box::new(anchored))
}

impl ClientAnchoredStore {
    /// Writes the store's current counter into the file when it moved (`force`), or when
    /// [`CLIENT_CATCH_UP_SECS`] have passed since the last catch-up.
    fn catch_up(&self, force: bool) -> Result<(), StoreError> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| StoreError::Backend("commit anchor lock poisoned".into()))?;
        if !force && st.1.elapsed().as_secs() < CLIENT_CATCH_UP_SECS {
            return Ok(());
        }
        st.1 = std::time::Instant::now();
        let Some(counter) = self.inner.commit_counter()? else {
            return Ok(());
        };
        if counter > st.0 {
            crate::outfile::write_atomic(&self.path, &record(&self.mac, &self.vault_id, counter))
                .map_err(StoreError::Io)?;
            st.0 = counter;
        }
        Ok(())
    }
}

impl Drop for ClientAnchoredStore {
    fn drop(&mut self) {
        // Best effort: an error here leaves the file at its last catch-up (weaker, never a
        // false refusal).
        let _ = self.catch_up(true);
    }
}

impl Store for ClientAnchoredStore {
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.write(ops)?;
        self.catch_up(false)
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let swapped = self.inner.compare_and_swap(space, key, expected, new)?;
        self.catch_up(false)?;
        Ok(swapped)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()?;
        self.catch_up(false)
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        let n = self.inner.compare_and_swap_many(space, items)?;
        self.catch_up(false)?;
        Ok(n)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()?;
        self.catch_up(true)
    }

    // Unchanged: the wrapped store's own.
    crate::store::forward_store!(
        inner: get, get_many, write_unsynced, compare_and_swap_unsynced,
        insert_absent_many_unsynced, scan, write_unsynced_if, update_unsynced, rewrite_page,
        commit_counter
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key32;
    use crate::store::{Durability, SledStore};

    const ID: [u8; 16] = [7; 16];

    fn mac() -> Mac {
        Mac::new(&Key32::from_slice(&[3; 32]).expect("key"))
    }

    fn sled(dir: &Path) -> Box<dyn Store> {
        Box::new(SledStore::open(&dir.join("store"), Durability::Immediate).expect("sled"))
    }

    fn file_at(dir: &Path, counter: u64) {
        let mut bytes = vec![0u8; 2 * SLOT_LEN as usize];
        bytes[..RECORD_LEN].copy_from_slice(&record(&mac(), &ID, counter));
        std::fs::write(dir.join(ANCHOR_FILE), bytes).expect("write");
    }

    fn open(dir: &Path) -> Result<AnchoredStore> {
        AnchoredStore::open(sled(dir), dir, mac(), ID, true)
    }

    /// The ledger vouches only for writes that had returned before a flush began.
    #[test]
    fn the_write_ledger_marks_only_writes_a_flush_covered() {
        let l = WriteLedger::default();
        assert!(l.clean(), "nothing written yet");
        l.write(|| ());
        assert!(!l.clean(), "a write waits for a flush");
        let mark = l.before_flush();
        assert!(mark.is_some());
        l.write(|| ()); // starts after the flush began
        l.flushed(mark);
        assert!(
            !l.clean(),
            "the write that started after the flush began is not covered"
        );
        // A write in flight when the flush begins: that flush vouches for nothing.
        let during = l.write(|| l.before_flush());
        assert_eq!(during, None);
        l.flushed(during);
        assert!(!l.clean());
        let mark = l.before_flush();
        l.flushed(mark);
        assert!(
            l.clean(),
            "a flush that began after every write returned covers them all"
        );
    }

    /// A sync with nothing written since the last covering flush moves neither the store's
    /// anchor entry nor the file; a sync after an unsynced write moves both.
    #[test]
    fn a_sync_with_nothing_new_writes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = open(dir.path()).expect("open");
        s.write_unsynced(vec![WriteOp::Put {
            space: Space::Record,
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }])
        .expect("write");
        s.sync().expect("sync");
        let after_first = *s.counter.lock().expect("lock");
        let file_first = s.file.lock().expect("lock").written;
        assert_eq!(file_first, after_first, "the file caught up with the sync");
        s.sync().expect("sync again");
        assert_eq!(
            *s.counter.lock().expect("lock"),
            after_first,
            "no new commit"
        );
        assert!(s.get(Space::Record, b"k").expect("get").is_some());
        s.compare_and_swap_unsynced(Space::Record, b"k", Some(b"v"), Some(b"w".to_vec()))
            .expect("cas");
        s.sync().expect("sync after a write");
        assert_eq!(*s.counter.lock().expect("lock"), after_first + 1);
        assert_eq!(s.file.lock().expect("lock").written, after_first + 1);
    }

    /// Every state a crash can leave during the first anchoring opens; a vault that was
    /// anchored and lost its file does not.
    #[test]
    fn a_crash_during_the_first_anchoring_leaves_a_vault_that_opens() {
        // Crash after the file at 0, before any store entry.
        let dir = tempfile::tempdir().expect("tmp");
        file_at(dir.path(), 0);
        let s = open(dir.path()).expect("file at 0, no entry");
        s.write(vec![WriteOp::Put {
            space: Space::Record,
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }])
        .expect("write");
        drop(s);
        let s = open(dir.path()).expect("reopen");
        assert_eq!(
            store_counter(s.inner.as_ref(), &mac(), &ID).expect("c"),
            Some(1)
        );
        assert_eq!(file_counter(dir.path(), &mac(), &ID).expect("f"), Some(1));
        drop(s);

        // Crash after the store entry, before the file caught up.
        let dir = tempfile::tempdir().expect("tmp");
        {
            let raw = sled(dir.path());
            raw.write(vec![WriteOp::Put {
                space: Space::Meta,
                key: ANCHOR_KEY.to_vec(),
                value: record(&mac(), &ID, 1).to_vec(),
            }])
            .expect("entry");
        }
        file_at(dir.path(), 0);
        open(dir.path()).expect("entry at 1, file at 0");

        // Neither: a fresh anchor is made whole before the store gets an entry.
        let dir = tempfile::tempdir().expect("tmp");
        drop(open(dir.path()).expect("fresh"));
        let bytes = std::fs::read(dir.path().join(ANCHOR_FILE)).expect("file");
        assert_eq!(bytes.len(), 2 * SLOT_LEN as usize);
        // The file removed after that: refused, never silently re-anchored.
        std::fs::remove_file(dir.path().join(ANCHOR_FILE)).expect("rm");
        assert!(matches!(
            open(dir.path()),
            Err(Error::StoreCorrupted { .. })
        ));
        // A file ahead of the store: rolled back.
        file_at(dir.path(), 99);
        assert!(matches!(
            open(dir.path()),
            Err(Error::StoreRolledBack { .. })
        ));
    }
}
