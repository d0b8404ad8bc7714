//! Release artifacts: what a release must publish and the check that it did (ADR 26).
//!
//! [`verify`] fetches each `SHA256SUMS` (GNU `sha256sum` format: `<hex>  <name>`, or
//! `<hex> *<name>` for binary mode, `\`-escaped names, and the BSD `SHA256 (<name>) = <hex>`
//! form), checks its detached signature (`SHA256SUMS.asc`, else `SHA256SUMS.sig`) when the
//! product has a signing key, then downloads every expected file, hashing as it streams
//! (bounded by `fixes.max_artifact_bytes`), and compares. Whatever the server sends is
//! hostile input: names are shown escaped, sizes and times are bounded, and every problem is
//! reported, not only the first.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use embargo_store::products::ProductRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PushPlan;
use crate::App;

/// The name of the checksum file beside the artifacts.
pub const SUMS: &str = "SHA256SUMS";

/// The largest `SHA256SUMS` (or signature) read.
const SUMS_LIMIT: u64 = 1024 * 1024;

/// One file a release must publish.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedArtifact {
    /// Where it must answer.
    pub url: String,
    /// Its file name, as `SHA256SUMS` lists it.
    pub name: String,
    /// The `SHA256SUMS` that lists it (beside it).
    pub sums_url: String,
    /// The version it belongs to.
    pub version: String,
}

/// The files a plan's release must publish: the product's artifact names at its artifacts
/// URL, `{version}` replaced by each pushed line's version. Empty when the product names no
/// artifacts URL or no artifacts.
#[must_use]
pub fn expected(product: &ProductRecord, plan: &PushPlan) -> Vec<ExpectedArtifact> {
    let mut out: Vec<ExpectedArtifact> = Vec::new();
    if product.artifacts_url.is_empty() {
        return out;
    }
    for line in &plan.lines {
        let mut base = product.artifacts_url.replace("{version}", &line.version);
        if !base.ends_with('/') {
            base.push('/');
        }
        for pattern in &product.artifacts {
            let name = pattern.replace("{version}", &line.version);
            let url = format!("{base}{name}");
            if !out.iter().any(|a| a.url == url) {
                out.push(ExpectedArtifact {
                    url,
                    name,
                    sums_url: format!("{base}{SUMS}"),
                    version: line.version.clone(),
                });
            }
        }
    }
    out
}

/// One verified file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedFile {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its SHA-256 (hex), as computed and as listed.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A release whose artifacts all verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Each expected file.
    pub files: Vec<VerifiedFile>,
    /// The `SHA256SUMS` files read.
    pub sums: Vec<String>,
    /// Whether their signatures were checked (a signing key is configured).
    pub signed: bool,
}

/// What is wrong with a release's artifacts. Each names the file or URL concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum ArtifactProblem {
    /// `SHA256SUMS` could not be read (status, network, too large).
    SumsUnavailable {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A line of `SHA256SUMS` is not a checksum line (the rest are still used).
    SumsMalformed {
        /// Its URL.
        url: String,
        /// The line (from 1).
        line: usize,
        /// Why.
        reason: String,
    },
    /// An expected file is not listed in its `SHA256SUMS`.
    NotListed {
        /// The file.
        name: String,
        /// The `SHA256SUMS`.
        sums_url: String,
    },
    /// An expected file did not answer 200 (or the download failed).
    Unavailable {
        /// The file.
        name: String,
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An expected file is larger than `fixes.max_artifact_bytes`.
    TooLarge {
        /// The file.
        name: String,
        /// Its URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A file's SHA-256 is not the one listed.
    Mismatch {
        /// The file.
        name: String,
        /// Its URL.
        url: String,
        /// What `SHA256SUMS` lists.
        expected: String,
        /// What was downloaded.
        found: String,
    },
    /// A signing key is configured and neither `SHA256SUMS.asc` nor `SHA256SUMS.sig` answers.
    SignatureMissing {
        /// The `SHA256SUMS`.
        sums_url: String,
    },
    /// The signature does not verify with the product's signing key.
    SignatureInvalid {
        /// The signature's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ArtifactProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SumsUnavailable { url, reason } => write!(f, "{url}: cannot read the checksums: {reason}"),
            Self::SumsMalformed { url, line, reason } => write!(f, "{url}, line {line}: {reason}"),
            Self::NotListed { name, sums_url } => write!(f, "{name:?} is not listed in {sums_url}"),
            Self::Unavailable { name, url, reason } => write!(f, "{name:?} ({url}): {reason}"),
            Self::TooLarge { name, url, limit } => {
                write!(f, "{name:?} ({url}) is larger than {limit} bytes (fixes.max_artifact_bytes)")
            }
            Self::Mismatch { name, url, expected, found } => write!(
                f,
                "{name:?} ({url}): checksum mismatch: SHA256SUMS lists {expected}, the file served is {found}"
            ),
            Self::SignatureMissing { sums_url } => {
                write!(f, "{sums_url} is not signed: neither {sums_url}.asc nor {sums_url}.sig answers")
            }
            Self::SignatureInvalid { url, reason } => write!(f, "{url}: the signature does not verify: {reason}"),
        }
    }
}

/// Parses a `SHA256SUMS`: the names with their checksums (lower-case hex), and the lines
/// that are not checksum lines (number from 1, why). Blank lines and `#` comments are
/// skipped. A name listed twice with different checksums is a problem (and not kept).
pub fn parse_sums(bytes: &[u8]) -> (BTreeMap<String, String>, Vec<(usize, String)>) {
    let mut sums: BTreeMap<String, String> = BTreeMap::new();
    let mut conflicting: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            problems.push((number, "not UTF-8 text".to_owned()));
            continue;
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok((hash, name)) => {
                let name = name.strip_prefix("./").unwrap_or(&name).to_owned();
                match sums.get(&name) {
                    Some(other) if *other != hash => {
                        problems.push((number, format!("{name:?} is listed again with another checksum")));
                        conflicting.push(name);
                    }
                    _ => {
                        sums.insert(name, hash);
                    }
                }
            }
            Err(why) => problems.push((number, why)),
        }
    }
    for name in conflicting {
        sums.remove(&name);
    }
    (sums, problems)
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_line(line: &str) -> Result<(String, String), String> {
    let shown = || line.chars().take(80).collect::<String>();
    // BSD: SHA256 (name) = hex
    if let Some(rest) = line.strip_prefix("SHA256 (")
        && let Some((name, hash)) = rest.rsplit_once(") = ")
    {
        return if is_hash(hash) {
            Ok((hash.to_ascii_lowercase(), name.to_owned()))
        } else {
            Err(format!("not a SHA-256 checksum line: {:?}", shown()))
        };
    }
    // GNU: [\]hex, a space, ' ' or '*', the name (escaped when the line starts with '\').
    let (escaped, body) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (hash, rest) = (body.get(..64).unwrap_or(""), body.get(64..).unwrap_or(""));
    if !is_hash(hash) {
        return Err(format!("not a SHA-256 checksum line (64 hexadecimal digits, then the name): {:?}", shown()));
    }
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .ok_or_else(|| format!("the checksum is not followed by two spaces or \" *\" and a name: {:?}", shown()))?;
    if name.is_empty() {
        return Err("a checksum without a name".into());
    }
    let name = if escaped {
        let mut out = String::new();
        let mut chars = name.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    other => return Err(format!("a bad escape \\{} in the name", other.unwrap_or(' '))),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        name.to_owned()
    };
    Ok((hash.to_ascii_lowercase(), name))
}

/// The HTTP client of the checks: TLS with the web's roots, at most 5 redirects, bounded
/// connect and read times.
fn client(read_timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::limited(5))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(read_timeout)
        .user_agent(concat!("embargo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

enum Fetched {
    Body(Vec<u8>),
    Status(reqwest::StatusCode),
}

enum FetchError {
    Failed(String),
    TooLarge,
}

/// GETs `url`, keeping at most `limit` bytes.
async fn fetch_small(client: &reqwest::Client, url: &str, limit: u64) -> Result<Fetched, FetchError> {
    let mut response =
        client.get(url).timeout(Duration::from_secs(60)).send().await.map_err(|e| FetchError::Failed(describe(&e)))?;
    if response.status() != reqwest::StatusCode::OK {
        return Ok(Fetched::Status(response.status()));
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Failed(describe(&e)))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body(body))
}

/// GETs `url` and hashes the body as it streams, up to `limit` bytes: (SHA-256 hex, size).
async fn fetch_hash(
    client: &reqwest::Client,
    url: &str,
    limit: u64,
    total: Duration,
) -> Result<Result<(String, u64), reqwest::StatusCode>, FetchError> {
    let mut response = client.get(url).timeout(total).send().await.map_err(|e| FetchError::Failed(describe(&e)))?;
    if response.status() != reqwest::StatusCode::OK {
        return Ok(Err(response.status()));
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge);
    }
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Failed(describe(&e)))? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(FetchError::TooLarge);
        }
        hasher.update(&chunk);
    }
    Ok(Ok((hex::encode(hasher.finalize()), size)))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else if e.is_redirect() {
        "too many redirects".into()
    } else {
        e.to_string()
    }
}

fn status_text(status: reqwest::StatusCode) -> String {
    format!("answered {status} instead of 200 OK")
}

/// Checks a release's artifacts (see the module's documentation); `signing_key` is the
/// product's armored certificate, when `SHA256SUMS` must be signed. Every problem found is
/// returned, each naming its file.
pub async fn verify(
    app: &App,
    expected: &[ExpectedArtifact],
    signing_key: Option<&str>,
) -> Result<Verified, Vec<ArtifactProblem>> {
    verify_with(app.config.fixes.max_artifact_bytes, Duration::from_secs(30), expected, signing_key).await
}

/// [`verify`] with its limits given: the largest artifact, and the longest wait for bytes.
pub async fn verify_with(
    max_bytes: u64,
    read_timeout: Duration,
    expected: &[ExpectedArtifact],
    signing_key: Option<&str>,
) -> Result<Verified, Vec<ArtifactProblem>> {
    let signing_key = signing_key.filter(|k| !k.trim().is_empty());
    let client = match client(read_timeout) {
        Ok(client) => client,
        Err(reason) => {
            return Err(expected
                .iter()
                .map(|a| ArtifactProblem::Unavailable {
                    name: a.name.clone(),
                    url: a.url.clone(),
                    reason: reason.clone(),
                })
                .collect());
        }
    };
    // The longest a whole download may take: a slow mirror still gets an hour.
    let total = Duration::from_secs(3600);
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let mut sums_read = Vec::new();
    let mut groups: Vec<(&str, Vec<&ExpectedArtifact>)> = Vec::new();
    for artifact in expected {
        match groups.iter_mut().find(|(url, _)| *url == artifact.sums_url) {
            Some((_, list)) => list.push(artifact),
            None => groups.push((&artifact.sums_url, vec![artifact])),
        }
    }
    for (sums_url, artifacts) in groups {
        let sums = match fetch_small(&client, sums_url, SUMS_LIMIT).await {
            Ok(Fetched::Body(body)) => body,
            Ok(Fetched::Status(status)) => {
                problems
                    .push(ArtifactProblem::SumsUnavailable { url: sums_url.to_owned(), reason: status_text(status) });
                continue;
            }
            Err(FetchError::TooLarge) => {
                problems.push(ArtifactProblem::SumsUnavailable {
                    url: sums_url.to_owned(),
                    reason: format!("larger than {SUMS_LIMIT} bytes"),
                });
                continue;
            }
            Err(FetchError::Failed(reason)) => {
                problems.push(ArtifactProblem::SumsUnavailable { url: sums_url.to_owned(), reason });
                continue;
            }
        };
        sums_read.push(sums_url.to_owned());
        if let Some(key) = signing_key {
            check_signature(&client, sums_url, &sums, key, &mut problems).await;
        }
        let (listed, malformed) = parse_sums(&sums);
        problems.extend(malformed.into_iter().map(|(line, reason)| ArtifactProblem::SumsMalformed {
            url: sums_url.to_owned(),
            line,
            reason,
        }));
        for artifact in artifacts {
            let Some(listed) = listed.get(&artifact.name) else {
                problems
                    .push(ArtifactProblem::NotListed { name: artifact.name.clone(), sums_url: sums_url.to_owned() });
                continue;
            };
            match fetch_hash(&client, &artifact.url, max_bytes, total).await {
                Ok(Ok((found, size))) if found == *listed => files.push(VerifiedFile {
                    name: artifact.name.clone(),
                    url: artifact.url.clone(),
                    sha256: found,
                    size,
                }),
                Ok(Ok((found, _))) => problems.push(ArtifactProblem::Mismatch {
                    name: artifact.name.clone(),
                    url: artifact.url.clone(),
                    expected: listed.clone(),
                    found,
                }),
                Ok(Err(status)) => problems.push(ArtifactProblem::Unavailable {
                    name: artifact.name.clone(),
                    url: artifact.url.clone(),
                    reason: status_text(status),
                }),
                Err(FetchError::TooLarge) => problems.push(ArtifactProblem::TooLarge {
                    name: artifact.name.clone(),
                    url: artifact.url.clone(),
                    limit: max_bytes,
                }),
                Err(FetchError::Failed(reason)) => problems.push(ArtifactProblem::Unavailable {
                    name: artifact.name.clone(),
                    url: artifact.url.clone(),
                    reason,
                }),
            }
        }
    }
    if problems.is_empty() {
        Ok(Verified { files, sums: sums_read, signed: signing_key.is_some() })
    } else {
        Err(problems)
    }
}

async fn check_signature(
    client: &reqwest::Client,
    sums_url: &str,
    sums: &[u8],
    key: &str,
    problems: &mut Vec<ArtifactProblem>,
) {
    for suffix in [".asc", ".sig"] {
        let url = format!("{sums_url}{suffix}");
        match fetch_small(client, &url, SUMS_LIMIT).await {
            Ok(Fetched::Body(signature)) => {
                match embargo_mail::openpgp::verify_detached(key, sums, &signature) {
                    Ok(true) => {}
                    Ok(false) => problems.push(ArtifactProblem::SignatureInvalid {
                        url,
                        reason: "not made by the product's signing key over this SHA256SUMS".into(),
                    }),
                    Err(e) => problems.push(ArtifactProblem::SignatureInvalid { url, reason: e.to_string() }),
                }
                return;
            }
            Ok(Fetched::Status(status)) if status == reqwest::StatusCode::NOT_FOUND => {}
            Ok(Fetched::Status(status)) => {
                problems.push(ArtifactProblem::SignatureInvalid { url, reason: status_text(status) });
                return;
            }
            Err(FetchError::TooLarge) => {
                problems
                    .push(ArtifactProblem::SignatureInvalid { url, reason: format!("larger than {SUMS_LIMIT} bytes") });
                return;
            }
            Err(FetchError::Failed(reason)) => {
                problems.push(ArtifactProblem::SignatureInvalid { url, reason });
                return;
            }
        }
    }
    problems.push(ArtifactProblem::SignatureMissing { sums_url: sums_url.to_owned() });
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn gnu_bsd_binary_marker_and_escaped_names_parse_and_hostile_lines_are_named() {
        let text = format!(
            "{A}  app-1.0.tar.gz\r\n{}  *ignored\n{A} *app-1.0.zip\n\\{A}  odd\\nname\nSHA256 (bsd.tar) = {A}\n\n\
             # comment\nnot a line \u{1b}[31m\n{A}\tapp.tab\n./x\n{A}  ./dotted\n",
            A.to_uppercase()
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe garbage\n");
        let (sums, problems) = parse_sums(&bytes);
        assert_eq!(sums.get("app-1.0.tar.gz").map(String::as_str), Some(A));
        assert_eq!(sums.get("app-1.0.zip").map(String::as_str), Some(A));
        assert_eq!(sums.get("*ignored").map(String::as_str), Some(A), "upper-case hex, name starting with '*'");
        assert_eq!(sums.get("odd\nname").map(String::as_str), Some(A));
        assert_eq!(sums.get("bsd.tar").map(String::as_str), Some(A));
        assert_eq!(sums.get("dotted").map(String::as_str), Some(A));
        let lines: Vec<usize> = problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [8, 9, 10, 12], "{problems:?}");
        // The escape sequence is shown escaped, never raw.
        assert!(problems[0].1.contains("\\u{1b}"), "{problems:?}");
        assert!(problems[3].1.contains("UTF-8"));
        // A name listed twice with two checksums is kept for neither.
        let twice = format!("{A}  a\n{}  a\n", "0".repeat(64));
        let (sums, problems) = parse_sums(twice.as_bytes());
        assert!(sums.is_empty() && problems.len() == 1, "{sums:?} {problems:?}");
    }
}
