//! Realistic advisories through every output: each validates against the official schemas
//! and the CSAF mandatory tests with no problem; broken records are caught with field-level
//! messages. Also: the bundled schemas equal their copies in `../shared/vectors`, and the §5.1
//! file names agree with the OASIS file-name corpus.

mod common;

use embargo_advisory::csaf::{csaf_filename, mandatory, to_csaf};
use embargo_advisory::cve::{cna_container, cve_record};
use embargo_advisory::markdown::{to_html, to_markdown};
use embargo_advisory::osv::to_osv;
use embargo_advisory::schema::BUNDLED;
use embargo_advisory::*;
use jiff::Timestamp;
use serde_json::{Value, json};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn base(id: &str, title: &str) -> AdvisoryRecord {
    AdvisoryRecord {
        id: id.parse().unwrap(),
        cve_id: None,
        aliases: vec![],
        related: vec![],
        title: title.into(),
        summary: String::new(),
        details: String::new(),
        affected: vec![],
        severity: Severity::default(),
        weaknesses: vec![],
        credits: vec![],
        references: vec![],
        workarounds: String::new(),
        revisions: vec![],
        published: Some(ts("2026-11-20T09:00:00Z")),
        modified: ts("2026-11-20T09:00:00Z"),
        withdrawn: None,
    }
}

fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
    let events = events
        .iter()
        .map(|(k, v)| match *k {
            "introduced" => Event::Introduced((*v).into()),
            "fixed" => Event::Fixed((*v).into()),
            "last_affected" => Event::LastAffected((*v).into()),
            _ => Event::Limit((*v).into()),
        })
        .collect();
    Range { kind, events }
}

fn product(vendor: &str, name: &str) -> Affected {
    Affected {
        product: name.into(),
        vendor: vendor.into(),
        ecosystem: None,
        purl: None,
        repository: None,
        ranges: vec![],
        versions: vec![],
    }
}

fn reference(url: &str, kind: ReferenceType) -> Reference {
    Reference { url: url.into(), kind }
}

fn credit(name: &str, kind: CreditType) -> Credit {
    Credit { name: name.into(), contact: vec![], kind: Some(kind) }
}

/// A path traversal in a Rust library, with a CVE, two fixed release lines, CVSS 3.1, a
/// named CWE, credits, a workaround and two revisions.
fn semver_library() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0001", "Path traversal in libexample archive extraction");
    r.cve_id = Some("CVE-2026-10001".into());
    r.aliases = vec!["GHSA-abcd-efgh-ijkl".into()];
    r.summary = "libexample's tar extraction writes outside the target directory for crafted archives.".into();
    r.details = "`Archive::unpack` follows `..` components.\n\nAn attacker who controls an archive can overwrite \
                 any file the process may write."
        .into();
    let mut lib = product("Example Project", "libexample");
    lib.ecosystem = Some("crates.io".into());
    lib.purl = Some("pkg:cargo/libexample".into());
    lib.repository = Some("https://github.com/example/libexample".into());
    lib.ranges = vec![range(
        RangeKind::Semver,
        &[("introduced", "0.3.0"), ("fixed", "0.3.7"), ("introduced", "0.4.0"), ("fixed", "0.4.2")],
    )];
    r.affected = vec![lib];
    r.severity.cvss_v3_1 = Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into());
    r.weaknesses = vec![Weakness {
        id: "CWE-22".into(),
        name: Some("Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')".into()),
    }];
    r.credits = vec![
        Credit {
            name: "Ada Example".into(),
            contact: vec!["mailto:ada@example.net".into()],
            kind: Some(CreditType::Finder),
        },
        credit("Libexample maintainers", CreditType::RemediationDeveloper),
    ];
    r.references = vec![
        reference(
            "https://github.com/example/libexample/security/advisories/GHSA-abcd-efgh-ijkl",
            ReferenceType::Advisory,
        ),
        reference(
            "https://github.com/example/libexample/commit/0123456789abcdef0123456789abcdef01234567",
            ReferenceType::Fix,
        ),
    ];
    r.workarounds = "Do not unpack archives from untrusted sources, or unpack them in an empty sandbox.".into();
    r.revisions = vec![
        Revision { number: 1, date: ts("2026-11-20T09:00:00Z"), summary: "Initial release.".into() },
        Revision { number: 2, date: ts("2026-11-22T15:30:00Z"), summary: "Added the 0.3 release line.".into() },
    ];
    r.modified = ts("2026-11-22T15:30:00Z");
    r
}

/// A daemon fixed by one commit, no CVE, no releases: a Git range only.
fn git_only() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0002", "Authentication bypass in widgetd admin socket");
    r.details = "widgetd accepted admin commands on its socket before checking credentials.".into();
    let mut daemon = product("Widget Co", "widgetd");
    daemon.repository = Some("https://git.example.org/widget/widgetd".into());
    daemon.ranges =
        vec![range(RangeKind::Git, &[("introduced", "0"), ("fixed", "9f2c1e0b7d6a5f4e3c2b1a0987654321fedcba98")])];
    r.affected = vec![daemon];
    r.severity.cvss_v3_1 = Some("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into());
    r.references = vec![reference("https://git.example.org/widget/widgetd/commit/9f2c1e0", ReferenceType::Fix)];
    r.credits = vec![credit("Widget Co security team", CreditType::Analyst)];
    r
}

/// An npm package scored with CVSS 4.0 only, affected up to a last version, unpublished.
fn cvss4_only() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0003", "Prototype pollution in deep-merge-lite");
    r.cve_id = Some("CVE-2026-10003".into());
    r.summary = "Merging attacker-controlled objects can set properties on Object.prototype.".into();
    let mut pkg = product("deep-merge-lite", "deep-merge-lite");
    pkg.ecosystem = Some("npm".into());
    pkg.purl = Some("pkg:npm/deep-merge-lite".into());
    pkg.ranges = vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("last_affected", "2.1.4")])];
    r.affected = vec![pkg];
    r.severity.cvss_v4_0 = Some("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N".into());
    r.weaknesses = vec![Weakness { id: "CWE-1321".into(), name: None }];
    r.references = vec![reference("https://www.npmjs.com/package/deep-merge-lite", ReferenceType::Package)];
    r.published = None;
    r
}

/// Several products from two vendors, listed versions and ranges, both CVSS versions and a
/// crowd of credits.
fn several_products() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0004", "Heap overflow in the Acme TLS terminator");
    r.cve_id = Some("CVE-2026-10004".into());
    r.summary = "A crafted ClientHello overflows a heap buffer in the TLS terminator shared by Acme products.".into();
    r.details =
        "The bug is in `tls_parse_ext`, used by **Gateway**, **Agent** and the `acme-tls` Python binding.".into();
    let mut gateway = product("Acme", "Acme Gateway");
    gateway.versions = vec!["5.0.1".into(), "5.0.2".into()];
    let mut agent = product("Acme", "Acme Agent");
    agent.ranges = vec![range(RangeKind::Semver, &[("introduced", "3.0.0"), ("fixed", "3.4.1")])];
    let mut binding = product("Acme Community", "acme-tls");
    binding.ecosystem = Some("PyPI".into());
    binding.purl = Some("pkg:pypi/acme-tls".into());
    binding.ranges = vec![range(RangeKind::Ecosystem, &[("introduced", "1.0"), ("fixed", "1.2.post1")])];
    let mut appliance = product("Acme", "Acme Edge Appliance");
    appliance.versions = vec![];
    r.affected = vec![gateway, agent, binding, appliance];
    r.severity.cvss_v3_1 = Some("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O".into());
    r.severity.cvss_v4_0 = Some("CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N".into());
    r.weaknesses = vec![
        Weakness { id: "CWE-122".into(), name: Some("Heap-based Buffer Overflow".into()) },
        Weakness { id: "CWE-787".into(), name: Some("Out-of-bounds Write".into()) },
    ];
    r.credits = vec![
        credit("Jo Researcher", CreditType::Finder),
        credit("Example CERT", CreditType::Coordinator),
        credit("Acme TLS team", CreditType::RemediationDeveloper),
        credit("Sam Reviewer", CreditType::RemediationReviewer),
        credit("fuzz-o-matic", CreditType::Tool),
        Credit { name: "Anonymous".into(), contact: vec![], kind: None },
    ];
    r.references = vec![
        reference("https://acme.example.com/security/ACME-SA-2026-07", ReferenceType::Advisory),
        reference("https://bugs.acme.example.com/4711", ReferenceType::Report),
    ];
    r.workarounds = "Disable TLS 1.3 session tickets: `tls.tickets = false`.".into();
    r
}

fn realistic() -> Vec<AdvisoryRecord> {
    vec![semver_library(), git_only(), cvss4_only(), several_products()]
}

/// With `EMBARGO_ADVISORY_OUT=<dir>`, writes every output there for external validators
/// (`check-jsonschema`, `cve validate`, the secvisogram CSAF validator).
fn dump(record: &AdvisoryRecord, publisher: &Publisher) {
    let Some(dir) = std::env::var_os("EMBARGO_ADVISORY_OUT").map(std::path::PathBuf::from) else { return };
    let id = record.id.to_string();
    let mut files = vec![
        (format!("osv/{id}.json"), to_osv(record)),
        (format!("csaf/{}", csaf_filename(&id)), to_csaf(record, publisher)),
    ];
    if record.cve_id.is_some() {
        files.push((format!("cve/{id}-cna.json"), cna_container(record, publisher)));
        files.push((format!("cve/{id}-record.json"), cve_record(record, publisher)));
    }
    for (path, value) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    }
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
