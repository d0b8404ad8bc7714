//! The runbook's effects on the world: the configured announcement channels (their
//! messages, their calls, how to ask each whether a post happened), the release (push and
//! artifacts), the mailing lists, and the close-out.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use embargo_advisory::AdvisoryRecord;
use embargo_domain::partner::EmbargoState;
use embargo_domain::{ReportState, Role};
use embargo_store::disclosure::Plan;
use embargo_store::reports::ReportRecord;

use super::content::{Message, PlanContent};
use super::run::{Effect, RUNBOOK};
use crate::{App, AppError, audit};

/// What a service named an effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Posted {
    /// Its ID at the service (a post ID, a commit, a Message-ID).
    pub id: String,
    /// Where the public sees it, when there is such a place.
    pub url: Option<String>,
}

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(dead_code)] // The HTTP channels construct every variant.
pub(crate) enum EffectError {
    /// 429: nothing happened; try again later.
    #[error("rate limited")]
    RateLimited(Option<Duration>),
    /// Nothing happened (refused connection, 5xx before any effect); try again.
    #[error("{0}")]
    Temporary(String),
    /// The request went out and the answer was lost: it may have happened.
    #[error("{0}")]
    Lost(String),
    /// Refused for good (4xx with the service's words).
    #[error("{0}")]
    Refused(String),
}

impl EffectError {
    /// When to try again, if the service said.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            EffectError::RateLimited(after) => *after,
            _ => None,
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Asks a service whether an effect happened.
pub(crate) type Reconcile = Box<dyn FnOnce() -> BoxFuture<Result<Option<Posted>, EffectError>> + Send + Sync>;
/// Makes a call with an idempotency key.
pub(crate) type Call = Box<dyn FnOnce(String) -> BoxFuture<Result<Posted, EffectError>> + Send + Sync>;

/// A configured channel.
#[derive(Debug, Clone)]
pub(crate) struct ChannelTarget {
    /// Its name (`slack`, `x`, `mastodon`, `bluesky`, `blog`, `lists`).
    pub channel: &'static str,
    /// Where it goes (no secrets).
    pub destination: String,
}

/// The channels configured in `[announce]`.
pub(crate) fn configured(app: &App) -> Vec<ChannelTarget> {
    let announce = &app.config.announce;
    let mut targets = Vec::new();
    if !announce.mailing_lists.is_empty() {
        targets.push(ChannelTarget { channel: "lists", destination: announce.mailing_lists.join(", ") });
    }
    targets
}

/// The list addresses of a `lists` message.
pub(crate) fn list_addresses(message: &Message) -> Vec<String> {
    message.destination.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect()
}

/// The public URL of an advisory.
pub(crate) fn advisory_url(app: &App, public_id: &str) -> String {
    format!("{}/advisories/{public_id}", app.config.base_url())
}

/// Fills a message's placeholders once the advisory's public ID is known.
pub(crate) fn fill(app: &App, text: &str, public_id: &str) -> String {
    text.replace("{advisory_url}", &advisory_url(app, public_id)).replace("{advisory_id}", public_id)
}

/// Renders the default message of `target` from the advisory.
pub(crate) fn render(
    app: &App,
    target: &ChannelTarget,
    record: &AdvisoryRecord,
    report: &str,
) -> Result<Message, AppError> {
    let _ = report;
    let (subject, text) = match target.channel {
        "lists" => list_mail(app, record),
        other => return Err(AppError::Internal(anyhow::anyhow!("no renderer for channel {other}"))),
    };
    Ok(Message {
        channel: target.channel.to_owned(),
        destination: target.destination.clone(),
        subject,
        text,
        edited: false,
    })
}

fn list_mail(app: &App, record: &AdvisoryRecord) -> (String, String) {
    let subject = match &record.cve_id {
        Some(cve) => format!("{{advisory_id}}: {} ({cve})", record.title),
        None => format!("{{advisory_id}}: {}", record.title),
    };
    let mut body =
        format!("{} security advisory {{advisory_id}}\n\n{}\n\n", app.config.organisation.name, record.summary);
    body.push_str(&format!("Mitigations:\n{}\n\nDetails: {{advisory_url}}\n", record.workarounds));
    (subject, body)
}

/// The push and artifacts of a report's release: the push plan (serialised), why there is
/// none or what keeps it from being ready, and the artifact URLs that must verify.
pub(crate) async fn release_plan(
    app: &App,
    report: &ReportRecord,
) -> Result<(Option<serde_json::Value>, Vec<String>, Vec<String>), AppError> {
    let _ = (app, report);
    Ok((None, Vec::new(), Vec::new()))
}

/// The pre-flight checks of the release and the channels.
pub(crate) async fn preflight(app: &App, plan: &Plan, content: &PlanContent) -> Vec<String> {
    let _ = content;
    let mut problems = Vec::new();
    match embargo_state(app, plan).await {
        Ok(Some(EmbargoState::Proposed)) => problems.push(
            "partners have not been sent their notice (the embargo is only proposed): send it (embargo notice send) \
             or cancel it"
                .into(),
        ),
        Ok(_) => {}
        Err(e) => problems.push(format!("the embargo could not be read: {e}")),
    }
    problems
}

async fn embargo_state(app: &App, plan: &Plan) -> Result<Option<EmbargoState>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let embargo = embargo_store::partners::embargo(&mut tx, plan.report).await?;
    tx.rollback().await?;
    Ok(embargo.map(|e| e.state))
}

fn public_id(app: &App, content: &PlanContent) -> BoxFuture<Result<String, AppError>> {
    let app = app.clone();
    let id = content.advisory.as_ref().map(|a| a.id.clone());
    Box::pin(async move {
        let id = id.ok_or_else(|| AppError::Invalid("the plan has no advisory".into()))?;
        let advisory = crate::advisories::get(&app, &RUNBOOK, &id).await?;
        advisory.public_id.ok_or_else(|| AppError::Conflict(format!("advisory {id} has no public ID yet")))
    })
}

/// The external effect of step `name`.
pub(crate) async fn effect(app: &App, plan: &Plan, content: &PlanContent, name: &str) -> Result<Effect, String> {
    if let Some(address) = name.strip_prefix("announce.list:") {
        let message = content.message("lists").ok_or("the plan has no mailing-list message")?;
        let public = public_id(app, content).await.map_err(|e| e.to_string())?;
        let subject = fill(app, &message.subject, &public);
        let body = fill(app, &message.text, &public);
        let message_id = format!(
            "<embargo.disclosure.{}.{}@{}>",
            plan.id,
            crate::intents::content_hash(address.as_bytes()).get(..12).unwrap_or(""),
            mail_domain(app)
        );
        let outbound = embargo_mail::outbound::OutboundMail {
            from: crate::mail::from_address(app),
            to: address.to_owned(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: subject.clone(),
            body: body.clone(),
            message_id: message_id.clone(),
            in_reply_to: None,
            auto_reply: false,
            encrypt_to: None,
        };
        let app = app.clone();
        let label = format!("disclosure-{}-list", plan.id);
        let mut bytes = subject.into_bytes();
        bytes.push(0);
        bytes.extend_from_slice(body.as_bytes());
        return Ok(Effect {
            operation: "disclosure.announce.list".into(),
            content: bytes,
            can_reconcile: false,
            service: format!("the mail relay (to {address})"),
            reconcile: Box::new(|| Box::pin(async { Ok(None) })),
            call: Box::new(move |_key| {
                Box::pin(async move {
                    match crate::mail::send(&app, &label, &outbound).await {
                        Ok(_receipt) => Ok(Posted { id: message_id, url: None }),
                        Err(e) => Err(EffectError::Temporary(e.to_string())),
                    }
                })
            }),
        });
    }
    Err(format!("step {name} is not known to this version of Embargo"))
}

fn mail_domain(app: &App) -> String {
    app.config.organisation.security_address.rsplit('@').next().unwrap_or("localhost").to_owned()
}

/// What a rehearsal of step `name` shows: a summary and what would go out.
pub(crate) async fn rehearse_step(
    app: &App,
    plan: &Plan,
    content: &PlanContent,
    name: &str,
) -> Result<(String, Option<String>), String> {
    let preview_id =
        content.advisory.as_ref().map(|a| a.public_id.clone().unwrap_or_else(|| a.id.clone())).unwrap_or_default();
    match name {
        "preflight" => {
            let mut problems = content.problems();
            problems.extend(preflight(app, plan, content).await);
            if problems.is_empty() { Ok(("all checks pass".into(), None)) } else { Err(problems.join("; ")) }
        }
        "advisory" => {
            let id = content.advisory.as_ref().map(|a| a.id.clone()).ok_or("no advisory")?;
            let markdown =
                crate::advisories::export(app, &RUNBOOK, &id, "markdown").await.map_err(|e| e.to_string())?;
            for format in ["osv", "csaf", "cve"] {
                if format == "cve" && content.advisory.as_ref().is_some_and(|a| a.cve_id.is_none()) {
                    continue;
                }
                crate::advisories::export(app, &RUNBOOK, &id, format).await.map_err(|e| format!("{format}: {e}"))?;
            }
            Ok(("every output computed and valid (not published)".into(), Some(markdown)))
        }
        "cve" => {
            let id = content.advisory.as_ref().map(|a| a.id.clone()).ok_or("no advisory")?;
            let record = crate::advisories::export(app, &RUNBOOK, &id, "cve").await.map_err(|e| e.to_string())?;
            Ok(("the CVE record is valid (not sent)".into(), Some(record)))
        }
        "closeout" => Ok((
            "would lift the embargo for partners, move the report to disclosed and tell the reporter, take fix \
             developers' access, archive the fix repository, schedule a retrospective"
                .into(),
            None,
        )),
        other if other.starts_with("announce.list:") => {
            let message = content.message("lists").ok_or("the plan has no mailing-list message")?;
            let text = format!(
                "To: {}\nSubject: {}\n\n{}",
                other.trim_start_matches("announce.list:"),
                fill(app, &message.subject, &preview_id),
                fill(app, &message.text, &preview_id)
            );
            Ok(("rendered (not sent)".into(), Some(text)))
        }
        other => Err(format!("step {other} cannot be rehearsed by this version of Embargo")),
    }
}

/// The close-out; each part checks whether it was done. Returns what was done.
pub(crate) async fn close_out(app: &App, plan: &Plan, content: &PlanContent) -> Result<String, AppError> {
    let mut done = Vec::new();
    let mut tx = app.store.snapshot().await?;
    let report = embargo_store::reports::get(&mut tx, plan.report)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report of plan {}", plan.id)))?;
    let embargo = embargo_store::partners::embargo(&mut tx, plan.report).await?;
    tx.rollback().await?;
    // Partners: the embargo is lifted (they are told by the lift's notices).
    match embargo.map(|e| e.state) {
        Some(EmbargoState::Active | EmbargoState::Revised) => {
            crate::partners::lift(app, &RUNBOOK, &report.reference).await?;
            done.push("embargo lifted, partners told");
        }
        Some(EmbargoState::Lifted) => done.push("embargo already lifted"),
        Some(EmbargoState::Broken) => done.push("embargo was broken: partners were told then"),
        Some(EmbargoState::Proposed) | None => done.push("no partners were told"),
    }
    // The report: disclosed, the reporter told and credited, fix developers' access taken,
    // the fix repository archived — in one transaction.
    let text = reporter_text(app, content).await;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let report = embargo_store::reports::get(&mut tx, plan.report)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report of plan {}", plan.id)))?;
    if report.state != ReportState::Disclosed {
        if matches!(report.state, ReportState::Accepted | ReportState::Fixing) {
            let path: &[ReportState] = if report.state == ReportState::Accepted {
                &[ReportState::Fixing, ReportState::ReadyForDisclosure]
            } else {
                &[ReportState::ReadyForDisclosure]
            };
            for to in path {
                crate::reports::change_state_in(
                    &mut tx,
                    app,
                    &RUNBOOK,
                    &report.reference,
                    *to,
                    crate::reports::Notice::None,
                )
                .await?;
            }
        }
        crate::reports::change_state_in(
            &mut tx,
            app,
            &RUNBOOK,
            &report.reference,
            ReportState::Disclosed,
            crate::reports::Notice::Custom(text),
        )
        .await?;
        done.push("report disclosed, reporter told and credited");
    } else {
        done.push("report already disclosed");
    }
    let mut removed = 0;
    for member in embargo_store::reports::members(&mut tx, plan.report).await? {
        if let Some(user) = embargo_store::users::get(&mut tx, member).await?
            && user.role == Role::FixDeveloper
            && embargo_store::reports::remove_member(&mut tx, plan.report, member).await?
        {
            removed += 1;
        }
    }
    let archived = embargo_store::fixes::archive(&mut tx, plan.report, now).await?;
    let retrospective = now.checked_add(jiff::SignedDuration::from_hours(24 * 7)).unwrap_or(now);
    audit::record(
        &mut tx,
        app,
        &RUNBOOK,
        "disclosure.closeout",
        &super::subject(plan.id),
        &format!("fix_developers_removed={removed} archived={archived} retrospective={retrospective}"),
    )
    .await?;
    tx.commit().await?;
    Ok(format!(
        "{}; {removed} fix developer(s) lost access; fix repository {}; retrospective due {retrospective}",
        done.join("; "),
        if archived { "archived" } else { "already archived or none" }
    ))
}

async fn reporter_text(app: &App, content: &PlanContent) -> String {
    let public = public_id(app, content).await.ok();
    let mut text = String::from(
        "The fix and the advisory for the vulnerability you reported are now public.\n\
         Thank you for reporting it responsibly.\n",
    );
    if let Some(public) = public {
        text.push_str(&format!("\nThe advisory: {}\n", advisory_url(app, &public)));
    }
    if let Some(record) = content.advisory.as_ref().and_then(|a| serde_json::from_str::<AdvisoryRecord>(&a.record).ok())
        && !record.credits.is_empty()
    {
        let names: Vec<&str> = record.credits.iter().map(|c| c.name.as_str()).collect();
        text.push_str(&format!("\nIt credits: {}.\n", names.join(", ")));
    }
    text
}
