//! Reports: submission, listing, reading and lifecycle changes.

use embargo_domain::{Actor, Lifecycle, ReferenceId, ReportId, ReportState, Transition};
pub use embargo_store::attachments::AttachmentMeta;
use embargo_store::attachments::{self, NewAttachment};
use embargo_store::messages::{self, NewMessage};
pub use embargo_store::messages::{MessageKind, MessageRecord};
use embargo_store::reporters;
pub use embargo_store::reporters::ReporterRecord;
use embargo_store::reports::{NewReport, ReportFilter};
pub use embargo_store::reports::{ReportRecord, TransitionRecord, Upstream};
use embargo_store::{Tx, reports as sr};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// How a report arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// By e-mail (SMTP, MTA pipe or IMAP).
    Email,
    /// Through the web form.
    Web,
    /// Through the JSON API.
    Api,
    /// Entered on the command line.
    Cli,
}

impl Channel {
    /// Stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Cli => "cli",
        }
    }
}

/// A file that came with a report or message.
#[derive(Debug, Clone)]
pub struct Upload {
    /// File name as given.
    pub filename: String,
    /// Media type as given.
    pub media_type: String,
    /// Content.
    pub data: Vec<u8>,
}

/// A new report, as received.
#[derive(Debug, Clone)]
pub struct Submission {
    /// How it arrived.
    pub channel: Channel,
    /// The reporter's address.
    pub reporter_email: String,
    /// The reporter's name, if given.
    pub reporter_name: Option<String>,
    /// Title (or mail subject).
    pub title: String,
    /// Text.
    pub body: String,
    /// Files.
    pub attachments: Vec<Upload>,
    /// The original message, kept sealed so that nothing is lost to parsing.
    pub raw: Option<Vec<u8>>,
    /// Mail Message-ID, for threading replies.
    pub message_id: Option<String>,
    /// Whether to send the reporter the acknowledgement mail (not for auto-replies, bounces
    /// and mail loops).
    pub acknowledge: bool,
    /// OpenPGP status of the message at intake, if it was encrypted.
    pub pgp: Option<String>,
    /// Sender authentication results, for mail received over SMTP.
    pub auth: Option<String>,
}

/// What [`submit`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Database id.
    pub id: ReportId,
    /// Human reference.
    pub reference: ReferenceId,
}

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
}

/// Why a report is read: shown to a person, or exported in full (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPurpose {
    /// Viewed.
    Read,
    /// Exported.
    Export,
}

fn subject(reference: &ReferenceId) -> String {
    format!("report:{reference}")
}

fn validate(app: &App, submission: &Submission) -> Result<(), AppError> {
    let email = submission.reporter_email.trim();
    if email.is_empty() || !email.contains('@') || email.len() > 320 || email.contains(char::is_whitespace) {
        return Err(AppError::Invalid("the reporter's e-mail address is missing or malformed".into()));
    }
    let size = submission.body.len()
        + submission.title.len()
        + submission.raw.as_ref().map_or(0, Vec::len)
        + submission.attachments.iter().map(|a| a.data.len()).sum::<usize>();
    let limit = app.config.limits.max_message_bytes;
    if size as u64 > limit.saturating_mul(2) {
        return Err(AppError::Invalid(format!("the report is larger than the limit of {limit} bytes")));
    }
    Ok(())
}

/// Records a new report with its first message and attachments, in one transaction.
/// When this returns, the report is durably committed.
pub async fn submit(app: &App, actor: &Actor, submission: Submission) -> Result<Submitted, AppError> {
    let mut tx = app.store.begin().await?;
    let submitted = submit_in(&mut tx, app, actor, &submission).await?;
    tx.commit().await?;
    submitted_log(&submitted, submission.channel);
    Ok(submitted)
}

/// Logs and counts a committed submission.
pub(crate) fn submitted_log(submitted: &Submitted, channel: Channel) {
    metrics::counter!("embargo_reports_received_total", "channel" => channel.as_str()).increment(1);
    tracing::info!(report = %submitted.reference, channel = channel.as_str(), "report received");
}

/// [`submit`] inside the caller's transaction (intake commits several messages at once).
pub(crate) async fn submit_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    submission: &Submission,
) -> Result<Submitted, AppError> {
    validate(app, submission)?;
    let now = app.now();
    authz::require(tx, actor, Permission::SubmitReport).await?;
    let reporter =
        reporters::find_or_create(tx, submission.reporter_email.trim(), submission.reporter_name.as_deref(), now)
            .await?;
    let year = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
    let reference = sr::next_reference(tx, &app.config.reference_prefix(), year).await?;
    let title = match submission.title.trim() {
        "" => "(no subject)",
        t => t,
    };
    let status_token = crate::tokens::secret("");
    let id = sr::insert(
        tx,
        &NewReport {
            reference: &reference,
            channel: submission.channel.as_str(),
            reporter_id: reporter,
            title,
            body: &submission.body,
            received_at: now,
            reply_token: &crate::tokens::reply(),
            status_token: &status_token,
            status_token_hash: &crate::tokens::hash(&status_token),
        },
    )
    .await?;
    let message = insert_inbound(tx, id, submission, title, false, now).await?;
    if submission.acknowledge {
        let key = format!("ack:{}", id.0);
        crate::jobs::enqueue_report_mail(tx, app, crate::jobs::ACKNOWLEDGEMENT, id, Some(message), &key).await?;
    }
    audit::record(
        tx,
        app,
        actor,
        "report.create",
        &subject(&reference),
        &format!("channel={} attachments={}", submission.channel.as_str(), submission.attachments.len()),
    )
    .await?;
    Ok(Submitted { id, reference })
}

/// Stores an inbound message with its attachments; returns the message's id.
async fn insert_inbound(
    tx: &mut Tx,
    report: ReportId,
    message: &Submission,
    subject: &str,
    quarantined: bool,
    now: embargo_domain::Timestamp,
) -> Result<i64, AppError> {
    let id = messages::insert(
        tx,
        &NewMessage {
            report,
            kind: MessageKind::Inbound,
            author: "reporter",
            sender: Some(message.reporter_email.trim()),
            subject: Some(subject),
            body: &message.body,
            raw: message.raw.as_deref(),
            message_id: message.message_id.as_deref(),
            quarantined,
            pgp: message.pgp.as_deref(),
            auth: message.auth.as_deref(),
            at: now,
        },
    )
    .await?;
    for upload in &message.attachments {
        attachments::insert(
            tx,
            &NewAttachment {
                report,
                message: Some(id),
                filename: &upload.filename,
                media_type: &upload.media_type,
                data: &upload.data,
                at: now,
            },
        )
        .await?;
    }
    Ok(id)
}

/// Adds an inbound message to an existing report: a reply from the reporter, or, with
/// `quarantined`, mail to the report's reply address from someone else.
pub async fn add_inbound_message(
    app: &App,
    actor: &Actor,
    report: ReportId,
    message: &Submission,
    quarantined: bool,
) -> Result<ReferenceId, AppError> {
    let mut tx = app.store.begin().await?;
    let reference = add_inbound_message_in(&mut tx, app, actor, report, message, quarantined).await?;
    tx.commit().await?;
    tracing::info!(report = %reference, quarantined, "inbound message threaded");
    Ok(reference)
}

/// [`add_inbound_message`] inside the caller's transaction.
pub(crate) async fn add_inbound_message_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: ReportId,
    message: &Submission,
    quarantined: bool,
) -> Result<ReferenceId, AppError> {
    let now = app.now();
    authz::require(tx, actor, Permission::ChangeReportState(report)).await?;
    let record = sr::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    insert_inbound(tx, report, message, &message.title, quarantined, now).await?;
    audit::record(
        tx,
        app,
        actor,
        if quarantined { "report.message.quarantine" } else { "report.message.add" },
        &subject(&record.reference),
        &format!("kind=inbound attachments={}", message.attachments.len()),
    )
    .await?;
    Ok(record.reference)
}

/// Lists reports the actor may see, newest first. Listing shows titles, so it is audited.
pub async fn list(app: &App, actor: &Actor, state: Option<&str>) -> Result<Vec<ReportRecord>, AppError> {
    if let Some(state) = state
        && !ReportState::CODES.contains(&state)
    {
        return Err(AppError::Invalid(format!(
            "unknown state {state:?}; expected one of {}",
            ReportState::CODES.join(", ")
        )));
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ListReports).await?;
    let member = match actor {
        Actor::User { id, role: embargo_domain::Role::Responder } => Some(*id),
        _ => None,
    };
    let reports = sr::list(&mut tx, &ReportFilter { state: state.map(str::to_owned), member, limit: None }).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "report.list",
        "reports",
        &format!("state={} count={}", state.unwrap_or("any"), reports.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(reports)
}

async fn find(tx: &mut Tx, reference: &ReferenceId) -> Result<ReportRecord, AppError> {
    sr::get_by_reference(tx, reference).await?.ok_or_else(|| AppError::NotFound(format!("report {reference}")))
}

/// Refuses a report-level permission as "not found", so that people off a report cannot
/// even learn that it exists.
async fn require_on(
    tx: &mut Tx,
    actor: &Actor,
    permission: Permission,
    reference: &ReferenceId,
) -> Result<(), AppError> {
    match authz::require(tx, actor, permission).await {
        Err(AppError::Forbidden(_)) => Err(AppError::NotFound(format!("report {reference}"))),
        other => other,
    }
}

/// Reads a report in full. Every read is audited in the same transaction.
pub async fn show(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    purpose: ReadPurpose,
) -> Result<ReportDetail, AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let reporter = reporters::get(&mut tx, report.reporter_id).await?;
    let messages = messages::list(&mut tx, report.id).await?;
    let attachments = attachments::list(&mut tx, report.id).await?;
    let transitions = sr::transitions(&mut tx, report.id).await?;
    let action = match purpose {
        ReadPurpose::Read => "report.read",
        ReadPurpose::Export => "report.export",
    };
    audit::record(&mut tx, app, actor, action, &subject(reference), &format!("messages={}", messages.len())).await?;
    tx.commit().await?;
    Ok(ReportDetail { report, reporter, messages, attachments, transitions })
}

/// Moves a report to another state, checked against the lifecycle.
///
/// `duplicate_of` names the original when closing as a duplicate.
pub async fn transition(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: &str,
    duplicate_of: Option<&ReferenceId>,
) -> Result<Transition, AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    let original = match duplicate_of {
        Some(other) => Some(find(&mut tx, other).await?.id),
        None => None,
    };
    if target == "closed:duplicate" && original.is_none() {
        return Err(AppError::Invalid("closing as a duplicate needs the original report (--duplicate-of ID)".into()));
    }
    if original.is_some() && target != "closed:duplicate" {
        return Err(AppError::Invalid("an original report only goes with closed:duplicate".into()));
    }
    let to = ReportState::parse_target(target, original).ok_or_else(|| {
        AppError::Invalid(format!(
            "unknown target state {target:?}; expected one of {}, or closed:<reason> with a reason among {}",
            ReportState::CODES.iter().filter(|c| **c != "closed").copied().collect::<Vec<_>>().join(", "),
            embargo_domain::CloseReason::CODES.join(", "),
        ))
    })?;
    let mut life = Lifecycle::restore(report.id, report.state, Vec::new());
    let transition = life.apply(to, actor.clone(), app.now())?.clone();
    sr::record_transition(&mut tx, report.id, &transition).await?;
    if to == ReportState::Closed(embargo_domain::CloseReason::NotSecurity) {
        // The policy's answer to non-security reports: the public issue tracker.
        let key = format!("not-security:{}:{}", report.id.0, transition.at.as_millisecond());
        crate::jobs::enqueue_report_mail(&mut tx, app, crate::jobs::NOT_SECURITY, report.id, None, &key).await?;
    }
    let mut details = format!("from={} to={}", transition.from.code(), transition.to.code());
    if let ReportState::Closed(reason) = to {
        details.push_str(&format!(" reason={}", reason.code()));
        if let Some(other) = duplicate_of {
            details.push_str(&format!(" duplicate_of={other}"));
        }
    }
    audit::record(&mut tx, app, actor, "report.transition", &subject(reference), &details).await?;
    tx.commit().await?;
    metrics::counter!("embargo_report_transitions_total", "to" => to.code()).increment(1);
    tracing::info!(report = %reference, from = transition.from.code(), to = to.code(), "report state changed");
    Ok(transition)
}

/// Gives a team member access to a report (need-to-know). Admins only.
pub async fn add_member(app: &App, actor: &Actor, reference: &ReferenceId, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    authz::require(&mut tx, actor, Permission::ManageReportAccess(report.id)).await?;
    let user = embargo_store::users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    sr::add_member(&mut tx, report.id, user.id, app.now()).await?;
    audit::record(&mut tx, app, actor, "report.member.add", &subject(reference), &format!("user={}", user.id)).await?;
    tx.commit().await?;
    Ok(())
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
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    let upstream = Upstream { project: project.to_owned(), contact: contact.to_owned() };
    sr::set_upstream(&mut tx, &report, &upstream, app.now()).await?;
    audit::record(&mut tx, app, actor, "report.upstream", &subject(reference), "marked").await?;
    tx.commit().await?;
    Ok(())
}

/// Where an imported key comes from.
#[derive(Debug, Clone)]
pub enum KeyImport {
    /// An attachment of the report (a reporter often attaches their key).
    Attachment(i64),
    /// Armored text supplied by the team.
    Text(String),
}

/// Imports the reporter's OpenPGP certificate (after the team has looked at it): from then
/// on, mail to the reporter is encrypted. Returns the fingerprint.
pub async fn import_reporter_key(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    source: KeyImport,
) -> Result<String, AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    let text = match source {
        KeyImport::Text(text) => text,
        KeyImport::Attachment(id) => {
            let data = attachments::data(&mut tx, report.id, id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("attachment {id} of {reference}")))?;
            String::from_utf8(data).map_err(|_| AppError::Invalid("the attachment is not an armored key".into()))?
        }
    };
    let fingerprint = embargo_mail::openpgp::certificate_fingerprint(&text)
        .map_err(|e| AppError::Invalid(format!("not a usable OpenPGP key: {e}")))?;
    reporters::set_openpgp_key(&mut tx, report.reporter_id, &text).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "reporter.key.import",
        &subject(reference),
        &format!("fingerprint={fingerprint}"),
    )
    .await?;
    tx.commit().await?;
    Ok(fingerprint)
}

/// Records a delivery failure (a bounce of mail Embargo sent) on a report, as an internal
/// note carrying the notification's text; the original is kept sealed.
pub(crate) async fn add_bounce_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: ReportId,
    message: &Submission,
) -> Result<ReferenceId, AppError> {
    authz::require(tx, actor, Permission::ChangeReportState(report)).await?;
    let record = sr::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let body = format!("Mail to the reporter could not be delivered. The delivery report says:\n\n{}", message.body);
    messages::insert(
        tx,
        &NewMessage {
            report,
            kind: MessageKind::Note,
            author: "system:mail",
            sender: Some(message.reporter_email.trim()),
            subject: Some(&message.title),
            body: &body,
            raw: message.raw.as_deref(),
            message_id: message.message_id.as_deref(),
            quarantined: false,
            pgp: None,
            auth: message.auth.as_deref(),
            at: app.now(),
        },
    )
    .await?;
    audit::record(tx, app, actor, "mail.bounce", &subject(&record.reference), "delivery failed").await?;
    Ok(record.reference)
}
