//! Public advisories through the router, on SQLite and PostgreSQL: embargo safety (every
//! public route and feed is fetched on a fresh instance, again with an approved but
//! unpublished advisory, and again after publishing, and the three snapshots are diffed),
//! the CSAF provider (provider metadata and ROLIE feed against their schemas from the test
//! vectors, hashes, the detached signature checked by gpg), the Atom feed as XML, and the
//! OSV export; and the public pre-announcement of an embargo (issue 15), which changes
//! only the advisories page and its feed, with the date and the severity and nothing else.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use embargo_app::reports::{self, Channel, Submission};
use embargo_app::{accounts, advisories, assessment};
use embargo_domain::{Actor, Role};
use embargo_test_support::{both_backends, require, vectors_dir};
use serde_json::Value;

/// A word that appears nowhere else, so that any leak of the title is found.
const MARKER: &str = "Quokkazanzibar";
const TITLE: &str = "Quokkazanzibar heap overflow in <libparse> & friends";
const CVE: &str = "CVE-2026-48151";
/// `advisories.prefix`: our IDs are `QZX-2026-NNNN`.
const PREFIX: &str = "QZX";
const BASE: &str = "https://security.example.org";

/// Routes of `embargo_web::router` that are not public: secret-link pages (the setup link and
/// the reporter's status page), sign-in, the team app and the API (all behind a session or a
/// token, and covered by the need-to-know tests in `web.rs`).
const NOT_PUBLIC: &[&str] = &[
    "/setup/",
    "/status/",
    // A fix developer's link to set a password (a secret token, like the status link).
    "/invitations/",
    "/fixes",
    "/login",
    "/logout",
    "/inbox",
    "/dashboard",
    "/reports/",
    "/cvss/",
    "/account",
    "/admin",
    "/api/",
    "/team/",
    // The disclosure runbook's plans and their live progress: the team's (`web/runbook.rs`).
    "/disclosure",
    // The partner portal: partner contacts only (scoped per organisation, see `web/partners.rs`),
    // and a new contact's link to set a password.
    "/partner",
];

/// Public routes that change with every request for reasons of their own (process-wide
/// counters): fetched and checked for leaks, but left out of the before/after diff.
const VOLATILE: &[&str] = &["/metrics"];

/// Every public `GET` route template of the router, from its source (`src/lib.rs`), so that
/// a new public route cannot be forgotten here.
fn router_public_templates() -> BTreeSet<String> {
    let source = include_str!("../src/lib.rs");
    let mut templates = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let literal = rest.trim_start();
        let Some(literal) = literal.strip_prefix('"') else { panic!("a route without a literal path: {rest:.60}") };
        let path = &literal[..literal.find('"').unwrap()];
        let until_next = rest.find(".route(").or_else(|| rest.find(".fallback(")).unwrap_or(rest.len());
        let has_get = rest[..until_next].contains("get(");
        if has_get && !NOT_PUBLIC.iter().any(|p| path.starts_with(p)) {
            templates.insert(path.to_owned());
        }
    }
    templates
}

/// Every public route and feed as (template, concrete path), the advisory-specific ones
/// filled in for the advisory `id` first published in `year`, plus an ID that never existed.
fn public_routes(id: &str, year: i16) -> Vec<(&'static str, String)> {
    let file = format!("{}.json", id.to_lowercase());
    let csaf = format!("/.well-known/csaf/white/{year}/{file}");
    vec![
        ("/", "/".into()),
        ("/policy", "/policy".into()),
        ("/report", "/report".into()),
        ("/healthz", "/healthz".into()),
        ("/metrics", "/metrics".into()),
        ("/static/app.css", "/static/app.css".into()),
        ("/static/app.js", "/static/app.js".into()),
        ("/.well-known/security.txt", "/.well-known/security.txt".into()),
        ("/.well-known/security.asc", "/.well-known/security.asc".into()),
        ("/advisories", "/advisories".into()),
        ("/advisories.atom", "/advisories.atom".into()),
        ("/advisories/osv/all.json", "/advisories/osv/all.json".into()),
        ("/advisories/{name}", format!("/advisories/{id}")),
        ("/advisories/{name}", format!("/advisories/{id}.json")),
        ("/advisories/{name}", format!("/advisories/{id}.cve.json")),
        ("/advisories/{name}", format!("/advisories/{PREFIX}-{year}-9999")),
        ("/.well-known/csaf/provider-metadata.json", "/.well-known/csaf/provider-metadata.json".into()),
        (
            "/.well-known/csaf/white/embargo-feed-tlp-white.json",
            "/.well-known/csaf/white/embargo-feed-tlp-white.json".into(),
        ),
        ("/.well-known/csaf/white/index.txt", "/.well-known/csaf/white/index.txt".into()),
        ("/.well-known/csaf/white/changes.csv", "/.well-known/csaf/white/changes.csv".into()),
        ("/.well-known/csaf/white/{year}/{file}", csaf.clone()),
        ("/.well-known/csaf/white/{year}/{file}", format!("{csaf}.sha256")),
        ("/.well-known/csaf/white/{year}/{file}", format!("{csaf}.sha512")),
        ("/.well-known/csaf/white/{year}/{file}", format!("{csaf}.asc")),
        ("/.well-known/csaf/white/{year}/{file}", format!("/.well-known/csaf/white/{year}/nothing.json")),
    ]
}

/// Removes what differs on every request by design: the clearsignature of security.txt (its
/// signature packet carries the signing time) and the report form's anti-spam challenge.
fn normalise(body: &str) -> String {
    let mut out = body.to_owned();
    if let (Some(start), Some(end)) =
        (out.find("-----BEGIN PGP SIGNATURE-----"), out.find("-----END PGP SIGNATURE-----"))
        && out.contains("-----BEGIN PGP SIGNED MESSAGE-----")
    {
        out.replace_range(start..end, "<signature>");
    }
    let marker = "name=\"challenge\" value=\"";
    if let Some(at) = out.find(marker) {
        let from = at + marker.len();
        let to = from + out[from..].find('"').unwrap();
        out.replace_range(from..to, "<challenge>");
    }
    out
}

type Snapshot = BTreeMap<String, (StatusCode, String)>;

async fn snapshot(router: &Router, routes: &[(&'static str, String)]) -> Snapshot {
    let mut out = Snapshot::new();
    for (_, path) in routes {
        let reply = send(router, get(path, None)).await;
        out.insert(path.clone(), (reply.status, normalise(&reply.body)));
    }
    out
}

fn submission(title: &str) -> Submission {
    Submission {
        reporter_name: Some("Rita Reporter".into()),
        ..Submission::new(Channel::Web, "reporter@example.net", title, "details")
    }
}

/// An OSV record to import (it becomes a draft, and later the second publication).
const IMPORTED: &str = r#"{"id": "GHSA-qqqq-rrrr-ssss", "modified": "2026-01-02T00:00:00Z",
    "summary": "Imported parser bug", "details": "Imported details.",
    "affected": [{"package": {"ecosystem": "npm", "name": "left-pad", "purl": "pkg:npm/left-pad"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]}],
    "references": [{"type": "WEB", "url": "https://example.net/left-pad"}]}"#;

/// Two admins and a catalogue product (the report form lists products, so this happens
/// before the first snapshot). Returns (lead, second, product).
async fn team(web: &Web) -> (Actor, Actor, i64) {
    let app = &web.app;
    let local = Actor::LocalAdmin { os_user: "root".into() };
    let lead_id = accounts::create_user(app, &local, "lead@example.org", Role::Admin, None).await.unwrap();
    let lead = Actor::User { id: lead_id, role: Role::Admin };
    let second_id = accounts::create_user(app, &local, "second@example.org", Role::Admin, None).await.unwrap();
    let second = Actor::User { id: second_id, role: Role::Admin };
    let product = accounts::create_product(app, &lead, "libparse").await.unwrap();
    accounts::update_product(
        app,
        &lead,
        product,
        "https://git.example.org/libparse",
        "crates.io",
        "pkg:cargo/libparse",
        "2.x",
    )
    .await
    .unwrap();
    (lead, second, product)
}

/// A report, and an advisory for it taken to `approved` by two admins. Returns its ID.
async fn approved_advisory(web: &Web, (lead, second, product): (Actor, Actor, i64)) -> String {
    let app = &web.app;
    let reference = reports::submit(app, &Actor::Reporter, submission("A parser crash")).await.unwrap().reference;
    assessment::set_cvss(app, &lead, &reference, "3.1", Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"))
        .await
        .unwrap();
    assessment::set_classification(app, &lead, &reference, "CWE-787", None).await.unwrap();
    let rows = [assessment::Affected {
        product_id: product,
        introduced: "2.0.0".into(),
        fixed: "2.4.1".into(),
        last_affected: String::new(),
    }];
    assessment::set_affected(app, &lead, &reference, &rows).await.unwrap();
    let id = advisories::create(app, &lead, TITLE, Some(&reference)).await.unwrap();
    let mut record = advisories::get(app, &lead, &id).await.unwrap().record;
    record.cve_id = Some(CVE.into());
    record.summary = format!("{MARKER}: a crafted archive makes the parser write past a buffer.");
    record.details = "Parsing a crafted archive overflows a heap buffer.".into();
    record.workarounds = "Do not parse untrusted archives until you upgrade.".into();
    // A CVE record needs at least one reference.
    record.references.push(
        serde_json::from_value(
            serde_json::json!({"url": "https://git.example.org/libparse/releases/2.4.1", "type": "FIX"}),
        )
        .unwrap(),
    );
    let validation = advisories::update(app, &lead, &id, record).await.unwrap();
    assert!(validation.is_publishable(), "{validation}");
    advisories::submit_for_review(app, &lead, &id).await.unwrap();
    advisories::approve(app, &second, &id).await.unwrap();
    assert_eq!(advisories::get(app, &lead, &id).await.unwrap().state, embargo_domain::AdvisoryState::Approved);
    id
}

/// Whether `body` says anything about the advisory: its title, ID (any case: the CSAF file
/// name is the lower-case ID), its draft handle or any other, or CVE ID.
fn mentions(body: &str, id: &str) -> Option<&'static str> {
    let lower = body.to_lowercase();
    if lower.contains(&MARKER.to_lowercase()) {
        Some("the title")
    } else if lower.contains(&id.to_lowercase()) {
        Some("the advisory ID")
    } else if lower.contains("draft-") {
        Some("a draft handle")
    } else if lower.contains(&CVE.to_lowercase()) {
        Some("the CVE ID")
    } else {
        None
    }
}

#[tokio::test]
async fn nothing_of_an_advisory_is_public_before_publication_and_every_surface_after() {
    for db in both_backends() {
        let web = web_with(&db, |c| {
            c.public_url = BASE.into();
            c.organisation.name = "Example Project".into();
            c.advisories.prefix = PREFIX.into();
            c.advisories.cve_org_id = "b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into();
            c.advisories.cve_short_name = "example".into();
        })
        .await;
        let backend = db.backend;
        let router = &web.router;
        // The clock stands still for the whole test, so time-dependent fields (security.txt's
        // Expires, the feeds' "updated" with nothing published) are equal in every snapshot.
        let year = web.app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        // The ID the advisory will get (the first of the year); checked below.
        let expected_id = format!("{PREFIX}-{year}-0001");
        let routes = public_routes(&expected_id, year);

        // The list covers every public GET route of the router.
        let listed: BTreeSet<String> = routes.iter().map(|(t, _)| (*t).to_owned()).collect();
        assert_eq!(router_public_templates(), listed, "public routes and the test's list differ");

        let team = team(&web).await;
        // A fresh instance, twice: normalisation removes everything that varies by itself.
        let fresh = snapshot(router, &routes).await;
        let again = snapshot(router, &routes).await;
        assert_eq!(differing(&fresh, &again), BTreeSet::new(), "{backend}: these public routes vary between requests");

        // Work under embargo before it: a draft and an import. Drafts take handles, not
        // public numbers (issue 19 item 5).
        let other_draft = advisories::create(&web.app, &team.0, "Another embargoed draft", None).await.unwrap();
        let imported = advisories::import_osv(&web.app, &team.0, IMPORTED).await.unwrap().id;
        let handle = approved_advisory(&web, team.clone()).await;
        assert_eq!(
            [other_draft.as_str(), imported.as_str(), handle.as_str()],
            [format!("DRAFT-{year}-0001"), format!("DRAFT-{year}-0002"), format!("DRAFT-{year}-0003")]
        );
        // The ID it will be published under is not taken yet: the public sequence knows
        // nothing of the three drafts.
        let id = expected_id.clone();
        assert_eq!(advisories::get(&web.app, &team.0, &handle).await.unwrap().public_id, None);

        // Approved, not published: every public route is exactly as on the fresh instance
        // (so no title, ID, CVE, count or date), and the advisory's own URLs are the same
        // 404 as an ID that never existed.
        let before = snapshot(router, &routes).await;
        for (path, (status, body)) in &before {
            assert!(
                mentions(body, &id).is_none(),
                "{backend}: {path} reveals {:?} before publication",
                mentions(body, &id)
            );
            for count in ["1 advisory", "1 advisories", "1 published", "1 draft"] {
                assert!(!body.contains(count), "{backend}: {path} shows a count ({count}) before publication");
            }
            if path.contains(&id) || path.contains(&id.to_lowercase()) {
                assert_eq!(*status, StatusCode::NOT_FOUND, "{backend}: {path} before publication");
            }
        }
        assert_eq!(
            differing(&fresh, &before),
            BTreeSet::new(),
            "{backend}: an unpublished advisory changed these routes"
        );
        let never = &before[&format!("/advisories/{PREFIX}-{year}-9999")];
        assert_eq!(before[&format!("/advisories/{id}")], *never, "an unpublished advisory is an unknown path");
        assert_eq!(send(router, get("/no-such-page", None)).await.body, never.1, "the same 404 as any unknown path");
        // security.txt names the provider metadata from the start.
        assert!(
            before["/.well-known/security.txt"]
                .1
                .contains(&format!("CSAF: {BASE}/.well-known/csaf/provider-metadata.json"))
        );

        // Publish now: it becomes the first of the year, with two drafts before it.
        let lead = Actor::LocalAdmin { os_user: "root".into() };
        assert_eq!(advisories::publish(&web.app, &lead, &handle, None).await.unwrap(), 1, "{backend}");
        assert_eq!(advisories::get(&web.app, &lead, &handle).await.unwrap().public_id.as_deref(), Some(id.as_str()));
        let after = snapshot(router, &routes).await;

        // Exactly the advisory surfaces changed.
        let changed = differing(&before, &after);
        let csaf = format!("/.well-known/csaf/white/{year}/{}.json", id.to_lowercase());
        let surfaces = [
            "/advisories".to_owned(),
            "/advisories.atom".into(),
            "/advisories/osv/all.json".into(),
            format!("/advisories/{id}"),
            format!("/advisories/{id}.json"),
            format!("/advisories/{id}.cve.json"),
            "/.well-known/csaf/white/embargo-feed-tlp-white.json".into(),
            "/.well-known/csaf/white/index.txt".into(),
            "/.well-known/csaf/white/changes.csv".into(),
            csaf.clone(),
            format!("{csaf}.sha256"),
            format!("{csaf}.sha512"),
            format!("{csaf}.asc"),
        ];
        // The provider metadata is not among them: its one date (`last_updated`) is "now"
        // with nothing published and the publication time after, equal on a stopped clock.
        let expected: BTreeSet<String> = surfaces.iter().cloned().collect();
        assert_eq!(changed, expected, "{backend}: the routes that changed on publication");
        for path in &surfaces {
            let (status, body) = &after[path];
            assert_eq!(*status, StatusCode::OK, "{backend}: {path} after publication: {body:.300}");
            if !path.ends_with(".asc") {
                assert!(mentions(body, &id).is_some(), "{backend}: {path} does not show the advisory");
            }
        }
        for path in ["/advisories", "/advisories.atom", &format!("/advisories/{id}")] {
            let body = &after[path].1;
            assert!(
                body.contains(MARKER) && body.contains(&id) && body.contains(CVE),
                "{backend}: {path}: {body:.2000}"
            );
        }
        // The page escapes the title and shows the stored, sanitised announcement.
        let page = &after[&format!("/advisories/{id}")].1;
        assert!(page.contains("&lt;libparse&gt; &amp; friends"), "{page:.3000}");
        assert!(!page.contains("<libparse>"));
        assert!(page.contains("Do not parse untrusted archives"));
        assert!(page.contains(&format!("href=\"{csaf}\"")));
        // Unknown IDs and files stay 404.
        assert_eq!(after[&format!("/advisories/{PREFIX}-{year}-9999")].0, StatusCode::NOT_FOUND);
        assert_eq!(after[&format!("/.well-known/csaf/white/{year}/nothing.json")].0, StatusCode::NOT_FOUND);

        check_formats(&web, router, &id, &csaf, &after).await;
        conditional_requests_and_cors(router, &id, &csaf).await;
        numbering(&web, &team, &imported, &other_draft, &routes, year).await;
        withdrawal(&web, router, &handle, &id, &csaf).await;
        // With nothing published, the provider metadata and the (empty) feed are valid too.
        validate_provider_metadata(
            &serde_json::from_str(&fresh["/.well-known/csaf/provider-metadata.json"].1).unwrap(),
        );
        validate_rolie(&serde_json::from_str(&fresh["/.well-known/csaf/white/embargo-feed-tlp-white.json"].1).unwrap());
    }
}

/// Issue 19 item 12: documents and feeds carry validators; a poll that names the current
/// version gets `304` without a body; browser tools may read them from any origin.
async fn conditional_requests_and_cors(router: &Router, id: &str, csaf: &str) {
    use axum::body::Body;
    use axum::http::{Request, header};
    let with = |path: &str, name: header::HeaderName, value: &str| {
        Request::get(path).header(header::HOST, "embargo.test").header(name, value).body(Body::empty()).unwrap()
    };
    let paths = [
        csaf.to_owned(),
        format!("{csaf}.sha256"),
        format!("{csaf}.asc"),
        format!("/advisories/{id}.json"),
        format!("/advisories/{id}.cve.json"),
        "/advisories/osv/all.json".to_owned(),
        "/advisories.atom".to_owned(),
        "/.well-known/csaf/white/embargo-feed-tlp-white.json".to_owned(),
        "/.well-known/csaf/provider-metadata.json".to_owned(),
        "/.well-known/csaf/white/index.txt".to_owned(),
        "/.well-known/csaf/white/changes.csv".to_owned(),
    ];
    for path in &paths {
        let first = send(router, get(path, None)).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        let etag =
            first.headers.get(header::ETAG).unwrap_or_else(|| panic!("{path}: no ETag")).to_str().unwrap().to_owned();
        assert_eq!(first.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{path}");
        assert_eq!(first.headers[header::CACHE_CONTROL], "no-cache", "{path}: clients revalidate");
        // The same bytes, the same validator.
        assert_eq!(send(router, get(path, None)).await.headers[header::ETAG], etag.as_str(), "{path}");
        let again = send(router, with(path, header::IF_NONE_MATCH, &etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.headers[header::ETAG], etag.as_str());
        let listed = send(router, with(path, header::IF_NONE_MATCH, &format!("\"other\", W/{etag}"))).await;
        assert_eq!(listed.status, StatusCode::NOT_MODIFIED, "{path}: a list with a weak match");
        let stale = send(router, with(path, header::IF_NONE_MATCH, "\"0123\"")).await;
        assert_eq!((stale.status, stale.body.as_str()), (StatusCode::OK, first.body.as_str()), "{path}");
        let older = send(router, with(path, header::IF_MODIFIED_SINCE, "Thu, 01 Jan 2015 00:00:00 GMT")).await;
        assert_eq!(older.status, StatusCode::OK, "{path}");
        if path == "/advisories.atom" {
            // The feed shows pre-announcements, which have no time of change: no
            // Last-Modified, so If-Modified-Since cannot hide a new one; the ETag validates.
            assert!(first.headers.get(header::LAST_MODIFIED).is_none());
            let since = send(router, with(path, header::IF_MODIFIED_SINCE, "Thu, 01 Jan 2099 00:00:00 GMT")).await;
            assert_eq!(since.status, StatusCode::OK, "{path}");
            continue;
        }
        let modified = first.headers[header::LAST_MODIFIED].to_str().unwrap().to_owned();
        let since = send(router, with(path, header::IF_MODIFIED_SINCE, &modified)).await;
        assert_eq!(since.status, StatusCode::NOT_MODIFIED, "{path}: If-Modified-Since {modified}");
    }
    // The preflight of a browser tool that sends If-None-Match: read-only methods only.
    let preflight = Request::options(csaf)
        .header(header::HOST, "embargo.test")
        .header(header::ORIGIN, "https://viewer.example.net")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "if-none-match")
        .body(Body::empty())
        .unwrap();
    let reply = send(router, preflight).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD, OPTIONS");
    assert!(reply.headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("If-None-Match"));
    assert!(reply.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    // Nothing but reading: a POST is still refused, and an unknown document is the same
    // 404 as any unknown path, without CORS headers or a validator.
    let missing = send(router, get("/.well-known/csaf/white/2026/nothing.json", None)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.headers.get(header::ETAG).is_none()
            && missing.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none()
    );
    let post = send(router, common::post(csaf, None, &[])).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Issue 19 item 5: the public sequence follows publications. The import (a draft older than
/// the first publication) is published second and gets the second number; the other draft
/// never gets one, and no draft handle is on any public route.
async fn numbering(
    web: &Web,
    team: &(Actor, Actor, i64),
    imported: &str,
    other_draft: &str,
    routes: &[(&'static str, String)],
    year: i16,
) {
    let (lead, second, _) = team;
    let app = &web.app;
    advisories::submit_for_review(app, lead, imported).await.unwrap();
    advisories::approve(app, second, imported).await.unwrap();
    advisories::publish(app, lead, imported, None).await.unwrap();
    let public = advisories::get(app, lead, imported).await.unwrap().public_id.unwrap();
    assert_eq!(public, format!("{PREFIX}-{year}-0002"));
    assert_eq!(advisories::get(app, lead, other_draft).await.unwrap().public_id, None);
    let index = send(&web.router, get("/.well-known/csaf/white/index.txt", None)).await.body;
    assert_eq!(index, format!("{year}/qzx-{year}-0001.json\n{year}/qzx-{year}-0002.json\n"));
    let page = send(&web.router, get("/advisories", None)).await.body;
    assert!(page.contains(&format!("{PREFIX}-{year}-0001")) && page.contains(&format!("{PREFIX}-{year}-0002")));
    assert!(!page.contains(&format!("{PREFIX}-{year}-0003")));
    for (_, path) in routes {
        let body = send(&web.router, get(path, None)).await.body;
        assert!(!body.to_lowercase().contains("draft-"), "{path} names a draft handle");
        assert!(!body.contains("Another embargoed draft"), "{path} names the unpublished draft");
    }
}

/// Issue 19 item 1 through the public routes: after a withdrawal the OSV record, the CVE
/// record and the CSAF document served all say so, and the advisory stays listed (withdrawn
/// is not deleted).
async fn withdrawal(web: &Web, router: &Router, handle: &str, id: &str, csaf_path: &str) {
    let lead = Actor::LocalAdmin { os_user: "root".into() };
    web.clock.advance_secs(3600);
    let reason = "Duplicate of an earlier advisory; withdrawn.";
    assert_eq!(advisories::withdraw(&web.app, &lead, handle, reason).await.unwrap(), 2);
    let osv: Value =
        serde_json::from_str(&send(router, get(&format!("/advisories/{id}.json"), None)).await.body).unwrap();
    assert!(osv["withdrawn"].as_str().unwrap() > osv["published"].as_str().unwrap(), "{osv:#}");
    let cve: Value =
        serde_json::from_str(&send(router, get(&format!("/advisories/{id}.cve.json"), None)).await.body).unwrap();
    assert_eq!(cve["cveMetadata"]["state"], "REJECTED");
    assert_eq!(cve["containers"]["cna"]["rejectedReasons"][0]["value"], reason);
    let csaf: Value = serde_json::from_str(&send(router, get(csaf_path, None)).await.body).unwrap();
    assert_eq!(csaf["document"]["category"], "csaf_base");
    assert_eq!(csaf["document"]["notes"][0]["text"], reason);
    assert_eq!(csaf["document"]["tracking"]["revision_history"][1]["summary"], format!("Withdrawn: {reason}"));
    let page = send(router, get(&format!("/advisories/{id}"), None)).await.body;
    assert!(page.contains("id=\"withdrawn\"") && page.contains("Duplicate of an earlier advisory"), "{page:.3000}");
    // Still listed, marked withdrawn; the other advisory is not.
    let index = send(router, get("/advisories", None)).await.body;
    assert_eq!(index.matches("<span class=\"badge\">withdrawn</span>").count(), 1, "{index}");
    let atom = send(router, get("/advisories.atom", None)).await.body;
    assert!(atom.contains("Withdrawn: Duplicate of an earlier advisory"), "{atom}");
}

/// Issue 19 item 10: without an `https` public URL the instance declares no CSAF provider:
/// no provider metadata, no ROLIE feed, no `CSAF:` line in security.txt (CSAF requires TLS).
#[tokio::test]
async fn no_csaf_provider_without_https() {
    for db in both_backends() {
        let web = web_with(&db, |c| c.public_url = "http://security.example.org".into()).await;
        for path in ["/.well-known/csaf/provider-metadata.json", "/.well-known/csaf/white/embargo-feed-tlp-white.json"]
        {
            assert_eq!(send(&web.router, get(path, None)).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let txt = send(&web.router, get("/.well-known/security.txt", None)).await.body;
        assert!(txt.contains("Contact: ") && !txt.contains("CSAF:"), "{txt}");
        // The advisories themselves are still served; the index names no provider.
        assert_eq!(send(&web.router, get("/advisories.atom", None)).await.status, StatusCode::OK);
        let index = send(&web.router, get("/advisories", None)).await.body;
        assert!(!index.contains("provider-metadata.json"), "{index}");
        assert_eq!(send(&web.router, get("/.well-known/csaf/white/index.txt", None)).await.status, StatusCode::OK);
    }
}

/// The routes whose status or (normalised) body differ between two snapshots, volatile
/// ones aside.
fn differing(a: &Snapshot, b: &Snapshot) -> BTreeSet<String> {
    a.iter()
        .filter(|(path, old)| !VOLATILE.contains(&path.as_str()) && b[*path] != **old)
        .map(|(p, _)| p.clone())
        .collect()
}

/// The published outputs: OSV, Atom, the CSAF provider, hashes and the signature.
async fn check_formats(web: &Web, router: &Router, id: &str, csaf: &str, after: &Snapshot) {
    let publication = advisories::published_one(&web.app, id).await.unwrap().unwrap();

    // OSV: the record as stored, and the export as an array of the same records.
    let one = send(router, get(&format!("/advisories/{id}.json"), None)).await;
    assert_eq!(one.headers["content-type"], "application/json");
    assert_eq!(one.body, publication.osv);
    let all: Vec<Value> = serde_json::from_str(&after["/advisories/osv/all.json"].1).unwrap();
    assert_eq!(all, vec![serde_json::from_str::<Value>(&publication.osv).unwrap()]);
    assert_eq!(after[&format!("/advisories/{id}.cve.json")].1, publication.cve_record.clone().unwrap());

    // Atom: well-formed, with the elements RFC 4287 requires, the title escaped correctly.
    let atom_text = &after["/advisories.atom"].1;
    let atom = roxmltree::Document::parse(atom_text).unwrap_or_else(|e| panic!("Atom is not XML: {e}\n{atom_text}"));
    let ns = "http://www.w3.org/2005/Atom";
    let feed = atom.root_element();
    assert!(feed.has_tag_name((ns, "feed")));
    assert_eq!(child(feed, "id").text(), Some(format!("{BASE}/advisories").as_str()));
    assert!(child(feed, "title").text().is_some());
    assert_eq!(child(feed, "updated").text(), Some(publication.modified_at.to_string().as_str()));
    assert!(feed.children().any(|c| c.has_tag_name((ns, "link"))
        && c.attribute("rel") == Some("self")
        && c.attribute("href") == Some(format!("{BASE}/advisories.atom").as_str())));
    let entries: Vec<_> = feed.children().filter(|c| c.has_tag_name((ns, "entry"))).collect();
    assert_eq!(entries.len(), 1);
    let entry = entries[0];
    assert_eq!(child(entry, "id").text(), Some(format!("{BASE}/advisories/{id}").as_str()));
    assert_eq!(child(entry, "title").text(), Some(format!("{id} ({CVE}): {TITLE}").as_str()));
    assert_eq!(child(entry, "published").text(), Some(publication.published_at.to_string().as_str()));
    assert!(child(entry, "updated").text().is_some());
    // The summary is the advisory's summary, not its title again (issue 19 item 13).
    assert!(child(entry, "summary").text().unwrap().starts_with(&format!("{MARKER}: a crafted archive")));
    assert_eq!(child(entry, "link").attribute("href"), Some(format!("{BASE}/advisories/{id}").as_str()));

    // CSAF: the stored bytes, their hashes in sha256sum format, the stored signature.
    let document = &after[csaf].1;
    assert_eq!(*document, publication.csaf, "the CSAF file is served exactly as stored");
    let filename = csaf.rsplit('/').next().unwrap();
    let sha256 = sha256_hex(document.as_bytes());
    assert_eq!(after[&format!("{csaf}.sha256")].1, format!("{sha256}  {filename}\n"));
    let sha512 = &after[&format!("{csaf}.sha512")].1;
    assert!(sha512.ends_with(&format!("  {filename}\n")) && sha512.split("  ").next().unwrap().len() == 128);
    assert_eq!(after[&format!("{csaf}.asc")].1, publication.csaf_signature);
    let tracking_id = serde_json::from_str::<Value>(document).unwrap()["document"]["tracking"]["id"].clone();
    assert_eq!(tracking_id, id);

    // index.txt and changes.csv.
    let year_file = csaf.trim_start_matches("/.well-known/csaf/white/");
    assert_eq!(after["/.well-known/csaf/white/index.txt"].1, format!("{year_file}\n"));
    assert_eq!(
        after["/.well-known/csaf/white/changes.csv"].1,
        format!("\"{year_file}\",\"{}\"\n", publication.modified_at)
    );

    // The provider metadata and the ROLIE feed.
    let metadata: Value = serde_json::from_str(&after["/.well-known/csaf/provider-metadata.json"].1).unwrap();
    assert_eq!(metadata["canonical_url"], format!("{BASE}/.well-known/csaf/provider-metadata.json"));
    assert_eq!(metadata["role"], "csaf_trusted_provider");
    assert_eq!(metadata["last_updated"], publication.modified_at.to_string());
    let key = embargo_app::openpgp::instance_key(&web.app).await.unwrap();
    assert_eq!(metadata["public_openpgp_keys"][0]["fingerprint"], key.fingerprint());
    assert_eq!(metadata["public_openpgp_keys"][0]["url"], format!("{BASE}/.well-known/security.asc"));
    let document_json: Value = serde_json::from_str(document).unwrap();
    assert_eq!(metadata["publisher"], document_json["document"]["publisher"], "the same publisher as the documents");
    let feed_url = metadata["distributions"][0]["rolie"]["feeds"][0]["url"].as_str().unwrap();
    assert_eq!(feed_url, format!("{BASE}/.well-known/csaf/white/embargo-feed-tlp-white.json"));
    let rolie: Value = serde_json::from_str(&after["/.well-known/csaf/white/embargo-feed-tlp-white.json"].1).unwrap();
    let entry = &rolie["feed"]["entry"][0];
    assert_eq!(entry["id"], id);
    assert_eq!(entry["title"], TITLE);
    // Issue 19 item 13: the summary says more than the title.
    assert!(entry["summary"]["content"].as_str().unwrap().starts_with(&format!("{MARKER}: a crafted archive")));
    assert_eq!(entry["content"]["src"], format!("{BASE}{csaf}"));
    let links = entry["link"].as_array().unwrap();
    let has = |rel: &str, href: String| links.iter().any(|l| l["rel"] == rel && l["href"] == href);
    assert!(has("self", format!("{BASE}{csaf}")), "{links:?}");
    assert!(has("hash", format!("{BASE}{csaf}.sha256")), "{links:?}");
    assert!(has("hash", format!("{BASE}{csaf}.sha512")), "{links:?}");
    assert!(has("signature", format!("{BASE}{csaf}.asc")), "{links:?}");
    validate_provider_metadata(&metadata);
    validate_rolie(&rolie);

    // gpg verifies the detached signature with the key served at /.well-known/security.asc.
    let public_key = &after["/.well-known/security.asc"].1;
    gpg_verify(public_key, document.as_bytes(), &after[&format!("{csaf}.asc")].1);
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    node.children()
        .find(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", name)))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", node.tag_name().name()))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn compile(schema_path: &Path, extra: &[(String, Value)]) -> jsonschema::Validator {
    let root: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let mut options = jsonschema::options().should_validate_formats(true);
    let registry;
    if !extra.is_empty() {
        let mut builder = jsonschema::Registry::new();
        for (uri, resource) in extra {
            builder = builder.add(uri.clone(), resource.clone()).unwrap();
        }
        registry = builder.prepare().unwrap();
        options = options.with_registry(&registry);
    }
    options.build(&root).unwrap_or_else(|e| panic!("{}: {e}", schema_path.display()))
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} is not valid against its schema:\n{}\n{instance:#}", errors.join("\n"));
}

/// Against `csaf_2.0/json_schema/provider_json_schema.json`, which refers to the CSAF schema
/// (for `publisher`), which refers to the FIRST CVSS schemas.
fn validate_provider_metadata(metadata: &Value) {
    let Some(dir) = vectors_dir("csaf/csaf_2.0") else { return };
    let read = |p: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap() };
    let mut extra = vec![(
        "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json".to_owned(),
        read("json_schema/csaf_json_schema.json"),
    )];
    for version in ["2.0", "3.0", "3.1"] {
        let schema = read(&format!("referenced_schema/first/cvss-v{version}.json"));
        extra.push((format!("https://www.first.org/cvss/cvss-v{version}.json"), schema));
    }
    let validator = compile(&dir.join("json_schema/provider_json_schema.json"), &extra);
    // The standard's own example first, so that a broken validator cannot pass ours.
    assert_valid(&validator, &read("examples/provider-metadata/example-01-provider-metadata.json"), "the example");
    assert_valid(&validator, metadata, "provider-metadata.json");
}

/// Against the BSI gocsaf ROLIE feed schema.
fn validate_rolie(feed: &Value) {
    let Some(dir) = vectors_dir("csaf/gocsaf/schema") else { return };
    let validator = compile(&dir.join("ROLIE_feed_json_schema.json"), &[]);
    assert_valid(&validator, feed, "the ROLIE feed");
}

fn gpg_verify(public_key: &str, data: &[u8], signature: &str) {
    let found = std::process::Command::new("gpg")
        .arg("--version")
        .output()
        .map_err(|e| e.to_string())
        .and_then(|o| if o.status.success() { Ok(()) } else { Err("gpg --version failed".into()) });
    if require("gpg", found).is_none() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--no-tty", "--no-autostart"])
            .args(args)
            .output()
            .unwrap()
    };
    let key_path = home.path().join("security.asc");
    std::fs::write(&key_path, public_key).unwrap();
    let imported = run(&["--import", key_path.to_str().unwrap()]);
    assert!(imported.status.success(), "gpg --import: {}", String::from_utf8_lossy(&imported.stderr));
    let data_path = home.path().join("document.json");
    let signature_path = home.path().join("document.json.asc");
    std::fs::write(&data_path, data).unwrap();
    std::fs::write(&signature_path, signature).unwrap();
    let verified = run(&["--verify", signature_path.to_str().unwrap(), data_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success() && stderr.contains("Good signature"), "gpg --verify: {stderr}");
    // A changed byte does not verify.
    let mut tampered = data.to_vec();
    tampered[0] ^= 1;
    std::fs::write(&data_path, tampered).unwrap();
    assert!(!run(&["--verify", signature_path.to_str().unwrap(), data_path.to_str().unwrap()]).status.success());
}

/// Issue 15: a pre-announced embargo shows on `/advisories` and its Atom feed with an
/// opaque ID, the instant (UTC) and the severity, and changes nothing else of any public
/// route; none of the report's reference, title, CVE, product or partners shows. Withdrawing
/// the announcement, or breaking the embargo, takes it away again (every route as before).
#[tokio::test]
async fn a_pre_announcement_reveals_only_the_date_and_the_severity() {
    for db in both_backends() {
        let web = web_with(&db, |c| {
            c.public_url = BASE.into();
            c.organisation.name = "Example Project".into();
            c.advisories.prefix = PREFIX.into();
            c.advisories.cve_org_id = "b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into();
            c.advisories.cve_short_name = "example".into();
        })
        .await;
        let (backend, app, router) = (db.backend, &web.app, &web.router);
        let year = web.app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
        let routes = public_routes(&format!("{PREFIX}-{year}-0001"), year);
        let team = team(&web).await;
        let product = team.2;
        let id = approved_advisory(&web, team).await;
        // The report of `approved_advisory`, the instance's first (prefix WEB).
        let reference: embargo_domain::ReferenceId = format!("WEB-{year}-1").parse().unwrap();
        let lead = Actor::LocalAdmin { os_user: "root".into() };
        reports::set_product(app, &lead, &reference, Some(product)).await.unwrap();
        for to in ["triaging", "accepted"] {
            reports::transition(app, &lead, &reference, to.parse().unwrap()).await.unwrap();
        }
        let key =
            embargo_mail::openpgp::InstanceKey::generate("P <sec@partner.test>").unwrap().public_armored().unwrap();
        embargo_app::partners::add(
            app,
            &lead,
            embargo_app::partners::NewPartnerInput {
                name: "Zanzipartner Org".into(),
                contacts: vec![embargo_app::partners::NewContact { email: "sec@partner.test".into(), key: Some(key) }],
                products: vec!["libparse".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let at: embargo_domain::Timestamp = "2026-03-17T16:00:00Z".parse().unwrap();
        let options = embargo_app::partners::DraftOptions {
            disclose_at: at,
            confirm_day: false,
            deploy_hosted: false,
            tell_customers: false,
        };
        let drafted = embargo_app::partners::draft(app, &lead, &reference, options).await.unwrap();
        embargo_app::partners::send(app, &lead, &drafted.notice.to_string(), false).await.unwrap();
        let before = snapshot(router, &routes).await;

        let announced = embargo_app::partners::announce(app, &lead, &reference).await.unwrap();
        assert_eq!(announced.severity, "High", "the assessment's (CVSS 7.5)");
        let during = snapshot(router, &routes).await;
        let changed = differing(&before, &during);
        let expected: BTreeSet<String> = ["/advisories", "/advisories.atom"].into_iter().map(str::to_owned).collect();
        assert_eq!(changed, expected, "{backend}: a pre-announcement changed these routes");
        for path in &expected {
            let body = &during[path].1;
            assert!(body.contains(&announced.id), "{backend}: {path} shows the opaque ID");
            assert!(body.contains("High") && body.contains("2026-03-17 16:00 UTC"), "{backend}: {path}: {body:.3000}");
            assert_eq!(mentions(body, &id), None, "{backend}: {path}");
            for secret in [reference.to_string().as_str(), "A parser crash", "libparse", "Zanzipartner", "sec@partner"]
            {
                assert!(!body.contains(secret), "{backend}: {path} reveals {secret:?}");
            }
        }
        // Only the opaque ID, the severity and the instant were added.
        let page = &during["/advisories"].1;
        let section = between(page, "id=\"upcoming\"", "</section>").unwrap();
        let items: Vec<&str> = section.split("<li ").skip(1).collect();
        assert_eq!(items.len(), 1, "{section}");
        assert_eq!(
            items[0].split("</li>").next().unwrap(),
            format!(
                "id=\"upcoming-{0}\"><span class=\"ref\">{0}</span>: <strong>High</strong> severity, 2026-03-17 16:00 UTC",
                announced.id
            )
        );
        // The feed parses, with one entry more.
        let feed = &during["/advisories.atom"].1;
        let doc = roxmltree::Document::parse(feed).unwrap();
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("entry")).count(), 1, "{feed}");

        embargo_app::partners::withdraw_announcement(app, &lead, &reference).await.unwrap();
        let withdrawn = snapshot(router, &routes).await;
        assert_eq!(differing(&before, &withdrawn), BTreeSet::new(), "{backend}: withdrawing takes it all away");
        embargo_app::partners::announce(app, &lead, &reference).await.unwrap();
        assert_ne!(differing(&before, &snapshot(router, &routes).await), BTreeSet::new());
        embargo_app::partners::break_embargo(app, &lead, &reference, "leaked").await.unwrap();
        let broken = snapshot(router, &routes).await;
        assert_eq!(differing(&before, &broken), BTreeSet::new(), "{backend}: a broken embargo is not announced");
    }
}
