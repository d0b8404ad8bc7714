//! The disclosure runbook as use cases (issue 16), each on SQLite and PostgreSQL, with the
//! manual clock: arming by a second person bound to the content, a change disarming, nothing
//! public a millisecond early, every step once at the instant, a missed instant stopping for
//! a person, and a lost answer of a channel that cannot be asked stopping for one too.

use embargo_app::disclosure::{self, StepDecision};
use embargo_app::{App, AppError, accounts, advisories, assessment, intake, jobs, reports};
use embargo_domain::{Actor, AdvisoryState, ReferenceId, ReportState, Role, Timestamp};
use embargo_test_support::both_backends;

use crate::common::{Instance, instance_with, submission};

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "root".into() }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const LIST: &str = "oss-security@lists.example.org";

async fn people(app: &App) -> (Actor, Actor) {
    let lead = accounts::create_user(app, &local(), "lead@example.org", Role::Admin, None).await.unwrap();
    let on = accounts::create_user(app, &local(), "on@example.org", Role::Responder, None).await.unwrap();
    (Actor::User { id: lead, role: Role::Admin }, Actor::User { id: on, role: Role::Responder })
}

/// An accepted report assigned to `on` with an approved advisory (with mitigations).
async fn ready_report(app: &App, lead: &Actor, on: &Actor, title: &str) -> (ReferenceId, String) {
    let product = match accounts::products(app, lead).await.unwrap().iter().find(|p| p.product.name == "libparse") {
        Some(p) => p.product.id,
        None => accounts::create_product(app, lead, "libparse").await.unwrap(),
    };
    accounts::update_product(app, lead, product, "", "crates.io", "pkg:cargo/libparse", "2.x").await.unwrap();
    let reference =
        reports::submit(app, &Actor::Reporter, submission("rita@example.org", title)).await.unwrap().reference;
    reports::set_product(app, lead, &reference, Some(product)).await.unwrap();
    reports::assign(app, lead, &reference, Some("on@example.org")).await.unwrap();
    for to in ["triaging", "accepted"] {
        reports::transition(app, lead, &reference, to.parse().unwrap()).await.unwrap();
    }
    assessment::set_cvss(app, on, &reference, "3.1", Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"))
        .await
        .unwrap();
    assessment::set_classification(app, on, &reference, "CWE-787", None).await.unwrap();
    let rows = [assessment::Affected {
        product_id: product,
        introduced: "2.0.0".into(),
        fixed: "2.4.1".into(),
        last_affected: String::new(),
    }];
    assessment::set_affected(app, on, &reference, &rows).await.unwrap();
    let id = advisories::create(app, on, "", Some(&reference)).await.unwrap();
    let mut record = advisories::get(app, on, &id).await.unwrap().record;
    record.summary = "A crafted file makes the parser write past a buffer.".into();
    record.details = "Parsing a crafted archive overflows a heap buffer.".into();
    record.workarounds = "Do not parse untrusted archives <script>until</script> you upgrade.".into();
    advisories::update(app, on, &id, record).await.unwrap();
    advisories::submit_for_review(app, on, &id).await.unwrap();
    advisories::approve(app, lead, &id).await.unwrap();
    (reference, id)
}

async fn instance(db: embargo_test_support::TestDb) -> Instance {
    instance_with(db, |c| {
        c.public_url = "https://security.example.org".into();
        c.announce.mailing_lists = vec![LIST.into()];
    })
    .await
}

fn list_mails(app: &App) -> Vec<String> {
    intake::outbox(app)
        .unwrap()
        .iter()
        .map(|m| std::fs::read_to_string(&m.path).unwrap())
        .filter(|m| m.contains(&format!("To: {LIST}")))
        .collect()
}

async fn run_jobs(app: &App) {
    let worker = jobs::Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

fn step<'a>(view: &'a disclosure::PlanView, name: &str) -> &'a disclosure::StepView {
    view.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}: {:?}", view.steps))
}

#[tokio::test]
async fn a_plan_armed_by_a_second_person_runs_once_at_the_instant_and_never_early() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let backend = it.db.backend;
        let (lead, on) = people(app).await;
        let (reference, advisory) = ready_report(app, &lead, &on, "Heap overflow in libparse").await;
        let instant = t("2026-03-10T16:00:00Z");

        let plan = disclosure::plan(app, &on, &reference, instant, false).await.unwrap();
        assert_eq!(plan.state, "draft");
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["preflight", "push", "binaries", "advisory", "cve", &format!("announce.list:{LIST}"), "closeout"],
            "{backend}"
        );
        assert_eq!(step(&plan, "push").state, "skipped", "the product has no repository");
        // The mitigations are in the announcement, as written (escaping is each channel's job).
        let message = plan.content.message("lists").unwrap();
        assert!(message.text.contains("<script>until</script>"), "{}", message.text);

        // The person who prepared it cannot arm it; a second person can, bound to the hash.
        let refused = disclosure::approve(app, &on, &plan.id.to_string(), None).await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("second person")), "{refused}");
        let stale = disclosure::approve(app, &lead, &plan.id.to_string(), Some("0000")).await.unwrap_err();
        assert!(matches!(stale, AppError::Conflict(ref m) if m.contains("changed")), "{stale}");
        let armed = disclosure::approve(app, &lead, &reference.to_string(), Some(&plan.content_hash)).await.unwrap();
        assert_eq!(armed.state, "armed");
        assert_eq!(armed.approved_by.as_deref(), Some(lead.identity().as_str()));

        // A change after approval disarms it; the one who changed it cannot re-arm it.
        let edited = disclosure::set_message(
            app,
            &lead,
            &plan.id.to_string(),
            "lists",
            None,
            &format!("{}\nUpgrade to 2.4.1.\n", message.text),
        )
        .await
        .unwrap();
        assert_eq!(edited.state, "draft", "{backend}");
        assert_ne!(edited.content_hash, plan.content_hash);
        assert!(disclosure::approve(app, &lead, &plan.id.to_string(), None).await.is_err());
        // Nor can anyone who prepared it before (every editor is remembered), nor a responder
        // (arming publishes: it takes the permission to publish advisories).
        let refused = disclosure::approve(app, &on, &plan.id.to_string(), None).await.unwrap_err();
        assert!(matches!(refused, AppError::Forbidden(_) | AppError::Conflict(_)), "{refused}");
        let second = accounts::create_user(app, &local(), "second@example.org", Role::Admin, None).await.unwrap();
        let second = Actor::User { id: second, role: Role::Admin };
        disclosure::approve(app, &second, &plan.id.to_string(), Some(&edited.content_hash)).await.unwrap();

        // An hour before: the pre-flight checks run; nothing public.
        it.clock.set("2026-03-10T15:00:00Z");
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(view.state, "armed");
        assert!(step(&view, "preflight").detail.contains("all checks passed"), "{:?}", step(&view, "preflight"));
        // One millisecond before the instant: still nothing public.
        it.clock.set("2026-03-10T15:59:59.999Z");
        disclosure::advance(app, plan.id).await.unwrap();
        run_jobs(app).await;
        assert_eq!(advisories::get(app, &lead, &advisory).await.unwrap().state, AdvisoryState::Approved, "{backend}");
        assert!(list_mails(app).is_empty(), "nothing announced before the instant");
        assert_eq!(disclosure::status(app, &on, &plan.id.to_string()).await.unwrap().state, "armed");

        // The instant: every step, in order, once.
        it.clock.set("2026-03-10T16:00:00Z");
        run_jobs(app).await;
        let done = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(done.state, "done", "{backend}: {:?} {:?}", done.stop_reason, done.steps);
        let published = advisories::get(app, &lead, &advisory).await.unwrap();
        assert_eq!(published.state, AdvisoryState::Published);
        let public_id = published.public_id.unwrap();
        assert_eq!(step(&done, "advisory").external_id.as_deref(), Some(public_id.as_str()));
        for s in &done.steps {
            if s.state == "done" && s.name != "preflight" {
                assert!(s.started_after_instant_ms.unwrap() >= 0, "{} started before the instant", s.name);
            }
        }
        let mails = list_mails(app);
        assert_eq!(mails.len(), 1, "{backend}");
        assert!(mails[0].contains(&public_id), "the public ID is filled in");
        assert!(mails[0].contains(&format!("https://security.example.org/advisories/{public_id}")));
        assert!(mails[0].contains("Upgrade to 2.4.1."), "the team's edit went out");
        assert!(mails[0].contains("<script>until</script>"), "a plain-text mail keeps every character");
        let report = reports::show(app, &lead, &reference, reports::ReadPurpose::Read).await.unwrap();
        assert_eq!(report.report.state, ReportState::Disclosed, "{backend}");

        // Nothing happens twice: another round finds nothing to do.
        disclosure::advance(app, plan.id).await.unwrap();
        run_jobs(app).await;
        assert_eq!(list_mails(app).len(), 1);
        assert_eq!(advisories::get(app, &lead, &advisory).await.unwrap().published_revisions, 1);
        // A done plan cannot be cancelled, and no new plan announces the report again.
        assert!(disclosure::cancel(app, &lead, &plan.id.to_string(), "").await.is_err());
        let again = disclosure::plan(app, &on, &reference, t("2026-03-20T16:00:00Z"), false).await.unwrap_err();
        assert!(matches!(again, AppError::Conflict(ref m) if m.contains("already published")), "{again}");
        // Texts with control or direction characters are refused, not stored.
        let (third, _) = ready_report(app, &lead, &on, "Another overflow").await;
        let other = disclosure::plan(app, &on, &third, t("2026-03-20T16:00:00Z"), false).await.unwrap();
        let bad = disclosure::set_message(app, &on, &other.id.to_string(), "lists", None, "Upgrade\u{202e}now").await;
        assert!(matches!(bad, Err(AppError::Invalid(ref m)) if m.contains("U+202E")), "{bad:?}");
    }
}

#[tokio::test]
async fn an_advisory_edited_after_approval_disarms_the_plan() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let (lead, on) = people(app).await;
        let (reference, advisory) = ready_report(app, &lead, &on, "Heap overflow in libparse").await;
        let plan = disclosure::plan(app, &on, &reference, t("2026-03-10T16:00:00Z"), false).await.unwrap();
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        let mut record = advisories::get(app, &lead, &advisory).await.unwrap().record;
        record.workarounds = "Something else entirely.".into();
        advisories::update(app, &on, &advisory, record).await.unwrap();
        it.clock.set("2026-03-10T16:00:00Z");
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(view.state, "draft", "disarmed: {:?}", view.steps);
        assert!(list_mails(app).is_empty());
        assert_ne!(advisories::get(app, &lead, &advisory).await.unwrap().state, AdvisoryState::Published);
    }
}

#[tokio::test]
async fn a_missed_instant_runs_within_the_grace_and_otherwise_waits_for_a_person() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let (lead, on) = people(app).await;
        // Within the grace (15 minutes): it runs.
        let (first, _) = ready_report(app, &lead, &on, "Heap overflow in libparse").await;
        let plan = disclosure::plan(app, &on, &first, t("2026-03-10T16:00:00Z"), false).await.unwrap();
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        it.clock.set("2026-03-10T16:15:00Z");
        run_jobs(app).await;
        assert_eq!(disclosure::status(app, &on, &plan.id.to_string()).await.unwrap().state, "done");

        // Beyond it: nothing public; it stops and a person decides.
        let (second, advisory) = ready_report(app, &lead, &on, "Use after free in libparse").await;
        let plan = disclosure::plan(app, &on, &second, t("2026-03-11T16:00:00Z"), false).await.unwrap();
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        it.clock.set("2026-03-11T16:15:00.001Z");
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(view.state, "stopped");
        assert!(view.stop_reason.as_deref().unwrap_or("").contains("a person decides"), "{:?}", view.stop_reason);
        assert_eq!(advisories::get(app, &lead, &advisory).await.unwrap().state, AdvisoryState::Approved);
        assert_eq!(list_mails(app).len(), 1, "only the first plan's");
        disclosure::resume(app, &lead, &plan.id.to_string()).await.unwrap();
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(view.state, "done", "{:?}", view.steps);
        assert_eq!(list_mails(app).len(), 2);
        assert_eq!(step(&view, "preflight").state, "done", "the checks ran on the resume: {:?}", view.steps);

        // Stopped at a missed instant, the advisory edited meanwhile: resuming is refused (it
        // would publish what nobody approved); steps of a cancelled plan are not decided.
        let (third, advisory) = ready_report(app, &lead, &on, "Double free in libparse").await;
        let plan = disclosure::plan(app, &on, &third, t("2026-03-12T16:00:00Z"), false).await.unwrap();
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        it.clock.set("2026-03-12T17:00:00Z");
        run_jobs(app).await;
        assert_eq!(disclosure::status(app, &on, &plan.id.to_string()).await.unwrap().state, "stopped");
        let mut record = advisories::get(app, &lead, &advisory).await.unwrap().record;
        record.workarounds = "Nothing helps.".into();
        advisories::update(app, &on, &advisory, record).await.unwrap();
        let refused = disclosure::resume(app, &lead, &plan.id.to_string()).await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("changed since its approval")), "{refused}");
        disclosure::cancel(app, &lead, &plan.id.to_string(), "re-plan").await.unwrap();
        let decided =
            disclosure::decide_step(app, &lead, &plan.id.to_string(), "advisory", StepDecision::Retry, "").await;
        assert!(matches!(decided, Err(AppError::Conflict(_))), "{decided:?}");
    }
}

async fn crash_in_call(app: &App, lead: &Actor, plan: i64, name: &str) {
    use embargo_domain::disclosure::{PlanState, StepState};
    use embargo_store::disclosure as store;
    let now = app.now();
    let view = disclosure::status(app, lead, &plan.to_string()).await.unwrap();
    let advisory = view.content.advisory.as_ref().unwrap().id.clone();
    advisories::publish(app, lead, &advisory, None).await.unwrap();
    let mut tx = app.store.begin().await.unwrap();
    assert!(store::set_state(&mut tx, plan, PlanState::Armed, PlanState::Running, None, now).await.unwrap());
    for step in store::steps(&mut tx, plan, "live").await.unwrap() {
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

#[tokio::test]
async fn a_lost_answer_of_a_channel_that_cannot_be_asked_waits_for_a_person() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let (lead, on) = people(app).await;
        let (reference, _) = ready_report(app, &lead, &on, "Heap overflow in libparse").await;
        let plan = disclosure::plan(app, &on, &reference, t("2026-03-10T16:00:00Z"), false).await.unwrap();
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        it.clock.set("2026-03-10T16:00:00Z");
        // A runner died in the middle of the mail to the list: the plan running, the advisory
        // published, the call marked and its answer never recorded (the stored state a
        // SIGKILL leaves; the end-to-end fault tests kill the real binary).
        crash_in_call(app, &lead, plan.id, &format!("announce.list:{LIST}")).await;
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        let list_step = step(&view, &format!("announce.list:{LIST}"));
        assert_eq!(list_step.state, "needs-person", "{:?}", view.steps);
        assert!(list_step.detail.contains("cannot be asked"), "{}", list_step.detail);
        assert_eq!(view.state, "stopped");
        assert!(list_mails(app).is_empty(), "never sent twice: not sent again without a person");
        assert_eq!(step(&view, "closeout").state, "pending", "close-out waits for every announcement");
        // The person checked the list: it did not arrive. Retry, deliberately.
        disclosure::decide_step(
            app,
            &lead,
            &plan.id.to_string(),
            &format!("announce.list:{LIST}"),
            StepDecision::Retry,
            "not in the archive",
        )
        .await
        .unwrap();
        run_jobs(app).await;
        let view = disclosure::status(app, &on, &plan.id.to_string()).await.unwrap();
        assert_eq!(view.state, "done", "{:?}", view.steps);
        assert_eq!(list_mails(app).len(), 1);
    }
}
