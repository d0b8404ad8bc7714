//! Partners and early disclosure end to end (issue 15), with the real binary, GnuPG and
//! git: `partner add` with each partner's key, `notice draft` refusing a date the policy
//! forbids (exit 65) and accepting one, `notice send`, then each partner's copy in the
//! outbox decrypts with that partner's key and no other, carries the patches that apply
//! with `git am` on the public branch, and a contact without a key gets no detail at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, both_backends, require};
use serde_json::Value;

use crate::BIN;
use crate::fixes::{git_ok, ok, public_repository};
use crate::smtp::{Gpg, tool};

/// A GnuPG home with one key (Ed25519 + Curve25519) for `user_id`; returns the home and
/// the armoured public key's file.
fn gpg_home(root: &Path, name: &str, user_id: &str) -> (PathBuf, PathBuf) {
    let home = root.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    Command::new("chmod").arg("700").arg(&home).status().unwrap();
    Gpg { home: home.clone() }.add_key(user_id);
    let public = root.join(format!("{name}.asc"));
    std::fs::write(&public, gpg(&home, &["--armor", "--export", user_id])).unwrap();
    (home, public)
}

/// gpg in `home` (see `smtp::Gpg::run`), its output as text.
fn gpg(home: &Path, args: &[&str]) -> String {
    String::from_utf8(Gpg { home: home.to_owned() }.run(args)).unwrap()
}

/// Decrypts the armoured OpenPGP message in a PGP/MIME mail with a GnuPG home: the
/// decrypted MIME entity, or `None` when that home cannot.
fn decrypt(home: &Path, raw: &str, scratch: &Path) -> Option<Vec<u8>> {
    let begin = raw.find("-----BEGIN PGP MESSAGE-----")?;
    let end = raw.find("-----END PGP MESSAGE-----")? + "-----END PGP MESSAGE-----".len();
    let file = scratch.join(format!("msg-{}.asc", crate::smtp::rand_suffix()));
    std::fs::write(&file, raw[begin..end].replace("\r\n", "\n")).unwrap();
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--trust-model", "always", "--decrypt"])
        .arg(&file)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("gpg --decrypt: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success().then_some(out.stdout)
}

/// The parts of a MIME entity, by Python's `email` (strict policy): (filename or "", content type, bytes).
fn mime_parts(entity: &[u8], scratch: &Path) -> Vec<(String, String, Vec<u8>)> {
    let file = scratch.join(format!("entity-{}.eml", crate::smtp::rand_suffix()));
    std::fs::write(&file, entity).unwrap();
    let script = r#"
import sys, json, base64, email, email.policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.strict)
out = []
for p in m.walk():
    if p.is_multipart():
        continue
    out.append([p.get_filename() or '', p.get_content_type(), base64.b64encode(p.get_payload(decode=True)).decode()])
print(json.dumps(out))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parts: Vec<(String, String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine as _;
    parts
        .into_iter()
        .map(|(name, ct, data)| (name, ct, base64::engine::general_purpose::STANDARD.decode(data).unwrap()))
        .collect()
}

/// An instant `days` from now at 16:00 UTC (RFC 3339).
fn days_ahead(days: i64) -> String {
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let date = now.date().checked_add(jiff::Span::new().days(days)).unwrap();
    format!("{date}T16:00:00Z")
}

fn outbox(it: &Instance) -> Vec<Value> {
    let out = it.run(&["outbox", "list", "--json"], b"");
    serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// Waits (at most 30 s) until every contact's copy left.
fn all_sent(it: &Instance, notice: &str, contacts: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = serde_json::from_str(&ok(it, &["notice", "status", notice, "--json"]).stdout).unwrap();
        let list = status["contacts"].as_array().unwrap();
        if list.len() == contacts && list.iter().all(|c| c["state"] == "sent") {
            return status;
        }
        assert!(Instant::now() < deadline, "the copies did not all go: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mail_to(it: &Instance, to: &str) -> String {
    let mail = outbox(it)
        .into_iter()
        .rfind(|m| m["to"].as_str().is_some_and(|t| t.contains(to)))
        .unwrap_or_else(|| panic!("no mail to {to}: {:?}", outbox(it)));
    std::fs::read_to_string(mail["path"].as_str().unwrap()).unwrap()
}

#[test]
fn each_partner_decrypts_only_its_own_copy_and_the_patches_apply_with_git_am() {
    let tools = Command::new("git").arg("--version").output().map(drop).map_err(|e| format!("git: {e}"));
    if require("git", tools).is_none() || tool("gpg").is_none() || tool("python3").is_none() {
        return;
    }
    for db in both_backends() {
        let root = tempfile::tempdir().unwrap();
        let public = public_repository(root.path());
        let it = Instance::new(BIN, Some(&db));
        ok(&it, &["product", "add", "app"]);
        ok(
            &it,
            &["product", "set", "app", "--repository", public.to_str().unwrap(), "--release-lines", "main,release-1.x"],
        );
        let mail = "From: alice@example.org\r\nTo: security@example.org\r\nSubject: Overflow in parser\r\n\
                    Message-ID: <p-1@example.org>\r\n\r\nSteps\r\n";
        let out = it.run(&["ingest-mail"], mail.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let reference = out.stdout.trim().trim_start_matches("new report ").to_owned();
        ok(&it, &["report", "product", &reference, "app"]);
        ok(&it, &["report", "transition", &reference, "triaging"]);
        ok(&it, &["report", "transition", &reference, "accepted"]);
        let server = it.serve(&[("EMBARGO_JOBS__POLL_INTERVAL_MS", "50")]);

        // A fix on main, pushed through Embargo's git endpoint.
        ok(&it, &["fix", "open", &reference]);
        ok(&it, &["fix", "invite", &reference, "--email", "dev@example.org"]);
        let token = ok(&it, &["admin", "create-token", "--email", "dev@example.org"]).stdout.trim().to_owned();
        let clone = root.path().join("clone");
        let url = format!("http://dev%40example.org:{token}@{}/git/{reference}.git", server.addr);
        git_ok(root.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        std::fs::write(clone.join("code.txt"), "fixed: bounds are checked\n").unwrap();
        git_ok(&clone, &["commit", "-q", "-am", "Check bounds in the parser"]);
        git_ok(&clone, &["push", "-q", "origin", "HEAD:fix/main"]);

        // Three partners: two with keys, one without.
        let (alpha_home, alpha_key) = gpg_home(root.path(), "alpha", "Alpha PSIRT <psirt@alpha.example>");
        let (beta_home, beta_key) = gpg_home(root.path(), "beta", "Beta Security <security@beta.example>");
        ok(
            &it,
            &[
                "partner",
                "add",
                "Alpha",
                "--contact",
                "psirt@alpha.example",
                "--key",
                alpha_key.to_str().unwrap(),
                "--products",
                "app",
                "--time-zone",
                "Europe/Berlin",
            ],
        );
        ok(
            &it,
            &[
                "partner",
                "add",
                "Beta",
                "--contact",
                "security@beta.example",
                "--key",
                beta_key.to_str().unwrap(),
                "--products",
                "app",
            ],
        );
        ok(&it, &["partner", "add", "Gamma <b>", "--contact", "sec@gamma.example", "--products", "app"]);
        let listed: Value = serde_json::from_str(&ok(&it, &["partner", "list", "--json"]).stdout).unwrap();
        let names: Vec<&str> = listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Alpha", "Beta", "Gamma <b>"], "{listed}");
        assert!(listed[0]["contacts"][0]["fingerprint"].as_str().is_some_and(|f| f.len() >= 40), "{listed}");
        assert!(listed[2]["contacts"][0]["fingerprint"].is_null(), "{listed}");
        // A key that is not a key is refused with the reason, and nothing is added.
        std::fs::write(root.path().join("junk.asc"), "not a key").unwrap();
        let junk = it.run(
            &[
                "partner",
                "add",
                "Delta",
                "--contact",
                "d@delta.example",
                "--key",
                root.path().join("junk.asc").to_str().unwrap(),
                "--products",
                "app",
            ],
            b"",
        );
        assert_eq!(junk.code, 65, "{}", junk.stderr);
        assert!(junk.stderr.contains("cannot be read"), "{}", junk.stderr);
        // Keys nobody should encrypt to: expired (made in 2020, valid a day), revoked (with
        // the revocation GnuPG made), another partner's, several in one file.
        let old_home = root.path().join("gnupg-old");
        std::fs::create_dir_all(&old_home).unwrap();
        Command::new("chmod").arg("700").arg(&old_home).status().unwrap();
        let faked = ["--faked-system-time", "20200101T000000!"];
        gpg(
            &old_home,
            &[
                &faked[..],
                &["--passphrase", "", "--quick-gen-key", "Old <old@x.example>", "ed25519", "cert,sign", "1d"],
            ]
            .concat(),
        );
        let listing = gpg(&old_home, &["--with-colons", "--list-keys", "old@x.example"]);
        let old_fpr = listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_owned();
        gpg(
            &old_home,
            &[&faked[..], &["--passphrase", "", "--quick-add-key", &old_fpr, "cv25519", "encr", "1d"]].concat(),
        );
        std::fs::write(root.path().join("old.asc"), gpg(&old_home, &["--armor", "--export", "old@x.example"])).unwrap();
        let (revoked_home, _) = gpg_home(root.path(), "revoked", "Gone <gone@x.example>");
        let listing = gpg(&revoked_home, &["--with-colons", "--list-keys", "gone@x.example"]);
        let gone_fpr = listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_owned();
        let revocation =
            std::fs::read_to_string(revoked_home.join(format!("openpgp-revocs.d/{gone_fpr}.rev"))).unwrap();
        std::fs::write(root.path().join("rev.asc"), revocation.replace(":-----BEGIN", "-----BEGIN")).unwrap();
        gpg(&revoked_home, &["--import", root.path().join("rev.asc").to_str().unwrap()]);
        std::fs::write(root.path().join("gone.asc"), gpg(&revoked_home, &["--armor", "--export", "gone@x.example"]))
            .unwrap();
        let both =
            format!("{}{}", std::fs::read_to_string(&alpha_key).unwrap(), std::fs::read_to_string(&beta_key).unwrap());
        std::fs::write(root.path().join("both.asc"), both).unwrap();
        for (file, why) in
            [("old.asc", "expired"), ("gone.asc", "revoked"), ("alpha.asc", "another partner"), ("both.asc", "several")]
        {
            let path = root.path().join(file);
            let out = it.run(
                &[
                    "partner",
                    "add",
                    "Eve",
                    "--contact",
                    "e@eve.example",
                    "--key",
                    path.to_str().unwrap(),
                    "--products",
                    "app",
                ],
                b"",
            );
            assert_eq!(out.code, 65, "{file}: {}", out.stderr);
            assert!(out.stderr.contains(why), "{file}: {}", out.stderr);
        }
        // Addresses that could drive a terminal or break a header are refused.
        let escape =
            it.run(&["partner", "add", "Eve", "--contact", "a\u{1b}]0;PWN\u{7}@x.example", "--products", "app"], b"");
        assert_eq!(escape.code, 65, "{}", escape.stderr);
        assert!(!escape.stderr.contains('\u{1b}'), "the refusal itself prints no escape");
        assert!(!ok(&it, &["partner", "list"]).stdout.contains("Eve"), "nothing of Eve was added");

        // The policy: 30 days is too long (exit 65, saying why); 10 days is fine.
        let refused = it.run(&["notice", "draft", &reference, "--disclose-at", &days_ahead(30)], b"");
        assert_eq!(refused.code, 65, "{}{}", refused.stdout, refused.stderr);
        assert!(refused.stderr.contains("longer than the list's maximum of 14 days"), "{}", refused.stderr);
        let past = it.run(&["notice", "draft", &reference, "--disclose-at", "2020-01-07T16:00:00Z"], b"");
        assert_eq!(past.code, 65);
        assert!(past.stderr.contains("in the past"), "{}", past.stderr);
        let at = days_ahead(10);
        let drafted = ok(&it, &["notice", "draft", &reference, "--disclose-at", &at, "--confirm-day"]);
        let notice = drafted.stdout.trim().to_owned();
        assert!(notice.parse::<i64>().is_ok(), "the notice ID: {}", drafted.stdout);
        // The reference names its latest notice.
        let by_reference: Value =
            serde_json::from_str(&ok(&it, &["notice", "status", &reference, "--json"]).stdout).unwrap();
        assert_eq!(by_reference["notice"].to_string(), notice);
        assert_eq!(by_reference["state"], "draft");
        assert_eq!(by_reference["patches"][0][0], "main", "{by_reference}");

        let sent = ok(&it, &["notice", "send", &notice]);
        assert!(sent.stdout.contains("3 contacts (2 encrypted"), "{}", sent.stdout);
        let status = all_sent(&it, &notice, 3);
        let emails: Vec<&str> =
            status["contacts"].as_array().unwrap().iter().map(|c| c["email"].as_str().unwrap()).collect();
        assert_eq!(emails, ["psirt@alpha.example", "security@beta.example", "sec@gamma.example"]);

        let scratch = root.path();
        // The partners know the team's key (published), so the signature inside checks too.
        let team_key = server.http("GET", "/.well-known/security.asc", &[], b"");
        assert_eq!(team_key.status, 200);
        std::fs::write(root.path().join("team.asc"), &team_key.body).unwrap();
        for home in [&alpha_home, &beta_home] {
            gpg(home, &["--import", root.path().join("team.asc").to_str().unwrap()]);
        }
        let alpha = mail_to(&it, "psirt@alpha.example");
        let beta = mail_to(&it, "security@beta.example");
        let gamma = mail_to(&it, "sec@gamma.example");
        // Each copy decrypts with its partner's key and not with the other's.
        let alpha_plain = decrypt(&alpha_home, &alpha, scratch).expect("Alpha decrypts its copy");
        assert!(decrypt(&beta_home, &alpha, scratch).is_none(), "Beta must not decrypt Alpha's copy");
        let beta_plain = decrypt(&beta_home, &beta, scratch).expect("Beta decrypts its copy");
        assert!(decrypt(&alpha_home, &beta, scratch).is_none(), "Alpha must not decrypt Beta's copy");
        // Nothing of the vulnerability in the clear headers of an encrypted copy.
        let headers = &alpha[..alpha.find("\r\n\r\n").unwrap()];
        assert!(!headers.contains("Overflow"), "{headers}");
        assert!(headers.contains("Subject: [EMBARGOED]"), "{headers}");

        let parts = mime_parts(&alpha_plain, scratch);
        let text = String::from_utf8(parts.iter().find(|p| p.1 == "text/plain").unwrap().2.clone()).unwrap();
        assert!(text.contains("Overflow in parser"), "{text}");
        assert!(
            text.contains("Europe/Berlin") && text.contains("UTC"),
            "the instant in UTC and the partner's zone: {text}"
        );
        assert!(text.contains("No: you may deploy the fix"), "the permissions: {text}");
        assert!(text.contains(&format!("/partner/notices/{notice}")), "{text}");
        let ics = parts.iter().find(|p| p.0 == "disclosure.ics").expect("a calendar file");
        let ics = String::from_utf8(ics.2.clone()).unwrap();
        let stamp = at.replace(['-', ':'], "");
        assert!(ics.contains(&format!("DTSTART:{}", stamp.trim_end_matches('Z').to_owned() + "Z")), "{ics}");
        assert!(!ics.contains("Overflow") && !ics.contains(&reference), "no detail in the event: {ics}");

        // The attached series applies with `git am` on the public branch and gives the fix.
        let patch = parts.iter().find(|p| p.0 == "fix-main.patch").expect("the main line's patches");
        let check = root.path().join("check");
        git_ok(root.path(), &["clone", "-q", "--branch", "main", public.to_str().unwrap(), check.to_str().unwrap()]);
        std::fs::write(root.path().join("fix-main.patch"), &patch.2).unwrap();
        git_ok(&check, &["am", "-q", root.path().join("fix-main.patch").to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(check.join("code.txt")).unwrap(), "fixed: bounds are checked\n");
        let applied_tree = git_ok(&check, &["rev-parse", "HEAD^{tree}"]).stdout;
        let fix_tree = git_ok(&clone, &["rev-parse", "HEAD^{tree}"]).stdout;
        assert_eq!(applied_tree, fix_tree, "byte-identical to the fix branch");
        // Beta's copy carries the same series.
        let beta_parts = mime_parts(&beta_plain, scratch);
        assert_eq!(beta_parts.iter().find(|p| p.0 == "fix-main.patch").unwrap().2, patch.2);

        // The keyless contact: no detail at all, byte for byte; only where to read it.
        for secret in ["Overflow", &reference, "bounds", "fix-main", "BEGIN PGP MESSAGE", "Europe", &at[..10]] {
            assert!(!gamma.contains(secret), "the keyless copy holds {secret:?}: {gamma}");
        }
        assert!(gamma.contains(&format!("/partner/notices/{notice}")), "{gamma}");
        assert!(gamma.contains("multipart/signed"), "still signed by the team");

        // Gamma's server bounces it: the DSN, taken in like any mail, marks that copy.
        let message_id = gamma.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap().trim().to_owned();
        let dsn = format!(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@gamma.example\r\nTo: security@example.org\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n\r\n\
             <sec@gamma.example>: mailbox unknown\r\n\r\nMessage-ID: {message_id}\r\n"
        );
        let taken = it.run(&["ingest-mail"], dsn.as_bytes());
        assert_eq!(taken.code, 0, "{}", taken.stderr);
        let status: Value = serde_json::from_str(&ok(&it, &["notice", "status", &notice, "--json"]).stdout).unwrap();
        let gamma_state =
            status["contacts"].as_array().unwrap().iter().find(|c| c["email"] == "sec@gamma.example").unwrap()["state"]
                .clone();
        assert_eq!(gamma_state, "bounced", "{status}");
        drop(server);
    }
}
