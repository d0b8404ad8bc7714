//! Passkeys (WebAuthn): registering them on the account page, signing in with one as the
//! second factor after the password or alone (a discoverable credential, from `/login`),
//! renaming and removing them, and an admin's requirement that an account use one (ADR 28).
//!
//! The verification is webauthn-rs's (pure RustCrypto, no OpenSSL): the challenge, the
//! origin (exactly `public_url`'s), the relying party ID hash, the user-presence and
//! user-verification flags, the signature over the authenticator data and the client data,
//! and the signature counter. What is ours: every ceremony's state is kept in the database,
//! taken once (deleted whatever the answer), bound to the session that started it (or, for a
//! password-less sign-in, to a cookie holding a random token), and valid for five minutes;
//! a counter that does not move forward (a cloned authenticator) is refused and audited, and
//! the stored counter moves forward with a conditional update, so that two sign-ins racing
//! with one counter value cannot both pass; a disabled or deleted account never signs in.
//!
//! An account has a random user handle (a UUID) that authenticators keep for discoverable
//! credentials; it is neither the address nor the account's id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use embargo_domain::{Actor, UserId};
pub use embargo_store::passkeys::PasskeyRecord;
use embargo_store::passkeys::{self as store, Purpose};
use embargo_store::sessions::{self as store_sessions, Stage};
use embargo_store::users;
use jiff::SignedDuration;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::authz::{self, Permission};
use crate::sessions::Session;
use crate::{App, AppError, audit};

/// How long a ceremony may take, from its options to its answer.
pub const CEREMONY: SignedDuration = SignedDuration::from_mins(5);

/// The relying party: `public_url`'s host is its ID, and its origin the only one accepted.
/// Passkeys need a `public_url` with a host name (`localhost` counts): browsers refuse an IP
/// address as a relying party ID.
fn verifier(app: &App) -> Result<Webauthn, AppError> {
    let base = app.config.base_url();
    let origin = Url::parse(&base).map_err(|e| AppError::Internal(anyhow::anyhow!("public_url {base:?}: {e}")))?;
    let Some(host) = origin.host_str().map(str::to_owned) else {
        return Err(AppError::Conflict("passkeys need a public_url with a host name".into()));
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return Err(AppError::Conflict(
            "passkeys need public_url to name the host (browsers refuse an IP address)".into(),
        ));
    }
    let name = if app.config.organisation.name.trim().is_empty() { "Embargo" } else { &app.config.organisation.name };
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(name).timeout(std::time::Duration::from_secs(300)).build())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("WebAuthn relying party for {base}: {e}")))
}

fn internal(what: &str, err: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{what}: {err}"))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn session_key(session: &Session, purpose: Purpose) -> String {
    format!("session:{}:{}", session.record.id, purpose.as_str())
}

fn actor_of(session: &Session) -> Actor {
    Actor::User { id: session.user_id(), role: session.record.user.role }
}

/// A passkey's name as given: trimmed, one line, at most 100 characters; empty gives a
/// default.
fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid("give the passkey a name of at most 100 characters, on one line".into()));
    }
    Ok(if name.is_empty() { "Passkey".to_owned() } else { name.to_owned() })
}

fn stored_passkey(record: &PasskeyRecord) -> Result<Passkey, AppError> {
    serde_json::from_str(&record.credential).map_err(|e| internal("stored passkey", e))
}

/// Starts a ceremony under `key` and returns the options for the browser.
async fn begin(
    app: &App,
    key: &str,
    purpose: Purpose,
    user: Option<UserId>,
    state: &impl serde::Serialize,
) -> Result<(), AppError> {
    let state = serde_json::to_string(state).map_err(|e| internal("ceremony state", e))?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    store::start_ceremony(&mut tx, key, purpose, user, &state, now, now.checked_add(CEREMONY).unwrap_or(now)).await?;
    tx.commit().await?;
    Ok(())
}

/// The options as the browser's `navigator.credentials` takes them: members without a value
/// are left out (WebIDL refuses `null` for most of them).
fn options(value: &impl serde::Serialize) -> Result<serde_json::Value, AppError> {
    fn prune(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(prune);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(prune),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(value).map_err(|e| internal("WebAuthn options", e))?;
    prune(&mut value);
    Ok(value)
}

/// The answer the browser sent, parsed. Anything that does not parse is refused as such.
fn parse<T: serde::de::DeserializeOwned>(credential: &str) -> Result<T, AppError> {
    if credential.len() > 64 * 1024 {
        return Err(AppError::Invalid("the passkey's answer is too large".into()));
    }
    serde_json::from_str(credential).map_err(|_| AppError::Invalid("the passkey's answer could not be read".into()))
}

// ---- Registration ---------------------------------------------------------------------

/// Starts registering a passkey for the session's own account: the options for
/// `navigator.credentials.create` (a discoverable credential with user verification; the
/// account's passkeys are excluded, so one authenticator is not registered twice).
pub async fn start_registration(app: &App, session: &Session) -> Result<serde_json::Value, AppError> {
    if session.record.stage != Stage::Full {
        return Err(AppError::Forbidden("register a passkey before signing in"));
    }
    let webauthn = verifier(app)?;
    let user = session.user_id();
    let mut tx = app.store.begin().await?;
    let fresh = Uuid::from_bytes(rand_bytes()).hyphenated().to_string();
    let handle = store::user_handle(&mut tx, user, &fresh).await?;
    let existing = store::for_user(&mut tx, user).await?;
    tx.commit().await?;
    let handle = Uuid::parse_str(&handle).map_err(|e| internal("user handle", e))?;
    let exclude: Vec<_> = existing.iter().map(stored_passkey).collect::<Result<Vec<_>, _>>()?;
    let exclude: Vec<_> = exclude.iter().map(|p| p.cred_id().clone()).collect();
    let (challenge, state): (CreationChallengeResponse, PasskeyRegistration) = webauthn
        .start_passkey_registration(handle, session.email(), session.email(), Some(exclude))
        .map_err(|e| internal("start registration", e))?;
    begin(app, &session_key(session, Purpose::Register), Purpose::Register, Some(user), &state).await?;
    let mut options = options(&challenge)?;
    // Ask for a discoverable credential, so that the passkey can sign in without the address
    // and password (the verifier does not depend on it: an authenticator that cannot keep
    // one still registers, and then serves as a second factor).
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    Ok(options)
}

fn rand_bytes() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // A version 4 UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// Completes a registration with the browser's answer (the JSON of the
/// `PublicKeyCredential`), stores the passkey under `name` and audits it; returns its id.
pub async fn finish_registration(app: &App, session: &Session, name: &str, credential: &str) -> Result<i64, AppError> {
    if session.record.stage != Stage::Full {
        return Err(AppError::Forbidden("register a passkey before signing in"));
    }
    let name = valid_name(name)?;
    let answer: RegisterPublicKeyCredential = parse(credential)?;
    let webauthn = verifier(app)?;
    let now = app.now();
    let user = session.user_id();
    let actor = actor_of(session);
    let mut tx = app.store.begin().await?;
    let Some(ceremony) =
        store::take_ceremony(&mut tx, &session_key(session, Purpose::Register), Purpose::Register, now)
            .await?
            .filter(|c| c.user == Some(user))
    else {
        tx.commit().await?;
        return Err(AppError::Invalid("the registration expired or was used; start again".into()));
    };
    let state: PasskeyRegistration = serde_json::from_str(&ceremony.state).map_err(|e| internal("ceremony", e))?;
    let passkey = match webauthn.finish_passkey_registration(&answer, &state) {
        Ok(passkey) => passkey,
        Err(err) => {
            audit::record(&mut tx, app, &actor, "auth.passkey.register.fail", &format!("user:{user}"), reason(&err))
                .await?;
            tx.commit().await?;
            return Err(AppError::Invalid(format!("the passkey was not accepted ({})", reason(&err))));
        }
    };
    let transports: Vec<String> = answer
        .response
        .transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)))
        .filter(|t| t != "unknown")
        .collect();
    let json = serde_json::to_string(&passkey).map_err(|e| internal("passkey", e))?;
    let credential_id = b64(passkey.cred_id());
    // The counter at registration, from the verifier's stored credential.
    let sign_count = counter_of(&json);
    let id = store::insert(
        &mut tx,
        &store::NewPasskey {
            user,
            credential_id: &credential_id,
            credential: &json,
            sign_count,
            transports: &transports,
            name: &name,
            at: now,
        },
    )
    .await?;
    audit::record(&mut tx, app, &actor, "auth.passkey.register", &format!("user:{user}"), &format!("passkey={id}"))
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The counter inside the verifier's stored credential (`cred.counter`), 0 when absent.
fn counter_of(json: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("cred")?.get("counter")?.as_i64())
        .unwrap_or(0)
}

/// Why the verifier refused, as a short code for the audit trail and the message (never
/// anything the browser sent).
fn reason(err: &WebauthnError) -> &'static str {
    match err {
        WebauthnError::InvalidRPOrigin => "origin",
        WebauthnError::InvalidRPIDHash => "relying-party",
        WebauthnError::MismatchedChallenge | WebauthnError::ChallengeNotFound => "challenge",
        WebauthnError::CredentialPossibleCompromise => "counter",
        WebauthnError::UserNotVerified | WebauthnError::UserNotPresent => "user-verification",
        WebauthnError::InvalidClientDataType => "type",
        WebauthnError::CredentialAlteredAlgFromRequest | WebauthnError::CredentialNotFound => "credential",
        WebauthnError::CredentialExcludedFromRequest | WebauthnError::CredentialAlreadyExists => "registered-already",
        WebauthnError::CredentialCrossOrigin => "cross-origin",
        _ => "signature",
    }
}

// ---- The account page -------------------------------------------------------------------

/// The session's own passkeys.
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<PasskeyRecord>, AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("list passkeys")) };
    let mut tx = app.store.snapshot().await?;
    let list = store::for_user(&mut tx, *id).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Renames one of the actor's own passkeys.
pub async fn rename(app: &App, actor: &Actor, passkey: i64, name: &str) -> Result<(), AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("rename passkeys")) };
    let name = valid_name(name)?;
    let mut tx = app.store.begin().await?;
    if !store::rename(&mut tx, *id, passkey, &name).await? {
        return Err(AppError::NotFound("passkey".into()));
    }
    audit::record(&mut tx, app, actor, "auth.passkey.rename", &format!("user:{id}"), &format!("passkey={passkey}"))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes one of the actor's own passkeys. Refused for the last one of an account that an
/// admin requires to use a passkey (it could then not sign in).
pub async fn remove(app: &App, actor: &Actor, passkey: i64) -> Result<(), AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("remove passkeys")) };
    let mut tx = app.store.begin().await?;
    let mine = store::for_user(&mut tx, *id).await?;
    if !mine.iter().any(|p| p.id == passkey) {
        tx.rollback().await?;
        return Err(AppError::NotFound("passkey".into()));
    }
    if mine.len() == 1 && store::required(&mut tx, *id).await? {
        tx.rollback().await?;
        return Err(AppError::Conflict(
            "this is your only passkey and your account must sign in with one: register another first".into(),
        ));
    }
    store::remove(&mut tx, *id, passkey).await?;
    audit::record(&mut tx, app, actor, "auth.passkey.remove", &format!("user:{id}"), &format!("passkey={passkey}"))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Requires an account to sign in with a passkey, or lifts the requirement (admins). Once
/// required, a TOTP or recovery code no longer completes its sign-in when it has a passkey;
/// until it has one, it is sent to register one right after signing in.
pub async fn set_required(app: &App, actor: &Actor, email: &str, required: bool) -> Result<bool, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .filter(|u| !u.deleted)
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    if required && user.role == embargo_domain::Role::Partner {
        tx.rollback().await?;
        return Err(AppError::Conflict(
            "partner contacts have no account page to register a passkey on; they sign in with TOTP".into(),
        ));
    }
    let changed = store::set_required(&mut tx, user.id, required).await?;
    if changed {
        let action = if required { "user.passkey.require" } else { "user.passkey.unrequire" };
        audit::record(&mut tx, app, actor, action, &format!("user:{}", user.id), "").await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// The accounts required to sign in with a passkey (admins).
pub async fn required_accounts(app: &App, actor: &Actor) -> Result<Vec<UserId>, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let ids = store::required_users(&mut tx).await?;
    tx.rollback().await?;
    Ok(ids)
}

// ---- Signing in ---------------------------------------------------------------------------

/// A completed sign-in with a passkey.
#[derive(Debug, Clone)]
pub struct PasskeySignIn {
    /// The fully signed-in session's new cookie value.
    pub token: String,
    /// The account's address (for the device cookie).
    pub email: String,
    /// The account's role.
    pub role: embargo_domain::Role,
}

/// Starts the second factor with a passkey for a session at stage `password`: the options
/// for `navigator.credentials.get`, allowing the account's passkeys.
pub async fn start_second_factor(app: &App, session: &Session) -> Result<serde_json::Value, AppError> {
    if session.record.stage != Stage::Password {
        return Err(AppError::Conflict("this session is signed in already".into()));
    }
    let webauthn = verifier(app)?;
    let user = session.user_id();
    let mut tx = app.store.snapshot().await?;
    let records = store::for_user(&mut tx, user).await?;
    tx.rollback().await?;
    if records.is_empty() {
        return Err(AppError::Conflict("this account has no passkey".into()));
    }
    let passkeys = records.iter().map(stored_passkey).collect::<Result<Vec<_>, _>>()?;
    let (challenge, state): (RequestChallengeResponse, PasskeyAuthentication) =
        webauthn.start_passkey_authentication(&passkeys).map_err(|e| internal("start authentication", e))?;
    begin(app, &session_key(session, Purpose::SecondFactor), Purpose::SecondFactor, Some(user), &state).await?;
    options(&challenge)
}

/// Completes the second factor with the browser's answer: on success the session is fully
/// signed in under a new token. Charged to the sign-in limits like a TOTP code.
pub async fn finish_second_factor(
    app: &App,
    session: &Session,
    credential: &str,
    address: &str,
    device: Option<&str>,
) -> Result<PasskeySignIn, AppError> {
    if session.record.stage != Stage::Password {
        return Err(AppError::Conflict("this session is signed in already".into()));
    }
    let charged = crate::sessions::charge_account(app, session.email(), address, device).await?;
    let answer: PublicKeyCredential = parse(credential)?;
    let webauthn = verifier(app)?;
    let now = app.now();
    let user = session.user_id();
    let actor = actor_of(session);
    let mut tx = app.store.begin().await?;
    let ceremony =
        store::take_ceremony(&mut tx, &session_key(session, Purpose::SecondFactor), Purpose::SecondFactor, now).await?;
    let Some(ceremony) = ceremony.filter(|c| c.user == Some(user)) else {
        tx.commit().await?;
        return Err(AppError::Invalid("the sign-in expired or was used; start again".into()));
    };
    let state: PasskeyAuthentication = serde_json::from_str(&ceremony.state).map_err(|e| internal("ceremony", e))?;
    let record = store::by_credential_id(&mut tx, &b64(answer.get_credential_id())).await?.filter(|r| r.user == user);
    let Some(record) = record else {
        return refuse(app, tx, &actor, user, None, "credential").await;
    };
    let result = webauthn.finish_passkey_authentication(&answer, &state);
    let result = match result {
        Ok(result) => result,
        Err(err) => return refused(app, tx, &actor, user, &record, &err).await,
    };
    if let Err(err) = accept(&mut tx, &record, &result, now).await {
        return refused(app, tx, &actor, user, &record, &err).await;
    }
    let token = crate::tokens::secret("");
    store_sessions::promote(
        &mut tx,
        session.record.id,
        &crate::tokens::hash(&token),
        crate::sessions::expiry(app, now),
    )
    .await?;
    crate::sessions::succeeded(&mut tx, &charged).await?;
    audit::record(
        &mut tx,
        app,
        &actor,
        "auth.sign_in",
        &format!("user:{user}"),
        &format!("session={} passkey={}", session.record.id, record.id),
    )
    .await?;
    tx.commit().await?;
    Ok(PasskeySignIn { token, email: session.email().to_owned(), role: session.record.user.role })
}

/// Records a verified use: the counter must move forward (or stay at zero for an
/// authenticator without one), checked again by the conditional update.
async fn accept(
    tx: &mut embargo_store::Tx,
    record: &PasskeyRecord,
    result: &AuthenticationResult,
    now: embargo_domain::Timestamp,
) -> Result<(), WebauthnError> {
    let mut passkey = stored_passkey(record).map_err(|_| WebauthnError::CredentialNotFound)?;
    passkey.update_credential(result);
    let json = serde_json::to_string(&passkey).map_err(|_| WebauthnError::CredentialNotFound)?;
    let counter = i64::from(result.counter());
    match store::record_use(tx, record.id, counter, &json, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(WebauthnError::CredentialPossibleCompromise),
        Err(_) => Err(WebauthnError::CredentialNotFound),
    }
}

/// A refusal after the ceremony was taken: audited (a counter that went back as
/// `auth.passkey.cloned`, naming the passkey and both counters), then the error.
async fn refused<T>(
    app: &App,
    mut tx: embargo_store::Tx,
    actor: &Actor,
    user: UserId,
    record: &PasskeyRecord,
    err: &WebauthnError,
) -> Result<T, AppError> {
    if matches!(err, WebauthnError::CredentialPossibleCompromise) {
        audit::record(
            &mut tx,
            app,
            actor,
            "auth.passkey.cloned",
            &format!("user:{user}"),
            &format!("passkey={} stored_count={}", record.id, record.sign_count),
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("embargo_passkey_cloned_total").increment(1);
        tracing::warn!(user = user.0, passkey = record.id, "passkey signature counter went back: refused (cloned?)");
        return Err(AppError::Invalid(
            "this passkey's signature counter went back, which a copied authenticator does: it was refused".into(),
        ));
    }
    refuse(app, tx, actor, user, Some(record.id), reason(err)).await
}

async fn refuse<T>(
    app: &App,
    mut tx: embargo_store::Tx,
    actor: &Actor,
    user: UserId,
    passkey: Option<i64>,
    why: &str,
) -> Result<T, AppError> {
    let details = match passkey {
        Some(id) => format!("passkey={id} reason={why}"),
        None => format!("reason={why}"),
    };
    audit::record(&mut tx, app, actor, "auth.passkey.fail", &format!("user:{user}"), &details).await?;
    tx.commit().await?;
    metrics::counter!("embargo_sign_in_failures_total").increment(1);
    Err(AppError::Invalid(format!("the passkey was not accepted ({why})")))
}

/// Starts a password-less sign-in: the options for `navigator.credentials.get` with no
/// allowed credentials (the authenticator offers its discoverable ones), and a random token
/// for a cookie that binds the answer to this browser. Charged to the address's sign-in
/// limit (a success takes it back).
pub async fn start_passwordless(app: &App, address: &str) -> Result<(String, serde_json::Value), AppError> {
    let charged = crate::sessions::charge_address(app, address).await?;
    let webauthn = verifier(app)?;
    let (mut challenge, state): (RequestChallengeResponse, DiscoverableAuthentication) =
        webauthn.start_discoverable_authentication().map_err(|e| internal("start authentication", e))?;
    // A button press, not the autofill of conditional mediation.
    challenge.mediation = None;
    let token = crate::tokens::secret("");
    begin(app, &login_key(&token), Purpose::Passwordless, None, &state).await?;
    // The charge stays (so that asking for options in a loop is limited too) until this
    // ceremony signs in: `finish_passwordless` takes it back.
    drop(charged);
    Ok((token, options(&challenge)?))
}

fn login_key(token: &str) -> String {
    format!("login:{}", crate::tokens::hash(token))
}

/// Completes a password-less sign-in: the ceremony bound to the cookie's `token`, the
/// account found by the authenticator's user handle and credential ID (enabled, not
/// deleted), the assertion verified. On success a fully signed-in session starts.
pub async fn finish_passwordless(
    app: &App,
    token: &str,
    credential: &str,
    address: &str,
    user_agent: &str,
) -> Result<PasskeySignIn, AppError> {
    // (Not charged again: each answer needs a ceremony of its own, and starting one was
    // charged.)
    let answer: PublicKeyCredential = parse(credential)?;
    let webauthn = verifier(app)?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let Some(ceremony) = store::take_ceremony(&mut tx, &login_key(token), Purpose::Passwordless, now).await? else {
        tx.commit().await?;
        return Err(AppError::Invalid("the sign-in expired or was used; start again".into()));
    };
    let state: DiscoverableAuthentication =
        serde_json::from_str(&ceremony.state).map_err(|e| internal("ceremony", e))?;
    let system = Actor::System("sign-in");
    let fail = AppError::Invalid("this passkey does not belong to an account here".into());
    let handle = answer.get_user_unique_id().and_then(|b| Uuid::from_slice(b).ok()).map(|u| u.hyphenated().to_string());
    let user = match &handle {
        Some(handle) => store::user_by_handle(&mut tx, handle).await?,
        None => None,
    };
    let record = store::by_credential_id(&mut tx, &b64(answer.get_credential_id())).await?;
    let (Some(user), Some(record)) = (user, record) else {
        audit::record(&mut tx, app, &system, "auth.passkey.fail", "auth", "reason=unknown-credential").await?;
        tx.commit().await?;
        metrics::counter!("embargo_sign_in_failures_total").increment(1);
        return Err(fail);
    };
    let actor = Actor::User { id: user.id, role: user.role };
    if record.user != user.id {
        return refuse(app, tx, &actor, user.id, Some(record.id), "credential").await;
    }
    if user.disabled || user.deleted {
        return refuse(app, tx, &actor, user.id, Some(record.id), "account-disabled").await;
    }
    let passkey = stored_passkey(&record)?;
    let result = match webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey) {
        Ok(result) => result,
        Err(err) => return refused(app, tx, &actor, user.id, &record, &err).await,
    };
    if let Err(err) = accept(&mut tx, &record, &result, now).await {
        return refused(app, tx, &actor, user.id, &record, &err).await;
    }
    let token = crate::tokens::secret("");
    let ua = crate::sessions::user_agent_summary(user_agent);
    let id = store_sessions::create(
        &mut tx,
        &crate::tokens::hash(&token),
        user.id,
        Stage::Full,
        &ua,
        now,
        crate::sessions::expiry(app, now),
    )
    .await?;
    crate::sessions::forgive_address(&mut tx, app, address).await?;
    audit::record(
        &mut tx,
        app,
        &actor,
        "auth.sign_in",
        &format!("user:{}", user.id),
        &format!("session={id} passkey={}", record.id),
    )
    .await?;
    tx.commit().await?;
    Ok(PasskeySignIn { token, email: user.email, role: user.role })
}
