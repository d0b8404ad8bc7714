//! Slack: an incoming webhook (`POST` of the JSON payload to the webhook's URL; the answer is
//! the text `ok`). A webhook post has no ID and cannot be looked up, so a lost answer cannot
//! be reconciled: it is `Lost`, and the caller stops for a person.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};

use crate::http::{self, Call};
use crate::{Channel, ChannelError, ChannelKind, Outgoing, Posted, text};

/// A Slack incoming webhook. The URL is a credential: it never prints.
#[derive(Clone)]
pub struct Slack {
    webhook_url: SecretString,
    url: Url,
    http: reqwest::Client,
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slack").field("webhook_url", &"[redacted]").finish()
    }
}

impl Slack {
    /// A client for the webhook at `webhook_url` (`https://hooks.slack.com/services/…`, or
    /// `http://` to loopback), with a 30-second timeout.
    pub fn new(webhook_url: SecretString) -> Result<Self, ChannelError> {
        Self::with_timeout(webhook_url, http::DEFAULT_TIMEOUT)
    }

    /// The same with another timeout for a request.
    pub fn with_timeout(webhook_url: SecretString, timeout: Duration) -> Result<Self, ChannelError> {
        let url = http::base_url(ChannelKind::Slack, webhook_url.expose_secret())
            .map_err(|e| e.scrub(webhook_url.expose_secret()))?;
        Ok(Self { url, http: http::client(ChannelKind::Slack, timeout)?, webhook_url })
    }
}

fn describe(body: &str) -> String {
    // Slack answers errors as plain text (`invalid_payload`, `no_service`, …).
    body.to_owned()
}

impl Channel for Slack {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }

    /// Always `Ok(None)`: a webhook post cannot be looked up ("cannot tell").
    async fn reconcile(&self, _outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        Ok(None)
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        text::check(ChannelKind::Slack, &outgoing.marker, &outgoing.text)
            .map_err(|why| ChannelError::refused_here(ChannelKind::Slack, why))?;
        let request =
            self.http.post(self.url.clone()).header(CONTENT_TYPE, "application/json").body(outgoing.text.clone());
        let answer = http::send(
            ChannelKind::Slack,
            Call::Effect { server_error_lost: true },
            request,
            describe,
            self.webhook_url.expose_secret(),
        )
        .await?;
        if answer.body.trim() != "ok" {
            // A 2xx that is not Slack's answer: something posted, or not.
            return Err(ChannelError::Lost {
                channel: ChannelKind::Slack,
                message: format!("{}: unexpected answer {:?}", answer.status, http::shorten(&answer.body)),
            });
        }
        Ok(Posted { id: format!("slack:{}", outgoing.idempotency_key), url: None })
    }

    /// Posts an empty payload (`{}`), which Slack refuses without posting anything: `400
    /// no_text` means the webhook exists; `no_service`, `invalid_token`,
    /// `channel_not_found`, … (404, 403) mean it does not work.
    async fn check_credentials(&self) -> Result<(), ChannelError> {
        let request = self.http.post(self.url.clone()).header(CONTENT_TYPE, "application/json").body("{}");
        match http::send(ChannelKind::Slack, Call::Read, request, describe, self.webhook_url.expose_secret()).await {
            Err(ChannelError::Refused { status: Some(400), message, .. }) if message.trim() == "no_text" => Ok(()),
            Err(error) => Err(error),
            Ok(answer) => Err(ChannelError::Temporary {
                channel: ChannelKind::Slack,
                message: format!("{}: unexpected answer to an empty payload", answer.status),
            }),
        }
    }
}
