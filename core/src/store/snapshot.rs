//! Copy-on-write snapshots of a live store, for backups taken while writers keep writing.
//!
//! Every vault's store is wrapped in a [`GatedStore`]. Outside a backup a write costs one
//! uncontended read lock. While a snapshot is active, each write first records the *pre-image*
//! (the value at snapshot time, or its absence) of every key it touches, then applies; pre-image
//! capture and apply happen under one mutex, so the first pre-image recorded for a key is its
//! value at the snapshot point. The backup reads the live store page by page and replaces every
//! key with a recorded pre-image by that pre-image; keys deleted since the snapshot are emitted
//! from the pre-images at the end. The result is exactly the store as it was at the instant the
//! snapshot was activated (activation waits for writes in flight, and blocks new ones only for
//! that instant): a consistent cut, whatever the writers do meanwhile.
//!
//! Cost while a backup runs: writers are serialised (apply only; durability syncs happen
//! outside the mutex) and do one extra read per key they are the first to touch; memory grows
//! with the number of distinct keys written during the backup.

use crate::error::StoreError;
use crate::store::{CasItem, Entry, PageOutcome, Rewrite, Space, Store, Update, WriteOp};
use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

type Key = (Space, Vec<u8>);

/// Pre-images recorded while a snapshot is active.
#[derive(Default)]
struct Overlay {
    pre: Mutex<HashMap<Key, Option<Vec<u8>>>>,
}

/// The switch between normal operation and an active snapshot; shared by a vault and the
/// store wrapper (`GatedStore`) around its store.
#[derive(Default)]
pub struct SnapshotGate {
    active: RwLock<Option<Arc<Overlay>>>,
}

impl std::fmt::Debug for SnapshotGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotGate")
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("snapshot lock poisoned".into())
}

impl SnapshotGate {
    /// Wraps `store` so that snapshots of it can be taken through this gate.
    pub(crate) fn wrap(gate: &Arc<SnapshotGate>, store: Box<dyn Store>) -> Box<dyn Store> {
        Box::new(GatedStore {
            inner: store,
            gate: gate.clone(),
        })
    }

    /// Starts a snapshot of `store` (the wrapped store of the same vault). Only one at a time.
    pub(crate) fn begin<'a>(&'a self, store: &'a dyn Store) -> crate::Result<Snapshot<'a>> {
        let mut active = self.active.write().map_err(|_| poisoned())?;
        if active.is_some() {
            return Err(crate::Error::Conflict {
                what: "another backup of this vault is running",
            });
        }
        let overlay = Arc::new(Overlay::default());
        *active = Some(overlay.clone());
        Ok(Snapshot {
            gate: self,
            store,
            overlay,
            emitted: HashSet::new(),
        })
    }
}

/// An active snapshot; dropping it ends the snapshot.
pub(crate) struct Snapshot<'a> {
    gate: &'a SnapshotGate,
    store: &'a dyn Store,
    overlay: Arc<Overlay>,
    emitted: HashSet<Key>,
}

/// One page of a snapshot scan.
pub(crate) struct Page {
    /// Entries as of the snapshot.
    pub entries: Vec<Entry>,
    /// The last key read from the live store (resume after it), `None` when done.
    pub next_after: Option<Vec<u8>>,
}

impl Snapshot<'_> {
    /// The next page of `space` as of the snapshot, after key `after`.
    pub(crate) fn page(
        &mut self,
        space: Space,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let live = self.store.scan(space, &[], after, limit)?;
        let full = live.len() == limit;
        let next_after = if full {
            live.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let pre = self.overlay.pre.lock().map_err(|_| poisoned())?;
        let mut entries = Vec::with_capacity(live.len());
        for (k, v) in live {
            let key = (space, k);
            match pre.get(&key) {
                None => entries.push((key.1, v)),
                Some(Some(old)) => {
                    entries.push((key.1.clone(), old.clone()));
                    self.emitted.insert(key);
                }
                // Created after the snapshot: not part of it.
                Some(None) => {}
            }
        }
        Ok(Page {
            entries,
            next_after,
        })
    }

    /// Entries that existed at the snapshot but were deleted before the scan reached them.
    pub(crate) fn leftovers(&self) -> Result<Vec<(Space, Entry)>, StoreError> {
        let pre = self.overlay.pre.lock().map_err(|_| poisoned())?;
        let mut out: Vec<(Space, Entry)> = pre
            .iter()
            .filter(|(k, _)| !self.emitted.contains(*k))
            .filter_map(|((s, k), v)| v.as_ref().map(|v| (*s, (k.clone(), v.clone()))))
            .collect();
        out.sort_by(|a, b| (a.0.prefix(), &a.1.0).cmp(&(b.0.prefix(), &b.1.0)));
        Ok(out)
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        // A poisoned lock cannot be cleared here; later writers then fail (closed) rather than
        // writing around a half-finished snapshot.
        if let Ok(mut active) = self.gate.active.write() {
            *active = None;
        }
    }
}

/// A store whose writes honour the snapshot gate.
struct GatedStore {
    inner: Box<dyn Store>,
    gate: Arc<SnapshotGate>,
}

type PreImages = HashMap<Key, Option<Vec<u8>>>;

impl GatedStore {
    /// Records the pre-images of `keys` not recorded yet and returns the overlay mutex guard,
    /// to be held while the write is applied.
    fn capture<'g>(
        &self,
        overlay: &'g Overlay,
        keys: impl Iterator<Item = Key>,
    ) -> Result<std::sync::MutexGuard<'g, PreImages>, StoreError> {
        let mut pre = overlay.pre.lock().map_err(|_| poisoned())?;
        for key in keys {
            if let Slot::Vacant(slot) = pre.entry(key) {
                let old = self.inner.get(slot.key().0, &slot.key().1)?;
                slot.insert(old);
            }
        }
        Ok(pre)
    }
}

fn op_keys(ops: &[WriteOp]) -> impl Iterator<Item = Key> + '_ {
    ops.iter().map(|op| match op {
        WriteOp::Put { space, key, .. } | WriteOp::Delete { space, key } => (*space, key.clone()),
    })
}

// Every mutation holds the gate's read lock while it applies, so a snapshot starts only
// between writes. Under a snapshot, the pre-images are captured and the write applied under
// the overlay mutex; the durability sync happens after the mutex is released.
impl Store for GatedStore {
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.write(ops);
        };
        {
            let _pre = self.capture(overlay, op_keys(&ops))?;
            self.inner.write_unsynced(ops)?;
        }
        self.inner.sync()
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.compare_and_swap(space, key, expected, new);
        };
        let swapped = {
            let _pre = self.capture(overlay, std::iter::once((space, key.to_vec())))?;
            self.inner
                .compare_and_swap_unsynced(space, key, expected, new)?
        };
        if swapped {
            self.inner.sync()?;
        }
        Ok(swapped)
    }

    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.write_unsynced(ops);
        };
        let _pre = self.capture(overlay, op_keys(&ops))?;
        self.inner.write_unsynced(ops)
    }

    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self
                .inner
                .compare_and_swap_unsynced(space, key, expected, new);
        };
        let _pre = self.capture(overlay, std::iter::once((space, key.to_vec())))?;
        self.inner
            .compare_and_swap_unsynced(space, key, expected, new)
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.compare_and_swap_many(space, items);
        };
        let mut swapped = 0;
        {
            let _pre = self.capture(overlay, items.iter().map(|i| (space, i.key.clone())))?;
            for it in items {
                if self.inner.compare_and_swap_unsynced(
                    space,
                    &it.key,
                    Some(&it.expected),
                    Some(it.new),
                )? {
                    swapped += 1;
                }
            }
        }
        if swapped > 0 {
            self.inner.sync()?;
        }
        Ok(swapped)
    }

    // Forwarded (not the trait's read-then-write default), so that a store shared by
    // processes keeps its transactional guard (issue 11: audit appends on PostgreSQL).
    fn write_unsynced_if(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<WriteOp>,
    ) -> Result<bool, StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.write_unsynced_if(space, key, expected, ops);
        };
        let _pre = self.capture(overlay, op_keys(&ops))?;
        self.inner.write_unsynced_if(space, key, expected, ops)
    }

    fn insert_absent_many_unsynced(
        &self,
        space: Space,
        items: &[(&[u8], &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.insert_absent_many_unsynced(space, items);
        };
        let _pre = self.capture(overlay, items.iter().map(|(k, _)| (space, k.to_vec())))?;
        self.inner.insert_absent_many_unsynced(space, items)
    }

    // Forwarded with the inner store's lock (a shared store's transaction): the pre-images
    // of the keys `f` writes are captured once `f` has named them, before they are applied,
    // and held until the write returns.
    fn update_unsynced(
        &self,
        space: Space,
        key: &[u8],
        f: &mut Update<'_>,
    ) -> Result<(), StoreError> {
        let active = self.gate.active.read().map_err(|_| poisoned())?;
        let Some(overlay) = active.as_ref() else {
            return self.inner.update_unsynced(space, key, f);
        };
        let mut held = None;
        self.inner.update_unsynced(space, key, &mut |current| {
            let ops = f(current)?;
            // A retried transaction captures again (the earlier guard released first).
            held = None;
            held = Some(self.capture(overlay, op_keys(&ops))?);
            Ok(ops)
        })
    }

    // The inner store's (a shared store's locked page) while no snapshot runs; under a
    // snapshot, the trait's scan-then-swap through this gate, which captures pre-images.
    fn rewrite_page(
        &self,
        space: Space,
        after: Option<&[u8]>,
        limit: usize,
        skip_locked: bool,
        f: &mut Rewrite<'_>,
    ) -> Result<PageOutcome, StoreError> {
        {
            let active = self.gate.active.read().map_err(|_| poisoned())?;
            if active.is_none() {
                return self.inner.rewrite_page(space, after, limit, skip_locked, f);
            }
        }
        crate::store::rewrite_by_scan(self, space, after, limit, f)
    }

    // Unchanged: the wrapped store's own.
    crate::store::forward_store!(
        inner: get, get_many, sync, scan, flush, commit_counter
    );
}
