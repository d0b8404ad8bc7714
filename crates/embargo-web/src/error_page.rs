//! The middleware that answers every failed request in the shape its client expects: the
//! app's error page (HTML, in the team layout when signed in), or under `/api/` the API's
//! JSON error `{"error": code, "message": text}`. It renders the [`ErrorReport`] a
//! [`WebError`](crate::error::WebError) left on its response, and also the errors the
//! framework and the layers answer with plain text or an empty body (a rejected query,
//! form or JSON body, an unknown method, a body over the limit, a timeout, a refused
//! cross-site request), so no client ever gets the framework's own text.
//!
//! Every `/api/` response is also marked `Cache-Control: no-store`: it may carry report
//! content.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use embargo_app::{App, sessions};

use crate::auth::{self, Team};
use crate::error::{ErrorReport, describe};
use crate::render::{self, Layout};

/// The longest framework error text passed on to the client.
const MAX_TEXT: usize = 2048;

/// See the module documentation.
pub async fn error_pages(State(app): State<App>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let session = if api { None } else { auth::session_token(&app, request.headers()) };
    let mut response = next.run(request).await;
    if api {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let report = match response.extensions_mut().remove::<ErrorReport>() {
        Some(report) => report,
        None => {
            // Pages and JSON that handlers built on purpose pass unchanged.
            let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
                return response;
            }
            let (code, heading) = describe(status);
            let (parts, body) = std::mem::take(&mut response).into_parts();
            let text = axum::body::to_bytes(body, MAX_TEXT).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            let message = match status {
                StatusCode::NOT_FOUND => "There is nothing here.".to_owned(),
                StatusCode::METHOD_NOT_ALLOWED => "This address does not take this method.".to_owned(),
                StatusCode::REQUEST_TIMEOUT => "The request took too long; please try again.".to_owned(),
                StatusCode::FORBIDDEN if text.is_empty() => "This request is not allowed.".to_owned(),
                s if s.is_client_error() && !text.is_empty() => text,
                s if s.is_client_error() => heading.to_owned(),
                _ => "Internal error; please try again.".to_owned(),
            };
            response = Response::from_parts(parts, axum::body::Body::empty());
            ErrorReport { status, code, heading, message, field: None }
        }
    };
    let mut answer = if api {
        (report.status, axum::Json(serde_json::json!({ "error": report.code, "message": report.message })))
            .into_response()
    } else {
        let layout = match session {
            Some(token) => match sessions::session(&app, &token).await {
                Ok(Some(session)) => match session.actor() {
                    Some(actor) => Layout::team(&app, report.heading, "", &Team { session, actor }),
                    None => Layout::public(&app, report.heading, ""),
                },
                _ => Layout::public(&app, report.heading, ""),
            },
            None => Layout::public(&app, report.heading, ""),
        };
        render::message(report.status, layout, report.heading, &report.message, None)
    };
    // For `refill`, which may answer with the form instead.
    answer.extensions_mut().insert(report);
    // Keep what the original answer said beyond its body: Allow, Retry-After,
    // WWW-Authenticate, Set-Cookie, a route's own Content-Security-Policy.
    let own: Vec<header::HeaderName> = answer.headers().keys().cloned().collect();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !own.contains(name) {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}
