//! OSV 1.7: export ([`to_osv`]) and import of existing OSV or GHSA records ([`import_osv`]).
//!
//! The OSV `id` must carry a registered prefix or `x_`. A self-hosted database has no
//! registered prefix, so (as `standards.md` §1 decides) the OSV ID is the CVE ID when there is
//! one, with our own ID first among the aliases, and otherwise `x_` followed by our own ID.

use embargo_domain::cvss::Vector;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::record::{AdvisoryId, AdvisoryRecord, Affected, Credit, Event, Range, RangeKind, Reference, Severity, utc};

/// The version of the bundled OSV schema.
pub const SCHEMA_VERSION: &str = "1.7.5";

/// The OSV `id` for a record (see the module documentation).
pub fn osv_id(record: &AdvisoryRecord) -> String {
    match &record.cve_id {
        Some(cve) => cve.clone(),
        None => format!("x_{}", record.id),
    }
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
        put("withdrawn", json!(utc(withdrawn)));
    }
    let mut aliases: Vec<String> = Vec::new();
    if record.cve_id.is_some() {
        aliases.push(record.id.to_string());
    }
    aliases.extend(record.aliases.iter().filter(|a| Some(*a) != record.cve_id.as_ref()).cloned());
    if !aliases.is_empty() {
        put("aliases", json!(aliases));
    }
    if !record.related.is_empty() {
        put("related", json!(record.related));
    }
    if !record.title.is_empty() {
        put("summary", json!(record.title));
    }
    let details = match (record.summary.trim(), record.details.trim().is_empty()) {
        ("", true) => None,
        ("", false) => Some(record.details.clone()),
        (summary, true) => Some(summary.to_owned()),
        (summary, false) => Some(format!("{summary}\n\n{}", record.details)),
    };
    if let Some(details) = details {
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
    let cwes: Vec<&str> = record.weaknesses.iter().map(|w| w.id.as_str()).collect();
    if !cwes.is_empty() {
        put("database_specific", json!({"cwe_ids": cwes}));
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
                r
            })
            .collect();
        out.insert("ranges".into(), Value::Array(ranges));
    }
    if !affected.versions.is_empty() {
        out.insert("versions".into(), json!(affected.versions));
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

/// An imported draft and what the import could not carry over.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub record: AdvisoryRecord,
    /// Sentences naming each OSV field that was dropped or changed.
    pub notes: Vec<String>,
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
    database_specific: Option<Value>,
    upstream: Option<Vec<String>>,
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
}

#[derive(Deserialize)]
struct PackageIn {
    ecosystem: String,
    name: String,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RangeIn {
    #[serde(rename = "type")]
    kind: RangeKind,
    repo: Option<String>,
    events: Vec<Event>,
    database_specific: Option<Value>,
}

/// Turns an OSV (or GHSA-in-OSV) record into a draft with our own ID `id`.
///
/// The OSV `id`, when it is not the CVE ID, becomes an alias, so that the set of identifiers
/// survives a round trip. Dropped: `database_specific` and `ecosystem_specific` (anywhere),
/// `upstream`, per-package `severity` (lifted to the record when the record has none), CVSS
/// 2.0/3.0 vectors and any vector `embargo_domain::cvss` refuses. Each drop is named in
/// [`Imported::notes`].
pub fn import_osv(json: &str, id: AdvisoryId) -> Result<Imported, ImportError> {
    let osv: OsvIn = serde_json::from_str(json)?;
    let mut notes = Vec::new();
    let invalid = |field: &str, message: String| ImportError::Invalid { field: field.into(), message };
    if osv.id.trim().is_empty() {
        return Err(invalid("id", "the ID is empty".into()));
    }
    let mut ids: Vec<String> = std::iter::once(osv.id.clone()).chain(osv.aliases.unwrap_or_default()).collect();
    ids.dedup();
    let cve_id = ids.iter().find(|i| crate::record::is_cve_id(i)).cloned();
    let aliases = ids.into_iter().filter(|i| Some(i) != cve_id.as_ref()).collect();

    let mut severity = Severity::default();
    let mut take = |list: Vec<SeverityIn>, field: &str, notes: &mut Vec<String>| {
        for s in list {
            let slot = match Vector::parse(&s.score) {
                Ok(v) if v.version() == "3.1" => &mut severity.cvss_v3_1,
                Ok(_) => &mut severity.cvss_v4_0,
                Err(e) => {
                    notes.push(format!("{field}: dropped the {} score {:?} ({e})", s.kind, s.score));
                    continue;
                }
            };
            match slot {
                None => *slot = Some(Vector::parse(&s.score).map(|v| v.to_string()).unwrap_or(s.score)),
                Some(kept) if *kept == s.score => {}
                Some(_) => notes.push(format!("{field}: dropped a second {} score {:?}", s.kind, s.score)),
            }
        }
    };
    take(osv.severity.unwrap_or_default(), "severity", &mut notes);

    let mut affected = Vec::new();
    for (i, a) in osv.affected.unwrap_or_default().into_iter().enumerate() {
        let field = format!("affected[{i}]");
        if let Some(list) = a.severity {
            take(list, &format!("{field}.severity"), &mut notes);
        }
        if a.ecosystem_specific.is_some() || a.database_specific.is_some() {
            notes.push(format!("{field}: dropped ecosystem_specific/database_specific"));
        }
        let mut repos = a.ranges.iter().filter_map(|r| r.repo.clone());
        let repository = repos.next();
        if repos.any(|r| Some(&r) != repository.as_ref()) {
            return Err(invalid(&field, "Git ranges of one package name different repositories".into()));
        }
        let mut ranges = Vec::new();
        for (j, r) in a.ranges.into_iter().enumerate() {
            if r.database_specific.is_some() {
                notes.push(format!("{field}.ranges[{j}]: dropped database_specific"));
            }
            if !r.events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                return Err(invalid(&format!("{field}.ranges[{j}]"), "the range has no \"introduced\" event".into()));
            }
            ranges.push(Range { kind: r.kind, events: r.events });
        }
        let (ecosystem, name, purl) = match a.package {
            Some(p) => (Some(p.ecosystem), Some(p.name), p.purl),
            None => (None, None, None),
        };
        let product = name.clone().or_else(|| repository.as_deref().map(repo_name)).ok_or_else(|| {
            invalid(&field, "neither a package nor a Git repository names the affected product".into())
        })?;
        let vendor = vendor_of(purl.as_deref(), repository.as_deref(), ecosystem.as_deref(), &product);
        affected.push(Affected { product, vendor, ecosystem, purl, repository, ranges, versions: a.versions });
    }
    if osv.database_specific.is_some() {
        notes.push("database_specific: dropped".into());
    }
    if osv.upstream.is_some_and(|u| !u.is_empty()) {
        notes.push("upstream: dropped".into());
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
        weaknesses: Vec::new(),
        credits: osv.credits.unwrap_or_default(),
        references: osv.references.unwrap_or_default(),
        workarounds: String::new(),
        revisions: Vec::new(),
        published: osv.published,
        modified: osv.modified,
        withdrawn: osv.withdrawn,
    };
    Ok(Imported { record, notes })
}

/// The last path segment of a repository URL, without `.git`.
fn repo_name(url: &str) -> String {
    let path = url.trim_end_matches('/').trim_end_matches(".git");
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// The best vendor name an OSV record offers: the purl namespace, the repository owner, the
/// Go module's host path, else the ecosystem, else the product itself.
fn vendor_of(purl: Option<&str>, repo: Option<&str>, ecosystem: Option<&str>, product: &str) -> String {
    let from_purl = purl.and_then(|p| {
        let path = p.strip_prefix("pkg:")?.split(['@', '?', '#']).next()?;
        let mut parts: Vec<&str> = path.split('/').collect();
        (parts.len() > 2).then(|| {
            parts.pop();
            parts[1..].join("/")
        })
    });
    let from_repo = repo.and_then(|r| {
        let path = r.split("://").nth(1)?.trim_end_matches('/');
        let mut parts: Vec<&str> = path.split('/').collect();
        (parts.len() >= 3)
            .then(|| parts[parts.len() - 2].to_owned())
            .or_else(|| parts.drain(..1).next().map(String::from))
    });
    let from_module = (ecosystem == Some("Go")).then(|| product.split('/').take(2).collect::<Vec<_>>().join("/"));
    from_purl
        .or(from_repo)
        .or(from_module)
        .or_else(|| ecosystem.map(String::from))
        .unwrap_or_else(|| product.to_owned())
}
