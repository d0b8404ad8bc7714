//! The JSON API under `/api/v1`: bearer tokens, the same use cases and permissions as the
//! web app. The OpenAPI document is `openapi.json` beside this file, served at
//! `/api/v1/openapi.json`; a test checks that every API route in the router is in it.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::reports::{self, InboxQuery, Notice, ReadPurpose, TeamMessage};
use embargo_app::views::{ReportSummaryView, ReportView, time};
use embargo_app::{App, AppError};
use embargo_domain::{ReferenceId, ReportState, Target};
use serde::Deserialize;
use serde_json::json;

use crate::auth::ApiCaller;
use crate::error::WebError;
use crate::extract::{Json, Path, Query, ReportPath};

/// The OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("openapi.json");

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    state: Option<String>,
    product: Option<i64>,
    assignee: Option<String>,
    due: Option<String>,
    q: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

pub(crate) async fn list(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    Query(p): Query<ListParams>,
) -> Result<Response, WebError> {
    let query = InboxQuery {
        state: p.state,
        product: p.product,
        assignee: p.assignee,
        due: p.due,
        search: p.q,
        sort: None,
        page: p.page.unwrap_or(1),
        per_page: p.per_page.unwrap_or(50),
    };
    let inbox = reports::inbox(&app, &actor, &query).await?;
    let items: Vec<ReportSummaryView> = inbox.rows.iter().map(ReportSummaryView::from_inbox).collect();
    let capped = inbox.total > reports::INBOX_COUNT_CAP;
    Ok(axum::Json(json!({
        "reports": items,
        "total": inbox.total.min(reports::INBOX_COUNT_CAP),
        "total_is_lower_bound": capped,
        "page": query.page.max(1),
    }))
    .into_response())
}

pub(crate) async fn show(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    ReportPath(reference): ReportPath,
) -> Result<Response, WebError> {
    let detail = reports::show(&app, &actor, &reference, ReadPurpose::Export).await?;
    Ok(axum::Json(ReportView::new(&detail)).into_response())
}

/// The report's private fix with CI per release line (`embargo fix status --json`).
pub(crate) async fn fix(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    ReportPath(reference): ReportPath,
) -> Result<Response, WebError> {
    let status = embargo_app::fixes::status(&app, &actor, &reference).await?;
    Ok(axum::Json(status).into_response())
}

/// A disclosure plan with its steps (`embargo disclosure status PLAN --json`); PLAN is its
/// ID or the reference of its report.
pub(crate) async fn disclosure(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    Path(plan): Path<String>,
) -> Result<Response, WebError> {
    let view = embargo_app::disclosure::status(&app, &actor, &plan).await?;
    Ok(axum::Json(view).into_response())
}

#[derive(Deserialize)]
pub(crate) struct BodyInput {
    body: String,
}

pub(crate) async fn reply(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    ReportPath(reference): ReportPath,
    Json(input): Json<BodyInput>,
) -> Result<Response, WebError> {
    write(&app, &actor, &reference, TeamMessage::Reply, &input.body).await
}

pub(crate) async fn note(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    ReportPath(reference): ReportPath,
    Json(input): Json<BodyInput>,
) -> Result<Response, WebError> {
    write(&app, &actor, &reference, TeamMessage::Note, &input.body).await
}

async fn write(
    app: &App,
    actor: &embargo_domain::Actor,
    reference: &ReferenceId,
    kind: TeamMessage,
    body: &str,
) -> Result<Response, WebError> {
    let id = reports::write(app, actor, reference, kind, body).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "message": id }))).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TransitionInput {
    target: String,
    duplicate_of: Option<String>,
    /// `template` (default), `none`, or `custom` with `notice_text`.
    notice: Option<String>,
    notice_text: Option<String>,
}

pub(crate) async fn transition(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    ReportPath(reference): ReportPath,
    Json(input): Json<TransitionInput>,
) -> Result<Response, WebError> {
    let duplicate_of = input
        .duplicate_of
        .as_deref()
        .map(str::parse::<ReferenceId>)
        .transpose()
        .map_err(|_| AppError::Invalid("duplicate_of is not a report reference".into()))?;
    let notice = match (input.notice.as_deref(), input.notice_text) {
        (None | Some("template"), None) => Notice::Template,
        (Some("none"), None) => Notice::None,
        (None | Some("custom"), Some(text)) => Notice::Custom(text),
        _ => return Err(AppError::Invalid("notice is template, none, or custom with notice_text".into()).into()),
    };
    let target = Target::parse(&input.target, duplicate_of).map_err(AppError::from)?;
    let t = reports::change_state(&app, &actor, &reference, target, notice).await?;
    let (to, reason) = match t.to {
        ReportState::Closed(reason) => ("closed", Some(reason.code())),
        other => (other.code(), None),
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "from": t.from.code(), "to": to, "close_reason": reason, "at": time(t.at) })),
    )
        .into_response())
}
