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
    let greeting = match reporter_name.map(str::trim).filter(|n| !n.is_empty() && n.len() <= 80) {
        Some(name) => format!("Hello {},", name.chars().filter(|c| !c.is_control()).collect::<String>()),
        None => "Hello,".to_owned(),
    };
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
