//! An in-memory [`Store`]: for tests, examples and the fuzz targets. Nothing is persisted;
//! every write is "durable" when it returns. Clones share one map; [`MemoryStore::deep_copy`]
//! makes an independent one (a vault per fuzz input, from one fixture).

use super::{CasItem, Entry, Space, Store, WriteOp, full_key};
use crate::error::StoreError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory store (see the module documentation).
#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Map>>);

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, Map> {
        // A poisoned lock only follows a panic in another thread's store call; the map itself
        // is never left half-written (every call changes it under the lock in one step).
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An independent copy of the current contents.
    pub fn deep_copy(&self) -> MemoryStore {
        MemoryStore(Arc::new(Mutex::new(self.map().clone())))
    }

    /// Replaces the contents (of every clone of this store) with a copy of `other`'s.
    pub fn reset_to(&self, other: &MemoryStore) {
        let copy = other.map().clone();
        *self.map() = copy;
    }

    /// Entries, all spaces.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    fn apply(&self, ops: Vec<WriteOp>) {
        let mut g = self.map();
        for op in ops {
            match op {
                WriteOp::Put { space, key, value } => {
                    g.insert(full_key(space, &key), value);
                }
                WriteOp::Delete { space, key } => {
                    g.remove(&full_key(space, &key));
                }
            }
        }
    }

    fn cas(&self, space: Space, key: &[u8], expected: Option<&[u8]>, new: Option<Vec<u8>>) -> bool {
        let mut g = self.map();
        let k = full_key(space, key);
        if g.get(&k).map(Vec::as_slice) != expected {
            return false;
        }
        match new {
            Some(v) => g.insert(k, v),
            None => g.remove(&k),
        };
        true
    }
}

impl Store for MemoryStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(&full_key(space, key)).cloned())
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.apply(ops);
        Ok(())
    }

    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.apply(ops);
        Ok(())
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Ok(self.cas(space, key, expected, new))
    }

    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Ok(self.cas(space, key, expected, new))
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        Ok(items
            .into_iter()
            .filter(|it| self.cas(space, &it.key, Some(&it.expected), Some(it.new.clone())))
            .count())
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let g = self.map();
        let full_prefix = full_key(space, prefix);
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(full_key(space, a)),
            None => std::ops::Bound::Included(full_prefix.clone()),
        };
        Ok(g.range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&full_prefix))
            .take(limit)
            .map(|(k, v)| (k[1..].to_vec(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_deep_copies_do_not() {
        let a = MemoryStore::new();
        let b = a.clone();
        a.write(vec![WriteOp::Put {
            space: Space::Record,
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }])
        .expect("write");
        assert_eq!(
            b.get(Space::Record, b"k").expect("get"),
            Some(b"v".to_vec())
        );
        let c = a.deep_copy();
        a.write(vec![WriteOp::Delete {
            space: Space::Record,
            key: b"k".to_vec(),
        }])
        .expect("delete");
        assert!(b.is_empty());
        assert_eq!(c.len(), 1);
        b.reset_to(&c);
        assert_eq!(a.len(), 1);
        // Spaces do not see each other's keys; a scan stays in its space and prefix.
        assert_eq!(a.get(Space::Token, b"k").expect("get"), None);
        assert_eq!(
            a.scan(Space::Record, b"k", None, 10).expect("scan").len(),
            1
        );
        assert!(
            a.scan(Space::Record, b"x", None, 10)
                .expect("scan")
                .is_empty()
        );
    }
}
