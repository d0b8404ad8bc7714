//! Embargo's storage: the only crate that contains SQL.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL: queries go through
//! sqlx's `Any` driver, written in the SQL both dialects share (`$n` placeholders,
//! `RETURNING`, `ON CONFLICT`), with values limited to integers, text and bytes. Times are
//! Unix milliseconds. The few places where the dialects differ (claiming jobs, a JSON array
//! becoming rows) pick a statement by [`Backend`]. See `docs/adr/0001-storage.md`. Writes a
//! group commit makes have multi-row forms (`*_many`), one statement per table for a whole
//! batch; see `docs/adr/0013-intake-first.md`.
//!
//! Architecture invariants:
//! * Use cases own transactions: they call [`Store::begin`], pass `&mut Tx` to the module
//!   functions here, and commit. Module functions never commit.
//! * Confidential values are sealed here, on the way in, and opened on the way out, so no
//!   caller can store plaintext by mistake. Columns ending in `_enc` are never plaintext.
//! * On SQLite every write transaction starts with `BEGIN IMMEDIATE` (one writer at a time,
//!   no lock upgrades that fail under load) on the store's one write connection, which
//!   writers get in turn (urgent ones first, [`Store::begin_urgent`]), and commits are
//!   durable on return (`journal_mode=WAL`, `synchronous=FULL`). Never open a write
//!   transaction while the same task holds one.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use embargo_crypto::{CryptoError, Keyring};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor};

pub mod advisories;
pub mod assessments;
pub mod attachments;
pub mod audit;
pub mod cve_ids;
pub mod disclosure;
pub mod fixes;
pub mod intents;
pub mod jobs;
pub mod messages;
pub mod meta;
pub mod metrics;
pub mod oidc;
pub mod ops;
pub mod partners;
pub mod passkeys;
pub mod products;
pub mod releases;
pub mod reporters;
pub mod reports;
pub mod rules;
pub mod sessions;
pub mod sla;
pub mod users;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend named by a database URL.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::BadUrl)
        }
    }

    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Storage errors. Database errors keep their cause for logs; they never contain values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("database URL must start with sqlite: or postgres://")]
    BadUrl,
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A sealed value could not be opened.
    #[error("stored value could not be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    /// A row holds a value this version does not understand.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A uniqueness rule was broken (for example an e-mail address already in use).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be opened; the message says why in plain words (never with a
    /// password) and the kind whether trying again can help.
    #[error("{message}")]
    Open {
        /// What went wrong, such as "connection refused at db.internal:5432".
        message: String,
        /// What kind of failure it is.
        kind: OpenFailure,
    },
}

/// Why a database could not be opened (see [`StoreError::Open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// Nothing answered (refused, unknown host, no answer in time): the server may be down
    /// or the address wrong.
    Unreachable,
    /// The server answered but refused us (authentication, unknown database, permissions):
    /// the configuration must change.
    Refused,
    /// The file is not a database, or is damaged.
    NotADatabase,
}

impl StoreError {
    /// Whether retrying later may succeed (busy database, lost connection).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Open { kind, .. } => *kind == OpenFailure::Unreachable,
            StoreError::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    let code = db.code().unwrap_or_default();
                    // SQLite BUSY/LOCKED, PostgreSQL serialization and connection classes.
                    matches!(code.as_ref(), "5" | "6" | "517" | "40001" | "40P01")
                        || code.starts_with("08")
                        || code.starts_with("57P")
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    fn on_unique(err: sqlx::Error, what: &'static str) -> StoreError {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            return StoreError::Conflict(what);
        }
        StoreError::Database(err)
    }
}

/// How many connections a store opens at most: `(readers, writers)`.
///
/// - SQLite: eight readers (each a thread of its own; fewer made the pages slower) and the
///   one writer SQLite allows.
/// - PostgreSQL: ten in all, as `docs/postgresql.md` counts them. Two readers per core, at
///   least two and at most six, the rest for writers. Every page read is a snapshot on a
///   reader, so this bounds how many database backends work for pages at once: on two
///   cores, ten backends working for sixteen pages at once cost more CPU per page in
///   switching between processes than four did, and pages waited longer (ADR 38). Page
///   reads queue for a reader in order instead, and writes (mail intake, jobs, the audit
///   records of reads) never wait behind them.
pub fn connections(backend: Backend) -> (u32, u32) {
    match backend {
        Backend::Sqlite => (8, 1),
        Backend::Postgres => {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            let readers = u32::try_from(2 * cores).unwrap_or(u32::MAX).clamp(2, 6);
            (readers, 10 - readers)
        }
    }
}

/// A connection pool and the keys that seal and open confidential values.
#[derive(Clone)]
pub struct Store {
    /// The readers: snapshots and single reads (see [`connections`]).
    pool: AnyPool,
    /// The connections that write (see [`connections`]). SQLite: the one connection that
    /// writes. SQLite allows one writer at a time; queueing this process's writers here, in
    /// order, replaces the busy handler's sleep-and-retry between its own connections
    /// (sleeps of up to 100 ms that would land on whoever waits, such as an SMTP sender
    /// waiting for its `250`).
    writer: Option<AnyPool>,
    /// SQLite only: who gets the write connection next (see [`WriterGate`]).
    gate: Arc<WriterGate>,
    backend: Backend,
    keys: Arc<Keyring>,
    /// Transactions begun through this store and its clones (see [`Store::transaction_counts`]).
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    snapshots: std::sync::atomic::AtomicU64,
    writes: std::sync::atomic::AtomicU64,
}

/// Transactions begun through a [`Store`] (and its clones) since it connected: what a
/// page or use case costs in round trips, for tests that pin it (ADR 32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionCounts {
    /// Read-only snapshots ([`Store::snapshot`]).
    pub snapshots: u64,
    /// Write transactions ([`Store::begin`] and its urgent forms).
    pub writes: u64,
}

impl std::ops::Sub for TransactionCounts {
    type Output = Self;

    fn sub(self, earlier: Self) -> Self {
        Self { snapshots: self.snapshots - earlier.snapshots, writes: self.writes - earlier.writes }
    }
}

/// The order in which this process's SQLite writers get the one write connection: urgent
/// writers first (mail intake, whose senders wait for their `250`), then the others in
/// arrival order. A background job thus waits while intake has a batch ready, and intake
/// waits for at most the one transaction already running.
#[derive(Debug, Default)]
struct WriterGate {
    state: std::sync::Mutex<GateState>,
    /// Whether the write connection may have been left at `synchronous = NORMAL` by an
    /// unflushed transaction ([`Store::begin_urgent_unflushed`]); the next flushed one sets
    /// it back to `FULL` first. Only the gate's holder reads or changes it.
    relaxed: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct GateState {
    held: bool,
    urgent: std::collections::VecDeque<tokio::sync::oneshot::Sender<GatePass>>,
    others: std::collections::VecDeque<tokio::sync::oneshot::Sender<GatePass>>,
}

/// The right to write, held by a [`Tx`] until it ends; dropping it hands the right on.
#[derive(Debug)]
struct GatePass(Arc<WriterGate>);

impl WriterGate {
    async fn enter(self: &Arc<Self>, urgent: bool) -> Result<GatePass, StoreError> {
        let waiting = {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !state.held {
                state.held = true;
                return Ok(GatePass(self.clone()));
            }
            let (sender, receiver) = tokio::sync::oneshot::channel();
            if urgent {
                state.urgent.push_back(sender)
            } else {
                state.others.push_back(sender)
            }
            receiver
        };
        // A pass sent to a waiter that has gone away is dropped with the channel, and its
        // drop hands the right on again. Waiting is bounded like SQLite's busy timeout.
        match tokio::time::timeout(Duration::from_secs(15), waiting).await {
            Ok(Ok(pass)) => Ok(pass),
            Ok(Err(_)) => Err(StoreError::Database(sqlx::Error::PoolClosed)),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let gate = self.0.clone();
        let mut state = gate.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(next) = state.urgent.pop_front().or_else(|| state.others.pop_front()) {
            if next.is_closed() {
                continue;
            }
            let pass = GatePass(gate.clone());
            drop(state);
            if let Err(pass) = next.send(pass) {
                // Gone between the check and the send: the returned pass hands on when it
                // is dropped here, after the lock is released.
                drop(pass);
            }
            return;
        }
        state.held = false;
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    backend: Backend,
    keys: Arc<Keyring>,
    /// Released after `inner` ends (fields drop in order).
    _gate: Option<GatePass>,
}

impl Store {
    /// The SQLite URL of `embargo.db` inside a data directory.
    pub fn sqlite_url_for(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("embargo.db").display())
    }

    /// The file of an SQLite URL (`sqlite:PATH`, `sqlite://PATH?options`); `None` for other
    /// backends and in-memory databases.
    pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
    }

    /// Connects to the database at `url`. Does not migrate.
    ///
    /// One connection is tried first, once: a database that cannot be used fails here at
    /// once with its cause ([`StoreError::Open`]: "connection refused at HOST:PORT", "not a
    /// database file") instead of the pool retrying until its timeout.
    pub async fn connect(url: &str, keys: Arc<Keyring>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options: AnyConnectOptions = url.parse().map_err(|_| StoreError::BadUrl)?;
        probe(backend, url, &options).await?;
        let (readers, writers) = connections(backend);
        let pool = Self::pool_options(backend, readers).connect_with(options.clone()).await?;
        let writer = match writers {
            0 => None,
            n => Some(Self::pool_options(backend, n).connect_with(options).await?),
        };
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoint_wal(pool.clone()));
        }
        Ok(Self { pool, writer, gate: Arc::default(), backend, keys, counts: Arc::default() })
    }

    fn pool_options(backend: Backend, connections: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            // A connection is checked when it fails, not with an extra round trip before
            // every use.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; FULL makes every
                        // commit durable before it returns (an acknowledgement on the wire
                        // means committed).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 15000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // Checkpoints run beside the writer (`checkpoint_wal`); a commit
                        // runs one itself only if the log grows past 40 MB regardless.
                        conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                        // Pages of the database file are read through a shared memory map
                        // rather than a `read` call each into a per-connection cache (which
                        // SQLite empties whenever another connection commits): at 100,000
                        // reports, an inbox or report page reads hundreds of pages (ADR 20).
                        conn.execute("PRAGMA mmap_size = 2147418112").await?;
                    }
                    Ok(())
                })
            })
    }

    /// Applies pending migrations for this backend. Safe to run concurrently on PostgreSQL
    /// (sqlx takes an advisory lock) and on SQLite (the file lock serialises).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        self.begin_writer(false, true).await
    }

    /// Starts a write transaction that goes before waiting background writers (mail intake:
    /// a sender waits for the commit). Only SQLite, with its one writer, has such a queue.
    pub async fn begin_urgent(&self) -> Result<Tx, StoreError> {
        self.begin_writer(true, true).await
    }

    /// [`Store::begin_urgent`] for records whose commit need not wait for the disk: the
    /// commit is atomic, ordered and visible to every reader when it returns, and survives
    /// this process being killed (it is in the database's log, in the operating system's
    /// cache), but a power cut or kernel crash within about a second loses it (SQLite:
    /// `synchronous = NORMAL` for this transaction, flushed by the next flushed commit or
    /// the checkpoint task within a second; PostgreSQL: `synchronous_commit = off`, flushed
    /// by its WAL writer within three `wal_writer_delay`s). A later commit is never kept
    /// without it: both logs are written in order, so what a power cut loses is a tail of
    /// unflushed commits, never one before a flushed one. Only for page reads' audit
    /// entries (ADR 32); never for a change someone was told is done.
    pub async fn begin_urgent_unflushed(&self) -> Result<Tx, StoreError> {
        self.begin_writer(true, false).await
    }

    /// [`Store::begin`], unflushed as [`Store::begin_urgent_unflushed`]: for derived data
    /// written together with the completion of the job that computed it (the search index),
    /// which a power cut can only send back to be computed again (ADR 32).
    pub async fn begin_unflushed(&self) -> Result<Tx, StoreError> {
        self.begin_writer(false, false).await
    }

    async fn begin_writer(&self, urgent: bool, flushed: bool) -> Result<Tx, StoreError> {
        use std::sync::atomic::Ordering;
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        let (inner, gate) = match self.backend {
            Backend::Sqlite => {
                let gate = self.gate.enter(urgent).await?;
                let mut conn = self.writer.as_ref().unwrap_or(&self.pool).acquire().await?;
                // SQLite changes the level only outside a transaction: each write
                // transaction sets the level it needs before it begins, when the last one
                // may have left another.
                // The flag is set before the level is lowered and cleared only after it is
                // raised: whatever is interrupted, a flushed transaction never skips raising it.
                if !flushed {
                    if !self.gate.relaxed.swap(true, Ordering::SeqCst) {
                        (&mut *conn).execute("PRAGMA synchronous = NORMAL").await?;
                    }
                } else if self.gate.relaxed.load(Ordering::SeqCst) {
                    (&mut *conn).execute("PRAGMA synchronous = FULL").await?;
                    self.gate.relaxed.store(false, Ordering::SeqCst);
                }
                let begin = sqlx::SqlSafeStr::into_sql_str("BEGIN IMMEDIATE");
                (sqlx::Transaction::begin(conn, Some(begin)).await?, Some(gate))
            }
            Backend::Postgres => {
                let writers = self.writer.as_ref().unwrap_or(&self.pool);
                // One round trip either way: the setting goes with the BEGIN.
                let inner = if flushed {
                    writers.begin().await?
                } else {
                    writers.begin_with("BEGIN; SET LOCAL synchronous_commit = off").await?
                };
                (inner, None)
            }
        };
        Ok(Tx { inner, backend: self.backend, keys: self.keys.clone(), _gate: gate })
    }

    /// Starts a read-only transaction that sees one consistent snapshot.
    pub async fn snapshot(&self) -> Result<Tx, StoreError> {
        self.counts.snapshots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inner = match self.backend {
            // A deferred transaction in WAL mode keeps the snapshot of its first read.
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
        };
        Ok(Tx { inner, backend: self.backend, keys: self.keys.clone(), _gate: None })
    }

    /// The same store, sealing and opening with other keys (the pools are shared).
    pub fn with_keys(&self, keys: Arc<Keyring>) -> Self {
        Self { keys, ..self.clone() }
    }

    /// Whether the database holds Embargo's tables (an instance was created in it).
    pub async fn is_initialised(&self) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'instance_meta'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'instance_meta'"
            }
        };
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        Ok(count > 0)
    }

    /// The transactions begun through this store and its clones so far.
    pub fn transaction_counts(&self) -> TransactionCounts {
        use std::sync::atomic::Ordering;
        TransactionCounts {
            snapshots: self.counts.snapshots.load(Ordering::Relaxed),
            writes: self.counts.writes.load(Ordering::Relaxed),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for single-statement reads outside a transaction.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The keyring (for callers that need a blind index).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// A cheap query proving the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

impl Tx {
    /// Commits. Returns only once the commit is durable (except for a transaction begun
    /// with [`Store::begin_urgent_unflushed`] or [`Store::begin_unflushed`]).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await?;
        Ok(())
    }

    /// Rolls back explicitly.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.inner.rollback().await?;
        Ok(())
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this transaction's commit waits until it is on disk, as the database says
    /// (SQLite: `synchronous` FULL or EXTRA; PostgreSQL: `synchronous_commit` not off).
    /// Only a transaction from [`Store::begin_urgent_unflushed`] or
    /// [`Store::begin_unflushed`] answers no.
    pub async fn flushes_on_commit(&mut self) -> Result<bool, StoreError> {
        use sqlx::Row;
        Ok(match self.backend {
            Backend::Sqlite => {
                let level: i64 = sqlx::query("PRAGMA synchronous").fetch_one(self.conn()).await?.try_get(0)?;
                level >= 2
            }
            Backend::Postgres => {
                let setting: String = sqlx::query("SELECT current_setting('synchronous_commit')")
                    .fetch_one(self.conn())
                    .await?
                    .try_get(0)?;
                setting != "off"
            }
        })
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }

    fn seal(&self, value: &str, aad: &str) -> Vec<u8> {
        self.keys.seal_str(value, aad)
    }

    fn open(&self, sealed: &[u8], aad: &str) -> Result<String, StoreError> {
        Ok(self.keys.open_str(sealed, aad)?)
    }
}

/// Opens one connection, once, and asks the database one question, so that a database
/// that cannot be used is named with its cause.
async fn probe(backend: Backend, url: &str, options: &AnyConnectOptions) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    const WAIT: Duration = Duration::from_secs(10);
    let target = match backend {
        Backend::Sqlite => Target::Sqlite(Store::sqlite_path(url).map(|p| p.display().to_string())),
        Backend::Postgres => Target::Postgres(postgres_address(url)),
    };
    let silent = |what: &str| StoreError::Open {
        message: match &target {
            Target::Postgres(address) => format!("cannot connect to PostgreSQL: {what} at {address}"),
            sqlite => format!("cannot open {sqlite}: {what}"),
        },
        kind: OpenFailure::Unreachable,
    };
    let mut conn = match tokio::time::timeout(WAIT, options.connect()).await {
        Ok(conn) => conn.map_err(|err| describe_open_error(&target, err))?,
        Err(_) => return Err(silent(&format!("no answer within {} s", WAIT.as_secs()))),
    };
    let question = match backend {
        // Reading the schema reads the file's header: a file that is not a database fails here.
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master",
        Backend::Postgres => "SELECT 1",
    };
    let answered = tokio::time::timeout(WAIT, conn.execute(question)).await;
    let _ = sqlx::Connection::close(conn).await;
    match answered {
        Ok(result) => result.map(drop).map_err(|err| describe_open_error(&target, err)),
        Err(_) => Err(silent(&format!("no answer within {} s", WAIT.as_secs()))),
    }
}

/// The database being opened, for messages.
enum Target {
    /// The SQLite file, when there is one.
    Sqlite(Option<String>),
    /// `HOST:PORT` of the PostgreSQL server.
    Postgres(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(Some(path)) => write!(f, "the SQLite database {path}"),
            Target::Sqlite(None) => f.write_str("the SQLite database"),
            Target::Postgres(address) => write!(f, "PostgreSQL at {address}"),
        }
    }
}

/// `HOST:PORT` of a PostgreSQL URL, for messages (never the user name or password).
fn postgres_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host_port = if host_port.is_empty() { "localhost" } else { host_port };
    // A port is there when the last colon is not inside an IPv6 literal's brackets.
    if host_port.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']')) {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// Words for a failure to open a database, and whether it can pass.
fn describe_open_error(target: &Target, err: sqlx::Error) -> StoreError {
    use std::io::ErrorKind;
    let open = |kind, message: String| StoreError::Open { message, kind };
    match (&err, target) {
        (sqlx::Error::Io(io), _) => {
            let what = match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                ErrorKind::TimedOut => "connection timed out".to_owned(),
                ErrorKind::NotFound => "no such host or socket".to_owned(),
                _ => io.to_string(),
            };
            let message = match target {
                Target::Postgres(address) => format!("cannot connect to PostgreSQL: {what} at {address}"),
                sqlite => format!("cannot open {sqlite}: {what}"),
            };
            open(OpenFailure::Unreachable, message)
        }
        (sqlx::Error::Tls(tls), _) => open(OpenFailure::Refused, format!("cannot connect to {target}: TLS: {tls}")),
        (sqlx::Error::Configuration(cfg), _) => open(OpenFailure::Refused, format!("database URL: {cfg}")),
        (sqlx::Error::Database(db), Target::Sqlite(_)) => {
            // The primary result code is the low byte of an extended one.
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).map_or(0, |c| c & 0xff);
            match code {
                // SQLITE_CORRUPT, SQLITE_NOTADB.
                11 | 26 => open(
                    OpenFailure::NotADatabase,
                    format!("{target} is not a database file, or is damaged ({})", db.message()),
                ),
                _ => open(OpenFailure::Refused, format!("cannot open {target}: {}", db.message())),
            }
        }
        (sqlx::Error::Database(db), Target::Postgres(_)) => {
            let code = db.code().unwrap_or_default();
            // Class 08: connection exceptions; 57P03: the server is starting up.
            if code.starts_with("08") || code == "57P03" {
                open(OpenFailure::Unreachable, format!("cannot connect to {target}: {}", db.message()))
            } else {
                // 28xxx: authentication; 3D000: no such database; 42501: privileges.
                open(OpenFailure::Refused, format!("{target} refused the connection: {}", db.message()))
            }
        }
        _ => StoreError::Database(err),
    }
}

/// SQLite: copies the write-ahead log into the database every second, from a reader
/// connection, beside the writer. Left to SQLite, the commit that fills the log to 4 MB
/// copies it and syncs the database file itself, and whoever waits for that commit (an
/// SMTP sender) waits for the copy too. Ends when the pool is closed.
async fn checkpoint_wal(pool: AnyPool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
}

/// The `VALUES` list of a multi-row statement: `rows` copies of `row`, a tuple written with
/// placeholders `$1..=$columns`, renumbered for each copy (in the third copy `$1` becomes
/// `$(2 * columns + 1)`). Multi-row statements keep a batch's writes to one round trip
/// per table, which is what makes group commit cheap (see `embargo_app::intake`).
fn values_list(row: &str, columns: usize, rows: usize) -> String {
    let mut out = String::with_capacity((row.len() + 8) * rows);
    for copy in 0..rows {
        if copy > 0 {
            out.push_str(", ");
        }
        let mut chars = row.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '$' {
                let mut number = 0usize;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                    number = number * 10 + digit as usize;
                    chars.next();
                }
                out.push_str(&(number + copy * columns).to_string());
            }
        }
    }
    out
}

/// A statement whose text depends on a batch's size, built from [`values_list`] or
/// [`placeholder_list`] and constants, never from input. It is kept prepared like the
/// fixed statements: measured, re-preparing each time cost PostgreSQL more than the cache
/// churn of a few dozen sizes.
fn bulk<'q>(sql: String) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

/// `$from, $from+1, ...`: `count` placeholders for an `IN (...)` list.
fn placeholder_list(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Converts a stored millisecond time.
fn ts(ms: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_millisecond(ms).map_err(|_| StoreError::Corrupt(format!("time {ms}")))
}

/// Converts a time for storage.
fn ms(at: jiff::Timestamp) -> i64 {
    at.as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_addresses_name_host_and_port_only() {
        assert_eq!(postgres_address("postgres://embargo:secret@db.internal/embargo"), "db.internal:5432");
        assert_eq!(postgres_address("postgres://u:p@127.0.0.1:5999/x?sslmode=disable"), "127.0.0.1:5999");
        assert_eq!(postgres_address("postgresql://[::1]/x"), "[::1]:5432");
        assert_eq!(postgres_address("postgresql://u@[::1]:6000/x"), "[::1]:6000");
        assert_eq!(postgres_address("postgres:///x"), "localhost:5432");
    }

    #[test]
    fn sqlite_paths_come_out_of_urls() {
        assert_eq!(Store::sqlite_path("sqlite:///d/embargo.db?mode=rwc"), Some("/d/embargo.db".into()));
        assert_eq!(Store::sqlite_path("sqlite:rel.db"), Some("rel.db".into()));
        assert_eq!(Store::sqlite_path("sqlite::memory:"), None);
        assert_eq!(Store::sqlite_path("postgres://h/x"), None);
    }

    #[test]
    fn values_list_renumbers_each_row() {
        assert_eq!(values_list("($1, 'x', $2, $2)", 2, 3), "($1, 'x', $2, $2), ($3, 'x', $4, $4), ($5, 'x', $6, $6)");
        assert_eq!(values_list("($1, $12)", 12, 2), "($1, $12), ($13, $24)");
        assert_eq!(placeholder_list(3, 3), "$3, $4, $5");
    }
}
