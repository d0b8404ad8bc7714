//! Passkeys in real Chromium with WebDriver's virtual authenticator (issue 17, ADR 28),
//! against the router served in-process on `localhost` (browsers refuse an IP address as a
//! relying party), on SQLite and PostgreSQL: a responder signs in with password and TOTP,
//! adds a passkey on the account page, signs in with it alone from `/login` and as the second
//! factor after the password; an assertion Chromium makes on another origin (a page on
//! another port of `localhost`, relaying our challenge) is refused; and a cloned authenticator
//! (the credential exported and imported into a second virtual authenticator with its
//! counter set back) is refused and audited. Every page passes axe-core and no CSP
//! violation is reported.

use std::time::Duration;

use embargo_app::passkeys;
use embargo_domain::Role;
use embargo_test_support::thirtyfour::prelude::*;
use embargo_test_support::{Browser, both_backends, http_request};
use serde_json::{Value, json};

use crate::common::driver::{click, fill, submit};
use crate::common::*;

/// Waits until the page's address contains `part`, or the status line of `block` says
/// something (then panics with it).
async fn wait_for_url(driver: &WebDriver, part: &str, block: &str) {
    for _ in 0..400 {
        if driver.current_url().await.unwrap().as_str().contains(part) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let status = status_of(driver, block).await;
    panic!("never reached {part}: at {}, status {status:?}", driver.current_url().await.unwrap());
}

async fn status_of(driver: &WebDriver, block: &str) -> String {
    match driver.find(By::Css(format!("{block} .passkey-status"))).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the status line of `block` says something other than the waiting message.
async fn wait_for_status(driver: &WebDriver, block: &str) -> String {
    for _ in 0..400 {
        let status = status_of(driver, block).await;
        if !status.is_empty() && !status.starts_with("Waiting") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{block} never answered");
}

async fn axe_clean(browser: &Browser, page: &str) {
    let serious = browser.axe_serious().await;
    assert!(serious.is_empty(), "axe-core finds serious problems on {page}: {serious:?}");
}

/// A virtual CTAP2 authenticator inside the device (like a laptop's), which keeps
/// discoverable credentials and verifies its user.
async fn virtual_authenticator(browser: &Browser) -> String {
    let answer = browser
        .session_command(
            "POST",
            "webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        )
        .await
        .expect("a virtual authenticator (chromedriver's WebAuthn extension)");
    answer.as_str().expect("its id").to_owned()
}

/// Serves one fixed page on another port of `localhost`: another origin, same relying party.
async fn elsewhere() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let page = "<!doctype html><html lang=en><title>Elsewhere</title><p>Another site.</p></html>";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (base, task)
}

/// Has Chromium answer `options` (as the server sent them) on the page open now.
async fn assertion_here(driver: &WebDriver, options: &Value) -> String {
    let script = r#"
        const [options, done] = arguments;
        const bytes = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
        const text = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        const key = options.publicKey;
        key.challenge = bytes(key.challenge);
        navigator.credentials.get({ publicKey: key }).then((c) => done(JSON.stringify({
            id: c.id, rawId: text(c.rawId), type: c.type, extensions: {},
            response: { authenticatorData: text(c.response.authenticatorData), clientDataJSON: text(c.response.clientDataJSON),
                        signature: text(c.response.signature), userHandle: text(c.response.userHandle) },
        })), (e) => done("failed: " + e.name + ": " + e.message));
    "#;
    let answer = driver.execute_async(script, vec![options.clone()]).await.unwrap();
    answer.json().as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_and_sign_in_and_refuse_other_origins_and_clones_in_chromium() {
    let Some(browser) = Browser::start().await else { return };
    browser.resize(1280, 900).await;
    let (other_origin, other_server) = elsewhere().await;
    for db in both_backends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://localhost:{}", addr.port());
        let web = web_with(&db, |c| c.public_url = base.clone()).await;
        create_user(&web, "ada@team.test", Role::Responder).await;
        let server = tokio::spawn(embargo_web::serve(web.app.clone(), listener, std::future::pending()));
        let violations = embargo_web::csp_violations();
        let driver = browser.driver();
        driver.delete_all_cookies().await.unwrap();
        let authenticator = virtual_authenticator(&browser).await;

        // Password, then TOTP set up (the instance requires a second factor).
        driver.goto(format!("{base}/login")).await.unwrap();
        axe_clean(&browser, "the sign-in page").await;
        fill(driver, "email", "ada@team.test").await;
        fill(driver, "password", PASSWORD).await;
        submit(driver, "form[action='/login'] button[type=submit]").await;
        let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
        fill(driver, "code", &embargo_app::sessions::totp_code(&secret, web.app.now()).unwrap()).await;
        submit(driver, "form[action='/login/totp'] button[type=submit]").await;
        submit(driver, "a.button.primary").await;

        // A passkey added on the account page.
        driver.goto(format!("{base}/account")).await.unwrap();
        fill(driver, "passkey-name", "Virtual laptop").await;
        click(driver, "#passkey-register .passkey-go").await;
        wait_for_url(driver, "done=passkey-added", "#passkey-register").await;
        let list = driver.find(By::Id("passkey-list")).await.unwrap().text().await.unwrap();
        assert!(list.contains("Virtual laptop") && list.contains("internal"), "{}: {list}", db.backend);
        axe_clean(&browser, "the account page with a passkey").await;
        let stored = browser
            .session_command("GET", &format!("webauthn/authenticator/{authenticator}/credentials"), None)
            .await
            .unwrap();
        let credential = stored[0].clone();
        assert_eq!(credential["isResidentCredential"], true, "a discoverable credential");

        // Signed out, the passkey alone signs in from /login.
        driver.delete_all_cookies().await.unwrap();
        web.clock.advance_secs(60);
        driver.goto(format!("{base}/login")).await.unwrap();
        click(driver, "#passkey-sign-in .passkey-go").await;
        wait_for_url(driver, "/inbox", "#passkey-sign-in").await;

        // Password, then the passkey as the second factor (no TOTP code asked).
        driver.delete_all_cookies().await.unwrap();
        web.clock.advance_secs(60);
        driver.goto(format!("{base}/login?next=/account")).await.unwrap();
        fill(driver, "email", "ada@team.test").await;
        fill(driver, "password", PASSWORD).await;
        submit(driver, "form[action='/login'] button[type=submit]").await;
        axe_clean(&browser, "the second factor with a passkey").await;
        click(driver, "#passkey-second-factor .passkey-go").await;
        wait_for_url(driver, "/account", "#passkey-second-factor").await;
        let list = driver.find(By::Id("passkey-list")).await.unwrap().text().await.unwrap();
        assert!(!list.contains("never"), "{}: last used is shown: {list}", db.backend);

        // Another origin: a page on another port relays a challenge of ours; Chromium signs
        // for the relying party `localhost` (as it may), but the origin it records is the
        // other page's, and the server refuses it.
        let start = tokio::task::spawn_blocking(move || {
            http_request(addr, "POST", "/login/passkey/options", &[("Content-Type", "application/json")], b"")
        })
        .await
        .unwrap();
        assert_eq!(start.status, 200, "{}", start.body);
        let cookie = start.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
        let options: Value = serde_json::from_str(&start.body).unwrap();
        driver.goto(&other_origin).await.unwrap();
        let answer = assertion_here(driver, &options).await;
        assert!(!answer.starts_with("failed"), "Chromium made no assertion: {answer}");
        assert!(answer.contains(&credential["credentialId"].as_str().unwrap().to_owned()) || answer.contains("rawId"));
        let refused = tokio::task::spawn_blocking(move || {
            http_request(
                addr,
                "POST",
                "/login/passkey",
                &[("Content-Type", "application/json"), ("Cookie", &cookie)],
                answer.as_bytes(),
            )
        })
        .await
        .unwrap();
        assert_eq!(refused.status, 422, "{}: {}", db.backend, refused.body);
        assert!(refused.body.contains("origin"), "{}", refused.body);
        assert!(refused.header("set-cookie").is_none_or(|c| !c.starts_with("embargo_session=")));

        // A cloned authenticator: the credential, exported, in a second authenticator whose
        // counter starts over.
        browser.session_command("DELETE", &format!("webauthn/authenticator/{authenticator}"), None).await.unwrap();
        let clone = virtual_authenticator(&browser).await;
        let mut copy = credential.clone();
        copy["signCount"] = json!(0);
        browser
            .session_command("POST", &format!("webauthn/authenticator/{clone}/credential"), Some(copy))
            .await
            .expect("the copied credential");
        driver.delete_all_cookies().await.unwrap();
        driver.goto(format!("{base}/login")).await.unwrap();
        click(driver, "#passkey-sign-in .passkey-go").await;
        let status = wait_for_status(driver, "#passkey-sign-in").await;
        assert!(status.contains("counter went back"), "{}: {status}", db.backend);
        assert!(driver.current_url().await.unwrap().as_str().ends_with("/login"));
        let admin = embargo_domain::Actor::LocalAdmin { os_user: "test".into() };
        let entries = embargo_app::audit::list(&web.app, &admin, 0, 10_000).await.unwrap();
        assert!(entries.iter().any(|e| e.action == "auth.passkey.cloned"), "{}: not audited", db.backend);
        let origin_refused = entries.iter().any(|e| e.action == "auth.passkey.fail" && e.details.contains("origin"));
        assert!(origin_refused, "{}: the other origin's refusal is audited", db.backend);
        // The stored counter did not go back.
        let kept = passkeys::list(&web.app, &actor_of(&web, "ada@team.test").await).await.unwrap();
        assert!(kept[0].sign_count >= 2, "{}: {}", db.backend, kept[0].sign_count);

        browser.session_command("DELETE", &format!("webauthn/authenticator/{clone}"), None).await.unwrap();
        assert_eq!(embargo_web::csp_violations(), violations, "CSP violations reported");
        server.abort();
    }
    other_server.abort();
    browser.quit().await;
}

async fn actor_of(web: &Web, email: &str) -> embargo_domain::Actor {
    let admin = embargo_domain::Actor::LocalAdmin { os_user: "test".into() };
    let users = embargo_app::accounts::list_users(&web.app, &admin).await.unwrap();
    let user = users.into_iter().find(|u| u.email == email).unwrap();
    embargo_domain::Actor::User { id: user.id, role: user.role }
}
