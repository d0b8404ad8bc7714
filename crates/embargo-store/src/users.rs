//! Team accounts, API tokens (hashed) and one-time links (hashed).

use embargo_domain::{Role, Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// A team account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Login address.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Argon2id PHC string, when a password is set.
    pub password_hash: Option<String>,
    /// Whether the account is disabled (deleted accounts are disabled too).
    pub disabled: bool,
    /// Whether the account was deleted (its row is kept, anonymised, for attribution).
    pub deleted: bool,
}

pub(crate) fn user_of(row: &sqlx::any::AnyRow) -> Result<UserRecord, StoreError> {
    let role: String = row.try_get("role")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(UserRecord {
        id: UserId(row.try_get("id")?),
        email: row.try_get("email")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        password_hash: row.try_get("password_hash")?,
        disabled: disabled != 0,
        deleted: row.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
    })
}

/// Creates an account. Addresses are unique (case-insensitive).
pub async fn create(
    tx: &mut Tx,
    email: &str,
    role: Role,
    password_hash: Option<&str>,
    at: Timestamp,
) -> Result<UserId, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO users (email, role, password_hash, disabled, created_at) \
         VALUES ($1, $2, $3, 0, $4) RETURNING id",
    )
    .bind(email.trim().to_lowercase())
    .bind(role.as_str())
    .bind(password_hash)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "an account with this e-mail address"))?;
    Ok(UserId(id))
}

/// Finds an account by address.
pub async fn by_email(tx: &mut Tx, email: &str) -> Result<Option<UserRecord>, StoreError> {
    let row = sqlx::query("SELECT id, email, role, password_hash, disabled, deleted_at FROM users WHERE email = $1")
        .bind(email.trim().to_lowercase())
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(user_of).transpose()
}

/// Number of enabled admin accounts.
pub async fn count_admins(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
        .fetch_one(tx.conn())
        .await?)
}

/// Stores an API token's hash.
pub async fn create_token(
    tx: &mut Tx,
    user: UserId,
    token_hash: &str,
    name: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, token_hash, name, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(user.0)
    .bind(token_hash)
    .bind(name)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await?)
}

/// The enabled account owning an unrevoked token with this hash; marks the token used.
pub async fn by_token_hash(tx: &mut Tx, token_hash: &str, at: Timestamp) -> Result<Option<UserRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.role, u.password_hash, u.disabled, u.deleted_at FROM api_tokens t \
         JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled = 0",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    if row.is_some() {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
            .bind(ms(at))
            .bind(token_hash)
            .execute(tx.conn())
            .await?;
    }
    row.as_ref().map(user_of).transpose()
}

/// Stores a one-time link's hash.
pub async fn create_one_time(
    tx: &mut Tx,
    token_hash: &str,
    purpose: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(purpose)
    .bind(ms(at))
    .bind(ms(expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether a one-time link is still valid for `purpose` (without using it).
pub async fn one_time_valid(tx: &mut Tx, token_hash: &str, purpose: &str, at: Timestamp) -> Result<bool, StoreError> {
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 \
         AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose)
    .bind(ms(at))
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.is_some())
}

/// Uses a one-time link: returns whether it was valid for `purpose`; it never works twice.
pub async fn consume_one_time(tx: &mut Tx, token_hash: &str, purpose: &str, at: Timestamp) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 \
         AND used_at IS NULL AND expires_at > $1",
    )
    .bind(ms(at))
    .bind(token_hash)
    .bind(purpose)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Whether any unused, unexpired one-time link exists for `purpose`.
pub async fn one_time_pending(tx: &mut Tx, purpose: &str, at: Timestamp) -> Result<bool, StoreError> {
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM one_time_tokens WHERE purpose = $1 AND used_at IS NULL AND expires_at > $2 LIMIT 1",
    )
    .bind(purpose)
    .bind(ms(at))
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.is_some())
}

fn totp_aad(user: UserId) -> String {
    format!("users.totp_secret:{user}")
}

/// Reads an account by id.
pub async fn get(tx: &mut Tx, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    let row = sqlx::query("SELECT id, email, role, password_hash, disabled, deleted_at FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(user_of).transpose()
}

/// Every account, by address.
pub async fn list(tx: &mut Tx) -> Result<Vec<UserRecord>, StoreError> {
    let rows = sqlx::query("SELECT id, email, role, password_hash, disabled, deleted_at FROM users ORDER BY email")
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(user_of).collect()
}

/// An account's TOTP state: the secret (opened) and whether it was confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totp {
    /// Base32 secret.
    pub secret: String,
    /// Confirmed with a first code (before that it is only being set up).
    pub enabled: bool,
}

/// The account's TOTP secret and state, if one was generated.
pub async fn totp(tx: &mut Tx, user: UserId) -> Result<Option<Totp>, StoreError> {
    let row = sqlx::query("SELECT totp_secret_enc, totp_enabled_at FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(tx.conn())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let sealed: Option<Vec<u8>> = row.try_get("totp_secret_enc")?;
    let enabled: Option<i64> = row.try_get("totp_enabled_at")?;
    match sealed {
        Some(sealed) => Ok(Some(Totp { secret: tx.open(&sealed, &totp_aad(user))?, enabled: enabled.is_some() })),
        None => Ok(None),
    }
}

/// Stores a new, not yet confirmed TOTP secret (sealed).
pub async fn set_totp_secret(tx: &mut Tx, user: UserId, secret: &str) -> Result<(), StoreError> {
    let sealed = tx.seal(secret, &totp_aad(user));
    sqlx::query("UPDATE users SET totp_secret_enc = $1, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $2")
        .bind(sealed)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Marks the TOTP secret confirmed.
pub async fn enable_totp(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET totp_enabled_at = $1 WHERE id = $2")
        .bind(ms(at))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Accepts TOTP time step `step` once: returns false when it (or a later one) was used
/// already, so that an observed code cannot be replayed.
pub async fn accept_totp_step(tx: &mut Tx, user: UserId, step: i64) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(user.0)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// An API token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last used.
    pub last_used_at: Option<Timestamp>,
    /// Revoked.
    pub revoked: bool,
}

/// An account's API tokens.
pub async fn tokens(tx: &mut Tx, user: UserId) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TokenRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: crate::ts(row.try_get("created_at")?)?,
                last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(crate::ts).transpose()?,
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .collect()
}

/// Revokes one of an account's API tokens; returns whether it existed.
pub async fn revoke_token(tx: &mut Tx, user: UserId, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    let updated =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(ms(at))
            .bind(id)
            .bind(user.0)
            .execute(tx.conn())
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Disables or enables an account; returns whether it changed. Deleted accounts stay
/// disabled.
pub async fn set_disabled(tx: &mut Tx, user: UserId, disabled: bool) -> Result<bool, StoreError> {
    let updated = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2 AND disabled <> $1 AND deleted_at IS NULL")
        .bind(i64::from(disabled))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces an account's password hash (`None`: no password sign-in).
pub async fn set_password_hash(tx: &mut Tx, user: UserId, password_hash: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Forgets an account's second factor: the TOTP secret, its confirmation, its replay
/// guard, every recovery code and every passkey. The next sign-in sets up TOTP again.
pub async fn clear_totp(tx: &mut Tx, user: UserId) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET totp_secret_enc = NULL, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $1")
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    crate::passkeys::remove_all(tx, user).await?;
    Ok(())
}

/// Revokes every API token of an account; returns how many were live.
pub async fn revoke_all_tokens(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<u64, StoreError> {
    let updated = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(ms(at))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(updated.rows_affected())
}

/// Deletes an account by anonymising its row: the address becomes
/// `deleted-<id>@deleted.invalid`, the password and second factor are removed, the account
/// is disabled and marked deleted. The id stays, so that what it did stays attributed.
/// (Sessions, tokens and access are the caller's to remove in the same transaction.)
pub async fn anonymise(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<(), StoreError> {
    clear_totp(tx, user).await?;
    sqlx::query("UPDATE users SET email = $1, password_hash = NULL, disabled = 1, deleted_at = $2 WHERE id = $3")
        .bind(format!("deleted-{}@deleted.invalid", user.0))
        .bind(ms(at))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Replaces an account's recovery codes with new ones (their SHA-256 hashes): the old set
/// stops working.
pub async fn replace_recovery_codes(
    tx: &mut Tx,
    user: UserId,
    code_hashes: &[String],
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    if code_hashes.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES {}",
        crate::values_list("($1, $2, $3)", 3, code_hashes.len())
    );
    let mut query = crate::bulk(sql);
    for hash in code_hashes {
        query = query.bind(user.0).bind(hash.as_str()).bind(ms(at));
    }
    query.execute(tx.conn()).await?;
    Ok(())
}

/// Uses a recovery code of an account: returns whether it was valid and unused; it never
/// works twice.
pub async fn use_recovery_code(tx: &mut Tx, user: UserId, code_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
    let updated =
        sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(ms(at))
            .bind(user.0)
            .bind(code_hash)
            .execute(tx.conn())
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// How many unused recovery codes an account has.
pub async fn recovery_codes_left(tx: &mut Tx, user: UserId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user.0)
        .fetch_one(tx.conn())
        .await?)
}
