//! A cache of metadata read from the store that other processes sharing the store (PostgreSQL)
//! may change: keyrings, field definitions, the policy. Every entry is dropped at the latest
//! [`CACHE_TTL_SECS`] after the cache was last emptied, so a rotation, a retirement, a field
//! redefinition or a policy change made by another process is seen within that bound. Writes
//! made by this process update or drop the entry at once.

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Longest time a cached keyring, field definition or policy is used before it is read again
/// from the store (seconds): the staleness bound between processes sharing one store.
pub const CACHE_TTL_SECS: u64 = 5;

/// FNV-1a over the name's bytes: the maps hold a handful of names of keyrings, fields and the
/// policy that the owner defined (a lookup of any other name only misses), so a keyed hash
/// buys nothing here and SipHash cost a measurable share of a 64-byte audited decrypt.
#[derive(Default)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Names<V> = HashMap<String, V, std::hash::BuildHasherDefault<NameHasher>>;

/// Values by name, emptied every [`CACHE_TTL_SECS`].
pub(crate) struct SharedCache<V> {
    map: RwLock<Names<V>>,
    /// When `map` was last emptied (Unix seconds).
    emptied_at: AtomicU64,
}

impl<V: Clone> Default for SharedCache<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone> SharedCache<V> {
    /// An empty cache whose first period starts now.
    pub(crate) fn new() -> Self {
        SharedCache {
            map: RwLock::new(Names::default()),
            emptied_at: AtomicU64::new(crate::keyring::now_unix()),
        }
    }

    /// The cached value of `name`, if any (and if the cache is not due to be emptied).
    pub(crate) fn get(&self, name: &str) -> Result<Option<V>> {
        self.get_at(name, crate::keyring::now_unix())
    }

    /// [`SharedCache::get`] at `now` (Unix seconds) read by the caller.
    pub(crate) fn get_at(&self, name: &str, now: u64) -> Result<Option<V>> {
        let at = self.emptied_at.load(Relaxed);
        // One thread wins the exchange and empties the map; a clock that went backwards
        // empties it too (and restarts the period from the new time).
        if (now.saturating_sub(at) >= CACHE_TTL_SECS || now < at)
            && self
                .emptied_at
                .compare_exchange(at, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.map.write().map_err(|_| Error::poisoned())?.clear();
        }
        Ok(self
            .map
            .read()
            .map_err(|_| Error::poisoned())?
            .get(name)
            .cloned())
    }

    /// Caches `value` as `name`.
    pub(crate) fn insert(&self, name: &str, value: V) -> Result<()> {
        self.map
            .write()
            .map_err(|_| Error::poisoned())?
            .insert(name.to_owned(), value);
        Ok(())
    }

    /// Drops `name` (it changed in the store, or a reader found it out of date).
    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        self.map
            .write()
            .map_err(|_| Error::poisoned())?
            .remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl_and_writes_apply_at_once() {
        let c = SharedCache::<u32>::new();
        let t0 = c.emptied_at.load(Relaxed);
        c.insert("a", 1).expect("insert");
        assert_eq!(c.get_at("a", t0).expect("get"), Some(1));
        assert_eq!(
            c.get_at("a", t0 + CACHE_TTL_SECS - 1).expect("get"),
            Some(1)
        );
        c.insert("a", 2).expect("insert");
        assert_eq!(c.get_at("a", t0 + 1).expect("get"), Some(2));
        // The period is over: everything is dropped, and the next period starts then.
        assert_eq!(c.get_at("a", t0 + CACHE_TTL_SECS).expect("get"), None);
        c.insert("a", 3).expect("insert");
        assert_eq!(
            c.get_at("a", t0 + 2 * CACHE_TTL_SECS - 1).expect("get"),
            Some(3)
        );
        c.remove("a").expect("remove");
        assert_eq!(c.get_at("a", t0 + CACHE_TTL_SECS).expect("get"), None);
    }

    #[test]
    fn a_clock_that_goes_back_empties_the_cache() {
        let c = SharedCache::<u32>::new();
        let t0 = c.emptied_at.load(Relaxed);
        c.insert("a", 1).expect("insert");
        assert_eq!(c.get_at("a", t0.saturating_sub(100)).expect("get"), None);
    }
}
