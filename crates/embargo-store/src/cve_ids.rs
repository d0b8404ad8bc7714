//! CVE IDs reserved at CVE Services, their state as last seen, and the advisory each is
//! assigned to. Rows are written only by the `cve` use cases, each a person's action.

use embargo_domain::{CveIdState, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A reserved CVE ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveIdRow {
    /// Database id.
    pub id: i64,
    /// `CVE-YYYY-NNNN`.
    pub cve_id: String,
    /// Its state at CVE Services, as last seen.
    pub state: CveIdState,
    /// The assigned advisory's database id.
    pub advisory: Option<i64>,
    /// The assigned advisory's identifier.
    pub advisory_id: Option<String>,
    /// Who reserved it (actor text).
    pub reserved_by: String,
    /// When.
    pub reserved_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

const SELECT: &str = "SELECT c.id, c.cve_id, c.state, c.advisory, a.advisory_id, c.reserved_by, c.reserved_at, \
     c.updated_at FROM cve_ids c LEFT JOIN advisories a ON a.id = c.advisory";

fn row_of(row: &sqlx::any::AnyRow) -> Result<CveIdRow, StoreError> {
    Ok(CveIdRow {
        id: row.try_get("id")?,
        cve_id: row.try_get("cve_id")?,
        state: {
            let code: String = row.try_get("state")?;
            CveIdState::parse(&code).ok_or_else(|| StoreError::Corrupt(format!("CVE ID state {code:?}")))?
        },
        advisory: row.try_get("advisory")?,
        advisory_id: row.try_get("advisory_id")?,
        reserved_by: row.try_get("reserved_by")?,
        reserved_at: ts(row.try_get("reserved_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

/// Records a reserved ID; [`StoreError::Conflict`] when it is already known.
pub async fn insert(
    tx: &mut Tx,
    cve_id: &str,
    state: CveIdState,
    reserved_by: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO cve_ids (cve_id, state, reserved_by, reserved_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(cve_id)
    .bind(state.code())
    .bind(reserved_by)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "this CVE ID"))
}

/// One ID.
pub async fn get(tx: &mut Tx, cve_id: &str) -> Result<Option<CveIdRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{SELECT} WHERE c.cve_id = $1"));
    let row = sqlx::query(SQL.as_str()).bind(cve_id).fetch_optional(tx.conn()).await?;
    row.as_ref().map(row_of).transpose()
}

/// The ID assigned to an advisory, if any.
pub async fn for_advisory(tx: &mut Tx, advisory: i64) -> Result<Option<CveIdRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{SELECT} WHERE c.advisory = $1"));
    let row = sqlx::query(SQL.as_str()).bind(advisory).fetch_optional(tx.conn()).await?;
    row.as_ref().map(row_of).transpose()
}

/// Every ID, newest reservation first.
pub async fn list(tx: &mut Tx) -> Result<Vec<CveIdRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{SELECT} ORDER BY c.reserved_at DESC, c.cve_id DESC"));
    let rows = sqlx::query(SQL.as_str()).fetch_all(tx.conn()).await?;
    rows.iter().map(row_of).collect()
}

/// Assigns an ID to an advisory; [`StoreError::Conflict`] when the advisory already has one.
pub async fn assign(tx: &mut Tx, cve_id: &str, advisory: i64, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE cve_ids SET advisory = $2, updated_at = $3 WHERE cve_id = $1")
        .bind(cve_id)
        .bind(advisory)
        .bind(ms(at))
        .execute(tx.conn())
        .await
        .map_err(|e| StoreError::on_unique(e, "a CVE ID for this advisory"))?;
    Ok(())
}

/// Records the state CVE Services now gives the ID.
pub async fn set_state(tx: &mut Tx, cve_id: &str, state: CveIdState, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE cve_ids SET state = $2, updated_at = $3 WHERE cve_id = $1")
        .bind(cve_id)
        .bind(state.code())
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}
