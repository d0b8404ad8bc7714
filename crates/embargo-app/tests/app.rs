//! Use-case tests, each on SQLite and PostgreSQL: permissions, audit in the same
//! transaction, the lifecycle through the store, mail threading, the first-admin link and
//! the job worker.

use embargo_app::intake::{IngestOutcome, ingest_mail};
use embargo_app::reports::{self, ReadPurpose};
use embargo_app::{App, AppError, accounts, audit, jobs};
use embargo_domain::{Actor, ReferenceId, ReportState, Role, Target};
use embargo_test_support::both_backends;

mod common;
use common::{instance, submission};

#[path = "app/attachments.rs"]
mod attachments;
#[path = "app/checkpoints.rs"]
mod checkpoints;
#[path = "app/disclosure.rs"]
mod disclosure;
#[path = "app/fixes.rs"]
mod fixes;
#[path = "app/offboarding.rs"]
mod offboarding;
#[path = "app/oidc.rs"]
mod oidc;
#[path = "app/partners.rs"]
mod partners;
#[path = "app/passkeys.rs"]
mod passkeys;
#[path = "app/release.rs"]
mod release;
#[path = "app/runbook.rs"]
mod runbook;
#[path = "app/similarity.rs"]
mod similarity;
// One test binary for the crate (`autotests = false`): the other files are its modules.
#[path = "advisories.rs"]
mod advisories;
#[path = "sla.rs"]
mod sla;

fn mail(from: &str, subject: &str, id: &str, in_reply_to: Option<&str>, body: &str) -> Vec<u8> {
    let mut text = format!("From: {from}\r\nTo: security@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n");
    if let Some(parent) = in_reply_to {
        text.push_str(&format!("In-Reply-To: <{parent}>\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

async fn audit_actions(app: &App) -> Vec<(String, String, String)> {
    audit::list(app, &Actor::System("test"), 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.subject))
        .collect()
}

#[tokio::test]
async fn mail_opens_reports_threads_replies_and_ignores_redeliveries() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let first =
            ingest_mail(app, &mail("Alice <alice@example.org>", "Overflow", "a1@example.org", None, "Steps..."))
                .await
                .unwrap();
        let reference = match first {
            IngestOutcome::NewReport(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(reference.to_string(), "EMB-2026-1", "{}", it.db.backend);

        // The reporter's reply threads in; a redelivery of the same message is not stored twice.
        let reply = ingest_mail(
            app,
            &mail("alice@EXAMPLE.org", "Re: Overflow", "a2@example.org", Some("a1@example.org"), "More"),
        )
        .await
        .unwrap();
        assert_eq!(reply, IngestOutcome::Reply(reference.clone()));
        let again = ingest_mail(
            app,
            &mail("alice@example.org", "Re: Overflow", "a2@example.org", Some("a1@example.org"), "More"),
        )
        .await
        .unwrap();
        assert_eq!(again, IngestOutcome::AlreadyReceived(reference.clone()));

        // Someone else answering the thread is never posted as the reporter.
        let other = ingest_mail(
            app,
            &mail("mallory@example.net", "Re: Overflow", "m1@example.net", Some("a1@example.org"), "I am Alice"),
        )
        .await
        .unwrap();
        assert!(matches!(other, IngestOutcome::NewReport(ref r) if *r != reference), "{other:?}");

        let detail = reports::show(app, &Actor::System("test"), &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.messages.len(), 2);
        assert_eq!(detail.messages[1].body, "More");
        assert_eq!(detail.reporter.email, "alice@example.org");
        assert!(detail.messages[0].raw_size.unwrap() > 0, "raw message kept");

        // Unparsable input is still kept as a report.
        let garbage = ingest_mail(app, b"\xff\xfe\x00 not mail").await.unwrap();
        let IngestOutcome::NewReport(garbage) = garbage else { panic!() };
        let detail = reports::show(app, &Actor::System("test"), &garbage, ReadPurpose::Read).await.unwrap();
        assert!(detail.report.body.contains("not mail"));
        assert!(matches!(ingest_mail(app, b"  \r\n").await, Err(AppError::Invalid(_))));
    }
}

#[tokio::test]
async fn need_to_know_decides_who_reads_and_moves_a_report() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let admin_id =
            accounts::create_user(app, &local, "admin@example.org", Role::Admin, Some("correct horse battery"))
                .await
                .unwrap();
        let on_id = accounts::create_user(app, &local, "on@example.org", Role::Responder, None).await.unwrap();
        let off_id = accounts::create_user(app, &local, "off@example.org", Role::Responder, None).await.unwrap();
        let admin = Actor::User { id: admin_id, role: Role::Admin };
        let on = Actor::User { id: on_id, role: Role::Responder };
        let off = Actor::User { id: off_id, role: Role::Responder };

        let submitted =
            reports::submit(app, &Actor::Reporter, submission("r@example.org", "Auth bypass")).await.unwrap();
        let reference = submitted.reference.clone();
        reports::add_member(app, &admin, &reference, "on@example.org").await.unwrap();

        // Responders cannot create accounts; reporters cannot list.
        assert!(matches!(
            accounts::create_user(app, &on, "x@example.org", Role::Admin, None).await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(reports::list(app, &Actor::Reporter, None).await, Err(AppError::Forbidden(_))));

        // The responder on the report sees and moves it; the one off it cannot tell it exists.
        assert_eq!(reports::list(app, &on, None).await.unwrap().len(), 1);
        assert_eq!(reports::list(app, &off, None).await.unwrap().len(), 0);
        assert_eq!(reports::list(app, &admin, None).await.unwrap().len(), 1);
        reports::show(app, &on, &reference, ReadPurpose::Read).await.unwrap();
        let denied = reports::show(app, &off, &reference, ReadPurpose::Read).await.unwrap_err();
        assert!(matches!(denied, AppError::NotFound(_)), "{denied}");
        let denied = reports::transition(app, &off, &reference, "triaging".parse().unwrap()).await.unwrap_err();
        assert!(matches!(denied, AppError::NotFound(_)), "{denied}");
        reports::transition(app, &on, &reference, "acknowledged".parse().unwrap()).await.unwrap();
        // Adding members is for admins.
        assert!(matches!(
            reports::add_member(app, &on, &reference, "off@example.org").await,
            Err(AppError::Forbidden(_))
        ));

        // Every read, list and change left an audit entry naming its actor; refused ones did not.
        let entries = audit_actions(app).await;
        let subject = format!("report:{reference}");
        let on_text = on.to_string();
        assert!(entries.contains(&(on_text.clone(), "report.read".into(), subject.clone())));
        assert!(entries.contains(&(on_text.clone(), "report.transition".into(), subject.clone())));
        assert!(entries.contains(&("reporter".into(), "report.create".into(), subject.clone())));
        let off_text = off.to_string();
        assert!(!entries.iter().any(|(a, act, _)| *a == off_text && act != "report.list"));
    }
}

/// The permissions are the domain's, with no second list: every one of them is checked by
/// `authz::require` exactly as its row of the table says, on the report for those that
/// concern one (need-to-know resolved there), and a check that leaves out the report (or
/// names one where none is concerned) is refused even to an administrator.
#[tokio::test]
async fn every_permission_of_the_domain_is_checked_as_its_row_says() {
    use embargo_app::authz::{self, Permission};
    use embargo_domain::UserId;
    use embargo_domain::access::{Concerns, Grant};
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let on_id = accounts::create_user(app, &local, "on@example.org", Role::Responder, None).await.unwrap();
        let off_id = accounts::create_user(app, &local, "off@example.org", Role::Responder, None).await.unwrap();
        let report = reports::submit(app, &Actor::Reporter, submission("r@example.org", "A")).await.unwrap();
        reports::add_member(app, &local, &report.reference, "on@example.org").await.unwrap();
        let actors = [
            (local.clone(), true),
            (Actor::User { id: UserId(900), role: Role::Admin }, false),
            (Actor::User { id: on_id, role: Role::Responder }, true),
            (Actor::User { id: off_id, role: Role::Responder }, false),
            (Actor::User { id: on_id, role: Role::FixDeveloper }, true),
            (Actor::User { id: on_id, role: Role::Partner }, true),
            (Actor::System("test"), false),
            (Actor::Reporter, false),
        ];
        let mut tx = app.store.begin().await.unwrap();
        let mut outcomes = std::collections::HashSet::new();
        for permission in Permission::ALL {
            for (actor, on_report) in &actors {
                let checked = match permission.concerns() {
                    Concerns::Report => authz::require(&mut tx, actor, permission.on(report.id)).await,
                    _ => authz::require(&mut tx, actor, permission).await,
                };
                let expected = match (authz::grant(actor, permission), permission.concerns()) {
                    (Grant::All, _) => true,
                    (Grant::No, _) => false,
                    (Grant::Scoped, Concerns::Report) => *on_report,
                    (Grant::Scoped, Concerns::Kind) => true,
                    // Listing what was shared: the use case narrows it to the account's copies.
                    (Grant::Scoped, Concerns::Shared) => true,
                };
                assert_eq!(checked.is_ok(), expected, "{permission:?} for {actor} ({})", it.db.backend);
                if let Err(err) = checked {
                    assert!(matches!(err, AppError::Forbidden(m) if m == permission.describe()), "{permission:?}");
                }
                outcomes.insert((permission.concerns(), authz::grant(actor, permission), expected));
            }
            // A check without the report it concerns, or with one it does not, is refused.
            let malformed = match permission.concerns() {
                Concerns::Report => authz::require(&mut tx, &local, permission).await,
                _ => authz::require(&mut tx, &local, permission.on(report.id)).await,
            };
            assert!(matches!(malformed, Err(AppError::Forbidden(_))), "{permission:?} malformed");
        }
        // On one notice, a partner holds `ReadShared` only with a copy of it (none here); a
        // notice named for a permission that does not concern one is refused.
        let partner = Actor::User { id: on_id, role: Role::Partner };
        assert!(authz::require(&mut tx, &partner, Permission::ReadShared.on_notice(4242)).await.is_err());
        assert!(authz::require(&mut tx, &local, Permission::ReadShared.on_notice(4242)).await.is_ok());
        assert!(authz::require(&mut tx, &local, Permission::ListReports.on_notice(4242)).await.is_err());
        // Both sides of need-to-know were exercised.
        assert!(outcomes.contains(&(Concerns::Report, Grant::Scoped, true)));
        assert!(outcomes.contains(&(Concerns::Report, Grant::Scoped, false)));
        tx.rollback().await.unwrap();

        // The product catalogue is guarded by its own permission, not by the accounts one.
        let product = accounts::create_product(app, &local, "Decoder").await.unwrap();
        let on = Actor::User { id: on_id, role: Role::Responder };
        let catalogue = Permission::ManageCatalogue.describe();
        for refused in [
            accounts::rename_product(app, &on, product, "Encoder").await,
            accounts::remove_product_responder(app, &on, product, "on@example.org").await,
            accounts::delete_product(app, &on, product).await,
            accounts::add_product_responder(app, &on, product, "on@example.org").await,
            accounts::create_product(app, &on, "Other").await.map(|_| ()),
        ] {
            assert!(matches!(refused, Err(AppError::Forbidden(m)) if m == catalogue), "{refused:?}");
        }
        accounts::rename_product(app, &local, product, "Encoder").await.unwrap();
        accounts::delete_product(app, &local, product).await.unwrap();
    }
}

#[tokio::test]
async fn the_lifecycle_is_enforced_and_recorded_end_to_end() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let admin = Actor::LocalAdmin { os_user: "root".into() };
        let a = reports::submit(app, &Actor::Reporter, submission("a@example.org", "A")).await.unwrap().reference;
        let b = reports::submit(app, &Actor::Reporter, submission("b@example.org", "B")).await.unwrap().reference;

        let err = reports::transition(app, &admin, &a, "disclosed".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.to_string(), "a report cannot move from new to disclosed");
        let err = reports::transition(app, &admin, &a, Target::duplicate_of(a.clone())).await.unwrap_err();
        assert_eq!(err.to_string(), "a report cannot be a duplicate of itself");
        // The original must exist (and be readable): nothing changes otherwise.
        let missing: ReferenceId = "EMB-2026-99".parse().unwrap();
        assert!(matches!(
            reports::transition(app, &admin, &a, Target::duplicate_of(missing.clone())).await,
            Err(AppError::NotFound(_))
        ));
        assert_eq!(reports::show(app, &admin, &a, ReadPurpose::Read).await.unwrap().report.state, ReportState::New);
        assert!(matches!(
            reports::transition(app, &admin, &missing, "triaging".parse().unwrap()).await,
            Err(AppError::NotFound(_))
        ));

        for (i, target) in ["acknowledged", "triaging", "accepted", "fixing", "ready-for-disclosure", "disclosed"]
            .into_iter()
            .enumerate()
        {
            it.clock.advance_secs(60);
            let t = reports::transition(app, &admin, &a, target.parse().unwrap()).await.unwrap();
            assert_eq!(t.to.code(), target, "step {i}");
        }
        reports::transition(app, &admin, &b, Target::duplicate_of(a.clone())).await.unwrap();
        assert!(
            reports::transition(app, &admin, &a, "closed:spam".parse().unwrap()).await.is_err(),
            "disclosed is final"
        );

        let detail = reports::show(app, &admin, &b, ReadPurpose::Export).await.unwrap();
        assert!(matches!(detail.report.state, ReportState::Closed(embargo_domain::CloseReason::Duplicate { .. })));
        let detail = reports::show(app, &admin, &a, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.transitions.len(), 6);
        assert_eq!(detail.transitions[0].actor, "cli:root");
        assert!(detail.transitions.windows(2).all(|w| w[0].at < w[1].at));

        let closed = reports::list(app, &admin, Some("closed")).await.unwrap();
        assert_eq!(closed.len(), 1);
        assert!(matches!(reports::list(app, &admin, Some("shut")).await, Err(AppError::Invalid(_))));
        let entries = audit_actions(app).await;
        assert!(
            entries.iter().any(|(_, action, subject)| action == "report.export" && *subject == format!("report:{b}"))
        );
        match audit::verify(app, &admin).await.unwrap() {
            audit::Verification::Intact(n) => assert!(n > 10),
            broken => panic!("{broken:?}"),
        }
    }
}

#[tokio::test]
async fn the_first_admin_link_works_once() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let link = accounts::first_admin_link(app, &app.config.base_url()).await.unwrap().unwrap();
        let token = link.rsplit('/').next().unwrap().to_owned();
        assert!(link.starts_with("http://127.0.0.1:8080/setup/"));
        assert!(accounts::first_admin_link_valid(app, &token).await.unwrap());
        assert!(!accounts::first_admin_link_valid(app, "wrong").await.unwrap());
        assert!(matches!(
            accounts::create_first_admin(app, &token, "a@example.org", "short").await,
            Err(AppError::Invalid(_))
        ));
        accounts::create_first_admin(app, &token, "first@example.org", "a long enough password").await.unwrap();
        assert!(matches!(
            accounts::create_first_admin(app, &token, "again@example.org", "a long enough password").await,
            Err(AppError::NotFound(_))
        ));
        assert_eq!(
            accounts::first_admin_link(app, &app.config.base_url()).await.unwrap(),
            None,
            "no link once an admin exists"
        );

        let token =
            accounts::create_token(app, &Actor::LocalAdmin { os_user: "root".into() }, "first@example.org", "ci")
                .await
                .unwrap();
        let actor = accounts::authenticate_token(app, &token).await.unwrap().unwrap();
        assert!(matches!(actor, Actor::User { role: Role::Admin, .. }));
        assert_eq!(accounts::authenticate_token(app, "emb_wrong").await.unwrap(), None);
        assert!(accounts::verify_password_of(app, "first@example.org", "a long enough password").await.unwrap());
        assert!(!accounts::verify_password_of(app, "first@example.org", "wrong password!!").await.unwrap());
    }
}

/// Publishing a CVE record is a permission of its own: the system may (the disclosure
/// runbook publishes), a responder may not, and it is not account management.
#[tokio::test]
async fn the_system_may_publish_cve_records_and_a_responder_may_not() {
    use embargo_app::authz::{Permission, require};
    for db in both_backends() {
        let it = instance(db).await;
        let mut tx = it.app.store.begin().await.unwrap();
        require(&mut tx, &Actor::System("runbook"), Permission::PublishCve).await.unwrap();
        let responder = Actor::User { id: embargo_domain::UserId(1), role: Role::Responder };
        assert!(matches!(require(&mut tx, &responder, Permission::PublishCve).await, Err(AppError::Forbidden(_))));
        assert!(require(&mut tx, &Actor::System("runbook"), Permission::ManageAccounts).await.is_err());
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn workers_run_jobs_and_retake_expired_leases() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let ids = embargo_app::diagnostics::enqueue_probes(app, &local, 3, 0).await.unwrap();
        assert_eq!(ids.len(), 3);
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        let done = jobs::list(app, &local, Some("done"), 10).await.unwrap();
        assert_eq!(done.len(), 3, "{}", it.db.backend);
        assert!(!worker.run_once().await.unwrap(), "nothing left");
        assert!(matches!(
            embargo_app::diagnostics::enqueue_probes(app, &Actor::Reporter, 1, 0).await,
            Err(AppError::Forbidden(_))
        ));
    }
}

/// Concurrent SMTP deliveries are committed together. Whatever lands in one batch is filed
/// exactly as it would be alone: new reports with their acknowledgement and index, a
/// redelivery recognised within the batch, a reply threaded to a report opened earlier in
/// the same batch, and mail to a reply address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_commit_files_every_message_as_it_would_alone() {
    use embargo_app::intake::{IntakeQueue, MailEnvelope, reply_address};
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let existing = ingest_mail(app, &mail("rita@example.net", "Existing", "e1@example.net", None, "first"))
            .await
            .unwrap()
            .reference()
            .clone();
        let detail = reports::show(app, &Actor::System("test"), &existing, ReadPurpose::Read).await.unwrap();
        let reply_to = reply_address(app, &detail.report.reply_token);

        // Each message comes with its own envelope sender (mail whose From is not the envelope
        // sender is not acknowledged: ADR 15).
        let mut messages: Vec<(Vec<u8>, Vec<String>, &str)> = Vec::new();
        let to_security = vec!["security@example.org".to_owned()];
        for i in 0..8 {
            let from = ["p0@example.org", "p1@example.org", "p2@example.org"][i % 3];
            let raw = mail(from, &format!("Batch {i}"), &format!("b{i}@x.org"), None, "zebrafish leak");
            messages.push((raw, to_security.clone(), from));
        }
        let dup = mail("d@example.org", "Dup", "dup@x.org", None, "twice");
        messages.push((dup.clone(), to_security.clone(), "d@example.org"));
        messages.push((dup, to_security.clone(), "d@example.org"));
        messages.push((
            mail("t@example.org", "Thread", "t1@x.org", None, "parent"),
            to_security.clone(),
            "t@example.org",
        ));
        messages.push((
            mail("t@example.org", "Re: Thread", "t2@x.org", Some("t1@x.org"), "child"),
            to_security.clone(),
            "t@example.org",
        ));
        let answer = format!(
            "From: rita@example.net\r\nTo: {reply_to}\r\nSubject: Re\r\nMessage-ID: <e2@example.net>\r\n\r\nmore"
        );
        messages.push((answer.into_bytes(), vec![reply_to.clone()], "rita@example.net"));

        // Hold the audit head so that everything below queues up behind the first batch.
        let mut hold = app.store.begin().await.unwrap();
        let entry =
            embargo_store::audit::NewEntry { at: app.now(), actor: "test", action: "hold", subject: "x", details: "" };
        embargo_store::audit::append(&mut hold, &entry).await.unwrap();
        let queue = IntakeQueue::start(app.clone());
        let mut tasks = Vec::new();
        for (raw, rcpt_to, from) in messages {
            let (queue, app) = (queue.clone(), app.clone());
            let envelope = MailEnvelope { mail_from: Some(from.into()), rcpt_to, auth: None };
            tasks.push(tokio::spawn(async move { queue.ingest(&app, raw, envelope).await }));
            // In this order into the queue.
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(tasks.iter().all(|t| !t.is_finished()), "{}: nothing is acknowledged before its commit", it.db.backend);
        hold.rollback().await.unwrap();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }

        let new: Vec<&ReferenceId> = outcomes[..8]
            .iter()
            .map(|o| match o {
                IngestOutcome::NewReport(r) => r,
                other => panic!("{}: {other:?}", it.db.backend),
            })
            .collect();
        let distinct: std::collections::HashSet<String> = new.iter().map(ToString::to_string).collect();
        assert_eq!(distinct.len(), 8);
        let IngestOutcome::NewReport(dup_ref) = &outcomes[8] else { panic!("{:?}", outcomes[8]) };
        assert_eq!(outcomes[9], IngestOutcome::AlreadyReceived(dup_ref.clone()), "{}", it.db.backend);
        let IngestOutcome::NewReport(parent) = &outcomes[10] else { panic!("{:?}", outcomes[10]) };
        assert_eq!(outcomes[11], IngestOutcome::Reply(parent.clone()), "{}", it.db.backend);
        assert_eq!(outcomes[12], IngestOutcome::Reply(existing.clone()), "{}", it.db.backend);

        // Each new report's jobs ran: acknowledged once each, and searchable.
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        let acks = embargo_app::intake::outbox(app).unwrap();
        assert_eq!(acks.len(), 1 + 8 + 1 + 1, "{}: one acknowledgement per new report", it.db.backend);
        let query =
            reports::InboxQuery { search: Some("zebrafish".into()), page: 1, per_page: 50, ..Default::default() };
        let found = reports::inbox(app, &Actor::System("test"), &query).await.unwrap();
        assert_eq!(found.total, 8, "{}", it.db.backend);
        let detail = reports::show(app, &Actor::System("test"), parent, ReadPurpose::Read).await.unwrap();
        let bodies: Vec<&str> =
            detail.messages.iter().filter(|m| m.kind.as_str() == "inbound").map(|m| m.body.trim()).collect();
        assert_eq!(bodies, ["parent", "child"]);
        assert!(matches!(audit::verify(app, &Actor::System("test")).await.unwrap(), audit::Verification::Intact(_)));
    }
}

/// The thread keeps mail to the reporter without their status link (their credential), and
/// what stands in its place is no address at all: on the team's page a half-kept link
/// (`https://host/status/[private ...]`) was made into a broken link.
#[tokio::test]
async fn the_thread_keeps_no_part_of_the_status_link() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let reference = ingest_mail(app, &mail("r@example.org", "Auth bypass", "sl@example.org", None, "Steps"))
            .await
            .unwrap()
            .reference()
            .clone();
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        let detail = reports::show(app, &Actor::System("test"), &reference, ReadPurpose::Read).await.unwrap();
        let sent: Vec<_> = detail.messages.iter().filter(|m| m.kind.as_str() == "outbound").collect();
        assert!(!sent.is_empty(), "{}: the acknowledgement is on the thread", it.db.backend);
        for message in sent {
            assert!(!message.body.contains("/status/"), "{}: {}", it.db.backend, message.body);
            assert!(message.body.contains("[private link, sent only to the reporter]"), "{}", message.body);
        }
    }
}

#[tokio::test]
async fn acting_as_an_account_is_for_who_manages_accounts_and_is_audited() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let id = accounts::create_user(app, &local, "resp@example.org", Role::Responder, None).await.unwrap();
        let actor = accounts::act_as(app, &local, "RESP@example.org").await.unwrap();
        assert_eq!(actor, Actor::User { id, role: Role::Responder });
        assert!(matches!(accounts::act_as(app, &actor, "resp@example.org").await, Err(AppError::Forbidden(_))));
        assert!(matches!(accounts::act_as(app, &local, "nobody@example.org").await, Err(AppError::NotFound(_))));
        let actions = audit_actions(app).await;
        assert_eq!(
            actions.iter().filter(|(_, action, _)| action == "user.act_as").count(),
            1,
            "{}: {actions:?}",
            it.db.backend
        );
        assert!(actions.contains(&("cli:root".into(), "user.act_as".into(), format!("user:{id}"))));
    }
}

#[tokio::test]
async fn importing_a_key_from_a_missing_attachment_says_it_is_missing() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let submitted = reports::submit(app, &Actor::Reporter, submission("r@example.org", "Key")).await.unwrap();
        let err = reports::import_reporter_key(app, &local, &submitted.reference, reports::KeyImport::Attachment(99))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::NotFound(what) if what.starts_with("attachment 99")),
            "{}: {err}",
            it.db.backend
        );
    }
}

/// One report of a scanner campaign, the same text from `scanner{n}@example.net`.
async fn scanner_report(app: &embargo_app::App, n: usize) -> embargo_domain::ReferenceId {
    let text = "The response of /login lacks the Strict-Transport-Security header, so a network \
                attacker can downgrade the connection and read the session cookie.";
    let submission = embargo_app::reports::Submission::new(
        embargo_app::reports::Channel::Web,
        &format!("scanner{n}@example.net"),
        "Missing HSTS header",
        text,
    );
    reports::submit(app, &Actor::System("test"), submission).await.unwrap().reference
}

/// A scanner campaign: many reports with the same text, so every one shares every band
/// with every other. Looking for one report's near-duplicates reads a bounded number of
/// band rows and signatures (at most [`reports::SIMILAR_PER_BAND`] reports on either side
/// per band), the same however large the campaign grows, and still suggests the closest
/// ones, all audited in one go.
#[tokio::test]
async fn near_duplicate_work_is_bounded_however_many_reports_look_alike() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let worker = jobs::Worker::new(app.clone());
        let campaign = async |count: usize| {
            let mut refs = Vec::new();
            for i in 0..count {
                refs.push(scanner_report(app, i % 7).await);
            }
            while worker.run_once().await.unwrap() {}
            refs
        };
        let refs = campaign(40).await;
        let bound = embargo_domain::similarity::BANDS * 2 * reports::SIMILAR_PER_BAND as usize;
        let (shown, work) = reports::similar_counted(app, &local, &refs[20]).await.unwrap();
        assert_eq!(shown.len(), reports::SIMILAR_SHOWN, "{}", it.db.backend);
        assert!(shown.iter().all(|s| s.score == 1.0 && s.reference != refs[20]));
        // Every band is shared by all 40, yet only the nearest per band are read.
        assert_eq!(work.band_rows, bound, "{}: {work:?}", it.db.backend);
        assert_eq!(work.distinct, 2 * reports::SIMILAR_PER_BAND as usize);
        assert!(work.signatures as i64 <= reports::SIMILAR_CANDIDATES);
        let trail = audit::for_report(app, &local, &shown[0].reference).await.unwrap();
        assert!(trail.iter().any(|e| e.action == "report.similar"), "each suggestion is audited");

        // Four times as many alike: the same work for the same report.
        campaign(120).await;
        let (again, more) = reports::similar_counted(app, &local, &refs[20]).await.unwrap();
        assert_eq!(more, work, "{}", it.db.backend);
        assert_eq!(again.len(), reports::SIMILAR_SHOWN);
    }
}

/// Suggestions once scored are kept and shown again without reading the band index or any
/// signature, and they are exactly what scoring anew gives: a report indexed later, a
/// duplicate link made or undone, each shows at once (ADR 37); both backends.
#[tokio::test]
async fn kept_suggestions_follow_new_reports_and_duplicate_links() {
    use embargo_domain::Target;
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let worker = jobs::Worker::new(app.clone());
        let submit = async |i: usize| {
            let reference = scanner_report(app, i).await;
            while worker.run_once().await.unwrap() {}
            reference
        };
        let first = submit(0).await;
        let second = submit(1).await;
        let shown = |s: &[reports::Similar]| s.iter().map(|s| s.reference.to_string()).collect::<Vec<_>>();
        let (a, work) = reports::similar_counted(app, &local, &first).await.unwrap();
        assert_eq!(shown(&a), [second.to_string()], "{}", it.db.backend);
        assert!(work.band_rows > 0 && work.signatures == 1, "scored: {work:?}");
        let (b, work) = reports::similar_counted(app, &local, &first).await.unwrap();
        assert_eq!(shown(&b), shown(&a));
        assert_eq!(work, embargo_store::reports::CandidateWork::default(), "{}: kept, nothing read", it.db.backend);

        // A third report, indexed: suggested at once.
        let third = submit(2).await;
        let (c, work) = reports::similar_counted(app, &local, &first).await.unwrap();
        assert_eq!(shown(&c), [second.to_string(), third.to_string()], "{}", it.db.backend);
        assert_eq!(work.signatures, 2, "{}: scored again", it.db.backend);
        reports::similar_counted(app, &local, &first).await.unwrap();

        // The second closed as a duplicate of the first: no longer suggested; reopened: again.
        reports::transition(app, &local, &second, Target::duplicate_of(first.clone())).await.unwrap();
        let (d, _) = reports::similar_counted(app, &local, &first).await.unwrap();
        assert_eq!(shown(&d), [third.to_string()], "{}", it.db.backend);
        reports::transition(app, &local, &second, "triaging".parse().unwrap()).await.unwrap();
        let (e, _) = reports::similar_counted(app, &local, &first).await.unwrap();
        assert_eq!(shown(&e), [second.to_string(), third.to_string()], "{}", it.db.backend);
    }
}

/// A report page is read in one snapshot and recorded in one commit, whatever it shows
/// (ADR 32): the report, its trail, links, history, near-duplicate suggestions, team and
/// products; the same as each read alone, under the same need-to-know. The inbox likewise,
/// with its filters' choices.
#[tokio::test]
async fn a_report_page_and_the_inbox_are_one_snapshot_and_one_audit_commit_each() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let on_id = accounts::create_user(app, &local, "on@example.org", Role::Responder, None).await.unwrap();
        let off_id = accounts::create_user(app, &local, "off@example.org", Role::Responder, None).await.unwrap();
        let on = Actor::User { id: on_id, role: Role::Responder };
        let off = Actor::User { id: off_id, role: Role::Responder };
        accounts::create_product(app, &local, "Router").await.unwrap();
        let mut refs = Vec::new();
        for i in 0..8 {
            refs.push(scanner_report(app, i).await);
        }
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        reports::add_member(app, &local, &refs[3], "on@example.org").await.unwrap();
        reports::add_member(app, &local, &refs[1], "on@example.org").await.unwrap();

        let before = app.store.transaction_counts();
        let page = reports::page(app, &local, &refs[3]).await.unwrap();
        let cost = app.store.transaction_counts() - before;
        assert_eq!(cost, embargo_store::TransactionCounts { snapshots: 1, writes: 1 }, "{}", it.db.backend);
        assert_eq!(page.detail.report.reference, refs[3]);
        assert_eq!(page.similar.len(), reports::SIMILAR_SHOWN, "{}", it.db.backend);
        let alone: Vec<_> = reports::similar(app, &local, &refs[3]).await.unwrap();
        assert_eq!(
            page.similar.iter().map(|s| &s.reference).collect::<Vec<_>>(),
            alone.iter().map(|s| &s.reference).collect::<Vec<_>>()
        );
        assert_eq!(page.members, vec!["on@example.org".to_owned()]);
        assert_eq!(page.team.len(), 2);
        assert_eq!(page.products.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Router"]);
        assert_eq!(page.history, reports::reporter_history(app, &local, &refs[3]).await.unwrap());
        // The page's read and each suggestion shown are on record, committed before it returned.
        let trail = audit::for_report(app, &local, &refs[3]).await.unwrap();
        assert!(trail.iter().any(|e| e.action == "report.read" && e.actor == local.to_string()));
        for shown in &page.similar {
            let theirs = audit::for_report(app, &local, &shown.reference).await.unwrap();
            assert!(theirs.iter().any(|e| e.action == "report.similar"), "{}", it.db.backend);
        }
        // The trail shown is the record before this page's own read.
        assert!(page.trail.iter().all(|e| e.subject == format!("report:{}", refs[3])));

        // Need-to-know: a responder on the report sees only the suggestions they may read,
        // and no members list; one off it learns nothing.
        let theirs = reports::page(app, &on, &refs[3]).await.unwrap();
        assert!(theirs.similar.iter().all(|s| s.reference == refs[1]), "{}", it.db.backend);
        assert!(theirs.members.is_empty());
        assert!(matches!(reports::page(app, &off, &refs[3]).await, Err(AppError::NotFound(_))));

        let query = reports::InboxQuery { page: 1, per_page: 50, ..Default::default() };
        let before = app.store.transaction_counts();
        let inbox = reports::inbox(app, &local, &query).await.unwrap();
        let cost = app.store.transaction_counts() - before;
        assert_eq!(cost, embargo_store::TransactionCounts { snapshots: 1, writes: 1 }, "{}", it.db.backend);
        assert_eq!(inbox.rows.len(), 8);
        assert_eq!(inbox.team.len(), 2);
        assert_eq!(inbox.products.len(), 1);
        let narrowed = reports::inbox(app, &on, &query).await.unwrap();
        assert_eq!(narrowed.rows.len(), 2, "{}", it.db.backend);
    }
}
