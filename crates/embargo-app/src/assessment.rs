//! A report's assessment: CVSS 3.1 and 4.0 vectors, CWE identifiers, an SSVC supplier
//! decision, and the affected products and version ranges (which the advisory reuses).
//!
//! Stored as one sealed JSON document per report (it reveals what is vulnerable before
//! disclosure); only the severity is kept in clear, because fix deadlines and sorting need
//! it. Vectors are stored in canonical order and scores are always recomputed from them.

use embargo_domain::cvss::Vector;
use embargo_domain::cwe::CweId;
use embargo_domain::ssvc::SupplierDecision;
use embargo_domain::{Actor, ReferenceId, ReportId};
use embargo_store::Tx;
use serde::{Deserialize, Serialize};

use crate::authz::Permission;
use crate::{App, AppError, audit};

/// The assessment document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Assessment {
    /// A CVSS 3.1 vector, canonical.
    pub cvss_v3: Option<String>,
    /// A CVSS 4.0 vector, canonical.
    pub cvss_v4: Option<String>,
    /// CWE identifiers (`CWE-79`).
    pub cwe: Vec<String>,
    /// An SSVC supplier decision vector (`SSVCv2/E:P/U:E/TI:T/PSI:M/DSOI:S/`).
    pub ssvc: Option<String>,
    /// Affected products and version ranges.
    pub affected: Vec<Affected>,
}

/// One affected product with a version range: introduced (inclusive), then fixed
/// (exclusive) or last affected (inclusive). Versions are the product's own strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Affected {
    /// The product (see the catalogue).
    pub product_id: i64,
    /// First affected version; `0` for "all versions before the fix".
    pub introduced: String,
    /// First fixed version, if any.
    pub fixed: String,
    /// Last affected version, when no fix exists yet.
    pub last_affected: String,
}

impl Assessment {
    /// The severity that drives fix targets: from the 4.0 vector if present, else 3.1.
    pub fn severity(&self) -> Option<embargo_domain::cvss::Severity> {
        self.cvss_v4.as_deref().or(self.cvss_v3.as_deref()).and_then(|v| Vector::parse(v).ok()).map(|v| v.severity())
    }

    /// The parsed SSVC decision.
    pub fn ssvc_decision(&self) -> Option<SupplierDecision> {
        self.ssvc.as_deref().and_then(|v| v.parse().ok())
    }
}

/// Reads a report's assessment in the caller's transaction (permission already checked).
pub(crate) async fn get_in(tx: &mut Tx, report: ReportId) -> Result<Assessment, AppError> {
    of_document(embargo_store::assessments::get(tx, report).await?.0)
}

/// The assessment in a stored document (none before the first assessment).
pub(crate) fn of_document(document: Option<String>) -> Result<Assessment, AppError> {
    match document {
        Some(json) => serde_json::from_str(&json).map_err(|e| AppError::Internal(e.into())),
        None => Ok(Assessment::default()),
    }
}

/// Replaces the affected ranges of `product` in a report's assessment by the fix's backport
/// matrix: one range per affected line, from its first affected version (`0` when not
/// known) to the version that carries the fix. Called in the matrix change's transaction
/// (permission checked there).
pub(crate) async fn set_affected_from_fix(
    tx: &mut Tx,
    report: &embargo_store::reports::ReportRecord,
    product: i64,
    lines: &[embargo_store::fixes::FixLine],
) -> Result<(), AppError> {
    let mut assessment = get_in(tx, report.id).await?;
    assessment.affected.retain(|a| a.product_id != product);
    for line in lines.iter().filter(|l| l.affected) {
        assessment.affected.push(Affected {
            product_id: product,
            introduced: if line.introduced.is_empty() { "0".to_owned() } else { line.introduced.clone() },
            fixed: line.fixed_version.clone(),
            last_affected: String::new(),
        });
    }
    let severity = assessment.severity().map(|s| s.as_str().to_lowercase());
    let json = serde_json::to_string(&assessment).map_err(|e| AppError::Internal(e.into()))?;
    embargo_store::assessments::set(tx, report.id, &report.reference, &json, severity.as_deref()).await?;
    Ok(())
}

/// Applies `change` to a report's assessment: checks permission, stores it, audits `what`
/// (never the values: they are embargoed), and moves the fix deadline when the severity
/// changed.
async fn update(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    what: &str,
    change: impl FnOnce(&mut Assessment) -> Result<(), AppError>,
) -> Result<Assessment, AppError> {
    let mut tx = app.store.begin().await?;
    let report = embargo_store::reports::get_by_reference(&mut tx, reference)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {reference}")))?;
    match crate::authz::require(&mut tx, actor, Permission::ChangeReport.on(report.id)).await {
        Err(AppError::Forbidden(_)) => return Err(AppError::NotFound(format!("report {reference}"))),
        other => other?,
    }
    let (_, old_severity) = embargo_store::assessments::get(&mut tx, report.id).await?;
    let mut assessment = get_in(&mut tx, report.id).await?;
    change(&mut assessment)?;
    let severity = assessment.severity().map(|s| s.as_str().to_lowercase());
    let json = serde_json::to_string(&assessment).map_err(|e| AppError::Internal(e.into()))?;
    embargo_store::assessments::set(&mut tx, report.id, reference, &json, severity.as_deref()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "report.assess",
        &format!("report:{reference}"),
        &format!("field={what} severity={}", severity.as_deref().unwrap_or("unrated")),
    )
    .await?;
    if severity != old_severity {
        crate::sla::refresh_in(&mut tx, app, report.id, None).await?;
    }
    tx.commit().await?;
    Ok(assessment)
}

/// Sets (or, with `None` or an empty string, removes) the CVSS vector of one version.
/// The vector's own prefix decides the version; it must match `version`.
pub async fn set_cvss(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    version: &str,
    vector: Option<&str>,
) -> Result<Assessment, AppError> {
    if version != "3.1" && version != "4.0" {
        return Err(AppError::Invalid(format!("CVSS version {version:?}: expected 3.1 or 4.0")));
    }
    let canonical = match vector.map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            let parsed = Vector::parse(text).map_err(|e| AppError::Invalid(format!("CVSS vector: {e}")))?;
            if parsed.version() != version {
                return Err(AppError::Invalid(format!(
                    "that is a CVSS {} vector; this field takes CVSS {version}",
                    parsed.version()
                )));
            }
            Some(parsed.to_string())
        }
    };
    let field = if version == "3.1" { "cvss_v3" } else { "cvss_v4" };
    update(app, actor, reference, field, |a| {
        if version == "3.1" {
            a.cvss_v3 = canonical;
        } else {
            a.cvss_v4 = canonical;
        }
        Ok(())
    })
    .await
}

/// Parses CWE identifiers separated by commas or spaces (`CWE-79, CWE-352`).
pub fn parse_cwe_list(text: &str) -> Result<Vec<String>, AppError> {
    let mut ids = Vec::new();
    for word in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()) {
        let id: CweId =
            word.parse().map_err(|_| AppError::Invalid(format!("{word:?} is not a CWE identifier such as CWE-79")))?;
        let id = id.to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > 20 {
        return Err(AppError::Invalid("at most 20 CWE identifiers".into()));
    }
    Ok(ids)
}

/// Sets the CWE identifiers and the SSVC decision.
pub async fn set_classification(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    cwe: &str,
    ssvc: Option<SupplierDecision>,
) -> Result<Assessment, AppError> {
    let cwe = parse_cwe_list(cwe)?;
    update(app, actor, reference, "classification", |a| {
        a.cwe = cwe;
        a.ssvc = ssvc.map(|d| d.to_string());
        Ok(())
    })
    .await
}

fn clean_version(text: &str, what: &str) -> Result<String, AppError> {
    let text = text.trim();
    if text.len() > 100 || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AppError::Invalid(format!("{what} {text:?}: at most 100 characters, no spaces")));
    }
    Ok(text.to_owned())
}

/// Replaces the affected products and version ranges. Every product must be in the
/// catalogue; a range needs an introduced version (use `0` for "from the start") and at
/// most one of fixed and last affected.
pub async fn set_affected(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    rows: &[Affected],
) -> Result<Assessment, AppError> {
    let mut clean = Vec::new();
    {
        let mut tx = app.store.snapshot().await?;
        let products = embargo_store::products::list(&mut tx).await?;
        tx.rollback().await?;
        for row in rows {
            if !products.iter().any(|p| p.id == row.product_id) {
                return Err(AppError::Invalid(format!("no product with id {} in the catalogue", row.product_id)));
            }
            let affected = Affected {
                product_id: row.product_id,
                introduced: clean_version(&row.introduced, "introduced version")?,
                fixed: clean_version(&row.fixed, "fixed version")?,
                last_affected: clean_version(&row.last_affected, "last affected version")?,
            };
            if affected.introduced.is_empty() {
                return Err(AppError::Invalid(
                    "each range needs an introduced version (0 for all earlier versions)".into(),
                ));
            }
            if !affected.fixed.is_empty() && !affected.last_affected.is_empty() {
                return Err(AppError::Invalid(
                    "a range has a fixed version or a last affected version, not both".into(),
                ));
            }
            clean.push(affected);
        }
    }
    if clean.len() > 50 {
        return Err(AppError::Invalid("at most 50 affected ranges".into()));
    }
    update(app, actor, reference, "affected", |a| {
        a.affected = clean;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwe_lists_are_strict_and_deduplicated() {
        assert_eq!(parse_cwe_list("CWE-79, CWE-352 CWE-79").unwrap(), vec!["CWE-79", "CWE-352"]);
        assert!(parse_cwe_list("cwe-79").is_err());
        assert!(parse_cwe_list("CWE-079").is_err());
        assert!(parse_cwe_list("79").is_err());
        assert_eq!(parse_cwe_list("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn severity_prefers_the_newer_version() {
        let mut a = Assessment {
            cvss_v3: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
            ..Assessment::default()
        };
        assert_eq!(a.severity(), Some(embargo_domain::cvss::Severity::Critical));
        a.cvss_v4 = Some("CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N".into());
        assert_eq!(a.severity(), Some(embargo_domain::cvss::Severity::Low));
    }
}
