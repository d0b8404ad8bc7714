//! SLA clocks end to end, on SQLite and PostgreSQL, with an injected clock: deadlines on the
//! business calendar (holidays, weekends), warnings and escalations raised at the right
//! instants and only once, mailed to the right people without report content, pauses while
//! the report waits on the reporter, the needs-info auto-close and the reopening on an
//! answer, and the fix deadline following the CVSS severity.
//!
//! Instants below are worked out by hand: a working day is one local day of a working
//! date; 2026-03-02 is a Monday.

use crate::common;

use common::{Instance, instance, instance_with};
use embargo_app::reports::{self, ReadPurpose, Submission, TeamMessage};
use embargo_app::{AppError, accounts, assessment, jobs, sessions, sla, sla_sweep};
use embargo_domain::{Actor, CloseReason, ReportState, Role, Timestamp};
use embargo_test_support::{TestApp, both_backends};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn submission(title: &str) -> Submission {
    common::submission("reporter@example.net", title)
}

fn answer() -> Submission {
    Submission { body: "Here is the answer".into(), ..submission("Re: question") }
}

/// Mails in the outbox, as text.
fn outbox(it: &Instance) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(it.app.config.outbox_dir().join(sub)) {
            for entry in entries.flatten() {
                out.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    out
}

async fn run_jobs(it: &Instance) {
    let worker = jobs::Worker::new(it.app.clone());
    while worker.run_once().await.unwrap() {}
}

#[tokio::test]
async fn clocks_warn_escalate_pause_and_close_at_the_right_instants() {
    for db in both_backends() {
        let it = instance_with(db, |c| {
            c.sla.acknowledge_working_days = 2;
            c.sla.analyse_working_days = 3;
            // The instants below count the analysis from the acknowledgement.
            c.sla.analyse_from = embargo_app::config::AnalyseFrom::Acknowledgement;
            c.sla.warn_at_percent = 50;
            c.sla.needs_info_close_days = 30;
        })
        .await;
        let app = &it.app;
        let backend = it.db.backend;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let admin_id = accounts::create_user(app, &local, "admin@example.org", Role::Admin, None).await.unwrap();
        let admin = Actor::User { id: admin_id, role: Role::Admin };
        // Wednesday 2026-03-04 is a holiday.
        sla::add_holidays(app, &admin, &[("2026-03-04".parse().unwrap(), "Test day".into())]).await.unwrap();

        // Monday 12:00: acknowledge within 2 working days = Mon 12h + Tue + (Wed off) Thu 12h.
        it.clock.set("2026-03-02T12:00:00Z");
        let submitted = reports::submit(app, &Actor::Reporter, submission("Secret title XYZZY")).await.unwrap();
        let reference = submitted.reference.clone();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-03-05T12:00:00Z")), "{backend}");
        // The sweep first looks at it when half the time is used: Tuesday 12:00.
        assert_eq!(detail.sla.next_sla_at, Some(at("2026-03-03T12:00:00Z")), "{backend}");

        assert_eq!(sla_sweep::sweep(app).await.unwrap().warnings, 0);
        it.clock.set("2026-03-03T11:59:00Z");
        assert_eq!(sla_sweep::sweep(app).await.unwrap(), sla_sweep::Sweep::default(), "nothing due yet");
        it.clock.set("2026-03-03T12:00:00Z");
        let swept = sla_sweep::sweep(app).await.unwrap();
        assert_eq!((swept.warnings, swept.breaches), (1, 0), "{backend}");
        assert_eq!(sla_sweep::sweep(app).await.unwrap().warnings, 0, "raised once");

        // The warning goes to the admins (nobody is assigned), without report content.
        run_jobs(&it).await;
        let mails = outbox(&it);
        let warning = mails.iter().find(|m| m.contains("SLA warning")).expect("warning mailed");
        assert!(warning.contains("admin@example.org") && warning.contains(&reference.to_string()));
        assert!(!mails.iter().any(|m| m.contains("XYZZY")), "no report content in team alerts");

        // Thursday 12:00 the acknowledgement is overdue: escalated once.
        it.clock.set("2026-03-05T12:00:00Z");
        let swept = sla_sweep::sweep(app).await.unwrap();
        assert_eq!((swept.warnings, swept.breaches), (0, 1), "{backend}");
        assert_eq!(sla_sweep::sweep(app).await.unwrap().breaches, 0);
        run_jobs(&it).await;
        assert!(outbox(&it).iter().any(|m| m.contains("SLA breached")));

        // Acknowledged Thursday 13:00 (late): the analysis has 3 working days:
        // Thu 11h + Fri + (weekend) Mon + Tue 13h = Tue 2026-03-10 13:00.
        it.clock.set("2026-03-05T13:00:00Z");
        reports::transition(app, &admin, &reference, "acknowledged".parse().unwrap()).await.unwrap();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.acknowledged_at, Some(at("2026-03-05T13:00:00Z")));
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-03-05T12:00:00Z")), "a stopped clock keeps its deadline");
        assert_eq!(detail.sla.analyse_due_at, Some(at("2026-03-10T13:00:00Z")), "{backend}");

        // Friday 13:00 the team asks a question (1 working day used): the clock pauses.
        it.clock.set("2026-03-06T13:00:00Z");
        reports::write(app, &admin, &reference, TeamMessage::Question, "Which version?").await.unwrap();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, ReportState::NeedsInfo);
        assert_eq!(detail.sla.analyse_due_at, None, "paused");
        assert_eq!(detail.sla.needs_info_since, Some(at("2026-03-06T13:00:00Z")));

        // The reporter answers Monday 09:00: back into triage, 2 working days left:
        // Mon 15h + Tue + Wed 9h = Wed 2026-03-11 09:00.
        it.clock.set("2026-03-09T09:00:00Z");
        reports::add_inbound_message(app, &Actor::System("intake"), submitted.id, &answer(), false).await.unwrap();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, ReportState::Triaging, "{backend}");
        assert_eq!(detail.sla.analyse_due_at, Some(at("2026-03-11T09:00:00Z")), "{backend}");

        // Asked again at 10:00 with no answer for 30 days: closed with a notice, then reopened
        // by a late answer.
        it.clock.set("2026-03-09T10:00:00Z");
        reports::write(app, &admin, &reference, TeamMessage::Question, "And the config?").await.unwrap();
        it.clock.set("2026-04-08T09:59:00Z");
        assert_eq!(sla_sweep::sweep(app).await.unwrap().closed, 0, "not yet");
        it.clock.set("2026-04-08T10:00:00Z");
        assert_eq!(sla_sweep::sweep(app).await.unwrap().closed, 1, "{backend}");
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, ReportState::Closed(CloseReason::NoResponse));
        let notice = detail.messages.last().unwrap();
        assert!(notice.body.contains("did not hear back"), "{}", notice.body);
        assert_eq!(sla_sweep::sweep(app).await.unwrap().closed, 0);

        it.clock.set("2026-04-09T09:00:00Z");
        reports::add_inbound_message(app, &Actor::System("intake"), submitted.id, &answer(), false).await.unwrap();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.report.state, ReportState::Triaging, "a late answer reopens the report");
    }
}

#[tokio::test]
async fn the_fix_deadline_follows_the_severity_and_calendars_are_admin_only() {
    for db in both_backends() {
        let it = instance_with(db, |_| {}).await;
        let app = &it.app;
        let backend = it.db.backend;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let admin_id = accounts::create_user(app, &local, "admin@example.org", Role::Admin, None).await.unwrap();
        let admin = Actor::User { id: admin_id, role: Role::Admin };
        let responder_id = accounts::create_user(app, &local, "r@example.org", Role::Responder, None).await.unwrap();
        let responder = Actor::User { id: responder_id, role: Role::Responder };

        // Monday 2026-03-02 12:00: accepted at once.
        it.clock.set("2026-03-02T12:00:00Z");
        let reference = reports::submit(app, &Actor::Reporter, submission("Bug")).await.unwrap().reference;
        for state in ["acknowledged", "triaging", "accepted"] {
            reports::transition(app, &admin, &reference, state.parse().unwrap()).await.unwrap();
        }
        // Unrated: the medium target, 60 working days = 12 weeks = Monday 2026-05-25 12:00.
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.fix_due_at, Some(at("2026-05-25T12:00:00Z")), "{backend}");

        // Critical (9.8): 7 working days = Wednesday 2026-03-11 12:00. Vectors are stored
        // canonical; the audit trail names the field, never the vector.
        let stored =
            assessment::set_cvss(app, &admin, &reference, "3.1", Some("CVSS:3.1/C:H/I:H/A:H/AV:N/AC:L/PR:N/UI:N/S:U"))
                .await
                .unwrap();
        assert_eq!(stored.cvss_v3.as_deref(), Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"));
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.severity.as_deref(), Some("critical"));
        assert_eq!(detail.sla.fix_due_at, Some(at("2026-03-11T12:00:00Z")), "{backend}");
        assert!(matches!(
            assessment::set_cvss(app, &admin, &reference, "4.0", Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"))
                .await,
            Err(AppError::Invalid(_))
        ));
        assert!(matches!(
            assessment::set_cvss(app, &admin, &reference, "3.1", Some("CVSS:3.1/av:N")).await,
            Err(AppError::Invalid(_))
        ));
        // A responder off the report cannot assess it (and cannot tell it exists).
        assert!(matches!(
            assessment::set_cvss(app, &responder, &reference, "3.1", None).await,
            Err(AppError::NotFound(_))
        ));

        // A holiday inside the window moves the running fix deadline by a day (after the sweep
        // recomputes open reports).
        sla::add_holidays(app, &admin, &[("2026-03-05".parse().unwrap(), "Closed".into())]).await.unwrap();
        sla_sweep::sweep(app).await.unwrap();
        let detail = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.fix_due_at, Some(at("2026-03-12T12:00:00Z")), "{backend}");

        // Calendars: admins only; a Friday-Saturday weekend from an .ics and settings.
        assert!(matches!(
            sla::set_calendar(app, &responder, "Asia/Jerusalem", &["friday".into(), "saturday".into()]).await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(sla::set_calendar(app, &admin, "Mars/Olympus", &[]).await, Err(AppError::Invalid(_))));
        let every_day: Vec<String> = sla::WEEKDAYS.iter().map(|(_, n)| (*n).to_owned()).collect();
        assert!(matches!(sla::set_calendar(app, &admin, "UTC", &every_day).await, Err(AppError::Invalid(_))));
        sla::set_calendar(app, &admin, "Asia/Jerusalem", &["friday".into(), "saturday".into()]).await.unwrap();
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\nSUMMARY:Christmas\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(sla::import_ics(app, &admin, ics).await.unwrap(), 1);
        assert!(matches!(sla::import_ics(app, &admin, "not a calendar").await, Err(AppError::Invalid(_))));
        let view = sla::calendar(app, &admin).await.unwrap();
        assert_eq!(view.settings.time_zone, "Asia/Jerusalem");
        assert_eq!(view.settings.weekend, vec!["friday", "saturday"]);
        assert!(view.holidays.iter().any(|h| h.day == "2026-12-25" && h.name == "Christmas"));
        sla::remove_holiday(app, &admin, "2026-12-25").await.unwrap();
        assert!(matches!(sla::remove_holiday(app, &admin, "2026-12-25").await, Err(AppError::NotFound(_))));
    }
}

/// Issue 20: a calendar edit made by another process (the CLI, another server) is used at
/// once; it used to be overwritten for 60 s by this process's cached calendar, and the sweep
/// wrote deadlines from the old one.
#[tokio::test]
async fn a_calendar_edit_by_another_process_is_used_at_once() {
    for db in both_backends() {
        let server = TestApp::on(&db).open().await;
        let other = server.sibling().await;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let app = &server.app;
        // Monday 2026-03-02 12:00 + 10 working days = Monday 2026-03-16 12:00; the server has
        // read (and cached) the calendar.
        let reference = reports::submit(app, &Actor::Reporter, submission("Bug")).await.unwrap().reference;
        let detail = reports::show(app, &local, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-03-16T12:00:00Z")), "{}", db.backend);
        // The other process adds a holiday; the server's next sweep uses it.
        sla::add_holidays(&other, &local, &[("2026-03-05".parse().unwrap(), "Closed".into())]).await.unwrap();
        sla_sweep::sweep(app).await.unwrap();
        let detail = reports::show(app, &local, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-03-17T12:00:00Z")), "{}", db.backend);
        // And the time zone it shows dates in.
        sla::set_calendar(&other, &local, "America/New_York", &["saturday".into(), "sunday".into()]).await.unwrap();
        assert_eq!(sla::time_zone(app).await.unwrap(), jiff::tz::TimeZone::get("America/New_York").unwrap());
        assert_eq!(app.time_zone(), jiff::tz::TimeZone::get("America/New_York").unwrap());
        // A report received there uses the new calendar at once too.
        let second = reports::submit(app, &Actor::Reporter, submission("Bug 2")).await.unwrap().reference;
        let detail = reports::show(app, &local, &second, ReadPurpose::Read).await.unwrap();
        // Mon 07:00 EST + 10 working days (Thu 5 March is a holiday; clocks spring on 8 March)
        // = Tue 17 March 07:00 EDT.
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-03-17T11:00:00Z")), "{}", db.backend);
        // Every team page looks its session up with the calendar's version in one statement
        // (ADR 37): a change made elsewhere is the zone of the very next page.
        accounts::create_user(app, &local, "on@example.org", Role::Responder, Some("a long enough password"))
            .await
            .unwrap();
        let token = sessions::sign_in_password(app, "on@example.org", "a long enough password", "192.0.2.1", "t", None)
            .await
            .unwrap()
            .token;
        sla::set_calendar(&other, &local, "Asia/Tokyo", &["saturday".into(), "sunday".into()]).await.unwrap();
        assert_eq!(app.time_zone(), jiff::tz::TimeZone::get("America/New_York").unwrap(), "not read yet");
        assert!(sessions::team_session(app, &token).await.unwrap().is_some(), "{}", db.backend);
        assert_eq!(app.time_zone(), jiff::tz::TimeZone::get("Asia/Tokyo").unwrap(), "{}", db.backend);
        assert!(sessions::team_session(app, "not a session").await.unwrap().is_none());
    }
}

/// Issue 20: a yearly holiday imported from an .ics is a holiday every year, not only in the
/// ten years after its start; a date it covers cannot be removed as if it were a single date.
#[tokio::test]
async fn yearly_holidays_from_an_ics_hold_every_year() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a@example.org\r\nDTSTART;VALUE=DATE:20101111\r\n\
                   RRULE:FREQ=YEARLY\r\nSUMMARY:Armistice Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(sla::import_ics(app, &local, ics).await.unwrap(), 1);
        assert_eq!(sla::import_ics(app, &local, ics).await.unwrap(), 0, "imported once");
        let view = sla::calendar(app, &local).await.unwrap();
        assert!(view.holidays.is_empty());
        assert_eq!(view.yearly.len(), 1);
        assert_eq!(view.yearly[0].description, "every year on 11 November from 2010");
        assert_eq!(view.yearly[0].name, "Armistice Day");
        // Tuesday 2026-11-10 09:00 + 10 working days skips Wednesday the 11th: Wednesday the
        // 25th (without the holiday, Tuesday the 24th).
        it.clock.set("2026-11-10T09:00:00Z");
        let reference = reports::submit(app, &Actor::Reporter, submission("Bug")).await.unwrap().reference;
        let detail = reports::show(app, &local, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.ack_due_at, Some(at("2026-11-25T09:00:00Z")), "{}", it.db.backend);
        let removed = sla::remove_holiday(app, &local, "2030-11-11").await;
        assert!(matches!(&removed, Err(AppError::Conflict(m)) if m.contains("Armistice Day")), "{removed:?}");
        sla::remove_holiday_rule(app, &local, &view.yearly[0].rule).await.unwrap();
        assert!(sla::calendar(app, &local).await.unwrap().yearly.is_empty());
        assert!(matches!(
            sla::remove_holiday_rule(app, &local, &view.yearly[0].rule).await,
            Err(AppError::NotFound(_))
        ));
    }
}

/// Issue 20: a deadline missed before the report moved to needs-info stays missed, and a
/// clock paused with time left is pending (it was dropped from the tallies).
#[tokio::test]
async fn metrics_keep_missed_clocks_missed_and_count_paused_ones_as_pending() {
    for db in both_backends() {
        let it = instance_with(db, |c| {
            c.sla.acknowledge_working_days = 2;
            c.sla.analyse_working_days = 2;
        })
        .await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        // Monday 2026-03-02 12:00: three reports, triaged at once; analyses due Wednesday 12:00.
        let mut references = Vec::new();
        for title in ["late", "paused", "met"] {
            let reference = reports::submit(app, &Actor::Reporter, submission(title)).await.unwrap().reference;
            reports::transition(app, &local, &reference, "triaging".parse().unwrap()).await.unwrap();
            references.push(reference);
        }
        // "paused" waits on its reporter from Monday 13:00, with time left.
        it.clock.set("2026-03-02T13:00:00Z");
        reports::transition(app, &local, &references[1], "needs-info".parse().unwrap()).await.unwrap();
        // "met" is accepted on Tuesday.
        it.clock.set("2026-03-03T12:00:00Z");
        reports::transition(app, &local, &references[2], "accepted".parse().unwrap()).await.unwrap();
        // "late" moves to needs-info on Thursday, after its deadline.
        it.clock.set("2026-03-05T12:00:00Z");
        reports::transition(app, &local, &references[0], "needs-info".parse().unwrap()).await.unwrap();

        it.clock.set("2026-03-05T13:00:00Z");
        let dashboard = embargo_app::metrics::dashboard(app, &local, &embargo_app::metrics::DashboardQuery::default())
            .await
            .unwrap();
        let analyse = dashboard.overall.analyse_sla;
        assert_eq!((analyse.met, analyse.missed, analyse.pending), (1, 1, 1), "{} {analyse:?}", it.db.backend);
        assert_eq!(analyse.met_share(), Some(0.5));
        // The acknowledgements were all on time.
        let ack = dashboard.overall.acknowledge_sla;
        assert_eq!((ack.met, ack.missed, ack.pending), (3, 0, 0));
        // The fix clock of the accepted report runs (pending).
        assert_eq!(dashboard.overall.fix_sla.pending, 1);
    }
}

/// Issue 20: the reporter is promised what the clocks measure.
#[tokio::test]
async fn the_acknowledgement_promises_what_the_clocks_measure() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let promise = embargo_app::mail::promise(app, embargo_app::mail::Person::Third);
        assert_eq!(promise, "acknowledges and analyses each report within 10 working days of receipt");
        // Monday 2026-03-02 12:00, acknowledged at once: the analysis is due 10 working days
        // after receipt, not after the acknowledgement.
        let reference = reports::submit(app, &Actor::Reporter, submission("Bug")).await.unwrap().reference;
        it.clock.set("2026-03-13T12:00:00Z");
        reports::transition(app, &local, &reference, "triaging".parse().unwrap()).await.unwrap();
        let detail = reports::show(app, &local, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(detail.sla.analyse_due_at, Some(at("2026-03-16T12:00:00Z")), "{}", it.db.backend);
        // The acknowledgement mailed to the reporter says so.
        let mail = embargo_app::mail::acknowledgement(app, &reference, None, "token", "security@example.org");
        let words = mail.body.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("acknowledges and analyses each report within 10 working days of receipt"), "{words}");
        assert!(mail.body.contains("\nacknowledges and analyses each report within 10 working days of receipt,\n"));
    }
    let it = instance_with(embargo_test_support::sqlite(), |c| {
        c.sla.analyse_from = embargo_app::config::AnalyseFrom::Acknowledgement;
        c.sla.analyse_working_days = 5;
    })
    .await;
    assert_eq!(
        embargo_app::mail::promise(&it.app, embargo_app::mail::Person::First),
        "acknowledge each report within 10 working days of receipt and analyse it within 5 working days of the acknowledgement"
    );
}

/// Issue 20: the dashboard's weeks start on Monday midnight in the calendar's zone, also
/// after a DST change (a fixed 168-hour week put Monday 00:30 in the week before).
#[tokio::test]
async fn dashboard_weeks_start_on_local_mondays_across_dst() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        sla::set_calendar(app, &local, "America/New_York", &["saturday".into(), "sunday".into()]).await.unwrap();
        // Monday 9 March 2026, 00:30 EDT (clocks sprang forward on Sunday the 8th).
        it.clock.set("2026-03-09T04:30:00Z");
        reports::submit(app, &Actor::Reporter, submission("Monday")).await.unwrap();
        it.clock.set("2026-03-11T12:00:00Z");
        let query = embargo_app::metrics::DashboardQuery { days: 7 };
        let dashboard = embargo_app::metrics::dashboard(app, &local, &query).await.unwrap();
        let weeks: Vec<_> = dashboard.weeks.iter().map(|w| (w.monday.to_string(), w.received)).collect();
        assert_eq!(weeks, [("2026-03-02".to_owned(), 0), ("2026-03-09".to_owned(), 1)], "{}", it.db.backend);
    }
}
