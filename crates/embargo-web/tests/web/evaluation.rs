//! Evaluation in the web app: deadlines on the report page and in the inbox, the CVSS
//! calculator (buttons without JavaScript, pasted vectors, the live score route),
//! classification and affected versions, the business calendar and the catalogue details,
//! each checked for who may use it.

use super::*;

fn form_of<'a>(pairs: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn the_report_page_scores_classifies_and_shows_deadlines() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        let page = format!("/reports/{r1}");

        // Deadlines: a new report shows its acknowledgement deadline (Wednesday 12:00 + 10
        // working days = Wednesday 2026-03-18).
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("Deadlines") && reply.body.contains("2026-03-18"), "{}", db.backend);
        assert!(reply.body.contains("cvss-calc") && reply.body.contains("name=\"m_AV\""));

        // The calculator's buttons (no JavaScript): every base metric picked.
        let metrics =
            [("AV", "N"), ("AC", "L"), ("PR", "N"), ("UI", "N"), ("S", "U"), ("C", "H"), ("I", "H"), ("A", "H")];
        let mut fields: Vec<(&str, String)> = vec![("version", "3.1".into()), ("extra", String::new())];
        let names: Vec<String> = metrics.iter().map(|(m, _)| format!("m_{m}")).collect();
        for ((_, v), name) in metrics.iter().zip(&names) {
            fields.push((name.as_str(), (*v).to_owned()));
        }
        let reply = send(router, post(&format!("{page}/cvss"), Some(&w.on), &form_of(&fields))).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(reply.body.contains("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"));
        assert!(reply.body.contains("9.8 Critical"), "score shown");
        // Critical: the fix clock will use 7 working days; severity is on the page.
        assert!(reply.body.contains("Critical"));

        // A missing metric and a wrong vector are clear errors that store nothing.
        let reply = send(router, post(&format!("{page}/cvss"), Some(&w.on), &[("version", "4.0")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("choose a value for Attack Vector"), "{}", reply.body);
        let bad = [("version", "4.0"), ("vector", "CVSS:4.0/AV:N/AC:L")];
        let reply = send(router, post(&format!("{page}/cvss"), Some(&w.on), &bad)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("CVSS vector"), "{}", reply.body);
        let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        let reply =
            send(router, post(&format!("{page}/cvss"), Some(&w.on), &[("version", "4.0"), ("vector", v4)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(reply.body.contains(v4) && reply.body.contains("9.3 Critical (CVSS-B)"), "4.0 scored");

        // The live score for the calculator's script.
        let reply = send(router, get(&format!("/cvss/score?vector={}", encode(v4)), Some(&w.on))).await;
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["score"], 9.3);
        assert_eq!(json["severity"], "Critical");
        let reply = send(router, get("/cvss/score?vector=CVSS%3A3.1%2Fav%3AN", Some(&w.on))).await;
        assert!(reply.body.contains("error"), "{}", reply.body);
        let reply = send(router, get("/cvss/score?vector=x", None)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "team only");

        // Classification: CWE checked strictly, SSVC decided by the table.
        let class = [("cwe", "CWE-79, CWE-352"), ("ssvc_e", "A"), ("ssvc_u", "S"), ("ssvc_ti", "T"), ("ssvc_psi", "S")];
        let reply = send(router, post(&format!("{page}/classification"), Some(&w.on), &class)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(reply.body.contains("CWE-79, CWE-352") && reply.body.contains("Immediate"), "SSVC outcome shown");
        let reply = send(router, post(&format!("{page}/classification"), Some(&w.on), &[("cwe", "XSS")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = send(router, post(&format!("{page}/classification"), Some(&w.on), &[("ssvc_e", "A")])).await;
        assert!(reply.body.contains("all four decision points"), "{}", reply.body);

        // Affected versions need catalogue products (admins add them and their details).
        let reply = send(router, post("/admin/products", Some(&w.admin), &[("name", "libparse")])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let products = accounts::products(&w.web.app, &Actor::System("test")).await.unwrap();
        let id = products.iter().find(|p| p.product.name == "libparse").unwrap().product.id.to_string();
        let details = [
            ("repository_url", "https://git.example.org/libparse"),
            ("ecosystem", "crates.io"),
            ("purl", "pkg:cargo/libparse"),
            ("release_lines", "2.x, 1.8"),
        ];
        let reply = send(router, post(&format!("/admin/products/{id}"), Some(&w.on), &details)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "catalogue edits are for admins");
        let reply = send(router, post(&format!("/admin/products/{id}"), Some(&w.admin), &details)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let bad = [("purl", "cargo/libparse")];
        let reply = send(router, post(&format!("/admin/products/{id}"), Some(&w.admin), &bad)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = send(router, get("/admin", Some(&w.admin))).await;
        assert!(reply.body.contains("pkg:cargo/libparse") && reply.body.contains("2.x, 1.8"));

        let rows = [("product_0", id.as_str()), ("introduced_0", "2.0.0"), ("fixed_0", "2.4.1")];
        let reply = send(router, post(&format!("{page}/affected"), Some(&w.on), &rows)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(reply.body.contains("value=\"2.4.1\""));
        let both = [("product_0", id.as_str()), ("introduced_0", "0"), ("fixed_0", "1"), ("last_affected_0", "2")];
        let reply = send(router, post(&format!("{page}/affected"), Some(&w.on), &both)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);

        // The API shows the same assessment and deadlines.
        let reply = send(router, api("GET", &format!("/api/v1/reports/{r1}"), Some(&w.on_token), None)).await;
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["assessment"]["cvss_v4"], v4);
        assert_eq!(json["assessment"]["severity"], "critical");
        assert_eq!(json["assessment"]["affected"][0]["fixed"], "2.4.1");
        assert_eq!(json["deadlines"][0]["clock"], "acknowledge");
        assert_eq!(json["deadlines"][0]["due"], "2026-03-18T12:00:00Z");

        // Nothing of this reaches a responder off the report.
        for path in ["cvss", "classification", "affected"] {
            let reply =
                send(router, post(&format!("{page}/{path}"), Some(&w.off), &[("version", "3.1"), ("clear", "1")]))
                    .await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        }
        // The assessment is sealed: no CWE or vector in the SQLite files.
        if db.backend == "sqlite" {
            let mut raw = Vec::new();
            for entry in std::fs::read_dir(&w.web.config.data_dir).unwrap().flatten() {
                if entry.file_name().to_string_lossy().starts_with("embargo.db") {
                    raw.extend(std::fs::read(entry.path()).unwrap());
                }
            }
            let text = String::from_utf8_lossy(&raw);
            assert!(!text.contains("CWE-352") && !text.contains("AV:N/AC:L/AT:N"), "assessment stored in clear");
        }
    }
}

#[tokio::test]
async fn the_business_calendar_is_edited_by_admins_and_moves_deadlines() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let reply = send(router, get("/admin/calendar", Some(&w.on))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("name=\"weekend\" value=\"saturday\" checked"));

        // The report of Wednesday 2026-03-04 12:00 is due Wednesday 2026-03-18; a holiday on
        // Monday 2026-03-16 moves it to Thursday 2026-03-19.
        let holiday = [("day", "2026-03-16"), ("name", "Founders' day")];
        let reply = send(router, post("/admin/calendar/holidays", Some(&w.admin), &holiday)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        embargo_app::sla_sweep::sweep(&w.web.app).await.unwrap();
        let reply = send(router, get(&format!("/reports/{}", w.r1), Some(&w.admin))).await;
        assert!(reply.body.contains("2026-03-19") && !reply.body.contains("2026-03-18"), "{}", db.backend);
        let reply = send(router, get("/inbox", Some(&w.admin))).await;
        assert!(reply.body.contains("title=\"2026-03-19 12:00 UTC\""), "the inbox shows the moved deadline");

        // An .ics upload adds holidays; a broken one is refused with the reason.
        let ics = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\n\
SUMMARY:Winter break\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let mut request = multipart("/admin/calendar/import", &[], &[("ics", ics)]);
        request.headers_mut().insert(header::COOKIE, w.admin.parse().unwrap());
        let reply = send(router, request).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        for day in ["2026-12-24", "2026-12-25", "2026-12-26"] {
            assert!(reply.body.contains(day), "{day}");
        }
        assert!(!reply.body.contains("2026-12-27"), "DTEND is exclusive");
        let mut request = multipart(
            "/admin/calendar/import",
            &[],
            &[("ics", b"BEGIN:VEVENT\r\nDTSTART:20261224T100000Z\r\nEND:VEVENT\r\n")],
        );
        request.headers_mut().insert(header::COOKIE, w.admin.parse().unwrap());
        let reply = send(router, request).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);

        // Weekend and time zone.
        let settings = [("time_zone", "Asia/Jerusalem"), ("weekend", "friday"), ("weekend", "saturday")];
        let reply = send(router, post("/admin/calendar", Some(&w.admin), &settings)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        assert!(reply.body.contains("Asia/Jerusalem") && reply.body.contains("value=\"friday\" checked"));
        let reply = send(router, post("/admin/calendar", Some(&w.admin), &[("time_zone", "Nowhere/City")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = send(router, post("/admin/calendar/holidays/2026-12-25/remove", Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn an_advisory_is_edited_reviewed_and_published_from_the_team_app() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        // Started from the report: a private draft.
        let reply = send(router, post(&format!("/reports/{r1}/advisory"), Some(&w.on), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = reply.location().to_owned();
        let id = page.rsplit('/').next().unwrap().to_owned();
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(reply.body.contains("Outputs") && reply.body.contains("Alpha overflow"), "{}", db.backend);
        assert_eq!(send(router, get(&page, Some(&w.off))).await.status, StatusCode::NOT_FOUND, "need-to-know");
        let reply = send(router, get(&page, None)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "team only");
        assert!(reply.location().starts_with("/login?next="), "team only: {}", reply.location());
        assert_eq!(send(router, get(&format!("/advisories/{id}"), None)).await.status, StatusCode::NOT_FOUND);

        // The editor says why it is not ready; a bad line is a clear error that keeps nothing.
        let form = [
            ("title", "Heap overflow in the Alpha parser"),
            ("summary", "A crafted file overflows a heap buffer in the parser."),
            ("details", "Parsing a crafted file writes past a heap buffer."),
            ("workarounds", "Do not parse untrusted files until you upgrade."),
            ("cvss_v3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
            ("cwe", "CWE-787"),
            ("references", "FIX https://git.example.org/alpha/commit/1"),
            ("credits", "FINDER Alice"),
            // The affected package, as one row of the editor.
            ("a_product", "alpha"),
            ("a_vendor", "Example"),
            ("a_ecosystem", "crates.io"),
            ("a_purl", "pkg:cargo/alpha"),
            ("a_repository", ""),
            ("a_kind", "SEMVER"),
            ("a_introduced", "1.0.0"),
            ("a_end_kind", "fixed"),
            ("a_end", "1.2.0"),
            ("a_versions", ""),
        ];
        let mut bad = form.to_vec();
        bad[6] = ("references", "SOMETIMES https://example.org");
        let reply = send(router, post(&page, Some(&w.on), &bad)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("start with a type"), "{}", reply.body);
        let reply = send(router, post(&page, Some(&w.on), &form)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(!reply.body.contains("check-invalid"), "every output valid: {}", reply.body);

        // Review by a second person, then publish.
        let reply = send(router, post(&format!("{page}/submit"), Some(&w.on), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, post(&format!("{page}/approve"), Some(&w.on), &[])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "not by the one who asked");
        assert!(reply.body.contains("second person"));
        let reply = send(router, post(&format!("{page}/approve"), Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, get(&format!("{page}/export/csaf"), Some(&w.admin))).await;
        assert!(reply.body.contains("csaf_security_advisory"));
        // Publishing is a permission (admins): the responder is offered no button and refused.
        let reply = send(router, get(&page, Some(&w.on))).await;
        assert!(!reply.body.contains("Publish now") && reply.body.contains("An administrator publishes it"));
        let reply = send(router, post(&format!("{page}/publish"), Some(&w.on), &[])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", db.backend);
        assert!(send(router, get(&page, Some(&w.admin))).await.body.contains("Publish now"));
        let reply = send(router, post(&format!("{page}/publish"), Some(&w.admin), &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        // Published under its public ID (the draft's handle is not a public name).
        let year = w.web.app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        let public_id = format!("WEB-{year}-0001");
        assert!(id.starts_with("DRAFT-"), "{id}");
        assert_eq!(send(router, get(&format!("/advisories/{id}"), None)).await.status, StatusCode::NOT_FOUND);
        let public = send(router, get(&format!("/advisories/{public_id}"), None)).await;
        assert_eq!(public.status, StatusCode::OK);
        assert!(
            public.body.contains("Heap overflow in the Alpha parser") && public.body.contains("Do not parse untrusted")
        );
        let reply = send(router, get("/team/advisories", Some(&w.on))).await;
        assert!(reply.body.contains(&id) && reply.body.contains(&public_id) && reply.body.contains("published"));

        // Issue 19 item 1: withdrawn from the team page (admins), with the reason published.
        let reply = send(router, get(&page, Some(&w.admin))).await;
        assert!(
            reply.body.contains("Withdraw the advisory")
                && reply.body.contains(&format!("href=\"/advisories/{public_id}\""))
        );
        assert!(!send(router, get(&page, Some(&w.on))).await.body.contains("Withdraw the advisory"), "admins only");
        let withdraw = format!("{page}/withdraw");
        let reason = "Not exploitable: the overflow is in dead code.";
        let reply = send(router, post(&withdraw, Some(&w.on), &[("reason", reason)])).await;
        assert!(matches!(reply.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", reply.status);
        let reply = send(router, post(&withdraw, Some(&w.admin), &[("reason", " ")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "a reason is needed");
        let reply = send(router, post(&withdraw, Some(&w.admin), &[("reason", reason)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = send(router, get(reply.location(), Some(&w.admin))).await;
        assert!(reply.body.contains("withdrawn") && !reply.body.contains("Withdraw the advisory"), "{}", reply.body);
        let osv: serde_json::Value =
            serde_json::from_str(&send(router, get(&format!("/advisories/{public_id}.json"), None)).await.body)
                .unwrap();
        assert!(osv["withdrawn"].is_string() && osv["details"].as_str().unwrap().contains(reason), "{osv}");
    }
}

/// Issue 20: one calendar, one time zone everywhere: the inbox shows a deadline on the same
/// day as the report page (the calendar's zone, not `sla.time_zone`), and the "soon" badge
/// uses the business calendar, as the `due=soon` filter does.
#[tokio::test]
async fn the_inbox_and_the_report_page_show_deadlines_in_the_calendars_zone() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        // UTC+14, with a holiday on Wednesday 18 March there.
        let settings = [("time_zone", "Pacific/Kiritimati"), ("weekend", "saturday"), ("weekend", "sunday")];
        let reply = send(router, post("/admin/calendar", Some(&w.admin), &settings)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let holiday = [("day", "2026-03-18"), ("name", "Closed")];
        let reply = send(router, post("/admin/calendar/holidays", Some(&w.admin), &holiday)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        // Monday 16 March 12:00 UTC is Tuesday 17 March 02:00 there; r1's acknowledgement is
        // due Thursday 19 March 11:00 UTC, Friday 20 March 01:00 there. Two working days from
        // now there (the 18th is off) end on Friday 20 March 02:00: it is due soon. (A plain
        // Saturday–Sunday week in UTC ends on Wednesday 18 March 12:00: not soon.)
        w.web.clock.set("2026-03-16T12:00:00Z");
        let admin = sign_in(&w.web, router, "admin@team.test").await;
        let local = Actor::LocalAdmin { os_user: "test".into() };
        let detail = reports::show(&w.web.app, &local, &w.r1, reports::ReadPurpose::Read).await.unwrap();
        let mut tx = w.web.app.store.begin().await.unwrap();
        let mut record = embargo_store::sla::get(&mut tx, detail.report.id).await.unwrap();
        record.ack_due_at = Some("2026-03-19T11:00:00Z".parse().unwrap());
        embargo_store::sla::set(&mut tx, detail.report.id, &record).await.unwrap();
        tx.commit().await.unwrap();

        let reply = send(router, get("/inbox", Some(&admin))).await;
        let row = &reply.body[reply.body.find(&w.r1.to_string()).expect("r1 listed")..];
        let due = between(row, "data-label=\"Due\" class=\"", "</td>").unwrap();
        // Relative, with its clock, and the instant in the calendar's zone (issue 18).
        assert!(
            due.starts_with("due soon\"><span><span class=\"clock-name\">acknowledge</span>"),
            "{}: {due}",
            db.backend
        );
        assert!(due.contains("title=\"2026-03-20 01:00 +14\">in 2 working days<"), "{}: {due}", db.backend);
        let reply = send(router, get("/inbox?due=soon", Some(&admin))).await;
        assert!(reply.body.contains(&w.r1.to_string()), "the filter agrees with the badge");
        let reply = send(router, get(&format!("/reports/{}", w.r1), Some(&admin))).await;
        assert!(reply.body.contains("Fri 2026-03-20 "), "the same day as in the inbox: {}", db.backend);
    }
}

/// Issue 20: the web upload reads an .ics file as the CLI does (UTF-8 only) and says so when
/// a file is over 1 MiB; yearly events are listed as rules and can be removed.
#[tokio::test]
async fn the_ics_upload_refuses_what_the_cli_refuses_and_keeps_yearly_rules() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let upload = |bytes: Vec<u8>| {
            let mut request = multipart("/admin/calendar/import", &[], &[("ics", bytes.as_slice())]);
            request.headers_mut().insert(header::COOKIE, w.admin.parse().unwrap());
            send(router, request)
        };
        let latin1 = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260714\r\nSUMMARY:F\xeate nationale\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n"
            .to_vec();
        let reply = upload(latin1).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", db.backend);
        assert!(reply.body.contains("not UTF-8"), "{}", reply.body);
        let broken = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260714\r\nSUMMARY:\xe2\x82\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n"
            .to_vec();
        assert_eq!(upload(broken).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        for size in [1024 * 1024 + 1, 3 * 1024 * 1024] {
            let mut big = b"BEGIN:VCALENDAR\r\n".to_vec();
            big.resize(size, b'\n');
            let reply = upload(big).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{size}");
            assert!(reply.body.contains("at most 1048576 bytes (1 MiB)"), "{size}: {}", reply.body);
        }
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        assert!(!reply.body.contains("2026-07-14"), "nothing imported");

        let yearly = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20101111\r\nRRULE:FREQ=YEARLY\r\n\
SUMMARY:Armistice Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            .to_vec();
        assert_eq!(upload(yearly).await.status, StatusCode::SEE_OTHER);
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        assert!(reply.body.contains("every year on 11 November from 2010"), "{}", reply.body);
        let rule = "DTSTART=20101111;INTERVAL=1;DAYS=1";
        let reply = send(router, post("/admin/calendar/yearly/remove", Some(&w.admin), &[("rule", rule)])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = send(router, get("/admin/calendar", Some(&w.admin))).await;
        assert!(!reply.body.contains("11 November"));
        let reply = send(router, post("/admin/calendar/yearly/remove", Some(&w.on), &[("rule", rule)])).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
}
