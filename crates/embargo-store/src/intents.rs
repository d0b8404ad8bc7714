//! External effects as intents: what Embargo is about to ask another service to do,
//! recorded before the call, and the result recorded after (see `embargo_app::intents`).
//! At most one intent per destination is pending at a time.

use embargo_domain::Timestamp;
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A recorded intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Database id.
    pub id: i64,
    /// Unique per effect.
    pub idempotency_key: String,
    /// The kind of effect (`cve.publish`, ...).
    pub operation: String,
    /// Where it goes (`cve-services:CVE-2026-1234`).
    pub destination: String,
    /// SHA-256 (hex) of the content to send.
    pub content_hash: String,
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// What the service answered or reconciling found, once known.
    pub result: Option<String>,
    /// Who asked (actor text).
    pub requested_by: String,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An intent to record.
#[derive(Debug, Clone, Copy)]
pub struct NewIntent<'a> {
    /// Unique per effect.
    pub idempotency_key: &'a str,
    /// The kind of effect.
    pub operation: &'a str,
    /// Where it goes.
    pub destination: &'a str,
    /// SHA-256 (hex) of the content to send.
    pub content_hash: &'a str,
    /// Who asked.
    pub requested_by: &'a str,
    /// Now.
    pub at: Timestamp,
}

const SELECT: &str = "SELECT id, idempotency_key, operation, destination, content_hash, state, result, \
     requested_by, created_at, updated_at FROM external_intents";

fn row_of(row: &sqlx::any::AnyRow) -> Result<Intent, StoreError> {
    Ok(Intent {
        id: row.try_get("id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        operation: row.try_get("operation")?,
        destination: row.try_get("destination")?,
        content_hash: row.try_get("content_hash")?,
        state: row.try_get("state")?,
        result: row.try_get("result")?,
        requested_by: row.try_get("requested_by")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

/// Records a pending intent. [`StoreError::Conflict`] when its key is taken or another
/// intent for the same destination is pending.
pub async fn insert(tx: &mut Tx, new: &NewIntent<'_>) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO external_intents (idempotency_key, operation, destination, content_hash, state, \
         requested_by, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) RETURNING id",
    )
    .bind(new.idempotency_key)
    .bind(new.operation)
    .bind(new.destination)
    .bind(new.content_hash)
    .bind(new.requested_by)
    .bind(ms(new.at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "an intent for this effect"))
}

/// One intent.
pub async fn get(tx: &mut Tx, id: i64) -> Result<Option<Intent>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{SELECT} WHERE id = $1"));
    let row = sqlx::query(SQL.as_str()).bind(id).fetch_optional(tx.conn()).await?;
    row.as_ref().map(row_of).transpose()
}

/// The pending intent for `destination`, if any.
pub async fn pending_for(tx: &mut Tx, destination: &str) -> Result<Option<Intent>, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{SELECT} WHERE destination = $1 AND state = 'pending'"));
    let row = sqlx::query(SQL.as_str()).bind(destination).fetch_optional(tx.conn()).await?;
    row.as_ref().map(row_of).transpose()
}

/// The intents for `destination`, newest first.
pub async fn for_destination(tx: &mut Tx, destination: &str) -> Result<Vec<Intent>, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{SELECT} WHERE destination = $1 ORDER BY id DESC"));
    let rows = sqlx::query(SQL.as_str()).bind(destination).fetch_all(tx.conn()).await?;
    rows.iter().map(row_of).collect()
}

/// Settles a pending intent as `done` or `failed` with `result`. Returns whether it was
/// pending (a settled intent is never settled again).
pub async fn settle(tx: &mut Tx, id: i64, state: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
    if !matches!(state, "done" | "failed") {
        return Err(StoreError::Corrupt(format!("an intent cannot be settled as {state:?}")));
    }
    let changed = sqlx::query(
        "UPDATE external_intents SET state = $1, result = $2, updated_at = $3 WHERE id = $4 AND state = 'pending'",
    )
    .bind(state)
    .bind(result)
    .bind(ms(at))
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(changed == 1)
}
