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

/// The advisory as Markdown, every section included. The fields authored in Markdown
/// (details, workarounds) are closed off: a code fence left open at the end of one is
/// closed there, so that it cannot swallow the sections after it.
pub fn to_markdown(record: &AdvisoryRecord, publisher: &Publisher) -> String {
    parts(record, publisher)
        .into_iter()
        .map(|part| match part {
            Part::Generated(md) => md,
            Part::Authored(md) => close_open_fence(&md),
        })
        .collect()
}

/// A piece of the advisory's Markdown: generated from the record (its text escaped), or a
/// field as its author wrote it in Markdown.
enum Part {
    Generated(String),
    Authored(String),
}

/// `md` with a closing fence appended when a fenced code block is still open at its end
/// (CommonMark: a fence is three or more backticks or tildes after at most three spaces; it
/// closes on a line of the same character, at least as long, with nothing after it).
fn close_open_fence(md: &str) -> String {
    let mut open: Option<(char, usize)> = None;
    for line in md.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let rest = &line[indent..];
        let Some(c) = rest.chars().next().filter(|c| matches!(c, '`' | '~')) else { continue };
        let run = rest.len() - rest.trim_start_matches(c).len();
        if run < 3 {
            continue;
        }
        match open {
            None if !(c == '`' && rest[run..].contains('`')) => open = Some((c, run)),
            Some((oc, olen)) if oc == c && run >= olen && rest[run..].trim().is_empty() => open = None,
            _ => {}
        }
    }
    match open {
        Some((c, len)) => format!("{md}\n{}\n", c.to_string().repeat(len)),
        None => md.to_owned(),
    }
}

fn parts(record: &AdvisoryRecord, publisher: &Publisher) -> Vec<Part> {
    let mut parts = Vec::new();
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
        md.push_str("## Details\n\n");
        parts.push(Part::Generated(std::mem::take(&mut md)));
        parts.push(Part::Authored(record.details.trim().to_owned()));
        md.push_str("\n\n");
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
        md.push_str("## Workarounds and mitigations\n\n");
        parts.push(Part::Generated(std::mem::take(&mut md)));
        parts.push(Part::Authored(record.workarounds.trim().to_owned()));
        md.push_str("\n\n");
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
    parts.push(Part::Generated(md));
    parts
}

/// The advisory as sanitised HTML (a fragment, no `<html>`).
pub fn to_html(record: &AdvisoryRecord, publisher: &Publisher) -> String {
    // Markdown as authored gets GitHub's extensions; the generated parts plain CommonMark:
    // their text is escaped, and the autolink extension would still turn a typed
    // `www.example.com` into a link and eat the escape of what follows it (found by the
    // `markdown` fuzz target: a typed `&` vanished from a title).
    let generated = comrak::Options::default();
    let mut options = comrak::Options::default();
    options.extension.autolink = true;
    options.extension.table = true;
    options.extension.strikethrough = true;
    // Each field authored in Markdown is rendered on its own, so that whatever block it
    // leaves open (a code fence, an HTML comment, `<pre>`) ends with it and never takes in
    // the sections after it.
    let html: String = parts(record, publisher)
        .iter()
        .map(|part| match part {
            Part::Generated(md) => comrak::markdown_to_html(md, &generated),
            Part::Authored(md) => comrak::markdown_to_html(md, &options),
        })
        .collect();
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
        for typed in [
            "---",
            "- item",
            "+ plus",
            "1. first",
            "2) second",
            "***",
            "a\rb",
            "= heading",
            "&copy; &#60;",
            "www.example.com&gt; <https://x>",
            "see https://example.org/a_b_",
        ] {
            let mut r = record();
            r.summary = typed.to_owned();
            r.title = typed.to_owned();
            let html = to_html(&r, &publisher);
            let shown: String = visible(&html).chars().filter(|c| !c.is_whitespace()).collect();
            let wanted: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(shown.matches(&wanted).count() >= 2, "{typed:?} is not shown twice as typed in {html}");
        }
    }

    /// Found by the `markdown` fuzz target: a code fence left open in the details took in
    /// every section after it (the workarounds heading and text were shown as code). Each
    /// field authored in Markdown ends its own blocks, in the HTML and in the Markdown.
    #[test]
    fn a_block_left_open_in_one_authored_field_does_not_swallow_the_next_sections() {
        let publisher: Publisher =
            serde_json::from_value(serde_json::json!({"name": "Example", "namespace": "https://example.com"})).unwrap();
        for open in ["```\ncode", "~~~~ rust\ncode\n~~~", "<!-- a comment", "<pre>\nraw", "    indented"] {
            let mut r = record();
            r.details = open.to_owned();
            r.workarounds = "Upgrade *now*.".to_owned();
            r.credits = serde_json::from_value(serde_json::json!([{ "name": "Ada" }])).unwrap();
            let html = to_html(&r, &publisher);
            assert!(html.contains("<h2>Workarounds and mitigations</h2>"), "{open:?}: {html}");
            assert!(html.contains("<em>now</em>"), "{open:?}: {html}");
            assert!(html.contains("<h2>Credits</h2>") && html.contains("Ada"), "{open:?}: {html}");
            assert!(html.contains("<h2>Revision history</h2>"), "{open:?}: {html}");
            let md = to_markdown(&r, &publisher);
            let rendered = comrak::markdown_to_html(&md, &comrak::Options::default());
            if open.starts_with('`') || open.starts_with('~') {
                assert!(rendered.contains("<h2>Workarounds and mitigations</h2>"), "{open:?}: {md}");
            }
        }
        assert_eq!(close_open_fence("```\na"), "```\na\n```\n");
        assert_eq!(close_open_fence("~~~~\na\n~~~"), "~~~~\na\n~~~\n~~~~\n");
        assert_eq!(close_open_fence("```\na\n```"), "```\na\n```");
        assert_eq!(close_open_fence("``` a`b\nc"), "``` a`b\nc", "not a fence: a backtick in its info string");
        assert_eq!(close_open_fence("    ```\na"), "    ```\na", "indented code, not a fence");
    }
}
