//! Signed audit checkpoints (issue 12, item 7), on SQLite and PostgreSQL: a chain cut
//! short with its head rewritten to match verifies as intact on its own, and is caught
//! against checkpoints exported before; a deleted head row is named.

use embargo_app::checkpoints::{self, CheckpointCheck};
use embargo_app::{audit, reports};
use embargo_domain::Actor;
use embargo_domain::audit::ChainError;
use embargo_test_support::both_backends;

use crate::common::{instance, submission};

async fn sql(url: &str, statements: &[String]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

async fn hash_of(url: &str, seq: i64) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let hash: String =
        sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1").bind(seq).fetch_one(&pool).await.unwrap();
    pool.close().await;
    hash
}

#[tokio::test]
async fn a_truncated_chain_with_a_rewritten_head_fails_against_signed_checkpoints() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let actor = Actor::LocalAdmin { os_user: "root".into() };
        for i in 0..3 {
            reports::submit(app, &Actor::Reporter, submission("r@example.org", &format!("r{i}"))).await.unwrap();
        }
        let first = checkpoints::checkpoint(app, &actor).await.unwrap();
        let keep = first.seq - 1;
        reports::submit(app, &Actor::Reporter, submission("r@example.org", "later")).await.unwrap();
        let second = checkpoints::checkpoint(app, &actor).await.unwrap();
        assert!(second.seq > first.seq);
        // The file holds both, signed by the data directory's key (not in the database).
        let file = std::fs::read_to_string(it.dir.path().join(checkpoints::FILE)).unwrap();
        assert_eq!(file.lines().count(), 2);
        let key = std::fs::read_to_string(it.dir.path().join("audit-checkpoint.pub")).unwrap();
        assert_eq!(key.trim(), checkpoints::local_public_key(app).unwrap());
        match checkpoints::verify_against(app, &actor, &file, &key).await.unwrap() {
            CheckpointCheck::Consistent { checked: 2, latest } => assert_eq!(latest, second.seq),
            other => panic!("{}: {other:?}", it.db.backend),
        }

        // Cut the tail and move the head back to match: the chain alone looks intact.
        let url = it.db.url.clone();
        let hash = hash_of(&url, keep).await;
        sql(
            &url,
            &[
                format!("DELETE FROM audit_log WHERE seq > {keep}"),
                format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}' WHERE id = 1"),
            ],
        )
        .await;
        assert!(
            matches!(audit::verify(app, &actor).await.unwrap(), audit::Verification::Intact(n) if n == keep),
            "{}: the failure mode this guards against",
            it.db.backend
        );
        // (verify appended an entry; the checkpoints still see the cut.)
        match checkpoints::verify_against(app, &actor, &file, &key).await.unwrap() {
            CheckpointCheck::Broken(err @ ChainError::Checkpoint { seq, .. }) => {
                assert_eq!(seq, first.seq, "{}", it.db.backend);
                let text = err.to_string();
                assert!(text.contains(&format!("audit entry {}", first.seq)) && text.contains("truncated"), "{text}");
            }
            other => panic!("{}: not detected: {other:?}", it.db.backend),
        }

        // A checkpoint file edited to match does not verify; nor one signed by another key.
        let forged = file.replacen(&first.hash, &hash, 1);
        assert!(matches!(
            checkpoints::verify_against(app, &actor, &forged, &key).await.unwrap(),
            CheckpointCheck::BadCheckpoint { line: 1, .. }
        ));
        let other = embargo_crypto::checkpoint::CheckpointKey::generate().public_hex();
        assert!(matches!(
            checkpoints::verify_against(app, &actor, &file, &other).await.unwrap(),
            CheckpointCheck::BadCheckpoint { line: 1, .. }
        ));
    }
}

#[tokio::test]
async fn a_deleted_head_row_is_named_as_tampering() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let actor = Actor::LocalAdmin { os_user: "root".into() };
        reports::submit(app, &Actor::Reporter, submission("r@example.org", "r")).await.unwrap();
        sql(&it.db.url, &["DELETE FROM audit_head".to_owned()]).await;
        match audit::verify(app, &actor).await.unwrap() {
            audit::Verification::Broken(err @ ChainError::HeadMissing { entries: 1 }) => {
                assert!(err.to_string().contains("audit head row is missing"), "{err}");
            }
            other => panic!("{}: {other:?}", it.db.backend),
        }
        // Writes that need the chain say why they fail.
        let err = reports::submit(app, &Actor::Reporter, submission("r@example.org", "s")).await.unwrap_err();
        assert!(format!("{err:#}").contains("audit head row is missing"), "{}: {err:#}", it.db.backend);
    }
}
