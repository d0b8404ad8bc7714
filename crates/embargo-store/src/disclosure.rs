//! Disclosure plans and their steps (the runbook, `embargo_app::disclosure`): a plan per
//! report with its instant, its content (sealed JSON: everything it will publish) and the
//! hash of it, the second person's approval bound to the hash they saw, and its steps for
//! the live run and the latest rehearsal.
//!
//! A step is claimed by one runner with a conditional update (`pending` → `running`), so
//! two runners (two instances) never both start it; a call that may take effect is marked
//! (`called_at`) in its own committed transaction before it is made.

use embargo_domain::disclosure::{PlanState, StepKind, StepState};
use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A plan as stored.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its id.
    pub id: i64,
    /// The report it discloses.
    pub report: ReportId,
    /// Where it is.
    pub state: PlanState,
    /// The instant of the disclosure.
    pub disclose_at: Timestamp,
    /// "Disclose now": no waits.
    pub emergency: bool,
    /// What it will publish (JSON, opened).
    pub content: String,
    /// The hash of the content.
    pub content_hash: String,
    /// Who prepared it (last changed it): an actor identity.
    pub planned_by: String,
    /// Every identity that prepared or changed it (none of them may approve it).
    pub editors: Vec<String>,
    /// Who approved it (armed it).
    pub approved_by: Option<String>,
    /// The hash the approver saw.
    pub approved_hash: Option<String>,
    /// When it was approved.
    pub approved_at: Option<Timestamp>,
    /// Why it stopped (no report content).
    pub stop_reason: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A step as stored.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id.
    pub id: i64,
    /// The plan.
    pub plan: i64,
    /// `live` or `rehearsal`.
    pub run: String,
    /// Its place in the plan's order.
    pub ordinal: i64,
    /// Its stable name (`push`, `announce.slack`, ...).
    pub name: String,
    /// Its kind.
    pub kind: StepKind,
    /// Where it is.
    pub state: StepState,
    /// How many times a runner claimed it.
    pub attempts: i64,
    /// The runner's job that claimed it last.
    pub claimed_by: Option<i64>,
    /// When a call that may take effect was last made.
    pub called_at: Option<Timestamp>,
    /// When it first started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// What the service named the effect (a commit, a post ID, a URL).
    pub external_id: Option<String>,
    /// What happened, in words (no report content).
    pub detail: String,
    /// What it produced or would produce (rehearsals: the text that would go out), opened.
    pub output: Option<String>,
}

fn plan_aad(report: ReportId) -> String {
    format!("disclosure_plans:{}", report.0)
}

fn step_aad(plan: i64, run: &str, name: &str) -> String {
    format!("disclosure_steps:{plan}:{run}:{name}")
}

const PLAN_COLUMNS: &str = "id, report_id, state, disclose_at, emergency, content_enc, content_hash, planned_by, editors, \
     approved_by, approved_hash, approved_at, stop_reason, created_at, updated_at";

const STEP_COLUMNS: &str = "id, plan_id, run, ordinal, name, kind, state, attempts, claimed_by, called_at, started_at, \
     finished_at, external_id, detail, output_enc";

fn opt_ts(value: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    value.map(ts).transpose()
}

fn plan_of(tx: &Tx, row: &sqlx::any::AnyRow) -> Result<Plan, StoreError> {
    let report = ReportId(row.try_get("report_id")?);
    let state: String = row.try_get("state")?;
    let sealed: Vec<u8> = row.try_get("content_enc")?;
    Ok(Plan {
        id: row.try_get("id")?,
        report,
        state: PlanState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("plan state {state:?}")))?,
        disclose_at: ts(row.try_get("disclose_at")?)?,
        emergency: row.try_get::<i64, _>("emergency")? != 0,
        content: tx.open(&sealed, &plan_aad(report))?,
        content_hash: row.try_get("content_hash")?,
        planned_by: row.try_get("planned_by")?,
        editors: row.try_get::<String, _>("editors")?.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        approved_by: row.try_get("approved_by")?,
        approved_hash: row.try_get("approved_hash")?,
        approved_at: opt_ts(row.try_get("approved_at")?)?,
        stop_reason: row.try_get("stop_reason")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

fn step_of(tx: &Tx, row: &sqlx::any::AnyRow) -> Result<Step, StoreError> {
    let plan: i64 = row.try_get("plan_id")?;
    let run: String = row.try_get("run")?;
    let name: String = row.try_get("name")?;
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let sealed: Option<Vec<u8>> = row.try_get("output_enc")?;
    let output = match sealed {
        Some(sealed) => Some(tx.open(&sealed, &step_aad(plan, &run, &name))?),
        None => None,
    };
    Ok(Step {
        id: row.try_get("id")?,
        plan,
        ordinal: row.try_get("ordinal")?,
        kind: StepKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("step kind {kind:?}")))?,
        state: StepState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("step state {state:?}")))?,
        attempts: row.try_get("attempts")?,
        claimed_by: row.try_get("claimed_by")?,
        called_at: opt_ts(row.try_get("called_at")?)?,
        started_at: opt_ts(row.try_get("started_at")?)?,
        finished_at: opt_ts(row.try_get("finished_at")?)?,
        external_id: row.try_get("external_id")?,
        detail: row.try_get("detail")?,
        output,
        run,
        name,
    })
}

/// A plan to store.
#[derive(Debug, Clone, Copy)]
pub struct NewPlan<'a> {
    /// The report.
    pub report: ReportId,
    /// The instant.
    pub disclose_at: Timestamp,
    /// Disclose now.
    pub emergency: bool,
    /// The content (JSON).
    pub content: &'a str,
    /// Its hash.
    pub content_hash: &'a str,
    /// Who prepares it.
    pub planned_by: &'a str,
}

/// Stores a draft plan; [`StoreError::Conflict`] when the report has a plan that is not
/// done or cancelled.
pub async fn insert(tx: &mut Tx, new: &NewPlan<'_>, now: Timestamp) -> Result<i64, StoreError> {
    let sealed = tx.seal(new.content, &plan_aad(new.report));
    sqlx::query_scalar(
        "INSERT INTO disclosure_plans (report_id, state, disclose_at, emergency, content_enc, content_hash, \
         planned_by, editors, created_at, updated_at) VALUES ($1, 'draft', $2, $3, $4, $5, $6, $6, $7, $7) RETURNING id",
    )
    .bind(new.report.0)
    .bind(ms(new.disclose_at))
    .bind(i64::from(new.emergency))
    .bind(sealed)
    .bind(new.content_hash)
    .bind(new.planned_by)
    .bind(ms(now))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "a disclosure plan for this report"))
}

/// One plan.
pub async fn get(tx: &mut Tx, id: i64) -> Result<Option<Plan>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PLAN_COLUMNS} FROM disclosure_plans WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(|row| plan_of(tx, row)).transpose()
}

/// A report's plans, newest first.
pub async fn for_report(tx: &mut Tx, report: ReportId) -> Result<Vec<Plan>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PLAN_COLUMNS} FROM disclosure_plans WHERE report_id = $1 ORDER BY id DESC"
    )))
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| plan_of(tx, row)).collect()
}

/// The ids of plans in `state`.
pub async fn ids_in(tx: &mut Tx, state: PlanState) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM disclosure_plans WHERE state = $1 ORDER BY id")
        .bind(state.code())
        .fetch_all(tx.conn())
        .await?)
}

/// Every plan, newest first (no content opened: the list of `disclosure list`).
pub async fn list(tx: &mut Tx) -> Result<Vec<Plan>, StoreError> {
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PLAN_COLUMNS} FROM disclosure_plans ORDER BY id DESC")))
            .fetch_all(tx.conn())
            .await?;
    rows.iter().map(|row| plan_of(tx, row)).collect()
}

/// A new content of a plan.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The content (JSON).
    pub content: &'a str,
    /// Its hash.
    pub content_hash: &'a str,
    /// Who changed it (an actor identity): the planner from now on.
    pub changed_by: &'a str,
}

/// Replaces a plan's content (and instant, emergency flag, from `plan`), sets who changed
/// it, and takes any approval back (the state is set by the caller: a change disarms).
/// `false` when the plan is not in `from`.
pub async fn change(
    tx: &mut Tx,
    plan: &Plan,
    from: PlanState,
    to: PlanState,
    change: &Change<'_>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sealed = tx.seal(change.content, &plan_aad(plan.report));
    let done = sqlx::query(
        "UPDATE disclosure_plans SET state = $2, disclose_at = $3, emergency = $4, content_enc = $5, \
         content_hash = $6, planned_by = $7, editors = $10, approved_by = NULL, approved_hash = NULL, approved_at = NULL, \
         updated_at = $8 WHERE id = $1 AND state = $9",
    )
    .bind(plan.id)
    .bind(to.code())
    .bind(ms(plan.disclose_at))
    .bind(i64::from(plan.emergency))
    .bind(sealed)
    .bind(change.content_hash)
    .bind(change.changed_by)
    .bind(ms(now))
    .bind(from.code())
    .bind({
        let mut editors = plan.editors.clone();
        if !editors.iter().any(|e| e == change.changed_by) {
            editors.push(change.changed_by.to_owned());
        }
        editors.join(",")
    })
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the approval that arms a draft plan. `false` when it is not a draft or its
/// content hash is not `hash` (it changed meanwhile).
pub async fn approve(
    tx: &mut Tx,
    plan: i64,
    hash: &str,
    approved_by: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE disclosure_plans SET state = 'armed', approved_by = $2, approved_hash = $3, approved_at = $4, \
         updated_at = $4 WHERE id = $1 AND state = 'draft' AND content_hash = $3",
    )
    .bind(plan)
    .bind(approved_by)
    .bind(hash)
    .bind(ms(now))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a plan from `from` to `to` (with the reason it stopped, if it did). `false` when
/// it was not in `from` (another runner moved it).
pub async fn set_state(
    tx: &mut Tx,
    plan: i64,
    from: PlanState,
    to: PlanState,
    stop_reason: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE disclosure_plans SET state = $2, stop_reason = $3, updated_at = $4 WHERE id = $1 AND state = $5",
    )
    .bind(plan)
    .bind(to.code())
    .bind(stop_reason)
    .bind(ms(now))
    .bind(from.code())
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A step to store.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Its place.
    pub ordinal: i64,
    /// Its stable name.
    pub name: String,
    /// Its kind.
    pub kind: StepKind,
    /// `pending`, or `skipped` when the plan has nothing to do for it.
    pub state: StepState,
    /// Why it is skipped, or what it will do.
    pub detail: String,
}

/// Replaces a plan's steps of `run` (`live` before it runs; `rehearsal` before each
/// rehearsal).
pub async fn replace_steps(
    tx: &mut Tx,
    plan: i64,
    run: &str,
    steps: &[NewStep],
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM disclosure_steps WHERE plan_id = $1 AND run = $2")
        .bind(plan)
        .bind(run)
        .execute(tx.conn())
        .await?;
    for step in steps {
        sqlx::query(
            "INSERT INTO disclosure_steps (plan_id, run, ordinal, name, kind, state, detail, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(plan)
        .bind(run)
        .bind(step.ordinal)
        .bind(&step.name)
        .bind(step.kind.code())
        .bind(step.state.code())
        .bind(&step.detail)
        .bind(ms(now))
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// A plan's steps of `run`, in order.
pub async fn steps(tx: &mut Tx, plan: i64, run: &str) -> Result<Vec<Step>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {STEP_COLUMNS} FROM disclosure_steps WHERE plan_id = $1 AND run = $2 ORDER BY ordinal, id"
    )))
    .bind(plan)
    .bind(run)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| step_of(tx, row)).collect()
}

/// One step.
pub async fn step(tx: &mut Tx, id: i64) -> Result<Option<Step>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {STEP_COLUMNS} FROM disclosure_steps WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(|row| step_of(tx, row)).transpose()
}

/// Claims a pending step for a runner (`pending` → `running`, one more attempt, the first
/// start time kept, the runner's job recorded). `false` when another runner has it or it is
/// not pending.
pub async fn claim(tx: &mut Tx, step: i64, runner: Option<i64>, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE disclosure_steps SET state = 'running', attempts = attempts + 1, claimed_by = $3, \
         started_at = COALESCE(started_at, $2), updated_at = $2 WHERE id = $1 AND state = 'pending'",
    )
    .bind(step)
    .bind(ms(now))
    .bind(runner)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes over a running step whose runner is gone: claimed by this runner's job in an
/// earlier attempt, by no job, or by a job whose lease expired (or that ended). `false`
/// while another runner holds it.
pub async fn take_over(tx: &mut Tx, step: i64, runner: Option<i64>, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE disclosure_steps SET claimed_by = $3, attempts = attempts + 1, updated_at = $2 \
         WHERE id = $1 AND state = 'running' AND (claimed_by IS NULL OR claimed_by = $3 OR NOT EXISTS \
         (SELECT 1 FROM jobs WHERE jobs.id = disclosure_steps.claimed_by AND jobs.state = 'running' \
          AND jobs.lease_until > $2))",
    )
    .bind(step)
    .bind(ms(now))
    .bind(runner)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks that a call which may take effect is about to be made (committed before the
/// call). `false` when the step is not running.
pub async fn mark_called(tx: &mut Tx, step: i64, now: Timestamp) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE disclosure_steps SET called_at = $2, updated_at = $2 WHERE id = $1 AND state = 'running'")
            .bind(step)
            .bind(ms(now))
            .execute(tx.conn())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the call mark back: the service said nothing happened (429, refused before any
/// effect).
pub async fn clear_called(tx: &mut Tx, step: i64, now: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE disclosure_steps SET called_at = NULL, updated_at = $2 WHERE id = $1")
        .bind(step)
        .bind(ms(now))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Settles a step from `from` with its outcome. `false` when it was not in `from`.
pub async fn finish(
    tx: &mut Tx,
    step: i64,
    from: StepState,
    to: StepState,
    external_id: Option<&str>,
    detail: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let finished = matches!(to, StepState::Done | StepState::Failed | StepState::NeedsPerson | StepState::Skipped);
    let done = sqlx::query(
        "UPDATE disclosure_steps SET state = $2, external_id = COALESCE($3, external_id), detail = $4, \
         finished_at = CASE WHEN $5 = 1 THEN $6 ELSE NULL END, updated_at = $6 WHERE id = $1 AND state = $7",
    )
    .bind(step)
    .bind(to.code())
    .bind(external_id)
    .bind(detail)
    .bind(i64::from(finished))
    .bind(ms(now))
    .bind(from.code())
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores what a step produced (sealed).
pub async fn set_output(tx: &mut Tx, step: &Step, output: &str, now: Timestamp) -> Result<(), StoreError> {
    let sealed = tx.seal(output, &step_aad(step.plan, &step.run, &step.name));
    sqlx::query("UPDATE disclosure_steps SET output_enc = $2, updated_at = $3 WHERE id = $1")
        .bind(step.id)
        .bind(sealed)
        .bind(ms(now))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Sets a step's detail (preflight results) without changing its state.
pub async fn set_detail(tx: &mut Tx, step: i64, detail: &str, now: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE disclosure_steps SET detail = $2, updated_at = $3 WHERE id = $1")
        .bind(step)
        .bind(detail)
        .bind(ms(now))
        .execute(tx.conn())
        .await?;
    Ok(())
}
