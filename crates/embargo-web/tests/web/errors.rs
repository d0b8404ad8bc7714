//! Hostile attachment names and failed requests, through the router on both backends:
//! a name as sent is kept (the API's `filename`, the page's "sent as") while every place a
//! program or person might use it as a path gets the safe name (`safe_name`, the link text,
//! `Content-Disposition`); every error, including the framework's own rejections of a bad
//! query value, form, JSON body or path, is the app's page or the API's JSON error; API
//! answers are never cached.

use super::*;

/// (name as sent, the safe name expected)
const HOSTILE: &[(&str, &str)] = &[
    ("../../../../etc/passwd", "passwd"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("nul\0byte\u{7}bell\r\n.txt", "nul_byte_bell__.txt"),
    ("invoice\u{202e}fdp.exe", "invoice_fdp.exe"),
    ("CON.txt", "_CON.txt"),
    ("lpt9", "_lpt9"),
    ("...", "attachment-ID"),
];

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn hostile_attachment_names_are_kept_as_sent_and_safe_wherever_used_as_a_path() {
    for db in both_backends() {
        let w = world(&db).await;
        let long = format!("{}.pdf", "A".repeat(400));
        let mut uploads: Vec<Upload> = HOSTILE
            .iter()
            .map(|(name, _)| Upload {
                filename: (*name).to_owned(),
                media_type: "application/octet-stream".into(),
                data: name.as_bytes().to_vec(),
            })
            .collect();
        uploads.push(Upload { filename: long.clone(), media_type: "text/plain".into(), data: b"long".to_vec() });
        let filed = reports::submit(
            &w.web.app,
            &Actor::System("test"),
            Submission { attachments: uploads, ..submission("eve@example.net", "Names", "names body") },
        )
        .await
        .unwrap();
        let r = filed.reference.to_string();

        // The API: the name as sent, and the safe name, on the report and on its message.
        let reply = send(&w.web.router, api("GET", &format!("/api/v1/reports/{r}"), Some(&w.admin_token), None)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let report: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let listed = report["attachments"].as_array().unwrap();
        let on_message = report["messages"][0]["attachments"].as_array().unwrap();
        assert_eq!(listed.len(), HOSTILE.len() + 1, "the hostile names and the long one");
        assert_eq!(on_message.len(), listed.len());
        for (sent, expected) in HOSTILE {
            let a = listed.iter().find(|a| a["filename"] == *sent).unwrap_or_else(|| panic!("{sent:?} kept as sent"));
            let expected = expected.replace("ID", &a["id"].to_string());
            assert_eq!(a["safe_name"], expected.as_str(), "{sent:?}");
            assert!(on_message.iter().any(|m| m["id"] == a["id"] && m["safe_name"] == expected.as_str()));

            // The download is saved under the safe name.
            let download =
                send(&w.web.router, get(&format!("/reports/{r}/attachments/{}", a["id"]), Some(&w.admin))).await;
            assert_eq!(download.status, StatusCode::OK);
            assert_eq!(download.body.as_bytes(), sent.as_bytes(), "the content is what was sent");
            assert_eq!(
                header(&download, "content-disposition"),
                format!("attachment; filename=\"{expected}\"; filename*=UTF-8''{expected}"),
                "{sent:?}"
            );
        }
        let long_view = listed.iter().find(|a| a["filename"] == long.as_str()).unwrap();
        let long_safe = long_view["safe_name"].as_str().unwrap();
        assert!(long_safe.len() <= 200 && long_safe.ends_with(".pdf"), "{long_safe}");

        // The page: the link text is the safe name; the name as sent is shown escaped, with
        // control and bidirectional characters visible as escapes rather than acting.
        let page = send(&w.web.router, get(&format!("/reports/{r}"), Some(&w.admin))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("download>passwd</a>"), "the link text is the safe name");
        assert!(page.body.contains("sent as &#34;../../../../etc/passwd&#34;"), "the name as sent is shown");
        assert!(page.body.contains("download>invoice_fdp.exe</a>"));
        assert!(page.body.contains(r"invoice\u{202e}fdp.exe"), "the override is shown as an escape");
        for raw in ['\u{202e}', '\0', '\u{7}'] {
            assert!(!page.body.contains(raw), "{raw:?} reaches the page");
        }
    }
}

#[tokio::test]
async fn api_errors_are_json_in_the_documented_shape_and_api_answers_are_never_cached() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let r1 = w.r1.to_string();
        let token = Some(w.admin_token.as_str());
        let json_error = |reply: &Reply, status: StatusCode, code: &str| {
            let what = format!("{status} {code}: got {} {:?}", reply.status, reply.body);
            assert_eq!(reply.status, status, "{what}");
            assert!(header(reply, "content-type").starts_with("application/json"), "{what}");
            assert_eq!(header(reply, "cache-control"), "no-store", "{what}");
            let body: serde_json::Value = serde_json::from_str(&reply.body).expect(&what);
            assert_eq!(body["error"], code, "{what}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
        };
        // Report content is never cached, nor is anything else under /api/.
        for path in [format!("/api/v1/reports/{r1}"), "/api/v1/reports".to_owned(), "/api/v1/openapi.json".to_owned()] {
            let reply = send(router, api("GET", &path, token, None)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(header(&reply, "cache-control"), "no-store", "{path}");
        }
        // Query values the framework cannot read.
        for query in ["page=abc", "product=x", "per_page=1e9", "page=1&page=2"] {
            let reply = send(router, api("GET", &format!("/api/v1/reports?{query}"), token, None)).await;
            json_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
        }
        // Bodies: not JSON, no content type, a missing or mistyped field.
        let url = format!("/api/v1/reports/{r1}/notes");
        let raw = |content_type: Option<&str>, body: &str| {
            let mut request = Request::post(url.as_str())
                .header(header::HOST, "embargo.test")
                .header(header::AUTHORIZATION, format!("Bearer {}", w.admin_token));
            if let Some(t) = content_type {
                request = request.header(header::CONTENT_TYPE, t);
            }
            request.body(Body::from(body.to_owned())).unwrap()
        };
        json_error(
            &send(router, raw(Some("application/json"), "{not json")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
        json_error(
            &send(router, raw(None, "{\"body\": \"x\"}")).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        json_error(
            &send(router, raw(Some("application/json"), "{\"text\": \"x\"}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        );
        json_error(
            &send(router, raw(Some("application/json"), "{\"body\": 5}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        );
        // Paths: a malformed reference is as unknown as a report one may not see.
        json_error(
            &send(router, api("GET", "/api/v1/reports/not-a-reference", token, None)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        json_error(
            &send(router, api("GET", "/api/v1/nothing-here", token, None)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        json_error(
            &send(router, api("DELETE", "/api/v1/reports", token, None)).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
        // No token: 401 with the challenge, in the same shape.
        let reply = send(router, api("GET", "/api/v1/reports", None, None)).await;
        json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(header(&reply, "www-authenticate"), "Bearer");
        // A use-case refusal keeps its shape and message.
        let reply = send(
            router,
            api(
                "POST",
                &format!("/api/v1/reports/{r1}/transitions"),
                token,
                Some(serde_json::json!({"target": "disclosed"})),
            ),
        )
        .await;
        json_error(&reply, StatusCode::CONFLICT, "conflict");
        // Nothing of the note with the unreadable bodies was recorded.
        let report = send(router, api("GET", &format!("/api/v1/reports/{r1}"), token, None)).await;
        assert!(!report.body.contains("\"kind\":\"note\""), "{}", report.body);
    }
}

#[tokio::test]
async fn app_errors_are_pages_in_the_apps_layout_never_the_frameworks_text() {
    let db = embargo_test_support::sqlite();
    let w = world(&db).await;
    let router = &w.web.router;
    let r1 = w.r1.to_string();
    let page_error = |reply: &Reply, status: StatusCode, signed_in: bool| {
        let what = format!("{status}: got {} {:?}", reply.status, reply.body);
        assert_eq!(reply.status, status, "{what}");
        assert!(header(reply, "content-type").starts_with("text/html"), "{what}");
        assert_eq!(header(reply, "cache-control"), "no-store", "{what}");
        assert!(header(reply, "content-security-policy").contains("default-src 'none'"), "{what}");
        assert!(reply.body.contains("<main") || reply.body.contains("<h1"), "{what}");
        assert_eq!(reply.body.contains("admin@team.test"), signed_in, "the team navigation when signed in: {what}");
    };
    let admin = Some(w.admin.as_str());
    // Query values: a number that is not one.
    page_error(&send(router, get("/inbox?page=abc", admin)).await, StatusCode::BAD_REQUEST, true);
    page_error(&send(router, get("/dashboard?days=lots", admin)).await, StatusCode::BAD_REQUEST, true);
    // Path values: an attachment id that is not a number; a malformed reference.
    page_error(
        &send(router, get(&format!("/reports/{r1}/attachments/xyz"), admin)).await,
        StatusCode::BAD_REQUEST,
        true,
    );
    page_error(&send(router, get("/reports/not-a-reference", admin)).await, StatusCode::NOT_FOUND, true);
    // Forms: a field of the wrong type, a missing field, no form at all.
    let reply = send(router, post(&format!("/reports/{r1}/import-key"), admin, &[("attachment", "first")])).await;
    page_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, true);
    let reply = send(router, post(&format!("/reports/{r1}/note"), admin, &[("text", "x")])).await;
    page_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, true);
    let mut bare = get(&format!("/reports/{r1}/note"), admin);
    *bare.method_mut() = axum::http::Method::POST;
    bare.headers_mut().insert("sec-fetch-site", "same-origin".parse().unwrap());
    page_error(&send(router, bare).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, true);
    // Unknown paths and methods, signed in or not.
    page_error(&send(router, get("/nothing-here", admin)).await, StatusCode::NOT_FOUND, true);
    page_error(&send(router, get("/nothing-here", None)).await, StatusCode::NOT_FOUND, false);
    let mut delete = get("/login", None);
    *delete.method_mut() = axum::http::Method::DELETE;
    page_error(&send(router, delete).await, StatusCode::METHOD_NOT_ALLOWED, false);
    // A use-case refusal renders its message.
    let reply = send(router, post(&format!("/reports/{r1}/note"), admin, &[("body", "")])).await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    assert!(header(&reply, "content-type").starts_with("text/html"));
    // A status page link that is not one keeps its own page.
    let reply = send(router, get("/status/short", None)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.contains("This link is not valid"), "{}", reply.body);
}
