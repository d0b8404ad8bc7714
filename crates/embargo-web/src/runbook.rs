//! The disclosure runbook's team pages (issue 16, ADR 24), over `embargo_app::disclosure`:
//! `/disclosure` (the plans the person may plan), `/reports/{reference}/runbook` (make or
//! re-plan a plan, its problems and content hash, each channel's message as it will go out
//! with an edit form, the rehearsal and what it would publish, approval by a second person
//! bound to the hash they saw, the steps with the timing report, a person's decision on a
//! step that waits for one, resume and cancel) and `/disclosure/{plan}/events`, the live
//! progress as server-sent events (the page's script updates the steps table with them;
//! without script a reload shows the same). Step names are data: nothing here knows the list.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::disclosure::{self, PlanView, StepDecision, StepView};
use embargo_app::{App, AppError, partners};
use embargo_domain::{ReferenceId, Timestamp};
use serde::Deserialize;

use crate::auth::Team;
use crate::error::WebError;
use crate::extract::{Form, Path, Query, ReportPath};
use crate::render::{self, Layout, page};

/// How often the live page's stream reads the plan.
const POLL: Duration = Duration::from_secs(1);
/// How long one stream lasts (the browser reconnects on its own after that).
const STREAM_FOR: Duration = Duration::from_secs(300);

/// Ends the live streams when it becomes `true` (the server is shutting down).
#[derive(Clone)]
pub(crate) struct Streams(pub(crate) tokio::sync::watch::Receiver<bool>);

impl Streams {
    /// Waits until the streams are to end (forever, when nobody can stop them).
    async fn stopped(mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A step as a row of the steps table.
pub(crate) struct StepRow {
    name: String,
    kind: String,
    state: String,
    external_id: String,
    detail: String,
    attempts: i64,
    started: String,
    took: String,
    /// A person decides about it (failed, needs-person).
    decide: bool,
}

/// Seconds from the instant, signed, as the timing report shows them (the script too).
fn seconds_signed(ms: i64) -> String {
    format!("{:+.3} s", ms as f64 / 1000.0)
}

fn seconds(ms: i64) -> String {
    format!("{:.3} s", ms as f64 / 1000.0)
}

fn row(step: &StepView) -> StepRow {
    StepRow {
        name: step.name.clone(),
        kind: step.kind.clone(),
        state: step.state.clone(),
        external_id: step.external_id.clone().unwrap_or_default(),
        detail: step.detail.clone(),
        attempts: step.attempts,
        started: step.started_after_instant_ms.map(seconds_signed).unwrap_or_default(),
        took: step.duration_ms.map(seconds).unwrap_or_default(),
        decide: matches!(step.state.as_str(), "failed" | "needs-person"),
    }
}

struct MessageRow {
    channel: String,
    destination: String,
    subject: String,
    text: String,
    edited: bool,
}

struct PlanBox {
    id: i64,
    state: String,
    at_utc: String,
    at_team: String,
    emergency: bool,
    planned_by: String,
    approved_by: String,
    approved_at: String,
    content_hash: String,
    stop_reason: String,
    problems: Vec<String>,
    /// The person looking prepared (last changed) it: they cannot approve it.
    mine: bool,
    steps: Vec<StepRow>,
    rehearsal: Vec<StepRow>,
    outputs: Vec<(String, String)>,
    messages: Vec<MessageRow>,
}

impl PlanBox {
    fn finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "cancelled")
    }
}

/// The plan form, kept as typed when it is refused.
#[derive(Deserialize, Default)]
pub(crate) struct PlanInput {
    #[serde(default)]
    at: String,
    #[serde(default)]
    emergency: String,
    #[serde(default)]
    confirm_emergency: String,
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum Where {
    #[default]
    Nowhere,
    Plan,
    Approve,
    Message,
    Rehearse,
    Step,
    Resume,
    Cancel,
}

#[derive(Template)]
#[template(path = "runbook.html")]
struct RunbookPage {
    layout: Layout,
    reference: String,
    plan: Option<PlanBox>,
    form: PlanInput,
    team_zone: String,
    error_at: Where,
    error: String,
}

impl RunbookPage {
    /// A plan can be made (none yet, or the last one finished) or made again (not running).
    fn replannable(&self) -> bool {
        self.plan.as_ref().is_none_or(|p| matches!(p.state.as_str(), "draft" | "armed") || p.finished())
    }

    fn error_for(&self, form: &str) -> Option<&str> {
        let at = match form {
            "plan" => Where::Plan,
            "approve" => Where::Approve,
            "message" => Where::Message,
            "rehearse" => Where::Rehearse,
            "step" => Where::Step,
            "resume" => Where::Resume,
            "cancel" => Where::Cancel,
            _ => Where::Nowhere,
        };
        (self.error_at == at && at != Where::Nowhere).then_some(self.error.as_str())
    }
}

fn utc(at: Timestamp) -> String {
    at.strftime("%A %Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A `datetime-local` value (or an RFC 3339 instant), read as UTC.
fn parse_instant(text: &str) -> Result<Timestamp, AppError> {
    let text = text.trim();
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| AppError::Invalid("give the instant of disclosure (UTC), such as 2026-03-17T16:00".into()))
}

/// A person as the team knows them (their address), from the identity a plan records
/// (`user:7`); other identities (the command line's) as they are.
fn person(team: &[(String, String)], identity: &str) -> String {
    team.iter().find(|(id, _)| id == identity).map_or_else(|| identity.to_owned(), |(_, email)| email.clone())
}

async fn plan_box(app: &App, who: &Team, view: PlanView) -> Result<PlanBox, WebError> {
    // Who prepared and approved it, by address (a member who may not list the team sees IDs).
    let team: Vec<(String, String)> = embargo_app::accounts::team(app, &who.actor)
        .await
        .map(|list| list.into_iter().map(|u| (format!("user:{}", u.id), u.email)).collect())
        .unwrap_or_default();
    let outputs = if view.rehearsal.is_empty() {
        Vec::new()
    } else {
        disclosure::rehearsal_outputs(app, &who.actor, &view.id.to_string()).await?
    };
    let at = view.at.parse::<Timestamp>().ok();
    Ok(PlanBox {
        id: view.id,
        state: view.state.clone(),
        at_utc: at.map(utc).unwrap_or_else(|| view.at.clone()),
        at_team: at.map(|t| render::time(app, t)).unwrap_or_default(),
        emergency: view.emergency,
        mine: view.planned_by == who.actor.identity(),
        planned_by: person(&team, &view.planned_by),
        approved_by: view.approved_by.as_deref().map(|a| person(&team, a)).unwrap_or_default(),
        approved_at: view
            .approved_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map(|t| render::time(app, t))
            .unwrap_or_default(),
        content_hash: view.content_hash.clone(),
        stop_reason: view.stop_reason.clone().unwrap_or_default(),
        problems: view.problems.clone(),
        steps: view.steps.iter().map(row).collect(),
        rehearsal: view.rehearsal.iter().map(row).collect(),
        outputs,
        messages: view
            .content
            .messages
            .iter()
            .map(|m| MessageRow {
                channel: m.channel.clone(),
                destination: m.destination.clone(),
                subject: m.subject.clone(),
                text: m.text.clone(),
                edited: m.edited,
            })
            .collect(),
    })
}

struct Refusal {
    at: Where,
    message: String,
    status: StatusCode,
}

/// The runbook page of a report: its newest plan, or the form to make one.
async fn runbook_page(
    app: &App,
    who: &Team,
    reference: &ReferenceId,
    form: PlanInput,
    refusal: Option<Refusal>,
    flash: Option<&str>,
) -> Result<Response, WebError> {
    // The report first: without the permission to plan its disclosure (or unknown), "not
    // found" before anything else is read.
    partners::leaks(app, &who.actor, reference).await?;
    let plan = match disclosure::status(app, &who.actor, &reference.to_string()).await {
        Ok(view) => Some(plan_box(app, who, view).await?),
        Err(AppError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let (status, error_at, error) = match refusal {
        Some(r) => (r.status, r.at, r.message),
        None => (StatusCode::OK, Where::Nowhere, String::new()),
    };
    let mut layout = Layout::team(app, format!("Disclosure runbook of {reference}"), "inbox", who);
    layout.flashes = flash.map(str::to_owned).into_iter().collect();
    layout.script = true;
    let team_zone = app.time_zone().iana_name().unwrap_or("UTC").to_owned();
    Ok(page(status, &RunbookPage { layout, reference: reference.to_string(), plan, form, team_zone, error_at, error }))
}

/// The flash message after a redirect (`?done=`), only from a fixed list.
#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    #[serde(default)]
    done: String,
}

/// `GET /reports/{reference}/runbook`.
pub(crate) async fn show(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Query(flash): Query<Flash>,
) -> Result<Response, WebError> {
    let message = match flash.done.as_str() {
        "planned" => Some(
            "The plan is made: check its problems and messages, rehearse it, then ask a second person to approve it.",
        ),
        "approved" => Some("The plan is armed: it runs at the instant."),
        "message" => Some("The message is saved; an armed plan is a draft again and needs a new approval."),
        "rehearsed" => Some("The rehearsal ran: nothing was published. What would go out is below."),
        "decided" => Some("The decision on the step is recorded; the plan goes on."),
        "resumed" => Some("The plan goes on."),
        "cancelled" => Some("The plan is cancelled."),
        _ => None,
    };
    runbook_page(&app, &who, &reference, PlanInput::default(), None, message).await
}

fn back(reference: &ReferenceId, done: &str) -> Response {
    Redirect::to(&format!("/reports/{reference}/runbook?done={done}")).into_response()
}

/// Redirects after a change, or shows the page with the refusal next to its form.
async fn after(
    app: &App,
    who: &Team,
    reference: &ReferenceId,
    result: Result<(), AppError>,
    done: &str,
    at: Where,
    form: PlanInput,
) -> Result<Response, WebError> {
    let (status, message) = match result {
        Ok(()) => return Ok(back(reference, done)),
        Err(AppError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(AppError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(e) => return Err(e.into()),
    };
    runbook_page(app, who, reference, form, Some(Refusal { at, message, status }), None).await
}

/// The plan a form names must be the report's (not another report's): "not found" otherwise.
async fn same_report(app: &App, who: &Team, reference: &ReferenceId, plan: i64) -> Result<String, WebError> {
    let view = disclosure::status(app, &who.actor, &plan.to_string()).await?;
    if view.report != reference.to_string() {
        return Err(AppError::NotFound(format!("disclosure plan {plan}")).into());
    }
    Ok(plan.to_string())
}

/// `POST /reports/{reference}/runbook/plan`: makes the report's plan, or plans it again (a
/// new instant; the edited messages are kept). "Disclose now" needs its own confirmation.
pub(crate) async fn make(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<PlanInput>,
) -> Result<Response, WebError> {
    let emergency = input.emergency == "yes";
    let result = if emergency && input.confirm_emergency != "yes" {
        Err(AppError::Invalid("confirm \"disclose now\": the plan runs as soon as a second person approves it".into()))
    } else {
        let at = if emergency && input.at.trim().is_empty() { Ok(app.now()) } else { parse_instant(&input.at) };
        match at {
            Ok(at) => disclosure::plan(&app, &who.actor, &reference, at, emergency).await.map(drop),
            Err(e) => Err(e),
        }
    };
    after(&app, &who, &reference, result, "planned", Where::Plan, input).await
}

#[derive(Deserialize)]
pub(crate) struct ApproveInput {
    plan: i64,
    /// The content hash the approver was shown.
    hash: String,
}

/// `POST /reports/{reference}/runbook/approve`: the second person arms the plan, bound to
/// the hash of what they were shown (a change in between is refused).
pub(crate) async fn approve(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<ApproveInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    let result = disclosure::approve(&app, &who.actor, &plan, Some(input.hash.trim())).await.map(drop);
    after(&app, &who, &reference, result, "approved", Where::Approve, PlanInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct MessageInput {
    plan: i64,
    channel: String,
    #[serde(default)]
    subject: Option<String>,
    text: String,
}

/// `POST /reports/{reference}/runbook/message`: one channel's text (and subject).
pub(crate) async fn message(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<MessageInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    // Browsers send text areas with CRLF line ends; the message goes out as typed.
    let text = input.text.replace("\r\n", "\n");
    let result =
        disclosure::set_message(&app, &who.actor, &plan, &input.channel, input.subject.as_deref(), &text).await;
    let result = match result {
        // A channel the plan does not have is the form's mistake, not a missing page.
        Err(AppError::NotFound(m)) if m.contains("channel") => Err(AppError::Invalid(m)),
        other => other.map(drop),
    };
    after(&app, &who, &reference, result, "message", Where::Message, PlanInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct PlanIdInput {
    plan: i64,
    #[serde(default)]
    reason: String,
}

/// `POST /reports/{reference}/runbook/rehearse`: the dry run.
pub(crate) async fn rehearse(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<PlanIdInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    let result = disclosure::rehearse(&app, &who.actor, &plan).await.map(drop);
    after(&app, &who, &reference, result, "rehearsed", Where::Rehearse, PlanInput::default()).await
}

#[derive(Deserialize)]
pub(crate) struct StepInput {
    plan: i64,
    step: String,
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /reports/{reference}/runbook/step`: "it happened — mark done" or "it did not —
/// retry", with a note, for a step that failed or waits for a person.
pub(crate) async fn step(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<StepInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    let decision = match input.decision.as_str() {
        "done" => Ok(StepDecision::MarkDone),
        "retry" => Ok(StepDecision::Retry),
        other => Err(AppError::Invalid(format!("{other:?} is not a decision (done or retry)"))),
    };
    let result = match decision {
        Ok(_) if input.note.trim().is_empty() => {
            Err(AppError::Invalid("say what you checked (the note is kept with the step)".into()))
        }
        Ok(decision) => {
            disclosure::decide_step(&app, &who.actor, &plan, &input.step, decision, &input.note).await.map(drop)
        }
        Err(e) => Err(e),
    };
    let result = match result {
        Err(AppError::NotFound(m)) if m.contains("no step") => Err(AppError::Invalid(m)),
        other => other,
    };
    after(&app, &who, &reference, result, "decided", Where::Step, PlanInput::default()).await
}

/// `POST /reports/{reference}/runbook/resume`: a stopped plan goes on.
pub(crate) async fn resume(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<PlanIdInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    let result = disclosure::resume(&app, &who.actor, &plan).await.map(drop);
    after(&app, &who, &reference, result, "resumed", Where::Resume, PlanInput::default()).await
}

/// `POST /reports/{reference}/runbook/cancel`: cancels a plan that is not running.
pub(crate) async fn cancel(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<PlanIdInput>,
) -> Result<Response, WebError> {
    let plan = same_report(&app, &who, &reference, input.plan).await?;
    let result = if input.reason.trim().is_empty() {
        Err(AppError::Invalid("say why the plan is cancelled".into()))
    } else {
        disclosure::cancel(&app, &who.actor, &plan, input.reason.trim()).await
    };
    after(&app, &who, &reference, result, "cancelled", Where::Cancel, PlanInput::default()).await
}

struct ListRow {
    id: i64,
    report: String,
    state: String,
    at: String,
    emergency: bool,
    done: usize,
    steps: usize,
}

#[derive(Template)]
#[template(path = "runbooks.html")]
struct RunbooksPage {
    layout: Layout,
    plans: Vec<ListRow>,
}

/// `GET /disclosure`: the plans of every report the person may plan disclosures of.
pub(crate) async fn list(State(app): State<App>, who: Team) -> Result<Response, WebError> {
    let plans = disclosure::list(&app, &who.actor)
        .await?
        .into_iter()
        .map(|v| ListRow {
            id: v.id,
            at: v.at.parse::<Timestamp>().map(utc).unwrap_or_else(|_| v.at.clone()),
            report: v.report,
            state: v.state,
            emergency: v.emergency,
            done: v.steps.iter().filter(|s| matches!(s.state.as_str(), "done" | "skipped")).count(),
            steps: v.steps.len(),
        })
        .collect();
    let layout = Layout::team(&app, "Disclosure plans", "inbox", &who);
    Ok(page(StatusCode::OK, &RunbooksPage { layout, plans }))
}

/// `GET /disclosure/{plan}`: the plan's page is its report's runbook.
pub(crate) async fn plan_page(
    State(app): State<App>,
    who: Team,
    Path(plan): Path<String>,
) -> Result<Response, WebError> {
    let view = disclosure::status(&app, &who.actor, &plan).await?;
    Ok(Redirect::to(&format!("/reports/{}/runbook", view.report)).into_response())
}

fn finished(state: &str) -> bool {
    matches!(state, "done" | "cancelled")
}

/// `GET /disclosure/{plan}/events`: the plan's status (the document of `embargo disclosure
/// status --json`) as server-sent events: `status` at once and whenever it changes (read
/// every second), `end` when the plan is done or cancelled; the stream ends then, after
/// five minutes (the browser's `EventSource` reconnects by itself), or when the server shuts
/// down.
pub(crate) async fn events(
    State(app): State<App>,
    who: Team,
    Path(plan): Path<String>,
    axum::Extension(streams): axum::Extension<Streams>,
) -> Result<Response, WebError> {
    // Refused (or unknown) is "not found" before the stream starts.
    let first = disclosure::status(&app, &who.actor, &plan).await?;
    let id = first.id.to_string();
    let actor = who.actor.clone();
    let started = tokio::time::Instant::now();
    let state = (Some(first), String::new(), false);
    let stream = futures_util::stream::unfold(state, move |(next, last, ended)| {
        let app = app.clone();
        let actor = actor.clone();
        let id = id.clone();
        let streams = streams.clone();
        async move {
            if ended {
                return None;
            }
            let mut view = next;
            loop {
                if let Some(v) = view.take() {
                    let json = serde_json::to_string(&v).unwrap_or_default();
                    if finished(&v.state) && json == last {
                        let event = Event::default().event("end").data(v.state.clone());
                        return Some((Ok::<_, Infallible>(event), (None, json, true)));
                    }
                    if finished(&v.state) {
                        // The last status, then at once the end.
                        let event = Event::default().event("status").data(json.clone());
                        return Some((Ok(event), (Some(v), json, false)));
                    }
                    if json != last {
                        let event = Event::default().event("status").data(json.clone());
                        return Some((Ok(event), (None, json, false)));
                    }
                }
                if started.elapsed() >= STREAM_FOR {
                    return None;
                }
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    // The server is shutting down: end, so it need not wait for the stream.
                    () = streams.clone().stopped() => return None,
                }
                match disclosure::status(&app, &actor, &id).await {
                    Ok(v) => view = Some(v),
                    // Permission taken away, the plan gone: the stream ends.
                    Err(_) => return None,
                }
            }
        }
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}
