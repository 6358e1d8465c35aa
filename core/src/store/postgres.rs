//! A [`Store`] on PostgreSQL, shared by many processes and hosts (feature `postgres`).
//!
//! One table holds every space: `phivault_kv (space SMALLINT, key BYTEA, value BYTEA,
//! PRIMARY KEY (space, key))`, where `space` is the space's one-byte prefix (the same byte the
//! sled store puts in front of its keys). The library creates and migrates the schema itself,
//! under an advisory lock, and records its version in `phivault_schema_version`; a database
//! written by a newer phivault is refused.
//!
//! What PostgreSQL sees is what sled would: ciphertext, non-secret metadata, and keys that are
//! names or keyed hashes. No PHI is ever in a key, a value or an error message.
//!
//! # Guarantees across processes
//! - [`Store::write`] is one transaction: all of a batch or nothing.
//! - Compare-and-swap is a conditional statement decided by PostgreSQL's row locks and the
//!   primary key, not by a read-then-write race: `INSERT ... ON CONFLICT DO NOTHING` for
//!   "absent", `UPDATE/DELETE ... WHERE value = expected` otherwise (under READ COMMITTED an
//!   `UPDATE` that waited for a concurrent writer re-checks its condition on the new row).
//! - [`Store::update_unsynced`] (the audit log's append) locks the row (`SELECT ... FOR
//!   UPDATE`, or a placeholder insert when it is absent), computes the writes from its value
//!   and applies them in the same transaction: concurrent appenders queue on the row.
//! - [`Store::write_unsynced_if`] locks the guard row (`SELECT ... FOR UPDATE`, or a
//!   placeholder insert when it must be absent) and applies the batch in the same transaction.
//! - Scans are pages in key order (`bytea` compares bytewise, as sled does).
//!
//! # Durability
//! Durable calls commit with `synchronous_commit = on`. The `*_unsynced` calls commit with
//! `synchronous_commit = off` (visible to every session at once, on disk within the WAL
//! writer's delay); [`Store::sync`] then commits a small durable write, which flushes the WAL up
//! to and including every earlier asynchronous commit — of any process.
//!
//! # Security notes
//! TLS follows libpq's `sslmode` and `sslrootcert` URL parameters ([`super::pg_connect`]):
//! `sslmode=verify-full` with the server's CA in `sslrootcert` is the setting for PHI; the
//! default, `prefer`, as libpq's, neither insists on TLS nor checks the server. The URL may
//! carry a password, or it comes from the password file; phivault never prints it
//! ([`PgStore`]'s `Debug` shows host and database only, and connection errors are scrubbed of
//! it).

use super::pg_connect::ConnectSpec;
use super::{CasItem, Entry, PageOutcome, Rewrite, Space, Store, Update, WriteOp};
use crate::error::StoreError;
use postgres::{Client, Statement};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i32 = 3;

/// Key of the advisory lock held while creating or migrating the schema.
const SCHEMA_LOCK: i64 = 0x7068_6976_6175_6c74; // "phivault"

/// Migrations: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE IF NOT EXISTS phivault_kv (
        space SMALLINT NOT NULL,
        key   BYTEA    NOT NULL,
        value BYTEA    NOT NULL,
        PRIMARY KEY (space, key)
    );
    CREATE TABLE IF NOT EXISTS phivault_sync (
        backend INTEGER PRIMARY KEY,
        n       BIGINT  NOT NULL
    );
",
    "
    -- The commit counter: every durable commit draws the next value; a restored older
    -- database has a smaller one (Store::commit_counter, anchor.rs).
    CREATE SEQUENCE IF NOT EXISTS phivault_commit_seq;
",
    "
    -- Room in every page for the next version of its rows: the audit head and the durable
    -- markers are updated by every batch of every process, and an update that fits in its
    -- page (HOT) adds no index entry and is pruned on the next visit, where a full page made
    -- each one a new index entry that every later lookup of the row walked past.
    ALTER TABLE phivault_kv SET (fillfactor = 90);
    ALTER TABLE phivault_sync SET (fillfactor = 50);
",
];

/// Retries of a transaction that PostgreSQL aborted for a deadlock or serialization failure.
const MAX_TX_RETRIES: usize = 16;

/// Options of a [`PgStore`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PgOptions {
    /// Most connections the pool opens (default 8; the URL parameter `pool_size` overrides
    /// it). Each thread of a batch call or of the application holds one while it talks to
    /// the server.
    pub max_connections: usize,
    /// How long to wait for a connection to the server (default 10 s).
    pub connect_timeout: Duration,
    /// A PostgreSQL schema of its own for the vault's tables (created if absent; letters,
    /// digits and `_` only): several vaults in one database. Default: the connection's
    /// `search_path` (normally `public`).
    pub schema: Option<&'static str>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

impl PgOptions {
    /// Keeps the vault's tables in their own PostgreSQL schema (the `schema` field).
    #[must_use]
    pub fn schema(mut self, name: &'static str) -> Self {
        self.schema = Some(name);
        self
    }

    /// Sets the most connections the pool opens.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
}

/// Whether a URL names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A vault location as it may be printed: a directory as it is, a database URL without its
/// user information and query (which may hold a password).
pub fn display_location(location: &str) -> String {
    if !is_postgres_url(location) {
        return location.to_owned();
    }
    // Cut as the connection code cuts it: the user information ends at the first `@`.
    match super::pg_connect::split_url(location) {
        Ok((scheme, _, rest)) => {
            let host = rest.split_once('?').map_or(rest, |(h, _)| h);
            format!("{scheme}{host}")
        }
        Err(_) => "postgres database (the URL is not valid)".to_owned(),
    }
}

struct Stmts {
    get: Statement,
    get_many: Statement,
    insert_absent_many: Statement,
    upsert_many: Statement,
    upsert_many_counted: Statement,
    delete_many: Statement,
    cas_many: Statement,
    upsert: Statement,
    upsert_counted: Statement,
    delete: Statement,
    insert_new: Statement,
    update_if: Statement,
    delete_if: Statement,
    lock_if: Statement,
    get_for_update: Statement,
    claim_skip: Statement,
    count_upto: Statement,
    count_from: Statement,
    scan_incl: Statement,
    scan_excl: Statement,
    scan_incl_upper: Statement,
    scan_excl_upper: Statement,
    sync: Statement,
    counter: Statement,
}

/// One pooled connection with its prepared statements and commit mode.
struct Conn {
    client: Client,
    stmts: Stmts,
    /// `synchronous_commit = off` on this session.
    async_commit: bool,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// The PostgreSQL store: a small pool of synchronous connections.
pub struct PgStore {
    spec: ConnectSpec,
    opts: PgOptions,
    pool: Mutex<PoolState>,
    freed: Condvar,
    /// Transactions retried after a deadlock or serialization failure (for tests and tuning).
    retries: AtomicUsize,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("hosts", &self.spec.config.get_hosts())
            .field("dbname", &self.spec.config.get_dbname())
            .field("sslmode", &self.spec.mode)
            .finish_non_exhaustive()
    }
}

fn pg_err(e: postgres::Error) -> StoreError {
    // A server error's message never carries row values (those are in its DETAIL, which is
    // left out); other errors are connection and protocol failures.
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!(
            "postgres: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Backend(format!("postgres: {e}")),
    }
}

fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// The server ended the session before it ran the statement: a restart or shutdown
/// (`admin_shutdown`, `crash_shutdown`, `cannot_connect_now`). Nothing of the call was applied.
fn not_run(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
    )
}

fn sp(space: Space) -> i16 {
    i16::from(space.prefix())
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut up = prefix.to_vec();
    while let Some(last) = up.pop() {
        if last < 0xff {
            up.push(last + 1);
            return Some(up);
        }
    }
    None
}

fn key_of(op: &WriteOp) -> (Space, &[u8]) {
    match op {
        WriteOp::Put { space, key, .. } | WriteOp::Delete { space, key } => (*space, key),
    }
}

impl Conn {
    fn connect(spec: &ConnectSpec, schema: Option<&str>) -> Result<Conn, postgres::Error> {
        let mut client = spec.connect()?;
        migrate(&mut client, schema)?;
        const SCAN: &str = "SELECT key, value FROM phivault_kv WHERE space = $1 AND key";
        const PREFIX: &str = "AND substring(key from 1 for $3) = $4";
        // Batches are one statement each: arrays in, `unnest` or `= ANY` on the server.
        const UNNEST3: &str = "FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) AS t(s, k, v)";
        const UPSERT: &str = "ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value";
        let stmts = Stmts {
            get: client.prepare("SELECT value FROM phivault_kv WHERE space = $1 AND key = $2")?,
            // Each found value with its key's position in the array (no key sent back).
            get_many: client.prepare(
                "SELECT t.i, kv.value FROM unnest($2::bytea[]) WITH ORDINALITY AS t(k, i) \
                 JOIN phivault_kv AS kv ON kv.space = $1 AND kv.key = t.k",
            )?,
            insert_absent_many: client.prepare(
                "INSERT INTO phivault_kv (space, key, value) \
                 SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS t(k, v) \
                 ON CONFLICT (space, key) DO NOTHING RETURNING key",
            )?,
            upsert_many: client.prepare(&format!(
                "INSERT INTO phivault_kv (space, key, value) SELECT s, k, v {UNNEST3} {UPSERT}"
            ))?,
            // The same, also drawing the next commit counter once (no extra round trip; a
            // CTE with a volatile function is evaluated once).
            upsert_many_counted: client.prepare(&format!(
                "WITH c AS (SELECT nextval('phivault_commit_seq') AS n) \
                 INSERT INTO phivault_kv (space, key, value) \
                 SELECT s, k, v {UNNEST3} CROSS JOIN c {UPSERT}"
            ))?,
            delete_many: client.prepare(
                "DELETE FROM phivault_kv AS kv \
                 USING unnest($1::smallint[], $2::bytea[]) AS t(s, k) \
                 WHERE kv.space = t.s AND kv.key = t.k",
            )?,
            cas_many: client.prepare(
                "UPDATE phivault_kv AS kv SET value = t.n \
                 FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) AS t(k, e, n) \
                 WHERE kv.space = $1 AND kv.key = t.k AND kv.value = t.e",
            )?,
            upsert: client.prepare(
                "INSERT INTO phivault_kv (space, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            // The same, also drawing the next commit counter (no extra round trip).
            upsert_counted: client.prepare(
                "INSERT INTO phivault_kv (space, key, value) \
                 SELECT $1, $2, $3 FROM (SELECT nextval('phivault_commit_seq')) AS c \
                 ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            delete: client.prepare("DELETE FROM phivault_kv WHERE space = $1 AND key = $2")?,
            insert_new: client.prepare(
                "INSERT INTO phivault_kv (space, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (space, key) DO NOTHING",
            )?,
            update_if: client.prepare(
                "UPDATE phivault_kv SET value = $4 WHERE space = $1 AND key = $2 AND value = $3",
            )?,
            delete_if: client
                .prepare("DELETE FROM phivault_kv WHERE space = $1 AND key = $2 AND value = $3")?,
            lock_if: client.prepare(
                "SELECT 1 FROM phivault_kv WHERE space = $1 AND key = $2 AND value = $3 \
                 FOR UPDATE",
            )?,
            get_for_update: client.prepare(
                "SELECT value FROM phivault_kv WHERE space = $1 AND key = $2 FOR UPDATE",
            )?,
            // A page of a cooperative rewrite (rewrap), locked for its transaction.
            claim_skip: client.prepare(
                "SELECT key, value FROM phivault_kv WHERE space = $1 AND key >= $2 \
                 ORDER BY key LIMIT $3 FOR UPDATE SKIP LOCKED",
            )?,
            count_upto: client.prepare(
                "SELECT count(*) FROM phivault_kv WHERE space = $1 AND key >= $2 AND key <= $3",
            )?,
            count_from: client.prepare(
                "SELECT count(*) FROM (SELECT 1 FROM phivault_kv WHERE space = $1 AND key >= $2 \
                 LIMIT $3) AS t",
            )?,
            scan_incl: client.prepare(&format!("{SCAN} >= $2 {PREFIX} ORDER BY key LIMIT $5"))?,
            scan_excl: client.prepare(&format!("{SCAN} > $2 {PREFIX} ORDER BY key LIMIT $5"))?,
            scan_incl_upper: client.prepare(&format!(
                "{SCAN} >= $2 AND key < $6 {PREFIX} ORDER BY key LIMIT $5"
            ))?,
            scan_excl_upper: client.prepare(&format!(
                "{SCAN} > $2 AND key < $6 {PREFIX} ORDER BY key LIMIT $5"
            ))?,
            // A durable marker that also advances the commit counter.
            sync: client.prepare(
                "INSERT INTO phivault_sync (backend, n) \
                 VALUES (pg_backend_pid(), nextval('phivault_commit_seq')) \
                 ON CONFLICT (backend) DO UPDATE SET n = EXCLUDED.n",
            )?,
            counter: client.prepare(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM phivault_commit_seq",
            )?,
        };
        Ok(Conn {
            client,
            stmts,
            async_commit: false,
        })
    }

    fn set_async(&mut self, on: bool) -> Result<(), postgres::Error> {
        if self.async_commit != on {
            self.client.batch_execute(if on {
                "SET synchronous_commit TO off"
            } else {
                "SET synchronous_commit TO on"
            })?;
            self.async_commit = on;
        }
        Ok(())
    }
}

/// Creates the schema or brings it to [`SCHEMA_VERSION`], under an advisory lock so that
/// processes starting together do not race.
fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    if let Some(schema) = schema {
        // Checked by PgStore::connect_with: a plain identifier, safe to quote. The SET is
        // the session's from the commit on.
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
        ))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS phivault_schema_version (version INTEGER NOT NULL)",
    )?;
    let current: i32 =
        match tx.query_opt("SELECT max(version) FROM phivault_schema_version", &[])? {
            Some(row) => row.get::<_, Option<i32>>(0).unwrap_or(0),
            None => 0,
        };
    if current > SCHEMA_VERSION {
        // Refused by the caller (see PgStore::connect); nothing is changed here.
        tx.rollback()?;
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        tx.batch_execute(sql)?;
        let to = from as i32 + 1;
        tx.execute("DELETE FROM phivault_schema_version", &[])?;
        tx.execute(
            "INSERT INTO phivault_schema_version (version) VALUES ($1)",
            &[&to],
        )?;
    }
    tx.commit()
}

/// Why a connection could not be leased.
enum LeaseError {
    /// The pool's lock, or a new connection that could not be opened: the call's error.
    Final(StoreError),
    /// A pooled connection failed its session setting (it is dropped).
    Session(postgres::Error),
}

thread_local! {
    /// Leases this thread holds now (of any store). A thread that holds one and asks for
    /// another (a cache fill or a backup's pre-image read inside a transaction) gets a
    /// connection beyond the pool's size rather than waiting for itself.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A connection borrowed from the pool; returned on drop unless it broke.
struct Lease<'a> {
    store: &'a PgStore,
    conn: Option<Conn>,
}

impl Lease<'_> {
    fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        self.conn
            .as_mut()
            .ok_or(StoreError::Corrupt("pooled connection missing"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
        if let Ok(mut pool) = self.store.pool.lock() {
            match self.conn.take() {
                // A connection beyond the pool's size (a nested lease) is closed on return.
                Some(c)
                    if !c.client.is_closed() && pool.open <= self.store.opts.max_connections =>
                {
                    pool.idle.push(c)
                }
                _ => pool.open = pool.open.saturating_sub(1),
            }
            self.store.freed.notify_one();
        }
    }
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://user@host:port/db`, any libpq-style
    /// URL the `postgres` crate accepts) with the default options, creating or migrating the
    /// schema.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::connect_with(url, PgOptions::default())
    }

    /// [`PgStore::connect`] with options.
    pub fn connect_with(url: &str, opts: PgOptions) -> Result<PgStore, StoreError> {
        let mut spec = ConnectSpec::parse(url)?;
        if let Some(schema) = opts.schema
            && (schema.is_empty()
                || schema.len() > 63
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(StoreError::Backend(
                "postgres: a schema name must be 1 to 63 letters, digits or '_'".into(),
            ));
        }
        if spec.config.get_application_name().is_none() {
            spec.config.application_name("phivault");
        }
        if spec.config.get_connect_timeout().is_none() {
            spec.config.connect_timeout(opts.connect_timeout);
        }
        let max_connections = spec.pool_size.unwrap_or(opts.max_connections).max(1);
        let store = PgStore {
            spec,
            opts: PgOptions {
                max_connections,
                ..opts
            },
            pool: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
            retries: AtomicUsize::new(0),
        };
        // Connect once now: a wrong URL or a newer schema fails here, not at first use.
        let mut lease = store.lease(false)?;
        let version: i32 = lease
            .conn()?
            .client
            .query_one("SELECT max(version) FROM phivault_schema_version", &[])
            .map_err(pg_err)?
            .get::<_, Option<i32>>(0)
            .unwrap_or(0);
        if version != SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "postgres: schema version {version} is not the supported version {SCHEMA_VERSION}"
            )));
        }
        drop(lease);
        Ok(store)
    }

    /// A failed connection's error: the chain of causes (a TLS failure says why the
    /// certificate was refused), never the password.
    fn connect_err(&self, e: postgres::Error) -> StoreError {
        if e.as_db_error().is_some() {
            return pg_err(e);
        }
        let mut msg = format!("postgres: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !msg.contains(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            source = s.source();
        }
        StoreError::Backend(self.spec.scrub(msg))
    }

    /// How many transactions were retried after a deadlock or serialization failure.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    fn lease(&self, async_commit: bool) -> Result<Lease<'_>, StoreError> {
        match self.lease_once(async_commit) {
            Ok(lease) => Ok(lease),
            Err(LeaseError::Final(e)) => Err(e),
            // An idle connection the server ended (the session setting is idempotent): the
            // others are as old; start afresh.
            Err(LeaseError::Session(e)) if not_run(&e) || e.is_closed() => {
                self.drop_idle();
                self.lease_once(async_commit).map_err(|e| match e {
                    LeaseError::Final(e) => e,
                    LeaseError::Session(e) => pg_err(e),
                })
            }
            Err(LeaseError::Session(e)) => Err(pg_err(e)),
        }
    }

    /// One try of [`PgStore::lease`].
    fn lease_once(&self, async_commit: bool) -> Result<Lease<'_>, LeaseError> {
        let poisoned = || LeaseError::Final(StoreError::Corrupt("connection pool lock poisoned"));
        let mut pool = self.pool.lock().map_err(|_| poisoned())?;
        let conn = loop {
            if let Some(i) = pool
                .idle
                .iter()
                .position(|c| c.async_commit == async_commit)
            {
                break Some(pool.idle.swap_remove(i));
            }
            if let Some(c) = pool.idle.pop() {
                break Some(c);
            }
            if pool.open < self.opts.max_connections || HELD.with(std::cell::Cell::get) > 0 {
                pool.open += 1;
                break None;
            }
            pool = self.freed.wait(pool).map_err(|_| poisoned())?;
        };
        drop(pool);
        let mut conn = match conn {
            Some(c) => c,
            None => match Conn::connect(&self.spec, self.opts.schema) {
                Ok(c) => c,
                Err(e) => {
                    if let Ok(mut pool) = self.pool.lock() {
                        pool.open = pool.open.saturating_sub(1);
                    }
                    self.freed.notify_one();
                    return Err(LeaseError::Final(self.connect_err(e)));
                }
            },
        };
        let set = conn.set_async(async_commit);
        HELD.with(|h| h.set(h.get() + 1));
        let mut lease = Lease {
            store: self,
            conn: Some(conn),
        };
        if let Err(e) = set {
            lease.conn = None;
            return Err(LeaseError::Session(e));
        }
        Ok(lease)
    }

    /// Runs `f` on a pooled connection. A connection that the server ended before it ran
    /// the call (a restart or shutdown terminated the session: SQLSTATE 57P01–57P03) is
    /// dropped with every other idle one, and the call runs once more on a fresh connection;
    /// for a read (`idempotent`), also one that closed under it. Any other failure is the
    /// call's error: a write that may or may not have reached the server is never run twice
    /// (each write is one transaction: all of it or nothing).
    fn run<T>(
        &self,
        async_commit: bool,
        idempotent: bool,
        mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut reconnected = false;
        loop {
            let mut lease = self.lease(async_commit)?;
            let result = f(lease.conn()?);
            match result {
                Ok(out) => return Ok(out),
                Err(e) if !reconnected && (not_run(&e) || (idempotent && e.is_closed())) => {
                    lease.conn = None;
                    drop(lease);
                    self.drop_idle();
                    reconnected = true;
                }
                Err(e) => return Err(pg_err(e)),
            }
        }
    }

    /// Closes the idle connections (after one was found dead: the others are as old).
    fn drop_idle(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            let n = pool.idle.len();
            pool.idle.clear();
            pool.open = pool.open.saturating_sub(n);
        }
        self.freed.notify_all();
    }

    /// Runs `f` in a transaction, retrying after deadlocks and serialization failures.
    fn in_tx<T>(
        &self,
        async_commit: bool,
        mut f: impl FnMut(&mut postgres::Transaction<'_>, &Stmts) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.run(async_commit, false, |conn| {
            let mut attempt = 0;
            loop {
                let mut tx = conn.client.transaction()?;
                let result = f(&mut tx, &conn.stmts).and_then(|out| tx.commit().map(|()| out));
                match result {
                    Err(e) if retryable(&e) && attempt < MAX_TX_RETRIES => {
                        attempt += 1;
                        self.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    other => return other,
                }
            }
        })
    }

    /// Applies `ops` in one transaction: as two array statements (puts, then deletes) when
    /// their keys are distinct, else one statement per op in order. `counted`: the puts also
    /// draw the next commit counter (returns whether they did).
    fn apply(
        tx: &mut postgres::Transaction<'_>,
        s: &Stmts,
        ops: &[WriteOp],
        counted: bool,
    ) -> Result<bool, postgres::Error> {
        let mut keys: Vec<(Space, &[u8])> = ops.iter().map(key_of).collect();
        keys.sort_unstable_by(|a, b| (a.0.prefix(), a.1).cmp(&(b.0.prefix(), b.1)));
        let distinct = keys.windows(2).all(|w| w[0] != w[1]);
        if !distinct || ops.len() == 1 {
            let mut drew = false;
            for op in ops {
                match op {
                    WriteOp::Put { space, key, value } => {
                        let stmt = if counted && !drew {
                            &s.upsert_counted
                        } else {
                            &s.upsert
                        };
                        tx.execute(stmt, &[&sp(*space), key, value])?;
                        drew |= counted;
                    }
                    WriteOp::Delete { space, key } => {
                        tx.execute(&s.delete, &[&sp(*space), key])?;
                    }
                }
            }
            return Ok(drew);
        }
        // Rows in key order, so that concurrent batches lock them in one order.
        let mut sorted: Vec<&WriteOp> = ops.iter().collect();
        sorted.sort_unstable_by(|a, b| {
            let (ka, kb) = (key_of(a), key_of(b));
            (ka.0.prefix(), ka.1).cmp(&(kb.0.prefix(), kb.1))
        });
        let (mut ps, mut pk, mut pv) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ds, mut dk) = (Vec::new(), Vec::new());
        for op in sorted {
            match op {
                WriteOp::Put { space, key, value } => {
                    ps.push(sp(*space));
                    pk.push(key.as_slice());
                    pv.push(value.as_slice());
                }
                WriteOp::Delete { space, key } => {
                    ds.push(sp(*space));
                    dk.push(key.as_slice());
                }
            }
        }
        let drew = counted && !pk.is_empty();
        if !pk.is_empty() {
            let stmt = if counted {
                &s.upsert_many_counted
            } else {
                &s.upsert_many
            };
            tx.execute(stmt, &[&ps, &pk, &pv])?;
        }
        if !dk.is_empty() {
            tx.execute(&s.delete_many, &[&ds, &dk])?;
        }
        Ok(drew)
    }

    fn write_mode(&self, ops: Vec<WriteOp>, async_commit: bool) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.in_tx(async_commit, |tx, s| {
            // A durable commit draws the next commit counter: with its puts, or with the
            // durable marker when it has none.
            let drew = Self::apply(tx, s, &ops, !async_commit)?;
            if !async_commit && !drew {
                tx.execute(&s.sync, &[])?;
            }
            Ok(())
        })
    }

    fn cas_mode(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
        async_commit: bool,
    ) -> Result<bool, StoreError> {
        if let (None, None) = (expected, &new) {
            return Ok(self.get(space, key)?.is_none());
        }
        let n = self.run(async_commit, false, |conn| {
            let (c, s) = (&mut conn.client, &conn.stmts);
            match (expected, &new) {
                (None, Some(v)) => c.execute(&s.insert_new, &[&sp(space), &key, v]),
                (Some(e), Some(v)) => c.execute(&s.update_if, &[&sp(space), &key, &e, v]),
                (Some(e), None) => c.execute(&s.delete_if, &[&sp(space), &key, &e]),
                (None, None) => Ok(0),
            }
        })?;
        if n == 1 && !async_commit {
            self.durable_marker()?;
        }
        Ok(n == 1)
    }

    fn durable_marker(&self) -> Result<(), StoreError> {
        // Idempotent: a second durable marker is harmless.
        self.run(false, true, |conn| {
            conn.client.execute(&conn.stmts.sync, &[])
        })?;
        Ok(())
    }
}

impl Store for PgStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.run(true, true, |conn| {
            conn.client.query_opt(&conn.stmts.get, &[&sp(space), &key])
        })?;
        Ok(row.map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn get_many(&self, space: Space, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match keys {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.get(space, one)?]),
            _ => {}
        }
        let rows = self.run(true, true, |conn| {
            conn.client
                .query(&conn.stmts.get_many, &[&sp(space), &keys])
        })?;
        let mut out = vec![None; keys.len()];
        for row in rows {
            let i: i64 = row.get(0);
            let slot = usize::try_from(i - 1)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or(StoreError::Corrupt("postgres: a row for no key asked"))?;
            *slot = Some(row.get::<_, Vec<u8>>(1));
        }
        Ok(out)
    }

    fn insert_absent_many_unsynced(
        &self,
        space: Space,
        items: &[(&[u8], &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&[u8]> = items.iter().map(|(k, _)| *k).collect();
        let values: Vec<&[u8]> = items.iter().map(|(_, v)| *v).collect();
        let rows = self.run(true, false, |conn| {
            conn.client.query(
                &conn.stmts.insert_absent_many,
                &[&sp(space), &keys, &values],
            )
        })?;
        let mut inserted: HashSet<Vec<u8>> =
            rows.into_iter().map(|r| r.get::<_, Vec<u8>>(0)).collect();
        // Each inserted key is reported once, for its first item.
        Ok(keys.iter().map(|k| inserted.remove(*k)).collect())
    }

    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.write_mode(ops, false)
    }

    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.cas_mode(space, key, expected, new, false)
    }

    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.write_mode(ops, true)
    }

    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.cas_mode(space, key, expected, new, true)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.durable_marker()
    }

    fn compare_and_swap_many(
        &self,
        space: Space,
        mut items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        // One transaction, rows locked in key order (as every caller scans), so that two
        // workers over the same rows wait for each other instead of deadlocking.
        items.sort_by(|a, b| a.key.cmp(&b.key));
        let distinct = items.windows(2).all(|w| w[0].key != w[1].key);
        let keys: Vec<&[u8]> = items.iter().map(|i| i.key.as_slice()).collect();
        let expected: Vec<&[u8]> = items.iter().map(|i| i.expected.as_slice()).collect();
        let new: Vec<&[u8]> = items.iter().map(|i| i.new.as_slice()).collect();
        self.in_tx(false, |tx, s| {
            let swapped = if distinct {
                tx.execute(&s.cas_many, &[&sp(space), &keys, &expected, &new])?
            } else {
                let mut n = 0;
                for it in &items {
                    n += tx.execute(&s.update_if, &[&sp(space), &it.key, &it.expected, &it.new])?;
                }
                n
            };
            tx.execute(&s.sync, &[])?;
            Ok(swapped as usize)
        })
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (lower, exclusive) = match after {
            Some(a) if a >= prefix => (a, true),
            _ => (prefix, false),
        };
        let upper = prefix_upper_bound(prefix);
        let prefix_len = i32::try_from(prefix.len())
            .map_err(|_| StoreError::Backend("postgres: scan prefix too long".into()))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.run(true, true, |conn| {
            let s = &conn.stmts;
            match (&upper, exclusive) {
                (None, false) => conn.client.query(
                    &s.scan_incl,
                    &[&sp(space), &lower, &prefix_len, &prefix, &limit],
                ),
                (None, true) => conn.client.query(
                    &s.scan_excl,
                    &[&sp(space), &lower, &prefix_len, &prefix, &limit],
                ),
                (Some(up), false) => conn.client.query(
                    &s.scan_incl_upper,
                    &[&sp(space), &lower, &prefix_len, &prefix, &limit, up],
                ),
                (Some(up), true) => conn.client.query(
                    &s.scan_excl_upper,
                    &[&sp(space), &lower, &prefix_len, &prefix, &limit, up],
                ),
            }
        })?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.durable_marker()
    }

    fn commit_counter(&self) -> Result<Option<u64>, StoreError> {
        let n: i64 = self
            .run(true, true, |conn| {
                conn.client.query_one(&conn.stmts.counter, &[])
            })?
            .get(0);
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    fn write_unsynced_if(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<WriteOp>,
    ) -> Result<bool, StoreError> {
        let touched = ops.iter().any(|op| key_of(op) == (space, key));
        self.in_tx(true, |tx, s| {
            let held = match expected {
                // Locks the row if it still has the expected value (re-checked after waiting
                // for a concurrent writer).
                Some(e) => tx.query_opt(&s.lock_if, &[&sp(space), &key, &e])?.is_some(),
                // Claims the absent key with a placeholder: a concurrent claimer waits on the
                // primary key, then finds it taken.
                None => tx.execute(&s.insert_new, &[&sp(space), &key, &Vec::<u8>::new()])? == 1,
            };
            if !held {
                return Ok(false);
            }
            Self::apply(tx, s, &ops, false)?;
            if expected.is_none() && !touched {
                tx.execute(&s.delete, &[&sp(space), &key])?;
            }
            Ok(true)
        })
        // A guard that did not hold commits an empty transaction: harmless.
    }

    fn rewrite_page(
        &self,
        space: Space,
        after: Option<&[u8]>,
        limit: usize,
        skip_locked: bool,
        f: &mut Rewrite<'_>,
    ) -> Result<PageOutcome, StoreError> {
        if !skip_locked {
            // Waits only for rows it swaps (the compare-and-swap's row locks): a pass that
            // mostly finds rows already done reads them without locking.
            return super::rewrite_by_scan(self, space, after, limit, f);
        }
        // Keys compare bytewise: the least key after `after` is `after` followed by a zero.
        let lower = after.map_or_else(Vec::new, |a| [a, &[0]].concat());
        let n = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut failed = None;
        let outcome = self.in_tx(false, |tx, s| {
            failed = None;
            let page: Vec<Entry> = tx
                .query(&s.claim_skip, &[&sp(space), &lower, &n])?
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect();
            let full = page.len() == limit.max(1);
            let held = i64::try_from(page.len()).unwrap_or(i64::MAX);
            // Rows another worker held: more rows in the page's range (or, for a last page,
            // after `after` at all) than the page holds.
            let skipped = match (&page.last(), full) {
                (Some((last, _)), true) => {
                    let all: i64 = tx
                        .query_one(&s.count_upto, &[&sp(space), &lower, last])?
                        .get(0);
                    all > held
                }
                _ => {
                    let bound = held.saturating_add(1);
                    let all: i64 = tx
                        .query_one(&s.count_from, &[&sp(space), &lower, &bound])?
                        .get(0);
                    all > held
                }
            };
            let items = match f(&page) {
                Ok(items) => items,
                Err(e) => {
                    failed = Some(e);
                    return Ok(PageOutcome::default());
                }
            };
            let mut items = items;
            items.sort_by(|a, b| a.key.cmp(&b.key));
            let keys: Vec<&[u8]> = items.iter().map(|i| i.key.as_slice()).collect();
            let expected: Vec<&[u8]> = items.iter().map(|i| i.expected.as_slice()).collect();
            let new: Vec<&[u8]> = items.iter().map(|i| i.new.as_slice()).collect();
            let swapped = if items.is_empty() {
                0
            } else {
                tx.execute(&s.cas_many, &[&sp(space), &keys, &expected, &new])?
            };
            tx.execute(&s.sync, &[])?;
            Ok(PageOutcome {
                last: page.last().map(|(k, _)| k.clone()),
                full,
                swapped: usize::try_from(swapped).unwrap_or(usize::MAX),
                skipped,
            })
        })?;
        failed.map_or(Ok(outcome), Err)
    }

    fn update_unsynced(
        &self,
        space: Space,
        key: &[u8],
        f: &mut Update<'_>,
    ) -> Result<(), StoreError> {
        let mut failed = None;
        self.in_tx(true, |tx, s| {
            failed = None;
            let lock = |tx: &mut postgres::Transaction<'_>| {
                tx.query_opt(&s.get_for_update, &[&sp(space), &key])
                    .map(|row| row.map(|r| r.get::<_, Vec<u8>>(0)))
            };
            // The row locked, or the absent key claimed with a placeholder (a concurrent
            // claimer waits on the primary key, then finds the row and locks it).
            let (current, placeholder) = match lock(tx)? {
                Some(v) => (Some(v), false),
                None if tx.execute(&s.insert_new, &[&sp(space), &key, &Vec::<u8>::new()])? == 1 => {
                    (None, true)
                }
                None => (lock(tx)?, false),
            };
            let ops = match f(current.as_deref()) {
                Ok(ops) => ops,
                Err(e) => {
                    failed = Some(e);
                    Vec::new()
                }
            };
            Self::apply(tx, s, &ops, false)?;
            if placeholder && !ops.iter().any(|op| key_of(op) == (space, key)) {
                tx.execute(&s.delete, &[&sp(space), &key])?;
            }
            Ok(())
        })?;
        // `f` failed: nothing was applied (the placeholder, if any, removed in the same
        // transaction).
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_upper_bound(&[0xff, 0xff]), None);
    }

    #[test]
    fn locations_print_without_credentials() {
        assert_eq!(display_location("./vault"), "./vault");
        assert_eq!(
            display_location("postgres://u:secret@h:5/db"),
            "postgres://h:5/db"
        );
        assert!(!display_location("postgresql://a:b@c/d").contains("b@"));
        assert_eq!(
            display_location("postgres://h/db?password=secret"),
            "postgres://h/db"
        );
        // A password holding reserved characters unescaped: nothing of it is shown.
        for url in [
            "postgres://u:pa?ss@h/db?sslmode=require",
            "postgres://u:pa/ss@h/db",
            "postgres://u:pa#ss@h/db",
        ] {
            let shown = display_location(url);
            assert!(!shown.contains("pa") && !shown.contains("u:"), "{shown}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_postgres_url("postgres://u@h:1/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("./vault"));
        assert!(PgStore::connect("not a url").is_err());
    }
}
