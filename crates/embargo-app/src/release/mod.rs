//! The disclosure runbook's "merge and push" and "binaries" steps (issue 16, ADR 26).
//!
//! * [`push`]: a [`PushPlan`] made from a report's private fix repository: per affected
//!   release line with fix commits, the public branch, the public head it must still be (the
//!   fix branch's base), the fix head to fast-forward it to (byte for byte the commits whose
//!   `format-patch` series partners received, [`verify_identical`]) and the release tag, an
//!   annotated tag object built deterministically in the private repository. [`push()`] is one
//!   `git push --atomic` with a lease on every branch and tag; [`reconcile`] reads the public
//!   repository (`git ls-remote`) to tell whether a push happened; [`preflight`] lists what
//!   would stop it.
//! * [`artifacts`]: the files a release must publish ([`expected`]) and their verification
//!   ([`verify`]): every URL answers 200, its SHA-256 matches the published `SHA256SUMS`,
//!   every file is listed, and the signature of `SHA256SUMS` verifies when the product has a
//!   signing key.
//! * [`build`]: the product's release build ([`trigger`]: the release command in the sandbox
//!   on a checkout of the pushed tag, its `dist/` published into the artifacts directory,
//!   and/or a signed webhook to an external CI) and [`wait_for_artifacts`].
//!
//! None of these checks a permission or writes the audit trail of the step: the disclosure
//! runbook does, when planning and approving and in the intent that carries each step out
//! (ADR 14). They only read the store, and the git repositories and services they name.
//! Objects flow from the private repository to the public one here and nowhere else (ADR 19).

pub mod artifacts;
pub mod build;
pub mod push;

use embargo_domain::Actor;
use embargo_store::products::ProductRecord;
use serde::Serialize;

pub use self::artifacts::{ArtifactProblem, ExpectedArtifact, Verified, VerifiedFile, expected, verify};
pub use self::build::{BuildLog, TriggerOptions, Triggered, build_log, trigger, trigger_with, wait_for_artifacts};
pub use self::push::{
    Identical, LinePush, PushPlan, PushState, preflight, prepare, push, reconcile, rehearse, verify_identical,
};

use crate::authz::{self, Permission};
use crate::jobs::JobError;
use crate::{App, AppError, audit};

/// Why a release step failed, by what a retry may do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Nothing happened, or what happened can be read back: the network, a lock, a
    /// service's 429 or 5xx, the database busy. Reconcile, then try again later.
    #[error("temporary: {0}")]
    Temporary(String),
    /// Trying again will not help: a lease refused (a public head moved since the plan), a
    /// command that failed, a setting missing, a refusal. Stop and ask a person.
    #[error("{0}")]
    Permanent(String),
    /// A request went out and its answer was lost (a webhook's timeout): whether it arrived
    /// cannot be read back. Do not send it again without a person (verifying the artifacts
    /// may show that it did arrive).
    #[error("answer lost: {0}")]
    Lost(String),
}

impl ReleaseError {
    /// Whether a later attempt (after reconciling) may succeed.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Temporary(_))
    }
}

impl From<AppError> for ReleaseError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Unavailable(m) => Self::Temporary(m),
            AppError::TooMany(m) => Self::Temporary(m),
            AppError::Throttled { message, .. } => Self::Temporary(message),
            other => Self::Permanent(other.to_string()),
        }
    }
}

impl From<embargo_store::StoreError> for ReleaseError {
    fn from(err: embargo_store::StoreError) -> Self {
        AppError::from(err).into()
    }
}

impl From<ReleaseError> for JobError {
    fn from(err: ReleaseError) -> Self {
        match err {
            ReleaseError::Temporary(m) => JobError::Retry(m),
            other => JobError::Permanent(other.to_string()),
        }
    }
}

impl From<ReleaseError> for AppError {
    fn from(err: ReleaseError) -> Self {
        match err {
            ReleaseError::Temporary(m) => AppError::Unavailable(m),
            ReleaseError::Permanent(m) => AppError::Conflict(m),
            ReleaseError::Lost(m) => AppError::Conflict(format!("answer lost: {m}")),
        }
    }
}

/// The default tag format.
pub const DEFAULT_TAG_FORMAT: &str = "v{version}";

/// The product a plan releases (its release settings).
pub async fn product_of(app: &App, plan: &PushPlan) -> Result<ProductRecord, AppError> {
    let mut tx = app.store.snapshot().await?;
    let product = embargo_store::products::list(&mut tx).await?.into_iter().find(|p| p.name == plan.product);
    tx.rollback().await?;
    product.ok_or_else(|| AppError::NotFound(format!("product {}", plan.product)))
}

/// The tag format of a product (`v{version}` when not set).
#[must_use]
pub fn tag_format(product: &ProductRecord) -> &str {
    if product.tag_format.is_empty() { DEFAULT_TAG_FORMAT } else { &product.tag_format }
}

/// The tag name of `version` in `format`; refused when it is not a valid git tag name.
pub fn tag_name(format: &str, version: &str) -> Result<String, AppError> {
    let name = format.replace("{version}", version);
    check_ref_name(&name).map_err(|why| {
        AppError::Invalid(format!("the tag {name:?} (tag format {format:?}, version {version:?}) {why}"))
    })?;
    Ok(name)
}

/// git's rules for a reference name (`git check-ref-format`), for a tag name.
fn check_ref_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 200 {
        return Err("must have 1 to 200 characters");
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\{}".contains(c)) {
        return Err("may not hold spaces, control characters, braces or any of ~^:?*[\\");
    }
    if name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name == "@"
        || name.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err("is not a valid git reference name");
    }
    Ok(())
}

/// A change to a product's release settings: `None` keeps a value, an empty one clears it.
#[derive(Debug, Clone, Default)]
pub struct ReleaseChange {
    /// Where the release's files and `SHA256SUMS` appear (`https://...`, may hold
    /// `{version}`; `http://` only to a loopback address).
    pub artifacts_url: Option<String>,
    /// The expected file names, comma-separated (may hold `{version}`).
    pub artifacts: Option<String>,
    /// A local directory served at the artifacts URL (absolute, may hold `{version}`) where
    /// the release command's `dist/` files are published.
    pub artifacts_dir: Option<String>,
    /// The release command (`sh -c`, in the sandbox, in a checkout of the pushed tag).
    pub release_command: Option<String>,
    /// The external CI's URL for a signed `{product, line, tag, commit}` per release.
    pub release_webhook: Option<String>,
    /// The tag format (must hold `{version}`; empty: `v{version}`).
    pub tag_format: Option<String>,
    /// An armored OpenPGP certificate whose key signs `SHA256SUMS`.
    pub signing_key: Option<String>,
}

impl ReleaseChange {
    /// Whether it changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.artifacts_url.is_none()
            && self.artifacts.is_none()
            && self.artifacts_dir.is_none()
            && self.release_command.is_none()
            && self.release_webhook.is_none()
            && self.tag_format.is_none()
            && self.signing_key.is_none()
    }
}

/// A product's release settings as `product list --json` and `product show` print them
/// (the signing key by its fingerprint).
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    /// Where the release's files and `SHA256SUMS` appear ('' for none).
    pub artifacts_url: String,
    /// The expected file names.
    pub artifacts: Vec<String>,
    /// Where the release command's files are published ('' for none).
    pub artifacts_dir: String,
    /// The release command ('' for none).
    pub release_command: String,
    /// The release webhook ('' for none).
    pub release_webhook: String,
    /// The tag format in effect.
    pub tag_format: String,
    /// The fingerprint of the key that signs `SHA256SUMS` ('' for none).
    pub signing_key_fingerprint: String,
}

impl ReleaseView {
    /// The view of a product's settings.
    #[must_use]
    pub fn of(product: &ProductRecord) -> Self {
        Self {
            artifacts_url: product.artifacts_url.clone(),
            artifacts: product.artifacts.clone(),
            artifacts_dir: product.artifacts_dir.clone(),
            release_command: product.release_command.clone(),
            release_webhook: product.release_webhook.clone(),
            tag_format: tag_format(product).to_owned(),
            signing_key_fingerprint: if product.signing_key.is_empty() {
                String::new()
            } else {
                embargo_mail::openpgp::signing_certificate_fingerprint(&product.signing_key).unwrap_or_default()
            },
        }
    }
}

fn no_controls(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Only `{version}` may be substituted.
fn placeholders_ok(value: &str) -> bool {
    value.replace("{version}", "").chars().all(|c| c != '{' && c != '}')
}

/// Whether `url` is `https://`, or `http://` to a loopback address.
pub(crate) fn allowed_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sets a product's release settings (admins; audited).
pub async fn configure(app: &App, actor: &Actor, product: i64, change: &ReleaseChange) -> Result<(), AppError> {
    let trim = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_owned);
    let artifacts_url = trim(&change.artifacts_url);
    if let Some(url) = &artifacts_url
        && !url.is_empty()
        && !(allowed_url(url) && no_controls(url) && url.len() <= 500 && placeholders_ok(url))
    {
        return Err(AppError::Invalid(
            "the artifacts URL is an https:// URL (http:// only to a loopback address) of at most 500 characters; \
             {version} is replaced by the release's version"
                .into(),
        ));
    }
    let artifacts = match &change.artifacts {
        None => None,
        Some(list) => {
            let mut names: Vec<String> = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let plain = name.replace("{version}", "1");
                if name.len() > 200
                    || !no_controls(name)
                    || !placeholders_ok(name)
                    || plain.contains(['/', '\\', '?', '#', '%'])
                    || plain.starts_with('.')
                    || plain.starts_with("SHA256SUMS")
                {
                    return Err(AppError::Invalid(format!(
                        "artifact {name:?}: a file name of at most 200 characters, without '/', spaces or a \
                         leading '.', not SHA256SUMS; {{version}} is replaced by the release's version"
                    )));
                }
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            if names.len() > 100 {
                return Err(AppError::Invalid("at most 100 artifacts".into()));
            }
            Some(names)
        }
    };
    let artifacts_dir = trim(&change.artifacts_dir);
    if let Some(dir) = &artifacts_dir
        && !dir.is_empty()
        && !(dir.starts_with('/') && !dir.chars().any(char::is_control) && dir.len() <= 500 && placeholders_ok(dir))
    {
        return Err(AppError::Invalid(
            "the artifacts directory is an absolute path (may hold {version}) of at most 500 characters".into(),
        ));
    }
    let release_command = trim(&change.release_command);
    if let Some(command) = &release_command
        && (command.len() > 4000 || command.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    {
        return Err(AppError::Invalid("the release command is one shell command line of at most 4000 bytes".into()));
    }
    let release_webhook = trim(&change.release_webhook);
    if let Some(url) = &release_webhook
        && !url.is_empty()
    {
        if !((url.starts_with("https://") || url.starts_with("http://")) && no_controls(url) && url.len() <= 500) {
            return Err(AppError::Invalid("the release webhook is an http(s):// URL of at most 500 characters".into()));
        }
        if app.config.fixes.release_webhook_secret.expose().len() < 32 {
            return Err(AppError::Invalid(
                "a release webhook is signed with fixes.release_webhook_secret: set it first (at least 32 characters)"
                    .into(),
            ));
        }
    }
    let tag_format = trim(&change.tag_format);
    if let Some(format) = &tag_format
        && !format.is_empty()
    {
        if !format.contains("{version}") || !placeholders_ok(format) {
            return Err(AppError::Invalid(format!(
                "the tag format {format:?} must hold {{version}} (as in v{{version}})"
            )));
        }
        tag_name(format, "1.0.0")?;
    }
    let signing_key = change.signing_key.as_deref().map(str::trim);
    if let Some(key) = signing_key
        && !key.is_empty()
    {
        embargo_mail::openpgp::signing_certificate_fingerprint(key)
            .map_err(|e| AppError::Invalid(format!("the signing key is not an OpenPGP certificate: {e}")))?;
    }

    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    let mut record = embargo_store::products::list(&mut tx)
        .await?
        .into_iter()
        .find(|p| p.id == product)
        .ok_or_else(|| AppError::NotFound(format!("product {product}")))?;
    let mut changed = Vec::new();
    let mut set = |field: &mut String, value: Option<String>, name: &'static str| {
        if let Some(value) = value {
            *field = value;
            changed.push(name);
        }
    };
    set(&mut record.artifacts_url, artifacts_url, "artifacts_url");
    set(&mut record.artifacts_dir, artifacts_dir, "artifacts_dir");
    set(&mut record.release_command, release_command, "release_command");
    set(&mut record.release_webhook, release_webhook, "release_webhook");
    set(&mut record.tag_format, tag_format, "tag_format");
    set(&mut record.signing_key, signing_key.map(str::to_owned), "signing_key");
    if let Some(names) = artifacts {
        record.artifacts = names;
        changed.push("artifacts");
    }
    embargo_store::products::set_release(&mut tx, &record).await?;
    audit::record(&mut tx, app, actor, "product.release", &format!("product:{product}"), &changed.join(",")).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_follow_git_rules_and_urls_are_https_or_loopback() {
        assert_eq!(tag_name("v{version}", "1.2.3").unwrap(), "v1.2.3");
        assert_eq!(tag_name("release/{version}", "1.2.3").unwrap(), "release/1.2.3");
        for bad in ["v{version}.lock", "-{version}", "v{version}..", "v {version}", "v{version}^", "v{version}/"] {
            assert!(tag_name(bad, "1.2.3").is_err(), "{bad}");
        }
        assert!(tag_name("v{version}", "1..2").is_err());
        assert!(allowed_url("https://example.org/r/{version}/"));
        assert!(allowed_url("http://127.0.0.1:8080/r/"));
        assert!(allowed_url("http://[::1]:80/r/"));
        assert!(allowed_url("http://localhost/r/"));
        assert!(!allowed_url("http://example.org/r/"));
        assert!(!allowed_url("http://127.0.0.1.example.org/r/"));
        assert!(!allowed_url("ftp://127.0.0.1/"));
    }
}
