//! The disclosure runbook end to end (issue 16) with the real binary, on SQLite and
//! PostgreSQL: a plan made and rehearsed by one person, armed by another, run at the instant
//! with every effect once; the crash matrix (the process SIGKILLed before, during and after
//! every step's effect, then run again: every effect exactly once, or a clear stop for a
//! person where the channel cannot be asked); two workers on one PostgreSQL running one plan
//! once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use embargo_test_support::cve_fake::CveFake;
use embargo_test_support::{Instance, both_backends};
use serde_json::Value;

use crate::BIN;

const LIST: &str = "oss-security@lists.example.org";

/// The world a plan acts on: the instance and the fakes of the internet services.
pub(crate) struct World {
    pub it: Instance,
    pub cve: CveFake,
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new(db: &embargo_test_support::TestDb) -> Self {
        let cve = CveFake::start();
        let it = Instance::new(BIN, Some(db));
        let env = vec![
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
        World { it, cve, env }
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
        let (reference, advisory) = world.ready_report("Overflow in the request parser");
        let plan = world.armed_plan(&reference, 3);
        // The rehearsal shows what would go out and publishes nothing.
        let out = world.run(&["disclosure", "rehearse", &plan, "--json"], "alice");
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let rehearsal: Value = serde_json::from_str(&out.stdout).unwrap();
        let mail = rehearsal["outputs"][format!("announce.list:{LIST}")].as_str().unwrap();
        assert!(mail.contains("Set MaxBodySize <= 1 MiB & restart"), "mitigations, every character: {mail}");
        assert_eq!(world.list_mails(), 0);
        assert_eq!(world.cve_posts(), 0);

        // The steps that act (not the pre-flight checks, which end at the start, nor the
        // skipped ones), in the plan's order.
        let names: Vec<String> = world.status(&plan)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "pending" && s["kind"] != "preflight")
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.len() >= 4, "{names:?}");
        // Every step, killed before, during and after its effect, then run again (the first
        // run waits for the instant in the foreground).
        let mut killed = 0;
        let mut decided: Vec<String> = Vec::new();
        let list_step = format!("announce.list:{LIST}");
        for name in &names {
            for phase in ["before", "during", "after"] {
                let point = format!("{name}.{phase}");
                loop {
                    if run_crashing(&world, &plan, &point) {
                        killed += 1;
                        break;
                    }
                    // Not killed: the run stopped short of the point. A channel that cannot
                    // be asked waits for a person after a kill during or after its call: the
                    // person looks (here: the outbox), decides, and it goes on.
                    let status = world.status(&plan);
                    if step(&status, &list_step)["state"] != "needs-person" {
                        panic!("{}: {point} was never reached: {status}", db.backend);
                    }
                    let sent = world.list_mails();
                    assert!(sent <= 1, "{}: sent twice", db.backend);
                    let decision = if sent == 1 { "--done" } else { "--retry" };
                    world.ok(&["disclosure", "step", &plan, &list_step, decision, "--note", "checked the outbox"]);
                    decided.push(format!("{point}:{decision}"));
                }
            }
        }
        // The kill during the mail left it unsent (retried), the kill after it sent (marked done).
        assert_eq!(
            decided,
            [format!("{list_step}.after:--retry"), "closeout.before:--done".to_owned()],
            "{}",
            db.backend
        );
        assert_eq!(killed, names.len() * 3, "{}: every kill happened", db.backend);
        let out = world.run(&["disclosure", "run", &plan], "alice");
        assert_eq!(out.code, 0, "{}", out.stderr);
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
        // Every effect exactly once.
        assert_eq!(world.list_mails(), 1, "{}: one mail to the list", db.backend);
        assert_eq!(world.cve_posts(), 1, "{}: one CVE publication", db.backend);
        let audit = world.ok(&["audit", "list", "--json", "--limit", "5000"]);
        let publishes: Vec<Value> = audit
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["action"] == "advisory.publish")
            .collect();
        assert_eq!(publishes.len(), 1, "{}: the advisory published once: {publishes:?}", db.backend);
        assert!(publishes[0]["subject"].as_str().unwrap_or_default().contains(&advisory), "{publishes:?}");
        let shown = world.ok(&["report", "show", &reference]);
        assert!(shown.contains("disclosed"), "{}: {shown}", db.backend);
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
    assert_eq!(world.list_mails(), 1);
    assert_eq!(world.cve_posts(), 1);
    let audit = world.ok(&["audit", "list", "--json", "--limit", "5000"]);
    let ends: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "disclosure.step.end")
        .map(|e| e["details"].as_str().unwrap_or_default().to_owned())
        .collect();
    let steps = status["steps"].as_array().unwrap().iter().filter(|s| s["state"] == "done").count();
    // Every step ended once (the pre-flight step ends with the start, not here).
    assert_eq!(ends.len(), steps - 1, "{ends:?}");
    let first = step(&status, "advisory");
    assert!(first["started_after_instant_ms"].as_i64().unwrap() >= 0, "never early: {first}");
}
