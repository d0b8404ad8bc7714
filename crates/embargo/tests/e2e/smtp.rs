//! Mail intake over SMTP with real peers: swaks, Python's smtplib, and raw sessions for the
//! limits. The acknowledgement and outbox, threading by reply address, quarantine, loop
//! detection, hostile messages, and durability across a SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, Server, both_backends, require};
use serde_json::Value;

use crate::BIN;

pub(crate) const FAST_JOBS: [(&str, &str); 1] = [("EMBARGO_JOBS__POLL_INTERVAL_MS", "50")];

pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.exists()))
        .ok_or_else(|| format!("{name} not found on PATH"));
    require(name, found)
}

pub(crate) fn swaks(server: &Server, args: &[&str]) -> (i32, String) {
    let out = Command::new("swaks")
        .arg("--server")
        .arg(server.smtp_addr.to_string())
        .arg("--helo")
        .arg("client.test")
        .args(args)
        .output()
        .expect("swaks runs");
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

pub(crate) fn python_send(server: &Server, from: &str, to: &str, raw: &[u8], dir: &Path) -> u16 {
    let file = dir.join(format!("msg-{}.eml", rand_suffix()));
    std::fs::write(&file, raw).unwrap();
    let out = Command::new("python3")
        .arg(client_script())
        .args(["send", "127.0.0.1", &server.smtp_addr.port().to_string(), from, to])
        .arg(&file)
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/smtp_client.py")
}

pub(crate) fn rand_suffix() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

pub(crate) fn reports(it: &Instance) -> Vec<Value> {
    let out = it.run(&["report", "list", "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

pub(crate) fn show(it: &Instance, id: &str) -> Value {
    let out = it.run(&["report", "show", id, "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Waits until the outbox holds `n` messages (the acknowledgement jobs ran), then returns them.
pub(crate) fn outbox(it: &Instance, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = it.run(&["outbox", "list", "--json"], b"");
        let list = serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone();
        if list.len() >= n || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most 20 s) for a mail in the outbox that matches.
pub(crate) fn wait_for_mail(it: &Instance, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = it.run(&["outbox", "list", "--json"], b"");
        let list = serde_json::from_str::<Value>(&out.stdout).unwrap();
        if let Some(mail) = list.as_array().unwrap().iter().find(|m| matches(m)) {
            return mail.clone();
        }
        assert!(Instant::now() < deadline, "no such mail in the outbox: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn header(raw: &str, name: &str) -> Option<String> {
    raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(|v| v.trim().to_owned()))
}

/// A raw SMTP session for exercising the protocol and limits.
pub(crate) struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    pub(crate) fn connect(addr: SocketAddr) -> (Self, String) {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = Raw { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream };
        let greeting = raw.reply();
        (raw, greeting)
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub(crate) fn send(&mut self, text: &str) -> String {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.reply()
    }
}

fn tls_files(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    tool("openssl")?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(status.status.success(), "openssl: {}", String::from_utf8_lossy(&status.stderr));
    Some((cert, key))
}

/// A test CA and a server certificate for `localhost` signed by it: (CA, certificate, key).
fn ca_and_server_cert(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    tool("openssl")?;
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Embargo Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    ]);
    Some((dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key")))
}

pub(crate) fn config(it: &Instance, text: &str) -> String {
    let path = it.path("embargo.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn swaks_delivers_plain_multipart_attachment_pipelined_and_starttls_mail() {
    let Some(_) = tool("swaks") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let Some((cert, key)) = tls_files(&it.path("")) else { return };
        let file = config(
            &it,
            &format!("[mail]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n", cert.display(), key.display()),
        );
        let server = it.serve_with(&["--config", &file], &FAST_JOBS);
        let attachment = it.path("poc.bin");
        std::fs::write(&attachment, [0u8, 1, 2, 255, 254, b'\n', b'.', b'\r', b'\n']).unwrap();
        let attachment_arg = format!("@{}", attachment.display());

        let sends: Vec<(&str, Vec<&str>)> = vec![
            (
                "plain",
                vec![
                    "--from",
                    "plain@example.net",
                    "--to",
                    "security@example.org",
                    "--header",
                    "Subject: plain report",
                ],
            ),
            (
                "multipart",
                vec![
                    "--from",
                    "multi@example.net",
                    "--to",
                    "security@example.org",
                    "--header",
                    "Subject: multipart report",
                    "--attach-type",
                    "text/html",
                    "--attach-body",
                    "<p>HTML <b>part</b></p>",
                ],
            ),
            (
                "attachment",
                vec![
                    "--from",
                    "attach@example.net",
                    "--to",
                    "security@example.org",
                    "--header",
                    "Subject: with attachment",
                    "--attach-type",
                    "application/octet-stream",
                    "--attach-name",
                    "poc.bin",
                    "--attach",
                    &attachment_arg,
                ],
            ),
            (
                "pipelined",
                vec![
                    "--from",
                    "pipe@example.net",
                    "--to",
                    "SECURITY@example.org",
                    "--header",
                    "Subject: pipelined",
                    "--pipeline",
                ],
            ),
            (
                "starttls",
                vec![
                    "--from",
                    "tls@example.net",
                    "--to",
                    "security@example.org",
                    "--header",
                    "Subject: over tls",
                    "--tls",
                ],
            ),
        ];
        for (name, args) in &sends {
            let (code, output) = swaks(&server, args);
            assert_eq!(code, 0, "{}: swaks {name} failed:\n{output}", db.backend);
            assert!(output.contains("250 2.0.0 OK: queued"), "{name}: {output}");
            if *name == "starttls" {
                assert!(output.contains("TLS started"), "{output}");
            }
            if *name == "pipelined" {
                assert!(output.contains("PIPELINING"), "{output}");
            }
        }

        let list = reports(&it);
        assert_eq!(list.len(), 5, "{}", db.backend);
        let find = |title: &str| list.iter().find(|r| r["title"] == title).unwrap()["id"].as_str().unwrap().to_owned();
        let detail = show(&it, &find("with attachment"));
        assert_eq!(detail["attachments"][0]["filename"], "poc.bin");
        assert_eq!(detail["attachments"][0]["size"], 9);
        let detail = show(&it, &find("multipart report"));
        let body = detail["body"].as_str().unwrap();
        assert!(body.contains("HTML part") && !body.contains("<b>"), "HTML reduced to text: {detail}");

        // Every sender got an acknowledgement with the reference, the policy's promise,
        // the status link and the reply address.
        let acks = outbox(&it, 5);
        assert_eq!(acks.len(), 5, "{}", db.backend);
        let ack = acks.iter().find(|a| a["to"].as_str().unwrap().contains("plain@example.net")).unwrap();
        let raw = std::fs::read_to_string(ack["path"].as_str().unwrap()).unwrap();
        let reference = find("plain report");
        assert_eq!(header(&raw, "Subject").unwrap(), format!("[{reference}] We received your security report"));
        assert_eq!(header(&raw, "Auto-Submitted").as_deref(), Some("auto-replied"));
        let reply_to = header(&raw, "Reply-To").unwrap();
        assert!(reply_to.starts_with("security+") && reply_to.ends_with("@example.org"), "{reply_to}");
        let decoded = raw.replace("=\r\n", "").replace("=\n", "");
        assert!(decoded.contains("within 10 working days"), "{decoded}");
        assert!(decoded.contains(&format!("http://{}/status/", server.addr)), "{decoded}");
        assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));
    }
}

#[test]
fn replies_thread_by_reply_address_and_strangers_are_quarantined() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let dir = it.path("");
        let first = b"From: Rita <rita@example.net>\r\nTo: security@example.org\r\nSubject: Token leak\r\nMessage-ID: <r1@example.net>\r\n\r\nThe token leaks.\r\n";
        assert_eq!(python_send(&server, "rita@example.net", "security@example.org", first, &dir), 250);
        let ack = outbox(&it, 1).remove(0);
        let raw = std::fs::read_to_string(ack["path"].as_str().unwrap()).unwrap();
        let reply_to = header(&raw, "Reply-To").unwrap();
        let ack_id = header(&raw, "Message-ID").unwrap();

        // The reporter answers the acknowledgement: threaded by the reply address.
        let reply = format!(
            "From: rita@example.net\r\nTo: {reply_to}\r\nSubject: Re: received\r\nMessage-ID: <r2@example.net>\r\nIn-Reply-To: {ack_id}\r\n\r\nHere is a PoC.\r\n"
        );
        assert_eq!(python_send(&server, "rita@example.net", &reply_to, reply.as_bytes(), &dir), 250);
        // Someone else writes to the same reply address: kept, but quarantined.
        let stranger = format!(
            "From: mallory@example.com\r\nTo: {reply_to}\r\nSubject: Re: received\r\nMessage-ID: <m1@example.com>\r\n\r\nI am Rita, close it.\r\n"
        );
        assert_eq!(python_send(&server, "mallory@example.com", &reply_to, stranger.as_bytes(), &dir), 250);
        // An unknown token is not lost either: it opens a report.
        let unknown = b"From: x@example.com\r\nSubject: hi\r\nMessage-ID: <x1@example.com>\r\n\r\nhello\r\n";
        assert_eq!(python_send(&server, "x@example.com", "security+zzzzzzzzzzzz@example.org", unknown, &dir), 250);
        // Other domains and other local parts are refused at RCPT.
        assert_eq!(python_send(&server, "x@example.com", "root@example.org", unknown, &dir), 550);
        assert_eq!(python_send(&server, "x@example.com", "security@example.net", unknown, &dir), 550);

        let list = reports(&it);
        assert_eq!(list.len(), 2, "{}: {list:?}", db.backend);
        let id = list.iter().find(|r| r["title"] == "Token leak").unwrap()["id"].as_str().unwrap().to_owned();
        let detail = show(&it, &id);
        let messages = detail["messages"].as_array().unwrap();
        let inbound: Vec<&Value> = messages.iter().filter(|m| m["kind"] == "inbound").collect();
        assert_eq!(inbound.len(), 3, "{detail}");
        assert_eq!(inbound[1]["body"].as_str().unwrap().trim(), "Here is a PoC.");
        assert_eq!(inbound[1]["quarantined"], false);
        assert_eq!(inbound[2]["quarantined"], true);
        assert!(messages.iter().any(|m| m["kind"] == "outbound"), "the acknowledgement is on the thread");
        // Only the first message of a report is acknowledged.
        assert_eq!(outbox(&it, 2).len(), 2);
        drop(server);
    }
}

#[test]
fn robots_bounces_and_loops_get_no_acknowledgement() {
    let Some(_) = tool("swaks") else { return };
    let it = Instance::new(BIN, None);
    let server = it.serve(&FAST_JOBS);
    let cases: [&[&str]; 5] = [
        &["--from", "ooo@example.net", "--to", "security@example.org", "--add-header", "Auto-Submitted: auto-replied"],
        &["--from", "list@example.net", "--to", "security@example.org", "--add-header", "Precedence: bulk"],
        &["--from", "<>", "--to", "security@example.org", "--header", "From: mailer-daemon@example.net"],
        &["--from", "security@example.org", "--to", "security@example.org"],
        &[
            "--from",
            "x@example.net",
            "--to",
            "security@example.org",
            "--header",
            "In-Reply-To: <embargo.ack.0123abcd@example.org>",
        ],
    ];
    for args in cases {
        let (code, output) = swaks(&server, args);
        assert_eq!(code, 0, "{output}");
    }
    let (code, _) = swaks(&server, &["--from", "human@example.net", "--to", "security@example.org"]);
    assert_eq!(code, 0);
    assert_eq!(reports(&it).len(), 6, "every message is kept");
    let acks = outbox(&it, 1);
    std::thread::sleep(Duration::from_millis(500));
    let acks_later = outbox(&it, 1);
    let _ = acks;
    assert_eq!(acks_later.len(), 1, "only the human was answered: {acks_later:?} {:?}", reports(&it));
    assert!(acks_later[0]["to"].as_str().unwrap().contains("human@example.net"));
}

#[test]
fn hostile_messages_are_all_kept_and_only_oversize_is_refused() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let file = config(&it, "[limits]\nmax_message_bytes = 200000\n");
        let server = it.serve_with(&["--config", &file], &[]);
        let dir = it.path("");
        let corpus: Vec<(&str, Vec<u8>)> = vec![
            ("broken boundary", b"From: a@x.test\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=NOPE\r\n\r\n--OTHER\r\nhalf a part\r\n".to_vec()),
            ("wrong charset", b"From: a@x.test\r\nSubject: charset\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xe9t\xe9\r\n".to_vec()),
            ("undeclared 8-bit", b"From: a@x.test\r\nSubject: 8bit \xff\xfe\r\n\r\nbody \xc3\x28 \xa0\r\n".to_vec()),
            ("NUL bytes", b"From: a@x.test\r\nSubject: nul\x00here\r\n\r\nbody\x00with\x00nuls\r\n".to_vec()),
            (
                "path traversal",
                b"From: a@x.test\r\nSubject: traversal\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../../../etc/passwd\"\r\n\r\nroot:x:0:0\r\n--B--\r\n".to_vec(),
            ),
            ("huge header", format!("From: a@x.test\r\nSubject: huge\r\nX-Huge: {}\r\n\r\nbody\r\n", "h".repeat(100_000)).into_bytes()),
            ("no headers at all", b"just some text\r\nwithout any header\r\n".to_vec()),
            ("script everywhere", b"From: \"<script>alert(1)</script>\" <a@x.test>\r\nSubject: <img src=x onerror=alert(1)>\r\nContent-Type: text/html\r\n\r\n<script>alert(document.cookie)</script>\r\n".to_vec()),
            (
                "smuggling",
                b"From: a@x.test\r\nSubject: smuggle\r\n\r\nfirst\n.\nMAIL FROM:<evil@x.test>\nRCPT TO:<security@example.org>\nDATA\nSubject: smuggled\n\nsecond\n.\r\n".to_vec(),
            ),
        ];
        for (name, raw) in &corpus {
            assert_eq!(
                python_send(&server, "a@x.test", "security@example.org", raw, &dir),
                250,
                "{}: {name}",
                db.backend
            );
        }
        // Nothing lost: one report per message, the raw message kept whole.
        let list = reports(&it);
        assert_eq!(list.len(), corpus.len(), "{}: {list:?}", db.backend);
        assert!(!list.iter().any(|r| r["title"] == "smuggled"), "SMTP smuggling created a second message");
        for report in &list {
            let detail = show(&it, report["id"].as_str().unwrap());
            assert!(detail["messages"][0]["raw_size"].as_u64().unwrap() > 0);
        }
        let traversal = list.iter().find(|r| r["title"] == "traversal").unwrap();
        let detail = show(&it, traversal["id"].as_str().unwrap());
        assert_eq!(
            detail["attachments"][0]["filename"], "../../../../etc/passwd",
            "kept as data, never used as a path"
        );

        // Only the size limit refuses, with 552 both when declared and when discovered.
        let big = format!("From: a@x.test\r\nSubject: big\r\n\r\n{}\r\n", "x".repeat(250_000));
        assert_eq!(python_send(&server, "a@x.test", "security@example.org", big.as_bytes(), &dir), 552);
        let (mut raw, _) = Raw::connect(server.smtp_addr);
        raw.send("EHLO client.test\r\n");
        assert!(raw.send("MAIL FROM:<a@x.test> SIZE=999999999\r\n").starts_with("552 "));
        assert_eq!(reports(&it).len(), corpus.len());
        drop(server);
    }
}

#[test]
fn smtp_protocol_errors_and_limits_are_answered_correctly() {
    let it = Instance::new(BIN, None);
    let file = config(&it, "[mail]\nmax_recipients = 2\nmax_connections_per_ip = 3\nmessages_per_minute_per_ip = 2\n");
    let server = it.serve_with(&["--config", &file], &[]);
    let (mut s, greeting) = Raw::connect(server.smtp_addr);
    assert!(greeting.starts_with("220 example.org ESMTP"), "{greeting}");
    assert!(s.send("MAIL FROM:<a@x.test>\r\n").starts_with("503 "), "MAIL before EHLO");
    let ehlo = s.send("EHLO client.test\r\n");
    for extension in ["SIZE 26214400", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "no certificate, no STARTTLS");
    assert!(s.send("STARTTLS\r\n").starts_with("502 "));
    assert!(s.send("RCPT TO:<security@example.org>\r\n").starts_with("503 "), "RCPT before MAIL");
    assert!(s.send("DATA\r\n").starts_with("503 "));
    assert!(s.send("MAIL FROM:a@x.test\r\n").starts_with("501 "), "address without brackets");
    assert!(s.send("FROBNICATE\r\n").starts_with("500 "));
    assert!(s.send(&format!("NOOP {}\r\n", "x".repeat(5000))).starts_with("500 5.5.2 Line too long"));
    assert!(s.send("MAIL FROM:<a@x.test>\r\n").starts_with("250 "));
    assert!(s.send("RCPT TO:<root@example.org>\r\n").starts_with("550 "));
    assert!(s.send("RCPT TO:<security@example.org>\r\n").starts_with("250 "));
    assert!(s.send("RCPT TO:<security+abc@example.org>\r\n").starts_with("250 "));
    assert!(s.send("RCPT TO:<security+def@example.org>\r\n").starts_with("452 "), "max recipients");
    assert!(s.send("RSET\r\n").starts_with("250 "));
    assert!(s.send("MAIL FROM:<a@x.test>\r\n").starts_with("250 "));
    assert!(s.send("RSET\r\n").starts_with("250 "));
    assert!(s.send("MAIL FROM:<a@x.test>\r\n").starts_with("450 4.7.1"), "rate limit per address");
    assert!(s.send("QUIT\r\n").starts_with("221 "));

    // Connections per address.
    let held: Vec<(Raw, String)> = (0..3).map(|_| Raw::connect(server.smtp_addr)).collect();
    assert!(held.iter().all(|(_, g)| g.starts_with("220 ")));
    let (_, refused) = Raw::connect(server.smtp_addr);
    assert!(refused.starts_with("421 4.7.0"), "{refused}");
    drop(held);

    // Too many errors end the session.
    std::thread::sleep(Duration::from_millis(200));
    let (mut s, _) = Raw::connect(server.smtp_addr);
    let mut last = String::new();
    for _ in 0..11 {
        last = s.send("BOGUS\r\n");
    }
    assert!(last.starts_with("421 ") || last.is_empty(), "{last}");
}

#[test]
fn a_killed_server_loses_no_accepted_message() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let file = config(&it, "[mail]\nmessages_per_minute_per_ip = 1000000\nmax_connections_per_ip = 64\n");
        let server = it.serve_with(&["--config", &file], &[]);
        let log = it.path("accepted.log");
        let mut load = Command::new("python3")
            .arg(client_script())
            .args(["load", "127.0.0.1", &server.smtp_addr.port().to_string(), "1000", "16"])
            .arg(&log)
            .spawn()
            .unwrap();
        // Kill the server partway through.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0) < 150 {
            assert!(Instant::now() < deadline, "the load did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        load.wait().unwrap();
        let accepted: Vec<u32> = std::fs::read_to_string(&log).unwrap().lines().map(|l| l.parse().unwrap()).collect();
        assert!(
            accepted.len() >= 150 && accepted.len() < 1000,
            "{}: kill was not partway: {}",
            db.backend,
            accepted.len()
        );

        // After a restart, every message that got 250 is there exactly once.
        let server = it.serve(&[]);
        let titles: Vec<String> = reports(&it).iter().map(|r| r["title"].as_str().unwrap().to_owned()).collect();
        for n in &accepted {
            let title = format!("durability {n}");
            let count = titles.iter().filter(|t| **t == title).count();
            assert_eq!(count, 1, "{}: message {n} was answered 250 but stored {count} times", db.backend);
        }
        let out = it.run(&["audit", "verify"], b"");
        assert_eq!(out.code, 0, "{}", out.stdout);
        drop(server);
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private Postfix instance (own configuration, queue and logs in `dir`, loopback only)
/// that relays mail for example.org to `relay_to`, as a production MX in front of Embargo.
struct Postfix {
    conf: PathBuf,
    child: std::process::Child,
    port: u16,
}

impl Postfix {
    fn start(dir: &Path, relay_to: SocketAddr) -> Option<Self> {
        tool("postfix")?;
        if !is_root() {
            require::<()>("postfix", Err("a private Postfix instance needs root".into()))?;
        }
        let base = dir.join("postfix");
        let (conf, queue, data) = (base.join("conf"), base.join("queue"), base.join("data"));
        for d in [&conf, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let port = free_port();
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {data}\n\
                 command_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\n\
                 meta_directory = /etc/postfix\nshlib_directory = /usr/lib/postfix\nmail_owner = postfix\n\
                 setgid_group = postdrop\nmyhostname = mx.example.org\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmydestination =\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
                 relay_domains = example.org\ntransport_maps = inline:{{ example.org=smtp:[127.0.0.1]:{embargo} }}\n\
                 smtp_tls_security_level = none\nmaillog_file = /dev/stdout\nsmtputf8_enable = no\n",
                queue = queue.display(),
                data = data.display(),
                embargo = relay_to.port(),
            ),
        )
        .unwrap();
        let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
        let mut lines: Vec<String> =
            master.lines().filter(|l| !l.starts_with("smtp      inet")).map(str::to_owned).collect();
        lines.insert(0, format!("127.0.0.1:{port} inet n - n - - smtpd"));
        std::fs::write(conf.join("master.cf"), lines.join("\n") + "\n").unwrap();
        Command::new("chown").arg("postfix").arg(&data).status().unwrap();
        Command::new("chmod").args(["755"]).arg(dir).arg(&base).status().unwrap();
        let child = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start-fg")
            .stdout(std::fs::File::create(base.join("postfix.log")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        Some(Postfix { conf, child, port })
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(&self.conf).arg("stop").output();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_postfix_relays_mail_into_embargo() {
    let Some(_) = tool("swaks") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let Some(postfix) = Postfix::start(&it.path(""), server.smtp_addr) else { return };
        let out = Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{}", postfix.port), "--from", "finder@example.net"])
            .args(["--to", "security@example.org", "--header", "Subject: relayed through postfix"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("250 2.0.0 Ok: queued"), "{out:?}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = loop {
            if let Some(r) = reports(&it).into_iter().find(|r| r["title"] == "relayed through postfix") {
                break r;
            }
            assert!(Instant::now() < deadline, "{}: Postfix did not relay the message into Embargo", db.backend);
            std::thread::sleep(Duration::from_millis(100));
        };
        let detail = show(&it, report["id"].as_str().unwrap());
        assert_eq!(detail["reporter"]["email"], "finder@example.net");
        assert_eq!(outbox(&it, 1).len(), 1, "the relayed reporter is acknowledged");
        drop(postfix);
    }
}

#[test]
fn outbound_mail_goes_through_a_real_smtp_relay_and_is_retried_until_it_is_up() {
    let Some(_) = tool("smtp-sink") else { return };
    let it = Instance::new(BIN, None);
    let sink_port = free_port();
    let file = config(&it, &format!("[mail]\nrelay = \"smtp://127.0.0.1:{sink_port}\"\n"));
    let server = it.serve_with(&["--config", &file], &FAST_JOBS);
    let (code, output) = swaks(&server, &["--from", "relay-me@example.net", "--to", "security@example.org"]);
    assert_eq!(code, 0, "{output}");

    // The relay is down: the job fails, is kept and retried, nothing is lost.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = it.run(&["jobs", "list", "--json"], b"");
        let jobs: Value = serde_json::from_str(&out.stdout).unwrap();
        let ack = jobs.as_array().unwrap().iter().find(|j| j["kind"] == "mail.acknowledgement").cloned();
        if let Some(job) = ack.filter(|j| j["state"] == "queued" && j["attempts"] == 1) {
            assert!(job["last_error"].as_str().unwrap().contains("cannot send"), "{job}");
            break;
        }
        assert!(Instant::now() < deadline, "the failed delivery was not recorded for retry: {jobs}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Postfix's smtp-sink comes up as the relay; the retry (after 5 s) delivers through it.
    let dump = it.path("sink");
    std::fs::create_dir_all(&dump).unwrap();
    Command::new("chmod").args(["777"]).arg(&dump).status().unwrap();
    let mut sink = Command::new("smtp-sink");
    if is_root() {
        sink.args(["-u", "postfix"]);
    }
    let mut sink = sink
        .arg("-d")
        .arg(format!("{}/%M.", dump.display()))
        .arg(format!("127.0.0.1:{sink_port}"))
        .arg("10")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&dump).unwrap().flatten().map(|e| e.path()).collect();
        if let Some(file) = files.first() {
            std::thread::sleep(Duration::from_millis(200));
            break std::fs::read_to_string(file).unwrap();
        }
        assert!(Instant::now() < deadline, "nothing reached the relay");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = sink.kill();
    let _ = sink.wait();
    assert!(delivered.contains("X-Rcpt-Args: <relay-me@example.net>"), "{delivered}");
    assert!(delivered.contains("X-Mail-Args: <security@example.org>"), "{delivered}");
    assert!(delivered.contains("We received your security report"), "{delivered}");
    assert!(it.run(&["outbox", "list", "--json"], b"").stdout.trim() == "[]", "a relay, not the outbox");
    drop(server);
}

#[test]
fn closing_as_not_security_sends_the_public_tracker_and_upstream_is_recorded() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let file = config(&it, "[organisation]\npublic_issue_tracker = \"https://tracker.example.org/issues/new\"\n");
        let server = it.serve_with(&["--config", &file], &FAST_JOBS);
        let mail = b"From: Bob <bob@example.net>\r\nSubject: Button is blue\r\nMessage-ID: <b1@example.net>\r\n\r\nIt should be green.\r\n";
        let mut cmd = it.command(&["ingest-mail", "--config", &file]);
        cmd.env("EMBARGO_LOG", "warn");
        let out = embargo_test_support::run_command(cmd, mail);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let id = out.stdout.trim().trim_start_matches("new report ").to_owned();
        assert_eq!(outbox(&it, 1).len(), 1);

        let out = it.run(&["report", "transition", &id, "closed:not-security", "--config", &file], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mails = outbox(&it, 2);
        assert_eq!(mails.len(), 2, "{}", db.backend);
        let redirect = mails.iter().find(|m| m["subject"].as_str().unwrap().contains("Not a security issue")).unwrap();
        assert!(redirect["to"].as_str().unwrap().contains("bob@example.net"));
        let raw = std::fs::read_to_string(redirect["path"].as_str().unwrap())
            .unwrap()
            .replace("=\r\n", "")
            .replace("=\n", "");
        assert!(raw.contains("https://tracker.example.org/issues/new"), "{raw}");
        assert!(header(&raw, "Auto-Submitted").is_none(), "a human decision, not an auto-reply");

        // Reopening tells the reporter too (every reporter-visible change does); the thread
        // shows the three mails.
        assert_eq!(it.run(&["report", "transition", &id, "triaging", "--config", &file], b"").code, 0);
        let mails = outbox(&it, 3);
        assert_eq!(mails.len(), 3);
        assert!(mails.iter().any(|m| m["subject"].as_str().unwrap().contains("We are analysing your report")));
        let detail = show(&it, &id);
        let outbound = detail["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "outbound").count();
        assert_eq!(outbound, 3, "{detail}");

        // A report about a dependency is marked upstream with its contact.
        let out = it.run(&["report", "upstream", &id, "--project", "Docker", "--contact", "security@docker.com"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let detail = show(&it, &id);
        assert_eq!(detail["upstream"]["project"], "Docker");
        assert_eq!(detail["upstream"]["contact"], "security@docker.com");
        let out = it.run(&["report", "upstream", &id, "--project", "", "--contact", "x"], b"");
        assert_eq!(out.code, 65);
        drop(server);
    }
}

/// A GnuPG home of its own, with the instance key imported and a reporter key generated.
pub(crate) struct Gpg {
    pub(crate) home: PathBuf,
}

impl Gpg {
    pub(crate) fn new(dir: &Path, instance_key: &str) -> Option<Self> {
        tool("gpg")?;
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        Command::new("chmod").arg("700").arg(&home).status().unwrap();
        let gpg = Gpg { home };
        if !instance_key.is_empty() {
            std::fs::write(dir.join("instance.asc"), instance_key).unwrap();
            gpg.run(&["--import", dir.join("instance.asc").to_str().unwrap()]);
        }
        gpg.add_key("Reporter <reporter@example.net>");
        Some(gpg)
    }

    /// Generates an Ed25519 key with a Curve25519 encryption subkey for `user_id`.
    pub(crate) fn add_key(&self, user_id: &str) {
        self.run(&["--passphrase", "", "--quick-gen-key", user_id, "ed25519", "cert,sign", "never"]);
        let listing = String::from_utf8(self.run(&["--with-colons", "--list-keys", user_id])).unwrap();
        let fingerprint =
            listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_owned();
        self.run(&["--passphrase", "", "--quick-add-key", &fingerprint, "cv25519", "encr", "never"]);
    }

    pub(crate) fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--trust-model", "always"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Encrypts (and with `sign`, signs) `plaintext` to the instance key, armored.
    pub(crate) fn encrypt(&self, dir: &Path, plaintext: &[u8], sign: bool) -> String {
        let input = dir.join(format!("plain-{}", rand_suffix()));
        std::fs::write(&input, plaintext).unwrap();
        let mut args = vec!["--armor", "--encrypt", "-r", "security@example.org", "-o", "-"];
        if sign {
            args.extend(["--sign", "-u", "reporter@example.net"]);
        }
        args.push(input.to_str().unwrap());
        String::from_utf8(self.run(&args)).unwrap()
    }
}

#[test]
fn gnupg_encrypted_reports_are_decrypted_at_intake() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = it.serve(&FAST_JOBS);
        let key = server.http("GET", "/.well-known/security.asc", &[], b"");
        assert_eq!(key.status, 200);
        assert_eq!(key.header("content-type"), Some("application/pgp-keys; charset=utf-8"));
        assert!(key.body.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        let fingerprint_line = server.stdout_lines().into_iter().find(|l| l.starts_with("OpenPGP key ")).unwrap();
        let dir = it.path("");
        let Some(gpg) = Gpg::new(&dir, &key.body) else { return };
        // GnuPG sees the published key under the security address, with the printed fingerprint.
        let listed = String::from_utf8(gpg.run(&["--with-colons", "--fingerprint", "security@example.org"])).unwrap();
        let fingerprint = fingerprint_line.split_whitespace().nth(2).unwrap();
        assert!(listed.contains(fingerprint), "{listed}");

        // Inline PGP in a plain-text body.
        let armored = gpg.encrypt(&dir, b"Inline secret: the admin token is never rotated.\n", false);
        let inline = format!(
            "From: reporter@example.net\r\nTo: security@example.org\r\nSubject: inline pgp\r\nMessage-ID: <i1@example.net>\r\n\r\nHello,\r\n\r\n{}\r\n",
            armored.replace('\n', "\r\n")
        );
        assert_eq!(python_send(&server, "reporter@example.net", "security@example.org", inline.as_bytes(), &dir), 250);

        // PGP/MIME (RFC 3156), signed and encrypted, with a proof of concept and the
        // reporter's own key attached inside.
        let reporter_key = String::from_utf8(gpg.run(&["--armor", "--export", "reporter@example.net"])).unwrap();
        let entity = format!(
            "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMIME secret: race in the session store.\r\n\
             --in\r\nContent-Type: text/x-python\r\nContent-Disposition: attachment; filename=\"poc.py\"\r\n\r\nprint('poc')\r\n\
             --in\r\nContent-Type: application/pgp-keys\r\nContent-Disposition: attachment; filename=\"reporter.asc\"\r\n\r\n{}\r\n--in--\r\n",
            reporter_key.replace('\n', "\r\n")
        );
        let armored = gpg.encrypt(&dir, entity.as_bytes(), true);
        let mime = format!(
            "From: reporter@example.net\r\nTo: security@example.org\r\nSubject: pgp mime\r\nMessage-ID: <m1@example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"out\"\r\n\r\n\
             --out\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
             --out\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{}\r\n--out--\r\n",
            armored.replace('\n', "\r\n")
        );
        assert_eq!(python_send(&server, "reporter@example.net", "security@example.org", mime.as_bytes(), &dir), 250);

        // Sequoia's sq as a second implementation.
        let Some(_) = tool("sq") else { return };
        let plain = dir.join("sq-plain.txt");
        std::fs::write(&plain, "Sequoia secret: the upload path is not normalised.\n").unwrap();
        let out = Command::new("sq")
            .arg("encrypt")
            .arg("--recipient-cert")
            .arg(dir.join("instance.asc"))
            .arg(&plain)
            .output()
            .unwrap();
        assert!(out.status.success(), "sq: {}", String::from_utf8_lossy(&out.stderr));
        let armored = String::from_utf8(out.stdout).unwrap();
        let body = format!(
            "From: sq@example.net\r\nSubject: sq inline\r\nMessage-ID: <s1@example.net>\r\n\r\n{}\r\n",
            armored.replace('\n', "\r\n")
        );
        assert_eq!(python_send(&server, "sq@example.net", "security@example.org", body.as_bytes(), &dir), 250);

        let list = reports(&it);
        let find = |title: &str| show(&it, list.iter().find(|r| r["title"] == title).unwrap()["id"].as_str().unwrap());
        let sq = find("sq inline");
        assert!(sq["body"].as_str().unwrap().contains("Sequoia secret: the upload path is not normalised."), "{sq}");
        assert_eq!(sq["messages"][0]["pgp"], "pgp-inline");
        let inline = find("inline pgp");
        assert!(
            inline["body"].as_str().unwrap().contains("Inline secret: the admin token is never rotated."),
            "{inline}"
        );
        assert!(!inline["body"].as_str().unwrap().contains("BEGIN PGP MESSAGE"));
        assert_eq!(inline["messages"][0]["pgp"], "pgp-inline");
        let mime = find("pgp mime");
        assert!(mime["body"].as_str().unwrap().contains("MIME secret: race in the session store."), "{mime}");
        assert_eq!(mime["messages"][0]["pgp"], "pgp-mime+signed-unverified", "no key known yet");
        assert_eq!(mime["attachments"][0]["filename"], "poc.py");

        // The team imports the attached key; from then on mail to the reporter is encrypted,
        // and GnuPG reads it with the reporter's key.
        let key_attachment =
            mime["attachments"].as_array().unwrap().iter().find(|a| a["filename"] == "reporter.asc").unwrap();
        let id = mime["id"].as_str().unwrap();
        let out = it.run(&["report", "import-key", id, "--attachment", &key_attachment["id"].to_string()], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(show(&it, id)["reporter"]["openpgp_key"], true);

        // With the key known, the reporter's signature on later mail is verified.
        let armored = gpg.encrypt(&dir, b"Signed follow-up.\n", true);

        let follow_up = format!(
            "From: reporter@example.net\r\nTo: security@example.org\r\nSubject: signed follow-up\r\nMessage-ID: <f1@example.net>\r\nIn-Reply-To: <m1@example.net>\r\n\r\n{}\r\n",
            armored.replace('\n', "\r\n")
        );
        assert_eq!(
            python_send(&server, "reporter@example.net", "security@example.org", follow_up.as_bytes(), &dir),
            250
        );
        let thread = show(&it, id);
        let last =
            thread["messages"].as_array().unwrap().iter().rev().find(|m| m["kind"] == "inbound").unwrap().clone();
        assert_eq!(last["pgp"], "pgp-inline+signed-verified", "{thread}");
        assert_eq!(last["quarantined"], false);
        assert_eq!(it.run(&["report", "transition", id, "closed:not-security"], b"").code, 0);
        // Encrypted: the cleartext subject is only the reference (ADR 15).
        let redirect = wait_for_mail(&it, |m| {
            m["subject"].as_str().unwrap() == format!("[{id}]") && m["path"].as_str().unwrap().contains("/msg-")
        });
        let raw = std::fs::read_to_string(redirect["path"].as_str().unwrap()).unwrap();
        assert!(raw.contains("multipart/encrypted") && !raw.contains("public issue tracker"), "{raw}");
        let start = raw.find("-----BEGIN PGP MESSAGE-----").unwrap();
        let end = raw.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
        std::fs::write(dir.join("reply.asc"), raw[start..end].replace("\r\n", "\n")).unwrap();
        let decrypted = String::from_utf8(gpg.run(&["--decrypt", dir.join("reply.asc").to_str().unwrap()])).unwrap();
        assert!(decrypted.replace("=\r\n", "").replace("=\n", "").contains("public issue tracker"), "{decrypted}");

        // Mail encrypted to some other key is kept as it came, marked undecryptable.
        let other = Gpg::new(&dir.join("other"), "").map(|g| {
            g.add_key("Other <other@example.net>");
            let input = dir.join("other-plain");
            std::fs::write(&input, "not for embargo").unwrap();
            String::from_utf8(g.run(&[
                "--armor",
                "--encrypt",
                "-r",
                "other@example.net",
                "-o",
                "-",
                input.to_str().unwrap(),
            ]))
            .unwrap()
        });
        if let Some(armored) = other {
            let body = format!(
                "From: x@example.net\r\nSubject: wrong key\r\nMessage-ID: <w1@example.net>\r\n\r\n{}\r\n",
                armored.replace('\n', "\r\n")
            );
            assert_eq!(python_send(&server, "x@example.net", "security@example.org", body.as_bytes(), &dir), 250);
            let wrong =
                show(&it, reports(&it).iter().find(|r| r["title"] == "wrong key").unwrap()["id"].as_str().unwrap());
            assert_eq!(wrong["messages"][0]["pgp"], "undecryptable");
            assert!(wrong["body"].as_str().unwrap().contains("BEGIN PGP MESSAGE"));
        }
        drop(server);
    }
}

/// A private Dovecot instance (own configuration, TLS certificate, users and mail in `dir`,
/// loopback only) holding an existing security mailbox.
struct Dovecot {
    conf: PathBuf,
    port: u16,
    /// The CA that signed the server's certificate.
    cert: PathBuf,
}

impl Dovecot {
    fn start(dir: &Path) -> Option<Self> {
        tool("dovecot")?;
        if !is_root() {
            require::<()>("dovecot", Err("a private Dovecot instance needs root".into()))?;
        }
        let (ca, cert, key) = ca_and_server_cert(dir)?;
        let base = dir.join("dovecot");
        let home = base.join("home");
        std::fs::create_dir_all(base.join("run")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        Command::new("chown").args(["-R", "dovecot:"]).arg(&home).status().unwrap();
        Command::new("chmod").arg("755").arg(dir).arg(&base).status().unwrap();
        std::fs::write(base.join("passwd"), "security:{PLAIN}imap-secret::::\n").unwrap();
        let port = free_port();
        let conf = base.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {b}/run\nstate_dir = {b}/run\nlisten = 127.0.0.1\nprotocols = imap\nssl = required\n\
                 ssl_cert = <{cert}\nssl_key = <{key}\nlog_path = {b}/dovecot.log\nauth_mechanisms = plain\n\
                 first_valid_uid = 1\npassdb {{\n  driver = passwd-file\n  args = {b}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={b}/home/%u\n}}\n\
                 mail_location = maildir:~/Maildir\nservice imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n\
                 inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n",
                b = base.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let status = Command::new("dovecot").arg("-c").arg(&conf).status().unwrap();
        assert!(status.success(), "dovecot did not start");
        wait_for_port(port);
        Some(Dovecot { conf, port, cert: ca })
    }

    /// Runs Python's imaplib against the server: `append` a message file, or count messages
    /// carrying a keyword.
    fn imaplib(&self, action: &str, argument: &str) -> String {
        let script = format!(
            "import imaplib, ssl, sys\n\
             ctx = ssl.create_default_context(cafile={cert:?})\n\
             m = imaplib.IMAP4_SSL('localhost', {port}, ssl_context=ctx)\n\
             m.login('security', 'imap-secret')\n\
             if {action:?} == 'append':\n    m.append('INBOX', None, None, open({argument:?}, 'rb').read())\n\
             else:\n    m.select('INBOX')\n    typ, data = m.search(None, 'KEYWORD', {argument:?})\n    print(len(data[0].split()))\n\
             m.logout()\n",
            cert = self.cert.display().to_string(),
            port = self.port,
        );
        let out = Command::new("python3").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm").arg("-c").arg(&self.conf).arg("stop").output();
    }
}

#[test]
fn an_existing_mailbox_is_polled_over_imap_and_flagged_only_after_commit() {
    let Some(_) = tool("python3") else { return };
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let dir = it.path("");
        let Some(dovecot) = Dovecot::start(&dir) else { return };
        for (n, subject) in ["imap one", "imap two"].iter().enumerate() {
            let file = dir.join(format!("m{n}.eml"));
            std::fs::write(&file, format!("From: poll{n}@example.net\r\nSubject: {subject}\r\nMessage-ID: <p{n}@example.net>\r\n\r\nFrom the mailbox.\r\n")).unwrap();
            dovecot.imaplib("append", file.to_str().unwrap());
        }
        let file = config(
            &it,
            &format!(
                "[imap]\nserver = \"localhost:{}\"\nusername = \"security\"\npassword = \"imap-secret\"\nca_certificate = \"{}\"\npoll_seconds = 2\n",
                dovecot.port,
                dovecot.cert.display()
            ),
        );
        let server = it.serve_with(&["--config", &file], &FAST_JOBS);
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let list = reports(&it);
                if list.len() >= n {
                    return list;
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: IMAP mail not taken in: {list:?}\n{}",
                    db.backend,
                    server.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let list = wait_for(2);
        assert!(list.iter().any(|r| r["title"] == "imap one") && list.iter().any(|r| r["title"] == "imap two"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while dovecot.imaplib("count", "$EmbargoIngested") != "2" {
            assert!(Instant::now() < deadline, "messages were not flagged after commit");
            std::thread::sleep(Duration::from_millis(100));
        }

        // New mail arriving while Embargo waits (IDLE) is taken in too, once.
        let late = dir.join("late.eml");
        std::fs::write(
            &late,
            "From: late@example.net\r\nSubject: imap three\r\nMessage-ID: <p3@example.net>\r\n\r\nLater.\r\n",
        )
        .unwrap();
        dovecot.imaplib("append", late.to_str().unwrap());
        let list = wait_for(3);
        assert_eq!(list.iter().filter(|r| r["title"] == "imap three").count(), 1);
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(reports(&it).len(), 3, "nothing is taken in twice");
        assert_eq!(outbox(&it, 3).len(), 3, "polled reporters are acknowledged");
        drop(server);
        drop(dovecot);
    }
}

/// A real DNS server (dnsmasq) on loopback serving the SPF and DMARC records of the test.
pub(crate) struct Dns {
    child: std::process::Child,
    pub(crate) port: u16,
}

impl Dns {
    pub(crate) fn start(records: &[(&str, &str)]) -> Option<Self> {
        tool("dnsmasq")?;
        let port = free_port();
        let mut cmd = Command::new("dnsmasq");
        // `--address=/#/`: every other name does not exist (NXDOMAIN), as on the Internet,
        // rather than "refused" for want of an upstream server.
        cmd.args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--bind-interfaces"])
            .arg("--address=/#/")
            .args(["--listen-address=127.0.0.1", &format!("--port={port}"), "--log-facility=-"]);
        if is_root() {
            cmd.arg("--user=root");
        }
        for (name, text) in records {
            cmd.arg(format!("--txt-record={name},{text}"));
        }
        let child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        wait_for_port(port);
        Some(Dns { child, port })
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn spf_and_dmarc_are_recorded_and_a_spoofed_reply_is_quarantined() {
    let Some(_) = tool("swaks") else { return };
    // A DKIM key for example.net, published in DNS, and dkimpy (PyPI) to sign with it.
    let dkimsign = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tools/venv/bin/dkimsign");
    let dkimsign = if dkimsign.exists() { Some(dkimsign) } else { tool("dkimsign") };
    let Some(dkimsign) = dkimsign else { return };
    let Some(_) = tool("openssl") else { return };
    let keys = tempfile_dir();
    let key = keys.join("dkim.key");
    let status = Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048").output().unwrap();
    assert!(status.status.success());
    let der = Command::new("openssl").args(["rsa", "-pubout", "-outform", "DER", "-in"]).arg(&key).output().unwrap();
    let public = base64_encode(&der.stdout);
    // TXT records longer than 255 octets are split into several strings.
    let chunks: Vec<String> = format!("v=DKIM1; k=rsa; p={public}")
        .as_bytes()
        .chunks(200)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let dkim_record = chunks.join(",");
    let Some(dns) = Dns::start(&[
        ("example.net", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.example.net", "v=DMARC1; p=reject"),
        ("spoofed.test", "v=spf1 ip4:192.0.2.1 -all"),
        ("sel._domainkey.example.net", &dkim_record),
    ]) else {
        return;
    };
    let it = Instance::new(BIN, None);
    let file =
        config(&it, &format!("[mail]\ncheck_sender_authentication = true\ndns_server = \"127.0.0.1:{}\"\n", dns.port));
    let server = it.serve_with(&["--config", &file], &[("EMBARGO_MAIL__CHECK_SENDER_AUTHENTICATION", "true")]);
    let (code, output) = swaks(
        &server,
        &["--from", "alice@example.net", "--to", "security@example.org", "--header", "Subject: authenticated report"],
    );
    assert_eq!(code, 0, "{output}");
    let id = reports(&it)[0]["id"].as_str().unwrap().to_owned();
    let detail = show(&it, &id);
    assert_eq!(detail["messages"][0]["auth"], "dkim=none spf=pass dmarc=pass", "{detail}");

    // A DKIM-signed report verifies; the same message altered after signing does not.
    let sign = |id: &str| {
        let message = format!(
            "From: alice@example.net\r\nTo: security@example.org\r\nSubject: signed report\r\nMessage-ID: <{id}@example.net>\r\n\r\nSigned body.\r\n"
        );
        let signed = Command::new(&dkimsign)
            .args(["sel", "example.net"])
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(message.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(signed.status.success(), "dkimsign: {}", String::from_utf8_lossy(&signed.stderr));
        String::from_utf8(signed.stdout).unwrap()
    };
    for (name, data) in
        [("dkim-ok", sign("dkim-ok")), ("dkim-broken", sign("dkim-broken").replace("Signed body.", "Altered body."))]
    {
        let file = keys.join(format!("{name}.eml"));
        std::fs::write(&file, data).unwrap();
        let (code, output) = swaks(
            &server,
            &["--from", "alice@example.net", "--to", "security@example.org", "--data", file.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{output}");
    }
    let auth_of = |message_id_part: &str| {
        let list = reports(&it);
        list.iter()
            .map(|r| show(&it, r["id"].as_str().unwrap()))
            .find(|d| {
                d["messages"][0]["subject"] == "signed report"
                    && d["messages"][0]["body"].as_str().unwrap().contains(message_id_part)
            })
            .map(|d| d["messages"][0]["auth"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(auth_of("Signed body."), "dkim=pass spf=pass dmarc=pass");
    // mail-auth reports a body-hash mismatch as "neutral" (RFC 6376 leaves fail/neutral open).
    let altered = auth_of("Altered body.");
    assert!(altered.starts_with("dkim=fail") || altered.starts_with("dkim=neutral"), "{altered}");

    // Find the report's reply address from its acknowledgement.
    let acks = outbox(&it, 3);
    let ack = acks.iter().find(|a| a["subject"].as_str().unwrap().starts_with(&format!("[{id}]"))).unwrap().clone();
    let raw = std::fs::read_to_string(ack["path"].as_str().unwrap()).unwrap();
    let reply_to = header(&raw, "Reply-To").unwrap();

    // A reply claiming to be Alice but sent from elsewhere fails DMARC: quarantined.
    let (code, output) = swaks(
        &server,
        &[
            "--from",
            "bob@spoofed.test",
            "--to",
            &reply_to,
            "--header",
            "From: alice@example.net",
            "--header",
            "Subject: close it",
        ],
    );
    assert_eq!(code, 0, "{output}");
    // Alice's genuine reply passes and is hers.
    let (code, output) =
        swaks(&server, &["--from", "alice@example.net", "--to", &reply_to, "--header", "Subject: more details"]);
    assert_eq!(code, 0, "{output}");

    let detail = show(&it, &id);
    let inbound: Vec<&Value> =
        detail["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "inbound").collect();
    assert_eq!(inbound.len(), 3, "{detail}");
    assert_eq!(inbound[1]["subject"], "close it");
    assert_eq!(inbound[1]["quarantined"], true);
    assert_eq!(inbound[1]["auth"], "dkim=none spf=fail dmarc=fail");
    assert_eq!(inbound[2]["subject"], "more details");
    assert_eq!(inbound[2]["quarantined"], false);
    drop(server);
}

#[test]
fn security_txt_is_valid_signed_and_names_the_key() {
    let it = Instance::new(BIN, None);
    // RFC 9116 wants HTTPS links: the public URL of a deployment behind TLS.
    let server = it.serve(&[("EMBARGO_PUBLIC_URL", "https://security.example.org")]);
    let response = server.http("GET", "/.well-known/security.txt", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = response.body;
    assert!(text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"), "{text}");
    assert!(text.contains("Contact: mailto:security@example.org"));
    assert!(text.contains("Encryption: https://security.example.org/.well-known/security.asc"));
    assert!(text.contains("Canonical: https://security.example.org/.well-known/security.txt"));
    assert!(text.contains("Policy: https://security.example.org/policy"));
    assert!(text.contains("Preferred-Languages: en"));
    let expires = text.lines().find_map(|l| l.strip_prefix("Expires: ")).unwrap();
    let expires: jiff::Timestamp = expires.parse().unwrap();
    let ahead = expires.duration_since(jiff::Timestamp::now());
    assert!(ahead > jiff::SignedDuration::from_hours(24 * 30) && ahead < jiff::SignedDuration::from_hours(24 * 365));
    let dir = it.path("");
    let file = dir.join("security.txt");
    std::fs::write(&file, &text).unwrap();

    // GnuPG verifies the signature with the published key.
    let key = server.http("GET", "/.well-known/security.asc", &[], b"").body;
    if let Some(gpg) = Gpg::new(&dir, &key) {
        gpg.run(&["--verify", file.to_str().unwrap()]);
    }
    // The DigitalTrustCenter validator (PyPI sectxt) accepts it.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tools/venv/bin/sectxt");
    let sectxt = if venv.exists() { Some(venv) } else { tool("sectxt") };
    if let Some(sectxt) = sectxt {
        let out = Command::new(sectxt).arg(&file).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "sectxt: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bounce_of_our_mail_is_recorded_on_its_report() {
    let Some(_) = tool("python3") else { return };
    let it = Instance::new(BIN, None);
    let server = it.serve(&FAST_JOBS);
    let dir = it.path("");
    let first = b"From: gone@example.net\r\nSubject: Bug in login\r\nMessage-ID: <g1@example.net>\r\n\r\nDetails.\r\n";
    assert_eq!(python_send(&server, "gone@example.net", "security@example.org", first, &dir), 250);
    let ack = outbox(&it, 1).remove(0);
    let raw = std::fs::read_to_string(ack["path"].as_str().unwrap()).unwrap();
    let ack_id = header(&raw, "Message-ID").unwrap();
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: security@example.org\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <dsn1@mx.example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered: user unknown.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ack_id}\r\nSubject: [x] We received your security report\r\n--B--\r\n"
    );
    assert_eq!(python_send(&server, "", "security@example.org", dsn.as_bytes(), &dir), 250);
    let list = reports(&it);
    assert_eq!(list.len(), 1, "a bounce opens no report: {list:?}");
    let detail = show(&it, list[0]["id"].as_str().unwrap());
    let note = detail["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "note").expect("bounce recorded");
    assert!(note["body"].as_str().unwrap().contains("could not be delivered: user unknown"), "{note}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(outbox(&it, 1).len(), 1, "a bounce is never answered");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("embargo-e2e-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
