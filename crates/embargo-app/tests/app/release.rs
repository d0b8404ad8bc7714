//! The disclosure runbook's "merge and push" and "binaries" steps (ADR 26) on real git
//! repositories and a local HTTP server, each store-touching test on SQLite and PostgreSQL:
//! the fast-forward push publishes exactly the fix commits and the tags, the lease refuses a
//! moved head with nothing half-pushed, reconcile tells a lost answer from no push, the
//! pushed commits are byte for byte the partners' patches, artifacts are checked against
//! SHA256SUMS and its signature, and the release command runs in the sandbox and publishes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embargo_app::partners::{self, DraftOptions, NewContact, NewPartnerInput};
use embargo_app::release::{self, ArtifactProblem, PushState, ReleaseChange, ReleaseError};
use embargo_app::{App, AppError, accounts, fixes, jobs, reports};
use embargo_domain::{Actor, ReferenceId};
use embargo_test_support::both_backends;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Instance, instance_with, submission};
use crate::fixes::{git, have_git, local, public};

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every reference of a repository with its object.
fn refs(dir: &Path) -> BTreeMap<String, String> {
    git_out(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

async fn run_jobs(app: &App) {
    let worker = jobs::Worker::new(app.clone());
    while worker.run_once().await.unwrap() {}
}

/// A report of product `app` whose fix has one commit on `main` (fixed in 1.0.1) and one on
/// `1.x` (0.9.1), CI passed on both, and a notice with the patches sent to a partner.
struct Fixture {
    it: Instance,
    reference: ReferenceId,
    public: PathBuf,
    work: PathBuf,
    product: i64,
}

async fn fixture(db: embargo_test_support::TestDb, adjust: impl FnOnce(&mut embargo_app::config::Config)) -> Fixture {
    let it = instance_with(db, adjust).await;
    let app = &it.app;
    let admin = local();
    let product = accounts::create_product(app, &admin, "app").await.unwrap();
    let source = public(it.dir.path());
    accounts::update_product_details(app, &admin, product, &source, "", "", "main,1.x", Some("true")).await.unwrap();
    let reference =
        reports::submit(app, &Actor::Reporter, submission("r@example.org", "Overflow")).await.unwrap().reference;
    reports::set_product(app, &admin, &reference, Some(product)).await.unwrap();
    for to in ["triaging", "accepted"] {
        reports::transition(app, &admin, &reference, to.parse().unwrap()).await.unwrap();
    }
    fixes::open(app, &admin, &reference).await.unwrap();
    let private = fixes::git_repository(app, &admin, &reference, true).await.unwrap();
    let work = it.dir.path().join("fix-work");
    git(it.dir.path(), &["clone", "-q", private.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["checkout", "-q", "-B", "m", "origin/fix/main"]);
    std::fs::write(work.join("a"), "1 fixed").unwrap();
    git(&work, &["commit", "-q", "-am", "Check the length before copying"]);
    std::fs::write(work.join("b"), "new\n").unwrap();
    git(&work, &["add", "b"]);
    git(&work, &["commit", "-q", "-m", "Add a regression test"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/fix/main"]);
    git(&work, &["checkout", "-q", "-B", "x", "origin/fix/1.x"]);
    std::fs::write(work.join("a"), "1 fixed on 1.x").unwrap();
    git(&work, &["commit", "-q", "-am", "Check the length before copying (1.x)"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/fix/1.x"]);
    fixes::after_push(app, &admin, &reference).await.unwrap();
    run_jobs(app).await;
    for (line, version) in [("main", "1.0.1"), ("1.x", "0.9.1")] {
        let change = fixes::MatrixChange { fixed_version: Some(version.into()), ..Default::default() };
        fixes::set_line(app, &admin, &reference, line, &change).await.unwrap();
    }
    let status = fixes::status(app, &admin, &reference).await.unwrap();
    assert!(status.blockers.is_empty(), "CI passed on both lines: {:?}", status.blockers);
    Fixture { reference, public: PathBuf::from(source), work, product, it }
}

/// Sends partners a notice with the fix's patches (frozen now).
async fn send_notice(app: &App, reference: &ReferenceId) -> i64 {
    partners::add(
        app,
        &local(),
        NewPartnerInput {
            name: "Alpha".into(),
            contacts: vec![NewContact { email: "a@alpha.example".into(), key: None }],
            products: vec!["app".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let options = DraftOptions {
        disclose_at: "2026-03-11T16:00:00Z".parse().unwrap(),
        confirm_day: false,
        deploy_hosted: false,
        tell_customers: false,
    };
    let drafted = partners::draft(app, &local(), reference, options).await.unwrap();
    assert_eq!(drafted.patches, ["1.x", "main"]);
    partners::send(app, &local(), &drafted.notice.to_string(), false).await.unwrap();
    drafted.notice
}

#[tokio::test]
async fn a_release_push_publishes_exactly_the_fix_commits_and_tags_and_reconciles_a_lost_answer() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let f = fixture(db, |_| {}).await;
        let app = &f.it.app;
        let notice = send_notice(app, &f.reference).await;
        let before = refs(&f.public);

        let plan = release::prepare(app, &f.reference).await.unwrap().unwrap();
        assert_eq!(plan.remote, f.public.display().to_string());
        assert_eq!(
            plan.lines.iter().map(|l| (l.line.as_str(), l.tag.as_str())).collect::<Vec<_>>(),
            [("1.x", "v0.9.1"), ("main", "v1.0.1")]
        );
        let main = &plan.lines[1];
        assert_eq!(main.branch, "refs/heads/main");
        assert_eq!(main.old, before["refs/heads/main"], "the lease is the public head the fix started from");
        assert_eq!(main.commits.len(), 2);
        assert_eq!(main.commits.last(), Some(&main.commit));
        // Made again, the plan is the same, tag object included: an approval still holds.
        let again = release::prepare(app, &f.reference).await.unwrap().unwrap();
        assert_eq!(again, plan);
        assert_eq!(again.content_bytes(), plan.content_bytes());
        let json: release::PushPlan = serde_json::from_slice(&plan.content_bytes()).unwrap();
        assert_eq!(json, plan);
        assert_eq!(plan.destination(), format!("git-push:{}", f.public.display()));
        assert_eq!(plan.build_destination(), "release-build:app:v0.9.1,v1.0.1");

        let identical = release::verify_identical(app, &plan).await.unwrap();
        assert_eq!((identical.notice, identical.lines.clone()), (Some(notice), vec!["1.x".into(), "main".into()]));
        assert_eq!(release::preflight(app, &plan).await, Vec::<String>::new());
        assert_eq!(release::reconcile(app, &plan).await.unwrap(), PushState::NotPushed);

        // The dry run pushes into a scratch copy; the public repository does not change.
        let scratch = f.it.dir.path().join("rehearsal.git");
        let rehearsed = release::rehearse(app, &plan, &scratch).await.unwrap();
        assert_eq!(rehearsed.remote, scratch.display().to_string());
        assert_eq!(refs(&f.public), before);
        assert_eq!(refs(&scratch)["refs/tags/v1.0.1"], plan.lines[1].tag_object);
        assert_eq!(release::reconcile(app, &plan).await.unwrap(), PushState::NotPushed);

        // A server that cannot take a push all or nothing is not pushed to.
        git(&f.public, &["config", "receive.advertiseAtomic", "false"]);
        let refused = release::push(app, &plan).await;
        assert!(matches!(refused, Err(ReleaseError::Permanent(ref m)) if m.contains("atomic")), "{refused:?}");
        assert_eq!(refs(&f.public), before);
        git(&f.public, &["config", "--unset", "receive.advertiseAtomic"]);

        release::push(app, &plan).await.unwrap();
        // The answer is lost: reconciling says it happened.
        assert_eq!(release::reconcile(app, &plan).await.unwrap(), PushState::Pushed);
        assert_eq!(release::preflight(app, &plan).await, Vec::<String>::new(), "pushed is not a problem");

        // Exactly the fix commits and the two tags, nothing else (no fix branch, no other tag).
        let after = refs(&f.public);
        let mut expected = before.clone();
        for line in &plan.lines {
            expected.insert(line.branch.clone(), line.commit.clone());
            expected.insert(line.tag_ref.clone(), line.tag_object.clone());
        }
        assert_eq!(after, expected);
        for line in &plan.lines {
            let published = git_out(&f.public, &["rev-list", "--reverse", &format!("{}..{}", line.old, line.branch)]);
            assert_eq!(
                published.lines().collect::<Vec<_>>(),
                line.commits.iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert_eq!(git_out(&f.public, &["cat-file", "-t", &line.tag]), "tag");
            assert_eq!(git_out(&f.public, &["rev-parse", &format!("{}^{{commit}}", line.tag)]), line.commit);
            let tag = git_out(&f.public, &["cat-file", "tag", &line.tag]);
            assert!(
                tag.contains(&format!("tag {}\n", line.tag)) && tag.ends_with(&format!("app {}", line.version)),
                "{tag}"
            );
        }
        // What partners received is what became public: format-patch in the public repository.
        let mut tx_patches = Vec::new();
        for line in &plan.lines {
            let out = Command::new("git")
                .arg("-C")
                .arg(&f.public)
                .args([
                    "format-patch",
                    "--stdout",
                    "--no-signature",
                    "--binary",
                    &format!("{}..{}", line.old, line.commit),
                ])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            tx_patches.push((line.line.clone(), out.stdout));
        }
        let shared = partners::status(app, &local(), &notice.to_string()).await.unwrap();
        for (line, patch) in &tx_patches {
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(patch));
            assert!(
                shared.patches.contains(&(line.clone(), sha)),
                "{line}: the public commits are the partners' patch"
            );
        }

        // A second push (a retry that did not reconcile) has nothing to send and changes nothing.
        release::push(app, &plan).await.unwrap();
        assert_eq!(refs(&f.public), expected);
        // Planned again after the push: the same plan, already pushed.
        assert_eq!(release::prepare(app, &f.reference).await.unwrap(), Some(plan));
    }
}

#[tokio::test]
async fn the_lease_refuses_a_moved_public_head_and_nothing_is_half_pushed() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let f = fixture(db, |_| {}).await;
        let app = &f.it.app;
        let plan = release::prepare(app, &f.reference).await.unwrap().unwrap();
        let before = refs(&f.public);

        // Someone pushes to the public 1.x after the plan was made.
        let other = f.it.dir.path().join("other");
        git(f.it.dir.path(), &["clone", "-q", "--branch", "1.x", f.public.to_str().unwrap(), other.to_str().unwrap()]);
        std::fs::write(other.join("c"), "unrelated").unwrap();
        git(&other, &["add", "c"]);
        git(&other, &["commit", "-q", "-m", "Unrelated change"]);
        git(&other, &["push", "-q", "origin", "HEAD:1.x"]);
        let moved = refs(&f.public);
        let new_head = moved["refs/heads/1.x"].clone();
        assert_ne!(new_head, before["refs/heads/1.x"]);

        let refused = release::push(app, &plan).await;
        assert!(matches!(refused, Err(ReleaseError::Permanent(ref m)) if m.contains("lease")), "{refused:?}");
        assert_eq!(refs(&f.public), moved, "atomic: main and both tags untouched too");
        assert_eq!(
            release::reconcile(app, &plan).await.unwrap(),
            PushState::Moved { reference: "refs/heads/1.x".into(), found: Some(new_head.clone()) }
        );
        let problems = release::preflight(app, &plan).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("public branch 1.x moved") && problems[0].contains("still merges cleanly"),
            "{problems:?}"
        );
        let again = release::prepare(app, &f.reference).await;
        assert!(
            matches!(again, Err(AppError::Conflict(ref m)) if m.contains("1.x moved") && m.contains("rebase fix/1.x")),
            "{again:?}"
        );
        // Nothing to push: a report without a fix, a fix without commits. A line left without
        // commits while another has them is a preflight problem.
        let admin = local();
        let other =
            reports::submit(app, &Actor::Reporter, submission("r@example.org", "Other")).await.unwrap().reference;
        reports::set_product(app, &admin, &other, Some(f.product)).await.unwrap();
        assert_eq!(release::prepare(app, &other).await.unwrap(), None);
        for to in ["triaging", "accepted"] {
            reports::transition(app, &admin, &other, to.parse().unwrap()).await.unwrap();
        }
        fixes::open(app, &admin, &other).await.unwrap();
        assert_eq!(release::prepare(app, &other).await.unwrap(), None);
        let private = fixes::git_repository(app, &admin, &other, true).await.unwrap();
        let work = f.it.dir.path().join("other-work");
        git(f.it.dir.path(), &["clone", "-q", private.to_str().unwrap(), work.to_str().unwrap()]);
        git(&work, &["checkout", "-q", "-B", "m", "origin/fix/main"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", "Only main"]);
        git(&work, &["push", "-q", "origin", "HEAD:refs/heads/fix/main"]);
        fixes::after_push(app, &admin, &other).await.unwrap();
        run_jobs(app).await;
        let change = fixes::MatrixChange { fixed_version: Some("1.0.2".into()), ..Default::default() };
        fixes::set_line(app, &admin, &other, "main", &change).await.unwrap();
        let only_main = release::prepare(app, &other).await.unwrap().unwrap();
        assert_eq!(only_main.lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), ["main"]);
        let problems = release::preflight(app, &only_main).await;
        assert!(
            problems.iter().any(|p| p.contains("1.x is affected and its fix branch has no commits")),
            "{problems:?}"
        );

        // An unreachable public repository is temporary.
        let mut elsewhere = plan.clone();
        elsewhere.remote = f.it.dir.path().join("gone.git").display().to_string();
        assert!(matches!(release::reconcile(app, &elsewhere).await, Err(ReleaseError::Temporary(_))));
        assert!(matches!(release::push(app, &elsewhere).await, Err(ReleaseError::Temporary(_))));
    }
}

#[tokio::test]
async fn commits_changed_after_the_notice_are_not_what_partners_received() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let f = fixture(db, |_| {}).await;
        let app = &f.it.app;
        send_notice(app, &f.reference).await;
        // The fix developer amends main after partners got the patches.
        git(&f.work, &["checkout", "-q", "m"]);
        git(&f.work, &["commit", "-q", "--amend", "-m", "Add a regression test (reworded)"]);
        git(&f.work, &["push", "-q", "-f", "origin", "HEAD:refs/heads/fix/main"]);
        fixes::after_push(app, &local(), &f.reference).await.unwrap();
        let plan = release::prepare(app, &f.reference).await.unwrap().unwrap();
        let differ = release::verify_identical(app, &plan).await;
        assert!(
            matches!(differ, Err(AppError::Conflict(ref m)) if m.contains("main: the commits to push differ") && !m.contains("1.x:")),
            "{differ:?}"
        );
        let problems = release::preflight(app, &plan).await;
        assert!(problems.iter().any(|p| p.contains("not what partners received")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("CI is not green: main")), "{problems:?}");
        // Every pushed line needs its fixed version (the tag is named after it).
        let clear = fixes::MatrixChange { fixed_version: Some(String::new()), ..Default::default() };
        fixes::set_line(app, &local(), &f.reference, "1.x", &clear).await.unwrap();
        let unversioned = release::prepare(app, &f.reference).await;
        assert!(
            matches!(unversioned, Err(AppError::Invalid(ref m)) if m.contains("1.x has no fixed version")),
            "{unversioned:?}"
        );
        let problems = release::preflight(app, &plan).await;
        assert!(problems.iter().any(|p| p.contains("fixed version of 1.x changed")), "{problems:?}");
        let back = fixes::MatrixChange { fixed_version: Some("0.9.1".into()), ..Default::default() };
        fixes::set_line(app, &local(), &f.reference, "1.x", &back).await.unwrap();
        // A release tag someone else made already: refused, never replaced.
        git(&f.public, &["tag", "v0.9.1", "refs/heads/1.x"]);
        let tagged = release::prepare(app, &f.reference).await;
        assert!(
            matches!(tagged, Err(AppError::Conflict(ref m)) if m.contains("tag v0.9.1 already exists")),
            "{tagged:?}"
        );
        let refused = release::push(app, &plan).await;
        assert!(matches!(refused, Err(ReleaseError::Permanent(_))), "{refused:?}");
        assert_eq!(refs(&f.public)["refs/tags/v0.9.1"], refs(&f.public)["refs/heads/1.x"], "the tag is left alone");
        assert!(!refs(&f.public).contains_key("refs/tags/v1.0.1"), "and nothing else was pushed");
        git(&f.public, &["tag", "-d", "v0.9.1"]);

        // A fix head moved after the plan is a problem too.
        git(&f.work, &["commit", "-q", "--allow-empty", "-m", "More"]);
        git(&f.work, &["push", "-q", "origin", "HEAD:refs/heads/fix/main"]);
        fixes::after_push(app, &local(), &f.reference).await.unwrap();
        let problems = release::preflight(app, &plan).await;
        assert!(problems.iter().any(|p| p.contains("fix/main moved since the plan")), "{problems:?}");
    }
}

// ---------------------------------------------------------------------------------------
// A local HTTP server: files from a directory, and a record of POSTs.

#[derive(Debug, Clone)]
struct Posted {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Server {
    base: String,
    posts: Arc<Mutex<Vec<Posted>>>,
    status: Arc<Mutex<u16>>,
}

async fn serve(root: PathBuf) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let posts: Arc<Mutex<Vec<Posted>>> = Arc::default();
    let status = Arc::new(Mutex::new(200u16));
    let (p, s) = (posts.clone(), status.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (root, posts, status) = (root.clone(), p.clone(), s.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let request: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
                let headers: BTreeMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let (method, path) = (request.first().copied().unwrap_or(""), request.get(1).copied().unwrap_or("/"));
                let (code, body) = if method == "POST" {
                    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = buf[head_end..].to_vec();
                    while body.len() < length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    posts.lock().unwrap().push(Posted { path: path.to_owned(), headers, body });
                    (*status.lock().unwrap(), Vec::new())
                } else {
                    let relative = path.trim_start_matches('/');
                    match (relative.contains(".."), std::fs::read(root.join(relative))) {
                        (false, Ok(bytes)) => (200, bytes),
                        _ => (404, b"not found".to_vec()),
                    }
                };
                let reason = if code == 200 { "OK" } else { "Other" };
                let head =
                    format!("HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { base, posts, status }
}

fn sums_of(files: &[(&str, &[u8])], binary: bool) -> String {
    files
        .iter()
        .map(|(name, bytes)| {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
            if binary { format!("{hash} *{name}\n") } else { format!("{hash}  {name}\n") }
        })
        .collect()
}

fn expected(base: &str, version: &str, names: &[&str]) -> Vec<release::ExpectedArtifact> {
    names
        .iter()
        .map(|n| release::ExpectedArtifact {
            url: format!("{base}/{version}/{n}"),
            name: (*n).to_owned(),
            sums_url: format!("{base}/{version}/SHA256SUMS"),
            version: version.into(),
        })
        .collect()
}

#[tokio::test]
async fn artifacts_verify_against_sha256sums_and_its_signature_and_each_problem_names_its_file() {
    // Verification reads no store: one backend is enough.
    let db = both_backends().into_iter().next().unwrap();
    let it = instance_with(db, |c| c.fixes.max_artifact_bytes = 4096).await;
    let app = &it.app;
    let root = it.dir.path().join("www");
    let dir = root.join("1.0.1");
    std::fs::create_dir_all(&dir).unwrap();
    let tarball: &[u8] = b"tarball bytes";
    let zip: &[u8] = &[0u8, 1, 2, 255, 254];
    std::fs::write(dir.join("app-1.0.1.tar.gz"), tarball).unwrap();
    std::fs::write(dir.join("app-1.0.1.zip"), zip).unwrap();
    let mut sums = sums_of(&[("app-1.0.1.tar.gz", tarball)], false);
    sums.push_str(&sums_of(&[("app-1.0.1.zip", zip)], true));
    std::fs::write(dir.join("SHA256SUMS"), &sums).unwrap();
    let key = embargo_mail::openpgp::InstanceKey::generate("Releases <releases@example.org>").unwrap();
    let certificate = key.public_armored().unwrap();
    std::fs::write(dir.join("SHA256SUMS.asc"), key.sign_detached(sums.as_bytes()).unwrap()).unwrap();
    let server = serve(root.clone()).await;
    let files = expected(&server.base, "1.0.1", &["app-1.0.1.tar.gz", "app-1.0.1.zip"]);

    let verified = release::verify(app, &files, Some(&certificate)).await.unwrap();
    assert!(verified.signed);
    assert_eq!(
        verified.files.iter().map(|f| (f.name.as_str(), f.size)).collect::<Vec<_>>(),
        [("app-1.0.1.tar.gz", 13), ("app-1.0.1.zip", 5)]
    );

    // One corrupted artifact: a checksum mismatch naming it, and only it.
    std::fs::write(dir.join("app-1.0.1.zip"), b"tampered").unwrap();
    let problems = release::verify(app, &files, Some(&certificate)).await.unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(matches!(&problems[0], ArtifactProblem::Mismatch { name, .. } if name == "app-1.0.1.zip"), "{problems:?}");
    assert!(problems[0].to_string().contains("\"app-1.0.1.zip\"") && problems[0].to_string().contains("mismatch"));
    std::fs::write(dir.join("app-1.0.1.zip"), zip).unwrap();

    // A missing artifact: it does not answer 200.
    std::fs::remove_file(dir.join("app-1.0.1.tar.gz")).unwrap();
    let problems = release::verify(app, &files, None).await.unwrap_err();
    assert!(
        matches!(&problems[..], [ArtifactProblem::Unavailable { name, reason, .. }] if name == "app-1.0.1.tar.gz" && reason.contains("404")),
        "{problems:?}"
    );
    std::fs::write(dir.join("app-1.0.1.tar.gz"), tarball).unwrap();

    // An expected file that SHA256SUMS does not list.
    let more = expected(&server.base, "1.0.1", &["app-1.0.1.tar.gz", "app-1.0.1.zip", "app-1.0.1.deb"]);
    let problems = release::verify(app, &more, None).await.unwrap_err();
    assert!(
        matches!(&problems[..], [ArtifactProblem::NotListed { name, .. }] if name == "app-1.0.1.deb"),
        "{problems:?}"
    );

    // A bad signature (over other bytes), then none at all, then a .sig in binary form.
    let other = embargo_mail::openpgp::InstanceKey::generate("Mallory <m@example.org>").unwrap();
    std::fs::write(dir.join("SHA256SUMS.asc"), other.sign_detached(sums.as_bytes()).unwrap()).unwrap();
    let problems = release::verify(app, &files, Some(&certificate)).await.unwrap_err();
    assert!(matches!(&problems[..], [ArtifactProblem::SignatureInvalid { .. }]), "{problems:?}");
    std::fs::write(
        dir.join("SHA256SUMS.asc"),
        "-----BEGIN PGP SIGNATURE-----\n\ngarbage\n-----END PGP SIGNATURE-----\n",
    )
    .unwrap();
    let problems = release::verify(app, &files, Some(&certificate)).await.unwrap_err();
    assert!(matches!(&problems[..], [ArtifactProblem::SignatureInvalid { .. }]), "{problems:?}");
    std::fs::remove_file(dir.join("SHA256SUMS.asc")).unwrap();
    let problems = release::verify(app, &files, Some(&certificate)).await.unwrap_err();
    assert!(matches!(&problems[..], [ArtifactProblem::SignatureMissing { .. }]), "{problems:?}");
    // SHA256SUMS.sig is tried when there is no .asc (armored or binary, as it comes).
    std::fs::write(dir.join("SHA256SUMS.sig"), key.sign_detached(sums.as_bytes()).unwrap()).unwrap();
    assert!(release::verify(app, &files, Some(&certificate)).await.unwrap().signed);

    std::fs::remove_file(dir.join("SHA256SUMS.sig")).unwrap();

    // A key and signatures made by GnuPG, armored (.asc) and binary (.sig), as releases ship them.
    let gpg_found = Command::new("gpg").arg("--version").output().map(|_| ()).map_err(|e| format!("gpg: {e}"));
    if embargo_test_support::require("gpg", gpg_found).is_some() {
        let home = it.dir.path().join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .arg("--homedir")
                .arg(&home)
                .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        gpg(&["--quick-gen-key", "Releases <rel@example.org>", "ed25519", "sign", "never"]);
        let certificate = String::from_utf8(gpg(&["--armor", "--export", "rel@example.org"])).unwrap();
        let sums_path = dir.join("SHA256SUMS");
        gpg(&["--detach-sign", "--output", dir.join("SHA256SUMS.sig").to_str().unwrap(), sums_path.to_str().unwrap()]);
        assert!(release::verify(app, &files, Some(&certificate)).await.unwrap().signed, "binary .sig by gpg");
        gpg(&[
            "--armor",
            "--detach-sign",
            "--output",
            dir.join("SHA256SUMS.asc").to_str().unwrap(),
            sums_path.to_str().unwrap(),
        ]);
        assert!(release::verify(app, &files, Some(&certificate)).await.unwrap().signed, "armored .asc by gpg");
        // The signature of another SHA256SUMS does not carry over.
        std::fs::write(&sums_path, format!("{sums}\n")).unwrap();
        let problems = release::verify(app, &files, Some(&certificate)).await.unwrap_err();
        assert!(matches!(&problems[..], [ArtifactProblem::SignatureInvalid { .. }]), "{problems:?}");
        std::fs::write(&sums_path, &sums).unwrap();
    }

    // Hostile SHA256SUMS: garbage lines are named (escaped), the good lines still count.
    let mut hostile = b"\x1b[2J<script>\n\xff\xfe\n".to_vec();
    hostile.extend_from_slice(sums.as_bytes());
    std::fs::write(dir.join("SHA256SUMS"), &hostile).unwrap();
    let problems = release::verify(app, &files, None).await.unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(matches!(&problems[0], ArtifactProblem::SumsMalformed { line: 1, .. }));
    assert!(!problems[0].to_string().contains('\u{1b}'), "shown escaped: {}", problems[0]);
    assert!(matches!(&problems[1], ArtifactProblem::SumsMalformed { line: 2, .. }));
    std::fs::write(dir.join("SHA256SUMS"), &sums).unwrap();

    // Bounded: a file over fixes.max_artifact_bytes is not read to its end.
    std::fs::write(dir.join("app-1.0.1.zip"), vec![7u8; 10_000]).unwrap();
    let problems = release::verify(app, &files, None).await.unwrap_err();
    assert!(matches!(&problems[..], [ArtifactProblem::TooLarge { name, limit: 4096, .. }] if name == "app-1.0.1.zip"));
    // No SHA256SUMS at all.
    std::fs::remove_file(dir.join("SHA256SUMS")).unwrap();
    let problems = release::verify(app, &files, None).await.unwrap_err();
    assert!(matches!(&problems[..], [ArtifactProblem::SumsUnavailable { reason, .. }] if reason.contains("404")));
}

#[tokio::test]
async fn the_release_command_runs_in_the_sandbox_on_the_tag_and_its_artifacts_then_verify() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let secret = "a release webhook secret of 32+ characters";
        let f = fixture(db, |c| {
            c.fixes.artifacts_wait_seconds = 3;
            c.fixes.artifacts_poll_seconds = 1;
            c.fixes.release_webhook_secret = embargo_app::config::Secret::new(secret);
        })
        .await;
        let app = &f.it.app;
        let www = f.it.dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        let server = serve(www.clone()).await;
        let key = embargo_mail::openpgp::InstanceKey::generate("Releases <releases@example.org>").unwrap();
        release::configure(app, &local(), f.product, &ReleaseChange {
            artifacts_url: Some(format!("{}/{{version}}/", server.base)),
            artifacts: Some("app-{version}.tar,NOTES".into()),
            artifacts_dir: Some(www.join("{version}").display().to_string()),
            // Built from the tag: the file holds what the tag holds; the environment names it.
            release_command: Some(
                "mkdir -p dist && tar -cf dist/app-$EMBARGO_VERSION.tar a && echo \"$EMBARGO_TAG $EMBARGO_VERSION\" > dist/NOTES \
                 && ln -s /etc/passwd dist/leak && ln a dist/hard-a && echo built $EMBARGO_TAG"
                    .into(),
            ),
            release_webhook: Some(format!("{}/hooks/release", server.base)),
            tag_format: Some("release-{version}".into()),
            signing_key: None,
        })
        .await
        .unwrap();
        let products = accounts::products(app, &local()).await.unwrap();
        let product = products.into_iter().find(|p| p.product.id == f.product).unwrap().product;
        assert_eq!(release::ReleaseView::of(&product).tag_format, "release-{version}");

        let plan = release::prepare(app, &f.reference).await.unwrap().unwrap();
        assert_eq!(plan.lines[1].tag, "release-1.0.1");
        // Before the build nothing verifies: the wait ends at its limit with the problems.
        let started = std::time::Instant::now();
        let missing = release::wait_for_artifacts(app, &product, &plan).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_secs(2), "polled until the limit");
        assert_eq!(missing.len(), 2, "one SHA256SUMS per version: {missing:?}");

        release::push(app, &plan).await.unwrap();
        // A rehearsal of the build publishes into a scratch directory and sends no webhook.
        let scratch = f.it.dir.path().join("rehearsal-{version}");
        let options = release::TriggerOptions { publish_to: Some(scratch.clone()), skip_webhook: true };
        let rehearsed = release::trigger_with(app, &plan, &options).await.unwrap();
        assert!(rehearsed.iter().all(|t| !t.webhook && t.published.len() == 3), "{rehearsed:?}");
        assert!(f.it.dir.path().join("rehearsal-1.0.1/app-1.0.1.tar").is_file());
        assert!(server.posts.lock().unwrap().is_empty() && !www.join("1.0.1").exists());
        let triggered = release::trigger(app, &plan).await.unwrap();
        assert_eq!(triggered.len(), 2);
        assert!(triggered.iter().all(|t| t.webhook && t.build.is_some()));
        assert_eq!(triggered[1].published, ["NOTES", "app-1.0.1.tar", "SHA256SUMS"], "no link, soft or hard");
        assert_eq!(std::fs::read_to_string(www.join("0.9.1/NOTES")).unwrap(), "release-0.9.1 0.9.1\n");
        assert_eq!(std::fs::read(www.join("1.0.1/app-1.0.1.tar")).unwrap()[..2], *b"a\0", "a tar of the tag's files");
        let verified = release::wait_for_artifacts(app, &product, &plan).await.unwrap();
        assert_eq!(verified.files.len(), 4);
        assert!(!verified.signed);

        // The log is kept like a CI run's: the sandbox's first line, the command's output.
        let log = release::build_log(app, &local(), &f.reference, triggered[1].build.unwrap()).await.unwrap();
        assert_eq!(log.build.state, "passed");
        assert_eq!(log.build.tag, "release-1.0.1");
        let text = String::from_utf8_lossy(&log.log);
        assert!(text.contains("built release-1.0.1"), "{text}");
        let isolation = embargo_app::sandbox::available();
        assert_eq!(log.build.isolation.as_deref(), Some(isolation.as_str()));

        // The webhooks: one per line, signed with the secret.
        let posts = server.posts.lock().unwrap().clone();
        assert_eq!(posts.len(), 2);
        for (post, line) in posts.iter().zip(&plan.lines) {
            assert_eq!(post.path, "/hooks/release");
            let body: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"product": "app", "line": line.line, "tag": line.tag, "commit": line.commit})
            );
            let signature = &post.headers["x-embargo-signature"];
            embargo_domain::fix::verify(secret.as_bytes(), signature, &post.body, app.now().as_second()).unwrap();
            assert!(
                embargo_domain::fix::verify(
                    b"another secret of at least 32 chars",
                    signature,
                    &post.body,
                    app.now().as_second()
                )
                .is_err()
            );
        }

        // A signing key now required: the unsigned SHA256SUMS no longer verifies.
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange { signing_key: Some(key.public_armored().unwrap()), ..Default::default() },
        )
        .await
        .unwrap();
        let products = accounts::products(app, &local()).await.unwrap();
        let product = products.into_iter().find(|p| p.product.id == f.product).unwrap().product;
        assert_eq!(release::ReleaseView::of(&product).signing_key_fingerprint, key.fingerprint());
        let unsigned = release::wait_for_artifacts(app, &product, &plan).await.unwrap_err();
        assert!(unsigned.iter().all(|p| matches!(p, ArtifactProblem::SignatureMissing { .. })), "{unsigned:?}");

        // dist/ as a link to a directory elsewhere publishes nothing.
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange {
                release_command: Some("ln -s /etc dist".into()),
                release_webhook: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let linked = release::trigger(app, &plan).await;
        assert!(matches!(linked, Err(ReleaseError::Permanent(ref m)) if m.contains("dist/")), "{linked:?}");
        assert!(!www.join("1.0.1/passwd").exists() && !www.join("0.9.1/passwd").exists());

        // A failing release command: permanent, its log kept.
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange {
                release_command: Some("echo about to fail; exit 3".into()),
                release_webhook: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let failed = release::trigger(app, &plan).await;
        assert!(matches!(failed, Err(ReleaseError::Permanent(ref m)) if m.contains("exit code 3")), "{failed:?}");
        // A webhook that answers 503 is temporary; 400 is a refusal.
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange {
                release_command: Some(String::new()),
                release_webhook: Some(format!("{}/hooks/release", server.base)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        *server.status.lock().unwrap() = 503;
        assert!(matches!(release::trigger(app, &plan).await, Err(ReleaseError::Temporary(_))));
        *server.status.lock().unwrap() = 400;
        assert!(matches!(release::trigger(app, &plan).await, Err(ReleaseError::Permanent(_))));

        // Settings are checked: plain http to elsewhere, a tag format without {version}.
        for bad in [
            ReleaseChange { artifacts_url: Some("http://example.org/r/".into()), ..Default::default() },
            ReleaseChange { tag_format: Some("latest".into()), ..Default::default() },
            ReleaseChange { artifacts: Some("../etc/passwd".into()), ..Default::default() },
            ReleaseChange { signing_key: Some("not a key".into()), ..Default::default() },
        ] {
            assert!(
                matches!(release::configure(app, &local(), f.product, &bad).await, Err(AppError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
