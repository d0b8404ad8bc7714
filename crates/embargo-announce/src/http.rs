//! The HTTP client shared by the web channels (reqwest over rustls with the ring provider, as
//! in `embargo-cve`), and the one place that turns an answer or a failure into a
//! [`ChannelError`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};

use crate::{ChannelError, ChannelKind};

/// The default limit for one request, connection included.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A checked base URL: `https://`, or `http://` to a loopback address; no query; without a
/// trailing slash.
pub(crate) fn base_url(channel: ChannelKind, url: &str) -> Result<Url, ChannelError> {
    let refuse = |why: &str| ChannelError::refused_here(channel, format!("the {channel} URL {why}"));
    let parsed = Url::parse(url.trim().trim_end_matches('/')).map_err(|e| refuse(&format!("is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        _ => return Err(refuse("must be https:// (http:// only to a loopback address)")),
    }
    if parsed.query().is_some() || parsed.cannot_be_a_base() || parsed.fragment().is_some() {
        return Err(refuse("must be a plain URL"));
    }
    Ok(parsed)
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `base` with `segments` appended as path segments.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// `url` with `query` appended (encoded).
pub(crate) fn with_query(mut url: Url, query: &[(&str, String)]) -> Url {
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    url
}

/// The HTTP client: rustls (ring provider, `webpki-roots`), no redirects (tokens travel in
/// headers), `timeout` for a whole request and at most 10 s to connect.
pub(crate) fn client(channel: ChannelKind, timeout: Duration) -> Result<reqwest::Client, ChannelError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ChannelError::refused_here(channel, format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("Embargo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ChannelError::refused_here(channel, format!("HTTP client: {e}")))
}

/// What kind of request is sent, which decides what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Changes nothing: any failure after connecting is `Temporary`.
    Read,
    /// Makes the post. A failure after connecting is `Lost`; a 5xx is `Lost` when
    /// `server_error_lost` (Slack) and `Temporary` otherwise.
    Effect { server_error_lost: bool },
}

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: String,
}

/// Sends `request` and classifies the outcome. `describe` turns an error body into the
/// service's message (for `Refused`); `secret` is scrubbed from every message.
pub(crate) async fn send(
    channel: ChannelKind,
    call: Call,
    request: RequestBuilder,
    describe: fn(&str) -> String,
    secret: &str,
) -> Result<Answer, ChannelError> {
    let result = send_inner(channel, call, request, describe).await;
    let result = result.map_err(|e| e.scrub(secret));
    match call {
        Call::Read => result.map_err(ChannelError::for_read),
        Call::Effect { .. } => result,
    }
}

async fn send_inner(
    channel: ChannelKind,
    call: Call,
    request: RequestBuilder,
    describe: fn(&str) -> String,
) -> Result<Answer, ChannelError> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Err(transport_error(channel, &error)),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = match response.text().await {
        Ok(body) => body,
        // The status arrived but not the body: for a post, what it says is unknown.
        Err(error) if status.is_success() => {
            return Err(ChannelError::Lost { channel, message: format!("{status}, then {}", describe_error(&error)) });
        }
        Err(_) => String::new(),
    };
    if status.is_success() {
        return Ok(Answer { status, body });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ChannelError::RateLimited { channel, retry_after: retry_after(&headers) });
    }
    let message = format!("{status}: {}", shorten(&describe(&body)));
    if status.is_server_error() {
        return Err(match call {
            Call::Effect { server_error_lost: true } => ChannelError::Lost { channel, message },
            _ => ChannelError::Temporary { channel, message },
        });
    }
    if status.is_client_error() {
        return Err(ChannelError::Refused {
            channel,
            status: Some(status.as_u16()),
            message: shorten(&describe(&body)),
        });
    }
    // 1xx/3xx (redirects are not followed): the post did not go where it should.
    Err(ChannelError::Refused { channel, status: Some(status.as_u16()), message })
}

/// A failure without an answer: `Temporary` when no connection was made (nothing was
/// sent), `Lost` otherwise (a read turns it into `Temporary`).
fn transport_error(channel: ChannelKind, error: &reqwest::Error) -> ChannelError {
    let message = describe_error(error);
    if error.is_builder() {
        ChannelError::refused_here(channel, message)
    } else if error.is_connect() {
        ChannelError::Temporary { channel, message }
    } else {
        ChannelError::Lost { channel, message }
    }
}

/// The error and its causes, without the URL (a Slack webhook URL is a credential).
fn describe_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_owned() } else { String::new() };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    if text.is_empty() {
        text = if error.is_connect() {
            "could not connect".into()
        } else if error.is_body() || error.is_decode() {
            "the answer's body could not be read".into()
        } else {
            "the request failed".into()
        };
    }
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.contains("://") {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How long a 429 asks to wait: `Retry-After` (seconds), or the reset instant of X's
/// `x-rate-limit-reset` / Bluesky's `ratelimit-reset` (Unix seconds) / Mastodon's
/// `X-RateLimit-Reset` (RFC 3339).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(seconds) = value("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    let now = jiff::Timestamp::now().as_second();
    let reset = match value("x-rate-limit-reset").or_else(|| value("ratelimit-reset")) {
        Some(unix) => unix.parse::<i64>().ok()?,
        None => value("x-ratelimit-reset")?.parse::<jiff::Timestamp>().ok()?.as_second(),
    };
    Some(Duration::from_secs(u64::try_from(reset - now).unwrap_or(0)))
}

/// At most 500 characters of a service's message.
pub(crate) fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= 500 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(500).collect::<String>())
    }
}

/// The message of a JSON error body: the first of `keys` that holds a string (joined with
/// `: ` when several do), or the body itself.
pub(crate) fn json_message(body: &str, keys: &[&str]) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    let parts: Vec<&str> = keys.iter().filter_map(|key| value.get(key).and_then(|v| v.as_str())).collect();
    if parts.is_empty() { body.to_owned() } else { parts.join(": ") }
}
