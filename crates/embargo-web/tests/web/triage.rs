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
    let query = InboxQuery { state: Some("any".into()), search: Some(words.into()), page: 1, per_page: 50, ..Default::default() };
    reports::inbox(app, &local(), &query).await.unwrap().rows.into_iter().map(|r| r.summary.reference.to_string()).collect()
}

async fn index_jobs(app: &App, state: &str) -> usize {
    jobs::list(app, &local(), Some(state), 1000).await.unwrap().iter().filter(|j| j.kind == jobs::INDEX).count()
}

#[tokio::test]
async fn the_index_job_makes_a_report_searchable_once_and_leaves_no_plaintext() {
    for db in both_backends() {
        let web = web(&db).await;
        let app = &web.app;
        let system = Actor::System("test");
        let new = reports::submit(app, &system, submission("quinn@example.net", "Quokka overflow", "the quokka canary"))
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
        let reply = send(router, post(&format!("/reports/{r1}/split"), Some(&w.off), &[("title", "x"), ("body", "y")]))
            .await;
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
        assert_eq!(between(&original.body, "id=\"split-into\"><a href=\"/reports/", "\""), Some(new.to_string().as_str()));

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
            reports::change_state(app, &local(), &r.reference, &format!("closed:{reason}"), None, reports::Notice::None)
                .await
                .unwrap();
            noisy.push(r.reference);
        }
        let other = reports::submit(app, &system, submission("quiet@example.net", "Quiet finding", "q")).await.unwrap();
        w.web.clock.advance_secs(60);
        let latest = reports::submit(app, &system, submission("noisy@example.net", "Noisy latest", "n")).await.unwrap();

        let history = reports::reporter_history(app, &local(), &latest.reference).await.unwrap();
        assert_eq!((history.total, history.valid, history.invalid, history.open(), history.duplicates), (3, 0, 3, 0, 0));
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
            reports::change_state(app, &local(), &valid.reference, target, None, reports::Notice::None).await.unwrap();
        }
        let history = reports::reporter_history(app, &local(), &latest.reference).await.unwrap();
        assert_eq!((history.total, history.valid, history.invalid), (4, 1, 3));
        assert!(!history.flagged());
        let newest = send(router, get("/inbox", Some(&w.admin))).await;
        assert_eq!(newest.body.matches(">flagged</span>").count(), 0);
    }
}
