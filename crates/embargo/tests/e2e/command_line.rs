//! What a new user hit at the command line (issue 12, items 13 and 18-22): options that
//! were not given, a mistyped data directory, a closed pipe, a broken database, misleading
//! messages, and answering a report.

use std::path::Path;
use std::process::{Command, Stdio};

use embargo_test_support::{Instance, Output, both_backends, postgres, require, run_command};
use serde_json::Value;

use crate::BIN;

fn mail(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: security@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n")
        .into_bytes()
}

fn ok(it: &Instance, args: &[&str]) -> Output {
    let out = it.run(args, b"");
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out
}

fn new_report(it: &Instance, id: &str) -> String {
    let out = it.run(&["ingest-mail"], &mail("alice@example.org", "Overflow in parser", id, "Steps"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().trim_start_matches("new report ").to_owned()
}

/// `embargo` with no `--data-dir` or `--database-url` of the harness, run in `cwd`, clean of
/// `EMBARGO_*` variables.
fn bare(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("EMBARGO_") && key != "EMBARGO_TEST_STRICT" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Every file below `dir` (empty when it does not exist).
fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            stack.extend(entries.flatten().map(|e| e.path()));
        } else if path != dir {
            found.push(path);
        }
    }
    found
}

fn url_of(it: &Instance) -> String {
    it.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", it.data_dir.join("embargo.db").display()))
}

fn products(it: &Instance) -> Value {
    let out = ok(it, &["product", "list", "--json"]);
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn product_set_changes_only_the_details_it_is_given() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        ok(&it, &["product", "add", "wiki"]);
        ok(
            &it,
            &[
                "product",
                "set",
                "wiki",
                "--repository",
                "https://git.example.org/wiki",
                "--ecosystem",
                "npm",
                "--purl",
                "pkg:npm/wiki",
                "--release-lines",
                "2.x,3.x",
            ],
        );
        ok(&it, &["product", "set", "wiki", "--release-lines", "3.x"]);
        let p = &products(&it)[0];
        assert_eq!(p["repository_url"], "https://git.example.org/wiki", "{}: {p}", db.backend);
        assert_eq!(p["ecosystem"], "npm");
        assert_eq!(p["purl"], "pkg:npm/wiki");
        assert_eq!(p["release_lines"], serde_json::json!(["3.x"]));

        // An empty value clears that one detail.
        ok(&it, &["product", "set", "wiki", "--repository", ""]);
        let p = &products(&it)[0];
        assert_eq!((p["repository_url"].as_str(), p["purl"].as_str()), (Some(""), Some("pkg:npm/wiki")), "{p}");
        assert_eq!(p["release_lines"], serde_json::json!(["3.x"]));

        let out = it.run(&["product", "set", "wiki"], b"");
        assert_eq!(out.code, 64, "nothing to change: {}", out.stderr);
        assert_eq!(products(&it)[0]["ecosystem"], "npm");
    }
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    let it = Instance::new(BIN, None);
    let id = new_report(&it, "pipe@example.org");
    for args in [
        &["report", "list"][..],
        &["report", "list", "--json"],
        &["report", "show", &id],
        &["audit", "list"],
        &["jobs", "list"],
        &["config", "example"],
    ] {
        // The reader is gone before the first line is written (`| head -0`).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = it.command(args);
        cmd.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped());
        let out = cmd.spawn().unwrap().wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_a_place_without_an_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nonexistent/dir");
    let missing_arg = missing.to_str().unwrap();
    let out = run_command(bare(tmp.path(), &["report", "list", "--data-dir", missing_arg]), b"");
    assert_eq!(out.code, 66, "{}", out.stderr);
    assert!(out.stderr.contains("no Embargo instance") && out.stderr.contains(missing_arg), "{}", out.stderr);
    assert!(!out.stdout.contains("no reports"));
    assert!(!missing.exists(), "a wrong --data-dir was created");

    // An existing directory that holds no instance stays untouched, whatever the command.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty_arg = empty.to_str().unwrap();
    for args in [
        &["report", "list"][..],
        &["report", "show", "SEC-2026-1"],
        &["audit", "verify"],
        &["jobs", "list"],
        &["product", "add", "x"],
        &["admin", "create-user", "--email", "a@example.org", "--role", "admin"],
        &["metrics"],
        &["outbox", "list"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--data-dir", empty_arg]);
        let out = run_command(bare(tmp.path(), &all), b"");
        assert_eq!(out.code, 66, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: one clear line: {}", out.stderr);
        assert_eq!(files_below(&empty), Vec::<std::path::PathBuf>::new(), "{args:?} created files");
    }
    // An MTA keeps the message and retries (75) rather than bouncing it.
    let out = run_command(
        bare(tmp.path(), &["ingest-mail", "--data-dir", empty_arg]),
        &mail("a@example.org", "s", "m@example.org", "b"),
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("no Embargo instance"), "{}", out.stderr);
    assert!(files_below(&empty).is_empty());

    // `migrate` creates one and says so, once.
    let out = run_command(bare(tmp.path(), &["migrate", "--data-dir", empty_arg]), b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("created a new instance in the SQLite database"), "{}", out.stderr);
    assert!(out.stderr.contains("created a new master key"), "{}", out.stderr);
    let out = run_command(bare(tmp.path(), &["migrate", "--data-dir", empty_arg]), b"");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let out = run_command(bare(tmp.path(), &["report", "list", "--data-dir", empty_arg]), b"");
    assert_eq!((out.code, out.stdout.trim()), (0, "no reports"), "{}", out.stderr);

    // PostgreSQL and no data directory: no stray ./embargo-data/master.key.
    let Some(server) = require("PostgreSQL", postgres()) else { return };
    let db = server.fresh_database();
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let out = run_command(bare(&cwd, &["report", "list", "--database-url", &db.url]), b"");
    assert_eq!(out.code, 66, "{}", out.stderr);
    assert!(out.stderr.contains("no master key") && out.stderr.contains("master.key"), "{}", out.stderr);
    assert!(files_below(&cwd).is_empty(), "files created: {:?}", files_below(&cwd));
    // With a key but an empty database: still no instance, and the database stays empty.
    let key = std::fs::read_to_string(empty.join("master.key")).unwrap();
    let mut cmd = bare(&cwd, &["report", "list", "--database-url", &db.url]);
    cmd.env("EMBARGO_MASTER_KEY", key.trim());
    let out = run_command(cmd, b"");
    assert_eq!(out.code, 66, "{}", out.stderr);
    assert!(out.stderr.contains("tables are missing"), "{}", out.stderr);
    assert!(files_below(&cwd).is_empty());
}

#[test]
fn a_master_key_that_does_not_open_the_database_is_named_once() {
    let stranger = Instance::new(BIN, None);
    let stranger_key = std::fs::read_to_string(stranger.data_dir.join("master.key")).unwrap();
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let id = new_report(&it, "sealed@example.org");
        let url = url_of(&it);
        let tmp = tempfile::tempdir().unwrap();
        let other = tmp.path().join("other");
        let other_arg = other.to_str().unwrap();

        let mut cmd = bare(tmp.path(), &["report", "show", &id, "--data-dir", other_arg, "--database-url", &url]);
        cmd.env("EMBARGO_MASTER_KEY", stranger_key.trim());
        let out = run_command(cmd, b"");
        assert_eq!(out.code, 78, "{}: {}", db.backend, out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "said once: {}", out.stderr);
        assert!(out.stderr.contains("sealed under master key") && out.stderr.contains("EMBARGO_MASTER_KEY"));

        // `serve` and `migrate` refuse too, and create no key beside someone else's data.
        for command in [&["migrate"][..], &["serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"]] {
            let mut args = command.to_vec();
            args.extend(["--data-dir", other_arg, "--database-url", &url]);
            let out = run_command(bare(tmp.path(), &args), b"");
            assert_eq!(out.code, 78, "{command:?}: {}", out.stderr);
            assert!(out.stderr.contains("sealed under master key"), "{}", out.stderr);
            assert!(out.stderr.contains("no master key"), "{}", out.stderr);
            assert!(!other.join("master.key").exists(), "{command:?} made a stray key");
        }
        // The instance's own key still reads it.
        let out = ok(&it, &["report", "show", &id, "--json"]);
        assert!(out.stdout.contains("Overflow in parser"));
    }
}

#[test]
fn database_failures_name_their_cause_at_once() {
    let it = Instance::new(BIN, None);
    for name in ["embargo.db-wal", "embargo.db-shm"] {
        let _ = std::fs::remove_file(it.data_dir.join(name));
    }
    std::fs::write(it.data_dir.join("embargo.db"), "This is a text file, not a database. ".repeat(200)).unwrap();
    for args in [&["report", "list"][..], &["migrate"]] {
        let out = it.run(args, b"");
        assert_eq!(out.code, 65, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("is not a database file"), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line, no retries: {}", out.stderr);
        assert!(!out.stderr.contains("timed out"));
    }

    // A PostgreSQL address where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://embargo:hunter2@127.0.0.1:{port}/embargo");
    let keyed = Instance::new(BIN, None);
    for args in [&["report", "list"][..], &["migrate"]] {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        let out = keyed.run(&all, b"");
        assert_eq!(out.code, 69, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("connection refused at 127.0.0.1:{port}")), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line, no retries: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2"));
    }
}

#[test]
fn replies_and_notes_from_the_command_line() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let id = new_report(&it, "reply@example.org");
        // Reporter-facing text is kept exactly, whatever it holds.
        let reply = "Fixed in 2.4.1. <script>alert(1)</script>\n\tindented, trailing spaces  ";
        let out = ok(&it, &["report", "reply", &id, "--body", reply, "--json"]);
        let answer: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!((answer["id"].as_str(), answer["kind"].as_str()), (Some(id.as_str()), Some("reply")), "{answer}");
        let reply_id = answer["message"].as_i64().expect("the message's id");
        let note = "- internal: reproduced on 2.4.0\n- <img src=x onerror=alert(1)>\n";
        let out = it.run(&["report", "note", &id, "--body", "-"], note.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let note_id: i64 = out
            .stdout
            .trim()
            .strip_prefix(&format!("{id}: note "))
            .and_then(|rest| rest.strip_suffix(" added"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", out.stdout));

        let shown: Value = serde_json::from_str(&ok(&it, &["report", "show", &id, "--json"]).stdout).unwrap();
        let message = |id: i64| {
            shown["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().expect("in the thread")
        };
        assert_eq!(
            (message(reply_id)["kind"].as_str(), message(reply_id)["body"].as_str()),
            (Some("outbound"), Some(reply))
        );
        assert_eq!((message(note_id)["kind"].as_str(), message(note_id)["body"].as_str()), (Some("note"), Some(note)));
        // The reply goes out by a job, like one written on the web.
        let jobs: Value = serde_json::from_str(&ok(&it, &["jobs", "list", "--json"]).stdout).unwrap();
        assert!(jobs.as_array().unwrap().iter().any(|j| j["kind"] == "mail.message"), "{jobs}");

        // `--as`: the account's permissions apply and its name is recorded.
        ok(&it, &["admin", "create-user", "--email", "resp@example.org", "--role", "responder"]);
        ok(&it, &["admin", "create-user", "--email", "lead@example.org", "--role", "admin"]);
        let out = it.run(&["report", "note", &id, "--body", "x", "--as", "resp@example.org"], b"");
        // Need to know: a report outside the responder's products does not exist for them.
        assert_eq!(
            (out.code, out.stderr.trim()),
            (1, format!("embargo: report {id} not found").as_str()),
            "not the responder's product"
        );
        let out = it.run(&["report", "note", &id, "--body", "x", "--as", "nobody@example.org"], b"");
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("account nobody@example.org not found"), "{}", out.stderr);
        ok(&it, &["report", "note", &id, "--body", "seen", "--as", "lead@example.org"]);
        let out = it.run(&["report", "note", &id, "--body", " \n "], b"");
        assert_eq!(out.code, 65, "an empty note: {}", out.stderr);

        // A question waits for the reporter.
        let out = ok(&it, &["report", "reply", &id, "--ask", "--body", "Which version do you run?"]);
        assert!(out.stdout.contains("needs-info"), "{}", out.stdout);
        let shown: Value = serde_json::from_str(&ok(&it, &["report", "show", &id, "--json"]).stdout).unwrap();
        assert_eq!(shown["state"], "needs-info");

        let audit: Vec<Value> = ok(&it, &["audit", "list", "--json", "--limit", "1000"])
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let entries = |action: &str| audit.iter().filter(|e| e["action"] == action).cloned().collect::<Vec<_>>();
        assert_eq!(entries("report.reply").len(), 2, "{}", db.backend);
        let notes = entries("report.note");
        assert_eq!(notes.len(), 2, "refused notes are not recorded: {notes:?}");
        assert!(notes[0]["actor"].as_str().unwrap().starts_with("cli:"), "{notes:?}");
        assert!(notes[1]["actor"].as_str().unwrap().ends_with(":admin"), "as lead@: {notes:?}");
        assert!(notes.iter().all(|e| e["details"].as_str().unwrap().starts_with("message=")));
        assert!(!entries("user.act_as").is_empty(), "the switch of account is audited");
    }
}

#[test]
fn messages_speak_of_this_instance() {
    let it = Instance::new(BIN, None);
    let year = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
    let mut cmd = it.command(&["report", "show", "ACME-26-1"]);
    cmd.env("EMBARGO_ORGANISATION__REFERENCE_PREFIX", "ACME");
    let out = run_command(cmd, b"");
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("ACME-{year}-1")), "{}", out.stderr);
    assert!(!out.stderr.contains("EMB-") && !out.stderr.contains("SEC-"), "{}", out.stderr);

    let id = new_report(&it, "key@example.org");
    let out = it.run(&["report", "import-key", &id, "--attachment", "99"], b"");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("attachment 99 of {id} not found")), "{}", out.stderr);
    assert!(!out.stderr.contains("did not come from the reporter"), "{}", out.stderr);

    // CVSS 3.0, still common: refused with the reason and what to do, not as a bad prefix.
    let v30 = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    for args in [&["cvss", v30][..], &["report", "assess", &id, "--cvss", v30]] {
        let out = it.run(args, b"");
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("CVSS 3.0 vectors are not supported"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("CVSS:3.1/"), "{}", out.stderr);
    }
}
