//! Recording and verifying the audit trail.

use embargo_domain::Actor;
use embargo_domain::audit::StoredEntry;
use embargo_store::{Tx, audit};

use crate::authz::{self, Permission};
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

/// A report's audit trail (the latest 200 entries), for those who may read the report.
pub async fn for_report(
    app: &App,
    actor: &embargo_domain::Actor,
    reference: &embargo_domain::ReferenceId,
) -> Result<Vec<StoredEntry>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = embargo_store::reports::get_by_reference(&mut tx, reference)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {reference}")))?;
    if authz::require(&mut tx, actor, Permission::ReadReport(report.id)).await.is_err() {
        return Err(AppError::NotFound(format!("report {reference}")));
    }
    let entries = audit::list_for_subject(&mut tx, &format!("report:{reference}"), 200).await?;
    tx.rollback().await?;
    Ok(entries)
}
