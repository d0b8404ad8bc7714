//! Advisories: private drafts (the record sealed) and their public publications.
//!
//! The record is opaque JSON here (the app layer defines it with `embargo-advisory`).
//! Public routes and feeds read only [`Publication`]s, written by [`publish`]: nothing about
//! a draft (its ID, title, CVE, or that it exists) can reach them.

use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A stored advisory, record opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryRow {
    /// Database id.
    pub id: i64,
    /// The internal handle (`DRAFT-YYYY-NNNN`; `PREFIX-YYYY-NNNN` for advisories made before
    /// public IDs were assigned at publication). The sealed record is bound to it.
    pub advisory_id: String,
    /// The public ID (`PREFIX-YYYY-NNNN`), from the first publication on.
    pub public_id: Option<String>,
    /// One of `embargo_domain::AdvisoryState::CODES` (the use cases parse it).
    pub state: String,
    /// The record, JSON.
    pub record: String,
    /// Who created it (actor text).
    pub created_by: String,
    /// Who asked for review.
    pub submitted_by: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

fn aad(advisory_id: &str) -> String {
    format!("advisories.record:{advisory_id}")
}

/// Hands out the next internal handle number of `year` (for drafts and imports; private).
pub async fn next_handle(tx: &mut Tx, year: i16) -> Result<u32, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO advisory_handles (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = advisory_handles.last + 1 RETURNING last",
    )
    .bind(i64::from(year))
    .fetch_one(tx.conn())
    .await?;
    u32::try_from(last).map_err(|_| StoreError::Corrupt("advisory handle counter".into()))
}

/// Hands out the next public number of `year` (sequential, never reused): only at
/// publication, in the publishing transaction, so that the public sequence has no gaps.
pub async fn next_number(tx: &mut Tx, year: i16) -> Result<u32, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO advisory_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = advisory_counters.last + 1 RETURNING last",
    )
    .bind(i64::from(year))
    .fetch_one(tx.conn())
    .await?;
    u32::try_from(last).map_err(|_| StoreError::Corrupt("advisory counter".into()))
}

/// Inserts a draft; returns its database id.
pub async fn insert(
    tx: &mut Tx,
    advisory_id: &str,
    record: &str,
    created_by: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    let sealed = tx.seal(record, &aad(advisory_id));
    sqlx::query_scalar(
        "INSERT INTO advisories (advisory_id, state, record_enc, created_by, created_at, updated_at) \
         VALUES ($1, 'draft', $2, $3, $4, $4) RETURNING id",
    )
    .bind(advisory_id)
    .bind(sealed)
    .bind(created_by)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "an advisory with this ID"))
}

const SELECT: &str = "SELECT id, advisory_id, public_id, state, record_enc, created_by, submitted_by, approved_by, \
     created_at, updated_at FROM advisories";

fn row_of(tx: &Tx, row: &sqlx::any::AnyRow) -> Result<AdvisoryRow, StoreError> {
    let advisory_id: String = row.try_get("advisory_id")?;
    let sealed: Vec<u8> = row.try_get("record_enc")?;
    Ok(AdvisoryRow {
        id: row.try_get("id")?,
        record: tx.open(&sealed, &aad(&advisory_id))?,
        advisory_id,
        public_id: row.try_get("public_id")?,
        state: row.try_get("state")?,
        created_by: row.try_get("created_by")?,
        submitted_by: row.try_get("submitted_by")?,
        approved_by: row.try_get("approved_by")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

/// An advisory by its handle or, once published, its public ID.
pub async fn get(tx: &mut Tx, handle_or_public_id: &str) -> Result<Option<AdvisoryRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{SELECT} WHERE advisory_id = $1 OR public_id = $1 ORDER BY CASE WHEN advisory_id = $1 THEN 0 ELSE 1 END LIMIT 1"
        )
    });
    let row = sqlx::query(SQL.as_str()).bind(handle_or_public_id).fetch_optional(tx.conn()).await?;
    row.map(|row| row_of(tx, &row)).transpose()
}

/// Records the public ID given at the first publication.
pub async fn set_public_id(tx: &mut Tx, id: i64, public_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE advisories SET public_id = $2 WHERE id = $1 AND public_id IS NULL")
        .bind(id)
        .bind(public_id)
        .execute(tx.conn())
        .await
        .map_err(|e| StoreError::on_unique(e, "an advisory with this public ID"))?;
    Ok(())
}

/// The most recently changed advisory that covers a report, if any (one row opened).
pub async fn newest_for_report(tx: &mut Tx, report: ReportId) -> Result<Option<AdvisoryRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{SELECT} WHERE id IN (SELECT advisory_id FROM advisory_reports WHERE report_id = $1) \
             ORDER BY updated_at DESC, id DESC LIMIT 1"
        )
    });
    let row = sqlx::query(SQL.as_str()).bind(report.0).fetch_optional(tx.conn()).await?;
    row.map(|row| row_of(tx, &row)).transpose()
}

/// Every advisory, most recently changed first, optionally of one state.
pub async fn list(tx: &mut Tx, state: Option<&str>) -> Result<Vec<AdvisoryRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{SELECT} WHERE ($1 IS NULL OR state = $1) ORDER BY updated_at DESC, id DESC")
    });
    let rows = sqlx::query(SQL.as_str()).bind(state).fetch_all(tx.conn()).await?;
    rows.iter().map(|row| row_of(tx, row)).collect()
}

/// Replaces the record (sealed here, bound to the handle `advisory_id`).
pub async fn update_record(
    tx: &mut Tx,
    id: i64,
    advisory_id: &str,
    record: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let sealed = tx.seal(record, &aad(advisory_id));
    sqlx::query("UPDATE advisories SET record_enc = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Moves an advisory to `state`, recording who asked for review or approved when given.
pub async fn set_state(
    tx: &mut Tx,
    id: i64,
    state: &str,
    submitted_by: Option<&str>,
    approved_by: Option<&str>,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE advisories SET state = $2, submitted_by = COALESCE($3, submitted_by), \
         approved_by = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(submitted_by)
    .bind(approved_by)
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Who edited the revision under review (actor texts, in no particular order).
pub async fn editors(tx: &mut Tx, id: i64) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT editor FROM advisory_editors WHERE advisory_id = $1 ORDER BY editor")
        .bind(id)
        .fetch_all(tx.conn())
        .await?)
}

/// Replaces the editors of the revision under review.
pub async fn set_editors(tx: &mut Tx, id: i64, editors: &[&str]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM advisory_editors WHERE advisory_id = $1").bind(id).execute(tx.conn()).await?;
    for editor in editors {
        sqlx::query("INSERT INTO advisory_editors (advisory_id, editor) VALUES ($1, $2)")
            .bind(id)
            .bind(*editor)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Links a report to an advisory.
pub async fn link_report(tx: &mut Tx, id: i64, report: ReportId) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO advisory_reports (advisory_id, report_id) VALUES ($1, $2) \
         ON CONFLICT (advisory_id, report_id) DO NOTHING",
    )
    .bind(id)
    .bind(report.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The reports an advisory covers.
pub async fn reports(tx: &mut Tx, id: i64) -> Result<Vec<ReportId>, StoreError> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT report_id FROM advisory_reports WHERE advisory_id = $1 ORDER BY report_id")
            .bind(id)
            .fetch_all(tx.conn())
            .await?;
    Ok(ids.into_iter().map(ReportId).collect())
}

/// The advisories that cover a report.
pub async fn for_report(tx: &mut Tx, report: ReportId) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT advisory_id FROM advisory_reports WHERE report_id = $1 ORDER BY advisory_id")
        .bind(report.0)
        .fetch_all(tx.conn())
        .await?)
}

/// One published revision, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The advisory's database id.
    pub advisory: i64,
    /// 1 for the first publication, then one more per update.
    pub revision: i64,
    /// The public identifier (our ID).
    pub public_id: String,
    /// The CVE ID, if any.
    pub cve_id: Option<String>,
    /// Title.
    pub title: String,
    /// First published.
    pub published_at: Timestamp,
    /// This revision.
    pub modified_at: Timestamp,
    /// OSV JSON.
    pub osv: String,
    /// CVE JSON 5 record, when there is a CVE ID.
    pub cve_record: Option<String>,
    /// CSAF JSON.
    pub csaf: String,
    /// CSAF file name (§5.1).
    pub csaf_filename: String,
    /// Detached OpenPGP signature of the CSAF file (armored).
    pub csaf_signature: String,
    /// Markdown.
    pub markdown: String,
    /// Sanitised HTML.
    pub html: String,
}

/// Records a published revision.
pub async fn publish(tx: &mut Tx, p: &Publication) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO advisory_publications (advisory_id, revision, public_id, cve_id, title, published_at, \
         modified_at, osv, cve_record, csaf, csaf_filename, csaf_signature, markdown, html) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(p.advisory)
    .bind(p.revision)
    .bind(&p.public_id)
    .bind(p.cve_id.as_deref())
    .bind(&p.title)
    .bind(ms(p.published_at))
    .bind(ms(p.modified_at))
    .bind(&p.osv)
    .bind(p.cve_record.as_deref())
    .bind(&p.csaf)
    .bind(&p.csaf_filename)
    .bind(&p.csaf_signature)
    .bind(&p.markdown)
    .bind(&p.html)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "this revision"))?;
    Ok(())
}

const SELECT_PUBLICATION: &str = "SELECT advisory_id, revision, public_id, cve_id, title, published_at, modified_at, \
     osv, cve_record, csaf, csaf_filename, csaf_signature, markdown, html FROM advisory_publications p";

fn publication_of(row: &sqlx::any::AnyRow) -> Result<Publication, StoreError> {
    Ok(Publication {
        advisory: row.try_get("advisory_id")?,
        revision: row.try_get("revision")?,
        public_id: row.try_get("public_id")?,
        cve_id: row.try_get("cve_id")?,
        title: row.try_get("title")?,
        published_at: ts(row.try_get("published_at")?)?,
        modified_at: ts(row.try_get("modified_at")?)?,
        osv: row.try_get("osv")?,
        cve_record: row.try_get("cve_record")?,
        csaf: row.try_get("csaf")?,
        csaf_filename: row.try_get("csaf_filename")?,
        csaf_signature: row.try_get("csaf_signature")?,
        markdown: row.try_get("markdown")?,
        html: row.try_get("html")?,
    })
}

/// The latest revision of every published advisory, most recently modified first.
pub async fn publications(tx: &mut Tx) -> Result<Vec<Publication>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{SELECT_PUBLICATION} WHERE p.revision = (SELECT MAX(q.revision) FROM advisory_publications q \
             WHERE q.advisory_id = p.advisory_id) ORDER BY p.modified_at DESC, p.advisory_id DESC"
        )
    });
    let rows = sqlx::query(SQL.as_str()).fetch_all(tx.conn()).await?;
    rows.iter().map(publication_of).collect()
}

/// Every revision of every published advisory, oldest first (for change logs).
pub async fn all_revisions(tx: &mut Tx) -> Result<Vec<Publication>, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{SELECT_PUBLICATION} ORDER BY p.modified_at, p.advisory_id, p.revision"));
    let rows = sqlx::query(SQL.as_str()).fetch_all(tx.conn()).await?;
    rows.iter().map(publication_of).collect()
}

/// The latest published revision of an advisory (by database id).
pub async fn latest_publication(tx: &mut Tx, advisory: i64) -> Result<Option<Publication>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{SELECT_PUBLICATION} WHERE p.advisory_id = $1 ORDER BY p.revision DESC LIMIT 1")
    });
    let row = sqlx::query(SQL.as_str()).bind(advisory).fetch_optional(tx.conn()).await?;
    row.as_ref().map(publication_of).transpose()
}

/// The latest revision of the published advisory with this public ID.
pub async fn publication(tx: &mut Tx, public_id: &str) -> Result<Option<Publication>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{SELECT_PUBLICATION} WHERE p.public_id = $1 ORDER BY p.revision DESC LIMIT 1")
    });
    let row = sqlx::query(SQL.as_str()).bind(public_id).fetch_optional(tx.conn()).await?;
    row.as_ref().map(publication_of).transpose()
}
