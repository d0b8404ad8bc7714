//! The disclosure runbook's team pages through the router (issue 16), on SQLite and
//! PostgreSQL: making a plan (an emergency needs its own confirmation), the messages shown
//! escaped and never stripped, the person who prepared it cannot approve it (and is told
//! why), an approval bound to the hash the approver saw, the rehearsal's outputs, the steps
//! with their timing, a person's decision on a step that waits for one, resume and cancel;
//! a responder off the report gets the 404 of an unknown path on every route; cross-site
//! posts are refused; the live progress (server-sent events) answers `text/event-stream` and
//! carries a step's change; the JSON API answers the document of `disclosure status --json`.

use crate::common::*;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use embargo_app::disclosure;
use embargo_app::{App, accounts, advisories, assessment, reports};
use embargo_domain::{Actor, ReferenceId, Role};
use embargo_test_support::both_backends;
use futures_util::StreamExt;
use tower::ServiceExt;

pub(crate) const LIST: &str = "oss-security@lists.example.org";
pub(crate) const HOSTILE: &str = "Avoid <script>alert(1)</script> & <b>it</b>.";

/// Text as the templates escape it (askama: numeric character references).
fn esc(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "test".into() }
}

async fn run_jobs(app: &App) {
    let worker = embargo_app::jobs::Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

struct World {
    web: Web,
    reference: ReferenceId,
    lead: Actor,
    on: Actor,
    /// Cookies: the admin who approves, the responder who plans, a responder off the report.
    lead_cookie: String,
    on_cookie: String,
    off_cookie: String,
    on_token: String,
}

/// Accounts (with the test password) `lead@team.test` (admin), `on@team.test` (a responder
/// the report is assigned to) and `off@team.test` (a responder off it); an accepted report
/// with an approved advisory whose mitigations are hostile text.
pub(crate) async fn ready_report(app: &App) -> (ReferenceId, Actor, Actor) {
    let lead_id = accounts::create_user(app, &local(), "lead@team.test", Role::Admin, Some(PASSWORD)).await.unwrap();
    let on_id = accounts::create_user(app, &local(), "on@team.test", Role::Responder, Some(PASSWORD)).await.unwrap();
    accounts::create_user(app, &local(), "off@team.test", Role::Responder, Some(PASSWORD)).await.unwrap();
    let lead = Actor::User { id: lead_id, role: Role::Admin };
    let on = Actor::User { id: on_id, role: Role::Responder };
    let product = accounts::create_product(app, &lead, "libparse").await.unwrap();
    accounts::update_product(app, &lead, product, "", "crates.io", "pkg:cargo/libparse", "2.x").await.unwrap();
    let reference = reports::submit(
        app,
        &Actor::Reporter,
        reports::Submission::new(reports::Channel::Email, "rita@example.org", "Heap overflow in libparse", "details"),
    )
    .await
    .unwrap()
    .reference;
    reports::set_product(app, &lead, &reference, Some(product)).await.unwrap();
    reports::assign(app, &lead, &reference, Some("on@team.test")).await.unwrap();
    for to in ["triaging", "accepted"] {
        reports::transition(app, &lead, &reference, to.parse().unwrap()).await.unwrap();
    }
    assessment::set_cvss(app, &on, &reference, "3.1", Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"))
        .await
        .unwrap();
    assessment::set_classification(app, &on, &reference, "CWE-787", None).await.unwrap();
    let rows = [assessment::Affected {
        product_id: product,
        introduced: "2.0.0".into(),
        fixed: "2.4.1".into(),
        last_affected: String::new(),
    }];
    assessment::set_affected(app, &on, &reference, &rows).await.unwrap();
    let id = advisories::create(app, &on, "", Some(&reference)).await.unwrap();
    let mut record = advisories::get(app, &on, &id).await.unwrap().record;
    record.summary = "A crafted file makes the parser write past a buffer.".into();
    record.details = "Parsing a crafted archive overflows a heap buffer.".into();
    record.workarounds = HOSTILE.into();
    advisories::update(app, &on, &id, record).await.unwrap();
    advisories::submit_for_review(app, &on, &id).await.unwrap();
    advisories::approve(app, &lead, &id).await.unwrap();
    (reference, lead, on)
}

/// [`ready_report`] on an instance with the mailing list as the one channel and the team's
/// calendar in Berlin, everyone signed in.
async fn world(db: &embargo_test_support::TestDb) -> World {
    let web = web_with(db, |c| {
        c.announce.mailing_lists = vec![LIST.into()];
        c.sla.time_zone = "Europe/Berlin".into();
    })
    .await;
    let (reference, lead, on) = ready_report(&web.app).await;
    let app = &web.app;
    let on_token = accounts::create_token(app, &local(), "on@team.test", "t").await.unwrap();
    let lead_cookie = first_sign_in(&web, "lead@team.test").await;
    let on_cookie = first_sign_in(&web, "on@team.test").await;
    let off_cookie = first_sign_in(&web, "off@team.test").await;
    World { web, reference, lead, on, lead_cookie, on_cookie, off_cookie, on_token }
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

fn alert(body: &str, id: &str) -> String {
    between(body, &format!("id=\"{id}\">"), "<").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_plan_is_made_rehearsed_approved_by_a_second_person_and_its_steps_shown_with_their_timing() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router, r) = (&w.web.app, &w.web.router, w.reference.to_string());
        let page = format!("/reports/{r}/runbook");

        // No plan yet: the form. The disclosure page links here.
        let reply = send(router, get(&page, Some(&w.on_cookie))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.body.contains("id=\"plan-form\"") && !reply.body.contains("id=\"plan\""));
        let partners = send(router, get(&format!("/reports/{r}/disclosure"), Some(&w.on_cookie))).await;
        assert!(partners.body.contains(&format!("href=\"/reports/{r}/runbook\"")));

        // "Disclose now" without its own confirmation is refused, the form kept as typed.
        let reply = send(router, post(&format!("{page}/plan"), Some(&w.on_cookie), &[("emergency", "yes")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(alert(&reply.body, "plan-error").contains("disclose now"), "{}", reply.body);
        assert!(reply.body.contains("name=\"emergency\" value=\"yes\" checked"));
        // A cross-site post makes nothing.
        let reply =
            send(router, cross_site(&format!("{page}/plan"), &w.on_cookie, &[("at", "2026-03-10T16:00")])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(disclosure::list(app, &w.lead).await.unwrap().is_empty());

        // The responder on the report plans it (the instant typed as UTC).
        let reply =
            send(router, post(&format!("{page}/plan"), Some(&w.on_cookie), &[("at", "2026-03-10T16:00")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.location(), format!("{page}?done=planned"));
        let view = disclosure::status(app, &w.on, &r).await.unwrap();
        assert_eq!(view.at, "2026-03-10T16:00:00Z");
        let reply = send(router, get(&page, Some(&w.on_cookie))).await;
        let body = &reply.body;
        assert!(body.contains("Tuesday 2026-03-10 16:00:00 UTC"), "{body}");
        assert!(body.contains("2026-03-10 17:00 CET (Europe/Berlin)"), "the team's zone too: {body}");
        assert!(body.contains(&format!("id=\"content-hash\">{}<", view.content_hash)));
        assert!(body.contains("No problems: the plan is complete."), "{:?}", view.problems);
        // Every step of the plan is a row, whatever the steps are.
        for s in &view.steps {
            assert!(body.contains(&format!("<tr data-step=\"{}\">", esc(&s.name))), "no row for {}", s.name);
        }
        // The message as it will go out: every character, escaped, nothing dropped.
        let message = view.content.message("lists").unwrap();
        assert!(message.text.contains(HOSTILE));
        assert!(body.contains(&esc(HOSTILE)), "the mitigations escaped, not stripped");
        assert!(!body.contains("<script>alert(1)"), "nothing of it is markup");
        // The planner cannot approve, and is told why; a forged approval is refused too.
        assert!(body.contains("id=\"approve-refused\"") && !body.contains("id=\"approve-form\""));
        let plan = view.id.to_string();
        let reply = send(
            router,
            post(&format!("{page}/approve"), Some(&w.on_cookie), &[("plan", &plan), ("hash", &view.content_hash)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert!(alert(&reply.body, "approve-error").contains("second person"), "{}", reply.body);

        // The rehearsal: what would go out, shown on the page; nothing published.
        let reply = send(router, post(&format!("{page}/rehearse"), Some(&w.on_cookie), &[("plan", &plan)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let body = send(router, get(&page, Some(&w.on_cookie))).await.body;
        let outputs = disclosure::rehearsal_outputs(app, &w.on, &plan).await.unwrap();
        assert!(!outputs.is_empty());
        assert!(body.contains("id=\"rehearsal\""));
        for (name, output) in &outputs {
            assert!(body.contains(&format!("data-output=\"{}\">{}</pre>", esc(name), esc(output))), "{name}");
        }
        assert_eq!(disclosure::status(app, &w.on, &r).await.unwrap().state, "draft");

        // The second person approves what they saw; a stale hash (the text changed in
        // between) is refused and shown.
        let lead_page = send(router, get(&page, Some(&w.lead_cookie))).await.body;
        assert!(lead_page.contains("id=\"approve-form\""));
        let seen = between(&lead_page, "name=\"hash\" value=\"", "\"").unwrap().to_owned();
        assert_eq!(seen, view.content_hash);
        let edited = format!("{}\nUpgrade to 2.4.1.\n", message.text);
        let reply = send(
            router,
            post(
                &format!("{page}/message"),
                Some(&w.on_cookie),
                &[("plan", &plan), ("channel", "lists"), ("subject", &message.subject), ("text", &edited)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply =
            send(router, post(&format!("{page}/approve"), Some(&w.lead_cookie), &[("plan", &plan), ("hash", &seen)]))
                .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert!(alert(&reply.body, "approve-error").contains("changed"), "{}", reply.body);
        let now = disclosure::status(app, &w.on, &r).await.unwrap();
        assert_eq!(now.state, "draft");
        assert!(now.content.message("lists").unwrap().text.ends_with("Upgrade to 2.4.1.\n"), "CRLF made LF");
        let reply = send(
            router,
            post(&format!("{page}/approve"), Some(&w.lead_cookie), &[("plan", &plan), ("hash", &now.content_hash)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(disclosure::status(app, &w.on, &r).await.unwrap().state, "armed");

        // The JSON API: the document of `embargo disclosure status --json`.
        let reply = send(
            router,
            Request::get(format!("/api/v1/disclosure/{plan}"))
                .header(header::HOST, "embargo.test")
                .header(header::AUTHORIZATION, format!("Bearer {}", w.on_token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let expected = serde_json::to_value(disclosure::status(app, &w.on, &plan).await.unwrap()).unwrap();
        assert_eq!(json, expected);
        assert_eq!(json["state"], "armed");
        for key in ["name", "state", "started_at", "finished_at", "external_id"] {
            assert!(json["steps"][0].get(key).is_some(), "{key}");
        }
        // The document is the one openapi.json describes: every required key, nothing else.
        let doc: serde_json::Value = serde_json::from_str(embargo_web::OPENAPI).unwrap();
        for (schema, value) in [("DisclosurePlan", &json), ("DisclosureStep", &json["steps"][0])] {
            let schema = &doc["components"]["schemas"][schema];
            let keys: std::collections::BTreeSet<&str> =
                value.as_object().unwrap().keys().map(String::as_str).collect();
            let required: std::collections::BTreeSet<&str> =
                schema["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            let described: std::collections::BTreeSet<&str> =
                schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
            assert!(required.is_subset(&keys) && keys.is_subset(&described), "{keys:?} vs {described:?}");
        }

        // The instant: it runs; the page shows every step finished, relative to the instant.
        w.web.clock.set("2026-03-10T16:00:00Z");
        run_jobs(app).await;
        let done = disclosure::status(app, &w.on, &plan).await.unwrap();
        assert_eq!(done.state, "done", "{:?}", done.steps);
        // (Days went by: a new session.)
        let on_cookie = sign_in(&w.web, router, "on@team.test").await;
        let body = send(router, get(&page, Some(&on_cookie))).await.body;
        assert!(
            body.contains("id=\"plan-state\" data-state=\"done\">done<"),
            "{}",
            between(&body, "<main", "</table>").unwrap()
        );
        // Who prepared (changed last) and who approved it, by address.
        assert!(body.contains("id=\"planned-by\">on@team.test<"), "{body}");
        assert!(body.contains("id=\"approved-by\">lead@team.test<"), "{body}");
        let advisory = done.steps.iter().find(|s| s.name == "advisory").unwrap();
        let started = format!("{:+.3} s", advisory.started_after_instant_ms.unwrap() as f64 / 1000.0);
        assert!(
            between(&body, "<tr data-step=\"advisory\">", "</tr>").unwrap().contains(&started),
            "the timing report: {started}"
        );
        // The list of plans, linked from the dashboard.
        assert!(send(router, get("/dashboard", Some(&on_cookie))).await.body.contains("href=\"/disclosure\""));
        let list = send(router, get("/disclosure", Some(&on_cookie))).await;
        assert!(list.body.contains(&format!("<tr data-plan=\"{plan}\">")) && list.body.contains("done"));
        assert_eq!(
            send(router, get(&format!("/disclosure/{plan}"), Some(&on_cookie))).await.location(),
            format!("/reports/{r}/runbook")
        );
    }
}

#[tokio::test]
async fn a_responder_off_the_report_finds_nothing_and_forms_check_the_plan_is_the_reports() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router, r) = (&w.web.app, &w.web.router, w.reference.to_string());
        let view =
            disclosure::plan(app, &w.on, &w.reference, "2026-03-10T16:00:00Z".parse().unwrap(), false).await.unwrap();
        let plan = view.id.to_string();
        let unknown = send(router, get("/no/such/page", Some(&w.off_cookie))).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        for path in [
            format!("/reports/{r}/runbook"),
            format!("/disclosure/{plan}"),
            format!("/disclosure/{plan}/events"),
            format!("/disclosure/{r}/events"),
        ] {
            let reply = send(router, get(&path, Some(&w.off_cookie))).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert!(reply.body.contains("There is nothing here"), "{path}");
            assert!(!reply.body.contains("libparse"));
        }
        for (action, form) in [
            ("plan", vec![("at", "2026-03-11T16:00")]),
            ("approve", vec![("plan", plan.as_str()), ("hash", view.content_hash.as_str())]),
            ("rehearse", vec![("plan", plan.as_str())]),
            ("cancel", vec![("plan", plan.as_str()), ("reason", "no")]),
            ("resume", vec![("plan", plan.as_str())]),
            ("message", vec![("plan", plan.as_str()), ("channel", "lists"), ("text", "hijacked")]),
            ("step", vec![("plan", plan.as_str()), ("step", "preflight"), ("decision", "done"), ("note", "x")]),
        ] {
            let reply = send(router, post(&format!("/reports/{r}/runbook/{action}"), Some(&w.off_cookie), &form)).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{action}");
        }
        assert!(disclosure::list(app, &w.lead).await.unwrap()[0].content.message("lists").unwrap().text != "hijacked");
        assert!(send(router, get("/disclosure", Some(&w.off_cookie))).await.body.contains("No plans yet."));
        let reply = send(
            router,
            Request::get(format!("/api/v1/disclosure/{plan}"))
                .header(header::HOST, "embargo.test")
                .header(header::AUTHORIZATION, "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

        // A form naming another report's plan is refused as not found.
        let other = reports::submit(
            app,
            &Actor::Reporter,
            reports::Submission::new(reports::Channel::Email, "x@example.org", "Another", "details"),
        )
        .await
        .unwrap()
        .reference;
        let reply = send(
            router,
            post(
                &format!("/reports/{other}/runbook/cancel"),
                Some(&w.lead_cookie),
                &[("plan", &plan), ("reason", "x")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        // Cancel needs a reason; then it is cancelled.
        let page = format!("/reports/{r}/runbook");
        let reply = send(router, post(&format!("{page}/cancel"), Some(&w.on_cookie), &[("plan", &plan)])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = send(
            router,
            post(&format!("{page}/cancel"), Some(&w.on_cookie), &[("plan", &plan), ("reason", "a new date")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(disclosure::status(app, &w.on, &plan).await.unwrap().state, "cancelled");
    }
}

/// The next event of a stream (keep-alive comments skipped).
async fn next_event(body: &mut axum::body::BodyDataStream) -> String {
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .expect("an event within 30 s")
            .expect("the stream goes on")
            .unwrap();
        let text = String::from_utf8_lossy(&chunk).into_owned();
        if !text.starts_with(':') {
            return text;
        }
    }
}

/// The live progress: `text/event-stream`, the status at once, and a step's change while
/// the stream is open.
#[tokio::test]
async fn the_live_progress_streams_a_steps_change_as_server_sent_events() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let view =
            disclosure::plan(app, &w.on, &w.reference, "2026-03-10T16:00:00Z".parse().unwrap(), false).await.unwrap();
        disclosure::approve(app, &w.lead, &view.id.to_string(), Some(&view.content_hash)).await.unwrap();
        let response =
            router.clone().oneshot(get(&format!("/disclosure/{}/events", view.id), Some(&w.on_cookie))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
        assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let mut body = response.into_body().into_data_stream();
        let mut seen = String::new();
        let first = next_event(&mut body).await;
        assert!(first.starts_with("event: status\n"), "{first}");
        assert!(first.contains("\"state\":\"armed\""), "{first}");
        seen.push_str(&first);
        // The instant comes: the steps run; the stream carries the change and then ends.
        w.web.clock.set("2026-03-10T16:00:00Z");
        run_jobs(app).await;
        loop {
            let event = next_event(&mut body).await;
            seen.push_str(&event);
            if event.starts_with("event: end") {
                break;
            }
        }
        let last_status = seen.rsplit("event: status\n").next().unwrap();
        let data = last_status.strip_prefix("data: ").unwrap().lines().next().unwrap();
        let json: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(json["state"], "done", "{data}");
        let advisory = json["steps"].as_array().unwrap().iter().find(|s| s["name"] == "advisory").unwrap();
        assert_eq!(advisory["state"], "done");
        assert!(advisory["external_id"].is_string());
        assert!(body.next().await.is_none(), "the stream ends with the plan");
    }
}

/// A step that waits for a person (its call went out, the answer was lost, the channel
/// cannot be asked): the page offers both decisions; "it happened" needs a note and lets the
/// plan go on. A missed instant stops the plan: resume.
#[tokio::test]
async fn a_person_decides_about_a_step_that_waits_and_resumes_a_stopped_plan() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router, r) = (&w.web.app, &w.web.router, w.reference.to_string());
        let page = format!("/reports/{r}/runbook");
        let view =
            disclosure::plan(app, &w.on, &w.reference, "2026-03-10T16:00:00Z".parse().unwrap(), false).await.unwrap();
        let plan = view.id.to_string();
        disclosure::approve(app, &w.lead, &plan, Some(&view.content_hash)).await.unwrap();
        // Beyond the grace: it stops for a person.
        w.web.clock.set("2026-03-10T16:15:00.001Z");
        run_jobs(app).await;
        // (Days went by: a new session.)
        let on_cookie = sign_in(&w.web, router, "on@team.test").await;
        let body = send(router, get(&page, Some(&on_cookie))).await.body;
        assert!(body.contains("data-state=\"stopped\"") && body.contains("id=\"resume-form\""), "{body}");
        let reply = send(router, post(&format!("{page}/resume"), Some(&on_cookie), &[("plan", &plan)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_ne!(disclosure::status(app, &w.on, &plan).await.unwrap().state, "stopped");

        // A list step whose call went out and whose answer was lost.
        let name = format!("announce.list:{LIST}");
        {
            use embargo_domain::disclosure::{PlanState, StepState};
            use embargo_store::disclosure as store;
            let now = app.now();
            let advisory = view.content.advisory.as_ref().unwrap().id.clone();
            advisories::publish(app, &w.lead, &advisory, None).await.unwrap();
            let mut tx = app.store.begin().await.unwrap();
            let found = store::get(&mut tx, view.id).await.unwrap().unwrap();
            if found.state != PlanState::Running {
                assert!(store::set_state(&mut tx, view.id, found.state, PlanState::Running, None, now).await.unwrap());
            }
            for step in store::steps(&mut tx, view.id, "live").await.unwrap() {
                if step.state != StepState::Pending {
                    continue;
                }
                if step.name == "preflight" || step.name == "advisory" {
                    assert!(store::claim(&mut tx, step.id, None, now).await.unwrap());
                    store::finish(&mut tx, step.id, StepState::Running, StepState::Done, None, "", now).await.unwrap();
                } else if step.name == name {
                    assert!(store::claim(&mut tx, step.id, None, now).await.unwrap());
                    assert!(store::mark_called(&mut tx, step.id, now).await.unwrap());
                }
            }
            tx.commit().await.unwrap();
        }
        run_jobs(app).await;
        let now = disclosure::status(app, &w.on, &plan).await.unwrap();
        let waiting = now.steps.iter().find(|s| s.name == name).unwrap();
        assert_eq!(waiting.state, "needs-person", "{:?}", now.steps);
        let body = send(router, get(&page, Some(&on_cookie))).await.body;
        assert!(body.contains(&format!("name=\"step\" value=\"{}\"", esc(&name))), "{body}");
        assert!(body.contains("It happened — mark done") && body.contains("It did not — retry"));
        let decide = |note: &'static str| {
            post(
                &format!("{page}/step"),
                Some(&on_cookie),
                &[("plan", &plan), ("step", &name), ("decision", "done"), ("note", note)],
            )
        };
        let reply = send(router, decide("  ")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(alert(&reply.body, "step-error").contains("say what you checked"));
        let reply = send(router, decide("the post is in the archive")).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        run_jobs(app).await;
        let done = disclosure::status(app, &w.on, &plan).await.unwrap();
        let step = done.steps.iter().find(|s| s.name == name).unwrap();
        assert_eq!(step.state, "done");
        assert!(step.detail.contains("the post is in the archive"), "{}", step.detail);
    }
}

/// A server shutting down does not wait for an open live page: its stream ends.
#[tokio::test]
async fn a_graceful_shutdown_ends_the_open_event_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for db in both_backends() {
        let w = world(&db).await;
        let view = disclosure::plan(&w.web.app, &w.on, &w.reference, "2026-03-10T16:00:00Z".parse().unwrap(), false)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(embargo_web::serve(w.web.app.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /disclosure/{}/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
            view.id, w.on_cookie
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut buffer = [0u8; 8192];
        while !String::from_utf8_lossy(&seen).contains("event: status") {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.unwrap().unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buffer[..n]);
        }
        assert!(String::from_utf8_lossy(&seen).contains("text/event-stream"));
        stop.send(()).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(done.is_ok(), "the server waited for the open stream");
        done.unwrap().unwrap().unwrap();
    }
}
