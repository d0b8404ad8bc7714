//! Who may do what: one table of roles by permissions.
//!
//! A permission is named for the resource it protects (reports, accounts, the calendar, the
//! catalogue, CVE IDs, advisories, disclosure, partners, fix repositories, jobs, the audit
//! trail, metrics). [`grant`] answers, for an actor and a permission, one of three
//! [`Grant`]s: never, everywhere, or only within the actor's need-to-know (the reports they
//! work on, the advisory whose fix repository they were given, what was shared with their
//! organisation). Resolving "within need-to-know" for one resource needs the database, so
//! it is the application's job (`embargo_app::authz`); everything else is decided here.
//!
//! This is the one list of permissions: the application checks these very values
//! (`embargo_app::authz::require`), on the report concerned for those that concern one
//! ([`Permission::concerns`], [`Permission::on`]). Adding a permission is a variant here
//! (with its `describe` and `concerns` arms, which the compiler asks for) and its row in
//! [`TABLE`]; adding a role is a column. A test checks that every permission has exactly one
//! row.

use crate::actor::{Actor, Role};
use crate::ids::ReportId;

/// What an actor may do with one kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Never.
    No,
    /// Only within the actor's need-to-know: the use case checks the resource (a report the
    /// responder works on) or narrows what it lists to it.
    Scoped,
    /// On every resource of the kind.
    All,
}

/// A permission, named for the resource it protects and what it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Submit a new report.
    SubmitReport,
    /// List reports (scoped: only those the actor may read).
    ListReports,
    /// Read a report's content.
    ReadReport,
    /// Work on a report: its state, notes, replies, assignment, assessment.
    ChangeReport,
    /// Add a message from the reporter (mail intake, or the reporter through the status link,
    /// which the use case checks).
    AddReporterMessage,
    /// Decide who may see a report.
    ManageReportAccess,
    /// Create and change accounts and their API tokens.
    ManageAccounts,
    /// See the team's accounts, to pick an assignee.
    ListTeam,
    /// Read the product catalogue.
    ReadCatalogue,
    /// Change the product catalogue and who is responsible for each product.
    ManageCatalogue,
    /// Read and change the business calendar (time zone, working days, holidays).
    ManageCalendar,
    /// Reserve, list, assign and reject CVE IDs.
    ManageCveIds,
    /// Publish (or update) a CVE record at CVE Services.
    PublishCve,
    /// Read, write, link and submit for review the advisories (scoped: those whose reports
    /// the actor may all read).
    EditAdvisory,
    /// Import an advisory from another format (it covers no report yet).
    ImportAdvisory,
    /// Approve an advisory in review, or send it back (never one the actor edited).
    ReviewAdvisory,
    /// Publish an approved advisory to the public.
    PublishAdvisory,
    /// Plan and run a report's disclosure (dates, pre-notices, the runbook).
    PlanDisclosure,
    /// Manage partner organisations and what is shared with them.
    ManagePartners,
    /// Read what was shared with a partner organisation (scoped: their organisation's).
    ReadShared,
    /// Create an advisory's private fix repository and grant access to it.
    ManageFixRepository,
    /// Work in an advisory's private fix repository (scoped: the ones granted).
    UseFixRepository,
    /// Operate the job queue.
    ManageJobs,
    /// Read and verify the audit trail.
    ReadAudit,
    /// Read the metrics dashboard (scoped: over the actor's products).
    ReadMetrics,
}

/// What a scoped grant of a permission is about: what need-to-know is resolved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Concerns {
    /// A kind of resource (listing, metrics, the advisories), or nothing in particular: a
    /// scoped grant lets the use case run, and it narrows what it shows.
    Kind,
    /// One report, checked with the permission ([`Permission::on`]): a scoped grant holds
    /// when the actor may know of that report.
    Report,
    /// What was shared with the actor's organisation: a notice, checked with the permission
    /// ([`Permission::on_notice`]); a scoped grant holds when a copy of the notice went to
    /// the actor as a current contact of an active partner. Without a notice (listing), the
    /// use case narrows what it shows to those.
    Shared,
}

/// A permission checked on one report (see [`Permission::on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OnReport {
    /// The permission, one that [`Concerns::Report`].
    pub permission: Permission,
    /// The report it is checked on.
    pub report: ReportId,
}

/// A permission checked on one notice to partners (see [`Permission::on_notice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OnNotice {
    /// The permission, one that [`Concerns::Shared`].
    pub permission: Permission,
    /// The notice's id.
    pub notice: i64,
}

/// A column of [`TABLE`]: the roles of team accounts, then the actors that are not
/// accounts. A local administrator (the command line on the instance) is an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// An account's role.
    Role(Role),
    /// Embargo itself (intake, SLA sweep, jobs).
    System,
    /// The reporter of the report concerned.
    Reporter,
}

impl Column {
    /// Every column, in [`TABLE`] order.
    pub const ALL: [Column; 6] = [
        Column::Role(Role::Admin),
        Column::Role(Role::Responder),
        Column::Role(Role::FixDeveloper),
        Column::Role(Role::Partner),
        Column::System,
        Column::Reporter,
    ];

    fn index(self) -> usize {
        match self {
            Column::Role(Role::Admin) => 0,
            Column::Role(Role::Responder) => 1,
            Column::Role(Role::FixDeveloper) => 2,
            Column::Role(Role::Partner) => 3,
            Column::System => 4,
            Column::Reporter => 5,
        }
    }

    /// The column an actor reads.
    pub fn of(actor: &Actor) -> Self {
        match actor {
            Actor::User { role, .. } => Column::Role(*role),
            Actor::LocalAdmin { .. } => Column::Role(Role::Admin),
            Actor::System(_) => Column::System,
            Actor::Reporter => Column::Reporter,
        }
    }
}

use Grant::{All as A, No as N, Scoped as S};

/// Who may do what. Columns: admin, responder, fix developer, partner, system, reporter.
#[rustfmt::skip]
pub const TABLE: [(Permission, [Grant; 6]); 25] = {
    use Permission::*;
    [
        //                     admin responder fixdev partner system reporter
        (SubmitReport,         [A,    A,        N,     N,      A,     A]),
        (ListReports,          [A,    S,        N,     N,      A,     N]),
        (ReadReport,           [A,    S,        N,     N,      A,     N]),
        (ChangeReport,         [A,    S,        N,     N,      A,     N]),
        (AddReporterMessage,   [A,    S,        N,     N,      A,     A]),
        (ManageReportAccess,   [A,    N,        N,     N,      N,     N]),
        (ManageAccounts,       [A,    N,        N,     N,      N,     N]),
        (ListTeam,             [A,    A,        N,     N,      A,     N]),
        (ReadCatalogue,        [A,    A,        N,     N,      A,     N]),
        (ManageCatalogue,      [A,    N,        N,     N,      N,     N]),
        (ManageCalendar,       [A,    N,        N,     N,      N,     N]),
        (ManageCveIds,         [A,    N,        N,     N,      N,     N]),
        (PublishCve,           [A,    N,        N,     N,      A,     N]),
        (EditAdvisory,         [A,    S,        N,     N,      A,     N]),
        (ImportAdvisory,       [A,    N,        N,     N,      N,     N]),
        (ReviewAdvisory,       [A,    S,        N,     N,      N,     N]),
        (PublishAdvisory,      [A,    N,        N,     N,      A,     N]),
        (PlanDisclosure,       [A,    S,        N,     N,      A,     N]),
        (ManagePartners,       [A,    N,        N,     N,      N,     N]),
        (ReadShared,           [A,    N,        N,     S,      N,     N]),
        (ManageFixRepository,  [A,    S,        N,     N,      A,     N]),
        (UseFixRepository,     [A,    S,        S,     N,      A,     N]),
        (ManageJobs,           [A,    N,        N,     N,      A,     N]),
        (ReadAudit,            [A,    N,        N,     N,      A,     N]),
        (ReadMetrics,          [A,    S,        N,     N,      A,     N]),
    ]
};

impl Permission {
    /// Every permission, in [`TABLE`] order.
    pub const ALL: [Permission; 25] = {
        let mut all = [Permission::SubmitReport; 25];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// This permission, checked on one report (for those that [`Concerns::Report`]).
    pub const fn on(self, report: ReportId) -> OnReport {
        OnReport { permission: self, report }
    }

    /// This permission, checked on one notice to partners (for those that
    /// [`Concerns::Shared`]).
    pub const fn on_notice(self, notice: i64) -> OnNotice {
        OnNotice { permission: self, notice }
    }

    /// What a scoped grant of this permission is about.
    pub const fn concerns(self) -> Concerns {
        use Permission::*;
        match self {
            // A fix repository is a report's (its team and the fix developers invited to it,
            // who are members of the report with a role that grants nothing else of it).
            ReadReport | ChangeReport | AddReporterMessage | ManageReportAccess | PlanDisclosure
            | ManageFixRepository | UseFixRepository => Concerns::Report,
            ReadShared => Concerns::Shared,
            SubmitReport | ListReports | ManageAccounts | ListTeam | ReadCatalogue | ManageCatalogue
            | ManageCalendar | ManageCveIds | PublishCve | EditAdvisory | ImportAdvisory | ReviewAdvisory
            | PublishAdvisory | ManagePartners | ManageJobs | ReadAudit | ReadMetrics => Concerns::Kind,
        }
    }

    /// How people read it in an error ("you may not {describe}").
    pub fn describe(self) -> &'static str {
        use Permission::*;
        match self {
            SubmitReport => "submit reports",
            ListReports => "list reports",
            ReadReport => "read this report",
            ChangeReport => "change this report",
            AddReporterMessage => "add a reporter message",
            ManageReportAccess => "manage access to this report",
            ManageAccounts => "manage accounts",
            ListTeam => "list the team",
            ReadCatalogue => "read the product catalogue",
            ManageCatalogue => "manage the product catalogue",
            ManageCalendar => "manage the business calendar",
            ManageCveIds => "manage CVE IDs",
            PublishCve => "publish CVE records",
            EditAdvisory => "edit advisories",
            ImportAdvisory => "import advisories",
            ReviewAdvisory => "review advisories",
            PublishAdvisory => "publish advisories",
            PlanDisclosure => "plan disclosures",
            ManagePartners => "manage partners",
            ReadShared => "read what was shared",
            ManageFixRepository => "manage fix repositories",
            UseFixRepository => "use this fix repository",
            ManageJobs => "manage jobs",
            ReadAudit => "read the audit trail",
            ReadMetrics => "read metrics",
        }
    }
}

/// What `column` may do with `permission`: a lookup in [`TABLE`].
pub fn grant_to(column: Column, permission: Permission) -> Grant {
    TABLE.iter().find(|(p, _)| *p == permission).map_or(Grant::No, |(_, row)| row[column.index()])
}

/// What `actor` may do with `permission`.
pub fn grant(actor: &Actor, permission: Permission) -> Grant {
    grant_to(Column::of(actor), permission)
}

/// How a team member is tied to a report: the facts need-to-know is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReportTies {
    /// The report is assigned to them.
    pub assigned: bool,
    /// They were added to the report.
    pub added: bool,
    /// They are responsible for the report's product.
    pub responsible_for_product: bool,
}

impl ReportTies {
    /// Whether a member with a scoped grant may know of the report: any one tie is enough.
    /// The store's SQL (`embargo_store::rules::visible_to`) is checked against this.
    pub fn need_to_know(self) -> bool {
        self.assigned || self.added || self.responsible_for_product
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use Permission::*;

    #[test]
    fn every_permission_has_exactly_one_row() {
        for permission in Permission::ALL {
            assert_eq!(TABLE.iter().filter(|(p, _)| *p == permission).count(), 1, "{permission:?}");
        }
        // `ALL` is built from the table; this match fails to compile when a variant is
        // added, and the count below fails when it has no row.
        let count = |p: Permission| match p {
            SubmitReport | ListReports | ReadReport | ChangeReport | AddReporterMessage | ManageReportAccess
            | ManageAccounts | ListTeam | ReadCatalogue | ManageCatalogue | ManageCalendar | ManageCveIds
            | PublishCve | EditAdvisory | ImportAdvisory | ReviewAdvisory | PublishAdvisory | PlanDisclosure
            | ManagePartners | ReadShared | ManageFixRepository | UseFixRepository | ManageJobs | ReadAudit
            | ReadMetrics => 1,
        };
        assert_eq!(Permission::ALL.iter().map(|p| count(*p)).sum::<usize>(), 25);
    }

    #[test]
    fn admins_and_local_administrators_may_do_everything() {
        let admin = Actor::User { id: UserId(1), role: Role::Admin };
        let local = Actor::LocalAdmin { os_user: "root".into() };
        for permission in Permission::ALL {
            assert_eq!(grant(&admin, permission), Grant::All, "{permission:?}");
            assert_eq!(grant(&local, permission), Grant::All, "{permission:?}");
        }
    }

    /// The permissions that `ManageAccounts` used to stand for are now separate, and only
    /// the account permission guards accounts.
    #[test]
    fn accounts_calendar_catalogue_and_cve_are_separate_resources() {
        let system = Actor::System("job");
        assert_eq!(grant(&system, ManageAccounts), Grant::No);
        assert_eq!(grant(&system, ManageReportAccess), Grant::No);
        assert_eq!(grant(&system, PublishCve), Grant::All, "the CVE publication job runs as the system");
        assert_eq!(grant(&system, ManageCveIds), Grant::No);
        assert_eq!(grant(&system, ManageCalendar), Grant::No);
        // A scheduled disclosure publishes as the system, at the time a person chose (ADR 12).
        assert_eq!(grant(&system, PublishAdvisory), Grant::All);
        assert_eq!(grant(&system, ReviewAdvisory), Grant::No, "the system is nobody's second pair of eyes");
    }

    #[test]
    fn responders_work_within_need_to_know_and_do_not_publish() {
        let responder = Actor::User { id: UserId(2), role: Role::Responder };
        for permission in [ListReports, ReadReport, ChangeReport, EditAdvisory, ReviewAdvisory, ReadMetrics] {
            assert_eq!(grant(&responder, permission), Grant::Scoped, "{permission:?}");
        }
        for permission in [SubmitReport, ListTeam, ReadCatalogue] {
            assert_eq!(grant(&responder, permission), Grant::All, "{permission:?}");
        }
        for permission in [
            ManageAccounts,
            ManageReportAccess,
            ManageCatalogue,
            ManageCalendar,
            ManageCveIds,
            PublishCve,
            ImportAdvisory,
            PublishAdvisory,
            ManagePartners,
            ReadShared,
            ManageJobs,
            ReadAudit,
        ] {
            assert_eq!(grant(&responder, permission), Grant::No, "{permission:?}");
        }
    }

    #[test]
    fn a_fix_developer_only_works_in_the_repositories_given_to_them() {
        let dev = Actor::User { id: UserId(3), role: Role::FixDeveloper };
        for permission in Permission::ALL {
            let expected = if permission == UseFixRepository { Grant::Scoped } else { Grant::No };
            assert_eq!(grant(&dev, permission), expected, "{permission:?}");
        }
    }

    #[test]
    fn a_partner_only_reads_what_was_shared_with_their_organisation() {
        let partner = Actor::User { id: UserId(4), role: Role::Partner };
        for permission in Permission::ALL {
            let expected = if permission == ReadShared { Grant::Scoped } else { Grant::No };
            assert_eq!(grant(&partner, permission), expected, "{permission:?}");
        }
    }

    #[test]
    fn a_reporter_submits_and_answers_only() {
        for permission in Permission::ALL {
            let expected = if matches!(permission, SubmitReport | AddReporterMessage) { Grant::All } else { Grant::No };
            assert_eq!(grant(&Actor::Reporter, permission), expected, "{permission:?}");
        }
    }
}
