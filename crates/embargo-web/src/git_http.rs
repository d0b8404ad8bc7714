//! The private fix repositories over git's smart HTTP protocol (ADR 19): `git
//! http-backend` as a CGI program behind Embargo's own authentication.
//!
//! A client authenticates with HTTP Basic, a personal access token as the password (the
//! user name is not checked). Only the smart protocol's three endpoints are served. Anyone
//! who may not use a repository — no or a bad token, a fix developer of another fix, a
//! responder off the report, a reference that does not exist — gets the same answer, a
//! `401` asking for credentials, so that nobody learns which fixes exist.
//!
//! After a push, the response is held until the new heads are recorded and their CI runs
//! queued (`embargo_app::fixes::after_push`): when `git push` returns, CI is on its way.

use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use embargo_app::{App, AppError, fixes};
use embargo_domain::{Actor, ReferenceId};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_http::timeout::TimeoutLayer;

/// The routes, with their own time limit (a clone of a large repository takes a while).
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/git/{*path}", any(serve))
        .route("/fixes/ci-callback", axum::routing::post(ci_callback))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(3600)))
}

/// The one refusal.
fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"Embargo fix repositories\""), (header::CACHE_CONTROL, "no-store")],
        "authentication required: your e-mail address and a personal access token\n",
    )
        .into_response()
}

/// The smart-protocol endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `GET info/refs?service=...`: the ref advertisement.
    Refs { push: bool },
    /// `POST git-upload-pack`: fetch and clone.
    UploadPack,
    /// `POST git-receive-pack`: push.
    ReceivePack,
}

fn endpoint(method: &Method, rest: &str, query: &str) -> Option<Endpoint> {
    match (method, rest) {
        (&Method::GET, "info/refs") => match query {
            "service=git-upload-pack" => Some(Endpoint::Refs { push: false }),
            "service=git-receive-pack" => Some(Endpoint::Refs { push: true }),
            _ => None,
        },
        (&Method::POST, "git-upload-pack") => Some(Endpoint::UploadPack),
        (&Method::POST, "git-receive-pack") => Some(Endpoint::ReceivePack),
        _ => None,
    }
}

/// The actor of an `Authorization: Basic` header whose password is a valid token.
async fn caller(app: &App, headers: &HeaderMap) -> Result<Option<Actor>, AppError> {
    let Some(encoded) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    else {
        return Ok(None);
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return Ok(None) };
    let Ok(decoded) = String::from_utf8(decoded) else { return Ok(None) };
    let Some((_user, token)) = decoded.split_once(':') else { return Ok(None) };
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    embargo_app::accounts::authenticate_token(app, token).await
}

async fn serve(State(app): State<App>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let path = uri.path().strip_prefix("/git/").unwrap_or_default();
    let Some((name, rest)) = path.split_once(".git/") else { return refused() };
    let Some(endpoint) = endpoint(&method, rest, uri.query().unwrap_or_default()) else {
        return (StatusCode::NOT_FOUND, "only git's smart HTTP protocol is served here\n").into_response();
    };
    let Ok(reference) = name.parse::<ReferenceId>() else { return refused() };
    let actor = match caller(&app, &headers).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return refused(),
        Err(e) => return unavailable(&e),
    };
    let push = matches!(endpoint, Endpoint::ReceivePack | Endpoint::Refs { push: true });
    let repository = match fixes::git_repository(&app, &actor, &reference, push).await {
        Ok(path) => path,
        Err(AppError::NotFound(_) | AppError::Forbidden(_)) => return refused(),
        Err(e) => return unavailable(&e),
    };
    let (Some(root), Some(dir)) = (repository.parent(), repository.file_name()) else { return refused() };
    let mut cmd = fixes::git::command(&app, None);
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}/{rest}", dir.to_string_lossy()))
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("REMOTE_USER", actor.to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1");
    for (name, variable) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_LENGTH, "CONTENT_LENGTH"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            cmd.env(variable, value);
        }
    }
    // The client's `Git-Protocol` header is not passed on: protocol v2 lets a client fetch
    // any object by its ID, including commits force-pushed away; v0 serves only what the
    // refs reach (`uploadpack.allowAnySHA1InWant` is off).
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return unavailable(&AppError::Unavailable(format!("cannot run git http-backend: {e}"))),
    };
    // The request body goes to the program as it arrives.
    let mut stdin = child.stdin.take();
    let feeding = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            let Some(input) = stdin.as_mut() else { break };
            if input.write_all(&chunk).await.is_err() {
                break;
            }
        }
        drop(stdin);
    });
    let mut stderr = child.stderr.take();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_end(&mut sink).await;
        }
        if !sink.is_empty() {
            tracing::warn!(bytes = sink.len(), "git http-backend wrote to its standard error");
        }
    });
    let Some(mut stdout) = child.stdout.take() else {
        return unavailable(&AppError::Unavailable("git http-backend has no output".into()));
    };
    // The CGI header block, then the body.
    let mut head = Vec::new();
    let mut buffer = [0u8; 8192];
    let split = loop {
        match stdout.read(&mut buffer).await {
            Ok(0) | Err(_) => break None,
            Ok(n) => {
                head.extend_from_slice(&buffer[..n]);
                if let Some(at) = find_blank_line(&head) {
                    break Some(at);
                }
                if head.len() > 64 * 1024 {
                    break None;
                }
            }
        }
    };
    let Some((header_end, body_start)) = split else {
        let _ = child.kill().await;
        return unavailable(&AppError::Unavailable("git http-backend gave no answer".into()));
    };
    let mut response = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(&head[..header_end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok()).unwrap_or(500);
            response = response.status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        } else if let Ok(value) = HeaderValue::from_str(value) {
            response = response.header(name.trim(), value);
        }
    }
    response = response.header(header::CACHE_CONTROL, "no-store");
    let first = Bytes::copy_from_slice(&head[body_start..]);

    if endpoint == Endpoint::ReceivePack {
        // A push's answer is small: hold it until the refs are updated and recorded.
        let mut rest = first.to_vec();
        let _ = stdout.read_to_end(&mut rest).await;
        let _ = feeding.await;
        let _ = child.wait().await;
        if let Err(e) = fixes::after_push(&app, &actor, &reference).await {
            tracing::error!(error = %e, "recording a push to a fix repository failed");
        }
        return response.body(Body::from(rest)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }).chain(
        futures_util::stream::unfold((stdout, child), |(mut stdout, child)| async move {
            let mut buffer = vec![0u8; 64 * 1024];
            match stdout.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    Some((Ok(Bytes::from(buffer)), (stdout, child)))
                }
                Err(e) => Some((Err(e), (stdout, child))),
            }
        }),
    );
    response.body(Body::from_stream(stream)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Where the CGI header block ends: (end of headers, start of body).
fn find_blank_line(data: &[u8]) -> Option<(usize, usize)> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, at + 4));
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|at| (at, at + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn unavailable(error: &AppError) -> Response {
    tracing::error!(error = %error, "serving a fix repository failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the repository cannot be served right now; try again later\n").into_response()
}

/// The external CI's signed report of a run (see `embargo_app::fixes::external_ci_callback`).
async fn ci_callback(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(embargo_domain::fix::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    match fixes::external_ci_callback(&app, signature, &body).await {
        Ok(state) => (StatusCode::OK, format!("{{\"state\":\"{}\"}}\n", state.code())).into_response(),
        Err(AppError::Forbidden(_)) => {
            (StatusCode::UNAUTHORIZED, "a valid, recent X-Embargo-Signature is required\n").into_response()
        }
        Err(AppError::NotFound(m)) => (StatusCode::NOT_FOUND, format!("{m}\n")).into_response(),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, format!("{m}\n")).into_response()
        }
        Err(e) => unavailable(&e),
    }
}
