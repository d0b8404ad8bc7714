//! OSV import against third-party records: the osv-schema linter's test data and the GHSA to
//! OSV converter's expected outputs.
//!
//! Equivalence after a round trip (import, then export), defined field by field:
//! - identifiers: the set {id} ∪ aliases is the same, apart from our own ID, which the export
//!   adds (as an alias next to a CVE ID, or as the `x_` ID);
//! - affected: the same packages (ecosystem, name, purl), ranges (type, repo, events in
//!   order) and versions; `ecosystem_specific` and `database_specific` pass through;
//! - references, credits and related: equal; severity: equal after our canonical CVSS
//!   form, and per-package severity is lifted to the record;
//! - summary and details: equal (a record with no summary gets its first line as title);
//! - published, modified, withdrawn: the same instants to the second (exports write whole
//!   seconds, `Z`);
//! - `database_specific` and `upstream` pass through (its `cwe_ids` become weaknesses and come
//!   back from them); `schema_version` is ours (1.7.5).
//!
//! And beyond these fields, [`nothing_is_lost_but_what_the_notes_name`] compares every value
//! of every record: whatever is missing or changed after the round trip must be named by an
//! import note.
//!
//! Every good record also exports to schema-valid CVE (when it has a CVE ID) and CSAF, except
//! those with no affected package at all, which the record validation and the CSAF schema
//! refuse (CVE requires an affected product; CSAF a product status). The linter's bad records
//! may fail to import, with a readable error, but nothing panics.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use embargo_advisory::osv::{import_osv, to_osv};
use embargo_advisory::schema::{self, Schema};
use embargo_advisory::{AdvisoryId, Format, Status, validate_outputs};
use jiff::Timestamp;
use serde_json::{Value, json};

const ORGANISATION: &str = "Example Org";

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
    let imported = import_osv(&text, our_id(), ORGANISATION).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
    let imported = import_osv(&common::read(path), our_id(), ORGANISATION).unwrap();
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
            match import_osv(&common::read(&path), our_id(), ORGANISATION) {
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
    let refused =
        import_osv(&common::read(&dir.join("nointroduced-CVE-2023-41045.json")), our_id(), ORGANISATION).unwrap_err();
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
fn import_keeps_what_it_can_and_names_the_rest() {
    let Some(dir) = common::vectors("osv/linter-testdata") else { return };
    let imported = import_osv(&common::read(&dir.join("GO-2020-0001.json")), our_id(), ORGANISATION).unwrap();
    assert_eq!(imported.record.cve_id.as_deref(), Some("CVE-2020-36567"));
    assert_eq!(imported.record.aliases, ["GO-2020-0001", "GHSA-6vm3-jj99-7229"]);
    assert_eq!(imported.record.affected[0].vendor, "github.com/gin-gonic");
    // Go's `ecosystem_specific.imports` (the vulnerable symbols) and the database's own data
    // pass through; nothing is dropped from this record.
    let exported = to_osv(&imported.record);
    let original = common::json(&dir.join("GO-2020-0001.json"));
    assert_eq!(exported["affected"][0]["ecosystem_specific"], original["affected"][0]["ecosystem_specific"]);
    assert!(exported["affected"][0]["ecosystem_specific"]["imports"].is_array());
    assert_eq!(exported["database_specific"], original["database_specific"]);
    assert_eq!(imported.notes, vec![], "{:?}", imported.notes);

    // GHSA's `database_specific.cwe_ids` become the record's weaknesses, so the CWE is in
    // the CVE problem types and the CSAF document; the rest of it passes through.
    let ghsa = import_osv(&common::read(&dir.join("GHSA-9v2f-6vcg-3hgv.json")), our_id(), ORGANISATION).unwrap();
    assert_eq!(ghsa.record.weaknesses.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["CWE-94"]);
    let container = embargo_advisory::cve::cna_container(&ghsa.record, &common::publisher());
    assert_eq!(container["problemTypes"][0]["descriptions"][0]["cweId"], "CWE-94");
    let csaf = embargo_advisory::csaf::to_csaf(&ghsa.record, &common::publisher());
    assert!(csaf["vulnerabilities"][0]["notes"].to_string().contains("CWE-94"));
    assert_eq!(
        to_osv(&ghsa.record)["database_specific"],
        common::json(&dir.join("GHSA-9v2f-6vcg-3hgv.json"))["database_specific"]
    );

    assert!(import_osv("{\"id\": 1}", our_id(), ORGANISATION).is_err());
    assert!(import_osv("not json", our_id(), ORGANISATION).is_err());
}

/// RustSec's `affects.functions` (in `ecosystem_specific`), `upstream`, a per-range
/// `database_specific` and a field OSV does not define: all but the last survive, and the
/// last is named.
#[test]
fn rustsec_and_per_range_data_pass_through() {
    let text = r#"{
      "schema_version": "1.7.0", "id": "RUSTSEC-2026-0001", "modified": "2026-02-01T10:00:00Z",
      "published": "2026-01-31T12:00:00Z", "aliases": ["CVE-2026-1111", "GHSA-aaaa-bbbb-cccc", "RUSTSEC-2026-0001"],
      "upstream": ["CVE-2025-9999"], "summary": "Use after free in acme::Parser", "details": "Details.",
      "affected": [{
        "package": {"ecosystem": "crates.io", "name": "acme", "purl": "pkg:cargo/acme"},
        "ecosystem_specific": {"affects": {"arch": [], "os": ["linux"], "functions": ["acme::Parser::parse"]}},
        "database_specific": {"categories": ["memory-corruption"], "informational": null},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.0.0-0"}, {"fixed": "1.2.3"}],
                    "database_specific": {"source": "https://example.org/x"}}]
      }],
      "x_unknown": {"kept": false},
      "references": [{"type": "PACKAGE", "url": "https://crates.io/crates/acme"}]
    }"#;
    let imported = import_osv(text, our_id(), ORGANISATION).unwrap();
    assert_eq!(imported.record.upstream, ["CVE-2025-9999"]);
    assert_eq!(imported.record.aliases, ["RUSTSEC-2026-0001", "GHSA-aaaa-bbbb-cccc"], "the repeated own ID once");
    let exported = to_osv(&imported.record);
    let original: Value = serde_json::from_str(text).unwrap();
    assert_eq!(exported["upstream"], original["upstream"]);
    assert_eq!(exported["affected"][0]["ecosystem_specific"], original["affected"][0]["ecosystem_specific"]);
    assert_eq!(exported["affected"][0]["database_specific"], original["affected"][0]["database_specific"]);
    assert_eq!(
        exported["affected"][0]["ranges"][0]["database_specific"],
        original["affected"][0]["ranges"][0]["database_specific"]
    );
    let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    assert_eq!(notes, ["x_unknown: dropped (not an OSV 1.7 field)"]);
    assert_eq!(lost(&original, &exported, &imported.notes), Vec::<String>::new());
}

/// Every value of an OSV document, by path (`affected[0].ranges[1].events[0].fixed`). An
/// empty list or object holds nothing, and is no value.
fn leaves(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if map.is_empty() => {}
        Value::Array(list) if list.is_empty() => {}
        Value::Object(map) => {
            for (k, v) in map {
                leaves(v, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        other => {
            out.insert(path, other.clone());
        }
    }
}

/// The document without what is compared otherwise: identifiers (as sets, in `ids`),
/// severities (as canonical vectors, wherever they were), `schema_version`; the three dates
/// as instants to the second.
fn comparable(osv: &Value) -> BTreeMap<String, Value> {
    let mut osv = osv.clone();
    let object = osv.as_object_mut().unwrap();
    for key in ["id", "aliases", "schema_version", "severity"] {
        object.remove(key);
    }
    for key in ["published", "modified", "withdrawn"] {
        if let Some(v) = object.get_mut(key) {
            *v = json!(instant(v));
        }
    }
    for affected in object.get_mut("affected").and_then(Value::as_array_mut).into_iter().flatten() {
        affected.as_object_mut().unwrap().remove("severity");
    }
    let mut out = BTreeMap::new();
    leaves(&osv, String::new(), &mut out);
    out
}

/// What of `original` is missing or different in `exported` and named by no note: the
/// description of each loss that the import did not report.
fn lost(original: &Value, exported: &Value, notes: &[embargo_advisory::osv::ImportNote]) -> Vec<String> {
    let named = |path: &str| {
        notes.iter().any(|n| {
            path == n.field || path.strip_prefix(n.field.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    };
    let mut out = Vec::new();
    if ids(original) != ids(exported) {
        out.push(format!("ids: {:?} became {:?}", ids(original), ids(exported)));
    }
    let kept = severity(exported);
    let mut severities = vec![("severity".to_owned(), &original["severity"])];
    for (i, a) in original["affected"].as_array().into_iter().flatten().enumerate() {
        severities.push((format!("affected[{i}].severity"), &a["severity"]));
    }
    for (field, list) in severities {
        for (k, s) in list.as_array().into_iter().flatten().enumerate() {
            let score = s["score"].as_str().unwrap();
            let canonical =
                embargo_domain::cvss::Vector::parse(score).map(|v| v.to_string()).unwrap_or(score.to_owned());
            if !kept.contains(&canonical) && !named(&format!("{field}[{k}]")) {
                out.push(format!("{field}[{k}]: {score} lost"));
            }
        }
    }
    let after = comparable(exported);
    for (path, value) in comparable(original) {
        if after.get(&path) != Some(&value) && !named(&path) {
            out.push(format!("{path}: {value} became {:?}", after.get(&path)));
        }
    }
    out
}

/// Issue 19 item 7: over every real record of the corpus (the OSV linter's and the GHSA
/// converter's), the round trip loses nothing but what the import report names.
#[test]
fn nothing_is_lost_but_what_the_notes_name() {
    let (Some(linter), Some(ghsa)) = (common::vectors("osv/linter-testdata"), common::vectors("osv/ghsa-to-osv"))
    else {
        return;
    };
    let mut checked = 0;
    let mut notes_seen = 0;
    for dir in [linter, ghsa] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let ghsa_input = dir.ends_with("ghsa-to-osv") && !name.ends_with(".osv.json");
            if ghsa_input || ["nointroduced-", "nondistinct-", "nopackage-"].iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let text = common::read(&path);
            let original: Value = serde_json::from_str(&text).unwrap();
            let imported = import_osv(&text, our_id(), ORGANISATION).unwrap();
            let exported = to_osv(&imported.record);
            let losses = lost(&original, &exported, &imported.notes);
            assert!(losses.is_empty(), "{name}: lost without a note:\n{}", losses.join("\n"));
            notes_seen += imported.notes.len();
            for note in &imported.notes {
                println!("{name}: {note}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
    // Every field of these records has a place in the record or passes through.
    assert_eq!(notes_seen, 0);

    // The comparison itself finds a loss: a record whose `upstream` is silently dropped.
    let mut original = common::json(&common::vectors("osv/linter-testdata").unwrap().join("GO-2020-0001.json"));
    original["upstream"] = json!(["CVE-2019-0001"]);
    let imported = import_osv(&original.to_string(), our_id(), ORGANISATION).unwrap();
    let mut exported = to_osv(&imported.record);
    exported.as_object_mut().unwrap().remove("upstream");
    assert_eq!(lost(&original, &exported, &imported.notes), ["upstream[0]: \"CVE-2019-0001\" became None"]);
}
