//! Who may do what. Every use case calls [`require`] before it reads or changes anything.
//!
//! The rule is one table, `embargo_domain::access::TABLE` (roles by permissions, each
//! permission named for the resource it protects). A cell is "never", "everywhere" or
//! "within need-to-know"; this module resolves need-to-know for one resource: a responder
//! reads and works on a report only when it is assigned to them, they were added to it, or
//! they are responsible for its product (`reports::is_member`). For permissions over a kind
//! of resource rather than one (listing reports, the metrics, the advisories), a scoped
//! grant lets the use case run, and the use case narrows what it shows ([`narrowed_to`];
//! advisories: those whose reports the responder may all read).
//!
//! To add a permission: a row in the domain table, a variant here (with the resource it is
//! about, if the grant can be scoped to one), and `require` in the use case.

use embargo_domain::access::{self, Grant};
use embargo_domain::{Actor, ReportId, UserId};
use embargo_store::{Tx, reports};

use crate::AppError;

/// An action that needs permission, on the resource it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Submit a new report.
    SubmitReport,
    /// List reports (narrowed to those the actor may read).
    ListReports,
    /// Read a report's content.
    ReadReport(ReportId),
    /// Work on a report: its state, notes, replies, assignment, assessment.
    ChangeReportState(ReportId),
    /// Add a message from the reporter (mail intake, or the reporter on their status page,
    /// who proved it with the link).
    AddReporterMessage(ReportId),
    /// Decide who may see a report.
    ManageReportAccess(ReportId),
    /// Create and change accounts and API tokens.
    ManageAccounts,
    /// See the team's accounts (to pick an assignee).
    ListTeam,
    /// Read the product catalogue.
    ReadCatalogue,
    /// Change the product catalogue and its responders.
    ManageCatalogue,
    /// Read and change the business calendar.
    ManageCalendar,
    /// Reserve, list, assign and reject CVE IDs.
    ManageCveIds,
    /// Publish or update a CVE record at CVE Services.
    PublishCve,
    /// Read and write advisories (narrowed to those whose reports the actor may all read).
    EditAdvisory,
    /// Import an advisory from OSV.
    ImportAdvisory,
    /// Approve an advisory in review or send it back.
    ReviewAdvisory,
    /// Publish an approved advisory to the public.
    PublishAdvisory,
    /// Open a report's private fix repository, invite fix developers to it, change its
    /// backport matrix and override its CI.
    ManageFixRepository(ReportId),
    /// Clone, push to and read the CI of a report's private fix repository.
    UseFixRepository(ReportId),
    /// Operate the job queue.
    ManageJobs,
    /// Read or verify the audit trail.
    ReadAudit,
    /// Read the metrics dashboard (narrowed to the actor's products).
    ReadMetrics,
}

impl Permission {
    /// The row of the domain table this permission reads.
    pub fn kind(self) -> access::Permission {
        use access::Permission as P;
        match self {
            Permission::SubmitReport => P::SubmitReport,
            Permission::ListReports => P::ListReports,
            Permission::ReadReport(_) => P::ReadReport,
            Permission::ChangeReportState(_) => P::ChangeReport,
            Permission::AddReporterMessage(_) => P::AddReporterMessage,
            Permission::ManageReportAccess(_) => P::ManageReportAccess,
            Permission::ManageAccounts => P::ManageAccounts,
            Permission::ListTeam => P::ListTeam,
            Permission::ReadCatalogue => P::ReadCatalogue,
            Permission::ManageCatalogue => P::ManageCatalogue,
            Permission::ManageCalendar => P::ManageCalendar,
            Permission::ManageCveIds => P::ManageCveIds,
            Permission::PublishCve => P::PublishCve,
            Permission::EditAdvisory => P::EditAdvisory,
            Permission::ImportAdvisory => P::ImportAdvisory,
            Permission::ReviewAdvisory => P::ReviewAdvisory,
            Permission::PublishAdvisory => P::PublishAdvisory,
            Permission::ManageFixRepository(_) => P::ManageFixRepository,
            Permission::UseFixRepository(_) => P::UseFixRepository,
            Permission::ManageJobs => P::ManageJobs,
            Permission::ReadAudit => P::ReadAudit,
            Permission::ReadMetrics => P::ReadMetrics,
        }
    }

    /// The one report this permission is about, if any.
    fn report(self) -> Option<ReportId> {
        match self {
            Permission::ReadReport(r)
            | Permission::ChangeReportState(r)
            | Permission::AddReporterMessage(r)
            | Permission::ManageReportAccess(r)
            | Permission::ManageFixRepository(r)
            | Permission::UseFixRepository(r) => Some(r),
            _ => None,
        }
    }
}

/// What the table grants `actor` for `permission` (before need-to-know is resolved).
pub fn grant(actor: &Actor, permission: Permission) -> Grant {
    access::grant(actor, permission.kind())
}

/// For a permission over many resources (listing, metrics): the account whose need-to-know
/// narrows what the actor sees, or `None` when they see everything it grants.
pub fn narrowed_to(actor: &Actor, permission: Permission) -> Option<UserId> {
    match (grant(actor, permission), actor) {
        (Grant::Scoped, Actor::User { id, .. }) => Some(*id),
        _ => None,
    }
}

/// Refuses with [`AppError::Forbidden`] unless `actor` holds `permission`.
pub async fn require(tx: &mut Tx, actor: &Actor, permission: Permission) -> Result<(), AppError> {
    let allowed = match grant(actor, permission) {
        Grant::No => false,
        Grant::All => true,
        Grant::Scoped => match (permission.report(), actor) {
            (Some(report), Actor::User { id, .. }) => reports::is_member(tx, report, *id).await?,
            // A scope that is not a user's membership of a report is not resolvable here:
            // refuse rather than guess.
            (Some(_), _) => false,
            // Over a kind of resource: the use case narrows what it shows.
            (None, _) => true,
        },
    };
    if allowed { Ok(()) } else { Err(AppError::Forbidden(permission.kind().describe())) }
}
