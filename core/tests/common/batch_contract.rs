//! The contract of the store's batch calls (`get_many`, `insert_absent_many_unsynced`,
//! `compare_and_swap_many`, batched `write`, `update_unsynced`), shared by every store's
//! tests.

use phivault::StoreError;
use phivault::store::{CasItem, Space, Store, WriteOp};

/// Runs the contract on an empty store.
pub fn check(s: &dyn Store) {
    let k = |b: &str| b.as_bytes().to_vec();
    // get_many: order kept, absent as None, equal keys each answered, other spaces apart.
    s.write(vec![
        WriteOp::Put {
            space: Space::Record,
            key: k("b1"),
            value: k("v1"),
        },
        WriteOp::Put {
            space: Space::Record,
            key: k("b2"),
            value: k("v2"),
        },
        WriteOp::Put {
            space: Space::Token,
            key: k("b3"),
            value: k("other space"),
        },
    ])
    .expect("write");
    let got = s
        .get_many(Space::Record, &[b"b2", b"zz", b"b1", b"b3", b"b2"])
        .expect("get_many");
    assert_eq!(
        got,
        vec![Some(k("v2")), None, Some(k("v1")), None, Some(k("v2"))]
    );
    assert!(s.get_many(Space::Record, &[]).expect("empty").is_empty());
    // insert_absent_many_unsynced: only absent keys, first of equal keys, then durable.
    let ins = s
        .insert_absent_many_unsynced(
            Space::Record,
            &[
                (b"b1", b"no"),
                (b"n1", b"new1"),
                (b"n2", b"new2"),
                (b"n1", b"dup"),
            ],
        )
        .expect("insert");
    assert_eq!(ins, vec![false, true, true, false]);
    s.sync().expect("sync");
    assert_eq!(
        s.get_many(Space::Record, &[b"b1", b"n1", b"n2"])
            .expect("get"),
        vec![Some(k("v1")), Some(k("new1")), Some(k("new2"))]
    );
    assert!(
        s.insert_absent_many_unsynced(Space::Record, &[])
            .expect("empty")
            .is_empty()
    );
    // A batched write with puts and deletes of distinct keys, and one that repeats a key
    // (applied in order: the last op wins).
    s.write(vec![
        WriteOp::Delete {
            space: Space::Record,
            key: k("n1"),
        },
        WriteOp::Put {
            space: Space::Record,
            key: k("n3"),
            value: k("new3"),
        },
        WriteOp::Put {
            space: Space::Token,
            key: k("n3"),
            value: k("token space"),
        },
    ])
    .expect("write");
    s.write(vec![
        WriteOp::Put {
            space: Space::Record,
            key: k("r"),
            value: k("first"),
        },
        WriteOp::Delete {
            space: Space::Record,
            key: k("r"),
        },
        WriteOp::Put {
            space: Space::Record,
            key: k("r"),
            value: k("last"),
        },
        WriteOp::Put {
            space: Space::Record,
            key: k("r2"),
            value: k("x"),
        },
        WriteOp::Delete {
            space: Space::Record,
            key: k("r2"),
        },
    ])
    .expect("write");
    assert_eq!(
        s.get_many(Space::Record, &[b"n1", b"n3", b"r", b"r2"])
            .expect("get"),
        vec![None, Some(k("new3")), Some(k("last")), None]
    );
    assert_eq!(
        s.get(Space::Token, b"n3").expect("get"),
        Some(k("token space"))
    );
    // compare_and_swap_many: each item on its own.
    let n = s
        .compare_and_swap_many(
            Space::Record,
            vec![
                CasItem {
                    key: k("n2"),
                    expected: k("new2"),
                    new: k("swapped"),
                },
                CasItem {
                    key: k("n3"),
                    expected: k("stale"),
                    new: k("never"),
                },
                CasItem {
                    key: k("absent"),
                    expected: k("x"),
                    new: k("never"),
                },
            ],
        )
        .expect("cas many");
    assert_eq!(n, 1);
    assert_eq!(
        s.get_many(Space::Record, &[b"n2", b"n3", b"absent"])
            .expect("get"),
        vec![Some(k("swapped")), Some(k("new3")), None]
    );
    // update_unsynced: from absent, from a value, and an `f` that fails applies nothing
    // (on PostgreSQL: the placeholder that claimed the absent key is gone too).
    let put = |key: &str, value: Vec<u8>| WriteOp::Put {
        space: Space::Meta,
        key: k(key),
        value,
    };
    s.update_unsynced(Space::Meta, b"u", &mut |cur| {
        assert_eq!(cur, None);
        Ok(vec![put("u", k("1")), put("u-side", k("a"))])
    })
    .expect("update from absent");
    s.update_unsynced(Space::Meta, b"u", &mut |cur| {
        let next = cur.map_or(0, |c| c[0] - b'0') + 1;
        Ok(vec![put("u", vec![b'0' + next])])
    })
    .expect("update");
    let err = s.update_unsynced(Space::Meta, b"absent-u", &mut |_| {
        Err(StoreError::Corrupt("refused by f"))
    });
    assert!(err.is_err());
    s.update_unsynced(Space::Meta, b"absent-2", &mut |_| {
        Ok(vec![put("elsewhere", k("e"))])
    })
    .expect("update writing other keys");
    s.sync().expect("sync");
    assert_eq!(
        s.get_many(
            Space::Meta,
            &[b"u", b"u-side", b"absent-u", b"absent-2", b"elsewhere"]
        )
        .expect("get"),
        vec![Some(k("2")), Some(k("a")), None, None, Some(k("e"))]
    );
}
