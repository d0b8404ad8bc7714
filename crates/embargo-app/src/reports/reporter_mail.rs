//! Mail to a report's reporter, sent by jobs: the acknowledgement of a new report (claimed
//! and recorded in batches), the older not-security notice kind, and the messages the team
//! writes on the thread (replies, state notices). Each is recorded on the thread and in the
//! audit trail, and its job completed, in one transaction after the transport took it.

use embargo_domain::{Actor, ReferenceId, ReportId};
use embargo_store::messages::{self, MessageKind, NewMessage};
use embargo_store::reporters::ReporterRecord;
use embargo_store::reports::{self as sr, ReportRecord};
use serde::{Deserialize, Serialize};

use crate::jobs::{self, Claim, Job, JobError};
use crate::mail::{ReporterMail, STATUS_LINK_PLACEHOLDER, STATUS_LINK_REDACTED};
use crate::{App, audit};

/// The `mail.acknowledgement` job: sends the reporter the acknowledgement of their new
/// report (reference, what happens next, the status link, the reply address). Identifiers
/// only: the reporter's Message-ID is read from the sealed original message when the job
/// runs, so that nothing the reporter wrote sits in the jobs table in clear.
#[derive(Debug, Serialize, Deserialize)]
pub struct Acknowledgement {
    report: i64,
    /// The reporter's message it answers.
    message: Option<i64>,
}

impl Acknowledgement {
    /// The acknowledgement of `report`, answering its first `message`.
    pub(crate) fn new(report: ReportId, message: Option<i64>) -> Self {
        Self { report: report.0, message }
    }
}

impl Job for Acknowledgement {
    const KIND: &'static str = "mail.acknowledgement";
    const BATCHED: bool = true;

    fn key(&self) -> Option<String> {
        Some(format!("ack:{}", self.report))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        Self::run_batch(app, vec![(self, claim)]).await.remove(0)
    }

    async fn run_batch(app: &App, jobs: Vec<(Self, Claim)>) -> Vec<Result<(), JobError>> {
        let jobs = jobs.into_iter().map(|(job, claim)| ((job.report, job.message), claim)).collect();
        report_mails(app, Self::KIND, jobs).await
    }
}

/// The `mail.not_security` job of older versions: the policy's redirect to the public issue
/// tracker for a report closed as not-security. (Today that notice is a thread message
/// sent by [`ReporterMessage`]; queued jobs of this kind still run.)
#[derive(Debug, Serialize, Deserialize)]
pub struct NotSecurity {
    report: i64,
    message: Option<i64>,
}

impl Job for NotSecurity {
    const KIND: &'static str = "mail.not_security";

    fn key(&self) -> Option<String> {
        Some(format!("ns:{}", self.report))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        report_mails(app, Self::KIND, vec![((self.report, self.message), claim)]).await.remove(0)
    }
}

/// A report mail (acknowledgement or not-security notice), composed from the report and
/// ready to send.
struct ReportMail {
    label: String,
    report: ReportId,
    reference: ReferenceId,
    reporter: ReporterRecord,
    reply_address: String,
    subject: String,
    body: String,
    /// The body as kept on the thread (without the status link).
    thread_body: String,
    message_id: String,
    in_reply_to: Option<String>,
    auto_reply: bool,
}

impl ReportMail {
    fn mail(&self) -> ReporterMail<'_> {
        ReporterMail {
            reporter: &self.reporter,
            reply_to: self.reply_address.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            message_id: self.message_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            auto_reply: self.auto_reply,
            label: self.label.clone(),
        }
    }
}

/// Composes and sends mails of `kind` to reports' reporters (`(report, the message it
/// answers)` per job), then records each on its report's thread and completes the jobs in
/// one transaction. Returns one outcome per job.
async fn report_mails(app: &App, kind: &str, jobs: Vec<((i64, Option<i64>), Claim)>) -> Vec<Result<(), JobError>> {
    let prepared = match prepare(app, kind, &jobs).await {
        Ok(prepared) => prepared,
        Err(err) => {
            let reason = err.to_string();
            return jobs.iter().map(|_| Err(JobError::Retry(reason.clone()))).collect();
        }
    };
    let mut outcomes: Vec<Result<(), JobError>> = Vec::with_capacity(jobs.len());
    let mut sent = Vec::new();
    for (position, ((_, claim), prepared)) in jobs.iter().zip(prepared).enumerate() {
        let mail = match prepared {
            Ok(mail) => mail,
            Err(err) => {
                outcomes.push(Err(err));
                continue;
            }
        };
        match crate::mail::send_to_reporter(app, mail.mail()).await {
            Ok(receipt) => {
                outcomes.push(Ok(()));
                sent.push((position, claim, mail, receipt));
            }
            Err(err) => outcomes.push(Err(err)),
        }
    }
    // Record what was sent: all in one transaction, or, if that fails, one by one so that
    // one job's lost lease does not undo the others' records.
    if sent.len() > 1 && record(app, kind, &sent).await.is_ok() {
        return outcomes;
    }
    for entry in &sent {
        if let Err(err) = record(app, kind, std::slice::from_ref(entry)).await {
            outcomes[entry.0] = Err(err);
        }
    }
    outcomes
}

/// Reads what each report mail needs, in one snapshot and a few statements for the whole
/// batch: per job, the mail or why it cannot be sent.
async fn prepare(
    app: &App,
    kind: &str,
    jobs: &[((i64, Option<i64>), Claim)],
) -> Result<Vec<Result<ReportMail, JobError>>, JobError> {
    let wanted: Vec<ReportId> = jobs.iter().map(|((report, _), _)| ReportId(*report)).collect();
    let originals: Vec<(ReportId, i64)> =
        jobs.iter().filter_map(|((report, message), _)| message.map(|m| (ReportId(*report), m))).collect();
    let mut tx = app.store.snapshot().await?;
    let reports = sr::get_many(&mut tx, &wanted).await?;
    let reporter_ids: Vec<i64> = reports.values().map(|r| r.reporter_id).collect();
    let reporters = embargo_store::reporters::get_many(&mut tx, &reporter_ids).await?;
    let tokens = sr::status_tokens(&mut tx, &wanted).await?;
    let raws = messages::raws(&mut tx, &originals).await?;
    tx.rollback().await?;
    let mut prepared = Vec::with_capacity(jobs.len());
    for ((report, message), claim) in jobs {
        let report_id = ReportId(*report);
        prepared.push((|| {
            let record = reports
                .get(&report_id)
                .ok_or_else(|| JobError::Permanent(format!("report {report} does not exist")))?;
            let reporter = reporters
                .get(&record.reporter_id)
                .cloned()
                .ok_or_else(|| JobError::Retry(format!("the reporter of {} was not found", record.reference)))?;
            let status_token = tokens
                .get(&report_id)
                .ok_or_else(|| JobError::Retry(format!("the status link of {} was not found", record.reference)))?;
            let original = message.and_then(|message| raws.get(&message));
            let in_reply_to = original.and_then(|raw| embargo_mail::parse(raw).message_id);
            Ok(compose(app, kind, claim, record, reporter, status_token, in_reply_to))
        })());
    }
    Ok(prepared)
}

/// Composes one report mail (see [`prepare`]).
fn compose(
    app: &App,
    kind: &str,
    claim: &Claim,
    report: &ReportRecord,
    reporter: ReporterRecord,
    status_token: &str,
    in_reply_to: Option<String>,
) -> ReportMail {
    let reply_address = crate::mail::reply_address(app, &report.reply_token);
    let (text, tag, auto_reply) = match kind {
        NotSecurity::KIND => {
            (crate::mail::not_security(app, &report.reference, reporter.name.as_deref(), &reply_address), "ns", false)
        }
        _ => (
            crate::mail::acknowledgement(
                app,
                &report.reference,
                reporter.name.as_deref(),
                status_token,
                &reply_address,
            ),
            "ack",
            true,
        ),
    };
    ReportMail {
        label: format!("{tag}-{}-{}", report.reference, claim.id()),
        report: report.id,
        reference: report.reference.clone(),
        reporter,
        reply_address,
        // The thread keeps the text without the status link: the link is the reporter's
        // credential, mailed to them only. The whole address goes, not only the token: what
        // is left must not read (or be linked) as an address.
        thread_body: text
            .body
            .replace(&format!("{}/status/{status_token}", app.config.base_url()), STATUS_LINK_REDACTED)
            .replace(status_token, STATUS_LINK_REDACTED),
        subject: text.subject,
        body: text.body,
        message_id: crate::mail::new_message_id(app, tag),
        in_reply_to,
        auto_reply,
    }
}

/// Records sent report mails on their threads and in the audit trail, and completes their
/// jobs, in one transaction.
async fn record(app: &App, kind: &str, sent: &[(usize, &Claim, ReportMail, String)]) -> Result<(), JobError> {
    let now = app.now();
    let sender = &app.config.organisation.security_address;
    let rows: Vec<NewMessage<'_>> = sent
        .iter()
        .map(|(_, _, mail, _)| NewMessage {
            report: mail.report,
            kind: MessageKind::Outbound,
            author: "system:intake",
            sender: Some(sender),
            subject: Some(&mail.subject),
            body: &mail.thread_body,
            raw: None,
            message_id: Some(&mail.message_id),
            quarantined: false,
            pgp: None,
            auth: None,
            anomalies: None,
            at: now,
        })
        .collect();
    let entries: Vec<audit::Entry> = sent
        .iter()
        .map(|(_, _, mail, receipt)| audit::Entry {
            action: "mail.sent",
            subject: format!("report:{}", mail.reference),
            details: crate::mail::sent_details(kind, None, receipt, mail.reporter.openpgp_key.is_some()),
        })
        .collect();
    let claims: Vec<Claim> = sent.iter().map(|(_, claim, _, _)| (*claim).clone()).collect();
    let mut tx = app.store.begin().await?;
    messages::insert_many(&mut tx, &rows).await?;
    jobs::mark_done_in(&mut tx, &claims, now).await?;
    // Last: appending locks the audit head (on PostgreSQL, until the commit), which
    // intake's transactions need too.
    audit::record_many(&mut tx, app, &Actor::System("mail"), &entries).await?;
    tx.commit().await?;
    Ok(())
}

/// The `mail.message` job: sends a message the team wrote to the reporter (a reply or a
/// state-change notice) as stored on the report's thread, then records the delivery and
/// completes the job in one transaction. Identifiers only: the text is read from the sealed
/// message when the job runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReporterMessage {
    report: i64,
    message: i64,
    message_id: String,
}

impl ReporterMessage {
    /// The mail of stored outbound message `message` of `report`, sent with `message_id`.
    pub(crate) fn new(report: ReportId, message: i64, message_id: &str) -> Self {
        Self { report: report.0, message, message_id: message_id.to_owned() }
    }
}

impl Job for ReporterMessage {
    const KIND: &'static str = "mail.message";

    fn key(&self) -> Option<String> {
        Some(format!("message:{}", self.message))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let report_id = ReportId(self.report);
        let mut tx = app.store.begin().await?;
        let report = sr::get(&mut tx, report_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", self.report)))?;
        let reporter = embargo_store::reporters::get(&mut tx, report.reporter_id).await?;
        let message = messages::get(&mut tx, report_id, self.message)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("message {} does not exist", self.message)))?;
        // Thread under the reporter's latest message, when it came by mail.
        let latest_inbound = messages::latest_inbound_raw(&mut tx, report_id).await?;
        let body = if message.body.contains(STATUS_LINK_PLACEHOLDER) {
            let token = sr::status_token(&mut tx, report_id).await?;
            message.body.replace(STATUS_LINK_PLACEHOLDER, &format!("{}/status/{token}", app.config.base_url()))
        } else {
            message.body.clone()
        };
        tx.rollback().await?;
        let in_reply_to = latest_inbound.and_then(|raw| embargo_mail::parse(&raw).message_id);
        let receipt = crate::mail::send_to_reporter(
            app,
            ReporterMail {
                reporter: &reporter,
                reply_to: crate::mail::reply_address(app, &report.reply_token),
                subject: message.subject.clone().unwrap_or_else(|| format!("[{}]", report.reference)),
                body,
                message_id: self.message_id.clone(),
                in_reply_to,
                auto_reply: false,
                label: format!("msg-{}-{}", report.reference, claim.id()),
            },
        )
        .await?;
        let details =
            crate::mail::sent_details(Self::KIND, Some(self.message), &receipt, reporter.openpgp_key.is_some());
        crate::mail::record_sent(app, &claim, &report.reference, &details).await
    }
}
