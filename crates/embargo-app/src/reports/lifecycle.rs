//! Lifecycle changes: state transitions with the reporter's notice, duplicates, splitting a
//! report, and upstream dependencies.

use embargo_domain::{Actor, Lifecycle, ReferenceId, ReportState, Target, Transition, TransitionError};
use embargo_store::messages::{self, MessageKind, NewMessage};
use embargo_store::reporters;
use embargo_store::reports::{ReportRecord, Upstream};
use embargo_store::{Tx, reports as sr};

use super::{Creation, check_text, create_in, find, outbound_in, require_on, subject};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// What to tell the reporter about a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The templated notice for the new state (see [`crate::mail::state_notice`]).
    Template,
    /// This text instead (the team edited the template).
    Custom(String),
    /// Nothing.
    None,
}

/// Moves a report to another state, checked against the lifecycle, and mails the reporter
/// the templated notice for reporter-visible states (see [`change_state`]).
pub async fn transition(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: Target<ReferenceId>,
) -> Result<Transition, AppError> {
    change_state(app, actor, reference, target, Notice::Template).await
}

/// Moves a report to `target` and, as `notice` says, records a message to the reporter on
/// the thread and enqueues its mail, all in one transaction. The original of a duplicate must
/// exist and be readable by the actor.
pub async fn change_state(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: Target<ReferenceId>,
    notice: Notice,
) -> Result<Transition, AppError> {
    if target.original() == Some(reference) {
        return Err(TransitionError::DuplicateOfItself.into());
    }
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let to = target
        .resolve(async |other| {
            let original = find(&mut tx, &other).await?;
            require_on(&mut tx, actor, Permission::ReadReport.on(original.id), &other).await?;
            Ok::<_, AppError>(original.id)
        })
        .await?;
    let transition = change_state_in(&mut tx, app, actor, reference, to, notice).await?;
    tx.commit().await?;
    metrics::counter!("embargo_report_transitions_total", "to" => to.code()).increment(1);
    tracing::info!(report = %reference, from = transition.from.code(), to = to.code(), "report state changed");
    Ok(transition)
}

/// [`change_state`] in the caller's transaction, permission already checked: records the
/// transition, the notice (as `notice` says), the audit entry, and moves the SLA clocks.
pub(crate) async fn change_state_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    to: ReportState,
    notice: Notice,
) -> Result<Transition, AppError> {
    let report = find(tx, reference).await?;
    let mut life = Lifecycle::restore(report.id, report.state, Vec::new());
    let transition = life.apply(to, actor.clone(), app.now())?.clone();
    if to == ReportState::ReadyForDisclosure {
        // A private fix whose affected lines did not all pass CI keeps the report back
        // (unless a person overrode the line: `fixes::override_ci`).
        let blockers = embargo_store::fixes::blockers(tx, report.id).await?;
        if !blockers.is_empty() {
            let list: Vec<String> = blockers.iter().map(ToString::to_string).collect();
            return Err(AppError::Invalid(format!(
                "the fix is not ready: {}. Fix the line, or override it with a reason (embargo fix override)",
                list.join("; ")
            )));
        }
    }
    sr::record_transition(tx, report.id, &transition).await?;
    let reporter = reporters::get(tx, report.reporter_id).await?;
    let reply_address = crate::mail::reply_address(app, &report.reply_token);
    let template = crate::mail::state_notice(app, reference, reporter.name.as_deref(), to, &reply_address);
    let text = match (notice, template) {
        (Notice::None, _) | (Notice::Template, None) => None,
        (Notice::Template, Some(t)) => Some(t),
        (Notice::Custom(body), template) => Some(crate::mail::MailText {
            subject: template.map_or_else(|| format!("[{reference}] Update on your report"), |t| t.subject),
            body: check_text(&body, "message to the reporter")?,
        }),
    };
    let notified = text.is_some();
    if let Some(text) = text {
        outbound_in(tx, app, actor, &report, &text.subject, &text.body).await?;
    }
    let mut details = format!("from={} to={} notice={notified}", transition.from.code(), transition.to.code());
    if let ReportState::Closed(reason) = to {
        details.push_str(&format!(" reason={}", reason.code()));
        if let embargo_domain::CloseReason::Duplicate { of } = reason
            && let Some(other) = sr::get(tx, of).await?
        {
            details.push_str(&format!(" duplicate_of={}", other.reference));
        }
    }
    audit::record(tx, app, actor, "report.transition", &subject(reference), &details).await?;
    crate::sla::refresh_in(tx, app, report.id, notified.then(|| app.now())).await?;
    Ok(transition)
}

/// The text of the notice the reporter would get for moving a report to `target` (for the
/// team to edit before it goes); `None` for states the reporter is not told about.
pub async fn notice_template(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: &Target<ReferenceId>,
) -> Result<Option<crate::mail::MailText>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let reporter = reporters::get(&mut tx, report.reporter_id).await?;
    // The original of a duplicate must be a report the actor may read, as the change will
    // check: asked now, before the notice is edited (the notice does not name it).
    let to = target
        .clone()
        .resolve(async |other| {
            let original = find(&mut tx, &other).await?;
            require_on(&mut tx, actor, Permission::ReadReport.on(original.id), &other).await?;
            Ok::<_, AppError>(original.id)
        })
        .await?;
    tx.rollback().await?;
    let reply_address = crate::mail::reply_address(app, &report.reply_token);
    Ok(crate::mail::state_notice(app, reference, reporter.name.as_deref(), to, &reply_address))
}

/// Splits one finding off a report that piles several together: a new report for the same
/// reporter, with `body` as its text, linked to the original (`split_from`), with the
/// original's product, assignee and members, and its own SLA clock. The reporter is not
/// told (no acknowledgement, no notice). Returns the new report's reference.
pub async fn split(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    title: &str,
    body: &str,
) -> Result<ReferenceId, AppError> {
    let title = title.trim();
    if title.is_empty() || title.len() > 500 {
        return Err(AppError::Invalid("the new report needs a title (at most 500 bytes)".into()));
    }
    let body = check_text(body, "text of the finding")?;
    let mut tx = app.store.begin().await?;
    let original = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(original.id), reference).await?;
    let now = app.now();
    let created = create_in(
        &mut tx,
        app,
        &Creation {
            channel: &original.channel,
            reporter: original.reporter_id,
            title,
            body: &body,
            details: None,
            product_id: original.product_id,
        },
    )
    .await?;
    sr::mark_split(&mut tx, created.id, original.id).await?;
    if original.assignee.is_some() {
        sr::assign(&mut tx, created.id, original.assignee, now).await?;
    }
    // Whoever of the team knew of the finding in the original may know of it here; a fix
    // developer's membership is their one fix, not the report's findings.
    for member in sr::members(&mut tx, original.id).await? {
        let role = embargo_store::users::get(&mut tx, member).await?.map(|u| u.role);
        if matches!(role, Some(embargo_domain::Role::Admin | embargo_domain::Role::Responder)) {
            sr::add_member(&mut tx, created.id, member, now).await?;
        }
    }
    let author = actor.to_string();
    // The finding is the reporter's text, entered by the team member who split it off.
    let message = messages::insert(
        &mut tx,
        &NewMessage {
            report: created.id,
            kind: MessageKind::Inbound,
            author: &author,
            sender: None,
            subject: Some(title),
            body: &body,
            raw: None,
            message_id: None,
            quarantined: false,
            pgp: None,
            auth: None,
            anomalies: None,
            at: now,
        },
    )
    .await?;
    crate::jobs::enqueue(&mut tx, app, &super::IndexJob::new(created.id, message, true)).await?;
    let entries = [
        audit::Entry {
            action: "report.split",
            subject: subject(reference),
            details: format!("into={}", created.reference),
        },
        audit::Entry {
            action: "report.create",
            subject: subject(&created.reference),
            details: format!("channel={} split_from={reference}", original.channel),
        },
    ];
    audit::record_many(&mut tx, app, actor, &entries).await?;
    tx.commit().await?;
    metrics::counter!("embargo_reports_received_total", "channel" => "split").increment(1);
    tracing::info!(report = %reference, into = %created.reference, "report split");
    Ok(created.reference)
}

/// A report's split links, as far as the actor may see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitLinks {
    /// The report it was split off.
    pub from: Option<ReferenceId>,
    /// The reports split off it, oldest first.
    pub into: Vec<ReferenceId>,
}

/// The reports a report was split from and into (only those the actor may read).
pub async fn split_links(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<SplitLinks, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let links = split_links_in(&mut tx, actor, &report).await?;
    tx.rollback().await?;
    Ok(links)
}

/// [`split_links`] of a report the actor may read, in the caller's snapshot.
pub(super) async fn split_links_in(tx: &mut Tx, actor: &Actor, report: &ReportRecord) -> Result<SplitLinks, AppError> {
    let into = sr::split_into(tx, report.id).await?;
    split_links_with(tx, actor, report, into).await
}

/// [`split_links_in`] with the reports split off this one already read
/// ([`sr::split_into`] or [`sr::linked_to`]).
pub(super) async fn split_links_with(
    tx: &mut Tx,
    actor: &Actor,
    report: &ReportRecord,
    into: Vec<(embargo_domain::ReportId, ReferenceId)>,
) -> Result<SplitLinks, AppError> {
    let mut links = SplitLinks::default();
    if let Some(from) = report.split_from
        && authz::require(tx, actor, Permission::ReadReport.on(from)).await.is_ok()
    {
        links.from = sr::get(tx, from).await?.map(|r| r.reference);
    }
    for (id, into) in into {
        if authz::require(tx, actor, Permission::ReadReport.on(id)).await.is_ok() {
            links.into.push(into);
        }
    }
    Ok(links)
}

/// The reports closed as duplicates of this one (threads linked both ways).
pub async fn duplicates_of(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<ReferenceId>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let visible = duplicates_in(&mut tx, actor, &report).await?;
    tx.rollback().await?;
    Ok(visible)
}

/// [`duplicates_of`] a report the actor may read, in the caller's snapshot.
pub(super) async fn duplicates_in(
    tx: &mut Tx,
    actor: &Actor,
    report: &ReportRecord,
) -> Result<Vec<ReferenceId>, AppError> {
    let (duplicates, _) = sr::linked_to(tx, report.id).await?;
    duplicates_visible(tx, actor, duplicates).await
}

/// Those of a report's duplicates (read by [`sr::linked_to`]) the actor may read.
pub(super) async fn duplicates_visible(
    tx: &mut Tx,
    actor: &Actor,
    duplicates: Vec<(embargo_domain::ReportId, ReferenceId)>,
) -> Result<Vec<ReferenceId>, AppError> {
    let mut visible = Vec::new();
    for (id, duplicate) in duplicates {
        if authz::require(tx, actor, Permission::ReadReport.on(id)).await.is_ok() {
            visible.push(duplicate);
        }
    }
    Ok(visible)
}

/// Marks a report as being about a dependency ("a vulnerability present in another project
/// that we depend on"), recording the upstream project and its security contact, so that
/// coordination with them is tracked on the report.
pub async fn mark_upstream(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    project: &str,
    contact: &str,
) -> Result<(), AppError> {
    let (project, contact) = (project.trim(), contact.trim());
    if project.is_empty() || project.len() > 200 || contact.is_empty() || contact.len() > 500 {
        return Err(AppError::Invalid("an upstream needs a project name and a security contact".into()));
    }
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let upstream = Upstream { project: project.to_owned(), contact: contact.to_owned() };
    sr::set_upstream(&mut tx, &report, &upstream, app.now()).await?;
    audit::record(&mut tx, app, actor, "report.upstream", &subject(reference), "marked").await?;
    tx.commit().await?;
    Ok(())
}
