//! The disclosure runbook end to end (issue 16) with the real binary, on SQLite and
//! PostgreSQL: a plan made and rehearsed by one person, armed by another, run at the instant
//! with every effect once; the crash matrix (the process SIGKILLed before, during and after
//! every step's effect, then run again: every effect exactly once, or a clear stop for a
//! person where the channel cannot be asked); two workers on one PostgreSQL running one plan
//! once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use embargo_test_support::announce_fake::{AnnounceFake, BLUESKY_HANDLE, Fault, Service};
use embargo_test_support::cve_fake::CveFake;
use embargo_test_support::{Instance, both_backends};
use serde_json::Value;

use crate::BIN;

const LIST: &str = "oss-security@lists.example.org";

/// The world a plan acts on: the instance and the fakes of the internet services.
pub(crate) struct World {
    pub it: Instance,
    pub cve: CveFake,
    pub announce: AnnounceFake,
    pub site: std::path::PathBuf,
    pub public: std::path::PathBuf,
    pub www: std::path::PathBuf,
    pub files: std::process::Child,
    pub env: Vec<(String, String)>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.files.kill();
        let _ = self.files.wait();
    }
}

/// A bare repository of a small site (default branch `main`) in `root`.
fn site_repository(root: &std::path::Path) -> std::path::PathBuf {
    let bare = root.join("site.git");
    let work = root.join("site-work");
    std::fs::create_dir_all(work.join("content/posts")).unwrap();
    std::fs::write(work.join("hugo.toml"), "baseURL = 'https://blog.example.org/'\ntitle = 'Security'\n").unwrap();
    std::fs::write(work.join("content/posts/hello.md"), "---\ntitle: Hello\n---\nHello.\n").unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(root, &["init", "--quiet", "--bare", "--initial-branch=main", bare.to_str().unwrap()]);
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "."]);
    git(&work, &["-c", "user.name=Site", "-c", "user.email=site@example.org", "commit", "--quiet", "-m", "A site"]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
    bare
}

/// The commits touching a post in the site repository.
fn blog_commits(site: &std::path::Path) -> usize {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(site)
        .args(["log", "--format=%H", "main", "--", "content/posts/"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count() - 1
}

impl World {
    pub fn new(db: &embargo_test_support::TestDb) -> Self {
        let cve = CveFake::start();
        let announce = AnnounceFake::start();
        let it = Instance::new(BIN, Some(db));
        let site = site_repository(it.path("").as_path());
        let public = crate::fixes::public_repository(it.path("").as_path());
        // The release's files are served by a plain file server.
        let www = it.path("www");
        std::fs::create_dir_all(&www).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let files = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let env = vec![
            ("EMBARGO_FIXES__ARTIFACTS_WAIT_SECONDS".into(), "5".into()),
            ("EMBARGO_FIXES__ARTIFACTS_POLL_SECONDS".into(), "1".into()),
            ("EMBARGO_TEST_ARTIFACTS_PORT".into(), port.to_string()),
            ("EMBARGO_ANNOUNCE__SLACK_WEBHOOK_URL".into(), announce.slack_webhook_url()),
            ("EMBARGO_ANNOUNCE__X_API_URL".into(), announce.x_api_url()),
            ("EMBARGO_ANNOUNCE__X_TOKEN".into(), announce.x_token()),
            ("EMBARGO_ANNOUNCE__MASTODON_URL".into(), announce.mastodon_url()),
            ("EMBARGO_ANNOUNCE__MASTODON_TOKEN".into(), announce.mastodon_token()),
            ("EMBARGO_ANNOUNCE__BLUESKY_URL".into(), announce.bluesky_url()),
            ("EMBARGO_ANNOUNCE__BLUESKY_HANDLE".into(), BLUESKY_HANDLE.into()),
            ("EMBARGO_ANNOUNCE__BLUESKY_APP_PASSWORD".into(), announce.bluesky_password()),
            ("EMBARGO_ANNOUNCE__BLOG_REPOSITORY".into(), site.display().to_string()),
            ("EMBARGO_PUBLIC_URL".into(), "https://security.example.org".into()),
            ("EMBARGO_CVE_SERVICES__BASE_URL".into(), cve.base_url().to_owned()),
            ("EMBARGO_CVE_SERVICES__ORG".into(), cve.org()),
            ("EMBARGO_CVE_SERVICES__USER".into(), cve.user()),
            ("EMBARGO_CVE_SERVICES__API_KEY".into(), cve.api_key()),
            ("EMBARGO_CVE_SERVICES__DRY_RUN".into(), "false".into()),
            ("EMBARGO_ADVISORIES__CVE_ORG_ID".into(), "b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into()),
            ("EMBARGO_ADVISORIES__CVE_SHORT_NAME".into(), cve.org()),
            ("EMBARGO_ANNOUNCE__MAILING_LISTS".into(), LIST.into()),
            // A killed runner's job lease expires quickly.
            ("EMBARGO_JOBS__LEASE_SECONDS".into(), "2".into()),
            ("EMBARGO_JOBS__POLL_INTERVAL_MS".into(), "50".into()),
        ];
        World { it, cve, announce, site, public, www, files, env }
    }

    pub fn command(&self, args: &[&str], user: &str) -> Command {
        let mut command = self.it.command(args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.env("USER", user);
        command
    }

    pub fn run(&self, args: &[&str], user: &str) -> embargo_test_support::Output {
        embargo_test_support::run_command(self.command(args, user), b"")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "alice");
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        out.stdout
    }

    pub fn status(&self, plan: &str) -> Value {
        serde_json::from_str(&self.ok(&["disclosure", "status", plan, "--json"])).unwrap()
    }

    pub fn list_mails(&self) -> usize {
        let out = self.ok(&["outbox", "list", "--json"]);
        let all: Value = serde_json::from_str(&out).unwrap();
        all.as_array().unwrap().iter().filter(|m| m["to"].as_str().is_some_and(|t| t.contains(LIST))).count()
    }

    /// How many times each effect happened: the list mail, each channel's posts, the blog's
    /// commits of a post.
    pub fn effects(&self) -> Vec<(String, usize)> {
        let mut out = vec![("lists".to_owned(), self.list_mails()), ("blog".to_owned(), blog_commits(&self.site))];
        // The fix commits on the public main (one per plan) and the release tags.
        let git = |args: &[&str]| {
            let out = Command::new("git").arg("--git-dir").arg(&self.public).args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout).lines().count()
        };
        out.push(("push".to_owned(), git(&["log", "--format=%H", "--grep=Check bounds", "main"])));
        out.push(("tags".to_owned(), git(&["tag", "--list", "v1.0.*"])));
        let built = std::fs::read_dir(&self.www).map(|d| d.count()).unwrap_or(0);
        out.push(("release".to_owned(), built));
        for (name, service) in [
            ("slack", Service::Slack),
            ("x", Service::X),
            ("mastodon", Service::Mastodon),
            ("bluesky", Service::Bluesky),
        ] {
            out.push((name.to_owned(), self.announce.posts(service).len()));
        }
        out
    }

    /// A person settles every step that waits for one: looks at the service (the outbox,
    /// Slack's fake) and marks it done when the effect is there, else retries it. Whether
    /// there was one.
    pub fn settle_people(&self, plan: &str, earlier: usize) -> bool {
        let status = self.status(plan);
        let mut any = false;
        for s in status["steps"].as_array().unwrap() {
            if s["state"] != "needs-person" {
                continue;
            }
            let name = s["name"].as_str().unwrap();
            // Less what the earlier plans (one effect each) made.
            let sent = if name.starts_with("announce.list:") {
                self.list_mails() - earlier
            } else if name == "announce.slack" {
                self.announce.posts(Service::Slack).len() - earlier
            } else {
                panic!("{name} waits for a person although its service can be asked: {s}");
            };
            assert!(sent <= 1, "{name} happened twice");
            let decision = if sent == 1 { "--done" } else { "--retry" };
            self.ok(&["disclosure", "step", plan, name, decision, "--note", "checked the service"]);
            any = true;
        }
        any
    }

    pub fn cve_posts(&self) -> usize {
        self.cve.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/cna")).count()
    }

    /// A report accepted under product `app` with an approved advisory (with mitigations)
    /// carrying a reserved CVE ID; returns the report's reference and the advisory's handle.
    pub fn ready_report(&self, title: &str) -> (String, String) {
        let Some(vectors) = embargo_test_support::vectors_dir("osv/linter-testdata") else {
            panic!("the OSV vectors are missing");
        };
        if self.run(&["product", "list"], "alice").stdout.lines().all(|l| !l.starts_with("app")) {
            self.ok(&["product", "add", "app"]);
            let port = &self.env.iter().find(|(k, _)| k == "EMBARGO_TEST_ARTIFACTS_PORT").unwrap().1;
            let artifacts_url = format!("http://127.0.0.1:{port}/{{version}}/");
            let artifacts_dir = format!("{}/{{version}}", self.www.display());
            self.ok(&[
                "product",
                "set",
                "app",
                "--repository",
                self.public.to_str().unwrap(),
                "--release-lines",
                "main",
                "--test-command",
                "bash ./ci.sh",
                "--ecosystem",
                "Go",
                "--artifacts-url",
                &artifacts_url,
                "--artifacts",
                "app-{version}.tar",
                "--artifacts-dir",
                &artifacts_dir,
                "--release-command",
                "mkdir -p dist && tar -cf dist/app-$EMBARGO_VERSION.tar code.txt",
            ]);
        }
        let mail = format!(
            "From: rita@example.org\r\nTo: security@example.org\r\nSubject: {title}\r\nMessage-ID: <{}@example.org>\r\n\r\nSteps\r\n",
            crate::smtp::rand_suffix()
        );
        let out = self.it.run(&["ingest-mail"], mail.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let reference = out.stdout.trim().trim_start_matches("new report ").to_owned();
        self.ok(&["report", "product", &reference, "app"]);
        self.ok(&["report", "transition", &reference, "triaging"]);
        self.ok(&["report", "transition", &reference, "accepted"]);
        self.fix(&reference);
        // The advisory: an OSV vector's content in a draft made from the report.
        let imported = self.ok(&["advisory", "import", vectors.join("GO-2020-0001.json").to_str().unwrap()]);
        let imported = imported.split_whitespace().nth(1).unwrap().to_owned();
        let record = self.ok(&["advisory", "export", &imported, "--format", "json"]);
        let draft = self.ok(&["advisory", "create", "--report", &reference]);
        let draft = draft.split_whitespace().find(|w| w.starts_with("DRAFT-")).unwrap().to_owned();
        let mut record: Value = serde_json::from_str(&record).unwrap();
        record["id"] = Value::String(draft.clone());
        record["title"] = Value::String(title.into());
        record["workarounds"] = Value::String("Set MaxBodySize <= 1 MiB & restart; see \"Limits\".".into());
        let file = self.it.path(&format!("{draft}.json"));
        std::fs::write(&file, record.to_string()).unwrap();
        self.ok(&["advisory", "edit", &draft, file.to_str().unwrap()]);
        let id = self.ok(&["cve", "reserve", "--count", "1"]);
        let id = id.split_whitespace().nth(1).unwrap().to_owned();
        self.ok(&["cve", "assign", &id, &draft]);
        for (step, who) in [("submit", "alice"), ("approve", "bob")] {
            let out = self.run(&["advisory", step, &draft], who);
            assert_eq!(out.code, 0, "{step}: {}{}", out.stdout, out.stderr);
        }
        (reference, draft)
    }

    /// A fix on `main` for the report, pushed through Embargo's git endpoint (a server runs
    /// for the push and its CI, then stops: the plans here are run by the commands), CI
    /// passed, the fixed version set.
    fn fix(&self, reference: &str) {
        self.ok(&["fix", "open", reference]);
        self.ok(&["fix", "invite", reference, "--email", "dev@example.org"]);
        let token = self.ok(&["admin", "create-token", "--email", "dev@example.org"]).trim().to_owned();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let server = self.it.serve(&env);
        let clone = self.it.path(&format!("clone-{reference}"));
        let url = format!("http://dev%40example.org:{token}@{}/git/{reference}.git", server.addr);
        crate::fixes::git_ok(&self.it.path(""), &["clone", "-q", &url, clone.to_str().unwrap()]);
        std::fs::write(clone.join("code.txt"), format!("fixed ({reference}): bounds are checked\n")).unwrap();
        crate::fixes::git_ok(&clone, &["commit", "-q", "-am", "Check bounds in the parser"]);
        crate::fixes::git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status: Value = serde_json::from_str(&self.ok(&["fix", "status", reference, "--json"])).unwrap();
            let main = status["lines"].as_array().unwrap().iter().find(|l| l["line"] == "main").unwrap().clone();
            if main["ci"] == "passed" {
                break;
            }
            assert!(main["ci"] != "failed", "CI failed: {status}");
            assert!(Instant::now() < deadline, "CI did not finish: {status}");
            std::thread::sleep(Duration::from_millis(200));
        }
        server.kill();
        let n = reference.rsplit('-').next().unwrap();
        self.ok(&["fix", "set-line", reference, "main", "--fixed-version", &format!("1.0.{n}")]);
    }

    /// Plans the report's disclosure `seconds` from now (as alice) and arms it (as bob's
    /// account); returns the plan ID.
    pub fn armed_plan(&self, reference: &str, seconds: i64) -> String {
        let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap();
        let at = at.round(jiff::Unit::Second).unwrap().to_string();
        let out = self.ok(&["disclosure", "plan", reference, "--at", &at, "--as", "alice@example.org"]);
        let plan = out.lines().next().unwrap().trim().to_owned();
        assert!(plan.parse::<i64>().is_ok(), "the plan ID first: {out}");
        let status = self.status(&plan);
        assert_eq!(status["state"], "draft");
        assert!(status["problems"].as_array().unwrap().is_empty(), "{status}");
        // alice prepared it: she cannot arm it.
        let refused = self.run(&["disclosure", "approve", &plan, "--as", "alice@example.org"], "alice");
        assert_ne!(refused.code, 0);
        assert!(refused.stderr.contains("second person"), "{}", refused.stderr);
        let hash = status["content_hash"].as_str().unwrap();
        self.ok(&["disclosure", "approve", &plan, "--as", "bob@example.org", "--hash", hash]);
        assert_eq!(self.status(&plan)["state"], "armed");
        plan
    }

    pub fn accounts(&self) {
        for email in ["alice@example.org", "bob@example.org"] {
            let out = embargo_test_support::run_command(
                self.command(
                    &["admin", "create-user", "--email", email, "--role", "admin", "--password-stdin"],
                    "root",
                ),
                b"a long enough password 1\n",
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
    }
}

fn step<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {status}"))
}

/// Runs `disclosure run PLAN` crashing at `point`; whether the process was killed.
fn run_crashing(world: &World, plan: &str, point: &str) -> bool {
    let status = world
        .command(&["disclosure", "run", plan], "alice")
        .env("EMBARGO_TEST_CRASH_AT", point)
        // One step at a time, so that every step's every point is reached (side by side,
        // a kill in one step also interrupts the others: the two-workers test runs so).
        .env("EMBARGO_DISCLOSURE__CONCURRENT_STEPS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(9) => true,
        None => false,
        Some(other) => panic!("{point}: killed by signal {other}"),
    }
}

#[test]
fn a_plan_runs_once_at_the_instant_and_survives_a_kill_at_every_step() {
    let Some(_) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    for db in both_backends() {
        let world = World::new(&db);
        world.accounts();
        // Every step's points: killed before, during and after its effect, then run again.
        // A step that waits for a person (a relay that cannot be asked) lets the others go
        // on meanwhile, which may finish them before their points are reached: the points
        // left are taken on the next plan (another report), until none is left.
        let mut remaining: Vec<String> = Vec::new();
        let mut killed = 0;
        let mut asked = 0;
        let mut plans = 0;
        for round in 0..4 {
            let (reference, advisory) = world.ready_report(&format!("Overflow in the request parser, {round}"));
            let plan = world.armed_plan(&reference, 3);
            plans += 1;
            if round == 0 {
                // The rehearsal shows what would go out and publishes nothing.
                let out = world.run(&["disclosure", "rehearse", &plan, "--json"], "alice");
                assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
                let rehearsal: Value = serde_json::from_str(&out.stdout).unwrap();
                let mail = rehearsal["outputs"][format!("announce.list:{LIST}")].as_str().unwrap();
                assert!(mail.contains("Set MaxBodySize <= 1 MiB & restart"), "mitigations, every character: {mail}");
                assert!(world.effects().iter().all(|(_, n)| *n == 0), "{:?}", world.effects());
                assert_eq!(world.cve_posts(), 0);
                // The steps that act (not the pre-flight checks, nor the skipped ones).
                for s in world.status(&plan)["steps"].as_array().unwrap() {
                    if s["state"] == "pending" && s["kind"] != "preflight" {
                        for phase in ["before", "during", "after"] {
                            remaining.push(format!("{}.{phase}", s["name"].as_str().unwrap()));
                        }
                    }
                }
                assert_eq!(remaining.len(), 33, "eleven steps act: {remaining:?}");
            }
            for point in remaining.clone() {
                let (name, _) = point.rsplit_once('.').unwrap();
                loop {
                    let state = step(&world.status(&plan), name)["state"].clone();
                    if state == "done" || state == "skipped" {
                        break;
                    }
                    if run_crashing(&world, &plan, &point) {
                        killed += 1;
                        remaining.retain(|p| *p != point);
                        break;
                    }
                    // Not killed: the run stopped short of the point, waiting for a person.
                    for (effect, count) in world.effects() {
                        assert!(count <= plans, "{}: {effect} happened {count} times after {point}", db.backend);
                    }
                    assert!(
                        world.settle_people(&plan, plans - 1),
                        "{}: {point} was never reached: {}",
                        db.backend,
                        world.status(&plan)
                    );
                    asked += 1;
                }
            }
            loop {
                let out = world.run(&["disclosure", "run", &plan], "alice");
                assert_eq!(out.code, 0, "{}", out.stderr);
                if !world.settle_people(&plan, plans - 1) {
                    break;
                }
            }
            let status = world.status(&plan);
            assert_eq!(status["state"], "done", "{}: {status}", db.backend);
            for s in status["steps"].as_array().unwrap() {
                assert!(matches!(s["state"].as_str(), Some("done" | "skipped")), "{s}");
                if s["state"] == "done" {
                    assert!(s["started_at"].is_string() && s["finished_at"].is_string(), "{s}");
                    if s["kind"] != "preflight" {
                        assert!(s["started_after_instant_ms"].as_i64().unwrap() >= 0, "never early: {s}");
                    }
                }
            }
            // Every effect exactly once per plan.
            for (effect, count) in world.effects() {
                assert_eq!(count, plans, "{}: {effect} once per plan", db.backend);
            }
            assert_eq!(world.cve_posts(), plans, "{}: one CVE publication per plan", db.backend);
            let audit = world.ok(&["audit", "list", "--json", "--limit", "5000"]);
            let publishes = audit
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| {
                    e["action"] == "advisory.publish" && e["subject"].as_str().unwrap_or("").contains(&advisory)
                })
                .count();
            assert_eq!(publishes, 1, "{}: the advisory published once", db.backend);
            let shown = world.ok(&["report", "show", &reference]);
            assert!(shown.contains("disclosed"), "{}: {shown}", db.backend);
            if remaining.is_empty() {
                break;
            }
        }
        assert!(remaining.is_empty(), "{}: points never reached: {remaining:?}", db.backend);
        assert_eq!(killed, 33, "{}: every point killed once", db.backend);
        assert!(
            asked >= 2,
            "{}: the relay and Slack cannot be asked: a kill after their call asks a person",
            db.backend
        );
    }
}

#[test]
fn two_workers_on_one_postgresql_run_a_plan_once() {
    let Some(_) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    let Some(db) = both_backends().into_iter().find(|db| db.backend == "postgres") else {
        let _ = embargo_test_support::require::<()>("PostgreSQL", Err("no PostgreSQL backend".into()));
        return;
    };
    let world = World::new(&db);
    world.accounts();
    let (reference, _) = world.ready_report("Overflow in the request parser");
    let plan = world.armed_plan(&reference, 4);
    // The services misbehave too: an answer lost after the post, a 429, a 500.
    world.announce.fail_next(Service::X, Fault::DropAfterEffect, 1);
    world.announce.fail_next(Service::Mastodon, Fault::RateLimited { retry_after: 1 }, 1);
    world.announce.fail_next(Service::Bluesky, Fault::ServerError, 1);
    let workers: Vec<_> = (0..2)
        .map(|_| world.command(&["worker"], "alice").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let status = world.status(&plan);
        if status["state"] == "done" || status["state"] == "stopped" {
            break status;
        }
        assert!(Instant::now() < deadline, "not done: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for mut w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    assert_eq!(status["state"], "done", "{status}");
    for (effect, count) in world.effects() {
        assert_eq!(count, 1, "{effect} once");
    }
    assert_eq!(world.cve_posts(), 1);
    let audit = world.ok(&["audit", "list", "--json", "--limit", "5000"]);
    let ends: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "disclosure.step.end" && e["details"].as_str().unwrap_or("").contains("state=done"))
        .map(|e| e["details"].as_str().unwrap_or_default().to_owned())
        .collect();
    let steps = status["steps"].as_array().unwrap().iter().filter(|s| s["state"] == "done").count();
    // Every step was done once (retries of a 429 or a lost answer end as pending; the
    // pre-flight step ends with the start, not here).
    assert_eq!(ends.len(), steps - 1, "{ends:?}");
    let first = step(&status, "advisory");
    assert!(first["started_after_instant_ms"].as_i64().unwrap() >= 0, "never early: {first}");
}
