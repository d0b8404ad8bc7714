//! The human advisory's HTML (`embargo_advisory::markdown::to_html`: Markdown from the
//! record, comrak, ammonia). Text fields people type (title, summary, a credit's name, a
//! product) must come out with every character a reader can see, escaped, never stripped
//! nor turned into markup; the Markdown fields (details, workarounds) must never let
//! active content through the sanitiser.
#![no_main]

use embargo_advisory::markdown::to_html;
use embargo_advisory::{AdvisoryRecord, Publisher};
use embargo_fuzz::{first_missing, visible_text};
use libfuzzer_sys::fuzz_target;

const START: &str = "QQSTARTQQ";
const END: &str = "QQENDQQ";

fn base() -> AdvisoryRecord {
    serde_json::from_value(serde_json::json!({
        "id": "EMB-2026-0001",
        "title": "t",
        "modified": "2026-03-02T12:00:00Z",
    }))
    .expect("a minimal record")
}

fn publisher() -> Publisher {
    serde_json::from_value(serde_json::json!({"name": "Example", "namespace": "https://example.com"})).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    if input.contains("QQ") {
        return;
    }
    let marked = format!("{START}{input}{END}");
    let fields: [(&str, fn(&mut AdvisoryRecord, String)); 4] = [
        ("title", |r, s| r.title = s),
        ("summary", |r, s| r.summary = s),
        ("credit", |r, s| {
            r.credits = serde_json::from_value(serde_json::json!([{ "name": s }])).unwrap();
        }),
        ("product", |r, s| {
            r.affected = serde_json::from_value(serde_json::json!([{ "vendor": "v", "product": s }])).unwrap();
        }),
    ];
    for (name, set) in fields {
        let mut record = base();
        set(&mut record, marked.clone());
        let html = to_html(&record, &publisher());
        let text = visible_text(&html);
        let (Some(from), Some(to)) = (text.find(START), text.rfind(END)) else {
            panic!("{name}: the markers are gone from {html:?}");
        };
        let shown = &text[from + START.len()..to.max(from + START.len())];
        if let Some(c) = first_missing(input, shown) {
            panic!("{name}: {c:?} of {input:?} is missing from {html:?}");
        }
    }
    // Markdown as authored: whatever it holds, nothing active comes out.
    let mut record = base();
    record.details = input.to_owned();
    record.workarounds = input.to_owned();
    let html = to_html(&record, &publisher()).to_ascii_lowercase();
    // In the tags themselves (the text between them is escaped: `&lt;img` there is text).
    for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or(t)) {
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').find(|n| !n.is_empty()).unwrap_or("");
        assert!(
            !["script", "iframe", "img", "style", "object", "embed", "svg", "math"].contains(&name),
            "<{tag}> in {html:?}"
        );
        for attribute in tag.split_whitespace().skip(1) {
            assert!(!attribute.starts_with("on") && !attribute.starts_with("style="), "<{tag}>");
            if let Some(url) = attribute.strip_prefix("href=").or_else(|| attribute.strip_prefix("src=")) {
                assert!(!url.trim_start_matches('"').trim_start().starts_with("javascript:"), "<{tag}>");
            }
        }
    }
    // The sections after the Markdown fields are still there: an open block in one field
    // must not swallow them.
    assert!(html.contains("<h2>revision history</h2>"), "the revision history is gone: {html:?}");
});
