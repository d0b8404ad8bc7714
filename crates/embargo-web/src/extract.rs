//! The request extractors handlers use: axum's `Query`, `Form`, `Json` and `Path` with
//! their rejections turned into [`WebError`] (so a bad value gets the app's error page or
//! the API's JSON error, never the framework's plain text), and [`ReportPath`], the
//! `{reference}` of a report route, parsed.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use embargo_app::AppError;
use embargo_domain::ReferenceId;
use serde::de::DeserializeOwned;

use crate::error::WebError;

/// A rejection of one of axum's extractors as a [`WebError`], keeping its status and text.
fn rejected(rejection: impl IntoResponse + std::fmt::Display) -> WebError {
    let message = rejection.to_string();
    WebError::request(rejection.into_response().status(), message)
}

/// The query string, deserialised (`?page=x` for a number is a 400 in the app's shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Query(q.0)).map_err(rejected)
    }
}

/// Path parameters, deserialised.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| Path(p.0)).map_err(rejected)
    }
}

/// A URL-encoded form body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        axum::Form::<T>::from_request(request, state).await.map(|f| Form(f.0)).map_err(rejected)
    }
}

/// A JSON body (for the API; responses use `axum::Json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        axum::Json::<T>::from_request(request, state).await.map(|j| Json(j.0)).map_err(rejected)
    }
}

/// The `{reference}` path parameter of a report route, parsed. A malformed reference is
/// "not found", like a report the caller may not see.
#[derive(Debug, Clone)]
pub struct ReportPath(pub ReferenceId);

impl<S: Send + Sync> FromRequestParts<S> for ReportPath {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        let Some(text) = params.get("reference") else {
            tracing::error!("ReportPath used on a route without {{reference}}");
            return Err(WebError::request(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
        };
        text.parse().map(ReportPath).map_err(|_| WebError::App(AppError::NotFound(format!("report {text}"))))
    }
}
