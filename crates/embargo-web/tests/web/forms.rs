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

/// A form report whose reporter asked to be credited as "Rita R.".
async fn form_report(w: &World) -> ReferenceId {
    let mut submission = submission("rita@example.net", "Overflow in the widget parser", "details");
    submission.channel = Channel::Web;
    submission.reporter_name = Some("Rita Reporter".into());
    submission.details = Some(serde_json::json!({ "credit": "name", "credit_name": "Rita R." }).to_string());
    reports::submit(&w.web.app, &Actor::System("test"), submission).await.unwrap().reference
}

#[tokio::test]
async fn the_advisory_editor_edits_ranges_as_rows_prefills_credits_and_warns_of_a_second_draft() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let local = Actor::LocalAdmin { os_user: "t".into() };
        let reference = form_report(&w).await;
        // Started from the report: the reporter's choice of credit is there.
        let start = format!("/reports/{reference}/advisory");
        let reply = send(router, post(&start, Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let path = reply.location().to_owned();
        let id = path.rsplit('/').next().unwrap().to_owned();
        let advisory = embargo_app::advisories::get(&w.web.app, &local, &id).await.unwrap();
        assert_eq!(advisory.record.credits.len(), 1);
        assert_eq!(advisory.record.credits[0].name, "Rita R.");
        assert_eq!(advisory.record.credits[0].kind, Some(embargo_advisory::CreditType::Reporter));
        let page = send(router, get(&path, Some(&w.admin))).await;
        assert!(page.body.contains("REPORTER Rita R."), "{}", page.body);

        // A second start warns, and starts another only when asked again.
        let reply = send(router, post(&start, Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.body.contains("id=\"draft-warning\"")
                && reply.body.contains(&format!("href=\"/team/advisories/{id}\""))
        );
        let another = send(router, post(&start, Some(&w.admin), &[("another", "1")])).await;
        assert_eq!(another.status, StatusCode::SEE_OTHER);
        assert_ne!(another.location(), path);

        // Ranges as rows: two rows of one package, a Git range, a blank row.
        let mut form: Vec<(&str, &str)> = vec![
            ("title", "Overflow in the widget parser"),
            ("summary", "A crafted file overflows a buffer in the parser."),
            ("cvss_v3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            ("credits", "REPORTER Rita R."),
        ];
        let rows: [[&str; 10]; 4] = [
            ["widget", "Acme", "crates.io", "pkg:cargo/widget", "", "SEMVER", "1.0.0", "fixed", "1.2.3", ""],
            ["widget", "Acme", "crates.io", "pkg:cargo/widget", "", "SEMVER", "2.0.0", "fixed", "2.0.5", ""],
            [
                "Widget Server",
                "Acme",
                "",
                "",
                "https://git.example/widget",
                "GIT",
                "0123456789abcdef0123456789abcdef01234567",
                "fixed",
                "89abcdef0123456789abcdef0123456789abcdef",
                "",
            ],
            ["", "", "", "", "", "", "", "fixed", "", ""],
        ];
        for row in &rows {
            for (name, value) in crate_fields().iter().zip(row.iter()) {
                form.push((name, value));
            }
        }
        let saved = send(router, post(&path, Some(&w.admin), &form)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let advisory = embargo_app::advisories::get(&w.web.app, &local, &id).await.unwrap();
        let affected = &advisory.record.affected;
        assert_eq!(affected.len(), 2, "{affected:?}");
        use embargo_advisory::{Event, RangeKind};
        assert_eq!(affected[0].product, "widget");
        assert_eq!(affected[0].ecosystem.as_deref(), Some("crates.io"));
        assert_eq!(affected[0].ranges.len(), 1);
        assert_eq!(affected[0].ranges[0].kind, RangeKind::Semver);
        assert_eq!(
            affected[0].ranges[0].events,
            vec![
                Event::Introduced("1.0.0".into()),
                Event::Fixed("1.2.3".into()),
                Event::Introduced("2.0.0".into()),
                Event::Fixed("2.0.5".into())
            ]
        );
        assert_eq!(affected[1].repository.as_deref(), Some("https://git.example/widget"));
        assert_eq!(affected[1].ranges[0].kind, RangeKind::Git);
        // The OSV output has them, and passes its checks.
        let osv = send(router, get(&format!("{path}/export/osv"), Some(&w.admin))).await;
        let osv: serde_json::Value = serde_json::from_str(&osv.body).unwrap();
        assert_eq!(osv["affected"][0]["package"]["name"], "widget");
        assert_eq!(osv["affected"][0]["ranges"][0]["events"][3]["fixed"], "2.0.5");
        let osv_status =
            advisory.validation.formats.iter().find(|(f, _)| f.to_string().contains("OSV")).map(|(_, s)| s.clone());
        assert!(!matches!(osv_status, Some(embargo_advisory::Status::Invalid(_))), "{osv_status:?}");
        // The editor shows the rows again (and one blank row).
        let page = send(router, get(&path, Some(&w.admin))).await;
        assert_eq!(page.body.matches("name=\"a_product\"").count(), 4, "three ranges and a blank row");
        assert!(
            page.body.contains("id=\"a_introduced-1\" name=\"a_introduced\" class=\"mono\" value=\"2.0.0\""),
            "{}",
            page.body
        );
        // Add rows: more blank rows, nothing saved.
        let mut more = form.clone();
        more.push(("add_rows", "1"));
        more[0] = ("title", "Not saved");
        let added = send(router, post(&path, Some(&w.admin), &more)).await;
        assert_eq!(added.status, StatusCode::OK);
        assert_eq!(added.body.matches("name=\"a_product\"").count(), 6, "three ranges and three blank rows");
        assert!(added.body.contains("value=\"Not saved\""));
        let advisory = embargo_app::advisories::get(&w.web.app, &local, &id).await.unwrap();
        assert_eq!(advisory.record.title, "Overflow in the widget parser", "adding rows saves nothing");
        // A bad row: the same form, that row's field marked, every row kept.
        let mut bad = form.clone();
        let git_kind = bad.iter().rposition(|(n, v)| *n == "a_repository" && v.starts_with("https")).unwrap();
        bad[git_kind].1 = "";
        let refused = send(router, post(&path, Some(&w.admin), &bad)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert!(tag_with_id(&refused.body, "a_repository-2").contains("aria-invalid=\"true\""), "{}", refused.body);
        assert!(!tag_with_id(&refused.body, "a_repository-0").contains("aria-invalid"));
        assert!(
            tag_with_id(&refused.body, "a_introduced-2").contains("value=\"0123456789abcdef0123456789abcdef01234567\"")
        );

        // The list shows the severity and the covered reports.
        let list = send(router, get("/team/advisories", Some(&w.admin))).await;
        let table = between(&list.body, "id=\"advisories\"", "</table>").unwrap();
        let row = between(table, &format!("href=\"/team/advisories/{id}\""), "</tr>").unwrap();
        assert!(row.contains("Critical 9.8"), "{row}");
        assert!(row.contains(&format!("href=\"/reports/{reference}\"")), "{row}");
    }
}

fn crate_fields() -> [&'static str; 10] {
    [
        "a_product",
        "a_vendor",
        "a_ecosystem",
        "a_purl",
        "a_repository",
        "a_kind",
        "a_introduced",
        "a_end_kind",
        "a_end",
        "a_versions",
    ]
}
