//! The CLI contract, the server, encryption at rest, audit tampering and workers sharing
//! PostgreSQL.

use std::time::{Duration, Instant};

use embargo_test_support::{Instance, TestDb, both_backends, files_containing, postgres, require};
use serde_json::Value;

use crate::BIN;

fn mail(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: security@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n")
        .into_bytes()
}

fn assert_no_panic(out: &embargo_test_support::Output) {
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"), "{}", out.stderr);
}

async fn sql(db_url: &str, statements: &[&'static str]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.unwrap();
    for statement in statements {
        sqlx::query(*statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

fn url_of(it: &Instance) -> String {
    it.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", it.data_dir.join("embargo.db").display()))
}

#[test]
fn serve_is_healthy_prints_the_first_admin_link_and_stops_on_sigterm() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&[]);
        let health = server.http("GET", "/healthz", &[], b"");
        assert_eq!(health.status, 200, "{}: {}", db.backend, health.body);
        let body: Value = serde_json::from_str(&health.body).unwrap();
        assert_eq!(body["database"], db.backend);
        assert_eq!(health.header("x-request-id").map(str::len), Some(16));
        assert_eq!(health.header("x-frame-options"), Some("DENY"));
        assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(health.header("referrer-policy"), Some("no-referrer"));
        assert!(health.header("content-security-policy").unwrap().contains("default-src 'none'"));

        // Metrics are served on their own (loopback) listener, never on the public one.
        let metrics = server.metrics(&[]);
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.body.contains("embargo_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"),
            "{}",
            metrics.body
        );
        let public = server.http("GET", "/metrics", &[], b"");
        assert_eq!(public.status, 404, "the public listener has no /metrics");
        assert!(!public.body.contains("embargo_"), "{}", public.body);
        assert_eq!(server.http("GET", "/nope", &[], b"").status, 404);
        let home = server.http("GET", "/", &[], b"");
        assert!(home.body.contains("mailto:security@example.org") && home.body.contains("/.well-known/security.asc"));

        // The one-time link creates the first admin, once.
        let link = server
            .stdout_lines()
            .iter()
            .find_map(|l| l.trim().strip_prefix(&format!("http://{}", server.addr)).map(str::to_owned))
            .expect("first-admin link printed");
        assert!(link.starts_with("/setup/"));
        // Served over plain HTTP, it says at start that it is no CSAF provider (issue 19 item 10).
        assert!(
            server.stdout_lines().iter().any(|l| l.starts_with("Not a CSAF provider: public_url http://")),
            "{:?}",
            server.stdout_lines()
        );
        let form = server.http("GET", &link, &[], b"");
        assert_eq!(form.status, 200);
        assert!(form.body.contains("Create the first administrator"));
        let form_type = ("content-type", "application/x-www-form-urlencoded");
        let cross = server.http(
            "POST",
            &link,
            &[form_type, ("sec-fetch-site", "cross-site")],
            b"email=a%40example.org&password=long+enough+pw&confirm=long+enough+pw",
        );
        assert_eq!(cross.status, 403);
        let mismatch = server.http(
            "POST",
            &link,
            &[form_type],
            b"email=a%40example.org&password=long+enough+pw&confirm=other+password",
        );
        assert_eq!(mismatch.status, 422);
        assert!(mismatch.body.contains("do not match") && mismatch.body.contains("value=\"a@example.org\""));
        let hostile = server.http(
            "POST",
            &link,
            &[form_type],
            b"email=%3Cscript%3E&password=long+enough+pw&confirm=long+enough+pw",
        );
        assert_eq!(hostile.status, 422);
        assert!(!hostile.body.contains("<script>"), "{}", hostile.body);
        let created = server.http(
            "POST",
            &link,
            &[form_type, ("sec-fetch-site", "same-origin")],
            b"email=a%40example.org&password=long+enough+pw&confirm=long+enough+pw",
        );
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(server.http("GET", &link, &[], b"").status, 404, "link works once");

        // Logs carry route templates, never the secret link.
        let token = link.trim_start_matches("/setup/");
        let logs = server.logs();
        assert!(logs.contains("route=/setup/{token}"), "{logs}");
        assert!(!logs.contains(token), "the setup token was logged");

        let started = Instant::now();
        assert_eq!(server.terminate(Duration::from_secs(20)), Some(0), "{}: clean exit on SIGTERM", db.backend);
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

/// Probe jobs done (workers also schedule their own jobs, such as the SLA sweep).
const PROBES_DONE: &str = "SELECT COUNT(*) FROM jobs WHERE state = 'done' AND kind = 'diagnostic.probe'";

#[test]
fn mail_in_then_list_show_and_move_through_the_cli() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let out = it.run(
            &["ingest-mail"],
            &mail("Alice <alice@example.org>", "Heap overflow in parser", "one@example.org", "Steps to reproduce"),
        );
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        let year = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        assert_eq!(out.stdout.trim(), format!("new report SEC-{year}-1"));
        let id = format!("SEC-{year}-1");

        let out = it.run(&["ingest-mail"], &mail("bob@example.org", "Second", "two@example.org", "Other"));
        assert_eq!(out.code, 0);

        let out = it.run(&["report", "list", "--json"], b"");
        let list: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert_eq!(list[1]["id"], id.as_str());
        assert_eq!(list[1]["state"], "new");
        assert_eq!(list[1]["title"], "Heap overflow in parser");

        let out = it.run(&["report", "show", &id, "--json"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let shown: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(shown["reporter"]["email"], "alice@example.org");
        assert_eq!(shown["messages"][0]["body"].as_str().unwrap().trim(), "Steps to reproduce");

        let out = it.run(&["report", "transition", &id, "acknowledged"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout.trim(), format!("{id}: new -> acknowledged"));
        let out = it.run(&["report", "transition", &id, "disclosed"], b"");
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("cannot move from acknowledged to disclosed"), "{}", out.stderr);
        let second = format!("SEC-{year}-2");
        // The target is parsed before anything is looked up: a duplicate needs its original
        // and an original needs a duplicate (exit 65, EX_DATAERR).
        let out = it.run(&["report", "transition", &second, "closed:duplicate"], b"");
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.stderr.contains("needs the original report"), "{}", out.stderr);
        let out = it.run(&["report", "transition", &second, "closed:spam", "--duplicate-of", &id], b"");
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.stderr.contains("only goes with closed:duplicate"), "{}", out.stderr);
        let out = it.run(&["report", "transition", &second, "closed:duplicate", "--duplicate-of", &id], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);

        let out = it.run(&["report", "list", "--state", "closed", "--json"], b"");
        let closed: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(closed[0]["close_reason"], "duplicate");

        let out = it.run(&["report", "show", &id], b"");
        assert!(
            out.stdout.contains("state:     acknowledged") && out.stdout.contains("new -> acknowledged"),
            "{}",
            out.stdout
        );

        let out = it.run(&["audit", "list", "--json"], b"");
        let actions: Vec<String> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["action"].as_str().unwrap().to_owned())
            .collect();
        for expected in ["report.create", "report.list", "report.export", "report.transition", "report.read"] {
            assert!(actions.iter().any(|a| a == expected), "{expected} not audited: {actions:?}");
        }
        assert_no_panic(&out);
    }
}

#[test]
fn assessment_and_the_business_calendar_through_the_cli() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let out = it.run(&["ingest-mail"], &mail("alice@example.org", "XSS in wiki", "x1@example.org", "Steps"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let id = out.stdout.trim().trim_start_matches("new report ").to_owned();

        let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:L/VA:N/SC:L/SI:L/SA:N";
        let out = it.run(
            &[
                "report",
                "assess",
                &id,
                "--cvss",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
                "--cvss",
                v4,
                "--cwe",
                "CWE-79",
                "--ssvc",
                "SSVCv2/E:P/U:E/TI:P/PSI:M/",
            ],
            b"",
        );
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        assert!(out.stdout.contains("severity medium") || out.stdout.contains("severity Medium"), "{}", out.stdout);
        let out = it.run(&["report", "show", &id, "--json"], b"");
        let shown: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(shown["assessment"]["cvss_v4"], v4);
        assert_eq!(shown["assessment"]["cwe"][0], "CWE-79");
        assert_eq!(shown["assessment"]["ssvc"], "SSVCv2/E:P/U:E/TI:P/PSI:M/DSOI:S/");
        assert_eq!(shown["deadlines"][0]["clock"], "acknowledge");
        assert!(shown["deadlines"][0]["due"].is_string());
        // Invalid input: a clear error and exit 65 (EX_DATAERR), nothing stored.
        let out = it.run(&["report", "assess", &id, "--cwe", "cwe-79"], b"");
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.stderr.contains("CWE identifier"), "{}", out.stderr);
        let out = it.run(&["report", "assess", &id, "--ssvc", "SSVCv2/E:P/"], b"");
        assert_ne!(out.code, 0);

        // The catalogue, near-duplicates and metrics.
        let out = it.run(&["product", "add", "wiki"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(
            &["product", "set", "wiki", "--ecosystem", "npm", "--purl", "pkg:npm/wiki", "--release-lines", "3.x,2.9"],
            b"",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["product", "set", "wiki", "--purl", "npm/wiki"], b"");
        assert_eq!(out.code, 65, "a bad package URL: {}", out.stderr);
        let out = it.run(&["product", "list", "--json"], b"");
        let products: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(products[0]["purl"], "pkg:npm/wiki");
        assert_eq!(products[0]["release_lines"][1], "2.9");
        assert_eq!(products[0]["release"]["tag_format"], "v{version}", "the default tag format");
        // Release settings (ADR 26): given ones change, the rest stay; the key by its fingerprint.
        let scratch = tempfile::tempdir().unwrap();
        let key_file = scratch.path().join("release-key.asc");
        // A GnuPG key (made by gpg, when installed: the key a real release signs with).
        let fingerprint = match crate::smtp::tool("gpg") {
            Some(_) => {
                let home = scratch.path().join("gnupg");
                std::fs::create_dir_all(&home).unwrap();
                std::process::Command::new("chmod").arg("700").arg(&home).status().unwrap();
                let gpg = crate::smtp::Gpg { home };
                gpg.add_key("Releases <r@example.org>");
                std::fs::write(&key_file, gpg.run(&["--armor", "--export", "r@example.org"])).unwrap();
                let listing = String::from_utf8(gpg.run(&["--with-colons", "--list-keys", "r@example.org"])).unwrap();
                Some(listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_owned())
            }
            None => None,
        };
        let mut args = vec![
            "product",
            "set",
            "wiki",
            "--artifacts-url",
            "https://dl.example.org/wiki/{version}/",
            "--artifacts",
            "wiki-{version}.tar.gz, wiki-{version}.zip",
            "--tag-format",
            "wiki-{version}",
        ];
        if fingerprint.is_some() {
            args.extend(["--signing-key", key_file.to_str().unwrap()]);
        }
        let out = it.run(&args, b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["product", "set", "wiki", "--artifacts-url", "http://dl.example.org/"], b"");
        assert_eq!(out.code, 65, "plain http only to loopback: {}", out.stderr);
        let out = it.run(&["product", "add", "blog", "--release-command", "make dist"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["product", "show", "wiki", "--json"], b"");
        let wiki: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(wiki["purl"], "pkg:npm/wiki", "unchanged");
        assert_eq!(wiki["release"]["artifacts_url"], "https://dl.example.org/wiki/{version}/");
        assert_eq!(wiki["release"]["artifacts"], serde_json::json!(["wiki-{version}.tar.gz", "wiki-{version}.zip"]));
        assert_eq!(wiki["release"]["tag_format"], "wiki-{version}");
        assert_eq!(wiki["release"]["signing_key_fingerprint"], fingerprint.unwrap_or_default().as_str());
        let out = it.run(&["product", "list", "--json"], b"");
        let products: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(products[0]["name"], "blog");
        assert_eq!(products[0]["release"]["release_command"], "make dist");
        let out = it.run(&["product", "show", "wiki"], b"");
        assert!(out.stdout.contains("wiki-{version}.tar.gz,wiki-{version}.zip"), "{}", out.stdout);
        let out = it.run(&["report", "similar", &id], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["report", "similar", &id, "--json"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(serde_json::from_str::<Value>(&out.stdout).unwrap().is_array(), "{}", out.stdout);
        let out = it.run(&["metrics", "--days", "30"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.lines().count() >= 2, "a header and the overall row: {}", out.stdout);
        let out = it.run(&["metrics", "--days", "0"], b"");
        assert_eq!(out.code, 65);

        // The calendar: an .ics import, a holiday, the weekend.
        let tmp = tempfile::tempdir().unwrap();
        let ics = tmp.path().join("holidays.ics");
        std::fs::write(
            &ics,
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270101\r\nRRULE:FREQ=YEARLY\r\n\
             SUMMARY:New Year\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        let out = it.run(&["calendar", "import", ics.to_str().unwrap()], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.starts_with("1 holidays added"), "one yearly rule, for every year: {}", out.stdout);
        let out = it.run(&["calendar", "add", "2027-05-03", "Spring"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["calendar", "set", "--time-zone", "Europe/Paris", "--weekend", "saturday,sunday"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["calendar", "show", "--json"], b"");
        let calendar: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(calendar["time_zone"], "Europe/Paris");
        assert!(calendar["holidays"].as_array().unwrap().iter().any(|h| h["date"] == "2027-05-03"));
        assert_eq!(calendar["yearly"][0]["description"], "every year on 1 January from 2027");
        assert_eq!(calendar["yearly"][0]["name"], "New Year");
        let rule = calendar["yearly"][0]["rule"].as_str().unwrap().to_owned();
        let out = it.run(&["calendar", "remove", "2040-01-01"], b"");
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("yearly rule"), "{}", out.stderr);
        let out = it.run(&["calendar", "remove-yearly", &rule], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Latin-1 is refused, as the web upload refuses it.
        std::fs::write(&ics, b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270714\r\nSUMMARY:F\xeate\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").unwrap();
        let out = it.run(&["calendar", "import", ics.to_str().unwrap()], b"");
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
        let out = it.run(&["calendar", "set", "--time-zone", "Nowhere/City"], b"");
        assert_eq!(out.code, 65);
        assert!(out.stderr.contains("unknown time zone"), "{}", out.stderr);
        let out = it.run(&["calendar", "remove", "2027-05-04"], b"");
        assert_ne!(out.code, 0, "no holiday on that date");
        assert_no_panic(&out);
    }
}

#[test]
fn advisories_import_list_export_and_publish_through_the_cli() {
    let Some(vectors) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        // A CNA's organisation UUID, so that records with a CVE ID have CVE outputs.
        let cna = |args: &[&str]| {
            let mut command = it.command(args);
            command.env("EMBARGO_ADVISORIES__CVE_ORG_ID", "b3476cb9-2e3d-41a6-98d0-0f47421a65b6");
            embargo_test_support::run_command(command, b"")
        };
        let file = vectors.join("GHSA-9v2f-6vcg-3hgv.json");
        let out = it.run(&["advisory", "import", "--format", "osv", file.to_str().unwrap()], b"");
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        let id = out.stdout.split_whitespace().nth(1).unwrap().to_owned();
        // Drafts and imports have handles; the public ID comes with the first publication.
        assert!(id.starts_with("DRAFT-"), "{}", out.stdout);

        let out = it.run(&["advisory", "list", "--json"], b"");
        let list: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(list[0]["id"], id.as_str());
        assert_eq!(list[0]["state"], "draft");

        let out = it.run(&["advisory", "export", &id, "--format", "osv"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let osv: Value = serde_json::from_str(&out.stdout).unwrap();
        let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(osv["aliases"].as_array().unwrap().contains(&original["id"]), "{osv}");
        assert_eq!(osv["schema_version"], "1.7.5");
        for format in ["csaf", "cve-record", "markdown", "html", "json"] {
            let out = cna(&["advisory", "export", &id, "--format", format]);
            assert_eq!(out.code, 0, "{format}: {}", out.stderr);
            assert!(!out.stdout.trim().is_empty(), "{format}");
        }
        let out = it.run(&["advisory", "export", &id, "--format", "pdf"], b"");
        assert_eq!(out.code, 65, "unknown format: {}", out.stderr);

        // Review needs a second person; the local administrator is one person.
        let out = cna(&["advisory", "check", &id]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let out = cna(&["advisory", "submit", &id]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["advisory", "approve", &id], b"");
        assert_ne!(out.code, 0, "the one who asked for review cannot approve");
        assert!(out.stderr.contains("second person"), "{}", out.stderr);
        let out = it.run(&["advisory", "publish", &id], b"");
        assert_ne!(out.code, 0, "not approved");
        assert_no_panic(&out);
    }
}

#[test]
fn cve_ids_are_reserved_assigned_published_and_rejected_against_cve_services() {
    let Some(vectors) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    let fake = embargo_test_support::cve_fake::CveFake::start();
    let db = both_backends().into_iter().next().unwrap();
    let it = Instance::new(BIN, Some(&db));
    let (url, org, user, key) = (fake.base_url().to_owned(), fake.org(), fake.user(), fake.api_key());
    // `as_user` is the OS user (the local administrator's name): review needs two people.
    let run = |args: &[&str], dry_run: bool, as_user: &str| {
        let mut command = it.command(args);
        command
            .env("EMBARGO_CVE_SERVICES__BASE_URL", &url)
            .env("EMBARGO_CVE_SERVICES__ORG", &org)
            .env("EMBARGO_CVE_SERVICES__USER", &user)
            .env("EMBARGO_CVE_SERVICES__API_KEY", &key)
            .env("EMBARGO_CVE_SERVICES__DRY_RUN", if dry_run { "true" } else { "false" })
            .env("EMBARGO_ADVISORIES__CVE_ORG_ID", "b3476cb9-2e3d-41a6-98d0-0f47421a65b6")
            .env("EMBARGO_ADVISORIES__CVE_SHORT_NAME", &org)
            .env("USER", as_user);
        embargo_test_support::run_command(command, b"")
    };

    // Dry run (the default): the request is shown, nothing is sent or stored.
    let out = run(&["cve", "reserve", "--count", "2"], true, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("dry run") && out.stdout.contains("POST ") && out.stdout.contains("[redacted]"));
    assert!(!out.stdout.contains(&key), "the API key is never printed");
    assert!(fake.requests().is_empty(), "a dry run sends nothing");

    let out = run(&["cve", "reserve", "--count", "2"], false, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: Vec<String> = out.stdout.split_whitespace().skip(1).map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "{}", out.stdout);
    let out = run(&["cve", "list", "--json"], false, "alice");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["state"], "RESERVED");

    // An imported advisory gets the first ID, is reviewed by a second person, published,
    // and its CNA container goes to CVE Services.
    let file = vectors.join("GO-2020-0001.json");
    let out = run(&["advisory", "import", file.to_str().unwrap()], false, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let advisory = out.stdout.split_whitespace().nth(1).unwrap().to_owned();
    let out = run(&["cve", "assign", &ids[0], &advisory], false, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&["cve", "publish", &advisory], false, "alice");
    assert_ne!(out.code, 0, "a draft does not go to CVE Services");
    for (step, who) in [("submit", "alice"), ("approve", "bob"), ("publish", "bob")] {
        let out = run(&["advisory", step, &advisory], false, who);
        assert_eq!(out.code, 0, "{step}: {}{}", out.stdout, out.stderr);
    }
    let out = run(&["cve", "publish", &advisory], false, "alice");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let sent = fake.requests().into_iter().find(|r| r.method == "POST" && r.path.ends_with("/cna")).expect("published");
    assert!(sent.path.contains(&ids[0]), "{}", sent.path);
    assert_eq!(sent.status, 200, "the fake accepted the container: {}", sent.body);
    assert_eq!(sent.headers.get("cve-api-org"), Some(&org));
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert!(body["cnaContainer"]["affected"].is_array());
    // Published again: an update (PUT).
    let out = run(&["cve", "publish", &advisory], false, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(fake.requests().iter().any(|r| r.method == "PUT" && r.path.ends_with("/cna") && r.status == 200));

    // Withdrawn through the CLI, by its public ID: the command names what is left to do at
    // CVE Services, and the advisory is final.
    let out = run(&["advisory", "list", "--json"], false, "alice");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let public_id = list[0]["public_id"].as_str().expect("published, so a public ID").to_owned();
    assert!(public_id.starts_with("SEC-"), "{list}");
    let out = run(&["advisory", "withdraw", &public_id, "--reason", "Not a vulnerability after all."], false, "bob");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&format!("{public_id} withdrawn (revision 2)")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("embargo cve reject {}", ids[0])), "{}", out.stdout);
    let out = run(&["advisory", "export", &advisory, "--format", "cve-record"], false, "alice");
    let record: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(record["cveMetadata"]["state"], "REJECTED", "{record}");
    let out = run(&["advisory", "withdraw", &advisory, "--reason", "Again."], false, "bob");
    assert_ne!(out.code, 0, "a withdrawal is final");

    // The second ID is rejected.
    let out = run(&["cve", "reject", &ids[1], "--reason", "Duplicate of another report."], false, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&["cve", "list", "--json"], false, "alice");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let states: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"PUBLISHED") && states.contains(&"REJECTED"), "{states:?}");

    // Wrong credentials: a clear error without the key.
    let mut command = it.command(&["cve", "reserve"]);
    command
        .env("EMBARGO_CVE_SERVICES__BASE_URL", &url)
        .env("EMBARGO_CVE_SERVICES__ORG", &org)
        .env("EMBARGO_CVE_SERVICES__USER", &user)
        .env("EMBARGO_CVE_SERVICES__API_KEY", "not-the-key")
        .env("EMBARGO_CVE_SERVICES__DRY_RUN", "false");
    let out = embargo_test_support::run_command(command, b"");
    assert_ne!(out.code, 0);
    assert!(!out.stderr.contains("not-the-key"), "{}", out.stderr);
    assert_no_panic(&out);
}

/// The crash test of a CVE publication: the process is killed (SIGKILL) after CVE Services
/// published the record and before Embargo committed that; run again, it reads the ID's state
/// at CVE Services, records the publication, and sends nothing twice: exactly one publish
/// POST, on each backend.
#[test]
fn a_cve_publication_interrupted_by_a_crash_is_reconciled_not_sent_twice() {
    let Some(vectors) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    for db in both_backends() {
        let fake = embargo_test_support::cve_fake::CveFake::start();
        let it = Instance::new(BIN, Some(&db));
        let (url, org, user, key) = (fake.base_url().to_owned(), fake.org(), fake.user(), fake.api_key());
        let command = |args: &[&str], as_user: &str| {
            let mut command = it.command(args);
            command
                .env("EMBARGO_CVE_SERVICES__BASE_URL", &url)
                .env("EMBARGO_CVE_SERVICES__ORG", &org)
                .env("EMBARGO_CVE_SERVICES__USER", &user)
                .env("EMBARGO_CVE_SERVICES__API_KEY", &key)
                .env("EMBARGO_CVE_SERVICES__DRY_RUN", "false")
                .env("EMBARGO_ADVISORIES__CVE_ORG_ID", "b3476cb9-2e3d-41a6-98d0-0f47421a65b6")
                .env("EMBARGO_ADVISORIES__CVE_SHORT_NAME", &org)
                // A crashed command's lease on the publication job expires quickly.
                .env("EMBARGO_JOBS__LEASE_SECONDS", "2")
                .env("USER", as_user);
            command
        };
        let run = |args: &[&str], as_user: &str| embargo_test_support::run_command(command(args, as_user), b"");
        let out = run(&["cve", "reserve", "--count", "1"], "alice");
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        let id = out.stdout.split_whitespace().nth(1).unwrap().to_owned();
        let file = vectors.join("GO-2020-0001.json");
        let out = run(&["advisory", "import", file.to_str().unwrap()], "alice");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let advisory = out.stdout.split_whitespace().nth(1).unwrap().to_owned();
        assert_eq!(run(&["cve", "assign", &id, &advisory], "alice").code, 0);
        for (step, who) in [("submit", "alice"), ("approve", "bob"), ("publish", "bob")] {
            let out = run(&["advisory", step, &advisory], who);
            assert_eq!(out.code, 0, "{step}: {}{}", out.stdout, out.stderr);
        }

        // CVE Services takes the POST, but its answer hangs: the process is killed there.
        fake.hold_answers("POST", "/cna");
        let mut child = command(&["cve", "publish", &advisory], "alice")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let publish_posts =
            || fake.requests().iter().filter(|r| r.method == "POST" && r.path == format!("/api/cve/{id}/cna")).count();
        let started = Instant::now();
        while publish_posts() == 0 {
            assert!(started.elapsed() < Duration::from_secs(120), "{}: the publish POST never came", db.backend);
            assert!(child.try_wait().unwrap().is_none(), "{}: the command ended before its call", db.backend);
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        fake.release();
        assert_eq!(fake.id(&id).unwrap().state, "PUBLISHED", "CVE Services published it");
        let out = run(&["cve", "list", "--json"], "alice");
        let list: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(list[0]["state"], "RESERVED", "{}: the crash came before the commit", db.backend);

        // Run again: the publication is reconciled with a read, not sent again.
        let out = run(&["cve", "publish", &advisory], "alice");
        assert_eq!(out.code, 0, "{}: {}{}", db.backend, out.stdout, out.stderr);
        assert!(out.stdout.contains(&id), "{}", out.stdout);
        assert_eq!(publish_posts(), 1, "{}: exactly one publish POST", db.backend);
        assert!(
            fake.requests().iter().any(|r| r.method == "GET" && r.path == format!("/api/cve-id/{id}")),
            "{}: reconciled by reading the ID's state",
            db.backend
        );
        let out = run(&["cve", "list", "--json"], "alice");
        let list: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(list[0]["state"], "PUBLISHED", "{}", db.backend);
        let out = run(&["audit", "list", "--json", "--limit", "1000"], "alice");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let published: Vec<String> = out
            .stdout
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|e| e["action"] == "cve.publish")
            .map(|e| e["details"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(published.len(), 1, "{}: recorded once: {published:?}", db.backend);
        assert!(published[0].contains("reconciled=true"), "{published:?}");
        // And again: an update (PUT), the record published once.
        let out = run(&["cve", "publish", &advisory], "alice");
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        assert_eq!(publish_posts(), 1, "{}", db.backend);
        assert!(fake.requests().iter().any(|r| r.method == "PUT" && r.path.ends_with("/cna") && r.status == 200));
    }
}

/// The crash tests of a CVE reservation and a rejection: the process is killed (SIGKILL)
/// after CVE Services acted and before Embargo committed; run again, it finds what the
/// service did (the reserved IDs in the organisation's list, the ID's REJECTED state) and
/// records it, and asks nothing twice: exactly one reservation POST and one rejection POST,
/// on each backend. A later reservation is not mistaken for the reconciled one.
#[test]
fn cve_reservations_and_rejections_interrupted_by_a_crash_are_reconciled_not_sent_twice() {
    for db in both_backends() {
        let fake = embargo_test_support::cve_fake::CveFake::start();
        let it = Instance::new(BIN, Some(&db));
        let (url, org, user, key) = (fake.base_url().to_owned(), fake.org(), fake.user(), fake.api_key());
        let command = |args: &[&str]| {
            let mut command = it.command(args);
            command
                .env("EMBARGO_CVE_SERVICES__BASE_URL", &url)
                .env("EMBARGO_CVE_SERVICES__ORG", &org)
                .env("EMBARGO_CVE_SERVICES__USER", &user)
                .env("EMBARGO_CVE_SERVICES__API_KEY", &key)
                .env("EMBARGO_CVE_SERVICES__DRY_RUN", "false")
                // A crashed command's lease on its job expires quickly.
                .env("EMBARGO_JOBS__LEASE_SECONDS", "2")
                .env("USER", "alice");
            command
        };
        let run = |args: &[&str]| embargo_test_support::run_command(command(args), b"");
        let count = |method: &str, path: &str| {
            fake.requests().iter().filter(|r| r.method == method && r.path == path && r.status == 200).count()
        };
        let listed = || -> Vec<(String, String)> {
            let out = run(&["cve", "list", "--json"]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            let list: Value = serde_json::from_str(&out.stdout).unwrap();
            let mut rows: Vec<(String, String)> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["cve_id"].as_str().unwrap().to_owned(), r["state"].as_str().unwrap().to_owned()))
                .collect();
            rows.sort();
            rows
        };
        let audited = |action: &str| -> Vec<String> {
            let out = run(&["audit", "list", "--json", "--limit", "1000"]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            out.stdout
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).unwrap())
                .filter(|e| e["action"] == action)
                .map(|e| e["details"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        // Starts `args`, waits until CVE Services took `method path` (its answer held), and
        // kills the process there.
        let crash_after = |args: &[&str], method: &str, path: &str| {
            let mut child =
                command(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
            let started = Instant::now();
            while fake.requests().iter().all(|r| !(r.method == method && r.path == path)) {
                assert!(started.elapsed() < Duration::from_secs(120), "{}: {method} {path} never came", db.backend);
                assert!(child.try_wait().unwrap().is_none(), "{}: the command ended before its call", db.backend);
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            fake.release();
        };

        // A reservation of two IDs: CVE Services reserves them, the answer never arrives.
        fake.hold_answers("POST", "/cve-id");
        crash_after(&["cve", "reserve", "--count", "2"], "POST", "/api/cve-id");
        let at_service: Vec<String> = fake.requests().last().unwrap().response["cve_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["cve_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(at_service.len(), 2, "CVE Services reserved them");
        assert!(listed().is_empty(), "{}: the crash came before the commit", db.backend);

        // Run again: found in the organisation's list of reserved IDs, not reserved twice.
        let out = run(&["cve", "reserve", "--count", "2"]);
        assert_eq!(out.code, 0, "{}: {}{}", db.backend, out.stdout, out.stderr);
        let ids: Vec<String> = out.stdout.split_whitespace().skip(1).map(str::to_owned).collect();
        assert_eq!(ids, at_service, "{}: {}", db.backend, out.stdout);
        assert_eq!(count("POST", "/api/cve-id"), 1, "{}: exactly one reservation POST", db.backend);
        assert!(count("GET", "/api/cve-id") >= 1, "{}: reconciled by listing the IDs", db.backend);
        let expected: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), "RESERVED".to_owned())).collect();
        assert_eq!(listed(), expected, "{}", db.backend);
        let reserved = audited("cve.reserve");
        assert_eq!(reserved.len(), 1, "{}: recorded once: {reserved:?}", db.backend);
        assert!(reserved[0].contains("reconciled=true"), "{reserved:?}");

        // A later reservation is a new one: it is sent, and takes none of the IDs above.
        let out = run(&["cve", "reserve", "--count", "1"]);
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        let third = out.stdout.split_whitespace().nth(1).unwrap().to_owned();
        assert!(!ids.contains(&third), "{third}");
        assert_eq!(count("POST", "/api/cve-id"), 2, "{}", db.backend);
        assert_eq!(listed().len(), 3, "{}", db.backend);

        // A rejection: CVE Services rejects the ID, the answer never arrives.
        let reject_path = format!("/api/cve/{}/reject", ids[1]);
        fake.hold_answers("POST", "/reject");
        crash_after(&["cve", "reject", &ids[1], "--reason", "Duplicate of another report."], "POST", &reject_path);
        assert_eq!(fake.id(&ids[1]).unwrap().state, "REJECTED", "CVE Services rejected it");
        assert!(listed().contains(&(ids[1].clone(), "RESERVED".to_owned())), "{}: before the commit", db.backend);

        // Run again: reconciled with a read of the ID, not rejected twice.
        let out = run(&["cve", "reject", &ids[1], "--reason", "Duplicate of another report."]);
        assert_eq!(out.code, 0, "{}: {}{}", db.backend, out.stdout, out.stderr);
        assert_eq!(count("POST", &reject_path), 1, "{}: exactly one rejection POST", db.backend);
        assert!(
            fake.requests().iter().any(|r| r.method == "GET" && r.path == format!("/api/cve-id/{}", ids[1])),
            "{}: reconciled by reading the ID's state",
            db.backend
        );
        assert!(listed().contains(&(ids[1].clone(), "REJECTED".to_owned())), "{}", db.backend);
        let rejected = audited("cve.reject");
        assert_eq!(rejected.len(), 1, "{}: recorded once: {rejected:?}", db.backend);
        assert!(rejected[0].contains("reconciled=true"), "{rejected:?}");
    }
}

#[test]
fn report_content_is_encrypted_at_rest_and_never_logged() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&[("EMBARGO_LOG", "trace")]);
        let canary = format!("CANARY{}x{}", std::process::id(), db.backend);
        let attachment = format!(
            "From: {canary} <{canary}@example.org>\r\nSubject: {canary}\r\nMessage-ID: <{canary}@example.org>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n{canary} body\r\n\
             --B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"{canary}.txt\"\r\n\r\n{canary} file\r\n--B--\r\n"
        );
        // Intake and reading, with every log line switched on.
        let debug = |args: &[&str]| {
            let mut cmd = it.command(args);
            cmd.env("EMBARGO_LOG", "trace");
            cmd
        };
        let out = embargo_test_support::run_command(debug(&["ingest-mail"]), attachment.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut logs = out.stderr.clone();
        let reference = out.stdout.trim().trim_start_matches("new report ").to_owned();
        let out = embargo_test_support::run_command(debug(&["report", "show", &reference, "--json"]), b"");
        assert!(out.stdout.contains(&format!("{canary} body")), "readable by an authorised admin");
        assert!(out.stdout.contains(&format!("{canary}.txt")));
        logs.push_str(&out.stderr);
        assert!(logs.contains("report received"), "the logs were captured: {logs}");
        assert_eq!(server.http("GET", "/healthz", &[], b"").status, 200);
        logs.push_str(&server.logs());
        assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));

        assert!(!logs.contains(&canary), "{}: canary in the logs", db.backend);
        // The database holds nothing in clear. (Outgoing mail in the outbox Maildir is mail
        // in transit and names its recipient by design; see ADR 2.)
        let files = match db.backend {
            "postgres" => postgres().unwrap().data_dir(),
            _ => it.sqlite_dir().to_owned(),
        };
        let hits: Vec<_> = files_containing(&files, canary.as_bytes())
            .into_iter()
            .filter(|p| !p.starts_with(files.join("outbox")))
            .collect();
        assert!(hits.is_empty(), "{}: canary found on disk in {hits:?}", db.backend);
        if db.backend == "sqlite" {
            assert!(files.join("embargo.db").exists(), "the test looked at the right place");
        }
    }
}

#[tokio::test]
async fn audit_verify_names_the_first_tampered_entry() {
    let cases: &[(&str, &[&'static str], &str)] = &[
        (
            "altered",
            &["UPDATE audit_log SET details = 'state=any count=0' WHERE seq = 3"],
            "audit entry 3: content does not match its hash; the entry was altered",
        ),
        ("removed", &["DELETE FROM audit_log WHERE seq = 2"], "audit entry 2: missing"),
        (
            "reordered",
            &[
                "UPDATE audit_log SET seq = -1 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            ],
            "audit entry 2: does not follow entry 1",
        ),
        (
            "truncated",
            &["DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"],
            "entries were removed from the end",
        ),
    ];
    for db in both_backends() {
        for (name, statements, expected) in cases {
            let fresh = match db.backend {
                "postgres" => postgres().unwrap().fresh_database(),
                _ => embargo_test_support::sqlite(),
            };
            let it = Instance::new(BIN, Some(&fresh));
            for i in 0..3 {
                let out = it.run(&["ingest-mail"], &mail("a@example.org", "x", &format!("{i}@example.org"), "y"));
                assert_eq!(out.code, 0, "{}", out.stderr);
            }
            it.run(&["report", "list"], b"");
            let out = it.run(&["audit", "verify"], b"");
            assert_eq!(out.code, 0, "{}: {}", db.backend, out.stdout);
            assert!(out.stdout.contains("intact: 5 entries"), "{}", out.stdout);

            sql(&url_of(&it), statements).await;
            let out = it.run(&["audit", "verify"], b"");
            assert_eq!(out.code, 1, "{} {name}: tampering not detected: {}", db.backend, out.stdout);
            assert!(out.stdout.contains(expected), "{} {name}: {}", db.backend, out.stdout);
            assert_no_panic(&out);
            drop(fresh);
        }
    }
}

#[tokio::test]
async fn two_workers_on_one_postgres_run_every_job_once_when_one_is_killed() {
    let Some(server) = require("PostgreSQL", postgres()) else {
        return;
    };
    let db: TestDb = server.fresh_database();
    let it = Instance::new(BIN, Some(&db));
    let out = it.run(&["jobs", "probe", "--count", "40", "--hold-ms", "150"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let env = [
        ("EMBARGO_JOBS__LEASE_SECONDS", "2"),
        ("EMBARGO_JOBS__POLL_INTERVAL_MS", "50"),
        ("EMBARGO_JOBS__CONCURRENCY", "2"),
    ];
    let spawn = || {
        let mut cmd = it.command(&["worker"]);
        cmd.envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd.spawn().unwrap()
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let mut victim = spawn();

    // Kill the first worker while it holds jobs mid-run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let killed_owners = loop {
        let running: Vec<String> =
            sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE state = 'running' AND kind = 'diagnostic.probe'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let done: i64 = sqlx::query_scalar(PROBES_DONE).fetch_one(&pool).await.unwrap();
        if (!running.is_empty() && done >= 2) || Instant::now() > deadline {
            break running;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(!killed_owners.is_empty(), "the first worker never ran a job");
    let mut survivor = spawn();
    let mut survivor_two = spawn();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done: i64 = sqlx::query_scalar(PROBES_DONE).fetch_one(&pool).await.unwrap();
        if done == 40 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs were lost: only {done} of 40 done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for child in [&mut survivor, &mut survivor_two] {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        assert!(child.wait().unwrap().success(), "worker exits cleanly on SIGTERM");
    }

    // Every job's effect was committed exactly once, including those the killed worker held.
    let counts: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT j.id, (SELECT COUNT(*) FROM job_probes p WHERE p.job_id = j.id) FROM jobs j \
             WHERE j.kind = 'diagnostic.probe'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(counts.len(), 40);
    for (job, n) in &counts {
        assert_eq!(*n, 1, "job {job} ran {n} times");
    }
    let retaken: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE attempts >= 2 AND kind = 'diagnostic.probe'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(retaken >= 1, "no job held by the killed worker ({killed_owners:?}) was taken over");
    let owners: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT worker) FROM job_probes").fetch_one(&pool).await.unwrap();
    assert!(owners >= 2, "work was not shared between workers");
    pool.close().await;
}

#[test]
fn bad_input_gets_a_clear_error_and_the_right_exit_code() {
    let it = Instance::new(BIN, None);
    // An MTA bounces bad input (65) and retries temporary failures (75).
    let out = it.run(&["ingest-mail"], b"");
    assert_eq!((out.code, out.stderr.lines().last()), (65, Some("embargo: the message is empty")));
    let mut unreachable =
        it.command(&["ingest-mail", "--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"]);
    unreachable.env("EMBARGO_DATABASE_URL", "");
    let out = embargo_test_support::run_command(unreachable, &mail("a@example.org", "s", "x@example.org", "b"));
    assert_eq!(out.code, 75, "{}", out.stderr);

    let out = it.run(&["report", "show", "not-a-reference"], b"");
    assert_eq!(out.code, 64);
    assert!(out.stderr.contains("PREFIX-YEAR-N"));
    let out = it.run(&["report", "show", "SEC-2026-7"], b"");
    assert_eq!((out.code, out.stderr.trim()), (1, "embargo: report SEC-2026-7 not found"));
    let out = it.run(&["report", "list", "--state", "shut"], b"");
    assert_eq!(out.code, 65);
    assert!(out.stderr.contains("unknown state \"shut\""));

    let config = it.data_dir.parent().unwrap().join("typo.toml");
    std::fs::write(&config, "[organisation]\nnmae = \"x\"\n").unwrap();
    let out = it.run(&["migrate", "--config", config.to_str().unwrap()], b"");
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains("typo.toml") && out.stderr.contains("nmae"), "{}", out.stderr);
    let out = it.run(&["migrate", "--database-url", "mysql://x"], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);

    let out = it
        .run(&["admin", "create-user", "--email", "x@example.org", "--role", "admin", "--password-stdin"], b"short\n");
    assert_eq!(out.code, 65);
    assert!(out.stderr.contains("at least 12 characters"));
    let out = it.run(
        &["admin", "create-user", "--email", "x@example.org", "--role", "admin", "--password-stdin"],
        b"a good long password\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = it.run(&["admin", "create-user", "--email", "X@example.org", "--role", "responder"], b"");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("already exists"));
    let out = it.run(&["admin", "create-token", "--email", "x@example.org"], b"");
    assert_eq!(out.code, 0);
    assert!(out.stdout.trim().starts_with("emb_") && out.stdout.trim().len() == 68);
    let out = it.run(&["admin", "create-token", "--email", "nobody@example.org"], b"");
    assert_eq!(out.code, 1);
    assert_no_panic(&out);
}

#[test]
fn configuration_layers_and_secrets_stay_hidden() {
    let it = Instance::new(BIN, None);
    let out = it.run(&["config", "example"], b"");
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("acknowledge_working_days = 10"));
    let config = it.data_dir.parent().unwrap().join("embargo.toml");
    std::fs::write(&config, "[organisation]\nname = \"From file\"\nreference_prefix = \"FILE\"\n").unwrap();
    let mut cmd = it.command(&[
        "config",
        "show",
        "--config",
        config.to_str().unwrap(),
        "--database-url",
        "postgres://u:hunter2@db/x",
    ]);
    cmd.env("EMBARGO_ORGANISATION__REFERENCE_PREFIX", "ENV");
    let out = embargo_test_support::run_command(cmd, b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("name = \"From file\""));
    assert!(out.stdout.contains("reference_prefix = \"ENV\""));
    assert!(!out.stdout.contains("hunter2") && out.stdout.contains("[redacted]"), "{}", out.stdout);
}

#[test]
fn cvss_scores_valid_vectors_and_rejects_invalid_ones_without_a_data_directory() {
    let it = Instance::uncreated(BIN, None);
    // 3.1 in any order is shown canonically, with all three scores.
    let out = it.run(&["cvss", "--json", "CVSS:3.1/E:P/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:L"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["version"], "3.1");
    assert_eq!(body["vector"], "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/CR:L");
    assert_eq!(body["base"]["score"], 9.8);
    assert_eq!(body["base"]["severity"], "CRITICAL");
    assert_eq!(body["temporal"]["score"], 9.3);
    assert_eq!(body["environmental"]["score"], 9.0);
    assert_eq!(body["score"], 9.0);

    let v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U";
    let out = it.run(&["cvss", v40, "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["version"], "4.0");
    assert_eq!(body["vector"], v40);
    assert_eq!(body["score"], 8.1);
    assert_eq!(body["severity"], "HIGH");
    assert_eq!(body["nomenclature"], "CVSS-BT");
    let out = it.run(&["cvss", v40], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("CVSS-BT") && out.stdout.contains("8.1  High"), "{}", out.stdout);

    // Lower-case names, out-of-order 4.0 metrics and missing base metrics are rejected.
    for bad in [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/vc:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
    ] {
        let out = it.run(&["cvss", bad, "--json"], b"");
        assert_eq!(out.code, 2, "{bad}: {}", out.stdout);
        assert!(out.stdout.is_empty() && out.stderr.contains("invalid CVSS vector"), "{}", out.stderr);
        assert_no_panic(&out);
    }
    assert!(!it.data_dir.join("embargo.db").exists(), "cvss must not open the database");
}

#[test]
fn the_served_openapi_document_passes_the_official_validator() {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tools/venv/bin/openapi-spec-validator");
    let found = if venv.exists() {
        Ok(venv)
    } else {
        std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths).map(|d| d.join("openapi-spec-validator")).find(|p| p.exists())
            })
            .ok_or_else(|| "openapi-spec-validator (PyPI) not found".to_owned())
    };
    let Some(validator) = require("openapi-spec-validator", found) else { return };
    let it = Instance::new(BIN, None);
    let server = it.serve(&[]);
    let doc = server.http("GET", "/api/v1/openapi.json", &[], b"");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("content-type"), Some("application/json"));
    let file = it.path("openapi.json");
    std::fs::write(&file, &doc.body).unwrap();
    let validate = |path: &std::path::Path| std::process::Command::new(&validator).arg(path).output().unwrap();
    let out = validate(&file);
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It really validates: the same document with a dangling reference fails.
    std::fs::write(&file, doc.body.replace("#/components/schemas/Report\"", "#/components/schemas/Nope\"")).unwrap();
    assert!(!validate(&file).status.success(), "a dangling reference must fail validation");
}

/// `report similar` (issue 20 item 9): once a worker has indexed them, a reworded duplicate
/// has its original suggested, as a line of text and as JSON (`reference`, `score`, `state`,
/// `title`), and an unrelated report has none.
#[tokio::test]
async fn report_similar_prints_suggestions_as_text_and_json() {
    const ORIGINAL: &str = "Product: Acme Router AR-500, firmware 2.3.1.\r\n\
        Summary: stored cross-site scripting in the device name field of the web admin interface.\r\n\
        1. Log in to the admin interface at http://192.168.1.1 as any user.\r\n\
        2. Go to Network > Connected devices and rename a device to <script>alert(document.cookie)</script>.\r\n\
        3. When an administrator opens the connected devices page the script runs in their session.\r\n\
        Impact: an attacker on the local network can steal the administrator session cookie.";
    const DUPLICATE: &str = "Hello, I found a problem in the AR-500 router (firmware 2.3.1).\r\n\
        The admin web interface does not escape the device name shown on the Network > Connected devices \
        page, so a stored cross-site scripting payload such as <script>alert(document.cookie)</script> set \
        as a device name runs whenever an administrator opens the connected devices page.\r\n\
        An attacker on the local network can therefore steal the administrator session cookie.";
    const UNRELATED: &str = "Product: Acme Router AR-500, firmware 2.3.1.\r\n\
        Summary: path traversal in the firmware backup download endpoint.\r\n\
        Request /cgi-bin/backup_download?file=../../../../etc/shadow after logging in: the response \
        contains /etc/shadow.";
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let mut ids = Vec::new();
        for (n, (subject, body)) in
            [("XSS in device name", ORIGINAL), ("Device names not escaped", DUPLICATE), ("Traversal", UNRELATED)]
                .into_iter()
                .enumerate()
        {
            let out = it.run(&["ingest-mail"], &mail("a@example.org", subject, &format!("s{n}@example.org"), body));
            assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
            ids.push(out.stdout.trim().trim_start_matches("new report ").to_owned());
        }
        let mut worker = it.command(&["worker"]);
        worker
            .env("EMBARGO_JOBS__POLL_INTERVAL_MS", "50")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut worker = worker.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let json = loop {
            let out = it.run(&["report", "similar", &ids[1], "--json"], b"");
            assert_eq!(out.code, 0, "{}", out.stderr);
            let json: Value = serde_json::from_str(&out.stdout).unwrap();
            if !json.as_array().unwrap().is_empty() || Instant::now() > deadline {
                break json;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = std::process::Command::new("kill").arg("-TERM").arg(worker.id().to_string()).status();
        assert!(worker.wait().unwrap().success(), "worker exits cleanly on SIGTERM");
        let list = json.as_array().unwrap();
        assert_eq!(list.len(), 1, "{}: {json}", db.backend);
        assert_eq!(list[0]["reference"], ids[0].as_str());
        let score = list[0]["score"].as_f64().unwrap();
        assert!((embargo_domain::similarity::SUGGEST_THRESHOLD..=1.0).contains(&score), "{score}");
        assert_eq!(list[0]["state"], "new");
        assert_eq!(list[0]["title"], "XSS in device name");
        let out = it.run(&["report", "similar", &ids[1]], b"");
        assert!(out.stdout.starts_with(&format!("{}  {score:.2}  new", ids[0])), "{}", out.stdout);
        assert!(out.stdout.contains("XSS in device name"));
        let out = it.run(&["report", "similar", &ids[2], "--json"], b"");
        assert_eq!(out.stdout.trim(), "[]", "an unrelated report has no suggestion: {}", out.stdout);
    }
}
