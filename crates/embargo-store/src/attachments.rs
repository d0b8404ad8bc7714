//! Attachments, sealed whole.
//!
//! Each of an attachment's sealed values (file name, media type, content) is bound by its
//! associated data to its row: `attachments.<field>:v2:<report id>:<attachment id>:<message
//! id or ->`, so a ciphertext moved to another attachment, of the same report or another,
//! or to another column, no longer opens (ADR 31). Rows sealed before migration 0022
//! (`seal_version` 1) named only their report; they still open, and [`reseal_stale`]
//! re-seals them bound to their row (the app's `attachment.reseal` job).

use embargo_crypto::CryptoError;
use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms};

/// The version of the associated data that [`insert`] writes (`seal_version`).
pub const SEAL_VERSION: i64 = 2;

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

/// Where a sealed value lives, as its associated data names it.
#[derive(Debug, Clone, Copy)]
struct Place {
    report: ReportId,
    id: i64,
    message: Option<i64>,
    version: i64,
}

impl Place {
    fn aad(&self, field: &str) -> String {
        match self.version {
            // 0: a version-1 row that did not open when it was to be re-sealed.
            0 | 1 => format!("attachments.{field}:{}", self.report),
            _ => {
                let message = self.message.map_or_else(|| "-".to_owned(), |m| m.to_string());
                format!("attachments.{field}:v2:{}:{}:{message}", self.report, self.id)
            }
        }
    }

    fn seal(&self, tx: &Tx, field: &str, value: &[u8]) -> Vec<u8> {
        tx.keys.seal(value, self.aad(field).as_bytes())
    }

    /// Opens one of the row's values; a value that does not open under the row's associated
    /// data is named as not belonging to this row.
    fn open(&self, tx: &Tx, field: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if !(0..=SEAL_VERSION).contains(&self.version) {
            return Err(StoreError::Corrupt(format!(
                "attachment {} has seal version {}, which this version does not know",
                self.id, self.version
            )));
        }
        tx.keys.open(sealed, self.aad(field).as_bytes()).map_err(|err| match err {
            CryptoError::Corrupt => StoreError::Corrupt(format!(
                "the sealed {field} of attachment {} (report {}) does not belong to that row: \
                 it was moved from another row or altered",
                self.id, self.report.0
            )),
            other => other.into(),
        })
    }

    fn open_str(&self, tx: &Tx, field: &str, sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(tx, field, sealed)?)
            .map_err(|_| StoreError::Corrupt(format!("the {field} of attachment {} is not UTF-8", self.id)))
    }
}

/// Inserts an attachment. Its id is known only once the row exists, so the row is
/// inserted with empty values and then given its sealed values, in the caller's
/// transaction (no one ever sees the empty row).
pub async fn insert(tx: &mut Tx, new: &NewAttachment<'_>) -> Result<i64, StoreError> {
    let size = i64::try_from(new.data.len()).unwrap_or(i64::MAX);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO attachments (report_id, message_id, filename_enc, media_type_enc, size, \
         data_enc, created_at, seal_version) VALUES ($1, $2, $3, $3, $4, $3, $5, $6) RETURNING id",
    )
    .bind(new.report.0)
    .bind(new.message)
    .bind(Vec::<u8>::new())
    .bind(size)
    .bind(ms(new.at))
    .bind(SEAL_VERSION)
    .fetch_one(tx.conn())
    .await?;
    let place = Place { report: new.report, id, message: new.message, version: SEAL_VERSION };
    let filename = place.seal(tx, "filename", new.filename.as_bytes());
    let media_type = place.seal(tx, "media_type", new.media_type.as_bytes());
    let data = place.seal(tx, "data", new.data);
    sqlx::query("UPDATE attachments SET filename_enc = $1, media_type_enc = $2, data_enc = $3 WHERE id = $4")
        .bind(filename)
        .bind(media_type)
        .bind(data)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(id)
}

/// A report's attachments (descriptions only).
pub async fn list(tx: &mut Tx, report: ReportId) -> Result<Vec<AttachmentMeta>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, message_id, filename_enc, media_type_enc, size, seal_version FROM attachments \
         WHERE report_id = $1 ORDER BY id",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let place = Place {
                report,
                id: row.try_get("id")?,
                message: row.try_get("message_id")?,
                version: row.try_get("seal_version")?,
            };
            let filename: Vec<u8> = row.try_get("filename_enc")?;
            let media_type: Vec<u8> = row.try_get("media_type_enc")?;
            Ok(AttachmentMeta {
                id: place.id,
                filename: place.open_str(tx, "filename", &filename)?,
                media_type: place.open_str(tx, "media_type", &media_type)?,
                size: row.try_get("size")?,
                message: place.message,
            })
        })
        .collect()
}

/// An attachment's content.
pub async fn data(tx: &mut Tx, report: ReportId, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let row =
        sqlx::query("SELECT message_id, seal_version, data_enc FROM attachments WHERE id = $1 AND report_id = $2")
            .bind(id)
            .bind(report.0)
            .fetch_optional(tx.conn())
            .await?;
    let Some(row) = row else { return Ok(None) };
    let place = Place { report, id, message: row.try_get("message_id")?, version: row.try_get("seal_version")? };
    let sealed: Vec<u8> = row.try_get("data_enc")?;
    place.open(tx, "data", &sealed).map(Some)
}

/// The first attachment still sealed by version 1, if any (found through the partial index
/// of migration 0022, without opening anything).
pub async fn first_stale(tx: &mut Tx) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM attachments WHERE seal_version = 1 ORDER BY id LIMIT 1")
        .fetch_optional(tx.conn())
        .await?)
}

/// What one [`reseal_stale`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Rows now bound to their row.
    pub resealed: usize,
    /// Rows whose values did not open where they are (moved from another row or altered
    /// while sealed by version 1): left as they are, marked `seal_version` 0 so that they
    /// are not tried again, and still refused on every read.
    pub unreadable: Vec<i64>,
}

/// Re-seals attachments sealed by version 1 so that each is bound to its row: opened with
/// the associated data they were sealed with, sealed again with the current one, at most
/// `max_rows` rows and, past the first, `max_bytes` of content. A row whose value does not
/// open is never re-sealed (that would make a misplaced value look right).
pub async fn reseal_stale(tx: &mut Tx, max_rows: i64, max_bytes: i64) -> Result<Resealed, StoreError> {
    let candidates: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, size FROM attachments WHERE seal_version = 1 ORDER BY id LIMIT $1")
            .bind(max_rows)
            .fetch_all(tx.conn())
            .await?;
    let mut total = 0i64;
    let mut outcome = Resealed::default();
    for (id, size) in candidates {
        if total > 0 && total.saturating_add(size) > max_bytes {
            break;
        }
        total = total.saturating_add(size.max(1));
        let row = sqlx::query(
            "SELECT report_id, message_id, seal_version, filename_enc, media_type_enc, data_enc \
             FROM attachments WHERE id = $1",
        )
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
        let old = Place {
            report: ReportId(row.try_get("report_id")?),
            id,
            message: row.try_get("message_id")?,
            version: row.try_get("seal_version")?,
        };
        let new = Place { version: SEAL_VERSION, ..old };
        let mut sealed = Vec::with_capacity(3);
        for field in ["filename", "media_type", "data"] {
            let value: Vec<u8> = row.try_get(format!("{field}_enc").as_str())?;
            match old.open(tx, field, &value) {
                Ok(plain) => sealed.push(new.seal(tx, field, &zeroize::Zeroizing::new(plain))),
                Err(StoreError::Corrupt(_)) => break,
                Err(err) => return Err(err),
            }
        }
        let Ok([filename, media_type, data]) = <[Vec<u8>; 3]>::try_from(sealed) else {
            sqlx::query("UPDATE attachments SET seal_version = 0 WHERE id = $1 AND seal_version = 1")
                .bind(id)
                .execute(tx.conn())
                .await?;
            outcome.unreadable.push(id);
            continue;
        };
        sqlx::query(
            "UPDATE attachments SET filename_enc = $1, media_type_enc = $2, data_enc = $3, seal_version = $4 \
             WHERE id = $5 AND seal_version = 1",
        )
        .bind(filename)
        .bind(media_type)
        .bind(data)
        .bind(SEAL_VERSION)
        .bind(id)
        .execute(tx.conn())
        .await?;
        outcome.resealed += 1;
    }
    Ok(outcome)
}
