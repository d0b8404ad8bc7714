//! Reports: submission, listing, reading and lifecycle changes.

use embargo_domain::{Actor, Lifecycle, ReferenceId, ReportId, ReportState, Transition, similarity};
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
        jobs.push(crate::jobs::index_job(report.id, *message, true)?);
        if submission.acknowledge {
            let key = format!("ack:{}", report.id.0);
            jobs.push(crate::jobs::report_mail_job(crate::jobs::ACKNOWLEDGEMENT, report.id, Some(*message), &key)?);
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
struct Creation<'a> {
    channel: &'a str,
    reporter: i64,
    title: &'a str,
    body: &'a str,
    details: Option<&'a str>,
    product_id: Option<i64>,
}

/// Inserts a new report: its reference, reply address, status link and acknowledgement
/// deadline (its SLA clock starts now). Shared by submissions and splits.
async fn create_in(tx: &mut Tx, app: &App, new: &Creation<'_>) -> Result<Submitted, AppError> {
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
async fn insert_inbound(
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
    authz::require(tx, actor, Permission::AddReporterMessage(report)).await?;
    let record = sr::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let id = insert_inbound(tx, report, message, &message.title, quarantined, now).await?;
    if !quarantined {
        // Searchable once the index job has run.
        crate::jobs::enqueue_index(tx, app, report, id, false).await?;
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
async fn resume_on_answer_in(tx: &mut Tx, app: &App, record: &ReportRecord) -> Result<(), AppError> {
    let back = match record.state {
        ReportState::NeedsInfo => {
            let transitions = sr::transitions(tx, record.id).await?;
            let before = transitions.iter().rev().find(|t| t.to == ReportState::NeedsInfo).map(|t| t.from.as_str());
            // Back where it was when the lifecycle allows it, else into triage.
            let previous = before.and_then(|code| ReportState::parse_target(code, None));
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

/// Reads and prepares the index entries of new reports (`new_report`: title, text and the
/// reporter's address as search terms, and the near-duplicate signature) or of inbound
/// messages (`message`: the message's words), one entry per `(report, message, new_report)`
/// in order. Reads in the caller's snapshot, a few statements for the whole batch; the
/// `report.index` job writes the result ([`sr::write_index`]) in a short write transaction.
pub(crate) async fn prepare_index_many(
    tx: &mut Tx,
    app: &App,
    items: &[(ReportId, i64, bool)],
) -> Result<Vec<sr::IndexRows>, AppError> {
    let ids: Vec<ReportId> = items.iter().map(|(report, _, _)| *report).collect();
    let reports = sr::get_many(tx, &ids).await?;
    let reporter_ids: Vec<i64> = reports.values().map(|r| r.reporter_id).collect();
    let reporters = reporters::get_many(tx, &reporter_ids).await?;
    let products = match reports.values().any(|r| r.product_id.is_some()) {
        true => embargo_store::products::list(tx).await?,
        false => Vec::new(),
    };
    enum Source {
        Report(Box<ReportRecord>, String, Option<String>),
        Message(ReportId, String),
    }
    let mut sources = Vec::with_capacity(items.len());
    for &(report, message, new_report) in items {
        let record = reports.get(&report).cloned().ok_or_else(|| AppError::NotFound(format!("report {}", report.0)))?;
        if new_report {
            let email = reporters
                .get(&record.reporter_id)
                .map(|r| r.email.clone())
                .ok_or_else(|| AppError::NotFound(format!("the reporter of {}", record.reference)))?;
            let product = products.iter().find(|p| Some(p.id) == record.product_id).map(|p| p.name.clone());
            sources.push(Source::Report(Box::new(record), email, product));
        } else {
            let found = messages::get(tx, report, message)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("message {message} of {}", record.reference)))?;
            sources.push(Source::Message(report, found.body));
        }
    }
    // Hashing hundreds of words and computing signatures is CPU work: off the async
    // threads, which serve SMTP sessions and intake's commits meanwhile.
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let keys = store.keys();
        let band_key = keys.derived_key(BAND_KEY_PURPOSE);
        sources
            .into_iter()
            .map(|source| match source {
                Source::Report(record, email, product) => {
                    let mut words = search_words(&record.title);
                    words.extend(search_words(&record.body));
                    words.extend(search_words(&email));
                    words.sort();
                    words.dedup();
                    let text = format!("{}\n{}", record.title, record.body);
                    let signature = similarity::signature(&text, product.as_deref());
                    let bands: Vec<String> =
                        similarity::bands(&signature, &band_key).iter().map(|band| format!("{band:016x}")).collect();
                    let similarity = Some((&record.reference, &signature.to_bytes()[..], &bands[..]));
                    sr::prepare_index(keys, record.id, &words, similarity)
                }
                Source::Message(report, body) => sr::prepare_index(keys, report, &search_words(&body), None),
            })
            .collect()
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("indexing failed: {e}")))
}

/// What the band key is derived for (see [`embargo_crypto::Keyring::derived_key`]).
const BAND_KEY_PURPOSE: &str = "near-duplicate bands";

/// A possible duplicate of a report.
#[derive(Debug, Clone)]
pub struct Similar {
    /// Its reference.
    pub reference: ReferenceId,
    /// Its title.
    pub title: String,
    /// Its state.
    pub state: ReportState,
    /// Estimated Jaccard similarity of the two texts, 0.0 to 1.0.
    pub score: f64,
}

/// At most this many suggestions are shown.
pub const SIMILAR_SHOWN: usize = 5;

/// At most this many candidates (those sharing the most bands) are scored.
const SIMILAR_CANDIDATES: i64 = 200;

/// Reports that look like near-duplicates of this one: sharing at least one band, not
/// already linked as duplicates, scored at or above [`similarity::SUGGEST_THRESHOLD`], best
/// first, at most [`SIMILAR_SHOWN`], and only reports the actor may read (a report the
/// actor may not see is never suggested, so its existence does not leak). Shows titles,
/// so each suggestion is audited as a read of that report.
pub async fn similar(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<Similar>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let own = match sr::similarity(&mut tx, report.id).await? {
        Some(bytes) => similarity::Signature::from_bytes(&bytes).ok(),
        None => None,
    };
    let Some(own) = own else {
        // Not indexed yet (or by an older signature version): nothing to compare.
        tx.rollback().await?;
        return Ok(Vec::new());
    };
    let mut scored: Vec<(f64, sr::Candidate)> = sr::similarity_candidates(&mut tx, report.id, SIMILAR_CANDIDATES)
        .await?
        .into_iter()
        .filter_map(|candidate| {
            let theirs = similarity::Signature::from_bytes(&candidate.signature).ok()?;
            let score = similarity::estimated_jaccard(&own, &theirs);
            (score >= similarity::SUGGEST_THRESHOLD).then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|(a, x), (b, y)| b.total_cmp(a).then(x.id.0.cmp(&y.id.0)));
    let mut shown = Vec::new();
    for (score, candidate) in scored {
        if shown.len() == SIMILAR_SHOWN {
            break;
        }
        // Need-to-know: the check comes before anything about the candidate is read.
        if authz::require(&mut tx, actor, Permission::ReadReport(candidate.id)).await.is_err() {
            continue;
        }
        if let Some(other) = sr::get(&mut tx, candidate.id).await? {
            shown.push(Similar { reference: other.reference, title: other.title, state: other.state, score });
        }
    }
    tx.rollback().await?;
    // Each suggestion's title was read: on record under that report. The details name
    // neither report, so a trail never shows anyone a reference they may not read.
    for suggestion in &shown {
        audit_read(
            app,
            actor,
            "report.similar",
            &subject(&suggestion.reference),
            &format!("score={:.2}", suggestion.score),
        )
        .await?;
    }
    Ok(shown)
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
    require_on(&mut tx, actor, Permission::ChangeReportState(original.id), reference).await?;
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
    // Whoever knew of the finding in the original may know of it here.
    for member in sr::members(&mut tx, original.id).await? {
        sr::add_member(&mut tx, created.id, member, now).await?;
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
            at: now,
        },
    )
    .await?;
    crate::jobs::enqueue_index(&mut tx, app, created.id, message, true).await?;
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
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let mut links = SplitLinks::default();
    if let Some(from) = report.split_from
        && authz::require(&mut tx, actor, Permission::ReadReport(from)).await.is_ok()
    {
        links.from = sr::get(&mut tx, from).await?.map(|r| r.reference);
    }
    for (id, into) in sr::split_into(&mut tx, report.id).await? {
        if authz::require(&mut tx, actor, Permission::ReadReport(id)).await.is_ok() {
            links.into.push(into);
        }
    }
    tx.rollback().await?;
    Ok(links)
}

pub use embargo_store::reports::{FLAG_MIN_INVALID, ReporterHistory};

/// How the reporter's other reports turned out (counts only, never which reports): shown
/// beside a report so the team can weigh it. Counting reveals nothing but numbers.
pub async fn reporter_history(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<ReporterHistory, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let history = sr::reporter_history(&mut tx, report.reporter_id, report.id).await?;
    tx.rollback().await?;
    Ok(history)
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
    let member = authz::narrowed_to(actor, Permission::ListReports);
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

/// Reads a report in full. Every read is audited (see [`audit_read`]).
pub async fn show(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    purpose: ReadPurpose,
) -> Result<ReportDetail, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let reporter = reporters::get(&mut tx, report.reporter_id).await?;
    let messages = messages::list(&mut tx, report.id).await?;
    let attachments = attachments::list(&mut tx, report.id).await?;
    let transitions = sr::transitions(&mut tx, report.id).await?;
    let assessment = crate::assessment::get_in(&mut tx, report.id).await?;
    let sla = embargo_store::sla::get(&mut tx, report.id).await?;
    let alerts = embargo_store::sla::alerts(&mut tx, report.id).await?;
    let calendar = crate::sla::calendar_in(&mut tx, app).await?;
    tx.rollback().await?;
    let (_, clocks) = crate::sla::compute(app, &calendar, &report, &transitions, sla.last_update_at, &sla);
    let action = match purpose {
        ReadPurpose::Read => "report.read",
        ReadPurpose::Export => "report.export",
    };
    audit_read(app, actor, action, &subject(reference), &format!("messages={}", messages.len())).await?;
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
///
/// `duplicate_of` names the original when closing as a duplicate.
pub async fn transition(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: &str,
    duplicate_of: Option<&ReferenceId>,
) -> Result<Transition, AppError> {
    change_state(app, actor, reference, target, duplicate_of, Notice::Template).await
}

/// Moves a report to another state and, as `notice` says, records a message to the
/// reporter on the thread and enqueues its mail, all in one transaction.
pub async fn change_state(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    target: &str,
    duplicate_of: Option<&ReferenceId>,
    notice: Notice,
) -> Result<Transition, AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    let original = match duplicate_of {
        Some(other) if other == reference => {
            return Err(AppError::Invalid("a report cannot be a duplicate of itself".into()));
        }
        Some(other) => {
            let original = find(&mut tx, other).await?;
            require_on(&mut tx, actor, Permission::ReadReport(original.id), other).await?;
            Some(original.id)
        }
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
    sr::record_transition(tx, report.id, &transition).await?;
    let reporter = reporters::get(tx, report.reporter_id).await?;
    let reply_address = crate::intake::reply_address(app, &report.reply_token);
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
    target: &str,
) -> Result<Option<crate::mail::MailText>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    let reporter = reporters::get(&mut tx, report.reporter_id).await?;
    tx.rollback().await?;
    let placeholder = if target == "closed:duplicate" { Some(report.id) } else { None };
    let to = ReportState::parse_target(target, placeholder)
        .ok_or_else(|| AppError::Invalid(format!("unknown target state {target:?}")))?;
    let reply_address = crate::intake::reply_address(app, &report.reply_token);
    Ok(crate::mail::state_notice(app, reference, reporter.name.as_deref(), to, &reply_address))
}

/// Records a message from the team to the reporter on the thread and enqueues its mail.
async fn outbound_in(
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
async fn team_mail_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: &ReportRecord,
    kind: MessageKind,
    subject_line: &str,
    body: &str,
) -> Result<i64, AppError> {
    let message_id = crate::jobs::new_message_id(app, "msg");
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
            at: app.now(),
        },
    )
    .await?;
    crate::jobs::enqueue_message(tx, app, report.id, id, &message_id).await?;
    Ok(id)
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
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
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

/// Assigns a report to a team member (`None`: nobody). Admins assign anyone; a responder
/// who can work on the report may take it themselves.
pub async fn assign(app: &App, actor: &Actor, reference: &ReferenceId, email: Option<&str>) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
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
        authz::require(&mut tx, actor, Permission::ManageReportAccess(report.id)).await?;
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
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
    // The product decides which responders see the report: an access decision.
    authz::require(&mut tx, actor, Permission::ManageReportAccess(report.id)).await?;
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
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let meta = attachments::list(&mut tx, report.id).await?.into_iter().find(|a| a.id == id);
    let data = attachments::data(&mut tx, report.id, id).await?;
    tx.rollback().await?;
    let (Some(meta), Some(data)) = (meta, data) else {
        return Err(AppError::NotFound(format!("attachment {id} of {reference}")));
    };
    audit_read(app, actor, "report.attachment.read", &subject(reference), &format!("attachment={id}")).await?;
    Ok(Download { filename: meta.filename, data })
}

/// Words for the private search index: the distinct lower-cased runs of letters and digits
/// of 2 to 40 characters, at most 2,000 per text.
pub fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=40).contains(&w.chars().count()))
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words.truncate(2000);
    words
}

/// Inbox query, as typed in the filters.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// A state code, or `open`.
    pub state: Option<String>,
    /// A product id.
    pub product: Option<i64>,
    /// An assignee: an address, `me`, or `none`.
    pub assignee: Option<String>,
    /// `overdue` (the deadline of the clock that matters in the report's state has passed)
    /// or `soon` (it falls within two working days).
    pub due: Option<String>,
    /// Search words or a reference.
    pub search: Option<String>,
    /// `newest` (the default) or `flagged-last` (reports whose reporter is flagged, see
    /// [`ReporterHistory::flagged`], after the others).
    pub sort: Option<String>,
    /// Page number from 1.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

/// One inbox row.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The report.
    pub summary: embargo_store::reports::Summary,
    /// The assignee's address.
    pub assignee: Option<String>,
    /// The product's name.
    pub product: Option<String>,
}

pub use embargo_store::reports::INBOX_COUNT_CAP;

/// A page of the inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    /// Rows.
    pub rows: Vec<InboxRow>,
    /// Matching reports in all, counted up to [`INBOX_COUNT_CAP`] (a larger value means
    /// "more than the cap").
    pub total: i64,
}

/// The inbox: reports the actor may see, filtered, newest first. Listing shows titles, so
/// it is audited.
pub async fn inbox(app: &App, actor: &Actor, query: &InboxQuery) -> Result<InboxPage, AppError> {
    let state = query.state.as_deref().filter(|s| !s.is_empty() && *s != "any");
    if let Some(state) = state
        && state != "open"
        && !ReportState::CODES.contains(&state)
    {
        return Err(AppError::Invalid(format!("unknown state {state:?}")));
    }
    let flagged_last = match query.sort.as_deref().map(str::trim) {
        None | Some("" | "newest") => false,
        Some("flagged-last") => true,
        Some(other) => {
            return Err(AppError::Invalid(format!("unknown sort {other:?}; expected newest or flagged-last")));
        }
    };
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ListReports).await?;
    let me = match actor {
        Actor::User { id, .. } => Some(*id),
        _ => None,
    };
    let visible_to = authz::narrowed_to(actor, Permission::ListReports);
    let assignee = match query.assignee.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None | Some("any") => None,
        Some("none") => Some(None),
        Some("me") => Some(me),
        Some(email) => Some(Some(
            embargo_store::users::by_email(&mut tx, email)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("account {email}")))?
                .id,
        )),
    };
    let now = app.now();
    let due_before = match query.due.as_deref() {
        Some("overdue") => Some(now),
        Some("soon") => Some(crate::sla::calendar_in(&mut tx, app).await?.add_working_days(now, 2)),
        _ => None,
    };
    let search = query.search.as_deref().map(str::trim).unwrap_or("");
    let reference: Option<ReferenceId> = search.parse().ok();
    let per_page = query.per_page.clamp(1, 200);
    let page = query.page.clamp(1, 1_000_000);
    let mut filter = embargo_store::reports::InboxFilter {
        state: state.map(str::to_owned),
        product_id: query.product,
        assignee,
        visible_to,
        due_before,
        words: if reference.is_some() { Vec::new() } else { search_words(search).into_iter().take(4).collect() },
        flagged_last,
        offset: (page - 1) * per_page,
        limit: per_page,
    };
    let (summaries, total) = match &reference {
        Some(reference) => {
            // A reference goes straight to that report, if the actor may see it.
            let found = sr::get_by_reference(&mut tx, reference).await?;
            let allowed = match &found {
                Some(r) => authz::require(&mut tx, actor, Permission::ReadReport(r.id)).await.is_ok(),
                None => false,
            };
            filter.limit = 0;
            match found.filter(|_| allowed) {
                Some(r) => {
                    let sla = embargo_store::sla::get(&mut tx, r.id).await?;
                    let flagged = sr::reporter_history(&mut tx, r.reporter_id, r.id).await?.flagged();
                    (
                        vec![embargo_store::reports::Summary {
                            due_at: sla.due_in(r.state),
                            id: r.id,
                            reference: r.reference,
                            state: r.state,
                            title: r.title,
                            assignee: r.assignee,
                            product_id: r.product_id,
                            ack_due_at: r.ack_due_at,
                            created_at: r.created_at,
                            updated_at: r.updated_at,
                            reporter_id: r.reporter_id,
                            flagged,
                        }],
                        1,
                    )
                }
                None => (Vec::new(), 0),
            }
        }
        None => sr::inbox(&mut tx, &filter).await?,
    };
    let users = embargo_store::users::list(&mut tx).await?;
    let products = embargo_store::products::list(&mut tx).await?;
    let rows = summaries
        .into_iter()
        .map(|summary| InboxRow {
            assignee: summary.assignee.and_then(|a| users.iter().find(|u| u.id == a).map(|u| u.email.clone())),
            product: summary.product_id.and_then(|p| products.iter().find(|x| x.id == p).map(|x| x.name.clone())),
            summary,
        })
        .collect();
    tx.rollback().await?;
    audit_read(
        app,
        actor,
        "report.list",
        "reports",
        &format!("state={} page={page} count={total} search={}", state.unwrap_or("any"), !search.is_empty()),
    )
    .await?;
    Ok(InboxPage { rows, total })
}

/// The reports closed as duplicates of this one (threads linked both ways).
pub async fn duplicates_of(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<ReferenceId>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
    let mut visible = Vec::new();
    for duplicate in sr::duplicates_of(&mut tx, report.id).await? {
        if let Some(r) = sr::get_by_reference(&mut tx, &duplicate).await?
            && authz::require(&mut tx, actor, Permission::ReadReport(r.id)).await.is_ok()
        {
            visible.push(duplicate);
        }
    }
    tx.rollback().await?;
    Ok(visible)
}

/// The reference of a report by id (for links), if the actor may read it.
pub async fn reference_of(app: &App, actor: &Actor, id: ReportId) -> Result<Option<ReferenceId>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = sr::get(&mut tx, id).await?;
    let visible = match &found {
        Some(r) => authz::require(&mut tx, actor, Permission::ReadReport(r.id)).await.is_ok(),
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
    require_on(&mut tx, actor, Permission::ChangeReportState(report.id), reference).await?;
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
            crate::jobs::STATUS_LINK_PLACEHOLDER,
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
    require_on(&mut tx, actor, Permission::ReadReport(report.id), reference).await?;
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
            // Only from the reporter's own messages: quarantined mail is someone else's.
            let files = attachments::list(&mut tx, report.id).await?;
            let thread = messages::list(&mut tx, report.id).await?;
            let from_reporter = files.iter().find(|a| a.id == id).is_some_and(|a| {
                thread.iter().any(|m| Some(m.id) == a.message && m.kind == MessageKind::Inbound && !m.quarantined)
            });
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
