//! A report's assessment: severity in clear (it drives fix targets and sorting), the rest
//! (CVSS vectors, CWE, SSVC, affected versions) as one sealed JSON document that the app
//! layer defines.

use embargo_domain::{ReferenceId, ReportId};
use sqlx::Row;

use crate::{StoreError, Tx};

fn aad(reference: &ReferenceId) -> String {
    format!("reports.assessment:{reference}")
}

/// The assessment document (JSON) and the severity of a report; `None` before any.
pub async fn get(tx: &mut Tx, report: ReportId) -> Result<(Option<String>, Option<String>), StoreError> {
    let row = sqlx::query("SELECT reference, assessment_enc, severity FROM reports WHERE id = $1")
        .bind(report.0)
        .fetch_one(tx.conn())
        .await?;
    let reference: String = row.try_get("reference")?;
    let reference: ReferenceId =
        reference.parse().map_err(|_| StoreError::Corrupt(format!("reference {reference:?}")))?;
    let document = open_document(tx, &reference, row.try_get("assessment_enc")?)?;
    Ok((document, row.try_get("severity")?))
}

/// Opens a report's sealed `assessment_enc`.
pub(crate) fn open_document(
    tx: &Tx,
    reference: &ReferenceId,
    sealed: Option<Vec<u8>>,
) -> Result<Option<String>, StoreError> {
    sealed.map(|sealed| tx.open(&sealed, &aad(reference))).transpose()
}

/// Replaces a report's assessment document (sealed here) and severity.
pub async fn set(
    tx: &mut Tx,
    report: ReportId,
    reference: &ReferenceId,
    document: &str,
    severity: Option<&str>,
) -> Result<(), StoreError> {
    let sealed = tx.seal(document, &aad(reference));
    sqlx::query("UPDATE reports SET assessment_enc = $2, severity = $3 WHERE id = $1")
        .bind(report.0)
        .bind(sealed)
        .bind(severity)
        .execute(tx.conn())
        .await?;
    Ok(())
}
