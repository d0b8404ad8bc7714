//! A client for CVE Services, the CVE Program's API (OpenAPI 2.3.3, vendored in
//! `../shared/vectors/cve/cve-services-api/openapi.json`): reserve CVE IDs, read an ID's state,
//! publish and update a record's CNA container, and reject an ID or a record.
//!
//! [`Client`] sends the three credential headers (`CVE-API-ORG`, `CVE-API-USER`,
//! `CVE-API-KEY`) on every request. The key is an [`ApiKey`]: it never prints, its header is
//! marked sensitive, redirects are never followed (so the key cannot be carried to another
//! host), plain `http://` is refused except on loopback, and error messages are scrubbed of
//! it.
//!
//! **Dry run** ([`Config::dry_run`], on by default in the application's configuration): every
//! write returns [`Outcome::DryRun`] with the [`PlannedRequest`] (method, URL, headers with the
//! key redacted, body) instead of sending anything. Reads ([`Client::get_id`]) are still sent:
//! they change nothing, and a rehearsal against the real service then checks the credentials
//! and the ID's state. Without an API key a read goes out unauthenticated, which the API
//! allows (it then answers with less detail).
//!
//! Errors ([`Error`]) separate what may succeed later (429, 5xx, timeouts, connection
//! failures: [`Error::is_retryable`]) from what will not (other 4xx).
//!
//! Architecture invariant: this crate knows CVE Services' HTTP API and nothing of reports,
//! advisories or the database. A CNA container is a JSON value computed elsewhere
//! (`embargo_advisory::cve::cna_container`).
#![forbid(unsafe_code)]

mod client;
mod error;
mod wire;

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use client::{Batch, Client, Method, Outcome, PlannedRequest};
pub use error::Error;
pub use wire::{CveId, CveMetadata, IdInfo, IdState, IdTimes, Record, RecordResponse, RequestedBy, Reservation};

/// The production service.
pub const PRODUCTION_BASE_URL: &str = "https://cveawg.mitre.org/api";
/// The test service (separate credentials, records are not public).
pub const TEST_BASE_URL: &str = "https://cveawg-test.mitre.org/api";

/// Which CVE Services to talk to. The OpenAPI file's `servers` names only the development
/// instance (`cveawg-dev`); the test and production URLs are the ones CVE Services documents
/// for CNAs (and cvelib uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// `https://cveawg-test.mitre.org/api`.
    Test,
    /// `https://cveawg.mitre.org/api`.
    Production,
}

impl Environment {
    /// `test` or `production`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "test" => Some(Self::Test),
            "production" => Some(Self::Production),
            _ => None,
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(self) -> &'static str {
        match self {
            Self::Test => TEST_BASE_URL,
            Self::Production => PRODUCTION_BASE_URL,
        }
    }
}

/// The CVE Services API key. Redacted in `Debug`; no `Display`.
#[derive(Clone, Default)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(SecretString::from(key.into()))
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }

    /// The key, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() { "ApiKey(\"\")" } else { "ApiKey([redacted])" })
    }
}

/// How to reach CVE Services and as whom.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API's base URL, such as [`TEST_BASE_URL`] (a trailing slash is ignored). `https://`,
    /// or `http://` to a loopback address (a local fake).
    pub base_url: String,
    /// The CNA's short name (`CVE-API-ORG`, and the owner of reserved IDs).
    pub org: String,
    /// The user name (`CVE-API-USER`), usually an e-mail address.
    pub user: String,
    /// The user's API key (`CVE-API-KEY`).
    pub api_key: ApiKey,
    /// Writes return what would be sent instead of sending it.
    pub dry_run: bool,
    /// Limit for one request, connection included.
    pub timeout: Duration,
}

impl Config {
    /// A configuration for `environment`, in dry run, with a 30-second timeout.
    pub fn new(environment: Environment, org: &str, user: &str, api_key: ApiKey) -> Self {
        Self {
            base_url: environment.base_url().to_owned(),
            org: org.to_owned(),
            user: user.to_owned(),
            api_key,
            dry_run: true,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Whether `org` is a plausible CVE Services short name: not empty, at most 64 characters,
/// no spaces or control characters (it goes into a header and is encoded in the query).
pub fn valid_short_name(org: &str) -> bool {
    !org.is_empty() && org.chars().count() <= 64 && !org.chars().any(|c| c.is_whitespace() || c.is_control())
}
