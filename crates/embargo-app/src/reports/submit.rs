//! Submitting reports: validation, the report rows with their references, reply addresses,
//! status links and first SLA deadline, the first message and its attachments, the index
//! and acknowledgement jobs. One statement per table for a whole batch (mail intake).

use embargo_domain::{Actor, ReferenceId, ReportId};
use embargo_store::attachments::{self, NewAttachment};
use embargo_store::messages::{self, MessageKind, NewMessage};
use embargo_store::reporters;
use embargo_store::reports::NewReport;
use embargo_store::{Tx, reports as sr};

use super::subject;
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
    /// What was wrong with a received message, as comma-separated codes
    /// (`malformed-mime`, `ambiguous-sender`, `sender-mismatch`), shown to the team.
    pub anomalies: Option<String>,
    /// The structured fields of a web-form report, as JSON (sealed at rest).
    pub details: Option<String>,
    /// The product it concerns, when the reporter chose one from the catalogue.
    pub product_id: Option<i64>,
}

impl Submission {
    /// A submission of `title` and `body` from `reporter_email` by `channel`, with nothing
    /// else: no name, attachments, raw message, acknowledgement or structured fields.
    pub fn new(channel: Channel, reporter_email: &str, title: &str, body: &str) -> Self {
        Self {
            channel,
            reporter_email: reporter_email.to_owned(),
            reporter_name: None,
            title: title.to_owned(),
            body: body.to_owned(),
            attachments: Vec::new(),
            raw: None,
            message_id: None,
            acknowledge: false,
            pgp: None,
            auth: None,
            anomalies: None,
            details: None,
            product_id: None,
        }
    }
}

/// What [`submit`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Database id.
    pub id: ReportId,
    /// Human reference.
    pub reference: ReferenceId,
    /// The reporter's status-link token (a credential: shown once, never logged).
    pub status_token: String,
}

fn validate(app: &App, submission: &Submission) -> Result<(), AppError> {
    let email = submission.reporter_email.trim();
    if email.is_empty() || !email.contains('@') || email.len() > 320 || email.contains(char::is_whitespace) {
        return Err(AppError::Invalid("the reporter's e-mail address is missing or malformed".into()));
    }
    // Two limits, each named when it is hit: the message as received (mail on the wire; the
    // SMTP listener refuses more already), and what it decodes to.
    let wire = submission.raw.as_ref().map_or(0, Vec::len) as u64;
    let limit = app.config.limits.max_message_bytes;
    if wire > limit {
        return Err(AppError::Invalid(format!(
            "the message is {wire} bytes as received, larger than the limit of {limit} bytes (limits.max_message_bytes)"
        )));
    }
    let decoded = (submission.body.len()
        + submission.title.len()
        + submission.attachments.iter().map(|a| a.data.len()).sum::<usize>()) as u64;
    let limit = app.config.limits.max_decoded_bytes;
    if decoded > limit {
        return Err(AppError::Invalid(format!(
            "the message decodes to {decoded} bytes of text and files, larger than the limit of {limit} bytes \
             (limits.max_decoded_bytes)"
        )));
    }
    Ok(())
}

/// Records a new report with its first message and attachments, in one transaction.
/// When this returns, the report is durably committed.
pub async fn submit(app: &App, actor: &Actor, submission: Submission) -> Result<Submitted, AppError> {
    let mut tx = app.store.begin().await?;
    let submitted = submit_in(&mut tx, app, actor, &submission).await?;
    tx.commit().await?;
    submitted_log(&submitted.reference, submission.channel);
    Ok(submitted)
}

/// Logs and counts a committed submission.
pub(crate) fn submitted_log(reference: &ReferenceId, channel: Channel) {
    metrics::counter!("embargo_reports_received_total", "channel" => channel.as_str()).increment(1);
    tracing::info!(report = %reference, channel = channel.as_str(), "report received");
}

/// [`submit`] inside the caller's transaction.
pub(crate) async fn submit_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    submission: &Submission,
) -> Result<Submitted, AppError> {
    let mut submitted = submit_many_in(tx, app, actor, std::slice::from_ref(submission)).await?;
    submitted.pop().ok_or_else(|| AppError::Internal(anyhow::anyhow!("the submission was not recorded")))
}

/// Several submissions in the caller's transaction, written with one statement per table
/// whatever their number (mail intake files each group commit this way). Returns them in
/// order.
pub(crate) async fn submit_many_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    submissions: &[Submission],
) -> Result<Vec<Submitted>, AppError> {
    for submission in submissions {
        validate(app, submission)?;
    }
    if submissions.is_empty() {
        return Ok(Vec::new());
    }
    let now = app.now();
    authz::require(tx, actor, Permission::SubmitReport).await?;
    let people: Vec<(&str, Option<&str>)> =
        submissions.iter().map(|s| (s.reporter_email.trim(), s.reporter_name.as_deref())).collect();
    let reporters = reporters::find_or_create_many(tx, &people, now).await?;
    let titles: Vec<&str> = submissions
        .iter()
        .map(|s| match s.title.trim() {
            "" => "(no subject)",
            t => t,
        })
        .collect();
    let creations: Vec<Creation<'_>> = submissions
        .iter()
        .zip(&reporters)
        .zip(&titles)
        .map(|((submission, &reporter), title)| Creation {
            channel: submission.channel.as_str(),
            reporter,
            title,
            body: &submission.body,
            details: submission.details.as_deref(),
            product_id: submission.product_id,
        })
        .collect();
    let created = create_many_in(tx, app, &creations).await?;
    let inbound: Vec<(ReportId, &Submission, &str)> =
        created.iter().zip(submissions).zip(&titles).map(|((c, s), t)| (c.id, s, *t)).collect();
    let messages = insert_inbound_many(tx, &inbound, false, now).await?;
    let mut jobs = Vec::with_capacity(2 * submissions.len());
    let mut entries = Vec::with_capacity(submissions.len());
    for ((report, submission), message) in created.iter().zip(submissions).zip(&messages) {
        // The search terms and the near-duplicate signature are written by a job, off the
        // intake path (the index is eventually consistent).
        jobs.push(crate::jobs::pending(&super::IndexJob::new(report.id, *message, true))?);
        if submission.acknowledge {
            jobs.push(crate::jobs::pending(&super::Acknowledgement::new(report.id, Some(*message)))?);
        }
        entries.push(audit::Entry {
            action: "report.create",
            subject: subject(&report.reference),
            details: format!("channel={} attachments={}", submission.channel.as_str(), submission.attachments.len()),
        });
    }
    crate::jobs::enqueue_all(tx, app, &jobs).await?;
    audit::record_many(tx, app, actor, &entries).await?;
    Ok(created)
}

/// What a new report row is made of (see [`create_in`]).
pub(super) struct Creation<'a> {
    pub(super) channel: &'a str,
    pub(super) reporter: i64,
    pub(super) title: &'a str,
    pub(super) body: &'a str,
    pub(super) details: Option<&'a str>,
    pub(super) product_id: Option<i64>,
}

/// Inserts a new report: its reference, reply address, status link and acknowledgement
/// deadline (its SLA clock starts now). Shared by submissions and splits.
pub(super) async fn create_in(tx: &mut Tx, app: &App, new: &Creation<'_>) -> Result<Submitted, AppError> {
    let mut created = create_many_in(tx, app, std::slice::from_ref(new)).await?;
    created.pop().ok_or_else(|| AppError::Internal(anyhow::anyhow!("the report was not created")))
}

/// [`create_in`] for several reports, with one statement for their references and one for
/// their rows.
async fn create_many_in(tx: &mut Tx, app: &App, new: &[Creation<'_>]) -> Result<Vec<Submitted>, AppError> {
    let now = app.now();
    let year = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
    let count = u32::try_from(new.len()).map_err(|_| AppError::Invalid("too many reports at once".into()))?;
    let references = sr::next_references(tx, &app.config.reference_prefix(), year, count).await?;
    let (ack_due, next_sla) = crate::sla::new_report_in(tx, app, now).await?;
    let secrets: Vec<(String, String, String)> = new
        .iter()
        .map(|_| {
            let status_token = crate::tokens::secret("");
            let hash = crate::tokens::hash(&status_token);
            (status_token, hash, crate::tokens::reply())
        })
        .collect();
    let rows: Vec<NewReport<'_>> = new
        .iter()
        .zip(&references)
        .zip(&secrets)
        .map(|((creation, reference), (status_token, status_token_hash, reply_token))| NewReport {
            reference,
            channel: creation.channel,
            reporter_id: creation.reporter,
            title: creation.title,
            body: creation.body,
            received_at: now,
            reply_token,
            status_token,
            status_token_hash,
            details: creation.details,
            product_id: creation.product_id,
            ack_due_at: Some(ack_due),
            next_sla_at: Some(next_sla),
        })
        .collect();
    let ids = sr::insert_many(tx, &rows).await?;
    Ok(ids
        .into_iter()
        .zip(references)
        .zip(secrets)
        .map(|((id, reference), (status_token, _, _))| Submitted { id, reference, status_token })
        .collect())
}

/// Stores an inbound message with its attachments; returns the message's id.
pub(super) async fn insert_inbound(
    tx: &mut Tx,
    report: ReportId,
    message: &Submission,
    subject: &str,
    quarantined: bool,
    now: embargo_domain::Timestamp,
) -> Result<i64, AppError> {
    let ids = insert_inbound_many(tx, &[(report, message, subject)], quarantined, now).await?;
    ids.first().copied().ok_or_else(|| AppError::Internal(anyhow::anyhow!("the message was not stored")))
}

/// [`insert_inbound`] for several (report, message, subject) at once; returns the
/// messages' ids in order.
async fn insert_inbound_many(
    tx: &mut Tx,
    inbound: &[(ReportId, &Submission, &str)],
    quarantined: bool,
    now: embargo_domain::Timestamp,
) -> Result<Vec<i64>, AppError> {
    let rows: Vec<NewMessage<'_>> = inbound
        .iter()
        .map(|&(report, message, subject)| NewMessage {
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
            anomalies: message.anomalies.as_deref(),
            at: now,
        })
        .collect();
    let ids = messages::insert_many(tx, &rows).await?;
    for (&(report, message, _), &id) in inbound.iter().zip(&ids) {
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
    }
    Ok(ids)
}
