//! Mail intake: one RFC 5322 message becomes a new report, a reply on an existing one, or a
//! quarantined message on one.
//!
//! The same function serves every way mail comes in: the built-in SMTP listener
//! ([`SmtpIntake`]), the `ingest-mail` pipe, and later IMAP polling. Nothing accepted is
//! lost: the raw message is always kept, sealed, beside whatever could be parsed out of it,
//! and it is committed before this function returns.
//!
//! Threading, in order: a redelivered Message-ID is recognised and not stored twice; mail to
//! a report's reply address (`security+<token>@domain`) belongs to that report, as the
//! reporter's reply when it comes from the reporter's address and quarantined otherwise;
//! mail whose In-Reply-To/References name one of a report's messages, from the reporter's
//! address, is a reply; everything else opens a new report.

use std::collections::HashMap;
use std::sync::Arc;

use embargo_domain::{Actor, ReferenceId};
use embargo_mail::InboundMail;
use embargo_mail::smtp::{BoxFuture, Delivery, DeliveryError, Envelope};
use embargo_store::{Tx, messages, reporters, reports as sr};

use crate::mail::SecurityAddress;
use crate::reports::{self, Channel, Submission, Upload};
use crate::{App, AppError};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// It opened a new report.
    NewReport(ReferenceId),
    /// It was threaded into an existing report as the reporter's reply.
    Reply(ReferenceId),
    /// It reached a report's reply address from someone other than the reporter; it is kept
    /// on the report for the team, marked quarantined.
    Quarantined(ReferenceId),
    /// The same message (by Message-ID) was already taken in; nothing was stored again.
    AlreadyReceived(ReferenceId),
    /// A bounce of mail Embargo sent: recorded on that report as a delivery failure.
    Bounce(ReferenceId),
}

impl IngestOutcome {
    /// The report concerned.
    pub fn reference(&self) -> &ReferenceId {
        match self {
            IngestOutcome::NewReport(r)
            | IngestOutcome::Reply(r)
            | IngestOutcome::Quarantined(r)
            | IngestOutcome::AlreadyReceived(r)
            | IngestOutcome::Bounce(r) => r,
        }
    }
}

/// The SMTP envelope, when the message came over SMTP.
#[derive(Debug, Clone, Default)]
pub struct MailEnvelope {
    /// The reverse path; empty for bounces (null sender).
    pub mail_from: Option<String>,
    /// The envelope recipients.
    pub rcpt_to: Vec<String>,
    /// DKIM, SPF and DMARC results, when they were checked.
    pub auth: Option<embargo_mail::auth::AuthSummary>,
}

pub use crate::mail::reply_address;

/// Who a message is from, decided against the envelope (see [`sender_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The address the report is filed under (the reporter), if there is a usable one.
    pub address: Option<String>,
    /// Whether an automatic acknowledgement may go to [`Sender::address`]: only to an address
    /// that is the envelope sender too, or whose domain authenticated the message (DMARC).
    pub may_acknowledge: bool,
    /// `ambiguous-sender` and `sender-mismatch`, when they apply.
    pub anomalies: Vec<String>,
}

/// The envelope sender disagrees with the `From` address.
pub const ANOMALY_SENDER_MISMATCH: &str = "sender-mismatch";

/// What an anomaly code means, for people (the report page and `report show`).
pub fn anomaly_text(code: &str) -> &'static str {
    match code {
        embargo_mail::ANOMALY_MALFORMED_MIME => {
            "malformed message: its MIME structure is broken; the text shown was recovered from it (see the original)"
        }
        embargo_mail::ANOMALY_AMBIGUOUS_SENDER => {
            "ambiguous sender: the message names more than one From address; no automatic reply was sent to the others"
        }
        ANOMALY_SENDER_MISMATCH => "sender mismatch: the From address is not the envelope sender",
        _ => "unrecognised anomaly",
    }
}

/// Decides who a message is from and whether the acknowledgement may be sent there.
///
/// The `From` header costs nothing to forge; an acknowledgement sent to whatever it names
/// is backscatter aimed at a third party. The envelope sender (`MAIL FROM`, or for piped and
/// IMAP mail the `Return-Path` the delivering server recorded) is where any bounce of the
/// message would go anyway, and SPF checks it. So:
///
/// - several `From` addresses (two headers, or a list): the reporter is the one that is the
///   envelope sender, else the first; flagged `ambiguous-sender`;
/// - a `From` address that is not the envelope sender: flagged `sender-mismatch`;
/// - the acknowledgement goes to the reporter's address only when it is the envelope sender,
///   or when DMARC passed for it (its domain vouched for the message); with no envelope at
///   all (a bare pipe) a single `From` is acknowledged as before, an ambiguous one never.
pub fn sender_of(mail: &InboundMail, envelope: &MailEnvelope) -> Sender {
    let envelope_sender = envelope.mail_from.clone().or_else(|| mail.return_path.clone()).map(|a| a.trim().to_owned());
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    let mut anomalies: Vec<String> =
        mail.anomalies.iter().filter(|a| *a == embargo_mail::ANOMALY_AMBIGUOUS_SENDER).cloned().collect();
    let ambiguous = !anomalies.is_empty();
    let address = match &envelope_sender {
        Some(env) if ambiguous => {
            let matching: Vec<&String> = mail.from_addresses.iter().filter(|f| same(f, env)).collect();
            match matching.as_slice() {
                [one] => Some((*one).clone()),
                _ => mail.from_addresses.first().cloned().or_else(|| mail.from_address.clone()),
            }
        }
        _ => mail.from_address.clone(),
    };
    let is_envelope_sender = match (&address, &envelope_sender) {
        (Some(a), Some(env)) => same(a, env),
        _ => false,
    };
    if let (Some(_), Some(env)) = (&address, &envelope_sender)
        && !env.is_empty()
        && !is_envelope_sender
    {
        anomalies.push(ANOMALY_SENDER_MISMATCH.to_owned());
    }
    let dmarc_pass = envelope.auth.as_ref().is_some_and(|a| a.dmarc == "pass");
    let may_acknowledge = address.is_some()
        && match &envelope_sender {
            Some(_) => is_envelope_sender || dmarc_pass,
            None => !ambiguous,
        };
    Sender { address, may_acknowledge, anomalies }
}

/// Whether mail may be answered automatically: not an auto-reply, bounce or list mail, not
/// from one of our own addresses, not carrying one of our own Message-IDs (a loop), and
/// to a sender the envelope confirms ([`sender_of`]).
fn may_acknowledge(app: &App, mail: &InboundMail, envelope: &MailEnvelope) -> bool {
    let ours = SecurityAddress::of(app);
    // Our own Message-IDs, on the message itself or among those it answers: a robot
    // answering our mail (without saying it is a robot) must not start a loop.
    let ours_suffix = format!("@{}", app.config.mail_hostname());
    let is_ours = |id: &str| id.starts_with("embargo.") && id.ends_with(&ours_suffix);
    let our_message_id =
        mail.message_id.as_deref().is_some_and(is_ours) || mail.thread_ids.iter().any(|id| is_ours(id));
    let sender = sender_of(mail, envelope);
    !mail.auto_generated
        && envelope.mail_from.as_deref() != Some("")
        && sender.may_acknowledge
        && sender.address.as_deref().is_some_and(|from| !ours.is_ours(from))
        && !our_message_id
}

/// Takes in one message that came without an envelope (the `ingest-mail` pipe).
pub async fn ingest_mail(app: &App, raw: &[u8]) -> Result<IngestOutcome, AppError> {
    ingest(app, raw, &MailEnvelope::default()).await
}

/// Takes in one message, in its own transaction.
pub async fn ingest(app: &App, raw: &[u8], envelope: &MailEnvelope) -> Result<IngestOutcome, AppError> {
    let key = crate::openpgp::instance_key(app).await?;
    let mail = precheck(app, raw, &key)?;
    ingest_parsed(app, raw, &mail, envelope).await
}

async fn ingest_parsed(
    app: &App,
    raw: &[u8],
    mail: &InboundMail,
    envelope: &MailEnvelope,
) -> Result<IngestOutcome, AppError> {
    let mut tx = app.store.begin_urgent().await?;
    let outcome = ingest_in(&mut tx, app, raw, mail, envelope).await?;
    tx.commit().await?;
    log_outcome(&outcome);
    Ok(outcome)
}

/// Refuses what can never be stored (empty or oversized), and parses (and decrypts) the rest.
fn precheck(app: &App, raw: &[u8], key: &embargo_mail::openpgp::InstanceKey) -> Result<InboundMail, AppError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::Invalid("the message is empty".into()));
    }
    let limit = app.config.limits.max_message_bytes;
    if raw.len() as u64 > limit {
        return Err(AppError::Invalid(wire_limit_text(raw.len() as u64, limit)));
    }
    let decoded_limit = usize::try_from(app.config.limits.max_decoded_bytes).unwrap_or(usize::MAX);
    Ok(embargo_mail::parse_with_limit(raw, Some(key), None, decoded_limit))
}

/// The refusal of a message over the wire-size limit (SMTP, `ingest-mail`).
pub fn wire_limit_text(size: u64, limit: u64) -> String {
    format!(
        "the message is {size} bytes as received, larger than the limit of {limit} bytes \
         (limits.max_message_bytes, advertised as SMTP SIZE)"
    )
}

fn log_outcome(outcome: &IngestOutcome) {
    match outcome {
        IngestOutcome::NewReport(reference) => reports::submitted_log(reference, Channel::Email),
        IngestOutcome::Reply(r) => tracing::info!(report = %r, "reply threaded"),
        IngestOutcome::Quarantined(r) => tracing::info!(report = %r, "message quarantined"),
        IngestOutcome::AlreadyReceived(r) => tracing::info!(report = %r, "redelivery ignored"),
        IngestOutcome::Bounce(r) => tracing::warn!(report = %r, "mail to the reporter bounced"),
    }
}

/// Files one parsed message inside the caller's transaction.
async fn ingest_in(
    tx: &mut Tx,
    app: &App,
    raw: &[u8],
    mail: &InboundMail,
    envelope: &MailEnvelope,
) -> Result<IngestOutcome, AppError> {
    let actor = Actor::System("intake");
    let ours = SecurityAddress::of(app);
    // The reply token: from the envelope when there is one, else from the headers.
    let recipients = if envelope.rcpt_to.is_empty() { &mail.recipients } else { &envelope.rcpt_to };
    let token = recipients.iter().find_map(|r| ours.classify(r).flatten());
    let target = find_thread(tx, app, raw, mail, envelope, token.as_deref()).await?;
    // A signature inside encrypted mail is checked against the sender's imported key.
    let mut pgp = mail.pgp.clone();
    if let Some(embargo_mail::PgpStatus::Decrypted { signed: true, verified: None, .. }) = &pgp
        && let Some(from) = &sender_of(mail, envelope).address
        && let Some(certificate) = reporters::by_email(tx, from).await?.and_then(|r| r.openpgp_key)
    {
        // The key was loaded when the message was parsed (no second transaction here).
        let key =
            crate::openpgp::loaded_key(app).ok_or_else(|| AppError::Unavailable("instance key not loaded".into()))?;
        let decoded_limit = usize::try_from(app.config.limits.max_decoded_bytes).unwrap_or(usize::MAX);
        pgp = embargo_mail::parse_with_limit(raw, Some(&key), Some(&certificate), decoded_limit).pgp;
    }
    let bad_signature = matches!(pgp, Some(embargo_mail::PgpStatus::Decrypted { verified: Some(false), .. }));
    let submission = submission_of(app, raw, mail, envelope, pgp.as_ref());
    // A reply whose sender authentication fails is not trusted to speak as the reporter.
    let auth_failed = envelope.auth.as_ref().is_some_and(embargo_mail::auth::AuthSummary::failed) || bad_signature;
    // Nor is one whose sender is ambiguous (two From addresses).
    let ambiguous = mail.anomalies.iter().any(|a| a == embargo_mail::ANOMALY_AMBIGUOUS_SENDER);
    let target = match target {
        Thread::Reply(report) if auth_failed || ambiguous => Thread::Quarantine(report),
        other => other,
    };
    Ok(match target {
        Thread::Redelivery(reference) => IngestOutcome::AlreadyReceived(reference),
        Thread::Reply(report) => {
            IngestOutcome::Reply(reports::add_inbound_message_in(tx, app, &actor, report, &submission, false).await?)
        }
        Thread::Quarantine(report) => IngestOutcome::Quarantined(
            reports::add_inbound_message_in(tx, app, &actor, report, &submission, true).await?,
        ),
        Thread::Bounce(report) => {
            IngestOutcome::Bounce(reports::add_bounce_in(tx, app, &actor, report, &submission).await?)
        }
        Thread::NoticeBounce(copy) => IngestOutcome::Bounce(crate::partners::bounce_in(tx, app, &actor, copy).await?),
        Thread::New => IngestOutcome::NewReport(reports::submit_in(tx, app, &actor, &submission).await?.reference),
    })
}

/// What a message submits: the same for a new report and a reply.
fn submission_of(
    app: &App,
    raw: &[u8],
    mail: &InboundMail,
    envelope: &MailEnvelope,
    pgp: Option<&embargo_mail::PgpStatus>,
) -> Submission {
    let sender = sender_of(mail, envelope);
    let mut anomalies: Vec<String> =
        mail.anomalies.iter().filter(|a| *a != embargo_mail::ANOMALY_AMBIGUOUS_SENDER).cloned().collect();
    anomalies.extend(sender.anomalies);
    Submission {
        channel: Channel::Email,
        reporter_email: sender.address.unwrap_or_else(|| "unknown-sender@invalid".into()),
        reporter_name: mail.from_name.clone(),
        title: if mail.parsed { mail.subject.clone() } else { "(unparsable message)".into() },
        body: mail.text.clone(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| Upload { filename: a.filename.clone(), media_type: a.media_type.clone(), data: a.data.clone() })
            .collect(),
        raw: Some(raw.to_vec()),
        message_id: mail.message_id.clone(),
        acknowledge: may_acknowledge(app, mail, envelope),
        pgp: pgp.map(embargo_mail::PgpStatus::code),
        auth: envelope.auth.as_ref().map(embargo_mail::auth::AuthSummary::code),
        anomalies: Some(anomalies.join(",")).filter(|a| !a.is_empty()),
        details: None,
        product_id: None,
    }
}

/// Commits concurrent SMTP deliveries together ("group commit"): one transaction, and one
/// durable flush, for every message that arrived while the previous batch was committing.
/// Each sender still gets its `250` only after the commit that holds its message.
#[derive(Debug, Clone)]
pub struct IntakeQueue {
    sender: tokio::sync::mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    raw: Vec<u8>,
    mail: InboundMail,
    envelope: MailEnvelope,
    reply: tokio::sync::oneshot::Sender<Result<IngestOutcome, AppError>>,
}

/// The most messages committed in one transaction.
const MAX_BATCH: usize = 64;

impl IntakeQueue {
    /// Starts the committer task for `app`.
    pub fn start(app: App) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        // One committer: batches are largest when one transaction is filed while the next
        // batch gathers. (Two committers on PostgreSQL were measured slower: smaller batches,
        // and both serialise on the reference counter and the audit head anyway.)
        tokio::spawn(committer(app, receiver));
        Self { sender }
    }

    /// Takes in one message; returns once it is committed (or failed). Parsing and
    /// decryption run here, on a blocking thread, so the committer only writes.
    pub async fn ingest(&self, app: &App, raw: Vec<u8>, envelope: MailEnvelope) -> Result<IngestOutcome, AppError> {
        let key = crate::openpgp::instance_key(app).await?;
        let app_for_parse = app.clone();
        let (raw, mail) = tokio::task::spawn_blocking(move || {
            let mail = precheck(&app_for_parse, &raw, &key)?;
            Ok::<_, AppError>((raw, mail))
        })
        .await
        .map_err(|e| AppError::Unavailable(format!("parsing failed: {e}")))??;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.sender
            .send(Pending { raw, mail, envelope, reply })
            .await
            .map_err(|_| AppError::Unavailable("intake is shutting down".into()))?;
        answer.await.map_err(|_| AppError::Unavailable("intake stopped before committing".into()))?
    }
}

async fn committer(app: App, mut receiver: tokio::sync::mpsc::Receiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A panic while filing a batch must not stop intake: it drops the batch's reply
        // channels (each sender is told to retry) and the committer carries on.
        let _ = tokio::spawn(commit_batch(app.clone(), batch)).await;
    }
}

async fn commit_batch(app: App, batch: Vec<Pending>) {
    let app = &app;
    metrics::histogram!("embargo_intake_batch_size").record(batch.len() as f64);
    let fail_all = |batch: Vec<Pending>, err: embargo_store::StoreError| {
        let reason = AppError::from(err).to_string();
        for pending in batch {
            let _ = pending.reply.send(Err(AppError::Unavailable(reason.clone())));
        }
    };
    let mut tx = match app.store.begin_urgent().await {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, err),
    };
    let outcomes = match file_batch(&mut tx, app, &batch).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            // One failure aborts the shared transaction. Nothing was half-stored; each
            // message is then taken in on its own, so that one bad message cannot hold
            // the others back.
            tracing::warn!(error = %err, batch = batch.len(), "intake batch failed; retrying one by one");
            let _ = tx.rollback().await;
            for pending in batch {
                let result = ingest_parsed(app, &pending.raw, &pending.mail, &pending.envelope).await;
                let _ = pending.reply.send(result);
            }
            return;
        }
    };
    if let Err(err) = tx.commit().await {
        return fail_all(batch, err);
    }
    app.intake_committed();
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        log_outcome(&outcome);
        let _ = pending.reply.send(Ok(outcome));
    }
}

/// The most Message-IDs one message may cite and still be filed in bulk.
const MAX_BULK_THREAD_IDS: usize = 50;

/// Files a batch in the caller's transaction, in as few statements as it can: messages that
/// plainly open new reports (no reply address, no robot, no signature to check, and no
/// Message-ID that is known or shared with another message of the batch) are submitted
/// together with one statement per table; the others are threaded one by one, in arrival
/// order, exactly as [`ingest_in`] does for a single message. Outcomes are in batch order.
async fn file_batch(tx: &mut Tx, app: &App, batch: &[Pending]) -> Result<Vec<IngestOutcome>, AppError> {
    let ours = SecurityAddress::of(app);
    // Compared as the store compares them (without angle brackets and spaces).
    let cited = |p: &Pending| -> Vec<String> {
        let mut ids: Vec<String> = p
            .mail
            .message_id
            .iter()
            .chain(&p.mail.thread_ids)
            .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let cited: Vec<Vec<String>> = batch.iter().map(cited).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in cited.iter().flatten() {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let lookup: Vec<&str> =
        cited.iter().filter(|ids| ids.len() <= MAX_BULK_THREAD_IDS).flatten().map(String::as_str).collect();
    let known = messages::reports_for_message_ids(tx, &lookup).await?;
    let known: std::collections::HashSet<&str> = known.into_iter().map(|(position, _)| lookup[position]).collect();
    let plainly_new = |(pending, ids): (&Pending, &Vec<String>)| {
        let recipients =
            if pending.envelope.rcpt_to.is_empty() { &pending.mail.recipients } else { &pending.envelope.rcpt_to };
        let robot = pending.mail.auto_generated || pending.envelope.mail_from.as_deref() == Some("");
        let unchecked_signature =
            matches!(pending.mail.pgp, Some(embargo_mail::PgpStatus::Decrypted { signed: true, verified: None, .. }));
        !robot
            && !unchecked_signature
            && ids.len() <= MAX_BULK_THREAD_IDS
            && recipients.iter().all(|r| ours.classify(r).flatten().is_none())
            && ids.iter().all(|id| seen[id.as_str()] == 1 && !known.contains(id.as_str()))
    };
    let bulk: Vec<bool> = batch.iter().zip(&cited).map(plainly_new).collect();
    let submissions: Vec<Submission> = batch
        .iter()
        .zip(&bulk)
        .filter(|(_, bulk)| **bulk)
        .map(|(p, _)| submission_of(app, &p.raw, &p.mail, &p.envelope, p.mail.pgp.as_ref()))
        .collect();
    let actor = Actor::System("intake");
    let mut submitted = reports::submit_many_in(tx, app, &actor, &submissions).await?.into_iter();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (pending, bulk) in batch.iter().zip(bulk) {
        outcomes.push(match bulk {
            true => IngestOutcome::NewReport(
                submitted
                    .next()
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a bulk submission is missing")))?
                    .reference,
            ),
            false => ingest_in(tx, app, &pending.raw, &pending.mail, &pending.envelope).await?,
        });
    }
    Ok(outcomes)
}

enum Thread {
    Redelivery(ReferenceId),
    Reply(embargo_domain::ReportId),
    Quarantine(embargo_domain::ReportId),
    /// A delivery status notification about mail Embargo sent on this report.
    Bounce(embargo_domain::ReportId),
    /// A delivery status notification about a partner's copy of a notice.
    NoticeBounce(i64),
    New,
}

/// Our own Message-IDs quoted anywhere in `raw` (a bounce quotes the failed message).
fn our_message_ids(raw: &[u8], hostname: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let suffix = format!("@{hostname}");
    let mut ids = Vec::new();
    for (start, _) in text.match_indices("embargo.").take(100) {
        let candidate: String =
            text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@')).collect();
        if candidate.ends_with(&suffix) && !ids.contains(&candidate) {
            ids.push(candidate);
        }
    }
    ids
}

/// Decides where a message belongs (read-only).
async fn find_thread(
    tx: &mut Tx,
    app: &App,
    raw: &[u8],
    mail: &InboundMail,
    envelope: &MailEnvelope,
    token: Option<&str>,
) -> Result<Thread, AppError> {
    // Bounces (null sender or robots) that quote one of our messages belong to its report.
    let robot = mail.auto_generated || envelope.mail_from.as_deref() == Some("");
    if robot {
        let ids = our_message_ids(raw, &app.config.mail_hostname());
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        if let Some(copy) = embargo_store::partners::delivery_by_message_ids(tx, &ids).await? {
            return Ok(Thread::NoticeBounce(copy.id));
        }
        if let Some(report) = messages::reports_by_message_ids(tx, &ids).await?.first() {
            return Ok(Thread::Bounce(*report));
        }
    }
    if let Some(message_id) = &mail.message_id
        && let Some(report) = messages::reports_by_message_ids(tx, &[message_id]).await?.first()
    {
        let record = sr::get(tx, *report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
        return Ok(Thread::Redelivery(record.reference));
    }
    let sender = sender_of(mail, envelope);
    let sender_index = sender.address.as_deref().map(|from| reporters::email_index(tx, from));
    let from_reporter = async |tx: &mut Tx, report: embargo_domain::ReportId| -> Result<bool, AppError> {
        let Some(record) = sr::get(tx, report).await? else { return Ok(false) };
        let reporter = reporters::get(tx, record.reporter_id).await?;
        Ok(sender_index.as_deref() == Some(reporters::email_index(tx, &reporter.email).as_str()))
    };
    if let Some(token) = token
        && let Some(report) = sr::by_reply_token(tx, token).await?
    {
        // Only the reporter's own address speaks as the reporter on their report.
        return Ok(if from_reporter(tx, report).await? { Thread::Reply(report) } else { Thread::Quarantine(report) });
    }
    let thread_ids: Vec<&str> = mail.thread_ids.iter().map(String::as_str).collect();
    for report in messages::reports_by_message_ids(tx, &thread_ids).await? {
        if from_reporter(tx, report).await? {
            return Ok(Thread::Reply(report));
        }
    }
    // Mail from someone else citing a report's messages opens a report of its own rather
    // than being posted as the reporter.
    Ok(Thread::New)
}

/// How intake failures are told to a mail peer: bad input is refused for good, everything
/// else is temporary (the peer keeps the message and retries).
fn delivery_error(err: AppError) -> DeliveryError {
    match err {
        AppError::Invalid(reason) => DeliveryError::Permanent(reason),
        err => DeliveryError::Temporary(err.to_string()),
    }
}

/// The SMTP listener's delivery: accepts the security address and its reply addresses,
/// and stores each message through [`ingest`] before the listener answers `250`.
#[derive(Debug, Clone)]
pub struct SmtpIntake {
    app: App,
    queue: IntakeQueue,
    checker: Option<Arc<embargo_mail::auth::Checker>>,
}

impl SmtpIntake {
    /// Intake for `app`, with its group-commit queue and, when enabled, the DKIM/SPF/DMARC
    /// checker.
    pub fn new(app: App) -> Arc<Self> {
        let mail = &app.config.mail;
        let checker = if mail.check_sender_authentication {
            let server = mail.dns_server.parse().ok();
            match embargo_mail::auth::Checker::new(server, &app.config.mail_hostname()) {
                Ok(checker) => {
                    let checker = Arc::new(checker);
                    // Said once at start, rather than learnt from slow intake.
                    let probe = checker.clone();
                    tokio::spawn(async move {
                        if !probe.resolver_answers().await {
                            tracing::warn!(
                                "no DNS resolver answers: sender authentication will record temperror \
                                 (each message waits at most its time budget, then none while DNS stays down)"
                            );
                        }
                    });
                    Some(checker)
                }
                Err(error) => {
                    tracing::warn!(error = %error, "sender authentication disabled: no DNS resolver");
                    None
                }
            }
        } else {
            None
        };
        Arc::new(Self { queue: IntakeQueue::start(app.clone()), app, checker })
    }
}

impl Delivery for SmtpIntake {
    fn accepts(&self, address: &str) -> bool {
        SecurityAddress::of(&self.app).is_ours(address) || crate::postmaster::is_postmaster(&self.app, address)
    }

    fn deliver(&self, mut envelope: Envelope) -> BoxFuture<'_, Result<String, DeliveryError>> {
        Box::pin(async move {
            // Mail to the postmaster goes to the admins, never into a report; the same
            // message to the security address as well is filed there too.
            let (postmaster, others): (Vec<String>, Vec<String>) = std::mem::take(&mut envelope.rcpt_to)
                .into_iter()
                .partition(|r| crate::postmaster::is_postmaster(&self.app, r));
            envelope.rcpt_to = others;
            if !postmaster.is_empty() {
                let peer = envelope.peer.ip().to_string();
                crate::postmaster::accept(&self.app, &envelope.data, &envelope.mail_from, &peer)
                    .await
                    .map_err(delivery_error)?;
                if envelope.rcpt_to.is_empty() {
                    return Ok("queued".to_owned());
                }
            }
            let started = std::time::Instant::now();
            let auth = match &self.checker {
                Some(checker) => {
                    let check = checker.check(&envelope.data, envelope.peer.ip(), &envelope.helo, &envelope.mail_from);
                    Some(tokio::time::timeout(std::time::Duration::from_secs(20), check).await.unwrap_or_else(|_| {
                        embargo_mail::auth::AuthSummary {
                            dkim: "temperror".into(),
                            spf: "temperror".into(),
                            dmarc: "temperror".into(),
                        }
                    }))
                }
                None => None,
            };
            let mail_envelope = MailEnvelope { mail_from: Some(envelope.mail_from), rcpt_to: envelope.rcpt_to, auth };
            let result = self.queue.ingest(&self.app, envelope.data, mail_envelope).await;
            metrics::histogram!("embargo_smtp_commit_seconds").record(started.elapsed().as_secs_f64());
            match result {
                Ok(_) => {
                    metrics::counter!("embargo_smtp_messages_accepted_total").increment(1);
                    // The reply names no report: it would tell a sender which reports exist.
                    Ok("queued".to_owned())
                }
                Err(err) => {
                    metrics::counter!("embargo_smtp_messages_refused_total").increment(1);
                    Err(delivery_error(err))
                }
            }
        })
    }
}

/// The SMTP listener's settings from the configuration; loads the STARTTLS certificate.
pub fn smtp_settings(app: &App) -> Result<embargo_mail::smtp::SmtpSettings, AppError> {
    let mail = &app.config.mail;
    let tls = if mail.tls_certificate.is_empty() {
        None
    } else {
        let read = |path: &str| std::fs::read(path).map_err(|e| AppError::Invalid(format!("cannot read {path}: {e}")));
        let acceptor = embargo_mail::smtp::tls_acceptor(&read(&mail.tls_certificate)?, &read(&mail.tls_key)?)
            .map_err(|e| AppError::Invalid(format!("mail.tls_certificate/mail.tls_key: {e}")))?;
        Some(acceptor)
    };
    let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(embargo_mail::smtp::SmtpSettings {
        hostname: app.config.mail_hostname(),
        max_message_bytes: usize::try_from(app.config.limits.max_message_bytes).unwrap_or(usize::MAX),
        max_recipients: count(mail.max_recipients),
        max_connections_per_ip: count(mail.max_connections_per_ip),
        max_connections: count(mail.max_connections),
        messages_per_minute_per_ip: mail.messages_per_minute_per_ip,
        idle_timeout: std::time::Duration::from_secs(300),
        tls,
        memory: embargo_mail::smtp::MemoryBudget::new(
            usize::try_from(app.config.limits.max_smtp_buffered_bytes.max(app.config.limits.max_message_bytes))
                .unwrap_or(usize::MAX),
        ),
        proxy_protocol_from: (!mail.proxy_protocol_from.is_empty()).then(|| {
            let ranges = mail.proxy_protocol_from.clone();
            std::sync::Arc::new(move |ip: std::net::IpAddr| crate::config::in_ranges(ip, &ranges))
                as std::sync::Arc<dyn Fn(std::net::IpAddr) -> bool + Send + Sync>
        }),
    })
}

/// Runs the SMTP listener for `app` until `stop` turns true.
pub async fn serve_smtp(
    app: App,
    listener: tokio::net::TcpListener,
    settings: embargo_mail::smtp::SmtpSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    embargo_mail::smtp::serve(listener, settings, SmtpIntake::new(app), stop).await;
}

/// The messages in the outbox (when no relay is configured), oldest first.
pub fn outbox(app: &App) -> Result<Vec<embargo_mail::outbound::OutboxEntry>, AppError> {
    embargo_mail::outbound::Outbox::new(&app.config.outbox_dir())
        .list()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot read the outbox: {e}")))
}

/// IMAP polling's sink: each message goes through the same group-commit queue as SMTP.
#[derive(Debug, Clone)]
struct ImapIntake {
    app: App,
    queue: IntakeQueue,
}

impl embargo_mail::imap::MailSink for ImapIntake {
    fn ingest(&self, raw: Vec<u8>) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.queue.ingest(&self.app, raw, MailEnvelope::default()).await.map(drop).map_err(delivery_error)
        })
    }
}

/// The IMAP poller's settings, when `imap.server` is configured.
pub fn imap_settings(app: &App) -> Result<Option<embargo_mail::imap::ImapSettings>, AppError> {
    let imap = &app.config.imap;
    let Some((host, port)) = imap.server.rsplit_once(':') else { return Ok(None) };
    let ca_certificate_pem = if imap.ca_certificate.is_empty() {
        None
    } else {
        Some(
            std::fs::read(&imap.ca_certificate)
                .map_err(|e| AppError::Invalid(format!("cannot read {}: {e}", imap.ca_certificate)))?,
        )
    };
    Ok(Some(embargo_mail::imap::ImapSettings {
        host: host.to_owned(),
        port: port.parse().map_err(|_| AppError::Invalid("imap.server: bad port".into()))?,
        username: imap.username.clone(),
        password: imap.password.expose().to_owned(),
        mailbox: imap.mailbox.clone(),
        ca_certificate_pem,
        poll_interval: std::time::Duration::from_secs(u64::from(imap.poll_seconds)),
    }))
}

/// Polls the configured mailbox until `stop` turns true.
pub async fn poll_imap(app: App, settings: embargo_mail::imap::ImapSettings, stop: tokio::sync::watch::Receiver<bool>) {
    let sink = Arc::new(ImapIntake { queue: IntakeQueue::start(app.clone()), app });
    embargo_mail::imap::run(settings, sink, stop).await;
}

#[cfg(test)]
mod sender_tests {
    use super::*;

    fn envelope(mail_from: Option<&str>, dmarc: Option<&str>) -> MailEnvelope {
        MailEnvelope {
            mail_from: mail_from.map(str::to_owned),
            rcpt_to: vec!["security@example.org".into()],
            auth: dmarc.map(|d| embargo_mail::auth::AuthSummary {
                dkim: "none".into(),
                spf: "none".into(),
                dmarc: d.into(),
            }),
        }
    }

    #[test]
    fn the_acknowledgement_goes_only_where_the_envelope_confirms() {
        let two = embargo_mail::parse(b"From: a@x.test\r\nFrom: victim@y.test\r\nSubject: s\r\n\r\nb\r\n");
        // The envelope picks the reporter among several From addresses.
        let sender = sender_of(&two, &envelope(Some("victim@y.test"), None));
        assert_eq!(sender.address.as_deref(), Some("victim@y.test"));
        assert!(sender.may_acknowledge);
        assert_eq!(sender.anomalies, vec!["ambiguous-sender".to_owned()]);
        // None of them is the envelope sender: the first is the reporter, nobody is answered.
        let sender = sender_of(&two, &envelope(Some("attacker@evil.test"), None));
        assert_eq!(sender.address.as_deref(), Some("a@x.test"));
        assert!(!sender.may_acknowledge);
        assert_eq!(sender.anomalies, vec!["ambiguous-sender".to_owned(), "sender-mismatch".to_owned()]);
        // No envelope at all (a bare pipe): ambiguous is never answered.
        assert!(!sender_of(&two, &envelope(None, None)).may_acknowledge);

        let one = embargo_mail::parse(b"From: Victim <victim@y.test>\r\nSubject: s\r\n\r\nb\r\n");
        let mismatch = sender_of(&one, &envelope(Some("attacker@evil.test"), None));
        assert!(!mismatch.may_acknowledge);
        assert_eq!(mismatch.anomalies, vec!["sender-mismatch".to_owned()]);
        // DMARC passed for the From domain: it vouched for the message.
        let vouched = sender_of(&one, &envelope(Some("bounces+123@esp.test"), Some("pass")));
        assert!(vouched.may_acknowledge);
        assert_eq!(vouched.anomalies, vec!["sender-mismatch".to_owned()]);
        // The ordinary case, case-insensitively; and a pipe with the Return-Path the MTA wrote.
        let same = sender_of(&one, &envelope(Some("VICTIM@y.test"), None));
        assert!(same.may_acknowledge && same.anomalies.is_empty());
        let piped =
            embargo_mail::parse(b"Return-Path: <other@z.test>\r\nFrom: victim@y.test\r\nSubject: s\r\n\r\nb\r\n");
        let piped = sender_of(&piped, &MailEnvelope::default());
        assert!(!piped.may_acknowledge);
        assert_eq!(piped.anomalies, vec!["sender-mismatch".to_owned()]);
        assert!(sender_of(&one, &MailEnvelope::default()).may_acknowledge, "no envelope, one From: as before");
    }
}
