//! Single sign-on with OpenID Connect (ADR 29).
//!
//! A sign-in starts here ([`begin_sign_in`], [`begin_link`], [`begin_invitation`]): the
//! provider's authorization URL is made (`embargo_oidc`: code flow, PKCE S256, `state`,
//! `nonce`), and the flow is stored with the `state` hashed, the nonce and PKCE verifier
//! sealed, what it is for, and the hash of a random value the browser keeps in a cookie,
//! for ten minutes. The callback ([`finish`]) takes the flow once (a replayed callback
//! finds it used), checks it belongs to this browser, exchanges the code and validates the
//! ID token, then acts on the (issuer, subject) it names:
//!
//! * sign-in: the account linked to that identity, if any and enabled. An identity no
//!   account is linked to is refused, whatever its e-mail address: an address at the
//!   provider proves nothing here, and accounts are never made or matched by it.
//! * link: a signed-in person links the identity to their own account (from the account
//!   page); audited. An identity linked to another account is refused.
//! * invitation: a person invited (fix developer or partner contact) accepts by linking the
//!   identity instead of choosing a password.
//!
//! The second factor: a sign-in through the provider counts as the password step. An
//! account with TOTP (or every account under `web.require_totp`) still enters its code,
//! unless `oidc.trust_provider_mfa` is on and the ID token's `amr`/`acr` prove a second
//! factor at the provider. A disabled account never signs in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use embargo_domain::{Actor, Role, Timestamp, UserId};
use embargo_store::oidc as store;
use embargo_store::sessions::{self as store_sessions, Stage};
use embargo_store::users;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::sessions::Session;
use crate::{App, AppError, audit};

/// How long a started sign-in may take at the provider.
pub const FLOW_MINUTES: i64 = 10;
/// The discovery document (and the keys) are read again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The path the provider sends people back to, under `public_url`.
pub const CALLBACK_PATH: &str = "/login/oidc/callback";

/// Which invitation is accepted through single sign-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationKind {
    /// A fix developer's (`/invitations/{token}`).
    Fix,
    /// A partner contact's (`/partner/welcome/{token}`).
    Partner,
}

impl InvitationKind {
    fn code(self) -> &'static str {
        match self {
            InvitationKind::Fix => "fix",
            InvitationKind::Partner => "partner",
        }
    }
}

/// A started sign-in: send the browser to `url` and give it `browser` in a cookie.
#[derive(Debug, Clone)]
pub struct Started {
    /// The provider's authorization URL.
    pub url: String,
    /// The value of the cookie that binds the flow to this browser.
    pub browser: String,
}

/// What the callback did.
#[derive(Debug, Clone)]
pub enum Finished {
    /// A session started (full, or waiting for the second factor).
    SignedIn {
        /// The new session's cookie value.
        token: String,
        /// Whether the second factor is still needed.
        needs_totp: bool,
        /// Whether the account has no TOTP yet and must set it up now.
        must_enrol: bool,
        /// Where to go afterwards (as asked when it started; the web layer checks it).
        next: Option<String>,
        /// The account's role (for where it lands).
        role: Role,
    },
    /// The identity was linked to the signed-in account.
    Linked,
}

/// Whether single sign-on is configured, and the button's name.
pub fn display_name(app: &App) -> Option<&str> {
    app.config.oidc.enabled().then_some(app.config.oidc.display_name.as_str())
}

/// The redirect URI to register at the provider.
pub fn redirect_uri(app: &App) -> String {
    format!("{}{CALLBACK_PATH}", app.config.base_url())
}

fn not_configured() -> AppError {
    AppError::NotFound("single sign-on (it is not configured)".into())
}

/// The discovered provider (discovered again after an hour, or after a failure).
async fn provider(app: &App) -> Result<Arc<embargo_oidc::Provider>, AppError> {
    let config = &app.config.oidc;
    if !config.enabled() {
        return Err(not_configured());
    }
    let mut cached = app.oidc.lock().await;
    if let Some((provider, at)) = cached.as_ref()
        && at.elapsed() < DISCOVERY_TTL
    {
        return Ok(provider.clone());
    }
    let secret = config.secret().map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    let settings = embargo_oidc::Settings {
        issuer: config.issuer.clone(),
        client_id: config.client_id.clone(),
        client_secret: secret.expose().to_owned().into(),
        redirect_uri: redirect_uri(app),
        scopes: config.scopes.clone(),
        timeout: Duration::from_secs(u64::from(config.timeout_seconds.max(1))),
    };
    let provider = Arc::new(embargo_oidc::Provider::discover(settings).await.map_err(|e| {
        tracing::warn!(error = %e, "OpenID Connect discovery failed");
        match e {
            embargo_oidc::Error::Unavailable(_) => {
                AppError::Unavailable("the identity provider cannot be reached; try again later".into())
            }
            other => AppError::Internal(anyhow::anyhow!("OpenID Connect discovery: {other}")),
        }
    })?);
    *cached = Some((provider.clone(), Instant::now()));
    Ok(provider)
}

#[derive(Serialize, Deserialize)]
struct Secrets {
    nonce: String,
    verifier: String,
}

struct Purpose {
    code: &'static str,
    user: Option<UserId>,
    session: Option<i64>,
    invitation: Option<String>,
    next: Option<String>,
}

async fn begin(app: &App, purpose: Purpose) -> Result<Started, AppError> {
    let provider = provider(app).await?;
    let request = provider.begin().await.map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let browser = crate::tokens::secret("");
    let now = app.now();
    let secrets = serde_json::to_string(&Secrets { nonce: request.nonce, verifier: request.pkce_verifier })
        .map_err(|e| AppError::Internal(e.into()))?;
    let flow = store::Flow {
        browser_hash: crate::tokens::hash(&browser),
        purpose: purpose.code.to_owned(),
        user: purpose.user,
        session: purpose.session,
        invitation: purpose.invitation,
        next: purpose.next.filter(|n| n.len() <= 2000),
        secrets,
        expires_at: now.checked_add(SignedDuration::from_mins(FLOW_MINUTES)).unwrap_or(now),
    };
    let mut tx = app.store.begin_urgent().await?;
    store::purge_flows(&mut tx, now.checked_sub(SignedDuration::from_hours(1)).unwrap_or(now)).await?;
    store::create_flow(&mut tx, &crate::tokens::hash(&request.state), &flow, now).await?;
    tx.commit().await?;
    Ok(Started { url: request.url, browser })
}

/// Starts signing in through the provider (anyone, from `address`: at most `10 n` starts in
/// 15 minutes per address, `n` being `web.max_failed_logins`); `next` is where to go
/// afterwards.
pub async fn begin_sign_in(app: &App, next: Option<&str>, address: &str) -> Result<Started, AppError> {
    if !app.config.oidc.enabled() {
        return Err(not_configured());
    }
    crate::sessions::charge_sso_start(app, address).await?;
    begin(app, Purpose { code: "sign-in", user: None, session: None, invitation: None, next: next.map(str::to_owned) })
        .await
}

/// Starts linking an identity at the provider to the signed-in account.
pub async fn begin_link(app: &App, session: &Session) -> Result<Started, AppError> {
    if session.actor().is_none() {
        return Err(AppError::Forbidden("link a sign-in identity before signing in fully"));
    }
    begin(
        app,
        Purpose {
            code: "link",
            user: Some(session.user_id()),
            session: Some(session.record.id),
            invitation: None,
            next: Some("/account".into()),
        },
    )
    .await
}

/// Starts accepting an invitation through the provider (instead of choosing a password).
pub async fn begin_invitation(app: &App, kind: InvitationKind, token: &str) -> Result<Started, AppError> {
    let hash = crate::tokens::hash(token);
    let mut tx = app.store.snapshot().await?;
    let valid = invitation_account(&mut tx, kind, &hash, app.now()).await?.is_some();
    tx.rollback().await?;
    if !valid {
        return Err(gone());
    }
    begin(
        app,
        Purpose {
            code: "invitation",
            user: None,
            session: None,
            invitation: Some(format!("{}:{hash}", kind.code())),
            next: None,
        },
    )
    .await
}

fn gone() -> AppError {
    AppError::NotFound("this invitation link (used, expired or unknown)".into())
}

/// The account an unused invitation is for: enabled, not deleted, without a password.
/// Returns the account and the invitation's id.
async fn invitation_account(
    tx: &mut embargo_store::Tx,
    kind: InvitationKind,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<(users::UserRecord, i64)>, AppError> {
    let found = match kind {
        InvitationKind::Fix => embargo_store::fixes::invitation(tx, token_hash)
            .await?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
            .map(|i| (i.user, i.id)),
        InvitationKind::Partner => {
            embargo_store::partners::invitation(tx, token_hash, now).await?.map(|(id, user)| (user, id))
        }
    };
    let Some((user, id)) = found else { return Ok(None) };
    let account = users::get(tx, user).await?.filter(|u| !u.disabled && !u.deleted && u.password_hash.is_none());
    Ok(account.map(|a| (a, id)))
}

/// What the provider's callback carried.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    /// `state`.
    pub state: String,
    /// `code`, on success.
    pub code: Option<String>,
    /// `error`, when the provider refused (such as `access_denied`).
    pub error: Option<String>,
    /// `iss` (RFC 9207), when the provider sends it: it must be the configured issuer.
    pub iss: Option<String>,
}

fn refused(app: &App) -> AppError {
    AppError::Invalid(format!(
        "the sign-in with {} did not succeed; start again from the sign-in page",
        app.config.oidc.display_name
    ))
}

async fn fail(app: &App, action: &str, reason: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin_urgent().await?;
    let reason: String = reason.chars().filter(|c| !c.is_control()).take(300).collect();
    audit::record(&mut tx, app, &Actor::System("sign-in"), action, "auth", &format!("reason={reason}")).await?;
    tx.commit().await?;
    metrics::counter!("embargo_sign_in_failures_total").increment(1);
    Ok(())
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the ID token proves a second factor at the provider, by the configuration.
fn provider_mfa(app: &App, identity: &embargo_oidc::Identity) -> bool {
    let config = &app.config.oidc;
    config.trust_provider_mfa
        && (identity.amr.iter().any(|a| config.mfa_amr.contains(a))
            || identity.acr.as_ref().is_some_and(|acr| config.mfa_acr.contains(acr)))
}

/// The provider's callback: takes the flow of `state` (once), checks the browser, exchanges
/// the code, validates the ID token and signs in, links or accepts the invitation.
/// `browser` is the flow cookie's value.
pub async fn finish(
    app: &App,
    browser: Option<&str>,
    callback: &Callback,
    user_agent: &str,
) -> Result<Finished, AppError> {
    if !app.config.oidc.enabled() {
        return Err(not_configured());
    }
    let now = app.now();
    // The state works once, whatever happens next.
    let flow = {
        let mut tx = app.store.begin_urgent().await?;
        let flow = store::take_flow(&mut tx, &crate::tokens::hash(&callback.state), now).await?;
        tx.commit().await?;
        flow
    };
    let Some(flow) = flow else {
        fail(app, "auth.oidc.fail", "unknown, used or expired state").await?;
        return Err(refused(app));
    };
    if !browser.is_some_and(|b| equal(&crate::tokens::hash(b), &flow.browser_hash)) {
        fail(app, "auth.oidc.fail", "state of another browser").await?;
        return Err(refused(app));
    }
    if callback.iss.as_ref().is_some_and(|iss| *iss != app.config.oidc.issuer) {
        fail(app, "auth.oidc.fail", "callback from another issuer").await?;
        return Err(refused(app));
    }
    if let Some(error) = &callback.error {
        fail(app, "auth.oidc.fail", &format!("provider error {error}")).await?;
        return Err(refused(app));
    }
    let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 4096) else {
        fail(app, "auth.oidc.fail", "no code").await?;
        return Err(refused(app));
    };
    let secrets: Secrets = serde_json::from_str(&flow.secrets).map_err(|e| AppError::Internal(e.into()))?;
    let provider = provider(app).await?;
    let identity = match provider.finish(code, &secrets.verifier, &secrets.nonce, now.as_second()).await {
        Ok(identity) => identity,
        Err(embargo_oidc::Error::Unavailable(e)) => {
            tracing::warn!(error = %e, "OpenID Connect: the provider is unavailable");
            return Err(AppError::Unavailable("the identity provider cannot be reached; try again later".into()));
        }
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect: sign-in refused");
            fail(app, "auth.oidc.fail", &e.to_string()).await?;
            return Err(refused(app));
        }
    };
    if identity.issuer != app.config.oidc.issuer {
        fail(app, "auth.oidc.fail", "another issuer").await?;
        return Err(refused(app));
    }
    match flow.purpose.as_str() {
        "sign-in" => sign_in(app, &identity, flow.next, user_agent).await,
        "link" => link(app, &identity, &flow).await,
        "invitation" => accept(app, &identity, &flow, user_agent).await,
        other => Err(AppError::Internal(anyhow::anyhow!("OpenID Connect flow of unknown purpose {other:?}"))),
    }
}

/// The subject as the audit trail names it: a keyed hash (subjects can be e-mail addresses
/// at some providers).
fn subject_tag(app: &App, identity: &embargo_oidc::Identity) -> String {
    let full = app
        .store
        .keys()
        .blind_index("oidc.subject v1", format!("{}\n{}", identity.issuer, identity.subject).as_bytes());
    full.chars().take(16).collect()
}

async fn start_session(
    tx: &mut embargo_store::Tx,
    app: &App,
    user: &users::UserRecord,
    identity: &embargo_oidc::Identity,
    user_agent: &str,
    via: &str,
) -> Result<(String, bool, bool), AppError> {
    let now = app.now();
    let totp = users::totp(tx, user.id).await?;
    let enabled = totp.as_ref().is_some_and(|t| t.enabled);
    let needs_totp = (enabled || app.config.web.require_totp) && !provider_mfa(app, identity);
    let token = crate::tokens::secret("");
    let stage = if needs_totp { Stage::Password } else { Stage::Full };
    let expires = if needs_totp {
        now.checked_add(crate::sessions::PARTIAL_SESSION).unwrap_or(now)
    } else {
        crate::sessions::expiry(app, now)
    };
    let ua = crate::sessions::user_agent_summary(user_agent);
    let id = store_sessions::create(tx, &crate::tokens::hash(&token), user.id, stage, &ua, now, expires).await?;
    let actor = Actor::User { id: user.id, role: user.role };
    let action = if needs_totp { "auth.oidc.ok" } else { "auth.sign_in" };
    let mfa = if provider_mfa(app, identity) { " provider_mfa=true" } else { "" };
    audit::record(tx, app, &actor, action, &format!("user:{}", user.id), &format!("session={id} via={via}{mfa}"))
        .await?;
    Ok((token, needs_totp, needs_totp && !enabled))
}

async fn sign_in(
    app: &App,
    identity: &embargo_oidc::Identity,
    next: Option<String>,
    user_agent: &str,
) -> Result<Finished, AppError> {
    let mut tx = app.store.begin_urgent().await?;
    let linked = store::identity(&mut tx, &identity.issuer, &identity.subject).await?;
    let user = match &linked {
        Some(link) => users::get(&mut tx, link.user).await?,
        None => None,
    };
    let (Some(link), Some(user)) = (linked, user) else {
        tx.rollback().await?;
        fail(app, "auth.oidc.unlinked", &format!("subject={}", subject_tag(app, identity))).await?;
        return Err(AppError::Invalid(format!(
            "this {} identity is not linked to an Embargo account. Sign in with your password and link it \
             from your account page, or ask an admin",
            app.config.oidc.display_name
        )));
    };
    if user.disabled || user.deleted {
        tx.rollback().await?;
        fail(app, "auth.oidc.disabled", &format!("user={}", user.id)).await?;
        return Err(AppError::Invalid("this account is disabled".into()));
    }
    store::used(&mut tx, link.id, app.now()).await?;
    let (token, needs_totp, must_enrol) = start_session(&mut tx, app, &user, identity, user_agent, "oidc").await?;
    tx.commit().await?;
    Ok(Finished::SignedIn { token, needs_totp, must_enrol, next, role: user.role })
}

async fn link(app: &App, identity: &embargo_oidc::Identity, flow: &store::Flow) -> Result<Finished, AppError> {
    let (Some(user), Some(session)) = (flow.user, flow.session) else {
        return Err(AppError::Internal(anyhow::anyhow!("a link flow without its account")));
    };
    let now = app.now();
    let mut tx = app.store.begin_urgent().await?;
    // The session that asked must still be live and fully signed in (not signed out,
    // revoked, or its account disabled since).
    let live = store_sessions::list_for_user(&mut tx, user, now)
        .await?
        .into_iter()
        .any(|s| s.id == session && s.stage == Stage::Full && !s.user.disabled);
    if !live {
        tx.rollback().await?;
        fail(app, "auth.oidc.fail", "link from a session that ended").await?;
        return Err(AppError::Invalid("your session ended; sign in again, then link the identity".into()));
    }
    let account = users::get(&mut tx, user).await?.ok_or_else(|| AppError::NotFound("account".into()))?;
    let actor = Actor::User { id: account.id, role: account.role };
    if let Some(existing) = store::identity(&mut tx, &identity.issuer, &identity.subject).await? {
        tx.rollback().await?;
        return Err(AppError::Conflict(if existing.user == user {
            "this identity is already linked to your account".into()
        } else {
            "this identity is linked to another account; an admin can unlink it".into()
        }));
    }
    let email = identity.email.clone().unwrap_or_default();
    store::link(&mut tx, user, &identity.issuer, &identity.subject, &email, now).await?;
    audit::record(
        &mut tx,
        app,
        &actor,
        "user.oidc.link",
        &format!("user:{user}"),
        &format!("issuer={} subject={}", identity.issuer, subject_tag(app, identity)),
    )
    .await?;
    tx.commit().await?;
    Ok(Finished::Linked)
}

async fn accept(
    app: &App,
    identity: &embargo_oidc::Identity,
    flow: &store::Flow,
    user_agent: &str,
) -> Result<Finished, AppError> {
    let (kind, hash) = match flow.invitation.as_deref().and_then(|i| i.split_once(':')) {
        Some(("fix", hash)) => (InvitationKind::Fix, hash),
        Some(("partner", hash)) => (InvitationKind::Partner, hash),
        _ => return Err(AppError::Internal(anyhow::anyhow!("an invitation flow without its invitation"))),
    };
    let now = app.now();
    let mut tx = app.store.begin_urgent().await?;
    let Some((account, id)) = invitation_account(&mut tx, kind, hash, now).await? else {
        tx.rollback().await?;
        return Err(gone());
    };
    let accepted = match kind {
        InvitationKind::Fix => embargo_store::fixes::accept_invitation(&mut tx, id, now).await?,
        InvitationKind::Partner => embargo_store::partners::accept_invitation(&mut tx, id, now).await?,
    };
    if !accepted {
        tx.rollback().await?;
        return Err(gone());
    }
    if store::identity(&mut tx, &identity.issuer, &identity.subject).await?.is_some() {
        tx.rollback().await?;
        return Err(AppError::Conflict(
            "this identity is linked to another account already; sign in with that one, or ask an admin".into(),
        ));
    }
    let email = identity.email.clone().unwrap_or_default();
    let link = store::link(&mut tx, account.id, &identity.issuer, &identity.subject, &email, now).await?;
    store::used(&mut tx, link, now).await?;
    let actor = Actor::User { id: account.id, role: account.role };
    audit::record(&mut tx, app, &actor, "user.invitation.accept", &format!("user:{}", account.id), "via=oidc").await?;
    audit::record(
        &mut tx,
        app,
        &actor,
        "user.oidc.link",
        &format!("user:{}", account.id),
        &format!("issuer={} subject={}", identity.issuer, subject_tag(app, identity)),
    )
    .await?;
    let (token, needs_totp, must_enrol) = start_session(&mut tx, app, &account, identity, user_agent, "oidc").await?;
    tx.commit().await?;
    Ok(Finished::SignedIn { token, needs_totp, must_enrol, next: None, role: account.role })
}

/// A linked identity as shown.
pub use embargo_store::oidc::Identity as LinkedIdentity;

/// The actor's own linked identities.
pub async fn my_identities(app: &App, actor: &Actor) -> Result<Vec<LinkedIdentity>, AppError> {
    let Actor::User { id, .. } = actor else { return Ok(Vec::new()) };
    let mut tx = app.store.snapshot().await?;
    let list = store::identities_of(&mut tx, *id).await?;
    tx.rollback().await?;
    Ok(list)
}

/// An account's linked identities (admins).
pub async fn identities(app: &App, actor: &Actor, email: &str) -> Result<Vec<LinkedIdentity>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    let list = store::identities_of(&mut tx, user.id).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Removes every identity linked to an account (admins; audited). The account's sessions
/// stay; it can no longer sign in through the provider.
pub async fn unlink(app: &App, actor: &Actor, email: &str) -> Result<u64, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    let removed = store::unlink(&mut tx, user.id, None).await?;
    if removed == 0 {
        tx.rollback().await?;
        return Err(AppError::NotFound(format!("a single sign-on identity linked to {}", user.email)));
    }
    audit::record(&mut tx, app, actor, "user.oidc.unlink", &format!("user:{}", user.id), &format!("count={removed}"))
        .await?;
    tx.commit().await?;
    Ok(removed)
}
