//! An [`Announcement`] from an advisory record (`embargo-advisory`): the fields the channels
//! show, and one affected/fixed row per product, range and release line.

use embargo_advisory::{AdvisoryRecord, Event, RangeKind};

use crate::render::{Affected, Announcement};

impl Announcement {
    /// The announcement of `record` under the public ID `advisory_id` at `url` (before
    /// publication: [`crate::render::ID_PLACEHOLDER`] and a URL holding it), disclosed at
    /// `published`.
    ///
    /// The CVE IDs are the record's CVE ID and its `CVE-` aliases; the severity is the first
    /// valid CVSS vector's (3.1 before 4.0) rating and score; each range of each product
    /// gives one row per introduced→fixed pair (the release line is the fixed version's
    /// first two parts, or the introduced one's), listed versions one row, a product with
    /// neither "all versions"; credits are the names; references the URLs.
    pub fn from_record(record: &AdvisoryRecord, advisory_id: &str, url: &str, published: jiff::Timestamp) -> Self {
        let mut cve_ids: Vec<String> = record.cve_id.iter().cloned().collect();
        for alias in &record.aliases {
            if alias.starts_with("CVE-") && !cve_ids.contains(alias) {
                cve_ids.push(alias.clone());
            }
        }
        let vector = record.severity.vectors().into_iter().next();
        Announcement {
            advisory_id: advisory_id.to_owned(),
            cve_ids,
            title: record.title.clone(),
            summary: record.summary.clone(),
            severity: vector.as_ref().map(|v| v.severity().to_string()),
            cvss_score: vector.as_ref().map(|v| v.score().value()),
            cvss_vector: vector.as_ref().map(|v| v.to_string()),
            affected: record.affected.iter().flat_map(rows).collect(),
            workarounds: record.workarounds.clone(),
            url: url.to_owned(),
            credits: record.credits.iter().map(|c| c.name.clone()).collect(),
            references: record.references.iter().map(|r| r.url.clone()).collect(),
            published,
        }
    }
}

/// `2.4` from `2.4.7`; a version without dots as it is.
fn release_line(version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() > 2 { parts[..2].join(".") } else { version.to_owned() }
}

fn rows(affected: &embargo_advisory::Affected) -> Vec<Affected> {
    let product = if affected.vendor.trim().is_empty() || affected.product.starts_with(affected.vendor.trim()) {
        affected.product.clone()
    } else {
        format!("{} {}", affected.vendor.trim(), affected.product)
    };
    let mut rows = Vec::new();
    for range in &affected.ranges {
        let git = range.kind == RangeKind::Git;
        let show = |v: &str| if git && v.len() > 12 { v[..12].to_owned() } else { v.to_owned() };
        let mut introduced: Option<String> = None;
        let mut push = |introduced: Option<&str>, end: Option<&Event>| {
            let from = introduced.filter(|i| *i != "0").map(|i| format!(">= {}", show(i)));
            let (to, fixed) = match end {
                Some(Event::Fixed(f)) => (Some(format!("< {}", show(f))), Some(show(f))),
                Some(Event::LastAffected(l)) => (Some(format!("<= {}", show(l))), None),
                Some(Event::Limit(l)) => (Some(format!("< {}", show(l))), None),
                _ => (None, None),
            };
            let text = match (from, to) {
                (Some(from), Some(to)) => format!("{from}, {to}"),
                (Some(one), None) | (None, Some(one)) => one,
                (None, None) => "all versions".to_owned(),
            };
            let line = if git {
                "git".to_owned()
            } else {
                fixed.as_deref().or(introduced.filter(|i| *i != "0")).map(release_line).unwrap_or_default()
            };
            rows.push(Affected { product: product.clone(), release_line: line, affected: text, fixed });
        };
        for event in range.sorted_events() {
            match event {
                Event::Introduced(v) => {
                    if let Some(open) = introduced.take() {
                        push(Some(&open), None);
                    }
                    introduced = Some(v.clone());
                }
                end => {
                    push(introduced.take().as_deref(), Some(end));
                }
            }
        }
        if let Some(open) = introduced {
            push(Some(&open), None);
        }
    }
    if !affected.versions.is_empty() {
        rows.push(Affected {
            product: product.clone(),
            release_line: String::new(),
            affected: affected.versions.join(", "),
            fixed: None,
        });
    }
    if rows.is_empty() {
        rows.push(Affected { product, release_line: String::new(), affected: "all versions".into(), fixed: None });
    }
    rows
}

#[cfg(test)]
mod tests {
    use embargo_advisory::{Credit, CreditType, Range, Reference, ReferenceType, Severity};

    use super::*;
    use crate::render;
    use crate::text::{ID_PLACEHOLDER, check};

    fn record() -> AdvisoryRecord {
        let ts = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let range = |kind, events: Vec<Event>| Range { kind, events, database_specific: None };
        let product =
            |vendor: &str, name: &str, ranges: Vec<Range>, versions: Vec<String>| embargo_advisory::Affected {
                product: name.into(),
                vendor: vendor.into(),
                ecosystem: None,
                purl: None,
                repository: None,
                ranges,
                versions,
                ecosystem_specific: None,
                database_specific: None,
            };
        AdvisoryRecord {
            id: "EMB-2026-0001".parse().unwrap(),
            cve_id: Some("CVE-2026-12345".into()),
            aliases: vec!["GHSA-xxxx-yyyy-zzzz".into(), "CVE-2026-12346".into()],
            related: vec![],
            title: "Path traversal in <widget>".into(),
            summary: "A crafted name escapes the upload directory.".into(),
            details: String::new(),
            affected: vec![
                product(
                    "Example",
                    "widget",
                    vec![range(
                        RangeKind::Ecosystem,
                        vec![
                            Event::Introduced("2.4.0".into()),
                            Event::Fixed("2.4.7".into()),
                            Event::Introduced("0".into()),
                            Event::Fixed("2.3.9".into()),
                        ],
                    )],
                    vec![],
                ),
                product("", "gadget", vec![], vec!["1.0".into(), "1.1".into()]),
                product("", "gizmo", vec![], vec![]),
            ],
            severity: Severity {
                cvss_v3_1: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
                cvss_v4_0: None,
            },
            weaknesses: vec![],
            credits: vec![Credit { name: "Ada".into(), contact: vec![], kind: Some(CreditType::Finder) }],
            references: vec![Reference { url: "https://example.org/fix".into(), kind: ReferenceType::Fix }],
            workarounds: "Reject names containing `..`.".into(),
            revisions: vec![],
            published: None,
            modified: ts("2026-11-20T09:00:00Z"),
            withdrawn: None,
            withdrawn_reason: String::new(),
            upstream: vec![],
            database_specific: None,
        }
    }

    #[test]
    fn an_advisory_record_becomes_an_announcement() {
        let at: jiff::Timestamp = "2026-12-05T14:00:00Z".parse().unwrap();
        let url = format!("https://security.example.org/advisories/{ID_PLACEHOLDER}");
        let a = Announcement::from_record(&record(), ID_PLACEHOLDER, &url, at);
        assert_eq!(a.cve_ids, ["CVE-2026-12345", "CVE-2026-12346"]);
        assert_eq!(a.severity.as_deref(), Some("Critical"));
        assert_eq!(a.cvss_score, Some(9.8));
        assert_eq!(a.cvss_vector.as_deref(), Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"));
        let rows: Vec<(&str, &str, &str, Option<&str>)> = a
            .affected
            .iter()
            .map(|r| (r.product.as_str(), r.release_line.as_str(), r.affected.as_str(), r.fixed.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("Example widget", "2.3", "< 2.3.9", Some("2.3.9")),
                ("Example widget", "2.4", ">= 2.4.0, < 2.4.7", Some("2.4.7")),
                ("gadget", "", "1.0, 1.1", None),
                ("gizmo", "", "all versions", None),
            ]
        );
        assert_eq!(a.credits, ["Ada"]);
        assert_eq!(a.references, ["https://example.org/fix"]);
        assert_eq!(a.workarounds, "Reject names containing `..`.");
        let rendered = render::render(&a);
        for kind in [crate::ChannelKind::Slack, crate::ChannelKind::X, crate::ChannelKind::Blog] {
            check(kind, ID_PLACEHOLDER, rendered.text(kind).unwrap()).unwrap();
        }
    }
}
