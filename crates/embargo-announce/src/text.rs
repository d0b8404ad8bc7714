//! Text rules shared by the renderers and the clients: how each channel counts a post's
//! length, the marker, escaping for Slack's mrkdwn, Markdown and YAML, truncation and
//! wrapping. Escaping never removes a character: hostile text is shown as it was written.

use unicode_segmentation::UnicodeSegmentation;

use crate::ChannelKind;

/// Stands for the advisory's public ID in a text rendered before the ID is given (public IDs
/// are given at publication): [`crate::render::fill`] replaces it. Escaping leaves it intact.
pub const ID_PLACEHOLDER: &str = "{advisory_id}";
/// Stands for the advisory's public URL, like [`ID_PLACEHOLDER`]. A URL given as
/// `https://host/advisories/{advisory_id}` is better: its length is then known.
pub const URL_PLACEHOLDER: &str = "{advisory_url}";
/// What [`ID_PLACEHOLDER`] counts as when a length is measured: 20 characters, more than a
/// public ID (`PREFIX-YYYY-NNNN`) takes.
const ID_SIZE: &str = "XXXXXXXXXX-0000-0000";
/// What [`URL_PLACEHOLDER`] counts as: a URL of 100 characters (23 on X and Mastodon).
const URL_SIZE: &str =
    "https://xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// What X counts a URL as, whatever its length (its `t.co` link).
pub const X_URL_LENGTH: usize = 23;
/// What Mastodon counts a URL as, whatever its length.
pub const MASTODON_URL_LENGTH: usize = 23;

/// The most a post may count on a channel (X: 280 weighted characters; Mastodon: 500;
/// Bluesky: 300 graphemes); `None` for channels without a limit we check.
pub fn limit(kind: ChannelKind) -> Option<usize> {
    match kind {
        ChannelKind::X => Some(280),
        ChannelKind::Mastodon => Some(500),
        ChannelKind::Bluesky => Some(300),
        _ => None,
    }
}

/// A text's length as `kind` counts it:
/// - X: twitter-text's weighted length (v3 configuration): a code point in the Latin,
///   general punctuation and similar ranges counts 1, any other 2 (CJK, emoji: an emoji
///   sequence counts more here than at X, so the count errs on the safe side), a URL 23;
/// - Mastodon: grapheme clusters, a URL 23;
/// - Bluesky: grapheme clusters (URLs in full);
/// - others: grapheme clusters.
///
/// The placeholders count as the longest value they stand for ([`ID_PLACEHOLDER`] 20
/// characters, [`URL_PLACEHOLDER`] a URL of 100), so a text that fits with them fits once
/// filled.
pub fn length(kind: ChannelKind, text: &str) -> usize {
    let sized;
    let text = if text.contains(ID_PLACEHOLDER) || text.contains(URL_PLACEHOLDER) {
        sized = text.replace(URL_PLACEHOLDER, URL_SIZE).replace(ID_PLACEHOLDER, ID_SIZE);
        sized.as_str()
    } else {
        text
    };
    match kind {
        ChannelKind::X => with_urls(text, X_URL_LENGTH, |s| s.chars().map(x_weight).sum()),
        ChannelKind::Mastodon => with_urls(text, MASTODON_URL_LENGTH, graphemes),
        _ => graphemes(text),
    }
}

/// The number of grapheme clusters (what a person sees as characters).
pub fn graphemes(text: &str) -> usize {
    text.graphemes(true).count()
}

fn x_weight(c: char) -> usize {
    match u32::from(c) {
        0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
        _ => 2,
    }
}

/// Counts `text` with every `http(s)://` URL as `url_length` and the rest with `count`.
fn with_urls(text: &str, url_length: usize, count: impl Fn(&str) -> usize) -> usize {
    let mut total = 0;
    let mut rest = text;
    while let Some((start, end)) = next_url(rest) {
        total += count(&rest[..start]) + url_length;
        rest = &rest[end..];
    }
    total + count(rest)
}

/// The byte range of the first `http://` or `https://` URL in `text`: up to whitespace,
/// without trailing punctuation.
pub fn next_url(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let found = text[from..].find("http")? + from;
        let tail = &text[found..];
        let starts_word = text[..found].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let scheme = if tail.starts_with("https://") {
            8
        } else if tail.starts_with("http://") {
            7
        } else {
            0
        };
        if scheme > 0 && starts_word {
            let mut end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            while end > scheme && tail[..end].ends_with(['.', ',', ';', ':', '!', '?', ')', '"', '\'']) {
                end -= 1;
            }
            if end > scheme {
                return Some((found, found + end));
            }
        }
        from = found + 4;
    }
}

/// Whether `marker` occurs in `text` as a whole word (not inside a longer ID such as
/// `EMB-2026-00010`).
pub fn contains_marker(text: &str, marker: &str) -> bool {
    if marker.is_empty() {
        return false;
    }
    let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(marker).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + marker.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Whether a text may be posted on `kind` for `marker`: the marker is in it, it fits the
/// channel's limit, and (Slack) it is a webhook payload, (blog) a Markdown file with front
/// matter. `Err` says what is wrong, for the preview and for the refusal.
pub fn check(kind: ChannelKind, marker: &str, text: &str) -> Result<(), String> {
    if !contains_marker(text, marker) {
        return Err(format!("the text does not contain the marker {marker}"));
    }
    if let Some(limit) = limit(kind) {
        let length = length(kind, text);
        if length > limit {
            return Err(format!("the text counts {length} on {kind}, more than its limit of {limit}"));
        }
    }
    match kind {
        ChannelKind::Slack => {
            let payload: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("the Slack payload is not JSON: {e}"))?;
            let fallback = payload.get("text").and_then(|t| t.as_str()).unwrap_or_default();
            if fallback.trim().is_empty() {
                return Err("the Slack payload has no `text` (the notification's fallback)".into());
            }
            if let Some(blocks) = payload.get("blocks") {
                let count = blocks.as_array().ok_or("the Slack payload's `blocks` is not a list")?.len();
                if count > 50 {
                    return Err(format!("the Slack payload has {count} blocks, more than 50"));
                }
            }
        }
        ChannelKind::Blog if !text.starts_with("---\n") || !text[4..].contains("\n---\n") => {
            return Err("the blog post has no YAML front matter (between `---` lines)".into());
        }
        ChannelKind::Bluesky if text.len() > 3000 => {
            return Err("the text is longer than Bluesky's 3000 bytes".into());
        }
        _ => {}
    }
    Ok(())
}

/// Escapes `&`, `<` and `>` for Slack's mrkdwn and plain_text fields (Slack's documented
/// escaping; `<!channel>`, `<@U…>` and links cannot be forged).
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Markdown (CommonMark, as Hugo's Goldmark reads it) so that it renders as
/// the same characters: no HTML, no links, no emphasis, no shortcodes (`{{<`), no block
/// structure from line starts (`#`, `-`, `+`, `=`, `:`, `1.`, `>`). Backslash escapes, so
/// every character stays. [`ID_PLACEHOLDER`] and [`URL_PLACEHOLDER`] are left as they are.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        out.push_str(&line[..indent]);
        let body = &line[indent..];
        // An ordered-list start (`12.` or `12)`): escape the delimiter.
        let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut i = 0;
        while let Some(c) = body[i..].chars().next() {
            // The placeholders stay as they are, for `render::fill`.
            if let Some(placeholder) = [ID_PLACEHOLDER, URL_PLACEHOLDER].into_iter().find(|p| body[i..].starts_with(p))
            {
                out.push_str(placeholder);
                i += placeholder.len();
                continue;
            }
            let at_start = i == 0;
            let escape = match c {
                '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$' => true,
                '#' | '-' | '+' | '=' | ':' => at_start,
                '.' | ')' => digits > 0 && i == digits && body[i + 1..].chars().next().is_none_or(char::is_whitespace),
                _ => false,
            };
            if escape {
                out.push('\\');
            }
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// [`markdown_escape`] on one line: line breaks and runs of white space become one space
/// (for a table cell or a heading).
pub fn markdown_escape_inline(text: &str) -> String {
    markdown_escape(&one_line(text))
}

/// Runs of white space (line breaks included) as one space, trimmed.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A YAML double-quoted scalar holding `text` exactly (front matter).
pub fn yaml_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` cut to at most `max` grapheme clusters, ending with `…` when cut, at a word
/// boundary when one is near the end.
pub fn truncate(text: &str, max: usize) -> String {
    if graphemes(text) <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = text.graphemes(true).take(max - 1).collect();
    let cut = match keep.rfind(char::is_whitespace) {
        Some(at) if graphemes(&keep[..at]) * 4 >= (max - 1) * 3 => keep[..at].to_owned(),
        _ => keep,
    };
    format!("{}…", cut.trim_end())
}

/// `text` wrapped at `width` columns (grapheme clusters): paragraphs and existing line breaks
/// kept, words longer than the width (URLs) left whole on their own line.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut column = 0;
        let mut first = true;
        for word in line.split_whitespace() {
            let w = graphemes(word);
            if first {
                out.push_str(&indent);
                out.push_str(word);
                column = indent.len() + w;
                first = false;
            } else if column + 1 + w > width {
                out.push('\n');
                out.push_str(&indent);
                out.push_str(word);
                column = indent.len() + w;
            } else {
                out.push(' ');
                out.push_str(word);
                column += 1 + w;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_counts_urls_as_23_and_cjk_as_two() {
        assert_eq!(length(ChannelKind::X, "abc https://example.org/a/very/long/path/indeed"), 4 + 23);
        assert_eq!(length(ChannelKind::X, "日本"), 4);
        assert_eq!(length(ChannelKind::X, "see https://example.org."), 4 + 23 + 1);
        assert_eq!(length(ChannelKind::Mastodon, "é https://example.org/x"), 2 + 23);
        // A combining sequence is one grapheme on Bluesky.
        assert_eq!(length(ChannelKind::Bluesky, "e\u{301}"), 1);
    }

    #[test]
    fn the_marker_is_a_whole_word() {
        assert!(contains_marker("see EMB-2026-0001.", "EMB-2026-0001"));
        assert!(contains_marker("[EMB-2026-0001]", "EMB-2026-0001"));
        assert!(!contains_marker("EMB-2026-00010", "EMB-2026-0001"));
        assert!(!contains_marker("XEMB-2026-0001", "EMB-2026-0001"));
        assert!(!contains_marker("nothing", ""));
    }

    #[test]
    fn markdown_escaping_keeps_every_character() {
        let hostile = "<script>alert(1)</script> *x* [a](javascript:y) {{< shortcode >}} & `c` | ~";
        let escaped = markdown_escape(hostile);
        // Every `<` and `{` is escaped.
        assert!(escaped.match_indices(['<', '{']).all(|(at, _)| escaped[..at].ends_with('\\')), "{escaped}");
        let unescaped: String = {
            let mut out = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.extend(chars.next());
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(unescaped, hostile);
        assert_eq!(markdown_escape("# a\n- b\n1. c\nd - e\n2.4"), "\\# a\n\\- b\n1\\. c\nd - e\n2.4");
    }

    #[test]
    fn placeholders_survive_escaping_and_count_as_their_longest_value() {
        assert_eq!(
            markdown_escape("see {advisory_url} for {advisory_id} {x}"),
            "see {advisory_url} for {advisory_id} \\{x\\}"
        );
        assert_eq!(slack_escape("{advisory_id}"), "{advisory_id}");
        assert_eq!(length(ChannelKind::X, "a {advisory_url}"), 2 + 23);
        assert_eq!(length(ChannelKind::Bluesky, "a {advisory_url}"), 2 + 100);
        assert_eq!(length(ChannelKind::Bluesky, "{advisory_id}"), 20);
        assert!(contains_marker("{advisory_id}: x", ID_PLACEHOLDER));
    }

    #[test]
    fn yaml_and_slack_escaping() {
        assert_eq!(yaml_quote("a \"b\" \\ c\nd"), r#""a \"b\" \\ c\nd""#);
        assert_eq!(slack_escape("<!channel> & <@U1>"), "&lt;!channel&gt; &amp; &lt;@U1&gt;");
    }

    #[test]
    fn truncation_and_wrapping() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("one two three four five six", 12);
        assert!(graphemes(&cut) <= 12 && cut.ends_with('…'), "{cut}");
        let wrapped = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(wrapped, "aaa bbb\nccc ddd");
        assert!(wrap(&"x".repeat(100), 72).lines().count() == 1);
    }
}
