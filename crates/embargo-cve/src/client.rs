//! [`Client`]: one method per CVE Services operation, each building a [`PlannedRequest`] that
//! is either sent or, for writes in dry run, returned as it is.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::error::{Error, detail_lines};
use crate::wire::{ApiErrorBody, CveId, IdInfo, IdState, RecordResponse, Reservation};
use crate::{Config, valid_short_name};

const ORG_HEADER: &str = "CVE-API-ORG";
const USER_HEADER: &str = "CVE-API-USER";
const KEY_HEADER: &str = "CVE-API-KEY";

/// How several IDs are reserved at once (`batch_type`; the API requires it when the amount
/// is more than one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Consecutive numbers.
    Sequential,
    /// Numbers picked by the service (at most 10 at a time).
    NonSequential,
}

impl Batch {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::NonSequential => "nonsequential",
        }
    }
}

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    /// `GET`, `POST` or `PUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }
}

/// A request as it is (or would be) sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: String,
    /// The path and query under the base URL, such as `/cve-id?amount=1&cve_year=2026&short_name=example`.
    pub path: String,
    /// The headers, the API key shown as `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl fmt::Display for PlannedRequest {
    /// The request as a person reads it: the request line, the headers, then the body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {}", self.method.as_str(), self.url)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        if let Some(body) = &self.body {
            writeln!(f)?;
            writeln!(f, "{}", serde_json::to_string_pretty(body).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// What a write did: its result, or in dry run the request that was not sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Sent, and the service's answer.
    Done(T),
    /// Dry run: nothing was sent; this is what would have been.
    DryRun(PlannedRequest),
}

impl<T> Outcome<T> {
    /// The result, if the request was sent.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(value) => Some(value),
            Self::DryRun(_) => None,
        }
    }

    /// The unsent request, in dry run.
    pub fn dry_run(&self) -> Option<&PlannedRequest> {
        match self {
            Self::Done(_) => None,
            Self::DryRun(request) => Some(request),
        }
    }
}

/// A CVE Services client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<Config>,
    base: Url,
    http: reqwest::Client,
}

impl Client {
    /// Checks `config` and prepares the HTTP client (rustls with the Mozilla roots of
    /// `webpki-roots`, the ring provider, no redirects).
    pub fn new(config: Config) -> Result<Self, Error> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|e| Error::Config(format!("base URL {:?}: {e}", config.base_url)))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            _ => {
                return Err(Error::Config(format!(
                    "base URL {:?} must be https:// (http:// only to a loopback address)",
                    config.base_url
                )));
            }
        }
        if base.query().is_some() || base.cannot_be_a_base() {
            return Err(Error::Config(format!("base URL {:?} must be a plain URL", config.base_url)));
        }
        if !valid_short_name(&config.org) {
            return Err(Error::Config("the organisation short name is missing or malformed".into()));
        }
        if config.user.trim().is_empty() || config.user.chars().any(char::is_control) {
            return Err(Error::Config("the user name is missing or malformed".into()));
        }
        if config.api_key.is_empty() && !config.dry_run {
            return Err(Error::Config("no API key (one is needed unless in dry run)".into()));
        }
        if HeaderValue::from_str(config.api_key.expose()).is_err() {
            return Err(Error::Config("the API key has characters a header cannot carry".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // The key travels in a custom header, which reqwest would not strip on a
            // redirect to another host: follow none.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self { config: Arc::new(config), base, http })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reserves `amount` IDs for `year` for the configured organisation:
    /// `POST /cve-id?amount=N&cve_year=YYYY&short_name=ORG[&batch_type=…]` (`batch_type` only
    /// when `amount` is more than one). A 206 answer (the year's range ran out) is a
    /// [`Reservation`] with `partial` set.
    pub async fn reserve(&self, amount: u32, year: u16, batch: Batch) -> Result<Outcome<Reservation>, Error> {
        if amount == 0 {
            return Err(Error::Invalid("the amount of IDs to reserve must be at least 1".into()));
        }
        if !(1999..=9999).contains(&year) {
            return Err(Error::Invalid(format!("cannot reserve IDs for the year {year}")));
        }
        let mut query = vec![
            ("amount", amount.to_string()),
            ("cve_year", year.to_string()),
            ("short_name", self.config.org.clone()),
        ];
        if amount > 1 {
            query.push(("batch_type", batch.as_str().to_owned()));
        }
        let request = self.plan(Method::Post, &["cve-id"], &query, None);
        if self.config.dry_run {
            return Ok(Outcome::DryRun(request));
        }
        let (status, body) = self.send(&request).await?;
        let partial = status == StatusCode::PARTIAL_CONTENT;
        Reservation::from_json(&body, partial)
            .map(Outcome::Done)
            .map_err(|message| self.response_error(&request, message))
    }

    /// The state of one ID: `GET /cve-id/{id}`. Sent even in dry run (it changes nothing);
    /// without an API key it goes out unauthenticated and the service answers with less.
    pub async fn get_id(&self, id: &CveId) -> Result<IdInfo, Error> {
        let request = self.plan(Method::Get, &["cve-id", id.as_str()], &[], None);
        let (_, body) = self.send(&request).await?;
        serde_json::from_value(body).map_err(|e| self.response_error(&request, e.to_string()))
    }

    /// The organisation's IDs of `year` in `state`: `GET /cve-id?state=…&cve_id_year=…`,
    /// every page (at most 50). Sent even in dry run (it changes nothing). Used to reconcile
    /// a reservation whose answer was lost.
    pub async fn list_ids(&self, state: IdState, year: u16) -> Result<Vec<IdInfo>, Error> {
        let mut ids = Vec::new();
        for page in 1..=50u32 {
            let mut query = vec![("state", state.as_str().to_owned()), ("cve_id_year", year.to_string())];
            if page > 1 {
                query.push(("page", page.to_string()));
            }
            let request = self.plan(Method::Get, &["cve-id"], &query, None);
            let (_, body) = self.send(&request).await?;
            let list: IdList =
                serde_json::from_value(body).map_err(|e| self.response_error(&request, e.to_string()))?;
            ids.extend(list.cve_ids);
            if list.next_page.is_none() {
                return Ok(ids);
            }
        }
        Ok(ids)
    }

    /// Publishes the record of a reserved ID: `POST /cve/{id}/cna` with
    /// `{"cnaContainer": container}`. The service sets `providerMetadata`, `datePublished`
    /// and `assignerShortName` itself.
    pub async fn publish(&self, id: &CveId, container: &Value) -> Result<Outcome<RecordResponse>, Error> {
        self.write_record(Method::Post, id, "cna", json!({"cnaContainer": container})).await
    }

    /// Replaces the CNA container of an existing record (published, or rejected to publish
    /// it again): `PUT /cve/{id}/cna`.
    pub async fn update(&self, id: &CveId, container: &Value) -> Result<Outcome<RecordResponse>, Error> {
        self.write_record(Method::Put, id, "cna", json!({"cnaContainer": container})).await
    }

    /// Rejects an ID that has no record yet: `POST /cve/{id}/reject` with
    /// `{"cnaContainer": {"rejectedReasons": [{"lang": "en", "value": reason}], "replacedBy": […]}}`
    /// (`replacedBy` only when given).
    pub async fn reject(
        &self,
        id: &CveId,
        reason: &str,
        replaced_by: &[CveId],
    ) -> Result<Outcome<RecordResponse>, Error> {
        let body = rejection_body(reason, replaced_by)?;
        self.write_record(Method::Post, id, "reject", body).await
    }

    /// Turns an existing record (published or already rejected) into a rejected one:
    /// `PUT /cve/{id}/reject`, same body as [`Client::reject`].
    pub async fn reject_existing(
        &self,
        id: &CveId,
        reason: &str,
        replaced_by: &[CveId],
    ) -> Result<Outcome<RecordResponse>, Error> {
        let body = rejection_body(reason, replaced_by)?;
        self.write_record(Method::Put, id, "reject", body).await
    }

    async fn write_record(
        &self,
        method: Method,
        id: &CveId,
        what: &str,
        body: Value,
    ) -> Result<Outcome<RecordResponse>, Error> {
        let request = self.plan(method, &["cve", id.as_str(), what], &[], Some(body));
        if self.config.dry_run {
            return Ok(Outcome::DryRun(request));
        }
        let (_, body) = self.send(&request).await?;
        RecordResponse::from_json(&body).map(Outcome::Done).map_err(|message| self.response_error(&request, message))
    }

    /// The request for `segments` under the base URL, with `query` encoded.
    fn plan(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<Value>) -> PlannedRequest {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new").pop_if_empty().extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let base_path = self.base.path().trim_end_matches('/');
        let full_path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let path = full_path.strip_prefix(base_path).unwrap_or(&full_path).to_owned();
        let mut headers = vec![(ORG_HEADER.to_owned(), self.config.org.clone())];
        headers.push((USER_HEADER.to_owned(), self.config.user.clone()));
        let key = if self.config.api_key.is_empty() { "(none)" } else { "[redacted]" };
        headers.push((KEY_HEADER.to_owned(), key.to_owned()));
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        PlannedRequest { method, url: url.to_string(), path, headers, body }
    }

    /// Sends `request` and returns a 2xx answer's status and JSON body; anything else is an
    /// [`Error`], scrubbed of the key.
    async fn send(&self, request: &PlannedRequest) -> Result<(StatusCode, Value), Error> {
        let result = self.send_unscrubbed(request).await;
        result.map_err(|e| e.scrub(self.config.api_key.expose()))
    }

    async fn send_unscrubbed(&self, request: &PlannedRequest) -> Result<(StatusCode, Value), Error> {
        let operation = operation(request);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let mut builder = self.http.request(method, &request.url).headers(self.headers()?);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        tracing::info!(cve.operation = %operation, "calling CVE Services");
        let response = builder.send().await.map_err(|e| transport_error(&operation, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| transport_error(&operation, &e))?;
        if status.is_success() {
            let body = serde_json::from_str(&text).map_err(|e| Error::Response {
                operation: operation.clone(),
                message: format!("{status}: the body is not JSON ({e})"),
            })?;
            return Ok((status, body));
        }
        let api: ApiErrorBody = serde_json::from_str(&text).unwrap_or_default();
        let code =
            api.error.unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_uppercase().replace(' ', "_"));
        let message = api.message.unwrap_or_else(|| excerpt(&text));
        let details = detail_lines(api.details.as_ref());
        let number = status.as_u16();
        Err(if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Error::RetryLater { operation, status: Some(number), message: format!("{number} {code}: {message}") }
        } else if status == StatusCode::UNAUTHORIZED {
            Error::Unauthorized {
                operation,
                status: number,
                code,
                message,
                org: self.config.org.clone(),
                user: self.config.user.clone(),
            }
        } else if status.is_client_error() {
            Error::Refused { operation, status: number, code, message, details }
        } else {
            Error::Response { operation, message: format!("unexpected status {status}") }
        })
    }

    /// The credential headers (without a key when none is set: a dry run's reads), the key
    /// marked sensitive so that it is never shown in debugging output.
    fn headers(&self) -> Result<HeaderMap, Error> {
        let value = |text: &str, what: &str| {
            HeaderValue::from_str(text).map_err(|_| Error::Config(format!("the {what} cannot be sent as a header")))
        };
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Embargo/", env!("CARGO_PKG_VERSION"))));
        if !self.config.api_key.is_empty() {
            headers.insert(HeaderName::from_static("cve-api-org"), value(&self.config.org, "organisation")?);
            headers.insert(HeaderName::from_static("cve-api-user"), value(&self.config.user, "user name")?);
            let mut key = value(self.config.api_key.expose(), "API key")?;
            key.set_sensitive(true);
            headers.insert(HeaderName::from_static("cve-api-key"), key);
        }
        Ok(headers)
    }

    fn response_error(&self, request: &PlannedRequest, message: String) -> Error {
        Error::Response { operation: operation(request), message }.scrub(self.config.api_key.expose())
    }
}

/// A page of `GET /cve-id` (`list-cve-ids-response.json`).
#[derive(serde::Deserialize)]
struct IdList {
    #[serde(default)]
    cve_ids: Vec<IdInfo>,
    #[serde(default, rename = "nextPage")]
    next_page: Option<u32>,
}

/// The body of a rejection.
fn rejection_body(reason: &str, replaced_by: &[CveId]) -> Result<Value, Error> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Invalid("a rejection needs a reason".into()));
    }
    let mut container = json!({"rejectedReasons": [{"lang": "en", "value": reason}]});
    if !replaced_by.is_empty() {
        container["replacedBy"] = json!(replaced_by.iter().map(CveId::as_str).collect::<Vec<_>>());
    }
    Ok(json!({"cnaContainer": container}))
}

/// `POST /cve-id`: the method and the path without the query.
fn operation(request: &PlannedRequest) -> String {
    let path = request.path.split('?').next().unwrap_or_default();
    format!("{} {path}", request.method.as_str())
}

fn transport_error(operation: &str, error: &reqwest::Error) -> Error {
    let what = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    // The URL holds no secret, but the chain of causes is what helps.
    let mut message = what;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Error::RetryLater { operation: operation.to_owned(), status: None, message }
}

/// The start of a non-JSON error body.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() { format!("{short}…") } else { short }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}
