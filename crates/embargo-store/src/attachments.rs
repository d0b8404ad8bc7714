//! Attachments, sealed whole.

use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// An attachment to insert.
#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    /// The report.
    pub report: ReportId,
    /// The message that carried it.
    pub message: Option<i64>,
    /// File name as given (untrusted).
    pub filename: &'a str,
    /// Media type as given (untrusted).
    pub media_type: &'a str,
    /// Content.
    pub data: &'a [u8],
    /// When.
    pub at: Timestamp,
}

/// An attachment's description, opened (content is read separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    /// Row id.
    pub id: i64,
    /// File name.
    pub filename: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: i64,
    /// The message it came with.
    pub message: Option<i64>,
}

fn aad(report: ReportId, field: &str) -> String {
    format!("attachments.{field}:{report}")
}

/// Inserts an attachment.
pub async fn insert(tx: &mut Tx, new: &NewAttachment<'_>) -> Result<i64, StoreError> {
    let filename = tx.seal(new.filename, &aad(new.report, "filename"));
    let media_type = tx.seal(new.media_type, &aad(new.report, "media_type"));
    let data = tx.keys.seal(new.data, aad(new.report, "data").as_bytes());
    let size = i64::try_from(new.data.len()).unwrap_or(i64::MAX);
    let id = sqlx::query_scalar(
        "INSERT INTO attachments (report_id, message_id, filename_enc, media_type_enc, size, \
         data_enc, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new.report.0)
    .bind(new.message)
    .bind(filename)
    .bind(media_type)
    .bind(size)
    .bind(data)
    .bind(ms(new.at))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// A report's attachments (descriptions only).
pub async fn list(tx: &mut Tx, report: ReportId) -> Result<Vec<AttachmentMeta>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, message_id, filename_enc, media_type_enc, size FROM attachments WHERE report_id = $1 ORDER BY id",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let filename: Vec<u8> = row.try_get("filename_enc")?;
            let media_type: Vec<u8> = row.try_get("media_type_enc")?;
            Ok(AttachmentMeta {
                id: row.try_get("id")?,
                filename: tx.open(&filename, &aad(report, "filename"))?,
                media_type: tx.open(&media_type, &aad(report, "media_type"))?,
                size: row.try_get("size")?,
                message: row.try_get("message_id")?,
            })
        })
        .collect()
}

/// An attachment's content.
pub async fn data(tx: &mut Tx, report: ReportId, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT data_enc FROM attachments WHERE id = $1 AND report_id = $2")
            .bind(id)
            .bind(report.0)
            .fetch_optional(tx.conn())
            .await?;
    sealed.map(|s| Ok(tx.keys.open(&s, aad(report, "data").as_bytes())?)).transpose()
}
