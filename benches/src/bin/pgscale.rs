//! pgscale: the PostgreSQL store beside PostgreSQL's own speed (issue 21).
//!
//! Every figure is a ratio to a reference measured in the same run, over the same connection
//! kind (the vault's URL: TLS and password as the vault uses them):
//! - raw inserts: 1000-row batches of a 32-byte key and a 120-byte value,
//!   `INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING`, one durable commit per batch;
//! - raw batched reads: `SELECT … WHERE k = ANY($1)` of 1000 existing keys;
//! - raw point reads: one prepared single-row `SELECT` per call.
//!
//! ```text
//! PHIVAULT_PG_URL=postgres://… pgscale [bench]    # the side-by-side table (PV_N, PV_ROUNDS)
//! PHIVAULT_PG_URL=postgres://… pgscale procs      # 4 processes × 2 threads vs one process
//! PHIVAULT_PG_URL=postgres://… pgscale rewrap     # rewrap by 1 and 2 worker processes
//! PHIVAULT_PG_URL=postgres://… pgscale memory     # RSS during a 1M-value tokenize (PV_N)
//! ```
//! `benches/run-postgres.sh` starts a throwaway cluster and runs all three.

use phivault::lifecycle::RewrapOptions;
use phivault::records::PutOptions;
use phivault::root::KeyFile;
use phivault::store::pg_connect::connect_client;
use phivault::store::postgres::PgOptions;
use phivault::store::{PgStore, Space, Store};
use phivault::tokens::View;
use phivault::{Backend, Context, Vault};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const KEY_HEX: &str = "5f1c0d8e2a7b4c6d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";
const BATCH: usize = 1000;
const SCHEMA: &str = "pvbench_vault";

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn url() -> String {
    std::env::var("PHIVAULT_PG_URL").expect("PHIVAULT_PG_URL: the server to measure")
}

fn root() -> KeyFile {
    KeyFile::from_bytes(KEY_HEX.as_bytes()).expect("key")
}

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("rng");
    b
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn pg_store(url: &str, pool: usize) -> PgStore {
    PgStore::connect_with(
        url,
        PgOptions::default().schema(SCHEMA).max_connections(pool),
    )
    .expect("connect")
}

/// A fresh vault in its own schema (the previous run's dropped).
fn fresh_pg_vault(url: &str) -> Vault {
    let mut admin = connect_client(url).expect("admin");
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .expect("drop");
    Vault::create_in(Box::new(pg_store(url, 8)), &root(), Backend::default()).expect("create")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Raw {
    client: postgres::Client,
    keys: Vec<Vec<u8>>,
}

impl Raw {
    fn new(url: &str) -> Raw {
        let mut client = connect_client(url).expect("raw client");
        client
            .batch_execute(
                "CREATE SCHEMA IF NOT EXISTS pvbench_raw; \
                 DROP TABLE IF EXISTS pvbench_raw.kv; \
                 CREATE TABLE pvbench_raw.kv (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)",
            )
            .expect("raw table");
        Raw {
            client,
            keys: Vec::new(),
        }
    }

    /// rows/s of `n` new rows in durable 1000-row batches.
    fn insert(&mut self, n: usize) -> f64 {
        let stmt = self
            .client
            .prepare(
                "INSERT INTO pvbench_raw.kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT DO NOTHING",
            )
            .expect("prepare");
        let keys: Vec<Vec<u8>> = (0..n).map(|_| random(32)).collect();
        let values: Vec<Vec<u8>> = (0..n).map(|_| random(120)).collect();
        let t = Instant::now();
        for (k, v) in keys.chunks(BATCH).zip(values.chunks(BATCH)) {
            let k: Vec<&[u8]> = k.iter().map(Vec::as_slice).collect();
            let v: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
            self.client.execute(&stmt, &[&k, &v]).expect("insert");
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        self.keys = keys;
        rate
    }

    /// rows/s of batched `= ANY` reads of the last inserted keys.
    fn read_any(&mut self) -> f64 {
        let stmt = self
            .client
            .prepare("SELECT k, v FROM pvbench_raw.kv WHERE k = ANY($1)")
            .expect("prepare");
        let t = Instant::now();
        let mut got = 0;
        for k in self.keys.chunks(BATCH) {
            let k: Vec<&[u8]> = k.iter().map(Vec::as_slice).collect();
            got += self.client.query(&stmt, &[&k]).expect("read").len();
        }
        assert_eq!(got, self.keys.len());
        self.keys.len() as f64 / t.elapsed().as_secs_f64()
    }

    /// calls/s of single-row selects.
    fn read_one(&mut self, m: usize) -> f64 {
        let stmt = self
            .client
            .prepare("SELECT v FROM pvbench_raw.kv WHERE k = $1")
            .expect("prepare");
        let t = Instant::now();
        for k in self.keys.iter().take(m) {
            let row = self.client.query_opt(&stmt, &[k]).expect("read");
            assert!(row.is_some());
        }
        m.min(self.keys.len()) as f64 / t.elapsed().as_secs_f64()
    }
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

fn bench() {
    let url = url();
    let n = env_usize("PV_N", 20_000);
    let m = env_usize("PV_CALLS", 5_000);
    let rounds = env_usize("PV_ROUNDS", 3);
    let mut raw = Raw::new(&url);
    let pg = fresh_pg_vault(&url);
    let dir = tempfile::tempdir().expect("tmp");
    let sled = Vault::create(dir.path().join("sled"), &root()).expect("sled vault");
    let probe = pg_store(&url, 1);
    let ctx = Context::new().with("record", "4711");
    let ct_pg = pg.owner().encrypt(b"HbA1c 9.2%", &ctx).expect("encrypt");
    let ct_sled = sled.owner().encrypt(b"HbA1c 9.2%", &ctx).expect("encrypt");
    // Records to get, one call each.
    let ids: Vec<String> = (0..m).map(|i| format!("enc-{i:07}")).collect();
    for chunk in ids.chunks(BATCH) {
        let items: Vec<(&str, &[u8])> =
            chunk.iter().map(|id| (id.as_str(), &b"note"[..])).collect();
        pg.owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
    }
    let mut cols: [Vec<f64>; 16] = Default::default();
    for r in 0..rounds {
        let values: Vec<String> = (0..n).map(|i| format!("MRN{r}{i:07}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let raw_ins = raw.insert(n);
        let raw_any = raw.read_any();
        let raw_one = raw.read_one(m);
        let mut tokens = Vec::with_capacity(n);
        let new = rate(n, || {
            for c in refs.chunks(BATCH) {
                tokens.extend(pg.owner().tokenize_many("mrn", c).expect("tokenize"));
            }
        });
        let again = rate(n, || {
            for c in refs.chunks(BATCH) {
                pg.owner().tokenize_many("mrn", c).expect("tokenize");
            }
        });
        let trefs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let detok = rate(n, || {
            for c in trefs.chunks(BATCH) {
                pg.owner()
                    .detokenize_many("mrn", c, View::Plaintext)
                    .expect("detokenize");
            }
        });
        // The store's part of detokenize: the same rows through PgStore::get_many alone.
        let store_keys: Vec<Vec<u8>> = probe
            .scan(Space::Token, &[], None, n)
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let store_many = rate(store_keys.len(), || {
            for c in store_keys.chunks(BATCH) {
                let c: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                probe.get_many(Space::Token, &c).expect("get_many");
            }
        });
        let get = rate(m, || {
            for id in &ids {
                pg.owner().get("notes", id).expect("get").expect("present");
            }
        });
        let dec_pg = rate(4 * m, || {
            for _ in 0..4 * m {
                pg.owner().decrypt(&ct_pg, &ctx).expect("decrypt");
            }
        });
        let dec_sled = rate(4 * m, || {
            for _ in 0..4 * m {
                sled.owner().decrypt(&ct_sled, &ctx).expect("decrypt");
            }
        });
        for (c, v) in cols.iter_mut().zip([
            raw_ins,
            raw_any,
            raw_one,
            new,
            again,
            detok,
            get,
            dec_pg,
            dec_sled,
            new / (raw_ins / 2.0),
            again / raw_any,
            detok / raw_any,
            get / raw_one,
            dec_pg / dec_sled,
            store_many,
            store_many / raw_any,
        ]) {
            c.push(v);
        }
        eprintln!(
            "round {r}: raw insert {raw_ins:.0} rows/s, raw =ANY {raw_any:.0} rows/s, raw point \
             {raw_one:.0}/s | new {new:.0}/s, existing {again:.0}/s, detokenize {detok:.0}/s, \
             get {get:.0}/s, decrypt pg {dec_pg:.0}/s sled {dec_sled:.0}/s"
        );
    }
    // Rates are medians over the rounds; each ratio is the median of the rounds' own ratios
    // (reference and phivault of the same round, minutes apart at most).
    let [
        raw_ins,
        raw_any,
        raw_one,
        new,
        again,
        detok,
        get,
        dec_pg,
        dec_sled,
        r_new,
        r_again,
        r_detok,
        r_get,
        r_dec,
        store_many,
        r_store_many,
    ] = cols.map(median);
    println!(
        "| operation (one thread, medians of {rounds} rounds, n = {n}) | reference | phivault | ratio | goal |"
    );
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, reference: f64, rname: &str, pv: f64, ratio: f64, goal: f64| {
        let mark = if ratio >= goal { "met" } else { "**not met**" };
        println!(
            "| {name} | {reference:.0}/s ({rname}) | {pv:.0}/s | {ratio:.2} | ≥ {goal:.2} ({mark}) |"
        );
    };
    row(
        "tokenize `mrn`, new values (2 rows each)",
        raw_ins / 2.0,
        "raw insert rows/s ÷ 2",
        new,
        r_new,
        0.5,
    );
    row(
        "tokenize `mrn`, existing values",
        raw_any,
        "raw `= ANY` rows/s",
        again,
        r_again,
        0.5,
    );
    row(
        "detokenize `mrn` (batches)",
        raw_any,
        "raw `= ANY` rows/s",
        detok,
        r_detok,
        0.5,
    );
    row(
        "record get, one call each (audited)",
        raw_one,
        "raw single-row select",
        get,
        r_get,
        0.5,
    );
    row(
        "decrypt, audited (no store read)",
        dec_sled,
        "the same on sled",
        dec_pg,
        r_dec,
        0.9,
    );
    println!(
        "\nThe store's part of detokenize, `PgStore::get_many` of the same rows alone (no \
         crypto, no policy): {store_many:.0} rows/s, {r_store_many:.2} of raw `= ANY`."
    );
    println!(
        "\nraw references: insert {raw_ins:.0} rows/s (durable 1000-row batches), `= ANY` \
         {raw_any:.0} rows/s, single-row select {raw_one:.0}/s"
    );
}

/// One worker process of `procs`: `threads` threads, each tokenizing its own `per_thread`
/// new values; prints its work's start and end times.
fn child(args: &[String]) {
    let url = url();
    let tag = &args[0];
    let threads: usize = args[1].parse().expect("threads");
    let per_thread: usize = args[2].parse().expect("count");
    let vault = Vault::open_in(
        Box::new(pg_store(&url, threads + 1)),
        &root(),
        Backend::default(),
    )
    .expect("open");
    let start = now_ms();
    std::thread::scope(|s| {
        for t in 0..threads {
            let vault = &vault;
            s.spawn(move || {
                let values: Vec<String> = (0..per_thread)
                    .map(|i| format!("P{tag}T{t}V{i:08}"))
                    .collect();
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                for c in refs.chunks(BATCH) {
                    vault.owner().tokenize_many("mrn", c).expect("tokenize");
                }
            });
        }
    });
    println!("WORK {start} {}", now_ms());
}

/// New tokens/s of `procs` processes × `threads` threads, from the earliest start to the
/// latest end of their work.
fn run_procs(tag: &str, procs: usize, threads: usize, per_thread: usize) -> f64 {
    let exe = std::env::current_exe().expect("exe");
    let kids: Vec<_> = (0..procs)
        .map(|p| {
            std::process::Command::new(&exe)
                .args([
                    "child",
                    &format!("{tag}{p}"),
                    &threads.to_string(),
                    &per_thread.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let (mut first, mut last) = (u128::MAX, 0u128);
    for k in kids {
        let out = k.wait_with_output().expect("wait");
        assert!(out.status.success(), "a worker failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("WORK "))
            .expect("times");
        let mut it = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse::<u128>().expect("ms"));
        first = first.min(it.next().expect("start"));
        last = last.max(it.next().expect("end"));
    }
    (procs * threads * per_thread) as f64 / ((last - first) as f64 / 1000.0)
}

/// Raw PostgreSQL's own scaling on this machine: rows/s of `conns` connections (one thread
/// each) inserting `per` new rows each in durable 1000-row batches.
fn raw_concurrent(url: &str, conns: usize, per: usize) -> f64 {
    drop(Raw::new(url));
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..conns {
            s.spawn(|| {
                let mut raw = Raw {
                    client: connect_client(url).expect("raw client"),
                    keys: Vec::new(),
                };
                raw.insert(per);
            });
        }
    });
    (conns * per) as f64 / t.elapsed().as_secs_f64()
}

fn procs() {
    let url = url();
    drop(fresh_pg_vault(&url));
    let per = env_usize("PV_N", 20_000);
    let rounds = env_usize("PV_ROUNDS", 3);
    // (processes, threads each); every configuration tokenizes `per` values per process...
    // per thread for 1 × 1, so the work per configuration grows with its writers.
    let configs = [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)];
    let mut rates = vec![Vec::new(); configs.len()];
    let mut ratios = vec![Vec::new(); configs.len()];
    let (mut raw1, mut raw8) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        // Each round starts at another configuration: the table grows as the run goes, and
        // the server's checkpoints and autovacuum fall on different configurations.
        let mut round = vec![0.0; configs.len()];
        for k in 0..configs.len() {
            let c = (k + r) % configs.len();
            let (p, t) = configs[c];
            round[c] = run_procs(&format!("r{r}c{c}"), p, t, per / t);
        }
        for c in 0..configs.len() {
            rates[c].push(round[c]);
            ratios[c].push(round[c] / round[0]);
        }
        raw1.push(raw_concurrent(&url, 1, 2 * per));
        raw8.push(raw_concurrent(&url, 8, per));
        eprintln!(
            "round {r}: {:?}, raw 1 conn {:.0} rows/s, 8 conns {:.0} rows/s",
            round.iter().map(|v| *v as u64).collect::<Vec<_>>(),
            raw1[r],
            raw8[r]
        );
    }
    let rates_by_round = rates.clone();
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let ratios: Vec<f64> = ratios.into_iter().map(median).collect();
    let (raw1, raw8) = (median(raw1), median(raw8));
    println!(
        "| new vaulted tokens, concurrent writers (medians of {rounds} rounds) | new tokens/s | \
         × 1 process × 1 thread (median of the rounds' ratios) |"
    );
    println!("|---|---:|---:|");
    for ((&(p, t), rate), ratio) in configs.iter().zip(&rates).zip(&ratios) {
        let goal = if (p, t) == (4, 2) {
            if *ratio >= 1.6 {
                " (goal ≥ 1.60: met)"
            } else {
                " (goal ≥ 1.60: **not met**)"
            }
        } else {
            ""
        };
        println!(
            "| {p} process{} × {t} thread{} | {rate:.0} | {ratio:.2}{goal} |",
            if p > 1 { "es" } else { "" },
            if t > 1 { "s" } else { "" },
        );
    }
    let last = configs.len() - 1;
    println!(
        "\nPer round, {} × {} ÷ 1 × 1 (in run order; the table grows from round to round): {}.",
        configs[last].0,
        configs[last].1,
        (0..rounds)
            .map(|r| format!("{:.2}", rates_by_round[last][r] / rates_by_round[0][r]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\nRaw PostgreSQL on the same machine in the same run (durable 1000-row inserts): 1 \
         connection {raw1:.0} rows/s, 8 connections {raw8:.0} rows/s: **{:.2}×**.",
        raw8 / raw1
    );
}

/// One rewrap worker process: prints the records it moved and its work's start and end.
fn rewrap_child() {
    let url = url();
    let vault =
        Vault::open_in(Box::new(pg_store(&url, 2)), &root(), Backend::default()).expect("open");
    let start = now_ms();
    let report = vault
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    eprintln!("rewrap worker: {report:?} in {} ms", now_ms() - start);
    println!("WORK {start} {} {}", now_ms(), report.rewrapped);
}

/// Records/s of a rewrap of every record by `workers` processes at once (after a rotation),
/// from the first worker's start to the last one's end; checks every record moved once.
fn run_rewrap(vault: &Vault, workers: usize, records: usize) -> f64 {
    vault.rotate("default").expect("rotate");
    let exe = std::env::current_exe().expect("exe");
    let kids: Vec<_> = (0..workers)
        .map(|_| {
            std::process::Command::new(&exe)
                .arg("rewrap-child")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let (mut first, mut last, mut moved) = (u128::MAX, 0u128, 0u64);
    for k in kids {
        let out = k.wait_with_output().expect("wait");
        assert!(out.status.success(), "a rewrap worker failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("WORK "))
            .expect("times");
        let f: Vec<u128> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().expect("number"))
            .collect();
        first = first.min(f[0]);
        last = last.max(f[1]);
        moved += u64::try_from(f[2]).expect("count");
    }
    assert_eq!(moved, records as u64, "every record moved exactly once");
    records as f64 / ((last - first) as f64 / 1000.0)
}

/// Raw PostgreSQL's own rate for the rewrap's write: rows/s of `conns` connections updating
/// disjoint halves of `n` rows (32-byte key, 120-byte value) in durable 1000-row batches
/// (`UPDATE … FROM unnest(…)`), in key order.
fn raw_update(url: &str, conns: usize, n: usize) -> f64 {
    let mut raw = Raw::new(url);
    raw.insert(n);
    let mut keys = std::mem::take(&mut raw.keys);
    keys.sort();
    drop(raw);
    let per = n.div_ceil(conns);
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in keys.chunks(per) {
            s.spawn(move || {
                let mut client = connect_client(url).expect("raw client");
                let stmt = client
                    .prepare(
                        "UPDATE pvbench_raw.kv AS kv SET v = t.v \
                         FROM unnest($1::bytea[], $2::bytea[]) AS t(k, v) WHERE kv.k = t.k",
                    )
                    .expect("prepare");
                for c in part.chunks(BATCH) {
                    let k: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                    let values: Vec<Vec<u8>> = c.iter().map(|_| random(120)).collect();
                    let v: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                    client.execute(&stmt, &[&k, &v]).expect("update");
                }
            });
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn rewrap() {
    let url = url();
    let vault = fresh_pg_vault(&url);
    let n = env_usize("PV_N", 100_000);
    let rounds = env_usize("PV_ROUNDS", 3);
    let ids: Vec<String> = (0..n).map(|i| format!("rec-{i:08}")).collect();
    for chunk in ids.chunks(BATCH) {
        let items: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|id| (id.as_str(), &b"a clinical note"[..]))
            .collect();
        vault
            .owner()
            .put_many("notes", &items, &PutOptions::default())
            .expect("put_many");
    }
    let (mut one, mut two, mut raw1, mut raw2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        one.push(run_rewrap(&vault, 1, n));
        two.push(run_rewrap(&vault, 2, n));
        raw1.push(raw_update(&url, 1, n));
        raw2.push(raw_update(&url, 2, n));
        eprintln!(
            "round {r}: 1 worker {:.0}/s, 2 workers {:.0}/s; raw update 1 conn {:.0}/s, 2 conns {:.0}/s",
            one[r], two[r], raw1[r], raw2[r]
        );
    }
    let (one, two, raw1, raw2) = (median(one), median(two), median(raw1), median(raw2));
    println!(
        "| rewrap of {n} records after a rotation (medians of {rounds} rounds) | records/s | × one worker | ÷ raw update, same connections |"
    );
    println!("|---|---:|---:|---:|");
    println!("| 1 worker process | {one:.0} | 1.00 | {:.2} |", one / raw1);
    println!(
        "| 2 worker processes (disjoint pages: `FOR UPDATE SKIP LOCKED`) | {two:.0} | {:.2} | {:.2} |",
        two / one,
        two / raw2
    );
    println!(
        "\nRaw PostgreSQL in the same run, the rewrap's write alone (durable 1000-row \
         `UPDATE … FROM unnest`, disjoint halves in key order): 1 connection {raw1:.0} rows/s, \
         2 connections {raw2:.0} rows/s ({:.2}×).",
        raw2 / raw1
    );
}

fn memory() {
    let url = url();
    let pg = fresh_pg_vault(&url);
    let n = env_usize("PV_N", 1_000_000);
    let mut samples = Vec::new();
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let values: Vec<String> = (done..(done + BATCH).min(n))
            .map(|i| format!("MRN{i:09}"))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        pg.owner().tokenize_many("mrn", &refs).expect("tokenize");
        done += refs.len();
        if done % (n / 10).max(BATCH) == 0 || done == n {
            samples.push((done, rss_mib()));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("| values tokenized through PostgreSQL | RSS (MiB) |");
    println!("|---:|---:|");
    for (d, rss) in &samples {
        println!("| {d} | {rss:.1} |");
    }
    println!("\n{n} new values in {secs:.1} s ({:.0}/s)", n as f64 / secs);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("bench") => bench(),
        Some("procs") => procs(),
        Some("memory") => memory(),
        Some("rewrap") => rewrap(),
        Some("rewrap-child") => rewrap_child(),
        Some("child") => child(&args[1..]),
        Some(other) => {
            eprintln!("pgscale: unknown mode {other} (bench, procs, rewrap, memory)");
            std::process::exit(2);
        }
    }
}
