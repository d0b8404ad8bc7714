//! Configuration: defaults, then a TOML file, then `EMBARGO_*` environment variables, then
//! command-line flags, each overriding the one before. Loaded once at start, validated, and
//! passed explicitly (there is no global configuration).
//!
//! Environment variables name a key by its path in upper case, with `__` between a section
//! and its key: `EMBARGO_DATA_DIR`, `EMBARGO_ORGANISATION__NAME`, `EMBARGO_SLA__ACKNOWLEDGE_WORKING_DAYS`.
//! Secrets (the database password, the master key) are never printed: [`Secret`] redacts
//! itself in `Debug`, and [`Config::to_redacted_toml`] masks them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use embargo_domain::ReferencePrefix;
use serde::{Deserialize, Serialize};

/// A secret string: redacted in `Debug` and `Display`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[redacted]\"" })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database, master key and outbox live.
    pub data_dir: PathBuf,
    /// Empty for SQLite in the data directory, or `postgres://user:password@host/db`.
    pub database_url: Secret,
    /// HTTP listen address.
    pub http: String,
    /// SMTP listen address for mail intake.
    pub smtp: String,
    /// The public base URL of this instance, used in links sent to people.
    pub public_url: String,
    /// Where Prometheus scrapes `/metrics`: a separate listener (default loopback
    /// `127.0.0.1:9090`), empty for none. The public listener never serves metrics without
    /// `metrics_token`.
    pub metrics_listen: String,
    /// A bearer token for `/metrics`. When set, every scrape must send
    /// `Authorization: Bearer <token>`, and the public listener serves `/metrics` to it too.
    pub metrics_token: Secret,
    /// Who runs this instance.
    pub organisation: Organisation,
    /// What the public policy page says beyond the organisation's contacts: the scope and
    /// the safe-harbour statement.
    pub policy: Policy,
    /// Service-level targets, from the security policy.
    pub sla: Sla,
    /// Background jobs.
    pub jobs: Jobs,
    /// Mail intake and outbound mail.
    pub mail: Mail,
    /// Polling an existing mailbox over IMAP.
    pub imap: Imap,
    /// The web app, the reporter form and the status pages.
    pub web: Web,
    /// Published advisories: identifiers and the publisher named in them.
    pub advisories: Advisories,
    /// Input limits.
    pub limits: Limits,
    /// Logging.
    pub log: Log,
    /// CVE Services, for reserving and publishing CVE IDs as a CNA.
    pub cve_services: CveServices,
    /// Private fix repositories and their CI.
    pub fixes: Fixes,
    /// The disclosure runbook.
    pub disclosure: Disclosure,
    /// Where disclosures are announced (the runbook's announcement steps). A channel with
    /// an empty address is not used.
    pub announce: Announce,
}

/// The disclosure runbook (ADR 24).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Disclosure {
    /// When the instant passed while Embargo was down, how late (minutes) a plan may still
    /// start by itself on restart; later, it stops and asks a person.
    pub grace_minutes: u32,
    /// How long before the instant the pre-flight checks start (minutes); they repeat
    /// until the instant.
    pub preflight_minutes: u32,
    /// How often the pre-flight checks repeat (seconds).
    pub preflight_every_seconds: u32,
    /// The timeout of one call to an announcement channel (seconds).
    pub channel_timeout_seconds: u32,
    /// How many ready steps run at once (the announcements go out side by side; 1: one
    /// after the other).
    pub concurrent_steps: u32,
}

impl Default for Disclosure {
    fn default() -> Self {
        Self {
            grace_minutes: 15,
            preflight_minutes: 60,
            preflight_every_seconds: 300,
            channel_timeout_seconds: 20,
            concurrent_steps: 8,
        }
    }
}

/// The announcement channels. Every base URL may be `http://` to a loopback address (tests
/// and local relays); elsewhere it must be `https://`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Announce {
    /// A Slack incoming webhook (the #announcements channel).
    pub slack_webhook_url: Secret,
    /// A Mastodon instance's base URL (`/api/v1/statuses` is appended).
    pub mastodon_url: String,
    /// The Mastodon access token (sent as `Authorization: Bearer`).
    pub mastodon_token: Secret,
    /// The X API's base URL (`/2/tweets` is appended), e.g. `https://api.x.com`.
    pub x_api_url: String,
    /// An OAuth 2.0 user-context bearer token for X.
    pub x_token: Secret,
    /// A Bluesky PDS's base URL (e.g. `https://bsky.social`); optional.
    pub bluesky_url: String,
    /// The Bluesky handle.
    pub bluesky_handle: String,
    /// A Bluesky app password.
    pub bluesky_app_password: Secret,
    /// The git URL of the Hugo site's repository; posts go under `content/posts/`.
    pub blog_repository: String,
    /// Mailing lists that get an oss-security-style announcement, each its own copy.
    pub mailing_lists: Vec<String>,
}

/// Private fix repositories (served over git's smart HTTP protocol) and private CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fixes {
    /// What a push does with a commit message that names the advisory, a CVE or "security"
    /// before the lift: `warn` (the push goes through, git shows a warning) or `refuse`.
    pub commit_message_check: String,
    /// The longest a CI run may take, in seconds; then its whole process tree is killed.
    pub ci_time_limit_seconds: u64,
    /// The `git` program (a runtime dependency).
    pub git: String,
    /// An external CI instead of the built-in runner: every push is POSTed here (signed
    /// with `external_ci_secret`, header `X-Embargo-Signature`), and the CI reports back to
    /// `<public_url>/fixes/ci-callback`, signed the same way. Empty: the built-in runner.
    pub external_ci_url: String,
    /// The shared secret of the external CI's signatures (at least 32 characters).
    pub external_ci_secret: Secret,
    /// The longest a product's release command may take, in seconds (ADR 26).
    pub release_time_limit_seconds: u64,
    /// How long the disclosure runbook waits for a release's artifacts to verify, in seconds.
    pub artifacts_wait_seconds: u64,
    /// How often it looks again while waiting, in seconds.
    pub artifacts_poll_seconds: u64,
    /// The largest artifact it downloads to check, in bytes.
    pub max_artifact_bytes: u64,
    /// The shared secret that signs release webhooks (`X-Embargo-Signature`, as for the
    /// external CI; at least 32 characters when a product has a release webhook).
    pub release_webhook_secret: Secret,
}

impl Default for Fixes {
    fn default() -> Self {
        Self {
            commit_message_check: "warn".into(),
            ci_time_limit_seconds: 1800,
            git: "git".into(),
            external_ci_url: String::new(),
            external_ci_secret: Secret::default(),
            release_time_limit_seconds: 3600,
            artifacts_wait_seconds: 1800,
            artifacts_poll_seconds: 10,
            max_artifact_bytes: 4 * 1024 * 1024 * 1024,
            release_webhook_secret: Secret::default(),
        }
    }
}

/// CVE Services (the CVE Program's API), used by the `embargo cve` commands. Nothing is sent
/// unless `dry_run` is turned off, and IDs are reserved only by a person's command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CveServices {
    /// `test` (cveawg-test.mitre.org) or `production` (cveawg.mitre.org).
    pub environment: String,
    /// Overrides the environment's URL (a local fake in tests). Empty: the environment's.
    pub base_url: String,
    /// The CNA's short name at CVE Services (`CVE-API-ORG`).
    pub org: String,
    /// The CVE Services user, usually an e-mail address (`CVE-API-USER`).
    pub user: String,
    /// That user's API key (`CVE-API-KEY`).
    pub api_key: Secret,
    /// Show what would be sent instead of sending it.
    pub dry_run: bool,
    /// Seconds one request may take.
    pub timeout_seconds: u32,
}

impl Default for CveServices {
    fn default() -> Self {
        Self {
            environment: "test".into(),
            base_url: String::new(),
            org: String::new(),
            user: String::new(),
            api_key: Secret::default(),
            dry_run: true,
            timeout_seconds: 30,
        }
    }
}

impl CveServices {
    /// The base URL in effect: `base_url`, or the environment's.
    pub fn effective_base_url(&self) -> &str {
        if !self.base_url.is_empty() {
            return &self.base_url;
        }
        match self.environment.as_str() {
            "production" => "https://cveawg.mitre.org/api",
            _ => "https://cveawg-test.mitre.org/api",
        }
    }

    /// Whether anything is configured (an organisation names the CNA).
    pub fn is_configured(&self) -> bool {
        !self.org.is_empty()
    }
}

/// The web app: sign-in, sessions and the reporter form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// Team accounts must use a second factor (TOTP) to sign in.
    pub require_totp: bool,
    /// A session ends after this many hours without a request.
    pub session_idle_hours: u32,
    /// Failed sign-ins per account and address in 15 minutes before sign-in is refused until
    /// the oldest leaves the window; per address (any account) ten times this in 15 minutes,
    /// and per account (any address, except from a browser it signed in from) ten times
    /// this in an hour.
    pub max_failed_logins: u32,
    /// Reports per hour accepted from one network address through the form.
    pub reports_per_hour_per_ip: u32,
    /// Anti-spam: the proof-of-work difficulty (leading zero bits of a SHA-256) the form's
    /// script solves, and the wait, in seconds, that replaces it without JavaScript.
    pub proof_of_work_bits: u32,
    /// See `proof_of_work_bits`.
    pub no_script_delay_seconds: u32,
    /// Languages in security.txt's Preferred-Languages (comma-separated tags).
    pub preferred_languages: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges, such
    /// as `127.0.0.1` or `10.0.0.0/8`): throttling and the audit trail then record the
    /// client they name, not the proxy. Empty: the connection's address is the client's.
    pub trusted_proxies: Vec<String>,
}

/// Whether `ip` is in one of `ranges` (addresses or `address/length`; unparsable entries
/// are refused when the configuration is loaded).
pub fn in_ranges(ip: std::net::IpAddr, ranges: &[String]) -> bool {
    ranges.iter().filter_map(|r| parse_range(r)).any(|(net, len)| match (net, ip) {
        (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    })
}

/// `address` or `address/length`, as (network, prefix length).
fn parse_range(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (address, length) = match text.trim().split_once('/') {
        Some((address, length)) => (address, Some(length)),
        None => (text.trim(), None),
    };
    let ip: std::net::IpAddr = address.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let length = match length {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, length))
}

impl Default for Web {
    fn default() -> Self {
        Self {
            require_totp: true,
            session_idle_hours: 12,
            max_failed_logins: 5,
            reports_per_hour_per_ip: 10,
            proof_of_work_bits: 16,
            no_script_delay_seconds: 8,
            preferred_languages: "en".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The organisation and its policy contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Organisation {
    /// Name shown to reporters.
    pub name: String,
    /// The private security address reports are sent to.
    pub security_address: String,
    /// Where non-security bugs go (the public issue tracker).
    pub public_issue_tracker: String,
    /// Prefix of report reference IDs (`<PREFIX>-<year>-<n>`).
    pub reference_prefix: String,
}

/// The public policy page (`/policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// What is in scope, in a sentence or two. Empty: the products on the report form.
    pub scope: String,
    /// What is out of scope. Empty: nothing is said.
    pub out_of_scope: String,
    /// The safe-harbour statement: what the organisation promises people who research and
    /// report in good faith. Empty: no statement is shown.
    pub safe_harbour: String,
}

/// The safe-harbour statement shown when the configuration names none.
pub const DEFAULT_SAFE_HARBOUR: &str = "We will not take legal action against you, or ask anyone else to, for security research \
     done and reported in good faith under this policy: avoid harm to people, their data and our services; test only \
     what you own or are allowed to test; stop and tell us as soon as you find a vulnerability; and give us a \
     reasonable time to fix it before you disclose it. If a third party takes action against you for such research, \
     we will make it known that you acted under this policy.";

impl Default for Policy {
    fn default() -> Self {
        Self { scope: String::new(), out_of_scope: String::new(), safe_harbour: DEFAULT_SAFE_HARBOUR.to_owned() }
    }
}

/// Advisories: how they are numbered and who publishes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Advisories {
    /// Prefix of advisory IDs (`<PREFIX>-<year>-<nnnn>`). Empty: the report reference prefix.
    pub prefix: String,
    /// The publisher's namespace URL in CSAF (`document.publisher.namespace`). Empty: the
    /// public URL.
    pub publisher_namespace: String,
    /// CSAF publisher category: `vendor`, `coordinator`, `discoverer`, `other` or `user`.
    pub publisher_category: String,
    /// The CNA's organisation UUID at CVE Services (needed for CVE records).
    pub cve_org_id: String,
    /// The CNA's short name at CVE Services.
    pub cve_short_name: String,
}

impl Default for Advisories {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            publisher_namespace: String::new(),
            publisher_category: "vendor".into(),
            cve_org_id: String::new(),
            cve_short_name: String::new(),
        }
    }
}

/// SLA defaults (working days are counted on the team's business calendar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sla {
    /// The policy's promise: acknowledge each report within this many working days.
    pub acknowledge_working_days: u32,
    /// Finish the analysis within this many working days...
    pub analyse_working_days: u32,
    /// ...counted from receipt (the default: "acknowledge and analyse within 10 working days"
    /// means both done 10 working days after the report arrived) or from the acknowledgement.
    pub analyse_from: AnalyseFrom,
    /// Send the reporter an update at least this often while a report is open.
    pub reporter_update_working_days: u32,
    /// Close a needs-info report after this many days without an answer.
    pub needs_info_close_days: u32,
    /// The team's time zone (IANA name) for working-day arithmetic; the default of the
    /// business calendar, which admins edit on `/admin/calendar`.
    pub time_zone: String,
    /// Warn the people responsible when this share of a clock's time is used.
    pub warn_at_percent: u8,
    /// Fix targets, in working days from acceptance, by severity.
    pub fix_working_days: FixTargets,
}

/// Where the analysis clock starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalyseFrom {
    /// At receipt: acknowledgement and analysis are both due N working days after receipt.
    #[default]
    Receipt,
    /// At the acknowledgement: the analysis may end `acknowledge + analyse` working days
    /// after receipt.
    Acknowledgement,
}

/// Fix targets by severity, in working days. A report without a CVSS score uses `medium`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixTargets {
    /// CVSS 9.0-10.0.
    pub critical: u32,
    /// CVSS 7.0-8.9.
    pub high: u32,
    /// CVSS 4.0-6.9, and unrated reports.
    pub medium: u32,
    /// CVSS 0.1-3.9.
    pub low: u32,
}

impl Default for FixTargets {
    fn default() -> Self {
        Self { critical: 7, high: 30, medium: 60, low: 90 }
    }
}

impl FixTargets {
    /// The target for a severity code (`critical`, `high`, `medium`, `low`, `none`); unrated
    /// and `none` use `medium`.
    pub fn for_severity(&self, severity: Option<&str>) -> u32 {
        match severity {
            Some("critical") => self.critical,
            Some("high") => self.high,
            Some("low") => self.low,
            _ => self.medium,
        }
    }
}

/// Background job settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jobs {
    /// Jobs run at the same time by one process.
    pub concurrency: u32,
    /// How long a claimed job stays leased without a heartbeat.
    pub lease_seconds: u32,
    /// How often an idle worker looks for due jobs.
    pub poll_interval_ms: u32,
    /// Attempts before a job is given up.
    pub max_attempts: u32,
}

/// Mail: the SMTP listener's limits and TLS, and how outgoing mail leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    /// The name the SMTP listener gives in its greeting. Empty: the security address's domain.
    pub hostname: String,
    /// PEM certificate chain for STARTTLS. Empty: STARTTLS is not offered.
    pub tls_certificate: String,
    /// PEM private key for STARTTLS.
    pub tls_key: String,
    /// Recipients accepted per message.
    pub max_recipients: u32,
    /// Simultaneous SMTP connections from one address.
    pub max_connections_per_ip: u32,
    /// Simultaneous SMTP connections in total.
    pub max_connections: u32,
    /// Messages accepted per sending address per minute.
    pub messages_per_minute_per_ip: u32,
    /// Outgoing mail relay, such as `smtp://user:password@mail.example.org:587?tls=required`
    /// or `smtps://mail.example.org`. Empty: mail is written to the outbox Maildir in the
    /// data directory (`embargo outbox list`).
    pub relay: Secret,
    /// Recipients who must only get encrypted mail: addresses, or `@domain` for a whole
    /// domain. Mail to them without a known OpenPGP key is not sent (the job fails visibly).
    pub require_encryption_for: Vec<String>,
    /// Evaluate DKIM, SPF and DMARC for mail received over SMTP.
    pub check_sender_authentication: bool,
    /// DNS server for those checks, `ip:port`. Empty: the system's resolver.
    pub dns_server: String,
    /// Load balancers (addresses or ranges such as `10.0.0.0/8`) in front of the SMTP
    /// listener that send a PROXY protocol header (HAProxy `send-proxy` or `send-proxy-v2`):
    /// their connections must start with one, and the client it names is the sender for the
    /// limits and sender authentication. Empty: no header is believed.
    pub proxy_protocol_from: Vec<String>,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            tls_certificate: String::new(),
            tls_key: String::new(),
            max_recipients: 10,
            max_connections_per_ip: 20,
            max_connections: 500,
            messages_per_minute_per_ip: 600,
            relay: Secret::default(),
            require_encryption_for: Vec::new(),
            check_sender_authentication: true,
            dns_server: String::new(),
            proxy_protocol_from: Vec::new(),
        }
    }
}

/// Polling an existing security mailbox over IMAP (implicit TLS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Imap {
    /// `host:port` of the IMAP server (TLS, usually port 993). Empty: no polling.
    pub server: String,
    /// Login name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// The mailbox to read.
    pub mailbox: String,
    /// Extra trusted CA certificate (PEM file) for a server with a private CA.
    pub ca_certificate: String,
    /// Seconds between looks when the server has no IDLE (and the longest IDLE wait).
    pub poll_seconds: u32,
}

impl Default for Imap {
    fn default() -> Self {
        Self {
            server: String::new(),
            username: String::new(),
            password: Secret::default(),
            mailbox: "INBOX".into(),
            ca_certificate: String::new(),
            poll_seconds: 60,
        }
    }
}

/// Input limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted message (mail or form), in bytes: for mail, its size on the wire
    /// (as sent, before decoding), which the SMTP listener advertises as `SIZE`.
    pub max_message_bytes: u64,
    /// Largest decoded content of one message (its text and files after base64 and
    /// quoted-printable decoding, decryption and decompression), in bytes.
    pub max_decoded_bytes: u64,
    /// Message data all SMTP connections together may hold in memory, in bytes; a message
    /// that would go over is refused for now (`452`, the sender retries).
    pub max_smtp_buffered_bytes: u64,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, such as `info` or `embargo=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./embargo-data"),
            database_url: Secret::default(),
            http: "127.0.0.1:8080".into(),
            smtp: "127.0.0.1:2525".into(),
            public_url: String::new(),
            metrics_listen: "127.0.0.1:9090".into(),
            metrics_token: Secret::default(),
            organisation: Organisation::default(),
            policy: Policy::default(),
            sla: Sla::default(),
            jobs: Jobs::default(),
            mail: Mail::default(),
            imap: Imap::default(),
            web: Web::default(),
            advisories: Advisories::default(),
            fixes: Fixes::default(),
            disclosure: Disclosure::default(),
            announce: Announce::default(),
            limits: Limits::default(),
            log: Log::default(),
            cve_services: CveServices::default(),
        }
    }
}

impl Default for Organisation {
    fn default() -> Self {
        Self {
            name: "Example Project".into(),
            security_address: "security@example.org".into(),
            public_issue_tracker: "https://example.org/issues/new".into(),
            reference_prefix: "SEC".into(),
        }
    }
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            acknowledge_working_days: 10,
            analyse_working_days: 10,
            analyse_from: AnalyseFrom::Receipt,
            reporter_update_working_days: 5,
            needs_info_close_days: 30,
            time_zone: "UTC".into(),
            warn_at_percent: 80,
            fix_working_days: FixTargets::default(),
        }
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self { concurrency: 4, lease_seconds: 60, poll_interval_ms: 500, max_attempts: 8 }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 25 * 1024 * 1024,
            max_decoded_bytes: 50 * 1024 * 1024,
            max_smtp_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

/// Command-line flags that override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--http`.
    pub http: Option<String>,
    /// `--smtp`.
    pub smtp: Option<String>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the key and line.
        message: String,
    },
    /// An environment variable has a value of the wrong type.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration: defaults < `file` < environment (`vars`) < `overrides`.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::try_from(Config::default()).expect("defaults serialise");
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
            let from_file: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse { path: shown.clone(), message: e.to_string() })?;
            // Deserialising the file alone first reports unknown keys with the file's name.
            Config::deserialize(toml::Value::Table(from_file.clone()))
                .map_err(|e| ConfigError::Parse { path: shown.clone(), message: e.to_string() })?;
            merge(&mut table, from_file);
        }
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        apply_env(&mut table, &mut Vec::new(), &vars)?;
        let mut config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(http) = &overrides.http {
            config.http = http.clone();
        }
        if let Some(smtp) = &overrides.smtp {
            config.smtp = smtp.clone();
        }
        if let Some(url) = &overrides.database_url {
            config.database_url = Secret::new(url.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if jiff::tz::TimeZone::get(&self.sla.time_zone).is_err() {
            return invalid(format!("sla.time_zone: unknown time zone {:?}", self.sla.time_zone));
        }
        if let Err(e) = ReferencePrefix::parse(&self.organisation.reference_prefix) {
            return invalid(format!("organisation.reference_prefix: {e}"));
        }
        for (key, value) in [("http", &self.http), ("smtp", &self.smtp)] {
            if value.parse::<SocketAddr>().is_err() {
                return invalid(format!("{key}: {value:?} is not an address such as 127.0.0.1:8080"));
            }
        }
        if let Some(bad) = self.web.trusted_proxies.iter().find(|r| parse_range(r).is_none()) {
            return invalid(format!("web.trusted_proxies: {bad:?} is not an address or a range such as 10.0.0.0/8"));
        }
        if let Some(bad) = self.mail.proxy_protocol_from.iter().find(|r| parse_range(r).is_none()) {
            return invalid(format!(
                "mail.proxy_protocol_from: {bad:?} is not an address or a range such as 10.0.0.0/8"
            ));
        }
        if !self.metrics_listen.is_empty() && self.metrics_listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "metrics_listen: {:?} is not an address such as 127.0.0.1:9090 (empty: no metrics listener)",
                self.metrics_listen
            ));
        }
        if !matches!(self.fixes.commit_message_check.as_str(), "warn" | "refuse") {
            return invalid(format!(
                "fixes.commit_message_check: {:?} is neither \"warn\" nor \"refuse\"",
                self.fixes.commit_message_check
            ));
        }
        let ci = &self.fixes.external_ci_url;
        if !ci.is_empty() {
            if !(ci.starts_with("https://") || ci.starts_with("http://")) {
                return invalid("fixes.external_ci_url must be an http(s):// URL (empty: the built-in runner)".into());
            }
            if self.fixes.external_ci_secret.expose().len() < 32 {
                return invalid("fixes.external_ci_secret: at least 32 characters with an external CI".into());
            }
        }
        if !(1..=86_400).contains(&self.fixes.ci_time_limit_seconds) {
            return invalid("fixes.ci_time_limit_seconds: from 1 to 86400".into());
        }
        if !(1..=86_400).contains(&self.fixes.release_time_limit_seconds) {
            return invalid("fixes.release_time_limit_seconds: from 1 to 86400".into());
        }
        if !(1..=86_400).contains(&self.fixes.artifacts_wait_seconds) {
            return invalid("fixes.artifacts_wait_seconds: from 1 to 86400".into());
        }
        if !(1..=3_600).contains(&self.fixes.artifacts_poll_seconds) {
            return invalid("fixes.artifacts_poll_seconds: from 1 to 3600".into());
        }
        if self.fixes.max_artifact_bytes == 0 {
            return invalid("fixes.max_artifact_bytes: more than 0".into());
        }
        let secret = self.fixes.release_webhook_secret.expose();
        if !secret.is_empty() && secret.len() < 32 {
            return invalid("fixes.release_webhook_secret: at least 32 characters (empty: no release webhooks)".into());
        }
        let token = self.metrics_token.expose();
        if !token.is_empty() && (token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return invalid("metrics_token must be at least 16 characters without spaces (empty: no token)".into());
        }
        let url = self.database_url.expose();
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid(
                "database_url must be empty (SQLite in the data directory), sqlite:PATH or postgres://...".into(),
            );
        }
        if !self.organisation.security_address.contains('@') {
            return invalid("organisation.security_address must be an e-mail address".into());
        }
        if self.mail.tls_certificate.is_empty() != self.mail.tls_key.is_empty() {
            return invalid("mail.tls_certificate and mail.tls_key go together".into());
        }
        let relay = self.mail.relay.expose();
        if !(relay.is_empty() || relay.starts_with("smtp://") || relay.starts_with("smtps://")) {
            return invalid("mail.relay must be empty (outbox), smtp://... or smtps://...".into());
        }
        if !self.mail.dns_server.is_empty() && self.mail.dns_server.parse::<SocketAddr>().is_err() {
            return invalid("mail.dns_server must be ip:port, such as 127.0.0.1:53".into());
        }
        if self.mail.max_recipients == 0 || self.mail.max_connections_per_ip == 0 || self.mail.max_connections == 0 {
            return invalid("mail limits must be at least 1".into());
        }
        if !self.imap.server.is_empty() {
            let valid = self
                .imap
                .server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid || self.imap.username.is_empty() || self.imap.poll_seconds == 0 {
                return invalid(
                    "imap: server must be host:port, with a username and poll_seconds of at least 1".into(),
                );
            }
        }
        let fix = &self.sla.fix_working_days;
        if [
            self.sla.acknowledge_working_days,
            self.sla.analyse_working_days,
            self.sla.reporter_update_working_days,
            self.sla.needs_info_close_days,
            fix.critical,
            fix.high,
            fix.medium,
            fix.low,
        ]
        .contains(&0)
        {
            return invalid("sla: working-day targets must be at least 1".into());
        }
        if !["vendor", "coordinator", "discoverer", "other", "user"]
            .contains(&self.advisories.publisher_category.as_str())
        {
            return invalid(
                "advisories.publisher_category must be vendor, coordinator, discoverer, other or user".into(),
            );
        }
        if !self.advisories.prefix.is_empty()
            && let Err(e) = ReferencePrefix::parse(&self.advisories.prefix)
        {
            return invalid(format!("advisories.prefix: {e}"));
        }
        if !(1..=99).contains(&self.sla.warn_at_percent) {
            return invalid("sla.warn_at_percent must be between 1 and 99".into());
        }
        if self.jobs.concurrency == 0 || self.jobs.lease_seconds == 0 {
            return invalid("jobs.concurrency and jobs.lease_seconds must be at least 1".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid("log.format must be text or json".into());
        }
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return invalid("public_url must start with http:// or https://".into());
        }
        let cve = &self.cve_services;
        if !matches!(cve.environment.as_str(), "test" | "production") {
            return invalid("cve_services.environment must be test or production".into());
        }
        if !(cve.base_url.is_empty() || cve.base_url.starts_with("https://") || cve.base_url.starts_with("http://")) {
            return invalid("cve_services.base_url must be empty (the environment's) or a URL".into());
        }
        if cve.org.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("cve_services.org is the CNA's short name, without spaces".into());
        }
        if cve.timeout_seconds == 0 {
            return invalid("cve_services.timeout_seconds must be at least 1".into());
        }
        if !cve.dry_run && (cve.org.is_empty() || cve.user.is_empty() || cve.api_key.is_empty()) {
            return invalid("cve_services: org, user and api_key are needed when dry_run is false".into());
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> Secret {
        if self.database_url.is_empty() {
            Secret::new(embargo_store::Store::sqlite_url_for(&self.data_dir))
        } else {
            self.database_url.clone()
        }
    }

    /// The database in effect, in words for messages: "the SQLite database PATH" or "the
    /// PostgreSQL database URL" (its password masked).
    pub fn database_place(&self) -> String {
        let url = self.database_url();
        match embargo_store::Store::sqlite_path(url.expose()) {
            Some(path) => format!("the SQLite database {}", path.display()),
            None if url.expose().starts_with("sqlite:") => "the SQLite database".to_owned(),
            None => format!("the PostgreSQL database {}", redact_url(url.expose())),
        }
    }

    /// The base URL for links: `public_url`, or `http://<http address>`.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.sla.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// Whether links and cookies are served over HTTPS (the public URL says so).
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The base URL under which this instance is a CSAF trusted provider, or `None` when it
    /// cannot be one: CSAF 2.0 requires TLS for a provider (§7.1.3) and forbids an `http://`
    /// `CSAF:` line in security.txt (§7.1.8), so a `public_url` that is not `https` declares no
    /// provider at all (no provider metadata, no `CSAF:` line, no `self` reference in the
    /// documents). `serve` says so at start.
    pub fn csaf_provider_url(&self) -> Option<String> {
        self.https().then(|| self.base_url())
    }

    /// The public base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.http)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// Whether mail to `address` must be encrypted (`mail.require_encryption_for`).
    pub fn requires_encryption(&self, address: &str) -> bool {
        let address = address.trim().to_lowercase();
        self.mail.require_encryption_for.iter().any(|rule| {
            let rule = rule.trim().to_lowercase();
            if rule.starts_with('@') { address.ends_with(&rule) } else { address == rule }
        })
    }

    /// The outbox Maildir (used when no relay is configured).
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// The SMTP host name: `mail.hostname`, or the security address's domain.
    pub fn mail_hostname(&self) -> String {
        if self.mail.hostname.is_empty() {
            self.organisation.security_address.rsplit('@').next().unwrap_or("localhost").to_owned()
        } else {
            self.mail.hostname.clone()
        }
    }

    /// The reference prefix (validated at load).
    pub fn reference_prefix(&self) -> ReferencePrefix {
        ReferencePrefix::parse(&self.organisation.reference_prefix).expect("validated at load")
    }

    /// The effective configuration as TOML with secrets masked (for `embargo config show`).
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = Secret::new(redact_url(self.database_url.expose()));
        shown.mail.relay = Secret::new(redact_url(self.mail.relay.expose()));
        if !shown.imap.password.is_empty() {
            shown.imap.password = Secret::new("[redacted]");
        }
        if !shown.cve_services.api_key.is_empty() {
            shown.cve_services.api_key = Secret::new("[redacted]");
        }
        if !shown.metrics_token.is_empty() {
            shown.metrics_token = Secret::new("[redacted]");
        }
        if !shown.fixes.external_ci_secret.is_empty() {
            shown.fixes.external_ci_secret = Secret::new("[redacted]");
        }
        if !shown.fixes.release_webhook_secret.is_empty() {
            shown.fixes.release_webhook_secret = Secret::new("[redacted]");
        }
        toml::to_string_pretty(&shown).expect("configuration serialises")
    }
}

/// Masks the password in a URL such as `postgres://user:password@host/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:[redacted]@{host}");
    }
    url.to_owned()
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_env(
    table: &mut toml::Table,
    path: &mut Vec<String>,
    vars: &std::collections::HashMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        path.push(key.clone());
        if let toml::Value::Table(inner) = value {
            apply_env(inner, path, vars)?;
        } else {
            let name = format!("EMBARGO_{}", path.join("__").to_uppercase());
            if let Some(text) = vars.get(&name) {
                let env_err = |message: String| ConfigError::Env { name: name.clone(), message };
                *value = match value {
                    toml::Value::String(_) => toml::Value::String(text.clone()),
                    toml::Value::Integer(_) => toml::Value::Integer(
                        text.trim().parse().map_err(|_| env_err(format!("expected a whole number, got {text:?}")))?,
                    ),
                    toml::Value::Boolean(_) => toml::Value::Boolean(
                        text.trim().parse().map_err(|_| env_err(format!("expected true or false, got {text:?}")))?,
                    ),
                    // A list: TOML (`["a", "b"]`), or plain comma-separated items.
                    toml::Value::Array(_) if !text.trim_start().starts_with('[') => toml::Value::Array(
                        text.split(',')
                            .map(str::trim)
                            .filter(|item| !item.is_empty())
                            .map(|item| toml::Value::String(item.to_owned()))
                            .collect(),
                    ),
                    _ => {
                        let parsed: toml::Table = format!("v = {text}")
                            .parse()
                            .map_err(|e: toml::de::Error| env_err(e.message().to_owned()))?;
                        parsed["v"].clone()
                    }
                };
            }
        }
        path.pop();
    }
    Ok(())
}

/// A commented example configuration (`embargo config example`). Its values are the
/// defaults; a test keeps the two in step.
pub const EXAMPLE: &str = r#"# Embargo configuration.
#
# Precedence: built-in defaults < this file (--config FILE) < EMBARGO_* environment
# variables < command-line flags. Environment variables name a key by its path in upper
# case with "__" between section and key, for example EMBARGO_DATA_DIR or
# EMBARGO_ORGANISATION__NAME. The master key is never read from this file: it lives in
# <data_dir>/master.key (created at first start, mode 0600) or in EMBARGO_MASTER_KEY.

# Where the SQLite database, the master key and the mail outbox live.
data_dir = "./embargo-data"

# Empty: SQLite in the data directory (embargo.db). For PostgreSQL:
#   database_url = "postgres://embargo:PASSWORD@db.internal/embargo"
database_url = ""

# Listen addresses for the web app and API, and for mail intake over SMTP.
http = "127.0.0.1:8080"
smtp = "127.0.0.1:2525"

# Public base URL used in links sent to people (status pages, the first-admin link).
# Empty: http://<http address>.
public_url = ""

# Prometheus metrics (GET /metrics) are served on their own listener, loopback by default,
# and never on the public one unless metrics_token is set. Empty: no metrics listener.
metrics_listen = "127.0.0.1:9090"
# A bearer token for /metrics (at least 16 characters). When set, every scrape must send
# "Authorization: Bearer <token>" (on either listener). Better set it through the
# environment (EMBARGO_METRICS_TOKEN) than in this file.
metrics_token = ""

[organisation]
name = "Example Project"
# The private address reports are sent to.
security_address = "security@example.org"
# Where reporters of non-security bugs are sent.
public_issue_tracker = "https://example.org/issues/new"
# Report references look like SEC-2026-1.
reference_prefix = "SEC"

[policy]
# What the public policy page (/policy) says is in scope. Empty: the products on the
# report form.
scope = ""
# What is out of scope. Empty: nothing is said.
out_of_scope = ""
# The safe-harbour statement on the policy page. Empty: none is shown. The default
# promises no legal action against research done and reported in good faith.
# safe_harbour = "..."

[sla]
# "The team acknowledges and analyzes each vulnerability report within 10 working days."
acknowledge_working_days = 10
analyse_working_days = 10
# From "receipt" (both promises end 10 working days after the report arrived) or from the
# "acknowledgement" (the analysis may then end 20 working days after receipt).
analyse_from = "receipt"
# "We keep the reporter updated": at least one update this often while a report is open.
reporter_update_working_days = 5
# A report waiting on the reporter is closed after this many days without an answer.
needs_info_close_days = 30
# The team's time zone for working-day arithmetic (IANA name). Admins can change it, the
# weekend days and the holidays on /admin/calendar (or: embargo calendar import FILE.ics).
time_zone = "UTC"
# Warn the people responsible when this share of a deadline's time is used; on a breach
# the admins are told as well.
warn_at_percent = 80

[sla.fix_working_days]
# Fix targets from acceptance, by CVSS severity (unrated reports use medium).
critical = 7
high = 30
medium = 60
low = 90

[jobs]
# Jobs run at once by one process; lease before another process may take a job over.
concurrency = 4
lease_seconds = 60
poll_interval_ms = 500
max_attempts = 8

[mail]
# Name in the SMTP greeting. Empty: the domain of organisation.security_address.
hostname = ""
# PEM files for STARTTLS on the SMTP listener. Empty: STARTTLS is not offered.
tls_certificate = ""
tls_key = ""
max_recipients = 10
max_connections_per_ip = 20
max_connections = 500
messages_per_minute_per_ip = 600
# Outgoing relay, e.g. "smtp://user:PASSWORD@mail.example.org:587?tls=required" or
# "smtps://mail.example.org". Empty: outgoing mail goes to <data_dir>/outbox (a Maildir).
relay = ""
# Recipients who only get encrypted mail (addresses, or "@domain"); mail to them without a
# known OpenPGP key is held back. Mail to anyone whose key is known is always encrypted.
require_encryption_for = []
# DKIM, SPF and DMARC for mail received over SMTP, recorded on each message; a reply that
# fails them is quarantined. dns_server: "ip:port", empty for the system resolver.
check_sender_authentication = true
dns_server = ""
# Load balancers in front of the SMTP listener that send a PROXY protocol header (HAProxy
# send-proxy / send-proxy-v2), as addresses or ranges: their connections must start with
# one, and the client it names counts for the limits and sender authentication.
proxy_protocol_from = []

[imap]
# Poll an existing mailbox instead of (or beside) receiving over SMTP: "host:993", TLS.
# Messages are marked $EmbargoIngested (and seen) only after they are stored.
server = ""
username = ""
password = ""
mailbox = "INBOX"
# PEM file of a private CA that signed the server's certificate, if any.
ca_certificate = ""
poll_seconds = 60

[web]
# Team accounts sign in with a password and a TOTP code (an authenticator app).
require_totp = true
session_idle_hours = 12
# Failed sign-ins per account and network address in 15 minutes before sign-in is refused
# (with Retry-After) until the oldest failure is 15 minutes old. Also: ten times this per
# address over all accounts in 15 minutes, and ten times this per account over all addresses
# in an hour, which does not apply to a browser that signed in to the account before (it
# holds a signed device cookie), so strangers cannot lock the owner out. Counted in the
# database (sliding windows, to the minute), so the limits hold across instances.
max_failed_logins = 5
# The reporter form: reports per hour from one network address, and its anti-spam measure:
# a small proof of work solved by the page's script, or, without JavaScript, a short wait.
reports_per_hour_per_ip = 10
proof_of_work_bits = 16
no_script_delay_seconds = 8
# security.txt Preferred-Languages.
preferred_languages = "en"
# Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges), so that
# throttling and the audit trail see the client, not the proxy. Empty: none.
trusted_proxies = []

[advisories]
# Advisory IDs look like SEC-2026-0001; empty: the report reference prefix.
prefix = ""
# The publisher named in CSAF documents: namespace URL (empty: public_url) and category.
publisher_namespace = ""
publisher_category = "vendor"
# For CVE records: the CNA's organisation UUID and short name at CVE Services.
cve_org_id = ""
cve_short_name = ""

[fixes]
# Before the lift, a push whose commit message names the advisory, a CVE or "security":
# "warn" (accepted with a warning) or "refuse".
commit_message_check = "warn"
# Private CI: the longest a run may take, in seconds (then its process tree is killed).
ci_time_limit_seconds = 1800
# The git program serving the fix repositories and running CI checkouts.
git = "git"
# An external CI instead of the built-in runner (empty: built in). Each push is POSTed to
# it, signed (X-Embargo-Signature: t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">); it reports
# back to <public_url>/fixes/ci-callback, signed the same way.
external_ci_url = ""
external_ci_secret = ""
# The disclosure runbook's release build (ADR 26): the longest a product's release command
# may run in the sandbox, in seconds; how long to wait for the release's artifacts to verify
# (every expected file answers 200 and matches SHA256SUMS, whose signature verifies when the
# product has a signing key) and how often to look again; the largest artifact downloaded.
release_time_limit_seconds = 3600
artifacts_wait_seconds = 1800
artifacts_poll_seconds = 10
max_artifact_bytes = 4294967296
# Signs the release webhooks of products that have one (X-Embargo-Signature, as for the
# external CI; at least 32 characters).
release_webhook_secret = ""

[disclosure]
# The runbook (embargo disclosure ...). When the instant passed while Embargo was down, a
# plan still starts by itself this many minutes late; later, it stops and asks a person.
grace_minutes = 15
# Pre-flight checks start this many minutes before the instant and repeat every
# preflight_every_seconds until it.
preflight_minutes = 60
preflight_every_seconds = 300
# The timeout of one call to an announcement channel, in seconds.
channel_timeout_seconds = 20
# How many ready steps run at once (the announcements go out side by side); 1: one by one.
concurrent_steps = 8

[announce]
# Where disclosures are announced; an empty setting is a channel not used. Base URLs may be
# http:// to a loopback address (local relays, tests); elsewhere https://.
# A Slack incoming webhook (the #announcements channel).
slack_webhook_url = ""
# Mastodon: the instance's base URL (/api/v1/statuses is appended) and an access token.
mastodon_url = ""
mastodon_token = ""
# X: the API base URL (/2/tweets is appended) and an OAuth 2.0 user-context bearer token.
x_api_url = ""
x_token = ""
# Bluesky (optional): the PDS's base URL, the handle and an app password.
bluesky_url = ""
bluesky_handle = ""
bluesky_app_password = ""
# The git URL of the Hugo site's repository; posts go under content/posts/.
blog_repository = ""
# Mailing lists that get an oss-security-style plain-text announcement, each its own copy
# (as an environment variable: comma-separated addresses).
mailing_lists = []

[limits]
# Largest accepted message, mail or form, in bytes (25 MiB). For mail this is the size on
# the wire, as sent (the SMTP listener advertises it as SIZE).
max_message_bytes = 26214400
# Largest decoded content of one message: its text and files after decoding, decryption
# and decompression (50 MiB).
max_decoded_bytes = 52428800
# Message data all SMTP connections together may hold in memory (256 MiB); a message that
# would go over is refused for now with 452, and its sender retries.
max_smtp_buffered_bytes = 268435456

[log]
# "text" for people, "json" for log collectors. Report content is never logged.
format = "text"
level = "info"

[cve_services]
# CVE Services, for a CNA: `embargo cve reserve | list | publish | reject`. IDs are reserved
# only by such a command, never automatically. "test" is cveawg-test.mitre.org (separate
# credentials, nothing public), "production" is cveawg.mitre.org.
environment = "test"
# Overrides the environment's URL (https://, or http:// to a loopback address). Empty: the
# environment's.
base_url = ""
# The CNA's short name, the CVE Services user and its API key (or
# EMBARGO_CVE_SERVICES__API_KEY). The key is never printed.
org = ""
user = ""
api_key = ""
# While true, the commands print the requests they would send and send none.
dry_run = true
timeout_seconds = 30
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_is_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile_dir();
        let file = dir.join("embargo.toml");
        std::fs::write(&file, "http = \"127.0.0.1:9000\"\nsmtp = \"127.0.0.1:2600\"\n[organisation]\nname = \"From file\"\nreference_prefix = \"FILE\"\n[sla]\nacknowledge_working_days = 3\n").unwrap();
        let env = vars(&[
            ("EMBARGO_ORGANISATION__NAME", "From env"),
            ("EMBARGO_SLA__ACKNOWLEDGE_WORKING_DAYS", "4"),
            ("EMBARGO_HTTP", "127.0.0.1:9100"),
            ("EMBARGO_TEST_STRICT", "1"),
        ]);
        let flags = Overrides { http: Some("127.0.0.1:9200".into()), ..Default::default() };
        let config = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!(config.organisation.name, "From env");
        assert_eq!(config.organisation.reference_prefix, "FILE");
        assert_eq!(config.sla.acknowledge_working_days, 4);
        assert_eq!(config.smtp, "127.0.0.1:2600");
        assert_eq!(config.http, "127.0.0.1:9200");
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let dir = tempfile_dir();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[organisation]\nnmae = \"typo\"\n").unwrap();
        let err = Config::load(Some(&file), vars(&[]), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("nmae"), "{err}");

        let err = Config::load(None, vars(&[("EMBARGO_JOBS__CONCURRENCY", "many")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("EMBARGO_JOBS__CONCURRENCY") && err.contains("whole number"), "{err}");

        let err = Config::load(
            None,
            vars(&[("EMBARGO_ORGANISATION__REFERENCE_PREFIX", "bad-prefix")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("reference_prefix"), "{err}");

        let err = Config::load(None, vars(&[]), &Overrides { http: Some("localhost".into()), ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("http"), "{err}");
    }

    #[test]
    fn encryption_requirements_match_addresses_and_domains() {
        let config = Config::load(
            None,
            vars(&[("EMBARGO_MAIL__REQUIRE_ENCRYPTION_FOR", "[\"@Partner.example\", \"cto@example.org\"]")]),
            &Overrides::default(),
        )
        .unwrap();
        assert!(config.requires_encryption("alice@partner.example"));
        assert!(config.requires_encryption("CTO@example.org"));
        assert!(!config.requires_encryption("alice@example.org"));
        assert!(!config.requires_encryption("x@notpartner.example.com"));
    }

    #[test]
    fn secrets_are_never_shown() {
        let flags =
            Overrides { database_url: Some("postgres://embargo:hunter2@db/embargo".into()), ..Default::default() };
        let config = Config::load(None, vars(&[]), &flags).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("hunter2") && shown.contains("postgres://embargo:[redacted]@db/embargo"), "{shown}");
        assert_eq!(config.database_url().expose(), "postgres://embargo:hunter2@db/embargo");
    }

    #[test]
    fn cve_services_default_to_a_dry_run_on_the_test_environment() {
        let config = Config::load(None, vars(&[]), &Overrides::default()).unwrap();
        assert!(config.cve_services.dry_run);
        assert!(!config.cve_services.is_configured());
        assert_eq!(config.cve_services.effective_base_url(), "https://cveawg-test.mitre.org/api");

        let env = vars(&[
            ("EMBARGO_CVE_SERVICES__ENVIRONMENT", "production"),
            ("EMBARGO_CVE_SERVICES__ORG", "example"),
            ("EMBARGO_CVE_SERVICES__USER", "cna-admin@example.org"),
            ("EMBARGO_CVE_SERVICES__API_KEY", "s3cret-cve-key"),
            ("EMBARGO_CVE_SERVICES__DRY_RUN", "false"),
        ]);
        let config = Config::load(None, env, &Overrides::default()).unwrap();
        assert_eq!(config.cve_services.effective_base_url(), "https://cveawg.mitre.org/api");
        assert!(!format!("{config:?}").contains("s3cret-cve-key"));
        assert!(!config.to_redacted_toml().contains("s3cret-cve-key"));
        assert_eq!(config.cve_services.api_key.expose(), "s3cret-cve-key");

        let err = Config::load(
            None,
            vars(&[("EMBARGO_CVE_SERVICES__DRY_RUN", "false"), ("EMBARGO_CVE_SERVICES__ORG", "example")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("api_key"), "{err}");
        let err = Config::load(None, vars(&[("EMBARGO_CVE_SERVICES__ENVIRONMENT", "prod")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cve_services.environment"), "{err}");
    }

    fn tempfile_dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("embargo-config-test-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
