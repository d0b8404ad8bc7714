//! Passkeys (issue 17, ADR 28), each on SQLite and PostgreSQL, answered by a software
//! authenticator (`SoftPasskey`) so that answers no honest browser sends can be tried:
//! registration, password-less sign-in, the second factor, a cloned authenticator's counter,
//! another origin, replayed, expired and foreign ceremonies, disabled accounts, and the
//! admin's requirement.

use embargo_app::sessions::Session;
use embargo_app::{App, AppError, accounts, passkeys, sessions};
use embargo_domain::{Actor, Role};
use embargo_test_support::{SoftPasskey, both_backends};

use crate::audit_actions;
use crate::common::{Instance, instance_with};

const PASSWORD: &str = "correct horse battery staple";
const ORIGIN: &str = "http://localhost:8080";

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "root".into() }
}

async fn setup(db: embargo_test_support::TestDb) -> Instance {
    instance_with(db, |c| {
        c.public_url = ORIGIN.into();
        c.web.require_totp = false;
    })
    .await
}

async fn user(app: &App, email: &str, role: Role) -> Actor {
    let id = accounts::create_user(app, &local(), email, role, Some(PASSWORD)).await.unwrap();
    Actor::User { id, role }
}

async fn signed_in(app: &App, email: &str) -> Session {
    let outcome = sessions::sign_in_password(app, email, PASSWORD, "192.0.2.1", "test", None).await.unwrap();
    sessions::session(app, &outcome.token).await.unwrap().unwrap()
}

/// Registers a soft passkey for the session's account.
async fn register(app: &App, session: &Session, name: &str) -> SoftPasskey {
    let options = passkeys::start_registration(app, session).await.unwrap();
    let (key, answer) = SoftPasskey::register(&options, ORIGIN);
    passkeys::finish_registration(app, session, name, &answer).await.unwrap();
    key
}

async fn passwordless(app: &App, key: &mut SoftPasskey, origin: &str) -> Result<passkeys::PasskeySignIn, AppError> {
    let (cookie, options) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
    let answer = key.assert(&options, origin);
    passkeys::finish_passwordless(app, &cookie, &answer, "192.0.2.9", "test").await
}

#[tokio::test]
async fn a_passkey_registers_then_signs_in_alone_and_as_the_second_factor() {
    for db in both_backends() {
        let it = setup(db).await;
        let app = &it.app;
        let me = user(app, "ada@example.org", Role::Responder).await;
        let session = signed_in(app, "ada@example.org").await;
        let mut key = register(app, &session, "  Laptop  ").await;

        let list = passkeys::list(app, &me).await.unwrap();
        assert_eq!(list.len(), 1, "{}", it.db.backend);
        assert_eq!((list[0].name.as_str(), list[0].transports.clone()), ("Laptop", vec!["internal".to_owned()]));
        assert_eq!(list[0].last_used_at, None);
        // The same authenticator cannot register twice (its credential is excluded and unique).
        let options = passkeys::start_registration(app, &session).await.unwrap();
        let excluded = options["publicKey"]["excludeCredentials"].as_array().unwrap();
        assert_eq!(excluded.len(), 1, "{}", it.db.backend);
        assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");

        // Password-less: the account is found by the authenticator's user handle.
        it.clock.advance_secs(60);
        let done = passwordless(app, &mut key, ORIGIN).await.unwrap();
        assert_eq!(done.email, "ada@example.org");
        let full = sessions::session(app, &done.token).await.unwrap().unwrap();
        assert_eq!(full.actor(), Some(me.clone()), "{}", it.db.backend);
        let list = passkeys::list(app, &me).await.unwrap();
        assert_eq!((list[0].sign_count, list[0].last_used_at.is_some()), (1, true), "{}", it.db.backend);

        // With a passkey, the password alone no longer signs in: the passkey completes it.
        let outcome =
            sessions::sign_in_password(app, "ada@example.org", PASSWORD, "192.0.2.1", "t", None).await.unwrap();
        assert!(outcome.needs_totp && outcome.passkeys && !outcome.must_enrol, "{}", it.db.backend);
        let half = sessions::session(app, &outcome.token).await.unwrap().unwrap();
        assert_eq!(half.actor(), None);
        let options = passkeys::start_second_factor(app, &half).await.unwrap();
        assert_eq!(options["publicKey"]["allowCredentials"].as_array().unwrap().len(), 1);
        let answer = key.assert(&options, ORIGIN);
        let done = passkeys::finish_second_factor(app, &half, &answer, "192.0.2.1", None).await.unwrap();
        // The session is promoted under a new token; the old one is worthless.
        assert!(sessions::session(app, &outcome.token).await.unwrap().is_none(), "{}", it.db.backend);
        assert_eq!(sessions::session(app, &done.token).await.unwrap().unwrap().actor(), Some(me.clone()));

        // Renaming and removing are the owner's, audited; another account sees nothing of it.
        let other = user(app, "bob@example.org", Role::Responder).await;
        let id = list[0].id;
        assert!(matches!(passkeys::rename(app, &other, id, "mine").await, Err(AppError::NotFound(_))));
        assert!(matches!(passkeys::remove(app, &other, id).await, Err(AppError::NotFound(_))));
        assert!(matches!(passkeys::rename(app, &me, id, "a\nb").await, Err(AppError::Invalid(_))));
        passkeys::rename(app, &me, id, "Work laptop").await.unwrap();
        assert_eq!(passkeys::list(app, &me).await.unwrap()[0].name, "Work laptop");
        passkeys::remove(app, &me, id).await.unwrap();
        assert!(passkeys::list(app, &me).await.unwrap().is_empty());
        // A removed passkey signs in no more.
        assert!(matches!(passwordless(app, &mut key, ORIGIN).await, Err(AppError::Invalid(_))), "{}", it.db.backend);

        let entries = audit_actions(app).await;
        let subject = format!(
            "user:{}",
            match me {
                Actor::User { id, .. } => id,
                _ => unreachable!(),
            }
        );
        for action in ["auth.passkey.register", "auth.sign_in", "auth.passkey.rename", "auth.passkey.remove"] {
            assert!(
                entries.iter().any(|(a, act, s)| *a == me.to_string() && act == action && *s == subject),
                "{}: {action} not audited",
                it.db.backend
            );
        }
    }
}

#[tokio::test]
async fn a_cloned_authenticator_whose_counter_goes_back_is_refused_and_audited() {
    for db in both_backends() {
        let it = setup(db).await;
        let app = &it.app;
        let me = user(app, "ada@example.org", Role::Responder).await;
        let session = signed_in(app, "ada@example.org").await;
        let mut key = register(app, &session, "Key").await;
        key.counter = 7;
        passwordless(app, &mut key, ORIGIN).await.unwrap();
        // A copy of the key made earlier: its counter is behind the one the server saw.
        let mut clone = key.clone();
        clone.counter = 5;
        let err = passwordless(app, &mut clone, ORIGIN).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("counter")), "{}: {err}", it.db.backend);
        // The same counter again (a replayed or copied state) is refused too.
        clone.counter = 8;
        passwordless(app, &mut clone, ORIGIN).await.unwrap();
        clone.counter = 8;
        assert!(passwordless(app, &mut clone, ORIGIN).await.is_err(), "{}", it.db.backend);
        // As the second factor as well.
        let outcome =
            sessions::sign_in_password(app, "ada@example.org", PASSWORD, "192.0.2.1", "t", None).await.unwrap();
        let half = sessions::session(app, &outcome.token).await.unwrap().unwrap();
        let options = passkeys::start_second_factor(app, &half).await.unwrap();
        clone.counter = 3;
        let answer = clone.assert(&options, ORIGIN);
        assert!(passkeys::finish_second_factor(app, &half, &answer, "192.0.2.1", None).await.is_err());
        assert_eq!(passkeys::list(app, &me).await.unwrap()[0].sign_count, 8, "{}", it.db.backend);
        let cloned = audit_actions(app).await.into_iter().filter(|(_, a, _)| a == "auth.passkey.cloned").count();
        assert_eq!(cloned, 3, "{}", it.db.backend);
    }
}

#[tokio::test]
async fn another_origin_a_replayed_expired_or_foreign_ceremony_is_refused() {
    for db in both_backends() {
        let it = setup(db).await;
        let app = &it.app;
        user(app, "ada@example.org", Role::Responder).await;
        let session = signed_in(app, "ada@example.org").await;
        let mut key = register(app, &session, "Key").await;

        // Another origin (a look-alike site relaying the challenge), and another relying party.
        let err = passwordless(app, &mut key, "http://localhost:8081").await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("origin")), "{}: {err}", it.db.backend);
        let err = passwordless(app, &mut key, "https://evil.example").await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("origin")), "{}: {err}", it.db.backend);
        let (cookie, options) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
        let answer = key.assert_for(&options, ORIGIN, "evil.example");
        assert!(passkeys::finish_passwordless(app, &cookie, &answer, "192.0.2.9", "t").await.is_err());

        // A ceremony answers once: the same good answer again is refused.
        let (cookie, options) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
        let answer = key.assert(&options, ORIGIN);
        passkeys::finish_passwordless(app, &cookie, &answer, "192.0.2.9", "t").await.unwrap();
        let err = passkeys::finish_passwordless(app, &cookie, &answer, "192.0.2.9", "t").await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("expired or was used")), "{err}");
        // Another browser's cookie cannot take it.
        let (_, options) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
        let answer = key.assert(&options, ORIGIN);
        assert!(passkeys::finish_passwordless(app, "not-the-cookie", &answer, "192.0.2.9", "t").await.is_err());
        // Five minutes is the limit.
        let (cookie, options) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
        let answer = key.assert(&options, ORIGIN);
        it.clock.advance_secs(301);
        let err = passkeys::finish_passwordless(app, &cookie, &answer, "192.0.2.9", "t").await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("expired")), "{}: {err}", it.db.backend);

        // A second-factor ceremony is bound to its session: another session cannot answer it.
        let a = sessions::sign_in_password(app, "ada@example.org", PASSWORD, "192.0.2.1", "t", None).await.unwrap();
        let b = sessions::sign_in_password(app, "ada@example.org", PASSWORD, "192.0.2.1", "t", None).await.unwrap();
        let a = sessions::session(app, &a.token).await.unwrap().unwrap();
        let b = sessions::session(app, &b.token).await.unwrap().unwrap();
        let options = passkeys::start_second_factor(app, &a).await.unwrap();
        let answer = key.assert(&options, ORIGIN);
        assert!(passkeys::finish_second_factor(app, &b, &answer, "192.0.2.1", None).await.is_err());
        // A registration answered for another origin is refused and stores nothing.
        let options = passkeys::start_registration(app, &session).await.unwrap();
        let (_, answer) = SoftPasskey::register(&options, "http://127.0.0.1:8080");
        assert!(passkeys::finish_registration(app, &session, "x", &answer).await.is_err());
        // Garbage is refused as such.
        let (cookie, _) = passkeys::start_passwordless(app, "192.0.2.9").await.unwrap();
        assert!(matches!(
            passkeys::finish_passwordless(app, &cookie, "{\"id\": 1}", "192.0.2.9", "t").await,
            Err(AppError::Invalid(_))
        ));
        let fails = audit_actions(app).await.into_iter().filter(|(_, a, _)| a == "auth.passkey.fail").count();
        assert!(fails >= 3, "{}: {fails}", it.db.backend);
    }
}

#[tokio::test]
async fn disabled_accounts_lose_passkey_sign_in_and_admins_can_require_passkeys() {
    for db in both_backends() {
        let it = setup(db).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        let me = user(app, "ada@example.org", Role::Responder).await;
        let session = signed_in(app, "ada@example.org").await;
        register(app, &session, "Key").await;

        // Only admins require passkeys, of accounts that exist.
        assert!(matches!(passkeys::set_required(app, &me, "ada@example.org", true).await, Err(AppError::Forbidden(_))));
        assert!(matches!(
            passkeys::set_required(app, &admin, "nobody@example.org", true).await,
            Err(AppError::NotFound(_))
        ));
        assert!(passkeys::set_required(app, &admin, "ADA@example.org", true).await.unwrap());
        // Required with a passkey: a TOTP or recovery code no longer completes the sign-in.
        let outcome =
            sessions::sign_in_password(app, "ada@example.org", PASSWORD, "192.0.2.1", "t", None).await.unwrap();
        let half = sessions::session(app, &outcome.token).await.unwrap().unwrap();
        assert!(!half.totp_allowed());
        assert!(matches!(
            sessions::sign_in_totp(app, &half, "123456", "192.0.2.1", None).await,
            Err(AppError::Conflict(_))
        ));
        // The last passkey of a required account cannot be removed.
        let id = passkeys::list(app, &me).await.unwrap()[0].id;
        assert!(matches!(passkeys::remove(app, &me, id).await, Err(AppError::Conflict(_))));
        // Required without one (after a reset of the second factor): sent to register one.
        accounts::reset_totp(app, &admin, "ada@example.org").await.unwrap();
        assert!(passkeys::list(app, &me).await.unwrap().is_empty(), "{}", it.db.backend);
        let fresh = signed_in(app, "ada@example.org").await;
        assert!(fresh.must_register_passkey(), "{}", it.db.backend);
        let mut key = register(app, &fresh, "New key").await;
        let done = passwordless(app, &mut key, ORIGIN).await.unwrap();
        assert!(!sessions::session(app, &done.token).await.unwrap().unwrap().must_register_passkey());

        // Disabled: the passkey signs in no more, and nothing of its sign-in is left.
        accounts::disable_user(app, &admin, "ada@example.org").await.unwrap();
        let err = passwordless(app, &mut key, ORIGIN).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid(_)), "{}", it.db.backend);
        accounts::enable_user(app, &admin, "ada@example.org").await.unwrap();
        passwordless(app, &mut key, ORIGIN).await.unwrap();
        // Deleted: the passkeys go with the account.
        passkeys::set_required(app, &admin, "ada@example.org", false).await.unwrap();
        accounts::delete_user(app, &admin, "ada@example.org").await.unwrap();
        assert!(passwordless(app, &mut key, ORIGIN).await.is_err(), "{}", it.db.backend);

        let entries = audit_actions(app).await;
        for action in ["user.passkey.require", "user.passkey.unrequire"] {
            assert!(entries.iter().any(|(a, act, _)| *a == admin.to_string() && act == action), "{action}");
        }
    }
}
