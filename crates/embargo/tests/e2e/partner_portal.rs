//! The partner portal in real Chromium, against the real binary (issue 15): a report's fix
//! is pushed over git, a partner is added with a GnuPG key (`partner add`), a pre-notice is
//! drafted and sent (`notice draft`, `notice send`); the partner contact sets a password
//! through the mailed link, signs in with TOTP, lands on their notices, reads the notice,
//! downloads the patch (it applies with `git am` on the public branch, and its SHA-256 is
//! the one shown), fetches the calendar file, and acknowledges; the team's table of copies
//! then says "acknowledged". Every page is checked with axe-core; screenshots go to
//! `docs/screenshots/`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use embargo_test_support::both_backends;
use embargo_test_support::browser::Browser;
use thirtyfour::prelude::*;

use crate::browser::{axe_clean, fill, screenshots, submit, wait_for_text};
use crate::fixes::{fixture, git_ok, have_tools, ok};
use crate::smtp::Gpg;

const ADMIN_PASSWORD: &str = "a long admin password";
const PARTNER_PASSWORD: &str = "a long partner password";

/// The partner invitation link in the outbox for `to`.
fn welcome_link(outbox: &Path, to: &str) -> Option<String> {
    for entry in std::fs::read_dir(outbox).ok()?.flatten() {
        let raw = std::fs::read_to_string(entry.path()).unwrap_or_default().replace("=\r\n", "").replace("=\n", "");
        if !raw.contains(to) || !raw.contains("/partner/welcome/") {
            continue;
        }
        let at = raw.find("/partner/welcome/")? + "/partner/welcome/".len();
        let token: String = raw[at..].chars().take_while(char::is_ascii_hexdigit).collect();
        return Some(format!("/partner/welcome/{token}"));
    }
    None
}

/// The first Tuesday, Wednesday or Thursday 16:00 UTC at least 8 days ahead (the default
/// policy: at least 7 days' notice, at most 14 days of embargo, Tuesday to Thursday).
fn disclosure_instant() -> String {
    use jiff::civil::Weekday;
    let day = jiff::SignedDuration::from_hours(24);
    let mut at = jiff::Timestamp::now().checked_add(day * 8).unwrap();
    loop {
        let civil = jiff::tz::TimeZone::UTC.to_datetime(at);
        if matches!(civil.weekday(), Weekday::Tuesday | Weekday::Wednesday | Weekday::Thursday) {
            return format!("{}T16:00:00Z", civil.date());
        }
        at = at.checked_add(day).unwrap();
    }
}

/// Signs in through the pages: password, then TOTP set up with the shown secret, then on
/// from the recovery codes.
async fn sign_in(driver: &WebDriver, base: &str, email: &str, password: &str) {
    driver.goto(format!("{base}/login")).await.unwrap();
    fill(driver, "email", email).await;
    fill(driver, "password", password).await;
    submit(driver, "button[type=submit]").await;
    let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
    let code = embargo_app::sessions::totp_code(&secret, embargo_domain::Timestamp::now()).unwrap();
    fill(driver, "code", &code).await;
    submit(driver, "form[action='/login/totp'] button[type=submit]").await;
    submit(driver, "a.button.primary").await;
}

/// A same-origin GET from the page (as a download link would fetch it): status, content
/// type, content disposition and text.
async fn fetch(driver: &WebDriver, url: &str) -> (i64, String, String, String) {
    let script = "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send(); \
                  return [x.status, x.getResponseHeader('Content-Type') || '', \
                  x.getResponseHeader('Content-Disposition') || '', x.responseText];";
    let value = driver.execute(script, vec![serde_json::json!(url)]).await.unwrap().json().clone();
    let text = |i: usize| value[i].as_str().unwrap_or_default().to_owned();
    (value[0].as_i64().unwrap_or(0), text(1), text(2), text(3))
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_reads_downloads_and_acknowledges_a_notice_in_chromium() {
    if !have_tools() {
        return;
    }
    let Some(browser) = Browser::start().await else { return };
    browser.resize(1280, 900).await;
    for db in both_backends() {
        let f = fixture(Some(&db));
        let (it, reference) = (&f.it, &f.reference);
        let base = format!("http://{}", f.server.addr);
        let Some(gpg) = Gpg::new(&f.root.path().join("partner-gpg"), "") else { return };

        // The fix: pushed to fix/main over git by an admin (who later reads the team pages).
        let password = format!("{ADMIN_PASSWORD}\n");
        let created = it.run(
            &["admin", "create-user", "--email", "admin@example.org", "--role", "admin", "--password-stdin"],
            password.as_bytes(),
        );
        assert_eq!(created.code, 0, "{}", created.stderr);
        ok(it, &["fix", "open", reference]);
        let token = ok(it, &["admin", "create-token", "--email", "admin@example.org"]).stdout.trim().to_owned();
        let clone = f.root.path().join("clone");
        git_ok(
            f.root.path(),
            &["clone", "-q", &f.url("admin@example.org", &token, reference), clone.to_str().unwrap()],
        );
        git_ok(&clone, &["checkout", "-q", "-B", "work", "origin/fix/main"]);
        std::fs::write(clone.join("code.txt"), "fixed\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds in the parser"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);

        // The partner, with a GnuPG key; the notice, drafted and sent.
        gpg.add_key("Partner <sec@partner.test>");
        let key = gpg.run(&["--armor", "--export", "sec@partner.test"]);
        let key_file = f.root.path().join("partner.asc");
        std::fs::write(&key_file, key).unwrap();
        ok(
            it,
            &[
                "partner",
                "add",
                "Example <b>Distro</b>",
                "--contact",
                "sec@partner.test",
                "--key",
                key_file.to_str().unwrap(),
                "--products",
                "app",
                "--time-zone",
                "Asia/Tokyo",
            ],
        );
        let at = disclosure_instant();
        let notice = ok(it, &["notice", "draft", reference, "--disclose-at", &at]).stdout.trim().to_owned();
        ok(it, &["notice", "send", &notice]);
        let outbox = it.data_dir.join("outbox").join("new");
        let deadline = Instant::now() + Duration::from_secs(30);
        let link = loop {
            if let Some(link) = welcome_link(&outbox, "sec@partner.test") {
                break link;
            }
            assert!(Instant::now() < deadline, "no partner invitation mail");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The partner sets a password, signs in and lands on their notices.
        let driver = browser.driver();
        driver.goto(format!("{base}{link}")).await.unwrap();
        axe_clean(&browser, "the partner welcome page").await;
        fill(driver, "password", PARTNER_PASSWORD).await;
        fill(driver, "confirm", PARTNER_PASSWORD).await;
        submit(driver, "button[type=submit]").await;
        sign_in(driver, &base, "sec@partner.test", PARTNER_PASSWORD).await;
        assert_eq!(driver.current_url().await.unwrap().path(), "/partner");
        wait_for_text(driver, "notices", &format!("N-{notice}")).await;
        let main = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
        assert!(main.contains("[EMBARGOED]") && main.contains("(Asia/Tokyo)"), "{main}");
        axe_clean(&browser, "/partner").await;
        let shots = screenshots();
        std::fs::create_dir_all(&shots).unwrap();
        browser.screenshot(&shots.join("partner-notices.png")).await;
        // The team's pages are not theirs.
        for page in ["/inbox".to_owned(), format!("/reports/{reference}"), "/admin/partners".to_owned()] {
            driver.goto(format!("{base}{page}")).await.unwrap();
            let text = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
            assert!(text.contains("There is nothing here.") && !text.contains("Overflow in parser"), "{page}: {text}");
        }

        // The notice: its text, the instant in UTC and Tokyo time, the patch with its hash.
        driver.goto(format!("{base}/partner")).await.unwrap();
        submit(driver, &format!("a.ref[href='/partner/notices/{notice}']")).await;
        wait_for_text(driver, "notice-text", "Disclosure, not before").await;
        let instant = driver.find(By::Id("instant")).await.unwrap().text().await.unwrap();
        assert!(instant.contains("16:00 UTC") && instant.contains("01:00 JST (Asia/Tokyo)"), "{instant}");
        let text = driver.find(By::Id("notice-text")).await.unwrap().text().await.unwrap();
        assert!(text.contains("Example <b>Distro</b>"), "the name as written, not as markup: {text}");
        let patches = driver.find(By::Id("patches")).await.unwrap().text().await.unwrap();
        assert!(patches.contains("fix-main.patch"), "{patches}");
        axe_clean(&browser, "a partner's notice").await;
        browser.screenshot(&shots.join("partner-notice.png")).await;
        browser.resize(390, 844).await;
        axe_clean(&browser, "a partner's notice on a phone").await;
        browser.screenshot(&shots.join("partner-notice-phone.png")).await;
        browser.resize(1280, 900).await;

        // The patch downloads as a text/x-patch attachment and applies with `git am`.
        let href = driver
            .find(By::Css("#patches a[href$='/files/fix-main.patch']"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let (status, content_type, disposition, patch) = fetch(driver, &href).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/x-patch"), "{content_type}");
        assert_eq!(disposition, "attachment; filename=\"fix-main.patch\"");
        let patch_file = f.root.path().join("fix-main.patch");
        std::fs::write(&patch_file, &patch).unwrap();
        assert!(patches.contains(&sha256(&patch_file)), "the SHA-256 shown is the file's: {patches}");
        let public = f.root.path().join("public-check");
        git_ok(f.root.path(), &["clone", "-q", f.public.to_str().unwrap(), public.to_str().unwrap()]);
        git_ok(&public, &["am", "-q", patch_file.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(public.join("code.txt")).unwrap(), "fixed\n");
        // The calendar file: the instant, nothing of the issue.
        let (status, content_type, _, ics) = fetch(driver, &format!("/partner/notices/{notice}/disclosure.ics")).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/calendar"), "{content_type}");
        assert!(ics.contains("BEGIN:VEVENT") && !ics.contains("Overflow") && !ics.contains(reference.as_str()));

        // Acknowledge.
        submit(driver, "#acknowledge-form button[type=submit]").await;
        wait_for_text(driver, "acknowledged", "You acknowledged this notice").await;
        axe_clean(&browser, "an acknowledged notice").await;
        driver.goto(format!("{base}/partner/organisation")).await.unwrap();
        wait_for_text(driver, "contacts", "sec@partner.test").await;
        axe_clean(&browser, "the partner's organisation").await;
        submit(driver, "form[action='/logout'] button[type=submit]").await;

        // The team's table of copies says "acknowledged".
        sign_in(driver, &base, "admin@example.org", ADMIN_PASSWORD).await;
        driver.goto(format!("{base}/reports/{reference}")).await.unwrap();
        submit(driver, "#disclosure-link").await;
        wait_for_text(driver, "copies", "acknowledged").await;
        let row = driver.find(By::Css("#copies tr[data-contact='sec@partner.test']")).await.unwrap();
        assert!(row.text().await.unwrap().contains("encrypted"), "the copy went encrypted");
        axe_clean(&browser, "the disclosure page").await;
        driver.execute("document.getElementById('notice-h').scrollIntoView();", Vec::new()).await.unwrap();
        browser.screenshot(&shots.join("disclosure.png")).await;
        driver.goto(format!("{base}/admin/partners")).await.unwrap();
        wait_for_text(driver, "partners", "Example <b>Distro</b>").await;
        axe_clean(&browser, "the Partners page").await;
        browser.screenshot(&shots.join("partners.png")).await;
        let status = ok(it, &["notice", "status", &notice, "--json"]).stdout;
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert_eq!(status["contacts"][0]["state"], "acknowledged", "{status}");
        submit(driver, "form[action='/logout'] button[type=submit]").await;
    }
}
