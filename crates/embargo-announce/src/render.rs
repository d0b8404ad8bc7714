//! The default text of every channel, rendered from an [`Announcement`]: pure functions. The
//! team previews and may edit these texts before arming; the clients post what was approved.
//!
//! Every text contains the advisory's public ID (the marker) and the mitigation (the
//! advisory's `workarounds`). The advisory is written by people from a reporter's text, so
//! every field is escaped for its format ([`crate::text`]): Slack's mrkdwn, Markdown and YAML
//! for the Hugo post. Nothing is stripped. The short posts (X, Mastodon, Bluesky) are plain
//! text that fits the channel's limit: the title and the mitigation are shortened with `…`
//! when needed, the marker and the advisory's URL never.
//!
//! Public IDs are given at publication (ADR 23), after the texts are approved: the caller
//! renders with `advisory_id` = [`ID_PLACEHOLDER`] (`{advisory_id}`) and `url` =
//! `https://…/advisories/{advisory_id}` (or [`URL_PLACEHOLDER`]), the team approves the text
//! with the placeholders, and [`fill`] puts the ID and URL in at posting time. Escaping keeps
//! the placeholders intact, and lengths count them as their longest value
//! ([`crate::text::length`]), so a text that fits with them fits once filled.

use serde_json::{Value, json};

use crate::ChannelKind;
use crate::text::{
    self, graphemes, markdown_escape, markdown_escape_inline, one_line, slack_escape, truncate, wrap, yaml_quote,
};
pub use crate::text::{ID_PLACEHOLDER, URL_PLACEHOLDER};

/// What an announcement says: plain data from the advisory (identifiers and text, no
/// formatting).
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// The advisory's public ID, such as `EMB-2026-0001`: the marker of every message.
    pub advisory_id: String,
    /// Its CVE IDs (may be empty).
    pub cve_ids: Vec<String>,
    /// The title.
    pub title: String,
    /// The summary (paragraphs separated by blank lines).
    pub summary: String,
    /// The severity's name, such as `High` (`None` when not rated).
    pub severity: Option<String>,
    /// The CVSS base score.
    pub cvss_score: Option<f64>,
    /// The CVSS vector, such as `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`.
    pub cvss_vector: Option<String>,
    /// What is affected and what fixes it, per product and release line.
    pub affected: Vec<Affected>,
    /// The mitigations (the advisory's `workarounds`), in every message.
    pub workarounds: String,
    /// The advisory's public URL.
    pub url: String,
    /// The people credited.
    pub credits: Vec<String>,
    /// Further references (URLs).
    pub references: Vec<String>,
    /// The disclosure instant (the blog post's date).
    pub published: jiff::Timestamp,
}

/// One product's release line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The product's name.
    pub product: String,
    /// The release line, such as `2.4`.
    pub release_line: String,
    /// The affected versions, such as `>= 2.4.0, < 2.4.7`.
    pub affected: String,
    /// The first fixed version, when there is one.
    pub fixed: Option<String>,
}

/// The blog post: the file's path in the site's repository and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlogPost {
    /// `content/posts/<slug>.md` (see [`blog_path`]).
    pub path: String,
    /// The Markdown file, YAML front matter first.
    pub text: String,
}

/// The mailing-list mail (oss-security style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// One line.
    pub subject: String,
    /// Plain text wrapped at 72 columns (URLs longer than that stay whole).
    pub body: String,
}

/// Every channel's default text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The Slack webhook's JSON payload (`text` fallback and Block Kit `blocks`).
    pub slack: String,
    /// The X post.
    pub x: String,
    /// The Mastodon status.
    pub mastodon: String,
    /// The Bluesky post.
    pub bluesky: String,
    /// The blog post.
    pub blog: BlogPost,
    /// The mailing-list mail.
    pub mail: Mail,
}

impl Rendered {
    /// The text a [`crate::Channel`] of `kind` posts (the blog's whole file); `None` for the
    /// mail, which has a subject and a body.
    pub fn text(&self, kind: ChannelKind) -> Option<&str> {
        match kind {
            ChannelKind::Slack => Some(&self.slack),
            ChannelKind::X => Some(&self.x),
            ChannelKind::Mastodon => Some(&self.mastodon),
            ChannelKind::Bluesky => Some(&self.bluesky),
            ChannelKind::Blog => Some(&self.blog.text),
            ChannelKind::Mail => None,
        }
    }
}

/// Every channel's default text.
pub fn render(a: &Announcement) -> Rendered {
    Rendered { slack: slack(a), x: x(a), mastodon: mastodon(a), bluesky: bluesky(a), blog: blog(a), mail: mail(a) }
}

/// `text` with [`ID_PLACEHOLDER`] and [`URL_PLACEHOLDER`] replaced by the advisory's public
/// ID and URL (the URL's own placeholder too).
pub fn fill(text: &str, advisory_id: &str, url: &str) -> String {
    text.replace(URL_PLACEHOLDER, &url.replace(ID_PLACEHOLDER, advisory_id)).replace(ID_PLACEHOLDER, advisory_id)
}

/// The blog post's path for a marker: `content/posts/<marker in lower case>.md` (characters
/// other than letters, digits and `-` become `-`).
pub fn blog_path(marker: &str) -> String {
    let slug: String = marker
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("content/posts/{slug}.md")
}

fn cve_list(a: &Announcement) -> String {
    a.cve_ids.join(", ")
}

/// `High (CVSS 8.1)`, `High`, `CVSS 8.1`, or `None`.
fn severity_line(a: &Announcement) -> Option<String> {
    let score = a.cvss_score.map(|s| format!("CVSS {s:.1}"));
    match (&a.severity, score) {
        (Some(severity), Some(score)) => Some(format!("{} ({score})", one_line(severity))),
        (Some(severity), None) => Some(one_line(severity)),
        (None, Some(score)) => Some(score),
        (None, None) => None,
    }
}

/// The plain short post of X, Mastodon and Bluesky, fitted to `kind`'s limit.
fn short_post(a: &Announcement, kind: ChannelKind) -> String {
    let limit = text::limit(kind).unwrap_or(usize::MAX);
    let cves = match a.cve_ids.len() {
        0 => String::new(),
        1 | 2 => format!(" ({})", cve_list(a)),
        n => format!(" ({} +{})", a.cve_ids[0], n - 1),
    };
    let title = one_line(&a.title);
    let mitigation = one_line(&a.workarounds);
    let url = a.url.trim();
    let compose = |title: &str, severity: bool, mitigation: &str| {
        let mut out = format!("{}{cves}: {title}\n", a.advisory_id);
        if severity && let Some(line) = severity_line(a) {
            out.push_str(&format!("Severity: {line}\n"));
        }
        out.push_str(&format!("Mitigation: {mitigation}\n{url}"));
        out
    };
    let fits = |text: &str| text::length(kind, text) <= limit;
    let full = compose(&title, true, &mitigation);
    if fits(&full) {
        return full;
    }
    // Shorten the mitigation first (it is on the advisory's page in full), then the title,
    // then drop the severity line.
    for (title_max, severity, mitigation_min) in
        [(usize::MAX, true, 60), (60, true, 40), (40, true, 20), (30, false, 20), (20, false, 0)]
    {
        let title = truncate(&title, title_max);
        let (mut low, mut high) = (0, graphemes(&mitigation));
        if !fits(&compose(&title, severity, &truncate(&mitigation, low))) {
            continue;
        }
        while low < high {
            let mid = (low + high).div_ceil(2);
            if fits(&compose(&title, severity, &truncate(&mitigation, mid))) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        if low >= mitigation_min.min(graphemes(&mitigation)) {
            return compose(&title, severity, &truncate(&mitigation, low));
        }
    }
    // Only when the marker and the URL alone exceed the limit.
    compose("", false, "")
}

/// The X post (at most 280 weighted characters, a URL counting 23).
pub fn x(a: &Announcement) -> String {
    short_post(a, ChannelKind::X)
}

/// The Mastodon status (at most 500 characters, a URL counting 23).
pub fn mastodon(a: &Announcement) -> String {
    short_post(a, ChannelKind::Mastodon)
}

/// The Bluesky post (at most 300 graphemes).
pub fn bluesky(a: &Announcement) -> String {
    short_post(a, ChannelKind::Bluesky)
}

/// `text` escaped for mrkdwn and cut so that the escaped text is at most `max` characters.
fn slack_field(text: &str, max: usize) -> String {
    let mut n = max;
    loop {
        let escaped = slack_escape(&truncate(text, n));
        if escaped.chars().count() <= max || n == 0 {
            return escaped;
        }
        n = n * 9 / 10;
    }
}

/// The Slack incoming webhook's payload: a `text` fallback (notifications) and Block Kit
/// `blocks`: a header, the severity and CVEs, the summary, the affected and fixed versions,
/// the mitigation, credits and a link to the advisory. Every mrkdwn field is escaped.
pub fn slack(a: &Announcement) -> String {
    let id = &a.advisory_id;
    let mut blocks: Vec<Value> = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": slack_field(&format!("{id}: {}", one_line(&a.title)), 150), "emoji": false}
    })];
    let mut facts = Vec::new();
    if let Some(line) = severity_line(a) {
        facts.push(format!("*Severity:* {}", slack_escape(&line)));
    }
    if !a.cve_ids.is_empty() {
        facts.push(format!("*CVE:* {}", slack_escape(&cve_list(a))));
    }
    if let Some(vector) = &a.cvss_vector {
        facts.push(format!("*Vector:* {}", slack_escape(&one_line(vector))));
    }
    if !facts.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": facts.join("\n")}}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Summary*\n{}", slack_field(&a.summary, 2900))}}));
    if !a.affected.is_empty() {
        let lines: Vec<String> = a
            .affected
            .iter()
            .map(|row| {
                let fixed =
                    row.fixed.as_deref().map(|f| format!("fixed in {f}")).unwrap_or_else(|| "no fix yet".into());
                format!(
                    "• {} {}: {} ({fixed})",
                    one_line(&row.product),
                    one_line(&row.release_line),
                    one_line(&row.affected)
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Affected*\n{}", slack_field(&lines.join("\n"), 2900))}}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Mitigation*\n{}", slack_field(&a.workarounds, 2900))}}));
    if !a.credits.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Credits: {}", slack_field(&a.credits.join(", "), 2000))}]}));
    }
    let url = slack_escape(a.url.trim()).replace('|', "%7C");
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{url}|Read advisory {}>", slack_escape(id))}}));
    let fallback = format!(
        "{id}: {} — Mitigation: {} {}",
        slack_escape(&one_line(&a.title)),
        slack_field(&one_line(&a.workarounds), 1000),
        slack_escape(a.url.trim())
    );
    let payload = json!({"text": fallback, "blocks": blocks});
    serde_json::to_string_pretty(&payload).unwrap_or_default()
}

/// The blog post: YAML front matter (`title`, `date`, `tags`, `draft: false`) and a Markdown
/// body (summary, an affected/fixed table, mitigations, credits, references), every field
/// escaped so that Hugo renders its characters and no HTML of its own.
pub fn blog(a: &Announcement) -> BlogPost {
    let id = &a.advisory_id;
    let mut tags = vec!["security".to_owned(), "advisory".to_owned(), id.clone()];
    tags.extend(a.cve_ids.iter().cloned());
    let tags: Vec<String> = tags.iter().map(|t| yaml_quote(t)).collect();
    let mut out = String::new();
    out.push_str("---\n");
    out.push_str(&format!("title: {}\n", yaml_quote(&format!("{id}: {}", one_line(&a.title)))));
    out.push_str(&format!("date: {}\n", a.published.strftime("%Y-%m-%dT%H:%M:%SZ")));
    out.push_str(&format!("tags: [{}]\n", tags.join(", ")));
    out.push_str("draft: false\n");
    out.push_str("---\n\n");
    let mut facts = vec![format!("**{}**", markdown_escape_inline(id))];
    if !a.cve_ids.is_empty() {
        facts.push(markdown_escape_inline(&cve_list(a)));
    }
    if let Some(line) = severity_line(a) {
        facts.push(format!("Severity: {}", markdown_escape_inline(&line)));
    }
    out.push_str(&facts.join(" · "));
    out.push_str("\n\n");
    if let Some(vector) = &a.cvss_vector {
        out.push_str(&format!("CVSS vector: {}\n\n", markdown_escape_inline(vector)));
    }
    out.push_str("## Summary\n\n");
    out.push_str(markdown_escape(a.summary.trim()).trim_end());
    out.push_str("\n\n");
    if !a.affected.is_empty() {
        out.push_str("## Affected and fixed versions\n\n");
        out.push_str("| Product | Release line | Affected | Fixed in |\n|---|---|---|---|\n");
        for row in &a.affected {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                markdown_escape_inline(&row.product),
                markdown_escape_inline(&row.release_line),
                markdown_escape_inline(&row.affected),
                row.fixed.as_deref().map(markdown_escape_inline).unwrap_or_else(|| "no fix yet".into()),
            ));
        }
        out.push('\n');
    }
    out.push_str("## Mitigations\n\n");
    out.push_str(markdown_escape(a.workarounds.trim()).trim_end());
    out.push_str("\n\n");
    if !a.credits.is_empty() {
        out.push_str("## Credits\n\n");
        for credit in &a.credits {
            out.push_str(&format!("- {}\n", markdown_escape_inline(credit)));
        }
        out.push('\n');
    }
    out.push_str("## References\n\n");
    out.push_str(&format!("- {}\n", markdown_escape_inline(&a.url)));
    for cve in &a.cve_ids {
        out.push_str(&format!("- https://www.cve.org/CVERecord?id={}\n", markdown_escape_inline(cve)));
    }
    for reference in &a.references {
        out.push_str(&format!("- {}\n", markdown_escape_inline(reference)));
    }
    BlogPost { path: blog_path(id), text: out }
}

fn section(out: &mut String, heading: &str, body: &str) {
    let body = body.trim_start_matches(['\n', '\r']).trim_end();
    out.push_str(&format!("\n{heading}\n{}\n{}\n", "-".repeat(heading.chars().count()), wrap(body, 72)));
}

/// The mailing-list mail: an oss-security-style plain text, wrapped at 72 columns.
pub fn mail(a: &Announcement) -> Mail {
    let id = &a.advisory_id;
    let mut subject = format!("[{id}] {}", one_line(&a.title));
    if !a.cve_ids.is_empty() {
        subject.push_str(&format!(" ({})", cve_list(a)));
    }
    let mut head = format!("{id}: {}\n", one_line(&a.title));
    if !a.cve_ids.is_empty() {
        head.push_str(&format!("CVE: {}\n", cve_list(a)));
    }
    if let Some(line) = severity_line(a) {
        head.push_str(&format!("Severity: {line}\n"));
    }
    if let Some(vector) = &a.cvss_vector {
        head.push_str(&format!("CVSS vector: {}\n", one_line(vector)));
    }
    head.push_str(&format!("Published: {}\n", a.published.strftime("%Y-%m-%d %H:%M UTC")));
    head.push_str(&format!("Advisory: {}\n", a.url.trim()));
    let mut out = wrap(&head, 72);
    section(&mut out, "Summary", &a.summary);
    if !a.affected.is_empty() {
        let rows: Vec<String> = a
            .affected
            .iter()
            .map(|row| {
                let fixed = row
                    .fixed
                    .as_deref()
                    .map(|f| format!("fixed in {}", one_line(f)))
                    .unwrap_or_else(|| "no fix yet".into());
                format!(
                    "  {} {}: {}; {fixed}",
                    one_line(&row.product),
                    one_line(&row.release_line),
                    one_line(&row.affected)
                )
            })
            .collect();
        section(&mut out, "Affected versions", &rows.join("\n"));
    }
    section(&mut out, "Mitigation", &a.workarounds);
    if !a.credits.is_empty() {
        section(&mut out, "Credits", &a.credits.join(", "));
    }
    let mut references = vec![a.url.trim().to_owned()];
    references.extend(a.cve_ids.iter().map(|cve| format!("https://www.cve.org/CVERecord?id={cve}")));
    references.extend(a.references.iter().cloned());
    section(&mut out, "References", &references.join("\n"));
    Mail { subject, body: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{check, contains_marker, length};

    fn announcement() -> Announcement {
        Announcement {
            advisory_id: "EMB-2026-0001".into(),
            cve_ids: vec!["CVE-2026-12345".into()],
            title: "Heap overflow in the <b>parser</b> & friends".into(),
            summary: "A crafted *document* makes the parser write past its buffer.\n\nSee <script>alert(1)</script>."
                .into(),
            severity: Some("High".into()),
            cvss_score: Some(8.1),
            cvss_vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:N".into()),
            affected: vec![Affected {
                product: "widget|server".into(),
                release_line: "2.4".into(),
                affected: ">= 2.4.0, < 2.4.7".into(),
                fixed: Some("2.4.7".into()),
            }],
            workarounds: "Set `parser.strict = true` and block <!channel> & {{< shortcode >}} until upgraded.".into(),
            url: "https://security.example.org/advisories/EMB-2026-0001".into(),
            credits: vec!["Ada <ada@example.org>".into()],
            references: vec!["https://example.org/commit/abc".into()],
            published: "2026-12-05T14:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn every_text_has_the_marker_and_the_mitigation_and_passes_its_check() {
        let a = announcement();
        let r = render(&a);
        for kind in [ChannelKind::Slack, ChannelKind::X, ChannelKind::Mastodon, ChannelKind::Bluesky, ChannelKind::Blog]
        {
            let text = r.text(kind).unwrap();
            check(kind, &a.advisory_id, text).unwrap_or_else(|e| panic!("{kind}: {e}\n{text}"));
            assert!(text.contains("parser.strict"), "{kind} lacks the mitigation:\n{text}");
        }
        assert!(contains_marker(&r.mail.subject, &a.advisory_id) && contains_marker(&r.mail.body, &a.advisory_id));
        assert!(r.mail.body.contains("parser.strict"));
    }

    #[test]
    fn texts_rendered_with_placeholders_fit_and_pass_once_filled() {
        let mut a = announcement();
        a.advisory_id = ID_PLACEHOLDER.into();
        a.url = format!("https://security.example.org/advisories/{ID_PLACEHOLDER}");
        a.workarounds = "Disable the parser's strict mode <now> & upgrade. ".repeat(20);
        let r = render(&a);
        for kind in [ChannelKind::Slack, ChannelKind::X, ChannelKind::Mastodon, ChannelKind::Bluesky, ChannelKind::Blog]
        {
            let text = r.text(kind).unwrap();
            check(kind, ID_PLACEHOLDER, text).unwrap_or_else(|e| panic!("{kind}: {e}\n{text}"));
            let filled = fill(text, "EMBARGO-2026-12345", &a.url);
            check(kind, "EMBARGO-2026-12345", &filled).unwrap_or_else(|e| panic!("{kind}: {e}\n{filled}"));
            assert!(!filled.contains(ID_PLACEHOLDER) && !filled.contains(URL_PLACEHOLDER), "{kind}: {filled}");
            assert!(filled.contains("https://security.example.org/advisories/EMBARGO-2026-12345"), "{kind}: {filled}");
        }
        let blog = fill(&r.blog.text, "EMB-2026-0001", &a.url);
        assert!(blog.starts_with("---\ntitle: \"EMB-2026-0001: Heap overflow"), "{blog}");
        assert!(blog.contains("- https://security.example.org/advisories/EMB-2026-0001\n"), "{blog}");
        let mail = fill(&r.mail.body, "EMB-2026-0001", URL_PLACEHOLDER);
        assert!(mail.starts_with("EMB-2026-0001: Heap"), "{mail}");
        assert_eq!(fill("{advisory_url}", "EMB-1", "https://h/a/{advisory_id}"), "https://h/a/EMB-1");
    }

    #[test]
    fn short_posts_fit_their_limits_keeping_marker_and_url() {
        let mut a = announcement();
        a.workarounds = "Disable the feature. ".repeat(60);
        a.title = "A very long title ".repeat(20);
        a.cve_ids = (0..5).map(|n| format!("CVE-2026-1000{n}")).collect();
        for (kind, post) in
            [(ChannelKind::X, x(&a)), (ChannelKind::Mastodon, mastodon(&a)), (ChannelKind::Bluesky, bluesky(&a))]
        {
            let limit = text::limit(kind).unwrap();
            assert!(length(kind, &post) <= limit, "{kind}: {} > {limit}\n{post}", length(kind, &post));
            assert!(length(kind, &post) > limit - 30, "{kind} wastes room:\n{post}");
            assert!(post.ends_with(&a.url), "{kind}: {post}");
            assert!(contains_marker(&post, "EMB-2026-0001"));
            assert!(post.contains("Mitigation: Disable the feature.") && post.contains('…'), "{kind}: {post}");
        }
        // A short announcement is not cut.
        let short = x(&announcement());
        assert!(!short.contains('…') && short.contains(&announcement().workarounds), "{short}");
    }

    #[test]
    fn x_counts_cjk_double_and_urls_as_23() {
        let mut a = announcement();
        a.workarounds = "設定を変更してください。".repeat(30);
        a.url = format!("https://security.example.org/{}", "a".repeat(200));
        let post = x(&a);
        assert!(length(ChannelKind::X, &post) <= 280);
        assert!(post.ends_with(&a.url));
        assert!(post.contains("設定"));
    }

    #[test]
    fn slack_escapes_mrkdwn_and_keeps_the_characters() {
        let payload: Value = serde_json::from_str(&slack(&announcement())).unwrap();
        let all = payload.to_string();
        assert!(!all.contains("<!channel>") && !all.contains("<b>"), "{all}");
        assert!(all.contains("&lt;!channel&gt; &amp; {{&lt; shortcode &gt;}}"), "{all}");
        assert!(payload["text"].as_str().unwrap().contains("EMB-2026-0001"));
        assert!(all.contains("<https://security.example.org/advisories/EMB-2026-0001|Read advisory EMB-2026-0001>"));
    }

    #[test]
    fn the_blog_post_escapes_markdown_and_front_matter() {
        let mut a = announcement();
        a.title = "Quote \" and backslash \\ and\nnewline: --- ".into();
        let post = blog(&a);
        assert_eq!(post.path, "content/posts/emb-2026-0001.md");
        let text = &post.text;
        assert!(
            text.starts_with("---\ntitle: \"EMB-2026-0001: Quote \\\" and backslash \\\\ and newline: ---\"\n"),
            "{text}"
        );
        assert!(text.contains("\ndate: 2026-12-05T14:00:00Z\n") && text.contains("\ndraft: false\n---\n"), "{text}");
        assert!(text.contains("tags: [\"security\", \"advisory\", \"EMB-2026-0001\", \"CVE-2026-12345\"]"));
        assert!(text.contains("\\<script\\>alert(1)\\</script\\>"), "{text}");
        assert!(text.contains("| widget\\|server | 2.4 |"), "{text}");
        assert!(text.contains("\\{\\{\\< shortcode \\>\\}\\}"), "{text}");
        assert!(!text.contains("{{<"));
    }

    #[test]
    fn the_mail_is_wrapped_at_72_columns() {
        let mut a = announcement();
        a.summary = "word ".repeat(100);
        let m = mail(&a);
        assert_eq!(m.subject, "[EMB-2026-0001] Heap overflow in the <b>parser</b> & friends (CVE-2026-12345)");
        for line in m.body.lines() {
            assert!(graphemes(line) <= 72 || !line.trim().contains(' '), "{line:?}");
        }
        assert!(m.body.contains("\nMitigation\n----------\nSet `parser.strict = true`"), "{}", m.body);
        assert!(
            m.body.contains("\n-----------------\n  widget|server 2.4: >= 2.4.0, < 2.4.7; fixed in 2.4.7\n"),
            "{}",
            m.body
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn short_posts_always_fit_with_marker_mitigation_and_url(
            title in "[\\PC\n]{0,300}",
            workarounds in "[\\PC\n]{1,900}",
            cves in 0usize..5,
        ) {
            let mut a = announcement();
            a.title = title;
            a.workarounds = workarounds;
            a.cve_ids = (0..cves).map(|n| format!("CVE-2026-{n:05}")).collect();
            for (kind, post) in [(ChannelKind::X, x(&a)), (ChannelKind::Mastodon, mastodon(&a)), (ChannelKind::Bluesky, bluesky(&a))] {
                proptest::prop_assert!(check(kind, &a.advisory_id, &post).is_ok(), "{}: {}", kind, post);
                proptest::prop_assert!(post.ends_with(&a.url));
                proptest::prop_assert!(post.contains("\nMitigation: "));
            }
            // Rendered with placeholders, the texts still fit once filled.
            a.advisory_id = ID_PLACEHOLDER.into();
            a.url = format!("https://security.example.org/advisories/{ID_PLACEHOLDER}");
            for (kind, post) in [(ChannelKind::X, x(&a)), (ChannelKind::Mastodon, mastodon(&a)), (ChannelKind::Bluesky, bluesky(&a))] {
                let filled = fill(&post, "EMBARGO-2026-123456", &a.url);
                proptest::prop_assert!(check(kind, "EMBARGO-2026-123456", &filled).is_ok(), "{}: {}", kind, filled);
            }
        }

        #[test]
        fn slack_fields_never_carry_raw_angle_brackets_and_mail_lines_fit(
            title in "[\\PC\n]{0,200}",
            summary in "[\\PC\n]{0,400}",
            workarounds in "[\\PC\n]{1,400}",
            credit in "[\\PC]{0,40}",
        ) {
            let mut a = announcement();
            a.title = title;
            a.summary = summary;
            a.workarounds = workarounds;
            a.credits = vec![credit];
            let payload = slack(&a);
            proptest::prop_assert!(check(ChannelKind::Slack, &a.advisory_id, &payload).is_ok());
            let value: Value = serde_json::from_str(&payload).unwrap();
            let blocks = value["blocks"].as_array().unwrap();
            let mut texts = vec![value["text"].as_str().unwrap().to_owned()];
            for block in &blocks[..blocks.len() - 1] {
                texts.push(block["text"]["text"].as_str().map(str::to_owned).unwrap_or_else(|| block["elements"][0]["text"].as_str().unwrap().to_owned()));
            }
            for text in texts {
                proptest::prop_assert!(!text.contains('<') && !text.contains('>'), "{}", text);
                proptest::prop_assert!(text.chars().count() <= 3000);
            }
            let m = mail(&a);
            proptest::prop_assert!(!m.subject.contains('\n'));
            for line in m.body.lines() {
                proptest::prop_assert!(graphemes(line) <= 72 || !line.trim().contains(char::is_whitespace), "{:?}", line);
            }
        }

        #[test]
        fn markdown_escaping_round_trips(original in "[\\PC\n]{0,200}") {
            let escaped = text::markdown_escape(&original);
            let mut back = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    back.extend(chars.next());
                } else {
                    back.push(c);
                }
            }
            proptest::prop_assert_eq!(back, original);
            proptest::prop_assert!(!escaped.contains("{{") && escaped.match_indices('<').all(|(at, _)| escaped[..at].ends_with('\\')));
        }
    }
}
