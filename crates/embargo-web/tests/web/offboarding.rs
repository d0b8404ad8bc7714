//! Offboarding from the team page, on both backends: a disabled account's open session
//! cookie and API token stop working with the next request; the forms for resets,
//! products and report members; recovery codes on the sign-in and account pages.

use super::*;

#[tokio::test]
async fn a_disabled_accounts_cookie_and_token_stop_working_at_once() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        // Working before.
        assert_eq!(send(router, get("/inbox", Some(&w.on))).await.status, StatusCode::OK);
        let r1 = format!("/reports/{}", w.r1);
        assert_eq!(send(router, get(&r1, Some(&w.on))).await.status, StatusCode::OK);
        assert_eq!(send(router, api("GET", "/api/v1/reports", Some(&w.on_token), None)).await.status, StatusCode::OK);

        // The team page offers it; a responder cannot use it, nor another site.
        let admin_page = send(router, get("/admin", Some(&w.admin))).await;
        assert!(admin_page.body.contains("action=\"/admin/users/disable\""), "{}", db.backend);
        let refused = send(router, post("/admin/users/disable", Some(&w.off), &[("email", "on@team.test")])).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", db.backend);
        let mut cross = post("/admin/users/disable", Some(&w.admin), &[("email", "on@team.test")]);
        cross.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert_eq!(send(router, cross).await.status, StatusCode::FORBIDDEN);
        assert_eq!(send(router, get("/inbox", Some(&w.on))).await.status, StatusCode::OK);

        let reply = send(router, post("/admin/users/disable", Some(&w.admin), &[("email", "on@team.test")])).await;
        assert_eq!(reply.location(), "/admin?done=disabled", "{}: {}", db.backend, reply.body);
        // The same cookie and token, the very next request.
        let inbox = send(router, get("/inbox", Some(&w.on))).await;
        assert_eq!(inbox.location(), "/login", "{}", db.backend);
        assert_eq!(send(router, get(&r1, Some(&w.on))).await.location(), "/login");
        let api_reply = send(router, api("GET", "/api/v1/reports", Some(&w.on_token), None)).await;
        assert_eq!(api_reply.status, StatusCode::UNAUTHORIZED, "{}", db.backend);
        // On every instance.
        let sibling = w.web.sibling().await;
        assert_eq!(send(&sibling, get("/inbox", Some(&w.on))).await.location(), "/login");
        let page = send(router, get("/admin?done=disabled", Some(&w.admin))).await;
        assert!(page.body.contains("its sessions and API tokens no longer work"));

        // Enabled again, the old cookie stays dead.
        let reply = send(router, post("/admin/users/enable", Some(&w.admin), &[("email", "on@team.test")])).await;
        assert_eq!(reply.location(), "/admin?done=enabled");
        assert_eq!(send(router, get("/inbox", Some(&w.on))).await.location(), "/login");

        // The last admin cannot disable themselves: the page says why.
        let reply = send(router, post("/admin/users/disable", Some(&w.admin), &[("email", "admin@team.test")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("last active admin"), "{}", reply.body);
    }
}

#[tokio::test]
async fn the_team_page_resets_deletes_and_takes_products_and_reports_away() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let app = &w.web.app;
        let local = Actor::LocalAdmin { os_user: "test".into() };
        let product = accounts::create_product(app, &local, "Widget").await.unwrap();
        accounts::add_product_responder(app, &local, product, "off@team.test").await.unwrap();
        reports::set_product(app, &local, &w.r2, Some(product)).await.unwrap();
        let r2 = format!("/reports/{}", w.r2);
        assert_eq!(send(router, get(&r2, Some(&w.off))).await.status, StatusCode::OK);

        // Take the product away from the responder: they lose its report at once.
        let remove = format!("/admin/products/{product}/responders/remove");
        let reply = send(router, post(&remove, Some(&w.admin), &[("email", "off@team.test")])).await;
        assert_eq!(reply.location(), "/admin?done=responder-removed", "{}", db.backend);
        assert_eq!(send(router, get(&r2, Some(&w.off))).await.status, StatusCode::NOT_FOUND, "{}", db.backend);

        // A member of a report, then not: the report page offers the removal.
        reports::add_member(app, &local, &w.r2, "off@team.test").await.unwrap();
        assert_eq!(send(router, get(&r2, Some(&w.off))).await.status, StatusCode::OK);
        let page = send(router, get(&r2, Some(&w.admin))).await;
        assert!(page.body.contains(&format!("action=\"/reports/{}/members/remove\"", w.r2)), "{}", db.backend);
        let reply = send(
            router,
            post(&format!("/reports/{}/members/remove", w.r2), Some(&w.admin), &[("email", "off@team.test")]),
        )
        .await;
        assert_eq!(reply.location(), format!("/reports/{}?done=member-removed", w.r2));
        assert_eq!(send(router, get(&r2, Some(&w.off))).await.status, StatusCode::NOT_FOUND);

        // Rename, and deleting a product that a report names is refused with the reason.
        let reply = send(
            router,
            post(&format!("/admin/products/{product}/rename"), Some(&w.admin), &[("name", "Widget <b>Pro</b>")]),
        )
        .await;
        assert_eq!(reply.location(), "/admin?done=renamed");
        let page = send(router, get("/admin", Some(&w.admin))).await;
        assert!(page.body.contains("Widget &lt;b&gt;Pro&lt;/b&gt;") || page.body.contains("Widget &#60;b&#62;Pro"));
        let delete = format!("/admin/products/{product}/delete");
        let reply = send(router, post(&delete, Some(&w.admin), &[("confirm", "yes")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.body.contains("1 report(s) name it"), "{}", reply.body);

        // A password reset ends the member's session; a delete needs the box ticked.
        let reply = send(
            router,
            post(
                "/admin/users/password",
                Some(&w.admin),
                &[("email", "off@team.test"), ("password", "a new password!")],
            ),
        )
        .await;
        assert_eq!(reply.location(), "/admin?done=password");
        assert_eq!(send(router, get("/inbox", Some(&w.off))).await.location(), "/login");
        let reply = send(router, post("/admin/users/delete", Some(&w.admin), &[("email", "on@team.test")])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(send(router, get("/inbox", Some(&w.on))).await.status, StatusCode::OK);
        let reply =
            send(router, post("/admin/users/delete", Some(&w.admin), &[("email", "on@team.test"), ("confirm", "yes")]))
                .await;
        assert_eq!(reply.location(), "/admin?done=deleted");
        assert_eq!(send(router, get("/inbox", Some(&w.on))).await.location(), "/login");
        let page = send(router, get("/admin", Some(&w.admin))).await;
        assert!(!page.body.contains("on@team.test") && page.body.contains("deleted.invalid"), "{}", db.backend);
    }
}

#[tokio::test]
async fn recovery_codes_sign_in_once_and_are_renewed_from_the_account_page() {
    for db in both_backends() {
        let w = world(&db).await;
        let router = &w.web.router;
        let codes = recovery_codes("on@team.test");
        assert_eq!(codes.len(), 10, "shown at set-up");
        // The second-factor page takes a recovery code in place of the TOTP code.
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let partial = reply.cookie().unwrap();
        let page = send(router, get("/login/totp", Some(&partial))).await;
        assert!(page.body.contains("recovery codes"), "the page says so");
        let reply = send(router, post("/login/totp", Some(&partial), &[("code", &codes[2])])).await;
        assert_eq!(reply.location(), "/account?done=recovery-used", "{}: {}", db.backend, reply.body);
        let full = reply.cookie().unwrap();
        let account = send(router, get("/account?done=recovery-used", Some(&full))).await;
        assert!(account.body.contains("id=\"recovery-left\">9<"), "{}", db.backend);
        // Used up.
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let again = reply.cookie().unwrap();
        let reply = send(router, post("/login/totp", Some(&again), &[("code", &codes[2])])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        // A new set from the account page, shown once; the old set stops working.
        let reply = send(router, post("/account/recovery-codes", Some(&full), &[])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
        let list = between(&reply.body, "id=\"recovery-codes\"", "</ol>").unwrap();
        let fresh: Vec<&str> = list.split("<code>").skip(1).filter_map(|c| c.split("</code>").next()).collect();
        assert_eq!(fresh.len(), 10);
        assert!(!fresh.contains(&codes[3].as_str()));
        let reply = send(router, post("/login", None, &[("email", "on@team.test"), ("password", PASSWORD)])).await;
        let third = reply.cookie().unwrap();
        let reply = send(router, post("/login/totp", Some(&third), &[("code", &codes[3])])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", db.backend);
        let reply = send(router, post("/login/totp", Some(&third), &[("code", fresh[0])])).await;
        assert_eq!(reply.location(), "/account?done=recovery-used");
    }
}
