//! The report page and the inbox in real Chromium (issue 18), against the router served
//! in-process on 127.0.0.1, on SQLite and PostgreSQL. With 200-character unbreakable tokens
//! in every field shown (title, product, reporter name and address, the assignee's address,
//! message text), at 390 and 1280 px wide: no horizontal overflow, axe-core finds no
//! violation of any impact, and at 1280×800 the state, the current deadline and the primary
//! next action are visible without scrolling. Each form sent with bad input (close without a
//! reason, a duplicate of nothing, a reply of spaces, assign to no one, bulk with nothing
//! ticked or no person) answers with the same page, the field marked and the input kept. The
//! first-run inbox says how reports arrive. Screenshots go to `docs/screenshots/`.
//!
//! axe-core runs through test-support's `assert_axe_clean`; the overflow and in-view checks
//! here also name what sticks out at the widths the page is looked at.

use std::path::PathBuf;
use std::time::Duration;

use embargo_app::reports::{self, Channel, Submission};
use embargo_app::{App, accounts};
use embargo_domain::{Actor, ReferenceId, Role};
use embargo_test_support::both_backends;
use embargo_test_support::browser::Browser;
use embargo_test_support::thirtyfour::prelude::*;

use crate::common::driver::{fill, submit, text_of};
use crate::common::*;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// 200 characters without a place to break.
fn token(c: char) -> String {
    std::iter::repeat_n(c, 200).collect()
}

/// An address as long as an account may have, without a place to break (197 characters).
fn long_address(c: char) -> String {
    let part = |n: usize| std::iter::repeat_n(c, n).collect::<String>();
    format!("{}@{}.{}.test", part(64), part(63), part(63))
}

// ---- Page checks (small; the shared ones will live in test-support) --------------------

/// axe-core finds nothing, at any impact (every rule on by default, best practices
/// included: test-support's check).
async fn accessible(browser: &Browser, what: &str) {
    eprintln!("axe-core on {what}");
    browser.assert_axe_clean().await;
}

/// `document.documentElement.scrollWidth <= innerWidth`, and which elements stick out if not.
async fn fits(driver: &WebDriver, what: &str) {
    let ret = driver
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
             Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)\
             .slice(0, 6).map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))];",
            Vec::new(),
        )
        .await
        .unwrap();
    let v = ret.json();
    let (scroll, inner) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
    assert!(scroll <= inner, "{what} overflows: scrollWidth {scroll} > innerWidth {inner}: {}", v[2]);
}

/// Whether an element's box is inside the viewport as the page opens (no scrolling).
async fn in_view(driver: &WebDriver, css: &str, what: &str) {
    let ret = driver
        .execute(
            "window.scrollTo(0, 0); const e = document.querySelector(arguments[0]); if (!e) return null; \
             const r = e.getBoundingClientRect(); \
             return [r.top, r.left, r.bottom, r.right, window.innerWidth, window.innerHeight];",
            vec![serde_json::Value::String(css.to_owned())],
        )
        .await
        .unwrap();
    let v = ret.json();
    assert!(!v.is_null(), "{what}: no {css}");
    let n = |i: usize| v[i].as_f64().unwrap();
    assert!(
        n(0) >= 0.0 && n(1) >= 0.0 && n(2) <= n(5) && n(3) <= n(4) && n(2) > n(0),
        "{what}: {css} is not in view without scrolling: {v}"
    );
}

async fn choose(driver: &WebDriver, select: &str, value: &str) {
    let option = driver.find(By::Css(format!("#{select} option[value='{value}']"))).await.unwrap();
    option.scroll_into_view().await.unwrap();
    option.click().await.unwrap();
}

async fn attr(driver: &WebDriver, css: &str, name: &str) -> Option<String> {
    driver.find(By::Css(css)).await.unwrap_or_else(|_| panic!("no {css}")).attr(name).await.unwrap()
}

async fn value(driver: &WebDriver, css: &str) -> String {
    driver.find(By::Css(css)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

/// Signs in through the pages: password, then TOTP set up with the shown secret.
async fn sign_in(driver: &WebDriver, base: &str, web: &Web, email: &str) {
    driver.goto(format!("{base}/login")).await.unwrap();
    fill(driver, "email", email).await;
    fill(driver, "password", PASSWORD).await;
    submit(driver, "form[action='/login'] button[type=submit]").await;
    let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
    let code = embargo_app::sessions::totp_code(&secret, web.app.now()).unwrap();
    fill(driver, "code", &code).await;
    submit(driver, "form[action='/login/totp'] button[type=submit]").await;
    submit(driver, "a.button.primary").await;
}

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "test".into() }
}

/// Ordinary reports, as a team sees them on a normal day: one new, one assigned on a
/// product, one waiting on its reporter. Returns the new one.
async fn ordinary_reports(app: &App) -> ReferenceId {
    let system = Actor::System("test");
    let mut refs = Vec::new();
    for (name, email, title, body) in [
        (
            "Sam Lee",
            "sam@example.org",
            "Token leak in debug logs",
            "With log_level=debug the session token is written to the log.",
        ),
        (
            "Ana Ruiz",
            "ana@example.com",
            "Stored XSS in the project wiki",
            "A page title with <img src=x onerror=alert(1)> runs script.",
        ),
        (
            "Rita Reporter",
            "rita@example.net",
            "Path traversal in the archive extractor",
            "Entries named ../../x are written outside the target directory.\n\n1. Build an archive\n2. Extract it",
        ),
    ] {
        let submission =
            Submission { reporter_name: Some(name.into()), ..Submission::new(Channel::Web, email, title, body) };
        refs.push(reports::submit(app, &system, submission).await.unwrap().reference);
    }
    let product = accounts::create_product(app, &local(), "Widget").await.unwrap();
    reports::set_product(app, &local(), &refs[1], Some(product)).await.unwrap();
    reports::assign(app, &local(), &refs[1], Some("lead@team.test")).await.unwrap();
    for (reference, target) in
        [(&refs[0], "acknowledged"), (&refs[0], "needs-info"), (&refs[1], "acknowledged"), (&refs[1], "triaging")]
    {
        let target = embargo_domain::Target::parse(target, None).unwrap();
        reports::change_state(app, &local(), reference, target, reports::Notice::None).await.unwrap();
    }
    refs.pop().unwrap()
}

/// A report with a long token in every field shown, assigned to an account with a long
/// address, on a product with a long name, with messages of long tokens.
async fn long_report(app: &App) -> ReferenceId {
    let system = Actor::System("test");
    let long = reports::submit(
        app,
        &system,
        Submission {
            reporter_name: Some(token('N')),
            ..Submission::new(
                Channel::Email,
                &long_address('r'),
                &token('T'),
                &format!("{}\n{}", token('B'), token('b')),
            )
        },
    )
    .await
    .unwrap();
    accounts::create_user(app, &local(), &long_address('a'), Role::Responder, Some(PASSWORD)).await.unwrap();
    let product = accounts::create_product(app, &local(), &token('P')).await.unwrap();
    reports::set_product(app, &local(), &long.reference, Some(product)).await.unwrap();
    reports::assign(app, &local(), &long.reference, Some(&long_address('a'))).await.unwrap();
    reports::add_note(app, &local(), &long.reference, &token('n')).await.unwrap();
    long.reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_and_the_inbox_fit_pass_axe_and_answer_bad_input_in_chromium() {
    let Some(browser) = Browser::start().await else { return };
    let shots = screenshots();
    std::fs::create_dir_all(&shots).unwrap();
    for (round, db) in both_backends().into_iter().enumerate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let web = web_with(&db, |c| c.public_url = base.clone()).await;
        create_user(&web, "lead@team.test", Role::Admin).await;
        let server = tokio::spawn(embargo_web::serve(web.app.clone(), listener, std::future::pending()));
        let violations = embargo_web::csp_violations();
        let driver = browser.driver();
        let save = |name: &str| round == 0 && !name.is_empty();
        browser.resize(1280, 800).await;
        sign_in(driver, &base, &web, "lead@team.test").await;

        // The first run: nothing has arrived; the inbox says how reports arrive.
        driver.goto(format!("{base}/inbox")).await.unwrap();
        let first = text_of(driver, "#first-run").await;
        assert!(first.contains(&web.config.organisation.security_address) && first.contains("/report"), "{first}");
        accessible(&browser, "the first-run inbox").await;
        fits(driver, "the first-run inbox").await;
        if save("inbox-empty") {
            browser.screenshot(&shots.join("inbox-empty.png")).await;
        }

        let ordinary = ordinary_reports(&web.app).await;
        web.clock.advance_secs(2 * 3600);
        let inbox = format!("{base}/inbox");
        let ordinary_page = format!("{base}/reports/{ordinary}");
        // The screenshots of ordinary pages, on a desktop and a phone.
        if save("pages") {
            for (w, h, suffix) in [(1280, 800, ""), (390, 844, "-phone")] {
                browser.resize(w, h).await;
                driver.goto(&inbox).await.unwrap();
                browser.screenshot(&shots.join(format!("inbox{suffix}.png"))).await;
                driver.goto(&ordinary_page).await.unwrap();
                browser.screenshot(&shots.join(format!("report-page{suffix}.png"))).await;
            }
        }
        let long = long_report(&web.app).await;
        let long_page = format!("{base}/reports/{long}");
        for (w, h) in [(1280, 800), (390, 844)] {
            browser.resize(w, h).await;
            for (page, what) in [(&inbox, "the inbox"), (&long_page, "the long report"), (&ordinary_page, "the report")]
            {
                driver.goto(page).await.unwrap();
                let what = format!("{what} at {w} px");
                fits(driver, &what).await;
                accessible(&browser, &what).await;
                if page != &inbox && w == 1280 {
                    for css in ["#state", "#deadline", "#next-action button.primary"] {
                        in_view(driver, css, &what).await;
                    }
                }
            }
            // Every character of the long tokens is there (wrapped, not cut).
            driver.goto(&long_page).await.unwrap();
            let main = text_of(driver, "main").await.replace('\n', "");
            for shown in
                [token('T'), token('P'), token('N'), long_address('r'), long_address('a'), token('B'), token('n')]
            {
                assert!(main.contains(&shown), "a long token lost characters at {w} px: {}", &shown[..20]);
            }
        }
        browser.resize(1280, 800).await;

        // The report page's forms with bad input: the same page, the field marked, the input kept.
        driver.goto(&ordinary_page).await.unwrap();
        submit(driver, "#close-form button[type=submit]").await;
        assert!(text_of(driver, "#close-reason-error").await.contains("choose why"), "close without a reason");
        assert_eq!(attr(driver, "#close-reason", "aria-invalid").await.as_deref(), Some("true"));
        accessible(&browser, "the report page with a refused close").await;
        choose(driver, "close-reason", "closed:duplicate").await;
        fill(driver, "duplicate_of", "the other one").await;
        submit(driver, "#close-form button[type=submit]").await;
        assert!(text_of(driver, "#duplicate-error").await.contains("not a report reference"));
        assert_eq!(value(driver, "#duplicate_of").await, "the other one", "the original as typed");
        assert_eq!(value(driver, "#close-reason").await, "closed:duplicate", "the reason as chosen");
        fits(driver, "the report page with a refused duplicate").await;
        fill(driver, "reply-body", "   ").await;
        submit(driver, "#reply-form button[type=submit]").await;
        assert!(text_of(driver, "#reply-error").await.contains("empty"));
        assert_eq!(value(driver, "#reply-body").await, "   ");
        accessible(&browser, "the report page with a refused reply").await;
        // Assign with nobody chosen (the report is unassigned: the choice is not made).
        submit(driver, "#assign-form button[type=submit]").await;
        assert!(text_of(driver, "#assignee-error").await.contains("choose who"));
        accessible(&browser, "the report page with a refused assignment").await;

        // The primary action: acknowledge, through the notice, to the next one.
        assert_eq!(text_of(driver, "#next-action button").await, "Acknowledge");
        submit(driver, "#next-action button").await;
        accessible(&browser, "the notice editor").await;
        fits(driver, "the notice editor").await;
        submit(driver, "button[name=send][value='1']").await;
        assert_eq!(text_of(driver, "#state").await, "acknowledged");
        assert_eq!(text_of(driver, "#next-action button").await, "Start triage");
        assert!(text_of(driver, "#deadline").await.contains("analyse clock"));

        // The inbox's bulk form with bad input.
        driver.goto(&inbox).await.unwrap();
        choose(driver, "bulk-reason", "closed:spam").await;
        submit(driver, "#bulk-close").await;
        assert!(text_of(driver, "#bulk-report-error").await.contains("Tick at least one"));
        assert_eq!(value(driver, "#bulk-reason").await, "closed:spam", "the reason kept");
        accessible(&browser, "the inbox with a refused bulk close").await;
        fits(driver, "the inbox with a refused bulk close").await;
        driver.find(By::Id(format!("pick-{long}"))).await.unwrap().click().await.unwrap();
        submit(driver, "#bulk-assign").await;
        assert!(text_of(driver, "#bulk-to-error").await.contains("Choose who"));
        assert!(
            driver.find(By::Id(format!("pick-{long}"))).await.unwrap().is_selected().await.unwrap(),
            "the tick kept"
        );
        choose(driver, "bulk-reason", "").await;
        submit(driver, "#bulk-close").await;
        assert!(text_of(driver, "#bulk-reason-error").await.contains("Choose why"));
        accessible(&browser, "the inbox with a refused bulk assignment").await;
        // And done right: both closed as spam, without notices.
        driver.find(By::Id(format!("pick-{ordinary}"))).await.unwrap().click().await.unwrap();
        choose(driver, "bulk-reason", "closed:spam").await;
        driver.find(By::Id("bulk-notify")).await.unwrap().click().await.unwrap();
        submit(driver, "#bulk-close").await;
        assert!(text_of(driver, "main").await.contains("2 reports closed."), "{}", text_of(driver, "main").await);
        for r in [&ordinary, &long] {
            let detail = reports::show(&web.app, &local(), r, reports::ReadPurpose::Read).await.unwrap();
            assert!(detail.report.state.is_closed(), "{r}");
        }
        accessible(&browser, "the inbox after a bulk close").await;

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(embargo_web::csp_violations(), violations, "the browser reported CSP violations");
        submit(driver, "form[action='/logout'] button[type=submit]").await;
        server.abort();
    }
    browser.quit().await;
}
