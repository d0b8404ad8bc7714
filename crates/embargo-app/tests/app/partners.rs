//! Partners and early disclosure as use cases (issue 15), each on SQLite and PostgreSQL:
//! the policy's refusals in words people understand, a revised date re-notifying every
//! partner, reminders at hand-computed instants with the manual clock, portal scoping
//! (one partner never sees another's notice), bounces, leaks that break the embargo, and
//! the public pre-announcement.

use embargo_app::partners::{self, DraftOptions, LeakDecision, NewContact, NewPartnerInput};
use embargo_app::reports;
use embargo_app::{App, AppError, accounts, intake, jobs};
use embargo_domain::{Actor, ReferenceId, Role, Timestamp, UserId};
use embargo_test_support::both_backends;

use crate::common::{instance, submission};

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "root".into() }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn key(user_id: &str) -> String {
    embargo_mail::openpgp::InstanceKey::generate(user_id).unwrap().public_armored().unwrap()
}

async fn run_jobs(app: &App) {
    let worker = jobs::Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

/// How many notices, reminders and final notices were mailed (not invitations).
fn outbox_count(app: &App) -> usize {
    intake::outbox(app)
        .unwrap()
        .iter()
        .filter(|m| std::fs::read_to_string(&m.path).unwrap().contains("Message-ID: <embargo.notice"))
        .count()
}

/// A report on product `product` (made if missing) with partners; returns its reference.
async fn report_on(app: &App, product: &str, title: &str) -> ReferenceId {
    let admin = local();
    let products = accounts::products(app, &admin).await.unwrap();
    let id = match products.iter().find(|p| p.product.name == product) {
        Some(p) => p.product.id,
        None => accounts::create_product(app, &admin, product).await.unwrap(),
    };
    let reference = reports::submit(app, &Actor::Reporter, submission("r@example.org", title)).await.unwrap().reference;
    reports::set_product(app, &admin, &reference, Some(id)).await.unwrap();
    for to in ["triaging", "accepted"] {
        reports::transition(app, &admin, &reference, to.parse().unwrap()).await.unwrap();
    }
    reference
}

async fn add_partner(app: &App, name: &str, contacts: &[(&str, bool)], products: &[&str]) -> partners::PartnerView {
    partners::add(
        app,
        &local(),
        NewPartnerInput {
            name: name.into(),
            contacts: contacts
                .iter()
                .map(|(email, keyed)| NewContact {
                    email: (*email).into(),
                    key: keyed.then(|| key(&format!("C <{email}>"))),
                })
                .collect(),
            products: products.iter().map(|p| (*p).to_owned()).collect(),
            time_zone: Some("America/New_York".into()),
            terms_version: Some("2026-01".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn partner_actor(app_user: i64) -> Actor {
    Actor::User { id: UserId(app_user), role: Role::Partner }
}

async fn user_id(app: &App, email: &str) -> i64 {
    accounts::list_users(app, &local()).await.unwrap().into_iter().find(|u| u.email == email).unwrap().id.0
}

fn options(at: &str) -> DraftOptions {
    DraftOptions { disclose_at: t(at), confirm_day: false, deploy_hosted: false, tell_customers: false }
}

fn refusal(result: Result<partners::Drafted, AppError>) -> String {
    match result {
        Err(AppError::Invalid(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_policy_refuses_in_plain_words_and_a_revised_date_reaches_every_partner() {
    for db in both_backends() {
        let it = instance(db).await;
        let (app, clock) = (it.app.clone(), it.clock.clone());
        let admin = local();
        // Monday 2026-03-02 12:00 UTC.
        let reference = report_on(&app, "app", "Overflow in parser").await;
        add_partner(&app, "Alpha", &[("a1@alpha.example", true), ("a2@alpha.example", false)], &["app"]).await;
        add_partner(&app, "Beta", &[("b@beta.example", true)], &["app"]).await;

        let long = refusal(partners::draft(&app, &admin, &reference, options("2026-03-24T16:00:00Z")).await);
        assert_eq!(
            long,
            "the date is refused: the embargo would last 22 days 4 hours, longer than the list's maximum of 14 days; \
             disclose no later than 2026-03-16 12:00 UTC"
        );
        let short = refusal(partners::draft(&app, &admin, &reference, options("2026-03-05T16:00:00Z")).await);
        assert!(
            short.contains("less than the list's minimum of 7 days; disclose no earlier than 2026-03-09 12:00 UTC"),
            "{short}"
        );
        let past = refusal(partners::draft(&app, &admin, &reference, options("2026-03-01T16:00:00Z")).await);
        assert!(past.contains("is in the past"), "{past}");
        let friday = refusal(partners::draft(&app, &admin, &reference, options("2026-03-13T16:00:00Z")).await);
        assert!(friday.contains("falls on a Friday") && friday.contains("confirm this day"), "{friday}");
        let confirmed = partners::draft(
            &app,
            &admin,
            &reference,
            DraftOptions { confirm_day: true, ..options("2026-03-13T16:00:00Z") },
        )
        .await
        .unwrap();
        assert!(confirmed.warnings.iter().any(|w| w.contains("Friday (confirmed)")), "{:?}", confirmed.warnings);
        // Nothing was sent for the refused dates, and a report without a product is refused.
        assert_eq!(outbox_count(&app), 0);
        let bare =
            reports::submit(&app, &Actor::Reporter, submission("x@example.org", "No product")).await.unwrap().reference;
        let new = partners::draft(&app, &admin, &bare, options("2026-03-10T16:00:00Z")).await;
        assert!(matches!(new, Err(AppError::Conflict(ref m)) if m.contains("only of an accepted report")), "{new:?}");
        for to in ["triaging", "accepted"] {
            reports::transition(&app, &admin, &bare, to.parse().unwrap()).await.unwrap();
        }
        let no_product = refusal(partners::draft(&app, &admin, &bare, options("2026-03-10T16:00:00Z")).await);
        assert!(no_product.contains("has no product yet"), "{no_product}");

        // A Tuesday, 8 days out: accepted without a policy warning (only that there are no
        // patches without a fix repository); the latest draft is what goes.
        let drafted = partners::draft(&app, &admin, &reference, options("2026-03-10T16:00:00Z")).await.unwrap();
        assert_eq!(drafted.kind, "pre-notice");
        assert_eq!(drafted.warnings, ["the report has no fix repository: the notice carries no patches"]);
        assert_eq!(drafted.partners, ["Alpha", "Beta"]);
        // The team edits it before it goes (audited).
        let mut status = partners::status(&app, &admin, &drafted.notice.to_string()).await.unwrap();
        partners::edit(
            &app,
            &admin,
            &reference.to_string(),
            partners::NoticeText {
                subject: status.subject.clone(),
                body: format!("{}\nDetection: look for <script>alert(1)</script> in logs.\n", status.body),
                deploy_hosted: true,
                tell_customers: false,
            },
        )
        .await
        .unwrap();
        let sent = partners::send(&app, &admin, &drafted.notice.to_string(), false).await.unwrap();
        assert_eq!((sent.copies, sent.encrypted, sent.embargo.as_str()), (3, 2, "active"));
        assert!(matches!(
            partners::send(&app, &admin, &drafted.notice.to_string(), false).await,
            Err(AppError::Conflict(_))
        ));
        run_jobs(&app).await;
        status = partners::status(&app, &admin, &reference.to_string()).await.unwrap();
        assert_eq!(status.notice, drafted.notice);
        assert!(status.body.contains("<script>alert(1)</script>"), "kept as written");
        assert!(status.deploy_hosted);
        let states: Vec<&str> = status.contacts.iter().map(|c| c.state.as_str()).collect();
        assert_eq!(states, ["sent", "sent", "sent"], "{status:?}");
        assert_eq!(outbox_count(&app), 3);
        let superseded = confirmed.notice.to_string();
        assert_eq!(partners::status(&app, &admin, &superseded).await.unwrap().state, "superseded");

        // A day later the date moves: a revision goes to every contact again.
        clock.set("2026-03-03T12:00:00Z");
        let revised = partners::draft(&app, &admin, &reference, options("2026-03-12T16:00:00Z")).await.unwrap();
        assert_eq!(revised.kind, "revision");
        let sent = partners::send(&app, &admin, &revised.notice.to_string(), false).await.unwrap();
        assert_eq!((sent.copies, sent.embargo.as_str()), (3, "revised"));
        run_jobs(&app).await;
        assert_eq!(outbox_count(&app), 6, "every contact told of the new date");
        assert_eq!(partners::status(&app, &admin, &drafted.notice.to_string()).await.unwrap().state, "superseded");
        // Beyond 14 days from the first notice (2 March 12:00) is refused even for a revision.
        let long = refusal(partners::draft(&app, &admin, &reference, options("2026-03-17T16:00:00Z")).await);
        assert!(long.contains("longer than the list's maximum"), "{long}");

        // Reminders: a week before (11 March 16:00 - 7 days = 5 March 16:00) to those who have
        // not acknowledged; the final notice (11 March 16:00) to everyone. The first notice's
        // reminders (3 March 16:00, 9 March 16:00) are silenced by the revision.
        let a1 = partner_actor(user_id(&app, "a1@alpha.example").await);
        partners::acknowledge(&app, &a1, revised.notice).await.unwrap();
        let before = outbox_count(&app);
        clock.set("2026-03-05T15:59:59.999Z");
        run_jobs(&app).await;
        assert_eq!(outbox_count(&app), before, "nothing before the instant (the old notice's reminder is silent)");
        clock.set("2026-03-05T16:00:00Z");
        run_jobs(&app).await;
        let status = partners::status(&app, &admin, &revised.notice.to_string()).await.unwrap();
        let reminded: Vec<(&str, Option<&str>)> =
            status.contacts.iter().map(|c| (c.email.as_str(), c.reminded_at.as_deref())).collect();
        assert_eq!(
            reminded,
            [
                ("a1@alpha.example", None),
                ("a2@alpha.example", Some("2026-03-05T16:00:00Z")),
                ("b@beta.example", Some("2026-03-05T16:00:00Z"))
            ]
        );
        assert_eq!(outbox_count(&app), before + 2);
        clock.set("2026-03-11T16:00:00Z");
        run_jobs(&app).await;
        let status = partners::status(&app, &admin, &revised.notice.to_string()).await.unwrap();
        assert!(status.contacts.iter().all(|c| c.reminded_at.as_deref() == Some("2026-03-11T16:00:00Z")), "{status:?}");
        assert_eq!(outbox_count(&app), before + 5, "the final notice goes to every contact");
        assert_eq!(status.contacts[0].state, "acknowledged");
    }
}

#[tokio::test]
async fn partners_see_only_what_was_shared_with_their_organisation() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = it.app.clone();
        let admin = local();
        let reference = report_on(&app, "app", "Overflow in parser").await;
        report_on(&app, "other", "Elsewhere").await;
        add_partner(&app, "Alpha", &[("a@alpha.example", true)], &["app"]).await;
        add_partner(&app, "Beta", &[("b@beta.example", true)], &["other"]).await;
        // The notice is composed from the report's newest advisory when it has one.
        embargo_app::advisories::create(&app, &admin, "Parser overflow <b>advisory</b>", Some(&reference))
            .await
            .unwrap();
        let drafted = partners::draft(&app, &admin, &reference, options("2026-03-10T16:00:00Z")).await.unwrap();
        let composed = partners::status(&app, &admin, &drafted.notice.to_string()).await.unwrap();
        assert!(composed.subject.ends_with(": Parser overflow <b>advisory</b>"), "{}", composed.subject);
        assert_eq!(drafted.partners, ["Alpha"], "only the product's partners");
        let a = partner_actor(user_id(&app, "a@alpha.example").await);
        let b = partner_actor(user_id(&app, "b@beta.example").await);
        // A draft is shared with nobody.
        assert!(partners::shared(&app, &a).await.unwrap().is_empty());
        assert!(matches!(partners::read_shared(&app, &a, drafted.notice).await, Err(AppError::NotFound(_))));
        partners::send(&app, &admin, &drafted.notice.to_string(), false).await.unwrap();
        run_jobs(&app).await;

        let listed = partners::shared(&app, &a).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            listed[0].disclose_local.contains("America/New_York") && listed[0].disclose_local.contains("12:00"),
            "{listed:?}"
        );
        let read = partners::read_shared(&app, &a, drafted.notice).await.unwrap();
        assert!(read.text.contains("Parser overflow <b>advisory</b>"));
        assert_eq!(partners::status(&app, &admin, &reference.to_string()).await.unwrap().contacts[0].state, "seen");
        // Beta sees nothing of it, by any route, and cannot tell it exists.
        assert!(partners::shared(&app, &b).await.unwrap().is_empty());
        for result in [
            partners::read_shared(&app, &b, drafted.notice).await.map(drop),
            partners::shared_patch(&app, &b, drafted.notice, "main").await.map(drop),
            partners::calendar_file(&app, &b, drafted.notice).await.map(drop),
            partners::acknowledge(&app, &b, drafted.notice).await,
            partners::record_leak(&app, &b, &drafted.notice.to_string(), None, "saw it").await.map(drop),
        ] {
            assert!(matches!(result, Err(AppError::NotFound(_))), "{result:?}");
        }
        assert!(matches!(partners::read_shared(&app, &b, drafted.notice + 1000).await, Err(AppError::NotFound(_))));
        // Partners reach none of the team's use cases.
        for result in [
            partners::draft(&app, &a, &reference, options("2026-03-10T16:00:00Z")).await.map(drop),
            partners::status(&app, &a, &reference.to_string()).await.map(drop),
            partners::status(&app, &a, &drafted.notice.to_string()).await.map(drop),
        ] {
            assert!(matches!(result, Err(AppError::NotFound(_))), "{result:?}");
        }
        let listed = partners::list(&app, &a).await;
        assert!(matches!(listed, Err(AppError::Forbidden(_))), "{listed:?}");
        assert!(matches!(reports::list(&app, &a, None).await, Err(AppError::Forbidden(_))));
        // A responder off the report, and a fix developer, neither.
        let off = accounts::create_user(&app, &admin, "off@example.org", Role::Responder, None).await.unwrap();
        let off = Actor::User { id: off, role: Role::Responder };
        assert!(matches!(partners::status(&app, &off, &reference.to_string()).await, Err(AppError::NotFound(_))));
        assert!(matches!(
            partners::read_shared(&app, &off, drafted.notice).await,
            Err(AppError::Forbidden(_) | AppError::NotFound(_))
        ));
        // A suspended partner's contacts see nothing any more; a removed contact neither.
        partners::set_state(&app, &admin, "Alpha", embargo_domain::PartnerState::Suspended).await.unwrap();
        assert!(partners::shared(&app, &a).await.unwrap().is_empty());
        assert!(matches!(partners::read_shared(&app, &a, drafted.notice).await, Err(AppError::NotFound(_))));
        partners::set_state(&app, &admin, "Alpha", embargo_domain::PartnerState::Active).await.unwrap();
        assert_eq!(partners::shared(&app, &a).await.unwrap().len(), 1);
        // A contact keeps their organisation current: a colleague with a key; removing the
        // last contact is refused.
        partners::set_my_contact(&app, &a, "a2@alpha.example", Some(&key("A2 <a2@alpha.example>"))).await.unwrap();
        let org = partners::my_organisation(&app, &a).await.unwrap();
        assert_eq!(org.contacts.len(), 2);
        assert!(org.contacts.iter().all(|c| c.fingerprint.is_some()));
        assert!(matches!(
            partners::set_my_contact(&app, &a, "a2@alpha.example", Some("junk")).await,
            Err(AppError::Invalid(_))
        ));
        partners::remove_contact(&app, &admin, "Alpha", "a@alpha.example").await.unwrap();
        assert!(partners::shared(&app, &a).await.unwrap().is_empty(), "a removed contact sees nothing");
        // A team account cannot become a partner contact.
        let refused =
            partners::add_contact(&app, &admin, "Beta", NewContact { email: "off@example.org".into(), key: None })
                .await;
        assert!(matches!(refused, Err(AppError::Invalid(ref m)) if m.contains("responder account")), "{refused:?}");
    }
}

#[tokio::test]
async fn a_bounce_marks_the_copy_and_a_leak_can_break_the_embargo_for_everyone() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = it.app.clone();
        let admin = local();
        let reference = report_on(&app, "app", "Overflow in parser").await;
        add_partner(&app, "Alpha", &[("a@alpha.example", true)], &["app"]).await;
        add_partner(&app, "Beta", &[("b@beta.example", false)], &["app"]).await;
        add_partner(&app, "Gamma", &[("g@gamma.example", true)], &["app"]).await;
        let drafted = partners::draft(&app, &admin, &reference, options("2026-03-10T16:00:00Z")).await.unwrap();
        partners::send(&app, &admin, &drafted.notice.to_string(), false).await.unwrap();
        // Gamma is suspended before its copy left: it gets nothing.
        partners::set_state(&app, &admin, "Gamma", embargo_domain::PartnerState::Suspended).await.unwrap();
        run_jobs(&app).await;
        let gamma_mail = |app: &App| {
            intake::outbox(app)
                .unwrap()
                .into_iter()
                .filter(|m| m.to.contains("g@gamma.example"))
                .filter(|m| std::fs::read_to_string(&m.path).unwrap().contains("Message-ID: <embargo.notice"))
                .count()
        };
        assert_eq!(gamma_mail(&app), 0, "a suspended partner's queued copy is withheld");

        // Beta's server bounces the mail: a DSN quoting the Message-ID comes back.
        let message_id = intake::outbox(&app)
            .unwrap()
            .into_iter()
            .filter(|m| m.to.contains("b@beta.example"))
            .filter_map(|m| {
                let raw = std::fs::read_to_string(&m.path).unwrap();
                raw.lines().find_map(|l| l.strip_prefix("Message-ID: ")).map(|id| id.trim().to_owned())
            })
            .find(|id| id.starts_with("<embargo.notice."))
            .expect("the notice's copy to Beta");
        let dsn = format!(
            "From: MAILER-DAEMON@beta.example\r\nTo: security@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\n<b@beta.example>: mailbox unknown\r\n\r\n\
             Message-ID: {message_id}\r\n"
        );
        let envelope = intake::MailEnvelope {
            mail_from: Some(String::new()),
            rcpt_to: vec!["security@example.org".into()],
            auth: None,
        };
        let outcome = intake::ingest(&app, dsn.as_bytes(), &envelope).await.unwrap();
        assert!(matches!(outcome, intake::IngestOutcome::Bounce(ref r) if *r == reference), "{outcome:?}");
        let status = partners::status(&app, &admin, &reference.to_string()).await.unwrap();
        let states: Vec<(&str, &str)> = status.contacts.iter().map(|c| (c.email.as_str(), c.state.as_str())).collect();
        assert_eq!(
            states,
            [("a@alpha.example", "sent"), ("b@beta.example", "bounced"), ("g@gamma.example", "pending")]
        );
        assert_eq!(reports::list(&app, &admin, None).await.unwrap().len(), 1, "a bounce opens no report");

        // The date and severity may be pre-announced in public, and nothing else.
        assert!(
            matches!(partners::announce(&app, &admin, &reference).await, Err(AppError::Invalid(ref m)) if m.contains("severity"))
        );
        embargo_app::assessment::set_cvss(
            &app,
            &admin,
            &reference,
            "3.1",
            Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        )
        .await
        .unwrap();
        let announced = partners::announce(&app, &admin, &reference).await.unwrap();
        assert_eq!(partners::announcements(&app).await.unwrap(), std::slice::from_ref(&announced));
        assert_eq!((announced.severity.as_str(), announced.disclose_at), ("Critical", t("2026-03-10T16:00:00Z")));
        assert!(!announced.id.contains(&reference.to_string()) && announced.id.len() == 12, "{announced:?}");

        // Alpha's contact suspects a leak; the team decides to break the embargo.
        let a = partner_actor(user_id(&app, "a@alpha.example").await);
        let leak = partners::record_leak(&app, &a, &drafted.notice.to_string(), None, "posted on <forum> by someone")
            .await
            .unwrap();
        // The admins hear of it at once, without what leaked.
        accounts::create_user(&app, &admin, "lead@example.org", Role::Admin, None).await.unwrap();
        let leak2 =
            partners::record_leak(&app, &a, &drafted.notice.to_string(), None, "second sighting").await.unwrap();
        run_jobs(&app).await;
        let alerts: Vec<String> = intake::outbox(&app)
            .unwrap()
            .into_iter()
            .filter(|m| m.to.contains("lead@example.org"))
            .map(|m| std::fs::read_to_string(m.path).unwrap())
            .collect();
        assert_eq!(alerts.len(), 1, "one alert for the leak recorded after the admin existed");
        assert!(
            alerts[0].contains(&format!("leak {leak2}")) && !alerts[0].contains("second sighting"),
            "{}",
            alerts[0]
        );
        let leaks = partners::leaks(&app, &admin, &reference).await.unwrap();
        assert_eq!((leaks[0].id, leaks[0].details.as_str()), (leak, "posted on <forum> by someone"));
        assert!(matches!(partners::decide_leak(&app, &a, leak, LeakDecision::Break).await, Err(AppError::NotFound(_))));
        // A refused new date decides nothing: the leak stays open.
        let refused = partners::decide_leak(
            &app,
            &admin,
            leak,
            LeakDecision::Move { to: t("2026-03-30T16:00:00Z"), confirm_day: false },
        )
        .await;
        assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
        assert_eq!(partners::leaks(&app, &admin, &reference).await.unwrap()[0].decision, None);
        // A leak is held only against a partner that was told.
        add_partner(&app, "Delta", &[("d@delta.example", false)], &[]).await;
        let untold = partners::record_leak(&app, &admin, &reference.to_string(), Some("Delta"), "x").await;
        assert!(matches!(untold, Err(AppError::Invalid(ref m)) if m.contains("never sent a notice")), "{untold:?}");
        // The product's partners change: breaking still tells every partner who was told
        // (Gamma too, suspended since, because the embargo's end is no secret).
        reports::set_product(&app, &admin, &reference, None).await.unwrap();
        let before = outbox_count(&app);
        partners::decide_leak(&app, &admin, leak, LeakDecision::Break).await.unwrap();
        assert!(matches!(
            partners::decide_leak(&app, &admin, leak, LeakDecision::Keep).await,
            Err(AppError::Conflict(_))
        ));
        run_jobs(&app).await;
        assert_eq!(outbox_count(&app), before + 3, "every partner who was told hears it at once");
        assert_eq!(gamma_mail(&app), 1, "the suspended partner that was told hears of the end");
        let broken = partners::status(&app, &admin, &reference.to_string()).await.unwrap();
        assert_eq!((broken.kind.as_str(), broken.embargo.as_deref()), ("broken", Some("broken")));
        assert!(partners::announcements(&app).await.unwrap().is_empty(), "a broken embargo is no longer pre-announced");
        let again = partners::draft(&app, &admin, &reference, options("2026-03-10T16:00:00Z")).await;
        assert!(matches!(again, Err(AppError::Conflict(ref m)) if m.contains("broken")), "{again:?}");
        // Alpha's leak history keeps it (recorded by the partner, not against it); a leak
        // the team attributes is counted on the partner.
        partners::record_leak(&app, &admin, &reference.to_string(), Some("Beta"), "Beta's customer tweeted it")
            .await
            .unwrap();
        let beta = partners::get(&app, &admin, "Beta").await.unwrap();
        assert_eq!(beta.leaks, 1);
    }
}
