//! The store's batch calls keep one contract on every store: the embedded ones here, the
//! PostgreSQL one in `postgres_store.rs` (issue 21).

mod common {
    pub mod batch_contract;
}

use phivault::store::{Durability, MemoryStore, SledStore};

#[test]
fn memory_store_batches() {
    common::batch_contract::check(&MemoryStore::new());
}

#[test]
fn sled_store_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = SledStore::open(&dir.path().join("db"), Durability::Immediate).expect("sled");
    common::batch_contract::check(&s);
}
