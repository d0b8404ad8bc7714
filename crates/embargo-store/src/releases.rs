//! Release builds: the product's release command, run by the disclosure runbook in the
//! sandbox on a checkout of a pushed tag (ADR 26), with its log (sealed, like CI logs).

use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, Tx, ms, ts};

fn opt_ts(value: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    value.map(ts).transpose()
}

/// One run of a release command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseBuild {
    /// Id.
    pub id: i64,
    /// The report whose fix was released.
    pub report: ReportId,
    /// The release line.
    pub line: String,
    /// The tag built.
    pub tag: String,
    /// The commit the tag points at.
    pub commit: String,
    /// `running`, `passed`, `failed` or `timed-out`.
    pub state: String,
    /// How the command was isolated (`bubblewrap`, `namespaces`, `none`).
    pub isolation: Option<String>,
    /// The command's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, report_id, line, tag, commit_sha, state, isolation, exit_code, started_at, finished_at";

fn build_of(row: &AnyRow) -> Result<ReleaseBuild, StoreError> {
    Ok(ReleaseBuild {
        id: row.try_get("id")?,
        report: ReportId(row.try_get("report_id")?),
        line: row.try_get("line")?,
        tag: row.try_get("tag")?,
        commit: row.try_get("commit_sha")?,
        state: row.try_get("state")?,
        isolation: row.try_get("isolation")?,
        exit_code: row.try_get("exit_code")?,
        started_at: ts(row.try_get("started_at")?)?,
        finished_at: opt_ts(row.try_get("finished_at")?)?,
    })
}

fn log_aad(build: i64) -> String {
    format!("release_builds.log:{build}")
}

/// Records a release command that starts now; returns its id.
pub async fn start(
    tx: &mut Tx,
    report: ReportId,
    line: &str,
    tag: &str,
    commit: &str,
    isolation: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO release_builds (report_id, line, tag, commit_sha, state, isolation, started_at) \
         VALUES ($1, $2, $3, $4, 'running', $5, $6) RETURNING id",
    )
    .bind(report.0)
    .bind(line)
    .bind(tag)
    .bind(commit)
    .bind(isolation)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await?)
}

/// Records how a release command ended, with its whole log (sealed).
pub async fn finish(
    tx: &mut Tx,
    id: i64,
    state: &str,
    exit_code: Option<i64>,
    log: &[u8],
    at: Timestamp,
) -> Result<(), StoreError> {
    let sealed = tx.keys.seal(log, log_aad(id).as_bytes());
    sqlx::query("UPDATE release_builds SET state = $2, exit_code = $3, log_enc = $4, finished_at = $5 WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(exit_code)
        .bind(sealed)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// One release build.
pub async fn get(tx: &mut Tx, id: i64) -> Result<Option<ReleaseBuild>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM release_builds WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(build_of).transpose()
}

/// A report's release builds, newest first.
pub async fn for_report(tx: &mut Tx, report: ReportId) -> Result<Vec<ReleaseBuild>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM release_builds WHERE report_id = $1 ORDER BY id DESC"
    )))
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(build_of).collect()
}

/// A release build's log (empty while it runs).
pub async fn log(tx: &mut Tx, id: i64) -> Result<Vec<u8>, StoreError> {
    let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT log_enc FROM release_builds WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    match sealed.flatten() {
        Some(sealed) => Ok(tx.keys.open(&sealed, log_aad(id).as_bytes())?),
        None => Ok(Vec::new()),
    }
}
