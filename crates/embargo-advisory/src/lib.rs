//! Advisories: one record ([`AdvisoryRecord`]), computed into every published form, each
//! validated.
//!
//! - [`osv::to_osv`]: OSV 1.7.5 (ID: the CVE ID, else `x_` + our ID; see [`osv`]).
//! - [`cve::cna_container`] and [`cve::cve_record`]: CVE JSON 5.1, the CNA container for CVE
//!   Services and the full record.
//! - [`csaf::to_csaf`]: a CSAF 2.0 `csaf_security_advisory`, with [`csaf::csaf_filename`].
//! - [`markdown::to_markdown`] and [`markdown::to_html`]: the human advisory.
//! - [`osv::import_osv`]: an OSV or GHSA record into a draft.
//!
//! [`validate_outputs`] checks the record ([`AdvisoryRecord::validate`]), validates OSV, CVE and
//! CSAF against their official schemas (bundled in `schemas/`, see ADR 9 and
//! [`schema`]) and runs the CSAF §6.1 mandatory tests of [`csaf::mandatory`] on the CSAF
//! document. An advisory whose [`Report`] is not [`Report::is_publishable`] must not be
//! published.
//!
//! The report also carries the warnings of the CSAF optional tests of [`csaf::optional`]
//! (6.2.2, 6.2.3, 6.2.11, 6.2.13, 6.2.16, 6.2.18), which do not block publication.
//!
//! CSAF mandatory tests implemented: 6.1.1–6.1.10, 6.1.13–6.1.33 including 6.1.27.1–6.1.27.11,
//! each checked against the OASIS corpus. Not implemented: 6.1.11 (needs the CWE catalogue)
//! and 6.1.12 (needs the IANA language subtag registry); see
//! [`csaf::mandatory::NOT_IMPLEMENTED`].
//!
//! Architecture invariant: pure. No IO, no `async`, no database or HTTP; time comes from the
//! record. Outputs are computed, never edited by hand.
#![forbid(unsafe_code)]

pub mod csaf;
pub mod cve;
mod cvss_json;
pub mod markdown;
pub mod osv;
pub mod purl;
pub mod record;
pub mod schema;

use std::fmt;

pub use cvss_json::{cvss_v3_1, cvss_v4_0};
pub use record::{
    AdvisoryId, AdvisoryRecord, Affected, Credit, CreditType, Event, Problem, Publisher, PublisherCategory, Range,
    RangeKind, Reference, ReferenceType, Revision, Severity, Weakness,
};
use schema::Schema;

/// The forms an advisory is checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The record's own fields.
    Record,
    Osv,
    /// The CVE CNA container (what CVE Services receives).
    CveContainer,
    /// The full CVE record.
    CveRecord,
    Csaf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "advisory",
            Self::Osv => "OSV",
            Self::CveContainer => "CVE CNA container",
            Self::CveRecord => "CVE record",
            Self::Csaf => "CSAF",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What validation found for one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Valid,
    /// Sentences, one per problem.
    Invalid(Vec<String>),
    /// The format is not produced for this advisory, and why (CVE output needs a CVE ID).
    NotApplicable(String),
}

/// The result of [`validate_outputs`], one entry per [`Format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub formats: Vec<(Format, Status)>,
    /// What the CSAF optional tests (§6.2, [`csaf::optional`]) warn about: worth fixing, but
    /// no obstacle to publication.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether nothing is invalid.
    pub fn is_publishable(&self) -> bool {
        !self.formats.iter().any(|(_, s)| matches!(s, Status::Invalid(_)))
    }

    pub fn status(&self, format: Format) -> &Status {
        &self.formats.iter().find(|(f, _)| *f == format).expect("every format is reported").1
    }

    /// Every problem, prefixed with its format.
    pub fn problems(&self) -> Vec<String> {
        self.formats
            .iter()
            .flat_map(|(format, status)| match status {
                Status::Invalid(list) => list.iter().map(|p| format!("{format}: {p}")).collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (format, status) in &self.formats {
            match status {
                Status::Valid => writeln!(f, "{format}: valid")?,
                Status::NotApplicable(why) => writeln!(f, "{format}: not produced ({why})")?,
                Status::Invalid(list) => {
                    writeln!(f, "{format}: {} problem(s)", list.len())?;
                    for p in list {
                        writeln!(f, "  - {p}")?;
                    }
                }
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "CSAF optional tests: {} warning(s)", self.warnings.len())?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
        }
        Ok(())
    }
}

fn status(problems: Vec<String>) -> Status {
    if problems.is_empty() { Status::Valid } else { Status::Invalid(problems) }
}

/// Validates the record and every output computed from it.
pub fn validate_outputs(record: &AdvisoryRecord, publisher: &Publisher) -> Report {
    let mut formats = Vec::new();
    formats.push((Format::Record, status(record.validate().iter().map(Problem::to_string).collect())));
    formats.push((Format::Osv, status(schema::validate(Schema::Osv, &osv::to_osv(record)))));
    if record.cve_id.is_none() {
        let why = "the advisory has no CVE ID".to_owned();
        formats.push((Format::CveContainer, Status::NotApplicable(why.clone())));
        formats.push((Format::CveRecord, Status::NotApplicable(why)));
    } else {
        let mut missing = Vec::new();
        if publisher.cve_org_id.is_none() {
            missing.push("the publisher has no CVE organisation ID (the CNA's UUID at CVE Services)".to_owned());
        }
        let (container, full) = if record.withdrawn.is_some() {
            (
                schema::validate(Schema::CveRejectedContainer, &cve::rejected_container(record, publisher)),
                schema::validate(Schema::CveRejectedRecord, &cve::cve_record(record, publisher)),
            )
        } else {
            (
                schema::validate(Schema::CveCnaContainer, &cve::cna_container(record, publisher)),
                schema::validate(Schema::CveRecord, &cve::cve_record(record, publisher)),
            )
        };
        formats.push((Format::CveContainer, status(missing.iter().cloned().chain(container).collect())));
        formats.push((Format::CveRecord, status(missing.into_iter().chain(full).collect())));
    }
    let document = csaf::to_csaf(record, publisher);
    let mut csaf_problems = schema::validate(Schema::Csaf, &document);
    csaf_problems.extend(csaf::mandatory::run_all(&document).iter().map(ToString::to_string));
    formats.push((Format::Csaf, status(csaf_problems)));
    let warnings = csaf::optional::run_all(&document).iter().map(ToString::to_string).collect();
    Report { formats, warnings }
}
