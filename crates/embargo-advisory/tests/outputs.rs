//! Realistic advisories through every output: each validates against the official schemas
//! and the CSAF mandatory tests with no problem; broken records are caught with field-level
//! messages. Also: the bundled schemas equal their copies in `../shared/vectors`, and the §5.1
//! file names agree with the OASIS file-name corpus.

mod common;

use common::*;

use embargo_advisory::csaf::{csaf_filename, mandatory, to_csaf};
use embargo_advisory::cve::{cna_container, cve_record, rejected_container};
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

/// Issue 19 item 8: the OSV `id` is the project's own ID (in the `x_` form the schema leaves
/// to unregistered databases), never the CVE ID, which would collide with OSV.dev's own CVE
/// records; the CVE ID is the first alias, as GHSA and RustSec write it.
#[test]
fn osv_ids_are_our_own_with_the_cve_as_alias() {
    let with_cve = to_osv(&semver_library());
    assert_eq!(with_cve["id"], "x_EMB-2026-0001");
    assert_eq!(with_cve["aliases"], json!(["CVE-2026-10001", "GHSA-abcd-efgh-ijkl"]));
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

// Issue 19: the outputs' meaning, not only their shape.

/// Item 1: a withdrawn advisory is withdrawn in every format: OSV `withdrawn` (after
/// `published`), a REJECTED CVE record with the reason, and a CSAF document that claims no
/// product, says why in a "Reasoning for Withdrawal" note and records the withdrawal in its
/// revision history.
#[test]
fn a_withdrawn_advisory_is_withdrawn_in_every_format() {
    let publisher = common::publisher();
    let record = withdrawn();
    let report = validate_outputs(&record, &publisher);
    assert!(report.is_publishable(), "{report}");
    assert_eq!(report.status(Format::CveRecord), &Status::Valid);

    let osv = to_osv(&record);
    assert_eq!(
        (osv["published"].as_str(), osv["withdrawn"].as_str()),
        (Some("2026-11-20T09:00:00Z"), Some("2026-11-25T08:00:00Z"))
    );
    assert!(osv["details"].as_str().unwrap().starts_with("**Withdrawn:** The parser's recursion limit"), "{osv:#}");

    let full = cve_record(&record, &publisher);
    assert_eq!(full["cveMetadata"]["state"], "REJECTED");
    assert_eq!(full["cveMetadata"]["dateRejected"], "2026-11-25T08:00:00Z");
    assert_eq!(full["containers"]["cna"]["rejectedReasons"][0]["value"], record.withdrawn_reason);
    assert!(full["containers"]["cna"].get("affected").is_none(), "a rejected record affects nothing");
    assert_eq!(rejected_container(&record, &publisher), full["containers"]["cna"]);

    let csaf = to_csaf(&record, &publisher);
    let document = &csaf["document"];
    assert_eq!(document["category"], "csaf_base");
    assert_eq!(document["tracking"]["status"], "final");
    assert_eq!(document["notes"][0]["category"], "description");
    assert_eq!(document["notes"][0]["title"], "Reasoning for Withdrawal");
    assert_eq!(document["notes"][0]["text"], record.withdrawn_reason);
    let history = document["tracking"]["revision_history"].as_array().unwrap();
    assert!(history.last().unwrap()["summary"].as_str().unwrap().starts_with("Withdrawn:"));
    assert!(csaf.get("product_tree").is_none() && csaf.get("vulnerabilities").is_none(), "{csaf:#}");
    assert!(!serde_json::to_string(&csaf).unwrap().contains("known_affected"));
    assert_eq!(mandatory::run_all(&csaf), vec![]);

    // The same record not withdrawn is live in all three.
    let mut live = record.clone();
    live.withdrawn = None;
    assert_eq!(cve_record(&live, &publisher)["cveMetadata"]["state"], "PUBLISHED");
    assert_eq!(to_csaf(&live, &publisher)["document"]["category"], "csaf_security_advisory");
    assert!(to_osv(&live).get("withdrawn").is_none());

    // A withdrawal dated before the publication is refused, and never written so.
    let mut early = record.clone();
    early.withdrawn = Some(ts("2026-11-01T00:00:00Z"));
    assert!(early.validate().iter().any(|p| p.field == "withdrawn"), "{:?}", early.validate());
    assert_eq!(to_osv(&early)["withdrawn"], "2026-11-20T09:00:00Z");
}

/// Item 2: a GIT range is commits, whatever the package's ecosystem: `versionType: "git"`,
/// never a semver bound made of a commit hash.
#[test]
fn git_ranges_are_git_in_the_cve_record() {
    let container = cna_container(&git_and_qualified_purls(), &common::publisher());
    let core = container["affected"].as_array().unwrap().iter().find(|a| a["product"] == "acme-core").unwrap();
    let versions = core["versions"].as_array().unwrap();
    let commit = versions.iter().find(|v| v["lessThan"] == "2222222222222222222222222222222222222222").unwrap();
    assert_eq!(commit["versionType"], "git", "{core:#}");
    assert_eq!(commit["version"], "1111111111111111111111111111111111111111");
    let release = versions.iter().find(|v| v["lessThan"] == "1.4.2").unwrap();
    assert_eq!(release["versionType"], "semver");
    let widgetd = cna_container(&git_only(), &common::publisher());
    // git_only has no CVE ID, but its container is computed the same way.
    assert_eq!(widgetd["affected"][0]["versions"][0]["versionType"], "git");
}

/// Item 3: a version goes between the name and the qualifiers (a purl parser reads it), for
/// the catalogue's purls with qualifiers too.
#[test]
fn package_urls_put_the_version_before_the_qualifiers() {
    use embargo_advisory::purl::Purl;
    let csaf = to_csaf(&git_and_qualified_purls(), &common::publisher());
    let text = serde_json::to_string(&csaf).unwrap();
    assert!(text.contains("pkg:deb/debian/acme-tools@1.2-3%2Bdeb12u1?arch=source"), "{text}");
    assert!(text.contains("pkg:deb/debian/acme-tools@1.2-2?arch=source"), "{text}");
    assert!(!text.contains("?arch=source@"), "{text}");
    let fixed = Purl::parse("pkg:deb/debian/acme-tools@1.2-3%2Bdeb12u1?arch=source").unwrap();
    assert_eq!(fixed.version.as_deref(), Some("1.2-3+deb12u1"));
    assert_eq!(fixed.qualifiers, [("arch".to_owned(), "source".to_owned())]);
    assert_eq!(mandatory::run("6.1.13", &csaf).unwrap(), vec![]);
}

/// Item 4: the vendor is never an ecosystem's name. An import without purl namespace,
/// repository or module path gets the vendor it is given (the organisation).
#[test]
fn an_imported_package_without_vendor_gets_the_organisation() {
    let osv = r#"{"id": "PYSEC-2026-1", "modified": "2026-01-02T00:00:00Z", "details": "x",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "acme-tls", "purl": "pkg:pypi/acme-tls"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]},
                     {"package": {"ecosystem": "npm", "name": "left-pad"}, "versions": ["1.0.0"]},
                     {"package": {"ecosystem": "Maven", "name": "org.acme:core", "purl": "pkg:maven/org.acme/core"},
                      "versions": ["2.0"]}]}"#;
    let imported = embargo_advisory::osv::import_osv(osv, "EMB-2026-0042".parse().unwrap(), "Example Org").unwrap();
    let vendors: Vec<&str> = imported.record.affected.iter().map(|a| a.vendor.as_str()).collect();
    assert_eq!(vendors, ["Example Org", "Example Org", "org.acme"]);
    let publisher = common::publisher();
    let csaf = to_csaf(&imported.record, &publisher);
    let names: Vec<&str> =
        csaf["product_tree"]["branches"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| ["PyPI", "npm", "Maven"].contains(n)), "{names:?}");
}

/// Item 9: an alias that repeats our own ID, the CVE ID or another alias is listed once, so
/// that the CSAF `ids` stay unique (the schema's `uniqueItems`) and the advisory publishable.
#[test]
fn aliases_are_listed_once() {
    let publisher = common::publisher();
    let mut record = semver_library();
    record.aliases = vec![
        "GHSA-abcd-efgh-ijkl".into(),
        "EMB-2026-0001".into(),
        "CVE-2026-10001".into(),
        "GHSA-abcd-efgh-ijkl".into(),
        "RUSTSEC-2026-0001".into(),
    ];
    let report = validate_outputs(&record, &publisher);
    assert!(report.is_publishable(), "{report}");
    let csaf = to_csaf(&record, &publisher);
    let ids: Vec<&str> =
        csaf["vulnerabilities"][0]["ids"].as_array().unwrap().iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert_eq!(ids, ["GHSA-abcd-efgh-ijkl", "RUSTSEC-2026-0001"]);
    assert_eq!(to_osv(&record)["aliases"], json!(["CVE-2026-10001", "GHSA-abcd-efgh-ijkl", "RUSTSEC-2026-0001"]));
}

/// Item 11: the four optional tests that warned, checked by their rule here as well as by
/// the official validator (`official_validators.rs`): a canonical `self` reference (6.2.11),
/// keys in order when serialised (6.2.13), an identification helper on every product
/// (6.2.16), and every `product_version_range` a `vers:` range (6.2.18).
#[test]
fn csaf_meets_the_optional_tests_that_warned() {
    let publisher = common::publisher();
    for record in realistic() {
        let csaf = to_csaf(&record, &publisher);
        let id = record.id.to_string();
        let self_ref =
            csaf["document"]["references"].as_array().unwrap().iter().find(|r| r["category"] == "self").cloned();
        let year = record.initial_release().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        assert_eq!(
            self_ref.unwrap()["url"],
            format!("https://security.example.org/.well-known/csaf/white/{year}/{}", csaf_filename(&id))
        );
        // Serialised (the publication pretty-prints this value), the keys come out sorted.
        let text = serde_json::to_string_pretty(&csaf).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        fn sorted(v: &Value) -> bool {
            match v {
                Value::Object(map) => map.keys().is_sorted() && map.values().all(sorted),
                Value::Array(list) => list.iter().all(sorted),
                _ => true,
            }
        }
        assert!(sorted(&reparsed), "{id}: keys out of order");
        fn products(v: &Value, out: &mut Vec<Value>) {
            match v {
                Value::Object(map) => {
                    if map.contains_key("product_id") && map.contains_key("name") {
                        out.push(v.clone());
                    }
                    map.values().for_each(|c| products(c, out));
                }
                Value::Array(list) => list.iter().for_each(|c| products(c, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        products(&csaf["product_tree"], &mut all);
        for product in &all {
            assert!(product["product_identification_helper"]["purl"].is_string(), "{id}: {product}");
        }
        fn ranges(v: &Value, out: &mut Vec<String>) {
            for b in v.as_array().into_iter().flatten() {
                if b["category"] == "product_version_range" {
                    out.push(b["name"].as_str().unwrap().to_owned());
                }
                ranges(&b["branches"], out);
            }
        }
        let mut names = Vec::new();
        ranges(&csaf["product_tree"]["branches"], &mut names);
        for name in names {
            assert!(name.starts_with("vers:"), "{id}: {name}");
        }
    }
    // A Git range is a full product name that says which commits of which repository.
    let csaf = to_csaf(&git_only(), &publisher);
    let names = csaf["product_tree"]["full_product_names"].as_array().unwrap();
    assert_eq!(names.len(), 1);
    let name = names[0]["name"].as_str().unwrap();
    assert!(
        name.contains("9f2c1e0b7d6a5f4e3c2b1a0987654321fedcba98")
            && name.contains("https://git.example.org/widget/widgetd"),
        "{name}"
    );
    assert_eq!(csaf["vulnerabilities"][0]["product_status"]["known_affected"], json!(["P1-R1"]));
    assert_eq!(csaf["vulnerabilities"][0]["product_status"]["fixed"], json!(["P1-F1"]));
    // Without a provider URL there is no canonical URL to name.
    let mut no_provider = publisher.clone();
    no_provider.csaf_documents_url = None;
    assert!(
        to_csaf(&git_only(), &no_provider)["document"]["references"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["category"] != "self")
    );
}

/// Item 13: the workarounds are in the OSV `details` (OSV has no field of its own for them),
/// and the generator is this crate at its version, not `0.0.0`.
#[test]
fn osv_details_carry_the_workarounds_and_the_generator_has_a_version() {
    let record = semver_library();
    let details = to_osv(&record)["details"].as_str().unwrap().to_owned();
    assert!(details.ends_with(&format!("## Workarounds\n\n{}", record.workarounds)), "{details}");
    let engine = &to_csaf(&record, &common::publisher())["document"]["tracking"]["generator"]["engine"];
    assert_eq!(engine["version"], env!("CARGO_PKG_VERSION"));
    assert_ne!(engine["version"], "0.0.0");
    assert_eq!(
        cna_container(&record, &common::publisher())["x_generator"]["engine"],
        format!("Embargo {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Item 11: the optional tests are part of the advisory check: `validate_outputs` reports
/// their warnings (the editor and `embargo advisory check` show them), without blocking
/// publication. Our documents raise one, where CSAF 2.0 cannot do better: no score for an
/// advisory scored with CVSS 4.0 only.
#[test]
fn the_advisory_check_reports_the_optional_tests() {
    use embargo_advisory::csaf::optional;
    let publisher = common::publisher();
    for record in realistic() {
        let report = validate_outputs(&record, &publisher);
        let expected: Vec<String> = if record.id.to_string() == "EMB-2026-0003" {
            vec!["CSAF test 6.2.3 at /vulnerabilities/0/product_status/known_affected/0: missing score".into()]
        } else {
            vec![]
        };
        assert_eq!(report.warnings, expected, "{}", record.id);
        assert!(report.is_publishable());
    }
    let report = validate_outputs(&cvss4_only(), &publisher);
    assert!(report.to_string().contains("CSAF optional tests: 1 warning(s)\n  - CSAF test 6.2.3"), "{report}");

    // A careless document: each implemented test warns.
    let mut careless = to_csaf(&several_products(), &publisher);
    careless["document"].as_object_mut().unwrap().remove("references");
    careless["vulnerabilities"][0].as_object_mut().unwrap().remove("remediations");
    careless["vulnerabilities"][0].as_object_mut().unwrap().remove("scores");
    let branch = &mut careless["product_tree"]["branches"][0]["branches"][1]["branches"][0];
    branch["name"] = json!(">= 3.0.0, < 3.4.1");
    branch["product"].as_object_mut().unwrap().remove("product_identification_helper");
    let tracking = careless["document"]["tracking"].as_object_mut().unwrap();
    let id = tracking.remove("id").unwrap();
    tracking.insert("id".into(), id);
    let tests: std::collections::BTreeSet<&str> = optional::run_all(&careless).iter().map(|w| w.test).collect();
    assert_eq!(tests, optional::IMPLEMENTED.iter().copied().collect());
}
