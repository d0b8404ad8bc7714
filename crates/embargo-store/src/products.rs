//! The product catalogue: products and the responders responsible for them.

use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// A product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
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
    let rows = sqlx::query("SELECT id, name FROM products ORDER BY name").fetch_all(tx.conn()).await?;
    rows.iter().map(|row| Ok(ProductRecord { id: row.try_get("id")?, name: row.try_get("name")? })).collect()
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
