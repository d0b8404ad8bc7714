//! Bluesky (AT Protocol XRPC): a session from the handle and an app password
//! (`com.atproto.server.createSession`), then `com.atproto.repo.createRecord` of an
//! `app.bsky.feed.post` with a **deterministic record key** ([`record_key`], a valid TID
//! derived from the idempotency key and the instant), so that reconciling is exact:
//! `com.atproto.repo.getRecord` of that key.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{self, Call};
use crate::{Channel, ChannelError, ChannelKind, Outgoing, Posted, text};

const COLLECTION: &str = "app.bsky.feed.post";
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A Bluesky account on its PDS (or the entryway, `https://bsky.social`).
#[derive(Clone)]
pub struct Bluesky {
    base: Url,
    handle: String,
    app_password: SecretString,
    http: reqwest::Client,
}

impl fmt::Debug for Bluesky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bluesky")
            .field("base", &self.base.as_str())
            .field("handle", &self.handle)
            .field("app_password", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Session {
    #[serde(rename = "accessJwt")]
    access_jwt: String,
    did: String,
    handle: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    uri: String,
}

#[derive(Debug, Deserialize)]
struct Records {
    #[serde(default)]
    records: Vec<Found>,
}

#[derive(Debug, Deserialize)]
struct Found {
    uri: String,
    #[serde(default)]
    value: Value,
}

fn describe(body: &str) -> String {
    http::json_message(body, &["error", "message"])
}

/// The record key of a post: a TID (13 characters of base32-sortable, the first of
/// `234567abcdefghij`) whose timestamp is `at`'s second plus microseconds taken from
/// SHA-256 of `idempotency_key`, and whose clock ID is 10 more bits of that hash. The same
/// key and instant always give the same record key.
pub fn record_key(idempotency_key: &str, at: jiff::Timestamp) -> String {
    let hash = Sha256::digest(idempotency_key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    let bits = u64::from_be_bytes(first);
    let seconds = u64::try_from(at.as_second()).unwrap_or(0);
    let micros = (seconds.saturating_mul(1_000_000) + (bits >> 10) % 1_000_000) & ((1 << 53) - 1);
    let tid = (micros << 10) | (bits & 0x3ff);
    (0..13).map(|i| TID_ALPHABET[((tid >> (60 - 5 * i)) & 31) as usize] as char).collect()
}

/// Link facets for the URLs of `text` (byte offsets in UTF-8), so they are clickable.
fn link_facets(text: &str) -> Vec<Value> {
    let mut facets = Vec::new();
    let mut offset = 0;
    while let Some((start, end)) = text::next_url(&text[offset..]) {
        let (start, end) = (offset + start, offset + end);
        facets.push(json!({
            "index": {"byteStart": start, "byteEnd": end},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": &text[start..end]}]
        }));
        offset = end;
    }
    facets
}

impl Bluesky {
    /// A client for `handle` with an app password, at the service `service_url`
    /// (`https://bsky.social`, or `http://` to loopback), with a 30-second timeout.
    pub fn new(service_url: &str, handle: &str, app_password: SecretString) -> Result<Self, ChannelError> {
        Self::with_timeout(service_url, handle, app_password, http::DEFAULT_TIMEOUT)
    }

    /// The same with another timeout for a request.
    pub fn with_timeout(
        service_url: &str,
        handle: &str,
        app_password: SecretString,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let base = http::base_url(ChannelKind::Bluesky, service_url)?;
        if handle.trim().is_empty() || app_password.expose_secret().is_empty() {
            return Err(ChannelError::refused_here(ChannelKind::Bluesky, "no handle or app password"));
        }
        Ok(Self {
            base,
            handle: handle.trim().trim_start_matches('@').to_owned(),
            app_password,
            http: http::client(ChannelKind::Bluesky, timeout)?,
        })
    }

    fn xrpc(&self, method: &str) -> Url {
        http::join(&self.base, &["xrpc", method])
    }

    async fn session(&self) -> Result<Session, ChannelError> {
        let request = self
            .http
            .post(self.xrpc("com.atproto.server.createSession"))
            .json(&json!({"identifier": self.handle, "password": self.app_password.expose_secret()}));
        // Creating a session changes nothing that matters here: a read.
        let answer =
            http::send(ChannelKind::Bluesky, Call::Read, request, describe, self.app_password.expose_secret()).await?;
        serde_json::from_str(&answer.body).map_err(|e| ChannelError::Temporary {
            channel: ChannelKind::Bluesky,
            message: format!("createSession: unexpected answer: {e}"),
        })
    }

    async fn find_by_marker(&self, session: &Session, marker: &str) -> Result<Option<Posted>, ChannelError> {
        let request = self
            .http
            .get(http::with_query(
                self.xrpc("com.atproto.repo.listRecords"),
                &[("repo", session.did.clone()), ("collection", COLLECTION.to_owned()), ("limit", "100".to_owned())],
            ))
            .header(AUTHORIZATION, format!("Bearer {}", session.access_jwt));
        let answer =
            http::send(ChannelKind::Bluesky, Call::Read, request, describe, self.app_password.expose_secret()).await?;
        let list: Records = serde_json::from_str(&answer.body).map_err(|e| ChannelError::Temporary {
            channel: ChannelKind::Bluesky,
            message: format!("listRecords: unexpected answer: {e}"),
        })?;
        Ok(list
            .records
            .into_iter()
            .find(|r| text::contains_marker(r.value.get("text").and_then(Value::as_str).unwrap_or_default(), marker))
            .map(|r| {
                let rkey = r.uri.rsplit('/').next().unwrap_or_default().to_owned();
                Posted { url: Some(self.web_url(session, &rkey)), id: r.uri }
            }))
    }

    fn web_url(&self, session: &Session, rkey: &str) -> String {
        let handle = if session.handle.is_empty() { &self.handle } else { &session.handle };
        format!("https://bsky.app/profile/{handle}/post/{rkey}")
    }
}

impl Channel for Bluesky {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Bluesky
    }

    /// With the idempotency key: `getRecord` of its record key (exact). Without one (an
    /// empty key): the marker in the account's newest 100 posts (`listRecords`).
    async fn reconcile(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        let session = self.session().await?;
        if outgoing.idempotency_key.is_empty() {
            return self.find_by_marker(&session, &outgoing.marker).await;
        }
        let rkey = record_key(&outgoing.idempotency_key, outgoing.at);
        let request = self
            .http
            .get(http::with_query(
                self.xrpc("com.atproto.repo.getRecord"),
                &[("repo", session.did.clone()), ("collection", COLLECTION.to_owned()), ("rkey", rkey.clone())],
            ))
            .header(AUTHORIZATION, format!("Bearer {}", session.access_jwt));
        let answer =
            match http::send(ChannelKind::Bluesky, Call::Read, request, describe, self.app_password.expose_secret())
                .await
            {
                Ok(answer) => answer,
                Err(ChannelError::Refused { status: Some(400 | 404), message, .. })
                    if message.starts_with("RecordNotFound") =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(error),
            };
        let found: Found = serde_json::from_str(&answer.body).map_err(|e| ChannelError::Temporary {
            channel: ChannelKind::Bluesky,
            message: format!("getRecord: unexpected answer: {e}"),
        })?;
        let posted_text = found.value.get("text").and_then(Value::as_str).unwrap_or_default();
        if !text::contains_marker(posted_text, &outgoing.marker) {
            return Err(ChannelError::refused_here(
                ChannelKind::Bluesky,
                format!("the record key {rkey} holds a post without the marker {}", outgoing.marker),
            ));
        }
        Ok(Some(Posted { id: found.uri, url: Some(self.web_url(&session, &rkey)) }))
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        text::check(ChannelKind::Bluesky, &outgoing.marker, &outgoing.text)
            .map_err(|why| ChannelError::refused_here(ChannelKind::Bluesky, why))?;
        if outgoing.idempotency_key.is_empty() {
            return Err(ChannelError::refused_here(
                ChannelKind::Bluesky,
                "no idempotency key (the record key derives from it)",
            ));
        }
        let session = self.session().await?;
        let rkey = record_key(&outgoing.idempotency_key, outgoing.at);
        let mut record = json!({
            "$type": COLLECTION,
            "text": outgoing.text,
            "createdAt": outgoing.at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "langs": ["en"],
        });
        let facets = link_facets(&outgoing.text);
        if !facets.is_empty() {
            record["facets"] = Value::Array(facets);
        }
        let request = self
            .http
            .post(self.xrpc("com.atproto.repo.createRecord"))
            .header(AUTHORIZATION, format!("Bearer {}", session.access_jwt))
            .json(&json!({"repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record}));
        let answer = http::send(
            ChannelKind::Bluesky,
            Call::Effect { server_error_lost: false },
            request,
            describe,
            self.app_password.expose_secret(),
        )
        .await?;
        let created: Created = serde_json::from_str(&answer.body).map_err(|e| ChannelError::Lost {
            channel: ChannelKind::Bluesky,
            message: format!("{}: the answer is not a record reference: {e}", answer.status),
        })?;
        Ok(Posted { id: created.uri, url: Some(self.web_url(&session, &rkey)) })
    }

    async fn check_credentials(&self) -> Result<(), ChannelError> {
        self.session().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_valid_deterministic_tids() {
        let at: jiff::Timestamp = "2026-12-05T14:00:00Z".parse().unwrap();
        let key = record_key("intent-42", at);
        assert_eq!(key, record_key("intent-42", at));
        assert_ne!(key, record_key("intent-43", at));
        assert_eq!(key.len(), 13);
        assert!("234567abcdefghij".contains(key.chars().next().unwrap()), "{key}");
        assert!(key.chars().all(|c| TID_ALPHABET.contains(&(c as u8))), "{key}");
        // The timestamp is the instant's second (plus under a second).
        let value =
            key.chars().fold(0u64, |v, c| (v << 5) | TID_ALPHABET.iter().position(|&a| a as char == c).unwrap() as u64);
        let micros = value >> 10;
        assert_eq!(micros / 1_000_000, at.as_second() as u64);
    }

    #[test]
    fn urls_get_link_facets_with_byte_offsets() {
        let facets = link_facets("é see https://example.org/a.");
        assert_eq!(facets.len(), 1);
        assert_eq!(facets[0]["index"]["byteStart"], 7);
        assert_eq!(facets[0]["index"]["byteEnd"], 28);
        assert_eq!(facets[0]["features"][0]["uri"], "https://example.org/a");
    }
}
