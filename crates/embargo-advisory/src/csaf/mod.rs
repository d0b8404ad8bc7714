//! CSAF 2.0 `csaf_security_advisory` documents ([`to_csaf`]), the §5.1 file name
//! ([`csaf_filename`]) and our implementation of the §6.1 mandatory tests ([`mandatory`]).
//!
//! The product tree is `vendor → product_name → product_version | product_version_range`:
//! each affected range becomes a `product_version_range` (a `vers:` string) in
//! `known_affected`, each listed version a `product_version` in `known_affected`, and each
//! fixed version a `product_version` in `fixed`. A product with no version information is
//! affected as a whole. CSAF 2.0 has no slot for CVSS 4.0, so a 4.0 vector goes into a note;
//! only a weakness whose name is known can be the vulnerability's `cwe`, and every weakness
//! is listed in a note.

pub mod mandatory;
pub mod optional;

use serde_json::{Map, Value, json};

use crate::cvss_json;
use crate::purl::Purl;
use crate::record::{AdvisoryRecord, Affected, Event, Publisher, PublisherCategory, RangeKind, utc};

/// The §5.1 file name of a document with tracking ID `id`: lower case, every run of
/// characters other than `+`, `-`, `a-z` and `0-9` replaced by one `_`, then `.json`.
pub fn csaf_filename(id: &str) -> String {
    let mut name = String::with_capacity(id.len() + 5);
    for c in id.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name + ".json"
}

/// The `vers` scheme for an ecosystem (or `semver` for a SEMVER range outside one).
fn vers_scheme(kind: RangeKind, ecosystem: Option<&str>) -> &'static str {
    match ecosystem.and_then(|e| e.split(':').next()) {
        Some("crates.io") => "cargo",
        Some("npm") => "npm",
        Some("PyPI") => "pypi",
        Some("Go") => "golang",
        Some("Maven") => "maven",
        Some("RubyGems") => "gem",
        Some("NuGet") => "nuget",
        Some("Packagist") => "composer",
        Some("Hex") => "hex",
        Some("Pub") => "pub",
        Some("Debian" | "Ubuntu") => "deb",
        Some("Alpine") => "alpine",
        Some("Red Hat" | "SUSE" | "openSUSE" | "AlmaLinux" | "Rocky Linux") => "rpm",
        _ if kind == RangeKind::Semver => "semver",
        _ => "generic",
    }
}

/// A range as a `vers:` string, or for Git ranges a sentence naming the commits.
fn range_name(kind: RangeKind, events: &[&Event], ecosystem: Option<&str>) -> String {
    if kind == RangeKind::Git {
        let parts: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Introduced(c) if c == "0" => "from the first commit".to_owned(),
                Event::Introduced(c) => format!("introduced in commit {c}"),
                Event::Fixed(c) => format!("fixed in commit {c}"),
                Event::LastAffected(c) => format!("last affected commit {c}"),
                Event::Limit(c) => format!("up to commit {c}"),
            })
            .collect();
        return format!("Git history {}", parts.join(", "));
    }
    let constraints: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Introduced(v) if v == "0" => None,
            Event::Introduced(v) => Some(format!(">={v}")),
            Event::Fixed(v) | Event::Limit(v) => Some(format!("<{v}")),
            Event::LastAffected(v) => Some(format!("<={v}")),
        })
        .collect();
    let body = if constraints.is_empty() { "*".to_owned() } else { constraints.join("|") };
    format!("vers:{}/{body}", vers_scheme(kind, ecosystem))
}

/// The product IDs of one affected product, by status.
#[derive(Default)]
struct Ids {
    affected: Vec<String>,
    fixed: Vec<String>,
}

fn product(name: String, id: &str, purl: &Purl) -> Value {
    json!({"name": name, "product_id": id, "product_identification_helper": {"purl": purl.to_string()}})
}

/// The package URL that identifies a product in CSAF (optional test 6.2.16 wants one on
/// every product): the catalogue's purl, else a `pkg:generic` one named after the vendor
/// and product, with the repository as `vcs_url` when it is known.
fn base_purl(a: &Affected) -> Purl {
    if let Some(purl) = a.purl.as_deref().and_then(|p| Purl::parse(p).ok()) {
        return purl;
    }
    let purl = Purl::generic(Some(&a.vendor), &a.product);
    match &a.repository {
        Some(repo) => purl.with_qualifier("vcs_url", &format!("git+{repo}")),
        None => purl,
    }
}

/// The parts of the product tree for one affected product: its `product_name` branch (when
/// it has versions to branch into, or nothing else), the full product names of its Git
/// ranges, and its IDs.
struct ProductParts {
    branch: Option<Value>,
    full_names: Vec<Value>,
    ids: Ids,
}

/// One affected product in the product tree. Version ranges become `product_version_range`
/// branches named with `vers:` (optional test 6.2.18); Git ranges cannot be written in `vers`
/// (commits have no order), so each becomes a full product name that says which commits of
/// which repository, and each fix commit a `product_version`.
fn product_parts(index: usize, a: &Affected) -> ProductParts {
    let mut ids = Ids::default();
    let mut children = Vec::new();
    let mut full_names = Vec::new();
    let base = if a.product.starts_with(&a.vendor) { a.product.clone() } else { format!("{} {}", a.vendor, a.product) };
    let full = |suffix: &str| format!("{base} {suffix}");
    let purl = base_purl(a);
    for (j, range) in a.ranges.iter().enumerate() {
        let id = format!("P{index}-R{}", j + 1);
        let name = range_name(range.kind, &range.sorted_events(), a.ecosystem.as_deref());
        if range.kind == RangeKind::Git {
            let repo = a.repository.as_deref().unwrap_or("its repository");
            full_names.push(product(format!("{base}: {name} of {repo}"), &id, &purl));
        } else {
            children.push(json!({
                "category": "product_version_range",
                "name": name,
                "product": product(full(&name), &id, &purl),
            }));
        }
        ids.affected.push(id);
    }
    for (k, version) in a.versions.iter().enumerate() {
        let id = format!("P{index}-V{}", k + 1);
        children.push(json!({
            "category": "product_version",
            "name": version,
            "product": product(full(version), &id, &purl.clone().with_version(version)),
        }));
        ids.affected.push(id);
    }
    let mut fixed: Vec<(&str, RangeKind)> = Vec::new();
    for range in &a.ranges {
        for event in &range.events {
            if let Event::Fixed(v) = event
                && !fixed.iter().any(|(f, _)| f == v)
            {
                fixed.push((v, range.kind));
            }
        }
    }
    for (k, (version, kind)) in fixed.into_iter().enumerate() {
        let id = format!("P{index}-F{}", k + 1);
        let purl = match (kind, &a.repository) {
            (RangeKind::Git, Some(repo)) => purl.clone().with_qualifier("vcs_url", &format!("git+{repo}@{version}")),
            (RangeKind::Git, None) => purl.clone(),
            _ => purl.clone().with_version(version),
        };
        children.push(json!({
            "category": "product_version",
            "name": version,
            "product": product(full(version), &id, &purl),
        }));
        ids.fixed.push(id);
    }
    let branch = if !children.is_empty() {
        Some(json!({"category": "product_name", "name": a.product, "branches": children}))
    } else if full_names.is_empty() {
        let id = format!("P{index}");
        ids.affected.push(id.clone());
        Some(json!({"category": "product_name", "name": a.product, "product": product(base.clone(), &id, &purl)}))
    } else {
        None
    };
    ProductParts { branch, full_names, ids }
}

/// The value with the keys of every object in sorted order (optional test 6.2.13; the
/// validator compares them as `Intl.Collator` does, which for our ASCII keys is byte order).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(list) => Value::Array(list.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn publisher_category(category: PublisherCategory) -> &'static str {
    match category {
        PublisherCategory::Vendor => "vendor",
        PublisherCategory::Coordinator => "coordinator",
        PublisherCategory::Discoverer => "discoverer",
        PublisherCategory::User => "user",
        PublisherCategory::Other => "other",
    }
}

fn note(category: &str, title: &str, text: &str) -> Value {
    json!({"category": category, "title": title, "text": text})
}

/// The record as a CSAF 2.0 security advisory. `tracking.status` is `final` once the record
/// has a publication time, `draft` before.
///
/// A withdrawn record follows the CSAF 2.1 profile for withdrawn advisories, which 2.0 lacks,
/// within 2.0's rules: the category becomes `csaf_base` (a security advisory must list
/// product statuses, and a withdrawn one makes no claim about any product), the first note is
/// the "Reasoning for Withdrawal", and there is no product tree and no vulnerability; the
/// revision history records the withdrawal.
pub fn to_csaf(record: &AdvisoryRecord, publisher: &Publisher) -> Value {
    let history = record.revision_history();
    let last = history.last().expect("revision_history is never empty");
    let current = history.iter().map(|r| r.date).max().unwrap_or(record.modified).max(record.modified);
    let withdrawn = record.withdrawn.is_some();
    let mut publisher_json = json!({
        "category": publisher_category(publisher.category),
        "name": publisher.name,
        "namespace": publisher.namespace,
    });
    if let Some(contact) = &publisher.contact {
        publisher_json["contact_details"] = json!(contact);
    }
    let id = record.id.to_string();
    let mut document = json!({
        "category": if withdrawn { "csaf_base" } else { "csaf_security_advisory" },
        "csaf_version": "2.0",
        // Published advisories are public: TLP:WHITE, as the provider's ROLIE feed says.
        "distribution": {"tlp": {"label": "WHITE"}},
        "lang": "en",
        "publisher": publisher_json,
        "title": record.title,
        "tracking": {
            "id": id,
            "status": if record.published.is_some() { "final" } else { "draft" },
            "version": last.number.to_string(),
            "initial_release_date": utc(record.initial_release()),
            "current_release_date": utc(current),
            "revision_history": history.iter().map(|r| json!({
                "number": r.number.to_string(),
                "date": utc(r.date),
                "summary": r.summary,
            })).collect::<Vec<_>>(),
            "generator": {
                "engine": {"name": "Embargo", "version": env!("CARGO_PKG_VERSION")},
                "date": utc(record.modified),
            },
        },
    });
    let mut notes = Vec::new();
    if withdrawn {
        notes.push(note("description", "Reasoning for Withdrawal", &record.withdrawal_text()));
    }
    if !record.summary.trim().is_empty() {
        notes.push(note("summary", "Summary", record.summary.trim()));
    }
    if !record.details.trim().is_empty() {
        notes.push(note("details", "Details", record.details.trim()));
    }
    if !notes.is_empty() {
        document["notes"] = json!(notes);
    }
    let mut references: Vec<Value> = Vec::new();
    if let Some(folder) = &publisher.csaf_documents_url {
        let year = record.initial_release().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        let url = format!("{}/{year}/{}", folder.trim_end_matches('/'), csaf_filename(&id));
        references.push(json!({"category": "self", "summary": "This document (canonical URL).", "url": url}));
    }
    references.extend(
        record.references.iter().map(|r| json!({"category": "external", "summary": r.kind.label(), "url": r.url})),
    );
    if !references.is_empty() {
        document["references"] = json!(references);
    }
    if !record.credits.is_empty() {
        document["acknowledgments"] = record
            .credits
            .iter()
            .map(|c| match c.kind {
                Some(kind) => json!({"names": [c.name], "summary": kind.words()}),
                None => json!({"names": [c.name]}),
            })
            .collect();
    }
    if withdrawn {
        return sorted(json!({"document": document}));
    }

    // Product tree, grouped by vendor in order of first appearance.
    let mut vendors: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut full_product_names = Vec::new();
    let mut all = Ids::default();
    let mut remediations = Vec::new();
    for (i, a) in record.affected.iter().enumerate() {
        let parts = product_parts(i + 1, a);
        if let Some(branch) = parts.branch {
            match vendors.iter_mut().find(|(v, _)| *v == a.vendor) {
                Some((_, branches)) => branches.push(branch),
                None => vendors.push((&a.vendor, vec![branch])),
            }
        }
        full_product_names.extend(parts.full_names);
        if let Some(text) = fix_text(a) {
            remediations.push(json!({"category": "vendor_fix", "details": text, "product_ids": parts.ids.affected}));
        }
        all.affected.extend(parts.ids.affected);
        all.fixed.extend(parts.ids.fixed);
    }
    let branches: Vec<Value> = vendors
        .into_iter()
        .map(|(vendor, branches)| json!({"category": "vendor", "name": vendor, "branches": branches}))
        .collect();
    let mut product_tree = Map::new();
    if !branches.is_empty() {
        product_tree.insert("branches".into(), json!(branches));
    }
    if !full_product_names.is_empty() {
        product_tree.insert("full_product_names".into(), json!(full_product_names));
    }

    let mut vulnerability = Map::new();
    if let Some(cve) = &record.cve_id {
        vulnerability.insert("cve".into(), json!(cve));
    }
    if let Some(w) = record.weaknesses.iter().find(|w| w.name.is_some()) {
        vulnerability.insert("cwe".into(), json!({"id": w.id, "name": w.name}));
    }
    let ids: Vec<Value> = record
        .other_ids()
        .into_iter()
        .map(|a| json!({"system_name": a.split('-').next().unwrap_or(a), "text": a}))
        .collect();
    if !ids.is_empty() {
        vulnerability.insert("ids".into(), json!(ids));
    }
    vulnerability.insert("title".into(), json!(record.title));
    let mut vnotes = vec![note("description", "Description", record.description().trim())];
    if !record.weaknesses.is_empty() {
        let list: Vec<String> = record
            .weaknesses
            .iter()
            .map(|w| w.name.as_ref().map_or_else(|| w.id.clone(), |n| format!("{}: {n}", w.id)))
            .collect();
        vnotes.push(note("other", "Weaknesses", &list.join("\n")));
    }
    let vectors = record.severity.vectors();
    for v in vectors.iter().filter(|v| v.version() == "4.0") {
        let text = format!("{v} (score {}, {})", v.score(), v.severity());
        vnotes.push(note("other", "CVSS v4.0", &text));
    }
    vulnerability.insert("notes".into(), json!(vnotes));
    let mut status = Map::new();
    if !all.affected.is_empty() {
        status.insert("known_affected".into(), json!(all.affected));
    }
    if !all.fixed.is_empty() {
        status.insert("fixed".into(), json!(all.fixed));
    }
    vulnerability.insert("product_status".into(), Value::Object(status));
    if !record.workarounds.trim().is_empty() && !all.affected.is_empty() {
        remediations.push(json!({
            "category": "workaround",
            "details": record.workarounds.trim(),
            "product_ids": all.affected,
        }));
    } else {
        // Every affected product has a remediation (optional test 6.2.2): where there is no
        // fix and no workaround, say that none is available.
        let remedied: Vec<&str> = remediations
            .iter()
            .flat_map(|r| r["product_ids"].as_array().into_iter().flatten().filter_map(Value::as_str))
            .collect();
        let without: Vec<String> = all.affected.iter().filter(|id| !remedied.contains(&id.as_str())).cloned().collect();
        if !without.is_empty() {
            remediations.push(json!({
                "category": "none_available",
                "details": "This advisory names no fixed version and no workaround for these products.",
                "product_ids": without,
            }));
        }
    }
    if !remediations.is_empty() {
        vulnerability.insert("remediations".into(), json!(remediations));
    }
    let scores: Vec<Value> = vectors
        .iter()
        .filter_map(cvss_json::cvss_v3_1)
        .map(|cvss| json!({"cvss_v3": cvss, "products": all.affected}))
        .collect();
    if !scores.is_empty() && !all.affected.is_empty() {
        vulnerability.insert("scores".into(), json!(scores));
    }
    if let Some(published) = record.published {
        vulnerability.insert("release_date".into(), json!(utc(published)));
    }
    sorted(json!({
        "document": document,
        "product_tree": Value::Object(product_tree),
        "vulnerabilities": [Value::Object(vulnerability)],
    }))
}

/// What to do about one product: upgrade to its fixed versions, or apply its fix commits.
fn fix_text(a: &Affected) -> Option<String> {
    let fixed = |git: bool| -> Vec<&str> {
        a.ranges
            .iter()
            .filter(|r| (r.kind == RangeKind::Git) == git)
            .flat_map(|r| &r.events)
            .filter_map(|e| if let Event::Fixed(v) = e { Some(v.as_str()) } else { None })
            .collect()
    };
    let (versions, commits) = (fixed(false), fixed(true));
    let mut parts = Vec::new();
    if !versions.is_empty() {
        parts.push(format!("Upgrade {} to {} or later.", a.product, versions.join(", ")));
    }
    if !commits.is_empty() {
        let repo = a.repository.as_deref().unwrap_or("the repository");
        parts.push(format!("Apply the fix commit {} of {repo}.", commits.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_follow_section_5_1() {
        assert_eq!(csaf_filename("EMB-2026-0001"), "emb-2026-0001.json");
        assert_eq!(csaf_filename("OASIS_CSAF_TC-CSAF_2.0-2021-5-1-01"), "oasis_csaf_tc-csaf_2_0-2021-5-1-01.json");
        assert_eq!(csaf_filename("a  b//c+d"), "a_b_c+d.json");
    }

    #[test]
    fn ranges_become_vers_strings() {
        let (from, to, zero) =
            (Event::Introduced("1.0.0".into()), Event::Fixed("1.2.3".into()), Event::Introduced("0".into()));
        assert_eq!(range_name(RangeKind::Semver, &[&from, &to], Some("crates.io")), "vers:cargo/>=1.0.0|<1.2.3");
        assert_eq!(range_name(RangeKind::Ecosystem, &[&zero], Some("PyPI")), "vers:pypi/*");
    }
}
