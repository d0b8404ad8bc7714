//! Rendering: the page layout every template extends, HTML responses, message text shown
//! exactly as sent ([`text`]), and times. Error pages are `error_page`'s.

use std::fmt::Write as _;

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::{App, AppError};
use embargo_domain::Timestamp;

/// The signed-in user shown in the navigation.
#[derive(Debug, Clone)]
pub struct NavUser {
    /// Address.
    pub email: String,
    /// Whether the Team link is shown.
    pub admin: bool,
    /// A fix developer: their navigation is the fixes they were given.
    pub fix_developer: bool,
    /// A partner contact: their navigation is the partner portal.
    pub partner: bool,
}

/// What the base layout needs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Page title.
    pub title: String,
    /// Organisation name.
    pub organisation: String,
    /// Team navigation when signed in.
    pub user: Option<NavUser>,
    /// Which navigation entry is current.
    pub section: &'static str,
    /// Whether the page loads `/static/app.js`.
    pub script: bool,
    /// Status messages after an action.
    pub flashes: Vec<String>,
    /// A class on `<body>`.
    pub body_class: &'static str,
    /// Reload the page after this many seconds (a CI run in progress; works without
    /// JavaScript).
    pub refresh: Option<u32>,
    /// Go on to this local path at once (after single sign-on: a navigation from our own
    /// page, so the browser sends the `SameSite=Strict` session cookie it just got).
    pub refresh_to: Option<String>,
}

impl Layout {
    /// A public page.
    pub fn public(app: &App, title: impl Into<String>, section: &'static str) -> Self {
        Self {
            title: title.into(),
            organisation: app.config.organisation.name.clone(),
            user: None,
            section,
            script: false,
            flashes: Vec::new(),
            body_class: "public",
            refresh: None,
            refresh_to: None,
        }
    }

    /// A team page.
    pub fn team(app: &App, title: impl Into<String>, section: &'static str, user: &crate::auth::Team) -> Self {
        Self {
            user: Some(NavUser {
                email: user.session.email().to_owned(),
                admin: user.session.is_admin(),
                fix_developer: crate::auth::is_fix_developer(&user.actor),
                partner: crate::auth::is_partner(&user.actor),
            }),
            body_class: "team",
            ..Self::public(app, title, section)
        }
    }

    /// A page of the partner portal.
    pub fn partner(
        app: &App,
        title: impl Into<String>,
        section: &'static str,
        user: &crate::auth::PartnerContact,
    ) -> Self {
        Self {
            user: Some(NavUser {
                email: user.session.email().to_owned(),
                admin: false,
                fix_developer: false,
                partner: true,
            }),
            body_class: "team",
            ..Self::public(app, title, section)
        }
    }
}

/// A rendered page with its status.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
                .into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A simple message page.
#[derive(Template)]
#[template(path = "page_message.html")]
pub struct MessagePage {
    /// Layout.
    pub layout: Layout,
    /// Heading.
    pub heading: String,
    /// Text.
    pub text: String,
    /// An optional (href, label) button.
    pub link: Option<(String, String)>,
}

/// A message page in the public or team layout.
pub fn message(status: StatusCode, layout: Layout, heading: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    page(
        status,
        &MessagePage {
            layout,
            heading: heading.to_owned(),
            text: text.to_owned(),
            link: link.map(|(h, l)| (h.to_owned(), l.to_owned())),
        },
    )
}

/// Adds `Retry-After` (seconds) to a response for an error that knows when to try again.
pub fn retry_after(response: &mut Response, err: &AppError) {
    if let AppError::Throttled { retry_after_secs, .. } = err {
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(*retry_after_secs));
    }
}

/// Message text (reporter text is evidence) as HTML that shows exactly what was sent: every
/// character escaped, never interpreted as Markdown or HTML, in an element styled
/// `white-space: pre-wrap` (class `text`). The rendered text content equals the input,
/// character for character:
///
/// * `&`, `<`, `>`, `"` and `'` become references; a carriage return becomes `&#13;` (a raw
///   one would be folded into the line feed by the HTML parser).
/// * `http://` and `https://` URLs become links whose text is the URL itself
///   (`rel="noopener noreferrer nofollow"`); no other scheme is linked.
/// * Invisible characters that can disguise text (C0 and C1 controls, bidirectional
///   overrides and isolates, zero-width characters) are kept but wrapped in
///   `<span class="ctl" data-cp="U+202E">`: the stylesheet shows the code point beside them
///   and isolates them, so a right-to-left override cannot reorder what follows.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_word = previous.is_none_or(|p| !p.is_alphanumeric());
        if starts_word && (rest.starts_with("http://") || rest.starts_with("https://")) {
            let url = url_prefix(rest);
            if url.len() > "https://".len() {
                out.push_str("<a href=\"");
                escape_into(&mut out, url);
                out.push_str("\" rel=\"noopener noreferrer nofollow\">");
                escape_into(&mut out, url);
                out.push_str("</a>");
                previous = url.chars().last();
                rest = &rest[url.len()..];
                continue;
            }
        }
        push_char(&mut out, c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The URL at the start of `text`: printable ASCII up to a space, a quote or an angle
/// bracket, without trailing punctuation (and without a closing parenthesis it did not open).
fn url_prefix(text: &str) -> &str {
    let end = text
        .find(|c: char| {
            !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"' | '\'' | '`' | '{' | '}' | '|' | '\\' | '^')
        })
        .unwrap_or(text.len());
    let mut url = &text[..end];
    while let Some(last) = url.chars().last() {
        let unbalanced = last == ')' && url.matches('(').count() < url.matches(')').count();
        if !(matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | ']' | '*' | '_' | '~') || unbalanced) {
            break;
        }
        url = &url[..url.len() - 1];
    }
    url
}

/// Whether a character is invisible or reorders text, and so is shown marked.
fn disguising(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\t' | '\r')
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn push_char(out: &mut String, c: char) {
    if disguising(c) {
        let _ = write!(out, "<span class=\"ctl\" data-cp=\"U+{:04X}\">", c as u32);
        match c {
            // NUL cannot be carried by HTML at all; the replacement character stands in.
            '\0' => out.push('\u{FFFD}'),
            // Other C0 controls as references (the HTML parser keeps them as they are).
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "&#{};", c as u32);
            }
            // DEL, C1 controls and format characters as they are: a reference to 0x80-0x9F
            // would be read as a Windows-1252 character.
            c => out.push(c),
        }
        out.push_str("</span>");
        return;
    }
    push_escaped(out, c);
}

/// One character escaped for HTML text or an attribute value (quotes and CR as references).
pub(crate) fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        '\r' => out.push_str("&#13;"),
        c => out.push(c),
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        push_char(out, c);
    }
}

/// A time for people: `2026-11-27 14:05 UTC` in the team's time zone, the business
/// calendar's (`App::time_zone`; handlers read the calendar first, see `auth::Team`).
pub fn time(app: &App, at: Timestamp) -> String {
    let zoned = at.to_zoned_datetime(app.time_zone());
    zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// A date for people: `Mon 7 Dec 2026`, in the business calendar's time zone.
pub fn date(app: &App, at: Timestamp) -> String {
    at.to_zoned_datetime(app.time_zone()).strftime("%a %-d %b %Y").to_string()
}

/// An amount of working time for people: `3 working days`, `1 working day`, `5 working
/// hours`, `less than a working hour` (to the nearest whole unit).
pub fn working_time(amount: embargo_domain::WorkingDuration) -> String {
    let seconds = amount.seconds();
    let day = embargo_domain::calendar::WORKING_DAY_SECONDS;
    let days = (seconds + day / 2) / day;
    let hours = (seconds + 1800) / 3600;
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if days >= 1 {
        format!("{days} working day{}", plural(days))
    } else if hours >= 1 {
        format!("{hours} working hour{}", plural(hours))
    } else {
        "less than a working hour".to_owned()
    }
}

/// A deadline of a clock as a person reads it, relative to now: "Acknowledge within 3
/// working days", "Fix overdue by 2 working days".
pub fn deadline(clock: embargo_domain::sla::ClockKind, due: embargo_domain::sla::DueIn) -> String {
    use embargo_domain::sla::{ClockKind, DueIn};
    let (ahead, behind) = match clock {
        ClockKind::Acknowledge => ("Acknowledge", "Acknowledgement"),
        ClockKind::FirstResponse => ("Respond", "First response"),
        ClockKind::Analyse => ("Finish the analysis", "Analysis"),
        ClockKind::Update => ("Update the reporter", "Update to the reporter"),
        ClockKind::Fix => ("Fix", "Fix"),
    };
    match due {
        DueIn::Left(left) => format!("{ahead} within {}", working_time(left)),
        DueIn::Overdue(by) if by.seconds() < 3600 => format!("{behind} overdue"),
        DueIn::Overdue(by) => format!("{behind} overdue by {}", working_time(by)),
    }
}

/// A past instant relative to now: `just now`, `5 minutes ago`, `3 hours ago`, `2 days
/// ago`; older than two weeks (or in the future), its date.
pub fn ago(app: &App, at: Timestamp) -> String {
    let seconds = app.now().duration_since(at).as_secs();
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    match seconds {
        s if s < 0 => date(app, at),
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => format!("{} minute{} ago", s / 60, plural(s / 60)),
        s if s < 86_400 => format!("{} hour{} ago", s / 3600, plural(s / 3600)),
        s if s < 14 * 86_400 => format!("{} day{} ago", s / 86_400, plural(s / 86_400)),
        _ => date(app, at),
    }
}

/// The label and CSS class of a state.
pub fn state(state: embargo_domain::ReportState) -> (String, &'static str) {
    (state.to_string(), state.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_everything_and_links_only_web_urls() {
        let html = text("<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n# Hi & \"bye\" 'x'\r\n");
        assert_eq!(
            html,
            "&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;img src=x onerror=alert(1)&gt;\n# Hi &amp; &quot;bye&quot; \
             &#39;x&#39;&#13;\n"
        );
        assert_eq!(
            text("see https://example.org/a?b=1&c=<2>. or (http://x.test/p) javascript:alert(1)"),
            "see <a href=\"https://example.org/a?b=1&amp;c=\" rel=\"noopener noreferrer nofollow\">\
             https://example.org/a?b=1&amp;c=</a>&lt;2&gt;. or (<a href=\"http://x.test/p\" \
             rel=\"noopener noreferrer nofollow\">http://x.test/p</a>) javascript:alert(1)"
        );
        assert_eq!(
            text("xhttp://a.test https://"),
            "xhttp://a.test https://",
            "no link inside a word or without a host"
        );
        assert_eq!(
            text("a\u{202E}b\u{1}c\u{85}"),
            "a<span class=\"ctl\" data-cp=\"U+202E\">\u{202E}</span>b<span class=\"ctl\" data-cp=\"U+0001\">&#1;</span>\
             c<span class=\"ctl\" data-cp=\"U+0085\">\u{85}</span>"
        );
    }
}
