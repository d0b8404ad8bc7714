//! Security fixes of issue 12, on both backends: metrics only for authorised scrapers,
//! cross-origin posts refused by scheme, host and port (with the Referer fallback), reporter
//! text shown exactly as sent, reporter history under need-to-know, and login throttling.

use super::*;

fn metrics_request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/metrics").header(header::HOST, "embargo.test");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_are_served_only_to_authorised_scrapers() {
    embargo_web::install_metrics_recorder();
    for db in both_backends() {
        let w = world(&db).await;
        // A report arrived (world submitted two): the counter that tells when reports arrive.
        let private = embargo_web::metrics_router(w.web.app.clone());
        let reply = send(&private, metrics_request(None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("embargo_reports_received_total"), "{}", reply.body);
        assert_eq!(reply.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        // The public listener: 404 like any unknown path, with nothing of the metrics.
        for cookie in [None, Some(w.admin.as_str())] {
            let reply = send(&w.web.router, get("/metrics", cookie)).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
            assert!(!reply.body.contains("embargo_"), "{}", reply.body);
        }
        // The metrics listener serves nothing else.
        let reply = send(&private, get("/inbox", Some(&w.admin))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(!reply.body.contains("Alpha"));

        // With a token: required on both listeners, and the public one serves it to holders.
        let token = "scrape-token-0123456789";
        // (Another instance on the same database and data directory, with a token set.)
        let mut config = w.web.config.clone();
        config.metrics_token = embargo_app::config::Secret::new(token);
        let (app, _) = App::open_with_clock(config, w.web.clock.clone()).await.unwrap();
        let public = embargo_web::router(app.clone());
        let private = embargo_web::metrics_router(app);
        for router in [&public, &private] {
            for wrong in [None, Some("scrape-token-0123456788"), Some("")] {
                let reply = send(router, metrics_request(wrong)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
                assert!(!reply.body.contains("embargo_"), "{}", reply.body);
            }
            let reply = send(router, metrics_request(Some(token))).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply.body.contains("embargo_http_requests_total"), "{}", reply.body);
        }
    }
}

fn form_post(path: &str, cookie: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post(path)
        .header(header::HOST, "embargo.test")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from("body=cross-origin+probe")).unwrap()
}

#[tokio::test]
async fn cross_origin_posts_are_refused_by_scheme_host_and_port_and_by_referer() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let path = format!("/reports/{}/note", w.r1);
        // The public URL's origin (here the default, from the listen address).
        let site = w.web.app.config.base_url();
        assert_eq!(site, "http://127.0.0.1:8080");
        let refused: &[&[(&str, &str)]] = &[
            // No Origin, a cross-site Referer (an older browser, or plain HTTP).
            &[("referer", "https://evil.example/attack.html")],
            &[("origin", "null"), ("referer", "https://evil.example/attack.html")],
            // The Origin's scheme, host or port differs from the public URL's.
            &[("origin", "https://127.0.0.1:8080")],
            &[("origin", "http://127.0.0.1:8081")],
            &[("origin", "http://127.0.0.1.evil.example:8080")],
            // The browser says another site sent it.
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "cross-site"), ("origin", "http://127.0.0.1:8080")],
            // Same-origin by Sec-Fetch-Site, but an Origin that is not ours: not a browser.
            &[("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")],
        ];
        for headers in refused {
            let reply = send(router, form_post(&path, &w.admin, headers)).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{headers:?}");
            assert!(reply.body.contains("Request refused"), "{}", reply.body);
        }
        let page = send(router, get(&format!("/reports/{}", w.r1), Some(&w.admin))).await;
        assert!(!page.body.contains("cross-origin probe"), "no refused note was added");
        let accepted: &[&[(&str, &str)]] = &[
            // Chromium posting a form of ours under Referrer-Policy: no-referrer.
            &[("sec-fetch-site", "same-origin"), ("origin", "null")],
            // An older browser, with Origin or with only a Referer.
            &[("origin", "http://127.0.0.1:8080")],
            &[("origin", "HTTP://127.0.0.1:8080")],
            &[("referer", "http://127.0.0.1:8080/reports/x")],
            // Not a browser (curl): nothing to tell, and no cookie would be sent by a forger.
            &[],
        ];
        for headers in accepted {
            let reply = send(router, form_post(&path, &w.admin, headers)).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{headers:?}: {}", reply.body);
        }
        // The reporter form without JavaScript (Chromium): same-origin, Origin null.
        let (challenge, nonce) = form_fields(router).await;
        let mut request = multipart(
            "/report",
            &[
                ("email", "csrf@example.net"),
                ("title", "Form post"),
                ("description", "steps"),
                ("challenge", &challenge),
                ("nonce", &nonce),
            ],
            &[],
        );
        request.headers_mut().insert("origin", "null".parse().unwrap());
        let reply = send(router, request).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}

// ---- Reporter text exactly as sent ------------------------------------------------------

/// Payloads a vulnerability report carries, or that look like markup.
fn corpus() -> Vec<String> {
    vec![
        "<img src=x onerror=alert(1)>".into(),
        "<script>alert(document.cookie)</script>".into(),
        "<details open ontoggle=alert(1)>toggle</details>".into(),
        // Four steps with the payload in the middle: a tag at the start of a line once
        // swallowed everything up to the next blank line.
        "1. open the page\n<img src=x onerror=alert(1)>\n2. click the button\n3. observe the alert".into(),
        "# Heading\n\n* item\n**bold** _em_ `code` [link](javascript:alert(1)) ![i](http://evil.test/x.png)\n\
         > quote\n---\n    indented code\n| a | b |\n|---|---|\n- [ ] task\n~~strike~~ <b>bold</b>\\*"
            .into(),
        "&lt;script&gt; &amp; &#x3C;img&#62; &nbsp; &unknown; &#0; &#x110000;".into(),
        "bell\u{7} backspace\u{8} vt\u{b} ff\u{c} esc\u{1b}[31mred\u{1b}[0m del\u{7f} c1\u{85}\u{9b}\u{9f}".into(),
        "invoice_\u{202E}fdp.exe then \u{2066}isolated\u{2069} zero\u{200B}width \u{FEFF}bom \u{200F}rlm".into(),
        format!("{} https://example.org/{} {}", "A".repeat(10_000), "p".repeat(3000), "z".repeat(5000)),
        "line one\r\nline two\r\n\r\nlone CR\rend\r\n".into(),
        "\"'`<>& <a href=\"javascript:alert(1)\">x</a> <svg onload=alert(1)> <iframe srcdoc=\"<script>alert(1)</script>\">\
         <style>body{display:none}</style> <!-- comment --> <![CDATA[x]]> </div></li></ol><script>alert(2)</script>"
            .into(),
        "  leading spaces\n\ttab\ttab\ntrailing   \n\n\n".into(),
        "see http://example.org/?q=<script>\"onmouseover=alert(1)// and (https://a.test/path)( and https://b.test/x.\n\
         and javascript:alert(1) and data:text/html,<script>alert(1)</script> and xhttp://no.test"
            .into(),
        "<p>para</p>\n<textarea></div><script>alert(1)</script></textarea><title></title><plaintext>rest"
            .into(),
    ]
}

#[derive(Default)]
struct Page {
    /// The text content of each `class="body text"` element, in document order.
    texts: Vec<String>,
    /// Problems: live elements or attributes anywhere in the page.
    live: Vec<String>,
}

/// Parses a page with the HTML5 tokenizer (html5ever, as a browser tokenizes): the text
/// content of every message body, and any element or attribute that would run.
fn parse_page(html: &str) -> Page {
    parse_page_for(html, "body text")
}

/// [`parse_page`] for elements of another class.
fn parse_page_for(html: &str, class: &str) -> Page {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
    use std::cell::RefCell;

    #[derive(Default)]
    struct State {
        class: String,
        page: Page,
        depth: usize,
        current: String,
    }
    struct Sink(RefCell<State>);
    impl TokenSink for Sink {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            let mut s = self.0.borrow_mut();
            match token {
                Token::TagToken(tag) => {
                    let name = tag.name.to_string();
                    let attr = |n: &str| tag.attrs.iter().find(|a| &*a.name.local == n).map(|a| a.value.to_string());
                    if tag.kind == TagKind::StartTag {
                        for a in &tag.attrs {
                            let n = a.name.local.to_string();
                            if n.starts_with("on") || n == "srcdoc" || n == "formaction" {
                                s.page.live.push(format!("<{name} {n}>"));
                            }
                            if a.value.trim_start().to_lowercase().starts_with("javascript:") {
                                s.page.live.push(format!("<{name} {n}=javascript:>"));
                            }
                        }
                        let ours = name == "script" && attr("src").as_deref() == Some("/static/app.js");
                        if !ours
                            && matches!(
                                name.as_str(),
                                "script"
                                    | "img"
                                    | "iframe"
                                    | "svg"
                                    | "object"
                                    | "embed"
                                    | "style"
                                    | "math"
                                    | "base"
                                    | "video"
                                    | "audio"
                                    | "plaintext"
                                    | "xmp"
                                    | "details"
                            )
                            && !(name == "details" && attr("class").as_deref() == Some("card activity"))
                        {
                            s.page.live.push(name.clone());
                        }
                        if s.depth > 0 {
                            let allowed = match name.as_str() {
                                "a" => {
                                    attr("href").is_some_and(|h| h.starts_with("http://") || h.starts_with("https://"))
                                        && attr("rel").as_deref() == Some("noopener noreferrer nofollow")
                                }
                                "span" => attr("class").as_deref() == Some("ctl"),
                                _ => false,
                            };
                            if !allowed {
                                s.page.live.push(format!("<{name}> inside a message"));
                            }
                            s.depth += 1;
                        } else if name == "div" && attr("class").as_deref() == Some(s.class.as_str()) {
                            s.depth = 1;
                            s.current.clear();
                        }
                    } else if s.depth > 0 {
                        s.depth -= 1;
                        if s.depth == 0 {
                            let text = std::mem::take(&mut s.current);
                            s.page.texts.push(text);
                        }
                    }
                }
                Token::CharacterTokens(text) if s.depth > 0 => s.current.push_str(&text),
                Token::NullCharacterToken if s.depth > 0 => s.current.push('\0'),
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }
    let sink = Sink(RefCell::new(State { class: class.to_owned(), ..State::default() }));
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let state = tokenizer.sink.0.into_inner();
    state.page
}

fn text_of(page: &Page, what: &str) -> Vec<String> {
    assert!(page.live.is_empty(), "{what}: live markup {:?}", page.live);
    page.texts.clone()
}

#[tokio::test]
async fn reporter_text_is_shown_exactly_as_sent_on_the_report_and_status_pages() {
    for db in both_backends() {
        let w = web(&db).await;
        create_user(&w, "admin@team.test", Role::Admin).await;
        let admin = first_sign_in(&w, "admin@team.test").await;
        let local = Actor::LocalAdmin { os_user: "test".into() };
        let token = accounts::create_token(&w.app, &local, "admin@team.test", "t").await.unwrap();
        let system = Actor::System("test");
        for (n, payload) in corpus().into_iter().enumerate() {
            let submitted = reports::submit(
                &w.app,
                &system,
                Submission::new(Channel::Email, &format!("r{n}@example.net"), &format!("Payload {n}"), &payload),
            )
            .await
            .unwrap();
            // The reporter answers on the status page with the same text (a second path in).
            let link = format!("/status/{}", submitted.status_token);
            let reply = send(&w.router, multipart(&format!("{link}/reply"), &[("body", &payload)], &[])).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "payload {n}: {}", reply.body);

            let api = send(
                &w.router,
                super::api("GET", &format!("/api/v1/reports/{}", submitted.reference), Some(&token), None),
            )
            .await;
            assert_eq!(api.status, StatusCode::OK);
            let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
            let bodies: Vec<String> =
                json["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect();
            assert_eq!(bodies.len(), 2, "payload {n}");
            assert!(
                bodies.iter().any(|b| b.contains(payload.trim_matches(['\n', '\r', ' ', '\t']))),
                "payload {n} stored: {bodies:?}"
            );

            let team = send(&w.router, get(&format!("/reports/{}", submitted.reference), Some(&admin))).await;
            assert_eq!(team.status, StatusCode::OK);
            let mut shown = text_of(&parse_page(&team.body), &format!("report page, payload {n}"));
            let mut expected = bodies.clone();
            shown.sort();
            expected.sort();
            assert_eq!(shown, expected, "report page, payload {n}: the text differs from the API's");

            let status = send(&w.router, get(&link, None)).await;
            assert_eq!(status.status, StatusCode::OK);
            let mut shown = text_of(&parse_page(&status.body), &format!("status page, payload {n}"));
            shown.sort();
            assert_eq!(shown, expected, "status page, payload {n}: the text differs from the API's");
        }
    }
}

#[tokio::test]
async fn the_original_mail_is_shown_escaped_with_its_headers_to_the_team_only_and_audited() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let raw = "From: Mallory <mallory@example.net>\r\nTo: security@example.org\r\n\
                   Subject: =?utf-8?q?PoC_<script>?=\r\nMessage-ID: <poc-1@example.net>\r\n\
                   X-Note: <img src=x onerror=alert(1)>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                   Steps:\r\n<details open ontoggle=alert(1)>\r\n\u{202E}gnp.exe\r\n";
        let outcome = embargo_app::intake::ingest_mail(&w.web.app, raw.as_bytes()).await.unwrap();
        let reference = outcome.reference().clone();
        // Give the responder who may see report 1 nothing here; the admin sees everything.
        let page = send(router, get(&format!("/reports/{reference}"), Some(&w.admin))).await;
        let href = between(&page.body, "<a href=\"", "\" class=\"original\">View original</a>")
            .and_then(|s| s.rsplit("<a href=\"").next())
            .expect("a view-original link")
            .to_owned();
        assert!(href.starts_with(&format!("/reports/{reference}/messages/")) && href.ends_with("/original"), "{href}");
        let original = send(router, get(&href, Some(&w.admin))).await;
        assert_eq!(original.status, StatusCode::OK);
        let parsed = parse_page_for(&original.body, "text original");
        assert!(parsed.live.is_empty(), "{:?}", parsed.live);
        assert_eq!(parsed.texts, vec![raw.to_owned()], "the original, character for character");
        // The exact bytes, as a download that cannot render.
        let download = send(router, get(&format!("{href}/download"), Some(&w.admin))).await;
        assert_eq!(download.status, StatusCode::OK);
        assert_eq!(download.body, raw);
        assert_eq!(download.headers.get(header::CONTENT_TYPE).unwrap(), "application/octet-stream");
        assert!(download.headers.get(header::CONTENT_DISPOSITION).unwrap().to_str().unwrap().starts_with("attachment"));
        // Need-to-know: the responders (not on this report) and strangers get nothing.
        for cookie in [Some(w.on.as_str()), Some(w.off.as_str())] {
            for path in [href.clone(), format!("{href}/download")] {
                let reply = send(router, get(&path, cookie)).await;
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
                assert!(!reply.body.contains("mallory"), "{path}");
            }
        }
        let reply = send(router, get(&href, None)).await;
        assert!(reply.location().starts_with("/login?next=%2Freports%2F"), "{}", reply.location());
        // A message without a kept original (report 1 came without one) has no such page.
        let note = send(router, get(&format!("/reports/{}/messages/1/original", w.r1), Some(&w.admin))).await;
        assert_eq!(note.status, StatusCode::NOT_FOUND);
        // Reading the original is audited, with who read it.
        let entries = audit::list(&w.web.app, &Actor::System("test"), 0, 100_000).await.unwrap();
        let reads: Vec<_> = entries.iter().filter(|e| e.action == "report.message.original.read").collect();
        assert_eq!(reads.len(), 2, "the page and the download");
        assert!(reads.iter().all(|e| e.actor.starts_with("user:1") && e.subject == format!("report:{reference}")));
    }
}

// ---- Reporter history under need-to-know -----------------------------------------------

#[tokio::test]
async fn reporter_history_and_its_flag_count_only_reports_the_reader_may_see() {
    for db in both_backends() {
        let w = world(&db).await;
        let (app, router) = (&w.web.app, &w.web.router);
        let system = Actor::System("test");
        let local = Actor::LocalAdmin { os_user: "test".into() };
        // Alice (reporter of r1, which "on" is assigned) sent three more reports, all closed
        // as invalid and none of them "on"'s business, and one that is still open.
        let mut others = Vec::new();
        for i in 0..3 {
            let r = reports::submit(app, &system, submission("alice@example.net", &format!("Other {i}"), "x"))
                .await
                .unwrap();
            reports::change_state(app, &local, &r.reference, "closed:invalid".parse().unwrap(), reports::Notice::None)
                .await
                .unwrap();
            others.push(r.reference);
        }
        let open = reports::submit(app, &system, submission("alice@example.net", "Still open", "x")).await.unwrap();
        let history = |cookie: String| {
            let path = format!("/reports/{}", w.r1);
            async move {
                let page = send(router, get(&path, Some(&cookie))).await;
                assert_eq!(page.status, StatusCode::OK);
                let panel = between(&page.body, "id=\"reporter-history\">", "</dd>").expect("the panel").to_owned();
                (panel, page.body.contains("id=\"flagged\""))
            }
        };
        // The admin may see them all.
        let (panel, flagged) = history(w.admin.clone()).await;
        assert!(panel.starts_with("4 other reports — 0 valid, 3 invalid, 1 open"), "{panel}");
        assert!(flagged);
        // The responder may see none of them: nothing is counted, nothing flagged.
        let (panel, flagged) = history(w.on.clone()).await;
        assert!(panel.starts_with("0 other reports — 0 valid, 0 invalid, 0 open"), "{panel}");
        assert!(!flagged, "the flag comes from reports the responder cannot open");
        let inbox = send(router, get("/inbox", Some(&w.on))).await;
        assert_eq!(inbox.body.matches(">flagged</span>").count(), 0, "nor does the inbox flag it");
        let inbox = send(router, get("/inbox", Some(&w.admin))).await;
        assert!(inbox.body.matches(">flagged</span>").count() >= 1, "the admin's inbox flags it");
        // Once the responder may see one of them, exactly that one is counted.
        reports::add_member(app, &local, &open.reference, "on@team.test").await.unwrap();
        let (panel, _) = history(w.on.clone()).await;
        assert!(panel.starts_with("1 other report — 0 valid, 0 invalid, 1 open"), "{panel}");
        reports::add_member(app, &local, &others[0], "on@team.test").await.unwrap();
        let (panel, _) = history(w.on.clone()).await;
        assert!(panel.starts_with("2 other reports — 0 valid, 1 invalid, 1 open"), "{panel}");
    }
}

// ---- Sign-in throttling ----------------------------------------------------------------

fn login_from(email: &str, password: &str, address: [u8; 4], device: Option<&str>) -> Request<Body> {
    let mut request = post("/login", device, &[("email", email), ("password", password)]);
    let socket = std::net::SocketAddr::from((address, 40_000));
    request.extensions_mut().insert(axum::extract::ConnectInfo(socket));
    request
}

fn device_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("embargo_device="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers.get(header::RETRY_AFTER).expect("Retry-After").to_str().unwrap().parse().unwrap()
}

/// Seconds from now until `minutes` after the start of the current minute.
fn until(web: &Web, minutes: i64) -> u64 {
    let now = web.app.now().as_millisecond();
    let start = now / 60_000 * 60_000;
    u64::try_from((start + minutes * 60_000 - now + 999) / 1000).unwrap()
}

#[tokio::test]
async fn sign_in_throttling_holds_its_documented_limits_says_when_and_cannot_lock_the_owner_out() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let clock = &w.web.clock;
        let wrong = "wrong password guess";
        // The owner signed in before from their browser: it holds a signed device cookie.
        let reply = send(router, login_from("on@team.test", PASSWORD, [10, 0, 0, 1], None)).await;
        assert_eq!(reply.location(), "/login/totp");
        let partial = reply.cookie().unwrap();
        let secret = totp_secret(&w.web, "on@team.test").await;
        let code = sessions::totp_code(&secret, w.web.app.now()).unwrap();
        let mut totp = post("/login/totp", Some(&partial), &[("code", &code)]);
        totp.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([10, 0, 0, 1], 1))));
        let reply = send(router, totp).await;
        assert_eq!(reply.location(), "/inbox");
        let device = device_cookie(&reply).expect("a device cookie after a full sign-in");
        clock.advance_secs(60);

        // 1. Per account and address: 5 failures, then even the right password is refused,
        //    with Retry-After until the oldest failure leaves the 15-minute window.
        for _ in 0..5 {
            let reply = send(router, login_from("on@team.test", wrong, [192, 0, 2, 1], None)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
        let reply = send(router, login_from("on@team.test", PASSWORD, [192, 0, 2, 1], None)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&reply), until(&w.web, 15));
        assert!(
            reply.body.contains("try again in 15 minutes"),
            "{}",
            between(&reply.body, "role=\"alert\">", "<").unwrap_or("")
        );
        // Refused attempts are not counted (waiting is always enough), and a stranger
        // hammering from one address does not lock the owner out elsewhere.
        for _ in 0..60 {
            let reply = send(router, login_from("on@team.test", wrong, [192, 0, 2, 1], None)).await;
            assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        }
        let reply = send(router, login_from("on@team.test", PASSWORD, [198, 51, 100, 7], None)).await;
        assert_eq!(reply.location(), "/login/totp", "the owner, elsewhere, without a device cookie");
        // The window slides: 14 minutes later still refused, 15 minutes after the failures'
        // minute allowed (a fixed window would have let a new burst in at its boundary).
        clock.advance_secs(14 * 60);
        let reply = send(router, login_from("on@team.test", PASSWORD, [192, 0, 2, 1], None)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&reply) <= 60);
        clock.advance_secs(i64::try_from(retry_after(&reply)).unwrap());
        let reply = send(router, login_from("on@team.test", PASSWORD, [192, 0, 2, 1], None)).await;
        assert_eq!(reply.location(), "/login/totp");
        clock.advance_secs(3600);

        // 2. Guessing spread over addresses: 50 failures an hour for the account, whatever
        //    the addresses; then strangers are refused everywhere...
        for i in 0..10u8 {
            for _ in 0..5 {
                let reply = send(router, login_from("off@team.test", wrong, [203, 0, 113, i], None)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "address {i}");
            }
        }
        let reply = send(router, login_from("off@team.test", PASSWORD, [203, 0, 113, 200], None)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "the 51st attempt, from a new address");
        assert_eq!(retry_after(&reply), until(&w.web, 60));
        // A device cookie of another account ("on"'s browser) does not help.
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 2], Some(&device))).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        clock.advance_secs(3600);

        // 3. One address guessing many accounts: 50 failures in 15 minutes, then refused
        //    for every account (even one never tried).
        for i in 0..10 {
            for _ in 0..5 {
                let reply =
                    send(router, login_from(&format!("guess{i}@team.test"), wrong, [198, 18, 0, 1], None)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            }
        }
        let reply = send(router, login_from("admin@team.test", PASSWORD, [198, 18, 0, 1], None)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&reply), until(&w.web, 15));
        let reply = send(router, login_from("admin@team.test", PASSWORD, [198, 18, 0, 2], None)).await;
        assert_eq!(reply.location(), "/login/totp", "another address is not limited");
    }
}

#[tokio::test]
async fn the_owners_known_browser_is_not_held_to_the_account_wide_limit() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        // The owner signs in fully from their browser and keeps its device cookie.
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 1], None)).await;
        let partial = reply.cookie().unwrap();
        let secret = totp_secret(&w.web, "off@team.test").await;
        let code = sessions::totp_code(&secret, w.web.app.now()).unwrap();
        let reply = send(router, post("/login/totp", Some(&partial), &[("code", &code)])).await;
        assert_eq!(reply.location(), "/inbox");
        let device = device_cookie(&reply).expect("a device cookie");
        let set = reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("embargo_device="))
            .unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/login"), "{set}");
        w.web.clock.advance_secs(60);
        // A botnet exhausts the account-wide limit.
        for i in 0..10u8 {
            for _ in 0..5 {
                let reply = send(router, login_from("off@team.test", "wrong guess!!", [203, 0, 113, i], None)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            }
        }
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 1], None)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "without the device cookie");
        // The owner's browser still gets in, and so does its second factor.
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 1], Some(&device))).await;
        assert_eq!(reply.location(), "/login/totp", "{}", reply.body);
        let partial = reply.cookie().unwrap();
        w.web.clock.advance_secs(30);
        let code = sessions::totp_code(&secret, w.web.app.now()).unwrap();
        let cookies = format!("{partial}; {device}");
        let reply = send(router, post("/login/totp", Some(&cookies), &[("code", &code)])).await;
        assert_eq!(reply.location(), "/inbox", "{}", reply.body);
        // A forged or altered device cookie is worth nothing.
        let forged = format!("{}{}", &device[..device.len() - 1], if device.ends_with('0') { '1' } else { '0' });
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 1], Some(&forged))).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        // And it expires: after 180 days the browser is a stranger again (the limit still
        // holds for strangers because the botnet keeps guessing).
        w.web.clock.advance_secs(181 * 24 * 3600);
        for i in 0..10u8 {
            for _ in 0..5 {
                send(router, login_from("off@team.test", "wrong guess!!", [203, 0, 113, i], None)).await;
            }
        }
        let reply = send(router, login_from("off@team.test", PASSWORD, [10, 0, 0, 1], Some(&device))).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    }
}

/// Issue 18: after signing in, people land on the page they asked for, never on another
/// site (`//host`, `/\host`) and never on a page their role does not have.
#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_only_to_this_site() {
    for db in both_backends() {
        let w = web_with(&db, |c| c.web.require_totp = false).await;
        create_user(&w, "lead@example.org", Role::Admin).await;
        let asked = send(&w.router, get("/inbox?state=new&q=a%20b", None)).await;
        assert_eq!(asked.status, StatusCode::SEE_OTHER);
        assert_eq!(asked.location(), "/login?next=%2Finbox%3Fstate%3Dnew%26q%3Da%2520b");
        let form = send(&w.router, get(asked.location(), None)).await;
        assert!(form.body.contains("name=\"next\" value=\"/inbox?state=new&#38;q=a%20b\""), "{}", form.body);
        let signed_in = |next: &'static str| {
            let router = w.router.clone();
            async move {
                let form = [("email", "lead@example.org"), ("password", PASSWORD), ("next", next)];
                send(&router, post("/login", None, &form)).await.location().to_owned()
            }
        };
        assert_eq!(signed_in("/inbox?state=new&q=a%20b").await, "/inbox?state=new&q=a%20b");
        w.clock.advance_secs(1);
        for elsewhere in ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/partner", "/login?next=/x"]
        {
            assert_eq!(signed_in(elsewhere).await, "/inbox", "{elsewhere}");
        }
    }
}

/// Issue 18: TOTP enrolment shows the enrolment link as a QR code, an image under the same
/// strict CSP, for the account being set up only.
#[tokio::test]
async fn totp_enrolment_shows_its_link_as_a_qr_code_to_that_account_only() {
    for db in both_backends() {
        let w = web(&db).await;
        create_user(&w, "new@example.org", Role::Responder).await;
        let reply =
            send(&w.router, post("/login", None, &[("email", "new@example.org"), ("password", PASSWORD)])).await;
        let partial = reply.cookie().expect("a session cookie");
        let page = send(&w.router, get("/login/totp", Some(&partial))).await;
        assert!(page.body.contains("<img src=\"/login/totp/qr.svg\""), "{}", page.body);
        let link = between(&page.body, "<a href=\"otpauth://", "\"").expect("the enrolment link");
        let uri = format!("otpauth://{}", link.replace("&amp;", "&").replace("&#38;", "&"));
        let qr = send(&w.router, get("/login/totp/qr.svg", Some(&partial))).await;
        assert_eq!(qr.status, StatusCode::OK);
        assert_eq!(qr.headers[header::CONTENT_TYPE], "image/svg+xml");
        // The image is the QR code of exactly that link.
        let code = qrcodegen::QrCode::encode_text(&uri, qrcodegen::QrCodeEcc::Medium).unwrap();
        let size = code.size() + 8;
        assert!(
            qr.body.starts_with(&format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\""))
        );
        let dark = (0..code.size())
            .flat_map(|y| (0..code.size()).map(move |x| (x, y)))
            .filter(|(x, y)| code.get_module(*x, *y))
            .count();
        assert_eq!(qr.body.matches("h1v1h-1z").count(), dark, "one square per dark module");
        // Nobody else gets one: not signed in, or signed in fully.
        assert_eq!(send(&w.router, get("/login/totp/qr.svg", None)).await.status, StatusCode::SEE_OTHER);
        create_user(&w, "other@example.org", Role::Responder).await;
        let full = sign_in(&w, &w.router, "other@example.org").await;
        assert_eq!(send(&w.router, get("/login/totp/qr.svg", Some(&full))).await.status, StatusCode::NOT_FOUND);
    }
}
