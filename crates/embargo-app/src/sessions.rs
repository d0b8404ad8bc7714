//! Signing in to the web app: password, then TOTP or a passkey (the passkey ceremonies are
//! in `passkeys`); sessions, their list and revocation; throttling kept in the database.
//!
//! A session cookie carries a random 256-bit token; only its SHA-256 is stored. A session
//! starts at stage `password` and becomes `full` only after the second factor, when its
//! token is replaced (so a token seen before sign-in completed is worthless after).
//! Failed attempts are counted in the database (so that the limits hold across instances)
//! per account and address, per address, and per account from browsers it never signed in
//! from, in sliding windows (see [`limits`]); a refusal says when to try again.

use embargo_domain::{Actor, Role, Timestamp, UserId};
use embargo_store::sessions::{self as store_sessions, Stage};
pub use embargo_store::sessions::{SessionRecord, Stage as SessionStage};
use embargo_store::users;
use jiff::SignedDuration;
use totp_rs::{Builder, Secret, Totp};

use crate::{App, AppError, audit};

/// Failures are counted in buckets of a minute; a limit looks at the buckets of its window
/// (a sliding window, to the minute).
const BUCKET_MS: i64 = 60 * 1000;
/// The window of the per-address limits.
const WINDOW_MS: i64 = 15 * 60 * 1000;
/// The window of the account-wide limit (for browsers the account has not signed in from).
const ACCOUNT_WINDOW_MS: i64 = 60 * 60 * 1000;
/// How long a browser stays known to an account after a sign-in from it.
pub const DEVICE_DAYS: i64 = 180;

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

    /// Whether the account must sign in with a passkey and has none yet: a fully signed-in
    /// session of it may only register one (the web app sends every other page there).
    pub fn must_register_passkey(&self) -> bool {
        self.record.stage == Stage::Full && self.record.passkey_required && self.record.passkeys == 0
    }

    /// Whether a TOTP code (or a recovery code) may complete this account's sign-in: not
    /// when an admin requires a passkey and the account has one.
    pub fn totp_allowed(&self) -> bool {
        !(self.record.passkey_required && self.record.passkeys > 0)
    }

    /// Whether the account has a passkey, which may complete its sign-in.
    pub fn has_passkeys(&self) -> bool {
        self.record.passkeys > 0
    }
}

/// What signing in with a password led to.
#[derive(Debug, Clone)]
pub struct PasswordOutcome {
    /// The new session's cookie value.
    pub token: String,
    /// Whether the second factor (TOTP or a passkey) is still needed: always, unless TOTP is
    /// not required and the account has neither TOTP nor a passkey.
    pub needs_totp: bool,
    /// Whether the account has no second factor yet (no TOTP, no passkey) and must set TOTP
    /// up now.
    pub must_enrol: bool,
    /// Whether the account has passkeys, one of which may be the second factor.
    pub passkeys: bool,
}

fn bucket(now: Timestamp) -> i64 {
    now.as_millisecond() / BUCKET_MS * BUCKET_MS
}

/// One throttling counter: its key (hashes only; no address or account is stored), its limit
/// and its window.
#[derive(Debug, Clone)]
struct Limit {
    key: String,
    max: i64,
    window_ms: i64,
}

/// What an attempt is charged to, and the minute it was charged in (to take it back).
#[derive(Debug, Clone)]
pub(crate) struct Charged {
    limits: Vec<Limit>,
    bucket: i64,
}

/// The counters an attempt is charged to (`max_failed_logins` is `n`):
///
/// * the account from this address: `n` failures in 15 minutes;
/// * the address, whatever the account: `10 n` in 15 minutes (one address guessing many
///   accounts);
/// * the account from any address: `10 n` in an hour (guessing spread over many addresses),
///   except from a browser that signed in to the account before (a signed device cookie):
///   a stranger can exhaust this limit, but cannot lock the owner out of their own browser.
fn limits(app: &App, email: &str, address: &str, known_device: bool) -> Vec<Limit> {
    let n = i64::from(app.config.web.max_failed_logins.max(1));
    let account = crate::tokens::hash(&account_name(email));
    let address = crate::tokens::hash(address);
    let mut limits = vec![
        Limit { key: format!("login:pair:{account}:{address}"), max: n, window_ms: WINDOW_MS },
        Limit { key: format!("login:address:{address}"), max: 10 * n, window_ms: WINDOW_MS },
    ];
    if !known_device {
        limits.push(Limit { key: format!("login:account:{account}"), max: 10 * n, window_ms: ACCOUNT_WINDOW_MS });
    }
    limits
}

fn account_name(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The seconds until the failures counted in `buckets` (window start, count; oldest first)
/// fall to below `max` again, so that one more attempt is allowed.
fn retry_after(buckets: &[(i64, i64)], max: i64, window_ms: i64, now: Timestamp) -> u64 {
    let total: i64 = buckets.iter().map(|(_, c)| c).sum();
    let mut to_drop = total - max + 1;
    let mut at = now.as_millisecond();
    for (start, count) in buckets {
        to_drop -= count;
        at = start + window_ms;
        if to_drop <= 0 {
            break;
        }
    }
    u64::try_from((at - now.as_millisecond() + 999) / 1000).unwrap_or(0).max(1)
}

/// Charges an attempt to its counters before anything is checked, in one short transaction
/// (the counters' rows are locked, so parallel attempts cannot slip past a limit). Over a
/// limit, the attempt is refused, taken back (refused attempts are not counted, so that
/// waiting is always enough) and audited.
async fn charge(app: &App, email: &str, address: &str, device: Option<&str>) -> Result<Charged, AppError> {
    let now = app.now();
    let known_device = device.is_some_and(|d| device_valid(app, email, d, now));
    charge_limits(app, limits(app, email, address, known_device)).await
}

/// Charges an attempt whose account is not known yet (a password-less passkey sign-in) to
/// the address's counter alone: `10 n` in 15 minutes, shared with password attempts.
pub(crate) async fn charge_address(app: &App, address: &str) -> Result<Charged, AppError> {
    let n = i64::from(app.config.web.max_failed_logins.max(1));
    let address = crate::tokens::hash(address);
    // The first limit is the one a success clears: a throwaway key of its own here, so that
    // a passkey sign-in never clears the address's failures.
    let limits = vec![
        Limit { key: format!("login:passkey:{address}"), max: 10 * n, window_ms: WINDOW_MS },
        Limit { key: format!("login:address:{address}"), max: 10 * n, window_ms: WINDOW_MS },
    ];
    charge_limits(app, limits).await
}

/// Charges the start of a single sign-on from an address (each start stores a flow until it
/// is used or expires): `10 n` in 15 minutes, a counter of its own, so that a flood of
/// starts neither fills the database nor counts against the address's password attempts.
pub(crate) async fn charge_sso_start(app: &App, address: &str) -> Result<Charged, AppError> {
    let n = i64::from(app.config.web.max_failed_logins.max(1));
    let address = crate::tokens::hash(address);
    charge_limits(app, vec![Limit { key: format!("login:oidc:{address}"), max: 10 * n, window_ms: WINDOW_MS }]).await
}

/// Takes back one attempt charged by [`charge_address`] in this minute (a password-less
/// sign-in that succeeded).
pub(crate) async fn forgive_address(tx: &mut embargo_store::Tx, app: &App, address: &str) -> Result<(), AppError> {
    let address = crate::tokens::hash(address);
    store_sessions::forgive(tx, &format!("login:address:{address}"), bucket(app.now())).await?;
    Ok(())
}

/// Charges an attempt to a known account from an address, as a password attempt is.
pub(crate) async fn charge_account(
    app: &App,
    email: &str,
    address: &str,
    device: Option<&str>,
) -> Result<Charged, AppError> {
    charge(app, email, address, device).await
}

async fn charge_limits(app: &App, limits: Vec<Limit>) -> Result<Charged, AppError> {
    let now = app.now();
    let charged = Charged { limits, bucket: bucket(now) };
    let mut tx = app.store.begin().await?;
    let mut wait: Option<u64> = None;
    for limit in &charged.limits {
        store_sessions::hit(&mut tx, &limit.key, charged.bucket).await?;
        // A failure counts while its minute started less than a window ago.
        let since = now.as_millisecond() - limit.window_ms + 1;
        store_sessions::expire(&mut tx, &limit.key, since).await?;
        let buckets = store_sessions::recent(&mut tx, &limit.key, since).await?;
        let counted: i64 = buckets.iter().map(|(_, c)| c).sum();
        if counted > limit.max {
            let seconds = retry_after(&buckets, limit.max + 1, limit.window_ms, now);
            wait = Some(wait.map_or(seconds, |w| w.max(seconds)));
        }
    }
    if let Some(seconds) = wait {
        for limit in &charged.limits {
            store_sessions::forgive(&mut tx, &limit.key, charged.bucket).await?;
        }
        audit::record(&mut tx, app, &Actor::System("sign-in"), "auth.throttled", "auth", "").await?;
        tx.commit().await?;
        metrics::counter!("embargo_sign_in_throttled_total").increment(1);
        return Err(too_many(seconds));
    }
    tx.commit().await?;
    Ok(charged)
}

/// A successful step: the failures of this account from this address are forgotten, and
/// the attempt is taken back from the other counters (a success is not held against the
/// address or the account; earlier failures stay counted).
pub(crate) async fn succeeded(tx: &mut embargo_store::Tx, charged: &Charged) -> Result<(), AppError> {
    store_sessions::clear(tx, &charged.limits[0].key).await?;
    for limit in &charged.limits[1..] {
        store_sessions::forgive(tx, &limit.key, charged.bucket).await?;
    }
    Ok(())
}

fn too_many(seconds: u64) -> AppError {
    let minutes = seconds.div_ceil(60);
    AppError::Throttled {
        message: format!(
            "too many failed sign-ins; try again in {minutes} minute{}",
            if minutes == 1 { "" } else { "s" }
        ),
        retry_after_secs: seconds,
    }
}

/// A device cookie for a browser that just signed in to `email`: `<issued ms>.<nonce>.<mac>`,
/// the MAC keyed by the instance's index key, so it cannot be made without it. It lets the
/// browser past the account-wide throttling limit for [`DEVICE_DAYS`]; nothing else.
pub fn device_cookie(app: &App, email: &str) -> String {
    let issued = app.now().as_millisecond();
    let nonce = crate::tokens::secret("")[..32].to_owned();
    let mac = device_mac(app, email, issued, &nonce);
    format!("{issued}.{nonce}.{mac}")
}

fn device_mac(app: &App, email: &str, issued: i64, nonce: &str) -> String {
    app.store.keys().blind_index("sessions.device v1", format!("{}\n{issued}\n{nonce}", account_name(email)).as_bytes())
}

/// Whether a device cookie was issued to a browser that signed in to `email`, and is recent.
fn device_valid(app: &App, email: &str, cookie: &str, now: Timestamp) -> bool {
    let mut parts = cookie.trim().splitn(3, '.');
    let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(issued) = issued.parse::<i64>() else { return false };
    let age = now.as_millisecond() - issued;
    if !(0..=DEVICE_DAYS * 24 * 3_600_000).contains(&age) || nonce.len() != 32 {
        return false;
    }
    let expected = device_mac(app, email, issued, nonce);
    expected.len() == mac.len() && expected.bytes().zip(mac.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub(crate) fn user_agent_summary(user_agent: &str) -> String {
    let cleaned: String = user_agent.chars().filter(|c| !c.is_control()).take(160).collect();
    if cleaned.is_empty() { "unknown browser".into() } else { cleaned }
}

pub(crate) fn expiry(app: &App, now: Timestamp) -> Timestamp {
    now.checked_add(SignedDuration::from_hours(i64::from(app.config.web.session_idle_hours.max(1)))).unwrap_or(now)
}

/// A session between the password and the second factor lives this long, never extended.
pub(crate) const PARTIAL_SESSION: SignedDuration = SignedDuration::from_mins(5);

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
    device: Option<&str>,
) -> Result<PasswordOutcome, AppError> {
    let keys = charge(app, email, address, device).await?;
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
    let passkeys = embargo_store::passkeys::count(&mut tx, user.id).await? > 0;
    // (An account required to use a passkey that has none yet signs in as before and is
    // then sent to register one: `Session::must_register_passkey`.)
    let needs_totp = enabled || app.config.web.require_totp || passkeys;
    let token = crate::tokens::secret("");
    let stage = if needs_totp { Stage::Password } else { Stage::Full };
    let ua = user_agent_summary(user_agent);
    let expires = if needs_totp { now.checked_add(PARTIAL_SESSION).unwrap_or(now) } else { expiry(app, now) };
    let id = store_sessions::create(&mut tx, &crate::tokens::hash(&token), user.id, stage, &ua, now, expires).await?;
    let actor = Actor::User { id: user.id, role: user.role };
    let action = if needs_totp { "auth.password.ok" } else { "auth.sign_in" };
    audit::record(&mut tx, app, &actor, action, &format!("user:{}", user.id), &format!("session={id}")).await?;
    succeeded(&mut tx, &keys).await?;
    tx.commit().await?;
    Ok(PasswordOutcome { token, needs_totp, must_enrol: needs_totp && !enabled && !passkeys, passkeys })
}

/// The live session for a cookie value, touching it at most once a minute.
pub async fn session(app: &App, token: &str) -> Result<Option<Session>, AppError> {
    Ok(looked_up(app, token, None).await?.map(|(session, _)| session))
}

/// [`session`] for a team page, with the business calendar brought up to date (see
/// [`crate::sla::current_calendar`]): the session and the calendar's version are read in
/// one statement.
pub async fn team_session(app: &App, token: &str) -> Result<Option<Session>, AppError> {
    let Some((session, version)) = looked_up(app, token, Some(crate::sla::CALENDAR_VERSION_KEY)).await? else {
        return Ok(None);
    };
    crate::sla::calendar_at_version(app, version).await?;
    Ok(Some(session))
}

/// The live session with this token, with the `instance_meta` value under `meta_key`;
/// records activity at most once a minute.
async fn looked_up(
    app: &App,
    token: &str,
    meta_key: Option<&str>,
) -> Result<Option<(Session, Option<String>)>, AppError> {
    let now = app.now();
    let hash = crate::tokens::hash(token);
    let Some((record, meta)) = store_sessions::lookup_with_meta(&app.store, &hash, now, meta_key).await? else {
        return Ok(None);
    };
    if record.stage == Stage::Full && now.duration_since(record.last_seen_at) > SignedDuration::from_secs(60) {
        // Someone is waiting for the page: go before background writers (ADR 16).
        let mut tx = app.store.begin_urgent().await?;
        store_sessions::touch(&mut tx, record.id, now, expiry(app, now)).await?;
        tx.commit().await?;
    }
    Ok(Some((Session { record }, meta)))
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

/// Whether the session's account has TOTP set up (confirmed).
pub async fn has_totp(app: &App, session: &Session) -> Result<bool, AppError> {
    let mut tx = app.store.snapshot().await?;
    let enabled = users::totp(&mut tx, session.user_id()).await?.is_some_and(|t| t.enabled);
    tx.rollback().await?;
    Ok(enabled)
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
pub async fn sign_in_totp(
    app: &App,
    session: &Session,
    code: &str,
    address: &str,
    device: Option<&str>,
) -> Result<TotpSignIn, AppError> {
    let keys = charge(app, session.email(), address, device).await?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let user = session.user_id();
    if embargo_store::passkeys::required(&mut tx, user).await?
        && embargo_store::passkeys::count(&mut tx, user).await? > 0
    {
        tx.rollback().await?;
        return Err(AppError::Conflict("this account signs in with a passkey".into()));
    }
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
    succeeded(&mut tx, &keys).await?;
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
