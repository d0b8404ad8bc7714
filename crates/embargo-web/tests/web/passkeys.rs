//! Passkeys through the router (issue 17, ADR 28), on SQLite and PostgreSQL, answered by the
//! software authenticator: the JSON endpoints the script calls, the ceremony cookie, names
//! escaped on the account page, the second factor, cross-site refusal, and an account an
//! admin requires to use a passkey sent to add one. (The same in Chromium:
//! `passkeys_browser.rs`.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use embargo_domain::{Actor, Role};
use embargo_test_support::{SoftPasskey, both_backends};
use serde_json::Value;

use crate::common::*;

const ORIGIN: &str = "http://localhost:8080";

fn json_post(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(path)
        .header(header::HOST, "localhost:8080")
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

fn cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .map(str::to_owned)
        .collect()
}

fn named(reply: &Reply, name: &str) -> String {
    cookies(reply).into_iter().find(|c| c.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn passkeys_through_the_router() {
    for db in both_backends() {
        let web = web_with(&db, |c| c.public_url = ORIGIN.into()).await;
        let router = &web.router;
        create_user(&web, "ada@team.test", Role::Responder).await;
        let full = first_sign_in(&web, "ada@team.test").await;

        // Registration: options, then the answer with a hostile name (shown escaped).
        let reply = send(router, json_post("/account/passkeys/options", Some(&full), "")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let options: Value = serde_json::from_str(&reply.body).unwrap();
        let (mut key, answer) = SoftPasskey::register(&options, ORIGIN);
        let body = format!(r#"{{"name": "<script>alert(1)</script>", "credential": {answer}}}"#);
        let reply = send(router, json_post("/account/passkeys", Some(&full), &body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}: {}", db.backend, reply.body);
        let page = send(router, get("/account", Some(&full))).await;
        assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", db.backend);
        assert!(!page.body.contains("<script>alert(1)"));
        // The same answer again: its ceremony was used.
        let reply = send(router, json_post("/account/passkeys", Some(&full), &body)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert!(reply.body.contains("\"error\":\"invalid\""), "{}", reply.body);

        // Password-less: the ceremony cookie binds the answer to this browser.
        let reply = send(router, json_post("/login/passkey/options", None, "")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let ceremony = named(&reply, "embargo_passkey");
        let set = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/login"), "{set}");
        let options: Value = serde_json::from_str(&reply.body).unwrap();
        assert!(options["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().unwrap().is_empty()));
        let answer = key.assert(&options, ORIGIN);
        let reply = send(router, json_post("/login/passkey", None, &answer)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "without the cookie: {}", reply.body);
        let reply = send(router, json_post("/login/passkey?next=/account", Some(&ceremony), &answer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {}", db.backend, reply.body);
        assert_eq!(serde_json::from_str::<Value>(&reply.body).unwrap()["to"], "/account");
        let session = named(&reply, "embargo_session");
        assert_eq!(send(router, get("/inbox", Some(&session))).await.status, StatusCode::OK);
        // From another site: refused before anything happens.
        let mut cross = json_post("/login/passkey/options", None, "");
        cross.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert_eq!(send(router, cross).await.status, StatusCode::FORBIDDEN);

        // The second factor after the password: the page offers the passkey and the TOTP code.
        web.clock.advance_secs(30);
        let reply = send(router, post("/login", None, &[("email", "ada@team.test"), ("password", PASSWORD)])).await;
        let partial = reply.cookie().unwrap();
        let page = send(router, get("/login/totp", Some(&partial))).await;
        assert!(page.body.contains("id=\"passkey-second-factor\""), "{}", db.backend);
        assert!(page.body.contains("action=\"/login/totp\""), "TOTP is still allowed");
        let reply = send(router, json_post("/login/totp/passkey/options", Some(&partial), "")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let options: Value = serde_json::from_str(&reply.body).unwrap();
        let answer = key.assert(&options, ORIGIN);
        let reply = send(router, json_post("/login/totp/passkey", Some(&partial), &answer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let promoted = named(&reply, "embargo_session");
        assert_ne!(promoted, partial);
        assert_eq!(send(router, get("/inbox", Some(&promoted))).await.status, StatusCode::OK);

        // Required by an admin, without a passkey yet: every team page sends to /account.
        create_user(&web, "bob@team.test", Role::Responder).await;
        let admin = Actor::LocalAdmin { os_user: "test".into() };
        embargo_app::passkeys::set_required(&web.app, &admin, "bob@team.test", true).await.unwrap();
        let bob = first_sign_in(&web, "bob@team.test").await;
        let reply = send(router, get("/inbox", Some(&bob))).await;
        assert_eq!(reply.location(), "/account?done=passkey-required", "{}", db.backend);
        let page = send(router, get("/account?done=passkey-required", Some(&bob))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("must sign in with a passkey"));
        // Renaming and removing someone else's passkey: not found.
        let id = embargo_app::passkeys::list(&web.app, &actor(&web, "ada@team.test").await).await.unwrap()[0].id;
        let reply = send(router, post(&format!("/account/passkeys/{id}/remove"), Some(&bob), &[])).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", db.backend);
        let reply =
            send(router, post(&format!("/account/passkeys/{id}/rename"), Some(&promoted), &[("name", "Desk")])).await;
        assert_eq!(reply.location(), "/account?done=passkey-renamed");
    }
}

async fn actor(web: &Web, email: &str) -> Actor {
    let admin = Actor::LocalAdmin { os_user: "test".into() };
    let user = embargo_app::accounts::list_users(&web.app, &admin)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == email)
        .unwrap();
    Actor::User { id: user.id, role: user.role }
}
