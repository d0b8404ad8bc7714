//! The thread of a report: messages from the reporter (replies, quarantined mail, bounces),
//! replies, questions and notes from the team, and the reporter's OpenPGP key.

use embargo_domain::{Actor, ReferenceId, ReportId, ReportState};
use embargo_store::attachments;
use embargo_store::messages::{self, MessageKind, NewMessage};
use embargo_store::reporters;
use embargo_store::reports::ReportRecord;
use embargo_store::{Tx, reports as sr};

use super::{Notice, Submission, change_state_in, check_text, find, insert_inbound, require_on, search_words, subject};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

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
    authz::require(tx, actor, Permission::AddReporterMessage.on(report)).await?;
    let record = sr::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let id = insert_inbound(tx, report, message, &message.title, quarantined, now).await?;
    if !quarantined {
        // Searchable once the index job has run.
        crate::jobs::enqueue(tx, app, &super::IndexJob::new(report, id, false)).await?;
    }
    audit::record(
        tx,
        app,
        actor,
        if quarantined { "report.message.quarantine" } else { "report.message.add" },
        &subject(&record.reference),
        &format!("kind=inbound attachments={}", message.attachments.len()),
    )
    .await?;
    if !quarantined {
        resume_on_answer_in(tx, app, &record).await?;
    }
    Ok(record.reference)
}

/// The reporter answered: a report waiting on them (needs-info) goes back to where it was,
/// and one closed for lack of an answer reopens into triage. Their clocks resume.
pub(super) async fn resume_on_answer_in(tx: &mut Tx, app: &App, record: &ReportRecord) -> Result<(), AppError> {
    let back = match record.state {
        ReportState::NeedsInfo => {
            let transitions = sr::transitions(tx, record.id).await?;
            let before = transitions.iter().rev().find(|t| t.to == ReportState::NeedsInfo).map(|t| t.from.as_str());
            // Back where it was when the lifecycle allows it, else into triage.
            let previous = before.and_then(|code| ReportState::from_codes(code, None, None));
            Some(previous.filter(|p| record.state.can_move_to(*p)).unwrap_or(ReportState::Triaging))
        }
        ReportState::Closed(embargo_domain::CloseReason::NoResponse) => Some(ReportState::Triaging),
        _ => None,
    };
    if let Some(to) = back {
        change_state_in(tx, app, &Actor::System("reporter-answer"), &record.reference, to, Notice::None).await?;
    }
    Ok(())
}

/// Records a message from the team to the reporter on the thread and enqueues its mail.
pub(super) async fn outbound_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: &ReportRecord,
    subject_line: &str,
    body: &str,
) -> Result<i64, AppError> {
    team_mail_in(tx, app, actor, report, MessageKind::Outbound, subject_line, body).await
}

/// Records a mail the team sends as a message of `kind` (outbound, shown to the reporter;
/// or a note, kept from the status page) and enqueues it.
pub(super) async fn team_mail_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: &ReportRecord,
    kind: MessageKind,
    subject_line: &str,
    body: &str,
) -> Result<i64, AppError> {
    let message_id = crate::mail::new_message_id(app, "msg");
    let author = actor.to_string();
    let id = messages::insert(
        tx,
        &NewMessage {
            report: report.id,
            kind,
            author: &author,
            sender: Some(&app.config.organisation.security_address),
            subject: Some(subject_line),
            body,
            raw: None,
            message_id: Some(&message_id),
            quarantined: false,
            pgp: None,
            auth: None,
            anomalies: None,
            at: app.now(),
        },
    )
    .await?;
    crate::jobs::enqueue(tx, app, &super::ReporterMessage::new(report.id, id, &message_id)).await?;
    Ok(id)
}

/// What a team member writes on a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamMessage {
    /// A reply to the reporter: recorded at once, mailed by a job (encrypted when their
    /// key is known), shown on their status page.
    Reply,
    /// A reply that asks the reporter something: the report moves to needs-info and its
    /// SLA clocks pause until they answer (or it is closed after `sla.needs_info_close_days`).
    Question,
    /// An internal note, never shown to the reporter.
    Note,
}

/// Replies to the reporter (see [`TeamMessage::Reply`]).
pub async fn reply(app: &App, actor: &Actor, reference: &ReferenceId, body: &str) -> Result<i64, AppError> {
    write(app, actor, reference, TeamMessage::Reply, body).await
}

/// Adds an internal note (see [`TeamMessage::Note`]).
pub async fn add_note(app: &App, actor: &Actor, reference: &ReferenceId, body: &str) -> Result<i64, AppError> {
    write(app, actor, reference, TeamMessage::Note, body).await
}

/// Records a reply or a note on the thread, indexes its words and audits it, in one
/// transaction; returns the message's id.
pub async fn write(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    kind: TeamMessage,
    body: &str,
) -> Result<i64, AppError> {
    let body = check_text(body, if kind == TeamMessage::Note { "note" } else { "reply" })?;
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let (id, action) = match kind {
        TeamMessage::Reply | TeamMessage::Question => {
            let subject_line = crate::mail::reply_subject(reference, &report.title);
            let id = outbound_in(&mut tx, app, actor, &report, &subject_line, &body).await?;
            if kind == TeamMessage::Question {
                change_state_in(&mut tx, app, actor, reference, ReportState::NeedsInfo, Notice::None).await?;
            }
            crate::sla::refresh_in(&mut tx, app, report.id, Some(app.now())).await?;
            (id, "report.reply")
        }
        TeamMessage::Note => {
            let author = actor.to_string();
            let new = NewMessage {
                report: report.id,
                kind: MessageKind::Note,
                author: &author,
                sender: None,
                subject: None,
                body: &body,
                raw: None,
                message_id: None,
                quarantined: false,
                pgp: None,
                auth: None,
                anomalies: None,
                at: app.now(),
            };
            (messages::insert(&mut tx, &new).await?, "report.note")
        }
    };
    sr::add_terms(&mut tx, report.id, &search_words(&body)).await?;
    audit::record(&mut tx, app, actor, action, &subject(reference), &format!("message={id}")).await?;
    tx.commit().await?;
    Ok(id)
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
    require_on(&mut tx, actor, Permission::ChangeReport.on(report.id), reference).await?;
    let text = match source {
        KeyImport::Text(text) => text,
        KeyImport::Attachment(id) => {
            // Only from the reporter's own messages: quarantined mail is someone else's.
            let files = attachments::list(&mut tx, report.id).await?;
            let thread = messages::list(&mut tx, report.id).await?;
            let Some(file) = files.iter().find(|a| a.id == id) else {
                return Err(AppError::NotFound(format!("attachment {id} of {reference}")));
            };
            let from_reporter =
                thread.iter().any(|m| Some(m.id) == file.message && m.kind == MessageKind::Inbound && !m.quarantined);
            if !from_reporter {
                return Err(AppError::Invalid(format!(
                    "attachment {id} did not come from the reporter (quarantined mail is not theirs)"
                )));
            }
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
    authz::require(tx, actor, Permission::ChangeReport.on(report)).await?;
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
            anomalies: message.anomalies.as_deref(),
            at: app.now(),
        },
    )
    .await?;
    audit::record(tx, app, actor, "mail.bounce", &subject(&record.reference), "delivery failed").await?;
    Ok(record.reference)
}
