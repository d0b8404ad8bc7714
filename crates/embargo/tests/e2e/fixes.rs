//! Private fix repositories end to end (issue 14), with the real `git` CLI over HTTP against
//! `embargo serve`, the real sandbox and the command-line contract: `product set
//! --test-command`, `report product`, `fix open`, `fix invite`, `admin create-token` as the
//! git password, `fix status --json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, Output, Server, both_backends, require, run_command};
use serde_json::Value;

use crate::BIN;

pub(crate) fn ok(it: &Instance, args: &[&str]) -> Output {
    let out = it.run(args, b"");
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    out
}

/// `git` with a clean environment: no user configuration, no prompt, a fixed author.
fn git(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.org")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.org");
    run_command(cmd, b"")
}

pub(crate) fn git_ok(dir: &Path, args: &[&str]) -> Output {
    let out = git(dir, args);
    assert_eq!(out.code, 0, "git {args:?}: {}", out.stderr);
    out
}

/// A public repository (bare) with two release lines, `main` and `release-1.x`, whose
/// `ci.sh` fails until `code.txt` says "fixed".
pub(crate) fn public_repository(root: &Path) -> PathBuf {
    let work = root.join("public-work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(work.join("code.txt"), "vulnerable\n").unwrap();
    std::fs::write(work.join("ci.sh"), "grep -q fixed code.txt\n").unwrap();
    git_ok(&work, &["add", "."]);
    git_ok(&work, &["commit", "-q", "-m", "Release 1.0"]);
    git_ok(&work, &["branch", "release-1.x"]);
    std::fs::write(work.join("README"), "the 2.x line\n").unwrap();
    git_ok(&work, &["add", "."]);
    git_ok(&work, &["commit", "-q", "-m", "Start 2.x"]);
    let bare = root.join("public.git");
    git_ok(root, &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    bare
}

fn status(it: &Instance, reference: &str) -> Value {
    serde_json::from_str(&ok(it, &["fix", "status", reference, "--json"]).stdout).unwrap()
}

fn line<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["lines"].as_array().unwrap().iter().find(|l| l["line"] == name).unwrap_or_else(|| panic!("{status}"))
}

/// Waits (at most 90 s) until CI on every pushed line's head is final.
fn settled(it: &Instance, reference: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = status(it, reference);
        // A line nobody pushed to has no run to wait for.
        let busy = now["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| !l["run"].is_null() && (l["ci"] == "pending" || l["ci"] == "running"));
        if !busy {
            return now;
        }
        assert!(Instant::now() < deadline, "CI did not finish: {now}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) struct Fixture {
    pub(crate) it: Instance,
    pub(crate) server: Server,
    pub(crate) reference: String,
    pub(crate) public: PathBuf,
    pub(crate) root: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn url(&self, user: &str, token: &str, reference: &str) -> String {
        format!("http://{}:{token}@{}/git/{reference}.git", user.replace('@', "%40"), self.server.addr)
    }
}

fn accepted_report(it: &Instance, id: &str) -> String {
    let mail = format!(
        "From: alice@example.org\r\nTo: security@example.org\r\nSubject: Overflow in parser\r\nMessage-ID: <{id}>\r\n\r\nSteps\r\n"
    );
    let out = it.run(&["ingest-mail"], mail.as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reference = out.stdout.trim().trim_start_matches("new report ").to_owned();
    ok(it, &["report", "product", &reference, "app"]);
    ok(it, &["report", "transition", &reference, "triaging"]);
    ok(it, &["report", "transition", &reference, "accepted"]);
    reference
}

pub(crate) fn fixture(db: Option<&embargo_test_support::TestDb>) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let public = public_repository(root.path());
    let it = Instance::new(BIN, db);
    ok(&it, &["product", "add", "app"]);
    ok(
        &it,
        &[
            "product",
            "set",
            "app",
            "--repository",
            public.to_str().unwrap(),
            "--release-lines",
            "main,release-1.x",
            "--test-command",
            "sh ./ci.sh",
        ],
    );
    let reference = accepted_report(&it, "fix-1@example.org");
    let server = it.serve(&[("EMBARGO_FIXES__CI_TIME_LIMIT_SECONDS", "4")]);
    Fixture { it, server, reference, public, root }
}

pub(crate) fn have_tools() -> bool {
    let git = Command::new("git")
        .arg("--version")
        .output()
        .map_err(|e| format!("git: {e}"))
        .and_then(|o| if o.status.success() { Ok(()) } else { Err("git --version failed".into()) });
    let bwrap = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "true"])
        .output()
        .map_err(|e| format!("bubblewrap: {e}"))
        .and_then(|o| if o.status.success() { Ok(()) } else { Err("bwrap does not run here".into()) });
    require("git", git).is_some() && require("bubblewrap", bwrap).is_some()
}

#[test]
fn a_fix_developer_clones_pushes_two_lines_and_sees_ci_on_each() {
    if !have_tools() {
        return;
    }
    for db in both_backends() {
        let f = fixture(Some(&db));
        let it = &f.it;
        let reference = &f.reference;

        // `fix open`: the clone URL, a fix branch per line, the report now being fixed.
        let opened = ok(it, &["fix", "open", reference]);
        assert!(opened.stdout.trim().ends_with(&format!("/git/{reference}.git")), "{}", opened.stdout);
        let shown: Value = serde_json::from_str(&ok(it, &["report", "show", reference, "--json"]).stdout).unwrap();
        assert_eq!(shown["state"], "fixing", "{shown}");
        let before = status(it, reference);
        assert_eq!(line(&before, "main")["branch"], "fix/main");
        assert_eq!(line(&before, "release-1.x")["ci"], "pending");

        ok(it, &["fix", "invite", reference, "--email", "dev@example.org"]);
        let token = ok(it, &["admin", "create-token", "--email", "dev@example.org"]).stdout.trim().to_owned();
        let clone = f.root.path().join("clone");
        let url = f.url("dev@example.org", &token, reference);
        git_ok(f.root.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        let branches = git_ok(&clone, &["branch", "-r"]).stdout;
        assert!(branches.contains("origin/fix/main") && branches.contains("origin/fix/release-1.x"), "{branches}");

        // A passing fix on main, a failing one on release-1.x.
        std::fs::write(clone.join("code.txt"), "fixed\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds in the parser"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);
        git_ok(&clone, &["checkout", "-q", "-b", "rel", "origin/fix/release-1.x"]);
        std::fs::write(clone.join("code.txt"), "still broken\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Backport the bounds check"]);
        git_ok(&clone, &["push", "-q", "origin", "rel:fix/release-1.x"]);
        let after = settled(it, reference);
        let main_head = git_ok(&clone, &["rev-parse", "origin/fix/main"]).stdout.trim().to_owned();
        assert_eq!(line(&after, "main")["head"], main_head.as_str());
        assert_eq!(line(&after, "main")["ci"], "passed", "{after}");
        assert_eq!(line(&after, "release-1.x")["ci"], "failed", "{after}");
        assert!(after["blockers"].as_array().unwrap().iter().any(|b| b.as_str().unwrap().contains("release-1.x")));
        // A failing line keeps the report from being ready for disclosure.
        let refused = it.run(&["report", "transition", reference, "ready-for-disclosure"], b"");
        assert_ne!(refused.code, 0);
        assert!(refused.stderr.contains("release-1.x: CI failed"), "{}", refused.stderr);

        // The log names the sandbox and holds what the command wrote.
        let log = ok(it, &["fix", "log", reference, "--line", "release-1.x"]).stdout;
        assert!(log.contains("bubblewrap"), "{log}");
        assert!(log.contains("exit code 1"), "{log}");

        // Fixed: green on both lines, and the report may be ready.
        std::fs::write(clone.join("code.txt"), "fixed on 1.x\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Backport the bounds check, take two"]);
        git_ok(&clone, &["push", "-q", "origin", "rel:fix/release-1.x"]);
        let green = settled(it, reference);
        assert_eq!(line(&green, "release-1.x")["ci"], "passed", "{green}");
        assert_eq!(green["blockers"], serde_json::json!([]));

        // A command that hangs is killed at its limit (4 s here).
        std::fs::write(clone.join("ci.sh"), "sleep 600\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Slow tests"]);
        git_ok(&clone, &["push", "-q", "origin", "rel:fix/release-1.x"]);
        let slow = settled(it, reference);
        assert_eq!(line(&slow, "release-1.x")["ci"], "timed-out", "{slow}");

        // The command cannot read the data directory nor reach Embargo over the network.
        let probe = format!(
            "ls -a {data} 2>&1; cat {data}/master.key >/dev/null 2>&1 && echo READ-THE-KEY; \
             (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo REACHED-THE-SERVER; \
             cat /etc/shadow >/dev/null 2>&1 && echo READ-THE-SHADOW; ls /etc/ssl/private 2>/dev/null && echo SAW-TLS-KEYS; \
             grep -q fixed code.txt\n",
            data = it.data_dir.display(),
            port = f.server.addr.port()
        );
        std::fs::write(clone.join("ci.sh"), format!("#!/bin/bash\n{probe}")).unwrap();
        ok(it, &["product", "set", "app", "--test-command", "bash ./ci.sh"]);
        git_ok(&clone, &["commit", "-q", "-am", "Probe"]);
        git_ok(&clone, &["push", "-q", "origin", "rel:fix/release-1.x"]);
        settled(it, reference);
        let log = ok(it, &["fix", "log", reference, "--line", "release-1.x"]).stdout;
        assert!(!log.contains("READ-THE-KEY") && !log.contains("master.key") && !log.contains("embargo.db"), "{log}");
        assert!(!log.contains("REACHED-THE-SERVER"), "{log}");
        assert!(!log.contains("READ-THE-SHADOW") && !log.contains("SAW-TLS-KEYS"), "{log}");

        // Leak safety: no private object is in the public repository.
        let repository = it.data_dir.join("repositories");
        let private = std::fs::read_dir(&repository).unwrap().flatten().map(|e| e.path()).find(|p| {
            p.extension().is_some_and(|x| x == "git") && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        });
        let private = private.expect("the fix repository is in the data directory");
        let objects = git_ok(&private, &["rev-list", "--all", "--objects"]).stdout;
        let public_objects = git_ok(&f.public, &["rev-list", "--all", "--objects"]).stdout;
        let mut private_only = 0;
        for object in objects.lines().filter_map(|l| l.split_whitespace().next()) {
            if !public_objects.contains(object) {
                private_only += 1;
                assert_ne!(git(&f.public, &["cat-file", "-e", object]).code, 0, "{object} leaked");
            }
        }
        assert!(private_only >= 8, "the fixes made private objects ({private_only})");
        for page in ["/", "/advisories", "/advisories.atom", "/advisories/osv/all.json", "/.well-known/security.txt"] {
            let body = f.server.http("GET", page, &[], b"").body;
            assert!(!body.contains(&main_head), "{page} names a private commit");
        }
    }
}

#[test]
fn only_the_fix_developers_and_team_of_the_report_get_in() {
    if !have_tools() {
        return;
    }
    for db in both_backends() {
        let f = fixture(Some(&db));
        let it = &f.it;
        ok(it, &["fix", "open", &f.reference]);
        let other = accepted_report(it, "fix-2@example.org");
        ok(it, &["fix", "open", &other]);
        ok(it, &["fix", "invite", &f.reference, "--email", "dev@example.org"]);
        ok(it, &["fix", "invite", &other, "--email", "stranger@example.org"]);
        ok(it, &["admin", "create-user", "--email", "resp@example.org", "--role", "responder"]);
        let token = |email: &str| ok(it, &["admin", "create-token", "--email", email]).stdout.trim().to_owned();
        let (dev, stranger, responder) =
            (token("dev@example.org"), token("stranger@example.org"), token("resp@example.org"));

        let refs = |user: &str, token: &str, reference: &str| {
            git(f.root.path(), &["ls-remote", &f.url(user, token, reference)])
        };
        let allowed = refs("dev@example.org", &dev, &f.reference);
        assert_eq!(allowed.code, 0, "{}", allowed.stderr);
        assert!(allowed.stdout.contains("refs/heads/fix/main"), "{}", allowed.stdout);
        // The fix developer of another fix, a responder off the report, a wrong token: refused.
        for (user, token) in
            [("stranger@example.org", stranger.as_str()), ("resp@example.org", responder.as_str()), ("x", "emb_wrong")]
        {
            let out = refs(user, token, &f.reference);
            assert_ne!(out.code, 0, "{user} got in");
            assert!(out.stderr.contains("Authentication failed"), "{user}: {}", out.stderr);
        }
        // Over HTTP every refusal is the same answer, whether the fix exists or not.
        let basic = |user: &str, token: &str| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}")))
        };
        let ask = |reference: &str, auth: Option<String>| {
            let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
            let r =
                f.server.http("GET", &format!("/git/{reference}.git/info/refs?service=git-upload-pack"), &headers, b"");
            (r.status, r.body)
        };
        let answers = [
            ask(&f.reference, None),
            ask(&f.reference, Some(basic("stranger@example.org", &stranger))),
            ask(&f.reference, Some(basic("resp@example.org", &responder))),
            ask("SEC-2020-999", Some(basic("dev@example.org", &dev))),
        ];
        for answer in &answers {
            assert_eq!(answer, &answers[0]);
        }
        assert_eq!(answers[0].0, 401);
        assert_eq!(ask(&f.reference, Some(basic("dev@example.org", &dev))).0, 200);

        // The hook: only the fix branches, and a warning on a message that names a CVE.
        let clone = f.root.path().join("clone");
        git_ok(f.root.path(), &["clone", "-q", &f.url("dev@example.org", &dev, &f.reference), clone.to_str().unwrap()]);
        std::fs::write(clone.join("code.txt"), "fixed\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Fix CVE-2026-12345"]);
        let elsewhere = git(&clone, &["push", "origin", "HEAD:refs/heads/main"]);
        assert_ne!(elsewhere.code, 0);
        assert!(elsewhere.stderr.contains("push only to the fix branches"), "{}", elsewhere.stderr);
        let tag = git(&clone, &["push", "origin", "HEAD:refs/tags/v9"]);
        assert_ne!(tag.code, 0, "{}", tag.stderr);
        let warned = git(&clone, &["push", "origin", "HEAD:fix/main"]);
        assert_eq!(warned.code, 0, "{}", warned.stderr);
        assert!(warned.stderr.contains("names \"CVE-2026-12345\""), "{}", warned.stderr);
        let deleted = git(&clone, &["push", "origin", ":fix/main"]);
        assert_ne!(deleted.code, 0, "{}", deleted.stderr);
        // A commit force-pushed away cannot be fetched by its ID, not even over protocol v2.
        let gone = git_ok(&clone, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
        git_ok(&clone, &["push", "-q", "-f", "origin", "HEAD~1:fix/main"]);
        let other = f.root.path().join("other");
        git_ok(f.root.path(), &["init", "-q", other.to_str().unwrap()]);
        let url = f.url("dev@example.org", &dev, &f.reference);
        for version in ["2", "0"] {
            let by_id = git(&other, &["-c", &format!("protocol.version={version}"), "fetch", "-q", &url, &gone]);
            assert_ne!(by_id.code, 0, "v{version} fetched an unreachable commit");
        }
        // The stranger cannot push either.
        let out = git(&clone, &["push", &f.url("stranger@example.org", &stranger, &f.reference), "HEAD:fix/main"]);
        assert_ne!(out.code, 0);
    }
}

#[test]
fn the_backport_matrix_feeds_the_advisory() {
    if !have_tools() {
        return;
    }
    for db in both_backends() {
        let f = fixture(Some(&db));
        let it = &f.it;
        ok(it, &["product", "set", "app", "--ecosystem", "npm", "--purl", "pkg:npm/app"]);
        ok(it, &["fix", "open", &f.reference]);
        ok(it, &["fix", "set-line", &f.reference, "main", "--introduced", "2.0.0", "--fixed-version", "2.0.1"]);
        ok(it, &["fix", "set-line", &f.reference, "release-1.x", "--introduced", "1.0.0", "--fixed-version", "1.4.3"]);
        let shown = status(it, &f.reference);
        assert_eq!(line(&shown, "release-1.x")["fixed_version"], "1.4.3");
        let created = ok(it, &["advisory", "create", "--report", &f.reference]).stdout;
        let id = created.split_whitespace().find(|w| w.contains('-') && w.chars().any(|c| c.is_ascii_digit())).unwrap();
        let osv: Value = serde_json::from_str(&ok(it, &["advisory", "export", id, "--format", "osv"]).stdout).unwrap();
        let events = osv["affected"][0]["ranges"].to_string();
        assert!(events.contains("\"fixed\":\"2.0.1\"") && events.contains("\"fixed\":\"1.4.3\""), "{osv}");
        assert!(events.contains("\"introduced\":\"1.0.0\""), "{osv}");
        // A matrix change reaches the draft too.
        ok(it, &["fix", "set-line", &f.reference, "release-1.x", "--not-affected"]);
        let osv: Value = serde_json::from_str(&ok(it, &["advisory", "export", id, "--format", "osv"]).stdout).unwrap();
        let events = osv["affected"][0]["ranges"].to_string();
        assert!(events.contains("2.0.1") && !events.contains("1.4.3"), "{osv}");
        // With what an advisory needs besides (a CVE ID, a summary, details), every output
        // is valid: by our own check and by the official tools.
        let mut record: Value =
            serde_json::from_str(&ok(it, &["advisory", "export", id, "--format", "json"]).stdout).unwrap();
        record["cve_id"] = "CVE-2026-12345".into();
        record["summary"] = "Out-of-bounds read in the parser".into();
        record["details"] = "A crafted input makes the parser read past its buffer.".into();
        record["references"] = serde_json::json!([{"type": "WEB", "url": "https://example.org/security"}]);
        let file = f.root.path().join("record.json");
        std::fs::write(&file, record.to_string()).unwrap();
        ok(it, &["advisory", "edit", id, file.to_str().unwrap()]);
        let cna = |args: &[&str]| {
            let mut cmd = it.command(args);
            cmd.env("EMBARGO_ADVISORIES__CVE_ORG_ID", "b3476cb9-2e3d-41a6-98d0-0f47421a65b6")
                .env("EMBARGO_ADVISORIES__CVE_SHORT_NAME", "example");
            let out = run_command(cmd, b"");
            assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
            out
        };
        cna(&["advisory", "check", id]);
        let outputs = f.root.path().join("outputs");
        std::fs::create_dir_all(&outputs).unwrap();
        for format in ["osv", "cve", "csaf"] {
            let text = cna(&["advisory", "export", id, "--format", format]).stdout;
            assert!(text.contains("2.0.1"), "{format}: {text}");
            std::fs::write(outputs.join(format!("{format}.json")), text).unwrap();
        }
        official_validators(&outputs);
    }
}

/// The official tools `.ci/run` installs (as `embargo-advisory`'s tests use them), offline.
fn official_validators(outputs: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = |program: &Path, args: &[&std::ffi::OsStr]| {
        let out = Command::new(program)
            .args(args)
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{} rejects the output: {text}", program.display());
    };
    let venv = workspace.join(".ci/tools/venv/bin");
    let tool = |name: &str| {
        let path = venv.join(name);
        require(name, if path.exists() { Ok(path) } else { Err(format!("{name} missing (run .ci/run)")) })
    };
    if let Some(check) = tool("check-jsonschema") {
        let schema = workspace.join("crates/embargo-advisory/schemas/osv/schema.json");
        run(
            &check,
            &["--schemafile".as_ref(), schema.as_os_str(), "--".as_ref(), outputs.join("osv.json").as_os_str()],
        );
    }
    if let Some(cve) = tool("cve") {
        let file = outputs.join("cve.json");
        run(&cve, &["validate".as_ref(), "-s".as_ref(), "cna-published".as_ref(), "-f".as_ref(), file.as_os_str()]);
    }
    let script = workspace.join(".ci/node/validate-csaf.mjs");
    let lib = workspace.join(".ci/node/node_modules/@secvisogram/csaf-validator-lib/package.json");
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let found =
        if node && lib.exists() { Ok(()) } else { Err("node or csaf-validator-lib missing (run .ci/run)".to_owned()) };
    if require("@secvisogram/csaf-validator-lib", found).is_some() {
        run(Path::new("node"), &[script.as_os_str(), outputs.join("csaf.json").as_os_str()]);
    }
}

/// The invitation link of the newest invitation mail to `to` in the outbox (quoted-printable
/// soft line breaks joined).
fn invitation_link(it: &Instance, to: &str) -> Option<String> {
    let dir = it.data_dir.join("outbox").join("new");
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let raw = std::fs::read_to_string(entry.path()).unwrap_or_default().replace("=\r\n", "").replace("=\n", "");
        if !raw.contains(to) || !raw.contains("Invitation to prepare a fix") {
            continue;
        }
        let at = raw.find("/invitations/")?;
        let token: String = raw[at + "/invitations/".len()..].chars().take_while(char::is_ascii_hexdigit).collect();
        return Some(format!("/invitations/{token}"));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_developer_accepts_the_invitation_and_watches_ci_in_chromium() {
    use crate::browser::{axe_clean, fill, screenshots, submit, wait_for_text};
    use thirtyfour::prelude::*;
    if !have_tools() {
        return;
    }
    let Some(browser) = embargo_test_support::browser::Browser::start().await else { return };
    browser.resize(1280, 900).await;
    for db in both_backends() {
        let f = fixture(Some(&db));
        let (it, reference) = (&f.it, &f.reference);
        ok(it, &["fix", "open", reference]);
        let other = accepted_report(it, "fix-other@example.org");
        ok(it, &["fix", "open", &other]);
        ok(it, &["fix", "invite", reference, "--email", "dev@example.org"]);
        let base = format!("http://{}", f.server.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        let link = loop {
            if let Some(link) = invitation_link(it, "dev@example.org") {
                break link;
            }
            assert!(Instant::now() < deadline, "no invitation mail");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The invitation: a password, then sign-in with TOTP set up, then the fixes.
        let driver = browser.driver();
        driver.goto(format!("{base}{link}")).await.unwrap();
        axe_clean(&browser, "the invitation").await;
        let password = "a long developer password";
        fill(driver, "password", password).await;
        fill(driver, "confirm", password).await;
        submit(driver, "button[type=submit]").await;
        driver.goto(format!("{base}/login")).await.unwrap();
        fill(driver, "email", "dev@example.org").await;
        fill(driver, "password", password).await;
        submit(driver, "button[type=submit]").await;
        let secret = driver.find(By::Id("totp-secret")).await.unwrap().text().await.unwrap();
        let code = embargo_app::sessions::totp_code(&secret, embargo_domain::Timestamp::now()).unwrap();
        fill(driver, "code", &code).await;
        submit(driver, "form[action='/login/totp'] button[type=submit]").await;
        submit(driver, "a.button.primary").await;
        // Their start page lists their fix and nothing else.
        assert!(driver.current_url().await.unwrap().path().ends_with("/fixes"));
        let main = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
        assert!(main.contains(reference.as_str()) && !main.contains(other.as_str()), "{main}");
        axe_clean(&browser, "/fixes").await;
        // The report itself, another fix, the inbox: not theirs.
        for page in [format!("/reports/{reference}"), format!("/reports/{other}/fix"), "/team/advisories".to_owned()] {
            driver.goto(format!("{base}{page}")).await.unwrap();
            let text = driver.find(By::Tag("main")).await.unwrap().text().await.unwrap();
            assert!(!text.contains("Overflow in parser") && !text.contains("Backport matrix"), "{page}: {text}");
        }

        // A push, and the CI run finishes before their eyes (the page reloads itself).
        let token = ok(it, &["admin", "create-token", "--email", "dev@example.org"]).stdout.trim().to_owned();
        let clone = f.root.path().join("clone");
        git_ok(f.root.path(), &["clone", "-q", &f.url("dev@example.org", &token, reference), clone.to_str().unwrap()]);
        std::fs::write(clone.join("code.txt"), "fixed\n").unwrap();
        std::fs::write(clone.join("ci.sh"), "echo checking the bounds; sleep 2; grep -q fixed code.txt\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);
        driver.goto(format!("{base}/reports/{reference}/fix")).await.unwrap();
        let run = driver.find(By::Css("#runs a")).await.unwrap();
        run.click().await.unwrap();
        wait_for_text(driver, "run-state", "passed").await;
        wait_for_text(driver, "log", "checking the bounds").await;
        axe_clean(&browser, "a CI run").await;
        driver.goto(format!("{base}/reports/{reference}/fix")).await.unwrap();
        wait_for_text(driver, "matrix", "passed").await;
        axe_clean(&browser, "the fix page").await;
        let shots = screenshots();
        std::fs::create_dir_all(&shots).unwrap();
        browser.screenshot(&shots.join("fix.png")).await;
    }
}

/// The fake external CI (`fake_ci.py`), with its plan per delivery; its port and its
/// printed lines.
struct FakeCi {
    child: std::process::Child,
    port: u16,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeCi {
    fn start(secret: &str, plan: &[&str]) -> Self {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fake_ci.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(plan)
            .env("FAKE_CI_SECRET", secret)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the fake CI");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = first.trim().strip_prefix("port ").and_then(|p| p.parse().ok()).expect("the fake CI's port");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        FakeCi { child, port, lines }
    }
}

impl Drop for FakeCi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_external_ci_gets_signed_pushes_and_reports_back_signed() {
    if !have_tools() {
        return;
    }
    let secret = "an external CI secret of 32 chars or more";
    for db in both_backends() {
        // Deliveries: the first refused (503: retried), the second taken, the third's answer lost.
        let ci = FakeCi::start(secret, &["refuse", "accept", "drop"]);
        let root = tempfile::tempdir().unwrap();
        let public = public_repository(root.path());
        let it = Instance::new(BIN, Some(&db));
        ok(&it, &["product", "add", "app"]);
        ok(
            &it,
            &["product", "set", "app", "--repository", public.to_str().unwrap(), "--release-lines", "main,release-1.x"],
        );
        ok(&it, &["product", "set", "app", "--test-command", "make test"]);
        let reference = accepted_report(&it, "ext-1@example.org");
        let ci_url = format!("http://127.0.0.1:{}/hook", ci.port);
        // The webhook names the callback by the public URL: serve on a known free port.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address = format!("127.0.0.1:{port}");
        let public_url = format!("http://{address}");
        let mut cmd = it.command(&["serve", "--http", &address, "--smtp", "127.0.0.1:0"]);
        cmd.env("EMBARGO_METRICS_LISTEN", "127.0.0.1:0")
            .env("EMBARGO_PUBLIC_URL", &public_url)
            .env("EMBARGO_FIXES__EXTERNAL_CI_URL", &ci_url)
            .env("EMBARGO_FIXES__EXTERNAL_CI_SECRET", secret)
            .env("EMBARGO_JOBS__LEASE_SECONDS", "2")
            .env("EMBARGO_JOBS__POLL_INTERVAL_MS", "50");
        let server = Server::start(cmd);
        ok(&it, &["fix", "open", &reference]);
        ok(&it, &["fix", "invite", &reference, "--email", "dev@example.org"]);
        let token = ok(&it, &["admin", "create-token", "--email", "dev@example.org"]).stdout.trim().to_owned();
        let url = format!("http://dev%40example.org:{token}@{}/git/{reference}.git", server.addr);
        let clone = root.path().join("clone");
        git_ok(root.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        std::fs::write(clone.join("code.txt"), "fixed\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);
        let head = git_ok(&clone, &["rev-parse", "HEAD"]).stdout.trim().to_owned();

        // Refused once (503), delivered on the retry, reported back: passed, with its log.
        let done = settled(&it, &reference);
        assert_eq!(line(&done, "main")["ci"], "passed", "{done}");
        let deliveries = ci.lines.lock().unwrap().clone();
        assert_eq!(deliveries.len(), 2, "{deliveries:?}");
        assert!(deliveries[0].ends_with("refuse") && deliveries[1].ends_with("accept"), "{deliveries:?}");
        let log = ok(&it, &["fix", "log", &reference, "--line", "main"]).stdout;
        assert!(log.contains(&format!("testing {head} of main")) && log.contains("all 3 tests passed"), "{log}");
        let run = line(&done, "main")["run"].as_i64().unwrap();

        // Callbacks that are not the CI's, or not about this run, change nothing.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let callback = |state: &str, commit: &str, key: &str, at: i64| {
            let body = serde_json::json!({"run": run, "commit": commit, "state": state, "log": "forged\n"}).to_string();
            let signature = embargo_domain::fix::sign(key.as_bytes(), at, body.as_bytes());
            server.http(
                "POST",
                "/fixes/ci-callback",
                &[("content-type", "application/json"), ("x-embargo-signature", &signature)],
                body.as_bytes(),
            )
        };
        assert_eq!(callback("failed", &head, "not the secret at all, but long enough", now).status, 401);
        assert_eq!(callback("failed", &head, secret, now - 1_000).status, 401, "a replay of an old message");
        assert_eq!(callback("failed", &"0".repeat(40), secret, now).status, 404);
        assert_eq!(callback("failed", &head, secret, now).status, 422, "a final state never changes");
        assert_eq!(callback("passed", &head, secret, now).status, 200, "a redelivery is accepted and ignored");
        let unsigned = server.http("POST", "/fixes/ci-callback", &[("content-type", "application/json")], b"{}");
        assert_eq!(unsigned.status, 401);
        let after = status(&it, &reference);
        assert_eq!(line(&after, "main")["ci"], "passed");
        assert!(!ok(&it, &["fix", "log", &reference, "--line", "main"]).stdout.contains("forged"));

        // An answer lost after the request went out: not sent twice; the run fails and says why.
        std::fs::write(clone.join("code.txt"), "fixed again\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds again"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);
        let lost = settled(&it, &reference);
        assert_eq!(line(&lost, "main")["ci"], "failed", "{lost}");
        let log = ok(&it, &["fix", "log", &reference, "--line", "main"]).stdout;
        assert!(log.contains("may or may not have received"), "{log}");
        let deliveries = ci.lines.lock().unwrap().clone();
        assert_eq!(deliveries.len(), 3, "sent once, never again: {deliveries:?}");
    }
}
