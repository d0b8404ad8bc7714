//! The human advisory: Markdown, and HTML rendered from it (comrak, raw HTML dropped, then
//! ammonia's allow-list).

use std::fmt::Write;

use crate::record::{AdvisoryRecord, Event, Publisher, RangeKind, utc};

/// Escapes text for Markdown so that names and versions typed by people cannot add markup:
/// the characters of inline markup are backslash-escaped everywhere (`&` too: `&lt;` typed
/// is text, not the character it names), and so is the punctuation that would begin a block
/// at the start (`- `, `+ `, `1. `, `2) `, `---`), while line breaks (`\n`, `\r`) become
/// spaces, so that nothing starts a block of its own. Escaped, never stripped: every
/// character shows as typed.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Only spaces and digits so far: punctuation here could still open a block.
    let mut at_start = true;
    for c in s.chars() {
        let inline = matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' | '~' | '&');
        if inline || (at_start && c.is_ascii_punctuation()) {
            out.push('\\');
        }
        if !(c.is_whitespace() || c.is_ascii_digit()) {
            at_start = false;
        }
        out.push(if matches!(c, '\n' | '\r') { ' ' } else { c });
    }
    out
}

fn range_text(kind: RangeKind, events: &[&Event]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Introduced(v) if v == "0" => "from the first version".to_owned(),
            Event::Introduced(v) => format!("from {}", text(v)),
            Event::Fixed(v) => format!("fixed in {}", text(v)),
            Event::LastAffected(v) => format!("up to and including {}", text(v)),
            Event::Limit(v) => format!("up to {}", text(v)),
        })
        .collect();
    let kind = match kind {
        RangeKind::Semver => "versions",
        RangeKind::Ecosystem => "versions",
        RangeKind::Git => "commits",
    };
    format!("{kind} {}", parts.join(", "))
}

/// The advisory as Markdown, every section included.
pub fn to_markdown(record: &AdvisoryRecord, publisher: &Publisher) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", text(&record.title));
    let mut ids = vec![record.id.to_string()];
    ids.extend(record.cve_id.iter().cloned());
    ids.extend(record.aliases.iter().cloned());
    let _ = writeln!(md, "- **Identifiers:** {}", ids.iter().map(|i| text(i)).collect::<Vec<_>>().join(", "));
    let _ = writeln!(md, "- **Publisher:** {}", text(&publisher.name));
    if let Some(published) = record.published {
        let _ = writeln!(md, "- **Published:** {}", utc(published));
    }
    let _ = writeln!(md, "- **Last updated:** {}", utc(record.modified));
    if let Some(withdrawn) = record.withdrawn {
        let _ = writeln!(md, "- **Withdrawn:** {}", utc(withdrawn));
    }
    for v in record.severity.vectors() {
        let _ = writeln!(md, "- **CVSS {}:** {} ({}) `{v}`", v.version(), v.score(), v.severity());
    }
    if !record.weaknesses.is_empty() {
        let list: Vec<String> = record
            .weaknesses
            .iter()
            .map(|w| w.name.as_ref().map_or_else(|| text(&w.id), |n| format!("{} ({})", text(&w.id), text(n))))
            .collect();
        let _ = writeln!(md, "- **Weaknesses:** {}", list.join(", "));
    }
    md.push('\n');
    if record.withdrawn.is_some() {
        let _ = writeln!(md, "## Withdrawn\n\n{}\n", text(&record.withdrawal_text()));
    }
    if !record.summary.trim().is_empty() {
        let _ = writeln!(md, "## Summary\n\n{}\n", text(record.summary.trim()));
    }
    if !record.details.trim().is_empty() {
        let _ = writeln!(md, "## Details\n\n{}\n", record.details.trim());
    }
    if !record.affected.is_empty() {
        md.push_str("## Affected products\n\n");
        for a in &record.affected {
            let mut line = format!("- **{}** by {}", text(&a.product), text(&a.vendor));
            if let Some(e) = &a.ecosystem {
                let _ = write!(line, " ({})", text(e));
            }
            let mut what: Vec<String> = a.ranges.iter().map(|r| range_text(r.kind, &r.sorted_events())).collect();
            if !a.versions.is_empty() {
                what.push(format!("versions {}", a.versions.iter().map(|v| text(v)).collect::<Vec<_>>().join(", ")));
            }
            if what.is_empty() {
                what.push("all versions".into());
            }
            let _ = writeln!(md, "{line}: {}", what.join("; "));
            if let Some(repo) = &a.repository {
                let _ = writeln!(md, "  - Repository: <{}>", repo.replace('>', "%3E"));
            }
        }
        md.push('\n');
    }
    if !record.workarounds.trim().is_empty() {
        let _ = writeln!(md, "## Workarounds and mitigations\n\n{}\n", record.workarounds.trim());
    }
    if !record.credits.is_empty() {
        md.push_str("## Credits\n\n");
        for c in &record.credits {
            match c.kind {
                Some(kind) => {
                    let _ = writeln!(md, "- {} ({})", text(&c.name), kind.words());
                }
                None => {
                    let _ = writeln!(md, "- {}", text(&c.name));
                }
            }
        }
        md.push('\n');
    }
    if !record.references.is_empty() {
        md.push_str("## References\n\n");
        for r in &record.references {
            let _ = writeln!(md, "- {}: <{}>", r.kind.label(), r.url.replace('>', "%3E"));
        }
        md.push('\n');
    }
    let history = record.revision_history();
    md.push_str("## Revision history\n\n");
    for r in &history {
        let _ = writeln!(md, "- {} ({}): {}", r.number, utc(r.date), text(&r.summary));
    }
    md
}

/// The advisory as sanitised HTML (a fragment, no `<html>`).
pub fn to_html(record: &AdvisoryRecord, publisher: &Publisher) -> String {
    let mut options = comrak::Options::default();
    options.extension.autolink = true;
    options.extension.table = true;
    options.extension.strikethrough = true;
    let html = comrak::markdown_to_html(&to_markdown(record, publisher), &options);
    ammonia::Builder::default().rm_tags(["img"]).link_rel(Some("noopener noreferrer nofollow")).clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reader sees: tags dropped, the character references ammonia writes decoded.
    fn visible(html: &str) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
    }

    fn record() -> AdvisoryRecord {
        serde_json::from_value(serde_json::json!({
            "id": "EMB-2026-0001", "title": "t", "modified": "2026-03-02T12:00:00Z",
        }))
        .unwrap()
    }

    /// Issue 17 (fuzzing, the `markdown` target's property): a summary or title that begins
    /// like a Markdown block (a list item, a thematic break, a numbered item) lost those
    /// characters to the markup. Every character typed must show, escaped.
    #[test]
    fn typed_text_that_looks_like_markdown_blocks_shows_as_typed() {
        let publisher: Publisher =
            serde_json::from_value(serde_json::json!({"name": "Example", "namespace": "https://example.com"})).unwrap();
        for typed in ["---", "- item", "+ plus", "1. first", "2) second", "***", "a\rb", "= heading", "&copy; &#60;"] {
            let mut r = record();
            r.summary = typed.to_owned();
            r.title = typed.to_owned();
            let html = to_html(&r, &publisher);
            let shown: String = visible(&html).chars().filter(|c| !c.is_whitespace()).collect();
            let wanted: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(shown.matches(&wanted).count() >= 2, "{typed:?} is not shown twice as typed in {html}");
        }
    }
}
