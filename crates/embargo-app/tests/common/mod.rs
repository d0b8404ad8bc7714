//! Helpers shared by the app's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use embargo_app::App;
use embargo_app::config::Config;
use embargo_app::reports::{Channel, Submission};
pub use embargo_test_support::ManualClock;
use embargo_test_support::{TestApp, TestDb};

/// A running instance on a test database with a manual clock (a [`TestApp`] that owns its
/// database).
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

/// An instance whose configuration `adjust` changes first: prefix `EMB`, Monday
/// 2026-03-02 12:00 UTC, jobs with a 2 s lease polled every 20 ms.
pub async fn instance_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Instance {
    let TestApp { app, clock, dir, .. } = TestApp::on(&db)
        .prefix("EMB")
        .starting("2026-03-02T12:00:00Z")
        .open_with(|config| {
            config.jobs.lease_seconds = 2;
            config.jobs.poll_interval_ms = 20;
            adjust(config);
        })
        .await;
    Instance { app, clock, dir, db }
}

/// A web-form submission from `email` with `title` and a short body.
pub fn submission(email: &str, title: &str) -> Submission {
    Submission::new(Channel::Web, email, title, "details")
}
