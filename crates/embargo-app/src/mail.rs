//! The texts of the mail Embargo sends. Plain text, built from configuration; they never
//! quote report content (outgoing mail may sit unencrypted in an outbox or a relay's queue).

use embargo_domain::ReferenceId;
pub use embargo_mail::outbound::OutboxEntry;

use crate::App;

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
    let days = config.sla.acknowledge_working_days;
    let greeting = greeting(reporter_name);
    let body = format!(
        "{greeting}\n\n\
         Thank you for reporting a security issue to {organisation}.\n\
         Your report has the reference {reference}.\n\n\
         What happens next: the {organisation} security team acknowledges\n\
         and analyses each report within {days} working days, and keeps you\n\
         updated as the issue is addressed.\n\n\
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
