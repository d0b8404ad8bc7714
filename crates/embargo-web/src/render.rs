//! Rendering: the page layout every template extends, HTML responses, Markdown through
//! comrak then ammonia, and times. Error pages are `error_page`'s.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use embargo_app::App;
use embargo_domain::Timestamp;

/// The signed-in user shown in the navigation.
#[derive(Debug, Clone)]
pub struct NavUser {
    /// Address.
    pub email: String,
    /// Whether the Team link is shown.
    pub admin: bool,
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
        }
    }

    /// A team page.
    pub fn team(app: &App, title: impl Into<String>, section: &'static str, user: &crate::auth::Team) -> Self {
        Self {
            user: Some(NavUser { email: user.session.email().to_owned(), admin: user.session.is_admin() }),
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

/// Markdown (GFM) to safe HTML: comrak drops raw HTML, then ammonia keeps an allow-list of
/// tags and attributes. Images are removed (they would load from elsewhere), links get
/// `rel="noopener noreferrer nofollow"`.
pub fn markdown(text: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.strikethrough = true;
    options.extension.table = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.hardbreaks = true;
    let html = comrak::markdown_to_html(text, &options);
    ammonia::Builder::default()
        .rm_tags(&["img"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&html)
        .to_string()
}

/// A time for people: `2026-11-27 14:05 UTC` in the team's time zone.
pub fn time(app: &App, at: Timestamp) -> String {
    let zoned = at.to_zoned_datetime(app.config.time_zone());
    zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
}

/// A date for people: `Mon 7 Dec 2026`.
pub fn date(app: &App, at: Timestamp) -> String {
    at.to_zoned_datetime(app.config.time_zone()).strftime("%a %-d %b %Y").to_string()
}

/// The label and CSS class of a state.
pub fn state(state: embargo_domain::ReportState) -> (String, &'static str) {
    (state.to_string(), state.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_drops_scripts_images_and_handlers() {
        let html = markdown(
            "# Hi\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n![x](http://evil/x.png)\n\n\
             [link](javascript:alert(1)) [ok](https://example.org) <a href=\"x\" onclick=\"alert(1)\">a</a>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(html.contains("href=\"https://example.org\""), "{html}");
        assert!(html.contains("noopener"), "{html}");
    }
}
