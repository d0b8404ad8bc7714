//! Single sign-on with OpenID Connect (ADR 29) over `embargo_app::oidc`: the sign-in button
//! (`POST /login/oidc`), the provider's callback (`GET /login/oidc/callback`), linking from
//! the account page (`POST /account/oidc/link`), accepting an invitation through the
//! provider (`POST /invitations/{token}/oidc`, `POST /partner/welcome/{token}/oidc`) and an
//! admin's unlinking (`POST /admin/users/oidc-unlink`).
//!
//! A started flow is bound to the browser by a cookie (`embargo_oidc`, `HttpOnly`, path
//! `/login/oidc`, ten minutes). It is `SameSite=Lax`, the one cookie that is: the provider
//! sends the browser back with a cross-site navigation, on which `Strict` cookies are not
//! sent. For the same reason the callback does not redirect: it answers a page that moves on
//! by itself (`<meta http-equiv="refresh">`), a navigation from our own origin, so that the
//! new `SameSite=Strict` session cookie goes with it.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::oidc::{self, Callback, Finished, InvitationKind};
use embargo_app::{App, AppError};
use serde::Deserialize;

use crate::auth::{self, Team};
use crate::error::WebError;
use crate::extract::{Form, Path, Query};
use crate::render::{self, Layout};

/// The flow cookie's name.
fn flow_cookie_name(app: &App) -> &'static str {
    if app.config.https() { "__Secure-embargo_oidc" } else { "embargo_oidc" }
}

fn flow_cookie(app: &App, value: &str, max_age: i64) -> HeaderValue {
    let secure = if app.config.https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        flow_cookie_name(app)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Sends the browser to the provider with the flow cookie.
fn to_provider(app: &App, started: oidc::Started) -> Response {
    let cookie = flow_cookie(app, &started.browser, oidc::FLOW_MINUTES * 60);
    (
        [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Redirect::to(&started.url),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct StartInput {
    #[serde(default)]
    next: String,
}

/// `POST /login/oidc`: the sign-in button.
pub(crate) async fn start(
    State(app): State<App>,
    auth::ClientAddress(address): auth::ClientAddress,
    Form(input): Form<StartInput>,
) -> Response {
    let next = Some(input.next.trim()).filter(|n| !n.is_empty());
    match oidc::begin_sign_in(&app, next, &address).await {
        Ok(started) => to_provider(&app, started),
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `POST /account/oidc/link`: links an identity at the provider to the signed-in account.
pub(crate) async fn link(State(app): State<App>, who: Team) -> Response {
    match oidc::begin_link(&app, &who.session).await {
        Ok(started) => to_provider(&app, started),
        Err(err) => WebError::from(err).into_response(),
    }
}

/// `POST /invitations/{token}/oidc`: a fix developer accepts through the provider.
pub(crate) async fn accept_fix_invitation(State(app): State<App>, Path(token): Path<String>) -> Response {
    invitation(&app, InvitationKind::Fix, &token).await
}

/// `POST /partner/welcome/{token}/oidc`: a partner contact accepts through the provider.
pub(crate) async fn accept_partner_invitation(State(app): State<App>, Path(token): Path<String>) -> Response {
    invitation(&app, InvitationKind::Partner, &token).await
}

async fn invitation(app: &App, kind: InvitationKind, token: &str) -> Response {
    match oidc::begin_invitation(app, kind, token).await {
        Ok(started) => to_provider(app, started),
        Err(AppError::NotFound(_)) => render::message(
            StatusCode::NOT_FOUND,
            Layout::public(app, "Link not valid", ""),
            "This invitation link is not valid",
            "It was used already, has expired, or was never issued. Ask the security team for a new invitation.",
            None,
        ),
        Err(err) => WebError::from(err).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty() && value.len() <= 128).then(|| value.to_owned())
    })
}

/// A page that goes on to `to` at once (and offers the link, for browsers that do not).
fn go_on(app: &App, to: &str, heading: &str) -> Response {
    let mut layout = Layout::public(app, heading, "");
    layout.refresh_to = Some(to.to_owned());
    render::message(StatusCode::OK, layout, heading, "", Some((to, "Continue")))
}

/// `GET /login/oidc/callback`: where the provider sends the browser back.
pub(crate) async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let browser = cookie(&headers, flow_cookie_name(&app));
    let input = Callback { state: query.state, code: query.code, error: query.error, iss: query.iss };
    let clear = flow_cookie(&app, "", 0);
    let mut response = match oidc::finish(&app, browser.as_deref(), &input, agent).await {
        Ok(Finished::SignedIn { token, needs_totp, next, role, .. }) => {
            let home = if role == embargo_domain::Role::Partner { "/partner" } else { "/inbox" };
            let to = if needs_totp {
                match next.as_deref() {
                    Some(next) if !next.is_empty() => format!("/login/totp?next={}", auth::urlencode(next)),
                    _ => "/login/totp".to_owned(),
                }
            } else {
                auth::after_sign_in_as(role, next.as_deref()).unwrap_or_else(|| home.to_owned())
            };
            let mut response = go_on(&app, &to, "Signed in");
            response.headers_mut().append(header::SET_COOKIE, auth::set_cookie(&app, &token));
            response
        }
        Ok(Finished::Linked) => go_on(&app, "/account?done=oidc-linked", "Identity linked"),
        Err(AppError::Invalid(message) | AppError::Conflict(message)) => {
            let mut chars = message.chars();
            let sentence = chars
                .next()
                .map(|first| format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')))
                .unwrap_or_default();
            render::message(
                StatusCode::FORBIDDEN,
                Layout::public(&app, "Sign-in refused", ""),
                "Sign-in refused",
                &sentence,
                Some(("/login", "Back to sign-in")),
            )
        }
        Err(err) => WebError::from(err).into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

#[derive(Deserialize)]
pub(crate) struct UnlinkInput {
    email: String,
}

/// `POST /admin/users/oidc-unlink`: an admin removes an account's linked identity.
pub(crate) async fn unlink(State(app): State<App>, who: Team, Form(input): Form<UnlinkInput>) -> Response {
    match oidc::unlink(&app, &who.actor, &input.email).await {
        Ok(_) => Redirect::to("/admin?done=oidc-unlinked").into_response(),
        Err(err) => WebError::from(err).into_response(),
    }
}
