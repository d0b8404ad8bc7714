//! The report page and the inbox for working people (issue 18), on SQLite and PostgreSQL:
//! the next action as the primary button (from the domain's lifecycle), the deadline that
//! matters with its clock, people by name, only the forms a person can use, refused forms
//! shown again as sent, the inbox's saved views, relative dates, its first-run empty state,
//! and bulk assign and close through the single-report use cases.

use super::*;
use embargo_app::reports::{Notice, ReadPurpose};
use embargo_domain::Target;

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "test".into() }
}

/// Admin `lead@team.test`, responder `on@team.test` (responsible for the product "Widget"),
/// responder `off@team.test`; three reports: A (product Widget, assigned to on), B (product
/// Widget, unassigned), C (no product, unassigned).
struct Desk {
    web: Web,
    a: ReferenceId,
    b: ReferenceId,
    c: ReferenceId,
    lead: String,
    on: String,
    off: String,
}

async fn desk(db: &TestDb) -> Desk {
    desk_on(web(db).await).await
}

async fn desk_on(web: Web) -> Desk {
    let system = Actor::System("test");
    let mut refs = Vec::new();
    for (email, title) in [
        ("ann@example.net", "Alpha overflow in the parser"),
        ("ben@example.net", "Bravo bypass in the login"),
        ("cat@example.net", "Charlie crash in the encoder"),
    ] {
        let submitted = reports::submit(
            &web.app,
            &system,
            Submission {
                reporter_name: Some(format!("Reporter {title}")),
                ..Submission::new(Channel::Email, email, title, "body")
            },
        )
        .await
        .unwrap();
        refs.push(submitted.reference);
    }
    create_user(&web, "lead@team.test", Role::Admin).await;
    create_user(&web, "on@team.test", Role::Responder).await;
    create_user(&web, "off@team.test", Role::Responder).await;
    let product = accounts::create_product(&web.app, &local(), "Widget").await.unwrap();
    accounts::add_product_responder(&web.app, &local(), product, "on@team.test").await.unwrap();
    reports::set_product(&web.app, &local(), &refs[0], Some(product)).await.unwrap();
    reports::set_product(&web.app, &local(), &refs[1], Some(product)).await.unwrap();
    reports::assign(&web.app, &local(), &refs[0], Some("on@team.test")).await.unwrap();
    let lead = first_sign_in(&web, "lead@team.test").await;
    let on = first_sign_in(&web, "on@team.test").await;
    let off = first_sign_in(&web, "off@team.test").await;
    let c = refs.pop().unwrap();
    let b = refs.pop().unwrap();
    let a = refs.pop().unwrap();
    Desk { web, a, b, c, lead, on, off }
}

async fn page_of(d: &Desk, reference: &ReferenceId, cookie: &str) -> String {
    let reply = send(&d.web.router, get(&format!("/reports/{reference}"), Some(cookie))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The primary next-action form of a page: (target, label).
fn primary(body: &str) -> Option<(String, String)> {
    let form = between(body, "id=\"next-action\">", "</form>")?;
    let target = between(form, "name=\"target\" value=\"", "\"")?.to_owned();
    let label = between(form, "class=\"primary\">", "</button>")?.to_owned();
    Some((target, label))
}

async fn move_to(d: &Desk, reference: &ReferenceId, target: &str) {
    let target: Target<ReferenceId> = Target::parse(target, None).unwrap();
    reports::change_state(&d.web.app, &local(), reference, target, Notice::None).await.unwrap();
}

#[tokio::test]
async fn the_next_action_is_the_primary_button_with_the_deadline_and_the_lifecycle_above_the_thread() {
    for db in both_backends() {
        let d = desk(&db).await;
        let body = page_of(&d, &d.a, &d.lead).await;
        assert_eq!(primary(&body), Some(("acknowledged".into(), "Acknowledge".into())), "{}", db.backend);
        // No select of every state that defaults to something.
        assert!(!body.contains("<select id=\"target\""), "the old state select is gone");
        // State, deadline (relative, with its clock), assignee and product come before the thread.
        let status = body.find("id=\"status\"").unwrap();
        assert!(status < body.find("id=\"timeline-h\"").unwrap());
        let deadline = between(&body, "id=\"deadline\">", "</span></span>").unwrap();
        assert!(deadline.contains("Acknowledge within 10 working days"), "{deadline}");
        assert!(deadline.contains("acknowledge clock"), "{deadline}");
        assert!(body.contains("class=\"step-current\" aria-current=\"step\">New</li>"), "the lifecycle indicator");
        assert_eq!(between(&body, "id=\"assignee-name\">", "<"), Some("on@team.test"));
        assert_eq!(between(&body, "id=\"product-name\">", "<"), Some("Widget"));

        // Overdue: red, by how much, with the clock's name.
        d.web.clock.advance_secs(15 * 86_400);
        let lead = sign_in(&d.web, &d.web.router, "lead@team.test").await;
        let body = page_of(&d, &d.a, &lead).await;
        let deadline = between(&body, "id=\"deadline\">", "</span></span>").unwrap();
        assert!(body.contains("class=\"deadline overdue\""), "{deadline}");
        assert!(deadline.contains("Acknowledgement overdue by"), "{deadline}");

        // Along the path: each state offers the move forward, never the state it came from.
        for (state, next, label) in [
            ("acknowledged", "triaging", "Start triage"),
            ("triaging", "accepted", "Accept"),
            ("accepted", "fixing", "Start fixing"),
            ("fixing", "ready-for-disclosure", "Fix ready for disclosure"),
        ] {
            move_to(&d, &d.a, state).await;
            let body = page_of(&d, &d.a, &lead).await;
            assert_eq!(primary(&body), Some((next.into(), label.into())), "in {state}");
        }
        // In fixing, going back is offered as a secondary move, not as the default.
        let body = page_of(&d, &d.a, &lead).await;
        assert!(body.contains("value=\"accepted\"><button type=\"submit\">Back to accepted</button>"));
        assert!(body.contains("<span class=\"sr\">done: </span>Accepted</li>"), "accepted is done");
        assert!(body.contains("aria-current=\"step\">Fixing</li>"));
        // Needs info: back to triage, clocks paused; closed: reopen.
        move_to(&d, &d.b, "needs-info").await;
        let body = page_of(&d, &d.b, &lead).await;
        assert_eq!(primary(&body), Some(("triaging".into(), "Back to triage".into())));
        assert!(body.contains("Deadlines are paused"));
        assert!(body.contains("class=\"step-off\" aria-current=\"step\">waiting on the reporter"));
        move_to(&d, &d.c, "closed:spam").await;
        let body = page_of(&d, &d.c, &lead).await;
        assert_eq!(primary(&body), Some(("triaging".into(), "Reopen for triage".into())));
        assert!(!body.contains("id=\"close-form\""), "a closed report offers no close");

        // The primary button goes to the notice and changes the state.
        let path = format!("/reports/{}/transition", d.b);
        let reply = send(&d.web.router, post(&path, Some(&lead), &[("target", "triaging")])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("Move to “triaging”"));
        let reply =
            send(&d.web.router, post(&path, Some(&lead), &[("target", "triaging"), ("confirm", "1"), ("send", "0")]))
                .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let detail = reports::show(&d.web.app, &local(), &d.b, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, embargo_domain::ReportState::Triaging);
    }
}

#[tokio::test]
async fn people_are_shown_by_name_in_the_thread_and_the_activity() {
    for db in both_backends() {
        let d = desk(&db).await;
        let router = &d.web.router;
        let path = format!("/reports/{}", d.a);
        let reply = send(router, post(&format!("{path}/note"), Some(&d.lead), &[("body", "a note")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(
            router,
            post(
                &format!("{path}/transition"),
                Some(&d.lead),
                &[("target", "acknowledged"), ("confirm", "1"), ("send", "1"), ("notice", "Thanks")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply =
            send(router, post(&format!("{path}/assign"), Some(&d.lead), &[("assignee", "off@team.test")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let body = page_of(&d, &d.a, &d.lead).await;
        for code in ["user:1", "user:2", "user:3", "user:4", "system:", "cli:test"] {
            assert!(!body.contains(code), "{}: {code} is shown instead of a name", db.backend);
        }
        let timeline = between(&body, "class=\"timeline\">", "</ol>").unwrap();
        assert!(timeline.contains("by lead@team.test"), "{timeline}");
        assert!(timeline.contains("Reporter Alpha overflow in the parser"), "the reporter by the name they gave");
        let activity = between(&body, "id=\"activity-h\"", "</table>").unwrap();
        assert!(activity.contains("<td>lead@team.test</td>"), "{activity}");
        assert!(activity.contains("assignee=off@team.test"), "{activity}");
        assert!(activity.contains("test (command line)"), "{activity}");
    }
}

#[tokio::test]
async fn a_person_sees_only_the_forms_they_can_use() {
    for db in both_backends() {
        let d = desk(&db).await;
        let router = &d.web.router;
        // The admin: assignment, product, members.
        let body = page_of(&d, &d.a, &d.lead).await;
        for form in ["id=\"assign-form\"", "id=\"product-form\"", "id=\"member-form\"", "id=\"close-form\""] {
            assert!(body.contains(form), "{}: the admin has {form}", db.backend);
        }
        // The responder on A (assigned to them): no product, members or reassignment, which
        // they would be refused; the state, replies and notes they may change.
        let body = page_of(&d, &d.a, &d.on).await;
        for form in
            ["id=\"assign-form\"", "id=\"product-form\"", "id=\"member-form\"", "id=\"take-form\"", "/product\""]
        {
            assert!(!body.contains(form), "{}: the responder is not offered {form}", db.backend);
        }
        for form in ["id=\"next-action\"", "id=\"close-form\"", "id=\"reply-form\"", "id=\"note-form\""] {
            assert!(body.contains(form), "the responder has {form}");
        }
        // What they would have been offered is refused indeed.
        let reply = send(router, post(&format!("/reports/{}/product", d.a), Some(&d.on), &[("product", "")])).await;
        assert!(reply.status == StatusCode::FORBIDDEN || reply.status == StatusCode::NOT_FOUND, "{}", reply.status);
        // B is unassigned and theirs through the product: they may take it, and the button does.
        let body = page_of(&d, &d.b, &d.on).await;
        assert!(body.contains("id=\"take-form\""));
        let reply =
            send(router, post(&format!("/reports/{}/assign", d.b), Some(&d.on), &[("assignee", "on@team.test")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let body = page_of(&d, &d.b, &d.on).await;
        assert!(!body.contains("id=\"take-form\""), "taken");
        assert_eq!(between(&body, "id=\"assignee-name\">", "<"), Some("on@team.test"));
    }
}

#[tokio::test]
async fn refused_report_forms_come_back_as_sent_with_the_field_marked() {
    for db in both_backends() {
        let d = desk(&db).await;
        let router = &d.web.router;
        let base = format!("/reports/{}", d.a);
        // A reply of only spaces.
        let reply =
            send(router, post(&format!("{base}/reply"), Some(&d.lead), &[("body", "   \n  "), ("ask", "1")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", db.backend);
        assert!(reply.body.contains("id=\"reply-error\""));
        assert!(reply.body.contains("aria-invalid=\"true\" aria-describedby=\"reply-error\">   \n  </textarea>"));
        assert!(reply.body.contains("name=\"ask\" value=\"1\" checked"), "the question box stays ticked");
        // A note of nothing.
        let reply = send(router, post(&format!("{base}/note"), Some(&d.lead), &[("body", " ")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"note-error\""));
        // Close without a reason.
        let reply = send(router, post(&format!("{base}/transition"), Some(&d.lead), &[("target", "")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"close-reason-error\">choose why the report is closed"), "{}", reply.body);
        // A duplicate of something that is not a reference, and of a report that does not exist.
        for (original, says) in [("not a <ref>", "is not a report reference"), ("WEB-2026-999", "not found")] {
            let form = [("target", "closed:duplicate"), ("duplicate_of", original)];
            let reply = send(router, post(&format!("{base}/transition"), Some(&d.lead), &form)).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{original}");
            let error = between(&reply.body, "id=\"duplicate-error\">", "</p>").unwrap();
            assert!(error.contains(says), "{error}");
            let kept = render_escaped(original);
            assert!(reply.body.contains(&format!("value=\"{kept}\" aria-invalid=\"true\"")), "{original} kept");
            assert!(reply.body.contains("<option value=\"closed:duplicate\" selected>"), "the reason kept");
        }
        // Assign to no one chosen, and to an account that does not exist.
        let reply = send(router, post(&format!("{base}/assign"), Some(&d.lead), &[("assignee", "")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"assignee-error\">choose who"));
        let reply =
            send(router, post(&format!("{base}/assign"), Some(&d.lead), &[("assignee", "ghost@team.test")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(between(&reply.body, "id=\"assignee-error\">", "</p>").unwrap().contains("ghost@team.test"));
        // Splitting without a text.
        let form = [("title", "The second finding"), ("body", "  ")];
        let reply = send(router, post(&format!("{base}/split"), Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("value=\"The second finding\""), "the title kept");
        // The assessment's forms: a bad vector, a bad CWE.
        let form = [("version", "3.1"), ("vector", "CVSS:3.1/AV:Q<b>")];
        let reply = send(router, post(&format!("{base}/cvss"), Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert!(reply.body.contains("id=\"vector-v31-error\""));
        assert!(reply.body.contains("value=\"CVSS:3.1/AV:Q&#60;b&#62;\" aria-invalid=\"true\""), "the vector kept");
        let reply = send(router, post(&format!("{base}/classification"), Some(&d.lead), &[("cwe", "CWE-xyz")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"cwe-error\"") && reply.body.contains("value=\"CWE-xyz\""));
        let form = [("ssvc_e", "active")];
        let reply = send(router, post(&format!("{base}/classification"), Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"ssvc-error\""));
        // An empty notice: the notice page again, the text as typed.
        let form = [("target", "acknowledged"), ("confirm", "1"), ("send", "1"), ("notice", " ")];
        let reply = send(router, post(&format!("{base}/transition"), Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"notice-error\""));
        // Nothing changed.
        let detail = reports::show(&d.web.app, &local(), &d.a, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, embargo_domain::ReportState::New);
        assert_eq!(detail.messages.len(), 1);
    }
}

/// A text as the templates escape it.
fn render_escaped(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

#[tokio::test]
async fn the_inbox_has_saved_views_relative_dates_and_a_first_run_state() {
    for db in both_backends() {
        // First run: nothing has arrived; the page says how reports arrive.
        let web = web(&db).await;
        create_user(&web, "solo@team.test", Role::Admin).await;
        let solo = first_sign_in(&web, "solo@team.test").await;
        let reply = send(&web.router, get("/inbox", Some(&solo))).await;
        let first = between(&reply.body, "id=\"first-run\"", "</section>").expect("the first-run state");
        assert!(first.contains(&web.config.organisation.security_address), "{first}");
        assert!(first.contains("href=\"/report\""), "{first}");

        let d = desk_on(web).await;
        // A responder who sees none of them is told how reports reach them.
        let reply = send(&d.web.router, get("/inbox", Some(&d.off))).await;
        let first = between(&reply.body, "id=\"first-run\"", "</section>").expect("the responder's empty state");
        assert!(first.contains("assigned to you"), "{first}");
        let router = &d.web.router;
        d.web.clock.advance_secs(3 * 3600);
        let reply = send(router, get("/inbox", Some(&d.lead))).await;
        assert!(reply.body.contains("aria-current=\"page\">Open</a>"), "the default view is a tab");
        assert!(!reply.body.contains("id=\"first-run\""));
        let row = between(&reply.body, &format!("value=\"{}\"", d.a), "</tr>").unwrap();
        assert!(row.contains("<span class=\"clock-name\">acknowledge</span>"), "the due column names its clock: {row}");
        assert!(row.contains("in 10 working days"), "{row}");
        assert!(row.contains(">3 hours ago</time>"), "{row}");
        // Saved views.
        let reply = send(router, get("/inbox?state=open&assignee=me", Some(&d.on))).await;
        assert!(reply.body.contains("aria-current=\"page\">Assigned to me</a>"));
        assert!(reply.body.contains(&d.a.to_string()) && !reply.body.contains(&format!("value=\"{}\"", d.b)));
        move_to(&d, &d.b, "needs-info").await;
        let reply = send(router, get("/inbox?state=needs-info", Some(&d.lead))).await;
        assert!(reply.body.contains("aria-current=\"page\">Needs info</a>"));
        assert!(
            reply.body.contains(&format!("value=\"{}\"", d.b)) && !reply.body.contains(&format!("value=\"{}\"", d.a))
        );
        let reply = send(router, get("/inbox?state=new", Some(&d.lead))).await;
        assert!(
            reply.body.contains(&format!("value=\"{}\"", d.a)) && !reply.body.contains(&format!("value=\"{}\"", d.b))
        );
        let reply = send(router, get("/inbox?state=open&due=overdue", Some(&d.lead))).await;
        assert!(reply.body.contains("aria-current=\"page\">Overdue</a>"));
        assert!(reply.body.contains("id=\"no-match\""), "nothing is overdue yet, and that is not a first run");
        d.web.clock.advance_secs(20 * 86_400);
        let lead = sign_in(&d.web, router, "lead@team.test").await;
        let reply = send(router, get("/inbox?state=open&due=overdue", Some(&lead))).await;
        let row = between(&reply.body, &format!("value=\"{}\"", d.a), "</tr>").unwrap();
        assert!(row.contains("class=\"due overdue\"") && row.contains("overdue by"), "{row}");
    }
}

#[tokio::test]
async fn bulk_assign_and_close_go_through_the_use_cases_report_by_report() {
    for db in both_backends() {
        let d = desk(&db).await;
        let router = &d.web.router;
        let (a, b, c) = (d.a.to_string(), d.b.to_string(), d.c.to_string());
        // Nothing ticked, no reason, nobody chosen, an unknown action: the inbox again, 422,
        // the field marked, what was chosen kept.
        let reply =
            send(router, post("/inbox/bulk", Some(&d.lead), &[("action", "close"), ("reason", "closed:spam")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", db.backend);
        assert!(reply.body.contains("id=\"bulk-report-error\""));
        assert!(reply.body.contains("<option value=\"closed:spam\" selected>"));
        let form = [("report", a.as_str()), ("report", b.as_str()), ("action", "close"), ("reason", "")];
        let reply = send(router, post("/inbox/bulk", Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("aria-describedby=\"bulk-reason-error\""));
        assert!(reply.body.contains(&format!("id=\"pick-{a}\" aria-label=\"Tick {a}\" checked")), "the ticks kept");
        assert!(!reply.body.contains(&format!("id=\"pick-{c}\" aria-label=\"Tick {c}\" checked")));
        let form = [("report", a.as_str()), ("action", "assign"), ("to", "")];
        let reply = send(router, post("/inbox/bulk", Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("id=\"bulk-to-error\""));
        let form = [("report", a.as_str()), ("action", "closed:duplicate"), ("reason", "closed:duplicate")];
        assert_eq!(
            send(router, post("/inbox/bulk", Some(&d.lead), &form)).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // More than a bulk action takes is refused before anything changes.
        let many: Vec<String> = (1..=201).map(|n| format!("WEB-2026-{n}")).collect();
        let mut form: Vec<(&str, &str)> = many.iter().map(|r| ("report", r.as_str())).collect();
        form.extend([("action", "close"), ("reason", "closed:spam")]);
        let reply = send(router, post("/inbox/bulk", Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("At most 200 reports at a time."));
        // A cross-site post is refused like every other form.
        let mut forged = post(
            "/inbox/bulk",
            Some(&d.lead),
            &[("report", a.as_str()), ("action", "close"), ("reason", "closed:spam")],
        );
        forged.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert_eq!(send(router, forged).await.status, StatusCode::FORBIDDEN);

        // Bulk assign by the admin.
        let form = [
            ("report", a.as_str()),
            ("report", b.as_str()),
            ("action", "assign"),
            ("to", "off@team.test"),
            ("state", "open"),
        ];
        let reply = send(router, post("/inbox/bulk", Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert!(reply.location().contains("done=assigned&count=2"), "{}", reply.location());
        let inbox = send(router, get(reply.location(), Some(&d.lead))).await;
        assert!(inbox.body.contains("2 reports assigned."));
        for r in [&d.a, &d.b] {
            let trail = embargo_app::audit::for_report(&d.web.app, &local(), r).await.unwrap();
            assert!(trail.iter().any(|e| e.action == "report.assign" && e.actor.starts_with("user:")), "{r} audited");
        }

        // A responder closes: the report they may change is closed with its notice; the one
        // they may not see is refused, named, and left as it was.
        reports::assign(&d.web.app, &local(), &d.a, Some("on@team.test")).await.unwrap();
        let form = [
            ("report", a.as_str()),
            ("report", c.as_str()),
            ("action", "close"),
            ("reason", "closed:not-security"),
            ("notify", "1"),
        ];
        let reply = send(router, post("/inbox/bulk", Some(&d.on), &form)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let results = between(&reply.body, "id=\"bulk-results\"", "</section>").unwrap();
        assert!(results.contains("1 of 2 reports were not changed"), "{results}");
        assert!(results.contains(&format!("{a}</a>: closed (not-security); the reporter is told")), "{results}");
        assert!(results.contains(&format!("{c}</a>: not changed")), "{results}");
        assert!(!results.contains("Charlie"), "nothing of the report it may not see");
        assert!(reply.body.contains(&format!("id=\"pick-{c}\"")) || !reply.body.contains(&format!("value=\"{c}\"")));
        let closed = reports::show(&d.web.app, &local(), &d.a, ReadPurpose::Read).await.unwrap();
        assert!(closed.report.state.is_closed());
        assert_eq!(
            closed.messages.iter().filter(|m| m.kind == reports::MessageKind::Outbound).count(),
            1,
            "the reporter's notice for the reason"
        );
        let trail = embargo_app::audit::for_report(&d.web.app, &local(), &d.a).await.unwrap();
        assert!(trail.iter().any(|e| e.action == "report.transition" && e.details.contains("reason=not-security")));
        let untouched = reports::show(&d.web.app, &local(), &d.c, ReadPurpose::Read).await.unwrap();
        assert_eq!(untouched.report.state, embargo_domain::ReportState::New);

        // Closing without the notice sends none; a responder is offered only themselves.
        let form = [("report", b.as_str()), ("action", "close"), ("reason", "closed:invalid")];
        let reply = send(router, post("/inbox/bulk", Some(&d.lead), &form)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let closed = reports::show(&d.web.app, &local(), &d.b, ReadPurpose::Read).await.unwrap();
        assert!(closed.messages.iter().all(|m| m.kind != reports::MessageKind::Outbound));
        let reply = send(router, get("/inbox?state=any", Some(&d.off))).await;
        let choices = between(&reply.body, "id=\"bulk-to\"", "</select>").unwrap_or("");
        assert!(!choices.contains("lead@team.test"), "{choices}");
    }
}
