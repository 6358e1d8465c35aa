//! The embedded default store on `sled`, one tree with a one-byte space prefix per key.

use super::{Entry, Space, Store, WriteOp, full_key};
use crate::error::StoreError;
use std::path::Path;

/// When writes reach stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every write call flushes before it returns (default): a write reported as done survives
    /// a crash or power loss. Batch calls amortise the flush.
    #[default]
    Immediate,
    /// sled flushes in the background every 500 ms; a crash may lose the last writes (never
    /// tear one). For bulk loads that can be repeated.
    Deferred,
}

impl Durability {
    /// The name options and command lines use: `immediate` or `deferred`.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::Deferred => "deferred",
        }
    }

    /// The durability named `name`; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Durability> {
        [Durability::Immediate, Durability::Deferred]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// sled's page cache: bounded, so memory stays flat however large the vault grows (sled's own
/// default is 1 GiB).
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The `sled` store.
pub struct SledStore {
    db: sled::Db,
    durability: Durability,
}

fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::Io(io),
        sled::Error::Corruption { .. } => StoreError::Corrupt("sled reported corruption"),
        other => StoreError::Backend(other.to_string()),
    }
}

impl SledStore {
    /// Opens (or creates) a sled database in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut cfg = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES);
        if durability == Durability::Immediate {
            cfg = cfg.flush_every_ms(Some(500));
        }
        // The caller holds the vault's own lock, so a sled lock held now can only be a handle
        // this process just dropped whose background I/O has not finished: wait for it briefly.
        let mut attempt = 0;
        let db = loop {
            // sled's recovery asserts on some damaged logs (a page left without any state):
            // that is a damaged store, reported as such, not a crash of the application.
            let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cfg.open()))
                .map_err(|_| StoreError::Corrupt("the store's recovery failed on damaged data"))?;
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if attempt < 100 && e.to_string().contains("could not acquire lock") =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(backend(e)),
            }
        };
        Ok(SledStore { db, durability })
    }

    fn maybe_flush(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Immediate {
            self.db.flush().map_err(backend)?;
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(full_key(space, key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                WriteOp::Put { space, key, value } => batch.insert(full_key(space, &key), value),
                WriteOp::Delete { space, key } => batch.remove(full_key(space, &key)),
            }
        }
        self.db.apply_batch(batch).map_err(backend)
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                WriteOp::Put { space, key, value } => batch.insert(full_key(space, &key), value),
                WriteOp::Delete { space, key } => batch.remove(full_key(space, &key)),
            }
        }
        self.db.apply_batch(batch).map_err(backend)?;
        self.maybe_flush()
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let swapped = self
            .db
            .compare_and_swap(full_key(space, key), expected, new)
            .map_err(backend)?
            .is_ok();
        if swapped {
            self.maybe_flush()?;
        }
        Ok(swapped)
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<super::CasItem>,
    ) -> Result<usize, StoreError> {
        let mut swapped = 0;
        for it in items {
            let r = self
                .db
                .compare_and_swap(full_key(space, &it.key), Some(it.expected), Some(it.new))
                .map_err(backend)?;
            if r.is_ok() {
                swapped += 1;
            }
        }
        if swapped > 0 {
            self.maybe_flush()?;
        }
        Ok(swapped)
    }

    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .db
            .compare_and_swap(full_key(space, key), expected, new)
            .map_err(backend)?
            .is_ok())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.maybe_flush()
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let full_prefix = full_key(space, prefix);
        let iter = match after {
            Some(a) => {
                let start = full_key(space, a);
                self.db
                    .range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded))
            }
            None => self.db.range(full_prefix.clone()..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(backend)?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            out.push((k[1..].to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }
}
