//! OSV import against third-party records: the osv-schema linter's test data and the GHSA to
//! OSV converter's expected outputs.
//!
//! Equivalence after a round trip (import, then export), defined field by field:
//! - identifiers: the set {id} ∪ aliases is the same, apart from our own ID, which the export
//!   adds (as an alias next to a CVE ID, or as the `x_` ID);
//! - affected: the same packages (ecosystem, name, purl), ranges (type, repo, events in
//!   order) and versions; `ecosystem_specific` and `database_specific` are dropped;
//! - references, credits and related: equal; severity: equal after our canonical CVSS
//!   form, and per-package severity is lifted to the record;
//! - summary and details: equal (a record with no summary gets its first line as title);
//! - published, modified, withdrawn: the same instants to the second (exports write whole
//!   seconds, `Z`);
//! - dropped: top-level `database_specific`, `upstream`, `schema_version` (ours is 1.7.5).
//!
//! Every good record also exports to schema-valid CVE (when it has a CVE ID) and CSAF, except
//! those with no affected package at all, which the record validation and the CSAF schema
//! refuse (CVE requires an affected product; CSAF a product status). The linter's bad records
//! may fail to import, with a readable error, but nothing panics.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use embargo_advisory::osv::{import_osv, to_osv};
use embargo_advisory::schema::{self, Schema};
use embargo_advisory::{AdvisoryId, Format, Status, validate_outputs};
use jiff::Timestamp;
use serde_json::{Value, json};

fn our_id() -> AdvisoryId {
    "EMB-2026-0042".parse().unwrap()
}

fn ids(osv: &Value) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> =
        osv["aliases"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap().to_owned()).collect();
    ids.insert(osv["id"].as_str().unwrap().to_owned());
    ids.remove("EMB-2026-0042");
    ids.remove("x_EMB-2026-0042");
    ids
}

/// The instant to the second: exports drop sub-second digits.
fn instant(value: &Value) -> Option<i64> {
    value.as_str().map(|s| s.parse::<Timestamp>().unwrap().as_second())
}

fn affected(osv: &Value) -> Value {
    let list = osv["affected"].as_array().cloned().unwrap_or_default();
    Value::Array(
        list.into_iter()
            .map(|a| json!({"package": a["package"], "ranges": a.get("ranges").cloned().unwrap_or(json!([])).as_array().unwrap().iter().map(|r| json!({"type": r["type"], "repo": r["repo"], "events": r["events"]})).collect::<Vec<_>>(), "versions": a.get("versions").cloned().unwrap_or(json!([]))}))
            .collect(),
    )
}

fn severity(osv: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let lists = std::iter::once(&osv["severity"])
        .chain(osv["affected"].as_array().into_iter().flatten().map(|a| &a["severity"]));
    for list in lists {
        for s in list.as_array().into_iter().flatten() {
            let score = s["score"].as_str().unwrap();
            let canonical =
                embargo_domain::cvss::Vector::parse(score).map(|v| v.to_string()).unwrap_or_else(|_| score.to_owned());
            out.insert(canonical);
        }
    }
    out
}

fn credits(osv: &Value) -> Value {
    osv.get("credits").cloned().unwrap_or(json!([]))
}

/// Imports, re-exports and compares; then checks the other formats. Returns a description of
/// each difference.
fn round_trip(path: &Path) -> Vec<String> {
    let text = common::read(path);
    let original: Value = serde_json::from_str(&text).unwrap();
    let imported = import_osv(&text, our_id()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exported = to_osv(&imported.record);
    let mut diffs = Vec::new();
    let mut same = |what: &str, a: Value, b: Value| {
        if a != b {
            diffs.push(format!("{what}: {a} became {b}"));
        }
    };
    same("ids", json!(ids(&original)), json!(ids(&exported)));
    same("affected", affected(&original), affected(&exported));
    same(
        "references",
        original.get("references").cloned().unwrap_or(json!(null)),
        exported.get("references").cloned().unwrap_or(json!(null)),
    );
    same("credits", credits(&original), credits(&exported));
    same(
        "related",
        original.get("related").cloned().unwrap_or(json!([])),
        exported.get("related").cloned().unwrap_or(json!([])),
    );
    same("severity", json!(severity(&original)), json!(severity(&exported)));
    same(
        "details",
        original.get("details").cloned().unwrap_or(json!(null)),
        exported.get("details").cloned().unwrap_or(json!(null)),
    );
    if original.get("summary").is_some() {
        same("summary", original["summary"].clone(), exported["summary"].clone());
    }
    for field in ["published", "modified", "withdrawn"] {
        same(field, json!(instant(&original[field])), json!(instant(&exported[field])));
    }
    let errors = schema::validate(Schema::Osv, &exported);
    if !errors.is_empty() {
        diffs.push(format!("exported OSV is not schema-valid: {errors:?}"));
    }
    diffs
}

fn check_other_formats(path: &Path) {
    let imported = import_osv(&common::read(path), our_id()).unwrap();
    let report = validate_outputs(&imported.record, &common::publisher());
    let name = path.display();
    if imported.record.affected.is_empty() {
        // Nothing to put in a product tree or a CVE `affected`: refused, with reasons.
        assert!(
            matches!(report.status(Format::Record), Status::Invalid(p) if p.iter().any(|m| m.contains("affected product"))),
            "{name}: {report}"
        );
        assert!(
            matches!(report.status(Format::Csaf), Status::Invalid(p) if p.iter().any(|m| m.contains("product_status"))),
            "{name}: {report}"
        );
        return;
    }
    for format in [Format::Osv, Format::CveContainer, Format::CveRecord, Format::Csaf] {
        let status = report.status(format);
        assert!(matches!(status, Status::Valid | Status::NotApplicable(_)), "{name}: {format}:\n{report}");
    }
    assert_eq!(matches!(report.status(Format::CveRecord), Status::Valid), imported.record.cve_id.is_some(), "{name}");
}

#[test]
fn linter_records_round_trip_and_export_everywhere() {
    let Some(dir) = common::vectors("osv/linter-testdata") else { return };
    let (mut good, mut bad) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if ["nointroduced-", "nondistinct-", "nopackage-"].iter().any(|p| name.starts_with(p)) {
            bad += 1;
            match import_osv(&common::read(&path), our_id()) {
                Err(e) => println!("{name}: refused: {e}"),
                Ok(imported) => println!("{name}: imported ({} notes)", imported.notes.len()),
            }
            continue;
        }
        good += 1;
        let diffs = round_trip(&path);
        assert!(diffs.is_empty(), "{name}:\n{}", diffs.join("\n"));
        check_other_formats(&path);
    }
    assert_eq!((good, bad), (9, 3));
    let refused = import_osv(&common::read(&dir.join("nointroduced-CVE-2023-41045.json")), our_id()).unwrap_err();
    assert!(refused.to_string().contains("no \"introduced\" event"), "{refused}");
}

#[test]
fn ghsa_converter_outputs_round_trip_and_export_everywhere() {
    let Some(dir) = common::vectors("osv/ghsa-to-osv") else { return };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_str().unwrap().ends_with(".osv.json") {
            continue;
        }
        let diffs = round_trip(&path);
        assert!(diffs.is_empty(), "{}:\n{}", path.display(), diffs.join("\n"));
        check_other_formats(&path);
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn import_notes_name_what_was_dropped() {
    let Some(dir) = common::vectors("osv/linter-testdata") else { return };
    let imported = import_osv(&common::read(&dir.join("GO-2020-0001.json")), our_id()).unwrap();
    assert_eq!(imported.record.cve_id.as_deref(), Some("CVE-2020-36567"));
    assert_eq!(imported.record.aliases, ["GO-2020-0001", "GHSA-6vm3-jj99-7229"]);
    assert_eq!(imported.record.affected[0].vendor, "github.com/gin-gonic");
    assert!(
        imported.notes.iter().any(|n| n.contains("affected[0]: dropped ecosystem_specific")),
        "{:?}",
        imported.notes
    );
    assert!(imported.notes.iter().any(|n| n == "database_specific: dropped"), "{:?}", imported.notes);
    assert!(import_osv("{\"id\": 1}", our_id()).is_err());
    assert!(import_osv("not json", our_id()).is_err());
}
