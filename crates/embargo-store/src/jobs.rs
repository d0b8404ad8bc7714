//! The durable job queue.
//!
//! A job is claimed with a lease: the claim sets `state = 'running'`, the worker's id as
//! `lease_owner`, a `lease_until` time, and counts the attempt. Completing or failing a job
//! is fenced on `(lease_owner, attempts)`, so a worker that lost its lease (it stalled past
//! `lease_until` and another worker took the job) can no longer complete it; when the
//! completion is written in the same transaction as the job's own database effect, that
//! effect commits exactly once. External effects are at-least-once and carry idempotency
//! keys.
//!
//! Claiming differs by dialect: PostgreSQL locks the candidate row with
//! `FOR UPDATE SKIP LOCKED`; SQLite has no row locks and runs the same statement inside
//! `BEGIN IMMEDIATE`, which admits one writer at a time.

use embargo_domain::Timestamp;
use sqlx::Row;

use crate::{Backend, Store, StoreError, Tx, ms, ts};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The registered kind, such as `mail.send`.
    pub kind: &'a str,
    /// JSON payload. Holds identifiers, never confidential content.
    pub payload: &'a str,
    /// When set, a second job with the same key is not created.
    pub idempotency_key: Option<&'a str>,
    /// Not before this time.
    pub run_at: Timestamp,
    /// Attempts before the job is given up (`dead`).
    pub max_attempts: i64,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// JSON payload.
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// The idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// The worker holding the lease.
    pub lease_owner: String,
}

/// A job's row, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Row id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// `queued`, `running`, `done` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Next run.
    pub run_at: Timestamp,
    /// The worker holding (or last holding) the lease.
    pub lease_owner: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Enqueues a job in the caller's transaction. Returns `None` when a job with the same
/// idempotency key already exists.
pub async fn enqueue(tx: &mut Tx, job: &NewJob<'_>, now: Timestamp) -> Result<Option<i64>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, idempotency_key, state, run_at, attempts, max_attempts, \
         created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, 0, $5, $6, $6) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(job.kind)
    .bind(job.payload)
    .bind(job.idempotency_key)
    .bind(ms(job.run_at))
    .bind(job.max_attempts)
    .bind(ms(now))
    .fetch_optional(tx.conn())
    .await?;
    Ok(id)
}

/// Enqueues several jobs in one statement, in the caller's transaction; a job whose
/// idempotency key already exists is skipped. Returns how many were created.
pub async fn enqueue_many(tx: &mut Tx, jobs: &[NewJob<'_>], now: Timestamp) -> Result<u64, StoreError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO jobs (kind, payload, idempotency_key, state, run_at, attempts, max_attempts, \
         created_at, updated_at) VALUES {} ON CONFLICT (idempotency_key) DO NOTHING",
        crate::values_list("($1, $2, $3, 'queued', $4, 0, $5, $6, $6)", 6, jobs.len())
    );
    let mut query = crate::bulk(sql);
    for job in jobs {
        query = query
            .bind(job.kind)
            .bind(job.payload)
            .bind(job.idempotency_key)
            .bind(ms(job.run_at))
            .bind(job.max_attempts)
            .bind(ms(now));
    }
    Ok(query.execute(tx.conn()).await?.rows_affected())
}

const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                 OR (state = 'running' AND lease_until <= $3) ORDER BY run_at, id LIMIT 1) \
     RETURNING id, kind, payload, attempts, max_attempts, idempotency_key";

// The due jobs are two index range scans on `jobs_ready` (state, run_at), queued ones and
// running ones whose lease expired, each read in order and stopped at its limit. With an
// `OR` of the two, PostgreSQL read every due job of the table into a bitmap and sorted
// them: 4-5 ms per claim with a flood's backlog, on the cores intake needs (ADR 36). The
// claimed ids are an array (`= ANY (ARRAY(...))`), which the update looks up by primary key;
// with `IN (...)` PostgreSQL joined them to a scan of the whole table, done jobs included.
const CLAIM_POSTGRES: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM ( \
                   SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'queued' AND run_at <= $3 \
                     ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS queued \
                   UNION ALL \
                   SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'running' AND lease_until <= $3 \
                     ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS expired \
                 ) AS due ORDER BY run_at, id LIMIT 1) \
     RETURNING id, kind, payload, attempts, max_attempts, idempotency_key";

const CLAIM_KIND_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id IN (SELECT id FROM jobs WHERE kind = $4 AND ((state = 'queued' AND run_at <= $3) \
                  OR (state = 'running' AND lease_until <= $3)) ORDER BY run_at, id LIMIT $5) \
     RETURNING id, kind, payload, attempts, max_attempts, idempotency_key";

const CLAIM_KIND_POSTGRES: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = ANY (ARRAY(SELECT id FROM ( \
                    SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'queued' AND run_at <= $3 \
                      AND kind = $4 ORDER BY run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) AS queued \
                    UNION ALL \
                    SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'running' \
                      AND lease_until <= $3 AND kind = $4 ORDER BY run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) AS expired \
                  ) AS due ORDER BY run_at, id LIMIT $5)) \
     RETURNING id, kind, payload, attempts, max_attempts, idempotency_key";

fn job_of(row: &sqlx::any::AnyRow, worker: &str) -> Result<Job, StoreError> {
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        attempt: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        idempotency_key: row.try_get("idempotency_key")?,
        lease_owner: worker.to_owned(),
    })
}

/// Claims the next due job (or one whose lease expired) for `worker` until `lease_until`.
pub async fn claim(
    store: &Store,
    worker: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<Job>, StoreError> {
    Ok(claim_batch(store, worker, now, lease_until, &[], 1).await?.into_iter().next())
}

/// Claims the next due job like [`claim`] and, when its kind is one of `batched`, up to
/// `limit - 1` more due jobs of that kind, in one transaction: a worker then completes them
/// together. Ordered by due time.
pub async fn claim_batch(
    store: &Store,
    worker: &str,
    now: Timestamp,
    lease_until: Timestamp,
    batched: &[&str],
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let mut tx = store.begin().await?;
    let (first, more) = match store.backend {
        Backend::Sqlite => (CLAIM_SQLITE, CLAIM_KIND_SQLITE),
        Backend::Postgres => (CLAIM_POSTGRES, CLAIM_KIND_POSTGRES),
    };
    let row = sqlx::query(first).bind(worker).bind(ms(lease_until)).bind(ms(now)).fetch_optional(tx.conn()).await?;
    let Some(row) = row else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let mut jobs = vec![job_of(&row, worker)?];
    if limit > 1 && batched.contains(&jobs[0].kind.as_str()) {
        let rows = sqlx::query(more)
            .bind(worker)
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(jobs[0].kind.as_str())
            .bind(limit - 1)
            .fetch_all(tx.conn())
            .await?;
        for row in &rows {
            jobs.push(job_of(row, worker)?);
        }
        jobs[1..].sort_by_key(|job| job.id);
    }
    tx.commit().await?;
    Ok(jobs)
}

/// Claims job `id` for `worker` until `lease_until`, whatever its due time, if it is queued
/// or its lease expired: the command that enqueued a job can run it at once, and no worker
/// runs it beside. `None` when it is running under a live lease, done or dead.
pub async fn claim_one(
    store: &Store,
    id: i64,
    worker: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<Job>, StoreError> {
    let mut tx = store.begin().await?;
    let row = sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
         updated_at = $3 WHERE id = $4 AND (state = 'queued' OR (state = 'running' AND lease_until <= $3)) \
         RETURNING id, kind, payload, attempts, max_attempts, idempotency_key",
    )
    .bind(worker)
    .bind(ms(lease_until))
    .bind(ms(now))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    row.map(|row| job_of(&row, worker)).transpose()
}

/// The id of the job with idempotency key `key`, if any.
pub async fn id_by_key(tx: &mut Tx, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1").bind(key).fetch_optional(tx.conn()).await?)
}

/// Queues the job with idempotency key `key` again, due now with its attempts reset, if it
/// is dead (gave up). Returns whether it was.
pub async fn requeue_dead(tx: &mut Tx, key: &str, now: Timestamp) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $1 WHERE idempotency_key = $2 AND state = 'dead'",
    )
    .bind(ms(now))
    .bind(key)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// The state of job `id` (`queued`, `running`, `done`, `dead`) and its last error.
pub async fn state_of(store: &Store, id: i64) -> Result<Option<(String, Option<String>)>, StoreError> {
    let mut tx = store.snapshot().await?;
    let row =
        sqlx::query("SELECT state, last_error FROM jobs WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?;
    tx.rollback().await?;
    row.map(|row| Ok((row.try_get("state")?, row.try_get("last_error")?))).transpose()
}

/// Marks a job done, if this worker still holds its lease. Returns whether it did; when it
/// returns `false` the caller must roll back whatever it did in this transaction.
pub async fn complete(tx: &mut Tx, job: &Job, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = $1 \
         WHERE id = $2 AND state = 'running' AND lease_owner = $3 AND attempts = $4",
    )
    .bind(ms(now))
    .bind(job.id)
    .bind(&job.lease_owner)
    .bind(job.attempt)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`complete`] for several jobs in one statement. Returns whether this worker still held
/// every lease; when it returns `false` the caller must roll back.
pub async fn complete_many(tx: &mut Tx, jobs: &[Job], now: Timestamp) -> Result<bool, StoreError> {
    let Some(owner) = jobs.first().map(|job| job.lease_owner.as_str()) else { return Ok(true) };
    if jobs.iter().any(|job| job.lease_owner != owner) {
        for job in jobs {
            if !complete(tx, job, now).await? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let sql = format!(
        "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = $1 \
         WHERE state = 'running' AND lease_owner = $2 AND (id, attempts) IN (VALUES {})",
        crate::values_list("($3, $4)", 2, jobs.len())
    );
    let mut query = crate::bulk(sql).bind(ms(now)).bind(owner);
    for job in jobs {
        query = query.bind(job.id).bind(job.attempt);
    }
    Ok(query.execute(tx.conn()).await?.rows_affected() == jobs.len() as u64)
}

/// Records a failed attempt: the job is queued again at `retry_at`, or given up (`dead`)
/// when `retry_at` is `None`. Fenced like [`complete`]; returns whether it applied.
pub async fn fail(
    store: &Store,
    job: &Job,
    error: &str,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let (state, run_at) = match retry_at {
        Some(at) => ("queued", ms(at)),
        None => ("dead", ms(now)),
    };
    let updated = sqlx::query(
        "UPDATE jobs SET state = $1, run_at = $2, lease_until = NULL, last_error = $3, \
         updated_at = $4 WHERE id = $5 AND state = 'running' AND lease_owner = $6 AND attempts = $7",
    )
    .bind(state)
    .bind(run_at)
    .bind(error)
    .bind(ms(now))
    .bind(job.id)
    .bind(&job.lease_owner)
    .bind(job.attempt)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(updated.rows_affected() == 1)
}

/// Extends a lease held by this worker (a heartbeat for long jobs). Returns whether the
/// worker still held it.
pub async fn extend_lease(store: &Store, job: &Job, lease_until: Timestamp) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let updated = sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND state = 'running' \
         AND lease_owner = $3 AND attempts = $4",
    )
    .bind(ms(lease_until))
    .bind(job.id)
    .bind(&job.lease_owner)
    .bind(job.attempt)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(updated.rows_affected() == 1)
}

/// Jobs, newest first, optionally of one state.
pub async fn list(store: &Store, state: Option<&str>, limit: i64) -> Result<Vec<JobRecord>, StoreError> {
    let mut tx = store.snapshot().await?;
    let rows = sqlx::query(
        "SELECT id, kind, state, attempts, run_at, lease_owner, last_error FROM jobs \
         WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    tx.rollback().await?;
    rows.iter()
        .map(|row| {
            Ok(JobRecord {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                state: row.try_get("state")?,
                attempts: row.try_get("attempts")?,
                run_at: ts(row.try_get("run_at")?)?,
                lease_owner: row.try_get("lease_owner")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// Number of jobs per state.
pub async fn count_by_state(store: &Store) -> Result<Vec<(String, i64)>, StoreError> {
    let mut tx = store.snapshot().await?;
    let rows =
        sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state").fetch_all(tx.conn()).await?;
    tx.rollback().await?;
    rows.iter().map(|row| Ok((row.try_get("state")?, row.try_get("n")?))).collect()
}

/// Records one run of the diagnostic probe job (see `embargo jobs probe`).
pub async fn record_probe(tx: &mut Tx, job: &Job, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO job_probes (job_id, worker, attempt, at) VALUES ($1, $2, $3, $4)")
        .bind(job.id)
        .bind(&job.lease_owner)
        .bind(job.attempt)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// How many times each probe job's effect was committed: `(job id, count)`.
pub async fn probe_counts(store: &Store) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut tx = store.snapshot().await?;
    let rows = sqlx::query("SELECT job_id, COUNT(*) AS n FROM job_probes GROUP BY job_id ORDER BY job_id")
        .fetch_all(tx.conn())
        .await?;
    tx.rollback().await?;
    rows.iter().map(|row| Ok((row.try_get("job_id")?, row.try_get("n")?))).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Rows the scans of `jobs` returned in an `EXPLAIN (ANALYZE)` text plan (each scan
    /// node's `rows=` times its `loops=`).
    fn rows_read_from_jobs(plan: &[String]) -> u64 {
        plan.iter()
            .filter(|line| line.contains(" on jobs"))
            .filter_map(|line| {
                let actual = &line[line.find("(actual")?..];
                let number = |key: &str| -> Option<u64> {
                    let rest = &actual[actual.find(key)? + key.len()..];
                    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
                };
                Some(number("rows=")? * number("loops=")?)
            })
            .sum()
    }

    /// Issue 17 (ADR 36, update): with a flood's backlog due, claiming a batch reads the jobs
    /// it claims (and the few it skips in index order), not every due job of the table. The
    /// former `OR` of queued and expired jobs made PostgreSQL read all of them into a bitmap
    /// and sort them: 4–5 ms per claim. PostgreSQL only (SQLite's planner read them in order).
    #[tokio::test]
    async fn a_claim_reads_about_what_it_claims_however_many_jobs_are_due() {
        for db in embargo_test_support::both_backends() {
            if db.backend != "postgres" {
                continue;
            }
            let store = Store::connect(&db.url, Arc::new(embargo_crypto::Keyring::generate())).await.unwrap();
            store.migrate().await.unwrap();
            let at = |ms: i64| Timestamp::from_millisecond(1_780_000_000_000 + ms).unwrap();
            let keys: Vec<String> = (0..2_000).map(|n| format!("k{n}")).collect();
            for chunk in keys.chunks(500) {
                let jobs: Vec<NewJob<'_>> = chunk
                    .iter()
                    .enumerate()
                    .map(|(n, key)| NewJob {
                        kind: if n % 2 == 0 { "mail.acknowledgement" } else { "report.index" },
                        payload: "{}",
                        idempotency_key: Some(key),
                        run_at: at(n as i64),
                        max_attempts: 3,
                    })
                    .collect();
                let mut tx = store.begin().await.unwrap();
                enqueue_many(&mut tx, &jobs, at(0)).await.unwrap();
                tx.commit().await.unwrap();
            }
            let mut tx = store.begin().await.unwrap();
            sqlx::query("ANALYZE jobs").execute(tx.conn()).await.unwrap();
            let explain = |sql: &str| sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, COSTS OFF) {sql}"));
            let plan: Vec<String> = sqlx::query_scalar(explain(CLAIM_POSTGRES))
                .bind("w")
                .bind(ms(at(60_000)))
                .bind(ms(at(10_000)))
                .fetch_all(tx.conn())
                .await
                .unwrap();
            let first = rows_read_from_jobs(&plan);
            // Ordered by (run_at, id) on an index of (state, run_at): an incremental sort reads
            // at least 32 rows before it sorts a group. A constant, whatever is due.
            assert!((1..=64).contains(&first), "one claim read {first} job rows of 2,000 due: {plan:#?}");
            let plan: Vec<String> = sqlx::query_scalar(explain(CLAIM_KIND_POSTGRES))
                .bind("w")
                .bind(ms(at(60_000)))
                .bind(ms(at(10_000)))
                .bind("report.index")
                .bind(16_i64)
                .fetch_all(tx.conn())
                .await
                .unwrap();
            let batch = rows_read_from_jobs(&plan);
            assert!((16..=128).contains(&batch), "a batch of 16 read {batch} job rows of 2,000 due: {plan:#?}");
            tx.rollback().await.unwrap();
        }
    }
}
