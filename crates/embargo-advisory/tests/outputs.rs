//! Realistic advisories through every output: each validates against the official schemas
//! and the CSAF mandatory tests with no problem; broken records are caught with field-level
//! messages. Also: the bundled schemas equal their copies in `../shared/vectors`, and the §5.1
//! file names agree with the OASIS file-name corpus.

mod common;

use common::*;

use embargo_advisory::csaf::{csaf_filename, mandatory, to_csaf};
use embargo_advisory::cve::{cna_container, cve_record};
use embargo_advisory::markdown::{to_html, to_markdown};
use embargo_advisory::osv::to_osv;
use embargo_advisory::schema::BUNDLED;
use embargo_advisory::*;
use serde_json::{Value, json};

/// With `EMBARGO_ADVISORY_OUT=<dir>`, writes every output there for external validators
/// (`check-jsonschema`, `cve validate`, the secvisogram CSAF validator; `official_validators.rs`
/// runs them).
fn dump(record: &AdvisoryRecord, publisher: &Publisher) {
    let Some(dir) = std::env::var_os("EMBARGO_ADVISORY_OUT").map(std::path::PathBuf::from) else { return };
    write_outputs(&dir, record, publisher);
}

#[test]
fn realistic_advisories_are_valid_in_every_format() {
    let publisher = common::publisher();
    for record in realistic() {
        dump(&record, &publisher);
        assert_eq!(record.validate(), vec![], "{}", record.id);
        let report = validate_outputs(&record, &publisher);
        assert!(report.is_publishable(), "{}:\n{report}", record.id);
        for format in [Format::Record, Format::Osv, Format::Csaf] {
            assert_eq!(report.status(format), &Status::Valid, "{} {format}", record.id);
        }
        let cve = if record.cve_id.is_some() { Status::Valid } else { Status::NotApplicable(String::new()) };
        for format in [Format::CveContainer, Format::CveRecord] {
            match (report.status(format), &cve) {
                (Status::Valid, Status::Valid) | (Status::NotApplicable(_), Status::NotApplicable(_)) => {}
                (other, _) => panic!("{} {format}: {other:?}", record.id),
            }
        }
    }
}

#[test]
fn osv_ids_follow_the_standards_note() {
    let with_cve = to_osv(&semver_library());
    assert_eq!(with_cve["id"], "CVE-2026-10001");
    assert_eq!(with_cve["aliases"], json!(["EMB-2026-0001", "GHSA-abcd-efgh-ijkl"]));
    assert_eq!(with_cve["schema_version"], "1.7.5");
    assert_eq!(with_cve["modified"], "2026-11-22T15:30:00Z");
    let without = to_osv(&git_only());
    assert_eq!(without["id"], "x_EMB-2026-0002");
    assert!(without.get("aliases").is_none());
    assert_eq!(without["affected"][0]["ranges"][0]["repo"], "https://git.example.org/widget/widgetd");
    assert!(without["affected"][0].get("package").is_none(), "no ecosystem, no OSV package");
}

#[test]
fn cvss_in_cve_and_csaf_is_computed_from_the_vector() {
    let publisher = common::publisher();
    let record = semver_library();
    let container = cna_container(&record, &publisher);
    let cvss = &container["metrics"][0]["cvssV3_1"];
    // AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N: 7.5, High (CVSS 3.1 specification's calculator).
    assert_eq!((cvss["baseScore"].as_f64(), cvss["baseSeverity"].as_str()), (Some(7.5), Some("HIGH")));
    assert_eq!(cvss["attackVector"], "NETWORK");
    assert_eq!(cvss["confidentialityImpact"], "HIGH");
    let csaf = to_csaf(&record, &publisher);
    assert_eq!(csaf["vulnerabilities"][0]["scores"][0]["cvss_v3"], *cvss);

    let v4 = cna_container(&cvss4_only(), &publisher);
    let cvss = &v4["metrics"][0]["cvssV4_0"];
    // The 4.0 base vector with every impact High: 9.3, Critical (FIRST calculator).
    assert_eq!((cvss["baseScore"].as_f64(), cvss["baseSeverity"].as_str()), (Some(9.3), Some("CRITICAL")));
    let csaf = to_csaf(&cvss4_only(), &publisher);
    assert!(csaf["vulnerabilities"][0].get("scores").is_none(), "CSAF 2.0 has no CVSS 4.0 slot");
    let notes = csaf["vulnerabilities"][0]["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n["title"] == "CVSS v4.0" && n["text"].as_str().unwrap().contains("9.3")));
}

#[test]
fn cve_versions_come_from_the_ranges() {
    let publisher = common::publisher();
    let container = cna_container(&semver_library(), &publisher);
    let affected = &container["affected"][0];
    assert_eq!(affected["collectionURL"], "https://crates.io");
    assert_eq!(affected["packageName"], "libexample");
    assert_eq!(affected["defaultStatus"], "unaffected");
    assert_eq!(
        affected["versions"],
        json!([
            {"version": "0.3.0", "status": "affected", "versionType": "semver", "lessThan": "0.3.7"},
            {"version": "0.4.0", "status": "affected", "versionType": "semver", "lessThan": "0.4.2"},
        ])
    );
    let container = cna_container(&cvss4_only(), &publisher);
    assert_eq!(container["affected"][0]["versions"][0]["lessThanOrEqual"], "2.1.4");
    let full = cve_record(&semver_library(), &publisher);
    assert_eq!((full["dataType"].as_str(), full["dataVersion"].as_str()), (Some("CVE_RECORD"), Some("5.1")));
    assert_eq!(full["cveMetadata"]["cveId"], "CVE-2026-10001");
}

#[test]
fn csaf_product_tree_and_tracking() {
    let publisher = common::publisher();
    let csaf = to_csaf(&several_products(), &publisher);
    let vendors: Vec<&str> =
        csaf["product_tree"]["branches"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(vendors, ["Acme", "Acme Community"]);
    let status = &csaf["vulnerabilities"][0]["product_status"];
    assert_eq!(status["known_affected"], json!(["P1-V1", "P1-V2", "P2-R1", "P3-R1", "P4"]));
    assert_eq!(status["fixed"], json!(["P2-F1", "P3-F1"]));
    assert_eq!(csaf["vulnerabilities"][0]["cwe"]["id"], "CWE-122");
    let tracking = &csaf["document"]["tracking"];
    assert_eq!((tracking["status"].as_str(), tracking["version"].as_str()), (Some("final"), Some("1")));
    let draft = to_csaf(&cvss4_only(), &publisher);
    assert_eq!(draft["document"]["tracking"]["status"], "draft");
    let revised = to_csaf(&semver_library(), &publisher);
    assert_eq!(revised["document"]["tracking"]["version"], "2");
    assert_eq!(revised["document"]["tracking"]["current_release_date"], "2026-11-22T15:30:00Z");
    assert_eq!(csaf_filename(revised["document"]["tracking"]["id"].as_str().unwrap()), "emb-2026-0001.json");
}

#[test]
fn a_broken_record_is_caught_field_by_field() {
    let publisher = common::publisher();
    let mut r = semver_library();
    r.cve_id = Some("CVE-26-1".into());
    r.title = " ".into();
    r.weaknesses.push(Weakness { id: "CWE-abc".into(), name: None });
    r.severity.cvss_v3_1 = Some("CVSS:3.1/AV:N/AC:L".into());
    r.severity.cvss_v4_0 = Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into());
    r.affected[0].ranges.push(range(RangeKind::Semver, &[("fixed", "1.0.0")]));
    r.affected[0].ecosystem = Some("Cargo".into());
    r.references.push(reference("javascript:alert(1)", ReferenceType::Web));
    let fields: Vec<String> = r.validate().into_iter().map(|p| p.field).collect();
    for expected in [
        "cve_id",
        "title",
        "affected[0].ecosystem",
        "affected[0].ranges[1]",
        "severity.cvss_v3_1",
        "severity.cvss_v4_0",
        "weaknesses[1].id",
        "references[2].url",
    ] {
        assert!(fields.iter().any(|f| f == expected), "{expected} not in {fields:?}");
    }
    let report = validate_outputs(&r, &publisher);
    assert!(!report.is_publishable());
    assert!(matches!(report.status(Format::Record), Status::Invalid(_)));
    println!("{report}");
    assert!(matches!(report.status(Format::CveRecord), Status::Invalid(p) if p.iter().any(|m| m.contains("CVE-26-1"))));
    assert!(matches!(report.status(Format::Osv), Status::Invalid(_)), "the range without introduced");
    let text = report.to_string();
    assert!(text.contains("title: the title is empty"), "{text}");
    assert!(text.contains("severity.cvss_v3_1: CVSS base metric PR is missing"), "{text}");

    let mut no_org = semver_library();
    no_org.title = "x".into();
    let mut anonymous = publisher.clone();
    anonymous.cve_org_id = None;
    let report = validate_outputs(&no_org, &anonymous);
    assert!(report.problems().iter().any(|p| p.contains("no CVE organisation ID")), "{report}");
}

#[test]
fn records_survive_json_storage() {
    for record in realistic() {
        let stored = serde_json::to_string(&record).unwrap();
        let back: AdvisoryRecord = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, record);
    }
    let stored: Value = serde_json::to_value(git_only()).unwrap();
    assert_eq!(stored["affected"][0]["ranges"][0]["kind"], "GIT");
    assert_eq!(stored["affected"][0]["ranges"][0]["events"][0], json!({"introduced": "0"}));
}

#[test]
fn markdown_has_every_section_and_html_is_sanitised() {
    let publisher = common::publisher();
    let md = to_markdown(&several_products(), &publisher);
    for section in [
        "## Summary",
        "## Details",
        "## Affected products",
        "## Workarounds and mitigations",
        "## Credits",
        "## References",
        "## Revision history",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    // Base 8.1; with E:P and RL:O the temporal score 8.1 × 0.94 × 0.95 = 7.23, rounded up.
    assert!(md.contains("CVSS 3.1:** 7.3 (High)"), "{md}");
    let mut hostile = semver_library();
    hostile.title = "<script>alert(1)</script>".into();
    hostile.details = "Click <a href=\"javascript:alert(1)\" onclick=\"x()\">here</a> ![x](https://evil.example/p.png) [ok](https://example.org)".into();
    let html = to_html(&hostile, &publisher);
    assert!(
        !html.contains("<script")
            && !html.contains("javascript:")
            && !html.contains("onclick")
            && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains(r#"<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>"#), "{html}");
    // A title or a credit taken from a report is text: an entity in it stays as typed (not
    // turned into the character it names), and a tag is shown, not dropped.
    let mut reported = semver_library();
    reported.title = "&lt;b&gt; & <i>x</i> &amp;".into();
    reported.credits = vec![common::credit("Eve &lt;img&gt; <u>", CreditType::Finder)];
    let html = to_html(&reported, &publisher);
    assert!(html.contains("&amp;lt;b&amp;gt; &amp; &lt;i&gt;x&lt;/i&gt; &amp;amp;"), "{html}");
    assert!(html.contains("Eve &amp;lt;img&amp;gt; &lt;u&gt;"), "{html}");
}

#[test]
fn our_csaf_passes_each_implemented_mandatory_test() {
    let publisher = common::publisher();
    for record in realistic() {
        let document = to_csaf(&record, &publisher);
        assert_eq!(mandatory::run_all(&document), vec![], "{}", record.id);
    }
}

#[test]
fn schemas_refuse_tampered_outputs() {
    use embargo_advisory::schema::{Schema, validate};
    let publisher = common::publisher();
    let record = semver_library();
    // The CSAF schema reaches the FIRST CVSS schema registered from the bundle.
    let mut csaf = to_csaf(&record, &publisher);
    csaf["vulnerabilities"][0]["scores"][0]["cvss_v3"]["baseSeverity"] = json!("EXTREME");
    let errors = validate(Schema::Csaf, &csaf);
    assert!(errors.iter().any(|e| e.contains("EXTREME")), "{errors:?}");
    // ...and 6.1.9 would catch a wrong but well-formed score.
    csaf["vulnerabilities"][0]["scores"][0]["cvss_v3"]["baseSeverity"] = json!("LOW");
    assert_eq!(mandatory::run("6.1.9", &csaf).unwrap().len(), 1);
    let mut osv = to_osv(&record);
    osv["id"] = json!("EMB-2026-0001");
    assert!(!validate(Schema::Osv, &osv).is_empty(), "an ID without a registered prefix or x_");
    let mut container = cna_container(&record, &publisher);
    container["descriptions"] = json!([]);
    assert!(!validate(Schema::CveCnaContainer, &container).is_empty());
    let mut full = cve_record(&record, &publisher);
    full["cveMetadata"]["assignerOrgId"] = json!("not-a-uuid");
    let errors = validate(Schema::CveRecord, &full);
    assert!(errors.iter().any(|e| e.starts_with("/cveMetadata/assignerOrgId")), "{errors:?}");
}

#[test]
fn bundled_schemas_match_the_shared_vectors() {
    let Some(vectors) = common::vectors("") else { return };
    let shared = |path: &str| match path.split_once('/').unwrap() {
        ("osv", file) => vectors.join("osv").join(file),
        ("cve", file) => vectors.join("cve/schema-5.1.1").join(file),
        ("csaf", file) if file.starts_with("first/") => vectors.join("csaf/csaf_2.0/referenced_schema").join(file),
        ("csaf", file) => vectors.join("csaf/csaf_2.0/json_schema").join(file),
        _ => unreachable!(),
    };
    for (path, text) in BUNDLED {
        assert_eq!(*text, common::read(&shared(path)), "schemas/{path} differs from its shared copy");
    }
}

#[test]
fn csaf_filenames_agree_with_the_oasis_corpus() {
    let Some(dir) = common::vectors("csaf/csaf_2.0/test/filenames/data") else { return };
    let mut checked = 0;
    for (kind, expect_match) in [("valid", true), ("invalid", false)] {
        for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
            let path = entry.unwrap().path();
            let id = common::json(&path)["document"]["tracking"]["id"].as_str().unwrap().to_owned();
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(csaf_filename(&id) == name, expect_match, "{kind}/{name} (id {id})");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
