//! The disclosure runbook in real Chromium (issue 16), against the router served in-process
//! on 127.0.0.1 with the job workers running beside it, on SQLite and PostgreSQL: person A
//! plans a "disclose now" (with its own confirmation), sees the hostile mitigations as text
//! and cannot approve; rehearses, and the page shows what would go out; person B signs in,
//! approves what they saw, and the open page follows the run from the server-sent events to
//! every step done — without a reload. Every page passes axe-core, no CSP violation is
//! reported; screenshots go to `docs/screenshots/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use embargo_test_support::Browser;
use embargo_test_support::both_backends;
use embargo_test_support::thirtyfour::prelude::*;

use super::runbook::{HOSTILE, LIST, ready_report};
use crate::common::driver::{click, fill, submit, text_of};
use crate::common::*;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

async fn axe_clean(browser: &Browser, page: &str) {
    let serious = browser.axe_serious().await;
    assert!(serious.is_empty(), "axe-core finds serious problems on {page}: {serious:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_arm_a_plan_and_watch_it_run_live_in_chromium() {
    let Some(browser) = Browser::start().await else { return };
    browser.resize(1280, 900).await;
    let shots = screenshots();
    std::fs::create_dir_all(&shots).unwrap();
    for db in both_backends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let web = web_with(&db, |c| {
            c.public_url = base.clone();
            c.announce.mailing_lists = vec![LIST.into()];
        })
        .await;
        let (reference, _lead, on) = ready_report(&web.app).await;
        let server = tokio::spawn(embargo_web::serve(web.app.clone(), listener, std::future::pending()));
        // The job workers, held until the live page is open.
        let go = Arc::new(AtomicBool::new(false));
        let workers = {
            let (app, go) = (web.app.clone(), go.clone());
            tokio::spawn(async move {
                let worker = embargo_app::jobs::Worker::new(app);
                loop {
                    if go.load(Ordering::SeqCst) {
                        while worker.run_once().await.unwrap() {}
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let violations = embargo_web::csp_violations();
        let driver = browser.driver();
        let page = format!("{base}/reports/{reference}/runbook");

        // Person A (the responder on the report) plans a "disclose now".
        sign_in(driver, &base, &web, "on@team.test").await;
        driver.goto(&page).await.unwrap();
        axe_clean(&browser, "the runbook without a plan").await;
        click(driver, "#plan-form input[name=emergency]").await;
        submit(driver, "#plan-form button[type=submit]").await;
        assert!(text_of(driver, "#plan-error").await.contains("disclose now"), "its own confirmation");
        click(driver, "#plan-form input[name=confirm_emergency]").await;
        submit(driver, "#plan-form button[type=submit]").await;
        assert_eq!(text_of(driver, "#plan-state").await, "draft");
        assert!(text_of(driver, "#plan-emergency").await.contains("disclose now"));
        let view = embargo_app::disclosure::status(&web.app, &on, &reference.to_string()).await.unwrap();
        assert_eq!(text_of(driver, "#content-hash").await, view.content_hash);
        // The mitigations as they will go out: the text as written, not markup.
        let message = text_of(driver, "article[data-channel='lists'] pre.message-text").await;
        assert!(message.contains(HOSTILE), "{message}");
        assert!(text_of(driver, "#approve-refused").await.contains("second person"));
        assert!(driver.find(By::Id("approve-form")).await.is_err());

        // The rehearsal: what would go out, on the page; nothing published.
        submit(driver, "#rehearse-form button[type=submit]").await;
        let outputs = driver.find(By::Id("rehearsal-outputs")).await.unwrap().prop("textContent").await.unwrap();
        let outputs = outputs.unwrap_or_default();
        assert!(outputs.contains(HOSTILE), "the rehearsed mail, as text: {outputs}");
        assert_eq!(text_of(driver, "#plan-state").await, "draft");
        axe_clean(&browser, "the runbook after a rehearsal").await;
        browser.screenshot(&shots.join("runbook-plan.png")).await;
        driver
            .execute(
                "document.querySelectorAll('#rehearsal-outputs details').forEach((d) => d.open = true);",
                Vec::new(),
            )
            .await
            .unwrap();
        let section = driver.find(By::Css("section[aria-labelledby='rehearsal-h']")).await.unwrap();
        section.scroll_into_view().await.unwrap();
        std::fs::write(shots.join("runbook-rehearsal.png"), section.screenshot_as_png().await.unwrap()).unwrap();
        submit(driver, "form[action='/logout'] button[type=submit]").await;

        // Person B (an admin) approves what they see; the page stays open.
        sign_in(driver, &base, &web, "lead@team.test").await;
        driver.goto(&page).await.unwrap();
        axe_clean(&browser, "the runbook for the approver").await;
        submit(driver, "#approve-form button[type=submit]").await;
        assert_eq!(text_of(driver, "#plan-state").await, "armed");
        assert_eq!(text_of(driver, "#planned-by").await, "on@team.test");
        assert_eq!(text_of(driver, "#approved-by").await, "lead@team.test");
        driver.execute("window.__same_page = 1;", Vec::new()).await.unwrap();
        let rows = driver.find_all(By::Css("#steps tbody tr")).await.unwrap();
        assert_eq!(rows.len(), view.steps.len());

        // The run: the live page follows every step to its end without a reload.
        go.store(true, Ordering::SeqCst);
        let mut finished = false;
        for _ in 0..600 {
            let states = driver.find_all(By::Css("#steps [data-field=state]")).await.unwrap();
            let mut all = true;
            for s in states {
                let text = s.text().await.unwrap_or_default();
                all &= text == "done" || text == "skipped";
            }
            if all && text_of(driver, "#plan-state").await == "done" {
                finished = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let table = text_of(driver, "#steps").await;
        assert!(finished, "the live page never showed the plan done: {table}");
        let same = driver.execute("return window.__same_page === 1;", Vec::new()).await.unwrap();
        assert_eq!(same.json(), &serde_json::Value::Bool(true), "the page was not reloaded");
        let done = embargo_app::disclosure::status(&web.app, &on, &reference.to_string()).await.unwrap();
        assert_eq!(done.state, "done");
        let advisory = done.steps.iter().find(|s| s.name == "advisory").unwrap();
        let row = text_of(driver, "#steps tr[data-step='advisory']").await;
        assert!(row.contains(advisory.external_id.as_deref().unwrap()), "the advisory's public ID, live: {row}");
        for _ in 0..100 {
            if text_of(driver, "#live-status").await.contains("finished") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(text_of(driver, "#live-status").await.contains("finished"));
        axe_clean(&browser, "the runbook, live, done").await;
        let section = driver.find(By::Css("section[aria-labelledby='steps-h']")).await.unwrap();
        section.scroll_into_view().await.unwrap();
        std::fs::write(shots.join("runbook-live-done.png"), section.screenshot_as_png().await.unwrap()).unwrap();
        // A reload shows the same, without script; on a phone too.
        driver.refresh().await.unwrap();
        assert_eq!(text_of(driver, "#plan-state").await, "done");
        assert!(text_of(driver, "#steps tr[data-step='advisory']").await.contains("done"));
        browser.resize(390, 844).await;
        driver.execute("window.scrollTo(0, 0);", Vec::new()).await.unwrap();
        let wide = driver
            .execute("return document.documentElement.scrollWidth > window.innerWidth;", Vec::new())
            .await
            .unwrap();
        let culprits = driver
            .execute(
                "return Array.from(document.querySelectorAll('main *')).filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll')).slice(0, 8).map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(wide.json(), &serde_json::Value::Bool(false), "the page fits a phone: {:?}", culprits.json());
        axe_clean(&browser, "the runbook on a phone").await;
        browser.screenshot(&shots.join("runbook-phone.png")).await;
        browser.resize(1280, 900).await;
        driver.goto(format!("{base}/disclosure")).await.unwrap();
        assert!(text_of(driver, "#plans").await.contains(&reference.to_string()));
        axe_clean(&browser, "/disclosure").await;

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(embargo_web::csp_violations(), violations, "the browser reported CSP violations");
        submit(driver, "form[action='/logout'] button[type=submit]").await;
        workers.abort();
        server.abort();
    }
    browser.quit().await;
}
