//! Passkeys in the web app (ADR 28): the JSON endpoints `assets/app.js` calls around
//! `navigator.credentials` (options, then the browser's answer), and the account page's and
//! admin page's forms. The ceremonies are `embargo_app::passkeys`'s; these handlers only
//! carry them. A password-less sign-in is bound to the browser by a short-lived cookie
//! (`embargo_passkey`, path `/login`, HttpOnly, SameSite=Strict) holding a random token.
//!
//! The JSON endpoints answer errors as `{"error": code, "message": text}` with the status the
//! error page would have, so the script can show the message next to the button.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::{App, AppError, passkeys, sessions};
use serde::Deserialize;

use crate::auth::{self, AnySession, Team};
use crate::error::WebError;
use crate::extract::{Form, Path, Query};
use crate::team::NextPage;

/// The cookie binding a password-less ceremony to the browser that started it.
fn ceremony_cookie_name(app: &App) -> &'static str {
    if app.config.https() { "__Secure-embargo_passkey" } else { "embargo_passkey" }
}

fn ceremony_cookie(app: &App, token: &str, max_age: i64) -> HeaderValue {
    let secure = if app.config.https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        ceremony_cookie_name(app)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn ceremony_token(app: &App, headers: &HeaderMap) -> Option<String> {
    let name = ceremony_cookie_name(app);
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty() && value.len() <= 128).then(|| value.to_owned())
    })
}

/// A JSON answer that may not be cached.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(value)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A use-case error as the script reads it.
fn json_error(err: AppError) -> Response {
    let retry = match &err {
        AppError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
        _ => None,
    };
    let report = WebError::from(err).report();
    let mut response =
        json(report.status, serde_json::json!({ "error": report.code, "message": sentence(&report.message) }));
    if let Some(seconds) = retry {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map_or_else(String::new, |first| format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')))
}

/// The body as text; `None` (answered as unreadable) when it is not UTF-8.
fn body_text(body: &Bytes) -> Option<&str> {
    std::str::from_utf8(body).ok()
}

fn unreadable() -> Response {
    json_error(AppError::Invalid("the passkey's answer could not be read".into()))
}

// ---- Password-less sign-in from /login ---------------------------------------------------

/// `POST /login/passkey/options`: the options of a password-less sign-in, and the cookie
/// that binds its answer to this browser.
pub(crate) async fn login_options(
    State(app): State<App>,
    auth::ClientAddress(address): auth::ClientAddress,
) -> Response {
    match passkeys::start_passwordless(&app, &address).await {
        Ok((token, options)) => {
            let max_age = passkeys::CEREMONY.as_secs();
            let mut response = json(StatusCode::OK, options);
            response.headers_mut().append(header::SET_COOKIE, ceremony_cookie(&app, &token, max_age));
            response
        }
        Err(err) => json_error(err),
    }
}

/// `POST /login/passkey?next=...`: the browser's answer; on success the session cookie and
/// `{"to": page}`.
pub(crate) async fn login(
    State(app): State<App>,
    auth::ClientAddress(address): auth::ClientAddress,
    Query(next): Query<NextPage>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(body) = body_text(&body) else { return unreadable() };
    let Some(token) = ceremony_token(&app, &headers) else {
        return json_error(AppError::Invalid("the sign-in expired; start again".into()));
    };
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match passkeys::finish_passwordless(&app, &token, body, &address, agent).await {
        Ok(done) => signed_in(&app, &done, next.next.as_str(), true).await,
        Err(err) => {
            let mut response = json_error(err);
            response.headers_mut().append(header::SET_COOKIE, ceremony_cookie(&app, "", 0));
            response
        }
    }
}

/// The answer to a completed sign-in: the session cookie, the device cookie and where to go.
async fn signed_in(app: &App, done: &passkeys::PasskeySignIn, next: &str, clear_ceremony: bool) -> Response {
    let to = match sessions::session(app, &done.token).await {
        Ok(Some(session)) => auth::after_sign_in(&session, Some(next)),
        _ => "/inbox".to_owned(),
    };
    let mut response = json(StatusCode::OK, serde_json::json!({ "to": to }));
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, auth::set_cookie(app, &done.token));
    headers.append(header::SET_COOKIE, auth::set_device_cookie(app, &sessions::device_cookie(app, &done.email)));
    if clear_ceremony {
        headers.append(header::SET_COOKIE, ceremony_cookie(app, "", 0));
    }
    response
}

// ---- The second factor after the password -------------------------------------------------

/// `POST /login/totp/passkey/options`: the options of the second factor with a passkey.
pub(crate) async fn second_factor_options(State(app): State<App>, who: AnySession) -> Response {
    match passkeys::start_second_factor(&app, &who.session).await {
        Ok(options) => json(StatusCode::OK, options),
        Err(err) => json_error(err),
    }
}

/// `POST /login/totp/passkey?next=...`: the browser's answer for the second factor.
pub(crate) async fn second_factor(
    State(app): State<App>,
    who: AnySession,
    Query(next): Query<NextPage>,
    body: Bytes,
) -> Response {
    let Some(body) = body_text(&body) else { return unreadable() };
    match passkeys::finish_second_factor(&app, &who.session, body, &who.address, who.device.as_deref()).await {
        Ok(done) => signed_in(&app, &done, next.next.as_str(), false).await,
        Err(err) => json_error(err),
    }
}

// ---- The account page ---------------------------------------------------------------------

/// `POST /account/passkeys/options`: the options to register a passkey.
pub(crate) async fn register_options(State(app): State<App>, who: Team) -> Response {
    match passkeys::start_registration(&app, &who.session).await {
        Ok(options) => json(StatusCode::OK, options),
        Err(err) => json_error(err),
    }
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    name: String,
    credential: serde_json::Value,
}

/// `POST /account/passkeys`: `{"name": ..., "credential": <the browser's answer>}`.
pub(crate) async fn register(State(app): State<App>, who: Team, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Registration>(&body) else {
        return json_error(AppError::Invalid("the passkey's answer could not be read".into()));
    };
    match passkeys::finish_registration(&app, &who.session, &input.name, &input.credential.to_string()).await {
        Ok(_) => json(StatusCode::CREATED, serde_json::json!({ "to": "/account?done=passkey-added" })),
        Err(err) => json_error(err),
    }
}

#[derive(Deserialize)]
pub(crate) struct NameInput {
    name: String,
}

/// `POST /account/passkeys/{id}/rename`.
pub(crate) async fn rename(
    State(app): State<App>,
    who: Team,
    Path(id): Path<i64>,
    Form(input): Form<NameInput>,
) -> Response {
    match passkeys::rename(&app, &who.actor, id, &input.name).await {
        Ok(()) => Redirect::to("/account?done=passkey-renamed").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `POST /account/passkeys/{id}/remove`.
pub(crate) async fn remove(State(app): State<App>, who: Team, Path(id): Path<i64>) -> Response {
    match passkeys::remove(&app, &who.actor, id).await {
        Ok(()) => Redirect::to("/account?done=passkey-removed").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}

// ---- Admins -----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct RequireInput {
    email: String,
    /// `yes` to require, anything else to lift the requirement.
    #[serde(default)]
    required: String,
}

/// `POST /admin/users/passkey`: require an account to sign in with a passkey, or not.
pub(crate) async fn set_required(State(app): State<App>, who: Team, Form(input): Form<RequireInput>) -> Response {
    match passkeys::set_required(&app, &who.actor, &input.email, input.required == "yes").await {
        Ok(_) => Redirect::to("/admin").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}
