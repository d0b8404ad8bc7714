//! Partners and early disclosure through the router (issue 15), on SQLite and PostgreSQL:
//! the admins' Partners page and its forms, a report's disclosure page (draft refused and
//! accepted, edit, send, the table of copies, leaks, breaking), and the partner portal's
//! scoping, role by route: partner A never sees partner B's notice, a suspended partner sees
//! nothing, team accounts never reach the portal's notices and partners never reach a team
//! route (each time the same 404 as a path that does not exist). Hostile names and texts are
//! shown escaped, nothing dropped; forms refuse cross-site posts.

use crate::common::*;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use embargo_app::partners::{self, DraftOptions, NewContact, NewPartnerInput};
use embargo_app::reports::{self, Channel, Submission};
use embargo_app::{App, accounts};
use embargo_domain::{Actor, ReferenceId, Role, Timestamp};
use embargo_test_support::both_backends;

const HOSTILE_ORG: &str = "Alpha <script>alert(1)</script> & Co";
const HOSTILE_TITLE: &str = "Parser <img src=x onerror=alert(2)> overflow";

/// Text as the templates escape it (askama: numeric character references).
fn esc(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "test".into() }
}

fn key(user: &str) -> String {
    embargo_mail::openpgp::InstanceKey::generate(user).unwrap().public_armored().unwrap()
}

async fn drain(app: &App) {
    let worker = embargo_app::jobs::Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

/// An account of `role` with the test password, made in the store (partner and fix
/// developer accounts are never made by `accounts::create_user`).
async fn account_with_password(web: &Web, email: &str, role: Role) {
    let donor = format!("donor-{}", email.replace('@', "-at-"));
    let donor = format!("{donor}@team.test");
    create_user(web, &donor, Role::Responder).await;
    let mut tx = web.app.store.begin().await.unwrap();
    let hash = embargo_store::users::by_email(&mut tx, &donor).await.unwrap().unwrap().password_hash.unwrap();
    embargo_store::users::create(&mut tx, email, role, Some(&hash), web.app.now()).await.unwrap();
    tx.commit().await.unwrap();
}

/// The invitation link mailed to a new partner contact.
fn welcome_link(app: &App, to: &str) -> String {
    let outbox = embargo_app::intake::outbox(app).unwrap();
    let mail = outbox
        .iter()
        .rev()
        .find(|m| m.to.contains(to) && m.subject.contains("Partner access"))
        .unwrap_or_else(|| panic!("no invitation to {to}"));
    let text = std::fs::read_to_string(&mail.path).unwrap().replace("=\r\n", "");
    let at = text.find("/partner/welcome/").expect("the link") + "/partner/welcome/".len();
    let token: String = text[at..].chars().take_while(char::is_ascii_hexdigit).collect();
    format!("/partner/welcome/{token}")
}

fn cross_site(path: &str, cookie: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    Request::post(path)
        .header(header::HOST, "embargo.test")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap()
}

struct World {
    web: Web,
    /// Report on product Parser (partner A's), and on Decoder (partner B's).
    r1: ReferenceId,
    r2: ReferenceId,
    admin: String,
    on: String,
    off: String,
    dev: String,
    a: String,
    b: String,
    /// The notice about r2, sent to partner B only.
    n2: i64,
}

async fn world(db: &embargo_test_support::TestDb) -> World {
    let web = web(db).await;
    let app = &web.app;
    let parser = accounts::create_product(app, &local(), "Parser").await.unwrap();
    let decoder = accounts::create_product(app, &local(), "Decoder").await.unwrap();
    let system = Actor::System("test");
    let r1 = reports::submit(app, &system, Submission::new(Channel::Email, "f@example.net", HOSTILE_TITLE, "details"))
        .await
        .unwrap()
        .reference;
    let r2 = reports::submit(
        app,
        &system,
        Submission::new(Channel::Email, "g@example.net", "Bravo decoder secret", "details"),
    )
    .await
    .unwrap()
    .reference;
    reports::set_product(app, &local(), &r1, Some(parser)).await.unwrap();
    reports::set_product(app, &local(), &r2, Some(decoder)).await.unwrap();
    // Partners are told only of accepted reports.
    for reference in [&r1, &r2] {
        for to in ["triaging", "accepted"] {
            reports::transition(app, &local(), reference, to.parse().unwrap()).await.unwrap();
        }
    }
    create_user(&web, "admin@team.test", Role::Admin).await;
    create_user(&web, "on@team.test", Role::Responder).await;
    create_user(&web, "off@team.test", Role::Responder).await;
    reports::assign(app, &local(), &r1, Some("on@team.test")).await.unwrap();
    account_with_password(&web, "dev@fix.test", Role::FixDeveloper).await;
    // Partner B's contact has an account already; partner A's is invited (below).
    account_with_password(&web, "sec@bravo.test", Role::Partner).await;
    partners::add(
        app,
        &local(),
        NewPartnerInput {
            name: "Bravo Linux".into(),
            contacts: vec![NewContact { email: "sec@bravo.test".into(), key: Some(key("B <sec@bravo.test>")) }],
            products: vec!["Decoder".into()],
            time_zone: Some("Europe/Berlin".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    drain(app).await;
    let admin = first_sign_in(&web, "admin@team.test").await;
    let on = first_sign_in(&web, "on@team.test").await;
    let off = first_sign_in(&web, "off@team.test").await;
    let dev = first_sign_in(&web, "dev@fix.test").await;
    let b = first_sign_in(&web, "sec@bravo.test").await;
    // A notice about r2 for partner B (Tuesday 2026-03-17 16:00 UTC: 13 days ahead).
    let at: Timestamp = "2026-03-17T16:00:00Z".parse().unwrap();
    let drafted = partners::draft(
        app,
        &local(),
        &r2,
        DraftOptions { disclose_at: at, confirm_day: false, deploy_hosted: false, tell_customers: false },
    )
    .await
    .unwrap();
    partners::send(app, &local(), &drafted.notice.to_string(), false).await.unwrap();
    drain(app).await;
    World { web, r1, r2, admin, on, off, dev, a: String::new(), b, n2: drafted.notice }
}

/// The page a path that does not exist gives this account.
async fn unknown(router: &Router, cookie: &str) -> Reply {
    let reply = send(router, get("/no/such/path", Some(cookie))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    reply
}

fn same_404(what: &str, reply: &Reply, unknown: &Reply) {
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}: {} {}", reply.status, reply.location());
    assert_eq!(reply.body, unknown.body, "{what}: not the page of an unknown path");
}

#[tokio::test]
async fn partners_are_managed_notices_go_out_and_the_portal_is_scoped() {
    for db in both_backends() {
        let mut w = world(&db).await;
        let (app, router) = (w.web.app.clone(), w.web.router.clone());
        let router = &router;
        let r1 = w.r1.to_string();

        // ---- The Partners page: admins only; forms refuse and keep what was typed.
        let reply = send(router, get("/admin/partners", Some(&w.on))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "a responder does not manage partners");
        let refused = send(
            router,
            post(
                "/admin/partners",
                Some(&w.admin),
                &[
                    ("name", HOSTILE_ORG),
                    ("email", "security@alpha.test"),
                    ("key", "not a key <b>"),
                    ("products", "Parser"),
                    ("time_zone", "America/New_York"),
                ],
            ),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(refused.body.contains("cannot be read"), "the reason is shown");
        assert!(
            refused.body.contains(&format!("value=\"{}\"", esc(HOSTILE_ORG))),
            "kept: {}",
            between(&refused.body, "id=\"partner-name\"", ">").unwrap_or("")
        );
        assert!(refused.body.contains(&format!("{}</textarea>", esc("not a key <b>"))), "the key as typed, escaped");
        let reply = send(
            router,
            post(
                "/admin/partners",
                Some(&w.admin),
                &[
                    ("name", HOSTILE_ORG),
                    ("email", "security@alpha.test"),
                    ("key", &key("A <security@alpha.test>")),
                    ("more_contacts", "ops@alpha.test\n"),
                    ("products", "Parser"),
                    ("terms_version", "2026-1"),
                    ("vouched_by", "Bravo Linux"),
                    ("time_zone", "America/New_York"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = send(router, get("/admin/partners?done=added", Some(&w.admin))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&esc(HOSTILE_ORG)), "escaped");
        assert!(!page.body.contains("<script>alert(1)"), "never as markup");
        assert!(page.body.contains("no key (gets only a pointer to the portal)"), "ops@ has no key");
        let listed = partners::list(&app, &local()).await.unwrap();
        let alpha = listed.iter().find(|p| p.name == HOSTILE_ORG).unwrap();
        let fingerprint = alpha.contacts.iter().find_map(|c| c.fingerprint.clone()).unwrap();
        assert!(page.body.contains(&fingerprint), "the key's fingerprint is shown");
        assert_eq!(alpha.terms_version, "2026-1");
        // A duplicate name is a conflict, shown on the page.
        let reply =
            send(router, post("/admin/partners", Some(&w.admin), &[("name", HOSTILE_ORG), ("email", "x@alpha.test")]))
                .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        // The lists' policies: shown and editable; a bad hour is refused.
        let reply = send(
            router,
            post(
                "/admin/partners/policies",
                Some(&w.admin),
                &[
                    ("list", "default"),
                    ("max_days", "14"),
                    ("min_notice_days", "7"),
                    ("final_notice_hours", "24"),
                    ("days", "Tuesday, Wednesday"),
                    ("hour", "25"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("0 to 23"), "{}", reply.body);
        let reply = send(
            router,
            post(
                "/admin/partners/policies",
                Some(&w.admin),
                &[
                    ("list", "default"),
                    ("max_days", "14"),
                    ("min_notice_days", "7"),
                    ("final_notice_hours", "24"),
                    ("days", "Tuesday, Wednesday"),
                    ("hour", "16"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let policies = partners::policies(&app, &local()).await.unwrap();
        assert_eq!(policies[0].preferred_days, ["Tuesday", "Wednesday"]);
        // Changing a partner: a bad zone is refused; an unchanged terms version is not a
        // new acceptance.
        let accepted = alpha.terms_accepted_at.clone();
        let change = |zone: &'static str| {
            [
                ("partner", HOSTILE_ORG),
                ("products", "Parser"),
                ("list", "default"),
                ("terms_version", "2026-1"),
                ("terms_was", "2026-1"),
                ("vouched_by", "Bravo Linux"),
                ("time_zone", zone),
            ]
        };
        let reply = send(router, post("/admin/partners/update", Some(&w.admin), &change("Mars/Olympus"))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("is not a time zone name"), "{}", reply.body);
        w.web.clock.advance_secs(60);
        let reply = send(router, post("/admin/partners/update", Some(&w.admin), &change("America/New_York"))).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let alpha = partners::get(&app, &local(), HOSTILE_ORG).await.unwrap();
        assert_eq!(alpha.terms_accepted_at, accepted, "the same terms, accepted when they were");
        // A cross-site post changes nothing.
        let reply = send(
            router,
            cross_site("/admin/partners/state", &w.admin, &[("partner", "Bravo Linux"), ("state", "suspended")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(partners::get(&app, &local(), "Bravo Linux").await.unwrap().state, "active");

        // ---- Partner A's contact sets a password through the mailed link and lands on /partner.
        drain(&app).await;
        let link = welcome_link(&app, "security@alpha.test");
        let page = send(router, get(&link, None)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("security@alpha.test"));
        let reply = send(router, post(&link, None, &[("password", PASSWORD), ("confirm", "something else")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = send(router, post(&link, None, &[("password", PASSWORD), ("confirm", PASSWORD)])).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(send(router, get(&link, None)).await.status, StatusCode::NOT_FOUND, "the link works once");
        let forged = send(router, get(&format!("/partner/welcome/{}", "ab".repeat(32)), None)).await;
        assert_eq!(forged.status, StatusCode::NOT_FOUND);
        let reply = send(
            router,
            post(
                &format!("/partner/welcome/{}", "ab".repeat(32)),
                None,
                &[("password", PASSWORD), ("confirm", PASSWORD)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "a forged link sets nothing");
        w.a = first_sign_in(&w.web, "security@alpha.test").await;
        let a = w.a.clone();
        assert_eq!(send(router, get("/login/totp", Some(&a))).await.location(), "/partner", "their start page");
        let page = send(router, get("/partner", Some(&a))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("No notice is shared"), "nothing yet: B's notice is not A's");

        // ---- The disclosure page of r1: the team member on the report, nobody else.
        let path = format!("/reports/{r1}/disclosure");
        let page = send(router, get(&path, Some(&w.on))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("State: <strong>none</strong>"));
        assert_eq!(send(router, get(&path, Some(&w.off))).await.status, StatusCode::NOT_FOUND);
        assert_eq!(send(router, get(&path, Some(&w.dev))).await.status, StatusCode::NOT_FOUND);
        let report = send(router, get(&format!("/reports/{r1}"), Some(&w.on))).await;
        assert!(report.body.contains(&format!("href=\"/reports/{r1}/disclosure\"")), "linked from the report");
        // Refusals: a Friday unconfirmed, a date too far; the form keeps the input.
        let draft = format!("/reports/{r1}/disclosure/draft");
        let reply =
            send(router, post(&draft, Some(&w.on), &[("disclose_at", "2026-03-13T16:00"), ("tell_customers", "yes")]))
                .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("falls on a Friday"), "{}", reply.body);
        assert!(reply.body.contains("value=\"2026-03-13T16:00\""), "the date is kept");
        assert!(reply.body.contains("name=\"tell_customers\" value=\"yes\" checked"), "the permission is kept");
        let reply = send(router, post(&draft, Some(&w.on), &[("disclose_at", "2026-04-30T16:00")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("longer than the list"), "{}", reply.body);
        let reply = send(router, post(&draft, Some(&w.on), &[("disclose_at", "next week")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(send(router, post(&draft, Some(&w.off), &[("disclose_at", "2026-03-17T16:00")])).await.status, {
            StatusCode::NOT_FOUND
        });
        // Accepted, with a warning (not the preferred hour); the draft's text is editable.
        let reply = send(router, post(&draft, Some(&w.on), &[("disclose_at", "2026-03-17T15:00")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = send(router, get(&format!("{path}?done=drafted"), Some(&w.on))).await;
        assert!(page.body.contains("15:00 UTC is not the list"), "the warning is shown");
        assert!(page.body.contains("State: <strong>proposed</strong>"));
        assert!(page.body.contains(&esc(HOSTILE_TITLE)), "the title, escaped");
        assert!(!page.body.contains("<img src=x"));
        let notice = between(&page.body, "name=\"notice\" value=\"", "\"").unwrap().to_owned();
        let edit = format!("/reports/{r1}/disclosure/edit");
        let reply = send(
            router,
            post(&edit, Some(&w.on), &[("notice", &notice), ("subject", "two\nlines"), ("body", "kept <b>text</b>")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains(&format!("{}</textarea>", esc("kept <b>text</b>"))), "the text is kept");
        let body = "Upgrade now.\n<script>alert(3)</script>\r\nSee https://example.org/fix\u{202E}.";
        let reply = send(
            router,
            post(
                &edit,
                Some(&w.on),
                &[
                    ("notice", &notice),
                    ("subject", "[EMBARGOED] Parser issue"),
                    ("body", body),
                    ("deploy_hosted", "yes"),
                ],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        // Sending the wrong notice (another report's) is refused.
        let reply = send(
            router,
            post(&format!("/reports/{r1}/disclosure/send"), Some(&w.on), &[("notice", &w.n2.to_string())]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        let reply =
            send(router, cross_site(&format!("/reports/{r1}/disclosure/send"), &w.on, &[("notice", &notice)])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "cross-site");
        let reply =
            send(router, post(&format!("/reports/{r1}/disclosure/send"), Some(&w.on), &[("notice", &notice)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        drain(&app).await;
        let page = send(router, get(&path, Some(&w.on))).await;
        assert!(page.body.contains("State: <strong>active</strong>"), "{}", page.body);
        let copies = between(&page.body, "id=\"copies\"", "</table>").unwrap();
        assert!(copies.contains("security@alpha.test") && copies.contains("ops@alpha.test"));
        assert!(!copies.contains("sec@bravo.test"), "B is not a partner of Parser");
        assert_eq!(copies.matches("data-state=\"sent\"").count(), 2, "{copies}");
        let id: i64 = notice.parse().unwrap();

        // ---- The portal, role by route.
        let notice_path = format!("/partner/notices/{id}");
        let other_path = format!("/partner/notices/{}", w.n2);
        let portal_routes = |n: &str| {
            vec![
                "/partner".to_owned(),
                "/partner/organisation".to_owned(),
                format!("/partner/notices/{n}"),
                format!("/partner/notices/{n}/disclosure.ics"),
                format!("/partner/notices/{n}/files/fix-main.patch"),
            ]
        };
        for cookie in [&w.admin, &w.on, &w.off, &w.dev] {
            let nothing = unknown(router, cookie).await;
            for route in portal_routes(&notice).into_iter().chain(portal_routes(&w.n2.to_string())) {
                same_404(&route, &send(router, get(&route, Some(cookie))).await, &nothing);
            }
            for route in [format!("{notice_path}/acknowledge"), "/partner/organisation/contacts".to_owned()] {
                let reply = send(router, post(&route, Some(cookie), &[("email", "x@alpha.test")])).await;
                same_404(&route, &reply, &nothing);
            }
        }
        for route in portal_routes(&notice) {
            assert_eq!(send(router, get(&route, None)).await.location(), "/login", "{route}: signed out");
        }
        // Partners never reach a team route.
        for cookie in [&a, &w.b] {
            let nothing = unknown(router, cookie).await;
            for route in [
                "/inbox".to_owned(),
                "/dashboard".to_owned(),
                "/fixes".to_owned(),
                "/account".to_owned(),
                "/admin".to_owned(),
                "/admin/partners".to_owned(),
                "/team/advisories".to_owned(),
                format!("/reports/{r1}"),
                format!("/reports/{r1}/disclosure"),
                format!("/reports/{}/disclosure", w.r2),
                format!("/reports/{r1}/fix"),
            ] {
                same_404(&route, &send(router, get(&route, Some(cookie))).await, &nothing);
            }
            let reply =
                send(router, post(&format!("/reports/{r1}/disclosure/leaks"), Some(cookie), &[("details", "x")])).await;
            same_404("team leak form", &reply, &nothing);
        }
        // A sees its notice, not B's; B sees its own, not A's.
        let nothing = unknown(router, &a).await;
        for route in portal_routes(&w.n2.to_string()).into_iter().skip(2) {
            same_404(&route, &send(router, get(&route, Some(&a))).await, &nothing);
        }
        same_404("a notice that never was", &send(router, get("/partner/notices/999999", Some(&a))).await, &nothing);
        same_404("not a number", &send(router, get("/partner/notices/x1", Some(&a))).await, &nothing);
        let reply = send(router, post(&format!("{other_path}/acknowledge"), Some(&a), &[])).await;
        same_404("acknowledging B's notice", &reply, &nothing);
        let reply = send(router, post(&format!("{other_path}/leak"), Some(&a), &[("details", "x")])).await;
        same_404("a leak on B's notice", &reply, &nothing);
        let list = send(router, get("/partner", Some(&a))).await;
        assert!(list.body.contains(&format!("href=\"{notice_path}\"")));
        assert!(!list.body.contains(&format!("href=\"{other_path}\"")));
        assert!(!list.body.contains("Bravo decoder secret"));
        let list = send(router, get("/partner", Some(&w.b))).await;
        assert!(list.body.contains(&format!("href=\"{other_path}\"")));
        assert!(!list.body.contains(&format!("href=\"{notice_path}\"")));
        let nothing_b = unknown(router, &w.b).await;
        same_404("A's notice as B", &send(router, get(&notice_path, Some(&w.b))).await, &nothing_b);

        // A reads the notice: every character escaped, the instant in UTC and New York time.
        let page = send(router, get(&notice_path, Some(&a))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(3)&lt;/script&gt;&#13;\n"), "escaped, nothing dropped");
        assert!(page.body.contains("<span class=\"ctl\" data-cp=\"U+202E\">"), "the override is marked");
        assert!(page.body.contains("<a href=\"https://example.org/fix\""), "web links are links");
        assert!(!page.body.contains("<script>alert"));
        assert!(page.body.contains("Tuesday 2026-03-17 15:00 UTC"), "{}", page.body);
        assert!(page.body.contains("11:00 EDT (America/New_York)"), "the partner's zone");
        assert!(page.body.contains("Alpha &lt;script&gt;"), "the organisation's name in the text, escaped");
        assert!(page.body.contains("Yes: you may deploy the fix to hosted services"), "the permission granted");
        let status = partners::status(&app, &local(), &notice).await.unwrap();
        let mine = status.contacts.iter().find(|c| c.email == "security@alpha.test").unwrap();
        assert_eq!(mine.state, "seen");
        // The calendar file holds the instant and nothing of the issue.
        let ics = send(router, get(&format!("{notice_path}/disclosure.ics"), Some(&a))).await;
        assert_eq!(ics.status, StatusCode::OK);
        assert!(ics.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/calendar"));
        assert!(ics.body.contains("BEGIN:VCALENDAR") && ics.body.contains("20260317T150000Z"), "{}", ics.body);
        assert!(!ics.body.contains("Parser") && !ics.body.contains(&r1));
        // No patch was attached (the report has no fix repository): a file name is unknown.
        let reply = send(router, get(&format!("{notice_path}/files/fix-main.patch"), Some(&a))).await;
        same_404("no such patch", &reply, &nothing);
        // A leak report: refused empty (kept), then recorded; the team sees it escaped.
        let reply = send(router, post(&format!("{notice_path}/leak"), Some(&a), &[("details", "   ")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let details = "Seen on <b>a forum</b> at https://forum.example/t/1";
        let reply = send(router, post(&format!("{notice_path}/leak"), Some(&a), &[("details", details)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        // Acknowledging: refused cross-site, then recorded; the team's table says so.
        let reply = send(router, cross_site(&format!("{notice_path}/acknowledge"), &a, &[])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = send(router, post(&format!("{notice_path}/acknowledge"), Some(&a), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(reply.location(), format!("{notice_path}?done=acknowledged"));
        let page = send(router, get(reply.location(), Some(&a))).await;
        assert!(page.body.contains("id=\"acknowledged\""));
        let team = send(router, get(&path, Some(&w.on))).await;
        let row = between(&team.body, "data-contact=\"security@alpha.test\"", "</tr>").unwrap();
        assert!(row.contains("data-state=\"acknowledged\""), "{row}");
        assert!(team.body.contains(&esc("Seen on <b>a forum</b>")), "the partner's leak, escaped");
        // The team decides on it: keep the date.
        let leak = partners::leaks(&app, &local(), &w.r1).await.unwrap()[0].id;
        let decide = format!("/reports/{r1}/disclosure/leaks/decide");
        let reply = send(
            router,
            post(&decide, Some(&w.on), &[("leak", &leak.to_string()), ("decision", "move"), ("move_to", "")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "a move needs a date");
        let reply =
            send(router, post(&decide, Some(&w.on), &[("leak", &leak.to_string()), ("decision", "keep")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let other_leak =
            partners::record_leak(&app, &local(), &w.r2.to_string(), None, "another report's leak").await.unwrap();
        let reply =
            send(router, post(&decide, Some(&w.on), &[("leak", &other_leak.to_string()), ("decision", "keep")])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "only this report's leaks are decided here");

        // The team records one naming a partner that was told (from the list), not another.
        let page = send(router, get(&path, Some(&w.on))).await;
        let choices = between(&page.body, "id=\"leak-partner\"", "</select>").unwrap();
        assert!(choices.contains(&format!("<option value=\"{0}\">{0}</option>", esc(HOSTILE_ORG))), "{choices}");
        assert!(!choices.contains("Bravo"), "only partners told of this report: {choices}");
        let leaks_path = format!("/reports/{r1}/disclosure/leaks");
        let reply = send(
            router,
            post(&leaks_path, Some(&w.on), &[("partner", "Bravo Linux"), ("details", "a forged <choice>")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert!(reply.body.contains(&format!("{}</textarea>", esc("a forged <choice>"))), "kept");
        let reply =
            send(router, post(&leaks_path, Some(&w.on), &[("partner", HOSTILE_ORG), ("details", "their mirror")]))
                .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let leaks = partners::leaks(&app, &local(), &w.r1).await.unwrap();
        assert!(leaks.iter().any(|l| l.partner.as_deref() == Some(HOSTILE_ORG) && l.details == "their mirror"));

        // ---- The organisation page: contacts and keys kept current by the partner.
        let page = send(router, get("/partner/organisation", Some(&a))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&fingerprint) && page.body.contains("ops@alpha.test"));
        assert!(!page.body.contains("sec@bravo.test"));
        let reply = send(
            router,
            post("/partner/organisation/contacts", Some(&a), &[("email", "ops@alpha.test"), ("key", "garbage <i>")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reply.body.contains(&format!("{}</textarea>", esc("garbage <i>")))
                && reply.body.contains("value=\"ops@alpha.test\"")
        );
        let ops_key = key("Ops <ops@alpha.test>");
        let reply = send(
            router,
            post("/partner/organisation/contacts", Some(&a), &[("email", "ops@alpha.test"), ("key", &ops_key)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let alpha = partners::get(&app, &local(), HOSTILE_ORG).await.unwrap();
        assert!(alpha.contacts.iter().all(|c| c.fingerprint.is_some()), "ops@ has a key now");
        let reply =
            send(router, post("/partner/organisation/contacts/remove", Some(&a), &[("email", "ops@alpha.test")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply =
            send(router, post("/partner/organisation/contacts/remove", Some(&a), &[("email", "security@alpha.test")]))
                .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "the last contact stays");

        // ---- A suspended partner sees nothing; activated again, it does.
        let reply = send(
            router,
            post("/admin/partners/state", Some(&w.admin), &[("partner", HOSTILE_ORG), ("state", "suspended")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let list = send(router, get("/partner", Some(&a))).await;
        assert!(list.body.contains("No notice is shared"), "suspended");
        for route in portal_routes(&notice).into_iter().skip(1) {
            same_404(&route, &send(router, get(&route, Some(&a))).await, &nothing);
        }
        send(router, post("/admin/partners/state", Some(&w.admin), &[("partner", HOSTILE_ORG), ("state", "active")]))
            .await;
        assert_eq!(send(router, get(&notice_path, Some(&a))).await.status, StatusCode::OK);
        // ---- Breaking the embargo: confirmed and with a reason, then every partner is told.
        let embargo = format!("/reports/{r1}/disclosure/embargo");
        let reply = send(router, post(&embargo, Some(&w.on), &[("action", "break"), ("reason", "public")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "unconfirmed");
        let reply = send(
            router,
            post(&embargo, Some(&w.on), &[("action", "break"), ("reason", "posted publicly"), ("confirm", "yes")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = send(router, get(&path, Some(&w.on))).await;
        assert!(page.body.contains("State: <strong>broken</strong>"), "{}", page.body);
        let reply = send(router, post(&embargo, Some(&w.on), &[("action", "lift")])).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "a broken embargo is not lifted");
        assert!(reply.body.contains("State: <strong>broken</strong>"), "shown on the page");
        // Removing the contact takes the notice away from them.
        let reply = send(
            router,
            post(
                "/admin/partners/contacts/remove",
                Some(&w.admin),
                &[("partner", HOSTILE_ORG), ("email", "security@alpha.test")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        same_404("a removed contact", &send(router, get(&notice_path, Some(&a))).await, &nothing);
    }
}
