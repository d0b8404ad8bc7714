//! Offboarding from the command line against a running server, and the audit trail's signed
//! checkpoints (issue 12, items 7 and 8), on both backends.

use std::time::Duration;

use embargo_test_support::{Instance, both_backends};

use crate::BIN;

fn mail(subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: r@example.org\r\nTo: security@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nbody\r\n"
    )
    .into_bytes()
}

async fn sql(db_url: &str, statements: &[String]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

fn url_of(it: &Instance) -> String {
    it.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", it.data_dir.join("embargo.db").display()))
}

#[test]
fn disable_user_stops_a_live_api_token_on_the_running_server() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        let out = it.run(&["admin", "create-user", "--email", "admin@example.org", "--role", "admin"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["admin", "create-user", "--email", "leaver@example.org", "--role", "responder"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["admin", "create-token", "--email", "leaver@example.org"], b"");
        let token = out.stdout.trim().to_owned();
        let server = it.serve(&[]);
        let auth = format!("Bearer {token}");
        let list = server.http("GET", "/api/v1/reports", &[("authorization", &auth)], b"");
        assert_eq!(list.status, 200, "{}: {}", db.backend, list.body);

        let out = it.run(&["admin", "disable-user", "--email", "leaver@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("1 API token(s) revoked"), "{}", out.stdout);
        // The server's very next request with the token is refused.
        let list = server.http("GET", "/api/v1/reports", &[("authorization", &auth)], b"");
        assert_eq!(list.status, 401, "{}: a disabled account's token still works", db.backend);
        assert_eq!(server.terminate(Duration::from_secs(20)), Some(0));

        // The last admin stays; the deletion says what happened to the account's history.
        let out = it.run(&["admin", "delete-user", "--email", "admin@example.org"], b"");
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(out.stderr.contains("last active admin"), "{}", out.stderr);
        let out = it.run(&["admin", "delete-user", "--email", "leaver@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("stay attributed"), "{}", out.stdout);
        // Resets and recovery codes.
        let out = it.run(&["admin", "reset-password", "--email", "admin@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.trim().len() >= 20, "a random password is printed once");
        let out = it.run(&["admin", "reset-password", "--email", "admin@example.org", "--password-stdin"], b"short\n");
        assert_eq!(out.code, 65, "{}", out.stderr);
        let out = it.run(&["admin", "reset-totp", "--email", "admin@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Requiring a passkey, and lifting it: audited like every admin change.
        let out = it.run(&["admin", "require-passkey", "--email", "Admin@example.org"], b"");
        assert_eq!(
            (out.code, out.stdout.trim()),
            (0, "admin@example.org must now sign in with a passkey"),
            "{}",
            out.stderr
        );
        let out = it.run(&["admin", "require-passkey", "--email", "admin@example.org", "--off"], b"");
        assert_eq!(out.stdout.trim(), "admin@example.org no longer has to sign in with a passkey", "{}", out.stderr);
        let out = it.run(&["admin", "require-passkey", "--email", "nobody@example.org"], b"");
        assert_eq!(out.code, 1, "{}", out.stderr);
        let out = it.run(&["admin", "recovery-codes", "--email", "admin@example.org"], b"");
        assert_eq!(out.code, 1, "no second factor yet: {}", out.stderr);

        // Products and report members.
        assert_eq!(it.run(&["product", "add", "Widget"], b"").code, 0);
        let out = it.run(&["admin", "create-user", "--email", "dev@example.org", "--role", "responder"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(it.run(&["product", "add-responder", "Widget", "--email", "dev@example.org"], b"").code, 0);
        let out = it.run(&["product", "list", "--json"], b"");
        assert!(out.stdout.contains("dev@example.org"), "{}", out.stdout);
        let out = it.run(&["product", "remove-responder", "Widget", "--email", "dev@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!it.run(&["product", "list", "--json"], b"").stdout.contains("dev@example.org"));
        let out = it.run(&["product", "rename", "Widget", "Widget Pro"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["ingest-mail"], &mail("x", "1@example.org"));
        let reference = out.stdout.trim().trim_start_matches("new report ").to_owned();
        let out = it.run(&["report", "add-member", &reference, "--email", "dev@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["report", "remove-member", &reference, "--email", "dev@example.org"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = it.run(&["report", "remove-member", &reference, "--email", "dev@example.org"], b"");
        assert_eq!(out.code, 1, "not a member any more: {}", out.stdout);
        let out = it.run(&["product", "delete", "Widget Pro"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(it.run(&["product", "list"], b"").stdout.trim().is_empty());
    }
}

#[tokio::test]
async fn audit_verify_against_checkpoints_catches_a_cut_tail_with_a_rewritten_head() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        for i in 0..3 {
            assert_eq!(it.run(&["ingest-mail"], &mail("x", &format!("{i}@example.org"))).code, 0);
        }
        let out = it.run(&["audit", "checkpoint"], b"");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let checkpoint: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let signed = checkpoint["seq"].as_i64().unwrap();
        assert!(signed >= 4, "three reports and the checkpoint's own entry: {signed}");
        // The operator keeps a copy elsewhere.
        let saved = it.path("saved-checkpoints.jsonl");
        std::fs::copy(it.data_dir.join("audit-checkpoints.jsonl"), &saved).unwrap();
        let out = it.run(&["audit", "verify", "--checkpoints", saved.to_str().unwrap()], b"");
        assert_eq!(out.code, 0, "{}: {}{}", db.backend, out.stdout, out.stderr);
        let consistent = format!("consistent with 1 signed checkpoint(s), the latest at entry {signed}");
        assert!(out.stdout.contains(&consistent), "{}", out.stdout);

        // Cut the tail after entry 2 and rewrite the head to match.
        let url = url_of(&it);
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let hash: String =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = 2").fetch_one(&pool).await.unwrap();
        pool.close().await;
        sql(
            &url,
            &[
                "DELETE FROM audit_log WHERE seq > 2".to_owned(),
                format!("UPDATE audit_head SET seq = 2, hash = '{hash}' WHERE id = 1"),
            ],
        )
        .await;
        let out = it.run(&["audit", "verify"], b"");
        assert_eq!(out.code, 0, "{}: the chain alone cannot see it: {}", db.backend, out.stdout);
        let out = it.run(&["audit", "verify", "--checkpoints", saved.to_str().unwrap()], b"");
        assert_eq!(out.code, 1, "{}: not detected: {}", db.backend, out.stdout);
        let named = format!("AUDIT TRAIL BROKEN: audit entry {signed}: missing: the chain now ends at entry");
        assert!(out.stdout.contains(&named), "{}", out.stdout);
        // Against an explicit public key, and one that did not sign them.
        let public = it.data_dir.join("audit-checkpoint.pub");
        let out = it.run(
            &[
                "audit",
                "verify",
                "--checkpoints",
                saved.to_str().unwrap(),
                "--checkpoint-key",
                public.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(out.code, 1);
        let other = it.path("other.pub");
        std::fs::write(&other, format!("{}\n", "11".repeat(32))).unwrap();
        let out = it.run(
            &["audit", "verify", "--checkpoints", saved.to_str().unwrap(), "--checkpoint-key", other.to_str().unwrap()],
            b"",
        );
        assert_eq!(out.code, 1);
        assert!(out.stdout.contains("CHECKPOINT FILE INVALID: line 1"), "{}", out.stdout);
    }
}

#[tokio::test]
async fn a_deleted_audit_head_row_is_named() {
    for db in both_backends() {
        let it = Instance::new(BIN, Some(&db));
        assert_eq!(it.run(&["ingest-mail"], &mail("x", "1@example.org")).code, 0);
        sql(&url_of(&it), &["DELETE FROM audit_head".to_owned()]).await;
        let out = it.run(&["audit", "verify"], b"");
        assert_eq!(out.code, 1, "{}: {}{}", db.backend, out.stdout, out.stderr);
        assert!(out.stdout.contains("the audit head row is missing"), "{}", out.stdout);
        assert!(!out.stderr.contains("no rows returned"), "{}", out.stderr);
    }
}
