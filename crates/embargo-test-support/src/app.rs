//! [`TestApp`]: an `embargo_app::App` on a test database with a clock the test moves by
//! hand, in its own temporary data directory. The use-case tests (`embargo-app`) and the
//! router tests (`embargo-web`) build their instances here (feature `app`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use embargo_app::config::{Config, Secret};
use embargo_app::{App, Clock};
use embargo_domain::Timestamp;

use crate::TestDb;

/// A clock that the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.0.load(Ordering::SeqCst)).expect("a valid instant")
    }
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn at(at: Timestamp) -> Self {
        Self(AtomicI64::new(at.as_millisecond()))
    }

    /// Moves the time forward.
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Moves the time forward by milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the time (`2026-03-02T12:00:00Z`).
    pub fn set(&self, at: &str) {
        self.0.store(at.parse::<Timestamp>().expect("an RFC 3339 instant").as_millisecond(), Ordering::SeqCst);
    }
}

/// An app on a test database, with a manual clock and its own data directory.
pub struct TestApp {
    /// The app.
    pub app: App,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The configuration it was opened with.
    pub config: Config,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

/// How to open a [`TestApp`]: the reference prefix, the starting instant and any further
/// configuration.
pub struct TestAppBuilder<'a> {
    db: &'a TestDb,
    prefix: String,
    start: String,
}

impl TestApp {
    /// Starts describing an instance on `db`: the default configuration with reference
    /// prefix `EMB`, the clock at Monday 2026-03-02 12:00 UTC.
    pub fn on(db: &TestDb) -> TestAppBuilder<'_> {
        TestAppBuilder { db, prefix: "EMB".into(), start: "2026-03-02T12:00:00Z".into() }
    }

    /// Another app on the same database, configuration and clock (a second server behind
    /// the load balancer, or a second worker).
    pub async fn sibling(&self) -> App {
        let (app, _) = App::open_with_clock(self.config.clone(), self.clock.clone()).await.expect("the instance opens");
        app
    }
}

impl TestAppBuilder<'_> {
    /// The reference prefix (`EMB-2026-1`).
    pub fn prefix(self, prefix: &str) -> Self {
        Self { prefix: prefix.into(), ..self }
    }

    /// The clock's starting instant (RFC 3339).
    pub fn starting(self, start: &str) -> Self {
        Self { start: start.into(), ..self }
    }

    /// Opens it with the defaults.
    pub async fn open(self) -> TestApp {
        self.open_with(|_| {}).await
    }

    /// Opens it after `adjust` changed the configuration.
    pub async fn open_with(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            database_url: Secret::new(self.db.url.clone()),
            ..Config::default()
        };
        config.organisation.reference_prefix = self.prefix;
        adjust(&mut config);
        let clock = Arc::new(ManualClock::at(self.start.parse().expect("an RFC 3339 instant")));
        let (app, _) = App::open_with_clock(config.clone(), clock.clone()).await.expect("the instance opens");
        TestApp { app, clock, config, dir }
    }
}
