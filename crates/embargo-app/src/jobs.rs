//! Durable background jobs: the registry of job kinds and the worker that runs them.
//!
//! Every external side effect (mail, git pushes, announcements) is a job, enqueued in the
//! transaction of the change that needs it. Workers in any number of processes claim jobs
//! with a lease (see `embargo_store::jobs`), keep the lease alive with a heartbeat while a
//! job runs, and retry failures with exponential backoff until `max_attempts`, after which
//! the job is `dead` and shown to admins. A job whose worker dies is taken over by another
//! worker once its lease expires.
//!
//! Delivery is at-least-once. A job whose effect is a database write commits that write
//! and its completion in one transaction, fenced on the lease, so the effect happens
//! exactly once. Jobs with external effects use idempotency keys at the receiving end.

use std::sync::Arc;
use std::time::Duration;

use embargo_domain::{Actor, Timestamp};
use embargo_store::jobs::{self as store_jobs, Job, NewJob};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use embargo_store::jobs::JobRecord;

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// Job kinds a worker claims and completes in batches (one transaction for many jobs).
const BATCHED: &[&str] = &[ACKNOWLEDGEMENT, INDEX];

/// The most jobs claimed in one batch.
const MAX_BATCH: i64 = 128;

/// Intake counts as busy for this long after its last commit.
const INTAKE_BUSY_WINDOW: Duration = Duration::from_millis(20);

/// The longest a job waits for busy intake before the workers catch up regardless.
const INTAKE_FIRST_FOR: Duration = Duration::from_secs(2);

/// The most jobs claimed in one batch while intake is busy.
const MAX_BATCH_BESIDE_INTAKE: i64 = 32;

/// Index entries are written this many reports (or messages) per write transaction, so
/// that a transaction holds the writer for a few milliseconds, not a whole batch's worth
/// (see `Worker::index`).
const INDEX_WRITE_CHUNK: usize = 16;

/// After a batch that was not full, a claim loop waits this long before claiming again, so
/// that jobs arriving meanwhile are run (and committed) together rather than one by one.
const BATCH_LINGER: Duration = Duration::from_millis(25);

/// The diagnostic probe: holds for a while, then records one row. Used by
/// `embargo jobs probe` to check that workers run and that no job runs twice.
pub const PROBE: &str = "diagnostic.probe";

/// Sends the reporter the acknowledgement of a new report.
pub const ACKNOWLEDGEMENT: &str = "mail.acknowledgement";

/// Sends the reporter of a report closed as not-security the policy's redirect to the public
/// issue tracker.
pub const NOT_SECURITY: &str = "mail.not_security";

/// Sends a message the team wrote to the reporter (a reply or a state-change notice), as
/// stored on the report's thread.
pub const MESSAGE: &str = "mail.message";

/// Mails a team member an SLA warning or escalation about a report (no report content).
pub const TEAM_ALERT: &str = "mail.team_alert";

/// Runs the SLA sweep (see [`crate::sla::sweep`]) and schedules the next one a minute later.
pub const SLA_SWEEP: &str = "sla.sweep";

/// How often the SLA sweep runs.
const SLA_SWEEP_EVERY_SECONDS: i64 = 60;
/// Indexes a new report or an inbound message: the blind search terms and, for a report,
/// the near-duplicate signature and its band keys. The search index is eventually
/// consistent: a report is found by search once this job has run (milliseconds later on a
/// running server).
pub const INDEX: &str = "report.index";

/// Stands for the reporter's status link in a stored message; replaced by the real link
/// only in the mail itself, so the link never sits readable on the thread.
pub const STATUS_LINK_PLACEHOLDER: &str = "[[status-link]]";

/// What the thread shows where a mail carried the status link.
const STATUS_LINK_REDACTED: &str = "[private link, sent only to the reporter]";

/// Every job kind this version knows.
pub const KINDS: &[&str] = &[PROBE, ACKNOWLEDGEMENT, NOT_SECURITY, MESSAGE, TEAM_ALERT, SLA_SWEEP, INDEX];

#[derive(Debug, Serialize, Deserialize)]
struct TeamAlertPayload {
    report: i64,
    user: i64,
    clock: String,
    kind: String,
    due_ms: i64,
}

/// Enqueues an SLA alert mail to one team member, once per (report, clock, kind, deadline,
/// member).
pub(crate) async fn enqueue_team_alert(
    tx: &mut embargo_store::Tx,
    app: &App,
    report: embargo_domain::ReportId,
    user: embargo_domain::UserId,
    clock: &str,
    kind: &str,
    due: Timestamp,
) -> Result<(), AppError> {
    let due_ms = due.as_millisecond();
    let payload = serde_json::to_string(&TeamAlertPayload {
        report: report.0,
        user: user.0,
        clock: clock.to_owned(),
        kind: kind.to_owned(),
        due_ms,
    })
    .map_err(|e| AppError::Internal(e.into()))?;
    let key = format!("sla:{}:{clock}:{kind}:{due_ms}:{}", report.0, user.0);
    let now = app.now();
    let job = NewJob {
        kind: TEAM_ALERT,
        payload: &payload,
        idempotency_key: Some(&key),
        run_at: now,
        max_attempts: i64::from(app.config.jobs.max_attempts),
    };
    store_jobs::enqueue(tx, &job, now).await?;
    Ok(())
}

/// Schedules the SLA sweep for the minute after `after` (idempotent per minute, so any
/// number of workers schedule it once).
pub async fn schedule_sla_sweep(app: &App, after: Timestamp) -> Result<(), AppError> {
    let slot = after.as_second().div_euclid(SLA_SWEEP_EVERY_SECONDS) + 1;
    let run_at = Timestamp::from_second(slot * SLA_SWEEP_EVERY_SECONDS).unwrap_or(after);
    let key = format!("sla.sweep:{slot}");
    let mut tx = app.store.begin().await?;
    let job = NewJob {
        kind: SLA_SWEEP,
        payload: "{}",
        idempotency_key: Some(&key),
        run_at,
        max_attempts: i64::from(app.config.jobs.max_attempts),
    };
    store_jobs::enqueue(&mut tx, &job, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Identifiers only: the words are read from the sealed report and message when the job
/// runs.
#[derive(Debug, Serialize, Deserialize)]
struct IndexPayload {
    report: i64,
    message: i64,
    /// Whether the report itself is new: index its title and reporter and compute its
    /// signature, not only the message.
    new_report: bool,
}

/// Enqueues the indexing of report `report` (when `new_report`) or of its inbound message
/// `message`, in the caller's transaction; once per (report, message).
pub(crate) async fn enqueue_index(
    tx: &mut embargo_store::Tx,
    app: &App,
    report: embargo_domain::ReportId,
    message: i64,
    new_report: bool,
) -> Result<(), AppError> {
    enqueue_all(tx, app, &[index_job(report, message, new_report)?]).await
}

/// The job of [`enqueue_index`], for [`enqueue_all`].
pub(crate) fn index_job(
    report: embargo_domain::ReportId,
    message: i64,
    new_report: bool,
) -> Result<PendingJob, AppError> {
    Ok(PendingJob {
        kind: INDEX,
        payload: serde_json::to_string(&IndexPayload { report: report.0, message, new_report })
            .map_err(|e| AppError::Internal(e.into()))?,
        key: format!("index:{}:{message}", report.0),
    })
}

/// A job ready to enqueue (see [`enqueue_all`]): due now, once per key.
#[derive(Debug)]
pub(crate) struct PendingJob {
    kind: &'static str,
    payload: String,
    key: String,
}

/// Enqueues jobs, due now, in the caller's transaction with one statement; a job whose key
/// exists already is not enqueued again.
pub(crate) async fn enqueue_all(tx: &mut embargo_store::Tx, app: &App, jobs: &[PendingJob]) -> Result<(), AppError> {
    let now = app.now();
    let max_attempts = i64::from(app.config.jobs.max_attempts);
    let rows: Vec<NewJob<'_>> = jobs
        .iter()
        .map(|job| NewJob {
            kind: job.kind,
            payload: &job.payload,
            idempotency_key: Some(&job.key),
            run_at: now,
            max_attempts,
        })
        .collect();
    store_jobs::enqueue_many(tx, &rows, now).await?;
    Ok(())
}

/// Identifiers only: the text is read from the sealed message when the job runs.
#[derive(Debug, Serialize, Deserialize)]
struct MessagePayload {
    report: i64,
    message: i64,
    message_id: String,
}

/// Enqueues the sending of stored outbound message `message` in the caller's transaction.
pub(crate) async fn enqueue_message(
    tx: &mut embargo_store::Tx,
    app: &App,
    report: embargo_domain::ReportId,
    message: i64,
    message_id: &str,
) -> Result<(), AppError> {
    let payload =
        serde_json::to_string(&MessagePayload { report: report.0, message, message_id: message_id.to_owned() })
            .map_err(|e| AppError::Internal(e.into()))?;
    let now = app.now();
    let key = format!("message:{message}");
    store_jobs::enqueue(
        tx,
        &NewJob {
            kind: MESSAGE,
            payload: &payload,
            idempotency_key: Some(&key),
            run_at: now,
            max_attempts: i64::from(app.config.jobs.max_attempts),
        },
        now,
    )
    .await?;
    Ok(())
}

/// A fresh, unguessable Message-ID for mail Embargo sends.
pub(crate) fn new_message_id(app: &App, tag: &str) -> String {
    format!("embargo.{tag}.{}@{}", &crate::tokens::secret("")[..32], app.config.mail_hostname())
}

#[derive(Debug, Serialize, Deserialize)]
struct ProbePayload {
    hold_ms: u64,
}

/// Identifiers only: the reporter's Message-ID is read from the sealed original message
/// when the job runs, so that nothing the reporter wrote sits in the jobs table in clear.
#[derive(Debug, Serialize, Deserialize)]
struct ReportMailPayload {
    report: i64,
    message: Option<i64>,
}

/// A mail to a report's reporter (`kind` is [`ACKNOWLEDGEMENT`] or [`NOT_SECURITY`]), for
/// [`enqueue_all`]. `message` is the reporter's message it answers; `key` makes it happen
/// once.
pub(crate) fn report_mail_job(
    kind: &'static str,
    report: embargo_domain::ReportId,
    message: Option<i64>,
    key: &str,
) -> Result<PendingJob, AppError> {
    Ok(PendingJob {
        kind,
        payload: serde_json::to_string(&ReportMailPayload { report: report.0, message })
            .map_err(|e| AppError::Internal(e.into()))?,
        key: key.to_owned(),
    })
}

/// A report mail (acknowledgement or not-security notice), composed from the report and
/// ready to send.
struct ReportMail {
    label: String,
    report: embargo_domain::ReportId,
    reference: embargo_domain::ReferenceId,
    reporter: embargo_store::reporters::ReporterRecord,
    reply_address: String,
    subject: String,
    body: String,
    /// The body as kept on the thread (without the status link).
    thread_body: String,
    message_id: String,
    in_reply_to: Option<String>,
    auto_reply: bool,
}

impl ReportMail {
    fn mail(&self) -> ReporterMail<'_> {
        ReporterMail {
            reporter: &self.reporter,
            reply_to: self.reply_address.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            message_id: self.message_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            auto_reply: self.auto_reply,
            label: self.label.clone(),
        }
    }
}

/// A mail to a report's reporter, ready to compose.
struct ReporterMail<'a> {
    reporter: &'a embargo_store::reporters::ReporterRecord,
    reply_to: String,
    subject: String,
    body: String,
    message_id: String,
    in_reply_to: Option<String>,
    auto_reply: bool,
    /// Names the outbox file / relay attempt.
    label: String,
}

/// Composes (encrypting when the reporter's key is known, refusing when encryption is
/// required and no key is known) and sends a mail to a reporter; returns the transport's
/// receipt.
async fn send_to_reporter(app: &App, mail: ReporterMail<'_>) -> Result<String, JobError> {
    let outbound = embargo_mail::outbound::OutboundMail {
        from: from_address(app),
        to: mail.reporter.email.clone(),
        reply_to: mail.reply_to,
        subject: mail.subject,
        body: mail.body,
        message_id: mail.message_id,
        in_reply_to: mail.in_reply_to,
        auto_reply: mail.auto_reply,
        encrypt_to: mail.reporter.openpgp_key.clone(),
    };
    if outbound.encrypt_to.is_none() && app.config.requires_encryption(&mail.reporter.email) {
        return Err(JobError::Permanent(
            "mail.require_encryption_for covers this recipient, but no OpenPGP key is known; import one".into(),
        ));
    }
    send_mail(app, &mail.label, &outbound).await
}

/// `<Organisation> security <security@...>`, the sender of everything Embargo mails.
fn from_address(app: &App) -> String {
    let organisation = &app.config.organisation;
    format!("{} security <{}>", organisation.name.replace(['<', '>', '"', ','], ""), organisation.security_address)
}

/// Composes and sends one mail; returns the transport's receipt. A refused message is a
/// permanent failure, a transport failure is retried.
async fn send_mail(
    app: &App,
    label: &str,
    outbound: &embargo_mail::outbound::OutboundMail,
) -> Result<String, JobError> {
    let raw = embargo_mail::outbound::compose(outbound).map_err(|e| JobError::Permanent(e.to_string()))?;
    let sender = &app.config.organisation.security_address;
    app.transport.send(label, sender, &outbound.to, &raw).await.map_err(|e| match e {
        embargo_mail::outbound::SendError::Invalid(_) => JobError::Permanent(e.to_string()),
        embargo_mail::outbound::SendError::Transport(_) => JobError::Retry(e.to_string()),
    })
}

/// Records a sent mail on the report's audit trail and completes its job, in one
/// transaction.
async fn record_sent(
    app: &App,
    job: &Job,
    reference: &embargo_domain::ReferenceId,
    details: &str,
) -> Result<(), JobError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    crate::audit::record(&mut tx, app, &Actor::System("mail"), "mail.sent", &format!("report:{reference}"), details)
        .await?;
    complete_in(tx, job, now).await
}

/// Completes a job in the transaction that holds its effect, fenced on the lease: if
/// another worker took the job over, the effect is rolled back.
async fn complete_in(tx: embargo_store::Tx, job: &Job, now: Timestamp) -> Result<(), JobError> {
    complete_all_in(tx, std::slice::from_ref(job), now).await
}

/// [`complete_in`] for several jobs whose effects share the transaction: if any lease was
/// lost, all of it is rolled back.
async fn complete_all_in(mut tx: embargo_store::Tx, jobs: &[Job], now: Timestamp) -> Result<(), JobError> {
    if !store_jobs::complete_many(&mut tx, jobs, now).await? {
        tx.rollback().await?;
        return Err(JobError::LeaseLost);
    }
    tx.commit().await?;
    Ok(())
}

/// The audit details of a sent mail (no addresses, no content).
fn sent_details(job: &Job, message: Option<i64>, receipt: &str, encrypted: bool) -> String {
    let message = message.map_or_else(String::new, |m| format!(" message={m}"));
    let via = receipt.split_whitespace().next().unwrap_or("");
    format!("kind={}{message} via={via} encrypted={encrypted}", job.kind)
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

/// Enqueues `count` probe jobs that each hold for `hold_ms`; returns their ids.
pub async fn enqueue_probes(app: &App, actor: &Actor, count: u32, hold_ms: u64) -> Result<Vec<i64>, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageJobs).await?;
    let payload = serde_json::to_string(&ProbePayload { hold_ms }).map_err(|e| AppError::Internal(e.into()))?;
    let mut ids = Vec::new();
    for _ in 0..count {
        let job = NewJob {
            kind: PROBE,
            payload: &payload,
            idempotency_key: None,
            run_at: now,
            max_attempts: i64::from(app.config.jobs.max_attempts),
        };
        if let Some(id) = store_jobs::enqueue(&mut tx, &job, now).await? {
            ids.push(id);
        }
    }
    audit::record(&mut tx, app, actor, "jobs.probe", "jobs", &format!("count={count} hold_ms={hold_ms}")).await?;
    tx.commit().await?;
    Ok(ids)
}

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

/// A worker: claims and runs jobs until told to stop.
#[derive(Debug, Clone)]
pub struct Worker {
    app: App,
    id: Arc<str>,
    /// While intake is busy, only the holder of this permit runs jobs (see `claim_loop`).
    beside_intake: Arc<tokio::sync::Semaphore>,
}

impl Worker {
    /// A worker with a unique id (`<host>-<pid>-<random>`).
    pub fn new(app: App) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "embargo".into());
        let id = format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>());
        Self { app, id: id.into(), beside_intake: Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    /// This worker's id, as recorded in job leases.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `concurrency` claim loops until `stop` turns true; jobs already running are
    /// finished before it returns.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let now = self.app.now();
        if let Err(err) = schedule_sla_sweep(
            &self.app,
            now.checked_sub(SignedDuration::from_secs(SLA_SWEEP_EVERY_SECONDS)).unwrap_or(now),
        )
        .await
        {
            tracing::warn!(error = %err, "could not schedule the SLA sweep");
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
            // Intake first: while mail is being committed (senders wait for their `250`),
            // jobs wait too, for at most `INTAKE_FIRST_FOR`; after that the loop catches up
            // without waiting until it finds the queue empty.
            if !catching_up && self.app.intake_busy(INTAKE_BUSY_WINDOW) {
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
            // Beside busy intake, one loop at a time runs jobs, in smaller batches: the jobs
            // catch up without taking both cores and long write locks from the senders.
            let busy = self.app.intake_busy(INTAKE_BUSY_WINDOW);
            let _permit = match busy {
                true => Some(self.beside_intake.acquire().await),
                false => None,
            };
            let limit = if busy { MAX_BATCH_BESIDE_INTAKE } else { MAX_BATCH };
            let pause = match self.run_batch(limit).await {
                Ok(Some((claimed, true))) if (claimed as i64) < limit => BATCH_LINGER,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    catching_up = false;
                    idle
                }
                Err(err) => {
                    tracing::warn!(worker = %self.id, error = %err, "job claim failed");
                    idle
                }
            };
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

    /// Claims and runs one due job, or a batch of due jobs of a kind that is completed
    /// together (see [`BATCHED`]). Returns whether there was any.
    pub async fn run_once(&self) -> Result<bool, AppError> {
        Ok(self.run_batch(MAX_BATCH).await?.is_some())
    }

    /// [`Self::run_once`] with at most `limit` jobs in a batch; returns the number of jobs
    /// claimed and whether they were of a batched kind, or `None` when none was due.
    async fn run_batch(&self, limit: i64) -> Result<Option<(usize, bool)>, AppError> {
        let now = self.app.now();
        let until = self.after(now, self.lease());
        let jobs = store_jobs::claim_batch(&self.app.store, &self.id, now, until, BATCHED, limit).await?;
        if jobs.is_empty() {
            return Ok(None);
        }
        let claimed = (jobs.len(), BATCHED.contains(&jobs[0].kind.as_str()));
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
            if job.attempt > job.max_attempts {
                let outcome = Err(JobError::Permanent(format!("gave up after {} attempts", job.max_attempts)));
                self.finish(&job, outcome, batch).await?;
            } else {
                runnable.push(job);
            }
        }
        let outcomes = self.run_with_heartbeat(&runnable).await;
        let done = outcomes.iter().filter(|o| o.is_ok()).count();
        for (job, outcome) in runnable.iter().zip(outcomes) {
            self.finish(job, outcome, batch).await?;
        }
        if batch {
            let kind = runnable.first().map_or("", |job| job.kind.as_str());
            tracing::info!(worker = %self.id, job.kind = %kind, jobs = claimed.0, done, "job batch done");
        }
        Ok(Some(claimed))
    }

    /// Logs and counts an attempt's outcome (a success at debug level inside a batch), and
    /// records a failure (to retry or give up).
    async fn finish(&self, job: &Job, outcome: Result<(), JobError>, in_batch: bool) -> Result<(), AppError> {
        let now = self.app.now();
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
    async fn run_with_heartbeat(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let beat = (self.lease() / 3).max(SignedDuration::from_millis(100));
        let heartbeat = {
            let (worker, jobs) = (self.clone(), jobs.to_vec());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(beat.unsigned_abs());
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let until = worker.after(worker.app.now(), worker.lease());
                    for job in &jobs {
                        match store_jobs::extend_lease(&worker.app.store, job, until).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(job.id = job.id, "lease taken over while running"),
                            Err(err) => tracing::warn!(job.id = job.id, error = %err, "lease heartbeat failed"),
                        }
                    }
                }
            })
        };
        let outcomes = match jobs.first().map(|job| job.kind.as_str()) {
            Some(ACKNOWLEDGEMENT | NOT_SECURITY) => self.report_mails(jobs).await,
            Some(INDEX) => self.index(jobs).await,
            _ => {
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in jobs {
                    outcomes.push(self.dispatch(job).await);
                }
                outcomes
            }
        };
        heartbeat.abort();
        outcomes
    }

    async fn dispatch(&self, job: &Job) -> Result<(), JobError> {
        match job.kind.as_str() {
            PROBE => self.probe(job).await,
            ACKNOWLEDGEMENT | NOT_SECURITY => self.report_mails(std::slice::from_ref(job)).await.remove(0),
            MESSAGE => self.message_mail(job).await,
            TEAM_ALERT => self.team_alert(job).await,
            SLA_SWEEP => {
                crate::sla::sweep(&self.app).await?;
                schedule_sla_sweep(&self.app, self.app.now()).await?;
                let now = self.app.now();
                complete_in(self.app.store.begin().await?, job, now).await
            }
            INDEX => self.index(std::slice::from_ref(job)).await.remove(0),
            other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
        }
    }

    /// Composes and sends mails to reports' reporters (acknowledgements, not-security
    /// notices), then records each on its report's thread and completes the jobs in one
    /// transaction. Returns one outcome per job.
    async fn report_mails(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let app = &self.app;
        let prepared = match self.prepare_report_mails(jobs).await {
            Ok(prepared) => prepared,
            Err(err) => {
                let reason = err.to_string();
                return jobs.iter().map(|_| Err(JobError::Retry(reason.clone()))).collect();
            }
        };
        let mut outcomes: Vec<Result<(), JobError>> = Vec::with_capacity(jobs.len());
        let mut sent = Vec::new();
        for (position, (job, prepared)) in jobs.iter().zip(prepared).enumerate() {
            let mail = match prepared {
                Ok(mail) => mail,
                Err(err) => {
                    outcomes.push(Err(err));
                    continue;
                }
            };
            match send_to_reporter(app, mail.mail()).await {
                Ok(receipt) => {
                    outcomes.push(Ok(()));
                    sent.push((position, job, mail, receipt));
                }
                Err(err) => outcomes.push(Err(err)),
            }
        }
        // Record what was sent: all in one transaction, or, if that fails, one by one so
        // that one job's lost lease does not undo the others' records.
        if sent.len() > 1 && self.record_report_mails(&sent).await.is_ok() {
            return outcomes;
        }
        for entry in &sent {
            if let Err(err) = self.record_report_mails(std::slice::from_ref(entry)).await {
                outcomes[entry.0] = Err(err);
            }
        }
        outcomes
    }

    /// Reads what each report mail needs, in one snapshot and a few statements for the whole
    /// batch: per job, the mail or why it cannot be sent.
    async fn prepare_report_mails(&self, jobs: &[Job]) -> Result<Vec<Result<ReportMail, JobError>>, JobError> {
        let app = &self.app;
        let payloads: Vec<Result<ReportMailPayload, JobError>> = jobs
            .iter()
            .map(|job| serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}"))))
            .collect();
        let wanted: Vec<embargo_domain::ReportId> =
            payloads.iter().flatten().map(|p| embargo_domain::ReportId(p.report)).collect();
        let originals: Vec<(embargo_domain::ReportId, i64)> = payloads
            .iter()
            .flatten()
            .filter_map(|p| p.message.map(|m| (embargo_domain::ReportId(p.report), m)))
            .collect();
        let mut tx = app.store.snapshot().await?;
        let reports = embargo_store::reports::get_many(&mut tx, &wanted).await?;
        let reporter_ids: Vec<i64> = reports.values().map(|r| r.reporter_id).collect();
        let reporters = embargo_store::reporters::get_many(&mut tx, &reporter_ids).await?;
        let tokens = embargo_store::reports::status_tokens(&mut tx, &wanted).await?;
        let raws = embargo_store::messages::raws(&mut tx, &originals).await?;
        tx.rollback().await?;
        let mut prepared = Vec::with_capacity(jobs.len());
        for (job, payload) in jobs.iter().zip(payloads) {
            prepared.push(payload.and_then(|payload| {
                let report_id = embargo_domain::ReportId(payload.report);
                let report = reports
                    .get(&report_id)
                    .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", payload.report)))?;
                let reporter = reporters
                    .get(&report.reporter_id)
                    .cloned()
                    .ok_or_else(|| JobError::Retry(format!("the reporter of {} was not found", report.reference)))?;
                let status_token = tokens
                    .get(&report_id)
                    .ok_or_else(|| JobError::Retry(format!("the status link of {} was not found", report.reference)))?;
                let original = payload.message.and_then(|message| raws.get(&message));
                let in_reply_to = original.and_then(|raw| embargo_mail::parse(raw).message_id);
                Ok(self.compose_report_mail(job, report, reporter, status_token, in_reply_to))
            }));
        }
        Ok(prepared)
    }

    /// Composes one report mail (see [`Self::report_mails`]).
    fn compose_report_mail(
        &self,
        job: &Job,
        report: &embargo_store::reports::ReportRecord,
        reporter: embargo_store::reporters::ReporterRecord,
        status_token: &str,
        in_reply_to: Option<String>,
    ) -> ReportMail {
        let app = &self.app;
        let reply_address = crate::intake::reply_address(app, &report.reply_token);
        let (text, tag, auto_reply) = match job.kind.as_str() {
            NOT_SECURITY => (
                crate::mail::not_security(app, &report.reference, reporter.name.as_deref(), &reply_address),
                "ns",
                false,
            ),
            _ => (
                crate::mail::acknowledgement(
                    app,
                    &report.reference,
                    reporter.name.as_deref(),
                    status_token,
                    &reply_address,
                ),
                "ack",
                true,
            ),
        };
        // Unguessable, so that nobody can thread mail into a report by citing our messages.
        let message_id =
            format!("embargo.{tag}.{}@{}", crate::tokens::secret("")[..32].to_owned(), app.config.mail_hostname());
        ReportMail {
            label: format!("{tag}-{}-{}", report.reference, job.id),
            report: report.id,
            reference: report.reference.clone(),
            reporter,
            reply_address,
            // The thread keeps the text without the status link: the link is the
            // reporter's credential, mailed to them only.
            thread_body: text.body.replace(status_token, STATUS_LINK_REDACTED),
            subject: text.subject,
            body: text.body,
            message_id,
            in_reply_to,
            auto_reply,
        }
    }

    /// Records sent report mails on their threads and in the audit trail, and completes their
    /// jobs, in one transaction.
    async fn record_report_mails(&self, sent: &[(usize, &Job, ReportMail, String)]) -> Result<(), JobError> {
        let app = &self.app;
        let now = app.now();
        let sender = &app.config.organisation.security_address;
        let rows: Vec<embargo_store::messages::NewMessage<'_>> = sent
            .iter()
            .map(|(_, _, mail, _)| embargo_store::messages::NewMessage {
                report: mail.report,
                kind: embargo_store::messages::MessageKind::Outbound,
                author: "system:intake",
                sender: Some(sender),
                subject: Some(&mail.subject),
                body: &mail.thread_body,
                raw: None,
                message_id: Some(&mail.message_id),
                quarantined: false,
                pgp: None,
                auth: None,
                at: now,
            })
            .collect();
        let entries: Vec<audit::Entry> = sent
            .iter()
            .map(|(_, job, mail, receipt)| audit::Entry {
                action: "mail.sent",
                subject: format!("report:{}", mail.reference),
                details: sent_details(job, None, receipt, mail.reporter.openpgp_key.is_some()),
            })
            .collect();
        let jobs: Vec<Job> = sent.iter().map(|(_, job, _, _)| (*job).clone()).collect();
        let mut tx = app.store.begin().await?;
        embargo_store::messages::insert_many(&mut tx, &rows).await?;
        if !store_jobs::complete_many(&mut tx, &jobs, now).await? {
            tx.rollback().await?;
            return Err(JobError::LeaseLost);
        }
        // Last: appending locks the audit head (on PostgreSQL, until the commit), which
        // intake's transactions need too.
        audit::record_many(&mut tx, app, &Actor::System("mail"), &entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends a stored outbound message (a reply or notice the team wrote) to the reporter,
    /// then records the delivery and completes the job in one transaction.
    async fn message_mail(&self, job: &Job) -> Result<(), JobError> {
        let payload: MessagePayload =
            serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let app = &self.app;
        let report_id = embargo_domain::ReportId(payload.report);
        let mut tx = app.store.begin().await?;
        let report = embargo_store::reports::get(&mut tx, report_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", payload.report)))?;
        let reporter = embargo_store::reporters::get(&mut tx, report.reporter_id).await?;
        let message = embargo_store::messages::get(&mut tx, report_id, payload.message)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("message {} does not exist", payload.message)))?;
        // Thread under the reporter's latest message, when it came by mail.
        let latest_inbound = embargo_store::messages::latest_inbound_raw(&mut tx, report_id).await?;
        let body = if message.body.contains(STATUS_LINK_PLACEHOLDER) {
            let token = embargo_store::reports::status_token(&mut tx, report_id).await?;
            message.body.replace(STATUS_LINK_PLACEHOLDER, &format!("{}/status/{token}", app.config.base_url()))
        } else {
            message.body.clone()
        };
        tx.rollback().await?;
        let in_reply_to = latest_inbound.and_then(|raw| embargo_mail::parse(&raw).message_id);
        let receipt = send_to_reporter(
            app,
            ReporterMail {
                reporter: &reporter,
                reply_to: crate::intake::reply_address(app, &report.reply_token),
                subject: message.subject.clone().unwrap_or_else(|| format!("[{}]", report.reference)),
                body,
                message_id: payload.message_id.clone(),
                in_reply_to,
                auto_reply: false,
                label: format!("msg-{}-{}", report.reference, job.id),
            },
        )
        .await?;
        let details = sent_details(job, Some(payload.message), &receipt, reporter.openpgp_key.is_some());
        record_sent(app, job, &report.reference, &details).await
    }

    /// Mails a team member an SLA alert: the reference, the clock, the deadline and a link,
    /// never report content.
    async fn team_alert(&self, job: &Job) -> Result<(), JobError> {
        let payload: TeamAlertPayload =
            serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let app = &self.app;
        let mut tx = app.store.begin().await?;
        let report = embargo_store::reports::get(&mut tx, embargo_domain::ReportId(payload.report))
            .await?
            .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", payload.report)))?;
        let user = embargo_store::users::get(&mut tx, embargo_domain::UserId(payload.user)).await?;
        let tz = crate::sla::calendar_in(&mut tx, app).await?.time_zone.clone();
        tx.rollback().await?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            let now = app.now();
            return complete_in(app.store.begin().await?, job, now).await;
        };
        let due = Timestamp::from_millisecond(payload.due_ms).map_err(|e| JobError::Permanent(e.to_string()))?;
        let text = crate::mail::sla_alert(app, &report.reference, &payload.clock, &payload.kind, due, &tz);
        let outbound = embargo_mail::outbound::OutboundMail {
            from: from_address(app),
            to: user.email.clone(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: text.subject,
            body: text.body,
            message_id: new_message_id(app, "sla"),
            in_reply_to: None,
            auto_reply: true,
            encrypt_to: None,
        };
        let receipt = send_mail(app, &format!("sla-{}-{}", report.reference, job.id), &outbound).await?;
        record_sent(app, job, &report.reference, &sent_details(job, None, &receipt, false)).await
    }

    /// Writes reports' or messages' index entries and completes their jobs in the same
    /// transaction (so they are written once, however often a job is claimed),
    /// [`INDEX_WRITE_CHUNK`] jobs per transaction: the one SQLite writer is held for a short
    /// while at a time, so that a page's audit commit or an SMTP sender never waits behind a
    /// whole batch of a backlog being indexed. If any job of a chunk fails, the chunk is
    /// rolled back and each of its jobs is run on its own.
    async fn index(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(INDEX_WRITE_CHUNK) {
            if chunk.len() > 1 {
                match self.index_in_one_transaction(chunk).await {
                    Ok(()) => {
                        outcomes.extend(chunk.iter().map(|_| Ok(())));
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(jobs = chunk.len(), error = %err, "index batch failed; running its jobs one by one")
                    }
                }
            }
            for job in chunk {
                outcomes.push(self.index_in_one_transaction(std::slice::from_ref(job)).await);
            }
        }
        outcomes
    }

    async fn index_in_one_transaction(&self, jobs: &[Job]) -> Result<(), JobError> {
        let app = &self.app;
        // Read and compute outside the write lock; write in one short transaction.
        let mut items = Vec::with_capacity(jobs.len());
        for job in jobs {
            let payload: IndexPayload =
                serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
            items.push((embargo_domain::ReportId(payload.report), payload.message, payload.new_report));
        }
        let mut snapshot = app.store.snapshot().await?;
        let rows = match crate::reports::prepare_index_many(&mut snapshot, app, &items).await {
            Ok(rows) => rows,
            Err(AppError::NotFound(what)) => return Err(JobError::Permanent(format!("{what} does not exist"))),
            Err(err) => return Err(err.into()),
        };
        snapshot.rollback().await?;
        let mut tx = app.store.begin().await?;
        embargo_store::reports::write_index(&mut tx, &rows).await?;
        complete_all_in(tx, jobs, app.now()).await
    }

    async fn probe(&self, job: &Job) -> Result<(), JobError> {
        let payload: ProbePayload =
            serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        tokio::time::sleep(Duration::from_millis(payload.hold_ms)).await;
        let now = self.app.now();
        let mut tx = self.app.store.begin().await?;
        store_jobs::record_probe(&mut tx, job, now).await?;
        complete_in(tx, job, now).await
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
        let busy = {
            let app = app.clone();
            tokio::spawn(async move {
                loop {
                    app.intake_committed();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let (stop_tx, stop) = watch::channel(false);
        let worker = tokio::spawn(Worker::new(app.clone()).run(stop));
        enqueue_probes(&app, &Actor::System("test"), 1, 0).await.unwrap();
        let started = std::time::Instant::now();
        let done = || async { store_jobs::probe_counts(&app.store).await.unwrap().len() };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(done().await, 0, "the job ran beside busy intake before its wait was up");
        while done().await == 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "the job waited for intake without bound");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= INTAKE_FIRST_FOR.saturating_sub(Duration::from_millis(100)));
        busy.abort();
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
    }
}
