//! Test support: a throwaway PostgreSQL server, per-test databases, temporary data
//! directories, a headless browser for end-to-end tests ([`Browser`]), and the rule for tests
//! that need optional tools. With the feature `cve-fake`: [`cve_fake`], a fake CVE Services;
//! with the feature `app`: [`TestApp`], an app on a test database with a manual clock.
//!
//! Tests that need a tool that may be missing call [`require`]: without the tool the test
//! prints why it is skipped, unless `EMBARGO_TEST_STRICT=1` (set by `.ci/run`), where the
//! missing tool fails the test.
#![forbid(unsafe_code)]

#[cfg(feature = "announce-fake")]
pub mod announce_fake;
#[cfg(feature = "app")]
mod app;
pub mod browser;
#[cfg(feature = "cve-fake")]
pub mod cve_fake;
mod postgres;
mod process;

#[cfg(feature = "app")]
pub use app::{ManualClock, TestApp, TestAppBuilder};
pub use browser::Browser;
pub use postgres::{PgServer, postgres, private_postgres};
pub use process::{HttpResponse, Instance, Output, Server, http_request, run_command};
/// The WebDriver client the browser tests drive [`Browser`] with (for crates that do not
/// depend on it themselves).
pub use thirtyfour;

/// Whether missing optional tools fail tests (`EMBARGO_TEST_STRICT=1`).
pub fn strict() -> bool {
    std::env::var("EMBARGO_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Returns `Some(value)` when a tool is available; otherwise prints `skipped: <reason>` and
/// returns `None`, or panics in strict mode.
pub fn require<T>(what: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(reason) if strict() => {
            panic!("{what} is required (EMBARGO_TEST_STRICT=1) but unavailable: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {what} unavailable: {reason}");
            None
        }
    }
}

/// A folder of the shared third-party vectors (`../shared/vectors/<sub>` beside the
/// project), or `None` with a printed reason (a panic in strict mode) when it is missing.
pub fn vectors_dir(sub: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors").join(sub);
    let found = if dir.is_dir() { Ok(dir.clone()) } else { Err(format!("{} does not exist", dir.display())) };
    require(&format!("the test vectors in shared/vectors/{sub}"), found)
}

/// A database to run a test against: a fresh SQLite file in its own temporary directory,
/// or a fresh database on the shared throwaway PostgreSQL server.
#[derive(Debug)]
pub struct TestDb {
    /// The `sqlite:` or `postgres://` URL.
    pub url: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Where the database's files are on disk (the SQLite directory, or the PostgreSQL
    /// server's data directory, shared by every database on it).
    pub files: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Both backends for a store test: SQLite always, PostgreSQL when it can be started
/// (see [`require`]).
pub fn both_backends() -> Vec<TestDb> {
    let mut dbs = vec![sqlite()];
    if let Some(server) = require("PostgreSQL", postgres()) {
        dbs.push(server.fresh_database());
    }
    dbs
}

/// A fresh SQLite database in a new temporary directory.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("embargo.db").display());
    TestDb { url, backend: "sqlite", files: dir.path().to_owned(), _dir: Some(dir) }
}

/// Every file below `dir` that contains `needle`, read raw (used by the canary tests).
pub fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path);
        }
    }
    hits
}
