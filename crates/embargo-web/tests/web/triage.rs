//! Triage aids, on both backends: the index job (search is eventually consistent), split
//! reports, the reporter's history with the flagged marker and sort order, and near-duplicate
//! suggestions under need-to-know.

use super::*;
use embargo_app::jobs::{self, Worker};
use embargo_app::reports::InboxQuery;

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "test".into() }
}

/// Runs every due job.
async fn drain(app: &App) {
    let worker = Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

async fn search(app: &App, words: &str) -> Vec<String> {
    let query = InboxQuery {
        state: Some("any".into()),
        search: Some(words.into()),
        page: 1,
        per_page: 50,
        ..Default::default()
    };
    reports::inbox(app, &local(), &query)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.summary.reference.to_string())
        .collect()
}

async fn index_jobs(app: &App, state: &str) -> usize {
    jobs::list(app, &local(), Some(state), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.kind == <embargo_app::reports::IndexJob as jobs::Job>::KIND)
        .count()
}

#[tokio::test]
async fn the_index_job_makes_a_report_searchable_once_and_leaves_no_plaintext() {
    for db in both_backends() {
        let web = web(&db).await;
        let app = &web.app;
        let system = Actor::System("test");
        let new =
            reports::submit(app, &system, submission("quinn@example.net", "Quokka overflow", "the quokka canary"))
                .await
                .unwrap();
        assert!(search(app, "quokka").await.is_empty(), "{}: not searchable before the job ran", db.backend);
        assert_eq!(index_jobs(app, "queued").await, 1);

        // Two workers race for the job: one runs it, the other finds nothing to do.
        let (first, second) = (Worker::new(app.clone()), Worker::new(app.clone()));
        let (a, b) = tokio::join!(first.run_once(), second.run_once());
        assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1, "{}", db.backend);
        assert!(!first.run_once().await.unwrap() && !second.run_once().await.unwrap(), "nothing is left to run");
        assert_eq!(search(app, "quokka").await, vec![new.reference.to_string()], "{}", db.backend);
        assert_eq!(search(app, "quinn").await.len(), 1, "the reporter's address is indexed too");
        assert_eq!(index_jobs(app, "done").await, 1);

        // A reply from the reporter is indexed by its own job, once.
        let reply = Submission { attachments: vec![], ..submission("quinn@example.net", "Re", "a wombat detail") };
        reports::add_inbound_message(app, &system, new.id, &reply, false).await.unwrap();
        assert!(search(app, "wombat").await.is_empty());
        drain(app).await;
        assert_eq!(search(app, "wombat").await.len(), 1);
        assert_eq!(index_jobs(app, "done").await, 2);
        // Quarantined mail (not from the reporter) is not indexed at all.
        let stranger = Submission { attachments: vec![], ..submission("eve@example.net", "Re", "a platypus claim") };
        reports::add_inbound_message(app, &system, new.id, &stranger, true).await.unwrap();
        drain(app).await;
        assert!(search(app, "platypus").await.is_empty());
        assert_eq!(index_jobs(app, "done").await, 2);

        if db.backend == "sqlite" {
            for needle in [&b"quokka"[..], b"wombat", b"canary", b"Quokka overflow"] {
                assert!(
                    embargo_test_support::files_containing(&db.files, needle).is_empty(),
                    "{:?} is in the database files",
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}

#[tokio::test]
async fn a_split_report_is_linked_both_ways_has_its_own_clock_and_is_audited_on_both() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let r1 = w.r1.to_string();
        // Someone off the report cannot split it, and does not learn that it exists.
        let reply =
            send(router, post(&format!("/reports/{r1}/split"), Some(&w.off), &[("title", "x"), ("body", "y")])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        // The split form starts empty.
        let page = send(router, get(&format!("/reports/{r1}"), Some(&w.on))).await;
        assert!(page.body.contains("id=\"split-title\" name=\"title\" value=\"\""), "{}", db.backend);

        w.web.clock.advance_secs(3600);
        let reply = send(
            router,
            post(
                &format!("/reports/{r1}/split"),
                Some(&w.on),
                &[("title", "Second finding: header smuggling"), ("body", "The proxy also smuggles headers.")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let new: ReferenceId = between(reply.location(), "/reports/", "?").unwrap().parse().unwrap();
        assert_ne!(new, w.r1);

        let page = send(router, get(reply.location(), Some(&w.on))).await;
        assert_eq!(page.status, StatusCode::OK, "the assignee is copied, so the responder still sees it");
        assert!(page.body.contains("Second finding: header smuggling"));
        assert!(page.body.contains("The proxy also smuggles headers."));
        assert_eq!(between(&page.body, "id=\"split-from\"><a href=\"/reports/", "\""), Some(r1.as_str()));
        assert!(page.body.contains("The reporter was not told."));
        let original = send(router, get(&format!("/reports/{r1}"), Some(&w.on))).await;
        assert_eq!(
            between(&original.body, "id=\"split-into\"><a href=\"/reports/", "\""),
            Some(new.to_string().as_str())
        );

        let first = reports::show(app, &local(), &w.r1, reports::ReadPurpose::Read).await.unwrap();
        let split = reports::show(app, &local(), &new, reports::ReadPurpose::Read).await.unwrap();
        assert_eq!(split.report.reporter_id, first.report.reporter_id, "the same reporter");
        assert_eq!(split.report.assignee, first.report.assignee);
        assert_eq!(split.report.product_id, first.report.product_id);
        assert_eq!(split.report.split_from, Some(first.report.id));
        assert_eq!(split.report.state, embargo_domain::ReportState::New, "a new report, with its own clock");
        let due = split.report.ack_due_at.expect("an acknowledgement deadline");
        assert!(due > first.report.ack_due_at.unwrap(), "counted from the split, not from the original");

        let on_original = audit::for_report(app, &local(), &w.r1).await.unwrap();
        assert!(on_original.iter().any(|e| e.action == "report.split" && e.details.contains(&new.to_string())));
        let on_new = audit::for_report(app, &local(), &new).await.unwrap();
        assert!(on_new.iter().any(|e| e.action == "report.create" && e.details.contains(&format!("split_from={r1}"))));

        // Nothing goes to the reporter; the split report is searchable once indexed.
        drain(app).await;
        assert!(embargo_app::intake::outbox(app).unwrap().is_empty(), "the reporter is told nothing");
        assert_eq!(search(app, "smuggles").await, vec![new.to_string()]);
        // Empty input is refused with the original untouched.
        let reply =
            send(router, post(&format!("/reports/{r1}/split"), Some(&w.on), &[("title", " "), ("body", "text")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    }
}

#[tokio::test]
async fn reporter_history_counts_outcomes_and_flags_without_hiding() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let system = Actor::System("test");
        let mut noisy = Vec::new();
        for (i, reason) in ["invalid", "spam", "not-security"].iter().enumerate() {
            let r = reports::submit(app, &system, submission("noisy@example.net", &format!("Noise {i}"), "noise"))
                .await
                .unwrap();
            reports::change_state(
                app,
                &local(),
                &r.reference,
                format!("closed:{reason}").parse().unwrap(),
                reports::Notice::None,
            )
            .await
            .unwrap();
            noisy.push(r.reference);
        }
        let other = reports::submit(app, &system, submission("quiet@example.net", "Quiet finding", "q")).await.unwrap();
        w.web.clock.advance_secs(60);
        let latest = reports::submit(app, &system, submission("noisy@example.net", "Noisy latest", "n")).await.unwrap();

        let history = reports::reporter_history(app, &local(), &latest.reference).await.unwrap();
        assert_eq!(
            (history.total, history.valid, history.invalid, history.open(), history.duplicates),
            (3, 0, 3, 0, 0)
        );
        assert!(history.flagged());
        let page = send(router, get(&format!("/reports/{}", latest.reference), Some(&w.admin))).await;
        assert!(
            page.body.contains("3 other reports — 0 valid, 3 invalid, 0 open, 0 duplicates"),
            "{}",
            between(&page.body, "id=\"reporter-history\">", "</dd>").unwrap_or("no panel")
        );
        assert!(page.body.contains("id=\"flagged\""));
        for earlier in &noisy {
            assert!(!page.body.contains(&earlier.to_string()), "the history names no report");
        }
        let quiet = send(router, get(&format!("/reports/{}", other.reference), Some(&w.admin))).await;
        assert!(quiet.body.contains("0 other reports") && !quiet.body.contains("id=\"flagged\""));

        // The inbox marks the row, and sorts it last only when asked; it is never left out.
        let rows = |body: &str| -> Vec<String> {
            body.split("class=\"ref\">").skip(1).filter_map(|s| s.split('<').next()).map(str::to_owned).collect()
        };
        let newest = send(router, get("/inbox", Some(&w.admin))).await;
        assert_eq!(rows(&newest.body).first(), Some(&latest.reference.to_string()));
        assert_eq!(newest.body.matches(">flagged</span>").count(), 1);
        let sorted = send(router, get("/inbox?sort=flagged-last", Some(&w.admin))).await;
        let order = rows(&sorted.body);
        assert_eq!(order.last(), Some(&latest.reference.to_string()), "{order:?}");
        assert_eq!(order.len(), rows(&newest.body).len(), "nothing is hidden");
        assert!(order.contains(&other.reference.to_string()));
        assert!(sorted.body.contains("value=\"flagged-last\" selected"));
        let api = send(router, api("GET", "/api/v1/reports", Some(&w.admin_token), None)).await;
        assert_eq!(api.status, StatusCode::OK);

        // One valid report lifts the flag.
        let valid = reports::submit(app, &system, submission("noisy@example.net", "A real one", "r")).await.unwrap();
        for target in ["triaging", "accepted"] {
            reports::change_state(app, &local(), &valid.reference, target.parse().unwrap(), reports::Notice::None)
                .await
                .unwrap();
        }
        let history = reports::reporter_history(app, &local(), &latest.reference).await.unwrap();
        assert_eq!((history.total, history.valid, history.invalid), (4, 1, 3));
        assert!(!history.flagged());
        let flagged = |reference: &ReferenceId| {
            let reference = reference.to_string();
            async move {
                let query = InboxQuery { search: Some(reference.clone()), page: 1, per_page: 1, ..Default::default() };
                reports::inbox(app, &local(), &query).await.unwrap().rows[0].summary.flagged
            }
        };
        assert!(!flagged(&latest.reference).await);
        // (The valid report itself is counted from the others: three invalid, none valid.)
        assert!(flagged(&valid.reference).await, "the rule counts a report's other reports");
        let newest = send(router, get("/inbox", Some(&w.admin))).await;
        assert_eq!(newest.body.matches(">flagged</span>").count(), 1);
    }
}

const PRODUCT: &str = "Acme Router AR-500";

/// (title, text): two reworded reports of one bug first, then different bugs in the same
/// product written from the same template (after the corpus in `embargo_domain::similarity`).
const CORPUS: &[(&str, &str)] = &[
    (
        "Stored XSS in the device name",
        "Product: Acme Router AR-500, firmware 2.3.1.
Summary: stored cross-site scripting in the device name field of the web admin interface.
Steps to reproduce:
1. Log in to the admin interface at http://192.168.1.1 as any user.
2. Go to Network > Connected devices and rename a device to <script>alert(document.cookie)</script>.
3. When an administrator opens the connected devices page the script runs in their session.
Impact: an attacker on the local network can steal the administrator session cookie and take over the router.
Please let me know if you need further information.",
    ),
    (
        "Device names are not escaped (XSS)",
        "Hello security team,

I hope this finds you well. I found a problem in the AR-500 router (firmware 2.3.1).
The admin web interface does not escape the device name shown on the Network > Connected devices page, so a stored cross-site scripting payload such as <script>alert(document.cookie)</script> set as a device name runs whenever an administrator opens the connected devices page.
An attacker on the local network can therefore steal the administrator session cookie and take over the router.
To reproduce: log in to the admin interface at http://192.168.1.1, rename a device to the payload above, then open the connected devices page as an administrator.

Best regards,
Jane",
    ),
    (
        "Path traversal in backup download",
        "Product: Acme Router AR-500, firmware 2.3.1.
Summary: path traversal in the firmware backup download endpoint.
Steps to reproduce:
1. Log in to the admin interface at http://192.168.1.1.
2. Request /cgi-bin/backup_download?file=../../../../etc/shadow.
3. The response contains the contents of /etc/shadow instead of the backup archive.
Impact: any authenticated user can read arbitrary files from the router file system, including password hashes.
Please let me know if you need further information.",
    ),
    (
        "Authentication bypass in the configuration API",
        "Product: Acme Router AR-500, firmware 2.3.1.
Summary: authentication bypass in the configuration API.
Steps to reproduce:
1. Without logging in, send POST /api/config with a session cookie set to any value, for example session=AAAA.
2. The server only checks that the cookie is present, not that it is valid, and applies the new configuration.
3. Set the admin password field in the request body to change the administrator password.
Impact: an unauthenticated attacker on the local network can take full control of the router.
Please let me know if you need further information.",
    ),
    (
        "CSRF on reboot",
        "Product: Acme Router AR-500, firmware 2.3.1.
Summary: cross-site request forgery on the reboot endpoint.
Steps to reproduce:
1. Log in to the admin interface at http://192.168.1.1 as an administrator.
2. In the same browser visit a page that submits a form to http://192.168.1.1/cgi-bin/reboot.
3. The router reboots because the endpoint has no CSRF token and accepts cross-origin requests.
Impact: a malicious web page can repeatedly reboot the router, causing a denial of service.
Please let me know if you need further information.",
    ),
    (
        "Reflected XSS in the system log search",
        "Product: Acme Router AR-500, firmware 2.3.1.
Summary: reflected cross-site scripting in the search parameter of the system log page.
Steps to reproduce:
1. Log in to the admin interface at http://192.168.1.1.
2. Open /cgi-bin/syslog?search=<img src=x onerror=alert(1)> in the browser.
3. The search term is echoed into the page without escaping and the script runs.
Impact: an attacker who gets an administrator to follow a link can run script in their session.
Please let me know if you need further information.",
    ),
];

/// The references on a report page's suggestion list.
fn suggested(page: &str) -> Vec<String> {
    let Some(section) = between(page, "id=\"similar\"", "</section>") else { return Vec::new() };
    section.split("class=\"ref\">").skip(1).filter_map(|s| s.split('<').next()).map(str::to_owned).collect()
}

#[tokio::test]
async fn near_duplicates_are_suggested_only_when_alike_and_only_to_those_who_may_read_them() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let product = accounts::create_product(app, &local(), PRODUCT).await.unwrap();
        let mut refs = Vec::new();
        for (i, (title, text)) in CORPUS.iter().enumerate() {
            let submission = Submission {
                attachments: vec![],
                product_id: Some(product),
                ..submission(&format!("finder{i}@example.net"), title, text)
            };
            refs.push(reports::submit(app, &Actor::System("test"), submission).await.unwrap().reference);
        }
        let (original, duplicate) = (&refs[0], &refs[1]);
        assert!(reports::similar(app, &local(), duplicate).await.unwrap().is_empty(), "nothing before indexing");
        drain(app).await;

        let found = reports::similar(app, &local(), duplicate).await.unwrap();
        assert_eq!(
            found.iter().map(|s| s.reference.to_string()).collect::<Vec<_>>(),
            vec![original.to_string()],
            "{}: {found:?}",
            db.backend
        );
        assert!(found[0].score >= embargo_domain::similarity::SUGGEST_THRESHOLD);
        assert_eq!(found[0].title, CORPUS[0].0);
        for unrelated in &refs[2..] {
            let found = reports::similar(app, &local(), unrelated).await.unwrap();
            assert!(found.is_empty(), "{unrelated}: {found:?}");
        }

        // The report page lists it with its title, state and score, and a one-click close.
        let page = send(router, get(&format!("/reports/{duplicate}"), Some(&w.admin))).await;
        assert_eq!(suggested(&page.body), vec![original.to_string()]);
        let section = between(&page.body, "id=\"similar\"", "</section>").unwrap();
        assert!(section.contains(CORPUS[0].0) && section.contains(" %") && section.contains("state-new"));
        assert!(section.contains(&format!("name=\"duplicate_of\" value=\"{original}\"")));
        // Showing a title is a read of that report, on its own trail, naming no other report.
        let trail = audit::for_report(app, &local(), original).await.unwrap();
        let entry = trail.iter().find(|e| e.action == "report.similar").expect("the suggestion is audited");
        assert!(entry.details.starts_with("score=") && !entry.details.contains(&duplicate.to_string()));

        // A responder on the duplicate but not on the original is never shown the original.
        reports::assign(app, &local(), duplicate, Some("off@team.test")).await.unwrap();
        let off = w.off.clone();
        assert!(reports::similar(app, &responder(app, "off@team.test").await, duplicate).await.unwrap().is_empty());
        let page = send(router, get(&format!("/reports/{duplicate}"), Some(&off))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains(&original.to_string()) && !page.body.contains(CORPUS[0].0),
            "the original's existence does not leak"
        );
        assert!(!page.body.contains("id=\"similar\""));
        // Given access, they see it.
        reports::add_member(app, &local(), original, "off@team.test").await.unwrap();
        let page = send(router, get(&format!("/reports/{duplicate}"), Some(&off))).await;
        assert_eq!(suggested(&page.body), vec![original.to_string()]);

        // One click goes into the existing close-as-duplicate flow; once linked, it is no
        // longer suggested either way.
        let step = send(
            router,
            post(
                &format!("/reports/{duplicate}/transition"),
                Some(&off),
                &[("target", "closed:duplicate"), ("duplicate_of", &original.to_string())],
            ),
        )
        .await;
        assert_eq!(step.status, StatusCode::OK, "{}", step.body);
        let done = send(
            router,
            post(
                &format!("/reports/{duplicate}/transition"),
                Some(&off),
                &[("target", "closed:duplicate"), ("duplicate_of", &original.to_string()), ("confirm", "1")],
            ),
        )
        .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(reports::similar(app, &local(), duplicate).await.unwrap().is_empty());
        assert!(reports::similar(app, &local(), original).await.unwrap().is_empty());

        if db.backend == "sqlite" {
            assert!(embargo_test_support::files_containing(&db.files, b"cgi-bin").is_empty());
            assert!(embargo_test_support::files_containing(&db.files, b"connected devices").is_empty());
        }
    }
}

/// The actor of a team member, as their session would carry it.
async fn responder(app: &App, email: &str) -> Actor {
    let user = accounts::list_users(app, &local()).await.unwrap().into_iter().find(|u| u.email == email).unwrap();
    Actor::User { id: user.id, role: user.role }
}
