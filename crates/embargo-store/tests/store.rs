//! Store tests. Every test runs on SQLite and on PostgreSQL (see `both_backends`).

use std::sync::Arc;

use embargo_crypto::Keyring;
use embargo_domain::{
    Actor, CloseReason, Lifecycle, ReferenceId, ReferencePrefix, ReportId, ReportState, Role, Timestamp,
};
use embargo_store::jobs::{self, NewJob};
use embargo_store::messages::{MessageKind, NewMessage};
use embargo_store::reports::{NewReport, ReportFilter};
use embargo_store::{Store, StoreError, attachments, audit, reporters, reports, users};
use embargo_test_support::{TestDb, both_backends, files_containing};

#[path = "store/attachments.rs"]
mod attachments_bound;
#[path = "store/migrations.rs"]
mod migrations;
#[path = "store/page_reads.rs"]
mod page_reads;

async fn open(db: &TestDb) -> Store {
    let store = Store::connect(&db.url, Arc::new(Keyring::generate())).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + seconds).unwrap()
}

async fn new_report(store: &Store, year: i16, title: &str, body: &str, email: &str) -> (ReportId, String) {
    let mut tx = store.begin().await.unwrap();
    let prefix = ReferencePrefix::parse("EMB").unwrap();
    let reference = reports::next_reference(&mut tx, &prefix, year).await.unwrap();
    let reporter = reporters::find_or_create(&mut tx, email, Some("Reporter"), at(0)).await.unwrap();
    let id = reports::insert(
        &mut tx,
        &NewReport {
            body,
            reply_token: &format!("r-{reference}"),
            status_token: &format!("status-{reference}"),
            status_token_hash: &format!("hash-{reference}"),
            ..report_row(&reference, reporter, title)
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, reference.to_string())
}

#[tokio::test]
async fn references_are_sequential_per_year_and_content_round_trips() {
    for db in both_backends() {
        let store = open(&db).await;
        let (_, a) = new_report(&store, 2026, "first", "body one", "a@example.org").await;
        let (_, b) = new_report(&store, 2026, "second", "body two", "b@example.org").await;
        let (_, c) = new_report(&store, 2027, "third", "body three", "a@example.org").await;
        assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("EMB-2026-1", "EMB-2026-2", "EMB-2027-1"), "{}", db.backend);

        let mut tx = store.begin().await.unwrap();
        let report = reports::get_by_reference(&mut tx, &b.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!((report.title.as_str(), report.body.as_str()), ("second", "body two"));
        assert_eq!(report.state, ReportState::New);
        let reporter = reporters::get(&mut tx, report.reporter_id).await.unwrap();
        assert_eq!(reporter.email, "b@example.org");
        // The same address (in any case) is the same reporter.
        let again = reporters::find_or_create(&mut tx, " A@Example.ORG ", None, at(1)).await.unwrap();
        let first = reports::get_by_reference(&mut tx, &a.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(again, first.reporter_id);

        // Reply and status tokens find their report; the status link itself is sealed.
        assert_eq!(reports::by_reply_token(&mut tx, &format!("r-{b}")).await.unwrap(), Some(report.id));
        assert_eq!(reports::by_reply_token(&mut tx, "nope").await.unwrap(), None);
        assert_eq!(reports::by_status_token_hash(&mut tx, &format!("hash-{b}")).await.unwrap(), Some(report.id));
        assert_eq!(reports::status_token(&mut tx, report.id).await.unwrap(), format!("status-{b}"));

        let all = reports::list(&mut tx, &ReportFilter::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        let new_only =
            reports::list(&mut tx, &ReportFilter { state: Some("new".into()), ..Default::default() }).await.unwrap();
        assert_eq!(new_only.len(), 3);
        let closed =
            reports::list(&mut tx, &ReportFilter { state: Some("closed".into()), ..Default::default() }).await.unwrap();
        assert!(closed.is_empty());
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_intake_never_hands_out_a_reference_twice() {
    for db in both_backends() {
        let store = open(&db).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                new_report(&store, 2026, &format!("r{i}"), "x", &format!("r{i}@example.org")).await.1
            }));
        }
        let mut refs = Vec::new();
        for task in tasks {
            refs.push(task.await.unwrap());
        }
        refs.sort_by_key(|r| r.rsplit('-').next().unwrap().parse::<u32>().unwrap());
        let expected: Vec<String> = (1..=24).map(|n| format!("EMB-2026-{n}")).collect();
        assert_eq!(refs, expected, "{}", db.backend);
    }
}

#[tokio::test]
async fn transitions_update_state_and_history() {
    for db in both_backends() {
        let store = open(&db).await;
        let (id, reference) = new_report(&store, 2026, "t", "b", "x@example.org").await;
        let (other, _) = new_report(&store, 2026, "t2", "b2", "y@example.org").await;
        let mut life = Lifecycle::new(id);
        let admin = Actor::User { id: embargo_domain::UserId(7), role: Role::Admin };
        let mut tx = store.begin().await.unwrap();
        for (i, to) in [
            ReportState::Acknowledged,
            ReportState::Triaging,
            ReportState::Closed(CloseReason::Duplicate { of: other }),
            ReportState::Triaging,
        ]
        .into_iter()
        .enumerate()
        {
            let t = life.apply(to, admin.clone(), at(i as i64)).unwrap().clone();
            reports::record_transition(&mut tx, id, &t).await.unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let report = reports::get_by_reference(&mut tx, &reference.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(report.state, ReportState::Triaging);
        let history = reports::transitions(&mut tx, id).await.unwrap();
        assert_eq!(history.len(), 4);
        assert_eq!(history[2].to, ReportState::Closed(CloseReason::Duplicate { of: other }));
        assert_eq!(history[3].from, "closed");
        assert_eq!(history[0].actor, "user:7:admin");
        assert_eq!(history[1].at, at(1));

        // A transition whose `from` does not match the stored state is refused.
        let stale = embargo_domain::Transition {
            from: ReportState::New,
            to: ReportState::Acknowledged,
            actor: admin.clone(),
            at: at(9),
        };
        let err = reports::record_transition(&mut tx, id, &stale).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }
}

#[tokio::test]
async fn confidential_values_never_reach_the_database_files() {
    for db in both_backends() {
        let store = open(&db).await;
        let canary = format!("CANARY-{}", rand_hex());
        let (id, _) = new_report(
            &store,
            2026,
            &format!("title {canary}"),
            &format!("body {canary}"),
            &format!("{canary}@example.org"),
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        let message = embargo_store::messages::insert(
            &mut tx,
            &NewMessage {
                report: id,
                kind: MessageKind::Inbound,
                author: "reporter",
                sender: Some(&format!("{canary} <x@example.org>")),
                subject: Some(&canary),
                body: &canary,
                raw: Some(canary.as_bytes()),
                message_id: Some(&format!("<{canary}@example.org>")),
                quarantined: false,
                pgp: Some("pgp-inline"),
                auth: Some("dkim=none spf=pass dmarc=none"),
                anomalies: Some("malformed-mime,ambiguous-sender"),
                at: at(1),
            },
        )
        .await
        .unwrap();
        attachments::insert(
            &mut tx,
            &attachments::NewAttachment {
                report: id,
                message: Some(message),
                filename: &format!("{canary}.txt"),
                media_type: "text/plain",
                data: canary.as_bytes(),
                at: at(1),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        // Everything reads back...
        let mut tx = store.begin().await.unwrap();
        let messages = embargo_store::messages::list(&mut tx, id).await.unwrap();
        assert_eq!(messages[0].body, canary);
        let files = attachments::list(&mut tx, id).await.unwrap();
        assert_eq!(attachments::data(&mut tx, id, files[0].id).await.unwrap().unwrap(), canary.as_bytes());
        let threaded = embargo_store::messages::reports_by_message_ids(&mut tx, &[&format!("<{canary}@example.org>")])
            .await
            .unwrap();
        assert_eq!(threaded, vec![id]);
        tx.commit().await.unwrap();
        store.close().await;

        // ...but the canary is nowhere on disk, in any form.
        let hits = files_containing(&db.files, canary.as_bytes());
        assert!(hits.is_empty(), "{}: canary found in {hits:?}", db.backend);
    }
}

fn rand_hex() -> String {
    let keys = Keyring::generate();
    keys.blind_index("test", b"x")[..16].to_owned()
}

#[tokio::test]
async fn the_audit_chain_appends_and_verifies() {
    for db in both_backends() {
        let store = open(&db).await;
        assert!(matches!(audit::verify(&store).await.unwrap(), audit::Verification::Intact(0)));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                audit::append(
                    &mut tx,
                    &audit::NewEntry {
                        at: at(i),
                        actor: "system:test",
                        action: "test.event",
                        subject: &format!("n:{i}"),
                        details: "",
                    },
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        match audit::verify(&store).await.unwrap() {
            audit::Verification::Intact(n) => assert_eq!(n, 20, "{}", db.backend),
            broken => panic!("{}: {broken:?}", db.backend),
        }
        // A rolled-back transaction leaves no entry behind.
        let mut tx = store.begin().await.unwrap();
        audit::append(&mut tx, &audit::NewEntry { at: at(99), actor: "a", action: "b", subject: "c", details: "" })
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert!(matches!(audit::verify(&store).await.unwrap(), audit::Verification::Intact(20)));
    }
}

#[tokio::test]
async fn jobs_are_claimed_once_fenced_and_retried() {
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        let job = NewJob { kind: "test", payload: "{}", idempotency_key: Some("k1"), run_at: at(0), max_attempts: 3 };
        let first = jobs::enqueue(&mut tx, &job, at(0)).await.unwrap();
        let dup = jobs::enqueue(&mut tx, &job, at(0)).await.unwrap();
        let later = jobs::enqueue(&mut tx, &NewJob { idempotency_key: None, run_at: at(100), ..job.clone() }, at(0))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(first.is_some() && later.is_some());
        assert_eq!(dup, None, "{}: idempotency key ignored", db.backend);

        // Only the due job is claimable, and only once while its lease holds.
        let claimed = jobs::claim(&store, "w1", at(1), at(31)).await.unwrap().unwrap();
        assert_eq!((claimed.id, claimed.attempt), (first.unwrap(), 1));
        assert_eq!(jobs::claim(&store, "w2", at(2), at(32)).await.unwrap(), None);

        // After the lease expires another worker takes it over, and the first is fenced out.
        let stolen = jobs::claim(&store, "w2", at(40), at(70)).await.unwrap().unwrap();
        assert_eq!((stolen.id, stolen.attempt), (claimed.id, 2));
        let mut tx = store.begin().await.unwrap();
        assert!(!jobs::complete(&mut tx, &claimed, at(41)).await.unwrap());
        assert!(jobs::complete(&mut tx, &stolen, at(41)).await.unwrap());
        tx.commit().await.unwrap();
        assert!(!jobs::fail(&store, &claimed, "late", None, at(42)).await.unwrap());

        // Failure with a retry time requeues; without one the job is dead.
        let next = jobs::claim(&store, "w1", at(100), at(130)).await.unwrap().unwrap();
        assert!(jobs::fail(&store, &next, "boom", Some(at(200)), at(101)).await.unwrap());
        assert_eq!(jobs::claim(&store, "w1", at(150), at(180)).await.unwrap(), None);
        let retry = jobs::claim(&store, "w1", at(200), at(230)).await.unwrap().unwrap();
        assert_eq!(retry.attempt, 2);
        assert!(jobs::fail(&store, &retry, "boom again", None, at(201)).await.unwrap());
        let counts = jobs::count_by_state(&store).await.unwrap();
        assert_eq!(counts, vec![("dead".to_owned(), 1), ("done".to_owned(), 1)], "{}", db.backend);
        let listed = jobs::list(&store, Some("dead"), 10).await.unwrap();
        assert_eq!(listed[0].last_error.as_deref(), Some("boom again"));
    }
}

#[tokio::test]
async fn accounts_tokens_and_one_time_links() {
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        let id = users::create(&mut tx, "Admin@Example.org", Role::Admin, Some("$argon2id$x"), at(0)).await.unwrap();
        let err = users::create(&mut tx, "admin@example.org", Role::Responder, None, at(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", db.backend);
        tx.rollback().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let id2 = users::create(&mut tx, "Admin@Example.org", Role::Admin, None, at(0)).await.unwrap();
        assert!(id2.0 > 0 && id.0 > 0);
        assert_eq!(users::count_admins(&mut tx).await.unwrap(), 1);
        users::create_token(&mut tx, id2, "hash1", "cli", at(0)).await.unwrap();
        let owner = users::by_token_hash(&mut tx, "hash1", at(1)).await.unwrap().unwrap();
        assert_eq!(owner.email, "admin@example.org");
        assert!(users::by_token_hash(&mut tx, "other", at(1)).await.unwrap().is_none());

        users::create_one_time(&mut tx, "ott", "first-admin", at(0), at(100)).await.unwrap();
        assert!(users::one_time_pending(&mut tx, "first-admin", at(1)).await.unwrap());
        assert!(!users::consume_one_time(&mut tx, "ott", "other-purpose", at(1)).await.unwrap());
        assert!(users::consume_one_time(&mut tx, "ott", "first-admin", at(1)).await.unwrap());
        assert!(!users::consume_one_time(&mut tx, "ott", "first-admin", at(2)).await.unwrap());
        users::create_one_time(&mut tx, "old", "first-admin", at(0), at(10)).await.unwrap();
        assert!(!users::consume_one_time(&mut tx, "old", "first-admin", at(11)).await.unwrap());
        tx.commit().await.unwrap();
    }
}

/// A report received at `at` (for the metrics tests), with its product.
async fn received(store: &Store, number: i64, product: Option<i64>, received_at: Timestamp) -> ReportId {
    let mut tx = store.begin().await.unwrap();
    let prefix = ReferencePrefix::parse("MET").unwrap();
    let reference = reports::next_reference(&mut tx, &prefix, 2026).await.unwrap();
    let reporter = reporters::find_or_create(&mut tx, "m@example.org", None, received_at).await.unwrap();
    let id = reports::insert(
        &mut tx,
        &NewReport {
            reference: &reference,
            channel: "email",
            reporter_id: reporter,
            title: "t",
            body: "b",
            received_at,
            reply_token: &format!("m-{number}"),
            status_token: &format!("ms-{number}"),
            status_token_hash: &format!("mh-{number}"),
            details: None,
            product_id: product,
            ack_due_at: None,
            next_sla_at: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn metrics_count_clocks_per_product_and_week_within_the_window_and_the_responders_products() {
    use embargo_store::metrics::{self, Tally, WEEK_MS, Window};
    use embargo_store::{products, sla};
    const HOUR: i64 = 3_600_000;
    let base = at(0).as_millisecond();
    let t = |ms: i64| Timestamp::from_millisecond(base + ms).unwrap();
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        let widget = products::create(&mut tx, "Widget", at(0)).await.unwrap();
        let gadget = products::create(&mut tx, "Gadget", at(0)).await.unwrap();
        let responder = users::create(&mut tx, "r@example.org", Role::Responder, None, at(0)).await.unwrap();
        products::add_responder(&mut tx, widget, responder).await.unwrap();
        tx.commit().await.unwrap();

        // The window is [base, base + 3 weeks), judged at base + 3 weeks; weeks count from
        // one day before base.
        let now = t(3 * WEEK_MS);
        let week_starts = (0..4).map(|w| t(w * WEEK_MS - 24 * HOUR)).collect();
        let window = Window { from: t(0), to: now, now, week_starts, responsible: None };
        // Before and at the end of the window: not counted.
        received(&store, 0, Some(widget), t(-1)).await;
        received(&store, 1, Some(widget), now).await;
        let set = |id: ReportId, record: sla::SlaRecord| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                sla::set(&mut tx, id, &record).await.unwrap();
                tx.commit().await.unwrap();
            }
        };
        // Widget, first day: acknowledged in time after 2 h, assessed late, fixed in time.
        let a = received(&store, 2, Some(widget), t(0)).await;
        set(
            a,
            sla::SlaRecord {
                acknowledged_at: Some(t(2 * HOUR)),
                ack_due_at: Some(t(24 * HOUR)),
                next_sla_at: None,
                assessed_at: Some(t(80 * HOUR)),
                analyse_due_at: Some(t(72 * HOUR)),
                fixed_at: Some(t(100 * HOUR)),
                fix_due_at: Some(t(200 * HOUR)),
                disclosed_at: Some(t(150 * HOUR)),
                ..Default::default()
            },
        )
        .await;
        // Widget, second week: one never acknowledged nor assessed, both overdue; one
        // acknowledged in time, whose analysis is paused with time left while it waits on the
        // reporter (no deadline while paused: pending).
        let b = received(&store, 3, Some(widget), t(WEEK_MS)).await;
        set(
            b,
            sla::SlaRecord {
                ack_due_at: Some(t(WEEK_MS + 24 * HOUR)),
                next_sla_at: None,
                analyse_due_at: Some(t(WEEK_MS + 72 * HOUR)),
                ..Default::default()
            },
        )
        .await;
        let c = received(&store, 4, Some(widget), t(WEEK_MS + HOUR)).await;
        set(
            c,
            sla::SlaRecord {
                acknowledged_at: Some(t(WEEK_MS + 9 * HOUR)),
                ack_due_at: Some(t(WEEK_MS + 24 * HOUR)),
                next_sla_at: None,
                analyse_due_at: None,
                paused_clocks: embargo_domain::sla::ClockKind::Analyse.bit(),
                needs_info_since: Some(t(WEEK_MS + 10 * HOUR)),
                ..Default::default()
            },
        )
        .await;
        // Gadget: acknowledged late, then closed without a fix: its fix clock is not counted.
        let d = received(&store, 5, Some(gadget), t(2 * WEEK_MS)).await;
        set(
            d,
            sla::SlaRecord {
                acknowledged_at: Some(t(2 * WEEK_MS + 30 * HOUR)),
                ack_due_at: Some(t(2 * WEEK_MS + 24 * HOUR)),
                next_sla_at: None,
                assessed_at: Some(t(2 * WEEK_MS + 31 * HOUR)),
                analyse_due_at: Some(t(2 * WEEK_MS + 200 * HOUR)),
                fix_due_at: Some(t(2 * WEEK_MS + HOUR)),
                ..Default::default()
            },
        )
        .await;
        let mut life = Lifecycle::new(d);
        let admin = Actor::User { id: responder, role: Role::Admin };
        let mut tx = store.begin().await.unwrap();
        let closing = life.apply(ReportState::Closed(CloseReason::Invalid), admin, t(2 * WEEK_MS + 31 * HOUR)).unwrap();
        reports::record_transition(&mut tx, d, closing).await.unwrap();
        tx.commit().await.unwrap();
        // No product, last week: acknowledge clock still ahead.
        let e = received(&store, 6, None, t(3 * WEEK_MS - HOUR)).await;
        set(e, sla::SlaRecord { ack_due_at: Some(t(3 * WEEK_MS + HOUR)), ..Default::default() }).await;

        let mut tx = store.snapshot().await.unwrap();
        let mut buckets = metrics::buckets(&mut tx, &window).await.unwrap();
        buckets.sort_by_key(|b| (b.product_id, b.week));
        let tally = |met, missed, pending| Tally { met, missed, pending, at_risk: 0 };
        let summary: Vec<_> = buckets
            .iter()
            .map(|b| {
                (
                    b.product_id,
                    b.week,
                    b.reports,
                    [b.acknowledged, b.assessed, b.fixed, b.disclosed],
                    [b.acknowledge, b.analyse, b.fix],
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (None, 3, 1, [0, 0, 0, 0], [Tally { at_risk: 1, ..tally(0, 0, 1) }, tally(0, 0, 0), tally(0, 0, 0)]),
                (Some(widget), 0, 1, [1, 1, 1, 1], [tally(1, 0, 0), tally(0, 1, 0), tally(1, 0, 0)]),
                (Some(widget), 1, 2, [1, 0, 0, 0], [tally(1, 1, 0), tally(0, 1, 1), tally(0, 0, 0)]),
                (Some(gadget), 2, 1, [1, 1, 0, 0], [tally(0, 1, 0), tally(1, 0, 0), tally(0, 0, 0)]),
            ],
            "{}",
            db.backend
        );
        let mut durations = metrics::durations(&mut tx, &window).await.unwrap();
        durations.sort_by_key(|d| (d.product_id, d.acknowledge));
        let widget_durations: Vec<_> = durations
            .iter()
            .filter(|d| d.product_id == Some(widget))
            .map(|d| (d.acknowledge, d.assess, d.fix, d.disclose))
            .collect();
        assert_eq!(
            widget_durations,
            vec![
                (None, None, None, None),
                (Some(2 * HOUR), Some(80 * HOUR), Some(100 * HOUR), Some(150 * HOUR)),
                (Some(8 * HOUR), None, None, None),
            ],
            "{}",
            db.backend
        );
        assert_eq!(durations.len(), 5);

        // The responder's view: their product only.
        let theirs = Window { responsible: Some(responder), ..window.clone() };
        let buckets = metrics::buckets(&mut tx, &theirs).await.unwrap();
        assert!(buckets.iter().all(|b| b.product_id == Some(widget)), "{buckets:?}");
        assert_eq!(buckets.iter().map(|b| b.reports).sum::<i64>(), 3);
        let durations = metrics::durations(&mut tx, &theirs).await.unwrap();
        assert_eq!(durations.len(), 3);
        assert_eq!(metrics::products_of(&mut tx, responder).await.unwrap(), vec![widget]);
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn reserved_cve_ids_are_kept_and_assigned_once_per_advisory() {
    use embargo_domain::CveIdState;
    use embargo_store::{advisories, cve_ids};
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        cve_ids::insert(&mut tx, "CVE-2026-1000", CveIdState::Reserved, "local-admin", at(0)).await.unwrap();
        cve_ids::insert(&mut tx, "CVE-2026-1001", CveIdState::Reserved, "local-admin", at(1)).await.unwrap();
        let err = cve_ids::insert(&mut tx, "CVE-2026-1000", CveIdState::Reserved, "x", at(2)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", db.backend);
        tx.rollback().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        cve_ids::insert(&mut tx, "CVE-2026-1000", CveIdState::Reserved, "local-admin", at(0)).await.unwrap();
        cve_ids::insert(&mut tx, "CVE-2026-1001", CveIdState::Reserved, "local-admin", at(1)).await.unwrap();
        let advisory = advisories::insert(&mut tx, "EMB-2026-0001", "{}", "local-admin", at(2)).await.unwrap();
        cve_ids::assign(&mut tx, "CVE-2026-1000", advisory, at(3)).await.unwrap();
        cve_ids::set_state(&mut tx, "CVE-2026-1000", CveIdState::Published, at(4)).await.unwrap();
        let row = cve_ids::for_advisory(&mut tx, advisory).await.unwrap().unwrap();
        assert_eq!(
            (row.cve_id.as_str(), row.state, row.advisory_id.as_deref()),
            ("CVE-2026-1000", CveIdState::Published, Some("EMB-2026-0001"))
        );
        assert_eq!((row.reserved_at, row.updated_at), (at(0), at(4)));
        let listed: Vec<String> = cve_ids::list(&mut tx).await.unwrap().into_iter().map(|r| r.cve_id).collect();
        assert_eq!(listed, ["CVE-2026-1001", "CVE-2026-1000"], "newest first");
        assert!(cve_ids::get(&mut tx, "CVE-2026-9999").await.unwrap().is_none());
        let err = cve_ids::assign(&mut tx, "CVE-2026-1001", advisory, at(5)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "one ID per advisory ({}): {err}", db.backend);
        tx.rollback().await.unwrap();
    }
}

fn report_row<'a>(reference: &'a embargo_domain::ReferenceId, reporter: i64, title: &'a str) -> NewReport<'a> {
    NewReport {
        reference,
        channel: "email",
        reporter_id: reporter,
        title,
        body: title,
        received_at: at(0),
        reply_token: title,
        status_token: title,
        status_token_hash: title,
        details: None,
        product_id: None,
        ack_due_at: None,
        next_sla_at: None,
    }
}

fn message_row(report: ReportId, body: &str, message_id: Option<&'static str>) -> NewMessage<'static> {
    NewMessage {
        report,
        kind: MessageKind::Inbound,
        author: "reporter",
        sender: Some("a@example.org"),
        subject: Some("s"),
        body: Box::leak(body.to_owned().into_boxed_str()),
        raw: None,
        message_id,
        quarantined: false,
        pgp: None,
        auth: None,
        anomalies: None,
        at: at(0),
    }
}

/// The multi-row writes of a group commit give what row-by-row writes give: the right ids
/// in the right order, references in sequence, one reporter per address, an intact audit
/// chain, and idempotent jobs.
#[tokio::test]
async fn bulk_writes_match_row_by_row_writes() {
    for db in both_backends() {
        let store = open(&db).await;
        let prefix = ReferencePrefix::parse("EMB").unwrap();
        let (_, first) = new_report(&store, 2026, "existing", "b", "known@example.org").await;
        assert_eq!(first, "EMB-2026-1");

        let mut tx = store.begin().await.unwrap();
        let people = [
            ("new@example.org", Some("New")),
            ("KNOWN@example.org", None),
            (" new@example.org ", None),
            ("other@example.org", None),
        ];
        let ids = reporters::find_or_create_many(&mut tx, &people, at(1)).await.unwrap();
        let known = reporters::find_or_create(&mut tx, "known@example.org", None, at(1)).await.unwrap();
        assert_eq!(ids[0], ids[2], "{}: one reporter per address", db.backend);
        assert_eq!(ids[1], known);
        assert!(ids[3] != ids[0] && ids[3] != known);
        assert_eq!(reporters::get(&mut tx, ids[0]).await.unwrap().name.as_deref(), Some("New"));

        let references = reports::next_references(&mut tx, &prefix, 2026, 3).await.unwrap();
        let texts: Vec<String> = references.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["EMB-2026-2", "EMB-2026-3", "EMB-2026-4"], "{}", db.backend);
        let titles = ["zero", "one", "two"];
        let rows: Vec<NewReport<'_>> =
            references.iter().zip(titles).zip(&ids).map(|((r, t), id)| report_row(r, *id, t)).collect();
        let report_ids = reports::insert_many(&mut tx, &rows).await.unwrap();
        for (id, (reference, title)) in report_ids.iter().zip(references.iter().zip(titles)) {
            let report = reports::get(&mut tx, *id).await.unwrap().unwrap();
            assert_eq!((&report.reference, report.title.as_str()), (reference, title), "{}", db.backend);
        }
        assert_eq!(reports::next_reference(&mut tx, &prefix, 2026).await.unwrap().to_string(), "EMB-2026-5");
        // And read back many at once.
        let many = reports::get_many(&mut tx, &[report_ids[2], ReportId(-1), report_ids[0]]).await.unwrap();
        assert_eq!(many.len(), 2, "{}: the missing id is left out", db.backend);
        assert_eq!(many[&report_ids[2]].title, "two");
        let tokens = reports::status_tokens(&mut tx, &report_ids).await.unwrap();
        assert_eq!(tokens[&report_ids[1]], "one");
        let people_back = reporters::get_many(&mut tx, &[ids[0], ids[3]]).await.unwrap();
        assert_eq!(people_back[&ids[3]].email, "other@example.org");

        // Distinct reports: one statement; the same report twice: row by row. Either way the
        // ids come back in order.
        let messages_in = [
            message_row(report_ids[2], "m-two", Some("<two@example.org>")),
            message_row(report_ids[0], "m-zero", Some("<zero@example.org>")),
        ];
        let message_ids = embargo_store::messages::insert_many(&mut tx, &messages_in).await.unwrap();
        let again = [message_row(report_ids[1], "first", None), message_row(report_ids[1], "second", None)];
        let again_ids = embargo_store::messages::insert_many(&mut tx, &again).await.unwrap();
        for (report, id, body) in [
            (report_ids[2], message_ids[0], "m-two"),
            (report_ids[0], message_ids[1], "m-zero"),
            (report_ids[1], again_ids[0], "first"),
            (report_ids[1], again_ids[1], "second"),
        ] {
            let message = embargo_store::messages::get(&mut tx, report, id).await.unwrap().unwrap();
            assert_eq!(message.body, body, "{}", db.backend);
        }
        let found = embargo_store::messages::reports_for_message_ids(
            &mut tx,
            &["unknown@x", "zero@example.org", "<two@example.org>"],
        )
        .await
        .unwrap();
        assert_eq!(found, vec![(1, report_ids[0]), (2, report_ids[2])], "{}", db.backend);
        let mut raw_row = message_row(report_ids[0], "with raw", None);
        raw_row.raw = Some(b"From: a\r\n\r\nraw bytes");
        let with_raw = embargo_store::messages::insert(&mut tx, &raw_row).await.unwrap();
        let raws = embargo_store::messages::raws(
            &mut tx,
            &[(report_ids[0], with_raw), (report_ids[1], with_raw), (report_ids[2], message_ids[0])],
        )
        .await
        .unwrap();
        assert_eq!(raws.len(), 1, "{}: only a message with raw bytes, on its own report", db.backend);
        assert_eq!(raws[&with_raw], b"From: a\r\n\r\nraw bytes");

        let entries: Vec<audit::NewEntry<'_>> = (0..5)
            .map(|i| audit::NewEntry {
                at: at(i),
                actor: "system:test",
                action: "bulk",
                subject: titles[i as usize % 3],
                details: "",
            })
            .collect();
        let seqs = audit::append_many(&mut tx, &entries).await.unwrap();
        let single = audit::append(&mut tx, &entries[0]).await.unwrap();
        assert_eq!(seqs.windows(2).filter(|w| w[1] == w[0] + 1).count(), 4);
        assert_eq!(single, seqs[4] + 1);

        let job = |key: &'static str| NewJob {
            kind: "bulk.test",
            payload: "{}",
            idempotency_key: Some(key),
            run_at: at(0),
            max_attempts: 3,
        };
        let created = jobs::enqueue_many(&mut tx, &[job("a"), job("b"), job("a")], at(0)).await.unwrap();
        assert_eq!(created, 2, "{}: a repeated key is one job", db.backend);
        assert_eq!(jobs::enqueue_many(&mut tx, &[job("b"), job("c")], at(0)).await.unwrap(), 1);
        tx.commit().await.unwrap();
        match audit::verify(&store).await.unwrap() {
            audit::Verification::Intact(n) => assert_eq!(n, 6, "{}", db.backend),
            broken => panic!("{}: {broken:?}", db.backend),
        }

        // A batch claim takes the first due job and more of its kind only when the kind is
        // batched; completing them together is fenced on every lease.
        let mut tx = store.begin().await.unwrap();
        jobs::enqueue(&mut tx, &NewJob { kind: "other", idempotency_key: Some("o"), ..job("o") }, at(0)).await.unwrap();
        tx.commit().await.unwrap();
        let one = jobs::claim_batch(&store, "w1", at(1), at(31), &[], 10).await.unwrap();
        assert_eq!(one.len(), 1, "{}: not batched, one job", db.backend);
        let batch = jobs::claim_batch(&store, "w1", at(1), at(31), &["bulk.test"], 10).await.unwrap();
        assert_eq!(batch.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(), ["bulk.test", "bulk.test"]);
        let rest = jobs::claim_batch(&store, "w1", at(1), at(31), &["bulk.test"], 10).await.unwrap();
        assert_eq!(rest.len(), 1, "{}: other (not batched) after the first bulk.test", db.backend);
        assert!(jobs::claim_batch(&store, "w2", at(2), at(32), &["bulk.test"], 10).await.unwrap().is_empty());
        let stolen = jobs::claim(&store, "w2", at(40), at(70)).await.unwrap().unwrap();
        let mut tx = store.begin().await.unwrap();
        let all: Vec<jobs::Job> = one.iter().chain(&batch).cloned().collect();
        let lost = all.iter().any(|j| j.id == stolen.id);
        assert_eq!(jobs::complete_many(&mut tx, &all, at(41)).await.unwrap(), !lost, "{}", db.backend);
        tx.rollback().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let kept: Vec<jobs::Job> = all.iter().filter(|j| j.id != stolen.id).cloned().collect();
        assert!(jobs::complete_many(&mut tx, &kept, at(41)).await.unwrap());
        tx.commit().await.unwrap();
    }
}

/// Index entries prepared outside the write transaction: terms become searchable, and a new
/// signature replaces the old one with its bands.
#[tokio::test]
async fn prepared_index_rows_are_written_in_one_go() {
    for db in both_backends() {
        let store = open(&db).await;
        let (a, a_ref) = new_report(&store, 2026, "first", "b", "a@example.org").await;
        let (b, b_ref) = new_report(&store, 2026, "second", "b", "b@example.org").await;
        let (a_ref, b_ref) = (a_ref.parse().unwrap(), b_ref.parse().unwrap());
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let bands = |b: &[&str]| b.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rows = vec![
            reports::prepare_index(
                store.keys(),
                a,
                &words(&["overflow", "parser"]),
                Some((&a_ref, b"sig-a", &bands(&["x", "y"]))),
            ),
            reports::prepare_index(store.keys(), b, &words(&["parser"]), Some((&b_ref, b"sig-b", &bands(&["y"])))),
        ];
        let mut tx = store.begin().await.unwrap();
        reports::write_index(&mut tx, &rows).await.unwrap();
        tx.commit().await.unwrap();
        let search = |w: &[&str]| reports::InboxFilter { words: words(w), limit: 10, ..Default::default() };
        let mut tx = store.snapshot().await.unwrap();
        let ids = |found: Vec<reports::Summary>| found.iter().map(|s| s.id).collect::<Vec<_>>();
        let mut both = ids(reports::inbox(&mut tx, &search(&["parser"])).await.unwrap().0);
        both.sort_by_key(|id| id.0);
        assert_eq!(both, vec![a, b], "{}", db.backend);
        assert_eq!(ids(reports::inbox(&mut tx, &search(&["overflow"])).await.unwrap().0), vec![a]);
        assert_eq!(reports::similarity(&mut tx, a).await.unwrap().as_deref(), Some(&b"sig-a"[..]));
        assert_eq!(reports::similarity(&mut tx, b).await.unwrap().as_deref(), Some(&b"sig-b"[..]));
        let (candidates, _) = reports::similarity_candidates(&mut tx, a, 8, 5).await.unwrap();
        assert_eq!(candidates.iter().map(|c| (c.id, c.shared)).collect::<Vec<_>>(), vec![(b, 1)]);
        // Both are recorded as indexed by this version's method: none is stale, both would be
        // under a later one (ADR 27, migration 0018).
        let version = embargo_domain::similarity::SIGNATURE_VERSION;
        assert!(reports::similarity_stale(&mut tx, version, 10).await.unwrap().is_empty(), "{}", db.backend);
        assert_eq!(reports::similarity_stale(&mut tx, version + 1, 10).await.unwrap(), vec![a, b]);
        assert_eq!(reports::similarity_stale(&mut tx, version + 1, 1).await.unwrap(), vec![a]);
        tx.rollback().await.unwrap();

        // Re-indexing a replaces its signature and bands.
        let again = reports::prepare_index(store.keys(), a, &[], Some((&a_ref, b"sig-a2", &bands(&["z"]))));
        let mut tx = store.begin().await.unwrap();
        reports::write_index(&mut tx, &[again]).await.unwrap();
        assert_eq!(reports::similarity(&mut tx, a).await.unwrap().as_deref(), Some(&b"sig-a2"[..]));
        assert!(reports::similarity_candidates(&mut tx, a, 8, 5).await.unwrap().0.is_empty(), "{}", db.backend);
        tx.commit().await.unwrap();
    }
}

/// Candidates are ranked by the rarity of the bands they share: an earlier report sharing
/// six bands nobody else holds comes before forty later template reports that share all
/// 32 crowded bands, even when only a few candidates are read in full (ADR 27).
#[tokio::test]
async fn similarity_candidates_put_a_rare_band_before_crowded_ones() {
    for db in both_backends() {
        let store = open(&db).await;
        let crowded: Vec<String> = (0..32).map(|b| format!("crowded-{b:02}")).collect();
        let rare: Vec<String> = (0..6).map(|b| format!("rare-{b}")).collect();
        let index = async |bands: Vec<String>| {
            let (id, reference) = new_report(&store, 2026, "r", "b", "x@example.org").await;
            let reference: ReferenceId = reference.parse().unwrap();
            let row = reports::prepare_index(store.keys(), id, &[], Some((&reference, b"sig", &bands[..])));
            let mut tx = store.begin().await.unwrap();
            reports::write_index(&mut tx, &[row]).await.unwrap();
            tx.commit().await.unwrap();
            id
        };
        let original = index([&crowded[..4], &rare[..]].concat()).await;
        for _ in 0..40 {
            index(crowded.clone()).await;
        }
        let duplicate = index([&crowded[..], &rare[..]].concat()).await;
        let mut tx = store.snapshot().await.unwrap();
        let (candidates, work) = reports::similarity_candidates(&mut tx, duplicate, 8, 3).await.unwrap();
        tx.rollback().await.unwrap();
        // The crowded bands read the 8 reports just before; the rare ones the original only.
        assert_eq!(work.band_rows, 32 * 8 + 6, "{}", db.backend);
        assert_eq!(candidates[0].id, original, "{}: {candidates:?}", db.backend);
        assert_eq!(candidates[0].shared, 6);
        assert!(candidates[0].rarity > candidates[1].rarity && candidates[1].shared == 32, "{candidates:?}");
    }
}

/// A campaign of near-identical reports, every band shared by all of them: looking for one
/// report's candidates reads at most `per_band` reports on either side of it per band, and
/// only the best `limit` signatures, and it reads the same however large the campaign grows.
#[tokio::test]
async fn similarity_candidates_read_a_bounded_number_of_rows_however_many_look_alike() {
    for db in both_backends() {
        let store = open(&db).await;
        let bands: Vec<String> = (0..32).map(|b| format!("band-{b:02}")).collect();
        let mut ids = Vec::new();
        let campaign = async |count: usize, ids: &mut Vec<ReportId>| {
            let mut rows = Vec::new();
            for _ in 0..count {
                let (id, reference) = new_report(&store, 2026, "Missing header", "same", "scanner@example.org").await;
                let reference: ReferenceId = reference.parse().unwrap();
                rows.push(reports::prepare_index(store.keys(), id, &[], Some((&reference, b"sig", &bands[..]))));
                ids.push(id);
            }
            let mut tx = store.begin().await.unwrap();
            reports::write_index(&mut tx, &rows).await.unwrap();
            tx.commit().await.unwrap();
        };
        campaign(40, &mut ids).await;
        let middle = ids[20];
        let look = async |limit: i64| {
            let mut tx = store.snapshot().await.unwrap();
            let found = reports::similarity_candidates(&mut tx, middle, 4, limit).await.unwrap();
            tx.rollback().await.unwrap();
            found
        };
        let (candidates, work) = look(10).await;
        // 4 on either side in each of the 32 bands: the same 8 reports, each sharing every band.
        assert_eq!(
            work,
            reports::CandidateWork { own_bands: 32, band_rows: 32 * 2 * 4, distinct: 8, signatures: 8 },
            "{}",
            db.backend
        );
        let mut nearest: Vec<ReportId> = candidates.iter().map(|c| c.id).collect();
        assert_eq!(&nearest[..2], &[ids[19], ids[21]], "closest in arrival first");
        nearest.sort_by_key(|id| id.0);
        assert_eq!(nearest, [&ids[16..20], &ids[21..25]].concat());
        assert!(candidates.iter().all(|c| c.shared == 32 && c.signature == b"sig"));
        // Only the best `limit` are read in full.
        let (candidates, work) = look(3).await;
        assert_eq!((candidates.len(), work.band_rows, work.signatures), (3, 32 * 2 * 4, 3));
        // Five times the campaign: the same work, the same candidates.
        campaign(160, &mut ids).await;
        let (again, work) = look(10).await;
        assert_eq!(work.band_rows, 32 * 2 * 4, "{}", db.backend);
        assert_eq!(work.signatures, 8);
        let mut again: Vec<ReportId> = again.iter().map(|c| c.id).collect();
        again.sort_by_key(|id| id.0);
        assert_eq!(again, nearest);
    }
}

/// SQLite is built with the query planner stability guarantee (`.cargo/config.toml`, ADR
/// 37): without it, every statement whose plan looked at a bound value (a `LIMIT $n`, a
/// `LIKE $n`, a partial index's condition) was parsed and planned again at each execution,
/// although sqlx keeps it prepared. With it, the lookups that ADR 36 made partial still use
/// their indexes (`bands_and_report_lookups_from_before_0023_keep_working`).
#[tokio::test]
async fn sqlite_plans_do_not_depend_on_bound_values() {
    let db = both_backends().into_iter().find(|db| db.backend == "sqlite").expect("SQLite always runs");
    let store = open(&db).await;
    drop(store);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let used: i64 =
        sqlx::query_scalar("SELECT sqlite_compileoption_used('ENABLE_QPSG')").fetch_one(&pool).await.unwrap();
    assert_eq!(used, 1, "SQLite was built without SQLITE_ENABLE_QPSG (LIBSQLITE3_FLAGS in .cargo/config.toml)");
    pool.close().await;
}
/// On SQLite this process's writers share one connection: an urgent writer (mail intake)
/// goes before background writers that were waiting longer. PostgreSQL has no such queue:
/// both start while the first is still open.
#[tokio::test]
async fn urgent_writers_go_first_on_sqlite() {
    for db in both_backends() {
        let store = open(&db).await;
        let held = store.begin().await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let spawn = |name: &'static str, urgent: bool| {
            let (store, order) = (store.clone(), order.clone());
            tokio::spawn(async move {
                let tx = if urgent { store.begin_urgent().await } else { store.begin().await }.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
            })
        };
        let background = spawn("background", false);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let urgent = spawn("urgent", true);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started_while_held = order.lock().unwrap().len();
        held.commit().await.unwrap();
        background.await.unwrap();
        urgent.await.unwrap();
        let order = order.lock().unwrap().clone();
        match db.backend {
            "sqlite" => {
                assert_eq!(started_while_held, 0);
                assert_eq!(order, ["urgent", "background"]);
            }
            _ => assert_eq!(started_while_held, 2, "postgres: {order:?}"),
        }
    }
}

/// SQLite's write-ahead log is copied into the database file in the background, not by the
/// commit that fills it: after a commit that stays under SQLite's own threshold, the
/// database file grows within a few seconds without another write. (PostgreSQL manages its
/// own log: nothing to check.)
#[tokio::test]
async fn the_sqlite_log_is_checkpointed_in_the_background() {
    for db in both_backends() {
        if db.backend != "sqlite" {
            continue;
        }
        let store = open(&db).await;
        let file = db.files.join("embargo.db");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let before = std::fs::metadata(&file).unwrap().len();
        let body = "x".repeat(20_000);
        for i in 0..50 {
            new_report(&store, 2026, &format!("t{i}"), &body, "a@example.org").await;
        }
        let wal = std::fs::metadata(file.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        assert!(wal > 500_000, "the reports went to the log first ({wal} bytes)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() < before + 500_000 {
            assert!(std::time::Instant::now() < deadline, "the log was not copied into {}", file.display());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// One rule, one place: the SQL the store builds for "open", "closed", "the deadline that
/// matters", the reporter-history outcomes (and their flag) and need-to-know gives, on each
/// backend, what the domain's Rust rules say for every state (with every close reason) and
/// every combination of a member's ties to a report.
#[tokio::test]
async fn sql_rules_agree_with_the_domain_rules() {
    use embargo_domain::Outcome;
    use embargo_domain::access::ReportTies;
    use embargo_domain::sla::SlaRecord;
    use embargo_domain::{Transition, UserId};
    use embargo_store::metrics::Window;
    use embargo_store::reports::{InboxFilter, ReporterHistory};
    use embargo_store::{products, sla};
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        let user = users::create(&mut tx, "u@example.org", Role::Responder, None, at(0)).await.unwrap();
        let theirs = products::create(&mut tx, "theirs", at(0)).await.unwrap();
        let other = products::create(&mut tx, "other", at(0)).await.unwrap();
        products::add_responder(&mut tx, theirs, user).await.unwrap();
        tx.commit().await.unwrap();

        // Every state, with every close reason.
        let (first, _) = new_report(&store, 2026, "t", "b", "r@example.org").await;
        let mut states: Vec<ReportState> = ReportState::of_every_code().to_vec();
        for code in CloseReason::CODES {
            states.push(ReportState::Closed(
                CloseReason::from_code(code, (code == "duplicate").then_some(first)).unwrap(),
            ));
        }
        let mut expected = Vec::new();
        for (i, state) in states.iter().enumerate() {
            let (id, _) = new_report(&store, 2026, "t", "b", "r@example.org").await;
            let mut tx = store.begin().await.unwrap();
            if *state != ReportState::New {
                let t = Transition { from: ReportState::New, to: *state, actor: Actor::System("test"), at: at(1) };
                reports::record_transition(&mut tx, id, &t).await.unwrap();
            }
            let i = i as i64;
            let record = SlaRecord {
                ack_due_at: Some(at(1000 + i)),
                analyse_due_at: Some(at(2000 + i)),
                update_due_at: Some(at(3000 + i)),
                fix_due_at: Some(at(4000 + i)),
                ..SlaRecord::default()
            };
            sla::set(&mut tx, id, &record).await.unwrap();
            tx.commit().await.unwrap();
            expected.push((id, *state, record.due_in(*state)));
        }
        let mut tx = store.begin().await.unwrap();
        let inbox = |state: &str| InboxFilter { state: Some(state.into()), limit: 1000, ..Default::default() };
        let (open, _) = reports::inbox(&mut tx, &inbox("open")).await.unwrap();
        let (all, _) = reports::inbox(&mut tx, &InboxFilter { limit: 1000, ..Default::default() }).await.unwrap();
        for (id, state, due) in &expected {
            assert_eq!(open.iter().any(|s| s.id == *id), state.is_open(), "open, {state} ({})", db.backend);
            let row = all.iter().find(|s| s.id == *id).unwrap();
            assert_eq!(row.state, *state);
            assert_eq!(row.due_at, *due, "the deadline that matters, {state} ({})", db.backend);
        }
        // The sweep's "every open report" is the same rule (plus the first report, new).
        let scheduled = sla::schedule_open(&mut tx, at(9)).await.unwrap();
        assert_eq!(scheduled, 1 + expected.iter().filter(|(_, s, _)| s.is_open()).count() as u64, "{}", db.backend);
        // The metrics' fix clock is not counted for a report closed without a fix: here
        // every report but the first has a fix deadline and none is fixed.
        let window = Window { from: at(-10), to: at(10), now: at(10), week_starts: vec![at(-10)], responsible: None };
        let buckets = embargo_store::metrics::buckets(&mut tx, &window).await.unwrap();
        let fix_counted: i64 = buckets.iter().map(|b| b.fix.met + b.fix.missed + b.fix.pending).sum();
        let rust = expected.iter().filter(|(_, s, _)| !s.is_closed()).count() as i64;
        assert_eq!(fix_counted, rust, "fix clocks counted ({})", db.backend);
        tx.rollback().await.unwrap();

        // How reports turned out (the reporter history and its flag): every state with every
        // reason from one reporter, and a second reporter with every invalid reason plus a
        // duplicate, a no-response and a new report, whose reports are flagged.
        let mut rows: Vec<(ReportId, ReportState)> = vec![(first, ReportState::New)];
        rows.extend(expected.iter().map(|(id, state, _)| (*id, *state)));
        let mut noisy: Vec<ReportState> = ReportState::of_every_code_and_reason()
            .into_iter()
            .filter(|s| s.outcome() == Some(Outcome::Invalid))
            .collect();
        noisy.extend([
            ReportState::Closed(CloseReason::Duplicate { of: first }),
            ReportState::Closed(CloseReason::NoResponse),
            ReportState::New,
        ]);
        for state in noisy {
            let (id, _) = new_report(&store, 2026, "t", "b", "n@example.org").await;
            if state != ReportState::New {
                let mut tx = store.begin().await.unwrap();
                let t = Transition { from: ReportState::New, to: state, actor: Actor::System("test"), at: at(1) };
                reports::record_transition(&mut tx, id, &t).await.unwrap();
                tx.commit().await.unwrap();
            }
            rows.push((id, state));
        }
        let mut tx = store.begin().await.unwrap();
        let (all, _) = reports::inbox(&mut tx, &InboxFilter { limit: 1000, ..Default::default() }).await.unwrap();
        let mut reporter_of = std::collections::HashMap::new();
        for (id, _) in &rows {
            reporter_of.insert(*id, reports::get(&mut tx, *id).await.unwrap().unwrap().reporter_id);
        }
        let mut flags = Vec::new();
        for (id, state) in &rows {
            let reporter = reporter_of[id];
            let others: Vec<ReportState> =
                rows.iter().filter(|(o, _)| o != id && reporter_of[o] == reporter).map(|(_, s)| *s).collect();
            let count = |outcome| others.iter().filter(|s| s.outcome() == Some(outcome)).count() as i64;
            let rust = ReporterHistory {
                total: others.len() as i64,
                valid: count(Outcome::Valid),
                invalid: count(Outcome::Invalid),
                duplicates: count(Outcome::Duplicate),
            };
            let sql = reports::reporter_history(&mut tx, reporter, *id, None).await.unwrap();
            assert_eq!(sql, rust, "history beside {state} ({})", db.backend);
            let row = all.iter().find(|r| r.id == *id).unwrap();
            assert_eq!(row.flagged, rust.flagged(), "flag of {state} ({})", db.backend);
            flags.push(row.flagged);
        }
        assert!(flags.contains(&true) && flags.contains(&false), "both sides of the flag are exercised");
        tx.rollback().await.unwrap();

        // Need-to-know: every combination of the three ties.
        let mut ties = Vec::new();
        for bits in 0..8u8 {
            let tie =
                ReportTies { assigned: bits & 1 != 0, added: bits & 2 != 0, responsible_for_product: bits & 4 != 0 };
            let (id, _) = new_report(&store, 2027, "t", "b", "r@example.org").await;
            let mut tx = store.begin().await.unwrap();
            if tie.assigned {
                reports::assign(&mut tx, id, Some(user), at(2)).await.unwrap();
            }
            if tie.added {
                reports::add_member(&mut tx, id, user, at(2)).await.unwrap();
            }
            let product = if tie.responsible_for_product { theirs } else { other };
            reports::set_product(&mut tx, id, Some(product), at(2)).await.unwrap();
            tx.commit().await.unwrap();
            ties.push((id, tie));
        }
        let mut tx = store.begin().await.unwrap();
        let listed = reports::list(&mut tx, &ReportFilter { member: Some(user), ..Default::default() }).await.unwrap();
        let filter = InboxFilter { visible_to: Some(user), limit: 1000, ..Default::default() };
        let (visible, _) = reports::inbox(&mut tx, &filter).await.unwrap();
        for (id, tie) in &ties {
            let rust = tie.need_to_know();
            assert_eq!(
                reports::is_member(&mut tx, *id, user).await.unwrap(),
                rust,
                "is_member {tie:?} ({})",
                db.backend
            );
            assert_eq!(listed.iter().any(|r| r.id == *id), rust, "list {tie:?} ({})", db.backend);
            assert_eq!(visible.iter().any(|r| r.id == *id), rust, "inbox {tie:?} ({})", db.backend);
            assert!(!reports::is_member(&mut tx, *id, UserId(user.0 + 1000)).await.unwrap(), "nobody else");
        }
        // The reporter history counts only what the viewer may know of (the same rule).
        let history = reports::reporter_history(&mut tx, reporter_of[&first], first, Some(user)).await.unwrap();
        let rust = ties.iter().filter(|(_, tie)| tie.need_to_know()).count() as i64;
        assert_eq!(history.total, rust, "reporter history under need-to-know ({})", db.backend);
        tx.rollback().await.unwrap();
    }
}

/// Only the transaction begun for page reads' audit entries commits without waiting for
/// the disk (ADR 32); every write transaction after it, on the same SQLite connection or a
/// PostgreSQL one, waits again, and what it committed is read back in order. The counts of
/// transactions begun follow.
#[tokio::test]
async fn only_read_audits_commit_unflushed_and_the_next_writer_flushes_again() {
    for db in both_backends() {
        let store = open(&db).await;
        let before = store.transaction_counts();
        let mut tx = store.begin().await.unwrap();
        assert!(tx.flushes_on_commit().await.unwrap(), "{}", db.backend);
        tx.commit().await.unwrap();
        for round in 0..2 {
            let mut tx = store.begin_urgent_unflushed().await.unwrap();
            assert!(!tx.flushes_on_commit().await.unwrap(), "{} round {round}", db.backend);
            audit::append(
                &mut tx,
                &audit::NewEntry {
                    at: at(round),
                    actor: "user:1",
                    action: "report.read",
                    subject: "report:X",
                    details: "",
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            // One after the other: SQLite has one writer, so a second write transaction
            // begun while the first is open waits for it.
            for urgent in [false, true] {
                let mut tx = if urgent { store.begin_urgent().await.unwrap() } else { store.begin().await.unwrap() };
                assert!(
                    tx.flushes_on_commit().await.unwrap(),
                    "{} round {round}: a state change waits for the disk",
                    db.backend
                );
                tx.rollback().await.unwrap();
            }
        }
        // An unflushed transaction that fails before its commit leaves the next one flushed.
        let tx = store.begin_urgent_unflushed().await.unwrap();
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert!(tx.flushes_on_commit().await.unwrap(), "{}", db.backend);
        let entries = audit::list_for_subject(&mut tx, "report:X", 10).await.unwrap();
        assert_eq!(entries.len(), 2, "{}", db.backend);
        tx.rollback().await.unwrap();
        let snapshot = store.snapshot().await.unwrap();
        snapshot.rollback().await.unwrap();
        assert_eq!(
            store.transaction_counts() - before,
            embargo_store::TransactionCounts { snapshots: 1, writes: 9 },
            "{}",
            db.backend
        );
        assert!(matches!(audit::verify(&store).await.unwrap(), audit::Verification::Intact(2)), "{}", db.backend);
    }
}
