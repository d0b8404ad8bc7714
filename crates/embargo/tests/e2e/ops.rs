//! Data safety (issue 17, ADR 30): online backups taken under load and restored on both
//! backends, master key rotation killed mid-way and resumed, the OpenPGP key rotated with real
//! GnuPG on both sides, and `embargo doctor` on healthy and broken instances.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, Output, Server, both_backends, postgres};
use serde_json::Value;

use crate::BIN;
use crate::mail::{gpg_status, signed_parts};
use crate::smtp::{FAST_JOBS, Gpg, Raw, reports, show, tool, wait_for_mail};

/// Sends one message over SMTP; the final reply's code (250: acknowledged, committed).
fn smtp_send(server: &Server, from: &str, message: &str) -> u16 {
    let (mut raw, greeting) = Raw::connect(server.smtp_addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    raw.send("EHLO load.test\r\n");
    let mail = raw.send(&format!("MAIL FROM:<{from}>\r\n"));
    assert!(mail.starts_with("250"), "{mail}");
    let rcpt = raw.send("RCPT TO:<security@example.org>\r\n");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    let data = raw.send("DATA\r\n");
    assert!(data.starts_with("354"), "{data}");
    let done = raw.send(&format!("{}\r\n.\r\n", message.replace('\n', "\r\n")));
    raw.send("QUIT\r\n");
    done.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn load_message(n: usize) -> String {
    format!(
        "From: finder{n}@example.net\nTo: security@example.org\nSubject: load report {n}\nMessage-ID: <load-{n}@example.net>\n\n\
         Body of load report {n}: canary-{n}-end.\n"
    )
}

/// An age identity and its recipient (the test uses the age library; `age-keygen` makes the same).
fn age_identity(dir: &Path) -> (std::path::PathBuf, String) {
    let identity = age::x25519::Identity::generate();
    let path = dir.join("backup-identity.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(&path, format!("# test\n{}\n", identity.to_string().expose_secret())).unwrap();
    (path, identity.to_public().to_string())
}

fn run_env(it: &Instance, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = it.command(args);
    cmd.envs(env.iter().copied());
    embargo_test_support::run_command(cmd, b"")
}

fn key_id(it: &Instance) -> String {
    let out = it.run(&["keys", "status", "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["master_key_id"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_backup_taken_under_load_restores_every_acknowledged_report_and_a_verifying_chain() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let server = Arc::new(it.serve(&FAST_JOBS));
        let dir = it.path("");
        let (identity, recipient) = age_identity(&dir);

        // Reporters keep sending while the backup runs; each acknowledgement (250) is noted
        // with its time.
        let acknowledged: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (server, acknowledged, stop) = (server.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if smtp_send(&server, &format!("finder{n}@example.net"), &load_message(n)) == 250 {
                        acknowledged.lock().unwrap().push((n, Instant::now()));
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            })
        };
        while acknowledged.lock().unwrap().len() < 15 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let backup = dir.join("embargo.age");
        let started = Instant::now();
        let out = run_env(&it, &["backup", backup.to_str().unwrap()], &[("EMBARGO_BACKUP_RECIPIENT", &recipient)]);
        assert_eq!(out.code, 0, "{}: backup: {}", db.backend, out.stderr);
        assert!(out.stdout.contains("backup written to"), "{}", out.stdout);
        // More reports after the backup, which the restored copy may lack.
        let after = acknowledged.lock().unwrap().len() + 5;
        while acknowledged.lock().unwrap().len() < after {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        let before_backup: Vec<usize> =
            acknowledged.lock().unwrap().iter().filter(|(_, at)| *at < started).map(|(n, _)| *n).collect();
        let during_or_after = acknowledged.lock().unwrap().len() - before_backup.len();
        assert!(before_backup.len() >= 15 && during_or_after >= 5, "{} {during_or_after}", before_backup.len());

        // The file is an age file, and nothing of the reports reads in it.
        let bytes = std::fs::read(&backup).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"), "not an age file");
        assert!(!bytes.windows(7).any(|w| w == b"canary-"), "plaintext in the backup file");
        let original_key = key_id(&it);

        // Restore into a fresh data directory (and a fresh database).
        let fresh_db = (db.backend == "postgres").then(|| postgres().unwrap().fresh_database());
        let restored = Instance::uncreated(BIN, fresh_db.as_ref());
        let out = run_env(
            &restored,
            &["restore", backup.to_str().unwrap()],
            &[("EMBARGO_BACKUP_IDENTITY", identity.to_str().unwrap())],
        );
        assert_eq!(out.code, 0, "{}: restore: {} {}", db.backend, out.stdout, out.stderr);
        assert!(out.stdout.contains("the audit trail verifies"), "{}", out.stdout);

        // Every report acknowledged before the backup began is there, whole; no report is
        // half there (each one listed has its message and its title matches its body).
        let listed = reports(&restored);
        let mut by_title: BTreeMap<String, String> = BTreeMap::new();
        for report in &listed {
            by_title.insert(report["title"].as_str().unwrap().to_owned(), report["id"].as_str().unwrap().to_owned());
        }
        for n in &before_backup {
            assert!(by_title.contains_key(&format!("load report {n}")), "{}: report {n} lost", db.backend);
        }
        for (title, id) in &by_title {
            let n: usize = title.trim_start_matches("load report ").parse().unwrap();
            let shown = show(&restored, id);
            let body = shown["messages"][0]["body"].as_str().unwrap_or_default();
            assert!(body.contains(&format!("canary-{n}-end")), "{}: {id} is half there: {shown}", db.backend);
            assert_eq!(shown["reporter"]["email"], format!("finder{n}@example.net"));
        }
        // The chain verifies, and so does every checkpoint the backup carried.
        let out = restored.run(&["audit", "verify"], b"");
        assert_eq!(out.code, 0, "{}: {} {}", db.backend, out.stdout, out.stderr);
        let checkpoints = restored.data_dir.join("audit-checkpoints.jsonl");
        assert!(checkpoints.exists(), "the checkpoints travel with the backup");
        let out = restored.run(&["audit", "verify", "--checkpoints", checkpoints.to_str().unwrap()], b"");
        assert_eq!(out.code, 0, "{}: {} {}", db.backend, out.stdout, out.stderr);
        // The master key travelled inside, private.
        assert_eq!(key_id(&restored), original_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(restored.data_dir.join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "master.key mode {mode:o}");
            let mode = std::fs::metadata(&restored.data_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "data dir mode {mode:o}");
        }
        // The restored instance serves and takes new reports.
        let again = restored.serve(&FAST_JOBS);
        assert_eq!(again.http("GET", "/healthz", &[], b"").status, 200);
        assert_eq!(smtp_send(&again, "late@example.net", &load_message(9999)), 250);
        drop(again);

        // A restore never overwrites: the same target again is refused.
        let out = run_env(
            &restored,
            &["restore", backup.to_str().unwrap()],
            &[("EMBARGO_BACKUP_IDENTITY", identity.to_str().unwrap())],
        );
        assert_eq!(out.code, 73, "{}: {}", db.backend, out.stderr);
        assert!(out.stderr.contains("not empty") || out.stderr.contains("exists already"), "{}", out.stderr);
        drop(server);
    }
}

#[test]
fn a_restore_says_plainly_when_it_cannot_decrypt_or_the_key_does_not_open_the_data() {
    let it = Instance::new(BIN, None);
    let out = it.run(&["ingest-mail"], load_message(1).as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dir = it.path("");
    let backup = dir.join("pass.age");
    // No encryption given: refused, nothing written.
    let out = it.run(&["backup", backup.to_str().unwrap()], b"");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("EMBARGO_BACKUP_RECIPIENT"), "{}", out.stderr);
    assert!(!backup.exists());
    let out = run_env(&it, &["backup", backup.to_str().unwrap()], &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse")]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The wrong passphrase, or an identity for a passphrase file: bad input, nothing restored.
    let target = Instance::uncreated(BIN, None);
    let out = run_env(&target, &["restore", backup.to_str().unwrap()], &[("EMBARGO_BACKUP_PASSPHRASE", "wrong")]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.stderr.contains("cannot decrypt"), "{}", out.stderr);
    assert!(!target.data_dir.exists(), "a failed restore leaves nothing behind");
    // A damaged backup is named as such.
    let mut damaged = std::fs::read(&backup).unwrap();
    let at = damaged.len() - 100;
    damaged[at] ^= 0x40;
    let damaged_file = dir.join("damaged.age");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let out = run_env(
        &target,
        &["restore", damaged_file.to_str().unwrap()],
        &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse")],
    );
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.stderr.contains("damaged or was altered"), "{}", out.stderr);

    // A master key from the environment that is not the data's: said plainly.
    let other = "Y2hhbmdlIG1lIHRvIGEgcmVhbCBrZXkgb2YgMzIgYnl0ZXM="; // 32 bytes
    let out = run_env(
        &target,
        &["restore", backup.to_str().unwrap()],
        &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse"), ("EMBARGO_MASTER_KEY", other)],
    );
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be opened with the master key in use"), "{}", out.stderr);

    // Into a directory that holds something: refused, untouched.
    let busy = Instance::uncreated(BIN, None);
    std::fs::create_dir_all(&busy.data_dir).unwrap();
    std::fs::write(busy.data_dir.join("notes.txt"), "mine").unwrap();
    let out = run_env(&busy, &["restore", backup.to_str().unwrap()], &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse")]);
    assert_eq!(out.code, 73, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(busy.data_dir.join("notes.txt")).unwrap(), "mine");

    // PostgreSQL: a database with tables is refused.
    if let Some(pg) = embargo_test_support::require("PostgreSQL", postgres()) {
        let used = pg.fresh_database();
        let occupied = Instance::new(BIN, Some(&used));
        let empty_dir = Instance::uncreated(BIN, Some(&used));
        let out = run_env(
            &empty_dir,
            &["restore", backup.to_str().unwrap()],
            &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse")],
        );
        assert_eq!(out.code, 73, "{}", out.stderr);
        assert!(out.stderr.contains("the database is not empty"), "{}", out.stderr);
        drop(occupied);
        // And an SQLite backup is not restored into PostgreSQL.
        let fresh = pg.fresh_database();
        let cross = Instance::uncreated(BIN, Some(&fresh));
        let out =
            run_env(&cross, &["restore", backup.to_str().unwrap()], &[("EMBARGO_BACKUP_PASSPHRASE", "correct horse")]);
        assert_eq!(out.code, 65, "{}", out.stderr);
        assert!(out.stderr.contains("sqlite instance"), "{}", out.stderr);
    }
}

#[test]
fn a_master_key_rotation_killed_mid_way_resumes_and_retires_the_old_key() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        for n in 1..=12 {
            let out = it.run(&["ingest-mail"], load_message(n).as_bytes());
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        let old_key = key_id(&it);
        let old_key_text = std::fs::read_to_string(it.data_dir.join("master.key")).unwrap();
        let server = it.serve(&FAST_JOBS);
        let pubkey_before = server.http("GET", "/.well-known/security.asc", &[], b"").body;

        // Killed after the first batch of two values.
        let out = run_env(
            &it,
            &["keys", "rotate-master", "--batch", "2", "--grace-seconds", "5"],
            &[("EMBARGO_TEST_CRASH_AT", "keys.rotate.batch")],
        );
        assert_ne!(out.code, 0, "{}: the crash point did not fire: {}", db.backend, out.stdout);
        assert!(it.data_dir.join("master.key.previous").exists());
        let new_key = key_id(&it);
        assert_ne!(new_key, old_key);
        let status = it.run(&["keys", "status"], b"");
        assert!(status.stdout.contains("rotation under way"), "{}", status.stdout);

        // Mid-rotation, with values under both keys: everything reads, the server keeps
        // taking reports (sealed under the new key, which it took up from the files).
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(smtp_send(&server, "mid@example.net", &load_message(100)), 250);
        for report in reports(&it) {
            let shown = show(&it, report["id"].as_str().unwrap());
            assert!(shown["messages"][0]["body"].as_str().unwrap().contains("canary-"), "{shown}");
        }

        // Run again: it resumes with the same keys and retires the old one.
        let out = it.run(&["keys", "rotate-master", "--batch", "3", "--grace-seconds", "5"], b"");
        assert_eq!(out.code, 0, "{}: {} {}", db.backend, out.stdout, out.stderr);
        assert!(out.stdout.contains(&format!("{new_key} in use")), "{}", out.stdout);
        assert!(out.stdout.contains(&format!("{old_key} retired")), "{}", out.stdout);
        assert!(!it.data_dir.join("master.key.previous").exists());
        assert_eq!(key_id(&it), new_key);
        // The server, after the retirement, still reads and writes.
        assert_eq!(smtp_send(&server, "late@example.net", &load_message(101)), 250);
        assert_eq!(server.http("GET", "/.well-known/security.asc", &[], b"").body, pubkey_before);
        drop(server);

        // With only the new key: everything opens (nothing is left under the old one), the
        // blind indexes still find what they found (a redelivered Message-ID is recognised),
        // and the chain verifies.
        for report in reports(&it) {
            let shown = show(&it, report["id"].as_str().unwrap());
            assert!(shown["messages"][0]["body"].as_str().unwrap().contains("canary-"), "{shown}");
        }
        assert_eq!(reports(&it).len(), 14);
        let out = it.run(&["ingest-mail"], load_message(3).as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(reports(&it).len(), 14, "a redelivery was taken for a new report: {}", out.stdout);
        let out = it.run(&["audit", "verify"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["audit", "list", "--json", "--limit", "1000"], b"");
        assert!(
            out.stdout.contains("keys.master.switch") && out.stdout.contains("keys.master.rotate"),
            "{}",
            out.stdout
        );
        let restarted = it.serve(&FAST_JOBS);
        assert_eq!(restarted.http("GET", "/healthz", &[], b"").status, 200);
        drop(restarted);
        // The old key alone opens nothing any more (the database beside the old key).
        if db.backend == "sqlite" {
            let old_only = Instance::uncreated(BIN, None);
            std::fs::create_dir_all(&old_only.data_dir).unwrap();
            std::fs::copy(it.data_dir.join("embargo.db"), old_only.data_dir.join("embargo.db")).unwrap();
            std::fs::write(old_only.data_dir.join("master.key"), &old_key_text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(old_only.data_dir.join("master.key"), std::fs::Permissions::from_mode(0o600))
                    .unwrap();
            }
            let out = old_only.run(&["report", "list"], b"");
            assert_eq!(out.code, 78, "{}", out.stderr);
            assert!(out.stderr.contains(&new_key), "{}", out.stderr);
        }
    }
}

/// The fingerprint in `gpg --show-keys` of an armored key.
fn fingerprint_of(gpg: &Gpg, file: &Path) -> String {
    let listing = String::from_utf8(gpg.run(&["--with-colons", "--show-keys", file.to_str().unwrap()])).unwrap();
    listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_owned()
}

#[test]
fn an_openpgp_key_rotation_publishes_the_new_key_signs_with_it_and_still_reads_the_old_one() {
    let Some(_) = tool("gpg") else { return };
    let it = Instance::new(BIN, None);
    let server = it.serve(&FAST_JOBS);
    let dir = it.path("");
    let old_key = server.http("GET", "/.well-known/security.asc", &[], b"").body;
    let Some(gpg) = Gpg::new(&dir, &old_key) else { return };
    let old_file = dir.join("old.asc");
    std::fs::write(&old_file, &old_key).unwrap();
    let old_fpr = fingerprint_of(&gpg, &old_file);
    // A reporter's message encrypted to the published key, prepared before the rotation.
    let to_old = gpg.encrypt(&dir, b"Encrypted to the old key: the backup endpoint lacks auth.\n", false);

    let out = it.run(&["keys", "rotate-openpgp"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&old_fpr), "{}", out.stdout);
    // Every place that names the key shows the new one within seconds.
    std::thread::sleep(Duration::from_millis(3500));
    let new_key = server.http("GET", "/.well-known/security.asc", &[], b"").body;
    let new_file = dir.join("new.asc");
    std::fs::write(&new_file, &new_key).unwrap();
    let new_fpr = fingerprint_of(&gpg, &new_file);
    assert_ne!(new_fpr, old_fpr);
    assert!(out.stdout.contains(&new_fpr), "{}", out.stdout);
    gpg.run(&["--import", new_file.to_str().unwrap()]);
    let txt = server.http("GET", "/.well-known/security.txt", &[], b"");
    assert!(txt.body.contains("Encryption:"), "{}", txt.body);
    let txt_file = dir.join("security.txt");
    std::fs::write(&txt_file, &txt.body).unwrap();
    let (ok, _, status) = gpg_status(&gpg, &["--verify", txt_file.to_str().unwrap()]);
    assert!(ok && status.contains(&format!("VALIDSIG {new_fpr}")), "security.txt not signed by the new key: {status}");
    let status = it.run(&["keys", "status", "--json"], b"");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["openpgp_fingerprint"], new_fpr.as_str());
    assert_eq!(status["openpgp_retired"][0], old_fpr.as_str());

    // Mail encrypted to the old key is still read.
    let message = format!(
        "From: reporter@example.net\nTo: security@example.org\nSubject: still old key\nMessage-ID: <old1@example.net>\n\n{}\n",
        to_old.replace("\r\n", "\n")
    );
    assert_eq!(smtp_send(&server, "reporter@example.net", &message), 250);
    let report = reports(&it).into_iter().find(|r| r["title"] == "still old key").expect("the report");
    let shown = show(&it, report["id"].as_str().unwrap());
    assert!(
        shown["messages"][0]["body"].as_str().unwrap().contains("the backup endpoint lacks auth"),
        "not decrypted: {shown}"
    );

    // New mail (the acknowledgement) is signed with the new key: GnuPG verifies it.
    let ack = wait_for_mail(&it, |m| m["to"].as_str().is_some_and(|to| to.contains("reporter@example.net")));
    let raw = std::fs::read_to_string(ack["path"].as_str().unwrap()).unwrap();
    let (signed, signature) = signed_parts(&raw);
    std::fs::write(dir.join("ack.txt"), &signed).unwrap();
    std::fs::write(dir.join("ack.asc"), &signature).unwrap();
    let (ok, _, status) =
        gpg_status(&gpg, &["--verify", dir.join("ack.asc").to_str().unwrap(), dir.join("ack.txt").to_str().unwrap()]);
    assert!(ok && status.contains(&format!("VALIDSIG {new_fpr}")), "mail not signed by the new key: {status}");
    let out = it.run(&["audit", "list", "--json", "--limit", "1000"], b"");
    assert!(out.stdout.contains("openpgp.key.rotate"), "{}", out.stdout);
}

fn doctor(it: &Instance, env: &[(&str, &str)]) -> (i32, String) {
    let started = Instant::now();
    let out = run_env(it, &["doctor"], env);
    assert!(started.elapsed() < Duration::from_secs(30), "doctor took {:?}", started.elapsed());
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn doctor_passes_a_healthy_instance_and_names_what_to_fix_on_broken_ones() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let (code, out) = doctor(&it, &[]);
        assert_eq!(code, 0, "{}: {out}", db.backend);
        for check in
            ["data-dir", "master-key", "database", "migrations", "sealed-data", "public-url", "relay", "dns", "clock"]
        {
            assert!(out.contains(check), "{check} missing: {out}");
        }
        // The machine has no DNS: a warning within the bound, never a hang or a failure.
        assert!(out.lines().any(|l| l.starts_with("warn") && l.contains("dns")), "{out}");
        let json = run_env(&it, &["doctor", "--json"], &[]);
        let parsed: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(parsed["healthy"], true, "{parsed}");

        // A closed port as the relay.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (code, out) = doctor(&it, &[("EMBARGO_MAIL__RELAY", &format!("smtp://{closed}"))]);
        assert_eq!(code, 1, "{out}");
        assert!(out.lines().any(|l| l.starts_with("FAIL") && l.contains("relay")), "{out}");
        // A relay that greets.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = listener.local_addr().unwrap();
        let greeter = std::thread::spawn(move || {
            use std::io::Write;
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(b"220 relay.test ESMTP\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let (code, out) = doctor(&it, &[("EMBARGO_MAIL__RELAY", &format!("smtp://{relay}"))]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("greets (220)"), "{out}");
        greeter.join().unwrap();

        // A public URL that is plain http on a public name: a warning; not a URL: refused.
        let (code, out) = doctor(&it, &[("EMBARGO_PUBLIC_URL", "http://cvd.example.org")]);
        assert_eq!(code, 0, "{out}");
        assert!(out.lines().any(|l| l.starts_with("warn") && l.contains("public-url")), "{out}");
        let (code, out) = doctor(&it, &[("EMBARGO_PUBLIC_URL", "https://")]);
        assert_ne!(code, 0, "{out}");
        // A missing TLS file.
        let (code, out) = doctor(
            &it,
            &[
                ("EMBARGO_MAIL__TLS_CERTIFICATE", "/nonexistent/cert.pem"),
                ("EMBARGO_MAIL__TLS_KEY", "/nonexistent/key.pem"),
            ],
        );
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("/nonexistent/cert.pem"), "{out}");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A world-readable data directory, then key file.
            std::fs::set_permissions(&it.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let (code, out) = doctor(&it, &[]);
            assert_eq!(code, 1, "{out}");
            assert!(out.contains(&format!("chmod 700 {}", it.data_dir.display())), "{out}");
            std::fs::set_permissions(&it.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            let key = it.data_dir.join("master.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let (code, out) = doctor(&it, &[]);
            assert_eq!(code, 1, "{out}");
            assert!(out.contains(&format!("chmod 600 {}", key.display())), "{out}");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // A missing key file.
        let key = it.data_dir.join("master.key");
        let aside = it.path("master.key.aside");
        std::fs::rename(&key, &aside).unwrap();
        let (code, out) = doctor(&it, &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("there is no master key"), "{out}");
        // Another instance's key: the data does not open.
        let other = Instance::new(BIN, None);
        std::fs::copy(other.data_dir.join("master.key"), &key).unwrap();
        let (code, out) = doctor(&it, &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.lines().any(|l| l.starts_with("FAIL") && l.contains("sealed-data")), "{out}");
        std::fs::rename(&aside, &key).unwrap();
        let (code, out) = doctor(&it, &[]);
        assert_eq!(code, 0, "{out}");

        // A database behind on its migrations.
        let url =
            it.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", it.data_dir.join("embargo.db").display()));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
                .execute(&mut conn)
                .await
                .unwrap();
        });
        let (code, out) = doctor(&it, &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("not applied") && out.contains("embargo migrate"), "{out}");
    }
}

#[test]
fn doctor_reads_spf_and_dmarc_from_a_real_resolver() {
    let Some(dns) = crate::smtp::Dns::start(&[("example.org", "v=spf1 ip4:127.0.0.1 -all")]) else { return };
    let it = Instance::new(BIN, None);
    let (code, out) = doctor(&it, &[("EMBARGO_MAIL__DNS_SERVER", &format!("127.0.0.1:{}", dns.port))]);
    drop(dns);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().any(|l| l.starts_with("ok") && l.contains("publishes SPF")), "{out}");
    assert!(out.contains("publishes no DMARC policy") && out.contains("v=DMARC1"), "{out}");
}
