//! `embargo doctor`: checks an instance's setup without changing anything, and says what to
//! fix. Each check gives `ok`, `warn` (works, but should be looked at) or `fail` (broken, or
//! unsafe). It needs no working instance: every check runs on its own, bounded in time.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use embargo_crypto::{KEY_FILE_NAME, Keyring, PREVIOUS_KEY_FILE_NAME};
use serde::Serialize;

use crate::config::Config;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but should be looked at.
    Warn,
    /// Broken or unsafe: to fix.
    Fail,
}

impl Status {
    /// `ok`, `warn` or `FAIL`, as printed.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (a stable short name: `data-dir`, `master-key`, ...).
    pub check: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do, when something is to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Check {
    Check { check, status: Status::Ok, message: message.into(), fix: None }
}

fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { check, status: Status::Warn, message: message.into(), fix: Some(fix.into()) }
}

fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { check, status: Status::Fail, message: message.into(), fix: Some(fix.into()) }
}

/// How long one network question may take.
const NETWORK_WAIT: Duration = Duration::from_secs(3);
/// The largest clock difference with the database server taken as synchronised.
const MAX_CLOCK_SKEW_MS: i64 = 2_000;

/// Runs every check.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(data_dir(&config.data_dir));
    let keys = master_key(&config.data_dir, &mut checks);
    checks.push(checkpoint_key(&config.data_dir));
    database(config, keys, &mut checks).await;
    checks.push(public_url(config));
    tls_files(config, &mut checks);
    let (relay, dns) = tokio::join!(relay(config), dns(config));
    checks.push(relay);
    checks.extend(dns);
    checks.push(clock().await);
    checks
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::metadata(path).ok().map(|m| (m.permissions().mode() & 0o7777, m.uid()))
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<(u32, u32)> {
    None
}

fn data_dir(dir: &Path) -> Check {
    let shown = dir.display();
    if !dir.is_dir() {
        return fail(
            "data-dir",
            format!("the data directory {shown} does not exist"),
            "point --data-dir (or data_dir) at the instance's directory; `embargo serve` creates a new one",
        );
    }
    let Some((mode, uid)) = mode_of(dir) else { return ok("data-dir", format!("{shown} exists")) };
    let me = rustix::process::getuid().as_raw();
    if uid != me {
        return fail(
            "data-dir",
            format!("{shown} belongs to user {uid}, not to the user running Embargo ({me})"),
            format!("chown -R {me} {shown} (run Embargo as the directory's owner)"),
        );
    }
    if mode & 0o077 != 0 {
        return fail(
            "data-dir",
            format!("{shown} is open to other users (mode {mode:o}); it holds the keys and the database"),
            format!("chmod 700 {shown}"),
        );
    }
    ok("data-dir", format!("{shown} is private to its owner (mode {mode:o})"))
}

fn private_file(check: &'static str, path: &Path, what: &str) -> Option<Check> {
    let (mode, _) = mode_of(path)?;
    (mode & 0o077 != 0).then(|| {
        fail(
            check,
            format!("{} ({what}) is readable by other users (mode {mode:o})", path.display()),
            format!("chmod 600 {}", path.display()),
        )
    })
}

fn master_key(dir: &Path, checks: &mut Vec<Check>) -> Option<Keyring> {
    let path = dir.join(KEY_FILE_NAME);
    let from_env = std::env::var("EMBARGO_MASTER_KEY").ok();
    if from_env.is_none() {
        if !path.exists() {
            checks.push(fail(
                "master-key",
                format!("there is no master key: {} does not exist and EMBARGO_MASTER_KEY is not set", path.display()),
                "restore master.key from your backup into the data directory (or set EMBARGO_MASTER_KEY); without \
                 it the data cannot be read",
            ));
            return None;
        }
        if let Some(problem) = private_file("master-key", &path, "the master key") {
            checks.push(problem);
            return None;
        }
    }
    let loaded = match Keyring::load(dir, from_env.as_deref()) {
        Ok(Some((keys, source))) => {
            let whence = match source {
                embargo_crypto::KeySource::Environment => "EMBARGO_MASTER_KEY".to_owned(),
                _ => path.display().to_string(),
            };
            checks.push(ok("master-key", format!("master key {} from {whence}", keys.key_id())));
            keys
        }
        Ok(None) => {
            checks.push(fail("master-key", "there is no master key", "restore master.key from your backup"));
            return None;
        }
        Err(e) => {
            checks.push(fail("master-key", e.to_string(), "fix the key file as the message says (or restore it)"));
            return None;
        }
    };
    if !loaded.previous_key_ids().is_empty() {
        checks.push(warn(
            "master-key",
            format!(
                "a master key rotation has not finished: values may still be sealed under {} ({})",
                loaded.previous_key_ids().join(", "),
                dir.join(PREVIOUS_KEY_FILE_NAME).display()
            ),
            "run `embargo keys rotate-master` to finish it (it resumes where it stopped)",
        ));
    }
    Some(loaded)
}

fn checkpoint_key(dir: &Path) -> Check {
    let path = embargo_crypto::checkpoint::CheckpointKey::path(dir);
    if !path.exists() {
        return warn(
            "checkpoint-key",
            format!("{} does not exist yet", path.display()),
            "`embargo serve` (or `embargo audit checkpoint`) creates it; keep a copy of audit-checkpoint.pub elsewhere",
        );
    }
    private_file("checkpoint-key", &path, "the audit checkpoint signing key")
        .unwrap_or_else(|| ok("checkpoint-key", format!("{} is private", path.display())))
}

async fn database(config: &Config, keys: Option<Keyring>, checks: &mut Vec<Check>) {
    let url = config.database_url();
    let place = config.database_place();
    if let Some(file) = embargo_store::Store::sqlite_path(url.expose())
        && !file.exists()
    {
        checks.push(fail(
            "database",
            format!("{} does not exist", file.display()),
            "check --data-dir / --database-url; restore the database from a backup (`embargo restore`)",
        ));
        return;
    }
    let have_keys = keys.is_some();
    let keys = std::sync::Arc::new(keys.unwrap_or_else(Keyring::generate));
    let store =
        match tokio::time::timeout(Duration::from_secs(15), embargo_store::Store::connect(url.expose(), keys.clone()))
            .await
        {
            Ok(Ok(store)) => store,
            Ok(Err(e)) => {
                checks.push(fail("database", format!("{place}: {e}"), "check database_url and that the server runs"));
                return;
            }
            Err(_) => {
                checks.push(fail(
                    "database",
                    format!("{place}: no answer within 15 s"),
                    "check that the database server runs",
                ));
                return;
            }
        };
    match store.is_initialised().await {
        Ok(true) => checks.push(ok("database", format!("{place} answers and holds an instance"))),
        Ok(false) => {
            checks.push(fail(
                "database",
                format!("{place} holds no Embargo instance"),
                "check --database-url; `embargo migrate` creates a new instance, `embargo restore` restores one",
            ));
            store.close().await;
            return;
        }
        Err(e) => {
            checks.push(fail("database", format!("{place}: {e}"), "check the database"));
            store.close().await;
            return;
        }
    }
    match store.migration_status().await {
        Ok(status) if !status.failed.is_empty() => checks.push(fail(
            "migrations",
            format!("migration(s) {:?} failed part-way", status.failed),
            "restore the database from a backup taken before the upgrade, then run `embargo migrate` again",
        )),
        Ok(status) if !status.unknown().is_empty() => checks.push(fail(
            "migrations",
            format!("the database has migration(s) {:?} this Embargo does not know: it is newer", status.unknown()),
            "run the Embargo version that upgraded this database",
        )),
        Ok(status) if !status.pending().is_empty() => checks.push(fail(
            "migrations",
            format!(
                "{} migration(s) are not applied: {}",
                status.pending().len(),
                status.pending().iter().map(|(v, d)| format!("{v} {d}")).collect::<Vec<_>>().join(", ")
            ),
            "run `embargo migrate` (serve does it at start)",
        )),
        Ok(status) => {
            checks.push(ok("migrations", format!("all {} migrations applied", status.applied.len())));
        }
        Err(e) => checks.push(fail("migrations", e.to_string(), "check the database")),
    }
    if have_keys {
        sealed_data(&store, &keys, checks).await;
    }
    if let Ok(Some(offset)) = store.clock_offset_ms().await {
        if offset.abs() > MAX_CLOCK_SKEW_MS {
            checks.push(fail(
                "clock",
                format!("the database server's clock differs from this machine's by {} ms", offset),
                "synchronise both clocks with NTP (chrony, systemd-timesyncd)",
            ));
        } else {
            checks.push(ok("clock", format!("the database server's clock agrees within {} ms", offset.abs())));
        }
    }
    store.close().await;
}

async fn sealed_data(store: &embargo_store::Store, keys: &Keyring, checks: &mut Vec<Check>) {
    let Ok(mut tx) = store.snapshot().await else { return };
    let recorded = embargo_store::meta::recorded_key_id(&mut tx).await.ok().flatten();
    if let Some(id) = &recorded
        && !keys.knows(id)
    {
        checks.push(fail(
            "sealed-data",
            format!("the database's data is sealed under master key {id}, but the key in use is {}", keys.key_id()),
            "use the instance's own master.key (or EMBARGO_MASTER_KEY); restore it from your backup",
        ));
        let _ = tx.rollback().await;
        return;
    }
    match embargo_store::meta::get_sealed(&mut tx, "openpgp.instance_key").await {
        Ok(_) => checks.push(ok("sealed-data", "the master key opens the database's sealed data")),
        Err(e) => checks.push(fail(
            "sealed-data",
            format!("the master key does not open the database's sealed data: {e}"),
            "use the instance's own master key; restore it from your backup",
        )),
    }
    let _ = tx.rollback().await;
}

fn public_url(config: &Config) -> Check {
    let text = config.public_url.trim();
    if text.is_empty() {
        return warn(
            "public-url",
            "public_url is not set: links in mail point at the address the server binds",
            "set public_url to the https:// address people reach the instance at",
        );
    }
    let parsed = match reqwest::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            return fail(
                "public-url",
                format!("public_url {text:?} is not a URL: {e}"),
                "set public_url to https://HOST",
            );
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return fail(
            "public-url",
            format!("public_url {text:?} is not an http(s) address with a host"),
            "set public_url to https://HOST",
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return fail("public-url", format!("public_url {text:?} has a query or fragment"), "remove it");
    }
    if parsed.scheme() == "http" {
        let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return warn(
                "public-url",
                format!(
                    "public_url {text} is not https: sign-in cookies travel in clear, and the instance is no CSAF provider"
                ),
                "serve it over https (behind a TLS proxy) and set public_url to https://...",
            );
        }
    }
    ok("public-url", format!("public_url is {text}"))
}

fn tls_files(config: &Config, checks: &mut Vec<Check>) {
    let mail = &config.mail;
    if mail.tls_certificate.is_empty() && mail.tls_key.is_empty() {
        checks.push(warn(
            "tls",
            "no mail.tls_certificate: the SMTP listener offers no STARTTLS",
            "set mail.tls_certificate and mail.tls_key (PEM) so that mail can arrive encrypted",
        ));
    } else {
        let read = |what: &str, path: &str| {
            if path.is_empty() {
                return Err(fail("tls", format!("{what} is not set"), format!("set {what} (a PEM file)")));
            }
            std::fs::read(path).map_err(|e| {
                fail(
                    "tls",
                    format!("{what} {path} cannot be read: {e}"),
                    format!("put the PEM file at {path}, readable by Embargo"),
                )
            })
        };
        match (read("mail.tls_certificate", &mail.tls_certificate), read("mail.tls_key", &mail.tls_key)) {
            (Ok(cert), Ok(key)) => match embargo_mail::smtp::tls_acceptor(&cert, &key) {
                Ok(_) => {
                    checks.push(private_file("tls", Path::new(&mail.tls_key), "the TLS private key").unwrap_or_else(
                        || ok("tls", format!("mail TLS certificate {} and key load", mail.tls_certificate)),
                    ));
                }
                Err(e) => checks.push(fail(
                    "tls",
                    format!("mail.tls_certificate/mail.tls_key do not load: {e}"),
                    "give a PEM certificate chain and its matching private key",
                )),
            },
            (Err(c), _) | (_, Err(c)) => checks.push(c),
        }
    }
    if !config.imap.ca_certificate.is_empty() && std::fs::metadata(&config.imap.ca_certificate).is_err() {
        checks.push(fail(
            "tls",
            format!("imap.ca_certificate {} does not exist", config.imap.ca_certificate),
            "point imap.ca_certificate at the CA's PEM file, or leave it empty for the public roots",
        ));
    }
}

async fn relay(config: &Config) -> Check {
    let relay = config.mail.relay.expose();
    if relay.is_empty() {
        return warn(
            "relay",
            format!("no mail.relay: outgoing mail is only written to the outbox {}", config.outbox_dir().display()),
            "set mail.relay to your SMTP relay (smtp://user:password@host:587) so that mail is delivered",
        );
    }
    let parsed = match reqwest::Url::parse(relay) {
        Ok(url) => url,
        Err(e) => {
            return fail("relay", format!("mail.relay cannot be read: {e}"), "set mail.relay to smtp://HOST:PORT");
        }
    };
    let Some(host) = parsed.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned()) else {
        return fail("relay", "mail.relay names no host", "set mail.relay to smtp://HOST:PORT");
    };
    let implicit_tls = parsed.scheme() == "smtps";
    let port = parsed.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let shown = format!("{host}:{port}");
    let connect = tokio::time::timeout(NETWORK_WAIT, tokio::net::TcpStream::connect((host.as_str(), port))).await;
    let mut stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return fail(
                "relay",
                format!("the relay {shown} cannot be reached: {e}"),
                "check mail.relay and that the relay runs",
            );
        }
        Err(_) => {
            return fail(
                "relay",
                format!("the relay {shown} did not answer within {} s", NETWORK_WAIT.as_secs()),
                "check mail.relay, the relay and the firewall",
            );
        }
    };
    if implicit_tls {
        return ok("relay", format!("the relay {shown} accepts connections"));
    }
    let mut banner = [0u8; 512];
    use tokio::io::AsyncReadExt;
    match tokio::time::timeout(NETWORK_WAIT, stream.read(&mut banner)).await {
        Ok(Ok(n)) if banner[..n].starts_with(b"220") => ok("relay", format!("the relay {shown} greets (220)")),
        Ok(Ok(n)) => fail(
            "relay",
            format!(
                "the relay {shown} answered {:?}, not an SMTP greeting",
                String::from_utf8_lossy(&banner[..n.min(80)]).trim()
            ),
            "check mail.relay's host and port",
        ),
        _ => fail("relay", format!("the relay {shown} sent no SMTP greeting"), "check mail.relay's host and port"),
    }
}

async fn dns(config: &Config) -> Vec<Check> {
    let address = &config.organisation.security_address;
    let Some(domain) = address.rsplit_once('@').map(|(_, d)| d.to_owned()).filter(|d| !d.is_empty()) else {
        return vec![fail(
            "dns",
            format!("the security address {address:?} has no domain"),
            "set organisation.security_address",
        )];
    };
    let server = if config.mail.dns_server.is_empty() {
        None
    } else {
        match config.mail.dns_server.parse::<SocketAddr>() {
            Ok(server) => Some(server),
            Err(_) => {
                return vec![fail(
                    "dns",
                    format!("mail.dns_server {:?} is not IP:PORT", config.mail.dns_server),
                    "fix mail.dns_server",
                )];
            }
        }
    };
    let checker = match embargo_mail::auth::Checker::new(server, &config.mail_hostname()) {
        Ok(checker) => checker,
        Err(e) => return vec![warn("dns", format!("no resolver: {e}"), "configure a resolver (or mail.dns_server)")],
    };
    let dmarc_name = format!("_dmarc.{domain}");
    let (spf, dmarc) = tokio::join!(checker.txt(&domain, NETWORK_WAIT), checker.txt(&dmarc_name, NETWORK_WAIT));
    use embargo_mail::auth::DnsAnswer;
    if let (DnsAnswer::NoAnswer(why), DnsAnswer::NoAnswer(_)) = (&spf, &dmarc) {
        return vec![warn(
            "dns",
            format!(
                "no resolver answered ({why}): SPF and DMARC of {domain} cannot be checked, and incoming mail's sender authentication gives temperror"
            ),
            "make a DNS resolver reachable (or set mail.dns_server)",
        )];
    }
    let mut checks = Vec::new();
    checks.push(match spf {
        DnsAnswer::Found(records)
            if records.iter().any(|r| r.trim_start().to_ascii_lowercase().starts_with("v=spf1")) =>
        {
            ok("dns", format!("{domain} publishes SPF"))
        }
        DnsAnswer::NoAnswer(why) => warn("dns", format!("no answer for {domain} TXT: {why}"), "check the resolver"),
        _ => warn(
            "dns",
            format!("{domain} publishes no SPF record: mail from {address} may be refused or marked as spam"),
            format!("publish a TXT record at {domain}: \"v=spf1 mx -all\" (naming your relay)"),
        ),
    });
    checks.push(match dmarc {
        DnsAnswer::Found(records)
            if records.iter().any(|r| r.trim_start().to_ascii_uppercase().starts_with("V=DMARC1")) =>
        {
            ok("dns", format!("{domain} publishes DMARC"))
        }
        DnsAnswer::NoAnswer(why) => warn("dns", format!("no answer for {dmarc_name} TXT: {why}"), "check the resolver"),
        _ => warn(
            "dns",
            format!("{domain} publishes no DMARC policy"),
            format!("publish a TXT record at {dmarc_name}: \"v=DMARC1; p=quarantine\""),
        ),
    });
    checks
}

async fn clock() -> Check {
    let asked = tokio::time::timeout(
        NETWORK_WAIT,
        tokio::process::Command::new("timedatectl")
            .args(["show", "--property=NTPSynchronized", "--value"])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await;
    match asked {
        Ok(Ok(out)) if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "yes" => {
            ok("clock", "the system clock is synchronised (NTP)")
        }
        Ok(Ok(out)) if out.status.success() => warn(
            "clock",
            "the system clock is not synchronised (NTP): deadlines, sign-in codes and signatures depend on it",
            "enable NTP (timedatectl set-ntp true, or chrony)",
        ),
        _ if Path::new("/run/systemd/timesync/synchronized").exists() => {
            ok("clock", "the system clock is synchronised (systemd-timesyncd)")
        }
        _ => warn(
            "clock",
            "cannot tell whether the system clock is synchronised (timedatectl gave no answer)",
            "make sure NTP runs (chrony or systemd-timesyncd)",
        ),
    }
}
