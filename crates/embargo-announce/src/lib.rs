//! The announcement channels of the disclosure runbook (issue 16, ADR 25): a default text per
//! channel rendered from an advisory ([`render`]), and clients that post a text and find it
//! again ([`Channel`]): [`Slack`] (incoming webhook), [`X`] (`POST /2/tweets`), [`Mastodon`]
//! (statuses with `Idempotency-Key`), [`Bluesky`] (a record with a deterministic `rkey`) and
//! [`Blog`] (a Markdown post committed to a Hugo site's git repository and pushed). The
//! mailing-list mail is only rendered here ([`render::mail`]); sending it is the mail crate's.
//!
//! Every message carries a **marker**, the advisory's public ID (`EMB-2026-0001`): a client
//! refuses a text without it, and [`Channel::reconcile`] finds the post again by it (or, on
//! Bluesky, by the record key derived from the idempotency key). What each error means, and
//! what the caller may do next, is [`ChannelError`]'s documentation; the lead's glue follows it.
//!
//! Architecture invariant: this crate knows the services' APIs and the text formats, and
//! nothing of reports, advisories' storage or the database. Credentials (tokens, the Slack
//! webhook URL, the Bluesky app password) never print and never appear in error messages.
#![forbid(unsafe_code)]

mod blog;
mod bluesky;
mod error;
mod from_advisory;
mod http;
mod mastodon;
pub mod render;
mod slack;
pub mod text;
mod x;

use std::fmt;
use std::future::Future;

pub use blog::Blog;
pub use bluesky::{Bluesky, record_key};
pub use error::ChannelError;
pub use mastodon::Mastodon;
pub use render::{Affected, Announcement, BlogPost, Mail, Rendered};
pub use slack::Slack;
pub use x::X;

/// The channels, also the mailing-list mail that is only rendered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// A Slack incoming webhook (Block Kit JSON).
    Slack,
    /// X (formerly Twitter), API v2.
    X,
    /// A Mastodon account.
    Mastodon,
    /// A Bluesky (AT Protocol) account.
    Bluesky,
    /// A Hugo site's git repository.
    Blog,
    /// An oss-security-style mail to the mailing lists.
    Mail,
}

impl ChannelKind {
    /// Every kind, in the order a plan lists them.
    pub const ALL: [ChannelKind; 6] = [Self::Blog, Self::Slack, Self::X, Self::Mastodon, Self::Bluesky, Self::Mail];

    /// A stable lower-case code (`slack`, `x`, `mastodon`, `bluesky`, `blog`, `lists`: the
    /// names of the runbook's `[announce]` channels).
    pub fn code(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::X => "x",
            Self::Mastodon => "mastodon",
            Self::Bluesky => "bluesky",
            Self::Blog => "blog",
            Self::Mail => "lists",
        }
    }

    /// The kind of a [`ChannelKind::code`] (`mail` is also the mailing lists).
    pub fn parse(code: &str) -> Option<Self> {
        if code == "mail" {
            return Some(Self::Mail);
        }
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// Whether a post on this channel can be found again after a lost answer (see
    /// [`Channel::can_reconcile`]): all but Slack's webhook (and the mail, which is not posted
    /// here).
    pub fn can_reconcile(self) -> bool {
        !matches!(self, Self::Slack | Self::Mail)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One message to post: what [`Channel::post`] sends and [`Channel::reconcile`] looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The advisory's public ID (`EMB-2026-0001`); it must occur in `text` (as a whole word).
    pub marker: String,
    /// The channel's text as the team approved it: for Slack the webhook's JSON payload, for
    /// the blog the whole Markdown file (front matter included), otherwise the plain text.
    pub text: String,
    /// The intent's idempotency key (stable across retries of the same effect): Mastodon's
    /// `Idempotency-Key`, Bluesky's record key, the blog commit's trailer. Bluesky needs it
    /// to post; with an empty key its `reconcile` looks for the marker instead (the newest
    /// 100 posts), like X and Mastodon.
    pub idempotency_key: String,
    /// The disclosure instant: the Bluesky record's `createdAt` and the blog commit's date.
    pub at: jiff::Timestamp,
}

/// A post that was made, or found by reconciling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The service's ID: the status or tweet ID, Bluesky's `at://` URI, the blog's
    /// `<commit>:<path>`; for Slack (no ID given) `slack:<idempotency key>`.
    pub id: String,
    /// Where the public can see it, when known (Slack: never; the blog: when a site URL is
    /// configured).
    pub url: Option<String>,
}

/// A channel that posts an [`Outgoing`] text and finds it again.
///
/// The caller records an intent before [`Channel::post`], calls [`Channel::reconcile`] before
/// every attempt, and posts only when it returned `Ok(None)` — and, when
/// [`Channel::can_reconcile`] is false, only when no earlier attempt may have reached the
/// service (see [`ChannelError::Lost`]).
pub trait Channel: Send + Sync {
    /// Which channel this is.
    fn kind(&self) -> ChannelKind;

    /// Whether [`Channel::reconcile`] can see an earlier post. When false, `reconcile` always
    /// answers `Ok(None)`, which then means "cannot tell", not "not posted".
    fn can_reconcile(&self) -> bool {
        self.kind().can_reconcile()
    }

    /// Looks for the post of `outgoing` at the service: `Some` when it is there (by its marker,
    /// or on Bluesky by its record key). Changes nothing. Errors are never `Lost`.
    fn reconcile(&self, outgoing: &Outgoing) -> impl Future<Output = Result<Option<Posted>, ChannelError>> + Send;

    /// Posts `outgoing.text`. Refuses without sending when the text lacks the marker or does
    /// not fit the channel (see [`text::check`]).
    fn post(&self, outgoing: &Outgoing) -> impl Future<Output = Result<Posted, ChannelError>> + Send;

    /// A harmless call that checks the credentials (pre-flight): `Ok(())` when the service
    /// accepts them. Nothing is posted (Slack: an empty payload, which Slack refuses with
    /// `no_text` when the webhook exists; the blog: `git ls-remote`).
    fn check_credentials(&self) -> impl Future<Output = Result<(), ChannelError>> + Send;
}

/// Any configured channel, for callers that hold a list of them.
#[derive(Debug, Clone)]
pub enum AnyChannel {
    /// See [`Slack`].
    Slack(Slack),
    /// See [`X`].
    X(X),
    /// See [`Mastodon`].
    Mastodon(Mastodon),
    /// See [`Bluesky`].
    Bluesky(Bluesky),
    /// See [`Blog`].
    Blog(Blog),
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyChannel::Slack($c) => $e,
            AnyChannel::X($c) => $e,
            AnyChannel::Mastodon($c) => $e,
            AnyChannel::Bluesky($c) => $e,
            AnyChannel::Blog($c) => $e,
        }
    };
}

impl Channel for AnyChannel {
    fn kind(&self) -> ChannelKind {
        each!(self, c => c.kind())
    }

    async fn reconcile(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        each!(self, c => c.reconcile(outgoing).await)
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        each!(self, c => c.post(outgoing).await)
    }

    async fn check_credentials(&self) -> Result<(), ChannelError> {
        each!(self, c => c.check_credentials().await)
    }
}
