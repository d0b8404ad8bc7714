//! Mail to `postmaster@`: RFC 5321 §4.5.1 requires a mail server to accept it. When Embargo
//! is the domain's mail server it takes it in and forwards it to the admins; it never
//! becomes a report.
//!
//! The message is stored sealed (it may say anything) beside a job that names it; the job
//! mails each enabled admin account a forward (a note and the message attached), then
//! records `mail.postmaster.forwarded` in the audit trail and drops the stored copy, in the
//! transaction that completes it. A redelivered message is one job (keyed by its hash).

use embargo_domain::Actor;
use embargo_store::{meta, users};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError, audit};

/// The `mail.postmaster` job: forwards one postmaster message to the admins.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forward {
    /// The `instance_meta` key of the sealed message.
    stored: String,
    /// Envelope sender, as given (not confidential: the peer said it).
    mail_from: String,
    /// The connecting address.
    peer: String,
}

/// Whether `address` is the postmaster: `postmaster` alone (RFC 5321 requires accepting it
/// without a domain) or `postmaster@` one of the instance's domains, in any case.
pub fn is_postmaster(app: &App, address: &str) -> bool {
    let address = address.trim().to_ascii_lowercase();
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (address.as_str(), None),
    };
    if local != "postmaster" {
        return false;
    }
    let Some(domain) = domain else { return true };
    let security = app.config.organisation.security_address.to_ascii_lowercase();
    let ours = security.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    domain == ours || domain == app.config.mail_hostname().to_ascii_lowercase()
}

/// Stores a message to the postmaster and enqueues its forwarding, in one transaction;
/// when this returns it is committed.
pub async fn accept(app: &App, raw: &[u8], mail_from: &str, peer: &str) -> Result<(), AppError> {
    let hash = hex::encode(sha2::Sha256::digest(raw));
    let stored = format!("postmaster.{}", &hash[..32]);
    let mut tx = app.store.begin().await?;
    // Sealed under its own key; the same message again (a retry) finds it there already.
    meta::insert_sealed(&mut tx, &stored, &hex::encode(raw)).await?;
    jobs::enqueue(&mut tx, app, &Forward { stored, mail_from: mail_from.into(), peer: peer.into() }).await?;
    tx.commit().await?;
    tracing::info!("mail to the postmaster accepted");
    Ok(())
}

impl Job for Forward {
    const KIND: &'static str = "mail.postmaster";

    fn key(&self) -> Option<String> {
        Some(format!("postmaster:{}", self.stored))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        forward(app, self, claim).await
    }
}

/// Runs a [`Forward`] job: mails each enabled admin the forward, then records it and
/// completes the job in one transaction.
async fn forward(app: &App, payload: Forward, claim: Claim) -> Result<(), JobError> {
    let mut tx = app.store.snapshot().await?;
    let stored = meta::get_sealed(&mut tx, &payload.stored).await?;
    let admins: Vec<users::UserRecord> = users::list(&mut tx)
        .await?
        .into_iter()
        .filter(|u| u.role == embargo_domain::Role::Admin && !u.disabled)
        .collect();
    tx.rollback().await?;
    let now = app.now();
    let Some(stored) = stored else {
        // Forwarded and dropped by an earlier attempt whose completion was lost.
        return claim.complete(app.store.begin().await?, now).await;
    };
    let raw = hex::decode(stored).map_err(|e| JobError::Permanent(format!("stored message: {e}")))?;
    let subject = embargo_mail::parse(&raw).subject;
    let note = format!(
        "Embargo received this message for the postmaster.\n\n\
         Envelope sender:    <{}>\nConnecting address: {}\n\n\
         The message is attached as it came. It was not filed as a report.\n",
        payload.mail_from.chars().filter(|c| !c.is_control()).collect::<String>(),
        payload.peer,
    );
    let organisation = &app.config.organisation;
    let from = format!(
        "{} postmaster <{}>",
        organisation.name.replace(['<', '>', '"', ','], ""),
        organisation.security_address
    );
    let job_id = claim.id();
    let mut sent = Vec::new();
    for admin in &admins {
        let message_id = format!("embargo.postmaster.{job_id}.{}@{}", admin.id.0, app.config.mail_hostname());
        let raw = embargo_mail::outbound::compose_forward(
            &from,
            &admin.email,
            &format!("[postmaster] {subject}"),
            &note,
            &message_id,
            &raw,
        )
        .map_err(|e| JobError::Permanent(e.to_string()))?;
        let label = format!("postmaster-{job_id}-{}", admin.id.0);
        let receipt = app.transport.send(&label, &organisation.security_address, &admin.email, &raw).await.map_err(
            |e| match e {
                embargo_mail::outbound::SendError::Invalid(_) => JobError::Permanent(e.to_string()),
                embargo_mail::outbound::SendError::Transport(_) => JobError::Retry(e.to_string()),
            },
        )?;
        sent.push(format!("user:{} {receipt}", admin.id.0));
    }
    if admins.is_empty() {
        tracing::warn!("mail to the postmaster, but there is no enabled admin account to forward it to");
    }
    let mut tx = app.store.begin().await?;
    audit::record(
        &mut tx,
        app,
        &Actor::System("mail"),
        "mail.postmaster.forwarded",
        "instance",
        &format!("job={job_id} admins={} {}", admins.len(), sent.join("; ")),
    )
    .await?;
    meta::delete(&mut tx, &payload.stored).await?;
    claim.complete(tx, now).await
}
