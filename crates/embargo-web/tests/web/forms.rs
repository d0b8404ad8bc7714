//! Bad input answered with the same form (the field marked, the input kept), the reporter's
//! status page ("what happens next", the needs-info banner, a refused reply kept), the
//! needs-info notice, and the policy page.

use super::*;

/// The open tag of the element with `id`.
fn tag_with_id<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let start = body[..at].rfind('<').unwrap();
    let end = at + body[at..].find('>').unwrap();
    &body[start..=end]
}

#[tokio::test]
async fn bad_input_comes_back_as_the_same_form_with_the_field_marked_and_the_input_kept() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        // A product name already taken: the team page again, the name marked and kept.
        let ok = send(router, post("/admin/products", Some(&w.admin), &[("name", "Widget")])).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
        let again = send(router, post("/admin/products", Some(&w.admin), &[("name", "Widget")])).await;
        assert!(again.status.is_client_error(), "{}", again.status);
        let body = &again.body;
        assert!(body.contains("<title>Error: Team"), "{body}");
        let form = between(body, "action=\"/admin/products\"", "</form>").expect("the same form");
        assert!(form.contains("aria-invalid=\"true\""), "{form}");
        assert!(form.contains("value=\"Widget\""), "the input is kept: {form}");
        let described = between(form, "aria-describedby=\"", "\"").unwrap();
        assert!(form.contains(&format!("<span class=\"field-error\" id=\"{described}\">Error: ")), "{form}");

        // Hostile input comes back as text, in the value.
        let hostile = "\"><script>alert(1)</script>";
        let user = send(
            router,
            post("/admin/users", Some(&w.admin), &[("email", hostile), ("role", "responder"), ("password", "pw")]),
        )
        .await;
        assert!(user.status.is_client_error());
        assert!(!user.body.contains("<script>alert(1)"), "escaped");
        let form = between(&user.body, "action=\"/admin/users\"", "</form>").expect("the same form");
        assert!(form.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""), "{form}");
        assert!(!form.contains("value=\"pw\""), "a password is never sent back");
        assert_eq!(form.matches("aria-invalid=\"true\"").count(), 1, "{form}");

        // The advisory editor: a bad credit line, every field kept.
        let id = embargo_app::advisories::create(
            &w.web.app,
            &Actor::LocalAdmin { os_user: "t".into() },
            "Overflow in the parser",
            None,
        )
        .await
        .unwrap();
        let path = format!("/team/advisories/{id}");
        let reply = send(
            router,
            post(
                &path,
                Some(&w.admin),
                &[("title", "Kept title"), ("summary", "Kept <summary>"), ("credits", "NOBODY Someone")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        let form = between(&reply.body, &format!("action=\"{path}\""), "</form>").expect("the same form");
        assert!(tag_with_id(form, "credits").contains("aria-invalid=\"true\""), "{form}");
        assert!(
            form.contains("NOBODY Someone")
                && form.contains("value=\"Kept title\"")
                && form.contains("Kept &lt;summary&gt;")
        );
    }
}

#[tokio::test]
async fn the_status_page_says_what_happens_next_and_asks_plainly_in_needs_info() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        let status_path = format!("/status/{}", w.link1);
        // New: the acknowledgement is due; no fix target or disclosure date yet.
        let page = send(router, get(&status_path, None)).await;
        let next = between(&page.body, "id=\"next-steps\"", "</section>").unwrap();
        assert!(next.contains("<dt>Acknowledgement</dt><dd>by ") && next.contains("at the latest"), "{next}");
        assert!(next.contains("set once the team confirms the vulnerability"), "{next}");
        assert!(next.contains("<dt>Planned disclosure</dt><dd>not set yet"), "{next}");
        assert!(!page.body.contains("id=\"needs-info\""));

        // Needs info, with the template's questions replaced by the team's.
        let path = format!("/reports/{r1}/transition");
        let preview = send(router, post(&path, Some(&w.on), &[("target", "needs-info")])).await;
        assert!(preview.body.contains("How to answer: reply to this message"), "{}", preview.body);
        assert!(preview.body.contains("[[status-link]]"), "the notice carries the status link: {}", preview.body);
        assert!(preview.body.contains("If we do not hear from you by"), "the auto-close date");
        let question = "Which <version> do you run?";
        let reply = send(
            router,
            post(
                &path,
                Some(&w.on),
                &[("target", "needs-info"), ("confirm", "1"), ("send", "1"), ("notice", question)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = send(router, get(&status_path, None)).await;
        let banner = between(&page.body, "id=\"needs-info\"", "</section>").expect("the needs-info banner");
        assert!(banner.contains("Which &lt;version&gt; do you run?"), "what is asked, as text: {banner}");
        assert!(banner.contains("If they do not hear from you by <strong>"), "the auto-close date: {banner}");
        assert!(banner.contains("href=\"#body\""), "it points to the reply box");
        let next = between(&page.body, "id=\"next-steps\"", "</section>").unwrap();
        assert!(next.contains("<dt>Your answer</dt><dd>needed by "), "{next}");

        // A reply with nothing in it: the same page, the box marked and the text kept.
        let refused = send(router, multipart(&format!("{status_path}/reply"), &[("body", "   ")], &[])).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("<title>Error: Report"));
        let textarea = tag_with_id(&refused.body, "body");
        assert!(textarea.contains("aria-invalid=\"true\"") && textarea.contains("aria-describedby=\"body-error\""));
        assert!(refused.body.contains("Files are not kept: attach them again."));
        // The reply box comes before the thread.
        let reply_at = refused.body.find("id=\"reply-h\"").unwrap();
        assert!(reply_at < refused.body.find("id=\"timeline-h\"").unwrap());

        // Accepted, with a planned disclosure: the fix target and the date.
        let answer = send(router, multipart(&format!("{status_path}/reply"), &[("body", "2.4.1")], &[])).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        let reply =
            send(router, post(&path, Some(&w.on), &[("target", "accepted"), ("confirm", "1"), ("send", "0")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let id =
            reports::show(&w.web.app, &Actor::LocalAdmin { os_user: "t".into() }, &w.r1, reports::ReadPurpose::Read)
                .await
                .unwrap()
                .report
                .id;
        let now = w.web.app.now();
        let at = now.checked_add(jiff::SignedDuration::from_hours(24 * 40)).unwrap();
        let mut tx = w.web.app.store.begin().await.unwrap();
        embargo_store::partners::save_embargo(
            &mut tx,
            &embargo_store::partners::Embargo {
                report: id,
                state: embargo_domain::EmbargoState::Active,
                disclose_at: at,
                first_notice_at: None,
                public_id: "EMB-1".into(),
                announced_at: None,
                announced_severity: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let page = send(router, get(&status_path, None)).await;
        assert!(!page.body.contains("id=\"needs-info\""), "answered: no banner");
        let next = between(&page.body, "id=\"next-steps\"", "</section>").unwrap();
        let day = at.to_zoned_datetime(w.web.app.time_zone()).strftime("%a %-d %b %Y").to_string();
        assert!(next.contains(&format!("<dt>Planned disclosure</dt><dd>{day}</dd>")), "{next}");
        assert!(next.contains("<dt>Fix target</dt><dd>") && !next.contains("set once the team confirms"), "{next}");
        assert!(next.contains("<dt>Next update from the team</dt><dd>by "), "{next}");
    }
}

#[tokio::test]
async fn the_policy_page_names_the_scope_the_safe_harbour_and_the_key_fingerprint() {
    let db = embargo_test_support::sqlite();
    let web = web_with(&db, |c| {
        c.policy.scope = "The <Widget> server and its clients.".into();
        c.policy.safe_harbour = "We will not sue good-faith researchers.".into();
    })
    .await;
    let page = send(&web.router, get("/policy", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("The &#60;Widget&#62; server and its clients."), "{}", page.body);
    assert!(page.body.contains("We will not sue good-faith researchers."));
    let key = embargo_app::openpgp::instance_key(&web.app).await.unwrap().fingerprint();
    let shown = between(&page.body, "id=\"fingerprint\">", "</code>").unwrap().replace(' ', "");
    assert_eq!(shown, key);
    // By default: the products, and the default statement.
    let db = embargo_test_support::sqlite();
    let web = common::web(&db).await;
    accounts::create_product(&web.app, &Actor::LocalAdmin { os_user: "t".into() }, "Gadget").await.unwrap();
    let page = send(&web.router, get("/policy", None)).await;
    assert!(page.body.contains("<li>Gadget</li>"), "{}", page.body);
    assert!(page.body.contains("We will not take legal action against you"));
}
