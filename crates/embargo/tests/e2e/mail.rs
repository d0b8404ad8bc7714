//! Mail correctness with real peers: what Embargo sends is strict MIME and signed with the
//! instance key (GnuPG and Sequoia verify it), encrypted mail keeps the report's title out of
//! the cleartext headers, broken MIME and ambiguous senders are flagged and never hide text
//! or cause backscatter, the size limits are the ones advertised, and `postmaster@` reaches
//! the admins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, Server, both_backends};
use serde_json::Value;

use crate::BIN;
use crate::smtp::{
    FAST_JOBS, Gpg, Raw, config, header, outbox, python_send, reports, show, swaks, tool, wait_for_mail,
};

/// Parses a message with Python's `email` under `policy.strict` (see `mime_check.py`).
pub(crate) fn strict_mime(path: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/mime_check.py");
    let out = Command::new("python3").arg(script).arg(path).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "not strict MIME: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until no mail job is queued or running.
fn wait_for_mail_jobs(it: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = it.run(&["jobs", "list", "--json", "--limit", "1000"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let jobs: Value = serde_json::from_str(&out.stdout).unwrap();
        let busy = jobs.as_array().unwrap().iter().any(|j| {
            j["kind"].as_str().unwrap().starts_with("mail.")
                && matches!(j["state"].as_str(), Some("queued" | "running"))
        });
        if !busy {
            return;
        }
        assert!(Instant::now() < deadline, "mail jobs still pending: {jobs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first part of a `multipart/signed` message exactly as signed (between the first two
/// delimiters, without the CRLF that belongs to the delimiter), and the armored signature.
pub(crate) fn signed_parts(raw: &str) -> (Vec<u8>, String) {
    let start = raw.find("boundary=\"").expect("a boundary") + "boundary=\"".len();
    let boundary = &raw[start..start + raw[start..].find('"').unwrap()];
    let delimiter = format!("\r\n--{boundary}\r\n");
    let first = raw.find(&delimiter).unwrap() + delimiter.len();
    let second = first + raw[first..].find(&delimiter).unwrap();
    let rest = &raw[second + delimiter.len()..];
    let begin = rest.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    let end = rest.find("-----END PGP SIGNATURE-----").unwrap() + "-----END PGP SIGNATURE-----".len();
    (raw.as_bytes()[first..second].to_vec(), rest[begin..end].replace("\r\n", "\n"))
}

fn instance_key(server: &Server, dir: &Path) -> PathBuf {
    let key = server.http("GET", "/.well-known/security.asc", &[], b"");
    assert_eq!(key.status, 200);
    let path = dir.join("instance.asc");
    std::fs::write(&path, &key.body).unwrap();
    path
}

/// gpg with a status file: (success, stdout, status lines).
pub(crate) fn gpg_status(gpg: &Gpg, args: &[&str]) -> (bool, Vec<u8>, String) {
    let status = gpg.home.join(format!("status-{}", crate::smtp::rand_suffix()));
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(&gpg.home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--trust-model", "always", "--status-file"])
        .arg(&status)
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), out.stdout, std::fs::read_to_string(&status).unwrap_or_default())
}

#[test]
fn outgoing_mail_is_strict_mime_signed_by_the_team_and_its_status_link_works() {
    let Some(_) = tool("swaks") else { return };
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let (code, output) = swaks(
            &server,
            &["--from", "finder@example.net", "--to", "security@example.org", "--header", "Subject: Token leak"],
        );
        assert_eq!(code, 0, "{output}");
        let ack = outbox(&it, 1).remove(0);
        let path = ack["path"].as_str().unwrap().to_owned();
        let parsed = strict_mime(&path);
        assert_eq!(parsed["mime_version"], "1.0", "{}: {parsed}", db.backend);
        assert_eq!(parsed["content_type"], "multipart/signed", "{parsed}");
        assert_eq!(parsed["params"]["protocol"], "application/pgp-signature", "{parsed}");
        assert_eq!(parsed["params"]["micalg"], "pgp-sha512", "{parsed}");
        let parts = parsed["parts"].as_array().unwrap();
        let text = parts.iter().find(|p| p["content_type"] == "text/plain").expect("a text part");
        assert_eq!(text["params"]["protected-headers"], "v1", "{text}");
        assert_eq!(
            text["headers"]["Subject"], parsed["subject"],
            "protected subject = outer subject when not encrypted"
        );
        assert!(parts.iter().any(|p| p["content_type"] == "application/pgp-signature"), "{parsed}");

        // The status link survives decoding whole, and it works.
        let decoded = text["text"].as_str().unwrap();
        let prefix = format!("http://{}/status/", server.addr);
        let start = decoded.find(&prefix).unwrap_or_else(|| panic!("no status link in {decoded}"));
        let link: String = decoded[start..].chars().take_while(|c| !c.is_whitespace()).collect();
        let token = &link[prefix.len()..];
        assert!(
            token.len() >= 20 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{link}"
        );
        let page = server.http("GET", &format!("/status/{token}"), &[], b"");
        assert_eq!(page.status, 200, "{link}");
        let reference = reports(&it)[0]["id"].as_str().unwrap().to_owned();
        assert!(page.body.contains(&reference), "the status page of {reference}");

        // GnuPG and Sequoia verify the detached signature with the published key, and a
        // changed byte breaks it.
        let dir = it.path("");
        let key = instance_key(&server, &dir);
        let raw = std::fs::read_to_string(&path).unwrap();
        let (signed, signature) = signed_parts(&raw);
        std::fs::write(dir.join("signed.txt"), &signed).unwrap();
        std::fs::write(dir.join("signed.asc"), &signature).unwrap();
        let mut tampered = signed.clone();
        let at = tampered.len() / 2;
        tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
        std::fs::write(dir.join("tampered.txt"), &tampered).unwrap();
        if let Some(gpg) = Gpg::new(&dir, &std::fs::read_to_string(&key).unwrap()) {
            let fingerprint = server.stdout_lines().into_iter().find(|l| l.starts_with("OpenPGP key ")).unwrap();
            let fingerprint = fingerprint.split_whitespace().nth(2).unwrap().to_owned();
            let verify = |file: &str| {
                gpg_status(
                    &gpg,
                    &["--verify", dir.join("signed.asc").to_str().unwrap(), dir.join(file).to_str().unwrap()],
                )
            };
            let (ok, _, status) = verify("signed.txt");
            assert!(ok && status.contains(&format!("VALIDSIG {fingerprint}")), "{status}");
            let (ok, _, status) = verify("tampered.txt");
            assert!(!ok && status.contains("BADSIG"), "{status}");
        }
        if tool("sq").is_some() {
            let sq = |file: &str| {
                Command::new("sq")
                    .args(["verify", "--signer-cert"])
                    .arg(&key)
                    .arg("--detached")
                    .arg(dir.join("signed.asc"))
                    .arg(dir.join(file))
                    .output()
                    .unwrap()
            };
            let out = sq("signed.txt");
            assert!(out.status.success(), "sq verify: {}", String::from_utf8_lossy(&out.stderr));
            assert!(!sq("tampered.txt").status.success(), "sq accepts a tampered message");
        }
        drop(server);
    }
}

#[test]
fn encrypted_mail_keeps_the_title_inside_and_is_signed_by_the_team() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let dir = it.path("");
        let key = instance_key(&server, &dir);
        let Some(gpg) = Gpg::new(&dir, &std::fs::read_to_string(&key).unwrap()) else { return };
        let title = "SQL injection in /login";

        // The reporter encrypts, with protected headers: the cleartext subject is "...", the
        // real one inside, and their key attached.
        let reporter_key = String::from_utf8(gpg.run(&["--armor", "--export", "reporter@example.net"])).unwrap();
        let entity = format!(
            "Content-Type: multipart/mixed; boundary=\"in\"; protected-headers=\"v1\"\r\nSubject: {title}\r\n\r\n\
             --in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe login form concatenates the user name.\r\n\
             --in\r\nContent-Type: application/pgp-keys\r\nContent-Disposition: attachment; filename=\"reporter.asc\"\r\n\r\n{}\r\n--in--\r\n",
            reporter_key.replace('\n', "\r\n")
        );
        let armored = gpg.encrypt(&dir, entity.as_bytes(), true);
        let mime = format!(
            "From: reporter@example.net\r\nTo: security@example.org\r\nSubject: ...\r\nMessage-ID: <enc1@example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"out\"\r\n\r\n\
             --out\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
             --out\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{}\r\n--out--\r\n",
            armored.replace('\n', "\r\n")
        );
        assert_eq!(python_send(&server, "reporter@example.net", "security@example.org", mime.as_bytes(), &dir), 250);
        let list = reports(&it);
        assert_eq!(list[0]["title"], title, "{}: the protected subject is the title", db.backend);
        let id = list[0]["id"].as_str().unwrap().to_owned();
        let detail = show(&it, &id);
        let attachment = detail["attachments"].as_array().unwrap().iter().find(|a| a["filename"] == "reporter.asc");
        let out = it.run(&["report", "import-key", &id, "--attachment", &attachment.unwrap()["id"].to_string()], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        wait_for_mail_jobs(&it);

        // The team replies through the API: the subject names the title.
        assert_eq!(it.run(&["admin", "create-user", "--email", "lead@example.org", "--role", "admin"], b"").code, 0);
        let token = it.run(&["admin", "create-token", "--email", "lead@example.org"], b"").stdout.trim().to_owned();
        let reply = server.http(
            "POST",
            &format!("/api/v1/reports/{id}/replies"),
            &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
            br#"{"body": "We reproduced it and are working on a fix."}"#,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        let mail = wait_for_mail(&it, |m| m["path"].as_str().unwrap().contains("msg-"));
        let path = mail["path"].as_str().unwrap().to_owned();
        let raw = std::fs::read_to_string(&path).unwrap();
        assert_eq!(header(&raw, "Subject").as_deref(), Some(format!("[{id}]").as_str()), "{raw}");
        assert!(!raw.contains("SQL injection") && !raw.contains("reproduced"), "{raw}");
        let parsed = strict_mime(&path);
        assert_eq!(parsed["mime_version"], "1.0");
        assert_eq!(parsed["content_type"], "multipart/encrypted", "{parsed}");

        // GnuPG decrypts and verifies the team's signature; the real subject is inside.
        let start = raw.find("-----BEGIN PGP MESSAGE-----").unwrap();
        let end = raw.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
        let encrypted = dir.join("reply.asc");
        std::fs::write(&encrypted, raw[start..end].replace("\r\n", "\n")).unwrap();
        let fingerprint = server.stdout_lines().into_iter().find(|l| l.starts_with("OpenPGP key ")).unwrap();
        let fingerprint = fingerprint.split_whitespace().nth(2).unwrap().to_owned();
        let (ok, plain, status) = gpg_status(&gpg, &["--decrypt", encrypted.to_str().unwrap()]);
        assert!(ok && status.contains(&format!("VALIDSIG {fingerprint}")), "{status}");
        let inner = String::from_utf8(plain).unwrap();
        assert!(inner.contains("protected-headers=\"v1\""), "{inner}");
        assert_eq!(header(&inner, "Subject").as_deref(), Some(format!("[{id}] Re: {title}").as_str()), "{inner}");
        assert!(inner.replace("=\r\n", "").contains("We reproduced it"), "{inner}");

        // Sequoia too, with the reporter's secret key, requiring the team's signature.
        if tool("sq").is_some() {
            let secret = dir.join("reporter-secret.asc");
            std::fs::write(&secret, gpg.run(&["--armor", "--export-secret-keys", "reporter@example.net"])).unwrap();
            let out = Command::new("sq")
                .args(["decrypt", "--recipient-key"])
                .arg(&secret)
                .arg("--signer-cert")
                .arg(&key)
                .arg(&encrypted)
                .output()
                .unwrap();
            assert!(out.status.success(), "sq decrypt: {}", String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Subject: [{id}] Re: {title}")));
        }
        drop(server);
    }
}

#[test]
fn broken_mime_shows_its_text_and_is_flagged() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&[]);
        let dir = it.path("");
        let no_boundary = b"From: a@x.test\r\nSubject: no boundary\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nStep 1: open /admin\r\nStep 2: <img src=x onerror=alert(1)>\r\n";
        let bad_base64 = b"From: a@x.test\r\nSubject: bad base64\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nVGhlIHRva2VuIGlz!IG5ldmVyIHJvdGF0ZWQuCg==\r\n--XX--\r\n";
        let fine = b"From: a@x.test\r\nSubject: fine\r\n\r\nNothing wrong here.\r\n";
        for raw in [&no_boundary[..], &bad_base64[..], &fine[..]] {
            assert_eq!(python_send(&server, "a@x.test", "security@example.org", raw, &dir), 250);
        }
        let list = reports(&it);
        let find = |title: &str| list.iter().find(|r| r["title"] == title).unwrap()["id"].as_str().unwrap().to_owned();
        let detail = show(&it, &find("no boundary"));
        let body = detail["body"].as_str().unwrap();
        assert!(body.contains("Step 1: open /admin") && body.contains("<img src=x onerror=alert(1)>"), "{detail}");
        assert_eq!(detail["messages"][0]["anomalies"], serde_json::json!(["malformed-mime"]), "{}", db.backend);
        let detail = show(&it, &find("bad base64"));
        assert!(detail["body"].as_str().unwrap().contains("The token is never rotated."), "{detail}");
        assert_eq!(detail["messages"][0]["anomalies"], serde_json::json!(["malformed-mime"]));
        assert_eq!(show(&it, &find("fine"))["messages"][0]["anomalies"], serde_json::json!([]));
        // People see the warning too.
        let out = it.run(&["report", "show", &find("no boundary")], b"");
        assert!(out.stdout.contains("warning: malformed message"), "{}", out.stdout);
        drop(server);
    }
}

#[test]
fn ambiguous_or_mismatched_senders_are_flagged_and_never_cause_backscatter() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let dir = it.path("");
        // Two From headers, the envelope names the first: the report is theirs, and only
        // they are acknowledged.
        let two = b"From: finder@example.net\r\nFrom: victim@third-party.test\r\nTo: security@example.org\r\nSubject: two froms\r\nMessage-ID: <t1@example.net>\r\n\r\nbody\r\n";
        assert_eq!(python_send(&server, "finder@example.net", "security@example.org", two, &dir), 250);
        // Two From headers naming third parties, from an unrelated envelope: nobody.
        let forged = b"From: victim@third-party.test\r\nFrom: other@fourth-party.test\r\nTo: security@example.org\r\nSubject: forged pair\r\nMessage-ID: <t2@evil.test>\r\n\r\nbody\r\n";
        assert_eq!(python_send(&server, "attacker@evil.test", "security@example.org", forged, &dir), 250);
        // One From that is not the envelope sender: flagged, not acknowledged.
        let mismatch = b"From: victim@third-party.test\r\nTo: security@example.org\r\nSubject: mismatch\r\nMessage-ID: <t3@evil.test>\r\n\r\nbody\r\n";
        assert_eq!(python_send(&server, "attacker@evil.test", "security@example.org", mismatch, &dir), 250);
        // The ordinary case still gets its acknowledgement.
        let plain = b"From: Rita <rita@example.net>\r\nTo: security@example.org\r\nSubject: ordinary\r\nMessage-ID: <t4@example.net>\r\n\r\nbody\r\n";
        assert_eq!(python_send(&server, "RITA@example.net", "security@example.org", plain, &dir), 250);
        wait_for_mail_jobs(&it);

        let list = reports(&it);
        let find = |title: &str| show(&it, list.iter().find(|r| r["title"] == title).unwrap()["id"].as_str().unwrap());
        let two = find("two froms");
        assert_eq!(two["reporter"]["email"], "finder@example.net", "{}: {two}", db.backend);
        assert_eq!(two["messages"][0]["anomalies"], serde_json::json!(["ambiguous-sender"]));
        let forged = find("forged pair");
        assert_eq!(forged["messages"][0]["anomalies"], serde_json::json!(["ambiguous-sender", "sender-mismatch"]));
        let mismatch = find("mismatch");
        assert_eq!(mismatch["messages"][0]["anomalies"], serde_json::json!(["sender-mismatch"]));
        assert_eq!(find("ordinary")["messages"][0]["anomalies"], serde_json::json!([]));

        let out = it.run(&["outbox", "list", "--json"], b"");
        let sent: Vec<String> = serde_json::from_str::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["to"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent.iter().any(|to| to.contains("finder@example.net")), "{sent:?}");
        assert!(sent.iter().any(|to| to.contains("rita@example.net")), "{sent:?}");
        assert!(
            !sent.iter().any(|to| to.contains("third-party") || to.contains("fourth-party")),
            "backscatter: {sent:?}"
        );
        drop(server);
    }
}

#[test]
fn the_wire_size_is_checked_against_the_advertised_limit_and_the_limit_is_named() {
    let Some(_) = tool("swaks") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let file = config(&it, "[limits]\nmax_message_bytes = 2000000\nmax_decoded_bytes = 4000000\n");
        let server = it.serve_with(&["--config", &file], &[]);
        // Only the wire size counts against the advertised SIZE; what a message decodes to
        // has its own limit. 20 kB of compressed, encrypted mail decodes to 3 MB: more than
        // four times its size, which was the old, hidden bound on decryption.
        let dir = it.path("");
        let key = instance_key(&server, &dir);
        if let Some(gpg) = Gpg::new(&dir, &std::fs::read_to_string(&key).unwrap()) {
            let plaintext = "The session cookie is not rotated on login.\n".repeat(70_000);
            let armored = gpg.encrypt(&dir, plaintext.as_bytes(), false);
            assert!(armored.len() < 100_000, "compressed: {}", armored.len());
            let body = format!(
                "From: big@example.net\r\nTo: security@example.org\r\nSubject: big but allowed\r\n\r\n{}\r\n",
                armored.replace('\n', "\r\n")
            );
            assert_eq!(python_send(&server, "big@example.net", "security@example.org", body.as_bytes(), &dir), 250);
            let list = reports(&it);
            let id = list.iter().find(|r| r["title"] == "big but allowed").unwrap()["id"].as_str().unwrap().to_owned();
            let detail = show(&it, &id);
            assert_eq!(detail["messages"][0]["pgp"], "pgp-inline", "{}: decrypted in full", db.backend);
            let body = detail["body"].as_str().unwrap();
            assert!(body.len() >= plaintext.len() && body.contains(&plaintext), "the whole plaintext");
            // Past the decoded limit it is kept as it came, saying which limit it hit.
            let plaintext = "x".repeat(4_100_000);
            let armored = gpg.encrypt(&dir, plaintext.as_bytes(), false);
            let body = format!(
                "From: big@example.net\r\nTo: security@example.org\r\nSubject: too big decoded\r\n\r\n{}\r\n",
                armored.replace('\n', "\r\n")
            );
            assert_eq!(python_send(&server, "big@example.net", "security@example.org", body.as_bytes(), &dir), 250);
            let list = reports(&it);
            let id = list.iter().find(|r| r["title"] == "too big decoded").unwrap()["id"].as_str().unwrap().to_owned();
            let detail = show(&it, &id);
            assert_eq!(detail["messages"][0]["pgp"], "undecryptable", "{detail}");
            assert!(detail["body"].as_str().unwrap().contains("BEGIN PGP MESSAGE"), "kept as it came");
        }

        // Over the wire limit: the reply names it, whether declared or discovered.
        let (mut raw, _) = Raw::connect(server.smtp_addr);
        raw.send("EHLO client.test\r\n");
        let declared = raw.send("MAIL FROM:<a@x.test> SIZE=2000001\r\n");
        assert!(declared.starts_with("552 5.3.4") && declared.contains("2000000"), "{declared}");
        assert!(raw.send("MAIL FROM:<a@x.test>\r\n").starts_with("250 "));
        assert!(raw.send("RCPT TO:<security@example.org>\r\n").starts_with("250 "));
        assert!(raw.send("DATA\r\n").starts_with("354 "));
        let big = format!("Subject: too big\r\n\r\n{}\r\n.\r\n", "y".repeat(76).repeat(27_000).replace("yy", "y\r\ny"));
        let refused = raw.send(&big);
        assert!(refused.starts_with("552 5.3.4") && refused.contains("SIZE limit of 2000000"), "{refused}");

        // ingest-mail names the limit as well.
        let out = it.run(
            &["ingest-mail", "--config", &file],
            format!("Subject: x\r\n\r\n{}\r\n", "z".repeat(2_100_000)).as_bytes(),
        );
        assert_eq!(out.code, 65);
        assert!(out.stderr.contains("limits.max_message_bytes"), "{}", out.stderr);
        drop(server);
    }
}

#[test]
fn postmaster_mail_is_accepted_and_forwarded_to_the_admins_not_filed() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let dir = it.path("");
        for (email, role) in
            [("lead@example.org", "admin"), ("second@example.org", "admin"), ("resp@example.org", "responder")]
        {
            assert_eq!(it.run(&["admin", "create-user", "--email", email, "--role", role], b"").code, 0);
        }
        let message = b"From: ops@remote.test\r\nTo: postmaster@example.org\r\nSubject: your server rejects our DSNs\r\nMessage-ID: <pm1@remote.test>\r\n\r\nPlease check the bounce handling.\r\n";
        for rcpt in ["postmaster@example.org", "PostMaster@Example.ORG", "postmaster"] {
            assert_eq!(python_send(&server, "ops@remote.test", rcpt, message, &dir), 250, "{}: {rcpt}", db.backend);
        }
        let (mut raw, _) = Raw::connect(server.smtp_addr);
        raw.send("EHLO client.test\r\n");
        raw.send("MAIL FROM:<ops@remote.test>\r\n");
        assert!(raw.send("RCPT TO:<Postmaster>\r\n").starts_with("250 "), "without a domain (RFC 5321 4.5.1)");
        assert!(raw.send("RCPT TO:<postmaster@elsewhere.test>\r\n").starts_with("550 "), "not another domain's");
        wait_for_mail_jobs(&it);

        assert!(reports(&it).is_empty(), "postmaster mail is not a report");
        // The same message three times is forwarded once, to each admin (not the responder).
        let out = it.run(&["outbox", "list", "--json"], b"");
        let sent = serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone();
        let mut to: Vec<String> = sent.iter().map(|m| m["to"].as_str().unwrap().to_owned()).collect();
        to.sort();
        assert_eq!(to, vec!["lead@example.org".to_owned(), "second@example.org".to_owned()], "{sent:?}");
        for mail in &sent {
            assert_eq!(mail["subject"], "[postmaster] your server rejects our DSNs");
            let parsed = strict_mime(mail["path"].as_str().unwrap());
            assert_eq!(parsed["mime_version"], "1.0");
            let forwarded = parsed["parts"].as_array().unwrap();
            assert!(forwarded.iter().any(|p| p["content_type"] == "message/rfc822"), "{parsed}");
            let raw = std::fs::read_to_string(mail["path"].as_str().unwrap()).unwrap();
            assert!(raw.contains("Please check the bounce handling."), "the original is attached");
        }
        let audit = it.run(&["audit", "list", "--json"], b"");
        assert!(audit.stdout.contains("mail.postmaster.forwarded"), "{}", audit.stdout);
        drop(server);
    }
}
