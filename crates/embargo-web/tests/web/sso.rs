//! Single sign-on through the router, against a real OpenID provider (`oidc-provider` under
//! node on loopback), on both backends: the button, linking from the account page, signing
//! in (then the local TOTP), the flow cookie, and refusals shown as a page.

use axum::http::{StatusCode, header};
use embargo_domain::Role;
use embargo_test_support::oidc_provider::{Account, OidcProvider};
use embargo_test_support::{both_backends, require};

use super::common::*;

const PUBLIC_URL: &str = "http://127.0.0.1:18444";

fn flow_cookie(reply: &Reply) -> String {
    let value = reply.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(
        value.starts_with("embargo_oidc=") && value.contains("SameSite=Lax") && value.contains("HttpOnly"),
        "{value}"
    );
    value.split(';').next().unwrap().to_owned()
}

/// The path and query of the URL the provider sent the browser back to.
fn local(url: &str) -> String {
    url.strip_prefix(PUBLIC_URL).expect("back at Embargo").to_owned()
}

#[tokio::test]
async fn single_sign_on_through_the_router_with_a_real_provider() {
    let accounts = [
        Account { subject: "sub-alice".into(), email: "alice@example.org".into() },
        Account { subject: "sub-eve".into(), email: "alice@example.org".into() },
    ];
    let redirect = format!("{PUBLIC_URL}/login/oidc/callback");
    let Some(provider) = require(
        "node with oidc-provider (.ci/node)",
        OidcProvider::start("embargo-web", "web-secret-0123456789", &redirect, &accounts),
    ) else {
        return;
    };
    for db in both_backends() {
        let issuer = provider.issuer.clone();
        let web = web_with(&db, move |config| {
            config.public_url = PUBLIC_URL.into();
            config.oidc.issuer = issuer;
            config.oidc.client_id = "embargo-web".into();
            config.oidc.client_secret = embargo_app::config::Secret::new("web-secret-0123456789");
            config.oidc.display_name = "Example <ID>".into();
        })
        .await;
        web.clock.set(&jiff::Timestamp::now().to_string());
        let router = &web.router;
        create_user(&web, "alice@example.org", Role::Responder).await;

        // The sign-in page offers the button (its name escaped).
        let login = send(router, get("/login?next=%2Finbox", None)).await;
        assert!(login.body.contains("action=\"/login/oidc\""), "{}", login.body);
        assert!(
            login.body.contains("Sign in with Example &#60;ID&#62;")
                || login.body.contains("Sign in with Example &lt;ID&gt;"),
            "{}",
            login.body
        );
        assert!(!login.body.contains("Example <ID>"));

        // Alice signs in with her password and TOTP, and links her identity.
        let cookie = sign_in(&web, router, "alice@example.org").await;
        let account = send(router, get("/account", Some(&cookie))).await;
        assert!(account.body.contains("action=\"/account/oidc/link\""));
        let start = send(router, post("/account/oidc/link", Some(&cookie), &[])).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER);
        assert!(start.location().starts_with(&format!("{}/auth?", provider.issuer)), "{}", start.location());
        let flow = flow_cookie(&start);
        let back = provider.authorize(start.location(), "sub-alice").unwrap();
        let done = send(router, get(&local(&back), Some(&flow))).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("content=\"0; url=/account?done=oidc-linked\""), "{}", done.body);
        let account = send(router, get("/account", Some(&cookie))).await;
        assert!(
            account.body.contains("alice@example.org</td>") && account.body.contains("ask an admin"),
            "{}",
            account.body
        );

        // Signing in through the provider: the flow cookie, then a session that still needs
        // the TOTP code (the provider's second factor is not trusted by default).
        let start = send(router, post("/login/oidc", None, &[("next", "/inbox")])).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER);
        let flow = flow_cookie(&start);
        let back = provider.authorize(start.location(), "sub-alice").unwrap();
        let callback = local(&back);
        // Without the browser's flow cookie (another browser): refused.
        let refused = send(router, get(&callback, None)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("Sign-in refused"));
        // That spent the state: the right browser is refused too now.
        let again = send(router, get(&callback, Some(&flow))).await;
        assert_eq!(again.status, StatusCode::FORBIDDEN);

        let start = send(router, post("/login/oidc", None, &[("next", "/inbox")])).await;
        let flow = flow_cookie(&start);
        let back = provider.authorize(start.location(), "sub-alice").unwrap();
        let signed = send(router, get(&local(&back), Some(&flow))).await;
        assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
        assert!(signed.body.contains("url=/login/totp?next=%2Finbox"), "{}", signed.body);
        let session = signed.cookie().expect("a session cookie");
        assert!(session.starts_with("embargo_session="));
        let cleared =
            signed.headers.get_all(header::SET_COOKIE).iter().any(|v| {
                v.to_str().unwrap().starts_with("embargo_oidc=;") && v.to_str().unwrap().contains("Max-Age=0")
            });
        assert!(cleared, "the flow cookie is cleared");
        assert_eq!(send(router, get("/inbox", Some(&session))).await.location(), "/login/totp");
        let secret = totp_secret(&web, "alice@example.org").await;
        let code = embargo_app::sessions::totp_code(&secret, web.app.now()).unwrap();
        let full = send(router, post("/login/totp", Some(&session), &[("code", &code), ("next", "/inbox")])).await;
        assert_eq!((full.status, full.location()), (StatusCode::SEE_OTHER, "/inbox"));
        let full = full.cookie().unwrap();
        assert_eq!(send(router, get("/inbox", Some(&full))).await.status, StatusCode::OK);
        // The replayed callback: refused, no session.
        let replay = send(router, get(&local(&back), Some(&flow))).await;
        assert_eq!(replay.status, StatusCode::FORBIDDEN);
        assert!(replay.cookie().is_none());

        // Another identity with alice's address: not alice.
        let start = send(router, post("/login/oidc", None, &[])).await;
        let flow = flow_cookie(&start);
        let back = provider.authorize(start.location(), "sub-eve").unwrap();
        let eve = send(router, get(&local(&back), Some(&flow))).await;
        assert_eq!(eve.status, StatusCode::FORBIDDEN);
        assert!(eve.body.contains("not linked"), "{}", eve.body);
        assert!(eve.cookie().is_none());
        web.clock.advance_secs(30);
    }
}
