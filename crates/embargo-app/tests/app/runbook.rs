//! The whole disclosure runbook as a use case (issue 16), on SQLite and PostgreSQL, with
//! real git repositories (the public one, the private fix, the Hugo site), the release
//! command in the sandbox, a local server for the artifacts, and the fakes of Slack, X,
//! Mastodon and Bluesky failing the way the services do (429, 500, an answer lost after the
//! post): the fix pushed, the binaries verified, the advisory published and every channel
//! announced exactly once, with the mitigations; a corrupted artifact stops the plan before
//! anything is announced.

use std::path::{Path, PathBuf};
use std::process::Command;

use embargo_app::config::Secret;
use embargo_app::release::{self, ReleaseChange};
use embargo_app::{App, advisories, disclosure, fixes, intake, jobs};
use embargo_domain::{Actor, Role, Timestamp};
use embargo_test_support::announce_fake::{AnnounceFake, BLUESKY_HANDLE, Fault, Service};
use embargo_test_support::{both_backends, require};

use crate::fixes::{have_git, local};
use crate::release::{fixture, git_out, refs, serve};

const LIST: &str = "announce@lists.example.org";
const MITIGATION: &str = "Set parser.strict=true & block <script> until upgraded.";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn git(dir: &Path, args: &[&str]) {
    git_out(dir, args);
}

/// A bare repository holding a minimal Hugo site (default branch `main`).
fn site_repository(root: &Path) -> PathBuf {
    let bare = root.join("site.git");
    git(root, &["init", "--quiet", "--bare", "--initial-branch=main", bare.to_str().unwrap()]);
    let work = root.join("site-work");
    std::fs::create_dir_all(work.join("layouts/_default")).unwrap();
    std::fs::create_dir_all(work.join("content/posts")).unwrap();
    std::fs::write(
        work.join("hugo.toml"),
        "baseURL = 'https://blog.example.org/'\ntitle = 'Security'\ndisableKinds = ['taxonomy', 'term', 'RSS', 'sitemap']\n",
    )
    .unwrap();
    std::fs::write(
        work.join("layouts/_default/single.html"),
        "<!doctype html><html><head><title>{{ .Title }}</title></head><body>{{ .Content }}</body></html>\n",
    )
    .unwrap();
    std::fs::write(
        work.join("layouts/_default/list.html"),
        "<ul>{{ range .Pages }}<li>{{ .Title }}</li>{{ end }}</ul>\n",
    )
    .unwrap();
    std::fs::write(work.join("layouts/index.html"), "home\n").unwrap();
    std::fs::write(work.join("content/posts/hello.md"), "---\ntitle: Hello\ndate: 2026-01-01T00:00:00Z\n---\nHello.\n")
        .unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "."]);
    git(&work, &["-c", "user.name=Site", "-c", "user.email=site@example.org", "commit", "--quiet", "-m", "A site"]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
    bare
}

fn hugo() -> Result<(), String> {
    match Command::new("hugo").arg("version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("hugo version: {}", String::from_utf8_lossy(&out.stderr))),
        Err(e) => Err(format!("hugo: {e}")),
    }
}

fn channels(c: &mut embargo_app::config::Config, fake: &AnnounceFake, site: &Path) {
    c.public_url = "https://security.example.org".into();
    c.fixes.artifacts_wait_seconds = 3;
    c.fixes.artifacts_poll_seconds = 1;
    c.announce.slack_webhook_url = Secret::new(fake.slack_webhook_url());
    c.announce.x_api_url = fake.x_api_url();
    c.announce.x_token = Secret::new(fake.x_token());
    c.announce.mastodon_url = fake.mastodon_url();
    c.announce.mastodon_token = Secret::new(fake.mastodon_token());
    c.announce.bluesky_url = fake.bluesky_url();
    c.announce.bluesky_handle = BLUESKY_HANDLE.into();
    c.announce.bluesky_app_password = Secret::new(fake.bluesky_password());
    c.announce.blog_repository = site.display().to_string();
    c.announce.mailing_lists = vec![LIST.into()];
}

/// An approved advisory for the report, with the mitigation (the product in an ecosystem).
async fn advisory_for(f: &crate::release::Fixture) -> String {
    let (app, reference) = (&f.it.app, &f.reference);
    embargo_app::accounts::update_product_details(
        app,
        &local(),
        f.product,
        f.public.to_str().unwrap(),
        "crates.io",
        "pkg:cargo/app",
        "main,1.x",
        Some("true"),
    )
    .await
    .unwrap();
    let lead = embargo_app::accounts::create_user(app, &local(), "lead@example.org", Role::Admin, None).await.unwrap();
    let lead = Actor::User { id: lead, role: Role::Admin };
    let id = advisories::create(app, &local(), "Heap overflow in the parser", Some(reference)).await.unwrap();
    let mut record = advisories::get(app, &local(), &id).await.unwrap().record;
    record.summary = "A crafted file makes the parser write past a buffer.".into();
    record.details = "Parsing a crafted archive overflows a heap buffer.".into();
    record.workarounds = MITIGATION.into();
    let validation = advisories::update(app, &local(), &id, record).await.unwrap();
    assert!(validation.is_publishable(), "{validation}");
    advisories::submit_for_review(app, &local(), &id).await.unwrap();
    advisories::approve(app, &lead, &id).await.unwrap();
    id
}

/// Runs the workers, moving the clock on a minute at a time, until the plan is done or
/// stopped (retries wait on the clock).
async fn run_until_settled(app: &App, clock: &embargo_test_support::ManualClock, plan: &str) -> disclosure::PlanView {
    for _ in 0..40 {
        let worker = jobs::Worker::new(app.clone());
        while worker.run_once().await.unwrap() {}
        let view = disclosure::status(app, &local(), plan).await.unwrap();
        if view.state == "done" || view.state == "stopped" {
            return view;
        }
        clock.advance_secs(60);
    }
    panic!("{plan} never settled: {:?}", disclosure::status(app, &local(), plan).await.unwrap().steps);
}

/// The fakes of the channels, the site's repository (in `root`) and a report with its fix.
async fn world(
    db: embargo_test_support::TestDb,
) -> (AnnounceFake, tempfile::TempDir, PathBuf, crate::release::Fixture) {
    let fake = AnnounceFake::start();
    let root = tempfile::tempdir().unwrap();
    let site = site_repository(root.path());
    let f = fixture(db, |c| channels(c, &fake, &site)).await;
    (fake, root, site, f)
}

fn step<'a>(view: &'a disclosure::PlanView, name: &str) -> &'a disclosure::StepView {
    view.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}: {:?}", view.steps))
}

#[tokio::test]
async fn the_whole_runbook_pushes_builds_publishes_and_announces_each_once_through_the_services_faults() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let (fake, root, site, f) = world(db).await;
        let app = &f.it.app;
        let backend = f.it.db.backend;
        let www = f.it.dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        let server = serve(www.clone()).await;
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange {
                artifacts_url: Some(format!("{}/{{version}}/", server.base)),
                artifacts: Some("app-{version}.tar".into()),
                artifacts_dir: Some(www.join("{version}").display().to_string()),
                release_command: Some("mkdir -p dist && tar -cf dist/app-$EMBARGO_VERSION.tar a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let advisory = advisory_for(&f).await;
        let instant = t("2026-03-10T16:00:00Z");
        let plan = disclosure::plan(app, &local(), &f.reference, instant, false).await.unwrap();
        assert!(plan.problems.is_empty(), "{backend}: {:?}", plan.problems);
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "push",
                "binaries",
                "advisory",
                "cve",
                "announce.blog",
                "announce.slack",
                "announce.x",
                "announce.mastodon",
                "announce.bluesky",
                &format!("announce.list:{LIST}"),
                "closeout"
            ],
            "{backend}"
        );
        // Every message carries the mitigation, previewed as it will go out.
        for m in &plan.content.messages {
            let expected = if m.channel == "slack" {
                "Set parser.strict=true &amp; block &lt;script&gt;"
            } else {
                "parser.strict=true"
            };
            assert!(m.text.contains(expected), "{}: {}", m.channel, m.text);
        }
        // The rehearsal pushes into a copy, posts nothing.
        let rehearsed = disclosure::rehearse(app, &local(), &plan.id.to_string()).await.unwrap();
        assert!(
            rehearsed.rehearsal.iter().all(|s| s.state == "done" || s.state == "skipped"),
            "{:?}",
            rehearsed.rehearsal
        );
        let public_before = refs(&f.public);
        assert!(fake.posts(Service::Slack).is_empty() && fake.posts(Service::X).is_empty());

        let lead = Actor::User { id: embargo_domain::UserId(1), role: Role::Admin };
        disclosure::approve(app, &lead, &plan.id.to_string(), Some(&plan.content_hash)).await.unwrap();
        // The services misbehave once each, the way they do (Slack twice: its credentials
        // check at the instant is a post too, and a 429 there is noted, not blocking).
        fake.fail_next(Service::Slack, Fault::RateLimited { retry_after: 1 }, 2);
        fake.fail_next(Service::X, Fault::DropAfterEffect, 1);
        fake.fail_next(Service::Mastodon, Fault::ServerError, 1);
        fake.fail_next(Service::Bluesky, Fault::DropAfterEffect, 1);
        f.it.clock.set("2026-03-10T16:00:00Z");
        let done = run_until_settled(app, &f.it.clock, &plan.id.to_string()).await;
        assert_eq!(done.state, "done", "{backend}: {:?} {:?}", done.stop_reason, done.steps);

        // The fix is public: the branches at the fix heads, the tags made.
        let public_after = refs(&f.public);
        assert_ne!(public_before.get("refs/heads/main"), public_after.get("refs/heads/main"));
        let status = fixes::status(app, &local(), &f.reference).await.unwrap();
        for line in &status.lines {
            assert_eq!(public_after.get(&format!("refs/heads/{}", line.line)), Some(&line.head), "{backend}");
        }
        assert!(public_after.contains_key("refs/tags/v1.0.1") && public_after.contains_key("refs/tags/v0.9.1"));
        assert!(step(&done, "binaries").external_id.as_deref().unwrap_or("").contains("2 artifact(s) verified"));
        // Published, and each channel announced once, with the public ID and the mitigation.
        let public_id = advisories::get(app, &local(), &advisory).await.unwrap().public_id.unwrap();
        for service in [Service::Slack, Service::X, Service::Mastodon, Service::Bluesky] {
            let posts = fake.posts(service);
            assert_eq!(posts.len(), 1, "{backend}: {service:?} once: {posts:?}");
            assert!(posts[0].contains(&public_id), "{service:?}: {}", posts[0]);
            assert!(posts[0].contains("parser.strict=true"), "{service:?}: {}", posts[0]);
        }
        let mails: Vec<String> = intake::outbox(app)
            .unwrap()
            .iter()
            .map(|m| std::fs::read_to_string(&m.path).unwrap())
            .filter(|m| m.contains(&format!("To: {LIST}")))
            .collect();
        assert_eq!(mails.len(), 1, "{backend}");
        let text = mail_parser::MessageParser::default()
            .parse(mails[0].as_bytes())
            .unwrap()
            .body_text(0)
            .unwrap()
            .into_owned();
        assert!(text.contains(MITIGATION), "plain text keeps every character: {text}");
        assert!(mails[0].contains("Message-ID: <embargo.disclosure."), "{}", mails[0]);
        // The blog post is in the site's repository once, and Hugo builds it with the
        // mitigation as text.
        let checkout = root.path().join(format!("site-{backend}"));
        git(root.path(), &["clone", "--quiet", site.to_str().unwrap(), checkout.to_str().unwrap()]);
        let post = checkout.join(embargo_announce::render::blog_path(&public_id));
        assert!(post.is_file(), "{}", post.display());
        let log =
            git_out(&checkout, &["log", "--format=%s", "--", post.strip_prefix(&checkout).unwrap().to_str().unwrap()]);
        assert_eq!(log.lines().count(), 1, "{backend}: one commit of the post: {log}");
        if require("hugo", hugo()).is_some() {
            let out = Command::new("hugo")
                .args(["--source", checkout.to_str().unwrap(), "--destination"])
                .arg(root.path().join(format!("public-{backend}")))
                .args(["--quiet", "--buildFuture"])
                .env("HUGO_CACHEDIR", root.path().join("hugo-cache"))
                .output()
                .unwrap();
            assert!(out.status.success(), "hugo: {}", String::from_utf8_lossy(&out.stderr));
            let slug = post.file_stem().unwrap().to_str().unwrap();
            let page =
                std::fs::read_to_string(root.path().join(format!("public-{backend}/posts/{slug}/index.html"))).unwrap();
            assert!(page.contains("Set parser.strict=true &amp; block &lt;script&gt; until upgraded."), "{page}");
            assert!(!page.contains("<script>"), "{page}");
        }
        // Closed out: the fix repository is read-only.
        let archived = fixes::git_repository(app, &local(), &f.reference, true).await.unwrap_err();
        assert!(archived.to_string().contains("archived"), "{archived}");
        // Timing: every public step started at or after the instant.
        for s in &done.steps {
            if s.kind != "preflight" && s.state == "done" {
                assert!(s.started_after_instant_ms.unwrap() >= 0, "{} started early", s.name);
            }
        }
    }
}

#[tokio::test]
async fn a_corrupted_artifact_stops_the_plan_before_anything_is_announced() {
    if !have_git() {
        return;
    }
    for db in both_backends() {
        let (fake, _root, _site, f) = world(db).await;
        let app = &f.it.app;
        let backend = f.it.db.backend;
        // The artifacts are there already, one of them not what SHA256SUMS says.
        let www = f.it.dir.path().join("www");
        for version in ["1.0.1", "0.9.1"] {
            let dir = www.join(version);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("app-{version}.tar")), format!("the {version} release")).unwrap();
            let sum = embargo_app::intents::content_hash(format!("the {version} release").as_bytes());
            std::fs::write(dir.join("SHA256SUMS"), format!("{sum}  app-{version}.tar\n")).unwrap();
        }
        std::fs::write(www.join("1.0.1/app-1.0.1.tar"), "a corrupted release").unwrap();
        let server = serve(www.clone()).await;
        release::configure(
            app,
            &local(),
            f.product,
            &ReleaseChange {
                artifacts_url: Some(format!("{}/{{version}}/", server.base)),
                artifacts: Some("app-{version}.tar".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        advisory_for(&f).await;
        let plan = disclosure::plan(app, &local(), &f.reference, t("2026-03-10T16:00:00Z"), false).await.unwrap();
        let lead = Actor::User { id: embargo_domain::UserId(1), role: Role::Admin };
        disclosure::approve(app, &lead, &plan.id.to_string(), None).await.unwrap();
        f.it.clock.set("2026-03-10T16:00:00Z");
        let stopped = run_until_settled(app, &f.it.clock, &plan.id.to_string()).await;
        assert_eq!(stopped.state, "stopped", "{backend}: {:?}", stopped.steps);
        let binaries = step(&stopped, "binaries");
        assert_eq!(binaries.state, "failed");
        assert!(binaries.detail.contains("app-1.0.1.tar"), "the problem names the file: {}", binaries.detail);
        for service in [Service::Slack, Service::X, Service::Mastodon, Service::Bluesky] {
            assert!(fake.posts(service).is_empty(), "{backend}: nothing announced on {service:?}");
        }
        for s in &stopped.steps {
            if s.kind == "announce" || s.kind == "close-out" {
                assert_eq!(s.state, "pending", "{}", s.name);
            }
        }
    }
}
