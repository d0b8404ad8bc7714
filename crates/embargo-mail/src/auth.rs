//! Sender authentication for mail received over SMTP: DKIM, SPF and DMARC, evaluated with
//! mail-auth against DNS, and summarised for storage on the message.
//!
//! SPF needs the connecting address, so only mail Embargo receives itself is checked; mail
//! polled over IMAP or piped in keeps whatever its own MX recorded.
//!
//! The checks of one message share a time budget ([`DEFAULT_BUDGET`]); what does not finish
//! in it is `temperror`. A budget that ran out marks DNS unavailable for a while
//! ([`DNS_RETRY_AFTER`]): the next messages are `temperror` at once instead of each waiting
//! for lookups that never return, and the first message after that pause tries again.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The longest the checks of one message may take together.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(4);

/// How long DNS counts as unavailable after a message's budget ran out.
pub const DNS_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A DNS-backed checker.
pub struct Checker {
    authenticator: MessageAuthenticator,
    hostname: String,
    budget: Duration,
    /// Until when DNS counts as unavailable (a budget ran out).
    down_until: Mutex<Option<Instant>>,
}

/// Every check `temperror`: DNS did not answer in time.
fn temperror() -> AuthSummary {
    AuthSummary { dkim: "temperror".into(), spf: "temperror".into(), dmarc: "temperror".into() }
}

/// The answer to one DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer {
    /// The records found.
    Found(Vec<String>),
    /// The name or the record type does not exist.
    NotFound,
    /// No resolver answered (or it failed), with why.
    NoAnswer(String),
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
        Ok(Self { authenticator, hostname: hostname.to_owned(), budget: DEFAULT_BUDGET, down_until: Mutex::new(None) })
    }

    /// The same checker with another time budget per message.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Whether DNS counts as unavailable now (a message's budget ran out recently).
    pub fn dns_unavailable(&self) -> bool {
        self.down_until.lock().map(|until| until.is_some_and(|t| Instant::now() < t)).unwrap_or(false)
    }

    fn mark_down(&self) {
        if let Ok(mut until) = self.down_until.lock() {
            *until = Some(Instant::now() + DNS_RETRY_AFTER);
        }
    }

    /// Whether a resolver answers at all (any answer, even "no such record", within the
    /// budget): for a warning at start.
    pub async fn resolver_answers(&self) -> bool {
        let probe = self.authenticator.verify_spf(SpfParameters::verify_ehlo(
            IpAddr::from([127, 0, 0, 1]),
            &self.hostname,
            &self.hostname,
        ));
        matches!(tokio::time::timeout(self.budget, probe).await, Ok(output) if output.result() != SpfResult::TempError)
    }

    /// The TXT records at `name` (their strings joined per record), within `within`: for
    /// `embargo doctor`'s checks of SPF and DMARC records.
    pub async fn txt(&self, name: &str, within: Duration) -> DnsAnswer {
        let resolver = self.authenticator.resolver();
        let Ok(name) =
            mail_auth::hickory_resolver::proto::rr::Name::from_str_relaxed(format!("{}.", name.trim_end_matches('.')))
        else {
            return DnsAnswer::NotFound;
        };
        match tokio::time::timeout(within, resolver.txt_lookup(name)).await {
            Err(_) => DnsAnswer::NoAnswer(format!("no answer within {} s", within.as_secs())),
            Ok(Ok(lookup)) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => {
                            Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect())
                        }
                        _ => None,
                    })
                    .collect();
                if records.is_empty() { DnsAnswer::NotFound } else { DnsAnswer::Found(records) }
            }
            Ok(Err(err)) if err.is_no_records_found() || err.is_nx_domain() => DnsAnswer::NotFound,
            Ok(Err(err)) => DnsAnswer::NoAnswer(err.to_string()),
        }
    }

    /// Checks one message received from `ip` after `helo`, with envelope sender `mail_from`.
    /// Takes at most the checker's budget; a budget that runs out gives `temperror` and marks
    /// DNS unavailable for [`DNS_RETRY_AFTER`].
    pub async fn check(&self, raw: &[u8], ip: IpAddr, helo: &str, mail_from: &str) -> AuthSummary {
        if self.dns_unavailable() {
            return temperror();
        }
        let deadline = tokio::time::Instant::now() + self.budget;
        match tokio::time::timeout_at(deadline, self.check_now(raw, ip, helo, mail_from)).await {
            Ok(summary) => summary,
            Err(_) => {
                self.mark_down();
                temperror()
            }
        }
    }

    async fn check_now(&self, raw: &[u8], ip: IpAddr, helo: &str, mail_from: &str) -> AuthSummary {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS server that takes queries and never answers (UDP and TCP on one port).
    fn silent_dns() -> (std::net::UdpSocket, std::net::TcpListener, SocketAddr) {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = std::net::UdpSocket::bind(addr).unwrap();
        (udp, tcp, addr)
    }

    #[tokio::test]
    async fn a_silent_resolver_costs_one_budget_then_nothing_while_it_stays_down() {
        let (_udp, _tcp, addr) = silent_dns();
        let checker = Checker::new(Some(addr), "mx.example.org").unwrap().with_budget(Duration::from_millis(300));
        let raw = b"From: a@sender.example\r\nTo: security@example.org\r\nSubject: x\r\n\r\nbody\r\n";
        let ip = IpAddr::from([192, 0, 2, 1]);
        assert!(!checker.dns_unavailable());
        // The resolver's own timeouts are seconds; the budget ends the checks first.
        let first =
            tokio::time::timeout(Duration::from_secs(30), checker.check(raw, ip, "client.example", "a@sender.example"))
                .await
                .expect("the budget bounds the checks");
        assert_eq!(first, temperror());
        assert!(checker.dns_unavailable(), "a budget that ran out marks DNS unavailable");
        // While it is down, messages are not held up at all: no lookup is even started.
        let second = checker.check(raw, ip, "client.example", "a@sender.example").await;
        assert_eq!(second.code(), "dkim=temperror spf=temperror dmarc=temperror");
        assert!(!checker.resolver_answers().await, "the start-up probe says no resolver answers");
    }
}
