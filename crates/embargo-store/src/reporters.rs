//! Reporters: their identity is sealed and found again through a blind index of the address.

use embargo_domain::Timestamp;
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// A reporter as read back, identity opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterRecord {
    /// Row id.
    pub id: i64,
    /// Address as given.
    pub email: String,
    /// Display name, when one was given.
    pub name: Option<String>,
    /// OpenPGP certificate (armored), when imported.
    pub openpgp_key: Option<String>,
}

fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

fn aad(index: &str, field: &str) -> String {
    format!("reporters.{field}:{index}")
}

/// The blind index of an address (case-insensitive).
pub fn email_index(tx: &Tx, email: &str) -> String {
    tx.keys.blind_index("reporters.email", normalise(email).as_bytes())
}

/// Finds the reporter with this address or creates one; returns the row id.
pub async fn find_or_create(tx: &mut Tx, email: &str, name: Option<&str>, at: Timestamp) -> Result<i64, StoreError> {
    let index = email_index(tx, email);
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM reporters WHERE email_index = $1")
        .bind(&index)
        .fetch_optional(tx.conn())
        .await?
    {
        return Ok(id);
    }
    let email_enc = tx.seal(email.trim(), &aad(&index, "email"));
    let name_enc = name.map(|n| tx.seal(n, &aad(&index, "name")));
    let id = sqlx::query_scalar(
        "INSERT INTO reporters (email_index, email_enc, name_enc, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&index)
    .bind(email_enc)
    .bind(name_enc)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Reads a reporter, identity opened.
pub async fn get(tx: &mut Tx, id: i64) -> Result<ReporterRecord, StoreError> {
    let row = sqlx::query("SELECT id, email_index, email_enc, name_enc, openpgp_key_enc FROM reporters WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    let index: String = row.try_get("email_index")?;
    let email: Vec<u8> = row.try_get("email_enc")?;
    let name: Option<Vec<u8>> = row.try_get("name_enc")?;
    let key: Option<Vec<u8>> = row.try_get("openpgp_key_enc")?;
    Ok(ReporterRecord {
        id,
        email: tx.open(&email, &aad(&index, "email"))?,
        name: name.map(|n| tx.open(&n, &aad(&index, "name"))).transpose()?,
        openpgp_key: key.map(|k| tx.open(&k, &aad(&index, "openpgp_key"))).transpose()?,
    })
}

/// Stores (replaces) a reporter's OpenPGP certificate.
pub async fn set_openpgp_key(tx: &mut Tx, id: i64, certificate: &str) -> Result<(), StoreError> {
    let index: String =
        sqlx::query_scalar("SELECT email_index FROM reporters WHERE id = $1").bind(id).fetch_one(tx.conn()).await?;
    let sealed = tx.seal(certificate, &aad(&index, "openpgp_key"));
    sqlx::query("UPDATE reporters SET openpgp_key_enc = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The reporter with this address, if any.
pub async fn by_email(tx: &mut Tx, email: &str) -> Result<Option<ReporterRecord>, StoreError> {
    let index = email_index(tx, email);
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM reporters WHERE email_index = $1")
        .bind(&index)
        .fetch_optional(tx.conn())
        .await?;
    match id {
        Some(id) => Ok(Some(get(tx, id).await?)),
        None => Ok(None),
    }
}
