//! The web app through its router, on SQLite and PostgreSQL: who gets what on every route
//! (the need-to-know matrix), sign-in with TOTP and its throttling, sessions, CSRF refusal,
//! the reporter form and status page, reporter notices, attachments, and the JSON API.
//!
//! Requests go through `tower::ServiceExt::oneshot` on the real router with every layer;
//! the browser tests (in the `embargo` crate) drive the same pages in Chromium.

mod common;
// One test binary for the crate (`autotests = false`): the other files are its modules.
#[path = "dashboard.rs"]
mod dashboard;
#[path = "web/errors.rs"]
mod errors;
#[path = "web/evaluation.rs"]
mod evaluation;
#[path = "web/forms.rs"]
mod forms;
#[path = "web/layering.rs"]
mod layering;
#[path = "web/offboarding.rs"]
mod offboarding;
#[path = "web/partners.rs"]
mod partners;
#[path = "web/passkeys.rs"]
mod passkeys;
#[path = "web/passkeys_browser.rs"]
mod passkeys_browser;
#[path = "public_advisories.rs"]
mod public_advisories;
#[path = "web/report_page.rs"]
mod report_page;
#[path = "web/report_page_browser.rs"]
mod report_page_browser;
#[path = "web/runbook.rs"]
mod runbook;
#[path = "web/runbook_browser.rs"]
mod runbook_browser;
#[path = "web/security.rs"]
mod security;
#[path = "web/sso.rs"]
mod sso;
#[path = "web/triage.rs"]
mod triage;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use embargo_app::config::Config;
use embargo_app::reports::{self, Channel, Submission, Upload};
use embargo_app::{App, accounts, audit, sessions};
use embargo_domain::{Actor, ReferenceId, Role};
use embargo_test_support::{TestDb, both_backends};

fn multipart(path: &str, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Request<Body> {
    let boundary = "----embargo-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (filename, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::post(path)
        .header(header::HOST, "embargo.test")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap()
}

fn api(method: &str, path: &str, token: Option<&str>, json: Option<serde_json::Value>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path).header(header::HOST, "embargo.test");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match json {
        Some(json) => {
            request.header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string())).unwrap()
        }
        None => request.body(Body::empty()).unwrap(),
    }
}

fn submission(email: &str, title: &str, body: &str) -> Submission {
    Submission {
        reporter_name: Some("Reporter".into()),
        attachments: vec![Upload {
            filename: "../../etc/passwd<script>.sh".into(),
            media_type: "text/html".into(),
            data: b"<script>alert('file')</script>".to_vec(),
        }],
        ..Submission::new(Channel::Email, email, title, body)
    }
}

struct World {
    web: Web,
    r1: ReferenceId,
    r2: ReferenceId,
    link1: String,
    link2: String,
    attachment1: i64,
    admin: String,
    on: String,
    off: String,
    admin_token: String,
    on_token: String,
    off_token: String,
}

async fn world(db: &TestDb) -> World {
    let web = web(db).await;
    let system = Actor::System("test");
    let a = reports::submit(
        &web.app,
        &system,
        submission("alice@example.net", "Alpha overflow in parser", "alpha secret body"),
    )
    .await
    .unwrap();
    let b =
        reports::submit(&web.app, &system, submission("bob@example.net", "Bravo bypass in login", "bravo secret body"))
            .await
            .unwrap();
    // Search is eventually consistent: the reports are found once their index jobs ran.
    let worker = embargo_app::jobs::Worker::new(web.app.clone());
    while worker.run_once().await.unwrap() {}
    create_user(&web, "admin@team.test", Role::Admin).await;
    create_user(&web, "on@team.test", Role::Responder).await;
    create_user(&web, "off@team.test", Role::Responder).await;
    let local = Actor::LocalAdmin { os_user: "test".into() };
    reports::assign(&web.app, &local, &a.reference, Some("on@team.test")).await.unwrap();
    let detail = reports::show(&web.app, &local, &a.reference, reports::ReadPurpose::Read).await.unwrap();
    let attachment1 = detail.attachments[0].id;
    let admin = first_sign_in(&web, "admin@team.test").await;
    let on = first_sign_in(&web, "on@team.test").await;
    let off = first_sign_in(&web, "off@team.test").await;
    let admin_token = accounts::create_token(&web.app, &local, "admin@team.test", "t").await.unwrap();
    let on_token = accounts::create_token(&web.app, &local, "on@team.test", "t").await.unwrap();
    let off_token = accounts::create_token(&web.app, &local, "off@team.test", "t").await.unwrap();
    World {
        web,
        r1: a.reference,
        r2: b.reference,
        link1: a.status_token,
        link2: b.status_token,
        attachment1,
        admin,
        on,
        off,
        admin_token,
        on_token,
        off_token,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    ReporterA,
    ReporterB,
    ResponderOn,
    ResponderOff,
    Admin,
}

const EVERYONE: [Who; 6] =
    [Who::Anonymous, Who::ReporterA, Who::ReporterB, Who::ResponderOn, Who::ResponderOff, Who::Admin];

impl World {
    fn cookie(&self, who: Who) -> Option<&str> {
        match who {
            Who::ResponderOn => Some(&self.on),
            Who::ResponderOff => Some(&self.off),
            Who::Admin => Some(&self.admin),
            _ => None,
        }
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::ResponderOn => Some(&self.on_token),
            Who::ResponderOff => Some(&self.off_token),
            Who::Admin => Some(&self.admin_token),
            _ => None,
        }
    }

    /// The status link a role holds; others try a well-formed link of their own making.
    fn link(&self, who: Who) -> String {
        match who {
            Who::ReporterA => self.link1.clone(),
            Who::ReporterB => self.link2.clone(),
            _ => "ab".repeat(32),
        }
    }
}

/// What a role gets on a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gets {
    /// 200 with the report's content.
    Content,
    /// Sent to the sign-in page.
    Login,
    /// 404, revealing nothing.
    NotFound,
    /// 403.
    Forbidden,
    /// 401 (API).
    Unauthorized,
}

fn check(route: &str, who: Who, reply: &Reply, expected: Gets, secret: &str) {
    let what = format!("{route} as {who:?}: got {} {}", reply.status, reply.location());
    match expected {
        Gets::Content => {
            assert_eq!(reply.status, StatusCode::OK, "{what}");
            assert!(reply.body.contains(secret), "{what}: the content is missing");
        }
        Gets::Login => {
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{what}");
            // To sign in, and (for a page) back to it after.
            let location = reply.location();
            assert!(location == "/login" || location.starts_with("/login?next=%2F"), "{what}");
        }
        Gets::NotFound => assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}"),
        Gets::Forbidden => assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}"),
        Gets::Unauthorized => assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}"),
    }
    if expected != Gets::Content {
        for leak in ["Alpha overflow", "alpha secret", "Bravo bypass", "bravo secret"] {
            assert!(!reply.body.contains(leak), "{what}: leaks {leak:?}");
        }
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        use Gets::*;
        use Who::*;
        for who in EVERYONE {
            let cookie = w.cookie(who);
            // Team pages.
            let expect = |on: Gets, off: Gets| match who {
                Anonymous | ReporterA | ReporterB => Login,
                ResponderOn => on,
                ResponderOff => off,
                Admin => Content,
            };
            let reply = send(router, get("/inbox", cookie)).await;
            match who {
                Anonymous | ReporterA | ReporterB => check("/inbox", who, &reply, Login, ""),
                ResponderOff => {
                    assert_eq!(reply.status, StatusCode::OK);
                    assert!(!reply.body.contains("Alpha overflow") && !reply.body.contains("Bravo bypass"), "{who:?}");
                }
                ResponderOn => {
                    check("/inbox", who, &reply, Content, "Alpha overflow");
                    assert!(!reply.body.contains("Bravo bypass"), "the responder sees only their report");
                }
                Admin => {
                    check("/inbox", who, &reply, Content, "Alpha overflow");
                    assert!(reply.body.contains("Bravo bypass"));
                }
            }
            let path = format!("/reports/{r1}");
            check(&path, who, &send(router, get(&path, cookie)).await, expect(Content, NotFound), "alpha secret body");
            let path = format!("/reports/{r1}/attachments/{}", w.attachment1);
            let reply = send(router, get(&path, cookie)).await;
            check(&path, who, &reply, expect(Content, NotFound), "alert('file')");
            // A reference that does not exist looks the same as one the responder may not see.
            let path = format!("/reports/{}-2026-999", "WEB");
            let reply = send(router, get(&path, cookie)).await;
            if cookie.is_some() {
                check(&path, who, &reply, NotFound, "");
            }
            let reply = send(router, get("/admin", cookie)).await;
            check("/admin", who, &reply, expect(Forbidden, Forbidden), "on@team.test");
            let reply = send(router, get("/account", cookie)).await;
            if cookie.is_some() {
                assert_eq!(reply.status, StatusCode::OK);
            } else {
                check("/account", who, &reply, Login, "");
            }
            // State changes on report 1.
            let path = format!("/reports/{r1}/note");
            let reply = send(router, post(&path, cookie, &[("body", "matrix note")])).await;
            match expect(Content, NotFound) {
                Content => assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path} as {who:?}"),
                other => check(&path, who, &reply, other, ""),
            }
            let reply = send(router, get("/admin/calendar", cookie)).await;
            check("/admin/calendar", who, &reply, expect(Forbidden, Forbidden), "Business calendar");
            let path = format!("/reports/{r1}/cvss");
            let reply = send(router, post(&path, cookie, &[("version", "3.1"), ("clear", "1")])).await;
            match expect(Content, NotFound) {
                Content => assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path} as {who:?}"),
                other => check(&path, who, &reply, other, ""),
            }
            // Each admin resource has its own permission (accounts, calendar, catalogue).
            for (path, form) in [
                (
                    "/admin/users",
                    vec![("email", "new@team.test"), ("role", "responder"), ("password", "a long passphrase")],
                ),
                ("/admin/calendar/holidays", vec![("day", "2026-12-24"), ("name", "Eve")]),
                ("/admin/users/passkey", vec![("email", "on@team.test"), ("required", "no")]),
            ] {
                let reply = send(router, post(path, cookie, &form)).await;
                match expect(Forbidden, Forbidden) {
                    Content => assert!(reply.status.is_redirection() || reply.status.is_success(), "{path} as {who:?}"),
                    other => check(path, who, &reply, other, ""),
                }
            }
            // Advisories: every responder may open the list (narrowed to what they may see).
            let reply = send(router, get("/team/advisories", cookie)).await;
            match expect(Content, Content) {
                Content => assert_eq!(reply.status, StatusCode::OK, "/team/advisories as {who:?}"),
                other => check("/team/advisories", who, &reply, other, ""),
            }
            let path = "/admin/products";
            let reply = send(router, post(path, cookie, &[("name", &format!("Product of {who:?}"))])).await;
            match expect(Forbidden, Forbidden) {
                Content => assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path} as {who:?}"),
                other => check(path, who, &reply, other, ""),
            }
            // The reporter's status page: each link shows its own report only.
            let path = format!("/status/{}", w.link(who));
            let reply = send(router, get(&path, None)).await;
            match who {
                ReporterA => check("status", who, &reply, Content, "Alpha overflow"),
                ReporterB => check("status", who, &reply, Content, "Bravo bypass"),
                _ => check("status", who, &reply, NotFound, ""),
            }
            if matches!(who, ReporterA | ReporterB) {
                assert!(!reply.body.contains("matrix note"), "internal notes never reach the reporter");
            }
            // The API: bearer tokens, same permissions.
            let token = w.token(who);
            let reply = send(router, api("GET", "/api/v1/reports", token, None)).await;
            match who {
                Anonymous | ReporterA | ReporterB => check("api list", who, &reply, Unauthorized, ""),
                ResponderOff => {
                    assert_eq!(reply.status, StatusCode::OK);
                    assert!(reply.body.contains("\"total\":0"), "{}", reply.body);
                }
                ResponderOn => assert!(reply.body.contains("Alpha overflow") && !reply.body.contains("Bravo")),
                Admin => assert!(reply.body.contains("Alpha overflow") && reply.body.contains("Bravo bypass")),
            }
            let path = format!("/api/v1/reports/{r1}");
            let reply = send(router, api("GET", &path, token, None)).await;
            let expected = match who {
                Anonymous | ReporterA | ReporterB => Unauthorized,
                ResponderOff => NotFound,
                _ => Content,
            };
            check(&path, who, &reply, expected, "alpha secret body");
            let path = format!("/api/v1/reports/{r1}/notes");
            let reply = send(router, api("POST", &path, token, Some(serde_json::json!({"body": "api note"})))).await;
            match expected {
                Content => assert_eq!(reply.status, StatusCode::CREATED, "{path} as {who:?}"),
                other => check(&path, who, &reply, other, ""),
            }
        }
        // Every read of report content was audited, with who read it.
        let entries = audit::list(&w.web.app, &Actor::System("test"), 0, 100_000).await.unwrap();
        let reads: Vec<_> =
            entries.iter().filter(|e| e.action == "report.read" || e.action == "report.export").collect();
        for actor in ["user:1", "user:2"] {
            assert!(reads.iter().any(|e| e.actor.starts_with(actor) && e.subject == format!("report:{r1}")), "{actor}");
        }
        assert!(reads.iter().any(|e| e.actor == "reporter" && e.details == "via=status-link"));
        assert!(entries.iter().any(|e| e.action == "report.attachment.read"));
    }
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    for db in both_backends() {
        let w = world(&db).await;
        let path = format!("/reports/{}/note", w.r1);
        for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
            let request = Request::post(&path)
                .header(header::HOST, "embargo.test")
                .header(header::COOKIE, &w.admin)
                .header(name, value)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("body=forged"))
                .unwrap();
            let reply = send(&w.web.router, request).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}: {value}");
        }
        let page = send(&w.web.router, get(&format!("/reports/{}", w.r1), Some(&w.admin))).await;
        assert!(!page.body.contains("forged"), "the forged note was not added");
        // The same post from the page itself works.
        let reply = send(&w.web.router, post(&path, Some(&w.admin), &[("body", "genuine")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn sessions_are_listed_and_revocable_and_sign_out_ends_them() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let second = sign_in(&w.web, router, "admin@team.test").await;
        let account = send(router, get("/account", Some(&w.admin))).await;
        let ids: Vec<&str> =
            account.body.split("/account/sessions/").skip(1).map(|s| s.split('/').next().unwrap()).collect();
        assert_eq!(ids.len(), 2, "both sessions are listed");
        // Revoke the other session from this one.
        let current = between(&account.body, "this browser", "/revoke").is_some();
        assert!(current);
        let other = send(router, get("/account", Some(&second))).await;
        let second_id = between(&other.body, "this browser</span></td>", "/revoke\"")
            .and_then(|s| s.rsplit("/account/sessions/").next())
            .unwrap()
            .to_owned();
        let reply = send(router, post(&format!("/account/sessions/{second_id}/revoke"), Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(
            send(router, get("/inbox", Some(&second))).await.location(),
            "/login",
            "the revoked session is dead"
        );
        assert_eq!(send(router, get("/inbox", Some(&w.admin))).await.status, StatusCode::OK);
        // A responder cannot revoke someone else's session.
        let reply = send(router, post(&format!("/account/sessions/{second_id}/revoke"), Some(&w.on), &[])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        // Signing out ends the session.
        let reply = send(router, post("/logout", Some(&w.admin), &[])).await;
        assert_eq!(reply.location(), "/login");
        assert_eq!(send(router, get("/inbox", Some(&w.admin))).await.location(), "/login");
    }
}

#[tokio::test]
async fn sign_in_needs_totp_throttles_guessing_across_instances_and_refuses_replayed_codes() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        // A wrong password, then a wrong code.
        let reply =
            send(router, post("/login", None, &[("email", "on@team.test"), ("password", "wrong password!")])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.cookie().is_none());
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let partial = reply.cookie().unwrap();
        let reply = send(router, post("/login/totp", Some(&partial), &[("code", "000000")])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        // The right code works once; the same code again (same step) is refused.
        let secret = totp_secret(&w.web, "on@team.test").await;
        let code = sessions::totp_code(&secret, w.web.app.now()).unwrap();
        let reply = send(router, post("/login/totp", Some(&partial), &[("code", &code)])).await;
        assert_eq!(reply.location(), "/inbox");
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let again = reply.cookie().unwrap();
        let reply = send(router, post("/login/totp", Some(&again), &[("code", &code)])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a replayed code is refused");
        // Guessing: after the limit, even the right password is refused, on every instance.
        w.web.clock.advance_secs(20 * 60);
        for _ in 0..5 {
            let reply =
                send(router, post("/login", None, &[("email", "off@team.test"), ("password", "guess guess guess")]))
                    .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
        let sibling = w.web.sibling().await;
        for r in [router, &sibling] {
            let reply = send(r, post("/login", None, &[("email", "off@team.test"), ("password", PASSWORD)])).await;
            assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.body);
            assert!(reply.cookie().is_none());
        }
        // The window passes.
        w.web.clock.advance_secs(16 * 60);
        let reply = send(&sibling, post("/login", None, &[("email", "off@team.test"), ("password", PASSWORD)])).await;
        assert_eq!(reply.location(), "/login/totp");
        // Cookies are HttpOnly and SameSite=Strict.
        let set = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    }
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_attachments_are_only_downloads() {
    let db = embargo_test_support::sqlite();
    let w = world(&db).await;
    for path in ["/", "/report", "/login", &format!("/reports/{}", w.r1)] {
        let reply = send(&w.web.router, get(path, Some(&w.admin))).await;
        let h = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(h("content-security-policy").contains("default-src 'none'"), "{path}");
        assert!(h("content-security-policy").contains("script-src 'self'"), "{path}");
        assert!(!h("content-security-policy").contains("unsafe-inline"), "{path}");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("referrer-policy"), "no-referrer");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert!(reply.headers.get("strict-transport-security").is_none(), "no HSTS without TLS");
        assert!(!reply.body.contains("<script>"), "{path} has no inline script");
        assert!(!reply.body.contains("style=\""), "{path} has no inline style");
    }
    let reply =
        send(&w.web.router, get(&format!("/reports/{}/attachments/{}", w.r1, w.attachment1), Some(&w.admin))).await;
    let h = |name: &str| reply.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("content-type"), "application/octet-stream");
    assert_eq!(
        h("content-disposition"),
        "attachment; filename=\"passwd_script_.sh\"; filename*=UTF-8''passwd_script_.sh"
    );
    assert!(h("content-security-policy").starts_with("sandbox"));
    // The report page shows hostile names as text.
    let page = send(&w.web.router, get(&format!("/reports/{}", w.r1), Some(&w.admin))).await;
    assert!(page.body.contains("../../etc/passwd&#60;script&#62;.sh"), "the name is escaped");

    // Behind HTTPS: HSTS and a __Host- cookie with Secure.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.public_url = "https://security.example.org".into();
    let (app, _) = App::open(config).await.unwrap();
    let router = embargo_web::router(app.clone());
    accounts::create_user(&app, &Actor::LocalAdmin { os_user: "t".into() }, "a@team.test", Role::Admin, Some(PASSWORD))
        .await
        .unwrap();
    let reply = send(&router, post("/login", None, &[("email", "a@team.test"), ("password", PASSWORD)])).await;
    let set = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.starts_with("__Host-embargo_session=") && set.contains("; Secure"), "{set}");
    assert!(reply.headers.get("strict-transport-security").is_some());
}

async fn form_fields(router: &Router) -> (String, String) {
    let page = send(router, get("/report", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    let challenge = between(&page.body, "name=\"challenge\" value=\"", "\"").unwrap().to_owned();
    let nonce = (0u64..).find(|n| embargo_app::portal::proof_of_work_valid(&challenge, &n.to_string(), 8)).unwrap();
    (challenge, nonce.to_string())
}

#[tokio::test]
async fn the_report_form_keeps_input_on_errors_resists_spam_and_confirms_with_the_status_link() {
    for db in both_backends() {
        let w = web(&db).await;
        let router = &w.router;
        // Field errors keep the input, escaped.
        let (challenge, nonce) = form_fields(router).await;
        let reply = send(
            router,
            multipart(
                "/report",
                &[("challenge", &challenge), ("nonce", &nonce), ("title", "<b>kept</b>"), ("email", "not-an-address")],
                &[],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("value=\"&#60;b&#62;kept&#60;/b&#62;\""), "the title is kept");
        assert!(reply.body.contains("id=\"description-error\""), "the missing description is marked");
        assert!(reply.body.contains("This does not look like an e-mail address."));
        // Without a proof of work, the form asks for a short wait, then accepts the same input.
        let (challenge, _) = form_fields(router).await;
        let fields = [
            ("challenge", challenge.as_str()),
            ("title", "Heap overflow in the decoder"),
            ("description", "A crafted file overflows a buffer."),
            ("steps", "1. open poc.bin"),
            ("email", "carol@example.net"),
            ("name", "Carol"),
            ("credit", "name"),
            ("ai_used", "assisted"),
        ];
        let reply = send(router, multipart("/report", &fields, &[("poc.bin", b"\x00\x01payload")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reply.body.contains("please wait 8 more seconds"),
            "{}",
            between(&reply.body, "role=\"alert\">", "</div>").unwrap_or("")
        );
        w.clock.advance_secs(8);
        let reply = send(router, multipart("/report", &fields, &[("poc.bin", b"\x00\x01payload")])).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let reference = between(&reply.body, "id=\"reference\">", "<").unwrap().to_owned();
        let link = between(&reply.body, "id=\"status-link\" href=\"", "\"").unwrap().to_owned();
        // A challenge works once.
        let again = send(router, multipart("/report", &fields, &[])).await;
        assert!(again.body.contains("This form was sent already"));
        // The report is stored with its fields, attachment and acknowledgement job.
        let local = Actor::LocalAdmin { os_user: "t".into() };
        let detail =
            reports::show(&w.app, &local, &reference.parse().unwrap(), reports::ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.title, "Heap overflow in the decoder");
        assert!(detail.report.body.contains("## Steps to reproduce / proof of concept\n\n1. open poc.bin"));
        assert!(detail.report.details.as_deref().unwrap().contains("\"ai_used\":\"assisted\""));
        assert_eq!(detail.attachments[0].filename, "poc.bin");
        assert!(detail.report.ack_due_at.is_some());
        let jobs = embargo_app::jobs::list(&w.app, &local, Some("queued"), 10).await.unwrap();
        assert!(jobs.iter().any(|j| j.kind == "mail.acknowledgement"));
        // The status page works from the link and shows the acknowledgement due date:
        // Wednesday 4 March + 10 working days = Wednesday 18 March.
        let status = send(router, get(&link, None)).await;
        assert_eq!(status.status, StatusCode::OK);
        assert!(status.body.contains("Wed 18 Mar 2026"), "{}", between(&status.body, "notice", "</p>").unwrap_or(""));
        // A proof of work lets the form through at once; the address limit applies.
        for _ in 0..9 {
            let (challenge, nonce) = form_fields(router).await;
            let mut with_pow = fields.to_vec();
            with_pow[0] = ("challenge", &challenge);
            with_pow.push(("nonce", &nonce));
            let reply = send(router, multipart("/report", &with_pow, &[])).await;
            assert_eq!(reply.status, StatusCode::CREATED);
        }
        let (challenge, nonce) = form_fields(router).await;
        let mut with_pow = fields.to_vec();
        with_pow[0] = ("challenge", &challenge);
        with_pow.push(("nonce", &nonce));
        let reply = send(router, multipart("/report", &with_pow, &[])).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "the eleventh report in an hour is refused");
        assert!(reply.body.contains("Heap overflow in the decoder"), "and the input is kept");
    }
}

#[tokio::test]
async fn team_and_reporter_talk_through_the_status_page_and_notices_are_edited_before_they_go() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        // The team moves the report to triaging: first the templated notice to edit.
        let path = format!("/reports/{r1}/transition");
        let preview = send(router, post(&path, Some(&w.on), &[("target", "triaging")])).await;
        assert_eq!(preview.status, StatusCode::OK);
        assert!(preview.body.contains("We are analysing your report"), "the template is shown for editing");
        let reply = send(
            router,
            post(
                &path,
                Some(&w.on),
                &[("target", "triaging"), ("confirm", "1"), ("send", "1"), ("notice", "Edited: we reproduced it.")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        // A note and a reply.
        send(router, post(&format!("/reports/{r1}/note"), Some(&w.on), &[("body", "internal: looks real")])).await;
        send(router, post(&format!("/reports/{r1}/reply"), Some(&w.on), &[("body", "Which **version**?")])).await;
        // The reporter sees the state, the edited notice and the reply, never the note.
        let status_path = format!("/status/{}", w.link1);
        let page = send(router, get(&status_path, None)).await;
        assert!(page.body.contains("triaging"));
        assert!(page.body.contains("Edited: we reproduced it."));
        assert!(!page.body.contains("assessing its impact"), "the edited text replaced the template");
        // Shown as written (and as mailed): text, not Markdown.
        assert!(page.body.contains("Which **version**?"));
        assert!(!page.body.contains("internal: looks real"));
        // The reporter answers with a file; the team sees it.
        let reply = send(
            router,
            multipart(&format!("{status_path}/reply"), &[("body", "Version 2.4.1")], &[("trace.txt", b"stack")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let team_page = send(router, get(&format!("/reports/{r1}"), Some(&w.on))).await;
        assert!(team_page.body.contains("Version 2.4.1") && team_page.body.contains("trace.txt"));
        // Both messages to the reporter are mail jobs.
        let local = Actor::LocalAdmin { os_user: "t".into() };
        let jobs = embargo_app::jobs::list(&w.web.app, &local, None, 50).await.unwrap();
        assert_eq!(jobs.iter().filter(|j| j.kind == "mail.message").count(), 2);
        // A state change without a message sends none.
        send(router, post(&path, Some(&w.on), &[("target", "accepted"), ("confirm", "1"), ("send", "0")])).await;
        let jobs = embargo_app::jobs::list(&w.web.app, &local, None, 50).await.unwrap();
        assert_eq!(jobs.iter().filter(|j| j.kind == "mail.message").count(), 2);
        // The reporter replaces the link: the old one stops working.
        let reply = send(router, post(&format!("{status_path}/rotate"), None, &[])).await;
        assert_eq!(reply.status, StatusCode::OK);
        let new_path = between(&reply.body, "class=\"button\" href=\"", "\"").unwrap().to_owned();
        assert_eq!(send(router, get(&status_path, None)).await.status, StatusCode::NOT_FOUND);
        assert_eq!(send(router, get(&new_path, None)).await.status, StatusCode::OK);
        // The team revokes it.
        send(router, post(&format!("/reports/{r1}/status-link"), Some(&w.on), &[("action", "revoke")])).await;
        assert_eq!(send(router, get(&new_path, None)).await.status, StatusCode::NOT_FOUND);
        // Duplicates: report 2 closed as a duplicate of report 1, linked both ways.
        let path2 = format!("/reports/{}/transition", w.r2);
        // The form and the API parse the target once: a duplicate needs its original, an
        // original goes only with a duplicate, and nothing changes when either is wrong.
        for fields in [
            vec![("target", "closed:duplicate"), ("confirm", "1")],
            vec![("target", "closed:spam"), ("duplicate_of", r1.as_str()), ("confirm", "1")],
            vec![("target", "closed:duplicate")],
        ] {
            let reply = send(router, post(&path2, Some(&w.admin), &fields)).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {}", reply.body);
            assert!(reply.body.contains("closed:duplicate"), "{fields:?}: {}", reply.body);
        }
        let api_path = format!("/api/v1/reports/{}/transitions", w.r2);
        for body in [
            serde_json::json!({ "target": "closed:duplicate" }),
            serde_json::json!({ "target": "closed:spam", "duplicate_of": r1 }),
        ] {
            let reply = send(router, api("POST", &api_path, Some(&w.admin_token), Some(body.clone()))).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.body);
        }
        let detail = reports::show(&w.web.app, &local, &w.r2, reports::ReadPurpose::Read).await.unwrap();
        assert!(detail.report.state.is_open(), "refused targets change nothing");
        let reply = send(
            router,
            post(
                &path2,
                Some(&w.admin),
                &[
                    ("target", "closed:duplicate"),
                    ("duplicate_of", &r1),
                    ("confirm", "1"),
                    ("send", "1"),
                    ("notice", "Already reported; thanks."),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let original = send(router, get(&format!("/reports/{r1}"), Some(&w.admin))).await;
        assert!(original.body.contains(&format!("href=\"/reports/{}\"", w.r2)), "the original links its duplicate");
        let dup = send(router, get(&format!("/reports/{}", w.r2), Some(&w.admin))).await;
        assert!(dup.body.contains(&format!("of <a href=\"/reports/{r1}\">")), "the duplicate links the original");
        let bob = send(router, get(&format!("/status/{}", w.link2), None)).await;
        assert!(
            bob.body.contains("Already reported; thanks.") && !bob.body.contains(&r1),
            "the reporter is told, without the other reference"
        );
    }
}

#[tokio::test]
async fn the_inbox_filters_and_searches_without_plaintext_in_the_database() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let local = Actor::LocalAdmin { os_user: "t".into() };
        let product = accounts::create_product(&w.web.app, &local, "Decoder").await.unwrap();
        reports::set_product(&w.web.app, &local, &w.r2, Some(product)).await.unwrap();
        let q = |query: &str| send(router, get(&format!("/inbox?{query}"), Some(&w.admin)));
        let page = q("q=overflow").await;
        assert!(page.body.contains("Alpha overflow") && !page.body.contains("Bravo bypass"));
        let page = q("q=BRAVO+secret").await;
        assert!(
            !page.body.contains("Alpha overflow") && page.body.contains("Bravo bypass"),
            "words match case-insensitively, all of them"
        );
        let page = q(&format!("q={}", w.r2)).await;
        assert!(
            page.body.contains("Bravo bypass") && !page.body.contains("Alpha overflow"),
            "a reference finds its report"
        );
        let page = q(&format!("product={product}")).await;
        assert!(page.body.contains("Bravo bypass") && !page.body.contains("Alpha overflow"));
        let page = q("assignee=on%40team.test").await;
        assert!(page.body.contains("Alpha overflow") && !page.body.contains("Bravo bypass"));
        let page = q("assignee=none").await;
        assert!(!page.body.contains("Alpha overflow") && page.body.contains("Bravo bypass"));
        let page = q("due=overdue").await;
        assert!(!page.body.contains("Alpha overflow"), "nothing is overdue yet");
        w.web.clock.advance_secs(15 * 24 * 3600);
        let admin = sign_in(&w.web, router, "admin@team.test").await;
        let page = send(router, get("/inbox?due=overdue", Some(&admin))).await;
        assert!(page.body.contains("Alpha overflow") && page.body.contains("class=\"due overdue\""));
        // Product responsibility gives a responder access.
        accounts::add_product_responder(&w.web.app, &local, product, "off@team.test").await.unwrap();
        // (Idle sessions ended while the clock moved on: sign in again.)
        let off = sign_in(&w.web, router, "off@team.test").await;
        let page = send(router, get("/inbox", Some(&off))).await;
        assert!(page.body.contains("Bravo bypass") && !page.body.contains("Alpha overflow"));
        assert_eq!(send(router, get(&format!("/reports/{}", w.r2), Some(&off))).await.status, StatusCode::OK);
        assert_eq!(send(router, get(&format!("/reports/{}", w.r1), Some(&off))).await.status, StatusCode::NOT_FOUND);
        // The search index holds keyed hashes, not words.
        if db.backend == "sqlite" {
            assert!(embargo_test_support::files_containing(&db.files, b"overflow").is_empty());
        }
    }
}

#[tokio::test]
async fn the_api_works_with_tokens_and_is_fully_documented() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        let reply = send(router, api("GET", "/api/v1/reports?state=new&q=alpha", Some(&w.on_token), None)).await;
        let list: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(list["total"], 1);
        assert_eq!(list["reports"][0]["reference"], r1.as_str());
        let reply = send(
            router,
            api(
                "POST",
                &format!("/api/v1/reports/{r1}/replies"),
                Some(&w.on_token),
                Some(serde_json::json!({"body": "via API"})),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let reply = send(
            router,
            api(
                "POST",
                &format!("/api/v1/reports/{r1}/transitions"),
                Some(&w.on_token),
                Some(serde_json::json!({"target": "closed:not-security"})),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let moved: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(moved["close_reason"], "not-security");
        let reply = send(
            router,
            api(
                "POST",
                &format!("/api/v1/reports/{r1}/transitions"),
                Some(&w.on_token),
                Some(serde_json::json!({"target": "fixing"})),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "illegal moves are refused");
        let reply = send(router, api("GET", &format!("/api/v1/reports/{r1}"), Some(&w.on_token), None)).await;
        let report: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let messages = report["messages"].as_array().unwrap();
        assert!(messages.iter().any(|m| m["body"] == "via API" && m["kind"] == "outbound"));
        assert!(
            messages.iter().any(|m| m["body"].as_str().unwrap().contains("public issue tracker")),
            "the policy's redirect"
        );
        // A revoked token stops working.
        let account = send(router, get("/account", Some(&w.on))).await;
        let id = between(&account.body, "/account/tokens/", "/revoke").unwrap().to_owned();
        send(router, post(&format!("/account/tokens/{id}/revoke"), Some(&w.on), &[])).await;
        assert_eq!(
            send(router, api("GET", "/api/v1/reports", Some(&w.on_token), None)).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Every API route of the router is in the OpenAPI document, and nothing else.
        let doc: serde_json::Value = serde_json::from_str(embargo_web::OPENAPI).unwrap();
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let source = include_str!("../src/lib.rs");
        let routed: std::collections::BTreeSet<String> = source
            .split(".route(\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .filter(|p| p.starts_with("/api/"))
            .map(str::to_owned)
            .collect();
        assert_eq!(routed, documented);
        let served = send(router, api("GET", "/api/v1/openapi.json", None, None)).await;
        assert_eq!(served.status, StatusCode::OK);
        assert!(served.body.contains("\"openapi\": \"3.1.0\""));
    }
}

#[tokio::test]
async fn credentials_stay_with_their_owner_and_access_changes_need_the_right() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let local = Actor::LocalAdmin { os_user: "t".into() };
        // The acknowledgement mail carries the status link; the thread the team reads does not.
        let ack = reports::submit(
            &w.web.app,
            &Actor::System("test"),
            Submission { acknowledge: true, ..submission("dora@example.net", "Charlie crash", "charlie body") },
        )
        .await
        .unwrap();
        let worker = embargo_app::jobs::Worker::new(w.web.app.clone());
        while worker.run_once().await.unwrap() {}
        let outbox = embargo_app::intake::outbox(&w.web.app).unwrap();
        let mail = std::fs::read_to_string(&outbox.last().unwrap().path).unwrap().replace("=\r\n", "");
        assert!(mail.contains(&ack.status_token), "the reporter's mail has the link");
        let page = send(router, get(&format!("/reports/{}", ack.reference), Some(&w.admin))).await;
        assert!(page.body.contains("We received your security report"));
        assert!(!page.body.contains(&ack.status_token), "the team's view of the thread has no link");
        let api_view =
            send(router, api("GET", &format!("/api/v1/reports/{}", ack.reference), Some(&w.admin_token), None)).await;
        assert!(!api_view.body.contains(&ack.status_token));
        // A team rotation mails the new link without putting it on the thread.
        send(router, post(&format!("/reports/{}/status-link", ack.reference), Some(&w.admin), &[("action", "rotate")]))
            .await;
        while worker.run_once().await.unwrap() {}
        let outbox = embargo_app::intake::outbox(&w.web.app).unwrap();
        let newest =
            outbox.iter().find(|m| m.subject.contains("Your new status link")).expect("the new link is mailed");
        let mail = std::fs::read_to_string(&newest.path).unwrap().replace("=\r\n", "");
        let new_link = between(&mail, "/status/", "\n").unwrap().trim().to_owned();
        assert_eq!(new_link.len(), 64, "{mail}");
        assert_eq!(send(router, get(&format!("/status/{new_link}"), None)).await.status, StatusCode::OK);
        let page = send(router, get(&format!("/reports/{}", ack.reference), Some(&w.admin))).await;
        assert!(!page.body.contains(&new_link));

        // A key typed into the form for an address we know is not taken as theirs.
        let key = embargo_mail::openpgp::InstanceKey::generate("Mallory <mallory@example.net>")
            .unwrap()
            .public_armored()
            .unwrap();
        {
            let (challenge, nonce) = form_fields(router).await;
            let reply = send(
                router,
                multipart(
                    "/report",
                    &[
                        ("challenge", &challenge),
                        ("nonce", &nonce),
                        ("title", "t"),
                        ("description", "d"),
                        ("email", "alice@example.net"),
                        ("openpgp_key", &key),
                    ],
                    &[],
                ),
            )
            .await;
            assert_eq!(reply.status, StatusCode::CREATED);
            let reference: ReferenceId = between(&reply.body, "id=\"reference\">", "<").unwrap().parse().unwrap();
            let detail = reports::show(&w.web.app, &local, &reference, reports::ReadPurpose::Read).await.unwrap();
            assert!(detail.reporter.openpgp_key.is_none(), "a known reporter's key is not replaced from the form");
            assert!(
                detail.attachments.iter().any(|a| a.filename == "openpgp-key-from-form.asc"),
                "it is offered instead"
            );
        }

        // Responders cannot move access around: the product, or someone else's report.
        let r1 = w.r1.to_string();
        let reply = send(router, post(&format!("/reports/{r1}/product"), Some(&w.on), &[("product", "")])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = send(router, post(&format!("/reports/{r1}/assign"), Some(&w.on), &[("assignee", "none")])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "unassigning takes access away");
        // Off the report, the members form says nothing exists.
        let reply =
            send(router, post(&format!("/reports/{r1}/members"), Some(&w.off), &[("email", "off@team.test")])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);

        // Uploads to a link nobody holds are refused before the body is read.
        let reply = send(router, multipart(&format!("/status/{}/reply", "cd".repeat(32)), &[("body", "x")], &[])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);

        // Half signed in lasts five minutes.
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let partial = reply.cookie().unwrap();
        w.web.clock.advance_secs(6 * 60);
        assert_eq!(send(router, get("/login/totp", Some(&partial))).await.location(), "/login");
    }
}

/// Issue 12 items 2 and 4: what was wrong with a received message (broken MIME, two From
/// addresses) is flagged on the report page and in the API, and the recovered text shows.
#[tokio::test]
async fn message_anomalies_are_shown_on_the_report_page_and_in_the_api() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let raw = b"From: finder@example.net\r\nFrom: victim@third-party.test\r\nSubject: Broken upload\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nThe upload handler trusts the file name.\r\n";
        let reference = embargo_app::intake::ingest_mail(app, raw).await.unwrap().reference().clone();
        let path = format!("/reports/{reference}");
        let reply = send(router, get(&path, Some(&w.admin))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", db.backend);
        assert!(reply.body.contains("malformed message"), "{}", reply.body);
        assert!(reply.body.contains("ambiguous sender"), "{}", reply.body);
        assert!(reply.body.contains("The upload handler trusts the file name."), "{}", reply.body);
        let reply = send(router, api("GET", &format!("/api/v1/reports/{reference}"), Some(&w.admin_token), None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            json["messages"][0]["anomalies"],
            serde_json::json!(["malformed-mime", "ambiguous-sender"]),
            "{json}"
        );
        let plain =
            embargo_app::intake::ingest_mail(app, b"From: a@example.net\r\nSubject: fine\r\n\r\nok\r\n").await.unwrap();
        let reply =
            send(router, api("GET", &format!("/api/v1/reports/{}", plain.reference()), Some(&w.admin_token), None))
                .await;
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["messages"][0]["anomalies"], serde_json::json!([]));
    }
}

/// A team page costs one snapshot and one audit commit, however much it shows (ADR 32):
/// the report page and the inbox, for an admin and for a responder on the report (the
/// session and the business calendar's version are single statements outside them).
#[tokio::test]
async fn a_page_is_one_snapshot_and_one_audit_commit() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        for cookie in [&w.admin, &w.on] {
            for path in [format!("/reports/{}", w.r1), "/inbox".to_owned()] {
                // A session is touched at most once a minute, in a write of its own: a
                // first request (on a slow machine the world may be older than a minute)
                // takes that, so the one measured is the page alone.
                assert_eq!(send(router, get(&path, Some(cookie))).await.status, StatusCode::OK, "{path}");
                let before = w.web.app.store.transaction_counts();
                let reply = send(router, get(&path, Some(cookie))).await;
                assert_eq!(reply.status, StatusCode::OK, "{path}");
                assert!(reply.body.contains("Alpha overflow"), "{path}");
                let cost = w.web.app.store.transaction_counts() - before;
                assert_eq!(
                    cost,
                    embargo_store::TransactionCounts { snapshots: 1, writes: 1 },
                    "{}: {path}",
                    db.backend
                );
            }
        }
    }
}
