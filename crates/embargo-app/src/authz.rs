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
//! The permissions are the domain's (`embargo_domain::access::Permission`, re-exported
//! here): there is no second list. Those that concern one report are checked on it
//! (`Permission::ReadReport.on(report)`); to add a permission, add it and its row to the
//! domain table, then call [`require`] in the use case.

pub use embargo_domain::access::Permission;
use embargo_domain::access::{self, Concerns, Grant, OnNotice, OnReport};
use embargo_domain::{Actor, ReportId, UserId};
use embargo_store::{Tx, reports};

use crate::AppError;

/// A permission as [`require`] checks it: the domain's permission, and the report it is
/// checked on. Built from a [`Permission`] (over a kind of resource) or from an
/// [`OnReport`] (`Permission::ReadReport.on(report)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Required {
    permission: Permission,
    report: Option<ReportId>,
    notice: Option<i64>,
}

impl From<Permission> for Required {
    fn from(permission: Permission) -> Self {
        Required { permission, report: None, notice: None }
    }
}

impl From<OnReport> for Required {
    fn from(on: OnReport) -> Self {
        Required { permission: on.permission, report: Some(on.report), notice: None }
    }
}

impl From<OnNotice> for Required {
    fn from(on: OnNotice) -> Self {
        Required { permission: on.permission, report: None, notice: Some(on.notice) }
    }
}

impl Required {
    /// The domain's permission.
    pub fn permission(self) -> Permission {
        self.permission
    }

    /// Whether the check names what the permission concerns: a report for those that
    /// concern one, none for the others. A check that does not is a bug in the use case,
    /// and is refused.
    fn well_formed(self) -> bool {
        (self.permission.concerns() == Concerns::Report) == self.report.is_some()
            && (self.notice.is_none() || self.permission.concerns() == Concerns::Shared)
    }
}

/// What the table grants `actor` for `permission` (before need-to-know is resolved).
pub fn grant(actor: &Actor, permission: Permission) -> Grant {
    access::grant(actor, permission)
}

/// For a permission over many resources (listing, metrics): the account whose need-to-know
/// narrows what the actor sees, or `None` when they see everything it grants.
pub fn narrowed_to(actor: &Actor, permission: Permission) -> Option<UserId> {
    match (grant(actor, permission), actor) {
        (Grant::Scoped, Actor::User { id, .. }) => Some(*id),
        _ => None,
    }
}

/// Refuses with [`AppError::Forbidden`] unless `actor` holds the permission (on the report
/// it is checked on).
pub async fn require(tx: &mut Tx, actor: &Actor, required: impl Into<Required>) -> Result<(), AppError> {
    let required = required.into();
    let permission = required.permission;
    let allowed = required.well_formed()
        && match grant(actor, permission) {
            Grant::No => false,
            Grant::All => true,
            Grant::Scoped => match (permission.concerns(), required.report, actor) {
                (Concerns::Report, Some(report), Actor::User { id, .. }) => reports::is_member(tx, report, *id).await?,
                // Over a kind of resource: the use case narrows what it shows.
                (Concerns::Kind, _, _) => true,
                // A notice: shared with the account's organisation through a copy to it.
                (Concerns::Shared, _, Actor::User { id, .. }) => match required.notice {
                    Some(notice) => embargo_store::partners::shared_copy(tx, notice, *id).await?.is_some(),
                    // Listing: the use case shows only what was shared with the account.
                    None => true,
                },
                // A scope that is not a user's need-to-know of a report is not resolvable
                // here (yet): refuse rather than guess.
                _ => false,
            },
        };
    if allowed { Ok(()) } else { Err(AppError::Forbidden(permission.describe())) }
}
