//! Sender authentication for mail received over SMTP: DKIM, SPF and DMARC, evaluated with
//! mail-auth against DNS, and summarised for storage on the message.
//!
//! SPF needs the connecting address, so only mail Embargo receives itself is checked; mail
//! polled over IMAP or piped in keeps whatever its own MX recorded.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult};

/// The outcome of the checks, in the words of `Authentication-Results` (RFC 8601).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSummary {
    /// `pass` when at least one DKIM signature verified, else the first result.
    pub dkim: String,
    /// The SPF result for the MAIL FROM identity.
    pub spf: String,
    /// The DMARC result for the From domain.
    pub dmarc: String,
}

impl AuthSummary {
    /// `dkim=pass spf=fail dmarc=fail`, the stored form.
    pub fn code(&self) -> String {
        format!("dkim={} spf={} dmarc={}", self.dkim, self.spf, self.dmarc)
    }

    /// Whether the sender's identity is contradicted: DMARC fails, or (without DMARC) both SPF
    /// and DKIM fail.
    pub fn failed(&self) -> bool {
        self.dmarc == "fail" || (self.dmarc == "none" && self.spf == "fail" && self.dkim == "fail")
    }
}

/// A DNS-backed checker.
pub struct Checker {
    authenticator: MessageAuthenticator,
    hostname: String,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").field("hostname", &self.hostname).finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker using `dns_server` (`ip:port`), or the system's resolver configuration when
    /// `None`. `hostname` is this receiver's name (used by SPF macros).
    pub fn new(dns_server: Option<SocketAddr>, hostname: &str) -> Result<Self, String> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        let authenticator = match dns_server {
            Some(server) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                let config =
                    ResolverConfig::from_name_servers(vec![NameServerConfig::new(server.ip(), true, vec![udp, tcp])]);
                MessageAuthenticator::new(config, options)
            }
            None => {
                let (config, _) = mail_auth::hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?;
                MessageAuthenticator::new(config, options)
            }
        }
        .map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Self { authenticator, hostname: hostname.to_owned() })
    }

    /// Checks one message received from `ip` after `helo`, with envelope sender `mail_from`.
    pub async fn check(&self, raw: &[u8], ip: IpAddr, helo: &str, mail_from: &str) -> AuthSummary {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return AuthSummary { dkim: "permerror".into(), spf: "none".into(), dmarc: "none".into() };
        };
        let dkim_output = self.authenticator.verify_dkim(&message).await;
        let dkim = if dkim_output.is_empty() {
            "none".to_owned()
        } else if dkim_output.iter().any(|o| o.result() == &DkimResult::Pass) {
            "pass".to_owned()
        } else {
            dkim_word(dkim_output[0].result()).to_owned()
        };
        let mail_from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d).to_owned();
        let spf_output = if mail_from.is_empty() {
            self.authenticator.verify_spf(SpfParameters::verify_ehlo(ip, helo, &self.hostname)).await
        } else {
            self.authenticator.verify_spf(SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from)).await
        };
        let dmarc_output = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(&message, &dkim_output, &mail_from_domain, &spf_output))
            .await;
        AuthSummary {
            dkim,
            spf: spf_word(spf_output.result()).to_owned(),
            dmarc: dmarc_word(&dmarc_output.result()).to_owned(),
        }
    }
}

fn dkim_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dmarc_word(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}
