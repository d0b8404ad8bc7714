//! Helpers shared by the app's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use embargo_app::config::{Config, Secret};
use embargo_app::reports::{Channel, Submission};
use embargo_app::{App, Clock};
use embargo_domain::Timestamp;
use embargo_test_support::TestDb;

/// A clock that the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(pub AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

impl ManualClock {
    /// Moves the time forward.
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Sets the time.
    pub fn set(&self, at: &str) {
        self.0.store(at.parse::<Timestamp>().unwrap().as_millisecond(), Ordering::SeqCst);
    }
}

/// A running instance on a test database with a manual clock.
pub struct Instance {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

/// An instance with the test defaults.
pub async fn instance(db: TestDb) -> Instance {
    instance_with(db, |_| {}).await
}

/// An instance whose configuration `adjust` changes first.
pub async fn instance_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        Config { data_dir: dir.path().to_owned(), database_url: Secret::new(db.url.clone()), ..Config::default() };
    config.organisation.reference_prefix = "EMB".into();
    config.jobs.lease_seconds = 2;
    config.jobs.poll_interval_ms = 20;
    adjust(&mut config);
    // 2026-03-02T12:00:00Z.
    let clock = Arc::new(ManualClock(AtomicI64::new(1_772_452_800_000)));
    let (app, _) = App::open_with_clock(config, clock.clone()).await.unwrap();
    Instance { app, clock, dir, db }
}

/// A web-form submission from `email` with `title` and a short body.
pub fn submission(email: &str, title: &str) -> Submission {
    Submission::new(Channel::Web, email, title, "details")
}
