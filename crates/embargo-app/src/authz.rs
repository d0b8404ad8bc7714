//! Who may do what. Every use case calls [`require`] before it reads or changes anything.
//!
//! Need-to-know: admins (and local administrators on the command line) see everything; a
//! responder sees a report only when it is assigned to them, they were added to it, or they
//! are responsible for its product; the system acts for intake, SLAs and jobs but never
//! manages accounts; a reporter submits, and adds messages to their own report through its
//! status link (the use case checks the link). Listing and metrics are open to every
//! responder, narrowed by the use case to what they may see.

use embargo_domain::{Actor, ReportId, Role};
use embargo_store::{Tx, reports};

use crate::AppError;

/// An action that needs permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Submit a new report.
    SubmitReport,
    /// List reports (responders see only theirs).
    ListReports,
    /// Read a report's content.
    ReadReport(ReportId),
    /// Change a report's state.
    ChangeReportState(ReportId),
    /// Add a message from the reporter (mail intake, or the reporter on their status page,
    /// who proved it with the link).
    AddReporterMessage(ReportId),
    /// Decide who may see a report.
    ManageReportAccess(ReportId),
    /// Create accounts and tokens.
    ManageAccounts,
    /// Read or verify the audit trail.
    ReadAudit,
    /// Operate the job queue.
    ManageJobs,
    /// Publish or update a CVE record at CVE Services (admins, and the system for the
    /// disclosure runbook).
    PublishCve,
    /// Write, review and publish advisories (responders only for advisories whose reports
    /// they may all read; see `advisories`).
    ManageAdvisories,
    /// Read the metrics dashboard (responders: over their products only, see
    /// `metrics::dashboard`).
    ReadMetrics,
}

impl Permission {
    fn name(self) -> &'static str {
        match self {
            Permission::SubmitReport => "submit reports",
            Permission::ListReports => "list reports",
            Permission::ReadReport(_) => "read this report",
            Permission::ChangeReportState(_) => "change this report",
            Permission::AddReporterMessage(_) => "add a reporter message",
            Permission::ManageReportAccess(_) => "manage access to this report",
            Permission::ManageAccounts => "manage accounts",
            Permission::ReadAudit => "read the audit trail",
            Permission::ManageJobs => "manage jobs",
            Permission::PublishCve => "publish CVE records",
            Permission::ManageAdvisories => "manage advisories",
            Permission::ReadMetrics => "read metrics",
        }
    }
}

/// Refuses with [`AppError::Forbidden`] unless `actor` holds `permission`.
pub async fn require(tx: &mut Tx, actor: &Actor, permission: Permission) -> Result<(), AppError> {
    use Permission::*;
    let allowed = match actor {
        Actor::LocalAdmin { .. } | Actor::User { role: Role::Admin, .. } => true,
        Actor::System(_) => !matches!(permission, ManageAccounts | ManageReportAccess(_)),
        Actor::Reporter => matches!(permission, SubmitReport | AddReporterMessage(_)),
        Actor::User { id, role: Role::Responder } => match permission {
            SubmitReport | ListReports | ManageAdvisories | ReadMetrics => true,
            ReadReport(report) | ChangeReportState(report) | AddReporterMessage(report) => {
                reports::is_member(tx, report, *id).await?
            }
            ManageReportAccess(_) | ManageAccounts | ReadAudit | ManageJobs | PublishCve => false,
        },
    };
    if allowed { Ok(()) } else { Err(AppError::Forbidden(permission.name())) }
}
