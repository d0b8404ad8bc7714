//! Durable background jobs: the [`Job`] trait, enqueueing, and the [`Worker`] that claims
//! and runs them. This module knows no job kind: each kind is a type implementing [`Job`]
//! beside its domain module (the report mails in `reports`, the SLA sweep in `sla_sweep`,
//! CVE publication in `cve`, ...), and `crate::registry` lists them all.
//!
//! Every external side effect (mail, CVE Services, announcements) is a job, enqueued in the
//! transaction of the change that needs it. Workers in any number of processes claim jobs
//! with a lease (see `embargo_store::jobs`), keep the lease alive with a heartbeat while a
//! job runs, and retry failures with exponential backoff until `max_attempts`, after which
//! the job is `dead` and shown to admins. A job whose worker dies is taken over by another
//! worker once its lease expires.
//!
//! Delivery is at-least-once. A job whose effect is a database write commits that write
//! and its completion in one transaction ([`Claim::complete`], fenced on the lease), so the
//! effect happens exactly once. A job with an external effect records its intent first and
//! reconciles with the receiver before any retry (see `crate::intents`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use embargo_domain::{Actor, Timestamp};
use embargo_store::Tx;
use embargo_store::jobs::{self as store_jobs, NewJob};
use jiff::SignedDuration;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub use embargo_store::jobs::JobRecord;

use crate::authz::{self, Permission};
use crate::{App, AppError};

/// A kind of background job. The implementing type is the job's payload: identifiers only,
/// never report content (it is stored as JSON in the `jobs` table, in clear).
///
/// A job does its work and completes its [`Claim`] in the transaction that holds its
/// database effect ([`Claim::complete`]), so that a worker that lost the lease rolls the
/// effect back.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Sized + 'static {
    /// The stored kind. Never rename it: queued jobs of older versions carry it.
    const KIND: &'static str;

    /// Whether due jobs of this kind are claimed together (up to a batch size) and run by
    /// one call of [`Job::run_batch`], which then completes them in one transaction.
    const BATCHED: bool = false;

    /// The job's idempotency key: a second job with the same key is not enqueued while the
    /// first exists. `None` for jobs that may repeat.
    fn key(&self) -> Option<String>;

    /// Runs one job.
    fn run(self, app: &App, claim: Claim) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Runs claimed jobs of this kind, returning one outcome per job in order. The default
    /// runs them one by one; batched kinds do the work of all in one go.
    fn run_batch(app: &App, jobs: Vec<(Self, Claim)>) -> impl Future<Output = Vec<Result<(), JobError>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(jobs.len());
            for (job, claim) in jobs {
                outcomes.push(job.run(app, claim).await);
            }
            outcomes
        }
    }

    /// Called once when a worker starts (a recurring job schedules its next run here).
    fn on_worker_start(app: &App) -> impl Future<Output = Result<(), AppError>> + Send {
        let _ = app;
        async { Ok(()) }
    }
}

/// A claimed job: the worker's lease on it, which its completion is fenced on.
#[derive(Debug, Clone)]
pub struct Claim(store_jobs::Job);

impl Claim {
    /// The job's id.
    pub fn id(&self) -> i64 {
        self.0.id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i64 {
        self.0.attempt
    }

    /// The claimed row, for store functions that record a job's own effect.
    pub(crate) fn stored(&self) -> &store_jobs::Job {
        &self.0
    }

    /// Completes the job in `tx`, the transaction holding its effect, and commits; if
    /// another worker took the job over, rolls everything back ([`JobError::LeaseLost`]).
    pub async fn complete(&self, tx: Tx, now: Timestamp) -> Result<(), JobError> {
        complete_all(tx, std::slice::from_ref(self), now).await
    }
}

/// [`Claim::complete`] for several jobs whose effects share the transaction: if any lease
/// was lost, all of it is rolled back.
pub async fn complete_all(mut tx: Tx, claims: &[Claim], now: Timestamp) -> Result<(), JobError> {
    mark_done_in(&mut tx, claims, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks jobs done in `tx` without committing, fenced on every lease. On
/// [`JobError::LeaseLost`] the caller must drop or roll back `tx`.
pub async fn mark_done_in(tx: &mut Tx, claims: &[Claim], now: Timestamp) -> Result<(), JobError> {
    let jobs: Vec<store_jobs::Job> = claims.iter().map(|c| c.0.clone()).collect();
    if store_jobs::complete_many(tx, &jobs, now).await? { Ok(()) } else { Err(JobError::LeaseLost) }
}

/// How a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed; give up now.
    #[error("{0}")]
    Permanent(String),
    /// Another worker took the job over; this attempt's effects were rolled back.
    #[error("lease lost to another worker")]
    LeaseLost,
}

impl From<AppError> for JobError {
    fn from(err: AppError) -> Self {
        JobError::Retry(err.to_string())
    }
}

impl From<embargo_store::StoreError> for JobError {
    fn from(err: embargo_store::StoreError) -> Self {
        JobError::Retry(err.to_string())
    }
}

/// A job ready to enqueue (see [`enqueue_all`]).
#[derive(Debug)]
pub(crate) struct PendingJob {
    kind: &'static str,
    payload: String,
    key: Option<String>,
    run_at: Option<Timestamp>,
}

/// `job`, due now, for [`enqueue_all`].
pub(crate) fn pending<J: Job>(job: &J) -> Result<PendingJob, AppError> {
    Ok(PendingJob {
        kind: J::KIND,
        payload: serde_json::to_string(job).map_err(|e| AppError::Internal(e.into()))?,
        key: job.key(),
        run_at: None,
    })
}

/// Enqueues `job`, due now, in the caller's transaction. Returns its id, or `None` when a
/// job with its key exists already.
pub(crate) async fn enqueue<J: Job>(tx: &mut Tx, app: &App, job: &J) -> Result<Option<i64>, AppError> {
    enqueue_at(tx, app, job, app.now()).await
}

/// Starts a job that works through stale rows in batches (each batch enqueues the next)
/// when `first`, looked up by the caller in a snapshot so that the writer is taken only
/// when there is something to do, says there is work; `what` is logged then.
pub(crate) async fn start_batches<J: Job>(app: &App, first: Option<J>, what: &str) -> Result<(), AppError> {
    let Some(first) = first else { return Ok(()) };
    tracing::info!(kind = J::KIND, "{what}");
    let mut tx = app.store.begin().await?;
    enqueue(&mut tx, app, &first).await?;
    tx.commit().await?;
    Ok(())
}

/// [`enqueue`], due at `run_at`.
pub(crate) async fn enqueue_at<J: Job>(
    tx: &mut Tx,
    app: &App,
    job: &J,
    run_at: Timestamp,
) -> Result<Option<i64>, AppError> {
    let mut pending = pending(job)?;
    pending.run_at = Some(run_at);
    let job = new_job(app, &pending, app.now());
    Ok(store_jobs::enqueue(tx, &job, app.now()).await?)
}

/// Enqueues jobs in the caller's transaction with one statement; a job whose key exists
/// already is not enqueued again.
pub(crate) async fn enqueue_all(tx: &mut Tx, app: &App, jobs: &[PendingJob]) -> Result<(), AppError> {
    let now = app.now();
    let rows: Vec<NewJob<'_>> = jobs.iter().map(|job| new_job(app, job, now)).collect();
    store_jobs::enqueue_many(tx, &rows, now).await?;
    Ok(())
}

fn new_job<'a>(app: &App, job: &'a PendingJob, now: Timestamp) -> NewJob<'a> {
    NewJob {
        kind: job.kind,
        payload: &job.payload,
        idempotency_key: job.key.as_deref(),
        run_at: job.run_at.unwrap_or(now),
        max_attempts: i64::from(app.config.jobs.max_attempts),
    }
}

type Outcomes<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), JobError>>> + Send + 'a>>;
type Started<'a> = Pin<Box<dyn Future<Output = Result<(), AppError>> + Send + 'a>>;

/// One registered kind, its type erased.
#[derive(Clone, Copy)]
struct Kind {
    batched: bool,
    run: for<'a> fn(&'a App, Vec<Claim>) -> Outcomes<'a>,
    start: for<'a> fn(&'a App) -> Started<'a>,
}

/// The job kinds a worker runs (see `crate::registry`).
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Kind>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    /// Adds job kind `J`.
    ///
    /// # Panics
    /// When a kind of the same name is registered already (a programming error).
    #[must_use]
    pub fn with<J: Job>(mut self) -> Self {
        let kind = Kind { batched: J::BATCHED, run: run_kind::<J>, start: start_kind::<J> };
        assert!(self.kinds.insert(J::KIND, kind).is_none(), "job kind {} registered twice", J::KIND);
        self
    }

    /// Every registered kind.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    fn batched(&self) -> Vec<&'static str> {
        self.kinds.iter().filter(|(_, kind)| kind.batched).map(|(name, _)| *name).collect()
    }
}

/// Parses the payloads of claimed jobs of kind `J` (a payload that does not parse fails
/// for good) and runs the others with [`Job::run_batch`].
fn run_kind<J: Job>(app: &App, claims: Vec<Claim>) -> Outcomes<'_> {
    Box::pin(async move {
        let mut outcomes: Vec<Option<Result<(), JobError>>> = claims.iter().map(|_| None).collect();
        let mut positions = Vec::with_capacity(claims.len());
        let mut batch = Vec::with_capacity(claims.len());
        for (position, claim) in claims.into_iter().enumerate() {
            match serde_json::from_str::<J>(&claim.0.payload) {
                Ok(job) => {
                    positions.push(position);
                    batch.push((job, claim));
                }
                Err(e) => outcomes[position] = Some(Err(JobError::Permanent(format!("bad payload: {e}")))),
            }
        }
        if !batch.is_empty() {
            for (position, outcome) in positions.into_iter().zip(J::run_batch(app, batch).await) {
                outcomes[position] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(JobError::Retry(format!("{} returned no outcome", J::KIND)))))
            .collect()
    })
}

fn start_kind<J: Job>(app: &App) -> Started<'_> {
    Box::pin(J::on_worker_start(app))
}

/// The most jobs claimed in one batch.
const MAX_BATCH: i64 = 128;

/// Intake counts as busy for this long after its last commit.
pub(crate) const INTAKE_BUSY_WINDOW: Duration = Duration::from_millis(20);

/// The longest a job waits for busy intake before the workers catch up regardless.
const INTAKE_FIRST_FOR: Duration = Duration::from_secs(2);

/// The most jobs claimed in one batch while intake is busy.
const MAX_BATCH_BESIDE_INTAKE: i64 = 32;

/// The longest a loop rests after a batch run beside busy intake or page reads.
const FOREGROUND_PACE_MAX: Duration = Duration::from_secs(1);

/// After a batch that was not full, a claim loop waits this long before claiming again, so
/// that jobs arriving meanwhile are run (and committed) together rather than one by one.
const BATCH_LINGER: Duration = Duration::from_millis(25);

/// Jobs, newest first, optionally of one state.
pub async fn list(
    app: &App,
    actor: &Actor,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<store_jobs::JobRecord>, AppError> {
    if let Some(state) = state
        && !["queued", "running", "done", "dead"].contains(&state)
    {
        return Err(AppError::Invalid(format!("unknown job state {state:?}; expected queued, running, done or dead")));
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageJobs).await?;
    tx.rollback().await?;
    Ok(store_jobs::list(&app.store, state, limit).await?)
}

/// Number of jobs per state (for metrics and the admin view).
pub async fn queue_counts(app: &App) -> Result<Vec<(String, i64)>, AppError> {
    Ok(store_jobs::count_by_state(&app.store).await?)
}

/// Replaces every word that contains an `@` (an address) with `[address]`.
pub fn redact_addresses(text: &str) -> String {
    text.split(' ').map(|word| if word.contains('@') { "[address]" } else { word }).collect::<Vec<_>>().join(" ")
}

/// The delay before retry `attempt` (from 1): 5 s doubling per attempt, at most one hour.
pub fn backoff(attempt: i64) -> SignedDuration {
    let exponent = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    SignedDuration::from_secs((5i64 << exponent).min(3600))
}

/// A worker: claims and runs jobs of the kinds in its [`Registry`] until told to stop.
/// (`Worker::new`, with every kind of this version, is in `crate::registry`.)
#[derive(Debug, Clone)]
pub struct Worker {
    app: App,
    id: Arc<str>,
    registry: Arc<Registry>,
    /// The kinds claimed in batches.
    batched: Arc<[&'static str]>,
    /// While intake is busy, only the holder of this permit runs jobs (see `claim_loop`).
    beside_intake: Arc<tokio::sync::Semaphore>,
}

impl Worker {
    /// A worker with a unique id (`<host>-<pid>-<random>`) running the kinds of `registry`.
    pub fn with_registry(app: App, registry: Registry) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "embargo".into());
        let id = format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>());
        let batched = registry.batched().into();
        Self {
            app,
            id: id.into(),
            registry: Arc::new(registry),
            batched,
            beside_intake: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// This worker's id, as recorded in job leases.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `concurrency` claim loops until `stop` turns true; jobs already running are
    /// finished before it returns.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        for (name, kind) in &self.registry.kinds {
            if let Err(err) = (kind.start)(&self.app).await {
                tracing::warn!(job.kind = %name, error = %err, "job kind could not start");
            }
        }
        let loops = self.app.config.jobs.concurrency.max(1);
        let mut tasks = Vec::new();
        for _ in 0..loops {
            let worker = self.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move { worker.claim_loop(stop).await }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn claim_loop(&self, mut stop: watch::Receiver<bool>) {
        let idle = Duration::from_millis(u64::from(self.app.config.jobs.poll_interval_ms));
        let mut deferred_since: Option<std::time::Instant> = None;
        let mut catching_up = false;
        while !*stop.borrow() {
            // Intake first: while mail is being committed (senders wait for their `250`)
            // or pages are being read (people wait for them, ADR 20), jobs wait too, for at
            // most `INTAKE_FIRST_FOR`; after that the loop catches up without waiting until
            // it finds the queue empty.
            if !catching_up && self.app.foreground_busy(INTAKE_BUSY_WINDOW) {
                let since = *deferred_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < INTAKE_FIRST_FOR {
                    tokio::select! {
                        _ = tokio::time::sleep(INTAKE_BUSY_WINDOW) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                catching_up = true;
            }
            deferred_since = None;
            // Beside busy intake or page reads, one loop at a time runs jobs, in smaller
            // batches: the jobs catch up without taking both cores and long write locks from
            // the senders and readers.
            let busy = self.app.foreground_busy(INTAKE_BUSY_WINDOW);
            let _permit = match busy {
                true => Some(self.beside_intake.acquire().await),
                false => None,
            };
            let limit = if busy { MAX_BATCH_BESIDE_INTAKE } else { MAX_BATCH };
            let started = std::time::Instant::now();
            let mut pause = match self.run_batch(limit).await {
                Ok(Some((claimed, true))) if (claimed as i64) < limit => BATCH_LINGER,
                Ok(Some(_)) => Duration::ZERO,
                Ok(None) => {
                    catching_up = false;
                    idle
                }
                Err(err) => {
                    tracing::warn!(worker = %self.id, error = %err, "job claim failed");
                    idle
                }
            };
            if busy {
                // Beside the foreground, the one running loop rests as long as its batch
                // took (holding the permit): background work gets at most about half of
                // one core while mail is committed or pages are read (ADR 20).
                pause = pause.max(started.elapsed().min(FOREGROUND_PACE_MAX));
            }
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    fn lease(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::from(self.app.config.jobs.lease_seconds))
    }

    fn after(&self, from: Timestamp, by: SignedDuration) -> Timestamp {
        from.checked_add(by).unwrap_or(from)
    }

    /// Claims and runs one due job, or a batch of due jobs of a batched kind. Returns
    /// whether there was any.
    pub async fn run_once(&self) -> Result<bool, AppError> {
        Ok(self.run_batch(MAX_BATCH).await?.is_some())
    }

    /// Claims job `id` whatever its due time (when it is queued, or its lease expired) and
    /// runs it now, as a claim loop would: the command that enqueued it drives it, and no
    /// worker runs it beside. Returns whether it was claimed (its outcome is the job's
    /// state); `false` when another holds its lease or it is finished.
    pub async fn run_job(&self, id: i64) -> Result<bool, AppError> {
        let now = self.app.now();
        let until = self.after(now, self.lease());
        let Some(job) = store_jobs::claim_one(&self.app.store, id, &self.id, now, until).await? else {
            return Ok(false);
        };
        tracing::info!(worker = %self.id, job.id = job.id, job.kind = %job.kind, attempt = job.attempt, "job started");
        let claim = Claim(job);
        if claim.0.attempt > claim.0.max_attempts {
            let outcome = Err(JobError::Permanent(format!("gave up after {} attempts", claim.0.max_attempts)));
            self.finish(&claim, outcome, false).await?;
            return Ok(true);
        }
        let claims = [claim];
        let outcome = self.run_with_heartbeat(&claims).await.pop().unwrap_or(Err(JobError::Retry("no outcome".into())));
        self.finish(&claims[0], outcome, false).await?;
        Ok(true)
    }

    /// [`Self::run_once`] with at most `limit` jobs in a batch; returns the number of jobs
    /// claimed and whether they were of a batched kind, or `None` when none was due.
    async fn run_batch(&self, limit: i64) -> Result<Option<(usize, bool)>, AppError> {
        let now = self.app.now();
        let until = self.after(now, self.lease());
        let jobs = store_jobs::claim_batch(&self.app.store, &self.id, now, until, &self.batched, limit).await?;
        if jobs.is_empty() {
            return Ok(None);
        }
        let claimed = (jobs.len(), self.batched.contains(&jobs[0].kind.as_str()));
        // A batch is logged once at info (each job at debug, failures as warnings).
        let batch = jobs.len() > 1;
        if batch {
            let (kind, count) = (jobs[0].kind.as_str(), jobs.len());
            tracing::info!(worker = %self.id, job.kind = %kind, jobs = count, "job batch started");
        }
        let mut runnable = Vec::with_capacity(jobs.len());
        for job in jobs {
            match batch {
                true => {
                    tracing::debug!(worker = %self.id, job.id = job.id, job.kind = %job.kind, attempt = job.attempt, "job started")
                }
                false => {
                    tracing::info!(worker = %self.id, job.id = job.id, job.kind = %job.kind, attempt = job.attempt, "job started")
                }
            }
            let claim = Claim(job);
            if claim.0.attempt > claim.0.max_attempts {
                let outcome = Err(JobError::Permanent(format!("gave up after {} attempts", claim.0.max_attempts)));
                self.finish(&claim, outcome, batch).await?;
            } else {
                runnable.push(claim);
            }
        }
        let outcomes = self.run_with_heartbeat(&runnable).await;
        let done = outcomes.iter().filter(|o| o.is_ok()).count();
        for (claim, outcome) in runnable.iter().zip(outcomes) {
            self.finish(claim, outcome, batch).await?;
        }
        if batch {
            let kind = runnable.first().map_or("", Claim::kind);
            tracing::info!(worker = %self.id, job.kind = %kind, jobs = claimed.0, done, "job batch done");
        }
        Ok(Some(claimed))
    }

    /// Logs and counts an attempt's outcome (a success at debug level inside a batch), and
    /// records a failure (to retry or give up).
    async fn finish(&self, claim: &Claim, outcome: Result<(), JobError>, in_batch: bool) -> Result<(), AppError> {
        let now = self.app.now();
        let job = &claim.0;
        match outcome {
            Ok(()) => {
                metrics::counter!("embargo_jobs_completed_total", "kind" => job.kind.clone()).increment(1);
                match in_batch {
                    true => tracing::debug!(job.id = job.id, job.kind = %job.kind, "job done"),
                    false => tracing::info!(job.id = job.id, job.kind = %job.kind, "job done"),
                }
            }
            Err(JobError::LeaseLost) => {
                metrics::counter!("embargo_jobs_lease_lost_total", "kind" => job.kind.clone()).increment(1);
                tracing::warn!(job.id = job.id, job.kind = %job.kind, "job lease lost; effects rolled back");
            }
            Err(err) => {
                let retry = match &err {
                    JobError::Retry(_) if job.attempt < job.max_attempts => Some(self.after(now, backoff(job.attempt))),
                    _ => None,
                };
                // Relay errors can quote the recipient; keep addresses out of logs and the table.
                let error = redact_addresses(&err.to_string());
                metrics::counter!("embargo_jobs_failed_total", "kind" => job.kind.clone()).increment(1);
                tracing::warn!(job.id = job.id, job.kind = %job.kind, attempt = job.attempt, retry = retry.is_some(), error = %error, "job failed");
                store_jobs::fail(&self.app.store, job, &error, retry, now).await?;
            }
        }
        Ok(())
    }

    /// Runs jobs (one, or a batch of one kind) while a separate task keeps their leases
    /// alive. (A separate task, not a `select!` arm: the heartbeat's own write must be able
    /// to wait for the jobs' open transaction without stopping them from finishing it.)
    /// Returns one outcome per job, in order.
    async fn run_with_heartbeat(&self, claims: &[Claim]) -> Vec<Result<(), JobError>> {
        let Some(first) = claims.first() else { return Vec::new() };
        let Some(kind) = self.registry.kinds.get(first.kind()).copied() else {
            let unknown = first.kind().to_owned();
            return claims.iter().map(|_| Err(JobError::Permanent(format!("unknown job kind {unknown:?}")))).collect();
        };
        let beat = (self.lease() / 3).max(SignedDuration::from_millis(100));
        let heartbeat = {
            let (worker, jobs) = (self.clone(), claims.to_vec());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(beat.unsigned_abs());
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let until = worker.after(worker.app.now(), worker.lease());
                    for Claim(job) in &jobs {
                        match store_jobs::extend_lease(&worker.app.store, job, until).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(job.id = job.id, "lease taken over while running"),
                            Err(err) => tracing::warn!(job.id = job.id, error = %err, "lease heartbeat failed"),
                        }
                    }
                }
            })
        };
        let outcomes = (kind.run)(&self.app, claims.to_vec()).await;
        heartbeat.abort();
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_redacted_from_errors() {
        assert_eq!(
            redact_addresses("550 5.1.1 <alice@example.net>: Recipient address rejected"),
            "550 5.1.1 [address] Recipient address rejected"
        );
        assert_eq!(redact_addresses("connection refused"), "connection refused");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), SignedDuration::from_secs(5));
        assert_eq!(backoff(2), SignedDuration::from_secs(10));
        assert_eq!(backoff(5), SignedDuration::from_secs(80));
        assert_eq!(backoff(30), SignedDuration::from_secs(3600));
        assert_eq!(backoff(0), SignedDuration::from_secs(5));
    }

    /// Jobs let busy intake go first, but only for a bounded time: while intake keeps
    /// committing, a due job waits, then runs anyway.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_wait_for_busy_intake_for_a_bounded_time() {
        let db = embargo_test_support::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            database_url: crate::config::Secret::new(db.url.clone()),
            ..Default::default()
        };
        let (app, _) = App::open(config).await.unwrap();
        // The longest gap between two intake commits: on a machine so loaded that this task
        // is not run for longer than `INTAKE_BUSY_WINDOW`, intake was idle for that long and
        // a job may rightly start.
        let longest_gap = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let busy = {
            let app = app.clone();
            let longest_gap = longest_gap.clone();
            tokio::spawn(async move {
                let mut last = std::time::Instant::now();
                loop {
                    app.intake_committed();
                    let gap = u64::try_from(last.elapsed().as_millis()).unwrap_or(u64::MAX);
                    longest_gap.fetch_max(gap, std::sync::atomic::Ordering::SeqCst);
                    last = std::time::Instant::now();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        // The loops cannot start waiting before this instant: a job done before
        // `INTAKE_FIRST_FOR` from here ran before its wait was up.
        let started = std::time::Instant::now();
        let (stop_tx, stop) = watch::channel(false);
        let worker = tokio::spawn(Worker::new(app.clone()).run(stop));
        crate::diagnostics::enqueue_probes(&app, &Actor::System("test"), 1, 0).await.unwrap();
        let done = || async { store_jobs::probe_counts(&app.store).await.unwrap().len() };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let early = done().await > 0 && started.elapsed() < INTAKE_FIRST_FOR;
        let gap = longest_gap.load(std::sync::atomic::Ordering::SeqCst);
        let window = u64::try_from(INTAKE_BUSY_WINDOW.as_millis()).unwrap_or(u64::MAX);
        if early && gap >= window {
            eprintln!("intake was idle for {gap} ms (the machine is loaded): an early job is allowed");
        } else {
            assert!(!early, "the job ran beside busy intake before its wait was up");
        }
        while done().await == 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "the job waited for intake without bound");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= INTAKE_FIRST_FOR.saturating_sub(Duration::from_millis(100)));
        busy.abort();
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
    }

    /// Page reads go first too (ADR 20): while pages keep recording their reads, a due job
    /// waits as it does for busy intake, then runs anyway. On both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_let_page_reads_go_first_for_a_bounded_time() {
        for db in embargo_test_support::both_backends() {
            let dir = tempfile::tempdir().unwrap();
            let config = crate::config::Config {
                data_dir: dir.path().to_owned(),
                database_url: crate::config::Secret::new(db.url.clone()),
                ..Default::default()
            };
            let (app, _) = App::open(config).await.unwrap();
            // Readers one after another, as under page load: a read is in flight from its
            // start to its commit, so the pages are busy however long a commit takes.
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        let reader = Actor::System("reader");
                        loop {
                            crate::audit::record_read(&app, &reader, "report.list", "reports", "page=1").await.unwrap();
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The loops cannot start waiting before this instant: a job done before
            // `INTAKE_FIRST_FOR` from here ran before its wait was up.
            let started = std::time::Instant::now();
            let (stop_tx, stop) = watch::channel(false);
            let worker = tokio::spawn(Worker::new(app.clone()).run(stop));
            crate::diagnostics::enqueue_probes(&app, &Actor::System("test"), 1, 0).await.unwrap();
            let done = || async { store_jobs::probe_counts(&app.store).await.unwrap().len() };
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let early = done().await > 0 && started.elapsed() < INTAKE_FIRST_FOR;
            assert!(!early, "{}: the job ran beside busy page reads before its wait was up", db.url);
            while done().await == 0 {
                assert!(started.elapsed() < Duration::from_secs(30), "the job waited for page reads without bound");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for reader in readers {
                reader.abort();
            }
            stop_tx.send(true).unwrap();
            worker.await.unwrap();
        }
    }
}
