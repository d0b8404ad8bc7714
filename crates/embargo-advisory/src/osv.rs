//! OSV 1.7: export ([`to_osv`]) and import of existing OSV or GHSA records ([`import_osv`]).
//!
//! The OSV `id` must carry a registered prefix or `x_`. A self-hosted database has no
//! registered prefix, so the OSV ID is `x_` followed by our own ID, always: the project's own
//! ID is the record's identity, as GHSA and RustSec do, and the CVE ID is the first alias
//! (a CVE ID as `id` would collide with OSV.dev's own CVE records; ADR 9, amended).
//!
//! Import keeps what the record has a place for and passes the rest through: the CWE IDs of
//! `database_specific.cwe_ids` become weaknesses, the rest of `database_specific`, `upstream`,
//! and each package's `ecosystem_specific` and `database_specific` and each range's
//! `database_specific` are kept and written again by the export. What is still dropped or
//! moved is named in [`Imported::notes`], one note per field path.

use embargo_domain::cvss::Vector;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::record::{
    AdvisoryId, AdvisoryRecord, Affected, Credit, Event, Range, RangeKind, Reference, Severity, Weakness, utc,
};

/// The version of the bundled OSV schema.
pub const SCHEMA_VERSION: &str = "1.7.5";

/// The OSV `id` for a record (see the module documentation).
pub fn osv_id(record: &AdvisoryRecord) -> String {
    format!("x_{}", record.id)
}

/// The OSV `details`: the summary, the details, and the workarounds under their heading; a
/// withdrawn record's reason first, when one was given.
fn details(record: &AdvisoryRecord) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if record.withdrawn.is_some() && !record.withdrawn_reason.trim().is_empty() {
        parts.push(format!("**Withdrawn:** {}", record.withdrawn_reason.trim()));
    }
    if !record.summary.trim().is_empty() {
        parts.push(record.summary.trim().to_owned());
    }
    if !record.details.trim().is_empty() {
        parts.push(record.details.clone());
    }
    if !record.workarounds.trim().is_empty() {
        parts.push(format!("## Workarounds\n\n{}", record.workarounds.trim()));
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The record as an OSV 1.7 document.
pub fn to_osv(record: &AdvisoryRecord) -> Value {
    let mut osv = Map::new();
    let mut put = |key: &str, value: Value| {
        osv.insert(key.into(), value);
    };
    put("schema_version", json!(SCHEMA_VERSION));
    put("id", json!(osv_id(record)));
    put("modified", json!(utc(record.modified)));
    if let Some(published) = record.published {
        put("published", json!(utc(published)));
    }
    if let Some(withdrawn) = record.withdrawn {
        // Never before the publication (an imported withdrawal published here later).
        let withdrawn = record.published.map_or(withdrawn, |p| withdrawn.max(p));
        put("withdrawn", json!(utc(withdrawn)));
    }
    let aliases: Vec<&str> = record.cve_id.as_deref().into_iter().chain(record.other_ids()).collect();
    if !aliases.is_empty() {
        put("aliases", json!(aliases));
    }
    if !record.upstream.is_empty() {
        put("upstream", json!(record.upstream));
    }
    if !record.related.is_empty() {
        put("related", json!(record.related));
    }
    if !record.title.is_empty() {
        put("summary", json!(record.title));
    }
    if let Some(details) = details(record) {
        put("details", json!(details));
    }
    let severity: Vec<Value> = record
        .severity
        .vectors()
        .iter()
        .map(|v| {
            let kind = if v.version() == "3.1" { "CVSS_V3" } else { "CVSS_V4" };
            json!({"type": kind, "score": v.to_string()})
        })
        .collect();
    if !severity.is_empty() {
        put("severity", json!(severity));
    }
    if !record.affected.is_empty() {
        put("affected", record.affected.iter().map(affected).collect());
    }
    if !record.references.is_empty() {
        put("references", json!(record.references));
    }
    if !record.credits.is_empty() {
        put("credits", json!(record.credits));
    }
    let mut database_specific = record.database_specific.clone().unwrap_or_default();
    let cwes: Vec<&str> = record.weaknesses.iter().map(|w| w.id.as_str()).collect();
    if !cwes.is_empty() {
        database_specific.insert("cwe_ids".into(), json!(cwes));
    }
    if !database_specific.is_empty() {
        put("database_specific", Value::Object(database_specific));
    }
    Value::Object(osv)
}

fn affected(affected: &Affected) -> Value {
    let mut out = Map::new();
    if let Some(ecosystem) = &affected.ecosystem {
        let mut package = json!({"ecosystem": ecosystem, "name": affected.product});
        if let Some(purl) = &affected.purl {
            package["purl"] = json!(purl);
        }
        out.insert("package".into(), package);
    }
    if !affected.ranges.is_empty() {
        let ranges = affected
            .ranges
            .iter()
            .map(|range| {
                let mut r = json!({"type": range.kind.as_str(), "events": range.events});
                if range.kind == RangeKind::Git
                    && let Some(repo) = &affected.repository
                {
                    r["repo"] = json!(repo);
                }
                if let Some(data) = &range.database_specific {
                    r["database_specific"] = data.clone();
                }
                r
            })
            .collect();
        out.insert("ranges".into(), Value::Array(ranges));
    }
    if !affected.versions.is_empty() {
        out.insert("versions".into(), json!(affected.versions));
    }
    if let Some(data) = &affected.ecosystem_specific {
        out.insert("ecosystem_specific".into(), data.clone());
    }
    if let Some(data) = &affected.database_specific {
        out.insert("database_specific".into(), data.clone());
    }
    Value::Object(out)
}

/// Why an OSV document could not become a draft.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not an OSV record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("OSV record field {field}: {message}")]
    Invalid { field: String, message: String },
}

/// One thing the import could not carry over as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportNote {
    /// The OSV field path, as in the source document (`severity[1]`, `affected[0].severity`).
    pub field: String,
    /// What happened to it: dropped, or moved (and where).
    pub message: String,
}

impl std::fmt::Display for ImportNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// An imported draft and what the import could not carry over.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub record: AdvisoryRecord,
    /// Each OSV field that was dropped or moved, by path; everything else is in the record
    /// and comes out of [`to_osv`] again.
    pub notes: Vec<ImportNote>,
}

#[derive(Deserialize)]
struct OsvIn {
    id: String,
    modified: Timestamp,
    published: Option<Timestamp>,
    withdrawn: Option<Timestamp>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    summary: Option<String>,
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<SeverityIn>>,
    #[serde(default)]
    affected: Option<Vec<AffectedIn>>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(default)]
    credits: Option<Vec<Credit>>,
    database_specific: Option<Map<String, Value>>,
    #[serde(default, rename = "schema_version")]
    _schema_version: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct SeverityIn {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct AffectedIn {
    package: Option<PackageIn>,
    #[serde(default)]
    severity: Option<Vec<SeverityIn>>,
    #[serde(default)]
    ranges: Vec<RangeIn>,
    #[serde(default)]
    versions: Vec<String>,
    ecosystem_specific: Option<Value>,
    database_specific: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct PackageIn {
    ecosystem: String,
    name: String,
    purl: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct RangeIn {
    #[serde(rename = "type")]
    kind: RangeKind,
    repo: Option<String>,
    events: Vec<Event>,
    database_specific: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Turns an OSV (or GHSA-in-OSV) record into a draft with our own ID `id`.
///
/// The OSV `id` becomes an alias (or the CVE ID), so that the set of identifiers survives a
/// round trip; duplicates are dropped. `published` and `withdrawn` are kept as they are.
/// `vendor` names the vendor of a package whose record names none (no purl namespace, no
/// repository owner, no Go module path): the catalogue's or the organisation's, never the
/// ecosystem. Moved or dropped, each named in [`Imported::notes`]: per-package `severity`
/// (lifted to the record), CVSS 2.0/3.0 and other scores Embargo does not compute, a second
/// score of one CVSS version, and fields OSV 1.7 does not define.
pub fn import_osv(json: &str, id: AdvisoryId, vendor: &str) -> Result<Imported, ImportError> {
    let osv: OsvIn = serde_json::from_str(json)?;
    let mut notes = Vec::new();
    let note = |notes: &mut Vec<ImportNote>, field: String, message: &str| {
        notes.push(ImportNote { field, message: message.to_owned() })
    };
    let invalid = |field: &str, message: String| ImportError::Invalid { field: field.into(), message };
    if osv.id.trim().is_empty() {
        return Err(invalid("id", "the ID is empty".into()));
    }
    let mut ids: Vec<String> = Vec::new();
    for candidate in std::iter::once(osv.id.clone()).chain(osv.aliases.unwrap_or_default()) {
        let candidate = candidate.trim().to_owned();
        if !candidate.is_empty() && !ids.contains(&candidate) {
            ids.push(candidate);
        }
    }
    let cve_id = ids.iter().find(|i| crate::record::is_cve_id(i)).cloned();
    let aliases = ids.into_iter().filter(|i| Some(i) != cve_id.as_ref()).collect();
    for key in osv.rest.keys() {
        note(&mut notes, key.clone(), "dropped (not an OSV 1.7 field)");
    }

    let mut severity = Severity::default();
    let mut take = |list: Vec<SeverityIn>, field: &str, notes: &mut Vec<ImportNote>| {
        for (k, s) in list.into_iter().enumerate() {
            let here = format!("{field}[{k}]");
            let slot = match Vector::parse(&s.score) {
                Ok(v) if v.version() == "3.1" => &mut severity.cvss_v3_1,
                Ok(_) => &mut severity.cvss_v4_0,
                Err(e) => {
                    note(
                        notes,
                        here,
                        &format!("dropped: the {} score {:?} is not one Embargo computes ({e})", s.kind, s.score),
                    );
                    continue;
                }
            };
            let canonical = Vector::parse(&s.score).map(|v| v.to_string()).unwrap_or(s.score.clone());
            match slot {
                None => *slot = Some(canonical),
                Some(kept) if *kept == canonical => {}
                Some(_) => note(notes, here, &format!("dropped: a second {} score {:?}", s.kind, s.score)),
            }
        }
    };
    take(osv.severity.unwrap_or_default(), "severity", &mut notes);

    let mut affected = Vec::new();
    for (i, a) in osv.affected.unwrap_or_default().into_iter().enumerate() {
        let field = format!("affected[{i}]");
        if let Some(list) = a.severity {
            take(list, &format!("{field}.severity"), &mut notes);
            note(&mut notes, format!("{field}.severity"), "moved to the record's severity (one for every package)");
        }
        for key in a.rest.keys() {
            note(&mut notes, format!("{field}.{key}"), "dropped (not an OSV 1.7 field)");
        }
        let mut repos = a.ranges.iter().filter_map(|r| r.repo.clone());
        let repository = repos.next();
        if repos.any(|r| Some(&r) != repository.as_ref()) {
            return Err(invalid(&field, "Git ranges of one package name different repositories".into()));
        }
        let mut ranges = Vec::new();
        for (j, r) in a.ranges.into_iter().enumerate() {
            for key in r.rest.keys() {
                note(&mut notes, format!("{field}.ranges[{j}].{key}"), "dropped (not an OSV 1.7 field)");
            }
            if r.kind != RangeKind::Git && r.repo.is_some() {
                note(&mut notes, format!("{field}.ranges[{j}].repo"), "dropped: only Git ranges keep a repository");
            }
            if !r.events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                return Err(invalid(&format!("{field}.ranges[{j}]"), "the range has no \"introduced\" event".into()));
            }
            ranges.push(Range { kind: r.kind, events: r.events, database_specific: r.database_specific });
        }
        let (ecosystem, name, purl) = match a.package {
            Some(p) => {
                for key in p.rest.keys() {
                    note(&mut notes, format!("{field}.package.{key}"), "dropped (not an OSV 1.7 field)");
                }
                (Some(p.ecosystem), Some(p.name), p.purl)
            }
            None => (None, None, None),
        };
        let product = name.clone().or_else(|| repository.as_deref().map(repo_name)).ok_or_else(|| {
            invalid(&field, "neither a package nor a Git repository names the affected product".into())
        })?;
        let vendor = vendor_of(purl.as_deref(), repository.as_deref(), ecosystem.as_deref(), &product)
            .unwrap_or_else(|| vendor.to_owned());
        affected.push(Affected {
            product,
            vendor,
            ecosystem,
            purl,
            repository,
            ranges,
            versions: a.versions,
            ecosystem_specific: a.ecosystem_specific,
            database_specific: a.database_specific,
        });
    }
    // CWE IDs have a place of their own; the rest of `database_specific` passes through.
    let mut database_specific = osv.database_specific.unwrap_or_default();
    let mut weaknesses = Vec::new();
    if let Some(list) = database_specific.get("cwe_ids").and_then(Value::as_array) {
        let ids: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        if !ids.is_empty() && ids.len() == list.len() && ids.iter().all(|id| crate::record::is_cwe_id(id)) {
            weaknesses = ids.iter().map(|id| Weakness { id: (*id).to_owned(), name: None }).collect();
            database_specific.remove("cwe_ids");
        }
    }
    let details = osv.details.unwrap_or_default();
    let title = osv.summary.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| {
        details.lines().find(|l| !l.trim().is_empty()).unwrap_or(&osv.id).chars().take(200).collect()
    });
    let record = AdvisoryRecord {
        id,
        cve_id,
        aliases,
        related: osv.related.unwrap_or_default(),
        title,
        summary: String::new(),
        details,
        affected,
        severity,
        weaknesses,
        credits: osv.credits.unwrap_or_default(),
        references: osv.references.unwrap_or_default(),
        workarounds: String::new(),
        revisions: Vec::new(),
        published: osv.published,
        modified: osv.modified,
        withdrawn: osv.withdrawn,
        withdrawn_reason: String::new(),
        upstream: osv.upstream.unwrap_or_default(),
        database_specific: (!database_specific.is_empty()).then_some(database_specific),
    };
    Ok(Imported { record, notes })
}

/// The last path segment of a repository URL, without `.git`.
fn repo_name(url: &str) -> String {
    let path = url.trim_end_matches('/').trim_end_matches(".git");
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// The vendor an OSV record names, if any: the purl namespace, the repository owner, the Go
/// module's host path. Never the ecosystem: `npm` or `PyPI` is nobody's vendor.
fn vendor_of(purl: Option<&str>, repo: Option<&str>, ecosystem: Option<&str>, product: &str) -> Option<String> {
    let from_purl = purl
        .and_then(|p| crate::purl::Purl::parse(p).ok())
        .filter(|p| !p.namespace.is_empty())
        .map(|p| p.namespace.join("/"));
    let from_repo = repo.and_then(|r| {
        let path = r.split("://").nth(1)?.trim_end_matches('/');
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        (parts.len() >= 3).then(|| parts[parts.len() - 2].to_owned())
    });
    let from_module = (ecosystem == Some("Go"))
        .then(|| product.split('/').take(2).collect::<Vec<_>>())
        .filter(|parts| parts.len() == 2)
        .map(|parts| parts.join("/"));
    from_purl.or(from_repo).or(from_module)
}
