//! `WebError`: every way a request can fail, as one type that handlers return and
//! extractors reject with.
//!
//! A `WebError` does not render itself: it becomes a response with its status, an empty
//! body and an [`ErrorReport`] extension. The [`crate::error_page`] middleware, which knows
//! the app and the request, turns that into the app's error page (HTML) or, under
//! `/api/`, the API's JSON error (`{"error": code, "message": text}`). This module depends
//! on no other module of the crate.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use embargo_app::AppError;

/// A failed request.
#[derive(Debug)]
pub enum WebError {
    /// A use case refused or failed.
    App(AppError),
    /// The request itself was unusable: a bad query value, form, JSON body or path
    /// (the extractors' rejections), with the status the framework chose.
    Request {
        /// 400, 413, 415, 422, ...
        status: StatusCode,
        /// What was wrong, for the client.
        message: String,
    },
    /// The API needs a bearer token.
    Unauthorized,
    /// Bad input in one field of a form: the form comes back with this field marked and the
    /// input kept (see `refill`); elsewhere it is like [`WebError::Request`].
    Field {
        /// 422 (bad input) or 409 (a conflict, such as a name already taken).
        status: StatusCode,
        /// The field's `name`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// What the error page middleware needs to answer an error: attached to the response of
/// a [`WebError`] (and built by the middleware for errors the framework answered itself).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The status.
    pub status: StatusCode,
    /// The API's error code (`not_found`, `invalid`, `bad_request`, ...).
    pub code: &'static str,
    /// The page's heading.
    pub heading: &'static str,
    /// The text for the client (never an internal cause).
    pub message: String,
    /// The form field the error is about, when known (see `refill`).
    pub field: Option<String>,
}

impl From<AppError> for WebError {
    fn from(err: AppError) -> Self {
        WebError::App(err)
    }
}

impl WebError {
    /// A refused request with this status and message.
    pub fn request(status: StatusCode, message: impl Into<String>) -> Self {
        WebError::Request { status, message: message.into() }
    }

    /// A use case's refusal of bad input (`Invalid`, `Conflict`) as an error in `field` of the
    /// posted form; other errors pass unchanged.
    pub fn field(field: &str, err: AppError) -> Self {
        match err {
            AppError::Invalid(message) => {
                WebError::Field { status: StatusCode::UNPROCESSABLE_ENTITY, field: field.to_owned(), message }
            }
            AppError::Conflict(message) => {
                WebError::Field { status: StatusCode::CONFLICT, field: field.to_owned(), message }
            }
            err => WebError::App(err),
        }
    }

    /// Bad input in `field`, found by the web layer itself.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        WebError::Field { status: StatusCode::UNPROCESSABLE_ENTITY, field: field.to_owned(), message: message.into() }
    }

    /// The 404 of a path that does not exist ("There is nothing here."): also what a
    /// partner gets on a team route, and anyone on a partner notice not shared with them.
    pub fn nothing_here() -> Self {
        WebError::request(StatusCode::NOT_FOUND, "There is nothing here.")
    }

    /// What the client is told. Internal and temporary failures are logged here with their
    /// cause and shown without it.
    pub fn report(&self) -> ErrorReport {
        match self {
            WebError::App(err) => {
                let (status, code, heading, message) = match err {
                    AppError::NotFound(_) => (
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "Not found",
                        "There is nothing here, or you may not see it.".to_owned(),
                    ),
                    AppError::Forbidden(_) => {
                        (StatusCode::FORBIDDEN, "forbidden", "Not allowed", "Your account may not do this.".to_owned())
                    }
                    AppError::Conflict(m) => (StatusCode::CONFLICT, "conflict", "Not possible now", m.clone()),
                    AppError::Invalid(m) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Please check your input", m.clone())
                    }
                    AppError::TooMany(m) | AppError::Throttled { message: m, .. } => {
                        (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "Too many attempts", m.clone())
                    }
                    AppError::Unavailable(_) => {
                        tracing::warn!(error = %err, "temporarily unavailable");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "Temporarily unavailable",
                            "Temporarily unavailable; please try again in a moment.".to_owned(),
                        )
                    }
                    AppError::Internal(_) => {
                        tracing::error!(error = %format!("{err:#}"), "request failed");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "Something went wrong",
                            "Internal error; please try again.".to_owned(),
                        )
                    }
                };
                ErrorReport { status, code, heading, message, field: None }
            }
            WebError::Request { status, message } => {
                let (code, heading) = describe(*status);
                ErrorReport { status: *status, code, heading, message: message.clone(), field: None }
            }
            WebError::Field { status, field, message } => {
                let (code, heading) = describe(*status);
                ErrorReport { status: *status, code, heading, message: message.clone(), field: Some(field.clone()) }
            }
            WebError::Unauthorized => ErrorReport {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                heading: "Not signed in",
                message: "send Authorization: Bearer <token>".to_owned(),
                field: None,
            },
        }
    }
}

/// The API code and page heading of a status the framework (or a layer) answered with.
pub fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "Bad request"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Not signed in"),
        StatusCode::FORBIDDEN => ("forbidden", "Not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Not possible here"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "Timed out"),
        StatusCode::CONFLICT => ("conflict", "Not possible now"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "Too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported content type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid", "Please check your input"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "Too many attempts"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Temporarily unavailable"),
        s if s.is_client_error() => ("bad_request", "Bad request"),
        _ => ("internal", "Something went wrong"),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
        if matches!(self, WebError::Unauthorized) {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
        }
        // When to try again, kept by the error page middleware.
        if let WebError::App(AppError::Throttled { retry_after_secs, .. }) = &self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, (*retry_after_secs).into());
        }
        response.extensions_mut().insert(report);
        response
    }
}
