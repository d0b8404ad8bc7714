//! One view per resource: `report show --json` and `GET /api/v1/reports/{reference}` print
//! the same report view (`embargo_app::views`), with every key either printed before they
//! were shared (the union, names kept), and attachment names made safe where they would be
//! used as a path while the name as sent is kept.

use std::collections::BTreeSet;

use embargo_test_support::{Instance, both_backends};
use serde_json::Value;

use crate::BIN;

/// A mail with two attachments whose names try to leave the directory and to hide their
/// extension behind a right-to-left override.
fn hostile_mail() -> Vec<u8> {
    let b = "XYZ-boundary";
    format!(
        "From: Mallory <mallory@example.org>\r\nTo: security@example.org\r\nSubject: Files\r\n\
         Message-ID: <files@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n\
         --{b}\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n\
         --{b}\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"../../../../etc/passwd\"\r\n\r\nroot:x:0:0\r\n\
         --{b}\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe\r\n\r\nMZ\r\n\
         --{b}--\r\n"
    )
    .into_bytes()
}

/// Every key path of a JSON value (array items merged), such as `messages[].attachments[].id`.
fn keys(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{prefix}{k}");
                out.insert(path.clone());
                keys(v, &format!("{path}."), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                keys(item, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_cli_and_the_api_print_one_report_view_with_safe_attachment_names() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let out = it.run(&["ingest-mail"], &hostile_mail());
        assert_eq!(out.code, 0, "{}: {}", db.backend, out.stderr);
        let id = out.stdout.trim().trim_start_matches("new report ").to_owned();

        let out = it.run(&["report", "show", &id, "--json"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let cli: Value = serde_json::from_str(&out.stdout).unwrap();
        // The keys `report show --json` printed before the views were shared, and those the
        // API printed: all present.
        let mut cli_keys = BTreeSet::new();
        keys(&cli, "", &mut cli_keys);
        for key in [
            "id",
            "reference",
            "state",
            "close_reason",
            "channel",
            "title",
            "body",
            "created_at",
            "received_at",
            "updated_at",
            "reporter.email",
            "reporter.name",
            "reporter.openpgp_key",
            "reporter.has_openpgp_key",
            "upstream",
            "messages[].id",
            "messages[].kind",
            "messages[].author",
            "messages[].sender",
            "messages[].subject",
            "messages[].body",
            "messages[].raw_size",
            "messages[].quarantined",
            "messages[].pgp",
            "messages[].openpgp",
            "messages[].auth",
            "messages[].sender_authentication",
            "messages[].visible_to_reporter",
            "messages[].at",
            "messages[].attachments[].safe_name",
            "attachments[].id",
            "attachments[].filename",
            "attachments[].safe_name",
            "attachments[].media_type",
            "attachments[].size",
            "transitions",
            "deadlines[].clock",
            "deadlines[].budget_working_days",
            "deadlines[].started",
            "deadlines[].due",
            "deadlines[].stopped",
            "deadlines[].met",
            "deadlines[].paused",
            "sla_alerts",
            "assessment.severity",
            "assessment.cvss_v3",
            "assessment.cvss_v4",
            "assessment.cwe",
            "assessment.ssvc",
            "assessment.affected",
            "form",
            "product_id",
            "assignee_id",
            "ack_due_at",
        ] {
            assert!(cli_keys.contains(key), "{}: `report show --json` lacks {key}: {cli_keys:?}", db.backend);
        }
        assert_eq!(cli["id"], id.as_str());
        assert_eq!(cli["reference"], id.as_str());
        let attachments = cli["attachments"].as_array().unwrap();
        let by_name = |name: &str| attachments.iter().find(|a| a["filename"] == name).cloned();
        let passwd = by_name("../../../../etc/passwd").expect("the name as sent is kept");
        assert_eq!(passwd["safe_name"], "passwd");
        let invoice = by_name("invoice\u{202e}fdp.exe").expect("the name as sent is kept");
        assert_eq!(invoice["safe_name"], "invoice_fdp.exe");

        // The text output shows the safe name and, escaped, the name as sent.
        let out = it.run(&["report", "show", &id], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(" passwd (") && out.stdout.contains("sent as \"../../../../etc/passwd\""),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains('\u{202e}'), "the override reaches the terminal: {}", out.stdout);

        // The API prints the same view.
        let out = it.run(
            &["admin", "create-user", "--email", "a@example.org", "--role", "admin", "--password-stdin"],
            b"a good long password\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["admin", "create-token", "--email", "a@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let bearer = format!("Bearer {}", out.stdout.trim());
        let server = it.serve(&[]);
        let reply = server.http("GET", &format!("/api/v1/reports/{id}"), &[("authorization", &bearer)], b"");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let api: Value = serde_json::from_str(&reply.body).unwrap();
        let mut api_keys = BTreeSet::new();
        keys(&api, "", &mut api_keys);
        assert_eq!(api_keys, cli_keys, "{}: the API and the CLI print different keys", db.backend);
        assert_eq!(api["attachments"], cli["attachments"]);
        // The server's worker mails the acknowledgement (a new message on the thread) as soon
        // as it starts: compare the messages once it is sent, read both ways.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let cli_now = loop {
            let out = it.run(&["report", "show", &id, "--json"], b"");
            let now: Value = serde_json::from_str(&out.stdout).unwrap();
            if now["messages"].as_array().map(Vec::len) == Some(2) {
                break now;
            }
            assert!(std::time::Instant::now() < deadline, "the acknowledgement never reached the thread: {now}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let reply = server.http("GET", &format!("/api/v1/reports/{id}"), &[("authorization", &bearer)], b"");
        let api_now: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(api_now["messages"], cli_now["messages"]);
        // The list views share their keys too, but for the product and assignee names and the
        // deadline that the CLI's list does not read, and the channel the inbox does not.
        let out = it.run(&["report", "list", "--json"], b"");
        let cli_list: Value = serde_json::from_str(&out.stdout).unwrap();
        let reply = server.http("GET", "/api/v1/reports", &[("authorization", &bearer)], b"");
        let api_list: Value = serde_json::from_str(&reply.body).unwrap();
        let (mut a, mut c) = (BTreeSet::new(), BTreeSet::new());
        keys(&api_list["reports"][0], "", &mut a);
        keys(&cli_list[0], "", &mut c);
        let only_api: Vec<_> = a.difference(&c).cloned().collect();
        let only_cli: Vec<_> = c.difference(&a).cloned().collect();
        assert_eq!(only_api, ["assignee", "due_at", "product"]);
        assert_eq!(only_cli, ["channel"]);
        server.kill();
    }
}
