//! The mail Embargo sends: its texts, addresses and Message-IDs, and sending it (for the
//! jobs that mail reporters and the team).
//!
//! The texts of the mail Embargo sends Plain text, built from configuration; they never
//! quote report content (outgoing mail may sit unencrypted in an outbox or a relay's queue).

use embargo_domain::{Actor, ReferenceId, Timestamp};
pub use embargo_mail::outbound::OutboxEntry;

use crate::App;
use crate::jobs::{Claim, JobError};

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailText {
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// The acknowledgement of a new report: its reference, what happens next (the policy's
/// evaluation commitment), the private status link and the reply address.
pub fn acknowledgement(
    app: &App,
    reference: &ReferenceId,
    reporter_name: Option<&str>,
    status_token: &str,
    reply_address: &str,
) -> MailText {
    let config = &app.config;
    let organisation = &config.organisation.name;
    // The promise on lines of its own (one line with the default policy).
    let next = format!(
        "What happens next: the {organisation} security team\n{},\nand keeps you updated as the issue is addressed.",
        wrap(&promise(app, Person::Third), 76)
    );
    let greeting = greeting(reporter_name);
    let body = format!(
        "{greeting}\n\n\
         Thank you for reporting a security issue to {organisation}.\n\
         Your report has the reference {reference}.\n\n\
         {next}\n\n\
         Follow the status of your report at this private link (it works\n\
         without an account; do not share it):\n\n\
         {base}/status/{status_token}\n\n\
         To add information, reply to this message: replies to\n\
         {reply_address} are added to your report.\n\n\
         -- \n{organisation} security team\n\
         This message was sent automatically.\n",
        base = config.base_url(),
    );
    MailText { subject: format!("[{reference}] We received your security report"), body }
}

/// `text` broken into lines of at most `width` characters at spaces (longer words stay
/// whole).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

/// Who makes the promise of [`promise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    /// "We acknowledge…"
    First,
    /// "The team acknowledges…"
    Third,
}

/// The evaluation promise as configured, without its subject: "acknowledge and analyse each
/// report within 10 working days of receipt" (`sla.analyse_from = "receipt"`, the default),
/// or with the analysis counted from the acknowledgement when so configured. What the
/// reporter reads is what the SLA clocks measure.
pub fn promise(app: &App, person: Person) -> String {
    let sla = &app.config.sla;
    let (ack, analyse) = (sla.acknowledge_working_days, sla.analyse_working_days);
    let [acknowledge, analyse_verb, analyses_it] = match person {
        Person::First => ["acknowledge", "analyse", "analyse it"],
        Person::Third => ["acknowledges", "analyses", "analyses it"],
    };
    match sla.analyse_from {
        crate::config::AnalyseFrom::Receipt if ack == analyse => {
            format!("{acknowledge} and {analyse_verb} each report within {ack} working days of receipt")
        }
        crate::config::AnalyseFrom::Receipt => format!(
            "{acknowledge} each report within {ack} working days of receipt and {analyses_it} within {analyse} working days of receipt"
        ),
        crate::config::AnalyseFrom::Acknowledgement => format!(
            "{acknowledge} each report within {ack} working days of receipt and {analyses_it} within {analyse} working days of the acknowledgement"
        ),
    }
}

/// The policy's redirect for reports that are not security issues: thanks, and where normal
/// bugs go (the public issue tracker).
pub fn not_security(app: &App, reference: &ReferenceId, reporter_name: Option<&str>, reply_address: &str) -> MailText {
    let config = &app.config;
    let organisation = &config.organisation.name;
    let body = format!(
        "{greeting}\n\n\
         Thank you for your report {reference} to the {organisation} security team.\n\n\
         We looked at it and concluded that it is not a security vulnerability,\n\
         so we have closed it on our side. If it is a bug, please report it in\n\
         the public issue tracker, where the maintainers handle normal bugs:\n\n\
         {tracker}\n\n\
         If you think we misjudged the security impact, reply to this message\n\
         (replies to {reply_address} reach us) and tell us why.\n\n\
         -- \n{organisation} security team\n",
        greeting = greeting(reporter_name),
        tracker = config.organisation.public_issue_tracker,
    );
    MailText { subject: format!("[{reference}] Not a security issue: please use the public tracker"), body }
}

fn greeting(reporter_name: Option<&str>) -> String {
    match reporter_name.map(str::trim).filter(|n| !n.is_empty() && n.len() <= 80) {
        Some(name) => format!("Hello {},", name.chars().filter(|c| !c.is_control()).collect::<String>()),
        None => "Hello,".to_owned(),
    }
}

/// The templated notice to the reporter when their report moves to `state`, or `None` for
/// states the reporter is not told about (`new`, `ready-for-disclosure`). The team may edit
/// the text before it goes.
pub fn state_notice(
    app: &App,
    reference: &ReferenceId,
    reporter_name: Option<&str>,
    state: embargo_domain::ReportState,
    reply_address: &str,
) -> Option<MailText> {
    use embargo_domain::{CloseReason, ReportState};
    let config = &app.config;
    let organisation = &config.organisation.name;
    if let ReportState::Closed(CloseReason::NotSecurity) = state {
        return Some(not_security(app, reference, reporter_name, reply_address));
    }
    let (headline, text) = match state {
        ReportState::New | ReportState::ReadyForDisclosure => return None,
        ReportState::Acknowledged => (
            "Your report is acknowledged",
            "We have read your report and acknowledged it. We will now analyse it and tell you\n\
             what we find."
                .to_owned(),
        ),
        ReportState::Triaging => (
            "We are analysing your report",
            "We are analysing your report: reproducing it and assessing its impact.".to_owned(),
        ),
        ReportState::NeedsInfo => {
            let closes = crate::sla::close_due(app, app.now())
                .map(|t| t.to_zoned_datetime(app.time_zone()).strftime("%a %-d %b %Y").to_string())
                .unwrap_or_default();
            (
                "We need more information",
                format!(
                    "To continue our analysis we need more information from you:\n\n\
                     [Write your questions here.]\n\n\
                     How to answer: reply to this message (encrypted if you can), or write on\n\
                     your private status page, where you can also attach files:\n\n\
                     {STATUS_LINK_PLACEHOLDER}\n\n\
                     Our deadlines pause until you answer. If we do not hear from you by\n\
                     {closes}, we close the report; answering later reopens it."
                ),
            )
        }
        ReportState::Accepted => (
            "Your report is accepted as a vulnerability",
            "We have confirmed the vulnerability you reported. We will now work on a fix and\n\
             keep you updated on its progress and on the planned disclosure."
                .to_owned(),
        ),
        ReportState::Fixing => (
            "A fix is in progress",
            "We are developing a fix for the vulnerability you reported. We will tell you the\n\
             planned disclosure date once it is set."
                .to_owned(),
        ),
        ReportState::Disclosed => (
            "The vulnerability is disclosed",
            "The fix and the advisory for the vulnerability you reported are now public.\n\
             Thank you for reporting it responsibly."
                .to_owned(),
        ),
        ReportState::Closed(reason) => {
            let why = match reason {
                CloseReason::Duplicate { .. } => {
                    "it describes a vulnerability that was already reported to us. We will handle\n\
                     it under the earlier report; thank you for reporting it as well."
                }
                CloseReason::Invalid => "we could not confirm a vulnerability from it.",
                CloseReason::OutOfScope => "it concerns something outside the scope of our security policy.",
                CloseReason::Spam => "it was not a vulnerability report.",
                CloseReason::WontFix => {
                    "we concluded that the behaviour is intended or the risk is accepted, so no fix\n\
                     is planned."
                }
                CloseReason::NoResponse => {
                    "we asked you for more information and did not hear back. If you answer\n\
                     later, the report is reopened."
                }
                CloseReason::NotSecurity => unreachable!("handled above"),
            };
            (
                "Your report is closed",
                format!(
                    "We have closed your report because {why}\n\nIf you disagree, reply to this message and tell us why."
                ),
            )
        }
    };
    let body = format!(
        "{greeting}\n\n{text}\n\n\
         You can follow your report {reference} on your private status page, and\n\
         reply to {reply_address} at any time.\n\n\
         -- \n{organisation} security team\n",
        greeting = greeting(reporter_name),
    );
    Some(MailText { subject: format!("[{reference}] {headline}"), body })
}

/// The subject of a reply from the team.
pub fn reply_subject(reference: &ReferenceId, title: &str) -> String {
    let title: String = title.chars().filter(|c| !c.is_control()).take(120).collect();
    format!("[{reference}] Re: {title}")
}

/// The mail that tells a team member about an SLA warning or breach. Only the reference,
/// the clock and the deadline: never report content.
pub fn sla_alert(
    app: &App,
    reference: &ReferenceId,
    clock: &str,
    kind: &str,
    due: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> MailText {
    let what = match clock {
        "acknowledge" => "acknowledging the report",
        "analyse" => "finishing the analysis",
        "update" => "the next update to the reporter",
        "fix" => "the fix",
        _ => "a deadline",
    };
    let due_text = due.to_zoned_datetime(tz.clone()).strftime("%a %Y-%m-%d %H:%M %Z").to_string();
    let (subject, line) = if kind == "breach" {
        (
            format!("[{reference}] SLA breached: {what}"),
            format!("The deadline for {what} on {reference} passed at {due_text}."),
        )
    } else {
        (
            format!("[{reference}] SLA warning: {what} due {due_text}"),
            format!(
                "{percent}% of the time for {what} on {reference} is used; it is due at {due_text}.",
                percent = app.config.sla.warn_at_percent
            ),
        )
    };
    let body = format!("{line}\n\nOpen the report: {}/reports/{reference}\n\n-- \nEmbargo\n", app.config.base_url());
    MailText { subject, body }
}

/// Stands for the reporter's status link in a stored message; replaced by the real link
/// only in the mail itself, so the link never sits readable on the thread.
pub const STATUS_LINK_PLACEHOLDER: &str = "[[status-link]]";

/// What the thread shows where a mail carried the status link.
pub(crate) const STATUS_LINK_REDACTED: &str = "[private link, sent only to the reporter]";

/// The parts of the security address, for recognising reply addresses.
pub(crate) struct SecurityAddress {
    local: String,
    domain: String,
}

impl SecurityAddress {
    pub(crate) fn of(app: &App) -> Self {
        let address = app.config.organisation.security_address.to_lowercase();
        let (local, domain) = address.rsplit_once('@').unwrap_or((&address, ""));
        Self { local: local.to_owned(), domain: domain.to_owned() }
    }

    /// `Some(None)` for the security address itself, `Some(Some(token))` for a reply
    /// address, `None` for anything else.
    pub(crate) fn classify(&self, address: &str) -> Option<Option<String>> {
        let address = address.trim().to_lowercase();
        let (local, domain) = address.rsplit_once('@')?;
        if domain != self.domain {
            return None;
        }
        if local == self.local {
            return Some(None);
        }
        let token = local.strip_prefix(&self.local)?.strip_prefix('+')?;
        let valid = !token.is_empty() && token.len() <= 64 && token.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then(|| Some(token.to_owned()))
    }

    fn reply_address(&self, token: &str) -> String {
        format!("{}+{token}@{}", self.local, self.domain)
    }

    pub(crate) fn is_ours(&self, address: &str) -> bool {
        self.classify(address).is_some()
    }
}

/// The reply address of a report with this token.
pub fn reply_address(app: &App, token: &str) -> String {
    SecurityAddress::of(app).reply_address(token)
}

/// A fresh, unguessable Message-ID for mail Embargo sends (so that nobody can thread mail
/// into a report by citing our messages).
pub(crate) fn new_message_id(app: &App, tag: &str) -> String {
    format!("embargo.{tag}.{}@{}", &crate::tokens::secret("")[..32], app.config.mail_hostname())
}

/// `<Organisation> security <security@...>`, the sender of everything Embargo mails.
pub(crate) fn from_address(app: &App) -> String {
    let organisation = &app.config.organisation;
    format!("{} security <{}>", organisation.name.replace(['<', '>', '"', ','], ""), organisation.security_address)
}

/// A mail to a report's reporter, ready to compose.
pub(crate) struct ReporterMail<'a> {
    pub(crate) reporter: &'a embargo_store::reporters::ReporterRecord,
    pub(crate) reply_to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) message_id: String,
    pub(crate) in_reply_to: Option<String>,
    pub(crate) auto_reply: bool,
    /// Names the outbox file / relay attempt.
    pub(crate) label: String,
}

/// Composes (encrypting when the reporter's key is known, refusing when encryption is
/// required and no key is known) and sends a mail to a reporter; returns the transport's
/// receipt.
pub(crate) async fn send_to_reporter(app: &App, mail: ReporterMail<'_>) -> Result<String, JobError> {
    let outbound = embargo_mail::outbound::OutboundMail {
        from: from_address(app),
        to: mail.reporter.email.clone(),
        reply_to: mail.reply_to,
        subject: mail.subject,
        body: mail.body,
        message_id: mail.message_id,
        in_reply_to: mail.in_reply_to,
        auto_reply: mail.auto_reply,
        encrypt_to: mail.reporter.openpgp_key.clone(),
    };
    if outbound.encrypt_to.is_none() && app.config.requires_encryption(&mail.reporter.email) {
        return Err(JobError::Permanent(
            "mail.require_encryption_for covers this recipient, but no OpenPGP key is known; import one".into(),
        ));
    }
    send(app, &mail.label, &outbound).await
}

/// Composes and sends one mail; returns the transport's receipt. A refused message is a
/// permanent failure, a transport failure is retried.
pub(crate) async fn send(
    app: &App,
    label: &str,
    outbound: &embargo_mail::outbound::OutboundMail,
) -> Result<String, JobError> {
    send_with_files(app, label, outbound, &[]).await
}

/// [`send`] with files attached (inside the signature and the encryption).
pub(crate) async fn send_with_files(
    app: &App,
    label: &str,
    outbound: &embargo_mail::outbound::OutboundMail,
    files: &[embargo_mail::outbound::Attachment],
) -> Result<String, JobError> {
    // Signed with the instance key (and, to a known key, encrypted with protected headers).
    let key = crate::openpgp::instance_key(app).await.map_err(|e| JobError::Retry(e.to_string()))?;
    let raw = embargo_mail::outbound::compose_signed_with_files(outbound, files, &key)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    let sender = &app.config.organisation.security_address;
    app.transport.send(label, sender, &outbound.to, &raw).await.map_err(|e| match e {
        embargo_mail::outbound::SendError::Invalid(_) => JobError::Permanent(e.to_string()),
        embargo_mail::outbound::SendError::Transport(_) => JobError::Retry(e.to_string()),
    })
}

/// The audit details of a sent mail of job kind `kind` (no addresses, no content).
pub(crate) fn sent_details(kind: &str, message: Option<i64>, receipt: &str, encrypted: bool) -> String {
    let message = message.map_or_else(String::new, |m| format!(" message={m}"));
    let via = receipt.split_whitespace().next().unwrap_or("");
    format!("kind={kind}{message} via={via} encrypted={encrypted}")
}

/// Records a sent mail on the report's audit trail and completes its job, in one
/// transaction.
pub(crate) async fn record_sent(
    app: &App,
    claim: &Claim,
    reference: &ReferenceId,
    details: &str,
) -> Result<(), JobError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    crate::audit::record(&mut tx, app, &Actor::System("mail"), "mail.sent", &format!("report:{reference}"), details)
        .await?;
    claim.complete(tx, now).await
}
