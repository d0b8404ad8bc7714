//! ADR 1 keeps the SQLite and PostgreSQL migrations column for column in step. This test
//! applies both and compares what the databases say they hold: the same tables, the same
//! columns in each, of the same type family (integer, text, bytes, real) and nullability.

use std::collections::BTreeMap;
use std::sync::Arc;

use embargo_crypto::Keyring;
use embargo_store::Store;
use embargo_test_support::{TestDb, postgres, require, sqlite};
use sqlx::Row;

/// A column as both catalogues can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    family: String,
    nullable: bool,
}

/// Table → column → description.
type Schema = BTreeMap<String, BTreeMap<String, Column>>;

/// The type family of a declared SQLite type (by SQLite's own affinity rules, §3.1 of
/// "Datatypes In SQLite") or of a PostgreSQL `data_type`.
fn family(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    match t.as_str() {
        "bigint" | "integer" | "smallint" => "integer".into(),
        "text" | "character varying" | "character" => "text".into(),
        "bytea" => "bytes".into(),
        "double precision" | "real" => "real".into(),
        _ if t.contains("int") => "integer".into(),
        _ if t.contains("char") || t.contains("clob") || t.contains("text") => "text".into(),
        _ if t.contains("blob") || t.is_empty() => "bytes".into(),
        _ if t.contains("real") || t.contains("floa") || t.contains("doub") => "real".into(),
        // Anything else (boolean, timestamp, json, numeric) breaks the portable-types rule.
        other => format!("unportable type {other}"),
    }
}

async fn migrated(db: &TestDb) -> sqlx::AnyPool {
    let store = Store::connect(&db.url, Arc::new(Keyring::generate())).await.unwrap();
    store.migrate().await.unwrap();
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.unwrap()
}

async fn sqlite_schema(db: &TestDb) -> Schema {
    let pool = migrated(db).await;
    let rows = sqlx::query(
        "SELECT m.name AS table_name, p.name AS column_name, p.type AS declared, p.\"notnull\" AS not_null, \
         p.pk AS pk FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%' \
         ORDER BY m.name, p.cid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for row in rows {
        let table: String = row.get("table_name");
        let column: String = row.get("column_name");
        let declared: String = row.get("declared");
        let not_null: i64 = row.get("not_null");
        let pk: i64 = row.get("pk");
        // A primary key column is never NULL in PostgreSQL; in SQLite only an INTEGER
        // PRIMARY KEY is (others are not NULL here because every migration says so).
        let nullable = not_null == 0 && pk == 0;
        schema.entry(table).or_default().insert(column, Column { family: family(&declared), nullable });
    }
    schema
}

async fn postgres_schema(db: &TestDb) -> Schema {
    let pool = migrated(db).await;
    let rows = sqlx::query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS declared, \
         is_nullable::text AS nullable FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%' \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for row in rows {
        let table: String = row.get("table_name");
        let column: String = row.get("column_name");
        let declared: String = row.get("declared");
        let nullable: String = row.get("nullable");
        schema
            .entry(table)
            .or_default()
            .insert(column, Column { family: family(&declared), nullable: nullable == "YES" });
    }
    schema
}

/// Every difference between the two schemas, one line each.
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let tables: std::collections::BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    for table in tables {
        match (sqlite.get(table), postgres.get(table)) {
            (Some(_), None) => out.push(format!("table {table} exists only on SQLite")),
            (None, Some(_)) => out.push(format!("table {table} exists only on PostgreSQL")),
            (Some(s), Some(p)) => {
                let columns: std::collections::BTreeSet<&String> = s.keys().chain(p.keys()).collect();
                for column in columns {
                    match (s.get(column), p.get(column)) {
                        (Some(_), None) => out.push(format!("column {table}.{column} exists only on SQLite")),
                        (None, Some(_)) => out.push(format!("column {table}.{column} exists only on PostgreSQL")),
                        (Some(a), Some(b)) if a != b => {
                            out.push(format!("column {table}.{column}: SQLite {a:?}, PostgreSQL {b:?}"))
                        }
                        _ => {}
                    }
                }
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_stay_column_for_column_in_step() {
    let Some(server) = require("PostgreSQL", postgres()) else { return };
    let lite = sqlite_schema(&sqlite()).await;
    let pg = postgres_schema(&server.fresh_database()).await;
    assert!(lite.len() > 10 && lite.contains_key("reports") && lite["reports"].contains_key("title_enc"), "{lite:?}");
    let diff = differences(&lite, &pg);
    assert!(diff.is_empty(), "the migrations drifted apart:\n{}", diff.join("\n"));
    // The comparison itself sees a drift: one column more, one type changed.
    let mut drifted = pg.clone();
    drifted.get_mut("reports").unwrap().insert("extra".into(), Column { family: "text".into(), nullable: true });
    drifted.get_mut("reports").unwrap().get_mut("title_enc").unwrap().family = "text".into();
    assert_eq!(differences(&lite, &drifted).len(), 2);
    assert_eq!(family("BOOLEAN"), "unportable type boolean");
}

/// Index name → its columns in order, for one table, as the database describes them.
async fn indexes(db: &TestDb, table: &str) -> BTreeMap<String, Vec<String>> {
    let pool = migrated(db).await;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if db.url.starts_with("sqlite") {
        let rows = sqlx::query(
            "SELECT il.name AS index_name, ii.name AS column_name FROM pragma_index_list($1) il \
             JOIN pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        for row in rows {
            out.entry(row.get("index_name")).or_default().push(row.get("column_name"));
        }
    } else {
        let rows = sqlx::query(
            "SELECT indexname::text AS index_name, indexdef AS definition FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        for row in rows {
            // `CREATE INDEX name ON schema.table USING btree (a, b)`, with ` WHERE (...)` after
            // it for a partial index.
            let definition: String = row.get("definition");
            let columns = definition.split(" WHERE ").next().unwrap_or_default();
            let inner = columns.rsplit_once('(').map(|(_, rest)| rest.trim_end_matches(')')).unwrap_or_default();
            let columns = inner.split(',').map(|c| c.trim().to_owned()).collect();
            out.insert(row.get("index_name"), columns);
        }
    }
    out
}

/// What the report page and the inbox look reports up by is indexed on both backends (ADR
/// 18): the reports split from a report (a scan of every report per page view before), the
/// duplicates of a report, and the reporter's other reports with every column the inbox's
/// "flagged" rule and need-to-know read, so that each row's flag comes from the index alone.
#[tokio::test]
async fn the_page_lookups_of_reports_are_indexed_on_both_backends() {
    for db in embargo_test_support::both_backends() {
        let found = indexes(&db, "reports").await;
        let leading =
            |columns: &[&str]| found.values().any(|index| index.iter().take(columns.len()).eq(columns.iter()));
        for columns in [
            &["split_from"][..],
            &["duplicate_of"][..],
            &["reporter_id", "state", "close_reason", "assignee_id", "product_id", "id"][..],
        ] {
            assert!(leading(columns), "{}: no index on reports({}) in {found:?}", db.url, columns.join(", "));
        }
        // The check itself tells a missing index.
        assert!(!leading(&["title_enc"]));
    }
}

/// Migration 0015 (issue 19 item 5, ADR 23): on a database from before it, an advisory that
/// was published keeps its ID as its public ID, and a draft gets none (it is numbered at its
/// publication); both backends.
#[tokio::test]
async fn advisories_published_before_public_ids_keep_theirs() {
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
    for db in embargo_test_support::both_backends() {
        // Create the database (and its file) the way the store does, then apply up to 0012.
        drop(Store::connect(&db.url, Arc::new(Keyring::generate())).await.unwrap());
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let migrator = if db.backend == "sqlite" { &SQLITE } else { &POSTGRES };
        migrator.run_to(12, &pool).await.unwrap();
        let mut ids = Vec::new();
        for handle in ["EMB-2026-0001", "EMB-2026-0002"] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO advisories (advisory_id, state, record_enc, created_by, created_at, updated_at) \
                 VALUES ($1, 'draft', $2, 'test', 0, 0) RETURNING id",
            )
            .bind(handle)
            .bind(vec![0_u8])
            .fetch_one(&pool)
            .await
            .unwrap();
            ids.push(id);
        }
        sqlx::query(
            "INSERT INTO advisory_publications (advisory_id, revision, public_id, title, published_at, modified_at, \
             osv, csaf, csaf_filename, csaf_signature, markdown, html) \
             VALUES ($1, 1, 'EMB-2026-0001', 't', 0, 0, '{}', '{}', 'emb-2026-0001.json', '', '', '')",
        )
        .bind(ids[0])
        .execute(&pool)
        .await
        .unwrap();
        migrator.run(&pool).await.unwrap();
        let rows: Vec<(String, Option<String>)> =
            sqlx::query("SELECT advisory_id, public_id FROM advisories ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("advisory_id"), r.get("public_id")))
                .collect();
        assert_eq!(
            rows,
            [("EMB-2026-0001".to_owned(), Some("EMB-2026-0001".to_owned())), ("EMB-2026-0002".to_owned(), None)],
            "{}",
            db.backend
        );
    }
}

/// Migration 0018 (issue 20 item 9, ADR 27): on a database from before it, a report with a
/// near-duplicate signature is recorded as indexed by method version 1, so that it is listed
/// as stale and re-indexed; a report not indexed yet is not (its index job will do it).
#[tokio::test]
async fn signatures_from_before_0018_are_version_1_and_stale() {
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
    for db in embargo_test_support::both_backends() {
        let keys = Arc::new(Keyring::generate());
        drop(Store::connect(&db.url, keys.clone()).await.unwrap());
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let migrator = if db.backend == "sqlite" { &SQLITE } else { &POSTGRES };
        migrator.run_to(15, &pool).await.unwrap();
        let reporter: i64 = sqlx::query_scalar(
            "INSERT INTO reporters (email_index, email_enc, created_at) VALUES ('e', $1, 0) RETURNING id",
        )
        .bind(vec![0_u8])
        .fetch_one(&pool)
        .await
        .unwrap();
        let mut ids = Vec::new();
        for (n, signature) in [(1_i64, Some(vec![1_u8; 513])), (2, None)] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO reports (reference, ref_year, ref_number, state, channel, reporter_id, title_enc, \
                 body_enc, reply_token, status_token_hash, status_token_enc, created_at, updated_at, similarity_enc) \
                 VALUES ($1, 2026, $2, 'new', 'web', $3, $4, $4, $1, $1, $4, 0, 0, $5) RETURNING id",
            )
            .bind(format!("EMB-2026-{n}"))
            .bind(n)
            .bind(reporter)
            .bind(vec![0_u8])
            .bind(signature)
            .fetch_one(&pool)
            .await
            .unwrap();
            ids.push(id);
        }
        migrator.run(&pool).await.unwrap();
        let versions: Vec<Option<i64>> =
            sqlx::query_scalar("SELECT similarity_version FROM reports ORDER BY id").fetch_all(&pool).await.unwrap();
        assert_eq!(versions, [Some(1), None], "{}", db.backend);
        pool.close().await;
        let store = Store::connect(&db.url, keys).await.unwrap();
        let mut tx = store.snapshot().await.unwrap();
        let stale = embargo_store::reports::similarity_stale(&mut tx, 2, 10).await.unwrap();
        assert_eq!(stale, [embargo_domain::ReportId(ids[0])], "{}", db.backend);
        tx.rollback().await.unwrap();
    }
}

/// Migration 0023 (issue 17, ADR 36): on a database from before it, the near-duplicate bands
/// stay and are found, a report's bands are replaced by re-indexing it (now a plain insert,
/// the table rebuilt without its foreign key on SQLite), and the lookups of reports by
/// assignee, duplicate and split still go through their indexes, which now hold only the
/// reports that have one; both backends.
#[tokio::test]
async fn bands_and_report_lookups_from_before_0023_keep_working() {
    use embargo_domain::{ReferenceId, ReportId};
    use embargo_store::reports;
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
    for db in embargo_test_support::both_backends() {
        let keys = Arc::new(Keyring::generate());
        drop(Store::connect(&db.url, keys.clone()).await.unwrap());
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let migrator = if db.backend == "sqlite" { &SQLITE } else { &POSTGRES };
        migrator.run_to(22, &pool).await.unwrap();
        let reporter: i64 = sqlx::query_scalar(
            "INSERT INTO reporters (email_index, email_enc, created_at) VALUES ('e', $1, 0) RETURNING id",
        )
        .bind(vec![0_u8])
        .fetch_one(&pool)
        .await
        .unwrap();
        let mut ids = Vec::new();
        for n in 1..=3_i64 {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO reports (reference, ref_year, ref_number, state, channel, reporter_id, title_enc, \
                 body_enc, reply_token, status_token_hash, status_token_enc, created_at, updated_at) \
                 VALUES ($1, 2026, $2, 'new', 'web', $3, $4, $4, $1, $1, $4, 0, 0) RETURNING id",
            )
            .bind(format!("EMB-2026-{n}"))
            .bind(n)
            .bind(reporter)
            .bind(vec![0_u8])
            .fetch_one(&pool)
            .await
            .unwrap();
            ids.push(id);
        }
        // Report 3 was split from report 1 and closed as its duplicate.
        sqlx::query("UPDATE reports SET split_from = $1, duplicate_of = $1 WHERE id = $2")
            .bind(ids[0])
            .bind(ids[2])
            .execute(&pool)
            .await
            .unwrap();
        for band in ["00000000000000aa", "00000000000000bb"] {
            sqlx::query("INSERT INTO report_bands (band, report_id) VALUES ($1, $2)")
                .bind(band)
                .bind(ids[0])
                .execute(&pool)
                .await
                .unwrap();
        }
        migrator.run(&pool).await.unwrap();
        let bands: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM report_bands").fetch_one(&pool).await.unwrap();
        assert_eq!(bands, 2, "{}: the bands stored before 0023 are kept", db.backend);

        // The lookups by split, duplicate and assignee use their (now partial) indexes.
        let mut conn = pool.acquire().await.unwrap();
        let explain = if db.backend == "sqlite" {
            "EXPLAIN QUERY PLAN"
        } else {
            sqlx::Executor::execute(&mut *conn, "SET enable_seqscan = off").await.unwrap();
            "EXPLAIN"
        };
        for (column, index) in [
            ("split_from", "reports_split_from"),
            ("duplicate_of", "reports_duplicate_of"),
            ("assignee_id", "reports_assignee"),
        ] {
            let plan: Vec<String> =
                sqlx::query(sqlx::AssertSqlSafe(format!("{explain} SELECT id FROM reports WHERE {column} = $1")))
                    .bind(ids[0])
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>(if db.backend == "sqlite" { "detail" } else { "QUERY PLAN" }))
                    .collect();
            assert!(plan.iter().any(|line| line.contains(index)), "{}: {column} lookup: {plan:?}", db.backend);
        }
        drop(conn);
        let split: Vec<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE split_from = $1")
            .bind(ids[0])
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(split, [ids[2]], "{}", db.backend);
        pool.close().await;

        // Re-indexing replaces a report's bands; reports sharing one are candidates.
        let store = Store::connect(&db.url, keys.clone()).await.unwrap();
        let reference = |n: i64| -> ReferenceId { format!("EMB-2026-{n}").parse().unwrap() };
        let rows = |n: usize, bands: &[&str]| {
            let bands: Vec<String> = bands.iter().map(|b| (*b).to_owned()).collect();
            reports::prepare_index(&keys, ReportId(ids[n]), &[], Some((&reference(n as i64 + 1), &[7_u8; 16], &bands)))
        };
        for _ in 0..2 {
            let mut tx = store.begin().await.unwrap();
            // The same report twice in one batch, and again in the next: no band is stored twice.
            let batch = [
                rows(0, &["00000000000000aa", "00000000000000bb"]),
                rows(1, &["00000000000000bb", "00000000000000cc"]),
                rows(1, &["00000000000000bb", "00000000000000cc"]),
            ];
            reports::write_index(&mut tx, &batch).await.unwrap();
            tx.commit().await.unwrap();
        }
        let mut tx = store.snapshot().await.unwrap();
        let (candidates, work) = reports::similarity_candidates(&mut tx, ReportId(ids[1]), 4, 5).await.unwrap();
        assert_eq!(work.own_bands, 2, "{}", db.backend);
        let found: Vec<ReportId> = candidates.iter().map(|c| c.id).collect();
        assert_eq!(found, [ReportId(ids[0])], "{}", db.backend);
        assert_eq!(candidates[0].signature, [7_u8; 16], "{}", db.backend);
        tx.rollback().await.unwrap();
    }
}
