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
    /// The instance's OpenPGP key, once loaded (see `openpgp::instance_key`).
    pub pgp_key: Arc<std::sync::OnceLock<embargo_mail::openpgp::InstanceKey>>,
    /// The queue of the task that commits audit entries of reads together (started on
    /// first use; see `audit::record_read`).
    pub(crate) read_log: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<PendingRead>>>,
    /// The business calendar, cached briefly (see `sla::calendar_in`).
    pub(crate) calendar: Arc<std::sync::Mutex<Option<CachedCalendar>>>,
    /// When mail intake last committed (see `jobs::Worker`: background jobs let intake
    /// go first).
    pub(crate) intake_activity: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl App {
    /// Opens an instance: creates the data directory, loads or creates the master key,
    /// connects to the database and applies migrations.
    pub async fn open(config: Config) -> Result<(Self, KeySource), AppError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::open`] with an injected clock.
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<(Self, KeySource), AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            AppError::Invalid(format!("cannot create data directory {}: {e}", config.data_dir.display()))
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The data directory holds the key and the database: owner only.
            let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let from_env = std::env::var("EMBARGO_MASTER_KEY").ok();
        let (keys, source) = Keyring::load_or_create(&config.data_dir, from_env.as_deref())
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let url = config.database_url();
        let store = Store::connect(url.expose(), Arc::new(keys)).await.map_err(|e| match e {
            embargo_store::StoreError::BadUrl => AppError::Invalid(e.to_string()),
            e => AppError::Unavailable(format!("cannot open the database: {e}")),
        })?;
        store.migrate().await.map_err(|e| AppError::Unavailable(format!("cannot migrate the database: {e}")))?;
        let transport = embargo_mail::outbound::Transport::new(config.mail.relay.expose(), &config.outbox_dir())
            .map_err(|e| AppError::Invalid(format!("mail.relay: {e}")))?;
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
            },
            source,
        ))
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

    /// Now, from the app's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The cached calendar and when it was loaded.
#[derive(Debug, Clone)]
pub(crate) struct CachedCalendar {
    pub(crate) loaded: std::time::Instant,
    pub(crate) calendar: Arc<embargo_domain::calendar::BusinessCalendar>,
}

/// A read to record, waiting for the read committer.
#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) at: embargo_domain::Timestamp,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) subject: String,
    pub(crate) details: String,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}
