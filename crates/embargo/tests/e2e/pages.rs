//! Every public page and every team page but the report page and the inbox, in one Chromium
//! session against the real binary, with 200-character unbreakable tokens in every field
//! they show: none scrolls sideways at 390 or 1280 px, axe-core finds no violation of any
//! impact, and every form, sent bad input, answers with the same form, the field marked and
//! the input kept. Screenshots of these pages (desktop and phone) go to `docs/screenshots/`.

use std::time::Duration;

use embargo_test_support::Instance;
use embargo_test_support::browser::Browser;
use thirtyfour::prelude::*;

use crate::BIN;
use crate::browser::{fill, screenshots, submit, wait_for_text};

const PASSWORD: &str = "a long admin password";
const WIDTHS: [u32; 2] = [390, 1280];

/// A 200-character token without a break opportunity, starting with `tag`.
fn token(tag: &str) -> String {
    let mut t = tag.to_owned();
    while t.len() < 200 {
        t.push('W');
    }
    t
}

/// The checks of every page: no sideways scrolling at either width, no axe violation.
async fn check(browser: &Browser) {
    browser.assert_no_horizontal_overflow(&WIDTHS).await;
    browser.assert_axe_clean().await;
}

/// A screenshot at the desktop width, and one at the phone's.
async fn shots(browser: &Browser, name: &str) {
    let dir = screenshots();
    browser.resize(1280, 900).await;
    browser.screenshot(&dir.join(format!("{name}.png"))).await;
    browser.resize(390, 844).await;
    browser.screenshot(&dir.join(format!("{name}-phone.png"))).await;
    browser.resize(1280, 900).await;
}

async fn open(browser: &Browser, base: &str, path: &str) {
    browser.driver().goto(format!("{base}{path}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_passes_axe_and_answers_bad_input_with_the_same_form() {
    let Some(browser) = Browser::start().await else { return };
    browser.resize(1280, 900).await;
    let db = embargo_test_support::sqlite();
    let it = Instance::new(BIN, Some(&db));
    let long_org = token("Org");
    let server = it.serve(&[
        ("EMBARGO_WEB__PROOF_OF_WORK_BITS", "10"),
        ("EMBARGO_ORGANISATION__NAME", "Acme"),
        ("EMBARGO_POLICY__SCOPE", &format!("Everything at {long_org}")),
    ]);
    let base = format!("http://{}", server.addr);
    let driver = browser.driver();
    std::fs::create_dir_all(screenshots()).unwrap();

    // ---- Public pages.
    for path in ["/", "/policy", "/advisories"] {
        open(&browser, &base, path).await;
        check(&browser).await;
    }
    open(&browser, &base, "/policy").await;
    shots(&browser, "policy").await;

    // The report form: bad input comes back listed, the first field focused, files to
    // attach again, every text kept.
    open(&browser, &base, "/report").await;
    check(&browser).await;
    wait_for_text(driver, "pow-status", "can be sent now").await;
    let long = |tag: &str| token(tag);
    let (version, description, steps, impact, name, credit) =
        (long("Ver"), long("Desc"), long("Steps"), long("Impact"), long("Name"), long("Credit"));
    browser
        .assert_bad_input_kept(
            "#report-form",
            &[
                ("title", ""),
                ("version", &version),
                ("description", &description),
                ("steps", &steps),
                ("impact", &impact),
                ("email", "not an address"),
                ("name", &name),
                ("credit_name", &credit),
            ],
            "email",
            None,
        )
        .await;
    let summary = driver.find(By::Id("error-summary")).await.unwrap().text().await.unwrap();
    assert!(summary.contains("attach them again"), "{summary}");
    let focused = driver.execute("return document.activeElement.id;", Vec::new()).await.unwrap();
    assert_eq!(focused.json(), "title", "the first field with an error has the focus");
    check(&browser).await;
    shots(&browser, "report-form-errors").await;

    // A report with long tokens in every field.
    let title = long("Title");
    fill(driver, "title", &title).await;
    fill(driver, "email", "reporter@example.net").await;
    wait_for_text(driver, "pow-status", "can be sent now").await;
    submit(driver, "#report-form button[type=submit]").await;
    let reference = driver.find(By::Id("reference")).await.unwrap().text().await.unwrap();
    let status_link = driver.find(By::Id("status-link")).await.unwrap().prop("href").await.unwrap().unwrap();
    check(&browser).await;

    // The status page, new: what happens next; a reply without text is refused in place.
    driver.goto(&status_link).await.unwrap();
    check(&browser).await;
    browser.assert_bad_input_kept("form[action$='/reply']", &[("body", "   ")], "body", None).await;
    check(&browser).await;

    // ---- The first administrator, sign-in, TOTP.
    let setup = server
        .stdout_lines()
        .iter()
        .find_map(|l| l.trim().strip_prefix(&base).map(str::to_owned))
        .expect("first-admin link printed");
    open(&browser, &base, &setup).await;
    check(&browser).await;
    browser
        .assert_bad_input_kept(
            "form[action^='/setup/']",
            &[("email", "admin@acme.test"), ("password", PASSWORD), ("confirm", "another long password")],
            "confirm",
            None,
        )
        .await;
    check(&browser).await;
    fill(driver, "password", PASSWORD).await;
    fill(driver, "confirm", PASSWORD).await;
    submit(driver, "button[type=submit].primary").await;

    open(&browser, &base, "/login").await;
    check(&browser).await;
    browser
        .assert_bad_input_kept(
            "form[action='/login']",
            &[("email", "admin@acme.test"), ("password", "not the password")],
            "password",
            None,
        )
        .await;
    check(&browser).await;
    fill(driver, "password", PASSWORD).await;
    submit(driver, "form[action='/login'] button[type=submit]").await;
    let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
    check(&browser).await;
    // A wrong code comes back marked; like a password, a one-time code is not sent back.
    fill(driver, "code", "000000").await;
    browser.assert_bad_input_kept("form[action='/login/totp']", &[], "code", None).await;
    let code = embargo_app::sessions::totp_code(&secret, embargo_domain::Timestamp::now()).unwrap();
    fill(driver, "code", &code).await;
    submit(driver, "form[action='/login/totp'] button[type=submit]").await;
    check(&browser).await;
    submit(driver, "a.button.primary").await;

    // ---- Team pages, with long names in them.
    open(&browser, &base, "/admin").await;
    check(&browser).await;
    let product = long("Product");
    fill(driver, "product-name", &product).await;
    submit(driver, "form[action='/admin/products'] button[type=submit]").await;
    open(&browser, &base, "/admin").await;
    browser.assert_bad_input_kept("form[action='/admin/products']", &[("name", &product)], "name", None).await;
    check(&browser).await;
    browser
        .assert_bad_input_kept(
            "form[action='/admin/users']",
            &[("email", &long("Mail")), ("password", PASSWORD)],
            "email",
            None,
        )
        .await;
    check(&browser).await;
    shots(&browser, "admin").await;

    open(&browser, &base, "/admin/calendar").await;
    check(&browser).await;
    browser
        .assert_bad_input_kept(
            "form[action='/admin/calendar/holidays']",
            &[("day", ""), ("name", &long("Holiday"))],
            "day",
            None,
        )
        .await;
    check(&browser).await;

    open(&browser, &base, "/admin/partners").await;
    check(&browser).await;

    open(&browser, &base, "/account").await;
    check(&browser).await;

    open(&browser, &base, "/fixes").await;
    check(&browser).await;

    open(&browser, &base, "/dashboard").await;
    check(&browser).await;
    shots(&browser, "dashboard").await;

    // Advisories: a draft from the report, the reporter's credit in it; a second start warns.
    open(&browser, &base, &format!("/reports/{reference}")).await;
    submit(driver, &format!("form[action='/reports/{reference}/advisory'] button[type=submit]")).await;
    let editor = driver.current_url().await.unwrap().path().to_owned();
    let credits = driver.find(By::Id("credits")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
    assert!(credits.contains(&credit), "the reporter's chosen credit: {credits}");
    open(&browser, &base, &format!("/reports/{reference}")).await;
    submit(driver, &format!("form[action='/reports/{reference}/advisory'] button[type=submit]")).await;
    assert!(driver.find(By::Id("draft-warning")).await.is_ok(), "a second draft is warned about");
    check(&browser).await;

    open(&browser, &base, &editor).await;
    check(&browser).await;
    let (summary_text, cwe) = (long("Summary"), long("CWE"));
    browser
        .assert_bad_input_kept(
            &format!("form[action='{editor}']"),
            &[
                ("title", &title),
                ("aliases", &long("Alias")),
                ("summary", &summary_text),
                ("details", &long("Details")),
                ("workarounds", &long("Work")),
                ("cwe", &cwe),
                ("references", &format!("WEB https://example.org/{}", long("Ref"))),
                ("credits", &format!("NOBODY {}", long("Cred"))),
                ("a_product", &long("Pkg")),
                ("a_kind", "SEMVER"),
                ("a_introduced", &long("Intro")),
                ("a_end", &long("Fixed")),
            ],
            "credits",
            Some("button.primary"),
        )
        .await;
    check(&browser).await;
    shots(&browser, "advisory-editor").await;
    fill(driver, "credits", &format!("REPORTER {credit}")).await;
    submit(driver, &format!("form[action='{editor}'] button.primary")).await;
    open(&browser, &base, "/team/advisories").await;
    check(&browser).await;
    shots(&browser, "advisories").await;

    // ---- The status page in needs-info (asked through the command line), then accepted.
    let question = format!("Which version do you run? {}", long("Question"));
    let out = it.run(&["report", "reply", &reference, "--ask", "--body", &question], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    driver.goto(&status_link).await.unwrap();
    let banner = driver.find(By::Id("needs-info")).await.unwrap().text().await.unwrap();
    assert!(
        banner.contains("Which version do you run?") && banner.contains("If they do not hear from you by"),
        "{banner}"
    );
    check(&browser).await;
    shots(&browser, "status-page").await;
    // On a phone the reply box comes before the thread.
    browser.resize(390, 844).await;
    let order = driver
        .execute(
            "return [document.getElementById('reply-h').getBoundingClientRect().top, \
             document.getElementById('timeline-h').getBoundingClientRect().top];",
            Vec::new(),
        )
        .await
        .unwrap();
    let (reply_top, thread_top): (f64, f64) = order.convert().unwrap();
    assert!(reply_top < thread_top, "the reply box is above the thread on a phone");
    browser.resize(1280, 900).await;
    for state in ["triaging", "accepted"] {
        let out = it.run(&["report", "transition", &reference, state], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    driver.goto(&status_link).await.unwrap();
    let next = driver.find(By::Id("next-steps")).await.unwrap().text().await.unwrap();
    assert!(next.contains("Fix target"), "{next}");
    check(&browser).await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    browser.quit().await;
    assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));
}
