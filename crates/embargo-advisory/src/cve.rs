//! CVE JSON 5.1: the CNA container that CVE Services takes (`POST /cve/{id}/cna` with
//! `{"cnaContainer": …}`) and the full CVE record.

use serde_json::{Map, Value, json};

use crate::cvss_json;
use crate::record::{AdvisoryRecord, Affected, Event, Publisher, RangeKind, ReferenceType, utc};

/// The CVE record format version written in `dataVersion`.
pub const DATA_VERSION: &str = "5.1";

/// The CNA container for CVE Services.
pub fn cna_container(record: &AdvisoryRecord, publisher: &Publisher) -> Value {
    let mut cna = Map::new();
    let mut put = |key: &str, value: Value| {
        cna.insert(key.into(), value);
    };
    let mut provider = json!({"orgId": publisher.cve_org_id.clone().unwrap_or_default()});
    if let Some(short) = &publisher.cve_short_name {
        provider["shortName"] = json!(short);
    }
    put("providerMetadata", provider);
    put("title", json!(record.title));
    if let Some(published) = record.published {
        put("datePublic", json!(utc(published)));
    }
    let mut description = json!({"lang": "en", "value": record.description()});
    if !record.details.trim().is_empty() && record.details.len() <= 16384 {
        description["supportingMedia"] = json!([{"type": "text/markdown", "base64": false, "value": record.details}]);
    }
    put("descriptions", json!([description]));
    // Packages that differ only in what CVE cannot say (an OSV ecosystem suffix, a purl)
    // would repeat an entry, which the schema forbids.
    put("affected", json!(unique(record.affected.iter().map(affected))));
    if !record.weaknesses.is_empty() {
        let descriptions: Vec<Value> = record
            .weaknesses
            .iter()
            .map(|w| {
                let text = w.name.as_ref().map_or_else(|| w.id.clone(), |name| format!("{}: {name}", w.id));
                json!({"lang": "en", "type": "CWE", "cweId": w.id, "description": text})
            })
            .collect();
        put("problemTypes", json!([{"descriptions": descriptions}]));
    }
    let mut references: Vec<Value> = Vec::new();
    for r in &record.references {
        let entry = reference(r);
        match references.iter_mut().find(|e| e["url"] == entry["url"]) {
            Some(existing) => {
                if let Some(tag) = entry.get("tags").and_then(|t| t[0].as_str()) {
                    let tags = existing.as_object_mut().expect("object").entry("tags").or_insert_with(|| json!([]));
                    if !tags.as_array().is_some_and(|t| t.iter().any(|x| x == tag)) {
                        tags.as_array_mut().expect("array").push(json!(tag));
                    }
                }
            }
            None => references.push(entry),
        }
    }
    put("references", json!(references));
    let metrics: Vec<Value> = record
        .severity
        .vectors()
        .iter()
        .filter_map(|v| {
            let (key, object) = match v.version() {
                "3.1" => ("cvssV3_1", cvss_json::cvss_v3_1(v)?),
                _ => ("cvssV4_0", cvss_json::cvss_v4_0(v)?),
            };
            Some(json!({"format": "CVSS", "scenarios": [{"lang": "en", "value": "GENERAL"}], key: object}))
        })
        .collect();
    if !metrics.is_empty() {
        put("metrics", json!(metrics));
    }
    if !record.workarounds.trim().is_empty() {
        put("workarounds", json!([{"lang": "en", "value": record.workarounds.trim()}]));
    }
    let solutions =
        unique(record.affected.iter().filter_map(solution).map(|text| json!({"lang": "en", "value": text})));
    if !solutions.is_empty() {
        put("solutions", json!(solutions));
    }
    if !record.credits.is_empty() {
        let credits: Vec<Value> = record
            .credits
            .iter()
            .map(|c| {
                let mut credit = json!({"lang": "en", "value": c.name});
                if let Some(kind) = c.kind {
                    credit["type"] = json!(kind.words());
                }
                credit
            })
            .collect();
        put("credits", json!(credits));
    }
    put("x_generator", json!({"engine": concat!("Embargo ", env!("CARGO_PKG_VERSION"))}));
    Value::Object(cna)
}

/// The CNA container of a rejected record, for a withdrawn advisory: the reason and the
/// provider (CVE JSON 5.1 `cnaRejectedContainer`; what `POST /cve/{id}/reject` takes).
pub fn rejected_container(record: &AdvisoryRecord, publisher: &Publisher) -> Value {
    let mut provider = json!({"orgId": publisher.cve_org_id.clone().unwrap_or_default()});
    if let Some(short) = &publisher.cve_short_name {
        provider["shortName"] = json!(short);
    }
    json!({
        "providerMetadata": provider,
        "rejectedReasons": [{"lang": "en", "value": record.withdrawal_text()}],
    })
}

/// The full CVE record (`dataType` `CVE_RECORD`) around [`cna_container`]: state
/// `PUBLISHED`, or for a withdrawn advisory `REJECTED` around [`rejected_container`].
pub fn cve_record(record: &AdvisoryRecord, publisher: &Publisher) -> Value {
    if let Some(withdrawn) = record.withdrawn {
        let withdrawn = record.published.map_or(withdrawn, |p| withdrawn.max(p));
        let mut metadata = json!({
            "cveId": record.cve_id.clone().unwrap_or_default(),
            "assignerOrgId": publisher.cve_org_id.clone().unwrap_or_default(),
            "state": "REJECTED",
            "dateRejected": utc(withdrawn),
            "dateUpdated": utc(record.modified.max(withdrawn)),
        });
        if let Some(short) = &publisher.cve_short_name {
            metadata["assignerShortName"] = json!(short);
        }
        if let Some(published) = record.published {
            metadata["datePublished"] = json!(utc(published));
        }
        return json!({
            "dataType": "CVE_RECORD",
            "dataVersion": DATA_VERSION,
            "cveMetadata": metadata,
            "containers": {"cna": rejected_container(record, publisher)},
        });
    }
    let mut metadata = json!({
        "cveId": record.cve_id.clone().unwrap_or_default(),
        "assignerOrgId": publisher.cve_org_id.clone().unwrap_or_default(),
        "state": "PUBLISHED",
        "dateUpdated": utc(record.modified),
    });
    if let Some(short) = &publisher.cve_short_name {
        metadata["assignerShortName"] = json!(short);
    }
    if let Some(published) = record.published {
        metadata["datePublished"] = json!(utc(published));
    }
    json!({
        "dataType": "CVE_RECORD",
        "dataVersion": DATA_VERSION,
        "cveMetadata": metadata,
        "containers": {"cna": cna_container(record, publisher)},
    })
}

/// The values in order, each once.
fn unique(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn reference(reference: &crate::record::Reference) -> Value {
    let tag = match reference.kind {
        ReferenceType::Advisory => Some("vendor-advisory"),
        ReferenceType::Fix => Some("patch"),
        ReferenceType::Report => Some("issue-tracking"),
        ReferenceType::Discussion => Some("mailing-list"),
        ReferenceType::Article => Some("technical-description"),
        _ => None,
    };
    match tag {
        Some(tag) => json!({"url": reference.url, "tags": [tag]}),
        None => json!({"url": reference.url}),
    }
}

/// Package collections (CVE `collectionURL`) for the common ecosystems.
fn collection_url(ecosystem: &str) -> Option<&'static str> {
    Some(match ecosystem.split(':').next()? {
        "crates.io" => "https://crates.io",
        "npm" => "https://www.npmjs.com",
        "PyPI" => "https://pypi.org",
        "Go" => "https://pkg.go.dev",
        "Maven" => "https://repo.maven.apache.org/maven2/",
        "RubyGems" => "https://rubygems.org",
        "NuGet" => "https://www.nuget.org/packages",
        "Packagist" => "https://packagist.org",
        "Hex" => "https://hex.pm",
        "Pub" => "https://pub.dev",
        _ => return None,
    })
}

/// The CVE `versionType` of a range: the range's own kind first (a Git range holds commits,
/// whatever the package's ecosystem), then the ecosystem's version scheme.
fn version_type(kind: RangeKind, ecosystem: Option<&str>) -> &'static str {
    match (kind, ecosystem.and_then(|e| e.split(':').next())) {
        (RangeKind::Git, _) => "git",
        (RangeKind::Semver, _) | (_, Some("crates.io" | "npm" | "Go" | "Hex" | "Pub")) => "semver",
        (_, Some("PyPI")) => "python",
        (_, Some("Maven")) => "maven",
        (_, Some("Red Hat" | "SUSE" | "openSUSE" | "AlmaLinux" | "Rocky Linux" | "Mageia" | "openEuler")) => "rpm",
        _ => "custom",
    }
}

fn affected(affected: &Affected) -> Value {
    let mut out = json!({"vendor": affected.vendor, "product": affected.product});
    if let Some(url) = affected.ecosystem.as_deref().and_then(collection_url) {
        out["collectionURL"] = json!(url);
        out["packageName"] = json!(affected.product);
    }
    if let Some(repo) = &affected.repository {
        out["repo"] = json!(repo);
    }
    let mut versions: Vec<Value> = Vec::new();
    let mut push = |v: Value| {
        if !versions.contains(&v) {
            versions.push(v);
        }
    };
    for range in &affected.ranges {
        let kind = version_type(range.kind, affected.ecosystem.as_deref());
        let mut start: Option<&str> = None;
        for event in range.sorted_events() {
            match event {
                Event::Introduced(v) => start = Some(v),
                Event::Fixed(end) | Event::Limit(end) => {
                    if let Some(from) = start.take() {
                        push(json!({"version": from, "status": "affected", "versionType": kind, "lessThan": end}));
                    }
                }
                Event::LastAffected(end) => {
                    if let Some(from) = start.take() {
                        push(
                            json!({"version": from, "status": "affected", "versionType": kind, "lessThanOrEqual": end}),
                        );
                    }
                }
            }
        }
        if let Some(from) = start {
            push(json!({"version": from, "status": "affected", "versionType": kind, "lessThan": "*"}));
        }
    }
    for version in &affected.versions {
        push(json!({"version": version, "status": "affected"}));
    }
    if versions.is_empty() {
        out["defaultStatus"] = json!("unknown");
    } else {
        out["versions"] = json!(versions);
        out["defaultStatus"] = json!("unaffected");
    }
    out
}

/// "Upgrade P to 1.2.3 or later." from the fixed events of a non-Git range.
fn solution(affected: &Affected) -> Option<String> {
    let fixed: Vec<&str> = affected
        .ranges
        .iter()
        .filter(|r| r.kind != RangeKind::Git)
        .flat_map(|r| &r.events)
        .filter_map(|e| if let Event::Fixed(v) = e { Some(v.as_str()) } else { None })
        .collect();
    match fixed.as_slice() {
        [] => None,
        [one] => Some(format!("Upgrade {} to {one} or later.", affected.product)),
        many => Some(format!("Upgrade {} to one of the fixed versions: {}.", affected.product, many.join(", "))),
    }
}
