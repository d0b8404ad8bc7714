//! Instance-wide key/value facts (first-start markers and the like). Plain values are never
//! confidential; what is (instance secrets, a message held for forwarding) is sealed.

use sqlx::Row;

use crate::{StoreError, Tx};

/// Reads a value.
pub async fn get(tx: &mut Tx, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM instance_meta WHERE key = $1").bind(key).fetch_optional(tx.conn()).await?;
    row.map(|r| Ok(r.try_get("value")?)).transpose()
}

/// Reads a value in one statement outside any transaction (a version check on every
/// page, without a snapshot's `BEGIN` and `ROLLBACK` around it).
pub async fn get_now(store: &crate::Store, key: &str) -> Result<Option<String>, StoreError> {
    let row =
        sqlx::query("SELECT value FROM instance_meta WHERE key = $1").bind(key).fetch_optional(store.pool()).await?;
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

/// Increments a counter (absent: 0) in the caller's transaction and returns its new
/// value. Concurrent increments serialise on the row, so each one counts.
pub async fn increment(tx: &mut Tx, key: &str) -> Result<i64, StoreError> {
    let value: String = sqlx::query_scalar(
        "INSERT INTO instance_meta (key, value) VALUES ($1, '1') \
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(instance_meta.value AS BIGINT) + 1 AS TEXT) \
         RETURNING value",
    )
    .bind(key)
    .fetch_one(tx.conn())
    .await?;
    value.parse().map_err(|_| StoreError::Corrupt(format!("instance_meta {key}: not a counter")))
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

/// Where the id of the instance's master key is recorded.
const MASTER_KEY_ID: &str = "master_key_id";

/// The id of the master key the database's sealed values are made with, as recorded by
/// [`record_key_id`].
pub async fn recorded_key_id(tx: &mut Tx) -> Result<Option<String>, StoreError> {
    get(tx, MASTER_KEY_ID).await
}

/// For a database from before [`record_key_id`]: the id of the master key a sealed value was
/// made with, read off its header (a reporter's address, else the instance's OpenPGP key);
/// `None` when nothing sealed is stored yet.
pub async fn sampled_key_id(tx: &mut Tx) -> Result<Option<String>, StoreError> {
    let sample: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT email_enc FROM reporters LIMIT 1").fetch_optional(tx.conn()).await?;
    let sealed = match sample {
        Some(sealed) => Some(sealed),
        // Sealed instance secrets are stored hex-encoded (`insert_sealed`); this is the key
        // `embargo_app::openpgp` keeps there.
        None => sqlx::query_scalar::<_, String>("SELECT value FROM instance_meta WHERE key = 'openpgp.instance_key'")
            .fetch_optional(tx.conn())
            .await?
            .and_then(|text| hex::decode(text).ok()),
    };
    Ok(sealed.as_deref().and_then(embargo_crypto::Keyring::key_id_of))
}

/// Records the id of the master key in use, unless one is recorded already.
pub async fn record_key_id(tx: &mut Tx, key_id: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO instance_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(MASTER_KEY_ID)
        .bind(key_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Stores a sealed value, replacing any.
pub async fn set_sealed(tx: &mut Tx, key: &str, value: &str) -> Result<(), StoreError> {
    let sealed = hex::encode(tx.seal(value, &format!("instance_meta:{key}")));
    set(tx, key, &sealed).await
}

/// The keys that start with `prefix`, in order.
pub async fn keys_with_prefix(tx: &mut Tx, prefix: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT key FROM instance_meta WHERE substr(key, 1, CAST($2 AS INTEGER)) = $1 ORDER BY key")
        .bind(prefix)
        .bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(|r| Ok(r.try_get("key")?)).collect()
}

/// Where the derivation root of the keyring is kept once a master key rotation began (sealed,
/// base64): the instance's first master key, from which blind indexes are derived (ADR 30).
const DERIVATION_ROOT: &str = "keys.derivation_root";

/// The derivation root recorded by a master key rotation, if any.
pub async fn derivation_root(tx: &mut Tx) -> Result<Option<String>, StoreError> {
    get_sealed(tx, DERIVATION_ROOT).await
}

/// Records the derivation root unless one is recorded already.
pub async fn record_derivation_root(tx: &mut Tx, root_base64: &str) -> Result<(), StoreError> {
    insert_sealed(tx, DERIVATION_ROOT, root_base64).await.map(drop)
}

/// Sets the id of the master key in use (after a rotation's switch).
pub async fn set_key_id(tx: &mut Tx, key_id: &str) -> Result<(), StoreError> {
    set(tx, MASTER_KEY_ID, key_id).await
}
