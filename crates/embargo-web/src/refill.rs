//! Bad input answered with the same form: the field marked and the input kept.
//!
//! When a form post (`application/x-www-form-urlencoded`, outside `/api/`) is refused as bad
//! input (422, or 400/409 with the app's error), the [`refill`] middleware answers with the
//! page the form is on instead of a bare error page: it asks the router for that page (the
//! posted path, then each shorter prefix, until a page holds a form posting to that path;
//! with the same cookies, as a `GET`), and [`fill_form`] writes into that form what was
//! sent (text fields, text areas, selects, check boxes; never passwords or files), marks the
//! field the error names (`aria-invalid="true"`, `aria-describedby` naming the message right
//! after it, `autofocus`), opens a `<details>` around it, and puts "Error: " before the
//! page's title. The answer keeps the error's status. Without a page that has the form, the
//! app's error page answers, as before.
//!
//! Which field: the one the handler named ([`WebError::Field`](crate::error::WebError)),
//! else the one a rejected form body could not be read for (see `extract::Form`), else the
//! form's only field, else a field whose name the message mentions; with none of these the
//! message stands at the top of the form.
//!
//! The pages are the app's own (askama escapes every attribute value and every text), so a
//! small scanner of tags is enough to find forms and fields; the values written back are
//! escaped again. Nothing here runs on success, on `GET`, or on the API.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use embargo_app::App;
use tower::ServiceExt;

use crate::error::ErrorReport;
use crate::render::{self, Layout};

/// The largest form body looked at (the router's own limit for forms without files).
const MAX_FORM: usize = 1024 * 1024;
/// The largest page re-rendered.
const MAX_PAGE: usize = 16 * 1024 * 1024;

/// The middleware's state: the app and the router that renders pages.
#[derive(Clone)]
pub struct Refill {
    /// The app (for the error page of a body too large).
    pub app: App,
    /// The router of pages (everything but this middleware).
    pub pages: Router,
}

/// See the module documentation.
pub async fn refill(State(state): State<Refill>, request: Request, next: Next) -> Response {
    let is_form = request.method() == Method::POST
        && !request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return render::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            Layout::public(&state.app, "Too large", ""),
            "Too large",
            "The form is larger than this site accepts.",
            None,
        );
    };
    let path = parts.uri.path().to_owned();
    let mut headers = axum::http::HeaderMap::new();
    for name in [header::COOKIE, header::HOST, header::USER_AGENT, header::ACCEPT_LANGUAGE] {
        for value in parts.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(forwarded) = parts.headers.get("x-forwarded-for") {
        headers.insert("x-forwarded-for", forwarded.clone());
    }
    let connect = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().cloned();
    let response = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;

    let status = response.status();
    if !matches!(status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST | StatusCode::CONFLICT) {
        return response;
    }
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let values: Vec<(String, String)> = crate::extract::form_pairs(&bytes);
    for candidate in candidates(&path) {
        let mut get = Request::builder().method(Method::GET).uri(&candidate).body(Body::empty()).expect("request");
        *get.headers_mut() = headers.clone();
        if let Some(connect) = &connect {
            get.extensions_mut().insert(*connect);
        }
        let Ok(page) = state.pages.clone().oneshot(get).await;
        let html_page = page.status() == StatusCode::OK
            && page
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html"));
        if !html_page {
            continue;
        }
        let (page_parts, page_body) = page.into_parts();
        let Ok(html) = axum::body::to_bytes(page_body, MAX_PAGE).await else { continue };
        let html = String::from_utf8_lossy(&html);
        let Some(filled) = fill_form(&html, &path, &values, report.field.as_deref(), &report.message) else {
            continue;
        };
        let mut answer = Response::from_parts(page_parts, Body::from(filled));
        *answer.status_mut() = status;
        answer.headers_mut().remove(header::CONTENT_LENGTH);
        answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for cookie in response.headers().get_all(header::SET_COOKIE) {
            answer.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        answer.extensions_mut().insert(report);
        return answer;
    }
    response.into_response()
}

/// The paths whose page may hold the form posting to `path`: the path itself, then each
/// shorter prefix (`/admin/products/3/responders`, `/admin/products/3`, `/admin/products`,
/// `/admin`).
fn candidates(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    let mut rest = path.trim_end_matches('/');
    while let Some(i) = rest.rfind('/') {
        rest = &rest[..i];
        if rest.is_empty() {
            break;
        }
        out.push(rest.to_owned());
    }
    out.truncate(6);
    out
}

// ---- The scanner ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Tag {
    start: usize,
    end: usize,
    name: String,
    closing: bool,
    attrs: Vec<(String, Option<String>)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n == name)
    }

    fn set(&mut self, name: &str, value: Option<&str>) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.map(str::to_owned),
            None => self.attrs.push((name.to_owned(), value.map(str::to_owned))),
        }
    }

    fn remove(&mut self, name: &str) {
        self.attrs.retain(|(n, _)| n != name);
    }

    fn html(&self) -> String {
        let mut out = format!("<{}", self.name);
        for (n, v) in &self.attrs {
            out.push(' ');
            out.push_str(n);
            if let Some(v) = v {
                out.push_str("=\"");
                out.push_str(&escape(v));
                out.push('"');
            }
        }
        out.push('>');
        out
    }
}

/// Every tag of `html`, in order; the contents of `script`, `style`, `title` and `textarea`
/// are text, not tags.
fn tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |e| start + e + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = rest.find('>').map_or(html.len(), |e| start + e + 1);
            continue;
        }
        let closing = rest.starts_with("</");
        let name_start = start + if closing { 2 } else { 1 };
        let mut j = name_start;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
            j += 1;
        }
        if j == name_start {
            i = start + 1;
            continue;
        }
        let name = html[name_start..j].to_ascii_lowercase();
        let mut attrs = Vec::new();
        // Attributes.
        loop {
            while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
                j += 1;
            }
            if j >= bytes.len() {
                break;
            }
            if bytes[j] == b'>' {
                j += 1;
                break;
            }
            let a = j;
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && !matches!(bytes[j], b'=' | b'>' | b'/') {
                j += 1;
            }
            let attr = html[a..j].to_ascii_lowercase();
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'=' {
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let value = if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                    let q = bytes[j];
                    let v = j + 1;
                    let e = html[v..].find(q as char).map_or(html.len(), |e| v + e);
                    j = (e + 1).min(html.len());
                    &html[v..e]
                } else {
                    let v = j;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    &html[v..j]
                };
                attrs.push((attr, Some(unescape(value))));
            } else if !attr.is_empty() {
                attrs.push((attr, None));
            }
        }
        let raw = !closing && matches!(name.as_str(), "script" | "style" | "title" | "textarea");
        out.push(Tag { start, end: j, name: name.clone(), closing, attrs });
        i = j;
        if raw {
            let close = format!("</{name}");
            let lower = html[i..].to_ascii_lowercase();
            i = lower.find(&close).map_or(html.len(), |e| i + e);
        }
    }
    out
}

/// Text for HTML (text and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        render::push_escaped(&mut out, c);
    }
    out
}

/// An attribute value as the browser reads it (the character references askama writes).
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The values sent for `name`, in order.
fn sent_values<'a>(values: &'a [(String, String)], name: &str) -> std::vec::IntoIter<&'a str> {
    values.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>().into_iter()
}

/// Input types whose value is written back.
fn keeps_value(kind: &str) -> bool {
    !matches!(kind, "hidden" | "password" | "submit" | "button" | "reset" | "image" | "file" | "checkbox" | "radio")
}

/// Whether a form element is one a person fills in.
fn editable(tag: &Tag) -> bool {
    match tag.name.as_str() {
        "textarea" | "select" => true,
        "input" => !matches!(
            tag.attr("type").unwrap_or("text").to_ascii_lowercase().as_str(),
            "hidden" | "submit" | "button" | "reset" | "image"
        ),
        _ => false,
    }
}

/// `html` with the form that posts to `action` filled with `values`, `field` (or the field
/// found as the module documentation says) marked with `message`; `None` when the page has
/// no such form.
pub fn fill_form(
    html: &str,
    action: &str,
    values: &[(String, String)],
    field: Option<&str>,
    message: &str,
) -> Option<String> {
    let tags = tags(html);
    // Forms posting to the path, with the <details> around each.
    let mut forms: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    let mut details: Vec<usize> = Vec::new();
    let mut open_form: Option<(usize, Vec<usize>)> = None;
    for (k, tag) in tags.iter().enumerate() {
        match (tag.name.as_str(), tag.closing) {
            ("details", false) => details.push(k),
            ("details", true) => {
                details.pop();
            }
            ("form", false) => {
                let target = tag.attr("action").unwrap_or("");
                let target = target.split(['?', '#']).next().unwrap_or("");
                let post = tag.attr("method").is_some_and(|m| m.eq_ignore_ascii_case("post"));
                open_form = (post && target == action).then(|| (k, details.clone()));
            }
            ("form", true) => {
                if let Some((s, d)) = open_form.take() {
                    forms.push((s, k, d));
                }
            }
            _ => {}
        }
    }
    if forms.is_empty() {
        return None;
    }
    let sent = |name: &str| sent_values(values, name);
    // The form whose hidden fields match what was sent.
    let score = |&(s, e, _): &(usize, usize, Vec<usize>)| -> i64 {
        tags[s..e]
            .iter()
            .filter(|t| {
                t.name == "input" && !t.closing && t.attr("type").is_some_and(|k| k.eq_ignore_ascii_case("hidden"))
            })
            .map(|t| {
                let name = t.attr("name").unwrap_or("");
                let value = t.attr("value").unwrap_or("");
                match sent(name).next() {
                    Some(v) if v == value => 1,
                    Some(_) => -1,
                    None => 0,
                }
            })
            .sum()
    };
    let best = forms.iter().max_by_key(|f| score(f)).cloned().expect("a form");
    let (form_start, form_end, around) = best;
    let fields: Vec<usize> = (form_start..form_end).filter(|&k| !tags[k].closing && editable(&tags[k])).collect();
    let field_names: Vec<&str> = fields.iter().filter_map(|&k| tags[k].attr("name")).collect();
    // `name#n`: the n-th field of that name (rows of repeated fields).
    let (field, field_nth) = match field.and_then(|f| f.split_once('#')) {
        Some((name, n)) => (Some(name), n.parse::<usize>().ok()),
        None => (field, None),
    };
    let field = field
        .filter(|f| field_names.contains(f))
        .map(str::to_owned)
        .or_else(|| {
            let mut distinct = field_names.clone();
            distinct.dedup();
            (distinct.len() == 1).then(|| distinct[0].to_owned())
        })
        .or_else(|| {
            let lower = message.to_lowercase();
            field_names.iter().find(|n| n.len() > 2 && lower.contains(&n.replace('_', " "))).map(|n| (*n).to_owned())
        });

    // Edits: (start, end, replacement), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let error_id = format!("form-error-{form_start}");
    let mut marked = false;
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut k = form_start;
    while k < form_end {
        let tag = &tags[k];
        if tag.closing || !matches!(tag.name.as_str(), "input" | "textarea" | "select") {
            k += 1;
            continue;
        }
        let Some(name) = tag.attr("name").map(str::to_owned) else {
            k += 1;
            continue;
        };
        let nth = {
            let slot = seen.iter_mut().find(|(n, _)| *n == name);
            match slot {
                Some(slot) => {
                    slot.1 += 1;
                    slot.1 - 1
                }
                None => {
                    seen.push((name.clone(), 1));
                    0
                }
            }
        };
        let mut new = tag.clone();
        let mark =
            !marked && editable(tag) && field.as_deref() == Some(name.as_str()) && field_nth.is_none_or(|n| n == nth);
        if mark {
            marked = true;
            new.set("aria-invalid", Some("true"));
            let described = match new.attr("aria-describedby") {
                Some(d) if !d.is_empty() => format!("{error_id} {d}"),
                _ => error_id.clone(),
            };
            new.set("aria-describedby", Some(&described));
            new.set("autofocus", None);
        }
        let error_html = format!("<span class=\"field-error\" id=\"{error_id}\">Error: {}</span>", escape(message));
        match tag.name.as_str() {
            "input" => {
                let kind = tag.attr("type").unwrap_or("text").to_ascii_lowercase();
                if keeps_value(&kind) {
                    if let Some(v) = sent(&name).nth(nth) {
                        new.set("value", Some(v));
                    }
                } else if kind == "checkbox" || kind == "radio" {
                    let own = tag.attr("value").unwrap_or("on");
                    if values.iter().any(|(n, _)| *n == name) || kind == "checkbox" {
                        new.remove("checked");
                        if sent(&name).any(|v| v == own) {
                            new.set("checked", None);
                        }
                    }
                }
                let mut replacement = new.html();
                if mark {
                    replacement.push_str(&error_html);
                }
                edits.push((tag.start, tag.end, replacement));
                k += 1;
            }
            "textarea" => {
                // The text runs to the closing tag, which the scanner lists next.
                let close = tags[k + 1..].iter().position(|t| t.closing && t.name == "textarea").map(|p| k + 1 + p);
                let close = close?;
                let text_end = tags[close].start;
                let close_end = tags[close].end;
                let content = match sent(&name).nth(nth) {
                    // One leading newline is dropped by the parser: keep the value's own.
                    Some(v) => format!("\n{}", escape(v)),
                    None => html[tag.end..text_end].to_owned(),
                };
                let mut replacement = format!("{}{}</textarea>", new.html(), content);
                if mark {
                    replacement.push_str(&error_html);
                }
                edits.push((tag.start, close_end, replacement));
                k = close + 1;
            }
            _ => {
                // A select: its options up to </select>.
                let close = tags[k + 1..].iter().position(|t| t.closing && t.name == "select").map(|p| k + 1 + p);
                let close = close?;
                edits.push((tag.start, tag.end, new.html()));
                let chosen: Vec<&str> = sent(&name).collect();
                if !chosen.is_empty() {
                    for option in &tags[k + 1..close] {
                        if option.name != "option" || option.closing {
                            continue;
                        }
                        let mut o = option.clone();
                        let value = option.attr("value").map(str::to_owned).unwrap_or_else(|| {
                            let text_end = html[option.end..].find('<').map_or(html.len(), |e| option.end + e);
                            unescape(html[option.end..text_end].trim())
                        });
                        o.remove("selected");
                        if chosen.contains(&value.as_str()) {
                            o.set("selected", None);
                        }
                        edits.push((option.start, option.end, o.html()));
                    }
                }
                if mark {
                    edits.push((tags[close].end, tags[close].end, error_html));
                }
                k = close + 1;
            }
        }
    }
    // Without a field, the message leads the form.
    if !marked {
        let form = &tags[form_start];
        edits.push((
            form.end,
            form.end,
            format!("<div class=\"alert\" role=\"alert\" id=\"{error_id}\">Error: {}</div>", escape(message)),
        ));
    }
    // The <details> around the form open.
    for &d in &around {
        let mut tag = tags[d].clone();
        if !tag.has("open") {
            tag.set("open", None);
            edits.push((tag.start, tag.end, tag.html()));
        }
    }
    // "Error: " in the title.
    if let Some(title) = tags.iter().find(|t| t.name == "title" && !t.closing) {
        edits.push((title.end, title.end, "Error: ".to_owned()));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = html.to_owned();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    const PAGE: &str = r#"<!doctype html><html><head><title>Team · Acme</title></head><body><main>
<form method="post" action="&#x2f;admin&#x2f;users"><label for="email">Address</label><input id="email" name="email" type="email" value="">
<label for="password">Password</label><input id="password" name="password" type="password">
<select name="role" id="role"><option value="responder" selected>Responder</option><option value="admin">Admin</option></select>
<textarea name="note" id="note">old</textarea><input type="checkbox" name="notify" value="1" checked><button type="submit">Add</button></form>
<details><summary>More</summary><form method="post" action="/admin/products"><input name="name" id="name"></form></details>
<form method="post" action="/admin/users/disable"><input type="hidden" name="user" value="1"><button>Disable</button></form>
<form method="post" action="/admin/users/disable"><input type="hidden" name="user" value="2"><button>Disable</button></form>
</main></body></html>"#;

    #[test]
    fn fills_the_form_marks_the_field_and_keeps_no_password() {
        let sent = pairs(&[
            ("email", "x\"><script>alert(1)</script>"),
            ("password", "secret"),
            ("role", "admin"),
            ("note", "\nline & <b>"),
        ]);
        let out = fill_form(PAGE, "/admin/users", &sent, Some("email"), "not an <address>").expect("form found");
        assert!(out.contains("<title>Error: Team"), "{out}");
        assert!(
            out.contains(r#"value="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" aria-invalid="true" aria-describedby="form-error-"#),
            "{out}"
        );
        assert!(out.contains("Error: not an &lt;address&gt;</span>"), "{out}");
        assert!(!out.contains("secret"), "passwords are never written back");
        assert!(
            out.contains(r#"<option value="responder">Responder</option><option value="admin" selected>"#),
            "{out}"
        );
        assert!(out.contains("<textarea name=\"note\" id=\"note\">\n\nline &amp; &lt;b&gt;</textarea>"), "{out}");
        assert!(out.contains(r#"<input type="checkbox" name="notify" value="1">"#), "an unsent box is unticked: {out}");
        assert_eq!(out.matches("aria-invalid").count(), 1);
    }

    #[test]
    fn finds_the_only_field_opens_details_and_picks_the_row() {
        let out = fill_form(PAGE, "/admin/products", &pairs(&[("name", "dup")]), None, "already exists").unwrap();
        assert!(out.contains("<details open>"), "{out}");
        assert!(
            out.contains(r#"<input name="name" id="name" aria-invalid="true""#) && out.contains(r#"value="dup">"#),
            "{out}"
        );
        let out = fill_form(PAGE, "/admin/users/disable", &pairs(&[("user", "2")]), None, "cannot").unwrap();
        let alert = out.find("role=\"alert\"").unwrap();
        let form = &out[alert..alert + out[alert..].find("</form>").unwrap()];
        assert!(form.contains("value=\"2\""), "the second row's form: {out}");
        assert!(fill_form(PAGE, "/nowhere", &[], None, "x").is_none());
    }

    #[test]
    fn candidates_and_decoding() {
        assert_eq!(
            candidates("/admin/products/3/responders"),
            ["/admin/products/3/responders", "/admin/products/3", "/admin/products", "/admin"]
        );
        let body = Bytes::from_static(b"a=1+2%26&b=%E2%82%AC&c");
        assert_eq!(crate::extract::form_pairs(&body), pairs(&[("a", "1 2&"), ("b", "€"), ("c", "")]));
    }
}
