//! X (API v2): `POST /2/tweets` with an OAuth 2.0 user-context bearer token, reconciled with
//! the user's own posts (`GET /2/users/me`, then `GET /2/users/:id/tweets`) looking for the
//! marker. X has no idempotency key; it refuses an exact duplicate of a recent post (403),
//! which reconciling finds first.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, Call};
use crate::{Channel, ChannelError, ChannelKind, Outgoing, Posted, text};

/// How many pages of 100 posts reconciling reads.
const PAGES: usize = 3;

/// An X account, through API v2.
#[derive(Clone)]
pub struct X {
    base: Url,
    token: SecretString,
    http: reqwest::Client,
}

impl fmt::Debug for X {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X").field("base", &self.base.as_str()).field("token", &"[redacted]").finish()
    }
}

#[derive(Debug, Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id: String,
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Timeline {
    #[serde(default)]
    data: Vec<Tweet>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    next_token: Option<String>,
}

fn describe(body: &str) -> String {
    // Problem details (`{"title", "detail", "type"}`), or v1-style `{"errors": [{"message"}]}`.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body)
        && value.get("detail").is_none()
        && let Some(message) = value.pointer("/errors/0/message").and_then(|m| m.as_str())
    {
        return message.to_owned();
    }
    http::json_message(body, &["title", "detail"])
}

/// A post's public URL (X redirects it to the author's).
fn post_url(id: &str) -> String {
    format!("https://x.com/i/web/status/{id}")
}

impl X {
    /// A client for the user whose OAuth 2.0 user-context token is `token`, at the API base
    /// `api_url` (`https://api.x.com`, or `http://` to loopback), with a 30-second timeout.
    pub fn new(api_url: &str, token: SecretString) -> Result<Self, ChannelError> {
        Self::with_timeout(api_url, token, http::DEFAULT_TIMEOUT)
    }

    /// The same with another timeout for a request.
    pub fn with_timeout(api_url: &str, token: SecretString, timeout: Duration) -> Result<Self, ChannelError> {
        let base = http::base_url(ChannelKind::X, api_url)?;
        if token.expose_secret().trim().is_empty() {
            return Err(ChannelError::refused_here(ChannelKind::X, "no access token"));
        }
        Ok(Self { base, token, http: http::client(ChannelKind::X, timeout)? })
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<String, ChannelError> {
        let request = self
            .http
            .get(http::with_query(http::join(&self.base, segments), query))
            .header(AUTHORIZATION, self.bearer());
        Ok(http::send(ChannelKind::X, Call::Read, request, describe, self.token.expose_secret()).await?.body)
    }

    async fn me(&self) -> Result<User, ChannelError> {
        let body = self.get(&["2", "users", "me"], &[]).await?;
        let user: Data<User> = serde_json::from_str(&body).map_err(|e| ChannelError::Temporary {
            channel: ChannelKind::X,
            message: format!("users/me: unexpected answer: {e}"),
        })?;
        Ok(user.data)
    }
}

impl Channel for X {
    fn kind(&self) -> ChannelKind {
        ChannelKind::X
    }

    async fn reconcile(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        let me = self.me().await?;
        let mut token: Option<String> = None;
        for _ in 0..PAGES {
            let mut query = vec![("max_results", "100".to_owned())];
            if let Some(token) = &token {
                query.push(("pagination_token", token.clone()));
            }
            let body = self.get(&["2", "users", &me.id, "tweets"], &query).await?;
            let timeline: Timeline = serde_json::from_str(&body).map_err(|e| ChannelError::Temporary {
                channel: ChannelKind::X,
                message: format!("users/:id/tweets: unexpected answer: {e}"),
            })?;
            if let Some(found) = timeline.data.iter().find(|t| text::contains_marker(&t.text, &outgoing.marker)) {
                return Ok(Some(Posted { id: found.id.clone(), url: Some(post_url(&found.id)) }));
            }
            match timeline.meta.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        text::check(ChannelKind::X, &outgoing.marker, &outgoing.text)
            .map_err(|why| ChannelError::refused_here(ChannelKind::X, why))?;
        let request = self
            .http
            .post(http::join(&self.base, &["2", "tweets"]))
            .header(AUTHORIZATION, self.bearer())
            .json(&json!({"text": outgoing.text}));
        let answer = http::send(
            ChannelKind::X,
            Call::Effect { server_error_lost: false },
            request,
            describe,
            self.token.expose_secret(),
        )
        .await?;
        let tweet: Data<Tweet> = serde_json::from_str(&answer.body).map_err(|e| ChannelError::Lost {
            channel: ChannelKind::X,
            message: format!("{}: the answer is not a post: {e}", answer.status),
        })?;
        Ok(Posted { url: Some(post_url(&tweet.data.id)), id: tweet.data.id })
    }

    async fn check_credentials(&self) -> Result<(), ChannelError> {
        self.me().await.map(|_| ())
    }
}
