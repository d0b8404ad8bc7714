//! Private CI: the job that runs a product's test command on a pushed commit of a fix
//! branch, in a fresh checkout outside the data directory, in a sandbox (`crate::sandbox`:
//! no network, no secrets, a time limit, a scrubbed environment), streaming the log into
//! the store while it runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use embargo_domain::{CiState, CiStep};
use embargo_store::fixes as store;
use serde::{Deserialize, Serialize};

use super::{git, repository_path};
use crate::jobs::{Claim, Job, JobError};
use crate::sandbox::{self, Isolation, Outcome, Spec};
use crate::{App, AppError};

/// How often the log of a running command is written to the store.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Runs one CI run (its id; the run row holds the report, line and commit).
#[derive(Debug, Serialize, Deserialize)]
pub struct CiJob {
    /// The run.
    pub run: i64,
}

impl Job for CiJob {
    const KIND: &'static str = "fix.ci";

    fn key(&self) -> Option<String> {
        Some(format!("fix.ci:{}", self.run))
    }

    /// A push that git applied but whose recording failed (a crash between the two) is
    /// caught up when a worker starts: every fix's heads are compared with the repository.
    async fn on_worker_start(app: &App) -> Result<(), AppError> {
        super::catch_up(app).await
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut tx = app.store.begin().await?;
        let run = store::run(&mut tx, self.run)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("CI run {} does not exist", self.run)))?;
        let repository = store::get(&mut tx, run.report)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("CI run {}: the fix repository is gone", run.id)))?;
        if run.state.is_final() {
            // Finished by an earlier attempt whose completion was lost.
            return claim.complete(tx, app.now()).await;
        }
        // A run whose commit is no longer its line's head tests nothing anyone will merge:
        // it ends at once, so that a burst of pushes costs one run per line, not one each.
        let head = store::lines(&mut tx, run.report).await?.into_iter().find(|l| l.line == run.line).map(|l| l.head);
        if head.as_deref() != Some(run.commit.as_str()) && run.state == CiState::Pending {
            store::append_log(&mut tx, run.id, b"--- not run: a newer push replaced this commit ---\n").await?;
            store::set_run_state(&mut tx, run.id, CiState::Running, Some("none"), None, app.now()).await?;
            store::set_run_state(&mut tx, run.id, CiState::Failed, None, None, app.now()).await?;
            return claim.complete(tx, app.now()).await;
        }
        let restarted = run.state == CiState::Running;
        run.state.apply(CiStep::Start).map_err(|e| JobError::Permanent(e.to_string()))?;
        let isolation = sandbox::available();
        store::set_run_state(&mut tx, run.id, CiState::Running, Some(isolation_code(isolation)), None, app.now())
            .await?;
        if restarted {
            store::append_log(&mut tx, run.id, b"\n--- the worker running this job stopped; running it again ---\n")
                .await?;
        }
        tx.commit().await?;

        let work = tempfile::Builder::new()
            .prefix("embargo-ci-")
            .tempdir()
            .map_err(|e| JobError::Retry(format!("cannot make a directory for the checkout: {e}")))?;
        let checkout = work.path().join("src");
        let path = repository_path(app, run.report);
        if let Err(e) = git::checkout(app, &path, &run.commit, &checkout).await {
            return finish(app, &claim, run.id, CiState::Failed, None, format!("\n{e}\n").as_bytes()).await;
        }

        let spec = Spec {
            workdir: checkout.clone(),
            command: repository.test_command.clone(),
            time_limit: Duration::from_secs(app.config.fixes.ci_time_limit_seconds),
            // The data directory (database, master key, repositories, outbox) and the usual
            // place of the configuration file are not the command's to read.
            hidden: [app.config.data_dir.clone(), std::path::PathBuf::from("/etc/embargo")]
                .into_iter()
                .filter(|p| p.exists())
                .collect(),
        };
        let pending: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = pending.clone();
        let flusher = {
            let app = app.clone();
            let pending = pending.clone();
            let id = run.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    let chunk = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
                    if !chunk.is_empty() {
                        let _ = append(&app, id, &chunk).await;
                    }
                }
            })
        };
        let header = format!("$ {}\n", repository.test_command);
        pending.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(header.as_bytes());
        let finished = sandbox::run(&spec, move |bytes: &[u8]| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        })
        .await;
        flusher.abort();
        let _ = flusher.await;
        let mut rest = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
        drop(work);
        let (state, exit_code) = match finished {
            Ok(done) => {
                let seconds = done.duration.as_secs_f64();
                let (state, exit_code, summary) = match done.outcome {
                    Outcome::Passed => (CiState::Passed, Some(0), format!("passed in {seconds:.1} s")),
                    Outcome::Failed { exit_code, signal } => (
                        CiState::Failed,
                        exit_code.map(i64::from),
                        match (exit_code, signal) {
                            (Some(code), _) => format!("failed: exit code {code} after {seconds:.1} s"),
                            (None, Some(signal)) => format!("failed: killed by signal {signal} after {seconds:.1} s"),
                            (None, None) => format!("failed after {seconds:.1} s"),
                        },
                    ),
                    Outcome::TimedOut => (
                        CiState::TimedOut,
                        None,
                        format!(
                            "timed out: killed at the limit of {} s (fixes.ci_time_limit_seconds)",
                            app.config.fixes.ci_time_limit_seconds
                        ),
                    ),
                };
                rest.extend_from_slice(format!("\n--- {summary} ---\n").as_bytes());
                (state, exit_code)
            }
            Err(e) => {
                rest.extend_from_slice(format!("\n--- the command could not run: {e} ---\n").as_bytes());
                (CiState::Failed, None)
            }
        };
        finish(app, &claim, run.id, state, exit_code, &rest).await
    }
}

fn isolation_code(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Bubblewrap => "bubblewrap",
        Isolation::Namespaces => "namespaces",
        Isolation::None => "none",
    }
}

async fn append(app: &App, run: i64, chunk: &[u8]) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    store::append_log(&mut tx, run, chunk).await?;
    tx.commit().await?;
    Ok(())
}

/// Records the end of a run with the rest of its log, and completes the job with it.
async fn finish(
    app: &App,
    claim: &Claim,
    run: i64,
    state: CiState,
    exit_code: Option<i64>,
    rest: &[u8],
) -> Result<(), JobError> {
    let mut tx = app.store.begin().await?;
    let current =
        store::run(&mut tx, run).await?.ok_or_else(|| JobError::Permanent(format!("CI run {run} is gone")))?;
    current.state.apply(CiStep::Finish(state)).map_err(|e| JobError::Permanent(e.to_string()))?;
    if !rest.is_empty() {
        store::append_log(&mut tx, run, rest).await?;
    }
    store::set_run_state(&mut tx, run, state, None, exit_code, app.now()).await?;
    claim.complete(tx, app.now()).await
}
