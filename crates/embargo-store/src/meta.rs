//! Instance-wide key/value facts (first-start markers and the like). Never confidential.

use sqlx::Row;

use crate::{StoreError, Tx};

/// Reads a value.
pub async fn get(tx: &mut Tx, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM instance_meta WHERE key = $1").bind(key).fetch_optional(tx.conn()).await?;
    row.map(|r| Ok(r.try_get("value")?)).transpose()
}

/// Sets a value.
pub async fn set(tx: &mut Tx, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instance_meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(tx.conn())
    .await?;
    Ok(())
}
