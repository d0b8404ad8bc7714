//! Private fix repositories as use cases (issue 14), each on SQLite and PostgreSQL: who may
//! open, use and manage a fix; fix developers see the fix and nothing else of the report;
//! invitations; the readiness gate and its audited override; the matrix in the assessment.

use std::path::Path;
use std::process::Command;

use embargo_app::reports::{self, ReadPurpose};
use embargo_app::{AppError, accounts, fixes, jobs};
use embargo_domain::{Actor, ReferenceId, ReportState, Role, Target};
use embargo_test_support::{both_backends, require};

use crate::audit_actions;
use crate::common::{instance, submission};

pub(crate) fn local() -> Actor {
    Actor::LocalAdmin { os_user: "root".into() }
}

pub(crate) fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A public bare repository with `main` and `1.x`.
pub(crate) fn public(dir: &Path) -> String {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(work.join("a"), "1").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["branch", "1.x"]);
    let bare = dir.join("public.git");
    git(dir, &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    bare.display().to_string()
}

pub(crate) fn have_git() -> bool {
    let found = Command::new("git").arg("--version").output().map_err(|e| format!("git: {e}")).map(|_| ());
    require("git", found).is_some()
}

#[tokio::test]
async fn fixes_are_need_to_know_and_fix_developers_see_nothing_else() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let admin = local();
        let product = accounts::create_product(app, &admin, "app").await.unwrap();
        let source = public(it.dir.path());
        accounts::update_product_details(app, &admin, product, &source, "", "", "main,1.x", Some("true"))
            .await
            .unwrap();
        let reference: ReferenceId =
            reports::submit(app, &Actor::Reporter, submission("r@example.org", "Bug")).await.unwrap().reference;
        reports::set_product(app, &admin, &reference, Some(product)).await.unwrap();

        // Not before the report is accepted.
        let early = fixes::open(app, &admin, &reference).await;
        assert!(matches!(early, Err(AppError::Invalid(ref m)) if m.contains("accepted")), "{early:?}");
        for to in ["triaging", "accepted"] {
            reports::transition(app, &admin, &reference, to.parse().unwrap()).await.unwrap();
        }
        let off = accounts::create_user(app, &admin, "off@example.org", Role::Responder, None).await.unwrap();
        let off = Actor::User { id: off, role: Role::Responder };
        assert!(matches!(fixes::open(app, &off, &reference).await, Err(AppError::NotFound(_))));
        let opened = fixes::open(app, &admin, &reference).await.unwrap();
        assert!(opened.created && opened.clone_url.ends_with(&format!("/git/{reference}.git")));
        assert_eq!(opened.lines, ["main", "1.x"]);
        assert!(!fixes::open(app, &admin, &reference).await.unwrap().created, "opening twice changes nothing");
        let shown = reports::show(app, &admin, &reference, ReadPurpose::Read).await.unwrap();
        assert_eq!(shown.report.state, ReportState::Fixing);

        // A fix developer: the fix, not the report.
        let invited = fixes::invite(app, &admin, &reference, "Dev@Example.org").await.unwrap();
        assert!(invited.created && invited.mailed);
        let dev = Actor::User { id: embargo_domain::UserId(invited.user), role: Role::FixDeveloper };
        assert_eq!(fixes::status(app, &dev, &reference).await.unwrap().lines.len(), 2);
        assert!(fixes::git_repository(app, &dev, &reference, true).await.is_ok());
        assert!(matches!(reports::show(app, &dev, &reference, ReadPurpose::Read).await, Err(AppError::NotFound(_))));
        assert!(matches!(reports::list(app, &dev, None).await, Err(AppError::Forbidden(_))));
        assert!(matches!(
            fixes::set_line(app, &dev, &reference, "main", &fixes::MatrixChange::default()).await,
            Err(AppError::NotFound(_))
        ));
        assert!(matches!(fixes::invite(app, &dev, &reference, "x@example.org").await, Err(AppError::NotFound(_))));
        // The fix's discussion: theirs and the team's, kept as written.
        let said = "<img src=x onerror=alert(1)> the bounds check needs `len - 1`";
        fixes::comment(app, &dev, &reference, said).await.unwrap();
        let comments = fixes::comments(app, &admin, &reference).await.unwrap();
        assert_eq!((comments[0].author.as_str(), comments[0].body.as_str()), ("dev@example.org", said));
        assert!(matches!(fixes::comments(app, &off, &reference).await, Err(AppError::NotFound(_))));
        // A responder off the report neither; once responsible for the product, yes.
        assert!(matches!(fixes::status(app, &off, &reference).await, Err(AppError::NotFound(_))));
        assert!(matches!(fixes::git_repository(app, &off, &reference, false).await, Err(AppError::NotFound(_))));
        accounts::add_product_responder(app, &admin, product, "off@example.org").await.unwrap();
        assert!(fixes::status(app, &off, &reference).await.is_ok());
        // A responder may invite fix developers, not give a colleague the report.
        accounts::create_user(app, &admin, "peer@example.org", Role::Responder, None).await.unwrap();
        assert!(matches!(fixes::invite(app, &off, &reference, "peer@example.org").await, Err(AppError::Forbidden(_))));
        assert!(fixes::invite(app, &off, &reference, "dev2@example.org").await.unwrap().created);

        // Splitting the report gives the new one the team, not the fix developer.
        let split = reports::split(app, &admin, &reference, "Second finding", "details").await.unwrap();
        reports::transition(app, &admin, &split, "triaging".parse().unwrap()).await.unwrap();
        reports::transition(app, &admin, &split, "accepted".parse().unwrap()).await.unwrap();
        fixes::open(app, &admin, &split).await.unwrap();
        assert!(matches!(fixes::status(app, &dev, &split).await, Err(AppError::NotFound(_))));
        assert!(fixes::mine(app, &dev).await.unwrap().iter().all(|f| f.report == reference.to_string()));
        // Invited to that fix too before they set a password: two links.
        fixes::invite(app, &admin, &split, "dev@example.org").await.unwrap();

        // The invitation mail carries a one-time link to set a password.
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        let tokens: Vec<String> = embargo_app::intake::outbox(app)
            .unwrap()
            .into_iter()
            .filter(|m| m.to.contains("dev@example.org"))
            .map(|mail| {
                let raw = std::fs::read_to_string(&mail.path).unwrap().replace("=\r\n", "").replace("=\n", "");
                let at = raw.find("/invitations/").expect("the mail has the link") + "/invitations/".len();
                raw[at..].chars().take_while(char::is_ascii_hexdigit).collect()
            })
            .collect();
        assert_eq!(tokens.len(), 2, "{tokens:?}");
        let token = tokens[0].clone();
        assert_eq!(token.len(), 64);
        let (email, _) = fixes::invitation(app, &token).await.unwrap().unwrap();
        assert_eq!(email, "dev@example.org");
        assert!(matches!(fixes::accept_invitation(app, &token, "short").await, Err(AppError::Invalid(_))));
        assert_eq!(fixes::accept_invitation(app, &token, "a long enough password").await.unwrap(), "dev@example.org");
        assert!(accounts::verify_password_of(app, "dev@example.org", "a long enough password").await.unwrap());
        assert!(matches!(
            fixes::accept_invitation(app, &token, "another long password").await,
            Err(AppError::NotFound(_))
        ));
        // The other link sets no password once one is set: it is not a way to take the account.
        assert!(matches!(
            fixes::accept_invitation(app, &tokens[1], "the attacker's password").await,
            Err(AppError::NotFound(_))
        ));
        assert!(accounts::verify_password_of(app, "dev@example.org", "a long enough password").await.unwrap());

        // Ready for disclosure only once every affected line passed CI or was overridden.
        let ready = || "ready-for-disclosure".parse::<Target<ReferenceId>>().unwrap();
        let refused = reports::transition(app, &admin, &reference, ready()).await;
        assert!(matches!(refused, Err(AppError::Invalid(ref m)) if m.contains("main: no CI run")), "{refused:?}");
        fixes::set_line(
            app,
            &admin,
            &reference,
            "1.x",
            &fixes::MatrixChange { affected: Some(false), ..Default::default() },
        )
        .await
        .unwrap();
        fixes::override_ci(app, &admin, &reference, "main", "the test suite needs hardware we lack").await.unwrap();
        let status = fixes::status(app, &admin, &reference).await.unwrap();
        assert!(status.blockers.is_empty(), "{:?}", status.blockers);
        reports::transition(app, &admin, &reference, ready()).await.unwrap();
        let actions: Vec<String> = audit_actions(app).await.into_iter().map(|(_, action, _)| action).collect();
        for action in
            ["fix.open", "fix.invite", "fix.comment", "fix.matrix", "fix.ci_override", "user.invitation.accept"]
        {
            assert!(actions.iter().any(|a| a == action), "{action} not audited: {actions:?}");
        }
    }
}
