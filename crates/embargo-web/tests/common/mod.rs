//! The harness shared by the router tests: an app on a test database with a manual clock,
//! requests through the real router, and sign-in with TOTP.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod driver;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use embargo_app::config::Config;
use embargo_app::{App, accounts, sessions};
use embargo_domain::{Actor, Role};
pub use embargo_test_support::ManualClock;
use embargo_test_support::{TestApp, TestDb};
use tower::ServiceExt;

pub struct Web {
    pub app: App,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    test_app: TestApp,
}

pub async fn web(db: &TestDb) -> Web {
    web_with(db, |_| {}).await
}

/// [`web`] with configuration changes on top of the test defaults: prefix `WEB`, Wednesday
/// 2026-03-04 12:00 UTC, the cheapest proof of work on the report form.
pub async fn web_with(db: &TestDb, change: impl FnOnce(&mut Config)) -> Web {
    let test_app = TestApp::on(db)
        .prefix("WEB")
        .starting("2026-03-04T12:00:00Z")
        .open_with(|config| {
            config.web.proof_of_work_bits = 8;
            change(config);
        })
        .await;
    let router = embargo_web::router(test_app.app.clone());
    Web { app: test_app.app.clone(), router, clock: test_app.clock.clone(), config: test_app.config.clone(), test_app }
}

impl Web {
    /// A second instance on the same database (another server behind the load balancer).
    pub async fn sibling(&self) -> Router {
        embargo_web::router(self.test_app.sibling().await)
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn cookie(&self) -> Option<String> {
        let value = self.headers.get(header::SET_COOKIE)?.to_str().ok()?;
        let pair = value.split(';').next()?;
        (!pair.ends_with('=')).then(|| pair.to_owned())
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024).await.unwrap();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "embargo.test");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

/// A same-origin form post, as a browser sends it.
pub fn post(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let body = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    let mut request = Request::post(path)
        .header(header::HOST, "embargo.test")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(body)).unwrap()
}

pub fn encode(text: &str) -> String {
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

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn create_user(web: &Web, email: &str, role: Role) {
    let admin = Actor::LocalAdmin { os_user: "test".into() };
    accounts::create_user(&web.app, &admin, email, role, Some(PASSWORD)).await.unwrap();
}

/// Signs in with password and TOTP (setting TOTP up on first use); returns the cookie.
pub async fn sign_in(web: &Web, router: &Router, email: &str) -> String {
    let reply = send(router, post("/login", None, &[("email", email), ("password", PASSWORD)])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/login/totp");
    let partial = reply.cookie().expect("a session cookie");
    // Half signed in: the team app is not reachable yet.
    let inbox = send(router, get("/inbox", Some(&partial))).await;
    assert_eq!(inbox.location(), "/login/totp");
    let page = send(router, get("/login/totp", Some(&partial))).await;
    let (secret, enrolling) = match between(&page.body, "id=\"totp-secret\" class=\"secret\">", "<") {
        Some(secret) => (secret.to_owned(), true),
        None => (totp_secret(web, email).await, false),
    };
    let code = sessions::totp_code(&secret, web.app.now()).unwrap();
    let reply = send(router, post("/login/totp", Some(&partial), &[("code", &code)])).await;
    if enrolling {
        SECRETS.with(|s| s.borrow_mut().push((email.to_owned(), secret.clone())));
        recovery_codes_shown(email, &reply);
    } else {
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{}",
            between(&reply.body, "role=\"alert\">", "<").unwrap_or("")
        );
        assert_eq!(reply.location(), "/inbox");
    }
    let full = reply.cookie().expect("a new session cookie");
    assert_ne!(full, partial, "the session token is replaced after the second factor");
    // The next code step, so that a later sign-in of the same account is not a replay.
    web.clock.advance_secs(30);
    full
}

pub async fn totp_secret(web: &Web, email: &str) -> String {
    SECRETS.with(|s| s.borrow().iter().rev().find(|(e, _)| e == email).map(|(_, s)| s.clone())).unwrap_or_else(|| {
        panic!("no TOTP secret recorded for {email} ({})", web.app.backend_name());
    })
}

thread_local! {
    static SECRETS: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    static RECOVERY: std::cell::RefCell<Vec<(String, Vec<String>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks the page that ends a TOTP set-up: the account's recovery codes, shown once and
/// not cached, with a way on to the inbox; remembers the codes for the test.
fn recovery_codes_shown(email: &str, reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", between(&reply.body, "role=\"alert\">", "<").unwrap_or(""));
    assert_eq!(reply.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    let list = between(&reply.body, "id=\"recovery-codes\"", "</ol>").expect("the recovery codes");
    let codes: Vec<String> =
        list.split("<code>").skip(1).filter_map(|c| c.split("</code>").next()).map(str::to_owned).collect();
    assert_eq!(codes.len(), accounts::RECOVERY_CODES, "{list}");
    // On to the start page: the inbox, or the portal for a partner contact.
    assert!(reply.body.contains("href=\"/inbox\"") || reply.body.contains("href=\"/partner\""));
    RECOVERY.with(|r| r.borrow_mut().push((email.to_owned(), codes)));
}

/// The recovery codes shown at the latest set-up of `email`.
pub fn recovery_codes(email: &str) -> Vec<String> {
    RECOVERY.with(|r| r.borrow().iter().rev().find(|(e, _)| e == email).map(|(_, c)| c.clone())).unwrap_or_default()
}

/// The first sign-in shows the secret; later ones need it again from the test's memory
/// (the latest entry: each backend's run enrols again).
pub async fn first_sign_in(web: &Web, email: &str) -> String {
    let router = &web.router;
    let reply = send(router, post("/login", None, &[("email", email), ("password", PASSWORD)])).await;
    let partial = reply.cookie().unwrap();
    let page = send(router, get("/login/totp", Some(&partial))).await;
    let secret = between(&page.body, "id=\"totp-secret\" class=\"secret\">", "<").expect("enrolment shows the secret");
    SECRETS.with(|s| s.borrow_mut().push((email.to_owned(), secret.to_owned())));
    let code = sessions::totp_code(secret, web.app.now()).unwrap();
    let reply = send(router, post("/login/totp", Some(&partial), &[("code", &code)])).await;
    recovery_codes_shown(email, &reply);
    web.clock.advance_secs(30);
    reply.cookie().unwrap()
}
