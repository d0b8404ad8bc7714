//! The audit trail: append-only and hash-chained (see `embargo_domain::audit`).
//!
//! Architecture invariant: entries are only ever appended, in the same transaction as the
//! change or read they record. Appends serialise on the single `audit_head` row (a row lock
//! on PostgreSQL, the write lock on SQLite), so the chain never forks.

use embargo_domain::Timestamp;
use embargo_domain::audit::{AuditFields, ChainError, ChainVerifier, StoredEntry};
use sqlx::Row;

use crate::{Store, StoreError, Tx, ms};

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// When.
    pub at: Timestamp,
    /// Actor text form.
    pub actor: &'a str,
    /// Action name, such as `report.read`.
    pub action: &'a str,
    /// Subject, such as `report:EMB-2026-1`.
    pub subject: &'a str,
    /// Non-confidential details. Never report content.
    pub details: &'a str,
}

/// Appends an entry; returns its sequence number.
pub async fn append(tx: &mut Tx, entry: &NewEntry<'_>) -> Result<i64, StoreError> {
    let seqs = append_many(tx, std::slice::from_ref(entry)).await?;
    seqs.first().copied().ok_or_else(|| StoreError::Corrupt("audit append".into()))
}

/// Appends entries in order; returns their sequence numbers. Three statements however many
/// entries: reserve the sequence numbers, insert the chained rows, move the head.
pub async fn append_many(tx: &mut Tx, entries: &[NewEntry<'_>]) -> Result<Vec<i64>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(entries.len()).map_err(|_| StoreError::Corrupt("audit batch".into()))?;
    let row = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(count)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(head_missing)?;
    let last: i64 = row.try_get("seq")?;
    let mut prev_hash: String = row.try_get("hash")?;
    let mut chained = Vec::with_capacity(entries.len());
    for (offset, entry) in (0..count).zip(entries) {
        let fields = AuditFields {
            seq: last - count + 1 + offset,
            at_ms: ms(entry.at),
            actor: entry.actor,
            action: entry.action,
            subject: entry.subject,
            details: entry.details,
        };
        let hash = fields.hash(&prev_hash);
        chained.push((fields, std::mem::replace(&mut prev_hash, hash.clone()), hash));
    }
    let sql = format!(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES {}",
        crate::values_list("($1, $2, $3, $4, $5, $6, $7, $8)", 8, chained.len())
    );
    let mut query = crate::bulk(sql);
    for (fields, prev, hash) in &chained {
        query = query
            .bind(fields.seq)
            .bind(fields.at_ms)
            .bind(fields.actor)
            .bind(fields.action)
            .bind(fields.subject)
            .bind(fields.details)
            .bind(prev.as_str())
            .bind(hash.as_str());
    }
    query.execute(tx.conn()).await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev_hash).execute(tx.conn()).await?;
    Ok(chained.iter().map(|(fields, _, _)| fields.seq).collect())
}

fn head_missing() -> StoreError {
    StoreError::Corrupt(
        "the audit head row is missing (audit_head has no row 1): it was deleted from the database, which only \
         tampering does; nothing can be recorded until it is restored (run `embargo audit verify`)"
            .into(),
    )
}

/// The chain's head: the last sequence number and its hash (`None` when the head row was
/// deleted, which only tampering does).
pub async fn head(tx: &mut Tx) -> Result<Option<(i64, String)>, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_optional(tx.conn()).await?;
    row.map(|row| Ok((row.try_get("seq")?, row.try_get("hash")?))).transpose()
}

/// How many entries the log holds.
pub async fn count(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(tx.conn()).await?)
}

/// The hash of the entry with sequence number `seq`, if it exists.
pub async fn hash_at(tx: &mut Tx, seq: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1").bind(seq).fetch_optional(tx.conn()).await?)
}

fn entry_of(row: &sqlx::any::AnyRow) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        seq: row.try_get("seq")?,
        at_ms: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Entries after `after_seq`, in sequence order, at most `limit`.
pub async fn list(tx: &mut Tx, after_seq: i64, limit: i64) -> Result<Vec<StoredEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(entry_of).collect()
}

/// The outcome of verifying the chain.
#[derive(Debug)]
pub enum Verification {
    /// Every entry is intact; this many entries were checked.
    Intact(i64),
    /// The first problem found.
    Broken(ChainError),
}

/// Walks the whole chain in sequence order and checks every link and the head, inside one
/// read snapshot so that appends running meanwhile do not disturb it.
pub async fn verify(store: &Store) -> Result<Verification, StoreError> {
    let mut tx = store.snapshot().await?;
    let Some((head_seq, head_hash)) = head(&mut tx).await? else {
        let entries = count(&mut tx).await?;
        tx.rollback().await?;
        return Ok(Verification::Broken(ChainError::HeadMissing { entries }));
    };
    let mut verifier = ChainVerifier::default();
    let mut after = i64::MIN;
    loop {
        let batch = list(&mut tx, after, 2000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for entry in &batch {
            if let Err(err) = verifier.push(entry) {
                return Ok(Verification::Broken(err));
            }
        }
    }
    tx.rollback().await?;
    Ok(match verifier.finish(head_seq, &head_hash) {
        Ok(count) => Verification::Intact(count),
        Err(err) => Verification::Broken(err),
    })
}

/// The latest `limit` entries about one subject (such as `report:SEC-2026-1`), oldest first.
pub async fn list_for_subject(tx: &mut Tx, subject: &str, limit: i64) -> Result<Vec<StoredEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log \
         WHERE subject = $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(subject)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    let mut entries = rows.iter().map(entry_of).collect::<Result<Vec<_>, _>>()?;
    entries.reverse();
    Ok(entries)
}
