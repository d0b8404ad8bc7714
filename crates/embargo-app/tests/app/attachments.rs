//! Attachments bound to their row (ADR 31), through the use cases on SQLite and PostgreSQL:
//! an upgraded instance's attachments, sealed bound to their report only, are re-sealed to
//! their row by the `attachment.reseal` job once a worker starts, still read the same, and
//! from then on two attachments' contents swapped in the database are refused on download.

use embargo_app::reports::{self, Upload};
use embargo_app::{AppError, jobs};
use embargo_domain::Actor;
use embargo_test_support::both_backends;

use crate::common::{instance, submission};

async fn sql_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

#[tokio::test]
async fn old_attachments_are_resealed_to_their_row_and_a_swap_is_then_refused() {
    for db in both_backends() {
        let it = instance(db).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let mut form = submission("r@example.org", "Two files");
        form.attachments = vec![
            Upload { filename: "poc.py".into(), media_type: "text/x-python".into(), data: b"print(1)".to_vec() },
            Upload { filename: "notes.txt".into(), media_type: "text/plain".into(), data: b"step 2".to_vec() },
        ];
        let reference = reports::submit(app, &Actor::Reporter, form).await.unwrap().reference;
        let detail = reports::show(app, &local, &reference, reports::ReadPurpose::Read).await.unwrap();
        let report = detail.report.id;
        let ids: Vec<i64> = detail.attachments.iter().map(|a| a.id).collect();

        // As an instance before migration 0022 left them: every value bound to the report only.
        let pool = sql_pool(&it.db.url).await;
        let keys = app.store.keys();
        for (id, (name, media, data)) in
            ids.iter().zip([("poc.py", "text/x-python", "print(1)"), ("notes.txt", "text/plain", "step 2")])
        {
            let v1 = |field: &str, value: &str| {
                keys.seal(value.as_bytes(), format!("attachments.{field}:{report}").as_bytes())
            };
            sqlx::query(
                "UPDATE attachments SET filename_enc = $1, media_type_enc = $2, data_enc = $3, seal_version = 1 \
                 WHERE id = $4",
            )
            .bind(v1("filename", name))
            .bind(v1("media_type", media))
            .bind(v1("data", data))
            .bind(*id)
            .execute(&pool)
            .await
            .unwrap();
        }
        assert_eq!(reports::attachment(app, &local, &reference, ids[0]).await.unwrap().data, b"print(1)");

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(jobs::Worker::new(app.clone()).run(stopped));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let stale = loop {
            let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attachments WHERE seal_version <> 2")
                .fetch_one(&pool)
                .await
                .unwrap();
            if stale == 0 || std::time::Instant::now() > deadline {
                break stale;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        stop.send(true).unwrap();
        worker.await.unwrap();
        assert_eq!(stale, 0, "{}", it.db.backend);
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'attachment.reseal' AND state = 'done'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(done, 1, "{}", it.db.backend);

        let detail = reports::show(app, &local, &reference, reports::ReadPurpose::Read).await.unwrap();
        let names: Vec<&str> = detail.attachments.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(names, ["poc.py", "notes.txt"]);
        assert_eq!(reports::attachment(app, &local, &reference, ids[1]).await.unwrap().data, b"step 2");

        // Swap the two contents: the download is refused, saying why.
        let sealed = async |id: i64| -> Vec<u8> {
            sqlx::query_scalar("SELECT data_enc FROM attachments WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        let (a, b) = (sealed(ids[0]).await, sealed(ids[1]).await);
        for (id, value) in [(ids[0], b), (ids[1], a)] {
            sqlx::query("UPDATE attachments SET data_enc = $1 WHERE id = $2")
                .bind(value)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        let err = reports::attachment(app, &local, &reference, ids[0]).await.unwrap_err();
        let text = err.to_string();
        assert!(!matches!(err, AppError::NotFound(_)), "{text}");
        assert!(text.contains("does not belong to that row"), "{}: {text}", it.db.backend);
        pool.close().await;
    }
}
