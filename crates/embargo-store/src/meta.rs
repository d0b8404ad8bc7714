//! Instance-wide key/value facts (first-start markers and the like). Plain values are never
//! confidential; what is (instance secrets, a message held for forwarding) is sealed.

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

/// Reads a sealed value (for instance secrets such as the OpenPGP key).
pub async fn get_sealed(tx: &mut Tx, key: &str) -> Result<Option<String>, StoreError> {
    match get(tx, key).await? {
        Some(text) => {
            let sealed = hex::decode(text).map_err(|_| StoreError::Corrupt(format!("instance_meta {key}")))?;
            Ok(Some(tx.open(&sealed, &format!("instance_meta:{key}"))?))
        }
        None => Ok(None),
    }
}

/// Stores a sealed value unless one exists already; returns whether it stored it.
pub async fn insert_sealed(tx: &mut Tx, key: &str, value: &str) -> Result<bool, StoreError> {
    let sealed = hex::encode(tx.seal(value, &format!("instance_meta:{key}")));
    let inserted = sqlx::query("INSERT INTO instance_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(sealed)
        .execute(tx.conn())
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Removes a value (plain or sealed); returns whether there was one.
pub async fn delete(tx: &mut Tx, key: &str) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM instance_meta WHERE key = $1").bind(key).execute(tx.conn()).await?;
    Ok(deleted.rows_affected() == 1)
}
