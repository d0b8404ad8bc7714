//! Offboarding and recovery (issue 12, item 8), each on SQLite and PostgreSQL: disabling
//! and deleting accounts, resets, recovery codes, product responders and report members,
//! renaming and deleting products; always permission-checked and audited, effective at
//! once, and never without an active admin.

use embargo_app::reports::{self, ReadPurpose};
use embargo_app::{App, AppError, accounts, sessions};
use embargo_domain::{Actor, Role, UserId};
use embargo_test_support::{both_backends, files_containing};

use crate::audit_actions;
use crate::common::{instance, instance_with, submission};

const PASSWORD: &str = "correct horse battery staple";

fn local() -> Actor {
    Actor::LocalAdmin { os_user: "root".into() }
}

async fn user(app: &App, email: &str, role: Role) -> Actor {
    let id = accounts::create_user(app, &local(), email, role, Some(PASSWORD)).await.unwrap();
    Actor::User { id, role }
}

fn id_of(actor: &Actor) -> UserId {
    match actor {
        Actor::User { id, .. } => *id,
        _ => unreachable!(),
    }
}

/// A full session (no second factor required in these tests unless asked).
async fn session_cookie(app: &App, email: &str) -> String {
    let outcome = sessions::sign_in_password(app, email, PASSWORD, "192.0.2.1", "test", None).await.unwrap();
    assert!(!outcome.needs_totp);
    outcome.token
}

#[tokio::test]
async fn disabling_an_account_ends_its_sessions_and_tokens_at_once() {
    for db in both_backends() {
        let it = instance_with(db, |c| c.web.require_totp = false).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        let leaver = user(app, "leaver@example.org", Role::Responder).await;
        let cookie = session_cookie(app, "leaver@example.org").await;
        let token = accounts::create_token(app, &admin, "leaver@example.org", "ci").await.unwrap();
        assert!(sessions::session(app, &cookie).await.unwrap().is_some());
        assert_eq!(accounts::authenticate_token(app, &token).await.unwrap(), Some(leaver.clone()));

        // Only admins offboard.
        assert!(matches!(accounts::disable_user(app, &leaver, "admin@example.org").await, Err(AppError::Forbidden(_))));
        let revoked = accounts::disable_user(app, &admin, "Leaver@Example.org").await.unwrap();
        assert_eq!((revoked.sessions, revoked.tokens), (1, 1), "{}", it.db.backend);
        // The very next request with the old cookie or token is refused, and so is a sign-in.
        assert!(sessions::session(app, &cookie).await.unwrap().is_none(), "{}", it.db.backend);
        assert!(accounts::authenticate_token(app, &token).await.unwrap().is_none(), "{}", it.db.backend);
        assert!(matches!(
            sessions::sign_in_password(app, "leaver@example.org", PASSWORD, "192.0.2.1", "test", None).await,
            Err(AppError::Invalid(_))
        ));
        assert!(matches!(accounts::disable_user(app, &admin, "leaver@example.org").await, Err(AppError::Conflict(_))));

        // Enabled again: it signs in anew, but the old cookie and token stay dead.
        accounts::enable_user(app, &admin, "leaver@example.org").await.unwrap();
        assert!(sessions::session(app, &cookie).await.unwrap().is_none());
        assert!(accounts::authenticate_token(app, &token).await.unwrap().is_none());
        let fresh = session_cookie(app, "leaver@example.org").await;
        assert!(sessions::session(app, &fresh).await.unwrap().is_some());

        let entries = audit_actions(app).await;
        let subject = format!("user:{}", id_of(&leaver));
        for action in ["user.disable", "user.enable"] {
            assert!(
                entries.contains(&(admin.to_string(), action.into(), subject.clone())),
                "{}: {action} not audited",
                it.db.backend
            );
        }
    }
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_disabled_or_deleted() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let first = user(app, "first@example.org", Role::Admin).await;
        for refused in [
            accounts::disable_user(app, &first, "first@example.org").await.map(|_| ()),
            accounts::delete_user(app, &local(), "first@example.org").await.map(|_| ()),
        ] {
            let err = refused.unwrap_err();
            assert!(matches!(err, AppError::Conflict(_)) && err.to_string().contains("last active admin"), "{err}");
        }
        // With a second admin, one may go; then the other is the last again.
        let second = user(app, "second@example.org", Role::Admin).await;
        accounts::disable_user(app, &second, "first@example.org").await.unwrap();
        let err = accounts::delete_user(app, &local(), "second@example.org").await.unwrap_err();
        assert!(err.to_string().contains("last active admin"), "{err}");
        let err = accounts::disable_user(app, &local(), "second@example.org").await.unwrap_err();
        assert!(err.to_string().contains("last active admin"), "{err}");
        // A disabled admin is not active: deleting it is fine.
        accounts::delete_user(app, &second, "first@example.org").await.unwrap();
    }
}

#[tokio::test]
async fn deleting_an_account_removes_its_access_and_keeps_its_history_attributed() {
    for db in both_backends() {
        let it = instance_with(db, |c| c.web.require_totp = false).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        let leaver = user(app, "leaver@example.org", Role::Responder).await;
        let product = accounts::create_product(app, &admin, "Widget").await.unwrap();
        accounts::add_product_responder(app, &admin, product, "leaver@example.org").await.unwrap();
        let first = reports::submit(app, &Actor::Reporter, submission("r@example.org", "One")).await.unwrap().reference;
        let second =
            reports::submit(app, &Actor::Reporter, submission("s@example.org", "Two")).await.unwrap().reference;
        reports::add_member(app, &admin, &first, "leaver@example.org").await.unwrap();
        reports::assign(app, &admin, &second, Some("leaver@example.org")).await.unwrap();
        reports::add_note(app, &leaver, &first, "the leaver's note").await.unwrap();
        let cookie = session_cookie(app, "leaver@example.org").await;
        let token = accounts::create_token(app, &admin, "leaver@example.org", "ci").await.unwrap();

        let done = accounts::delete_user(app, &admin, "leaver@example.org").await.unwrap();
        assert_eq!(
            (done.sessions, done.tokens, done.products, done.memberships, done.assignments),
            (1, 1, 1, 1, 1),
            "{}",
            it.db.backend
        );
        assert!(sessions::session(app, &cookie).await.unwrap().is_none());
        assert!(accounts::authenticate_token(app, &token).await.unwrap().is_none());
        // No access remains, even through a stale actor.
        for reference in [&first, &second] {
            let err = reports::show(app, &leaver, reference, ReadPurpose::Read).await.unwrap_err();
            assert!(matches!(err, AppError::NotFound(_)), "{err}");
        }
        let second_report = reports::show(app, &admin, &second, ReadPurpose::Read).await.unwrap();
        assert_eq!(second_report.report.assignee, None, "the report was unassigned");
        // The row stays, anonymised; the address is free again; the history keeps its author.
        let users = accounts::list_users(app, &admin).await.unwrap();
        let gone = users.iter().find(|u| u.id == id_of(&leaver)).unwrap();
        assert!(gone.deleted && gone.disabled && gone.password_hash.is_none());
        assert_eq!(gone.email, format!("deleted-{}@deleted.invalid", id_of(&leaver)));
        assert!(!users.iter().any(|u| u.email == "leaver@example.org"));
        let detail = reports::show(app, &admin, &first, ReadPurpose::Read).await.unwrap();
        assert!(detail.messages.iter().any(|m| m.author == leaver.to_string() && m.body == "the leaver's note"));
        let entries = audit_actions(app).await;
        assert!(entries.contains(&(leaver.to_string(), "report.note".into(), format!("report:{first}"))));
        assert!(entries.contains(&(admin.to_string(), "user.delete".into(), format!("user:{}", id_of(&leaver)))));
        // A deleted account is not found for anything else.
        assert!(matches!(accounts::enable_user(app, &admin, &gone.email).await, Err(AppError::NotFound(_))));
        accounts::create_user(app, &admin, "leaver@example.org", Role::Responder, None).await.unwrap();
    }
}

#[tokio::test]
async fn password_and_second_factor_resets_end_sessions() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        user(app, "member@example.org", Role::Responder).await;
        let (cookie, _, _) = enrol(app, &it.clock, "member@example.org").await;

        let new_password = accounts::reset_password(app, &admin, "member@example.org", None).await.unwrap();
        assert!(new_password.len() >= 20);
        assert!(sessions::session(app, &cookie).await.unwrap().is_none(), "{}", it.db.backend);
        assert!(sessions::sign_in_password(app, "member@example.org", PASSWORD, "192.0.2.1", "t", None).await.is_err());
        let partial =
            sessions::sign_in_password(app, "member@example.org", &new_password, "192.0.2.1", "t", None).await.unwrap();
        assert!(partial.needs_totp && !partial.must_enrol, "the second factor stays");

        // A lost authenticator: the second factor goes, the next sign-in enrols again.
        accounts::reset_totp(app, &admin, "member@example.org").await.unwrap();
        assert!(sessions::session(app, &partial.token).await.unwrap().is_none(), "the half session ended too");
        let again =
            sessions::sign_in_password(app, "member@example.org", &new_password, "192.0.2.1", "t", None).await.unwrap();
        assert!(again.must_enrol, "{}", it.db.backend);
        let entries = audit_actions(app).await;
        for action in ["user.password.reset", "user.totp.reset"] {
            assert!(entries.iter().any(|(a, act, _)| *a == admin.to_string() && act == action), "{action}");
        }
        // Too short a password is refused, and nothing changes.
        assert!(matches!(
            accounts::reset_password(app, &admin, "member@example.org", Some("short")).await,
            Err(AppError::Invalid(_))
        ));
    }
}

/// Signs in with password and TOTP set-up; returns the full session's cookie, the TOTP
/// secret and the recovery codes shown at set-up.
async fn enrol(app: &App, clock: &crate::common::ManualClock, email: &str) -> (String, String, Vec<String>) {
    let partial = sessions::sign_in_password(app, email, PASSWORD, "192.0.2.1", "t", None).await.unwrap();
    assert!(partial.must_enrol);
    let session = sessions::session(app, &partial.token).await.unwrap().unwrap();
    let secret = sessions::totp_enrolment(app, &session).await.unwrap().secret;
    let code = sessions::totp_code(&secret, app.now()).unwrap();
    let done = sessions::sign_in_totp(app, &session, &code, "192.0.2.1", None).await.unwrap();
    clock.advance_secs(30);
    (done.token, secret, done.recovery_codes)
}

async fn half_session(app: &App, email: &str) -> sessions::Session {
    let partial = sessions::sign_in_password(app, email, PASSWORD, "192.0.2.1", "t", None).await.unwrap();
    sessions::session(app, &partial.token).await.unwrap().unwrap()
}

#[tokio::test]
async fn recovery_codes_replace_a_totp_code_once_each_and_a_new_set_replaces_the_old() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let member = user(app, "member@example.org", Role::Responder).await;
        let (_, _, codes) = enrol(app, &it.clock, "member@example.org").await;
        assert_eq!(codes.len(), accounts::RECOVERY_CODES, "{}: codes are made at set-up", it.db.backend);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), codes.len());
        assert_eq!(accounts::my_recovery_codes_left(app, &member).await.unwrap(), 10);

        // A code stands in for the TOTP code, in any case and with spaces.
        let session = half_session(app, "member@example.org").await;
        let typed = format!(" {} ", codes[0].to_uppercase().replace('-', " "));
        let done = sessions::sign_in_totp(app, &session, &typed, "192.0.2.1", None).await.unwrap();
        assert_eq!(done.recovery_codes_left, Some(9));
        assert!(sessions::session(app, &done.token).await.unwrap().unwrap().actor().is_some());
        // Each works once.
        let session = half_session(app, "member@example.org").await;
        assert!(matches!(
            sessions::sign_in_totp(app, &session, &codes[0], "192.0.2.1", None).await,
            Err(AppError::Invalid(_))
        ));
        // Stored hashed: the codes are nowhere on disk in clear.
        if it.db.backend == "sqlite" {
            assert!(files_containing(&it.db.files, codes[1].as_bytes()).is_empty());
            assert!(files_containing(&it.db.files, codes[1].replace('-', "").as_bytes()).is_empty());
        }

        // A new set: the old unused codes stop working, the new ones work.
        let fresh = accounts::my_recovery_codes(app, &member).await.unwrap();
        assert_eq!(accounts::my_recovery_codes_left(app, &member).await.unwrap(), 10);
        let session = half_session(app, "member@example.org").await;
        assert!(
            sessions::sign_in_totp(app, &session, &codes[1], "192.0.2.1", None).await.is_err(),
            "{}",
            it.db.backend
        );
        let session = half_session(app, "member@example.org").await;
        sessions::sign_in_totp(app, &session, &fresh[3], "192.0.2.1", None).await.unwrap();
        // An admin can make a set for someone (the command line); not a responder.
        assert!(matches!(
            accounts::regenerate_recovery_codes(app, &member, "member@example.org").await,
            Err(AppError::Forbidden(_))
        ));
        let by_admin = accounts::regenerate_recovery_codes(app, &local(), "member@example.org").await.unwrap();
        let session = half_session(app, "member@example.org").await;
        assert!(sessions::sign_in_totp(app, &session, &fresh[4], "192.0.2.1", None).await.is_err());
        let session = half_session(app, "member@example.org").await;
        sessions::sign_in_totp(app, &session, &by_admin[0], "192.0.2.1", None).await.unwrap();

        let entries = audit_actions(app).await;
        let uses = entries.iter().filter(|(_, a, _)| a == "auth.recovery_code.use").count();
        assert_eq!(uses, 3, "{}", it.db.backend);
        let made = entries.iter().filter(|(_, a, _)| a == "auth.recovery_codes.generate").count();
        assert_eq!(made, 3, "{}", it.db.backend);

        // A reset second factor takes the codes with it.
        accounts::reset_totp(app, &local(), "member@example.org").await.unwrap();
        assert_eq!(accounts::my_recovery_codes_left(app, &member).await.unwrap(), 0);
        assert!(matches!(accounts::my_recovery_codes(app, &member).await, Err(AppError::Conflict(_))));
    }
}

#[tokio::test]
async fn responders_and_members_lose_reports_at_once() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        let responder = user(app, "resp@example.org", Role::Responder).await;
        let product = accounts::create_product(app, &admin, "Widget").await.unwrap();
        let reference =
            reports::submit(app, &Actor::Reporter, submission("r@example.org", "Bug")).await.unwrap().reference;
        reports::set_product(app, &admin, &reference, Some(product)).await.unwrap();
        accounts::add_product_responder(app, &admin, product, "resp@example.org").await.unwrap();
        reports::show(app, &responder, &reference, ReadPurpose::Read).await.unwrap();

        // As a member and the assignee too: removing the membership leaves the product's access.
        reports::add_member(app, &admin, &reference, "resp@example.org").await.unwrap();
        reports::assign(app, &admin, &reference, Some("resp@example.org")).await.unwrap();
        assert!(matches!(
            reports::remove_report_member(app, &responder, &reference, "resp@example.org").await,
            Err(AppError::Forbidden(_))
        ));
        assert_eq!(
            reports::report_members(app, &admin, &reference).await.unwrap(),
            vec!["resp@example.org".to_owned()]
        );
        let removed = reports::remove_report_member(app, &admin, &reference, "resp@example.org").await.unwrap();
        assert!(removed.was_member && removed.was_assignee && removed.still_via_product, "{removed:?}");
        assert!(reports::report_members(app, &admin, &reference).await.unwrap().is_empty());
        reports::show(app, &responder, &reference, ReadPurpose::Read).await.unwrap();

        // Taking the product away ends it.
        accounts::remove_product_responder(app, &admin, product, "resp@example.org").await.unwrap();
        let err = reports::show(app, &responder, &reference, ReadPurpose::Read).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound(_)), "{}: {err}", it.db.backend);
        assert!(reports::list(app, &responder, None).await.unwrap().is_empty());
        assert!(matches!(
            accounts::remove_product_responder(app, &admin, product, "resp@example.org").await,
            Err(AppError::NotFound(_))
        ));
        let entries = audit_actions(app).await;
        assert!(entries.contains(&(admin.to_string(), "report.member.remove".into(), format!("report:{reference}"))));
        assert!(entries.contains(&(
            admin.to_string(),
            "product.responder.remove".into(),
            format!("product:{product}")
        )));
    }
}

#[tokio::test]
async fn products_are_renamed_and_deleted_only_when_nothing_refers_to_them() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let admin = user(app, "admin@example.org", Role::Admin).await;
        let responder = user(app, "resp@example.org", Role::Responder).await;
        let widget = accounts::create_product(app, &admin, "Widget").await.unwrap();
        accounts::create_product(app, &admin, "Gadget").await.unwrap();
        assert!(matches!(
            accounts::rename_product(app, &responder, widget, "Widget Pro").await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(accounts::rename_product(app, &admin, widget, "Gadget").await, Err(AppError::Conflict(_))));
        accounts::rename_product(app, &admin, widget, " Widget Pro ").await.unwrap();
        let names: Vec<String> =
            accounts::products(app, &admin).await.unwrap().into_iter().map(|p| p.product.name).collect();
        assert_eq!(names, ["Gadget", "Widget Pro"], "{}", it.db.backend);

        let reference =
            reports::submit(app, &Actor::Reporter, submission("r@example.org", "Bug")).await.unwrap().reference;
        reports::set_product(app, &admin, &reference, Some(widget)).await.unwrap();
        accounts::add_product_responder(app, &admin, widget, "resp@example.org").await.unwrap();
        let err = accounts::delete_product(app, &admin, widget).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict(_)) && err.to_string().contains("1 report"), "{err}");
        reports::set_product(app, &admin, &reference, None).await.unwrap();
        accounts::delete_product(app, &admin, widget).await.unwrap();
        assert_eq!(accounts::products(app, &admin).await.unwrap().len(), 1);
        assert!(matches!(accounts::delete_product(app, &admin, widget).await, Err(AppError::NotFound(_))));
        let entries = audit_actions(app).await;
        for action in ["product.rename", "product.delete"] {
            assert!(entries.contains(&(admin.to_string(), action.into(), format!("product:{widget}"))), "{action}");
        }
    }
}
