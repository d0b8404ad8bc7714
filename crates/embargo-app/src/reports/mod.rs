//! Reports: submission, listing, reading and lifecycle changes.
//!
//! One module per concern; everything public is re-exported here, so paths are
//! `crate::reports::NAME` whatever file holds it.

mod access;
mod inbox;
mod index;
mod lifecycle;
mod page;
mod reporter_mail;
mod reseal;
mod submit;
mod thread;

use embargo_domain::{Actor, ReferenceId};
pub use embargo_store::attachments::AttachmentMeta;
pub use embargo_store::messages::{MessageKind, MessageRecord};
pub use embargo_store::reporters::ReporterRecord;
pub use embargo_store::reports::{ReportRecord, TransitionRecord, Upstream};
use embargo_store::{Tx, reports as sr};

pub use self::access::*;
pub use self::inbox::*;
pub use self::index::*;
pub use self::lifecycle::*;
pub use self::page::*;
pub use self::reporter_mail::*;
pub use self::reseal::*;
pub use self::submit::*;
pub use self::thread::*;
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

fn subject(reference: &ReferenceId) -> String {
    format!("report:{reference}")
}

async fn find(tx: &mut Tx, reference: &ReferenceId) -> Result<ReportRecord, AppError> {
    sr::get_by_reference(tx, reference).await?.ok_or_else(|| AppError::NotFound(format!("report {reference}")))
}

/// Refuses a report-level permission as "not found", so that people off a report cannot
/// even learn that it exists.
async fn require_on(
    tx: &mut Tx,
    actor: &Actor,
    permission: embargo_domain::access::OnReport,
    reference: &ReferenceId,
) -> Result<(), AppError> {
    match authz::require(tx, actor, permission).await {
        Err(AppError::Forbidden(_)) => Err(AppError::NotFound(format!("report {reference}"))),
        other => other,
    }
}

/// The report behind a reference, for an actor who may read it; "not found" for anyone
/// else (see [`require_on`]).
pub(crate) async fn readable(tx: &mut Tx, actor: &Actor, reference: &ReferenceId) -> Result<ReportRecord, AppError> {
    let report = find(tx, reference).await?;
    require_on(tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    Ok(report)
}

/// Records a read. Reads run in a read-only snapshot and their audit entry is committed
/// (group-committed with other reads, see [`audit::record_read`]) before anything is
/// returned: nothing is shown that is not on the record, and readers never hold the write
/// lock while they read.
pub(crate) async fn audit_read(
    app: &App,
    actor: &Actor,
    action: &str,
    subject_text: &str,
    details: &str,
) -> Result<(), AppError> {
    audit::record_read(app, actor, action, subject_text, details).await
}

fn check_text(body: &str, what: &str) -> Result<String, AppError> {
    let body = body.replace("\r\n", "\n");
    if body.trim().is_empty() {
        return Err(AppError::Invalid(format!("the {what} is empty")));
    }
    if body.len() > 200_000 {
        return Err(AppError::Invalid(format!("the {what} is longer than 200,000 bytes")));
    }
    Ok(body)
}
