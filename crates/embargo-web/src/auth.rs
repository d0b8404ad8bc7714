//! Who is asking: the session cookie for the team app, bearer tokens for the API, and the
//! client's network address for throttling.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use embargo_app::sessions::{self, Session, SessionStage};
use embargo_app::{App, AppError};
use embargo_domain::Actor;

use crate::error::WebError;

/// The cookie's name: with the `__Host-` prefix behind HTTPS (bound to this host, secure
/// and path `/`), plain otherwise.
pub fn cookie_name(app: &App) -> &'static str {
    if app.config.https() { "__Host-embargo_session" } else { "embargo_session" }
}

/// A `Set-Cookie` value for a session token.
pub fn set_cookie(app: &App, token: &str) -> HeaderValue {
    let secure = if app.config.https() { "; Secure" } else { "" };
    let max_age = u64::from(app.config.web.session_idle_hours.max(1)) * 3600;
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(app)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie(app: &App) -> HeaderValue {
    let secure = if app.config.https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}", cookie_name(app)))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The device cookie's name: a browser that signed in to an account before is not held to
/// the account-wide sign-in limit (see `embargo_app::sessions`). Sent only to `/login...`.
pub fn device_cookie_name(app: &App) -> &'static str {
    if app.config.https() { "__Secure-embargo_device" } else { "embargo_device" }
}

/// A `Set-Cookie` value for a device cookie.
pub fn set_device_cookie(app: &App, value: &str) -> HeaderValue {
    let secure = if app.config.https() { "; Secure" } else { "" };
    let max_age = embargo_app::sessions::DEVICE_DAYS * 24 * 3600;
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        device_cookie_name(app)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The device cookie's value, if sent.
pub fn device_token(app: &App, headers: &HeaderMap) -> Option<String> {
    cookie(headers, device_cookie_name(app))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty() && value.len() <= 128).then(|| value.to_owned())
    })
}

/// The session cookie's value, if sent.
pub fn session_token(app: &App, headers: &HeaderMap) -> Option<String> {
    cookie(headers, cookie_name(app))
}

/// The client's address, for throttling and the audit trail: the connection's, or, when
/// the connection comes from a trusted proxy (`web.trusted_proxies`), the nearest address
/// in `X-Forwarded-For` that is not itself a trusted proxy (read from the right: what the
/// client wrote on the left is not believed). IPv6 clients are grouped by /64, since one
/// host usually holds a whole /64.
pub fn client_address(app: &App, parts: &Parts) -> String {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = peer.map(|peer| forwarded_client(peer, &parts.headers, &app.config.web.trusted_proxies));
    match client {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or_else(String::new, |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// The client behind `peer` by `X-Forwarded-For`, trusting only `proxies`.
fn forwarded_client(peer: std::net::IpAddr, headers: &HeaderMap, proxies: &[String]) -> std::net::IpAddr {
    use embargo_app::config::in_ranges;
    if !in_ranges(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) if in_ranges(ip, proxies) => client = ip,
            Ok(ip) => return ip,
            // Garbage: stop at the last address we could believe.
            Err(_) => return client,
        }
    }
    client
}

/// Whether an actor is a fix developer (their pages are the fixes they were given).
pub(crate) fn is_fix_developer(actor: &Actor) -> bool {
    matches!(actor, Actor::User { role: embargo_domain::Role::FixDeveloper, .. })
}

/// Whether an actor is a partner contact (their pages are the partner portal's).
pub(crate) fn is_partner(actor: &Actor) -> bool {
    matches!(actor, Actor::User { role: embargo_domain::Role::Partner, .. })
}

/// Where an account lands after signing in: partner contacts on the portal, everyone else
/// on the inbox (which sends fix developers on to their fixes).
pub fn home(session: &Session) -> &'static str {
    if session.record.user.role == embargo_domain::Role::Partner { "/partner" } else { "/inbox" }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
pub(crate) fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where an unsigned-in request goes: the sign-in page, told to come back to a page that was
/// asked for (a `GET`; any other method goes back to the start page).
fn to_sign_in(parts: &Parts) -> Response {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if parts.method == axum::http::Method::GET && path != "/" && safe_path(path) {
        Redirect::to(&format!("/login?next={}", urlencode(path))).into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// A local path to go to after signing in: absolute, on this site (not `//host` or
/// `/\host`), one line, not too long.
fn safe_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 2000
        && !path.chars().any(|c| c.is_control() || c == '\\')
}

/// After signing in: the page that was asked for, when it is a local path this account's
/// pages hold (a partner's under `/partner`, nobody else's there), else the start page.
pub fn after_sign_in(session: &Session, next: Option<&str>) -> String {
    let home = home(session);
    match next.map(str::trim).filter(|n| safe_path(n) && !n.starts_with("/login")) {
        Some(next) if (home == "/partner") == (next == "/partner" || next.starts_with("/partner/")) => next.to_owned(),
        _ => home.to_owned(),
    }
}

/// After signing in as an account of `role` (when there is no session object yet): the
/// page that was asked for when it is one of this account's, else `None` (its start page).
pub fn after_sign_in_as(role: embargo_domain::Role, next: Option<&str>) -> Option<String> {
    let partner = role == embargo_domain::Role::Partner;
    next.map(str::trim)
        .filter(|n| safe_path(n) && !n.starts_with("/login"))
        .filter(|n| partner == (*n == "/partner" || n.starts_with("/partner/")))
        .map(str::to_owned)
}

/// A fully signed-in team member. A partner contact is not one: every team route answers
/// them the same 404 as a path that does not exist.
#[derive(Debug, Clone)]
pub struct Team {
    /// The session.
    pub session: Session,
    /// The actor it stands for.
    pub actor: Actor,
}

impl FromRequestParts<App> for Team {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(app, &parts.headers) else {
            return Err(to_sign_in(parts));
        };
        // Every team page shows dates and deadlines in the business calendar's time zone:
        // its version is read with the session, and the calendar again if it changed.
        match sessions::team_session(app, &token).await {
            Ok(Some(session)) => match session.actor() {
                Some(actor) if is_partner(&actor) => Err(WebError::nothing_here().into_response()),
                // An account an admin requires to use a passkey, signed in without one yet:
                // the account page (where it registers one) and nothing else.
                Some(_) if session.must_register_passkey() && !parts.uri.path().starts_with("/account") => {
                    Err(Redirect::to("/account?done=passkey-required").into_response())
                }
                Some(actor) => Ok(Team { actor, session }),
                None => Err(Redirect::to("/login/totp").into_response()),
            },
            Ok(None) => Err(([(header::SET_COOKIE, clear_cookie(app))], Redirect::to("/login")).into_response()),
            Err(err) => Err(WebError::from(err).into_response()),
        }
    }
}

/// A fully signed-in partner contact (the partner portal). Any other account gets the same
/// 404 as a path that does not exist: the portal is not theirs.
#[derive(Debug, Clone)]
pub struct PartnerContact {
    /// The session.
    pub session: Session,
    /// The actor it stands for (a partner account).
    pub actor: Actor,
}

impl FromRequestParts<App> for PartnerContact {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(app, &parts.headers) else {
            return Err(to_sign_in(parts));
        };
        match sessions::session(app, &token).await {
            Ok(Some(session)) => match session.actor() {
                Some(actor) if is_partner(&actor) => Ok(PartnerContact { actor, session }),
                Some(_) => Err(WebError::nothing_here().into_response()),
                None => Err(Redirect::to("/login/totp").into_response()),
            },
            Ok(None) => Err(([(header::SET_COOKIE, clear_cookie(app))], Redirect::to("/login")).into_response()),
            Err(err) => Err(WebError::from(err).into_response()),
        }
    }
}

/// A session in any stage (for the second-factor page).
#[derive(Debug, Clone)]
pub struct AnySession {
    /// The session.
    pub session: Session,
    /// The client's address.
    pub address: String,
    /// The device cookie, if the browser sent one.
    pub device: Option<String>,
}

impl FromRequestParts<App> for AnySession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = session_token(app, &parts.headers).ok_or_else(|| Redirect::to("/login").into_response())?;
        match sessions::session(app, &token).await {
            Ok(Some(session)) => Ok(AnySession {
                session,
                address: client_address(app, parts),
                device: device_token(app, &parts.headers),
            }),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(err) => Err(WebError::from(err).into_response()),
        }
    }
}

impl AnySession {
    /// Whether the second factor is still needed.
    pub fn pending(&self) -> bool {
        self.session.record.stage == SessionStage::Password
    }
}

/// An API caller authenticated by `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Actor);

impl FromRequestParts<App> for ApiCaller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let unauthorised = || WebError::Unauthorized;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.len() <= 128)
            .ok_or_else(unauthorised)?;
        match embargo_app::accounts::authenticate_token(app, token).await {
            Ok(Some(actor)) => Ok(ApiCaller(actor)),
            Ok(None) => Err(unauthorised()),
            Err(err) => Err(err.into()),
        }
    }
}

/// Maps an error from a sign-in step for the page.
pub fn sign_in_message(err: &AppError) -> Option<String> {
    match err {
        AppError::Invalid(m) | AppError::TooMany(m) | AppError::Throttled { message: m, .. } => {
            // Use-case messages are sentence fragments; the page shows a sentence.
            let mut chars = m.chars();
            chars.next().map(|first| format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')))
        }
        _ => None,
    }
}

/// The client's network address (from the connection), or `unknown`.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<App> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(app, parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_trusted_proxies_are_believed_and_only_from_the_right() {
        let proxies = vec!["127.0.0.1".to_owned(), "10.0.0.0/8".to_owned()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // Straight from the internet: headers are not believed.
        assert_eq!(forwarded_client(ip("198.51.100.7"), &forwarded(&["203.0.113.9"]), &proxies), ip("198.51.100.7"));
        // Through the proxy: the client it names.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &forwarded(&["203.0.113.9"]), &proxies), ip("203.0.113.9"));
        // A client that forges the header: the proxy appended the real address on the right.
        let forged = forwarded(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(forwarded_client(ip("127.0.0.1"), &forged, &proxies), ip("203.0.113.9"));
        // Two trusted hops (10.x then loopback), over two header lines.
        let chain = forwarded(&["203.0.113.9", "10.1.2.3"]);
        assert_eq!(forwarded_client(ip("127.0.0.1"), &chain, &proxies), ip("203.0.113.9"));
        // Garbage stops at the last address believed; no header: the proxy itself.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &forwarded(&["<script>, 10.1.2.3"]), &proxies), ip("10.1.2.3"));
        assert_eq!(forwarded_client(ip("127.0.0.1"), &HeaderMap::new(), &proxies), ip("127.0.0.1"));
        // None configured: nothing is believed.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &forwarded(&["203.0.113.9"]), &[]), ip("127.0.0.1"));
        assert!(embargo_app::config::in_ranges(ip("2001:db8::1"), &["2001:db8::/32".to_owned()]));
    }
}
