//! The advisory record: the one source from which every published form is computed.
//!
//! Free-text and identifier fields are plain strings so that an editor can hold whatever a
//! person typed; [`AdvisoryRecord::validate`] names every field that is not acceptable. Only
//! the advisory's own ID, which Embargo assigns, is a checked type.

use std::fmt;
use std::str::FromStr;

use embargo_domain::ReferencePrefix;
use embargo_domain::cvss::Vector;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An advisory's own identifier, `PREFIX-YYYY-NNNN` (the number has at least four digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdvisoryId {
    prefix: ReferencePrefix,
    year: i16,
    number: u32,
}

/// Why an advisory ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an advisory ID must look like PREFIX-YYYY-NNNN (for example EMB-2026-0001), got {0:?}")]
pub struct BadAdvisoryId(pub String);

impl AdvisoryId {
    /// Builds an ID from its parts; `number` starts at 1.
    pub fn new(prefix: ReferencePrefix, year: i16, number: u32) -> Result<Self, BadAdvisoryId> {
        if !(1970..=9999).contains(&year) || number == 0 {
            return Err(BadAdvisoryId(format!("{prefix}-{year}-{number:04}")));
        }
        Ok(Self { prefix, year, number })
    }

    pub fn prefix(&self) -> &ReferencePrefix {
        &self.prefix
    }

    pub fn year(&self) -> i16 {
        self.year
    }

    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for AdvisoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}-{}-{:04}", self.prefix, self.year, self.number))
    }
}

impl FromStr for AdvisoryId {
    type Err = BadAdvisoryId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadAdvisoryId(text.to_owned());
        let mut parts = text.rsplitn(3, '-');
        let (Some(number), Some(year), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(number) || number.len() < 4 || !digits(year) || year.len() != 4 {
            return Err(bad());
        }
        if number.len() > 4 && number.starts_with('0') {
            return Err(bad());
        }
        let prefix = ReferencePrefix::parse(prefix).map_err(|_| bad())?;
        Self::new(prefix, year.parse().map_err(|_| bad())?, number.parse().map_err(|_| bad())?)
    }
}

impl TryFrom<String> for AdvisoryId {
    type Error = BadAdvisoryId;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<AdvisoryId> for String {
    fn from(id: AdvisoryId) -> Self {
        id.to_string()
    }
}

/// One advisory: what the team edits, what the store keeps (as JSON), and what every output
/// format is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvisoryRecord {
    pub id: AdvisoryId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve_id: Option<String>,
    /// Other identifiers of the same vulnerability (GHSA, RUSTSEC, another database's IDs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Identifiers of closely related but different vulnerabilities (OSV `related`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// One line.
    pub title: String,
    /// A short plain-text description (the CVE description).
    #[serde(default)]
    pub summary: String,
    /// The full description, Markdown.
    #[serde(default)]
    pub details: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weaknesses: Vec<Weakness>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credits: Vec<Credit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Workarounds and mitigations, Markdown; empty when there are none.
    #[serde(default)]
    pub workarounds: String,
    /// Numbered 1, 2, 3… in date order. When empty, outputs show one revision "1", the
    /// initial release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
    /// When the advisory was (or will be) first published; `None` while it is a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Timestamp>,
    pub modified: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<Timestamp>,
    /// Why the advisory was withdrawn (one or two sentences); outputs fall back to
    /// [`AdvisoryRecord::withdrawal_text`]'s generic sentence when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub withdrawn_reason: String,
    /// OSV `upstream`: identifiers of the upstream vulnerabilities this one derives from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    /// Data of an imported record that has no field of its own here (OSV top-level
    /// `database_specific`, less the CWE IDs that became [`AdvisoryRecord::weaknesses`]);
    /// written again into the OSV output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One affected product or package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    /// The product name; for a package in an ecosystem, the package name.
    pub product: String,
    pub vendor: String,
    /// An OSV ecosystem name, optionally with its suffix (`Debian:12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// The source repository; required for Git ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Individually listed affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// OSV `ecosystem_specific` of an imported package (Go's `imports`, RustSec's
    /// `affects`…), passed through to the OSV output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// OSV per-package `database_specific` of an imported package, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// A version range in OSV's terms: a list of events in the range's ordering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
    /// OSV per-range `database_specific` of an imported range, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

impl Range {
    /// The events in version order, as OSV evaluates them (records in the wild often list
    /// them out of order). Versions compare piecewise: numbers as numbers, other text as
    /// text, `0` first; Git ranges keep their order (commits have none).
    pub fn sorted_events(&self) -> Vec<&Event> {
        let mut events: Vec<&Event> = self.events.iter().collect();
        if self.kind != RangeKind::Git {
            events.sort_by(|a, b| compare_versions(a.version(), b.version()));
        }
        events
    }
}

/// A generic version order for sorting events: `0` first, then piece by piece.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a == "0", b == "0") {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let pieces = |s: &str| s.split(['.', '-', '+', '_', '~']).map(str::to_owned).collect::<Vec<_>>();
    let (pa, pb) = (pieces(a), pieces(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    Semver,
    Ecosystem,
    Git,
}

impl RangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semver => "SEMVER",
            Self::Ecosystem => "ECOSYSTEM",
            Self::Git => "GIT",
        }
    }
}

/// An OSV range event; serialised as OSV writes it (`{"introduced": "1.0.0"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

/// CVSS vectors, strings as typed; checked by [`AdvisoryRecord::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_v3_1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_v4_0: Option<String>,
}

impl Severity {
    /// The valid vectors, 3.1 first, in canonical form. Invalid ones are left out (validation
    /// reports them).
    pub fn vectors(&self) -> Vec<Vector> {
        [&self.cvss_v3_1, &self.cvss_v4_0].into_iter().flatten().filter_map(|v| Vector::parse(v).ok()).collect()
    }
}

/// A CWE weakness. The name is optional because Embargo ships no CWE catalogue; CSAF 2.0
/// can only carry a weakness whose name is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weakness {
    /// `CWE-<digits>`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub name: String,
    /// Ways to reach the person (URLs, `mailto:`…), as OSV keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CreditType>,
}

/// OSV's credit types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CreditType {
    Finder,
    Reporter,
    Analyst,
    Coordinator,
    RemediationDeveloper,
    RemediationReviewer,
    RemediationVerifier,
    Tool,
    Sponsor,
    Other,
}

impl CreditType {
    /// Lower-case words, as CVE writes them (`remediation developer`).
    pub fn words(self) -> &'static str {
        match self {
            Self::Finder => "finder",
            Self::Reporter => "reporter",
            Self::Analyst => "analyst",
            Self::Coordinator => "coordinator",
            Self::RemediationDeveloper => "remediation developer",
            Self::RemediationReviewer => "remediation reviewer",
            Self::RemediationVerifier => "remediation verifier",
            Self::Tool => "tool",
            Self::Sponsor => "sponsor",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: ReferenceType,
}

/// OSV's reference types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReferenceType {
    Advisory,
    Article,
    Detection,
    Discussion,
    Report,
    Fix,
    Introduced,
    Git,
    Package,
    Evidence,
    Web,
}

impl ReferenceType {
    /// A capitalised word for people (`Fix`, `Advisory`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Advisory => "Advisory",
            Self::Article => "Article",
            Self::Detection => "Detection",
            Self::Discussion => "Discussion",
            Self::Report => "Report",
            Self::Fix => "Fix",
            Self::Introduced => "Introduced",
            Self::Git => "Git",
            Self::Package => "Package",
            Self::Evidence => "Evidence",
            Self::Web => "Web page",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub number: u32,
    pub date: Timestamp,
    pub summary: String,
}

/// Who publishes: needed by CSAF (publisher) and CVE (the CNA's organisation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    pub name: String,
    /// The organisation's web namespace, such as `https://example.com`.
    pub namespace: String,
    /// How to reach the security team (an address or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default)]
    pub category: PublisherCategory,
    /// The CNA's organisation UUID at CVE Services; required for CVE output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve_org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve_short_name: Option<String>,
    /// Where the provider serves its TLP:WHITE CSAF documents (`https://…/.well-known/csaf/white`):
    /// a document's canonical URL is `<this>/<year of initial release>/<file name>`, its CSAF
    /// `self` reference (§3.2.1.11, optional test 6.2.11). `None` when there is no provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csaf_documents_url: Option<String>,
}

/// CSAF publisher categories (`translator` is left out: it needs a source language).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublisherCategory {
    #[default]
    Vendor,
    Coordinator,
    Discoverer,
    User,
    Other,
}

/// One thing wrong with one field, for the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A path such as `affected[1].ranges[0]`.
    pub field: String,
    /// A sentence.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// `CVE-YYYY-NNNN…` with 4 to 19 digits, as the CVE schema requires.
pub fn is_cve_id(text: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    text.strip_prefix("CVE-").and_then(|rest| rest.split_once('-')).is_some_and(|(year, number)| {
        year.len() == 4 && digits(year) && (4..=19).contains(&number.len()) && digits(number)
    })
}

/// `CWE-<digits>` without a leading zero.
pub fn is_cwe_id(text: &str) -> bool {
    text.strip_prefix("CWE-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 5 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_http_url(text: &str) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !text.chars().any(|c| c.is_whitespace()))
}

/// A full Git commit hash (or `0`, "the beginning of history"), as OSV requires.
fn is_commit(text: &str) -> bool {
    text == "0" || (matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The OSV ecosystems of the bundled schema (1.7.5).
pub const OSV_ECOSYSTEMS: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Android",
    "Azure Linux",
    "BellSoft Hardened Containers",
    "Bioconductor",
    "Bitnami",
    "Chainguard",
    "CleanStart",
    "ConanCenter",
    "CRAN",
    "crates.io",
    "Debian",
    "Docker Hardened Images",
    "Echo",
    "FreeBSD",
    "GHC",
    "GitHub Actions",
    "Go",
    "Hackage",
    "Hex",
    "Julia",
    "Kubernetes",
    "Linux",
    "Mageia",
    "Maven",
    "MinimOS",
    "npm",
    "NuGet",
    "opam",
    "openEuler",
    "openSUSE",
    "OSS-Fuzz",
    "Packagist",
    "Photon OS",
    "Pub",
    "PyPI",
    "Red Hat",
    "Rocky Linux",
    "Root",
    "RubyGems",
    "SUSE",
    "SwiftURL",
    "TuxCare",
    "Ubuntu",
    "VSCode",
    "Wolfi",
    "GIT",
];

/// Whether `purl` is a syntactically valid package URL (see [`crate::purl::Purl::parse`]).
pub fn is_purl(purl: &str) -> bool {
    crate::purl::Purl::parse(purl).is_ok()
}

impl AdvisoryRecord {
    /// Every field-level problem, in field order; empty when the record can be published.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| problems.push(Problem { field, message });
        if let Some(cve) = &self.cve_id
            && !is_cve_id(cve)
        {
            problem("cve_id".into(), format!("{cve:?} is not a CVE ID (CVE-YYYY-NNNN, at least four digits)"));
        }
        for (i, alias) in self.aliases.iter().enumerate() {
            if alias.trim().is_empty() || alias.chars().any(char::is_whitespace) {
                problem(format!("aliases[{i}]"), "an alias must be an identifier without spaces".into());
            }
        }
        if self.title.trim().is_empty() {
            problem("title".into(), "the title is empty".into());
        } else if self.title.chars().count() > 256 {
            problem("title".into(), "the title is longer than 256 characters (the CVE limit)".into());
        }
        if self.summary.trim().is_empty() && self.details.trim().is_empty() {
            problem("summary".into(), "a summary or details are needed to describe the vulnerability".into());
        }
        if self.summary.chars().count() > 4096 {
            problem("summary".into(), "the summary is longer than 4096 characters (the CVE limit)".into());
        }
        if self.affected.is_empty() {
            problem("affected".into(), "at least one affected product is needed".into());
        }
        for (i, affected) in self.affected.iter().enumerate() {
            let field = |name: &str| format!("affected[{i}].{name}");
            if affected.product.trim().is_empty() {
                problem(field("product"), "the product name is empty".into());
            }
            if affected.vendor.trim().is_empty() {
                problem(field("vendor"), "the vendor is empty".into());
            }
            if let Some(ecosystem) = &affected.ecosystem {
                let base = ecosystem.split(':').next().unwrap_or_default();
                if !OSV_ECOSYSTEMS.contains(&base) {
                    problem(field("ecosystem"), format!("{ecosystem:?} is not an OSV ecosystem name"));
                }
            }
            if let Some(purl) = &affected.purl
                && !is_purl(purl)
            {
                problem(field("purl"), format!("{purl:?} is not a package URL (pkg:type/namespace/name)"));
            }
            if let Some(repo) = &affected.repository
                && !is_http_url(repo)
            {
                problem(field("repository"), format!("{repo:?} is not an http(s) URL"));
            }
            for (j, range) in affected.ranges.iter().enumerate() {
                let field = format!("affected[{i}].ranges[{j}]");
                let has = |f: fn(&Event) -> bool| range.events.iter().any(f);
                if !has(|e| matches!(e, Event::Introduced(_))) {
                    problem(
                        field.clone(),
                        "a range needs an \"introduced\" event (use \"0\" for the beginning)".into(),
                    );
                }
                if has(|e| matches!(e, Event::Fixed(_))) && has(|e| matches!(e, Event::LastAffected(_))) {
                    problem(field.clone(), "a range cannot have both \"fixed\" and \"last_affected\" events".into());
                }
                if range.events.iter().any(|e| e.version().trim().is_empty()) {
                    problem(field.clone(), "an event has an empty version".into());
                }
                if range.kind == RangeKind::Git {
                    if affected.repository.is_none() {
                        problem(field.clone(), "a Git range needs the product's repository URL".into());
                    }
                    if let Some(e) = range.events.iter().find(|e| !is_commit(e.version())) {
                        problem(field.clone(), format!("{:?} is not a full Git commit hash", e.version()));
                    }
                }
                if range.kind == RangeKind::Ecosystem && affected.ecosystem.is_none() {
                    problem(field.clone(), "an ecosystem range needs the product's ecosystem".into());
                }
            }
        }
        for (slot, vector, version) in [
            ("severity.cvss_v3_1", &self.severity.cvss_v3_1, "3.1"),
            ("severity.cvss_v4_0", &self.severity.cvss_v4_0, "4.0"),
        ] {
            let Some(vector) = vector else { continue };
            match Vector::parse(vector) {
                Ok(v) if v.version() != version => problem(
                    slot.into(),
                    format!("this is a CVSS {} vector; CVSS {version} is expected here", v.version()),
                ),
                Ok(_) => {}
                Err(e) => problem(slot.into(), e.to_string()),
            }
        }
        for (i, weakness) in self.weaknesses.iter().enumerate() {
            if !is_cwe_id(&weakness.id) {
                problem(format!("weaknesses[{i}].id"), format!("{:?} is not a CWE ID (CWE-<digits>)", weakness.id));
            }
        }
        for (i, credit) in self.credits.iter().enumerate() {
            if credit.name.trim().is_empty() {
                problem(format!("credits[{i}].name"), "the name is empty".into());
            }
        }
        for (i, reference) in self.references.iter().enumerate() {
            if !is_http_url(&reference.url) {
                problem(format!("references[{i}].url"), format!("{:?} is not an http(s) URL", reference.url));
            }
        }
        for (i, revision) in self.revisions.iter().enumerate() {
            let field = format!("revisions[{i}]");
            if revision.number as usize != i + 1 {
                problem(field.clone(), format!("revision {} should be number {}", revision.number, i + 1));
            }
            if revision.summary.trim().is_empty() {
                problem(field.clone(), "the revision summary is empty".into());
            }
            if i > 0 && revision.date < self.revisions[i - 1].date {
                problem(field, "revisions must be in date order".into());
            }
        }
        if let Some(published) = self.published
            && self.modified < published
        {
            problem("modified".into(), "the modification time is before the publication time".into());
        }
        if let (Some(published), Some(withdrawn)) = (self.published, self.withdrawn)
            && withdrawn < published
        {
            problem("withdrawn".into(), "the withdrawal time is before the publication time".into());
        }
        problems
    }

    /// The initial release time: published, or for a draft the last modification.
    pub fn initial_release(&self) -> Timestamp {
        self.published.unwrap_or(self.modified)
    }

    /// The revision history shown in outputs (see [`AdvisoryRecord::revisions`]).
    pub fn revision_history(&self) -> Vec<Revision> {
        if self.revisions.is_empty() {
            vec![Revision { number: 1, date: self.initial_release(), summary: "Initial release.".into() }]
        } else {
            self.revisions.clone()
        }
    }

    /// Why the advisory was withdrawn, for every output: the reason given, else a generic
    /// sentence.
    pub fn withdrawal_text(&self) -> String {
        match self.withdrawn_reason.trim() {
            "" => {
                "This advisory has been withdrawn by its publisher; its content should no longer be relied on.".into()
            }
            reason => reason.to_owned(),
        }
    }

    /// The other identifiers to list beside the record's own ID and CVE ID: each alias once,
    /// in order, without the CVE ID or our own ID (imported records often repeat them).
    pub fn other_ids(&self) -> Vec<&str> {
        let own = self.id.to_string();
        let mut out: Vec<&str> = Vec::new();
        for alias in &self.aliases {
            let alias = alias.trim();
            if alias.is_empty() || Some(alias) == self.cve_id.as_deref() || alias == own || out.contains(&alias) {
                continue;
            }
            out.push(alias);
        }
        out
    }

    /// The description: the summary, or else the details.
    pub fn description(&self) -> &str {
        if self.summary.trim().is_empty() { &self.details } else { &self.summary }
    }
}

/// UTC, whole seconds, `Z`: `2026-11-27T10:00:00Z`.
pub(crate) fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_ids_round_trip() {
        let id: AdvisoryId = "EMB-2026-0001".parse().unwrap();
        assert_eq!((id.prefix().as_str(), id.year(), id.number()), ("EMB", 2026, 1));
        assert_eq!(id.to_string(), "EMB-2026-0001");
        assert_eq!("ACME-2026-12345".parse::<AdvisoryId>().unwrap().to_string(), "ACME-2026-12345");
        for bad in ["EMB-2026-1", "EMB-26-0001", "emb-2026-0001", "EMB-2026-0000", "EMB-2026-01234", "2026-0001"] {
            assert!(bad.parse::<AdvisoryId>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"EMB-2026-0001\"");
        assert!(serde_json::from_str::<AdvisoryId>("\"nope\"").is_err());
    }

    #[test]
    fn identifier_checks() {
        assert!(is_cve_id("CVE-2026-1234") && is_cve_id("CVE-2026-1234567"));
        assert!(!is_cve_id("CVE-2026-123") && !is_cve_id("CVE-26-1234") && !is_cve_id("cve-2026-1234"));
        assert!(is_cwe_id("CWE-79") && !is_cwe_id("CWE-079") && !is_cwe_id("CWE-") && !is_cwe_id("79"));
        assert!(is_purl("pkg:cargo/serde@1.0.0") && is_purl("pkg:maven/org.apache/log4j-core"));
        assert!(!is_purl("pkg:maven/@1.3.4") && !is_purl("cargo/serde") && !is_purl("pkg:9x/name"));
        assert!(is_commit(&"a".repeat(40)) && !is_commit("abc123"));
    }
}
