//! The private fix of a report: its backport matrix with CI per line, the CI runs and their
//! logs, the forms that open the repository, invite fix developers, change the matrix and
//! override CI; the fix developers' start page; and the invitation link.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::{App, AppError, accounts, fixes};
use embargo_domain::{CiState, ReferenceId};
use serde::Deserialize;

use crate::auth::{Team, is_fix_developer};
use crate::error::WebError;
use crate::extract::{Form, Path, ReportPath};
use crate::render::{self, Layout, page};

#[derive(Template)]
#[template(path = "fixes.html")]
struct FixesPage {
    layout: Layout,
    fixes: Vec<fixes::FixStatus>,
}

/// The fixes the signed-in person may work on.
pub(crate) async fn list(State(app): State<App>, who: Team) -> Result<Response, WebError> {
    let fixes = fixes::mine(&app, &who.actor).await?;
    Ok(page(StatusCode::OK, &FixesPage { layout: Layout::team(&app, "Fixes", "fixes", &who), fixes }))
}

struct CommentRow {
    author: String,
    when: String,
    /// As written: the template escapes it, nothing is dropped.
    body: String,
}

struct RunRow {
    id: i64,
    line: String,
    commit: String,
    state: String,
    class: &'static str,
    isolation: String,
    when: String,
}

fn ci_class(state: &str) -> &'static str {
    match CiState::parse(state) {
        Some(CiState::Passed) => "ok",
        Some(CiState::Failed | CiState::TimedOut) => "bad",
        Some(CiState::Running) => "busy",
        _ => "idle",
    }
}

#[derive(Template)]
#[template(path = "fix.html")]
struct FixPage {
    layout: Layout,
    reference: String,
    status: fixes::FixStatus,
    comments: Vec<CommentRow>,
    runs: Vec<RunRow>,
    manage: bool,
    running: bool,
}

impl FixPage {
    fn class_of(&self, state: &str) -> &'static str {
        ci_class(state)
    }
}

#[derive(Template)]
#[template(path = "fix_none.html")]
struct NoFixPage {
    layout: Layout,
    reference: String,
}

/// A report's fix: clone URL, backport matrix, CI runs.
pub(crate) async fn show(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
) -> Result<Response, WebError> {
    let section = if is_fix_developer(&who.actor) { "fixes" } else { "inbox" };
    let layout = Layout::team(&app, format!("Fix of {reference}"), section, &who);
    let status = match fixes::status(&app, &who.actor, &reference).await {
        Ok(status) => status,
        // A report the person may work on but without a fix yet: offer to open one.
        Err(AppError::NotFound(_)) if !is_fix_developer(&who.actor) => {
            embargo_app::reports::show(&app, &who.actor, &reference, embargo_app::reports::ReadPurpose::Read).await?;
            return Ok(page(StatusCode::OK, &NoFixPage { layout, reference: reference.to_string() }));
        }
        Err(e) => return Err(e.into()),
    };
    let runs = fixes::runs(&app, &who.actor, &reference).await?;
    let running = runs.iter().any(|r| !r.state.is_final());
    let runs = runs
        .iter()
        .take(50)
        .map(|r| RunRow {
            id: r.id,
            line: r.line.clone(),
            commit: r.commit.chars().take(12).collect(),
            state: r.state.code().to_owned(),
            class: ci_class(r.state.code()),
            isolation: r.isolation.clone().unwrap_or_default(),
            when: render::time(&app, r.created_at),
        })
        .collect();
    let comments = fixes::comments(&app, &who.actor, &reference)
        .await?
        .into_iter()
        .map(|c| CommentRow { author: c.author, when: render::time(&app, c.created_at), body: c.body })
        .collect();
    let manage = !is_fix_developer(&who.actor);
    let mut layout = layout;
    layout.refresh = running.then_some(3);
    Ok(page(
        StatusCode::OK,
        &FixPage { layout, reference: reference.to_string(), status, comments, runs, manage, running },
    ))
}

#[derive(Template)]
#[template(path = "ci_run.html")]
struct RunPage {
    layout: Layout,
    reference: String,
    id: i64,
    line: String,
    commit: String,
    state: String,
    class: &'static str,
    isolation: String,
    log: String,
    running: bool,
}

/// One CI run with its log (the page reloads itself while the run goes).
pub(crate) async fn run(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Path((_, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let found = fixes::run_log(&app, &who.actor, &reference, id).await?;
    let running = !found.run.state.is_final();
    let section = if is_fix_developer(&who.actor) { "fixes" } else { "inbox" };
    let mut layout = Layout::team(&app, format!("CI run {id} of {reference}"), section, &who);
    layout.refresh = running.then_some(2);
    Ok(page(
        StatusCode::OK,
        &RunPage {
            layout,
            reference: reference.to_string(),
            id,
            line: found.run.line.clone(),
            commit: found.run.commit.clone(),
            state: found.run.state.code().to_owned(),
            class: ci_class(found.run.state.code()),
            isolation: found.run.isolation.clone().unwrap_or_default(),
            // The command's output, as written (escaped by the template, never dropped).
            log: String::from_utf8_lossy(&found.log).into_owned(),
            running,
        },
    ))
}

/// A run's log as plain text (for download).
pub(crate) async fn run_text(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Path((_, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let found = fixes::run_log(&app, &who.actor, &reference, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ci.log\"")),
        ],
        found.log,
    )
        .into_response())
}

fn back(reference: &ReferenceId, done: &str) -> Response {
    Redirect::to(&format!("/reports/{reference}/fix?done={done}")).into_response()
}

/// Opens the repository.
pub(crate) async fn open(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
) -> Result<Response, WebError> {
    fixes::open(&app, &who.actor, &reference).await?;
    Ok(back(&reference, "open"))
}

#[derive(Deserialize)]
pub(crate) struct InviteInput {
    email: String,
}

/// Invites a fix developer.
pub(crate) async fn invite(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<InviteInput>,
) -> Result<Response, WebError> {
    fixes::invite(&app, &who.actor, &reference, &input.email).await?;
    Ok(back(&reference, "invite"))
}

#[derive(Deserialize)]
pub(crate) struct CommentInput {
    body: String,
}

/// Adds to the fix's discussion.
pub(crate) async fn comment(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<CommentInput>,
) -> Result<Response, WebError> {
    fixes::comment(&app, &who.actor, &reference, &input.body).await?;
    Ok(back(&reference, "comment"))
}

#[derive(Deserialize)]
pub(crate) struct LineInput {
    line: String,
    #[serde(default)]
    affected: String,
    #[serde(default)]
    introduced: String,
    #[serde(default)]
    fixed_version: String,
}

/// Changes a row of the backport matrix.
pub(crate) async fn set_line(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<LineInput>,
) -> Result<Response, WebError> {
    let change = fixes::MatrixChange {
        affected: Some(input.affected == "yes"),
        introduced: Some(input.introduced),
        fixed_version: Some(input.fixed_version),
    };
    fixes::set_line(&app, &who.actor, &reference, &input.line, &change).await?;
    Ok(back(&reference, "line"))
}

#[derive(Deserialize)]
pub(crate) struct OverrideInput {
    line: String,
    #[serde(default)]
    reason: String,
}

/// Overrides (or with an empty reason, restores) a line's CI gate.
pub(crate) async fn override_ci(
    State(app): State<App>,
    who: Team,
    ReportPath(reference): ReportPath,
    Form(input): Form<OverrideInput>,
) -> Result<Response, WebError> {
    fixes::override_ci(&app, &who.actor, &reference, &input.line, &input.reason).await?;
    Ok(back(&reference, "override"))
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    layout: Layout,
    token: String,
    email: String,
    reference: String,
    error: Option<String>,
    min: usize,
    /// Single sign-on's name, when configured (accept through it instead).
    sso: Option<String>,
}

fn invitation_gone(app: &App) -> Response {
    render::message(
        StatusCode::NOT_FOUND,
        Layout::public(app, "Link not valid", ""),
        "This invitation link is not valid",
        "It was used already, has expired, or was never issued. Ask the security team for a new invitation.",
        None,
    )
}

/// The invitation link: a form to set the password.
pub(crate) async fn invitation(State(app): State<App>, Path(token): Path<String>) -> Response {
    match fixes::invitation(&app, &token).await {
        Ok(Some((email, reference))) => page(
            StatusCode::OK,
            &InvitationPage {
                layout: Layout::public(&app, "Accept the invitation", ""),
                token,
                email,
                reference: reference.to_string(),
                error: None,
                min: accounts::MIN_PASSWORD_LEN,
                sso: embargo_app::oidc::display_name(&app).map(str::to_owned),
            },
        ),
        Ok(None) => invitation_gone(&app),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct AcceptInput {
    password: String,
    confirm: String,
}

async fn retry(app: &App, token: &str, message: &str) -> Response {
    match fixes::invitation(app, token).await {
        Ok(Some((email, reference))) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &InvitationPage {
                layout: Layout::public(app, "Accept the invitation", ""),
                token: token.to_owned(),
                email,
                reference: reference.to_string(),
                error: Some(message.to_owned()),
                min: accounts::MIN_PASSWORD_LEN,
                sso: embargo_app::oidc::display_name(app).map(str::to_owned),
            },
        ),
        _ => invitation_gone(app),
    }
}

/// Accepts the invitation: sets the password, then on to sign in.
pub(crate) async fn accept(
    State(app): State<App>,
    Path(token): Path<String>,
    Form(input): Form<AcceptInput>,
) -> Response {
    if input.password != input.confirm {
        return retry(&app, &token, "The passwords do not match.").await;
    }
    match fixes::accept_invitation(&app, &token, &input.password).await {
        Ok(_) => render::message(
            StatusCode::OK,
            Layout::public(&app, "Invitation accepted", ""),
            "Your password is set",
            "Sign in now: you will set up two-factor sign-in with an authenticator app, then find the fix you were \
             invited to.",
            Some(("/login", "Sign in")),
        ),
        Err(AppError::Invalid(message)) => retry(&app, &token, &message).await,
        Err(AppError::NotFound(_)) => invitation_gone(&app),
        Err(e) => WebError::from(e).into_response(),
    }
}
