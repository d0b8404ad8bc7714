//! The JSON API under `/api/v1`: bearer tokens, the same use cases and permissions as the
//! web app. The OpenAPI document is `openapi.json` beside this file, served at
//! `/api/v1/openapi.json`; a test checks that every API route in the router is in it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::reports::{self, InboxQuery, Notice, ReadPurpose, TeamMessage};
use embargo_app::{App, AppError};
use embargo_domain::{ReferenceId, ReportState, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::ApiCaller;

/// The OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("openapi.json");

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A use-case error as JSON.
pub fn error(err: &AppError) -> Response {
    let (status, code) = match err {
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        AppError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        AppError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let message = match err {
        AppError::Internal(_) => {
            tracing::error!(error = %format!("{err:#}"), "API request failed");
            "internal error".to_owned()
        }
        AppError::Unavailable(_) => "temporarily unavailable".to_owned(),
        other => other.to_string(),
    };
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn time(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

fn state_json(state: ReportState) -> (String, Option<&'static str>) {
    match state {
        ReportState::Closed(reason) => ("closed".into(), Some(reason.code())),
        other => (other.code().into(), None),
    }
}

fn reference(text: &str) -> Result<ReferenceId, Box<Response>> {
    text.parse().map_err(|_| Box::new(error(&AppError::NotFound(format!("report {text}")))))
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

pub(crate) async fn list(State(app): State<App>, ApiCaller(actor): ApiCaller, Query(p): Query<ListParams>) -> Response {
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
    match reports::inbox(&app, &actor, &query).await {
        Ok(inbox) => {
            let items: Vec<Value> = inbox
                .rows
                .into_iter()
                .map(|row| {
                    let (state, reason) = state_json(row.summary.state);
                    json!({
                        "reference": row.summary.reference.to_string(),
                        "title": row.summary.title,
                        "state": state,
                        "close_reason": reason,
                        "product": row.product,
                        "assignee": row.assignee,
                        "ack_due_at": row.summary.ack_due_at.map(time),
                        "due_at": row.summary.due_at.map(time),
                        "received_at": time(row.summary.created_at),
                        "updated_at": time(row.summary.updated_at),
                    })
                })
                .collect();
            let capped = inbox.total > reports::INBOX_COUNT_CAP;
            Json(json!({
                "reports": items,
                "total": inbox.total.min(reports::INBOX_COUNT_CAP),
                "total_is_lower_bound": capped,
                "page": query.page.max(1),
            }))
            .into_response()
        }
        Err(err) => error(&err),
    }
}

pub(crate) async fn show(State(app): State<App>, ApiCaller(actor): ApiCaller, Path(r): Path<String>) -> Response {
    let reference = match reference(&r) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match reports::show(&app, &actor, &reference, ReadPurpose::Export).await {
        Ok(detail) => {
            let report = &detail.report;
            let (state, reason) = state_json(report.state);
            let messages: Vec<Value> = detail
                .messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "kind": m.kind.as_str(),
                        "author": m.author,
                        "sender": m.sender,
                        "subject": m.subject,
                        "body": m.body,
                        "quarantined": m.quarantined,
                        "visible_to_reporter": m.visible_to_reporter,
                        "openpgp": m.pgp,
                        "sender_authentication": m.auth,
                        "anomalies": m.anomalies,
                        "at": time(m.at),
                        "attachments": detail.attachments.iter().filter(|a| a.message == Some(m.id)).map(|a| json!({
                            "id": a.id, "filename": a.filename, "media_type": a.media_type, "size": a.size,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let transitions: Vec<Value> = detail
                .transitions
                .iter()
                .map(|t| {
                    let (to, reason) = state_json(t.to);
                    json!({ "from": t.from, "to": to, "close_reason": reason, "actor": t.actor, "at": time(t.at) })
                })
                .collect();
            let details: Value =
                report.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
            Json(json!({
                "reference": reference.to_string(),
                "title": report.title,
                "state": state,
                "close_reason": reason,
                "channel": report.channel,
                "body": report.body,
                "form": details,
                "product_id": report.product_id,
                "assignee_id": report.assignee.map(|a| a.0),
                "ack_due_at": report.ack_due_at.map(time),
                "received_at": time(report.created_at),
                "updated_at": time(report.updated_at),
                "reporter": {
                    "email": detail.reporter.email,
                    "name": detail.reporter.name,
                    "has_openpgp_key": detail.reporter.openpgp_key.is_some(),
                },
                "messages": messages,
                "transitions": transitions,
                "deadlines": detail.clocks.iter().map(|c| json!({
                    "clock": c.name,
                    "budget_working_days": c.budget_days,
                    "started": time(c.started),
                    "due": c.due.map(time),
                    "stopped": c.stopped.map(time),
                    "met": c.stopped.zip(c.due).map(|(s, d)| s <= d),
                    "paused": c.stopped.is_none() && c.due.is_none(),
                })).collect::<Vec<_>>(),
                "assessment": {
                    "severity": detail.sla.severity,
                    "cvss_v3": detail.assessment.cvss_v3,
                    "cvss_v4": detail.assessment.cvss_v4,
                    "cwe": detail.assessment.cwe,
                    "ssvc": detail.assessment.ssvc,
                    "affected": detail.assessment.affected.iter().map(|a| json!({
                        "product_id": a.product_id, "introduced": a.introduced, "fixed": a.fixed, "last_affected": a.last_affected,
                    })).collect::<Vec<_>>(),
                },
            }))
            .into_response()
        }
        Err(err) => error(&err),
    }
}

#[derive(Deserialize)]
pub(crate) struct BodyInput {
    body: String,
}

pub(crate) async fn reply(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    Path(r): Path<String>,
    Json(input): Json<BodyInput>,
) -> Response {
    write(&app, &actor, &r, TeamMessage::Reply, &input.body).await
}

pub(crate) async fn note(
    State(app): State<App>,
    ApiCaller(actor): ApiCaller,
    Path(r): Path<String>,
    Json(input): Json<BodyInput>,
) -> Response {
    write(&app, &actor, &r, TeamMessage::Note, &input.body).await
}

async fn write(app: &App, actor: &embargo_domain::Actor, r: &str, kind: TeamMessage, body: &str) -> Response {
    let reference = match reference(r) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match reports::write(app, actor, &reference, kind, body).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "message": id }))).into_response(),
        Err(err) => error(&err),
    }
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
    Path(r): Path<String>,
    Json(input): Json<TransitionInput>,
) -> Response {
    let reference = match reference(&r) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let duplicate_of = match input.duplicate_of.as_deref().map(str::parse::<ReferenceId>).transpose() {
        Ok(d) => d,
        Err(_) => return error(&AppError::Invalid("duplicate_of is not a report reference".into())),
    };
    let notice = match (input.notice.as_deref(), input.notice_text) {
        (None | Some("template"), None) => Notice::Template,
        (Some("none"), None) => Notice::None,
        (None | Some("custom"), Some(text)) => Notice::Custom(text),
        _ => return error(&AppError::Invalid("notice is template, none, or custom with notice_text".into())),
    };
    match reports::change_state(&app, &actor, &reference, &input.target, duplicate_of.as_ref(), notice).await {
        Ok(t) => {
            let (to, reason) = state_json(t.to);
            (
                StatusCode::CREATED,
                Json(json!({ "from": t.from.code(), "to": to, "close_reason": reason, "at": time(t.at) })),
            )
                .into_response()
        }
        Err(err) => error(&err),
    }
}
