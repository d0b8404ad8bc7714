//! Signing in to the web app: password, then TOTP; sessions, their list and revocation;
//! throttling kept in the database.
//!
//! A session cookie carries a random 256-bit token; only its SHA-256 is stored. A session
//! starts at stage `password` and becomes `full` only after the second factor, when its
//! token is replaced (so a token seen before sign-in completed is worthless after).
//! Failed attempts are counted per account and per network address in 15-minute windows
//! in the database, so that the limit holds across instances.

use embargo_domain::{Actor, Role, Timestamp, UserId};
use embargo_store::sessions::{self as store_sessions, Stage};
pub use embargo_store::sessions::{SessionRecord, Stage as SessionStage};
use embargo_store::users;
use jiff::SignedDuration;
use totp_rs::{Builder, Secret, Totp};

use crate::{App, AppError, audit};

/// The throttling window.
const WINDOW_MS: i64 = 15 * 60 * 1000;

/// A signed-in (or half signed-in) browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored session.
    pub record: SessionRecord,
}

impl Session {
    /// The actor the session stands for, once fully signed in.
    pub fn actor(&self) -> Option<Actor> {
        (self.record.stage == Stage::Full)
            .then_some(Actor::User { id: self.record.user.id, role: self.record.user.role })
    }

    /// The account.
    pub fn user_id(&self) -> UserId {
        self.record.user.id
    }

    /// The account's address.
    pub fn email(&self) -> &str {
        &self.record.user.email
    }

    /// Whether the account is an admin.
    pub fn is_admin(&self) -> bool {
        self.record.user.role == Role::Admin
    }
}

/// What signing in with a password led to.
#[derive(Debug, Clone)]
pub struct PasswordOutcome {
    /// The new session's cookie value.
    pub token: String,
    /// Whether the second factor is still needed (always, unless TOTP is not required and
    /// not set up).
    pub needs_totp: bool,
    /// Whether the account has no TOTP yet and must set it up now.
    pub must_enrol: bool,
}

fn window(now: Timestamp) -> i64 {
    now.as_millisecond() / WINDOW_MS * WINDOW_MS
}

/// The counters an attempt is charged to: the account from this address (the strict
/// limit), the account from anywhere and the address for any account (ten times the limit
/// each, against guessing spread over addresses or accounts). Charging the pair strictly
/// rather than the account means a stranger cannot lock a member out with the strict limit.
fn throttle_keys(email: &str, address: &str) -> [(String, i64); 3] {
    let account = crate::tokens::hash(&email.trim().to_lowercase());
    let address = crate::tokens::hash(address);
    [
        (format!("login:pair:{account}:{address}"), 1),
        (format!("login:account:{account}"), 10),
        (format!("login:address:{address}"), 10),
    ]
}

/// Charges an attempt to its counters before anything is checked, in its own short
/// transaction, so that parallel attempts cannot slip past the limit. Refuses (and audits)
/// when a counter is over its limit.
async fn charge(app: &App, email: &str, address: &str) -> Result<[(String, i64); 3], AppError> {
    let now = app.now();
    let limit = i64::from(app.config.web.max_failed_logins.max(1));
    let keys = throttle_keys(email, address);
    let mut tx = app.store.begin().await?;
    let mut over = false;
    for (key, factor) in &keys {
        over |= store_sessions::hit(&mut tx, key, window(now)).await? > limit * factor;
    }
    if over {
        audit::record(&mut tx, app, &Actor::System("sign-in"), "auth.throttled", "auth", "").await?;
    }
    tx.commit().await?;
    if over {
        metrics::counter!("embargo_sign_in_throttled_total").increment(1);
        return Err(too_many());
    }
    Ok(keys)
}

/// A successful step: the pair's failures are forgotten, and the attempt is taken back from
/// the account's and the address's counts.
async fn succeeded(tx: &mut embargo_store::Tx, keys: &[(String, i64); 3], now: Timestamp) -> Result<(), AppError> {
    store_sessions::clear(tx, &keys[0].0).await?;
    for (key, _) in &keys[1..] {
        store_sessions::forgive(tx, key, window(now)).await?;
    }
    Ok(())
}

fn too_many() -> AppError {
    AppError::TooMany("too many failed sign-ins; wait 15 minutes and try again".into())
}

fn user_agent_summary(user_agent: &str) -> String {
    let cleaned: String = user_agent.chars().filter(|c| !c.is_control()).take(160).collect();
    if cleaned.is_empty() { "unknown browser".into() } else { cleaned }
}

fn expiry(app: &App, now: Timestamp) -> Timestamp {
    now.checked_add(SignedDuration::from_hours(i64::from(app.config.web.session_idle_hours.max(1)))).unwrap_or(now)
}

/// A session between the password and the second factor lives this long, never extended.
const PARTIAL_SESSION: SignedDuration = SignedDuration::from_mins(5);

/// Argon2 takes tens of milliseconds of CPU: off the async runtime, outside any
/// transaction.
async fn verify_off_thread(hash: Option<String>, password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => crate::accounts::verify_password(&hash, &password),
        None => {
            // Spend the same time as a real check, so that timing does not reveal accounts.
            let _ = crate::accounts::verify_password(crate::accounts::DUMMY_HASH, &password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Checks the password of `email`. Every attempt is first charged to the throttling
/// counters (see [`charge`]); over the limit, even the right password is refused, so that
/// guessing gets nowhere. A success clears the counters of this account and address.
pub async fn sign_in_password(
    app: &App,
    email: &str,
    password: &str,
    address: &str,
    user_agent: &str,
) -> Result<PasswordOutcome, AppError> {
    let keys = charge(app, email, address).await?;
    let mut tx = app.store.snapshot().await?;
    let user = users::by_email(&mut tx, email).await?.filter(|u| !u.disabled);
    tx.rollback().await?;
    let valid = verify_off_thread(user.as_ref().and_then(|u| u.password_hash.clone()), password).await;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let Some(user) = user.filter(|_| valid) else {
        audit::record(&mut tx, app, &Actor::System("sign-in"), "auth.password.fail", "auth", "").await?;
        tx.commit().await?;
        metrics::counter!("embargo_sign_in_failures_total").increment(1);
        return Err(AppError::Invalid("the e-mail address or the password is wrong".into()));
    };
    let totp = users::totp(&mut tx, user.id).await?;
    let enabled = totp.as_ref().is_some_and(|t| t.enabled);
    let needs_totp = enabled || app.config.web.require_totp;
    let token = crate::tokens::secret("");
    let stage = if needs_totp { Stage::Password } else { Stage::Full };
    let ua = user_agent_summary(user_agent);
    let expires = if needs_totp { now.checked_add(PARTIAL_SESSION).unwrap_or(now) } else { expiry(app, now) };
    let id = store_sessions::create(&mut tx, &crate::tokens::hash(&token), user.id, stage, &ua, now, expires).await?;
    let actor = Actor::User { id: user.id, role: user.role };
    let action = if needs_totp { "auth.password.ok" } else { "auth.sign_in" };
    audit::record(&mut tx, app, &actor, action, &format!("user:{}", user.id), &format!("session={id}")).await?;
    succeeded(&mut tx, &keys, now).await?;
    tx.commit().await?;
    Ok(PasswordOutcome { token, needs_totp, must_enrol: needs_totp && !enabled })
}

/// The live session for a cookie value, touching it at most once a minute.
pub async fn session(app: &App, token: &str) -> Result<Option<Session>, AppError> {
    let now = app.now();
    let hash = crate::tokens::hash(token);
    let Some(record) = store_sessions::lookup(&app.store, &hash, now).await? else { return Ok(None) };
    if record.stage == Stage::Full && now.duration_since(record.last_seen_at) > SignedDuration::from_secs(60) {
        let mut tx = app.store.begin().await?;
        store_sessions::touch(&mut tx, record.id, now, expiry(app, now)).await?;
        tx.commit().await?;
    }
    Ok(Some(Session { record }))
}

fn totp_of(app: &App, secret: &str, email: &str) -> Result<Totp, AppError> {
    let secret =
        Secret::try_from_base32(secret).map_err(|e| AppError::Internal(anyhow::anyhow!("TOTP secret: {e:?}")))?;
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(app.config.organisation.name.replace(':', " ")))
        .with_account_name(email.replace(':', " "))
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("TOTP: {e:?}")))
}

/// What a person needs to set up TOTP: the secret (base32) and the `otpauth://` URI.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Base32 secret, to type into an authenticator.
    pub secret: String,
    /// `otpauth://totp/...`, for authenticators that take a link or a QR code.
    pub uri: String,
}

/// Starts (or shows again) TOTP set-up for a session whose account has none confirmed.
pub async fn totp_enrolment(app: &App, session: &Session) -> Result<Enrolment, AppError> {
    let mut tx = app.store.begin().await?;
    let secret = match users::totp(&mut tx, session.user_id()).await? {
        Some(t) if t.enabled => {
            tx.rollback().await?;
            return Err(AppError::Conflict("TOTP is already set up for this account".into()));
        }
        Some(t) => t.secret,
        None => {
            let secret = Secret::generate().to_base32();
            users::set_totp_secret(&mut tx, session.user_id(), &secret).await?;
            let actor = Actor::User { id: session.user_id(), role: session.record.user.role };
            audit::record(&mut tx, app, &actor, "auth.totp.secret", &format!("user:{}", session.user_id()), "").await?;
            secret
        }
    };
    tx.commit().await?;
    let uri =
        totp_of(app, &secret, session.email())?.to_url().map_err(|e| AppError::Internal(anyhow::anyhow!("{e:?}")))?;
    Ok(Enrolment { secret, uri })
}

/// A completed second factor.
#[derive(Debug, Clone)]
pub struct TotpSignIn {
    /// The fully signed-in session's new cookie value.
    pub token: String,
    /// When this confirmed a new TOTP set-up: the account's first recovery codes, to show
    /// once. Empty otherwise.
    pub recovery_codes: Vec<String>,
    /// When a recovery code was used: how many are left.
    pub recovery_codes_left: Option<i64>,
}

/// Whether `code` looks like a TOTP code (six digits, spaces allowed) rather than a
/// recovery code.
fn is_totp_code(code: &str) -> bool {
    let trimmed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    trimmed.len() == 6 && trimmed.chars().all(|c| c.is_ascii_digit())
}

/// Checks the second factor for a session at stage `password`: a TOTP code (which also
/// confirms a new set-up, and then makes the account's first recovery codes), or one of the
/// account's one-time recovery codes in its place (used up, audited). On success the
/// session is fully signed in under a new token.
pub async fn sign_in_totp(app: &App, session: &Session, code: &str, address: &str) -> Result<TotpSignIn, AppError> {
    let keys = charge(app, session.email(), address).await?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let user = session.user_id();
    let totp = users::totp(&mut tx, user).await?.ok_or_else(|| AppError::Conflict("TOTP is not set up".into()))?;
    let actor = Actor::User { id: user, role: session.record.user.role };
    let mut recovery_codes_left = None;
    let accepted = if is_totp_code(code) {
        let checker = totp_of(app, &totp.secret, session.email())?;
        let code: String = code.chars().filter(char::is_ascii_digit).collect();
        let seconds = u64::try_from(now.as_second()).unwrap_or(0);
        match checker.check(&code, seconds) {
            Some(step) => users::accept_totp_step(&mut tx, user, i64::try_from(step).unwrap_or(i64::MAX)).await?,
            None => false,
        }
    } else if totp.enabled
        && users::use_recovery_code(&mut tx, user, &crate::accounts::recovery_code_hash(code), now).await?
    {
        let left = users::recovery_codes_left(&mut tx, user).await?;
        audit::record(&mut tx, app, &actor, "auth.recovery_code.use", &format!("user:{user}"), &format!("left={left}"))
            .await?;
        recovery_codes_left = Some(left);
        true
    } else {
        false
    };
    if !accepted {
        audit::record(&mut tx, app, &actor, "auth.totp.fail", &format!("user:{user}"), "").await?;
        tx.commit().await?;
        return Err(AppError::Invalid("the code is wrong or was used already; use the next one".into()));
    }
    let mut recovery_codes = Vec::new();
    if !totp.enabled {
        users::enable_totp(&mut tx, user, now).await?;
        audit::record(&mut tx, app, &actor, "auth.totp.enable", &format!("user:{user}"), "").await?;
        recovery_codes = crate::accounts::new_recovery_codes(&mut tx, app, &actor, user).await?;
    }
    let token = crate::tokens::secret("");
    store_sessions::promote(&mut tx, session.record.id, &crate::tokens::hash(&token), expiry(app, now)).await?;
    succeeded(&mut tx, &keys, now).await?;
    audit::record(
        &mut tx,
        app,
        &actor,
        "auth.sign_in",
        &format!("user:{user}"),
        &format!("session={}", session.record.id),
    )
    .await?;
    tx.commit().await?;
    Ok(TotpSignIn { token, recovery_codes, recovery_codes_left })
}

/// Ends the session of this cookie value.
pub async fn sign_out(app: &App, session: &Session) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    store_sessions::revoke(&mut tx, session.user_id(), session.record.id, app.now()).await?;
    let actor = Actor::User { id: session.user_id(), role: session.record.user.role };
    audit::record(&mut tx, app, &actor, "auth.sign_out", &format!("user:{}", session.user_id()), "").await?;
    tx.commit().await?;
    Ok(())
}

/// The account's live sessions.
pub async fn list(app: &App, session: &Session) -> Result<Vec<SessionRecord>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let list = store_sessions::list_for_user(&mut tx, session.user_id(), app.now()).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Revokes one of the account's own sessions.
pub async fn revoke(app: &App, session: &Session, id: i64) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    if !store_sessions::revoke(&mut tx, session.user_id(), id, app.now()).await? {
        return Err(AppError::NotFound("session".into()));
    }
    let actor = Actor::User { id: session.user_id(), role: session.record.user.role };
    audit::record(
        &mut tx,
        app,
        &actor,
        "auth.session.revoke",
        &format!("user:{}", session.user_id()),
        &format!("session={id}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// For tests and operators: the current TOTP code for a base32 secret.
pub fn totp_code(secret: &str, at: Timestamp) -> Option<String> {
    let secret = Secret::try_from_base32(secret).ok()?;
    let totp = Builder::new().with_secret(secret).with_account_name("x".to_owned()).build().ok()?;
    Some(totp.generate(u64::try_from(at.as_second()).ok()?).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238 appendix B: SHA-1, secret "12345678901234567890"; the 8-digit codes end
        // in these 6 digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for (seconds, code) in [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924")] {
            assert_eq!(totp_code(secret, Timestamp::from_second(seconds).unwrap()).as_deref(), Some(code));
        }
    }
}
