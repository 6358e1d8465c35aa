//! Storage: a small key-value [`Store`] trait and its embedded [`sled`](SledStore) default.
//!
//! The vault keeps everything in named [`Space`]s of one store: metadata, keyrings, records.
//! Every value phivault writes is ciphertext or non-secret metadata; every key that could be
//! PHI (a record id) is a keyed hash. A server-backed store (PostgreSQL) implements the same
//! trait.

pub mod memory;
#[cfg(feature = "postgres")]
pub mod pg_connect;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sled_repair;
mod sled_store;
pub(crate) mod snapshot;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use sled_store::{Durability, SledStore};

use crate::error::StoreError;

/// A namespace within the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Space {
    /// Vault header and other single values.
    Meta,
    /// The audit log, keyed by sequence number.
    Audit,
    /// Records of erasures (forgotten subjects), without PHI.
    Erasure,
    /// Keyrings (each one AEAD-sealed blob).
    Keyring,
    /// Encrypted records, keyed by keyed hashes of collection and id.
    Record,
    /// Vaulted token values, keyed by keyed hashes of field and token.
    Token,
    /// Consistent-token index: keyed hash of field and value → token.
    TokenIndex,
    /// Field definitions (sealed).
    Field,
    /// Subject keys (crypto-shredding).
    Subject,
}

impl Space {
    /// Every space, in the one order the vault walks them (backup, restore, verify, salvage,
    /// migrate): erasure records first (a restore drops the subject keys they name before it
    /// meets them), then the metadata and the keys, before the records, tokens and index
    /// entries they protect, and the audit log last. Backup files (`backup.rs`) hold the
    /// spaces in this order.
    pub const ALL: [Space; 9] = [
        Space::Erasure,
        Space::Meta,
        Space::Keyring,
        Space::Field,
        Space::Subject,
        Space::Token,
        Space::TokenIndex,
        Space::Record,
        Space::Audit,
    ];

    /// The space whose [`Space::prefix`] is `b`.
    pub fn from_prefix(b: u8) -> Option<Space> {
        Space::ALL.into_iter().find(|s| s.prefix() == b)
    }

    /// The one-byte prefix of the space's keys in a flat store. (A new space must also get its
    /// place in [`Space::ALL`]: the unit test `all_spaces_are_listed` fails to compile until
    /// it has one.)
    pub fn prefix(self) -> u8 {
        match self {
            Space::Meta => b'm',
            Space::Audit => b'a',
            Space::Erasure => b'e',
            Space::Keyring => b'k',
            Space::Record => b'r',
            Space::Token => b't',
            Space::TokenIndex => b'i',
            Space::Field => b'f',
            Space::Subject => b's',
        }
    }
}

/// A key of `space` in a flat store (sled, the in-memory store): the space's prefix byte,
/// then the key.
fn full_key(space: Space, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(space.prefix());
    k.extend_from_slice(key);
    k
}

/// One write of an atomic batch.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Sets `key` to `value`.
    Put {
        /// The space.
        space: Space,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The space.
        space: Space,
        /// The key.
        key: Vec<u8>,
    },
}

/// One item of [`Store::compare_and_swap_many`].
#[derive(Clone, Debug)]
pub struct CasItem {
    /// The key.
    pub key: Vec<u8>,
    /// The value it must still have.
    pub expected: Vec<u8>,
    /// The value to set.
    pub new: Vec<u8>,
}

/// The swaps of a [`Store::rewrite_page`], computed from the page's entries.
pub type Rewrite<'a> = dyn FnMut(&[Entry]) -> Result<Vec<CasItem>, StoreError> + 'a;

/// What a [`Store::rewrite_page`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageOutcome {
    /// The last key of the page (`None`: no entries after `after`).
    pub last: Option<Vec<u8>>,
    /// The page was full (`limit` entries): more may follow.
    pub full: bool,
    /// Items swapped.
    pub swapped: usize,
    /// Entries were passed over because another worker held them (PostgreSQL's
    /// `SKIP LOCKED`): a later plain pass must look at them.
    pub skipped: bool,
}

/// [`Store::rewrite_page`] as a scan, then [`Store::compare_and_swap_many`] (each item
/// swapped only if unchanged since the scan): the default of every store without row locks.
pub fn rewrite_by_scan<S: Store + ?Sized>(
    store: &S,
    space: Space,
    after: Option<&[u8]>,
    limit: usize,
    f: &mut Rewrite<'_>,
) -> Result<PageOutcome, StoreError> {
    let page = store.scan(space, &[], after, limit)?;
    let items = f(&page)?;
    let swapped = if items.is_empty() {
        0
    } else {
        store.compare_and_swap_many(space, items)?
    };
    Ok(PageOutcome {
        last: page.last().map(|(k, _)| k.clone()),
        full: page.len() == limit,
        swapped,
        skipped: false,
    })
}

/// The writes of a [`Store::update_unsynced`], computed from the key's current value.
pub type Update<'a> = dyn FnMut(Option<&[u8]>) -> Result<Vec<WriteOp>, StoreError> + 'a;

/// A key and its value, as returned by [`Store::scan`].
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value store with atomic batches.
///
/// A write that returns `Ok` is durable to the degree the store's durability setting promises
/// (the default: on stable storage).
pub trait Store: Send + Sync {
    /// Reads a value.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies all writes atomically: after a crash either all or none are visible.
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Sets `key` to `new` (or deletes it when `None`) only if its current value equals
    /// `expected` (`None`: absent). Returns whether the swap happened.
    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError>;

    /// Like [`Store::write`] (atomic), but not yet durable when it returns: made durable by the
    /// next [`Store::sync`], the next durable write, or the store's background flush (group
    /// commit for audit entries of reads).
    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Like [`Store::compare_and_swap`], but not yet durable when it returns: a batch of these
    /// is made durable by one [`Store::sync`].
    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError>;

    /// Makes every write so far durable to the degree the durability setting promises
    /// (`Immediate`: on stable storage; `Deferred`: soon).
    fn sync(&self) -> Result<(), StoreError>;

    /// Compare-and-swap for many keys of one space: each item is swapped only if its current
    /// value still equals its expected value (items are independent; the batch is not one
    /// transaction), then everything is made durable once. Returns how many were swapped.
    fn compare_and_swap_many(&self, space: Space, items: Vec<CasItem>)
    -> Result<usize, StoreError>;

    /// The values of many keys of one space, in the order of `keys` (`None` where absent).
    /// A server store answers in one round trip; the default asks [`Store::get`] per key.
    fn get_many(&self, space: Space, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(space, k)).collect()
    }

    /// Inserts each `(key, value)` whose key is absent, not yet durable (a batch of
    /// [`Store::compare_and_swap_unsynced`] from absent; made durable by one [`Store::sync`]);
    /// returns, in order, whether each was inserted. Items are independent (the batch is not
    /// one transaction); keys should be distinct — of equal keys at most the first is
    /// inserted. A server store does it in one statement; the default swaps per item.
    fn insert_absent_many_unsynced(
        &self,
        space: Space,
        items: &[(&[u8], &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        items
            .iter()
            .map(|(k, v)| self.compare_and_swap_unsynced(space, k, None, Some(v.to_vec())))
            .collect()
    }

    /// Up to `limit` entries whose keys start with `prefix`, in key order, strictly after
    /// `after` when given: a page of a scan with constant memory that can resume anywhere.
    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// The store's own commit counter, for a store shared by many clients: a number every
    /// durable commit raises and that a restored older copy of the store holds smaller
    /// (PostgreSQL: a sequence). The client-side commit anchor compares it on open
    /// (anchor.rs). `None` (the default): the store keeps none.
    fn commit_counter(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Applies `ops` atomically, not yet durable (like [`Store::write_unsynced`]), only if
    /// `key` of `space` still has the value `expected` (`None`: absent); returns whether they
    /// were applied. The audit log appends with it, guarded by its head, so that appends from
    /// several processes form one chain.
    ///
    /// The default reads, compares, then writes: atomic only when the caller serialises every
    /// writer of `key`, as a single-process store (sled, locked to one process) with the audit
    /// log's in-process mutex does. A store shared by processes must override it with a real
    /// transaction (the PostgreSQL store does).
    fn write_unsynced_if(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<WriteOp>,
    ) -> Result<bool, StoreError> {
        if self.get(space, key)?.as_deref() != expected {
            return Ok(false);
        }
        self.write_unsynced(ops)?;
        Ok(true)
    }

    /// One page of a batch rewrite that several workers may run at once (rewrap): up to
    /// `limit` entries of `space` after `after` in key order; `f` computes the swaps from them
    /// and they are applied (each only if its value is still the expected one), then made
    /// durable. The PostgreSQL store locks the page's rows for the transaction that applies
    /// `f`'s swaps; with `skip_locked` it passes over rows another worker holds
    /// (`FOR UPDATE SKIP LOCKED`: concurrent workers take disjoint pages instead of racing for
    /// the same rows) and says so in [`PageOutcome::skipped`], without it waits for them. `f`
    /// may run more than once (a retried transaction). The default scans, then
    /// [`Store::compare_and_swap_many`].
    fn rewrite_page(
        &self,
        space: Space,
        after: Option<&[u8]>,
        limit: usize,
        skip_locked: bool,
        f: &mut Rewrite<'_>,
    ) -> Result<PageOutcome, StoreError> {
        let _ = skip_locked;
        rewrite_by_scan(self, space, after, limit, f)
    }

    /// Read–modify–write of one key, not yet durable (like [`Store::write_unsynced`]): `f`
    /// gets the current value of `key` of `space` (`None`: absent) and returns the writes to
    /// apply; they are applied atomically, and no other writer of `key` — in this process or
    /// another — comes between the read and the writes: a concurrent caller waits for this
    /// one, then reads what it wrote. `f` may run more than once (a transaction retried after
    /// a deadlock) and must compute its writes from the value it is given each time; an error
    /// from `f` applies nothing. The audit log appends with it, so that the appends of several
    /// processes queue on the head instead of failing and retrying.
    ///
    /// The default reads, then writes: atomic only when the caller serialises every writer of
    /// `key`, as a single-process store (sled, locked to one process) with the audit log's
    /// in-process mutex does. A store shared by processes must override it with a real
    /// transaction (the PostgreSQL store locks the row).
    fn update_unsynced(
        &self,
        space: Space,
        key: &[u8],
        f: &mut Update<'_>,
    ) -> Result<(), StoreError> {
        let current = self.get(space, key)?;
        let ops = f(current.as_deref())?;
        self.write_unsynced(ops)
    }
}

/// Inside `impl Store for W`, forwards the named methods to the wrapped store `self.$inner`
/// unchanged: the stores that wrap another (commit anchors, the snapshot gate) write only the
/// methods they change. Each method's signature lives here once.
macro_rules! forward_store {
    ($inner:ident: $($method:ident),+ $(,)?) => {
        $( $crate::store::forward_store!(@one $inner $method); )+
    };
    (@one $inner:ident get) => {
        fn get(
            &self,
            space: $crate::store::Space,
            key: &[u8],
        ) -> Result<Option<Vec<u8>>, $crate::error::StoreError> {
            self.$inner.get(space, key)
        }
    };
    (@one $inner:ident get_many) => {
        fn get_many(
            &self,
            space: $crate::store::Space,
            keys: &[&[u8]],
        ) -> Result<Vec<Option<Vec<u8>>>, $crate::error::StoreError> {
            self.$inner.get_many(space, keys)
        }
    };
    (@one $inner:ident insert_absent_many_unsynced) => {
        fn insert_absent_many_unsynced(
            &self,
            space: $crate::store::Space,
            items: &[(&[u8], &[u8])],
        ) -> Result<Vec<bool>, $crate::error::StoreError> {
            self.$inner.insert_absent_many_unsynced(space, items)
        }
    };
    (@one $inner:ident write) => {
        fn write(&self, ops: Vec<$crate::store::WriteOp>) -> Result<(), $crate::error::StoreError> {
            self.$inner.write(ops)
        }
    };
    (@one $inner:ident write_unsynced) => {
        fn write_unsynced(
            &self,
            ops: Vec<$crate::store::WriteOp>,
        ) -> Result<(), $crate::error::StoreError> {
            self.$inner.write_unsynced(ops)
        }
    };
    (@one $inner:ident compare_and_swap_unsynced) => {
        fn compare_and_swap_unsynced(
            &self,
            space: $crate::store::Space,
            key: &[u8],
            expected: Option<&[u8]>,
            new: Option<Vec<u8>>,
        ) -> Result<bool, $crate::error::StoreError> {
            self.$inner.compare_and_swap_unsynced(space, key, expected, new)
        }
    };
    (@one $inner:ident sync) => {
        fn sync(&self) -> Result<(), $crate::error::StoreError> {
            self.$inner.sync()
        }
    };
    (@one $inner:ident scan) => {
        fn scan(
            &self,
            space: $crate::store::Space,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<$crate::store::Entry>, $crate::error::StoreError> {
            self.$inner.scan(space, prefix, after, limit)
        }
    };
    (@one $inner:ident flush) => {
        fn flush(&self) -> Result<(), $crate::error::StoreError> {
            self.$inner.flush()
        }
    };
    (@one $inner:ident write_unsynced_if) => {
        fn write_unsynced_if(
            &self,
            space: $crate::store::Space,
            key: &[u8],
            expected: Option<&[u8]>,
            ops: Vec<$crate::store::WriteOp>,
        ) -> Result<bool, $crate::error::StoreError> {
            self.$inner.write_unsynced_if(space, key, expected, ops)
        }
    };
    (@one $inner:ident update_unsynced) => {
        fn update_unsynced(
            &self,
            space: $crate::store::Space,
            key: &[u8],
            f: &mut $crate::store::Update<'_>,
        ) -> Result<(), $crate::error::StoreError> {
            self.$inner.update_unsynced(space, key, f)
        }
    };
    (@one $inner:ident rewrite_page) => {
        fn rewrite_page(
            &self,
            space: $crate::store::Space,
            after: Option<&[u8]>,
            limit: usize,
            skip_locked: bool,
            f: &mut $crate::store::Rewrite<'_>,
        ) -> Result<$crate::store::PageOutcome, $crate::error::StoreError> {
            self.$inner.rewrite_page(space, after, limit, skip_locked, f)
        }
    };
    (@one $inner:ident commit_counter) => {
        fn commit_counter(&self) -> Result<Option<u64>, $crate::error::StoreError> {
            self.$inner.commit_counter()
        }
    };
}
pub(crate) use forward_store;

/// Iterates all entries under a prefix, one page at a time.
pub(crate) struct ScanIter<'a> {
    store: &'a dyn Store,
    space: Space,
    prefix: Vec<u8>,
    after: Option<Vec<u8>>,
    page: std::vec::IntoIter<Entry>,
    done: bool,
}

/// Entries fetched per page by [`ScanIter`].
pub(crate) const SCAN_PAGE: usize = 1024;

impl<'a> ScanIter<'a> {
    pub(crate) fn new(store: &'a dyn Store, space: Space, prefix: Vec<u8>) -> Self {
        ScanIter {
            store,
            space,
            prefix,
            after: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl Iterator for ScanIter<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.page.next() {
                self.after = Some(e.0.clone());
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            match self
                .store
                .scan(self.space, &self.prefix, self.after.as_deref(), SCAN_PAGE)
            {
                Ok(page) => {
                    self.done = page.len() < SCAN_PAGE;
                    self.page = page.into_iter();
                    if self.page.len() == 0 {
                        return None;
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each space's place in [`Space::ALL`]. The match is exhaustive: a new space fails to
    /// compile here until it is given a place, and the test below then fails until `ALL`
    /// holds it there.
    fn place(s: Space) -> usize {
        match s {
            Space::Erasure => 0,
            Space::Meta => 1,
            Space::Keyring => 2,
            Space::Field => 3,
            Space::Subject => 4,
            Space::Token => 5,
            Space::TokenIndex => 6,
            Space::Record => 7,
            Space::Audit => 8,
        }
    }

    #[test]
    fn all_spaces_are_listed() {
        for (i, s) in Space::ALL.iter().enumerate() {
            assert_eq!(place(*s), i, "{s:?}");
            assert_eq!(Space::from_prefix(s.prefix()), Some(*s));
        }
        let mut prefixes: Vec<u8> = Space::ALL.iter().map(|s| s.prefix()).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(prefixes.len(), Space::ALL.len(), "prefixes are distinct");
    }
}
