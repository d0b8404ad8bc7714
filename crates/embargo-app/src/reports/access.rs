//! Reading a report and its attachments (every read audited), and who may: members,
//! assignment, the product (which decides who sees it) and the reporter's status link.

use embargo_domain::{Actor, ReferenceId, ReportId};
use embargo_store::attachments::{self, AttachmentMeta};
use embargo_store::messages::{self, MessageKind, MessageRecord};
use embargo_store::reporters::ReporterRecord;
use embargo_store::reports::{ReportRecord, TransitionRecord};

use super::{audit_read, find, require_on, subject, team_mail_in};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};
use embargo_store::{Tx, reports as sr};

/// A report with everything about it, as read by an authorised actor.
#[derive(Debug, Clone)]
pub struct ReportDetail {
    /// The report.
    pub report: ReportRecord,
    /// Who reported it.
    pub reporter: ReporterRecord,
    /// Messages, oldest first.
    pub messages: Vec<MessageRecord>,
    /// Attachments.
    pub attachments: Vec<AttachmentMeta>,
    /// Lifecycle history.
    pub transitions: Vec<TransitionRecord>,
    /// Severity, CVSS, CWE, SSVC and affected versions.
    pub assessment: crate::assessment::Assessment,
    /// SLA milestones and deadlines.
    pub sla: embargo_store::sla::SlaRecord,
    /// The SLA clocks, as of now.
    pub clocks: Vec<crate::sla::Clock>,
    /// SLA warnings and escalations raised.
    pub alerts: Vec<embargo_store::sla::Alert>,
    /// The team's time zone (for showing deadlines).
    pub time_zone: jiff::tz::TimeZone,
}

/// Why a report is read: shown to a person, or exported in full (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPurpose {
    /// Viewed.
    Read,
    /// Exported.
    Export,
}

/// Reads a report in full. Every read is audited (see [`audit_read`]).
pub async fn show(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    purpose: ReadPurpose,
) -> Result<ReportDetail, AppError> {
    let mut tx = app.store.snapshot().await?;
    let read = read_in_full(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(read.report.id), reference).await?;
    let detail = detail_in(&mut tx, app, read).await?;
    tx.rollback().await?;
    let action = match purpose {
        ReadPurpose::Read => "report.read",
        ReadPurpose::Export => "report.export",
    };
    audit_read(app, actor, action, &subject(reference), &read_details(&detail)).await?;
    Ok(detail)
}

/// The details of a `report.read` or `report.export` audit entry.
pub(super) fn read_details(detail: &ReportDetail) -> String {
    format!("messages={}", detail.messages.len())
}

/// A report with its reporter, SLA record, assessment, near-duplicate signature and the
/// calendar's version, in one statement ([`sr::get_for_page`]); "not found" when there is no
/// such report. The caller checks the actor's permission before using any of it.
pub(super) async fn read_in_full(tx: &mut Tx, reference: &ReferenceId) -> Result<sr::PageRead, AppError> {
    sr::get_for_page(tx, reference, crate::sla::CALENDAR_VERSION_KEY)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {reference}")))
}

/// Everything about a report read by [`read_in_full`], in the caller's snapshot, for an actor whose permission
/// to read it the caller has checked; the caller records the read.
pub(super) async fn detail_in(tx: &mut Tx, app: &App, read: sr::PageRead) -> Result<ReportDetail, AppError> {
    let sr::PageRead { report, reporter, assessment, sla, meta: calendar_version, .. } = read;
    let assessment = crate::assessment::of_document(assessment.0)?;
    let calendar = crate::sla::calendar_in_at(tx, app, calendar_version).await?;
    let messages = messages::list(tx, report.id).await?;
    let attachments = attachments::list(tx, report.id).await?;
    let transitions = sr::transitions(tx, report.id).await?;
    let alerts = embargo_store::sla::alerts(tx, report.id).await?;
    let (_, clocks) = crate::sla::compute(app, &calendar, &report, &transitions, sla.last_update_at, &sla);
    Ok(ReportDetail {
        report,
        reporter,
        messages,
        attachments,
        transitions,
        assessment,
        sla,
        clocks,
        alerts,
        time_zone: calendar.time_zone.clone(),
    })
}

/// An attachment's content, for download. Every download is audited.
#[derive(Debug, Clone)]
pub struct Download {
    /// File name as given (untrusted).
    pub filename: String,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Reads an attachment of a report.
pub async fn attachment(app: &App, actor: &Actor, reference: &ReferenceId, id: i64) -> Result<Download, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let meta = attachments::list(&mut tx, report.id).await?.into_iter().find(|a| a.id == id);
    let data = attachments::data(&mut tx, report.id, id).await?;
    tx.rollback().await?;
    let (Some(meta), Some(data)) = (meta, data) else {
        return Err(AppError::NotFound(format!("attachment {id} of {reference}")));
    };
    audit_read(app, actor, "report.attachment.read", &subject(reference), &format!("attachment={id}")).await?;
    Ok(Download { filename: meta.filename, data })
}

/// A message exactly as it was received (the whole mail with its headers), for "view
/// original". Reading it is a read of report content: permission-checked and audited.
pub async fn original_message(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    message: i64,
) -> Result<Vec<u8>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let raw = messages::raw(&mut tx, report.id, message).await?;
    tx.rollback().await?;
    let raw = raw.ok_or_else(|| AppError::NotFound(format!("the original of message {message} of {reference}")))?;
    audit_read(app, actor, "report.message.original.read", &subject(reference), &format!("message={message}")).await?;
    Ok(raw)
}

/// The reference of a report by id (for links), if the actor may read it.
pub async fn reference_of(app: &App, actor: &Actor, id: ReportId) -> Result<Option<ReferenceId>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = sr::get(&mut tx, id).await?;
    let visible = match &found {
        Some(r) => authz::require(&mut tx, actor, Permission::ReadReport.on(r.id)).await.is_ok(),
        None => false,
    };
    tx.rollback().await?;
    Ok(found.filter(|_| visible).map(|r| r.reference))
}

/// Team action on the reporter's status link: revoke it, or replace it and mail the reporter
/// the new one.
pub async fn reset_status_link(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    revoke: bool,
) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    if revoke {
        sr::revoke_status_token(&mut tx, report.id, app.now()).await?;
        audit::record(&mut tx, app, actor, "report.status_link.revoke", &subject(reference), "").await?;
    } else {
        let token = crate::tokens::secret("");
        sr::rotate_status_token(&mut tx, &report, &token, &crate::tokens::hash(&token), app.now()).await?;
        let body = format!(
            "Hello,\n\nThe private link to the status page of your report {reference} was replaced.\n\
             The old link no longer works. The new one is:\n\n{}\n\n\
             Do not share it.\n\n-- \n{} security team\n",
            crate::mail::STATUS_LINK_PLACEHOLDER,
            app.config.organisation.name
        );
        // The stored text holds a placeholder; the mail job puts the new link in.
        let subject_line = format!("[{}] Your new status link", report.reference);
        team_mail_in(&mut tx, app, actor, &report, MessageKind::Note, &subject_line, &body).await?;
        audit::record(&mut tx, app, actor, "report.status_link.rotate", &subject(reference), "").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives a team member access to a report (need-to-know). Admins only.
pub async fn add_member(app: &App, actor: &Actor, reference: &ReferenceId, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    // Those who may not read the report do not learn that it exists.
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await?;
    let user = embargo_store::users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    sr::add_member(&mut tx, report.id, user.id, app.now()).await?;
    audit::record(&mut tx, app, actor, "report.member.add", &subject(reference), &format!("user={}", user.id)).await?;
    tx.commit().await?;
    Ok(())
}

/// Assigns a report to a team member (`None`: nobody). Admins assign anyone; a responder
/// who can work on the report may take it themselves.
pub async fn assign(app: &App, actor: &Actor, reference: &ReferenceId, email: Option<&str>) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let user = match email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => Some(
            embargo_store::users::by_email(&mut tx, email)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| AppError::NotFound(format!("account {email}")))?
                .id,
        ),
        None => None,
    };
    // A responder may take an unassigned report; anything that takes access from someone
    // else (reassigning, unassigning) needs the right to manage access.
    let is_self = matches!((actor, user), (Actor::User { id, .. }, Some(u)) if *id == u);
    if !(is_self && report.assignee.is_none_or(|a| Some(a) == user)) {
        authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await?;
    }
    sr::assign(&mut tx, report.id, user, app.now()).await?;
    let who = user.map_or_else(|| "nobody".to_owned(), |u| format!("user:{u}"));
    audit::record(&mut tx, app, actor, "report.assign", &subject(reference), &format!("assignee={who}")).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the product a report concerns (admins: it decides who sees the report).
pub async fn set_product(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    product: Option<i64>,
) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    // The product decides which responders see the report: an access decision.
    authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await?;
    if let Some(id) = product
        && !embargo_store::products::list(&mut tx).await?.iter().any(|p| p.id == id)
    {
        return Err(AppError::NotFound(format!("product {id}")));
    }
    sr::set_product(&mut tx, report.id, product, app.now()).await?;
    audit::record(&mut tx, app, actor, "report.product", &subject(reference), &format!("product={product:?}")).await?;
    tx.commit().await?;
    Ok(())
}

/// What an actor may do on one report, decided by the checks its use cases make
/// ([`authz::require`] on the report, and [`assign`]'s rule for taking a report): pages
/// offer only the forms a person can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportAbilities {
    /// Work on it: state, replies, notes, assessment, status link, splitting
    /// (`ChangeReport`).
    pub change: bool,
    /// Decide who sees it: assign to anyone, its product, its members (`ManageReportAccess`).
    pub manage_access: bool,
    /// Take it: assign it to themselves (unassigned, and they may work on it).
    pub take: bool,
    /// Start an advisory from it (`EditAdvisory`).
    pub edit_advisory: bool,
}

/// The [`ReportAbilities`] of `actor` on a report they may read ("not found" otherwise).
pub async fn abilities(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<ReportAbilities, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let abilities = abilities_in(&mut tx, actor, &report).await?;
    tx.rollback().await?;
    Ok(abilities)
}

/// [`abilities`] on a report the actor may read, in the caller's snapshot.
pub(crate) async fn abilities_in(
    tx: &mut embargo_store::Tx,
    actor: &Actor,
    report: &ReportRecord,
) -> Result<ReportAbilities, AppError> {
    let change = authz::require(tx, actor, Permission::ChangeReport.on(report.id)).await.is_ok();
    let manage_access = authz::require(tx, actor, Permission::ManageReportAccess.on(report.id)).await.is_ok();
    let edit_advisory = authz::require(tx, actor, Permission::EditAdvisory).await.is_ok();
    let is_user = matches!(actor, Actor::User { .. });
    Ok(ReportAbilities { change, manage_access, take: change && is_user && report.assignee.is_none(), edit_advisory })
}

/// What an actor may do on the inbox's selected reports, by the table (each report is
/// checked again by its use case): assign to anyone, or only take unassigned ones.
pub fn may_assign_anyone(actor: &Actor) -> bool {
    authz::grant(actor, Permission::ManageReportAccess) == embargo_domain::access::Grant::All
}

/// What removing a member from a report changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRemoved {
    /// They had been added to the report.
    pub was_member: bool,
    /// The report was assigned to them (now unassigned).
    pub was_assignee: bool,
    /// They still see the report as a responder of its product (take that away with
    /// [`crate::accounts::remove_product_responder`]).
    pub still_via_product: bool,
}

/// Takes a team member off a report (those who may manage its access): their membership
/// goes and, if it was assigned to them, the report becomes unassigned. A responder of the
/// report's product keeps seeing it through the product; the answer says so.
pub async fn remove_report_member(
    app: &App,
    actor: &Actor,
    reference: &embargo_domain::ReferenceId,
    email: &str,
) -> Result<MemberRemoved, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    // Those who may not read the report do not learn that it exists.
    let report = super::readable(&mut tx, actor, reference).await?;
    authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await?;
    let user = embargo_store::users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    let was_member = embargo_store::reports::remove_member(&mut tx, report.id, user.id).await?;
    let was_assignee = report.assignee == Some(user.id);
    if was_assignee {
        embargo_store::reports::assign(&mut tx, report.id, None, now).await?;
    }
    if !was_member && !was_assignee {
        tx.rollback().await?;
        return Err(AppError::NotFound(format!("{} as a member of {reference}", user.email)));
    }
    let still_via_product = embargo_store::reports::is_member(&mut tx, report.id, user.id).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "report.member.remove",
        &format!("report:{reference}"),
        &format!("user={} unassigned={was_assignee}", user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(MemberRemoved { was_member, was_assignee, still_via_product })
}

/// The addresses of the team members added to a report (those who manage its access).
pub async fn report_members(
    app: &App,
    actor: &Actor,
    reference: &embargo_domain::ReferenceId,
) -> Result<Vec<String>, AppError> {
    let mut tx = app.store.snapshot().await?;
    // Those who may not read the report do not learn that it exists.
    let report = super::readable(&mut tx, actor, reference).await?;
    let emails = report_members_in(&mut tx, actor, report.id).await?;
    tx.rollback().await?;
    Ok(emails)
}

/// [`report_members`] of a report the actor may read, in the caller's snapshot.
pub(crate) async fn report_members_in(
    tx: &mut embargo_store::Tx,
    actor: &Actor,
    report: embargo_domain::ReportId,
) -> Result<Vec<String>, AppError> {
    authz::require(tx, actor, Permission::ManageReportAccess.on(report)).await?;
    let ids = embargo_store::reports::members(tx, report).await?;
    let mut emails = Vec::new();
    for id in ids {
        if let Some(user) = embargo_store::users::get(tx, id).await? {
            emails.push(user.email);
        }
    }
    Ok(emails)
}
