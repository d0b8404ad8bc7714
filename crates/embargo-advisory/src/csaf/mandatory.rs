//! The CSAF 2.0 mandatory tests (§6.1) that Embargo implements, on any CSAF document (not
//! only ours), checked against the OASIS test corpus.
//!
//! Implemented: every test of §6.1 listed in [`IMPLEMENTED`]. Not implemented, with the
//! reason, in [`NOT_IMPLEMENTED`]: 6.1.11 (needs the CWE catalogue) and 6.1.12 (needs the
//! IANA language subtag registry). Embargo's own documents avoid what those two check: they
//! carry a `cwe` only with the name the team gave, and their language is always `en`.
//!
//! CVSS arithmetic (6.1.9) comes from `embargo_domain::cvss` for 3.1 and from the RustSec
//! `cvss` crate (the same one underneath) for the 3.0 and 2.0 vectors that other publishers'
//! documents may carry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use jiff::Timestamp;
use serde_json::Value;

use crate::cvss_json::v3_property;
use crate::record::is_purl;
use crate::schema::{self, Schema};

/// The tests implemented here.
pub const IMPLEMENTED: &[&str] = &[
    "6.1.1",
    "6.1.2",
    "6.1.3",
    "6.1.4",
    "6.1.5",
    "6.1.6",
    "6.1.7",
    "6.1.8",
    "6.1.9",
    "6.1.10",
    "6.1.13",
    "6.1.14",
    "6.1.15",
    "6.1.16",
    "6.1.17",
    "6.1.18",
    "6.1.19",
    "6.1.20",
    "6.1.21",
    "6.1.22",
    "6.1.23",
    "6.1.24",
    "6.1.25",
    "6.1.26",
    "6.1.27.1",
    "6.1.27.2",
    "6.1.27.3",
    "6.1.27.4",
    "6.1.27.5",
    "6.1.27.6",
    "6.1.27.7",
    "6.1.27.8",
    "6.1.27.9",
    "6.1.27.10",
    "6.1.27.11",
    "6.1.28",
    "6.1.29",
    "6.1.30",
    "6.1.31",
    "6.1.32",
    "6.1.33",
];

/// The mandatory tests not implemented, and why.
pub const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("6.1.11", "needs the CWE catalogue to check that a CWE exists and has the given name"),
    ("6.1.12", "needs the IANA language subtag registry to check that a language tag is registered"),
];

/// One failed mandatory test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The test number, such as `6.1.6`.
    pub test: &'static str,
    /// A JSON pointer to the offending value.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CSAF test {} at {}: {}", self.test, self.path, self.message)
    }
}

/// Runs every implemented test.
pub fn run_all(doc: &Value) -> Vec<Failure> {
    IMPLEMENTED.iter().flat_map(|id| run(id, doc).unwrap_or_default()).collect()
}

/// Runs one test by number; `None` when it is not implemented.
pub fn run(test: &str, doc: &Value) -> Option<Vec<Failure>> {
    let id: &'static str = IMPLEMENTED.iter().find(|t| **t == test)?;
    let mut c = Check { test: id, failures: Vec::new(), doc };
    match id {
        "6.1.1" => c.missing_product_ids(),
        "6.1.2" => c.multiple_product_ids(),
        "6.1.3" => c.circular_product_ids(),
        "6.1.4" => c.missing_group_ids(),
        "6.1.5" => c.multiple_group_ids(),
        "6.1.6" => c.contradicting_status(),
        "6.1.7" => c.multiple_scores(),
        "6.1.8" => c.invalid_cvss(),
        "6.1.9" => c.cvss_computation(),
        "6.1.10" => c.inconsistent_cvss(),
        "6.1.13" => c.purl(),
        "6.1.14" => c.sorted_revision_history(),
        "6.1.15" => c.translator(),
        "6.1.16" => c.latest_version(),
        "6.1.17" => c.status_draft(),
        "6.1.18" => c.released_revision_history(),
        "6.1.19" => c.pre_release_revisions(),
        "6.1.20" => c.non_draft_version(),
        "6.1.21" => c.missing_revision(),
        "6.1.22" => c.multiple_revisions(),
        "6.1.23" => c.multiple_cves(),
        "6.1.24" => c.involvements(),
        "6.1.25" => c.hash_algorithms(),
        "6.1.26" => c.category_name(),
        "6.1.27.1" => c.profile_document_notes(),
        "6.1.27.2" => c.profile_document_references(),
        "6.1.27.3" => c.profile_no_vulnerabilities(),
        "6.1.27.4" => c.profile_product_tree(),
        "6.1.27.5" => c.profile_vulnerability_notes(),
        "6.1.27.6" => c.profile_product_status(),
        "6.1.27.7" => c.profile_vex_product_status(),
        "6.1.27.8" => c.profile_vex_vulnerability_id(),
        "6.1.27.9" => c.profile_impact_statement(),
        "6.1.27.10" => c.profile_action_statement(),
        "6.1.27.11" => c.profile_vulnerabilities(),
        "6.1.28" => c.translation(),
        "6.1.29" => c.remediation_references(),
        "6.1.30" => c.mixed_versioning(),
        "6.1.31" => c.version_range_in_product_version(),
        "6.1.32" => c.flag_references(),
        "6.1.33" => c.vex_justifications(),
        _ => unreachable!("every implemented test has a check"),
    }
    Some(c.failures)
}

struct Check<'a> {
    test: &'static str,
    failures: Vec<Failure>,
    doc: &'a Value,
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = (usize, &str)> {
    array(value).iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
}

fn ptr<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    value.pointer(pointer)
}

/// The product status groups of §6.1.6.
const STATUS_GROUPS: &[(&str, &[&str])] = &[
    ("affected", &["first_affected", "known_affected", "last_affected"]),
    ("not affected", &["known_not_affected"]),
    ("fixed", &["first_fixed", "fixed"]),
    ("under investigation", &["under_investigation"]),
];

const PROFILES: &[&str] = &[
    "csaf_base",
    "csaf_security_incident_response",
    "csaf_informational_advisory",
    "csaf_security_advisory",
    "csaf_vex",
];

/// A CSAF version number: integer or semantic versioning.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Version {
    Integer(u64),
    Semver { major: u64, minor: u64, patch: u64, pre: Option<String> },
}

impl Version {
    fn parse(text: &str) -> Option<Self> {
        let number = |s: &str| (s == "0" || (!s.starts_with('0') && !s.is_empty())).then(|| s.parse().ok()).flatten();
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return number(text).map(Self::Integer);
        }
        let core_pre = text.split('+').next()?;
        let (core, pre) = match core_pre.split_once('-') {
            Some((core, pre)) => (core, Some(pre.to_owned())),
            None => (core_pre, None),
        };
        let mut parts = core.split('.');
        let (major, minor, patch) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
        if parts.next().is_some() || pre.as_deref().is_some_and(str::is_empty) {
            return None;
        }
        Some(Self::Semver { major, minor, patch, pre })
    }

    fn major(&self) -> u64 {
        match self {
            Self::Integer(n) => *n,
            Self::Semver { major, .. } => *major,
        }
    }

    fn is_pre_release(&self) -> bool {
        matches!(self, Self::Semver { pre: Some(_), .. })
    }

    /// Without a pre-release part.
    fn release(&self) -> Self {
        match self {
            Self::Semver { major, minor, patch, .. } => {
                Self::Semver { major: *major, minor: *minor, patch: *patch, pre: None }
            }
            other => other.clone(),
        }
    }

    /// Semantic-versioning precedence (integers compare as numbers).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Self::Integer(a), Self::Integer(b)) => a.cmp(b),
            (
                Self::Semver { major, minor, patch, pre },
                Self::Semver { major: m2, minor: n2, patch: p2, pre: pre2 },
            ) => (major, minor, patch).cmp(&(m2, n2, p2)).then_with(|| match (pre, pre2) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => {
                    let ids = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
                    let (a, b) = (ids(a), ids(b));
                    for (x, y) in a.iter().zip(&b) {
                        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => x.cmp(y),
                        };
                        if ord != Ordering::Equal {
                            return ord;
                        }
                    }
                    a.len().cmp(&b.len())
                }
            }),
            (Self::Integer(_), Self::Semver { .. }) => Ordering::Less,
            (Self::Semver { .. }, Self::Integer(_)) => Ordering::Greater,
        }
    }
}

fn timestamp(value: Option<&Value>) -> Option<Timestamp> {
    value.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

impl<'a> Check<'a> {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.failures.push(Failure { test: self.test, path: path.into(), message: message.into() });
    }

    fn category(&self) -> &'a str {
        ptr(self.doc, "/document/category").and_then(Value::as_str).unwrap_or_default()
    }

    fn status(&self) -> &'a str {
        ptr(self.doc, "/document/tracking/status").and_then(Value::as_str).unwrap_or_default()
    }

    fn vulnerabilities(&self) -> Vec<(String, &'a Value)> {
        array(self.doc.get("vulnerabilities"))
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("/vulnerabilities/{i}"), v))
            .collect()
    }

    fn revisions(&self) -> Vec<(String, &'a Value)> {
        array(ptr(self.doc, "/document/tracking/revision_history"))
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("/document/tracking/revision_history/{i}"), v))
            .collect()
    }

    /// Every product definition: (pointer to the product_id, the ID).
    fn product_definitions(&self) -> Vec<(String, &'a str)> {
        fn branches<'v>(list: &'v [Value], at: &str, out: &mut Vec<(String, &'v str)>) {
            for (i, branch) in list.iter().enumerate() {
                let here = format!("{at}/{i}");
                if let Some(id) = ptr(branch, "/product/product_id").and_then(Value::as_str) {
                    out.push((format!("{here}/product/product_id"), id));
                }
                branches(array(branch.get("branches")), &format!("{here}/branches"), out);
            }
        }
        let mut out = Vec::new();
        let Some(tree) = self.doc.get("product_tree") else { return out };
        branches(array(tree.get("branches")), "/product_tree/branches", &mut out);
        for (i, p) in array(tree.get("full_product_names")).iter().enumerate() {
            if let Some(id) = p.get("product_id").and_then(Value::as_str) {
                out.push((format!("/product_tree/full_product_names/{i}/product_id"), id));
            }
        }
        for (i, r) in array(tree.get("relationships")).iter().enumerate() {
            if let Some(id) = ptr(r, "/full_product_name/product_id").and_then(Value::as_str) {
                out.push((format!("/product_tree/relationships/{i}/full_product_name/product_id"), id));
            }
        }
        out
    }

    /// Every reference to a product ID: (pointer, the ID).
    fn product_references(&self) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        let mut list = |at: String, value: Option<&'a Value>| {
            for (i, id) in strings(value) {
                out.push((format!("{at}/{i}"), id));
            }
        };
        if let Some(tree) = self.doc.get("product_tree") {
            for (i, g) in array(tree.get("product_groups")).iter().enumerate() {
                list(format!("/product_tree/product_groups/{i}/product_ids"), g.get("product_ids"));
            }
        }
        for (at, v) in self.vulnerabilities() {
            if let Some(status) = v.get("product_status").and_then(Value::as_object) {
                for (key, ids) in status {
                    list(format!("{at}/product_status/{key}"), Some(ids));
                }
            }
            for field in ["remediations", "threats", "flags"] {
                for (i, item) in array(v.get(field)).iter().enumerate() {
                    list(format!("{at}/{field}/{i}/product_ids"), item.get("product_ids"));
                }
            }
            for (i, score) in array(v.get("scores")).iter().enumerate() {
                list(format!("{at}/scores/{i}/products"), score.get("products"));
            }
        }
        if let Some(tree) = self.doc.get("product_tree") {
            for (i, r) in array(tree.get("relationships")).iter().enumerate() {
                for key in ["product_reference", "relates_to_product_reference"] {
                    if let Some(id) = r.get(key).and_then(Value::as_str) {
                        out.push((format!("/product_tree/relationships/{i}/{key}"), id));
                    }
                }
            }
        }
        out
    }

    fn group_definitions(&self) -> Vec<(String, &'a str, Vec<&'a str>)> {
        array(ptr(self.doc, "/product_tree/product_groups"))
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let id = g.get("group_id")?.as_str()?;
                let members = strings(g.get("product_ids")).map(|(_, s)| s).collect();
                Some((format!("/product_tree/product_groups/{i}/group_id"), id, members))
            })
            .collect()
    }

    /// The products an item (remediation, flag, threat) names, directly or through groups.
    fn products_of(&self, item: &'a Value) -> BTreeSet<&'a str> {
        let groups = self.group_definitions();
        let mut out: BTreeSet<&str> = strings(item.get("product_ids")).map(|(_, s)| s).collect();
        for (_, group) in strings(item.get("group_ids")) {
            for (_, id, members) in &groups {
                if *id == group {
                    out.extend(members.iter().copied());
                }
            }
        }
        out
    }

    // 6.1.1
    fn missing_product_ids(&mut self) {
        let defined: BTreeSet<&str> = self.product_definitions().into_iter().map(|(_, id)| id).collect();
        for (at, id) in self.product_references() {
            if !defined.contains(id) {
                self.fail(at, format!("product ID {id:?} is used but not defined in the product tree"));
            }
        }
    }

    // 6.1.2
    fn multiple_product_ids(&mut self) {
        let mut seen = BTreeSet::new();
        for (at, id) in self.product_definitions() {
            if !seen.insert(id) {
                self.fail(at, format!("product ID {id:?} is defined more than once"));
            }
        }
    }

    // 6.1.3
    fn circular_product_ids(&mut self) {
        let relationships = array(ptr(self.doc, "/product_tree/relationships"));
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in relationships {
            if let Some(id) = ptr(r, "/full_product_name/product_id").and_then(Value::as_str) {
                for key in ["product_reference", "relates_to_product_reference"] {
                    if let Some(to) = r.get(key).and_then(Value::as_str) {
                        edges.entry(id).or_default().push(to);
                    }
                }
            }
        }
        for (i, r) in relationships.iter().enumerate() {
            let Some(start) = ptr(r, "/full_product_name/product_id").and_then(Value::as_str) else { continue };
            let mut stack: Vec<&str> = edges.get(start).cloned().unwrap_or_default();
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if next == start {
                    self.fail(
                        format!("/product_tree/relationships/{i}/full_product_name/product_id"),
                        format!("product ID {start:?} is defined in terms of itself"),
                    );
                    break;
                }
                if seen.insert(next) {
                    stack.extend(edges.get(next).cloned().unwrap_or_default());
                }
            }
        }
    }

    fn group_references(&self) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        for (at, v) in self.vulnerabilities() {
            for field in ["remediations", "threats", "flags"] {
                for (i, item) in array(v.get(field)).iter().enumerate() {
                    for (j, id) in strings(item.get("group_ids")) {
                        out.push((format!("{at}/{field}/{i}/group_ids/{j}"), id));
                    }
                }
            }
        }
        out
    }

    // 6.1.4
    fn missing_group_ids(&mut self) {
        let defined: BTreeSet<&str> = self.group_definitions().into_iter().map(|(_, id, _)| id).collect();
        for (at, id) in self.group_references() {
            if !defined.contains(id) {
                self.fail(at, format!("product group ID {id:?} is used but not defined"));
            }
        }
    }

    // 6.1.5
    fn multiple_group_ids(&mut self) {
        let mut seen = BTreeSet::new();
        for (at, id, _) in self.group_definitions() {
            if !seen.insert(id) {
                self.fail(at, format!("product group ID {id:?} is defined more than once"));
            }
        }
    }

    // 6.1.6
    fn contradicting_status(&mut self) {
        for (at, v) in self.vulnerabilities() {
            let mut group_of: BTreeMap<&str, &str> = BTreeMap::new();
            let mut reported = BTreeSet::new();
            for (group, keys) in STATUS_GROUPS {
                for key in *keys {
                    for (i, id) in strings(ptr(v, &format!("/product_status/{key}"))) {
                        match group_of.insert(id, group) {
                            Some(other) if other != *group && reported.insert(id) => self.fail(
                                format!("{at}/product_status/{key}/{i}"),
                                format!("product {id:?} is both {other} and {group}"),
                            ),
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    // 6.1.7
    fn multiple_scores(&mut self) {
        for (at, v) in self.vulnerabilities() {
            let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
            for (i, score) in array(v.get("scores")).iter().enumerate() {
                for key in ["cvss_v2", "cvss_v3"] {
                    let Some(version) = ptr(score, &format!("/{key}/version")).and_then(Value::as_str) else {
                        continue;
                    };
                    for (_, product) in strings(score.get("products")) {
                        if !seen.insert((product, version)) {
                            self.fail(
                                format!("{at}/scores/{i}"),
                                format!("product {product:?} has more than one CVSS {version} score"),
                            );
                        }
                    }
                }
            }
        }
    }

    fn cvss_objects(&self) -> Vec<(String, &'a str, &'a Value)> {
        let mut out = Vec::new();
        for (at, v) in self.vulnerabilities() {
            for (i, score) in array(v.get("scores")).iter().enumerate() {
                for key in ["cvss_v2", "cvss_v3"] {
                    if let Some(object) = score.get(key) {
                        out.push((format!("{at}/scores/{i}/{key}"), key, object));
                    }
                }
            }
        }
        out
    }

    // 6.1.8
    fn invalid_cvss(&mut self) {
        for (at, key, object) in self.cvss_objects() {
            let version = object.get("version").and_then(Value::as_str);
            let schema = match (key, version) {
                ("cvss_v2", _) => Schema::CvssV2,
                (_, Some("3.0")) => Schema::CvssV30,
                _ => Schema::CvssV31,
            };
            for error in schema::validate(schema, object) {
                self.fail(at.clone(), format!("not a valid CVSS object: {error}"));
            }
        }
    }

    // 6.1.9
    fn cvss_computation(&mut self) {
        for (at, key, object) in self.cvss_objects() {
            let Some(vector) = object.get("vectorString").and_then(Value::as_str) else { continue };
            let Some(expected) = computed_scores(key, vector) else { continue };
            for (name, value) in expected {
                let Some(given) = object.get(name) else { continue };
                let same = match (&value, given) {
                    (Expected::Score(x), Value::Number(n)) => n.as_f64().is_some_and(|n| (n - x).abs() < 1e-9),
                    (Expected::Severity(s), Value::String(g)) => g == s,
                    _ => false,
                };
                if !same {
                    self.fail(format!("{at}/{name}"), format!("{name} is {given}, but the vector gives {value}"));
                }
            }
        }
    }

    // 6.1.10
    fn inconsistent_cvss(&mut self) {
        for (at, key, object) in self.cvss_objects() {
            let Some(vector) = object.get("vectorString").and_then(Value::as_str) else { continue };
            let body = vector.split_once('/').filter(|_| key == "cvss_v3").map_or(vector, |(_, rest)| rest);
            let mut given: BTreeMap<&str, &str> = BTreeMap::new();
            for component in body.split('/') {
                let Some((metric, value)) = component.split_once(':') else { continue };
                let property = if key == "cvss_v3" { v3_property(metric, value) } else { v2_property(metric, value) };
                if let Some((name, text)) = property {
                    given.insert(name, text);
                }
            }
            let Some(properties) = object.as_object() else { continue };
            for (name, value) in properties {
                let Some(value) = value.as_str() else { continue };
                if matches!(name.as_str(), "version" | "vectorString") || name.ends_with("Severity") {
                    continue;
                }
                match given.get(name.as_str()) {
                    Some(expected) if *expected != value => self
                        .fail(format!("{at}/{name}"), format!("{name} is {value:?}, but the vector says {expected:?}")),
                    None if value != "NOT_DEFINED" && is_metric_property(key, name) => self
                        .fail(format!("{at}/{name}"), format!("{name} is {value:?}, but the vector does not set it")),
                    _ => {}
                }
            }
        }
    }

    // 6.1.13
    fn purl(&mut self) {
        fn walk<'v>(value: &'v Value, at: String, out: &mut Vec<(String, &'v str)>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        if k == "purl"
                            && let Some(p) = v.as_str()
                        {
                            out.push((format!("{at}/purl"), p));
                        } else {
                            walk(v, format!("{at}/{k}"), out);
                        }
                    }
                }
                Value::Array(list) => {
                    for (i, v) in list.iter().enumerate() {
                        walk(v, format!("{at}/{i}"), out);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        if let Some(tree) = self.doc.get("product_tree") {
            walk(tree, "/product_tree".into(), &mut found);
        }
        for (at, purl) in found {
            if !is_purl(purl) {
                self.fail(at, format!("{purl:?} is not a valid package URL"));
            }
        }
    }

    fn revision_numbers(&self) -> Vec<(String, &'a str, Option<Timestamp>)> {
        self.revisions()
            .into_iter()
            .filter_map(|(at, r)| Some((at, r.get("number")?.as_str()?, timestamp(r.get("date")))))
            .collect()
    }

    // 6.1.14
    fn sorted_revision_history(&mut self) {
        // Items of the same date may be listed in any order, so they are sorted by number too.
        let mut items: Vec<(String, &str, Option<Timestamp>, Version)> =
            self.revision_numbers().into_iter().filter_map(|(at, n, d)| Some((at, n, d, Version::parse(n)?))).collect();
        items.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.3.cmp(&b.3)));
        for pair in items.windows(2) {
            if pair[0].2 != pair[1].2 && pair[1].3.cmp(&pair[0].3).is_lt() {
                self.fail(
                    pair[1].0.clone(),
                    format!("revision {} is dated after revision {} but numbered before it", pair[1].1, pair[0].1),
                );
            }
        }
    }

    // 6.1.15
    fn translator(&mut self) {
        if ptr(self.doc, "/document/publisher/category").and_then(Value::as_str) == Some("translator")
            && ptr(self.doc, "/document/source_lang").is_none()
        {
            self.fail("/document/source_lang", "a translator's document must give its source language");
        }
    }

    fn version(&self) -> Option<(&'a str, Version)> {
        let text = ptr(self.doc, "/document/tracking/version")?.as_str()?;
        Some((text, Version::parse(text)?))
    }

    // 6.1.16
    fn latest_version(&mut self) {
        let Some((text, version)) = self.version() else { return };
        let mut items: Vec<(Option<Timestamp>, Version, &str)> =
            self.revision_numbers().into_iter().filter_map(|(_, n, d)| Some((d, Version::parse(n)?, n))).collect();
        items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let Some((_, latest, latest_text)) = items.last() else { return };
        let draft = self.status() == "draft";
        let norm = |v: &Version| if draft { v.release() } else { v.clone() };
        if norm(latest) != norm(&version) {
            self.fail(
                "/document/tracking/version",
                format!("the version is {text} but the latest revision is {latest_text}"),
            );
        }
    }

    // 6.1.17
    fn status_draft(&mut self) {
        let Some((text, version)) = self.version() else { return };
        if (version.major() == 0 || version.is_pre_release()) && self.status() != "draft" {
            self.fail(
                "/document/tracking/status",
                format!("version {text} is a pre-release, so the status must be draft"),
            );
        }
    }

    fn is_released(&self) -> bool {
        matches!(self.status(), "final" | "interim")
    }

    // 6.1.18
    fn released_revision_history(&mut self) {
        if !self.is_released() {
            return;
        }
        for (at, number, _) in self.revision_numbers() {
            if Version::parse(number).is_some_and(|v| v.major() == 0) {
                self.fail(at, format!("a {} document cannot list the pre-release revision {number}", self.status()));
            }
        }
    }

    // 6.1.19
    fn pre_release_revisions(&mut self) {
        for (at, number, _) in self.revision_numbers() {
            if Version::parse(number).is_some_and(|v| v.is_pre_release()) {
                self.fail(at, format!("revision {number} has a pre-release part"));
            }
        }
    }

    // 6.1.20
    fn non_draft_version(&mut self) {
        if let Some((text, version)) = self.version()
            && self.is_released()
            && version.is_pre_release()
        {
            self.fail("/document/tracking/version", format!("a {} document cannot have version {text}", self.status()));
        }
    }

    // 6.1.21
    fn missing_revision(&mut self) {
        let mut versions: Vec<(String, Version)> =
            self.revision_numbers().into_iter().filter_map(|(at, n, _)| Some((at, Version::parse(n)?))).collect();
        versions.sort_by(|a, b| a.1.cmp(&b.1));
        let Some((first_at, first)) = versions.first() else { return };
        if first.major() > 1 {
            self.fail(first_at.clone(), "the revision history must start with version 0 or 1");
        }
        for pair in versions.windows(2) {
            if pair[1].1.major() > pair[0].1.major() + 1 {
                self.fail(
                    pair[1].0.clone(),
                    format!("revision history skips from {} to {}", pair[0].1.major(), pair[1].1.major()),
                );
            }
        }
    }

    // 6.1.22
    fn multiple_revisions(&mut self) {
        let mut seen = BTreeSet::new();
        for (at, number, _) in self.revision_numbers() {
            if !seen.insert(number) {
                self.fail(at, format!("revision {number} appears more than once"));
            }
        }
    }

    // 6.1.23
    fn multiple_cves(&mut self) {
        let mut seen = BTreeSet::new();
        for (at, v) in self.vulnerabilities() {
            if let Some(cve) = v.get("cve").and_then(Value::as_str)
                && !seen.insert(cve)
            {
                self.fail(format!("{at}/cve"), format!("{cve} is used by more than one vulnerability"));
            }
        }
    }

    // 6.1.24
    fn involvements(&mut self) {
        for (at, v) in self.vulnerabilities() {
            let mut seen = BTreeSet::new();
            for (i, inv) in array(v.get("involvements")).iter().enumerate() {
                let party = inv.get("party").and_then(Value::as_str).unwrap_or_default();
                let date = timestamp(inv.get("date"));
                let Some(date) = date else { continue };
                if !seen.insert((party, date)) {
                    self.fail(
                        format!("{at}/involvements/{i}"),
                        format!("more than one involvement of {party} at {date}"),
                    );
                }
            }
        }
    }

    // 6.1.25
    fn hash_algorithms(&mut self) {
        fn walk<'v>(value: &'v Value, at: String, out: &mut Vec<(String, &'v [Value])>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        if k == "file_hashes" {
                            out.push((format!("{at}/{k}"), array(Some(v))));
                        } else {
                            walk(v, format!("{at}/{k}"), out);
                        }
                    }
                }
                Value::Array(list) => {
                    for (i, v) in list.iter().enumerate() {
                        walk(v, format!("{at}/{i}"), out);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        if let Some(tree) = self.doc.get("product_tree") {
            walk(tree, "/product_tree".into(), &mut found);
        }
        for (at, hashes) in found {
            let mut seen = BTreeSet::new();
            for (i, h) in hashes.iter().enumerate() {
                if let Some(algorithm) = h.get("algorithm").and_then(Value::as_str)
                    && !seen.insert(algorithm)
                {
                    self.fail(format!("{at}/{i}"), format!("hash algorithm {algorithm} is used twice for one file"));
                }
            }
        }
    }

    // 6.1.26
    fn category_name(&mut self) {
        let category = self.category();
        if PROFILES.contains(&category) {
            return;
        }
        let squash = |s: &str| s.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect::<String>().to_lowercase();
        let name = squash(category);
        let reserved = category.to_lowercase().starts_with("csaf_");
        let similar = PROFILES[1..].iter().any(|p| squash(p) == name || squash(&p["csaf_".len()..]) == name);
        if reserved || similar {
            self.fail(
                "/document/category",
                format!("the category {category:?} uses the reserved prefix csaf_ or imitates a profile name"),
            );
        }
    }

    fn profile_is(&self, profiles: &[&str]) -> bool {
        profiles.contains(&self.category())
    }

    // 6.1.27.1
    fn profile_document_notes(&mut self) {
        if !self.profile_is(&["csaf_informational_advisory", "csaf_security_incident_response"]) {
            return;
        }
        let ok = array(ptr(self.doc, "/document/notes")).iter().any(|n| {
            matches!(n.get("category").and_then(Value::as_str), Some("description" | "details" | "general" | "summary"))
        });
        if !ok {
            self.fail(
                "/document/notes",
                "this profile needs a note of category description, details, general or summary",
            );
        }
    }

    // 6.1.27.2
    fn profile_document_references(&mut self) {
        if !self.profile_is(&["csaf_informational_advisory", "csaf_security_incident_response"]) {
            return;
        }
        let ok = array(ptr(self.doc, "/document/references"))
            .iter()
            .any(|r| r.get("category").and_then(Value::as_str) == Some("external"));
        if !ok {
            self.fail("/document/references", "this profile needs at least one external reference");
        }
    }

    // 6.1.27.3
    fn profile_no_vulnerabilities(&mut self) {
        if self.profile_is(&["csaf_informational_advisory"]) && self.doc.get("vulnerabilities").is_some() {
            self.fail("/vulnerabilities", "an informational advisory cannot have vulnerabilities");
        }
    }

    // 6.1.27.4
    fn profile_product_tree(&mut self) {
        if self.profile_is(&["csaf_security_advisory", "csaf_vex"]) && self.doc.get("product_tree").is_none() {
            self.fail("/product_tree", "this profile needs a product tree");
        }
    }

    // 6.1.27.5
    fn profile_vulnerability_notes(&mut self) {
        if !self.profile_is(&["csaf_security_advisory", "csaf_vex"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            if v.get("notes").is_none() {
                self.fail(format!("{at}/notes"), "this profile needs notes on every vulnerability");
            }
        }
    }

    // 6.1.27.6
    fn profile_product_status(&mut self) {
        if !self.profile_is(&["csaf_security_advisory"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            if v.get("product_status").is_none() {
                self.fail(format!("{at}/product_status"), "this profile needs a product status on every vulnerability");
            }
        }
    }

    // 6.1.27.7
    fn profile_vex_product_status(&mut self) {
        if !self.profile_is(&["csaf_vex"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            let ok = ["fixed", "known_affected", "known_not_affected", "under_investigation"]
                .iter()
                .any(|k| ptr(v, &format!("/product_status/{k}")).is_some());
            if !ok {
                self.fail(
                    format!("{at}/product_status"),
                    "a VEX vulnerability needs fixed, known_affected, known_not_affected or under_investigation",
                );
            }
        }
    }

    // 6.1.27.8
    fn profile_vex_vulnerability_id(&mut self) {
        if !self.profile_is(&["csaf_vex"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            if v.get("cve").is_none() && v.get("ids").is_none() {
                self.fail(at, "a VEX vulnerability needs a CVE or other IDs");
            }
        }
    }

    // 6.1.27.9
    fn profile_impact_statement(&mut self) {
        if !self.profile_is(&["csaf_vex"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            let mut covered = BTreeSet::new();
            for flag in array(v.get("flags")) {
                covered.extend(self.products_of(flag));
            }
            for threat in array(v.get("threats")) {
                if threat.get("category").and_then(Value::as_str) == Some("impact") {
                    covered.extend(self.products_of(threat));
                }
            }
            for (i, id) in strings(ptr(v, "/product_status/known_not_affected")) {
                if !covered.contains(id) {
                    self.fail(
                        format!("{at}/product_status/known_not_affected/{i}"),
                        format!("product {id:?} is not affected but has no impact statement"),
                    );
                }
            }
        }
    }

    // 6.1.27.10
    fn profile_action_statement(&mut self) {
        if !self.profile_is(&["csaf_vex"]) {
            return;
        }
        for (at, v) in self.vulnerabilities() {
            let mut covered = BTreeSet::new();
            for remediation in array(v.get("remediations")) {
                covered.extend(self.products_of(remediation));
            }
            for (i, id) in strings(ptr(v, "/product_status/known_affected")) {
                if !covered.contains(id) {
                    self.fail(
                        format!("{at}/product_status/known_affected/{i}"),
                        format!("product {id:?} is affected but has no remediation"),
                    );
                }
            }
        }
    }

    // 6.1.27.11
    fn profile_vulnerabilities(&mut self) {
        if self.profile_is(&["csaf_security_advisory", "csaf_vex"]) && self.doc.get("vulnerabilities").is_none() {
            self.fail("/vulnerabilities", "this profile needs vulnerabilities");
        }
    }

    // 6.1.28
    fn translation(&mut self) {
        let lang = ptr(self.doc, "/document/lang").and_then(Value::as_str);
        let source = ptr(self.doc, "/document/source_lang").and_then(Value::as_str);
        if let (Some(lang), Some(source)) = (lang, source)
            && lang.eq_ignore_ascii_case(source)
        {
            self.fail("/document/source_lang", "the source language equals the document's language");
        }
    }

    fn items_without_products(&mut self, field: &str, what: &str) {
        for (at, v) in self.vulnerabilities() {
            for (i, item) in array(v.get(field)).iter().enumerate() {
                if item.get("product_ids").is_none() && item.get("group_ids").is_none() {
                    self.fail(format!("{at}/{field}/{i}"), format!("the {what} names no product or group"));
                }
            }
        }
    }

    // 6.1.29
    fn remediation_references(&mut self) {
        self.items_without_products("remediations", "remediation");
    }

    // 6.1.30
    fn mixed_versioning(&mut self) {
        let mut kinds = BTreeSet::new();
        if let Some((_, v)) = self.version() {
            kinds.insert(matches!(v, Version::Integer(_)));
        }
        for (at, number, _) in self.revision_numbers() {
            if let Some(v) = Version::parse(number)
                && kinds.insert(matches!(v, Version::Integer(_)))
                && kinds.len() > 1
            {
                self.fail(at, "integer and semantic versioning are mixed");
            }
        }
    }

    // 6.1.31
    fn version_range_in_product_version(&mut self) {
        fn walk<'v>(list: &'v [Value], at: &str, out: &mut Vec<(String, &'v str)>) {
            for (i, branch) in list.iter().enumerate() {
                let here = format!("{at}/{i}");
                if branch.get("category").and_then(Value::as_str) == Some("product_version")
                    && let Some(name) = branch.get("name").and_then(Value::as_str)
                {
                    out.push((format!("{here}/name"), name));
                }
                walk(array(branch.get("branches")), &format!("{here}/branches"), out);
            }
        }
        let mut names = Vec::new();
        walk(array(ptr(self.doc, "/product_tree/branches")), "/product_tree/branches", &mut names);
        const WORDS: &[&str] = &["after", "all", "before", "earlier", "later", "prior", "versions"];
        for (at, name) in names {
            let lower = name.to_lowercase();
            let words = lower.split_whitespace().any(|w| WORDS.contains(&w));
            if name.contains(['<', '>']) || words {
                self.fail(at, format!("the product version {name:?} looks like a range; use product_version_range"));
            }
        }
    }

    // 6.1.32
    fn flag_references(&mut self) {
        self.items_without_products("flags", "flag");
    }

    // 6.1.33
    fn vex_justifications(&mut self) {
        for (at, v) in self.vulnerabilities() {
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for flag in array(v.get("flags")) {
                for id in self.products_of(flag) {
                    *count.entry(id).or_default() += 1;
                }
            }
            for (id, n) in count {
                if n > 1 {
                    self.fail(format!("{at}/flags"), format!("product {id:?} has {n} VEX justification flags"));
                }
            }
        }
    }
}

/// A value a CVSS property should have.
enum Expected {
    Score(f64),
    Severity(String),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Score(x) => write!(f, "{x:.1}"),
            Self::Severity(s) => f.write_str(s),
        }
    }
}

/// The scores a vector implies, by JSON property; `None` when the vector cannot be scored
/// (6.1.8 reports malformed objects).
fn computed_scores(key: &str, vector: &str) -> Option<Vec<(&'static str, Expected)>> {
    let severity = |s: cvss::Severity| Expected::Severity(s.to_string().to_ascii_uppercase());
    if key == "cvss_v2" {
        let v: cvss::v2::Vector = vector.parse().ok()?;
        return Some(vec![
            ("baseScore", Expected::Score(v.score().value())),
            ("temporalScore", Expected::Score(v.temporal_score().value())),
            ("environmentalScore", Expected::Score(v.environmental_score().value())),
        ]);
    }
    if vector.starts_with("CVSS:3.1/") {
        let parsed = embargo_domain::cvss::Vector::parse(vector).ok()?;
        let embargo_domain::cvss::Vector::V31(v) = parsed else { return None };
        let s = v.scores();
        let sev = |x: embargo_domain::cvss::Score| Expected::Severity(x.severity().as_str().to_ascii_uppercase());
        return Some(vec![
            ("baseScore", Expected::Score(s.base.value())),
            ("baseSeverity", sev(s.base)),
            ("temporalScore", Expected::Score(s.temporal.value())),
            ("temporalSeverity", sev(s.temporal)),
            ("environmentalScore", Expected::Score(s.environmental.value())),
            ("environmentalSeverity", sev(s.environmental)),
        ]);
    }
    let v: cvss::v3::Vector = vector.parse().ok()?;
    let (base, temporal, environmental) = (v.base_score(), v.temporal_score(), v.environmental_score());
    Some(vec![
        ("baseScore", Expected::Score(base.value())),
        ("baseSeverity", severity(base.severity())),
        ("temporalScore", Expected::Score(temporal.value())),
        ("temporalSeverity", severity(temporal.severity())),
        ("environmentalScore", Expected::Score(environmental.value())),
        ("environmentalSeverity", severity(environmental.severity())),
    ])
}

fn is_metric_property(key: &str, name: &str) -> bool {
    !name.ends_with("Score") && (key == "cvss_v3" || key == "cvss_v2")
}

/// The FIRST CVSS v2.0 JSON property name and value names of a metric.
fn v2_property(metric: &str, value: &str) -> Option<(&'static str, &'static str)> {
    let nd = |v: &str, f: fn(&str) -> &'static str| if v == "ND" { "NOT_DEFINED" } else { f(v) };
    let impact = |v: &str| match v {
        "N" => "NONE",
        "P" => "PARTIAL",
        "C" => "COMPLETE",
        _ => "",
    };
    fn lmh(v: &str) -> &'static str {
        match v {
            "L" => "LOW",
            "M" => "MEDIUM",
            "H" => "HIGH",
            _ => "",
        }
    }
    let (name, text) = match metric {
        "AV" => (
            "accessVector",
            match value {
                "L" => "LOCAL",
                "A" => "ADJACENT_NETWORK",
                "N" => "NETWORK",
                _ => "",
            },
        ),
        "AC" => ("accessComplexity", lmh(value)),
        "Au" => (
            "authentication",
            match value {
                "M" => "MULTIPLE",
                "S" => "SINGLE",
                "N" => "NONE",
                _ => "",
            },
        ),
        "C" => ("confidentialityImpact", impact(value)),
        "I" => ("integrityImpact", impact(value)),
        "A" => ("availabilityImpact", impact(value)),
        "E" => (
            "exploitability",
            nd(value, |v| match v {
                "U" => "UNPROVEN",
                "POC" => "PROOF_OF_CONCEPT",
                "F" => "FUNCTIONAL",
                "H" => "HIGH",
                _ => "",
            }),
        ),
        "RL" => (
            "remediationLevel",
            nd(value, |v| match v {
                "OF" => "OFFICIAL_FIX",
                "TF" => "TEMPORARY_FIX",
                "W" => "WORKAROUND",
                "U" => "UNAVAILABLE",
                _ => "",
            }),
        ),
        "RC" => (
            "reportConfidence",
            nd(value, |v| match v {
                "UC" => "UNCONFIRMED",
                "UR" => "UNCORROBORATED",
                "C" => "CONFIRMED",
                _ => "",
            }),
        ),
        "CDP" => (
            "collateralDamagePotential",
            nd(value, |v| match v {
                "N" => "NONE",
                "L" => "LOW",
                "LM" => "LOW_MEDIUM",
                "MH" => "MEDIUM_HIGH",
                "H" => "HIGH",
                _ => "",
            }),
        ),
        "TD" => (
            "targetDistribution",
            nd(value, |v| match v {
                "N" => "NONE",
                other => lmh(other),
            }),
        ),
        "CR" => ("confidentialityRequirement", nd(value, lmh)),
        "IR" => ("integrityRequirement", nd(value, lmh)),
        "AR" => ("availabilityRequirement", nd(value, lmh)),
        _ => return None,
    };
    (!text.is_empty()).then_some((name, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_semver() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("1.0.0-alpha").cmp(&v("1.0.0-alpha.1")).is_lt());
        assert!(v("1.0.0-alpha.1").cmp(&v("1.0.0-beta")).is_lt());
        assert!(v("1.0.0-rc.1").cmp(&v("1.0.0")).is_lt());
        assert!(v("2").cmp(&v("10")).is_lt());
        assert!(Version::parse("01").is_none() && Version::parse("1.0").is_none());
        assert_eq!(v("1.2.3+build"), v("1.2.3"));
    }
}
