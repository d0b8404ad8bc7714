//! The application context passed to every use case.

use std::sync::Arc;

use embargo_crypto::{KeySource, Keyring};
use embargo_domain::Timestamp;
use embargo_store::Store;

use crate::AppError;
use crate::config::Config;

/// Where the current time comes from. Tests inject a fixed or stepping clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Everything a use case needs: the store, the configuration and the clock.
#[derive(Debug, Clone)]
pub struct App {
    /// Storage.
    pub store: Store,
    /// Configuration, validated.
    pub config: Arc<Config>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where outgoing mail goes: the configured relay, or the outbox Maildir.
    pub transport: Arc<embargo_mail::outbound::Transport>,
    /// The instance's OpenPGP key, once loaded, with when its version was last checked (see
    /// `openpgp::instance_key`: a rotated key is taken up within seconds).
    pub(crate) pgp_key: Arc<std::sync::Mutex<Option<CachedPgpKey>>>,
    /// The queue of the task that commits audit entries of reads together (started on
    /// first use; see `audit::record_read`).
    pub(crate) read_log: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<PendingRead>>>,
    /// The business calendar with the version it was read at; every use checks the
    /// version in the database first (see `sla::calendar_in`).
    pub(crate) calendar: Arc<std::sync::Mutex<Option<CachedCalendar>>>,
    /// When mail intake last committed (see `jobs::Worker`: background jobs let intake
    /// go first).
    pub(crate) intake_activity: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// When a page read last committed its audit entry (background jobs let pages go
    /// first as they do intake, ADR 20).
    pub(crate) read_activity: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Page reads whose audit entry is waiting for its commit.
    pub(crate) reads_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// The OpenID provider, once discovered, with when (see `oidc::provider`).
    pub(crate) oidc: Arc<tokio::sync::Mutex<Option<DiscoveredProvider>>>,
    /// Near-duplicate suggestions as scored, per report, with the generation of the index
    /// they were scored at; each use checks the generation in its snapshot first (see
    /// `reports::index::similar_in`, ADR 37).
    pub(crate) similar: Arc<std::sync::Mutex<SimilarCache>>,
}

/// The OpenID provider as discovered, and when it was.
pub(crate) type DiscoveredProvider = (Arc<embargo_oidc::Provider>, std::time::Instant);

/// Whether opening an instance may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve` and `migrate`: create what is missing (the data directory, the master key,
    /// the database's tables).
    Create,
    /// Every other command: the instance must exist; nothing is created, so that a mistyped
    /// `--data-dir` or database URL is an error instead of a new, empty instance.
    Existing,
}

/// What [`App::open_instance`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Where the master key came from (generated: it is new).
    pub key: KeySource,
    /// The database held no instance, and now does.
    pub created: bool,
}

/// Why an instance could not be opened. Each variant says what the operator must do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// There is no instance where the configuration points (and the mode may not create one).
    #[error("{0}")]
    NoInstance(String),
    /// The configuration or the files do not fit together (such as a master key that does
    /// not open the database's data).
    #[error("{0}")]
    Config(String),
    /// The database cannot be used; `kind` tells whether waiting can help.
    #[error("{message}")]
    Database {
        /// The cause, in plain words.
        message: String,
        /// What kind of failure.
        kind: embargo_store::OpenFailure,
    },
    /// A temporary failure (such as a busy database): try again.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (such as a failed migration).
    #[error("{0}")]
    Failed(String),
}

impl OpenError {
    fn from_store(context: &str, err: embargo_store::StoreError) -> Self {
        match err {
            embargo_store::StoreError::Open { message, kind } => OpenError::Database { message, kind },
            embargo_store::StoreError::BadUrl => OpenError::Config(err.to_string()),
            err if err.is_transient() => OpenError::Unavailable(format!("{context}: {err}")),
            err => OpenError::Failed(format!("{context}: {err}")),
        }
    }
}

impl From<OpenError> for AppError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::NoInstance(m) | OpenError::Config(m) => AppError::Invalid(m),
            OpenError::Database { message, kind: embargo_store::OpenFailure::Unreachable }
            | OpenError::Unavailable(message) => AppError::Unavailable(message),
            OpenError::Database { message, .. } => AppError::Invalid(message),
            OpenError::Failed(m) => AppError::Internal(anyhow::anyhow!(m)),
        }
    }
}

impl App {
    /// Opens an instance, creating it when it does not exist yet: the data directory, the
    /// master key, the database's tables (see [`App::open_instance`]).
    pub async fn open(config: Config) -> Result<(Self, KeySource), AppError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::open`] with an injected clock.
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<(Self, KeySource), AppError> {
        let (app, opened) = Self::open_instance(config, clock, OpenMode::Create).await?;
        Ok((app, opened.key))
    }

    /// Opens an instance: loads the master key, connects to the database, checks that the
    /// key is the one its data is sealed under, and applies pending migrations. With
    /// [`OpenMode::Create`] it creates what is missing; a master key is created only when
    /// the database holds nothing sealed under another one, never beside a database whose
    /// key is elsewhere.
    pub async fn open_instance(
        config: Config,
        clock: Arc<dyn Clock>,
        mode: OpenMode,
    ) -> Result<(Self, Opened), OpenError> {
        let url = config.database_url();
        embargo_store::Backend::of_url(url.expose()).map_err(|e| OpenError::Config(e.to_string()))?;
        let data_dir = config.data_dir.clone();
        let key_file = data_dir.join("master.key");
        let sqlite_file = Store::sqlite_path(url.expose());
        let place = config.database_place();
        match mode {
            OpenMode::Create => {
                std::fs::create_dir_all(&data_dir).map_err(|e| {
                    OpenError::Config(format!("cannot create data directory {}: {e}", data_dir.display()))
                })?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // The data directory holds the key and the database: owner only.
                    let _ = std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700));
                }
            }
            OpenMode::Existing => {
                if let Some(file) = &sqlite_file
                    && !file.exists()
                {
                    let why = if data_dir.is_dir() || !file.starts_with(&data_dir) {
                        format!("{} does not exist", file.display())
                    } else {
                        format!("the data directory {} does not exist", data_dir.display())
                    };
                    return Err(OpenError::NoInstance(format!(
                        "no Embargo instance here: {why}. Check --data-dir (or data_dir, --database-url); \
                         `embargo serve` or `embargo migrate` creates a new instance"
                    )));
                }
            }
        }
        let from_env = std::env::var("EMBARGO_MASTER_KEY").ok();
        let found_key = Keyring::load(&data_dir, from_env.as_deref()).map_err(|e| OpenError::Config(e.to_string()))?;
        let no_key = || {
            format!(
                "there is no master key: {} does not exist and EMBARGO_MASTER_KEY is not set. Point --data-dir \
                 (or data_dir) at the directory that holds the instance's master.key, or set EMBARGO_MASTER_KEY",
                key_file.display()
            )
        };
        if mode == OpenMode::Existing && found_key.is_none() {
            return Err(OpenError::NoInstance(no_key()));
        }
        // Until a key is chosen, the store works with a throwaway one: only to read what the
        // database's data is sealed under, never to seal.
        let (keys, source) = match found_key {
            Some((keys, source)) => (Arc::new(keys), Some(source)),
            None => (Arc::new(Keyring::generate()), None),
        };
        let store = Store::connect(url.expose(), keys.clone())
            .await
            .map_err(|e| OpenError::from_store("cannot open the database", e))?;
        let checked = Self::check_instance(&store, mode, &place).await;
        let (initialised, recorded, sealed_under) = match checked {
            Ok(found) => found,
            Err(err) => {
                store.close().await;
                return Err(err);
            }
        };
        let chosen = match (source, sealed_under) {
            (Some(source), Some(found)) if !keys.knows(&found) => {
                let ours = match source {
                    KeySource::Environment => "the one in EMBARGO_MASTER_KEY".to_owned(),
                    _ => format!("the one in {}", key_file.display()),
                };
                Err(OpenError::Config(format!(
                    "{place} holds data sealed under master key {found}, but the master key in use is {} ({ours}), \
                     which cannot read it. Use the instance's own key: point --data-dir at the directory that \
                     holds its master.key, or set EMBARGO_MASTER_KEY",
                    keys.key_id()
                )))
            }
            (Some(source), _) => Ok((keys, source)),
            (None, Some(found)) => Err(OpenError::Config(format!(
                "{place} holds an instance whose data is sealed under master key {found}, and {}",
                no_key().trim_start_matches("there is ")
            ))),
            (None, None) => Keyring::load_or_create(&data_dir, None)
                .map(|(keys, source)| (Arc::new(keys), source))
                .map_err(|e| OpenError::Config(e.to_string())),
        };
        let (keys, source) = match chosen {
            Ok(chosen) => chosen,
            Err(err) => {
                store.close().await;
                return Err(err);
            }
        };
        let store = store.with_keys(keys.clone());
        let ready = async {
            store.migrate().await.map_err(|e| OpenError::from_store("cannot migrate the database", e))?;
            // After a master key rotation, derived keys (blind indexes) keep coming from the
            // instance's first key, kept sealed in the database (ADR 30).
            if initialised {
                let mut tx =
                    store.snapshot().await.map_err(|e| OpenError::from_store("cannot open the database", e))?;
                let root = embargo_store::meta::derivation_root(&mut tx)
                    .await
                    .map_err(|e| OpenError::from_store("cannot read the keys' derivation root", e))?;
                tx.rollback().await.map_err(|e| OpenError::from_store("cannot open the database", e))?;
                if let Some(root) = root {
                    let root = embargo_crypto::parse_key(&root)
                        .map_err(|_| OpenError::Failed("the keys' derivation root is not a key".into()))?;
                    keys.set_derivation_root(*root);
                }
            }
            if recorded.is_none() {
                let mut tx = store.begin().await.map_err(|e| OpenError::from_store("cannot open the database", e))?;
                embargo_store::meta::record_key_id(&mut tx, &keys.key_id())
                    .await
                    .map_err(|e| OpenError::from_store("cannot record the master key's id", e))?;
                tx.commit().await.map_err(|e| OpenError::from_store("cannot record the master key's id", e))?;
            }
            embargo_mail::outbound::Transport::new(config.mail.relay.expose(), &config.outbox_dir())
                .map_err(|e| OpenError::Config(format!("mail.relay: {e}")))
        };
        let transport = match ready.await {
            Ok(transport) => transport,
            Err(err) => {
                store.close().await;
                return Err(err);
            }
        };
        Ok((
            Self {
                store,
                config: Arc::new(config),
                clock,
                transport: Arc::new(transport),
                pgp_key: Arc::default(),
                read_log: Arc::default(),
                calendar: Arc::default(),
                intake_activity: Arc::default(),
                read_activity: Arc::default(),
                reads_in_flight: Arc::default(),
                oidc: Arc::default(),
                similar: Arc::default(),
            },
            Opened { key: source, created: !initialised },
        ))
    }

    /// Whether the database holds an instance, the master key id it records, and the id of
    /// the key its data is sealed under (recorded, or read off a sealed value).
    async fn check_instance(
        store: &Store,
        mode: OpenMode,
        place: &str,
    ) -> Result<(bool, Option<String>, Option<String>), OpenError> {
        let failed = |e| OpenError::from_store("cannot read the database", e);
        let initialised = store.is_initialised().await.map_err(failed)?;
        if !initialised {
            if mode == OpenMode::Existing {
                return Err(OpenError::NoInstance(format!(
                    "no Embargo instance here: {place} holds none (its tables are missing). Check --database-url \
                     (or database_url); `embargo serve` or `embargo migrate` creates a new instance"
                )));
            }
            return Ok((false, None, None));
        }
        let mut tx = store.snapshot().await.map_err(failed)?;
        let recorded = embargo_store::meta::recorded_key_id(&mut tx).await.map_err(failed)?;
        let sealed_under = match &recorded {
            Some(id) => Some(id.clone()),
            None => embargo_store::meta::sampled_key_id(&mut tx).await.map_err(failed)?,
        };
        tx.rollback().await.map_err(failed)?;
        Ok((true, recorded, sealed_under))
    }

    /// Whether the database answers.
    pub async fn health(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.store.backend().as_str()
    }

    /// Notes that mail intake committed just now.
    pub(crate) fn intake_committed(&self) {
        *self.intake_activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::Instant::now());
    }

    /// Whether mail intake committed within `window`.
    pub(crate) fn intake_busy(&self, window: std::time::Duration) -> bool {
        self.intake_activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < window)
    }

    /// Notes that a page read is being recorded (its audit entry committed) just now.
    pub(crate) fn read_committed(&self) {
        *self.read_activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Whether someone is waiting in the foreground: mail intake committed within `window`,
    /// a page read is waiting for its commit, or one was recorded within `window`.
    /// Background jobs go after them (see `jobs::Worker`).
    pub(crate) fn foreground_busy(&self, window: std::time::Duration) -> bool {
        self.intake_busy(window)
            || self.reads_in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0
            || self
                .read_activity
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < window)
    }

    /// The business calendar's time zone as last read by this process (the configured
    /// `sla.time_zone` before the calendar was first read). Every date and time shown to
    /// people is in this zone: pages call `sla::time_zone` first, which reads the calendar
    /// again if it changed.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        match self.calendar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            Some(cached) => cached.calendar.time_zone.clone(),
            None => self.config.time_zone(),
        }
    }

    /// Now, from the app's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Suggestions as scored for one report (before the need-to-know check, which is the
/// reader's), kept while the index they were computed from stays the same.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    /// `reports::similarity_and_generation`'s generation when they were scored.
    pub(crate) generation: i64,
    /// Candidates at or above the threshold, best first.
    pub(crate) ranked: Vec<(f64, embargo_domain::ReportId)>,
    /// What scoring them read.
    pub(crate) work: embargo_store::reports::CandidateWork,
}

/// Suggestions as last scored, per report (see `reports::index::similar_in`). Scoring reads up to 512
/// band rows and 64 signatures and compares them; kept, a report page reads one counter
/// instead, until a report is indexed or a duplicate link changes anywhere.
#[derive(Debug, Default)]
pub(crate) struct SimilarCache {
    generation: i64,
    reports: std::collections::HashMap<embargo_domain::ReportId, Scored>,
}

/// At most this many reports' suggestions are kept (about 1 KB each).
const SIMILAR_KEPT: usize = 4096;

impl SimilarCache {
    pub(crate) fn get(&self, report: embargo_domain::ReportId, generation: i64) -> Option<Scored> {
        self.reports.get(&report).filter(|scored| scored.generation == generation).cloned()
    }

    pub(crate) fn put(&mut self, report: embargo_domain::ReportId, scored: Scored) {
        // What was scored at another generation is out of date (or this one is): keep the
        // newest only.
        if scored.generation < self.generation {
            return;
        }
        if scored.generation > self.generation || self.reports.len() >= SIMILAR_KEPT {
            self.reports.clear();
            self.generation = scored.generation;
        }
        self.reports.insert(report, scored);
    }
}

/// The instance's OpenPGP key as last read, with the key version it was read at.
#[derive(Debug, Clone)]
pub(crate) struct CachedPgpKey {
    pub(crate) key: embargo_mail::openpgp::InstanceKey,
    pub(crate) version: Option<String>,
    pub(crate) checked: std::time::Instant,
}

/// The cached calendar and the calendar version (`instance_meta`) it was read at.
#[derive(Debug, Clone)]
pub(crate) struct CachedCalendar {
    pub(crate) version: Option<String>,
    pub(crate) calendar: Arc<embargo_domain::calendar::BusinessCalendar>,
}

/// Reads to record, waiting for the read committer.
#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) at: embargo_domain::Timestamp,
    pub(crate) actor: String,
    /// `(action, subject, details)` of each read.
    pub(crate) reads: Vec<(String, String, String)>,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}
