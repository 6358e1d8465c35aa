//! `hotpaths`: issue 19's table. Each hot path is timed beside its limit in the same process,
//! in alternating rounds (ours, limit, ours, limit, ...), so both see the same machine state;
//! one JSON line per workload and round on stdout, read by `benches/report.py`.
//!
//! ```text
//! hotpaths [SIDE [COMMIT]]     SIDE: before | after (a label only; default after)
//! ```
//!
//! Environment: `PV_ROUNDS` (default 3), `PV_REWRAP_N` records for the rewrap row (default
//! 300000; 0 skips it). The file uses only API that both the reference commit of
//! `benches/run.sh` and the working tree have, so the same source is built on both sides.

use fpe::ff1::{FF1, FlexibleNumeralString};
use phivault::envelope::{self, Envelope, Kek};
use phivault::policy::{Caller, Policy};
use phivault::records::PutOptions;
use phivault::tokens::View;
use phivault::{Backend, Context, Key32};
use phivault_benches::{BATCH, default_vault, payload};
use serde_json::json;
use std::time::Instant;

/// One workload: what is measured, what it is measured against, and the goal ratio.
struct Row {
    workload: &'static str,
    label: &'static str,
    ours: &'static str,
    limit: &'static str,
    goal: f64,
}

fn emit(side: &str, commit: &str, row: &Row, ours: f64, limit: f64, note: Option<String>) {
    println!(
        "{}",
        json!({
            "side": side, "commit": commit, "workload": row.workload, "label": row.label,
            "ours": row.ours, "ours_per_s": ours, "limit": row.limit, "limit_per_s": limit,
            "ratio": ours / limit, "goal": row.goal,
            "goal_kind": if row.goal >= 1.0 { "multiple" } else { "ratio" },
            "note": note,
        })
    );
}

/// Items per second of `ours` and of `limit` (each doing `items` items per call), run in
/// alternating slices of about 25 ms (at least one call each) until `secs` have passed and
/// each side had at least 3 calls: both sides see the same state of the machine.
fn pair(items: usize, secs: f64, mut ours: impl FnMut(), mut limit: impl FnMut()) -> (f64, f64) {
    let slice = 0.025;
    let start = Instant::now();
    let (mut t_ours, mut t_limit) = (0.0f64, 0.0f64);
    let (mut n_ours, mut n_limit) = (0usize, 0usize);
    while n_ours < 3 || n_limit < 3 || start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        loop {
            ours();
            n_ours += 1;
            if t.elapsed().as_secs_f64() >= slice {
                break;
            }
        }
        t_ours += t.elapsed().as_secs_f64();
        let t = Instant::now();
        loop {
            limit();
            n_limit += 1;
            if t.elapsed().as_secs_f64() >= slice {
                break;
            }
        }
        t_limit += t.elapsed().as_secs_f64();
    }
    (
        (n_ours * items) as f64 / t_ours,
        (n_limit * items) as f64 / t_limit,
    )
}

// `raw_sled` and `raw_key` repeat the criterion benches' helpers on purpose: this file is
// also built inside the reference commit's tree, whose `phivault_benches` lacks them.
fn raw_sled(dir: &std::path::Path) -> sled::Db {
    // The configuration phivault's SledStore uses with the default durability.
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(500))
        .open()
        .expect("sled")
}

fn raw_key(n: u64) -> [u8; 33] {
    let mut k = [0x74u8; 33];
    k[1..9].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[9..17].copy_from_slice(&n.to_be_bytes());
    k
}

const POLICY: &str = r#"
[[principal]]
name = "ehr-app"
roles = ["clinician"]

[[rule]]
roles = ["clinician"]
purposes = ["treatment"]
actions = ["encrypt", "decrypt", "get"]
keyrings = ["default"]
collections = ["notes"]
"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let side = args.first().map_or("after", String::as_str).to_owned();
    let commit = args.get(1).map_or("", String::as_str).to_owned();
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("PV_ROUNDS", 3);
    let rewrap_n = env("PV_REWRAP_N", 300_000);
    let tmp = tempfile::tempdir().expect("tmp");
    let vault = default_vault(&tmp.path().join("v"));
    vault
        .set_policy(&Policy::from_toml(POLICY).expect("policy"))
        .expect("policy");
    // Raw sled databases: the point-read entries, the batch inserts, the rewrap's CAS (each
    // its own, as each reference bench has).
    let db = raw_sled(&tmp.path().join("sled"));
    let batch_db = raw_sled(&tmp.path().join("sled-batch"));
    let kek = Kek::new(1, Key32::random().expect("rng"), Backend::Ring).expect("kek");
    let ctx = Context::new().with("record", "4711").with("field", "note");
    let pt = payload(64);
    let owner = vault.owner();
    // New vaulted tokens go to a vault of their own, so the point-read workloads of the main
    // vault see the same number of entries in every round (as the raw reference does).
    let vault_new = default_vault(&tmp.path().join("v-new"));
    let owner_new = vault_new.owner();
    let app = vault.session(Caller::new("ehr-app", "treatment"));
    let env_ct = envelope::seal(Backend::Ring, "default", &kek, &pt, &ctx).expect("seal");
    let vault_ct = owner.encrypt(&pt, &ctx).expect("enc");

    // Records and raw entries for the point reads: 10k of each, read in a cycle.
    let n_rec = BATCH as u64;
    let ids: Vec<String> = (0..n_rec).map(|i| format!("MRN-{i:09}")).collect();
    let items: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), pt.as_slice())).collect();
    owner
        .put_many("notes", &items, &PutOptions::default())
        .expect("put_many");
    let rec_len = 1 + vault_ct.len();
    let raw_value = vec![0x5au8; rec_len];
    let mut b = sled::Batch::default();
    for i in 0..n_rec {
        b.insert(&raw_key(u64::MAX - i)[..], raw_value.as_slice());
    }
    db.apply_batch(b).expect("batch");
    db.flush().expect("flush");

    let mut fresh = 0u64;
    let mut raw_next = 1u64 << 40;
    let ff1 = FF1::<aes::Aes256>::new(&[3u8; 32], 10).expect("ff1");
    let existing: Vec<String> = (0..BATCH).map(|i| format!("E{i:09}")).collect();
    let existing_toks = owner.tokenize_many("mrn", &existing).expect("tok");
    let tok_refs: Vec<&str> = existing_toks.iter().map(String::as_str).collect();
    let ssns: Vec<String> = (0..BATCH as u64)
        .map(|i| format!("{:09}", (i * 7_919 + 123_456_789) % 1_000_000_000))
        .collect();
    let ssn_digits: Vec<Vec<u16>> = ssns
        .iter()
        .map(|s| s.bytes().map(|b| u16::from(b - b'0')).collect())
        .collect();

    let rows = [
        Row {
            workload: "encrypt-64B-audited",
            label: "encrypt 64 B, owner, audited",
            ours: "owner().encrypt",
            limit: "envelope::seal",
            goal: 0.75,
        },
        Row {
            workload: "decrypt-64B-audited",
            label: "decrypt 64 B, owner, audited",
            ours: "owner().decrypt",
            limit: "envelope::open",
            goal: 0.75,
        },
        Row {
            workload: "session-encrypt-64B",
            label: "encrypt 64 B, policy session",
            ours: "session(ehr-app).encrypt",
            limit: "envelope::seal",
            goal: 0.75,
        },
        Row {
            workload: "session-decrypt-64B",
            label: "decrypt 64 B, policy session",
            ours: "session(ehr-app).decrypt",
            limit: "envelope::open",
            goal: 0.75,
        },
        Row {
            workload: "get-64B",
            label: "record get 64 B",
            ours: "owner().get",
            limit: "raw sled get",
            goal: 0.40,
        },
        Row {
            workload: "tokenize-vaulted-new-10k",
            label: "vaulted tokens, new values, batch 10k",
            ours: "tokenize_many(mrn)",
            limit: "raw sled batch 10k + flush",
            goal: 0.60,
        },
        Row {
            workload: "tokenize-vaulted-existing-10k",
            label: "vaulted tokens, existing values, batch 10k",
            ours: "tokenize_many(mrn)",
            limit: "raw sled get ×10k",
            goal: 0.60,
        },
        Row {
            workload: "detokenize-vaulted-10k",
            label: "detokenize vaulted, batch 10k",
            ours: "detokenize_many(mrn)",
            limit: "raw sled get ×10k",
            goal: 0.60,
        },
        Row {
            workload: "ff1-ssn-10k",
            label: "FF1 SSN tokens, batch 10k, one core",
            ours: "tokenize_many(ssn)",
            limit: "fpe crate FF1",
            goal: 5.0,
        },
    ];
    if std::env::var_os("PV_NO_READ_AUDIT").is_some() {
        vault.set_read_auditing(false).expect("audit off");
    }
    // PV_ONLY: a comma-separated list of the workloads to run (to profile one).
    let only = std::env::var("PV_ONLY").ok();
    let selected = |w: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == w));
    let secs = 1.0;
    let seal = || {
        std::hint::black_box(
            envelope::seal(Backend::Ring, "default", &kek, &pt, &ctx).expect("seal"),
        );
    };
    let open = || {
        let env = Envelope::parse(&env_ct).expect("parse");
        std::hint::black_box(envelope::open(Backend::Ring, &env, &kek, &ctx).expect("open"));
    };
    // The token entry's size: a format byte and an envelope of a 10-character value.
    let token_value = vec![0x5au8; 1 + vault_ct.len() + 10 - pt.len()];
    let raw_gets = || {
        for i in 0..n_rec {
            std::hint::black_box(db.get(raw_key(u64::MAX - i)).expect("get"));
        }
    };
    for _ in 0..rounds {
        for row in rows.iter().filter(|r| selected(r.workload)) {
            let (ours, limit) = match row.workload {
                "encrypt-64B-audited" => pair(
                    1,
                    secs,
                    || {
                        std::hint::black_box(owner.encrypt(&pt, &ctx).expect("enc"));
                    },
                    seal,
                ),
                "decrypt-64B-audited" => pair(
                    1,
                    secs,
                    || {
                        std::hint::black_box(owner.decrypt(&vault_ct, &ctx).expect("dec"));
                    },
                    open,
                ),
                "session-encrypt-64B" => pair(
                    1,
                    secs,
                    || {
                        std::hint::black_box(app.encrypt(&pt, &ctx).expect("enc"));
                    },
                    seal,
                ),
                "session-decrypt-64B" => pair(
                    1,
                    secs,
                    || {
                        std::hint::black_box(app.decrypt(&vault_ct, &ctx).expect("dec"));
                    },
                    open,
                ),
                "get-64B" => {
                    let (mut j, mut k) = (0usize, 0u64);
                    pair(
                        1,
                        secs,
                        || {
                            j = (j + 1) % ids.len();
                            std::hint::black_box(owner.get("notes", &ids[j]).expect("get"));
                        },
                        || {
                            k = (k + 1) % n_rec;
                            std::hint::black_box(db.get(raw_key(u64::MAX - k)).expect("get"));
                        },
                    )
                }
                "tokenize-vaulted-new-10k" => pair(
                    BATCH,
                    secs,
                    || {
                        let values: Vec<String> = (0..BATCH)
                            .map(|_| {
                                fresh += 1;
                                format!("M{fresh:09}")
                            })
                            .collect();
                        std::hint::black_box(owner_new.tokenize_many("mrn", &values).expect("tok"));
                    },
                    || {
                        let mut batch = sled::Batch::default();
                        for i in 0..BATCH as u64 {
                            batch.insert(&raw_key(raw_next + i)[..], token_value.as_slice());
                        }
                        raw_next += BATCH as u64;
                        batch_db.apply_batch(batch).expect("batch");
                        batch_db.flush().expect("flush");
                    },
                ),
                "tokenize-vaulted-existing-10k" => pair(
                    BATCH,
                    secs,
                    || {
                        std::hint::black_box(owner.tokenize_many("mrn", &existing).expect("tok"));
                    },
                    raw_gets,
                ),
                "detokenize-vaulted-10k" => pair(
                    BATCH,
                    secs,
                    || {
                        std::hint::black_box(
                            owner
                                .detokenize_many("mrn", &tok_refs, View::Plaintext)
                                .expect("detok"),
                        );
                    },
                    raw_gets,
                ),
                "ff1-ssn-10k" => pair(
                    BATCH,
                    secs,
                    || {
                        std::hint::black_box(owner.tokenize_many("ssn", &ssns).expect("tok"));
                    },
                    || {
                        for d in &ssn_digits {
                            std::hint::black_box(
                                ff1.encrypt(b"ssn", &FlexibleNumeralString::from(d.clone()))
                                    .expect("fpe"),
                            );
                        }
                    },
                ),
                _ => unreachable!("every row is measured"),
            };
            emit(&side, &commit, row, ours, limit, None);
        }
    }
    drop(app);
    drop(owner);
    drop(owner_new);
    if rewrap_n > 0 && selected("rewrap") {
        let cas_db = raw_sled(&tmp.path().join("sled-cas"));
        rewrap_row(&side, &commit, rewrap_n, &tmp.path().join("rw"), &cas_db);
    }
}

/// Rewrap of `n` records after a rotation against raw sled compare-and-swaps of as many
/// entries of the same size (rewrap swaps each record in place so it can run beside writers).
fn rewrap_row(side: &str, commit: &str, n: usize, dir: &std::path::Path, db: &sled::Db) {
    let vault = default_vault(dir);
    let pt = payload(64);
    let ids: Vec<String> = (0..n).map(|i| format!("RW-{i:09}")).collect();
    for chunk in ids.chunks(BATCH) {
        let items: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|id| (id.as_str(), pt.as_slice()))
            .collect();
        vault
            .owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
    }
    vault.rotate("default").expect("rotate");
    let t = Instant::now();
    let report = vault
        .rewrap(&Default::default(), &mut |_| {})
        .expect("rewrap");
    let ours = report.rewrapped as f64 / t.elapsed().as_secs_f64();
    let len = 1 + vault
        .owner()
        .encrypt(&pt, &Context::new().with("record", "x"))
        .expect("enc")
        .len();
    let (old, new) = (vec![1u8; len], vec![2u8; len]);
    let key = |i: usize| {
        let mut k = [0x52u8; 49];
        k[1..9].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        k
    };
    for start in (0..n).step_by(BATCH) {
        let mut b = sled::Batch::default();
        for i in start..(start + BATCH).min(n) {
            b.insert(&key(i)[..], old.as_slice());
        }
        db.apply_batch(b).expect("batch");
    }
    db.flush().expect("flush");
    let t = Instant::now();
    for i in 0..n {
        db.compare_and_swap(key(i), Some(old.as_slice()), Some(new.as_slice()))
            .expect("cas")
            .expect("swapped");
        if i % 1000 == 999 {
            db.flush().expect("flush");
        }
    }
    db.flush().expect("flush");
    let limit = n as f64 / t.elapsed().as_secs_f64();
    let row = Row {
        workload: "rewrap",
        label: "rewrap after rotation",
        ours: "Vault::rewrap",
        limit: "raw sled CAS",
        goal: 0.70,
    };
    emit(
        side,
        commit,
        &row,
        ours,
        limit,
        Some(format!("{n} records; goal also ≥ 200k records/s")),
    );
}
