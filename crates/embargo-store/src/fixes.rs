//! Private fix repositories: what Embargo knows about each (the git repository itself is a
//! directory of the data directory), the backport matrix (one row per release line), the
//! private CI runs with their logs (sealed, appended in chunks while a run goes), and the
//! invitations of fix developers.

use embargo_domain::fix::{self, Blocker, LineCheck};
use embargo_domain::{CiState, ReportId, Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A report's private fix repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixRepository {
    /// The report it is for.
    pub report: ReportId,
    /// The catalogue product it fixes.
    pub product_id: i64,
    /// The public repository it was seeded from.
    pub source_url: String,
    /// The test command private CI runs (empty: none).
    pub test_command: String,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Who opened it (actor text).
    pub created_by: String,
}

/// One release line of a fix: a row of the backport matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixLine {
    /// The public branch that carries the line.
    pub line: String,
    /// The public commit its fix branch started from.
    pub base: String,
    /// The fix branch's head as last recorded.
    pub head: String,
    /// Whether the line is affected.
    pub affected: bool,
    /// Its first affected version ('' when unknown).
    pub introduced: String,
    /// The version that will carry the fix ('' until decided).
    pub fixed_version: String,
    /// A person's reason to let the line through although its CI did not pass.
    pub ci_override: Option<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A private CI run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiRun {
    /// Id.
    pub id: i64,
    /// The report.
    pub report: ReportId,
    /// The release line.
    pub line: String,
    /// The commit tested.
    pub commit: String,
    /// Where it is.
    pub state: CiState,
    /// How the command was isolated, once started.
    pub isolation: Option<String>,
    /// The command's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

/// Records a new fix repository. [`StoreError::Conflict`] when the report has one.
pub async fn create(tx: &mut Tx, repository: &FixRepository) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fix_repositories (report_id, product_id, source_url, test_command, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(repository.report.0)
    .bind(repository.product_id)
    .bind(&repository.source_url)
    .bind(&repository.test_command)
    .bind(ms(repository.created_at))
    .bind(&repository.created_by)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "a fix repository for this report"))?;
    Ok(())
}

/// A report's fix repository, if it has one.
pub async fn get(tx: &mut Tx, report: ReportId) -> Result<Option<FixRepository>, StoreError> {
    let row = sqlx::query(
        "SELECT report_id, product_id, source_url, test_command, created_at, created_by FROM fix_repositories \
         WHERE report_id = $1",
    )
    .bind(report.0)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|row| {
        Ok(FixRepository {
            report: ReportId(row.try_get("report_id")?),
            product_id: row.try_get("product_id")?,
            source_url: row.try_get("source_url")?,
            test_command: row.try_get("test_command")?,
            created_at: ts(row.try_get("created_at")?)?,
            created_by: row.try_get("created_by")?,
        })
    })
    .transpose()
}

/// Archives a report's fix repository (read-only from then on). `false` when it has none
/// or it was archived already.
pub async fn archive(tx: &mut Tx, report: ReportId, at: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE fix_repositories SET archived_at = $2 WHERE report_id = $1 AND archived_at IS NULL")
        .bind(report.0)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// When a report's fix repository was archived, if it was.
pub async fn archived_at(tx: &mut Tx, report: ReportId) -> Result<Option<Timestamp>, StoreError> {
    let at: Option<Option<i64>> = sqlx::query_scalar("SELECT archived_at FROM fix_repositories WHERE report_id = $1")
        .bind(report.0)
        .fetch_optional(tx.conn())
        .await?;
    at.flatten().map(ts).transpose()
}

/// Every report that has a fix repository, oldest first.
pub async fn all(tx: &mut Tx) -> Result<Vec<ReportId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT report_id FROM fix_repositories ORDER BY created_at, report_id")
        .fetch_all(tx.conn())
        .await?;
    Ok(ids.into_iter().map(ReportId).collect())
}

/// Adds a release line to a fix, its fix branch at `base`.
pub async fn add_line(tx: &mut Tx, report: ReportId, line: &str, base: &str, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fix_lines (report_id, line, base, head, affected, introduced, fixed_version, updated_at) \
         VALUES ($1, $2, $3, $3, 1, '', '', $4)",
    )
    .bind(report.0)
    .bind(line)
    .bind(base)
    .bind(ms(at))
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "this release line"))?;
    Ok(())
}

/// A fix's release lines, in the order they were added.
pub async fn lines(tx: &mut Tx, report: ReportId) -> Result<Vec<FixLine>, StoreError> {
    let rows = sqlx::query(
        "SELECT line, base, head, affected, introduced, fixed_version, ci_override, updated_at FROM fix_lines \
         WHERE report_id = $1 ORDER BY line",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let affected: i64 = row.try_get("affected")?;
            Ok(FixLine {
                line: row.try_get("line")?,
                base: row.try_get("base")?,
                head: row.try_get("head")?,
                affected: affected != 0,
                introduced: row.try_get("introduced")?,
                fixed_version: row.try_get("fixed_version")?,
                ci_override: row.try_get("ci_override")?,
                updated_at: ts(row.try_get("updated_at")?)?,
            })
        })
        .collect()
}

/// Records a fix branch's new head; false when it already was the head (or there is no
/// such line).
pub async fn set_head(
    tx: &mut Tx,
    report: ReportId,
    line: &str,
    head: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE fix_lines SET head = $3, ci_override = NULL, updated_at = $4 \
         WHERE report_id = $1 AND line = $2 AND head <> $3",
    )
    .bind(report.0)
    .bind(line)
    .bind(head)
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a line's matrix values; false when there is no such line.
pub async fn set_matrix(
    tx: &mut Tx,
    report: ReportId,
    line: &str,
    affected: bool,
    introduced: &str,
    fixed_version: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE fix_lines SET affected = $3, introduced = $4, fixed_version = $5, updated_at = $6 \
         WHERE report_id = $1 AND line = $2",
    )
    .bind(report.0)
    .bind(line)
    .bind(i64::from(affected))
    .bind(introduced)
    .bind(fixed_version)
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets (or with `None` clears) a line's CI override; false when there is no such line.
pub async fn set_override(
    tx: &mut Tx,
    report: ReportId,
    line: &str,
    reason: Option<&str>,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE fix_lines SET ci_override = $3, updated_at = $4 WHERE report_id = $1 AND line = $2")
        .bind(report.0)
        .bind(line)
        .bind(reason)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

const RUN_COLUMNS: &str =
    "id, report_id, line, commit_sha, state, isolation, exit_code, created_at, started_at, finished_at";

fn run_of(row: &sqlx::any::AnyRow) -> Result<CiRun, StoreError> {
    let state: String = row.try_get("state")?;
    let opt_ts = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        row.try_get::<Option<i64>, _>(name)?.map(ts).transpose()
    };
    Ok(CiRun {
        id: row.try_get("id")?,
        report: ReportId(row.try_get("report_id")?),
        line: row.try_get("line")?,
        commit: row.try_get("commit_sha")?,
        state: CiState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("CI state {state:?}")))?,
        isolation: row.try_get("isolation")?,
        exit_code: row.try_get("exit_code")?,
        created_at: ts(row.try_get("created_at")?)?,
        started_at: opt_ts("started_at")?,
        finished_at: opt_ts("finished_at")?,
    })
}

/// Queues a CI run of `commit` on a line; `None` when that commit already has one.
pub async fn add_run(
    tx: &mut Tx,
    report: ReportId,
    line: &str,
    commit: &str,
    at: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO ci_runs (report_id, line, commit_sha, state, created_at) VALUES ($1, $2, $3, 'pending', $4) \
         ON CONFLICT (report_id, line, commit_sha) DO NOTHING RETURNING id",
    )
    .bind(report.0)
    .bind(line)
    .bind(commit)
    .bind(ms(at))
    .fetch_optional(tx.conn())
    .await?;
    Ok(id)
}

/// One run.
pub async fn run(tx: &mut Tx, id: i64) -> Result<Option<CiRun>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM ci_runs WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(run_of).transpose()
}

/// A fix's runs, newest first.
pub async fn runs(tx: &mut Tx, report: ReportId) -> Result<Vec<CiRun>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM ci_runs WHERE report_id = $1 ORDER BY id DESC"
    )))
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(run_of).collect()
}

/// Moves a run to `state` (the caller checked the step with [`CiState::apply`]); records
/// the isolation when it starts and the exit code when it ends.
pub async fn set_run_state(
    tx: &mut Tx,
    id: i64,
    state: CiState,
    isolation: Option<&str>,
    exit_code: Option<i64>,
    at: Timestamp,
) -> Result<(), StoreError> {
    let sql = if state == CiState::Running {
        "UPDATE ci_runs SET state = $2, isolation = COALESCE($3, isolation), exit_code = $4, started_at = $5 \
         WHERE id = $1"
    } else {
        "UPDATE ci_runs SET state = $2, isolation = COALESCE($3, isolation), exit_code = $4, finished_at = $5 \
         WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(state.code())
        .bind(isolation)
        .bind(exit_code)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Sets what a run records about how it ran (the sandbox, or the external CI's delivery).
pub async fn set_isolation(tx: &mut Tx, id: i64, isolation: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE ci_runs SET isolation = $2 WHERE id = $1").bind(id).bind(isolation).execute(tx.conn()).await?;
    Ok(())
}

fn log_aad(run: i64, seq: i64) -> String {
    format!("ci_log:{run}:{seq}")
}

/// Appends a chunk to a run's log (sealed); returns its sequence number.
pub async fn append_log(tx: &mut Tx, run: i64, chunk: &[u8]) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM ci_log_chunks WHERE run_id = $1")
        .bind(run)
        .fetch_one(tx.conn())
        .await?;
    let sealed = tx.keys.seal(chunk, log_aad(run, seq).as_bytes());
    sqlx::query("INSERT INTO ci_log_chunks (run_id, seq, chunk_enc) VALUES ($1, $2, $3)")
        .bind(run)
        .bind(seq)
        .bind(sealed)
        .execute(tx.conn())
        .await?;
    Ok(seq)
}

/// A run's log so far, as the command wrote it.
pub async fn log(tx: &mut Tx, run: i64) -> Result<Vec<u8>, StoreError> {
    let rows = sqlx::query("SELECT seq, chunk_enc FROM ci_log_chunks WHERE run_id = $1 ORDER BY seq")
        .bind(run)
        .fetch_all(tx.conn())
        .await?;
    let mut log = Vec::new();
    for row in rows {
        let seq: i64 = row.try_get("seq")?;
        let sealed: Vec<u8> = row.try_get("chunk_enc")?;
        log.extend(tx.keys.open(&sealed, log_aad(run, seq).as_bytes())?);
    }
    Ok(log)
}

/// An invitation of a fix developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Id.
    pub id: i64,
    /// The invited account.
    pub user: UserId,
    /// The report whose fix they were invited to.
    pub report: ReportId,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was used.
    pub accepted_at: Option<Timestamp>,
}

/// Records an invitation (only the token's hash is kept).
pub async fn invite(
    tx: &mut Tx,
    user: UserId,
    report: ReportId,
    token_hash: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO invitations (user_id, report_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id",
    )
    .bind(user.0)
    .bind(report.0)
    .bind(token_hash)
    .bind(ms(at))
    .bind(ms(expires_at))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The invitation a token's hash names.
pub async fn invitation(tx: &mut Tx, token_hash: &str) -> Result<Option<Invitation>, StoreError> {
    let row =
        sqlx::query("SELECT id, user_id, report_id, expires_at, accepted_at FROM invitations WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(tx.conn())
            .await?;
    row.map(|row| {
        Ok(Invitation {
            id: row.try_get("id")?,
            user: UserId(row.try_get("user_id")?),
            report: ReportId(row.try_get("report_id")?),
            expires_at: ts(row.try_get("expires_at")?)?,
            accepted_at: row.try_get::<Option<i64>, _>("accepted_at")?.map(ts).transpose()?,
        })
    })
    .transpose()
}

/// Marks an invitation used; false when it already was.
pub async fn accept_invitation(tx: &mut Tx, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL")
        .bind(id)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The latest run on a line's current head.
pub fn run_on_head<'a>(line: &FixLine, runs: &'a [CiRun]) -> Option<&'a CiRun> {
    runs.iter().filter(|r| r.line == line.line && r.commit == line.head).max_by_key(|r| r.id)
}

/// The domain's readiness rule ([`fix::blockers`]) over stored lines and runs.
pub fn blockers_of(lines: &[FixLine], runs: &[CiRun]) -> Vec<Blocker> {
    let checks: Vec<LineCheck<'_>> = lines
        .iter()
        .map(|line| LineCheck {
            line: &line.line,
            affected: line.affected,
            ci: run_on_head(line, runs).map(|r| r.state),
            overridden: line.ci_override.is_some(),
        })
        .collect();
    fix::blockers(&checks)
}

/// What keeps a report's fix from being ready for disclosure (nothing when it has no fix).
pub async fn blockers(tx: &mut Tx, report: ReportId) -> Result<Vec<Blocker>, StoreError> {
    if get(tx, report).await?.is_none() {
        return Ok(Vec::new());
    }
    let lines = lines(tx, report).await?;
    let runs = runs(tx, report).await?;
    Ok(blockers_of(&lines, &runs))
}

/// A comment of a fix's discussion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixComment {
    /// Id.
    pub id: i64,
    /// Who wrote it (their address, or the actor's text).
    pub author: String,
    /// What they wrote.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

fn comment_aad(report: ReportId) -> String {
    format!("fix_comments:{}", report.0)
}

/// Adds a comment to a fix's discussion (sealed).
pub async fn add_comment(
    tx: &mut Tx,
    report: ReportId,
    author: &str,
    body: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    let sealed = tx.seal(body, &comment_aad(report));
    let id = sqlx::query_scalar(
        "INSERT INTO fix_comments (report_id, author, body_enc, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(report.0)
    .bind(author)
    .bind(sealed)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// A fix's discussion, oldest first.
pub async fn comments(tx: &mut Tx, report: ReportId) -> Result<Vec<FixComment>, StoreError> {
    let rows =
        sqlx::query("SELECT id, author, body_enc, created_at FROM fix_comments WHERE report_id = $1 ORDER BY id")
            .bind(report.0)
            .fetch_all(tx.conn())
            .await?;
    let aad = comment_aad(report);
    rows.iter()
        .map(|row| {
            let sealed: Vec<u8> = row.try_get("body_enc")?;
            Ok(FixComment {
                id: row.try_get("id")?,
                author: row.try_get("author")?,
                body: tx.open(&sealed, &aad)?,
                created_at: ts(row.try_get("created_at")?)?,
            })
        })
        .collect()
}
