//! Passkeys (WebAuthn credentials) of accounts, the accounts' user handles and passkey
//! requirement, and WebAuthn ceremonies under way (ADR 28).
//!
//! The store knows nothing of WebAuthn: a credential is the verifier's JSON, a ceremony's
//! state an opaque text. What it guarantees is the part a database must: a credential ID
//! belongs to one account, a signature counter only grows (a conditional update, so two
//! sign-ins racing with the same counter cannot both pass), and a ceremony is taken once,
//! by the session (or cookie) that started it, before it expires.

use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Id (shown in the list; not a credential).
    pub id: i64,
    /// The account.
    pub user: UserId,
    /// The authenticator's credential ID, base64url without padding.
    pub credential_id: String,
    /// The verifier's stored credential (JSON).
    pub credential: String,
    /// The last signature counter accepted.
    pub sign_count: i64,
    /// The transports the authenticator named at registration (`usb`, `internal`, ...).
    pub transports: Vec<String>,
    /// The name the person gave it.
    pub name: String,
    /// Registered.
    pub created_at: Timestamp,
    /// Last used to sign in.
    pub last_used_at: Option<Timestamp>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, credential_id, credential, sign_count, transports, name, created_at, last_used_at \
             FROM passkeys ",
            $rest
        )
    };
}

fn passkey_of(row: &sqlx::any::AnyRow) -> Result<PasskeyRecord, StoreError> {
    let transports: String = row.try_get("transports")?;
    Ok(PasskeyRecord {
        id: row.try_get("id")?,
        user: UserId(row.try_get("user_id")?),
        credential_id: row.try_get("credential_id")?,
        credential: row.try_get("credential")?,
        sign_count: row.try_get("sign_count")?,
        transports: transports.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        name: row.try_get("name")?,
        created_at: ts(row.try_get("created_at")?)?,
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(ts).transpose()?,
    })
}

/// What a new passkey is stored with.
#[derive(Debug, Clone)]
pub struct NewPasskey<'a> {
    /// The account.
    pub user: UserId,
    /// Credential ID, base64url.
    pub credential_id: &'a str,
    /// The verifier's credential (JSON).
    pub credential: &'a str,
    /// The counter at registration.
    pub sign_count: i64,
    /// Transports named at registration.
    pub transports: &'a [String],
    /// Its name.
    pub name: &'a str,
    /// Registered.
    pub at: Timestamp,
}

/// Stores a new passkey; returns its id. A credential ID already registered (to any
/// account) is a conflict.
pub async fn insert(tx: &mut Tx, new: &NewPasskey<'_>) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO passkeys (user_id, credential_id, credential, sign_count, transports, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new.user.0)
    .bind(new.credential_id)
    .bind(new.credential)
    .bind(new.sign_count)
    .bind(new.transports.join(","))
    .bind(new.name)
    .bind(ms(new.at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "this passkey (it is registered already)"))
}

/// An account's passkeys, oldest first.
pub async fn for_user(tx: &mut Tx, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
    let rows = sqlx::query(select!("WHERE user_id = $1 ORDER BY id")).bind(user.0).fetch_all(tx.conn()).await?;
    rows.iter().map(passkey_of).collect()
}

/// How many passkeys an account has.
pub async fn count(tx: &mut Tx, user: UserId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1").bind(user.0).fetch_one(tx.conn()).await?)
}

/// The passkey with this credential ID, whoever's it is.
pub async fn by_credential_id(tx: &mut Tx, credential_id: &str) -> Result<Option<PasskeyRecord>, StoreError> {
    let row = sqlx::query(select!("WHERE credential_id = $1")).bind(credential_id).fetch_optional(tx.conn()).await?;
    row.as_ref().map(passkey_of).transpose()
}

/// Records a sign-in with a passkey: the new counter, the (possibly updated) credential and
/// the time. The counter only moves forward: the update happens only when `sign_count` is
/// above the stored one, or when both are zero (authenticators without a counter). Returns
/// false when it did not happen (a counter that went back, or a concurrent sign-in that
/// used the same value first).
pub async fn record_use(
    tx: &mut Tx,
    id: i64,
    sign_count: i64,
    credential: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE passkeys SET sign_count = $1, credential = $2, last_used_at = $3 \
         WHERE id = $4 AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))",
    )
    .bind(sign_count)
    .bind(credential)
    .bind(ms(at))
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Renames one of an account's passkeys; returns whether it exists.
pub async fn rename(tx: &mut Tx, user: UserId, id: i64, name: &str) -> Result<bool, StoreError> {
    let updated = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
        .bind(name)
        .bind(id)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Removes one of an account's passkeys; returns whether it existed.
pub async fn remove(tx: &mut Tx, user: UserId, id: i64) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Removes every passkey of an account (a second-factor reset, a deleted account); returns
/// how many there were.
pub async fn remove_all(tx: &mut Tx, user: UserId) -> Result<u64, StoreError> {
    let deleted = sqlx::query("DELETE FROM passkeys WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    Ok(deleted.rows_affected())
}

/// The account's user handle for authenticators, made (from `fresh`) on first use.
pub async fn user_handle(tx: &mut Tx, user: UserId, fresh: &str) -> Result<String, StoreError> {
    sqlx::query("UPDATE users SET passkey_handle = $1 WHERE id = $2 AND passkey_handle IS NULL")
        .bind(fresh)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    let handle: Option<String> = sqlx::query_scalar("SELECT passkey_handle FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(tx.conn())
        .await?
        .flatten();
    handle.ok_or_else(|| StoreError::Corrupt(format!("no account {user}")))
}

/// The account whose user handle this is.
pub async fn user_by_handle(tx: &mut Tx, handle: &str) -> Result<Option<crate::users::UserRecord>, StoreError> {
    let row =
        sqlx::query("SELECT id, email, role, password_hash, disabled, deleted_at FROM users WHERE passkey_handle = $1")
            .bind(handle)
            .fetch_optional(tx.conn())
            .await?;
    row.as_ref().map(crate::users::user_of).transpose()
}

/// Whether an admin requires this account to sign in with a passkey.
pub async fn required(tx: &mut Tx, user: UserId) -> Result<bool, StoreError> {
    let flag: Option<i64> = sqlx::query_scalar("SELECT passkey_required FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(tx.conn())
        .await?;
    Ok(flag.unwrap_or(0) != 0)
}

/// Sets whether this account must sign in with a passkey; returns whether it changed.
pub async fn set_required(tx: &mut Tx, user: UserId, required: bool) -> Result<bool, StoreError> {
    let updated = sqlx::query("UPDATE users SET passkey_required = $1 WHERE id = $2 AND passkey_required <> $1")
        .bind(i64::from(required))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// The accounts that are required to sign in with a passkey.
pub async fn required_users(tx: &mut Tx) -> Result<Vec<UserId>, StoreError> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE passkey_required <> 0 ORDER BY id").fetch_all(tx.conn()).await?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a new passkey for a signed-in account.
    Register,
    /// The second factor after the password.
    SecondFactor,
    /// Signing in with a passkey alone.
    Passwordless,
}

impl Purpose {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SecondFactor => "second-factor",
            Purpose::Passwordless => "passwordless",
        }
    }
}

/// A ceremony taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// The account it was started for (none for a password-less sign-in).
    pub user: Option<UserId>,
    /// The verifier's state.
    pub state: String,
}

/// Starts a ceremony under `key` (any earlier one under the same key is replaced), and
/// forgets ceremonies that expired.
pub async fn start_ceremony(
    tx: &mut Tx,
    key: &str,
    purpose: Purpose,
    user: Option<UserId>,
    state: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1 OR ceremony_key = $2")
        .bind(ms(at))
        .bind(key)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (ceremony_key, purpose, user_id, state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key)
    .bind(purpose.as_str())
    .bind(user.map(|u| u.0))
    .bind(state)
    .bind(ms(at))
    .bind(ms(expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Takes the ceremony under `key` for `purpose`: it is deleted whatever comes next, so it
/// can be answered once. `None` when there is none, it is for another purpose, or it
/// expired.
pub async fn take_ceremony(
    tx: &mut Tx,
    key: &str,
    purpose: Purpose,
    at: Timestamp,
) -> Result<Option<Ceremony>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM webauthn_ceremonies WHERE ceremony_key = $1 RETURNING purpose, user_id, state, expires_at",
    )
    .bind(key)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("purpose")?;
    let expires: i64 = row.try_get("expires_at")?;
    if stored != purpose.as_str() || expires <= ms(at) {
        return Ok(None);
    }
    Ok(Some(Ceremony { user: row.try_get::<Option<i64>, _>("user_id")?.map(UserId), state: row.try_get("state")? }))
}
