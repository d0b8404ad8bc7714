//! Recording and verifying the audit trail.

use embargo_domain::Actor;
use embargo_domain::audit::StoredEntry;
use embargo_store::{Tx, audit};

use crate::authz::{self, Permission};
use crate::context::PendingRead;
use crate::{App, AppError};

/// Appends an audit entry in the caller's transaction. `details` must never hold report
/// content: only identifiers, state names and counts.
pub async fn record(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    action: &str,
    subject: &str,
    details: &str,
) -> Result<i64, AppError> {
    let actor = actor.to_string();
    Ok(audit::append(tx, &audit::NewEntry { at: app.now(), actor: &actor, action, subject, details }).await?)
}

/// An audit entry for [`record_many`].
#[derive(Debug)]
pub(crate) struct Entry {
    pub action: &'static str,
    pub subject: String,
    pub details: String,
}

/// Appends several entries by one actor, in order, in the caller's transaction (three
/// statements however many). The same rule as [`record`]: no report content in details.
pub(crate) async fn record_many(tx: &mut Tx, app: &App, actor: &Actor, entries: &[Entry]) -> Result<(), AppError> {
    let actor = actor.to_string();
    let at = app.now();
    let rows: Vec<audit::NewEntry<'_>> = entries
        .iter()
        .map(|e| audit::NewEntry { at, actor: &actor, action: e.action, subject: &e.subject, details: &e.details })
        .collect();
    audit::append_many(tx, &rows).await?;
    Ok(())
}

/// Result of [`verify`].
pub use embargo_store::audit::Verification;

/// Verifies the whole chain. The verification itself is recorded afterwards, so that the
/// entry does not change what was checked.
pub async fn verify(app: &App, actor: &Actor) -> Result<Verification, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ReadAudit).await?;
    tx.rollback().await?;
    let outcome = audit::verify(&app.store).await?;
    let details = match &outcome {
        Verification::Intact(n) => format!("intact entries={n}"),
        Verification::Broken(err) => format!("broken: {err}"),
    };
    if let Verification::Intact(_) = outcome {
        let mut tx = app.store.begin().await?;
        record(&mut tx, app, actor, "audit.verify", "audit", &details).await?;
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Audit entries after `after_seq`, oldest first.
pub async fn list(app: &App, actor: &Actor, after_seq: i64, limit: i64) -> Result<Vec<StoredEntry>, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ReadAudit).await?;
    let entries = audit::list(&mut tx, after_seq, limit).await?;
    record(&mut tx, app, actor, "audit.export", "audit", &format!("after={after_seq} count={}", entries.len())).await?;
    tx.commit().await?;
    Ok(entries)
}

/// The latest entries of a report's audit trail (reads included: who looked at it is part
/// of the record), newest last, for those who may read the report.
pub async fn for_report(
    app: &App,
    actor: &embargo_domain::Actor,
    reference: &embargo_domain::ReferenceId,
) -> Result<Vec<StoredEntry>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = embargo_store::reports::get_by_reference(&mut tx, reference)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {reference}")))?;
    if authz::require(&mut tx, actor, Permission::ReadReport.on(report.id)).await.is_err() {
        return Err(AppError::NotFound(format!("report {reference}")));
    }
    let entries = audit::list_for_subject(&mut tx, &format!("report:{reference}"), 30).await?;
    tx.rollback().await?;
    Ok(entries)
}

/// The most callers' reads recorded in one transaction.
const MAX_READ_BATCH: usize = 256;

/// Records a read and returns once it is committed. Reads from many requests are committed
/// together by one task (group commit, as for mail intake): each caller still waits for
/// the commit that holds its entry, so nothing is shown that is not on the record, but the
/// cost of a commit is shared. The commit does not wait for the disk (ADR 32,
/// [`embargo_store::Store::begin_urgent_unflushed`]): it survives the process being
/// killed at once, and a power cut after about a second. The commit goes before waiting background writers
/// (see [`embargo_store::Store::begin_urgent`]): someone is waiting for the page.
pub(crate) async fn record_read(
    app: &App,
    actor: &embargo_domain::Actor,
    action: &str,
    subject: &str,
    details: &str,
) -> Result<(), AppError> {
    record_reads(app, actor, action, &[(subject, details)]).await
}

/// [`record_read`] for several reads of one kind (`(subject, details)` each), committed
/// together: one wait, however many.
pub(crate) async fn record_reads(
    app: &App,
    actor: &embargo_domain::Actor,
    action: &str,
    reads: &[(&str, &str)],
) -> Result<(), AppError> {
    let reads: Vec<ReadEntry<'_>> = reads.iter().map(|(subject, details)| (action, *subject, *details)).collect();
    record_read_entries(app, actor, &reads).await
}

/// A read to record: `(action, subject, details)`.
pub(crate) type ReadEntry<'a> = (&'a str, &'a str, &'a str);

/// [`record_read`] for the reads of one page, of any kinds, committed together: one wait
/// for the page however many reads it shows (a report and its suggestions, ADR 32).
pub(crate) async fn record_read_entries(
    app: &App,
    actor: &embargo_domain::Actor,
    reads: &[ReadEntry<'_>],
) -> Result<(), AppError> {
    if reads.is_empty() {
        return Ok(());
    }
    // Background jobs let pages go first (ADR 20): a read counts as foreground work from
    // here until its commit, however long that takes.
    app.read_committed();
    let _in_flight = InFlight::enter(&app.reads_in_flight);
    let queue = app.read_log.get_or_init(|| start_read_committer(app.store.clone()));
    let (done, wait) = tokio::sync::oneshot::channel();
    let pending = PendingRead {
        at: app.now(),
        actor: actor.to_string(),
        reads: reads
            .iter()
            .map(|(action, subject, details)| ((*action).to_owned(), (*subject).to_owned(), (*details).to_owned()))
            .collect(),
        done,
    };
    queue.send(pending).await.map_err(|_| AppError::Unavailable("the audit log is not accepting entries".into()))?;
    match wait.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(AppError::Unavailable(format!("cannot record the read: {reason}"))),
        Err(_) => Err(AppError::Unavailable("the audit log stopped".into())),
    }
}

/// One page read waiting for its commit, counted while it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn start_read_committer(store: embargo_store::Store) -> tokio::sync::mpsc::Sender<PendingRead> {
    let (queue, mut incoming) = tokio::sync::mpsc::channel::<PendingRead>(4 * MAX_READ_BATCH);
    tokio::spawn(async move {
        while let Some(first) = incoming.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_READ_BATCH {
                match incoming.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            metrics::histogram!("embargo_audit_read_batch_size").record(batch.len() as f64);
            let result = async {
                // Committed before the page is shown, not flushed to disk before (ADR 32).
                let mut tx = store.begin_urgent_unflushed().await?;
                let entries: Vec<audit::NewEntry<'_>> = batch
                    .iter()
                    .flat_map(|pending| {
                        pending.reads.iter().map(move |(action, subject, details)| audit::NewEntry {
                            at: pending.at,
                            actor: &pending.actor,
                            action,
                            subject,
                            details,
                        })
                    })
                    .collect();
                audit::append_many(&mut tx, &entries).await?;
                tx.commit().await
            }
            .await
            .map_err(|e| e.to_string());
            for read in batch {
                let _ = read.done.send(result.clone());
            }
        }
    });
    queue
}
