//! The product catalogue: products and the responders responsible for them.

use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// A product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductRecord {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where its source lives (`https://...`); empty when not set.
    pub repository_url: String,
    /// Its OSV ecosystem (`crates.io`, `npm`, `PyPI`, `Go`...); empty when not set.
    pub ecosystem: String,
    /// Its package URL (`pkg:cargo/example`); empty when not set.
    pub purl: String,
    /// The release lines that get security fixes (`2.x`, `1.8`).
    pub release_lines: Vec<String>,
    /// The command private CI runs on every push to a fix branch (`sh -c`, in a fresh
    /// checkout); empty when not set.
    pub test_command: String,
    /// Where a release's files and `SHA256SUMS` appear (`https://...`, may hold
    /// `{version}`); empty when not set.
    pub artifacts_url: String,
    /// The file names a release must publish there (may hold `{version}`).
    pub artifacts: Vec<String>,
    /// A local directory served at `artifacts_url` where the release command's `dist/`
    /// files are published (may hold `{version}`); empty when not set.
    pub artifacts_dir: String,
    /// The release build run in the sandbox on a checkout of the pushed tag (`sh -c`);
    /// empty when not set.
    pub release_command: String,
    /// An external CI's URL that gets a signed `{product, line, tag, commit}` per release;
    /// empty when not set.
    pub release_webhook: String,
    /// The release tag's name from the fixed version (`v{version}`; empty means that).
    pub tag_format: String,
    /// An armored OpenPGP certificate whose key signs `SHA256SUMS`; empty when not set.
    pub signing_key: String,
}

/// Adds a product; names are unique.
pub async fn create(tx: &mut Tx, name: &str, at: Timestamp) -> Result<i64, StoreError> {
    sqlx::query_scalar("INSERT INTO products (name, created_at) VALUES ($1, $2) RETURNING id")
        .bind(name)
        .bind(ms(at))
        .fetch_one(tx.conn())
        .await
        .map_err(|e| StoreError::on_unique(e, "a product with this name"))
}

/// Every product, by name.
pub async fn list(tx: &mut Tx) -> Result<Vec<ProductRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, repository_url, ecosystem, purl, release_lines, test_command, artifacts_url, artifacts, \
         artifacts_dir, release_command, release_webhook, tag_format, signing_key FROM products ORDER BY name",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let lines: String = row.try_get("release_lines")?;
            let artifacts: String = row.try_get("artifacts")?;
            Ok(ProductRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                repository_url: row.try_get("repository_url")?,
                ecosystem: row.try_get("ecosystem")?,
                purl: row.try_get("purl")?,
                release_lines: serde_json::from_str(&lines)
                    .map_err(|_| StoreError::Corrupt(format!("release lines {lines:?}")))?,
                test_command: row.try_get("test_command")?,
                artifacts_url: row.try_get("artifacts_url")?,
                artifacts: serde_json::from_str(&artifacts)
                    .map_err(|_| StoreError::Corrupt(format!("artifacts {artifacts:?}")))?,
                artifacts_dir: row.try_get("artifacts_dir")?,
                release_command: row.try_get("release_command")?,
                release_webhook: row.try_get("release_webhook")?,
                tag_format: row.try_get("tag_format")?,
                signing_key: row.try_get("signing_key")?,
            })
        })
        .collect()
}

/// Replaces a product's catalogue details (not its name); false when there is no such
/// product.
pub async fn update(tx: &mut Tx, product: &ProductRecord) -> Result<bool, StoreError> {
    let lines = serde_json::to_string(&product.release_lines).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let done = sqlx::query(
        "UPDATE products SET repository_url = $2, ecosystem = $3, purl = $4, release_lines = $5, test_command = $6 \
         WHERE id = $1",
    )
    .bind(product.id)
    .bind(&product.repository_url)
    .bind(&product.ecosystem)
    .bind(&product.purl)
    .bind(lines)
    .bind(&product.test_command)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a product's release settings (artifacts, release build, tag format, signing
/// key); false when there is no such product.
pub async fn set_release(tx: &mut Tx, product: &ProductRecord) -> Result<bool, StoreError> {
    let artifacts = serde_json::to_string(&product.artifacts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let done = sqlx::query(
        "UPDATE products SET artifacts_url = $2, artifacts = $3, artifacts_dir = $4, release_command = $5, \
         release_webhook = $6, tag_format = $7, signing_key = $8 WHERE id = $1",
    )
    .bind(product.id)
    .bind(&product.artifacts_url)
    .bind(artifacts)
    .bind(&product.artifacts_dir)
    .bind(&product.release_command)
    .bind(&product.release_webhook)
    .bind(&product.tag_format)
    .bind(&product.signing_key)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a responder responsible for a product.
pub async fn add_responder(tx: &mut Tx, product: i64, user: UserId) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO product_responders (product_id, user_id) VALUES ($1, $2) ON CONFLICT (product_id, user_id) DO NOTHING",
    )
    .bind(product)
    .bind(user.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The responders responsible for a product.
pub async fn responders(tx: &mut Tx, product: i64) -> Result<Vec<UserId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM product_responders WHERE product_id = $1")
        .bind(product)
        .fetch_all(tx.conn())
        .await?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// Takes a product's responsibility from a responder; returns whether they had it.
pub async fn remove_responder(tx: &mut Tx, product: i64, user: UserId) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM product_responders WHERE product_id = $1 AND user_id = $2")
        .bind(product)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes every product's responsibility from a responder (account deleted); returns how
/// many they had.
pub async fn remove_responder_everywhere(tx: &mut Tx, user: UserId) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM product_responders WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    Ok(done.rows_affected())
}

/// Renames a product (names are unique); false when there is no such product.
pub async fn rename(tx: &mut Tx, product: i64, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE products SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(product)
        .execute(tx.conn())
        .await
        .map_err(|e| StoreError::on_unique(e, "a product with this name"))?;
    Ok(done.rows_affected() == 1)
}

/// How many reports name this product.
pub async fn report_count(tx: &mut Tx, product: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM reports WHERE product_id = $1")
        .bind(product)
        .fetch_one(tx.conn())
        .await?)
}

/// Deletes a product and its responders; false when there is no such product. The caller
/// makes sure nothing refers to it.
pub async fn delete(tx: &mut Tx, product: i64) -> Result<bool, StoreError> {
    sqlx::query("DELETE FROM product_responders WHERE product_id = $1").bind(product).execute(tx.conn()).await?;
    let done = sqlx::query("DELETE FROM products WHERE id = $1").bind(product).execute(tx.conn()).await?;
    Ok(done.rows_affected() == 1)
}
