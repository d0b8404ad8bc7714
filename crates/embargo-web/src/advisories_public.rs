//! Public advisories: the HTML index and pages, OSV JSON (one record and all of them), the
//! Atom feed, and the CSAF 2.0 provider (`/.well-known/csaf/`: provider metadata, the ROLIE
//! feed, `index.txt`, `changes.csv`, the documents with their hashes and signatures).
//!
//! Embargo safety: every handler here reads only publications
//! (`embargo_app::advisories::{published, published_one}`), never a draft. An advisory that is
//! not published does not exist on these routes: its URLs answer the same 404 as any unknown
//! path, and no list, feed, date or count changes until it is published.
//!
//! Everything served is the stored publication's bytes (`Publication::{osv, csaf,
//! csaf_signature, cve_record, html}`), so the hashes and the detached signature made at
//! publication match what a consumer downloads.
//!
//! Documents and feeds carry `Last-Modified` (the publication, or the latest one for a list)
//! and, through [`documents`], a strong `ETag` (a hash of the bytes): a poll with
//! `If-None-Match` or `If-Modified-Since` is answered `304 Not Modified` without a body.
//! They are readable from any origin (read-only CORS: `GET`, `HEAD` and the preflight,
//! no credentials), for browser tools such as CSAF viewers.
//!
//! The CSAF provider (provider metadata and ROLIE feed) exists only with an `https` public URL
//! (`Config::csaf_provider_url`); without one its URLs are 404.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use embargo_app::advisories::{self, Publication};
use embargo_app::{App, AppError};
use embargo_domain::Timestamp;
use serde_json::{Value, json};
use sha2::Digest;

use crate::error::WebError;
use crate::extract::Path;
use crate::render::{Layout, page};

/// The one ROLIE feed (TLP:WHITE): everything published is public.
const ROLIE_FEED: &str = "/.well-known/csaf/white/embargo-feed-tlp-white.json";
/// The provider metadata (CSAF 2.0 §7.1.7, at the well-known place of §7.1.9).
const PROVIDER_METADATA: &str = "/.well-known/csaf/provider-metadata.json";
/// Where the TLP:WHITE documents, `index.txt` and `changes.csv` live.
const WHITE: &str = "/.well-known/csaf/white";

const JSON: &str = "application/json";
/// Feeds and exports change only on publication; clients revalidate every time.
const REVALIDATE: &str = "no-cache";

/// An HTTP date (RFC 9110 IMF-fixdate): `Tue, 03 Mar 2026 12:00:00 GMT`.
fn http_date(at: Timestamp) -> String {
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(text: &str) -> Option<Timestamp> {
    let utc = text.trim().strip_suffix(" GMT")?;
    jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S %z", format!("{utc} +0000")).ok()?.to_timestamp().ok()
}

/// A document or feed that last changed at `modified`.
fn reply(content_type: &'static str, body: impl Into<axum::body::Body>, modified: Timestamp) -> Response {
    let mut response = reply_unstamped(content_type, body);
    if let Ok(value) = HeaderValue::from_str(&http_date(modified)) {
        response.headers_mut().insert(header::LAST_MODIFIED, value);
    }
    response
}

/// A document whose content has no one time of change (the Atom feed shows the
/// pre-announcements, which carry none): no `Last-Modified`, so only its `ETag` validates it.
fn reply_unstamped(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, REVALIDATE)], body.into()).into_response()
}

fn cors(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag, Last-Modified"));
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, RFC 9110 §13.1.2).
fn matches_etag(list: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',').any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

/// The middleware of the public documents and feeds: the CORS preflight, a strong `ETag` on
/// every `200`, and `304 Not Modified` for a conditional request that names the current
/// version (`If-None-Match` first; `If-Modified-Since` only without it, RFC 9110 §13.2.2).
/// Pages that must not be cached (`no-store`) and errors pass through unchanged, so an
/// unpublished advisory's URL stays the same 404 as any unknown path.
pub(crate) async fn documents(request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        cors(headers);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        headers
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("If-None-Match, If-Modified-Since"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        return response;
    }
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let if_modified_since =
        request.headers().get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let response = next.run(request).await;
    let no_store = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    if response.status() != StatusCode::OK || no_store {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&bytes))[..32]);
    cors(&mut parts.headers);
    if let Ok(value) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, value);
    }
    let last_modified =
        parts.headers.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let not_modified = match (&if_none_match, if_modified_since, last_modified) {
        (Some(list), _, _) => matches_etag(list, &etag),
        (None, Some(since), Some(modified)) => modified <= since,
        _ => false,
    };
    if not_modified {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The same page as any unknown path: an unpublished advisory is indistinguishable from one
/// that never existed.
fn not_found(_app: &App) -> Response {
    WebError::request(StatusCode::NOT_FOUND, "There is nothing here.").into_response()
}

fn failed(_app: &App, err: AppError) -> Response {
    WebError::from(err).into_response()
}

/// `2026-03-04` from a timestamp (UTC).
fn day(at: Timestamp) -> String {
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d").to_string()
}

/// The year folder of a CSAF document: the year of its initial release (§7.1.11), UTC.
fn year(p: &Publication) -> i16 {
    p.published_at.to_zoned_datetime(jiff::tz::TimeZone::UTC).year()
}

/// `2026/emb-2026-0001.json`, relative to the TLP:WHITE folder.
fn csaf_path(p: &Publication) -> String {
    format!("{}/{}", year(p), p.csaf_filename)
}

/// The highest CVSS severity in an OSV record: `("High", "7.5", "CVSS:3.1/...")`. CVSS v4 is
/// preferred when present; the vector is parsed and scored by `embargo_domain::cvss`.
fn severity(osv: &str) -> Option<(String, String)> {
    let value: Value = serde_json::from_str(osv).ok()?;
    let mut vectors: Vec<(String, String)> = Vec::new();
    let mut collect = |list: &Value| {
        for s in list.as_array().into_iter().flatten() {
            if let (Some(kind), Some(score)) = (s["type"].as_str(), s["score"].as_str()) {
                vectors.push((kind.to_owned(), score.to_owned()));
            }
        }
    };
    collect(&value["severity"]);
    for affected in value["affected"].as_array().into_iter().flatten() {
        collect(&affected["severity"]);
    }
    let pick = vectors.iter().find(|(k, _)| k == "CVSS_V4").or_else(|| vectors.iter().find(|(k, _)| k == "CVSS_V3"))?;
    let vector = embargo_domain::cvss::Vector::parse(&pick.1).ok()?;
    Some((vector.severity().as_str().to_owned(), vector.score().to_string()))
}

/// Whether a publication is a withdrawal (its OSV record says `withdrawn`).
fn is_withdrawn(osv: &str) -> bool {
    serde_json::from_str::<Value>(osv).is_ok_and(|v| v["withdrawn"].is_string())
}

/// Publications newest first (by first publication, then ID).
async fn newest_first(app: &App) -> Result<Vec<Publication>, AppError> {
    let mut list = advisories::published(app).await?;
    list.sort_by(|a, b| b.published_at.cmp(&a.published_at).then_with(|| b.public_id.cmp(&a.public_id)));
    Ok(list)
}

/// A line of the index.
struct Line {
    id: String,
    withdrawn: bool,
    cve_id: Option<String>,
    title: String,
    severity: Option<(String, String)>,
    published: String,
    updated: Option<String>,
}

#[derive(Template)]
#[template(path = "advisories.html")]
struct IndexPage {
    layout: Layout,
    lines: Vec<Line>,
    /// Whether this instance is a CSAF provider (an https public URL).
    provider: bool,
    upcoming: Vec<Upcoming>,
}

/// A public pre-announcement (ADR 21): an opaque ID, the instant (UTC) and the severity,
/// nothing else of the report or its advisory.
struct Upcoming {
    id: String,
    when: String,
    severity: String,
}

fn instant(at: Timestamp) -> String {
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The pre-announced disclosures, soonest first.
async fn upcoming(app: &App) -> Result<Vec<embargo_app::partners::Announcement>, embargo_app::AppError> {
    let mut list = embargo_app::partners::announcements(app).await?;
    list.sort_by(|a, b| a.disclose_at.cmp(&b.disclose_at).then_with(|| a.id.cmp(&b.id)));
    Ok(list)
}

/// `GET /advisories`: the latest revision of every published advisory, newest first.
pub(crate) async fn index(State(app): State<App>) -> Response {
    let list = match newest_first(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let lines = list
        .into_iter()
        .map(|p| Line {
            withdrawn: is_withdrawn(&p.osv),
            severity: severity(&p.osv),
            published: day(p.published_at),
            updated: (p.revision > 1).then(|| day(p.modified_at)),
            id: p.public_id,
            cve_id: p.cve_id,
            title: p.title,
        })
        .collect();
    let upcoming = match upcoming(&app).await {
        Ok(list) => list
            .into_iter()
            .map(|a| Upcoming { id: a.id, when: instant(a.disclose_at), severity: a.severity })
            .collect(),
        Err(err) => return failed(&app, err),
    };
    let provider = app.config.csaf_provider_url().is_some();
    page(
        StatusCode::OK,
        &IndexPage { layout: Layout::public(&app, "Security advisories", "advisories"), lines, provider, upcoming },
    )
}

#[derive(Template)]
#[template(path = "advisory.html")]
struct AdvisoryPage {
    layout: Layout,
    id: String,
    cve_id: Option<String>,
    title: String,
    severity: Option<(String, String)>,
    published: String,
    updated: Option<String>,
    revision: i64,
    /// The announcement as HTML. Trusted for `|safe`: the team's Markdown was made HTML by
    /// comrak and then cleaned by ammonia's allow-list (`embargo_advisory::markdown::to_html`)
    /// at publication (text that came from a reporter, such as a title or a credit, is
    /// escaped before that), and is served as stored, never edited.
    html: String,
    csaf_href: String,
    has_cve_record: bool,
    withdrawn: bool,
}

/// `GET /advisories/{id}` (the page), `/advisories/{id}.json` (OSV) and
/// `/advisories/{id}.cve.json` (the CVE JSON 5 record, when there is a CVE ID).
pub(crate) async fn advisory(State(app): State<App>, Path(name): Path<String>) -> Response {
    let (id, format) = if let Some(id) = name.strip_suffix(".cve.json") {
        (id, "cve")
    } else if let Some(id) = name.strip_suffix(".json") {
        (id, "osv")
    } else {
        (name.as_str(), "html")
    };
    let publication = match advisories::published_one(&app, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(&app),
        Err(err) => return failed(&app, err),
    };
    let modified = publication.modified_at;
    match format {
        "osv" => reply(JSON, publication.osv, modified),
        "cve" => match publication.cve_record {
            Some(record) => reply(JSON, record, modified),
            None => not_found(&app),
        },
        _ => page(
            StatusCode::OK,
            &AdvisoryPage {
                layout: Layout::public(&app, format!("{}: {}", publication.public_id, publication.title), "advisories"),
                severity: severity(&publication.osv),
                published: day(publication.published_at),
                updated: (publication.revision > 1).then(|| day(publication.modified_at)),
                revision: publication.revision,
                csaf_href: format!("{WHITE}/{}", csaf_path(&publication)),
                has_cve_record: publication.cve_record.is_some(),
                withdrawn: is_withdrawn(&publication.osv),
                id: publication.public_id,
                cve_id: publication.cve_id,
                title: publication.title,
                html: publication.html,
            },
        ),
    }
}

/// `GET /advisories/osv/all.json`: every published OSV record (latest revision) as one JSON
/// array. OSV.dev's own bulk export is a zip of one file per record; an array is what
/// `osv-scanner`-style tools and `jq -c '.[]'` split trivially, needs no archive code, and
/// stays small for one project's advisories.
pub(crate) async fn osv_all(State(app): State<App>) -> Response {
    let list = match newest_first(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let mut records = Vec::with_capacity(list.len());
    for p in &list {
        match serde_json::from_str::<Value>(&p.osv) {
            Ok(v) => records.push(v),
            Err(e) => return failed(&app, AppError::Internal(e.into())),
        }
    }
    match serde_json::to_string_pretty(&records) {
        Ok(text) => reply(JSON, text, last_changed(&app, &list)),
        Err(e) => failed(&app, AppError::Internal(e.into())),
    }
}

/// XML text escaping for element content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A short plain-text summary for feed entries, which is not the title again (the OSV
/// `summary` is the title): the first paragraph of the OSV `details`, where the advisory's
/// summary comes first (a withdrawal's reason before it). Empty when there is none.
fn osv_summary(osv: &str) -> String {
    let Some(details) = serde_json::from_str::<Value>(osv).ok().and_then(|v| v["details"].as_str().map(str::to_owned))
    else {
        return String::new();
    };
    let first = details.split("\n\n").map(str::trim).find(|p| !p.is_empty()).unwrap_or_default();
    let first = first.replace("**Withdrawn:**", "Withdrawn:");
    let mut out: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 600 {
        out = out.chars().take(599).collect::<String>() + "…";
    }
    out
}

/// When the public set last changed: the latest publication, or — with nothing published —
/// now (which says nothing about drafts).
fn last_changed(app: &App, list: &[Publication]) -> Timestamp {
    list.iter().map(|p| p.modified_at).max().unwrap_or_else(|| app.now())
}

/// `GET /advisories.atom`: an Atom feed (RFC 4287) of published advisories. Entries carry a
/// plain-text summary and a link to the page; no HTML content.
pub(crate) async fn atom(State(app): State<App>) -> Response {
    let list = match newest_first(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let upcoming = match upcoming(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let base = app.config.base_url();
    let organisation = &app.config.organisation.name;
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!("  <id>{}</id>\n", xml(&format!("{base}/advisories"))));
    out.push_str(&format!("  <title>{}</title>\n", xml(&format!("{organisation} security advisories"))));
    out.push_str(&format!("  <updated>{}</updated>\n", last_changed(&app, &list)));
    out.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        xml(&format!("{base}/advisories.atom"))
    ));
    out.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        xml(&format!("{base}/advisories"))
    ));
    out.push_str(&format!("  <author><name>{}</name></author>\n", xml(organisation)));
    // Pre-announced disclosures: the opaque ID, the instant and the severity only.
    for a in &upcoming {
        let url = format!("{base}/advisories#upcoming-{}", a.id);
        let text = format!("Upcoming disclosure {}: {} severity, {}", a.id, a.severity, instant(a.disclose_at));
        out.push_str("  <entry>\n");
        out.push_str(&format!("    <id>{}</id>\n", xml(&url)));
        out.push_str(&format!("    <title>{}</title>\n", xml(&text)));
        out.push_str(&format!("    <updated>{}</updated>\n", last_changed(&app, &list)));
        out.push_str(&format!("    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n", xml(&url)));
        out.push_str(&format!("    <summary type=\"text\">{}</summary>\n", xml(&text)));
        out.push_str("  </entry>\n");
    }
    for p in &list {
        let url = format!("{base}/advisories/{}", p.public_id);
        let title = match &p.cve_id {
            Some(cve) => format!("{} ({cve}): {}", p.public_id, p.title),
            None => format!("{}: {}", p.public_id, p.title),
        };
        out.push_str("  <entry>\n");
        out.push_str(&format!("    <id>{}</id>\n", xml(&url)));
        out.push_str(&format!("    <title>{}</title>\n", xml(&title)));
        out.push_str(&format!("    <updated>{}</updated>\n", p.modified_at));
        out.push_str(&format!("    <published>{}</published>\n", p.published_at));
        out.push_str(&format!("    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n", xml(&url)));
        out.push_str(&format!(
            "    <link rel=\"related\" type=\"application/json\" href=\"{}\"/>\n",
            xml(&format!("{url}.json"))
        ));
        let summary = osv_summary(&p.osv);
        if !summary.is_empty() {
            out.push_str(&format!("    <summary type=\"text\">{}</summary>\n", xml(&summary)));
        }
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    reply_unstamped("application/atom+xml; charset=utf-8", out)
}

/// `GET /.well-known/csaf/provider-metadata.json` (CSAF 2.0 §7.1.7). The role is
/// `csaf_trusted_provider`: besides the provider requirements (valid documents, §5.1 file
/// names, TLP:WHITE freely accessible, no redirects, this file at the well-known place and
/// in security.txt, a ROLIE feed), every document has `.sha256`/`.sha512` hash files and a
/// detached OpenPGP `.asc` signature made with the key listed here (§7.1.18–20). TLS
/// (requirement 3) is the deployment's: `public_url` should be HTTPS.
pub(crate) async fn provider_metadata(State(app): State<App>) -> Response {
    let Some(base) = app.config.csaf_provider_url() else { return not_found(&app) };
    let list = match advisories::published(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let key = match embargo_app::openpgp::instance_key(&app).await {
        Ok(key) => key,
        Err(err) => return failed(&app, err),
    };
    let publisher = advisories::publisher(&app);
    let mut publisher_json = json!({
        "category": publisher.category,
        "name": publisher.name,
        "namespace": publisher.namespace,
    });
    if let Some(contact) = &publisher.contact {
        publisher_json["contact_details"] = json!(contact);
    }
    let metadata = json!({
        "canonical_url": format!("{base}{PROVIDER_METADATA}"),
        "distributions": [{
            "rolie": {
                "feeds": [{
                    "summary": format!("All TLP:WHITE advisories of {}.", app.config.organisation.name),
                    "tlp_label": "WHITE",
                    "url": format!("{base}{ROLIE_FEED}"),
                }],
            },
        }],
        "last_updated": last_changed(&app, &list).to_string(),
        "list_on_CSAF_aggregators": true,
        "metadata_version": "2.0",
        "mirror_on_CSAF_aggregators": true,
        "public_openpgp_keys": [{
            "fingerprint": key.fingerprint(),
            "url": format!("{base}/.well-known/security.asc"),
        }],
        "publisher": publisher_json,
        "role": "csaf_trusted_provider",
    });
    match serde_json::to_string_pretty(&metadata) {
        Ok(text) => reply(JSON, text, last_changed(&app, &list)),
        Err(e) => failed(&app, AppError::Internal(e.into())),
    }
}

/// `GET` the ROLIE feed (RFC 8322 JSON, CSAF 2.0 §7.1.15): one entry per published document,
/// linking the document, its hashes and its signature.
pub(crate) async fn rolie_feed(State(app): State<App>) -> Response {
    let Some(base) = app.config.csaf_provider_url() else { return not_found(&app) };
    let list = match newest_first(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let entries: Vec<Value> = list
        .iter()
        .map(|p| {
            let url = format!("{base}{WHITE}/{}", csaf_path(p));
            let summary = osv_summary(&p.osv);
            let mut entry = json!({
                "id": p.public_id,
                "title": p.title,
                "link": [
                    {"rel": "self", "href": url},
                    {"rel": "hash", "href": format!("{url}.sha256")},
                    {"rel": "hash", "href": format!("{url}.sha512")},
                    {"rel": "signature", "href": format!("{url}.asc")},
                ],
                "published": p.published_at.to_string(),
                "updated": p.modified_at.to_string(),
                "content": {"type": JSON, "src": url},
                "format": {
                    "schema": "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json",
                    "version": "2.0",
                },
            });
            if !summary.is_empty() {
                entry["summary"] = json!({ "content": summary });
            }
            entry
        })
        .collect();
    let feed = json!({
        "feed": {
            "id": "embargo-csaf-feed-tlp-white",
            "title": format!("{} CSAF feed (TLP:WHITE)", app.config.organisation.name),
            "link": [{"rel": "self", "href": format!("{base}{ROLIE_FEED}")}],
            "category": [{"scheme": "urn:ietf:params:rolie:category:information-type", "term": "csaf"}],
            "updated": last_changed(&app, &list).to_string(),
            "entry": entries,
        }
    });
    match serde_json::to_string_pretty(&feed) {
        Ok(text) => reply(JSON, text, last_changed(&app, &list)),
        Err(e) => failed(&app, AppError::Internal(e.into())),
    }
}

/// `GET /.well-known/csaf/white/index.txt` (§7.1.12): one `<year>/<file>` per line.
pub(crate) async fn index_txt(State(app): State<App>) -> Response {
    let mut list = match advisories::published(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    list.sort_by_key(csaf_path);
    let text: String = list.iter().map(|p| format!("{}\n", csaf_path(p))).collect();
    reply("text/plain; charset=utf-8", text, last_changed(&app, &list))
}

/// `GET /.well-known/csaf/white/changes.csv` (§7.1.13): `"<year>/<file>","<current release
/// date>"`, most recent change first, no header.
pub(crate) async fn changes_csv(State(app): State<App>) -> Response {
    let mut list = match advisories::published(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    list.sort_by(|a, b| b.modified_at.cmp(&a.modified_at).then_with(|| csaf_path(b).cmp(&csaf_path(a))));
    let text: String = list.iter().map(|p| format!("\"{}\",\"{}\"\n", csaf_path(p), p.modified_at)).collect();
    reply("text/csv; charset=utf-8", text, last_changed(&app, &list))
}

/// `GET /.well-known/csaf/white/{year}/{file}`: the CSAF document exactly as stored (`.json`),
/// its hashes in `sha256sum` format (`.json.sha256`, `.json.sha512`) and its detached
/// signature (`.json.asc`).
pub(crate) async fn csaf_file(State(app): State<App>, Path((year_text, name)): Path<(String, String)>) -> Response {
    let (filename, kind) = [".sha256", ".sha512", ".asc"]
        .into_iter()
        .find_map(|suffix| name.strip_suffix(suffix).map(|f| (f, suffix)))
        .unwrap_or((name.as_str(), ""));
    let list = match advisories::published(&app).await {
        Ok(list) => list,
        Err(err) => return failed(&app, err),
    };
    let Some(p) = list.iter().find(|p| p.csaf_filename == filename && year(p).to_string() == year_text) else {
        return not_found(&app);
    };
    let modified = p.modified_at;
    match kind {
        ".sha256" => reply(
            "text/plain; charset=utf-8",
            format!("{}  {}\n", hex::encode(sha2::Sha256::digest(p.csaf.as_bytes())), p.csaf_filename),
            modified,
        ),
        ".sha512" => reply(
            "text/plain; charset=utf-8",
            format!("{}  {}\n", hex::encode(sha2::Sha512::digest(p.csaf.as_bytes())), p.csaf_filename),
            modified,
        ),
        ".asc" => reply("application/pgp-signature", p.csaf_signature.clone(), modified),
        _ => reply(JSON, p.csaf.clone(), modified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_forbidden_characters() {
        assert_eq!(xml("<a href=\"x\">&'</a>\u{1}"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
    }

    #[test]
    fn severity_prefers_cvss_v4_and_reads_affected_entries() {
        let osv = r#"{"affected":[{"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]}]}"#;
        assert_eq!(severity(osv), Some(("High".into(), "7.5".into())));
        assert_eq!(severity("{}"), None);
    }
}
