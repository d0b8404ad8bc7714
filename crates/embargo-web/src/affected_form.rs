//! The advisory editor's affected products and version ranges as rows of plain fields (no
//! JSON, no script): one row per version range segment — product, vendor, ecosystem, package
//! URL, repository, range kind, the version it was introduced in and the version that ends it
//! (fixed, last affected or limit), and individually listed versions.
//!
//! [`to_rows`] and [`from_rows`] convert between rows and the advisory record's
//! [`Affected`] entries, from which the OSV, CVE and CSAF outputs are built: rows with the
//! same product fields are one entry; segments of the same kind one range, their events in
//! row order. A record of such entries comes back unchanged from its rows; data the rows do
//! not show (an imported entry's `ecosystem_specific` and `database_specific`) is kept from
//! the entry of the same product.

use embargo_advisory::{Affected, Event, Range, RangeKind};

/// The names of a row's fields in the form, each sent once per row.
pub const FIELDS: [&str; 10] = [
    "a_product",
    "a_vendor",
    "a_ecosystem",
    "a_purl",
    "a_repository",
    "a_kind",
    "a_introduced",
    "a_end_kind",
    "a_end",
    "a_versions",
];

/// One row of the editor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub product: String,
    pub vendor: String,
    pub ecosystem: String,
    pub purl: String,
    pub repository: String,
    /// `SEMVER`, `ECOSYSTEM`, `GIT`, or empty for no range.
    pub kind: String,
    pub introduced: String,
    /// `fixed`, `last_affected` or `limit`.
    pub end_kind: String,
    pub end: String,
    /// Comma-separated.
    pub versions: String,
}

impl Row {
    fn is_blank(&self) -> bool {
        [
            &self.product,
            &self.vendor,
            &self.ecosystem,
            &self.purl,
            &self.repository,
            &self.introduced,
            &self.end,
            &self.versions,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
    }

    fn key(&self) -> (String, String, String, String, String) {
        (
            self.product.trim().to_owned(),
            self.vendor.trim().to_owned(),
            self.ecosystem.trim().to_owned(),
            self.purl.trim().to_owned(),
            self.repository.trim().to_owned(),
        )
    }
}

/// The rows of a record's affected entries.
pub fn to_rows(affected: &[Affected]) -> Vec<Row> {
    let mut rows = Vec::new();
    for a in affected {
        let base = Row {
            product: a.product.clone(),
            vendor: a.vendor.clone(),
            ecosystem: a.ecosystem.clone().unwrap_or_default(),
            purl: a.purl.clone().unwrap_or_default(),
            repository: a.repository.clone().unwrap_or_default(),
            end_kind: "fixed".into(),
            ..Row::default()
        };
        let first = rows.len();
        for range in &a.ranges {
            let mut open: Option<Row> = None;
            for event in &range.events {
                match event {
                    Event::Introduced(v) => {
                        if let Some(row) = open.take() {
                            rows.push(row);
                        }
                        open =
                            Some(Row { kind: range.kind.as_str().to_owned(), introduced: v.clone(), ..base.clone() });
                    }
                    end => {
                        let mut row =
                            open.take().unwrap_or_else(|| Row { kind: range.kind.as_str().to_owned(), ..base.clone() });
                        row.end_kind = match end {
                            Event::Fixed(_) => "fixed",
                            Event::LastAffected(_) => "last_affected",
                            _ => "limit",
                        }
                        .to_owned();
                        row.end = end.version().to_owned();
                        rows.push(row);
                    }
                }
            }
            if let Some(row) = open.take() {
                rows.push(row);
            }
        }
        if rows.len() == first {
            rows.push(base.clone());
        }
        rows[first].versions = a.versions.join(", ");
    }
    rows
}

/// The rows sent by the form: each field's values, in order (see [`FIELDS`]).
pub fn rows_from_pairs(pairs: &[(String, String)]) -> Vec<Row> {
    let column =
        |name: &str| -> Vec<&str> { pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect() };
    let columns: Vec<Vec<&str>> = FIELDS.iter().map(|f| column(f)).collect();
    let count = columns.iter().map(Vec::len).max().unwrap_or(0);
    (0..count)
        .map(|i| {
            let cell = |c: usize| columns[c].get(i).copied().unwrap_or("").to_owned();
            Row {
                product: cell(0),
                vendor: cell(1),
                ecosystem: cell(2),
                purl: cell(3),
                repository: cell(4),
                kind: cell(5),
                introduced: cell(6),
                end_kind: cell(7),
                end: cell(8),
                versions: cell(9),
            }
        })
        .collect()
}

/// A row that cannot be read: the field (`name#row`, the row counted from 0 among all rows
/// sent) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: String,
    pub message: String,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The affected entries of the rows (blank rows are left out); `old` gives back what the
/// rows do not show.
pub fn from_rows(rows: &[Row], old: &[Affected]) -> Result<Vec<Affected>, RowError> {
    let mut out: Vec<Affected> = Vec::new();
    let mut keys: Vec<(String, String, String, String, String)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if row.is_blank() {
            continue;
        }
        let fail = |field: &str, message: String| RowError { field: format!("{field}#{i}"), message };
        if row.product.trim().is_empty() {
            return Err(fail("a_product", format!("row {}: name the product or package", i + 1)));
        }
        let kind = match row.kind.trim().to_ascii_uppercase().as_str() {
            "" => None,
            "SEMVER" => Some(RangeKind::Semver),
            "ECOSYSTEM" => Some(RangeKind::Ecosystem),
            "GIT" => Some(RangeKind::Git),
            other => return Err(fail("a_kind", format!("row {}: {other:?} is not a range kind", i + 1))),
        };
        if kind == Some(RangeKind::Git) && row.repository.trim().is_empty() {
            return Err(fail("a_repository", format!("row {}: a Git range needs the repository", i + 1)));
        }
        if kind.is_none() && !(row.introduced.trim().is_empty() && row.end.trim().is_empty()) {
            return Err(fail("a_kind", format!("row {}: choose the kind of the version range", i + 1)));
        }
        if kind.is_some() && row.introduced.trim().is_empty() && row.end.trim().is_empty() {
            return Err(fail("a_introduced", format!("row {}: give the version it was introduced in", i + 1)));
        }
        let key = row.key();
        let index = match keys.iter().position(|k| *k == key) {
            Some(index) => index,
            None => {
                let kept = old.iter().find(|a| {
                    a.product == key.0 && a.vendor == key.1 && a.ecosystem.clone().unwrap_or_default() == key.2
                });
                keys.push(key.clone());
                out.push(Affected {
                    product: key.0.clone(),
                    vendor: key.1.clone(),
                    ecosystem: opt(&key.2),
                    purl: opt(&key.3),
                    repository: opt(&key.4),
                    ranges: Vec::new(),
                    versions: Vec::new(),
                    ecosystem_specific: kept.and_then(|a| a.ecosystem_specific.clone()),
                    database_specific: kept.and_then(|a| a.database_specific.clone()),
                });
                out.len() - 1
            }
        };
        let entry = &mut out[index];
        for v in row.versions.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            if !entry.versions.iter().any(|x| x == v) {
                entry.versions.push(v.to_owned());
            }
        }
        let Some(kind) = kind else { continue };
        let mut events = Vec::new();
        let introduced = row.introduced.trim();
        // OSV: a range starts with an introduced event; "0" is the beginning of time.
        events.push(Event::Introduced(if introduced.is_empty() { "0".to_owned() } else { introduced.to_owned() }));
        let end = row.end.trim();
        if !end.is_empty() {
            events.push(match row.end_kind.as_str() {
                "last_affected" => Event::LastAffected(end.to_owned()),
                "limit" => Event::Limit(end.to_owned()),
                "fixed" | "" => Event::Fixed(end.to_owned()),
                other => return Err(fail("a_end_kind", format!("row {}: {other:?} is not how a range ends", i + 1))),
            });
        }
        match entry.ranges.iter_mut().find(|r| r.kind == kind) {
            Some(range) => range.events.extend(events),
            None => {
                let kept = old
                    .iter()
                    .find(|a| a.product == entry.product && a.vendor == entry.vendor)
                    .and_then(|a| a.ranges.iter().find(|r| r.kind == kind))
                    .and_then(|r| r.database_specific.clone());
                entry.ranges.push(Range { kind, events, database_specific: kept });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected() -> Vec<Affected> {
        vec![
            Affected {
                product: "widget".into(),
                vendor: "Acme".into(),
                ecosystem: Some("crates.io".into()),
                purl: Some("pkg:cargo/widget".into()),
                repository: None,
                ranges: vec![Range {
                    kind: RangeKind::Semver,
                    events: vec![
                        Event::Introduced("1.0.0".into()),
                        Event::Fixed("1.2.3".into()),
                        Event::Introduced("2.0.0".into()),
                        Event::LastAffected("2.0.4".into()),
                    ],
                    database_specific: Some(serde_json::json!({"source": "import"})),
                }],
                versions: vec!["0.9.9".into()],
                ecosystem_specific: Some(serde_json::json!({"affects": {"functions": ["widget::parse"]}})),
                database_specific: None,
            },
            Affected {
                product: "Widget Server".into(),
                vendor: "Acme".into(),
                ecosystem: None,
                purl: None,
                repository: Some("https://git.example/widget".into()),
                ranges: vec![
                    Range {
                        kind: RangeKind::Ecosystem,
                        events: vec![Event::Introduced("0".into()), Event::Fixed("5".into())],
                        database_specific: None,
                    },
                    Range {
                        kind: RangeKind::Git,
                        events: vec![Event::Introduced("abc123".into()), Event::Limit("def456".into())],
                        database_specific: None,
                    },
                ],
                versions: Vec::new(),
                ecosystem_specific: None,
                database_specific: None,
            },
            Affected {
                product: "Gadget".into(),
                vendor: "Acme".into(),
                ecosystem: None,
                purl: None,
                repository: None,
                ranges: Vec::new(),
                versions: vec!["3.1".into(), "3.2".into()],
                ecosystem_specific: None,
                database_specific: None,
            },
        ]
    }

    #[test]
    fn records_round_trip_through_rows_and_the_form() {
        let old = affected();
        let rows = to_rows(&old);
        assert_eq!(rows.len(), 5, "{rows:#?}");
        assert_eq!(rows[1].introduced, "2.0.0");
        assert_eq!((rows[1].end_kind.as_str(), rows[1].end.as_str()), ("last_affected", "2.0.4"));
        assert_eq!(from_rows(&rows, &old).unwrap(), old);
        // Through the form's fields, with a blank row (the one offered for a new entry).
        let mut pairs = Vec::new();
        for row in rows.iter().chain(std::iter::once(&Row { end_kind: "fixed".into(), ..Row::default() })) {
            for (name, value) in FIELDS.iter().zip([
                &row.product,
                &row.vendor,
                &row.ecosystem,
                &row.purl,
                &row.repository,
                &row.kind,
                &row.introduced,
                &row.end_kind,
                &row.end,
                &row.versions,
            ]) {
                pairs.push(((*name).to_owned(), value.clone()));
            }
        }
        assert_eq!(from_rows(&rows_from_pairs(&pairs), &old).unwrap(), old);
    }

    #[test]
    fn bad_rows_name_their_field() {
        let row = |product: &str, kind: &str, introduced: &str| Row {
            product: product.into(),
            kind: kind.into(),
            introduced: introduced.into(),
            end_kind: "fixed".into(),
            ..Row::default()
        };
        let err = from_rows(&[row("a", "SEMVER", "1"), row("", "SEMVER", "1")], &[]).unwrap_err();
        assert_eq!(err.field, "a_product#1");
        assert_eq!(from_rows(&[row("a", "GIT", "abc")], &[]).unwrap_err().field, "a_repository#0");
        assert_eq!(from_rows(&[row("a", "", "1")], &[]).unwrap_err().field, "a_kind#0");
        assert_eq!(from_rows(&[row("a", "BOGUS", "1")], &[]).unwrap_err().field, "a_kind#0");
        assert_eq!(from_rows(&[row("a", "SEMVER", "")], &[]).unwrap_err().field, "a_introduced#0");
        // Fixed without a start: from the beginning.
        let only_fixed = Row { end: "2.0".into(), ..row("a", "SEMVER", "") };
        let out = from_rows(&[only_fixed], &[]).unwrap();
        assert_eq!(out[0].ranges[0].events, vec![Event::Introduced("0".into()), Event::Fixed("2.0".into())]);
    }
}
