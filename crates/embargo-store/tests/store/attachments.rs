//! Attachments' sealed values are bound to their row (ADR 31): a ciphertext swapped with
//! another attachment's, of the same report or another, is refused with an error that says
//! so; rows sealed before migration 0022 (bound to their report only) still open and are
//! re-sealed to their row.

use std::sync::Arc;

use embargo_crypto::Keyring;
use embargo_store::attachments::{self, NewAttachment};
use embargo_store::{Store, StoreError};
use embargo_test_support::both_backends;

use super::{at, new_report};

async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

async fn sealed(pool: &sqlx::AnyPool, id: i64, column: &str) -> Vec<u8> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {column} FROM attachments WHERE id = $1")))
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn set(pool: &sqlx::AnyPool, id: i64, column: &str, value: &[u8]) {
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE attachments SET {column} = $1 WHERE id = $2")))
        .bind(value.to_vec())
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
}

fn misplaced(err: StoreError, field: &str, id: i64) {
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupt(_)), "{text}");
    assert!(
        text.contains(&format!("sealed {field} of attachment {id} ")) && text.contains("does not belong to that row"),
        "{text}"
    );
}

#[tokio::test]
async fn a_ciphertext_swapped_between_attachments_is_refused() {
    for db in both_backends() {
        let store = Store::connect(&db.url, Arc::new(Keyring::generate())).await.unwrap();
        store.migrate().await.unwrap();
        let (report, _) = new_report(&store, 2026, "t", "b", "a@example.org").await;
        let (other, _) = new_report(&store, 2026, "u", "c", "b@example.org").await;
        let mut tx = store.begin().await.unwrap();
        let mut ids = Vec::new();
        for (report, name, data) in
            [(report, "first.txt", "first"), (report, "second.txt", "second"), (other, "third.txt", "third")]
        {
            let new = NewAttachment {
                report,
                message: None,
                filename: name,
                media_type: "text/plain",
                data: data.as_bytes(),
                at: at(1),
            };
            ids.push(attachments::insert(&mut tx, &new).await.unwrap());
        }
        tx.commit().await.unwrap();
        let [a, b, c] = ids[..] else { unreachable!() };

        let pool = raw_pool(&db.url).await;
        let version: i64 = sqlx::query_scalar("SELECT seal_version FROM attachments WHERE id = $1")
            .bind(a)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(version, attachments::SEAL_VERSION);
        let (data_a, data_b) = (sealed(&pool, a, "data_enc").await, sealed(&pool, b, "data_enc").await);
        let name_a = sealed(&pool, a, "filename_enc").await;

        // Contents swapped between two attachments of one report: neither opens.
        set(&pool, a, "data_enc", &data_b).await;
        set(&pool, b, "data_enc", &data_a).await;
        let mut tx = store.snapshot().await.unwrap();
        misplaced(attachments::data(&mut tx, report, a).await.unwrap_err(), "data", a);
        misplaced(attachments::data(&mut tx, report, b).await.unwrap_err(), "data", b);
        tx.rollback().await.unwrap();
        set(&pool, a, "data_enc", &data_a).await;
        set(&pool, b, "data_enc", &data_b).await;

        // A file name moved to another report's attachment, or into the content column.
        set(&pool, c, "filename_enc", &name_a).await;
        set(&pool, b, "data_enc", &name_a).await;
        let mut tx = store.snapshot().await.unwrap();
        misplaced(attachments::list(&mut tx, other).await.unwrap_err(), "filename", c);
        misplaced(attachments::data(&mut tx, report, b).await.unwrap_err(), "data", b);
        // The untouched one still opens.
        assert_eq!(attachments::data(&mut tx, report, a).await.unwrap().unwrap(), b"first");
        tx.rollback().await.unwrap();

        // A row moved to another report (its values unchanged) fails too.
        set(&pool, b, "data_enc", &data_b).await;
        sqlx::query("UPDATE attachments SET message_id = NULL, report_id = $1 WHERE id = $2")
            .bind(report.0)
            .bind(c)
            .execute(&pool)
            .await
            .unwrap();
        let mut tx = store.snapshot().await.unwrap();
        misplaced(attachments::data(&mut tx, report, c).await.unwrap_err(), "data", c);
        tx.rollback().await.unwrap();
        pool.close().await;
        store.close().await;
    }
}

#[tokio::test]
async fn attachments_sealed_before_0022_open_and_are_resealed_to_their_row() {
    for db in both_backends() {
        let keys = Arc::new(Keyring::generate());
        let store = Store::connect(&db.url, keys.clone()).await.unwrap();
        store.migrate().await.unwrap();
        let (report, _) = new_report(&store, 2026, "t", "b", "a@example.org").await;
        let pool = raw_pool(&db.url).await;
        // Two rows as version 1 wrote them: every value bound to the report only.
        let v1 = |field: &str, value: &[u8]| keys.seal(value, format!("attachments.{field}:{}", report).as_bytes());
        let mut ids = Vec::new();
        for (name, data) in [("old.txt", "old content"), ("older.bin", "older content")] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO attachments (report_id, message_id, filename_enc, media_type_enc, size, data_enc, \
                 created_at) VALUES ($1, NULL, $2, $3, $4, $5, 0) RETURNING id",
            )
            .bind(report.0)
            .bind(v1("filename", name.as_bytes()))
            .bind(v1("media_type", b"text/plain"))
            .bind(data.len() as i64)
            .bind(v1("data", data.as_bytes()))
            .fetch_one(&pool)
            .await
            .unwrap();
            ids.push(id);
        }
        let version = async |id: i64| -> i64 {
            sqlx::query_scalar("SELECT seal_version FROM attachments WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(version(ids[0]).await, 1, "{}: the migration's default", db.backend);

        // They open as they are.
        let mut tx = store.snapshot().await.unwrap();
        let listed = attachments::list(&mut tx, report).await.unwrap();
        assert_eq!(listed.iter().map(|a| a.filename.as_str()).collect::<Vec<_>>(), ["old.txt", "older.bin"]);
        assert_eq!(attachments::data(&mut tx, report, ids[0]).await.unwrap().unwrap(), b"old content");
        assert_eq!(attachments::first_stale(&mut tx).await.unwrap(), Some(ids[0]));
        tx.rollback().await.unwrap();

        // Re-sealed one batch at a time (here one row, by the byte budget), then bound to their row.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(attachments::reseal_stale(&mut tx, 10, 1).await.unwrap().resealed, 1);
        tx.commit().await.unwrap();
        assert_eq!((version(ids[0]).await, version(ids[1]).await), (2, 1));
        let mut tx = store.begin().await.unwrap();
        assert_eq!(attachments::reseal_stale(&mut tx, 10, 1 << 20).await.unwrap().resealed, 1);
        assert_eq!(attachments::first_stale(&mut tx).await.unwrap(), None);
        assert_eq!(attachments::reseal_stale(&mut tx, 10, 1 << 20).await.unwrap(), Default::default());
        tx.commit().await.unwrap();
        let mut tx = store.snapshot().await.unwrap();
        assert_eq!(attachments::data(&mut tx, report, ids[1]).await.unwrap().unwrap(), b"older content");
        assert_eq!(attachments::list(&mut tx, report).await.unwrap()[1].filename, "older.bin");
        tx.rollback().await.unwrap();

        // Now a swap between them is refused, where version 1 could not tell.
        let (a, b) = (sealed(&pool, ids[0], "data_enc").await, sealed(&pool, ids[1], "data_enc").await);
        set(&pool, ids[0], "data_enc", &b).await;
        set(&pool, ids[1], "data_enc", &a).await;
        let mut tx = store.snapshot().await.unwrap();
        misplaced(attachments::data(&mut tx, report, ids[0]).await.unwrap_err(), "data", ids[0]);
        tx.rollback().await.unwrap();

        // A version-1 row whose value does not open is not re-sealed (that would make a
        // misplaced value look right): it is set aside (version 0), not tried again, and
        // still refused on reading.
        let bad: i64 = sqlx::query_scalar(
            "INSERT INTO attachments (report_id, message_id, filename_enc, media_type_enc, size, data_enc, \
             created_at) VALUES ($1, NULL, $2, $3, 1, $4, 0) RETURNING id",
        )
        .bind(report.0)
        .bind(v1("filename", b"x"))
        .bind(v1("media_type", b"text/plain"))
        .bind(keys.seal(b"x", b"attachments.data:999999"))
        .fetch_one(&pool)
        .await
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        let outcome = attachments::reseal_stale(&mut tx, 10, 1 << 20).await.unwrap();
        assert_eq!((outcome.resealed, outcome.unreadable), (0, vec![bad]));
        assert_eq!(attachments::first_stale(&mut tx).await.unwrap(), None);
        tx.commit().await.unwrap();
        assert_eq!(version(bad).await, 0);
        let mut tx = store.snapshot().await.unwrap();
        misplaced(attachments::data(&mut tx, report, bad).await.unwrap_err(), "data", bad);
        tx.rollback().await.unwrap();
        pool.close().await;
        store.close().await;
    }
}
