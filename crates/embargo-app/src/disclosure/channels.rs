//! The runbook's effects on the world: the configured announcement channels (their
//! messages, their calls, how to ask each whether a post happened), the release (push and
//! artifacts), the mailing lists, and the close-out.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use embargo_advisory::AdvisoryRecord;
use embargo_announce::text::ID_PLACEHOLDER;
use embargo_announce::{
    Announcement, AnyChannel, Blog, Bluesky, Channel as _, ChannelError, ChannelKind, Mastodon, Outgoing, Slack, X,
};
use embargo_domain::Timestamp;
use embargo_domain::partner::EmbargoState;
use embargo_domain::{ReportState, Role};
use embargo_store::disclosure::Plan;
use embargo_store::reports::ReportRecord;
use secrecy::SecretString;

use super::content::{Message, PlanContent};
use super::run::{Effect, RUNBOOK};
use crate::release::{self, PushPlan, PushState, ReleaseError};
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
/// Asks a service whether an effect happened (given the intent's idempotency key).
pub(crate) type Reconcile = Box<dyn FnOnce(String) -> BoxFuture<Result<Option<Posted>, EffectError>> + Send + Sync>;
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

/// A URL without its user information (a password in a git URL), for display.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The host of a URL, for naming a secret URL's service without its secret.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| "?".into())
}

/// The channels configured in `[announce]`, in the order a plan lists them.
pub(crate) fn configured(app: &App) -> Vec<ChannelTarget> {
    let announce = &app.config.announce;
    let mut targets = Vec::new();
    if !announce.blog_repository.trim().is_empty() {
        targets
            .push(ChannelTarget { channel: "blog", destination: without_credentials(announce.blog_repository.trim()) });
    }
    if !announce.slack_webhook_url.is_empty() {
        let host = host_of(announce.slack_webhook_url.expose());
        targets.push(ChannelTarget { channel: "slack", destination: format!("Slack incoming webhook at {host}") });
    }
    if !announce.x_api_url.trim().is_empty() && !announce.x_token.is_empty() {
        targets.push(ChannelTarget { channel: "x", destination: announce.x_api_url.trim().to_owned() });
    }
    if !announce.mastodon_url.trim().is_empty() && !announce.mastodon_token.is_empty() {
        targets.push(ChannelTarget { channel: "mastodon", destination: announce.mastodon_url.trim().to_owned() });
    }
    if !announce.bluesky_url.trim().is_empty() && !announce.bluesky_handle.trim().is_empty() {
        targets.push(ChannelTarget {
            channel: "bluesky",
            destination: format!("{} at {}", announce.bluesky_handle.trim(), announce.bluesky_url.trim()),
        });
    }
    if !announce.mailing_lists.is_empty() {
        targets.push(ChannelTarget { channel: "lists", destination: announce.mailing_lists.join(", ") });
    }
    targets
}

/// A digest of a channel's full address and credentials (kept in the sealed plan; never
/// shown): another webhook, account or token than the approved one disarms the plan.
pub(crate) fn target_digest(app: &App, channel: &str) -> String {
    let a = &app.config.announce;
    let parts: Vec<&str> = match channel {
        "slack" => vec![a.slack_webhook_url.expose()],
        "x" => vec![&a.x_api_url, a.x_token.expose()],
        "mastodon" => vec![&a.mastodon_url, a.mastodon_token.expose()],
        "bluesky" => vec![&a.bluesky_url, &a.bluesky_handle, a.bluesky_app_password.expose()],
        "blog" => vec![&a.blog_repository],
        _ => a.mailing_lists.iter().map(String::as_str).collect(),
    };
    crate::intents::content_hash(parts.join("\0").as_bytes())
}

/// A digest of the product's release settings (the command, the webhook, the artifacts, the
/// signing key), when the report's fix has something to release.
pub(crate) async fn release_digest(app: &App, report: &ReportRecord) -> Result<Option<String>, AppError> {
    let Some(product_id) = report.product_id else { return Ok(None) };
    let mut tx = app.store.snapshot().await?;
    let product = embargo_store::products::list(&mut tx).await?.into_iter().find(|p| p.id == product_id);
    tx.rollback().await?;
    Ok(product.map(|p| {
        let view = serde_json::to_string(&release::ReleaseView::of(&p)).unwrap_or_default();
        crate::intents::content_hash(format!("{view}\0{}", p.signing_key).as_bytes())
    }))
}

/// The client of a configured channel.
fn client(app: &App, channel: &str) -> Result<AnyChannel, String> {
    let announce = &app.config.announce;
    let timeout = Duration::from_secs(u64::from(app.config.disclosure.channel_timeout_seconds.max(1)));
    let secret = |s: &crate::config::Secret| SecretString::from(s.expose().to_owned());
    let made = match channel {
        "slack" => Slack::with_timeout(secret(&announce.slack_webhook_url), timeout).map(AnyChannel::Slack),
        "x" => X::with_timeout(&announce.x_api_url, secret(&announce.x_token), timeout).map(AnyChannel::X),
        "mastodon" => Mastodon::with_timeout(&announce.mastodon_url, secret(&announce.mastodon_token), timeout)
            .map(AnyChannel::Mastodon),
        "bluesky" => Bluesky::with_timeout(
            &announce.bluesky_url,
            &announce.bluesky_handle,
            secret(&announce.bluesky_app_password),
            timeout,
        )
        .map(AnyChannel::Bluesky),
        "blog" => Blog::new(&announce.blog_repository).map(|blog| {
            let name = if app.config.organisation.name.trim().is_empty() {
                "Embargo".to_owned()
            } else {
                app.config.organisation.name.trim().to_owned()
            };
            AnyChannel::Blog(
                blog.with_git(&app.config.fixes.git)
                    .with_author(&name, &app.config.organisation.security_address)
                    .with_timeout(timeout.max(Duration::from_secs(60))),
            )
        }),
        other => return Err(format!("no channel {other:?} is configured")),
    };
    made.map_err(|e| e.to_string())
}

fn effect_error(e: ChannelError) -> EffectError {
    match e {
        ChannelError::RateLimited { retry_after, .. } => EffectError::RateLimited(retry_after),
        ChannelError::Temporary { .. } => EffectError::Temporary(e.to_string()),
        ChannelError::Lost { .. } => EffectError::Lost(e.to_string()),
        ChannelError::Refused { .. } => EffectError::Refused(e.to_string()),
    }
}

fn posted_of(p: embargo_announce::Posted) -> Posted {
    Posted { id: p.id, url: p.url }
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
    embargo_announce::render::fill(text, public_id, &advisory_url(app, public_id))
}

/// Renders the default message of `target` from the advisory, with the public ID and URL
/// left as placeholders (filled at publication).
pub(crate) fn render(
    app: &App,
    target: &ChannelTarget,
    record: &AdvisoryRecord,
    at: Timestamp,
) -> Result<Message, AppError> {
    let url = advisory_url(app, ID_PLACEHOLDER);
    let announcement = Announcement::from_record(record, ID_PLACEHOLDER, &url, at);
    let rendered = embargo_announce::render::render(&announcement);
    let (subject, text) = match target.channel {
        "lists" => (rendered.mail.subject.clone(), rendered.mail.body.clone()),
        "blog" => (rendered.blog.path.clone(), rendered.blog.text.clone()),
        other => {
            let kind = ChannelKind::parse(other)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no renderer for channel {other}")))?;
            (String::new(), rendered.text(kind).unwrap_or_default().to_owned())
        }
    };
    Ok(Message {
        channel: target.channel.to_owned(),
        destination: target.destination.clone(),
        subject,
        text,
        edited: false,
    })
}

/// The push and artifacts of a report's release: the push plan (serialised), why there is
/// none or what keeps it from being ready, and the artifact URLs that must verify.
pub(crate) async fn release_plan(
    app: &App,
    report: &ReportRecord,
) -> Result<(Option<serde_json::Value>, Vec<String>, Vec<String>), AppError> {
    let plan = match release::prepare(app, &report.reference).await {
        Ok(Some(plan)) => plan,
        Ok(None) => return Ok((None, Vec::new(), Vec::new())),
        Err(AppError::Invalid(why) | AppError::Conflict(why) | AppError::NotFound(why)) => {
            return Ok((None, vec![format!("the push of the fix: {why}")], Vec::new()));
        }
        Err(other) => return Err(other),
    };
    let product = release::product_of(app, &plan).await?;
    let artifacts = release::expected(&product, &plan).into_iter().map(|a| a.url).collect();
    let json = serde_json::to_value(&plan).map_err(|e| AppError::Internal(e.into()))?;
    // What would stop the push (a moved head, CI not green) keeps the plan from approval.
    let problems =
        release::preflight(app, &plan).await.into_iter().map(|p| format!("the push of the fix: {p}")).collect();
    Ok((Some(json), problems, artifacts))
}

fn push_plan(content: &PlanContent) -> Result<Option<PushPlan>, String> {
    content
        .push
        .as_ref()
        .map(|json| serde_json::from_value::<PushPlan>(json.clone()).map_err(|e| format!("the plan's push: {e}")))
        .transpose()
}

fn release_error(e: ReleaseError) -> EffectError {
    match e {
        ReleaseError::Temporary(m) => EffectError::Temporary(m),
        ReleaseError::Permanent(m) => EffectError::Refused(m),
        ReleaseError::Lost(m) => EffectError::Lost(m),
    }
}

/// The prefix of a pre-flight finding that is reported but does not stop the plan.
pub(crate) const WARNING: &str = "warning: ";

/// The pre-flight checks of the release and the channels (findings that start with
/// [`WARNING`] do not stop the plan).
pub(crate) async fn preflight(app: &App, plan: &Plan, content: &PlanContent, with_channels: bool) -> Vec<String> {
    let mut problems = Vec::new();
    match push_plan(content) {
        Ok(Some(push)) => problems.extend(release::preflight(app, &push).await),
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    // Every channel's credentials answer a harmless call (all channels at once).
    let checks = content.messages.iter().filter(|m| with_channels && m.channel != "lists").map(|message| async move {
        match client(app, &message.channel) {
            Ok(channel) => match channel.check_credentials().await {
                Ok(()) => None,
                // Refused: the credentials or the address are wrong, which will not pass.
                Err(e @ ChannelError::Refused { .. }) => Some(format!("the {} channel: {e}", message.channel)),
                // A 429 or an outage now says nothing about the instant: noted, not blocking.
                Err(e) => Some(format!("{WARNING}the {} channel did not answer the check: {e}", message.channel)),
            },
            Err(e) => Some(format!("the {} channel: {e}", message.channel)),
        }
    });
    problems.extend(futures_util::future::join_all(checks).await.into_iter().flatten());
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
            "embargo.disclosure.{}.{}@{}",
            plan.id,
            crate::intents::content_hash(address.as_bytes()).get(..12).unwrap_or(""),
            app.config.mail_hostname()
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
            reconcile: Box::new(|_key| Box::pin(async { Ok(None) })),
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
    match name {
        "push" => {
            let push = push_plan(content)?.ok_or("the plan has nothing to push")?;
            let (for_reconcile, for_call) = (push.clone(), push.clone());
            let (app1, app2) = (app.clone(), app.clone());
            Ok(Effect {
                operation: "disclosure.push".into(),
                content: push.content_bytes(),
                can_reconcile: true,
                service: format!("the public repository ({})", without_credentials(&push.remote)),
                reconcile: Box::new(move |_key| {
                    Box::pin(async move {
                        match release::reconcile(&app1, &for_reconcile).await.map_err(release_error)? {
                            PushState::Pushed => Ok(Some(Posted { id: pushed_id(&for_reconcile), url: None })),
                            PushState::NotPushed => Ok(None),
                            PushState::Moved { reference, found } => Err(EffectError::Refused(format!(
                                "{reference} moved since the plan was approved (now {}): nothing was pushed; rebase \
                                 the fix, re-run CI and approve the plan again",
                                found.as_deref().unwrap_or("deleted")
                            ))),
                        }
                    })
                }),
                call: Box::new(move |_key| {
                    Box::pin(async move {
                        release::push(&app2, &for_call).await.map_err(release_error)?;
                        Ok(Posted { id: pushed_id(&for_call), url: None })
                    })
                }),
            })
        }
        "binaries" => {
            let push = push_plan(content)?.ok_or("the plan has no release to build")?;
            let (for_reconcile, for_call) = (push.clone(), push.clone());
            let (app1, app2) = (app.clone(), app.clone());
            let bytes = content.artifacts.join("\n").into_bytes();
            Ok(Effect {
                operation: "disclosure.binaries".into(),
                content: bytes,
                can_reconcile: true,
                service: "the release build".into(),
                // Artifacts that already verify are the build's effect: nothing is built twice.
                reconcile: Box::new(move |_key| {
                    Box::pin(async move {
                        let product = release::product_of(&app1, &for_reconcile)
                            .await
                            .map_err(|e| EffectError::Temporary(e.to_string()))?;
                        let expected = release::expected(&product, &for_reconcile);
                        let key = Some(product.signing_key.as_str()).filter(|k| !k.is_empty());
                        Ok(release::verify(&app1, &expected, key)
                            .await
                            .ok()
                            .map(|v| Posted { id: verified_id(&v), url: None }))
                    })
                }),
                call: Box::new(move |_key| {
                    Box::pin(async move {
                        let product = release::product_of(&app2, &for_call)
                            .await
                            .map_err(|e| EffectError::Temporary(e.to_string()))?;
                        release::trigger(&app2, &for_call).await.map_err(release_error)?;
                        match release::wait_for_artifacts(&app2, &product, &for_call).await {
                            Ok(verified) => Ok(Posted { id: verified_id(&verified), url: None }),
                            Err(problems) => Err(EffectError::Refused(format!(
                                "the artifacts do not verify: {}",
                                problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                            ))),
                        }
                    })
                }),
            })
        }
        other => {
            let channel = other.strip_prefix("announce.").ok_or_else(|| format!("step {other} is not known"))?;
            let message = content.message(channel).ok_or_else(|| format!("the plan has no {channel} message"))?;
            let public = public_id(app, content).await.map_err(|e| e.to_string())?;
            let text = fill(app, &message.text, &public);
            let client = client(app, channel)?;
            let can_reconcile = client.can_reconcile();
            let outgoing =
                Outgoing { marker: public, text: text.clone(), idempotency_key: String::new(), at: plan.disclose_at };
            let (c1, c2) = (client.clone(), client);
            let (o1, o2) = (outgoing.clone(), outgoing);
            Ok(Effect {
                operation: format!("disclosure.announce.{channel}"),
                content: text.into_bytes(),
                can_reconcile,
                service: channel.to_owned(),
                reconcile: Box::new(move |key| {
                    Box::pin(async move {
                        let outgoing = Outgoing { idempotency_key: key, ..o1 };
                        c1.reconcile(&outgoing).await.map(|found| found.map(posted_of)).map_err(effect_error)
                    })
                }),
                call: Box::new(move |key| {
                    Box::pin(async move {
                        let outgoing = Outgoing { idempotency_key: key, ..o2 };
                        c2.post(&outgoing).await.map(posted_of).map_err(effect_error)
                    })
                }),
            })
        }
    }
}

/// What a push published: each line's branch at its commit and its tag.
fn pushed_id(plan: &PushPlan) -> String {
    plan.lines
        .iter()
        .map(|l| format!("{}@{} {}", l.line, l.commit.get(..12).unwrap_or(&l.commit), l.tag))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verified_id(verified: &release::Verified) -> String {
    format!("{} artifact(s) verified{}", verified.files.len(), if verified.signed { ", signed" } else { "" })
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
            problems.extend(preflight(app, plan, content, true).await);
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
        "push" => {
            let push = push_plan(content)?.ok_or("the plan has nothing to push")?;
            let scratch = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
            let copy = scratch.path().join("public.git");
            let rehearsed = release::rehearse(app, &push, &copy).await.map_err(|e| e.to_string())?;
            Ok((
                format!("pushed into a throwaway copy of the public repository: {}", pushed_id(&rehearsed)),
                Some(serde_json::to_string_pretty(&rehearsed).unwrap_or_default()),
            ))
        }
        "binaries" => Ok((
            format!("would build and verify {} artifact(s) after the push", content.artifacts.len()),
            Some(content.artifacts.join("\n")),
        )),
        other => {
            let channel = other.strip_prefix("announce.").ok_or_else(|| format!("step {other} is not known"))?;
            let message = content.message(channel).ok_or_else(|| format!("the plan has no {channel} message"))?;
            let text = fill(app, &message.text, &preview_id);
            let detail = match client(app, channel) {
                Ok(c) => match c.check_credentials().await {
                    Ok(()) => format!("rendered (not sent); {channel} accepts the credentials"),
                    Err(e) => return Err(format!("{channel}: {e}")),
                },
                Err(e) => return Err(e),
            };
            if channel == "blog" {
                // The post into a throwaway copy of the site's repository.
                let scratch = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
                let copy = scratch.path().join("site.git");
                let out = tokio::process::Command::new(&app.config.fixes.git)
                    .args(["clone", "--quiet", "--mirror", "--"])
                    .arg(app.config.announce.blog_repository.trim())
                    .arg(&copy)
                    .output()
                    .await
                    .map_err(|e| format!("git: {e}"))?;
                if !out.status.success() {
                    return Err("the blog repository could not be copied for the rehearsal".into());
                }
                let blog =
                    Blog::new(&copy.to_string_lossy()).map_err(|e| e.to_string())?.with_git(&app.config.fixes.git);
                let outgoing = Outgoing {
                    marker: preview_id.clone(),
                    text: text.clone(),
                    idempotency_key: format!("rehearsal:{}", plan.id),
                    at: plan.disclose_at,
                };
                blog.post(&outgoing).await.map_err(|e| format!("the blog post into a copy: {e}"))?;
                return Ok((format!("{detail}; committed and pushed into a throwaway copy of the site"), Some(text)));
            }
            Ok((detail, Some(text)))
        }
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
