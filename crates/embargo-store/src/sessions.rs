//! Browser sessions (hashed), throttling counters and spent anti-spam challenges.

use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::users::UserRecord;
use crate::{StoreError, Tx, ms, ts};

/// How far a session got through sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; the second factor is still needed.
    Password,
    /// Fully signed in.
    Full,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Password => "password",
            Stage::Full => "full",
        }
    }
}

/// A live session with its account.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Id (shown in the session list; not a credential).
    pub id: i64,
    /// The account.
    pub user: UserRecord,
    /// Sign-in stage.
    pub stage: Stage,
    /// The browser, as it described itself (shortened).
    pub user_agent: String,
    /// Started.
    pub created_at: Timestamp,
    /// Last request.
    pub last_seen_at: Timestamp,
    /// Ends.
    pub expires_at: Timestamp,
    /// An admin requires the account to sign in with a passkey.
    pub passkey_required: bool,
    /// How many passkeys the account has.
    pub passkeys: i64,
}

/// Starts a session; returns its id.
pub async fn create(
    tx: &mut Tx,
    token_hash: &str,
    user: UserId,
    stage: Stage,
    user_agent: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO sessions (token_hash, user_id, stage, user_agent, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id",
    )
    .bind(token_hash)
    .bind(user.0)
    .bind(stage.as_str())
    .bind(user_agent)
    .bind(ms(at))
    .bind(ms(expires_at))
    .fetch_one(tx.conn())
    .await?)
}

const SELECT: &str = "SELECT s.id AS sid, s.stage, s.user_agent, s.created_at AS s_created, s.last_seen_at, \
     s.expires_at, u.id, u.email, u.role, u.password_hash, u.disabled, u.deleted_at, u.passkey_required, \
     (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id) AS passkeys \
     FROM sessions s JOIN users u ON u.id = s.user_id";

fn session_of(row: &sqlx::any::AnyRow) -> Result<SessionRecord, StoreError> {
    let stage: String = row.try_get("stage")?;
    Ok(SessionRecord {
        id: row.try_get("sid")?,
        user: crate::users::user_of(row)?,
        stage: if stage == "full" { Stage::Full } else { Stage::Password },
        user_agent: row.try_get("user_agent")?,
        created_at: ts(row.try_get("s_created")?)?,
        last_seen_at: ts(row.try_get("last_seen_at")?)?,
        expires_at: ts(row.try_get("expires_at")?)?,
        passkey_required: row.try_get::<i64, _>("passkey_required")? != 0,
        passkeys: row.try_get("passkeys")?,
    })
}

/// The live session with this token hash: not revoked, not expired, account enabled. One
/// statement outside a transaction (one round trip: every team request looks it up).
pub async fn lookup(
    store: &crate::Store,
    token_hash: &str,
    at: Timestamp,
) -> Result<Option<SessionRecord>, StoreError> {
    Ok(lookup_with_meta(store, token_hash, at, None).await?.map(|(record, _)| record))
}

/// [`lookup`], with the `instance_meta` value under `meta_key` read in the same statement
/// (every team request also checks the business calendar's version: one round trip, not
/// two).
pub async fn lookup_with_meta(
    store: &crate::Store,
    token_hash: &str,
    at: Timestamp,
    meta_key: Option<&str>,
) -> Result<Option<(SessionRecord, Option<String>)>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let select = SELECT.replacen(
            " FROM sessions s",
            ", (SELECT value FROM instance_meta WHERE key = $3) AS meta_value FROM sessions s",
            1,
        );
        format!("{select} WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled = 0")
    });
    let row =
        sqlx::query(sql.as_str()).bind(token_hash).bind(ms(at)).bind(meta_key).fetch_optional(store.pool()).await?;
    row.as_ref().map(|row| Ok((session_of(row)?, row.try_get("meta_value")?))).transpose()
}

/// Records activity (at most the caller's chosen granularity) and extends the idle expiry.
pub async fn touch(tx: &mut Tx, id: i64, at: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3")
        .bind(ms(at))
        .bind(ms(expires_at))
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Replaces a session's token (after the second factor), marks it fully signed in and
/// sets its expiry.
pub async fn promote(tx: &mut Tx, id: i64, new_token_hash: &str, expires_at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET stage = 'full', token_hash = $1, expires_at = $2 WHERE id = $3")
        .bind(new_token_hash)
        .bind(ms(expires_at))
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An account's live sessions, most recent first.
pub async fn list_for_user(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<Vec<SessionRecord>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "{SELECT} WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.last_seen_at DESC"
        )
    });
    let rows = sqlx::query(sql.as_str()).bind(user.0).bind(ms(at)).fetch_all(tx.conn()).await?;
    rows.iter().map(session_of).collect()
}

/// Revokes one of an account's sessions; returns whether it was live.
pub async fn revoke(tx: &mut Tx, user: UserId, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    let updated =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(ms(at))
            .bind(id)
            .bind(user.0)
            .execute(tx.conn())
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Revokes every session of an account (password change, account disabled).
pub async fn revoke_all(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<u64, StoreError> {
    let updated = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(ms(at))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(updated.rows_affected())
}

/// Counts one event for `key` in the window starting at `window_start`; returns the count
/// including this one.
pub async fn hit(tx: &mut Tx, key: &str, window_start: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1) \
         ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count",
    )
    .bind(key)
    .bind(window_start)
    .fetch_one(tx.conn())
    .await?)
}

/// The count for `key` in a window (0 when none).
pub async fn count(tx: &mut Tx, key: &str, window_start: i64) -> Result<i64, StoreError> {
    let n: Option<i64> = sqlx::query_scalar("SELECT count FROM rate_counters WHERE key = $1 AND window_start = $2")
        .bind(key)
        .bind(window_start)
        .fetch_optional(tx.conn())
        .await?;
    Ok(n.unwrap_or(0))
}

/// The counts of `key` in the windows that started at `since` or later, oldest first:
/// (window start, count).
pub async fn recent(tx: &mut Tx, key: &str, since: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT window_start, count FROM rate_counters WHERE key = $1 AND window_start >= $2 ORDER BY window_start",
    )
    .bind(key)
    .bind(since)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| Ok((row.try_get("window_start")?, row.try_get("count")?))).collect()
}

/// Forgets the counts of `key` in windows that started before `before`.
pub async fn expire(tx: &mut Tx, key: &str, before: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_counters WHERE key = $1 AND window_start < $2")
        .bind(key)
        .bind(before)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Forgets a key's counts (after a successful sign-in).
pub async fn clear(tx: &mut Tx, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_counters WHERE key = $1").bind(key).execute(tx.conn()).await?;
    Ok(())
}

/// Deletes counters of windows that started before `before`, and spent challenges that
/// expired.
pub async fn purge(tx: &mut Tx, before: i64, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_counters WHERE window_start < $1").bind(before).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM spent_challenges WHERE expires_at < $1").bind(ms(at)).execute(tx.conn()).await?;
    Ok(())
}

/// Spends a challenge: returns false when it was spent before.
pub async fn spend_challenge(tx: &mut Tx, hash: &str, expires_at: Timestamp) -> Result<bool, StoreError> {
    let inserted =
        sqlx::query("INSERT INTO spent_challenges (challenge_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(hash)
            .bind(ms(expires_at))
            .execute(tx.conn())
            .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Takes one event back from `key`'s count in a window (a success is not held against the
/// account or the address).
pub async fn forgive(tx: &mut Tx, key: &str, window_start: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE rate_counters SET count = count - 1 WHERE key = $1 AND window_start = $2 AND count > 0")
        .bind(key)
        .bind(window_start)
        .execute(tx.conn())
        .await?;
    Ok(())
}
