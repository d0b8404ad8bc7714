//! The web app in real Chromium, against the real binary: a reporter submits the form (the
//! page's script solves the anti-spam proof of work); the first admin is created through the
//! printed link, signs in with TOTP, triages with an edited notice and replies; the reporter
//! sees the reply on the status page and answers; the team sees the answer. Every page is
//! checked with axe-core. A corpus of XSS payloads in every report field, mail header and
//! attachment name is then shown on the team pages: nothing runs and no CSP violation is
//! reported. Screenshots go to `docs/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use embargo_test_support::browser::Browser;
use embargo_test_support::{Instance, Server};
use thirtyfour::prelude::*;

use crate::BIN;

const PASSWORD: &str = "a long admin password";

/// Payloads that set `window.__xss` if anything of them ever runs.
const XSS: &[&str] = &[
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=1\">",
    "\"><svg onload=window.__xss=1>",
    "'><iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "[click](javascript:window.__xss=1)",
    "<a href=\"javascript:window.__xss=1\">x</a>",
    "<style>@import 'http://evil.example/x.css';</style>",
    "<details open ontoggle=window.__xss=1>",
    "{{7*7}}${7*7}<%= 7*7 %>",
];

pub(crate) fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

pub(crate) async fn axe_clean(browser: &Browser, page: &str) {
    let serious = browser.axe_serious().await;
    assert!(serious.is_empty(), "axe-core finds serious problems on {page}: {serious:?}");
}

async fn xss_fired(driver: &WebDriver) -> bool {
    let value = driver.execute("return window.__xss === undefined ? 0 : 1;", Vec::new()).await.unwrap();
    value.json().as_i64() != Some(0)
}

pub(crate) async fn wait_for_text(driver: &WebDriver, id: &str, needle: &str) {
    for _ in 0..600 {
        if let Ok(element) = driver.find(By::Id(id)).await
            && element.text().await.unwrap_or_default().contains(needle)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("#{id} never contained {needle:?}");
}

pub(crate) async fn fill(driver: &WebDriver, id: &str, text: &str) {
    let Ok(element) = driver.find(By::Id(id)).await else {
        let url = driver.current_url().await.unwrap();
        let main = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap_or_default();
        panic!("no #{id} on {url}: {main}");
    };
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

async fn choose(driver: &WebDriver, select: &str, value: &str) {
    driver.find(By::Css(format!("#{select} option[value='{value}']"))).await.unwrap().click().await.unwrap();
}

/// Clicks a submit button and waits until the browser has left the page.
pub(crate) async fn submit(driver: &WebDriver, css: &str) {
    let old = driver.find(By::Tag("html")).await.unwrap();
    driver.find(By::Css(css)).await.unwrap().click().await.unwrap();
    for _ in 0..400 {
        if !old.is_present().await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("clicking {css} did not leave {}", driver.current_url().await.unwrap());
}

fn csp_violations(server: &Server) -> u64 {
    let metrics = server.metrics(&[]);
    metrics
        .body
        .lines()
        .find(|l| l.starts_with("embargo_csp_violations_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporter_and_team_work_a_report_in_chromium_and_hostile_content_stays_text() {
    let Some(browser) = Browser::start().await else { return };
    browser.resize(1280, 900).await;
    let db = embargo_test_support::sqlite();
    let it = Instance::new(BIN, Some(&db));
    let server = it.serve(&[("EMBARGO_WEB__PROOF_OF_WORK_BITS", "12"), ("EMBARGO_ORGANISATION__NAME", "Acme")]);
    let base = format!("http://{}", server.addr);
    let driver = browser.driver();
    let shots = screenshots();
    std::fs::create_dir_all(&shots).unwrap();

    // The reporter submits the form; the page's script does the proof of work.
    let attachment = it.path("poc.py");
    std::fs::write(&attachment, "print('proof of concept')\n").unwrap();
    driver.goto(format!("{base}/report")).await.unwrap();
    axe_clean(&browser, "/report").await;
    browser.screenshot(&shots.join("report-form.png")).await;
    fill(driver, "title", "Path traversal in the archive extractor").await;
    fill(driver, "version", "2.4.0 to 2.4.3").await;
    fill(driver, "description", "Entries named `../../x` are written outside the target directory.").await;
    fill(driver, "steps", "1. Build an archive with `poc.py`\n2. Extract it").await;
    fill(driver, "impact", "Arbitrary file write as the extracting user.").await;
    fill(driver, "email", "reporter@example.net").await;
    fill(driver, "name", "Rita Reporter").await;
    choose(driver, "ai_used", "no").await;
    driver.find(By::Id("attachments")).await.unwrap().send_keys(attachment.display().to_string()).await.unwrap();
    wait_for_text(driver, "pow-status", "can be sent now").await;
    submit(driver, "#report-form button[type=submit]").await;
    let reference = driver.find(By::Id("reference")).await.unwrap().text().await.unwrap();
    let status_link = driver.find(By::Id("status-link")).await.unwrap().prop("href").await.unwrap().unwrap();
    assert!(reference.starts_with("SEC-"), "{reference}");
    axe_clean(&browser, "the confirmation page").await;

    // The first admin, through the printed one-time link.
    let setup = server
        .stdout_lines()
        .iter()
        .find_map(|l| l.trim().strip_prefix(&base).map(str::to_owned))
        .expect("first-admin link printed");
    driver.goto(format!("{base}{setup}")).await.unwrap();
    fill(driver, "email", "admin@acme.test").await;
    fill(driver, "password", PASSWORD).await;
    fill(driver, "confirm", PASSWORD).await;
    submit(driver, "button[type=submit]").await;

    // Sign in: password, then TOTP set-up with the shown secret.
    driver.goto(format!("{base}/login")).await.unwrap();
    axe_clean(&browser, "/login").await;
    fill(driver, "email", "admin@acme.test").await;
    fill(driver, "password", PASSWORD).await;
    submit(driver, "button[type=submit]").await;
    let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
    axe_clean(&browser, "/login/totp").await;
    let code = embargo_app::sessions::totp_code(&secret, embargo_domain::Timestamp::now()).unwrap();
    fill(driver, "code", &code).await;
    submit(driver, "form[action='/login/totp'] button[type=submit]").await;
    // Set-up ends on the recovery codes, shown once.
    let codes = driver.find(By::Id("recovery-codes")).await.unwrap().text().await.unwrap();
    assert_eq!(codes.lines().filter(|l| !l.trim().is_empty()).count(), 10, "{codes}");
    axe_clean(&browser, "the recovery codes").await;
    submit(driver, "a.button.primary").await;
    assert!(driver.current_url().await.unwrap().path().ends_with("/inbox"));

    // The account and team pages pass axe too.
    for page in ["/account", "/admin", "/policy", "/"] {
        driver.goto(format!("{base}{page}")).await.unwrap();
        axe_clean(&browser, page).await;
    }
    driver.goto(format!("{base}/inbox")).await.unwrap();

    // The inbox shows the report; open it.
    axe_clean(&browser, "/inbox").await;
    submit(driver, &format!("a[href='/reports/{reference}'].ref")).await;
    let page = driver.source().await.unwrap();
    assert!(page.contains("Path traversal in the archive extractor") && page.contains("poc.py"));
    axe_clean(&browser, "the report page").await;

    // The next action is the primary button; triage (a move beside it) with an edited
    // notice, then reply.
    let primary = driver.find(By::Css("#next-action button.primary")).await.unwrap().text().await.unwrap();
    assert_eq!(primary, "Acknowledge", "a new report's next action");
    submit(driver, "#next-actions form.other-move:has(input[value='triaging']) button").await;
    axe_clean(&browser, "the notice editor").await;
    fill(driver, "notice", "Hello Rita, we reproduced the traversal and are assessing it.").await;
    submit(driver, "button[name=send][value='1']").await;
    fill(driver, "reply-body", "Does it also happen with **symlinks** inside the archive?").await;
    submit(driver, "form[action$='/reply'] button[type=submit]").await;
    let page = driver.source().await.unwrap();
    // Message text is shown as written (and as mailed), not as Markdown.
    assert!(page.contains("Does it also happen with **symlinks** inside the archive?"), "the reply is on the timeline");

    // The reporter sees the notice and the reply, and answers.
    driver.goto(&status_link).await.unwrap();
    let page = driver.source().await.unwrap();
    assert!(page.contains("we reproduced the traversal") && page.contains("with **symlinks** inside"));
    assert!(page.contains("triaging"));
    axe_clean(&browser, "the status page").await;
    browser.screenshot(&shots.join("status-page.png")).await;
    browser.resize(390, 844).await;
    browser.screenshot(&shots.join("status-page-phone.png")).await;
    axe_clean(&browser, "the status page on a phone").await;
    browser.resize(1280, 900).await;
    fill(driver, "body", "Yes: a symlink entry pointing to /etc is followed.").await;
    submit(driver, "form[action$='/reply'] button[type=submit]").await;

    // The team sees the answer.
    driver.goto(format!("{base}/reports/{reference}")).await.unwrap();
    let page = driver.source().await.unwrap();
    assert!(page.contains("a symlink entry pointing to /etc is followed"));
    browser.screenshot(&shots.join("report-page-thread.png")).await;

    // The CVSS calculator: picking metrics shows the live score (scored by the server
    // through the page script), saving stores the canonical vector.
    for (metric, value) in [
        ("AV", "N"),
        ("AC", "L"),
        ("AT", "N"),
        ("PR", "N"),
        ("UI", "N"),
        ("VC", "H"),
        ("VI", "H"),
        ("VA", "H"),
        ("SC", "N"),
        ("SI", "N"),
        ("SA", "N"),
    ] {
        let css = format!("form[data-version='4.0'] input[name='m_{metric}'][value='{value}']");
        let radio = driver.find(By::Css(css)).await.unwrap();
        radio.scroll_into_view().await.unwrap();
        radio.click().await.unwrap();
    }
    wait_for_text(driver, "score-v40", "9.3 Critical").await;
    submit(driver, "form[data-version='4.0'] button[type=submit]").await;
    let page = driver.source().await.unwrap();
    assert!(page.contains("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"), "vector stored");
    let section = driver.find(By::Id("assessment")).await.unwrap();
    section.scroll_into_view().await.unwrap();
    std::fs::write(shots.join("assessment.png"), section.screenshot_as_png().await.unwrap()).unwrap();
    axe_clean(&browser, "the report page with its assessment").await;

    // Hostile content: every payload in a form report's fields and in a mail's subject,
    // sender name, text, HTML part and attachment names.
    let joined = XSS.join(" ");
    for (i, payload) in XSS.iter().enumerate() {
        let mail = format!(
            "From: \"{payload}\" <attacker{i}@example.net>\r\nTo: security@example.org\r\nSubject: {payload}\r\n\
             Message-ID: <xss{i}@example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n\
             <p>{payload}</p><script>window.__xss=1</script>\r\n--b\r\n\
             Content-Type: text/html; name=\"{payload}.html\"\r\nContent-Disposition: attachment; filename=\"{payload}.html\"\r\n\r\n\
             <script>window.__xss=1</script>\r\n--b--\r\n"
        );
        let out = it.run(&["ingest-mail"], mail.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    driver.goto(format!("{base}/report")).await.unwrap();
    for field in ["title", "version", "product_other", "description", "steps", "impact", "name", "credit_name"] {
        fill(driver, field, &joined).await;
    }
    fill(driver, "email", "xss@example.net").await;
    wait_for_text(driver, "pow-status", "can be sent now").await;
    submit(driver, "#report-form button[type=submit]").await;
    let hostile_status = driver.find(By::Id("status-link")).await.unwrap().prop("href").await.unwrap().unwrap();
    assert!(!xss_fired(driver).await, "the confirmation page ran a payload");
    driver.goto(&hostile_status).await.unwrap();
    assert!(!xss_fired(driver).await, "the status page ran a payload");
    // Every payload is on the reporter's page as the text they typed, none dropped.
    let text = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
    for payload in XSS {
        assert!(text.contains(payload), "the status page lost {payload:?}: {text}");
    }
    driver.goto(format!("{base}/inbox")).await.unwrap();
    assert!(!xss_fired(driver).await, "the inbox ran a payload");
    browser.screenshot(&shots.join("inbox-hostile.png")).await;
    let links = driver.find_all(By::Css("td.title a")).await.unwrap();
    let mut hrefs = Vec::new();
    for link in links {
        hrefs.push(link.attr("href").await.unwrap().unwrap());
    }
    assert!(hrefs.len() >= XSS.len() + 2, "every hostile report is listed");
    for href in &hrefs {
        driver.goto(format!("{base}{href}")).await.unwrap();
        assert!(!xss_fired(driver).await, "{href} ran a payload");
        let text = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
        assert!(!text.is_empty());
    }
    // The payloads are shown as text.
    driver.goto(format!("{base}/inbox?q=xss")).await.unwrap();
    let text = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("<script>window.__xss=1</script>"), "the title is shown literally: {text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(csp_violations(&server), 0, "the browser reported CSP violations");

    browser.quit().await;
    assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));
}
