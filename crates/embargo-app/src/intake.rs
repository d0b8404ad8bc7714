//! Mail intake: one RFC 5322 message becomes a new report or a reply on an existing one.
//!
//! The same function serves every way mail comes in (the `ingest-mail` pipe now; the SMTP
//! listener and IMAP polling build on it). Nothing accepted is lost: the raw message is
//! always kept, sealed, beside whatever could be parsed out of it, and it is committed
//! before this function returns.

use embargo_domain::{Actor, ReferenceId};
use embargo_store::{messages, reporters, reports as sr};

use crate::reports::{self, Channel, Submission, Upload};
use crate::{App, AppError};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// It opened a new report.
    NewReport(ReferenceId),
    /// It was threaded into an existing report as the reporter's reply.
    Reply(ReferenceId),
    /// The same message (by Message-ID) was already taken in; nothing was stored again.
    AlreadyReceived(ReferenceId),
}

/// Takes in one message.
pub async fn ingest_mail(app: &App, raw: &[u8]) -> Result<IngestOutcome, AppError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::Invalid("the message is empty".into()));
    }
    let limit = app.config.limits.max_message_bytes;
    if raw.len() as u64 > limit {
        return Err(AppError::Invalid(format!(
            "the message is larger than the limit of {limit} bytes"
        )));
    }
    let mail = embargo_mail::parse(raw);
    let actor = Actor::System("intake");

    // Look for the message itself (a redelivery) and for the thread it answers.
    let mut tx = app.store.begin().await?;
    if let Some(message_id) = &mail.message_id
        && let Some(report) = messages::reports_by_message_ids(&mut tx, &[message_id])
            .await?
            .first()
    {
        let record = sr::get(&mut tx, *report)
            .await?
            .ok_or_else(|| AppError::NotFound("report".into()))?;
        tx.rollback().await?;
        return Ok(IngestOutcome::AlreadyReceived(record.reference));
    }
    let thread_ids: Vec<&str> = mail.thread_ids.iter().map(String::as_str).collect();
    let mut reply_to = None;
    if let Some(sender) = &mail.from_address {
        let sender_index = reporters::email_index(&tx, sender);
        for report in messages::reports_by_message_ids(&mut tx, &thread_ids).await? {
            if let Some(record) = sr::get(&mut tx, report).await? {
                let reporter = reporters::get(&mut tx, record.reporter_id).await?;
                // Only the reporter's own address threads into a report. Mail from anyone
                // else opens a new report instead of being posted as the reporter.
                if reporters::email_index(&tx, &reporter.email) == sender_index {
                    reply_to = Some(record.id);
                    break;
                }
            }
        }
    }
    tx.rollback().await?;

    let submission = Submission {
        channel: Channel::Email,
        reporter_email: mail
            .from_address
            .clone()
            .unwrap_or_else(|| "unknown-sender@invalid".into()),
        reporter_name: mail.from_name.clone(),
        title: if mail.parsed {
            mail.subject.clone()
        } else {
            "(unparsable message)".into()
        },
        body: mail.text.clone(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| Upload {
                filename: a.filename.clone(),
                media_type: a.media_type.clone(),
                data: a.data.clone(),
            })
            .collect(),
        raw: Some(raw.to_vec()),
        message_id: mail.message_id.clone(),
    };
    match reply_to {
        Some(report) => {
            let reference = reports::add_reporter_message(app, &actor, report, &submission).await?;
            Ok(IngestOutcome::Reply(reference))
        }
        None => {
            let submitted = reports::submit(app, &actor, submission).await?;
            Ok(IngestOutcome::NewReport(submitted.reference))
        }
    }
}
