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

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        let (parts, body) = request.into_parts();
        let content_type = parts.headers.get(axum::http::header::CONTENT_TYPE).cloned();
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(rejected)?;
        let parse = |bytes: axum::body::Bytes| {
            let mut request = Request::post("/").body(axum::body::Body::from(bytes)).expect("request");
            if let Some(content_type) = &content_type {
                request.headers_mut().insert(axum::http::header::CONTENT_TYPE, content_type.clone());
            }
            axum::Form::<T>::from_request(request, &())
        };
        match parse(bytes.clone()).await {
            Ok(form) => Ok(Form(form.0)),
            Err(rejection) => {
                let status = rejection.status();
                let message = rejection.body_text();
                if status != StatusCode::UNPROCESSABLE_ENTITY && status != StatusCode::BAD_REQUEST {
                    return Err(WebError::request(status, message));
                }
                if let Some(rest) = message.split("missing field `").nth(1)
                    && let Some(name) = rest.split('`').next()
                {
                    return Err(WebError::invalid(name, "this field is missing"));
                }
                // The field that could not be read: the one without which the form reads, or
                // is only missing that field.
                let pairs = crate::refill::form_pairs(&bytes);
                let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
                names.dedup();
                for name in names {
                    let rest: Vec<u8> = bytes
                        .split(|&b| b == b'&')
                        .filter(|part| {
                            let key = part.split(|&b| b == b'=').next().unwrap_or_default();
                            crate::refill::form_pairs(&axum::body::Bytes::copy_from_slice(key))
                                .first()
                                .is_none_or(|(n, _)| n != name)
                        })
                        .collect::<Vec<_>>()
                        .join(&b'&');
                    let culprit = match parse(axum::body::Bytes::from(rest)).await {
                        Ok(_) => true,
                        Err(other) => other.body_text().contains(&format!("missing field `{name}`")),
                    };
                    if culprit {
                        let reason = message.rsplit(": ").next().unwrap_or(&message).to_owned();
                        return Err(WebError::invalid(name, format!("this value cannot be read ({reason})")));
                    }
                }
                Err(WebError::request(status, message))
            }
        }
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Input {
        #[allow(dead_code)]
        count: i64,
        #[allow(dead_code)]
        name: String,
    }

    async fn read(body: &'static str) -> Result<Form<Input>, WebError> {
        let request = Request::post("/")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        Form::<Input>::from_request(request, &()).await
    }

    #[tokio::test]
    async fn a_form_value_that_cannot_be_read_names_its_field() {
        assert!(read("name=x&count=3").await.is_ok());
        match read("name=x&count=three").await {
            Err(WebError::Field { field, status, message }) => {
                assert_eq!((field.as_str(), status), ("count", StatusCode::UNPROCESSABLE_ENTITY));
                assert!(message.contains("cannot be read"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A missing field is named too.
        assert!(matches!(read("count=3").await, Err(WebError::Field { field, .. }) if field == "name"));
    }
}
