//! What can go wrong posting to a channel, and what the caller may do about it.

use std::time::Duration;

use crate::ChannelKind;

/// A failed channel call. The four cases tell the caller what may have happened at the
/// service; messages never contain credentials.
///
/// | case | happened at the service? | the caller |
/// |---|---|---|
/// | `RateLimited` | no (the service answered 429) | waits `retry_after` (or its own backoff), then retries (reconciling first) |
/// | `Temporary` | no, as far as can be known (see below) | retries later, reconciling first |
/// | `Lost` | **maybe** (the request left and no usable answer came) | reconciles when [`ChannelKind::can_reconcile`]; on Slack stops and asks a person |
/// | `Refused` | no (a 4xx, or refused here before sending) | stops: the same call will be refused again |
///
/// Per channel:
/// - **Slack** (webhook): 429 → `RateLimited`; connection refused or not established →
///   `Temporary`; a timeout after connecting, a dropped connection, **any 5xx** (Slack may
///   have posted before failing), an unreadable answer → `Lost`; other 4xx (`invalid_payload`,
///   `no_service`, `channel_not_found`, …) → `Refused`. Nothing can be reconciled: after `Lost`,
///   never retry without a person.
/// - **X, Mastodon, Bluesky**: 429 → `RateLimited`; no connection → `Temporary`; 5xx →
///   `Temporary` (the service said it failed; should it have posted anyway, the retry's
///   reconcile finds it); a timeout after connecting, a dropped connection, a 2xx answer that is
///   not the documented JSON → `Lost` (reconcile, which finds the post if it happened); 4xx →
///   `Refused` with the service's message (X's duplicate-content 403 included: reconcile
///   finds the first one).
/// - **Blog** (git): the clone or fetch fails (remote unreachable) → `Temporary`; the push
///   finds the branch moved (non-fast-forward, or the remote's "cannot lock ref") → fetched,
///   rebuilt on the new head and pushed again (at most 5 times, then `Temporary`); the push is refused by the remote (a hook,
///   permissions) → `Refused`; the push fails otherwise or times out → `Lost` (reconcile:
///   the post file on the default branch).
///
/// Reads ([`crate::Channel::reconcile`], [`crate::Channel::check_credentials`]) change
/// nothing, so they never give `Lost`: a read's timeout or 5xx is `Temporary`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The service answered 429: nothing happened. Retry after `retry_after` when given
    /// (from `Retry-After`, X's `x-rate-limit-reset`, Bluesky's `ratelimit-reset`).
    #[error("{channel}: rate limited{}", retry_suffix(.retry_after))]
    RateLimited {
        /// The channel.
        channel: ChannelKind,
        /// How long the service asked to wait.
        retry_after: Option<Duration>,
    },
    /// Nothing happened as far as can be known; retry later (reconciling first).
    #[error("{channel}: temporarily unavailable: {message}")]
    Temporary {
        /// The channel.
        channel: ChannelKind,
        /// What happened (a status, a connection error).
        message: String,
    },
    /// The request was sent and its answer lost: the post may exist. Reconcile, or on a
    /// channel that cannot be reconciled (Slack) stop for a person.
    #[error("{channel}: the answer was lost, the post may have been made: {message}")]
    Lost {
        /// The channel.
        channel: ChannelKind,
        /// What happened.
        message: String,
    },
    /// Refused for good: by the service (`status` is its 4xx and `message` its own words) or
    /// here before sending (`status` is `None`: a bad configuration, a text without the
    /// marker or too long for the channel).
    #[error("{channel}: refused{}: {message}", status_suffix(.status))]
    Refused {
        /// The channel.
        channel: ChannelKind,
        /// The HTTP status, when the service answered.
        status: Option<u16>,
        /// The service's message, or why it was refused here.
        message: String,
    },
}

impl ChannelError {
    /// The channel.
    pub fn channel(&self) -> ChannelKind {
        match self {
            Self::RateLimited { channel, .. }
            | Self::Temporary { channel, .. }
            | Self::Lost { channel, .. }
            | Self::Refused { channel, .. } => *channel,
        }
    }

    /// Whether the post may exist although no answer said so (`Lost`).
    pub fn may_have_happened(&self) -> bool {
        matches!(self, Self::Lost { .. })
    }

    /// Whether trying again later may succeed without a person (`RateLimited`, `Temporary`,
    /// and `Lost` on a channel that can be reconciled).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Temporary { .. } => true,
            Self::Lost { channel, .. } => channel.can_reconcile(),
            Self::Refused { .. } => false,
        }
    }

    /// How long the service asked to wait (`RateLimited` only).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of a refusal by the service.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => *status,
            _ => None,
        }
    }

    pub(crate) fn refused_here(channel: ChannelKind, message: impl Into<String>) -> Self {
        Self::Refused { channel, status: None, message: message.into() }
    }

    /// A read's error: a read changed nothing, so a lost answer is only temporary.
    pub(crate) fn for_read(self) -> Self {
        match self {
            Self::Lost { channel, message } => Self::Temporary { channel, message },
            other => other,
        }
    }

    /// Replaces every occurrence of `secret` in the message.
    pub(crate) fn scrub(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let clean = |text: String| text.replace(secret, "[redacted]");
        match self {
            Self::Temporary { channel, message } => Self::Temporary { channel, message: clean(message) },
            Self::Lost { channel, message } => Self::Lost { channel, message: clean(message) },
            Self::Refused { channel, status, message } => Self::Refused { channel, status, message: clean(message) },
            other => other,
        }
    }
}

fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default()
}

fn status_suffix(status: &Option<u16>) -> String {
    status.map(|s| format!(" ({s})")).unwrap_or_default()
}
