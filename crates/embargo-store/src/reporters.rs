//! Reporters: their identity is sealed and found again through a blind index of the address.

use std::collections::HashMap;

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
    let ids = find_or_create_many(tx, &[(email, name)], at).await?;
    ids.first().copied().ok_or_else(|| StoreError::Corrupt("reporter".into()))
}

/// [`find_or_create`] for several people at once (an address may repeat): one statement
/// finds the known ones, one creates the rest. Returns the row ids in order.
pub async fn find_or_create_many(
    tx: &mut Tx,
    people: &[(&str, Option<&str>)],
    at: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let indexes: Vec<String> = people.iter().map(|(email, _)| email_index(tx, email)).collect();
    let mut distinct: Vec<usize> = Vec::new();
    for (position, index) in indexes.iter().enumerate() {
        if !distinct.iter().any(|&d| indexes[d] == *index) {
            distinct.push(position);
        }
    }
    let mut known: HashMap<String, i64> = HashMap::new();
    let wanted: Vec<&str> = distinct.iter().map(|&d| indexes[d].as_str()).collect();
    ids_by_index(tx, &wanted, &mut known).await?;
    let missing: Vec<usize> = distinct.into_iter().filter(|&d| !known.contains_key(&indexes[d])).collect();
    if !missing.is_empty() {
        let sql = format!(
            "INSERT INTO reporters (email_index, email_enc, name_enc, created_at) VALUES {} \
             ON CONFLICT (email_index) DO NOTHING RETURNING id, email_index",
            crate::values_list("($1, $2, $3, $4)", 4, missing.len())
        );
        let mut query = crate::bulk(sql);
        for &m in &missing {
            let (email, name) = people[m];
            let index = &indexes[m];
            query = query
                .bind(index.as_str())
                .bind(tx.seal(email.trim(), &aad(index, "email")))
                .bind(name.map(|n| tx.seal(n, &aad(index, "name"))))
                .bind(ms(at));
        }
        for row in query.fetch_all(tx.conn()).await? {
            known.insert(row.try_get("email_index")?, row.try_get("id")?);
        }
        // Created meanwhile by a concurrent transaction (PostgreSQL): read them now.
        let raced: Vec<&str> =
            missing.iter().map(|&m| indexes[m].as_str()).filter(|index| !known.contains_key(*index)).collect();
        ids_by_index(tx, &raced, &mut known).await?;
    }
    indexes
        .iter()
        .map(|index| known.get(index).copied().ok_or_else(|| StoreError::Corrupt("reporter not created".into())))
        .collect()
}

/// Adds the ids of the reporters with these address indexes to `known`, in one statement.
async fn ids_by_index(tx: &mut Tx, indexes: &[&str], known: &mut HashMap<String, i64>) -> Result<(), StoreError> {
    if indexes.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT id, email_index FROM reporters WHERE email_index IN ({})",
        crate::placeholder_list(1, indexes.len())
    );
    let mut query = crate::bulk(sql);
    for index in indexes {
        query = query.bind(*index);
    }
    for row in query.fetch_all(tx.conn()).await? {
        known.insert(row.try_get("email_index")?, row.try_get("id")?);
    }
    Ok(())
}

/// Reads a reporter, identity opened.
pub async fn get(tx: &mut Tx, id: i64) -> Result<ReporterRecord, StoreError> {
    let row = sqlx::query("SELECT id, email_index, email_enc, name_enc, openpgp_key_enc FROM reporters WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    reporter_of(tx, &row)
}

/// Reads several reporters in one statement, by id (those that exist).
pub async fn get_many(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, ReporterRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, email_index, email_enc, name_enc, openpgp_key_enc FROM reporters WHERE id IN ({})",
        crate::placeholder_list(1, ids.len())
    );
    let mut query = crate::bulk(sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter().map(|row| reporter_of(tx, row).map(|r| (r.id, r))).collect()
}

fn reporter_of(tx: &Tx, row: &sqlx::any::AnyRow) -> Result<ReporterRecord, StoreError> {
    reporter_in(tx, row, row.try_get("id")?, "")
}

/// The reporter `id` whose columns are in `row`, each name prefixed with `prefix` (for a
/// row that also holds another table's columns).
pub(crate) fn reporter_in(
    tx: &Tx,
    row: &sqlx::any::AnyRow,
    id: i64,
    prefix: &str,
) -> Result<ReporterRecord, StoreError> {
    let index: String = row.try_get(format!("{prefix}email_index").as_str())?;
    let email: Vec<u8> = row.try_get(format!("{prefix}email_enc").as_str())?;
    let name: Option<Vec<u8>> = row.try_get(format!("{prefix}name_enc").as_str())?;
    let key: Option<Vec<u8>> = row.try_get(format!("{prefix}openpgp_key_enc").as_str())?;
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
