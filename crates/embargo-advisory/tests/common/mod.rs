//! Shared by the integration tests: where the third-party vectors are, a publisher, and a set
//! of realistic advisories with their outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use embargo_advisory::csaf::{csaf_filename, to_csaf};
use embargo_advisory::cve::{cna_container, cve_record, rejected_container};
use embargo_advisory::osv::to_osv;
use embargo_advisory::*;
use jiff::Timestamp;

/// `../shared/vectors/<sub>` seen from the workspace root, or `None` (with a printed reason)
/// when absent; under `EMBARGO_TEST_STRICT=1` a missing corpus is a failure.
pub fn vectors(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors")).join(sub);
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("EMBARGO_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("the test vectors are required (EMBARGO_TEST_STRICT=1) but missing at {}", dir.display());
    } else {
        println!("skipped: no test vectors at {}", dir.display());
        None
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn publisher() -> Publisher {
    Publisher {
        name: "Example Security Team".into(),
        namespace: "https://security.example.org".into(),
        contact: Some("security@example.org".into()),
        category: PublisherCategory::Vendor,
        cve_org_id: Some("b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into()),
        cve_short_name: Some("example".into()),
        csaf_documents_url: Some("https://security.example.org/.well-known/csaf/white".into()),
    }
}

// The realistic advisories, shared by `outputs.rs` (our own validation) and
// `official_validators.rs` (the official tools).

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn base(id: &str, title: &str) -> AdvisoryRecord {
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
        withdrawn_reason: String::new(),
        upstream: vec![],
        database_specific: None,
    }
}

pub fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
    let events = events
        .iter()
        .map(|(k, v)| match *k {
            "introduced" => Event::Introduced((*v).into()),
            "fixed" => Event::Fixed((*v).into()),
            "last_affected" => Event::LastAffected((*v).into()),
            _ => Event::Limit((*v).into()),
        })
        .collect();
    Range { kind, events, database_specific: None }
}

pub fn product(vendor: &str, name: &str) -> Affected {
    Affected {
        product: name.into(),
        vendor: vendor.into(),
        ecosystem: None,
        purl: None,
        repository: None,
        ranges: vec![],
        versions: vec![],
        ecosystem_specific: None,
        database_specific: None,
    }
}

pub fn reference(url: &str, kind: ReferenceType) -> Reference {
    Reference { url: url.into(), kind }
}

pub fn credit(name: &str, kind: CreditType) -> Credit {
    Credit { name: name.into(), contact: vec![], kind: Some(kind) }
}

/// A path traversal in a Rust library, with a CVE, two fixed release lines, CVSS 3.1, a
/// named CWE, credits, a workaround and two revisions.
pub fn semver_library() -> AdvisoryRecord {
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
pub fn git_only() -> AdvisoryRecord {
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
pub fn cvss4_only() -> AdvisoryRecord {
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
pub fn several_products() -> AdvisoryRecord {
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

/// A Debian package whose catalogue purl has a qualifier, and a Rust crate with a fix commit
/// as well as fixed releases (a GIT range under crates.io), by a vendor of its own.
pub fn git_and_qualified_purls() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0005", "Use after free in acme-tools archive listing");
    r.cve_id = Some("CVE-2026-10005".into());
    r.summary = "Listing a crafted archive frees an entry that is used afterwards.".into();
    let mut deb = product("Acme", "acme-tools");
    deb.ecosystem = Some("Debian:12".into());
    deb.purl = Some("pkg:deb/debian/acme-tools?arch=source".into());
    deb.ranges = vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "1.2-3+deb12u1")])];
    deb.versions = vec!["1.2-2".into()];
    let mut core = product("Acme", "acme-core");
    core.ecosystem = Some("crates.io".into());
    core.purl = Some("pkg:cargo/acme-core".into());
    core.repository = Some("https://github.com/acme/acme-core".into());
    core.ranges = vec![
        range(RangeKind::Semver, &[("introduced", "1.0.0"), ("fixed", "1.4.2")]),
        range(
            RangeKind::Git,
            &[
                ("introduced", "1111111111111111111111111111111111111111"),
                ("fixed", "2222222222222222222222222222222222222222"),
            ],
        ),
    ];
    r.affected = vec![deb, core];
    r.severity.cvss_v3_1 = Some("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H".into());
    r.weaknesses = vec![Weakness { id: "CWE-416".into(), name: Some("Use After Free".into()) }];
    r.references = vec![reference("https://github.com/acme/acme-core/commit/2222222", ReferenceType::Fix)];
    r
}

/// A published advisory withdrawn in its second revision (it was not a vulnerability).
pub fn withdrawn() -> AdvisoryRecord {
    let mut r = base("EMB-2026-0006", "Denial of service in widget-parse (withdrawn)");
    r.cve_id = Some("CVE-2026-10006".into());
    r.summary = "A deeply nested document exhausts the stack.".into();
    let mut pkg = product("Widget Co", "widget-parse");
    pkg.ecosystem = Some("npm".into());
    pkg.purl = Some("pkg:npm/widget-parse".into());
    pkg.ranges = vec![range(RangeKind::Semver, &[("introduced", "0"), ("fixed", "3.0.1")])];
    r.affected = vec![pkg];
    r.references = vec![reference("https://www.npmjs.com/package/widget-parse", ReferenceType::Package)];
    r.revisions = vec![
        Revision { number: 1, date: ts("2026-11-20T09:00:00Z"), summary: "Initial release.".into() },
        Revision {
            number: 2,
            date: ts("2026-11-25T08:00:00Z"),
            summary: "Withdrawn: the recursion limit already stops it.".into(),
        },
    ];
    r.modified = ts("2026-11-25T08:00:00Z");
    r.withdrawn = Some(ts("2026-11-25T08:00:00Z"));
    r.withdrawn_reason = "The parser's recursion limit already stops such documents; there is no vulnerability.".into();
    r
}

pub fn realistic() -> Vec<AdvisoryRecord> {
    vec![semver_library(), git_only(), cvss4_only(), several_products(), git_and_qualified_purls(), withdrawn()]
}

/// Every output of a record, by relative path (`osv/…`, `csaf/…`, `cve/…`): OSV and CSAF
/// always, the CVE container and full record when the record has a CVE ID.
pub fn outputs(record: &AdvisoryRecord, publisher: &Publisher) -> Vec<(String, serde_json::Value)> {
    let id = record.id.to_string();
    let mut files = vec![
        (format!("osv/{id}.json"), to_osv(record)),
        (format!("csaf/{}", csaf_filename(&id)), to_csaf(record, publisher)),
    ];
    if record.cve_id.is_some() && record.withdrawn.is_some() {
        files.push((format!("cve/{id}-cna-rejected.json"), rejected_container(record, publisher)));
        files.push((format!("cve/{id}-record.json"), cve_record(record, publisher)));
    } else if record.cve_id.is_some() {
        files.push((format!("cve/{id}-cna.json"), cna_container(record, publisher)));
        files.push((format!("cve/{id}-record.json"), cve_record(record, publisher)));
    }
    files
}

/// Writes `outputs` under `dir`, pretty-printed; returns the paths written with their
/// relative names.
pub fn write_outputs(dir: &Path, record: &AdvisoryRecord, publisher: &Publisher) -> Vec<(String, PathBuf)> {
    outputs(record, publisher)
        .into_iter()
        .map(|(name, value)| {
            let path = dir.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
            (name, path)
        })
        .collect()
}
