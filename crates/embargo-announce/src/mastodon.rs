//! Mastodon: `POST /api/v1/statuses` with an `Idempotency-Key` (Mastodon returns the status
//! already made with that key, for an hour, instead of posting again), reconciled with the
//! account's own statuses (`GET /api/v1/accounts/verify_credentials`, then
//! `GET /api/v1/accounts/:id/statuses`) looking for the marker.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, Call};
use crate::{Channel, ChannelError, ChannelKind, Outgoing, Posted, text};

/// How many pages of 40 statuses reconciling reads (the newest 200).
const PAGES: usize = 5;

/// A Mastodon account on an instance.
#[derive(Clone)]
pub struct Mastodon {
    base: Url,
    token: SecretString,
    http: reqwest::Client,
}

impl fmt::Debug for Mastodon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mastodon").field("base", &self.base.as_str()).field("token", &"[redacted]").finish()
    }
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    reblog: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
}

fn describe(body: &str) -> String {
    http::json_message(body, &["error", "error_description"])
}

impl Mastodon {
    /// A client for the account whose access token is `token` on the instance at `base_url`
    /// (`https://mastodon.example`, or `http://` to loopback), with a 30-second timeout.
    pub fn new(base_url: &str, token: SecretString) -> Result<Self, ChannelError> {
        Self::with_timeout(base_url, token, http::DEFAULT_TIMEOUT)
    }

    /// The same with another timeout for a request.
    pub fn with_timeout(base_url: &str, token: SecretString, timeout: Duration) -> Result<Self, ChannelError> {
        let base = http::base_url(ChannelKind::Mastodon, base_url)?;
        if token.expose_secret().trim().is_empty() {
            return Err(ChannelError::refused_here(ChannelKind::Mastodon, "no access token"));
        }
        Ok(Self { base, token, http: http::client(ChannelKind::Mastodon, timeout)? })
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<String, ChannelError> {
        let request = self
            .http
            .get(http::with_query(http::join(&self.base, segments), query))
            .header(AUTHORIZATION, self.bearer());
        let answer =
            http::send(ChannelKind::Mastodon, Call::Read, request, describe, self.token.expose_secret()).await?;
        Ok(answer.body)
    }

    async fn account_id(&self) -> Result<String, ChannelError> {
        let body = self.get(&["api", "v1", "accounts", "verify_credentials"], &[]).await?;
        let account: Account = serde_json::from_str(&body).map_err(|e| ChannelError::Temporary {
            channel: ChannelKind::Mastodon,
            message: format!("verify_credentials: unexpected answer: {e}"),
        })?;
        Ok(account.id)
    }
}

impl Channel for Mastodon {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Mastodon
    }

    async fn reconcile(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        let account = self.account_id().await?;
        let mut max_id: Option<String> = None;
        for _ in 0..PAGES {
            let mut query = vec![("limit", "40".to_owned())];
            if let Some(max_id) = &max_id {
                query.push(("max_id", max_id.clone()));
            }
            let body = self.get(&["api", "v1", "accounts", &account, "statuses"], &query).await?;
            let statuses: Vec<Status> = serde_json::from_str(&body).map_err(|e| ChannelError::Temporary {
                channel: ChannelKind::Mastodon,
                message: format!("statuses: unexpected answer: {e}"),
            })?;
            if let Some(found) =
                statuses.iter().find(|s| s.reblog.is_none() && text::contains_marker(&s.content, &outgoing.marker))
            {
                return Ok(Some(Posted { id: found.id.clone(), url: found.url.clone().or_else(|| found.uri.clone()) }));
            }
            match statuses.last() {
                Some(last) if statuses.len() >= 40 => max_id = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(None)
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        text::check(ChannelKind::Mastodon, &outgoing.marker, &outgoing.text)
            .map_err(|why| ChannelError::refused_here(ChannelKind::Mastodon, why))?;
        let mut request = self
            .http
            .post(http::join(&self.base, &["api", "v1", "statuses"]))
            .header(AUTHORIZATION, self.bearer())
            .json(&json!({"status": outgoing.text, "visibility": "public", "language": "en"}));
        if !outgoing.idempotency_key.is_empty() {
            request = request.header("Idempotency-Key", &outgoing.idempotency_key);
        }
        let answer = http::send(
            ChannelKind::Mastodon,
            Call::Effect { server_error_lost: false },
            request,
            describe,
            self.token.expose_secret(),
        )
        .await?;
        let status: Status = serde_json::from_str(&answer.body).map_err(|e| ChannelError::Lost {
            channel: ChannelKind::Mastodon,
            message: format!("{}: the answer is not a status: {e}", answer.status),
        })?;
        Ok(Posted { id: status.id, url: status.url.or(status.uri) })
    }

    async fn check_credentials(&self) -> Result<(), ChannelError> {
        self.account_id().await.map(|_| ())
    }
}
