//! The disclosure runbook (issue 16, ADR 24): at the chosen instant, merge and push the fix,
//! verify the binaries, publish the advisory and the CVE record, announce on every channel
//! with the mitigations, and close out — never early, each effect exactly once.
//!
//! A **plan** ([`plan`]) belongs to a report: the instant, and its content — everything it
//! will publish (the advisory as approved, the push, the expected artifacts, one message per
//! channel, rendered from the advisory and editable by the team) — with the hash of that
//! content (`embargo_domain::disclosure::content_hash`). A second person **arms** it
//! ([`approve`]); the approval is bound to the hash, and any change after it disarms the
//! plan (a changed text, a new instant, an advisory edited after approval: the runner
//! recomputes the content before it starts and disarms the plan when it differs).
//!
//! The **runner** (`run::RunPlan`, a durable job) wakes for the pre-flight checks before
//! the instant, then at the instant starts the steps in the order of
//! `embargo_domain::disclosure::StepKind::after`, claiming each in a transaction that checks
//! "never early" against the clock, and carrying out each external effect as an intent (see
//! `run`). A **rehearsal** ([`rehearse`]) performs every step against scratch targets and
//! keeps what would go out.

mod channels;
mod content;
mod run;

use embargo_domain::disclosure::{self as rules, Approval, PlanState, PlanStep, StepState};
use embargo_domain::{Actor, ReferenceId, Timestamp};
use embargo_store::Tx;
use embargo_store::disclosure::{self as store, Plan, Step};
use serde::Serialize;

pub use self::content::{Message, PlanContent, PlannedAdvisory};
pub use self::run::{PreflightAlert, RunPlan, rehearsal_outputs};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// The run of the live steps.
pub(crate) const LIVE: &str = "live";
/// The run of the rehearsal's steps.
pub(crate) const REHEARSAL: &str = "rehearsal";

fn subject(plan: i64) -> String {
    format!("disclosure:{plan}")
}

/// One step as the team sees it.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Its stable name (`push`, `announce.slack`, ...).
    pub name: String,
    /// Its kind (`merge-and-push`, `announce`, ...).
    pub kind: String,
    /// Where it is.
    pub state: String,
    /// When it first started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
    /// What the service named the effect (a commit, a post ID, a URL).
    pub external_id: Option<String>,
    /// What happened, in words.
    pub detail: String,
    /// How many times it was claimed.
    pub attempts: i64,
    /// Seconds from the instant to its start (negative: before), once started.
    pub started_after_instant_ms: Option<i64>,
    /// How long it took, once finished.
    pub duration_ms: Option<i64>,
}

impl StepView {
    fn of(step: &Step, instant: Timestamp) -> Self {
        let fmt = |t: Option<Timestamp>| t.map(|t| t.to_string());
        StepView {
            name: step.name.clone(),
            kind: step.kind.code().to_owned(),
            state: step.state.code().to_owned(),
            started_at: fmt(step.started_at),
            finished_at: fmt(step.finished_at),
            external_id: step.external_id.clone(),
            detail: step.detail.clone(),
            attempts: step.attempts,
            started_after_instant_ms: step.started_at.map(|s| s.as_millisecond() - instant.as_millisecond()),
            duration_ms: match (step.started_at, step.finished_at) {
                (Some(s), Some(f)) => Some(f.as_millisecond() - s.as_millisecond()),
                _ => None,
            },
        }
    }
}

/// A plan as the team sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// Its ID.
    pub id: i64,
    /// The report.
    pub report: String,
    /// Where it is (`draft`, `armed`, `running`, `stopped`, `done`, `cancelled`).
    pub state: String,
    /// The instant (UTC).
    pub at: String,
    /// "Disclose now".
    pub emergency: bool,
    /// Who prepared it (last changed it).
    pub planned_by: String,
    /// Who armed it.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<String>,
    /// The hash of what it will publish now.
    pub content_hash: String,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// What keeps it from being approved (empty: nothing).
    pub problems: Vec<String>,
    /// The live steps.
    pub steps: Vec<StepView>,
    /// The latest rehearsal's steps.
    pub rehearsal: Vec<StepView>,
    /// What it will publish.
    #[serde(skip)]
    pub content: PlanContent,
}

fn view(plan: &Plan, content: PlanContent, steps: &[Step], rehearsal: &[Step]) -> PlanView {
    PlanView {
        id: plan.id,
        report: content.report.clone(),
        state: plan.state.code().to_owned(),
        at: plan.disclose_at.to_string(),
        emergency: plan.emergency,
        planned_by: plan.planned_by.clone(),
        approved_by: plan.approved_by.clone(),
        approved_at: plan.approved_at.map(|t| t.to_string()),
        content_hash: plan.content_hash.clone(),
        stop_reason: plan.stop_reason.clone(),
        problems: content.problems(),
        steps: steps.iter().map(|s| StepView::of(s, plan.disclose_at)).collect(),
        rehearsal: rehearsal.iter().map(|s| StepView::of(s, plan.disclose_at)).collect(),
        content,
    }
}

/// Finds a plan by its ID or by the reference of its report (the newest plan of the
/// report), checking `permission` on the report; "not found" for those without it.
pub(crate) async fn find_in(
    tx: &mut Tx,
    actor: &Actor,
    plan: &str,
    permission: Permission,
) -> Result<(Plan, embargo_store::reports::ReportRecord), AppError> {
    let not_found = || AppError::NotFound(format!("disclosure plan {plan}"));
    let found = match plan.trim().parse::<i64>() {
        Ok(id) => store::get(tx, id).await?,
        Err(_) => {
            let reference: ReferenceId = plan.trim().parse().map_err(|_| not_found())?;
            match embargo_store::reports::get_by_reference(tx, &reference).await? {
                Some(report) => store::for_report(tx, report.id).await?.into_iter().next(),
                None => None,
            }
        }
    };
    let found = found.ok_or_else(not_found)?;
    let report = embargo_store::reports::get(tx, found.report).await?.ok_or_else(not_found)?;
    match authz::require(tx, actor, permission.on(report.id)).await {
        Err(AppError::Forbidden(_)) => Err(not_found()),
        Err(other) => Err(other),
        Ok(()) => Ok((found, report)),
    }
}

fn parse_content(plan: &Plan) -> Result<PlanContent, AppError> {
    serde_json::from_str(&plan.content).map_err(|e| AppError::Internal(anyhow::anyhow!("plan {}: {e}", plan.id)))
}

fn to_json(content: &PlanContent) -> Result<String, AppError> {
    serde_json::to_string(content).map_err(|e| AppError::Internal(e.into()))
}

/// Makes (or remakes) the disclosure plan of a report for `at`: its content from the
/// advisory, the fix, the product and the configured channels, and its steps. A draft or
/// armed plan of the report is replaced in place (which disarms it; the team's edited texts
/// are kept); a running or stopped one is refused. `emergency` runs it as soon as it is
/// armed, whatever the instant ("disclose now": the embargo is broken).
pub async fn plan(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    at: Timestamp,
    emergency: bool,
) -> Result<PlanView, AppError> {
    let now = app.now();
    if !emergency && at <= now {
        return Err(AppError::Invalid(format!(
            "{at} is not in the future: choose a later instant, or --emergency to disclose now"
        )));
    }
    let report = {
        let mut tx = app.store.snapshot().await?;
        let report = crate::reports::readable(&mut tx, actor, reference).await?;
        authz::require(&mut tx, actor, Permission::PlanDisclosure.on(report.id)).await?;
        tx.rollback().await?;
        report
    };
    let existing = {
        let mut tx = app.store.snapshot().await?;
        let plans = store::for_report(&mut tx, report.id).await?;
        tx.rollback().await?;
        plans
            .into_iter()
            .find(|p| matches!(p.state, PlanState::Draft | PlanState::Armed | PlanState::Running | PlanState::Stopped))
    };
    {
        let mut tx = app.store.snapshot().await?;
        for earlier in store::for_report(&mut tx, report.id).await? {
            if !matches!(earlier.state, PlanState::Done | PlanState::Cancelled) {
                continue;
            }
            let steps = store::steps(&mut tx, earlier.id, LIVE).await?;
            if steps.iter().any(|s| s.kind.is_public() && s.state == embargo_domain::disclosure::StepState::Done) {
                return Err(AppError::Conflict(format!(
                    "plan {} of {reference} ({}) already published: a new plan would announce it again",
                    earlier.id, earlier.state
                )));
            }
        }
        tx.rollback().await?;
    }
    let kept = match &existing {
        Some(p) if matches!(p.state, PlanState::Running | PlanState::Stopped) => {
            return Err(AppError::Conflict(format!(
                "plan {} of {reference} is {}: it cannot be replaced (resume or cancel it: embargo disclosure status {})",
                p.id, p.state, p.id
            )));
        }
        Some(p) => parse_content(p)?.messages,
        None => Vec::new(),
    };
    let content = content::build(app, &report, at, emergency, &kept).await?;
    let json = to_json(&content)?;
    let hash = content.hash();
    let steps = content::steps(&content);
    let identity = actor.identity();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::PlanDisclosure.on(report.id)).await?;
    let id = match existing {
        Some(mut old) => {
            let to = old.state.apply(PlanStep::Change)?;
            old.disclose_at = at;
            old.emergency = emergency;
            if !store::change(
                &mut tx,
                &old,
                old.state,
                to,
                &store::Change { content: &json, content_hash: &hash, changed_by: &identity },
                now,
            )
            .await?
            {
                return Err(AppError::Conflict(format!("plan {} changed meanwhile; try again", old.id)));
            }
            audit::record(
                &mut tx,
                app,
                actor,
                "disclosure.plan.change",
                &subject(old.id),
                &format!("report={reference} at={at} emergency={emergency} hash={hash} was={}", old.state),
            )
            .await?;
            old.id
        }
        None => {
            let id = store::insert(
                &mut tx,
                &store::NewPlan {
                    report: report.id,
                    disclose_at: at,
                    emergency,
                    content: &json,
                    content_hash: &hash,
                    planned_by: &identity,
                },
                now,
            )
            .await?;
            audit::record(
                &mut tx,
                app,
                actor,
                "disclosure.plan",
                &subject(id),
                &format!("report={reference} at={at} emergency={emergency} hash={hash}"),
            )
            .await?;
            id
        }
    };
    store::replace_steps(&mut tx, id, LIVE, &steps, now).await?;
    tx.commit().await?;
    status(app, actor, &id.to_string()).await
}

/// A plan with its steps.
pub async fn status(app: &App, actor: &Actor, plan: &str) -> Result<PlanView, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (found, _) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
    let steps = store::steps(&mut tx, found.id, LIVE).await?;
    let rehearsal = store::steps(&mut tx, found.id, REHEARSAL).await?;
    tx.rollback().await?;
    let content = parse_content(&found)?;
    Ok(view(&found, content, &steps, &rehearsal))
}

/// The plans of every report the actor may plan disclosures of, newest first.
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<PlanView>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let plans = store::list(&mut tx).await?;
    let mut views = Vec::new();
    for plan in plans {
        if authz::require(&mut tx, actor, Permission::PlanDisclosure.on(plan.report)).await.is_err() {
            continue;
        }
        let steps = store::steps(&mut tx, plan.id, LIVE).await?;
        views.push(view(&plan, parse_content(&plan)?, &steps, &[]));
    }
    tx.rollback().await?;
    Ok(views)
}

/// The second person arms a plan: refused to the person who prepared it, for an incomplete
/// plan, and when `seen_hash` (the hash of what the approver was shown, when given) is not
/// the plan's content now. The content is recomputed from its sources first: an advisory
/// edited since the plan was made changes it (and then the plan must be shown again).
/// Queues the runner for the pre-flight checks (or at once in an emergency).
pub async fn approve(app: &App, actor: &Actor, plan: &str, seen_hash: Option<&str>) -> Result<PlanView, AppError> {
    let now = app.now();
    let (found, report) = {
        let mut tx = app.store.snapshot().await?;
        let found = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
        tx.rollback().await?;
        found
    };
    let stored = parse_content(&found)?;
    let fresh = content::build(app, &report, found.disclose_at, found.emergency, &stored.messages).await?;
    let hash = fresh.hash();
    if hash != found.content_hash {
        // What the plan would publish changed under it: record the new content (a change:
        // it stays a draft) and ask for a new look.
        let mut tx = app.store.begin().await?;
        authz::require(&mut tx, actor, Permission::PlanDisclosure.on(report.id)).await?;
        if store::change(
            &mut tx,
            &found,
            PlanState::Draft,
            PlanState::Draft,
            &store::Change { content: &to_json(&fresh)?, content_hash: &hash, changed_by: &found.planned_by },
            now,
        )
        .await?
        {
            audit::record(&mut tx, app, actor, "disclosure.plan.refresh", &subject(found.id), &format!("hash={hash}"))
                .await?;
            tx.commit().await?;
        }
        return Err(AppError::Conflict(format!(
            "what plan {} will publish changed since it was prepared (the advisory, the fix or the product): \
             review it again (embargo disclosure status {}) and approve the new content",
            found.id, found.id
        )));
    }
    let problems = fresh.problems();
    let seen = seen_hash.unwrap_or(&hash);
    let identity = actor.identity();
    if found.editors.contains(&identity) || found.planned_by == identity {
        return Err(rules::PlanError::SamePerson.into());
    }
    {
        // Arming publishes: the approver needs the permissions of what the plan publishes.
        let mut tx = app.store.snapshot().await?;
        authz::require(&mut tx, actor, Permission::PublishAdvisory).await?;
        if fresh.advisory.as_ref().is_some_and(|a| a.cve_id.is_some()) {
            authz::require(&mut tx, actor, Permission::PublishCve).await?;
        }
        tx.rollback().await?;
    }
    let to = found.state.apply(PlanStep::Approve(Approval {
        planner: &found.planned_by,
        approver: &identity,
        approved_hash: seen,
        current_hash: &hash,
        complete: problems.is_empty(),
    }));
    let to = match to {
        Ok(to) => to,
        Err(rules::PlanError::Incomplete) => {
            return Err(AppError::Invalid(format!("plan {} is not complete: {}", found.id, problems.join("; "))));
        }
        Err(other) => return Err(other.into()),
    };
    debug_assert_eq!(to, PlanState::Armed);
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::PlanDisclosure.on(report.id)).await?;
    if !store::approve(&mut tx, found.id, &hash, &identity, now).await? {
        return Err(AppError::Conflict(format!("plan {} changed meanwhile; review it again", found.id)));
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "disclosure.approve",
        &subject(found.id),
        &format!("hash={hash} planned_by={} at={}", found.planned_by, found.disclose_at),
    )
    .await?;
    run::wake_in(&mut tx, app, found.id, run::first_wake(app, &found)).await?;
    tx.commit().await?;
    tracing::info!(plan = found.id, "disclosure plan armed");
    status(app, actor, &found.id.to_string()).await
}

/// Replaces the text of one channel's message (the team's edit after previewing); a change
/// disarms an armed plan.
pub async fn set_message(
    app: &App,
    actor: &Actor,
    plan: &str,
    channel: &str,
    subject_line: Option<&str>,
    text: &str,
) -> Result<PlanView, AppError> {
    let text = &text.replace("\r\n", "\n");
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (found, _) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
    let to = found.state.apply(PlanStep::Change)?;
    let mut content = parse_content(&found)?;
    let message = content
        .messages
        .iter_mut()
        .find(|m| m.channel == channel)
        .ok_or_else(|| AppError::NotFound(format!("a message for channel {channel:?} in plan {}", found.id)))?;
    if text.trim().is_empty() {
        return Err(AppError::Invalid("an announcement cannot be empty".into()));
    }
    for (label, value) in [("text", text.as_str()), ("subject", subject_line.unwrap_or(""))] {
        if let Some((at, c)) = value.char_indices().find(|(_, c)| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        }) {
            return Err(AppError::Invalid(format!(
                "the {label} holds the control or direction character U+{:04X} at byte {at}: remove it",
                u32::from(c)
            )));
        }
    }
    message.text = text.to_owned();
    if let Some(s) = subject_line {
        message.subject = s.to_owned();
    }
    message.edited = true;
    let hash = content.hash();
    if !store::change(
        &mut tx,
        &found,
        found.state,
        to,
        &store::Change { content: &to_json(&content)?, content_hash: &hash, changed_by: &actor.identity() },
        now,
    )
    .await?
    {
        return Err(AppError::Conflict(format!("plan {} changed meanwhile; try again", found.id)));
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "disclosure.message.edit",
        &subject(found.id),
        &format!("channel={channel} hash={hash} was={}", found.state),
    )
    .await?;
    tx.commit().await?;
    status(app, actor, &found.id.to_string()).await
}

/// Cancels a plan that is not running.
pub async fn cancel(app: &App, actor: &Actor, plan: &str, why: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let (found, _) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
    let to = found.state.apply(PlanStep::Cancel)?;
    if !store::set_state(&mut tx, found.id, found.state, to, Some(why), app.now()).await? {
        return Err(AppError::Conflict(format!("plan {} changed meanwhile; try again", found.id)));
    }
    audit::record(&mut tx, app, actor, "disclosure.cancel", &subject(found.id), &format!("was={}", found.state))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What a person decides about a step that waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDecision {
    /// The effect happened (the person checked the channel): the step is done.
    MarkDone,
    /// Try it again, deliberately (the person checked that it did not happen).
    Retry,
}

/// A person decides about a step that failed or waits for one, then lets a stopped plan go
/// on (its runner is woken).
pub async fn decide_step(
    app: &App,
    actor: &Actor,
    plan: &str,
    step: &str,
    decision: StepDecision,
    note: &str,
) -> Result<PlanView, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (found, _) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
    if !matches!(found.state, PlanState::Running | PlanState::Stopped) {
        return Err(AppError::Conflict(format!(
            "plan {} is {}: a person decides about steps only of a running or stopped plan",
            found.id, found.state
        )));
    }
    let steps = store::steps(&mut tx, found.id, LIVE).await?;
    let target = steps
        .iter()
        .find(|s| s.name == step)
        .ok_or_else(|| AppError::NotFound(format!("step {step:?} of plan {}", found.id)))?;
    let to = match decision {
        StepDecision::MarkDone => StepState::Done,
        StepDecision::Retry => StepState::Pending,
    };
    if !target.state.person_may_move_to(to) {
        return Err(AppError::Conflict(format!(
            "step {step} is {}: a person decides only about a step that failed or waits for one",
            target.state
        )));
    }
    let detail = match decision {
        StepDecision::MarkDone => format!("marked done by {actor}: {}", note.trim()),
        StepDecision::Retry => format!("retried by {actor}: {}", note.trim()),
    };
    if !store::finish(&mut tx, target.id, target.state, to, None, &detail, now).await? {
        return Err(AppError::Conflict(format!("step {step} changed meanwhile; look again")));
    }
    if decision == StepDecision::Retry {
        store::clear_called(&mut tx, target.id, now).await?;
        // The step's earlier intent is settled: the person says it did not happen.
        let destination = run::destination(found.id, &target.name);
        if let Some(pending) = embargo_store::intents::pending_for(&mut tx, &destination).await? {
            embargo_store::intents::settle(&mut tx, pending.id, "failed", "a person said it did not happen", now)
                .await?;
        }
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "disclosure.step.decide",
        &subject(found.id),
        &format!("step={step} from={} to={to}", target.state),
    )
    .await?;
    if found.state == PlanState::Stopped {
        let resumed = found.state.apply(PlanStep::Resume)?;
        store::set_state(&mut tx, found.id, PlanState::Stopped, resumed, None, now).await?;
    }
    run::wake_in(&mut tx, app, found.id, now).await?;
    tx.commit().await?;
    status(app, actor, &found.id.to_string()).await
}

/// Lets a stopped plan go on (after a missed instant, a person decides that it runs now).
pub async fn resume(app: &App, actor: &Actor, plan: &str) -> Result<PlanView, AppError> {
    {
        // Before anything public happened, what it publishes must still be what was approved.
        let mut tx = app.store.snapshot().await?;
        let (found, report) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
        let steps = store::steps(&mut tx, found.id, LIVE).await?;
        tx.rollback().await?;
        if !steps.iter().any(|s| s.kind.is_public() && s.started_at.is_some()) {
            let stored = parse_content(&found)?;
            let fresh = content::build(app, &report, found.disclose_at, found.emergency, &stored.messages).await?;
            if Some(fresh.hash().as_str()) != found.approved_hash.as_deref() {
                return Err(AppError::Conflict(format!(
                    "what plan {} would publish changed since its approval (the advisory, the fix, a channel or \
                     the product): plan it again (embargo disclosure plan) and have it approved",
                    found.id
                )));
            }
        }
    }
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (found, _) = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
    let to = found.state.apply(PlanStep::Resume)?;
    if !store::set_state(&mut tx, found.id, found.state, to, None, now).await? {
        return Err(AppError::Conflict(format!("plan {} changed meanwhile; try again", found.id)));
    }
    audit::record(&mut tx, app, actor, "disclosure.resume", &subject(found.id), "").await?;
    run::wake_in(&mut tx, app, found.id, now).await?;
    tx.commit().await?;
    status(app, actor, &found.id.to_string()).await
}

/// The dry run: performs every step against scratch targets (a throwaway copy of the public
/// repository and of the site's repository, the advisory's outputs computed and validated
/// but not published, the CVE record validated, every message rendered as it would go out,
/// the channels' credentials checked with a harmless call) and keeps what would go out.
pub async fn rehearse(app: &App, actor: &Actor, plan: &str) -> Result<PlanView, AppError> {
    let (found, report) = {
        let mut tx = app.store.snapshot().await?;
        let found = find_in(&mut tx, actor, plan, Permission::PlanDisclosure).await?;
        tx.rollback().await?;
        found
    };
    run::rehearse(app, actor, &found, &report).await?;
    status(app, actor, &found.id.to_string()).await
}

/// Runs due plan work now, in this process (what the workers do): for tests and the
/// command line. Returns when the runner would wake next, if it would.
pub async fn advance(app: &App, plan: i64) -> Result<Option<Timestamp>, AppError> {
    Ok(match run::advance(app, plan, None).await? {
        run::Next::At(at) => Some(at),
        run::Next::Idle => None,
    })
}

/// Wakes every armed or running plan's runner (on start: a plan whose wake-up job was lost
/// or whose instant passed while Embargo was down is looked at again).
pub async fn wake_all(app: &App) -> Result<usize, AppError> {
    let mut tx = app.store.begin().await?;
    let mut ids = store::ids_in(&mut tx, PlanState::Armed).await?;
    ids.extend(store::ids_in(&mut tx, PlanState::Running).await?);
    let now = app.now();
    for id in &ids {
        run::wake_in(&mut tx, app, *id, now).await?;
    }
    tx.commit().await?;
    Ok(ids.len())
}
