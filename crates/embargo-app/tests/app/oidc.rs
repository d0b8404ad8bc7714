//! Single sign-on against a real OpenID provider (`oidc-provider` under node, started on
//! loopback), on both backends: a linked account signs in; an unknown subject, a known
//! e-mail address with another subject, another issuer, a replayed callback, a tampered ID
//! token, another browser's state and a disabled account are refused; linking and unlinking
//! are audited; an invitation is accepted through the provider.

use embargo_app::oidc::{self, Callback, Finished, InvitationKind};
use embargo_app::{AppError, accounts, audit, sessions};
use embargo_domain::{Actor, Role};
use embargo_test_support::oidc_provider::{Account, OidcProvider};
use embargo_test_support::{both_backends, require};

use super::common::{Instance, instance_with};

const CLIENT: &str = "embargo-test";
const SECRET: &str = "a-client-secret-of-the-test-0123456789";
const PUBLIC_URL: &str = "http://127.0.0.1:18443";

fn provider() -> Option<OidcProvider> {
    let accounts = [
        Account { subject: "sub-alice".into(), email: "alice@example.org".into() },
        Account { subject: "sub-mallory".into(), email: "bob@example.org".into() },
        Account { subject: "sub-carol".into(), email: "carol@example.org".into() },
    ];
    let redirect = format!("{PUBLIC_URL}/login/oidc/callback");
    require("node with oidc-provider (.ci/node)", OidcProvider::start(CLIENT, SECRET, &redirect, &accounts))
}

async fn instance(db: embargo_test_support::TestDb, issuer: &str) -> Instance {
    let issuer = issuer.to_owned();
    let it = instance_with(db, move |config| {
        config.public_url = PUBLIC_URL.into();
        config.oidc.issuer = issuer;
        config.oidc.client_id = CLIENT.into();
        config.oidc.client_secret = embargo_app::config::Secret::new(SECRET);
        config.oidc.display_name = "Example SSO".into();
        // (The second factor after SSO has its own test.)
        config.web.require_totp = false;
    })
    .await;
    // The provider's tokens carry the real time: the test clock stands at it.
    it.clock.set(&jiff::Timestamp::now().to_string());
    it
}

/// The query of the URL the provider sent the browser back to.
fn callback_of(url: &str) -> Callback {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mut callback = Callback::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "state" => callback.state = value,
            "code" => callback.code = Some(value),
            "error" => callback.error = Some(value),
            "iss" => callback.iss = Some(value),
            _ => {}
        }
    }
    callback
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Signs in at the provider as `subject` after starting a sign-in: (browser cookie, callback).
async fn through_provider(it: &Instance, provider: &OidcProvider, subject: &str) -> (String, Callback) {
    let started = oidc::begin_sign_in(&it.app, Some("/inbox"), "192.0.2.10").await.unwrap();
    let back = provider.authorize(&started.url, subject).unwrap();
    assert!(back.starts_with(&format!("{PUBLIC_URL}/login/oidc/callback?")), "{back}");
    (started.browser, callback_of(&back))
}

async fn actions(it: &Instance) -> Vec<String> {
    audit::list(&it.app, &Actor::System("test"), 0, 10_000).await.unwrap().into_iter().map(|e| e.action).collect()
}

fn refused(result: Result<Finished, AppError>) -> String {
    match result {
        Err(AppError::Invalid(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn single_sign_on_with_a_real_provider_links_by_subject_and_refuses_everything_else() {
    let Some(provider) = provider() else { return };
    for db in both_backends() {
        let it = instance(db, &provider.issuer).await;
        let app = &it.app;
        let system = Actor::LocalAdmin { os_user: "test".into() };
        let admin =
            accounts::create_user(app, &system, "admin@example.org", Role::Admin, Some("a long admin password"))
                .await
                .unwrap();
        let admin = Actor::User { id: admin, role: Role::Admin };
        accounts::create_user(app, &admin, "alice@example.org", Role::Responder, Some("alice's long password"))
            .await
            .unwrap();
        accounts::create_user(app, &admin, "bob@example.org", Role::Responder, Some("bob's long password"))
            .await
            .unwrap();

        // Nobody is linked yet: alice's identity at the provider is refused although its
        // e-mail address is her account's.
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        let message = refused(oidc::finish(app, Some(&browser), &callback, "test").await);
        assert!(message.contains("not linked"), "{message}");

        // Alice signs in with her password and links her identity from her account page.
        let outcome =
            sessions::sign_in_password(app, "alice@example.org", "alice's long password", "1.2.3.4", "t", None)
                .await
                .unwrap();
        assert!(!outcome.needs_totp);
        let session = sessions::session(app, &outcome.token).await.unwrap().unwrap();
        let started = oidc::begin_link(app, &session).await.unwrap();
        let back = provider.authorize(&started.url, "sub-alice").unwrap();
        let linked = oidc::finish(app, Some(&started.browser), &callback_of(&back), "test").await.unwrap();
        assert!(matches!(linked, Finished::Linked));
        let alice_actor = session.actor().unwrap();
        let mine = oidc::my_identities(app, &alice_actor).await.unwrap();
        assert_eq!(
            (mine.len(), mine[0].subject.as_str(), mine[0].issuer.as_str()),
            (1, "sub-alice", provider.issuer.as_str())
        );
        assert!(actions(&it).await.contains(&"user.oidc.link".to_owned()));

        // Now she signs in through the provider: a full session (no TOTP set up, none required).
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        let Finished::SignedIn { token, needs_totp, next, .. } =
            oidc::finish(app, Some(&browser), &callback, "test").await.unwrap()
        else {
            panic!("not signed in")
        };
        assert!(!needs_totp);
        assert_eq!(next.as_deref(), Some("/inbox"));
        let signed_in = sessions::session(app, &token).await.unwrap().unwrap();
        assert_eq!(signed_in.email(), "alice@example.org");
        assert!(signed_in.actor().is_some());

        // The same callback again (a replayed code and state): refused, no session.
        refused(oidc::finish(app, Some(&browser), &callback, "test").await);
        // The state of one browser delivered to another: refused.
        let (_, callback) = through_provider(&it, &provider, "sub-alice").await;
        refused(oidc::finish(app, Some("another browser's cookie"), &callback, "test").await);
        refused(oidc::finish(app, None, &callback, "test").await);
        // A state that was never issued, with a real code.
        let (browser, mut callback) = through_provider(&it, &provider, "sub-alice").await;
        callback.state = "made-up-state".into();
        refused(oidc::finish(app, Some(&browser), &callback, "test").await);

        // Bob's e-mail address at the provider, another subject: not bob.
        let (browser, callback) = through_provider(&it, &provider, "sub-mallory").await;
        let message = refused(oidc::finish(app, Some(&browser), &callback, "test").await);
        assert!(message.contains("not linked"), "{message}");
        assert!(actions(&it).await.contains(&"auth.oidc.unlinked".to_owned()));

        // Every tampering with the ID token between the provider and us is refused, and
        // none of them signs anybody in.
        for mode in ["signature", "claim", "none", "nonce", "aud", "iss", "expired", "azp"] {
            provider.tamper(mode);
            let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
            let result = oidc::finish(app, Some(&browser), &callback, "test").await;
            provider.tamper("off");
            assert!(matches!(result, Err(AppError::Invalid(_))), "{mode}: {result:?}");
        }
        // A key rotation at the provider: the new key is fetched and the sign-in works.
        provider.tamper("rotate");
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        let rotated = oidc::finish(app, Some(&browser), &callback, "test").await;
        provider.tamper("off");
        assert!(matches!(rotated, Ok(Finished::SignedIn { .. })), "{rotated:?}");

        // A disabled account cannot sign in through the provider.
        accounts::disable_user(app, &admin, "alice@example.org").await.unwrap();
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        let message = refused(oidc::finish(app, Some(&browser), &callback, "test").await);
        assert!(message.contains("disabled"), "{message}");
        assert!(sessions::session(app, &token).await.unwrap().is_none());
        accounts::enable_user(app, &admin, "alice@example.org").await.unwrap();
        // (Disabling ended her sessions; she signs in again.)
        let outcome =
            sessions::sign_in_password(app, "alice@example.org", "alice's long password", "1.2.3.4", "t", None)
                .await
                .unwrap();
        let session = sessions::session(app, &outcome.token).await.unwrap().unwrap();

        // A flow older than ten minutes has expired.
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        it.clock.advance_secs(11 * 60);
        refused(oidc::finish(app, Some(&browser), &callback, "test").await);
        it.clock.set(&jiff::Timestamp::now().to_string());

        // An admin unlinks her: she can no longer sign in through the provider.
        let bob = Actor::User {
            id: accounts::list_users(app, &admin)
                .await
                .unwrap()
                .iter()
                .find(|u| u.email == "bob@example.org")
                .unwrap()
                .id,
            role: Role::Responder,
        };
        assert!(matches!(oidc::unlink(app, &bob, "alice@example.org").await, Err(AppError::Forbidden(_))));
        assert_eq!(oidc::unlink(app, &admin, "alice@example.org").await.unwrap(), 1);
        assert!(actions(&it).await.contains(&"user.oidc.unlink".to_owned()));
        let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
        assert!(refused(oidc::finish(app, Some(&browser), &callback, "test").await).contains("not linked"));

        // Linking an identity that another account holds is refused.
        let bob_session =
            sessions::sign_in_password(app, "bob@example.org", "bob's long password", "1.2.3.4", "t", None)
                .await
                .unwrap();
        let bob_session = sessions::session(app, &bob_session.token).await.unwrap().unwrap();
        let started = oidc::begin_link(app, &bob_session).await.unwrap();
        let back = provider.authorize(&started.url, "sub-carol").unwrap();
        assert!(matches!(
            oidc::finish(app, Some(&started.browser), &callback_of(&back), "t").await,
            Ok(Finished::Linked)
        ));
        let started = oidc::begin_link(app, &session).await.unwrap();
        let back = provider.authorize(&started.url, "sub-carol").unwrap();
        assert!(matches!(
            oidc::finish(app, Some(&started.browser), &callback_of(&back), "t").await,
            Err(AppError::Conflict(_))
        ));
        // A link started by a session that signed out since is refused.
        let started = oidc::begin_link(app, &session).await.unwrap();
        sessions::sign_out(app, &session).await.unwrap();
        let back = provider.authorize(&started.url, "sub-alice").unwrap();
        refused(oidc::finish(app, Some(&started.browser), &callback_of(&back), "t").await);
        assert!(oidc::my_identities(app, &alice_actor).await.unwrap().is_empty());

        // An invitation (a partner contact's) accepted through the provider: linked and
        // signed in, no password set; the link then no longer works.
        let token = "a".repeat(64);
        let partner = {
            use sha2::Digest;
            let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
            let mut tx = app.store.begin().await.unwrap();
            let id = embargo_store::users::create(&mut tx, "dana@partner.example", Role::Partner, None, app.now())
                .await
                .unwrap();
            let expires = app.now().checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
            embargo_store::partners::invite(&mut tx, id, &hash, app.now(), expires).await.unwrap();
            tx.commit().await.unwrap();
            id
        };
        let started = oidc::begin_invitation(app, InvitationKind::Partner, &token).await.unwrap();
        let back = provider.authorize(&started.url, "sub-dana").unwrap();
        let Finished::SignedIn { token: session_token, role, .. } =
            oidc::finish(app, Some(&started.browser), &callback_of(&back), "t").await.unwrap()
        else {
            panic!("the invitation did not sign in")
        };
        assert_eq!(role, Role::Partner);
        let dana = sessions::session(app, &session_token).await.unwrap().unwrap();
        assert_eq!(dana.user_id(), partner);
        assert!(dana.record.user.password_hash.is_none());
        assert!(matches!(
            oidc::begin_invitation(app, InvitationKind::Partner, &token).await,
            Err(AppError::NotFound(_))
        ));
        assert!(matches!(oidc::begin_invitation(app, InvitationKind::Fix, &token).await, Err(AppError::NotFound(_))));
    }
}

#[tokio::test]
async fn the_local_second_factor_still_counts_after_single_sign_on_unless_the_provider_proves_one() {
    let Some(provider) = provider() else { return };
    for trust in [false, true] {
        for db in both_backends() {
            let issuer = provider.issuer.clone();
            let it = instance_with(db, move |config| {
                config.public_url = PUBLIC_URL.into();
                config.oidc.issuer = issuer;
                config.oidc.client_id = CLIENT.into();
                config.oidc.client_secret = embargo_app::config::Secret::new(SECRET);
                config.oidc.trust_provider_mfa = trust;
                config.web.require_totp = true;
            })
            .await;
            it.clock.set(&jiff::Timestamp::now().to_string());
            let app = &it.app;
            let id = accounts::create_user(
                app,
                &Actor::LocalAdmin { os_user: "t".into() },
                "alice@example.org",
                Role::Admin,
                None,
            )
            .await
            .unwrap();
            let mut tx = app.store.begin().await.unwrap();
            embargo_store::oidc::link(&mut tx, id, &provider.issuer, "sub-alice", "alice@example.org", app.now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            for (mode, proves_mfa) in [("off", false), ("mfa", true)] {
                provider.tamper(mode);
                let (browser, callback) = through_provider(&it, &provider, "sub-alice").await;
                let finished = oidc::finish(app, Some(&browser), &callback, "t").await;
                provider.tamper("off");
                let Ok(Finished::SignedIn { token, needs_totp, must_enrol, .. }) = finished else {
                    panic!("{mode}: {finished:?}")
                };
                let expected = !(trust && proves_mfa);
                assert_eq!(needs_totp, expected, "trust={trust} mode={mode}");
                assert_eq!(must_enrol, expected);
                let session = sessions::session(app, &token).await.unwrap().unwrap();
                assert_eq!(session.actor().is_some(), !expected, "a session waiting for TOTP acts as nobody");
            }
        }
    }
}

/// Starting a sign-in stores a flow, so an address may start `10 n` of them in 15 minutes
/// (`n` = `web.max_failed_logins`): the next is refused with the time to wait and audited,
/// and another address is not affected.
#[tokio::test]
async fn starting_single_sign_on_is_limited_per_address() {
    let Some(provider) = provider() else { return };
    for db in both_backends() {
        let backend = db.backend;
        let it = instance(db, &provider.issuer).await;
        let app = &it.app;
        let allowed = 10 * i64::from(app.config.web.max_failed_logins);
        for i in 0..allowed {
            oidc::begin_sign_in(app, None, "192.0.2.20")
                .await
                .unwrap_or_else(|e| panic!("{backend}: start {i}: {e:?}"));
        }
        match oidc::begin_sign_in(app, None, "192.0.2.20").await {
            Err(AppError::Throttled { retry_after_secs, .. }) => {
                assert!((1..=15 * 60).contains(&retry_after_secs), "{backend}: {retry_after_secs}")
            }
            other => panic!("{backend}: expected throttling, got {:?}", other.map(|s| s.url)),
        }
        assert!(actions(&it).await.iter().any(|a| a == "auth.throttled"), "{backend}");
        oidc::begin_sign_in(app, None, "192.0.2.21").await.expect("another address");
        // Password attempts from the throttled address are not affected.
        let refused = sessions::sign_in_password(app, "nobody@example.org", "wrong password", "192.0.2.20", "t", None)
            .await
            .unwrap_err();
        assert!(!matches!(refused, AppError::Throttled { .. }), "{backend}: {refused:?}");
    }
}
