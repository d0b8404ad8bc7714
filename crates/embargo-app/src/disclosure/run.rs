//! The runner of a plan: a durable job that wakes for the pre-flight checks, starts the
//! plan at the instant, and carries out its steps.
//!
//! **Never early.** A step with a public effect is claimed in a transaction that reads the
//! clock and applies `embargo_domain::disclosure::may_start`: before the instant it waits
//! (the runner sleeps until then); after the instant plus the grace, with nothing public
//! done yet, the plan stops for a person.
//!
//! **Exactly once.** Every external effect is an intent (`external_intents`: destination,
//! content hash, idempotency key) recorded before the call; the step is marked `called_at`
//! in a committed transaction just before the call; the result is recorded with the
//! step's completion and the intent's settlement in one transaction. A step found
//! `running` by a later runner (its runner died) or retried after a lost answer is
//! reconciled with the service first; where the service cannot be asked (a Slack webhook,
//! a mail relay) and a call may have been made, the step stops for a person instead.
//!
//! **One runner.** Steps are claimed with conditional updates, recording the runner's job;
//! a step `running` under another job is taken over only when that job's lease expired.

use std::collections::HashMap;
use std::time::Duration;

use embargo_domain::disclosure::{PlanState, PlanStep, StartRule, StepKind, StepState, may_start};
use embargo_domain::{Actor, Timestamp};
use embargo_store::Tx;
use embargo_store::disclosure::{self as store, Plan, Step};
use embargo_store::intents::{self as store_intents, Intent, NewIntent};
use embargo_store::reports::ReportRecord;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::channels::{self, EffectError, Posted};
use super::content::{self, PlanContent};
use super::{LIVE, REHEARSAL, parse_content, subject, to_json};
use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError, audit};

/// The system actor of the runbook.
pub(crate) const RUNBOOK: Actor = Actor::System("disclosure");

/// How long before the instant the last round of pre-flight checks (with the channels) runs.
const FINAL_ROUND: SignedDuration = SignedDuration::from_secs(10);

/// A runner waits in process for a wake-up this close, rather than a poll interval later.
const WAIT_IN_PROCESS: SignedDuration = SignedDuration::from_secs(15);

/// Temporary failures of one step are retried this many times, then it fails for a person.
const MAX_ATTEMPTS: i64 = 12;

/// The `disclosure.run` job: runs plan `plan` as far as it can now.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunPlan {
    plan: i64,
    due_ms: i64,
}

impl Job for RunPlan {
    const KIND: &'static str = "disclosure.run";

    fn key(&self) -> Option<String> {
        Some(format!("disclosure.run:{}:{}", self.plan, self.due_ms))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut next = advance(app, self.plan, Some(&claim)).await?;
        // The instant is close: wait for it here rather than a poll interval later (the
        // first public effect starts as soon after the instant as the clock allows).
        for _ in 0..3 {
            let Next::At(at) = next else { break };
            let wait = at.duration_since(app.now());
            let lease = SignedDuration::from_secs(i64::from(app.config.jobs.lease_seconds) / 2);
            if wait > WAIT_IN_PROCESS.min(lease) {
                break;
            }
            tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
            next = advance(app, self.plan, Some(&claim)).await?;
        }
        let mut tx = app.store.begin().await?;
        if let Next::At(at) = next {
            wake_in(&mut tx, app, self.plan, at).await?;
        }
        claim.complete(tx, app.now()).await
    }

    /// On start, every armed or running plan is looked at again (a wake-up lost with a
    /// crash, an instant that passed while Embargo was down).
    async fn on_worker_start(app: &App) -> Result<(), AppError> {
        super::wake_all(app).await.map(|_| ())
    }
}

/// Queues the plan's runner at `at` (once per plan and instant).
pub(crate) async fn wake_in(tx: &mut Tx, app: &App, plan: i64, at: Timestamp) -> Result<(), AppError> {
    jobs::enqueue_at(tx, app, &RunPlan { plan, due_ms: at.as_millisecond() }, at).await?;
    Ok(())
}

/// When an armed plan's runner first wakes: the start of the pre-flight checks.
pub(crate) fn first_wake(app: &App, plan: &Plan) -> Timestamp {
    let now = app.now();
    if plan.emergency {
        return now;
    }
    let before = SignedDuration::from_mins(i64::from(app.config.disclosure.preflight_minutes));
    plan.disclose_at.checked_sub(before).unwrap_or(plan.disclose_at).max(now)
}

/// The intent destination of a plan's step.
pub(crate) fn destination(plan: i64, step: &str) -> String {
    format!("disclosure:{plan}:{step}")
}

fn grace(app: &App) -> SignedDuration {
    SignedDuration::from_mins(i64::from(app.config.disclosure.grace_minutes))
}

/// What the runner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing until something changes (done, stopped, disarmed).
    Idle,
    /// Wake at this instant.
    At(Timestamp),
}

async fn load(app: &App, plan: i64) -> Result<(Plan, Vec<Step>), AppError> {
    let mut tx = app.store.snapshot().await?;
    let found =
        store::get(&mut tx, plan).await?.ok_or_else(|| AppError::NotFound(format!("disclosure plan {plan}")))?;
    let steps = store::steps(&mut tx, plan, LIVE).await?;
    tx.rollback().await?;
    Ok((found, steps))
}

async fn report_of(app: &App, plan: &Plan) -> Result<ReportRecord, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = embargo_store::reports::get(&mut tx, plan.report).await?;
    tx.rollback().await?;
    report.ok_or_else(|| AppError::NotFound(format!("report of plan {}", plan.id)))
}

/// Stops a plan for a person, with the reason (no report content).
async fn stop(app: &App, plan: &Plan, from: PlanState, reason: &str) -> Result<(), AppError> {
    let to = from.apply(PlanStep::Stop).unwrap_or(PlanState::Stopped);
    let mut tx = app.store.begin().await?;
    if store::set_state(&mut tx, plan.id, from, to, Some(reason), app.now()).await? {
        audit::record(&mut tx, app, &RUNBOOK, "disclosure.stop", &subject(plan.id), reason).await?;
        tx.commit().await?;
        tracing::warn!(plan = plan.id, reason, "disclosure plan stopped for a person");
    }
    Ok(())
}

/// Runs plan `id` as far as it can now; `claim` is the runner's job (none from the command
/// line). Returns when it must wait.
pub(crate) async fn advance(app: &App, id: i64, claim: Option<&Claim>) -> Result<Next, AppError> {
    let runner = claim.map(Claim::id);
    let mut deferred: HashMap<i64, Timestamp> = HashMap::new();
    loop {
        let now = app.now();
        let (plan, steps) = load(app, id).await?;
        match plan.state {
            PlanState::Armed => match start(app, &plan, &steps).await? {
                Some(next) => return Ok(next),
                None => continue,
            },
            PlanState::Running => {}
            _ => return Ok(Next::Idle),
        }
        let content = parse_content(&plan)?;
        let kinds: Vec<(StepKind, StepState)> = steps.iter().map(|s| (s.kind, s.state)).collect();
        if steps.iter().all(|s| s.state.lets_others_go()) {
            finish_plan(app, &plan).await?;
            return Ok(Next::Idle);
        }
        let mut claimed = Vec::new();
        // A step this runner found ready (or running) but could not claim: another runner
        // claimed it since the steps were read, so what was read is stale.
        let mut lost_race = false;
        let limit = usize::try_from(app.config.disclosure.concurrent_steps.max(1)).unwrap_or(1);
        for step in &steps {
            if deferred.get(&step.id).is_some_and(|at| *at > now) {
                continue;
            }
            if claimed.len() >= limit {
                break;
            }
            let ready = embargo_domain::disclosure::ready(step.kind, &kinds);
            let mut tx = app.store.begin().await?;
            let now = app.now();
            let got = match step.state {
                StepState::Pending if ready => {
                    // The plan started within the grace (or a person resumed it): from here on
                    // only "never early" applies, so the grace is not checked again.
                    match may_start(step.kind, plan.disclose_at, now, plan.emergency, false, SignedDuration::MAX) {
                        StartRule::Go => store::claim(&mut tx, step.id, runner, now).await?,
                        StartRule::Wait(at) => {
                            tx.rollback().await?;
                            return Ok(Next::At(at));
                        }
                        StartRule::AskPerson { late } => {
                            tx.rollback().await?;
                            let reason = format!(
                                "the instant passed {} minutes ago while nothing ran (Embargo was down?): \
                                 a person decides (embargo disclosure resume {})",
                                late.as_secs() / 60,
                                plan.id
                            );
                            stop(app, &plan, PlanState::Running, &reason).await?;
                            return Ok(Next::Idle);
                        }
                    }
                }
                StepState::Running => store::take_over(&mut tx, step.id, runner, now).await?,
                _ => false,
            };
            if got {
                audit::record(
                    &mut tx,
                    app,
                    &RUNBOOK,
                    "disclosure.step.start",
                    &subject(plan.id),
                    &format!("step={} attempt={}", step.name, step.attempts + 1),
                )
                .await?;
                tx.commit().await?;
                claimed.push(step.clone());
            } else {
                lost_race |= matches!(step.state, StepState::Pending | StepState::Running) && ready;
                tx.rollback().await?;
            }
        }
        if claimed.is_empty() {
            if lost_race || steps.iter().any(|s| s.state == StepState::Running) {
                // Another runner has a step: look again shortly.
                return Ok(Next::At(now.checked_add(SignedDuration::from_secs(5)).unwrap_or(now)));
            }
            if let Some(at) = deferred.values().filter(|at| **at > now).min() {
                return Ok(Next::At(*at));
            }
            let waiting: Vec<String> = steps
                .iter()
                .filter(|s| matches!(s.state, StepState::Failed | StepState::NeedsPerson))
                .map(|s| format!("{} {}: {}", s.name, s.state, s.detail))
                .collect();
            let reason = if waiting.is_empty() {
                "no step can start".to_owned()
            } else {
                format!("waiting for a person: {}", waiting.join("; "))
            };
            stop(app, &plan, PlanState::Running, &reason).await?;
            return Ok(Next::Idle);
        }
        let runs = claimed.iter().map(|step| execute(app, &plan, &content, step));
        let outcomes = futures_util::future::join_all(runs).await;
        for (step, outcome) in claimed.iter().zip(outcomes) {
            if let Some(at) = outcome? {
                deferred.insert(step.id, at);
            }
        }
    }
}

/// An armed plan: the pre-flight checks until the instant, then the start. `None` when it
/// started (go on running), `Some` when the runner waits or the plan stopped or disarmed.
async fn start(app: &App, plan: &Plan, steps: &[Step]) -> Result<Option<Next>, AppError> {
    let now = app.now();
    let before = SignedDuration::from_mins(i64::from(app.config.disclosure.preflight_minutes));
    let first = plan.disclose_at.checked_sub(before).unwrap_or(plan.disclose_at);
    if !plan.emergency && now < first {
        return Ok(Some(Next::At(first)));
    }
    let report = report_of(app, plan).await?;
    let stored = parse_content(plan)?;
    let fresh = content::build(app, &report, plan.disclose_at, plan.emergency, &stored.messages).await?;
    let hash = fresh.hash();
    if Some(hash.as_str()) != plan.approved_hash.as_deref() {
        let mut tx = app.store.begin().await?;
        if store::change(
            &mut tx,
            plan,
            PlanState::Armed,
            PlanState::Draft,
            &store::Change { content: &to_json(&fresh)?, content_hash: &hash, changed_by: &plan.planned_by },
            now,
        )
        .await?
        {
            store::replace_steps(&mut tx, plan.id, LIVE, &content::steps(&fresh), now).await?;
            audit::record(
                &mut tx,
                app,
                &RUNBOOK,
                "disclosure.disarm",
                &subject(plan.id),
                &format!("approved={} now={hash}", plan.approved_hash.as_deref().unwrap_or("")),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(plan = plan.id, "what the plan would publish changed since its approval: disarmed");
        }
        return Ok(Some(Next::Idle));
    }
    let at_instant = plan.emergency || now >= plan.disclose_at;
    let problems = preflight(app, plan, &fresh, !at_instant).await;
    let preflight_step = steps.iter().find(|s| s.kind == StepKind::Preflight);
    let detail = if problems.is_empty() {
        format!("all checks passed at {now}")
    } else {
        format!("at {now}: {}", problems.join("; "))
    };
    if let Some(step) = preflight_step {
        let mut tx = app.store.begin().await?;
        store::set_detail(&mut tx, step.id, &detail, now).await?;
        if !problems.is_empty() {
            // The team is told while there is time, once per distinct set of problems.
            let digest = crate::intents::content_hash(problems.join("\n").as_bytes());
            jobs::enqueue(&mut tx, app, &PreflightAlert { plan: plan.id, digest }).await?;
        }
        tx.commit().await?;
    }
    if !at_instant {
        // The next round, the last one a few seconds before the instant; then the instant.
        let every = SignedDuration::from_secs(i64::from(app.config.disclosure.preflight_every_seconds.max(1)));
        let last_round = plan.disclose_at.checked_sub(FINAL_ROUND).unwrap_or(plan.disclose_at);
        let next = if now >= last_round {
            plan.disclose_at
        } else {
            now.checked_add(every).unwrap_or(plan.disclose_at).min(last_round)
        };
        return Ok(Some(Next::At(next)));
    }
    let blocking: Vec<&String> = problems.iter().filter(|p| !p.starts_with(channels::WARNING)).collect();
    if !blocking.is_empty() {
        let list: Vec<&str> = blocking.iter().map(|p| p.as_str()).collect();
        stop(app, plan, PlanState::Armed, &format!("pre-flight: {}", list.join("; "))).await?;
        return Ok(Some(Next::Idle));
    }
    // The instant: start, checked against the clock in the transaction that starts it.
    let mut tx = app.store.begin().await?;
    let now = app.now();
    match may_start(StepKind::MergeAndPush, plan.disclose_at, now, plan.emergency, false, grace(app)) {
        StartRule::Wait(at) => {
            tx.rollback().await?;
            Ok(Some(Next::At(at)))
        }
        StartRule::AskPerson { late } => {
            tx.rollback().await?;
            let reason = format!(
                "the instant passed {} minutes ago while Embargo was down (grace: {} minutes): a person decides \
                 (embargo disclosure resume {})",
                late.as_secs() / 60,
                app.config.disclosure.grace_minutes,
                plan.id
            );
            stop(app, plan, PlanState::Armed, &reason).await?;
            Ok(Some(Next::Idle))
        }
        StartRule::Go => {
            let to = plan.state.apply(PlanStep::Start)?;
            if !store::set_state(&mut tx, plan.id, PlanState::Armed, to, None, now).await? {
                tx.rollback().await?;
                return Ok(None);
            }
            if let Some(step) = preflight_step
                && store::claim(&mut tx, step.id, None, now).await?
            {
                store::finish(&mut tx, step.id, StepState::Running, StepState::Done, None, &detail, now).await?;
            }
            audit::record(
                &mut tx,
                app,
                &RUNBOOK,
                "disclosure.start",
                &subject(plan.id),
                &format!("at={} now={now} emergency={}", plan.disclose_at, plan.emergency),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(plan = plan.id, "disclosure plan started");
            Ok(None)
        }
    }
}

/// The pre-flight checks: problems in words (empty: all good).
/// The pre-flight checks. `with_channels`: also ask every channel whether it accepts the
/// credentials (the rounds before the instant; at the instant only what the plan's own
/// content and the repositories say is checked again, so that the start is not held up by
/// the services' answers).
async fn preflight(app: &App, plan: &Plan, content: &PlanContent, with_channels: bool) -> Vec<String> {
    let mut problems = content.problems();
    problems.extend(channels::preflight(app, plan, content, with_channels).await);
    problems
}

async fn finish_plan(app: &App, plan: &Plan) -> Result<(), AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let to = PlanState::Running.apply(PlanStep::Finish)?;
    if store::set_state(&mut tx, plan.id, PlanState::Running, to, None, now).await? {
        audit::record(&mut tx, app, &RUNBOOK, "disclosure.done", &subject(plan.id), "").await?;
        tx.commit().await?;
        tracing::info!(plan = plan.id, "disclosure plan done");
    }
    Ok(())
}

/// How one step attempt ended, recorded.
enum Outcome {
    /// Done (or found done): the external ID and what happened.
    Done(Option<String>, String),
    /// Nothing happened; try again (not before the instant given, if any).
    Retry(Option<Duration>, String),
    /// A person must look (a lost answer that cannot be checked).
    NeedsPerson(String),
    /// Refused for good.
    Failed(String),
}

/// The fault-injection hook of the crash tests: when `EMBARGO_TEST_CRASH_AT` names this
/// point (`<step>.before`, `<step>.during`: the call marked and about to be made,
/// `<step>.after`: the effect made and not yet recorded), the process SIGKILLs itself, as a
/// power cut would stop it. Never set outside tests.
pub(crate) fn crash_point(step: &str, phase: &str) {
    let Ok(wanted) = std::env::var("EMBARGO_TEST_CRASH_AT") else { return };
    if wanted.strip_prefix(step).and_then(|rest| rest.strip_prefix('.')) == Some(phase) {
        tracing::warn!(step, phase, "EMBARGO_TEST_CRASH_AT: killing this process");
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        std::process::abort();
    }
}

/// Carries out one claimed step and records its outcome. Returns when a retried step may
/// run again.
async fn execute(app: &App, plan: &Plan, content: &PlanContent, step: &Step) -> Result<Option<Timestamp>, AppError> {
    crash_point(&step.name, "before");
    let internal = matches!(step.name.as_str(), "preflight" | "advisory" | "cve" | "closeout");
    if internal {
        crash_point(&step.name, "during");
    }
    let outcome = match step.name.as_str() {
        // Started without its checks (a plan resumed after a stop at the instant): run them.
        "preflight" => {
            let problems = preflight(app, plan, content, false).await;
            let blocking: Vec<&String> = problems.iter().filter(|p| !p.starts_with(channels::WARNING)).collect();
            if blocking.is_empty() {
                Outcome::Done(None, "all checks passed".into())
            } else {
                Outcome::Failed(format!(
                    "pre-flight: {}",
                    blocking.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("; ")
                ))
            }
        }
        "advisory" => publish_advisory(app, content).await,
        "cve" => publish_cve(app, content, step).await,
        "closeout" => close_out(app, plan, content).await,
        name => match channels::effect(app, plan, content, name).await {
            Ok(effect) => external(app, plan, step, effect).await?,
            Err(e) => Outcome::Failed(e),
        },
    };
    if internal {
        crash_point(&step.name, "after");
    }
    record(app, plan, step, outcome).await
}

async fn record(app: &App, plan: &Plan, step: &Step, outcome: Outcome) -> Result<Option<Timestamp>, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (to, external_id, detail, again) = match outcome {
        Outcome::Done(id, detail) => (StepState::Done, id, detail, None),
        Outcome::NeedsPerson(detail) => (StepState::NeedsPerson, None, detail, None),
        Outcome::Failed(detail) => (StepState::Failed, None, detail, None),
        Outcome::Retry(_, detail) if step.attempts + 1 >= MAX_ATTEMPTS => {
            (StepState::Failed, None, format!("gave up after {} attempts: {detail}", step.attempts + 1), None)
        }
        Outcome::Retry(after, detail) => {
            let wait = after
                .map(|d| SignedDuration::try_from(d).unwrap_or(SignedDuration::from_secs(60)))
                .unwrap_or_else(|| jobs::backoff(step.attempts + 1))
                .min(SignedDuration::from_mins(10));
            (StepState::Pending, None, detail, Some(now.checked_add(wait).unwrap_or(now)))
        }
    };
    if store::finish(&mut tx, step.id, StepState::Running, to, external_id.as_deref(), &detail, now).await? {
        audit::record(
            &mut tx,
            app,
            &RUNBOOK,
            "disclosure.step.end",
            &subject(plan.id),
            &format!("step={} state={to} external_id={}", step.name, external_id.as_deref().unwrap_or("")),
        )
        .await?;
        tx.commit().await?;
    }
    if to != StepState::Done && to != StepState::Pending {
        tracing::warn!(plan = plan.id, step = %step.name, state = %to, "disclosure step needs attention");
    }
    Ok(again)
}

/// An external effect of a step: what and where, how to ask the service whether it
/// happened, and how to make it.
pub(crate) struct Effect {
    /// The operation (`disclosure.push`, `disclosure.announce.slack`, ...).
    pub operation: String,
    /// What is sent (hashed into the intent).
    pub content: Vec<u8>,
    /// Whether the service can be asked whether the effect happened.
    pub can_reconcile: bool,
    /// The service's name, for people.
    pub service: String,
    /// Asks the service whether the effect happened.
    pub reconcile: channels::Reconcile,
    /// Makes the call with the idempotency key.
    pub call: channels::Call,
}

async fn intent_for(app: &App, plan: &Plan, step: &Step, effect: &Effect) -> Result<(Intent, bool), AppError> {
    let destination = destination(plan.id, &step.name);
    let mut tx = app.store.begin().await?;
    if let Some(pending) = store_intents::pending_for(&mut tx, &destination).await? {
        tx.rollback().await?;
        return Ok((pending, true));
    }
    let earlier = store_intents::for_destination(&mut tx, &destination).await?.len();
    let key = format!("{}:{destination}:{}", effect.operation, earlier + 1);
    let hash = crate::intents::content_hash(&effect.content);
    let id = store_intents::insert(
        &mut tx,
        &NewIntent {
            idempotency_key: &key,
            operation: &effect.operation,
            destination: &destination,
            content_hash: &hash,
            requested_by: &RUNBOOK.to_string(),
            at: app.now(),
        },
    )
    .await?;
    let intent = store_intents::get(&mut tx, id).await?.ok_or_else(|| AppError::NotFound(format!("intent {id}")))?;
    tx.commit().await?;
    Ok((intent, false))
}

async fn settle(app: &App, intent: &Intent, state: &str, result: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    store_intents::settle(&mut tx, intent.id, state, result, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

fn posted(p: &Posted) -> String {
    match &p.url {
        Some(url) if !url.is_empty() => url.clone(),
        _ => p.id.clone(),
    }
}

/// Carries out one external effect: intent first, reconcile before any call that may
/// repeat one, the call marked before it is made, the result after.
async fn external(app: &App, plan: &Plan, step: &Step, effect: Effect) -> Result<Outcome, AppError> {
    let (intent, earlier) = intent_for(app, plan, step, &effect).await?;
    let maybe_happened = earlier || step.called_at.is_some();
    if effect.can_reconcile {
        match (effect.reconcile)(intent.idempotency_key.clone()).await {
            Ok(Some(found)) => {
                settle(app, &intent, "done", &format!("found: {}", posted(&found))).await?;
                let detail = format!("found at {} (it had happened): {}", effect.service, posted(&found));
                return Ok(Outcome::Done(Some(posted(&found)), detail));
            }
            Ok(None) => {}
            Err(e) => {
                return Ok(Outcome::Retry(e.retry_after(), format!("{} could not be asked: {e}", effect.service)));
            }
        }
    } else if maybe_happened && step.called_at.is_some() {
        let when = step.called_at.map(|t| t.to_string()).unwrap_or_default();
        return Ok(Outcome::NeedsPerson(format!(
            "the answer of the call to {} at {when} was lost and {} cannot be asked whether it happened: check it, \
             then mark the step done or retry it (embargo disclosure step {} {} --done|--retry)",
            effect.service, effect.service, plan.id, step.name
        )));
    }
    {
        let mut tx = app.store.begin().await?;
        if !store::mark_called(&mut tx, step.id, app.now()).await? {
            tx.rollback().await?;
            return Ok(Outcome::Retry(None, "the step was taken over".into()));
        }
        tx.commit().await?;
    }
    crash_point(&step.name, "during");
    let called = (effect.call)(intent.idempotency_key.clone()).await;
    crash_point(&step.name, "after");
    match called {
        Ok(done) => {
            settle(app, &intent, "done", &posted(&done)).await?;
            Ok(Outcome::Done(Some(posted(&done)), format!("done at {}: {}", effect.service, posted(&done))))
        }
        Err(EffectError::Lost(why)) if effect.can_reconcile => {
            // Reconciled first on the next attempt (the intent stays pending, the call mark stays).
            Ok(Outcome::Retry(Some(Duration::from_secs(1)), format!("the answer was lost ({why}); reconciling next")))
        }
        Err(EffectError::Lost(why)) => Ok(Outcome::NeedsPerson(format!(
            "the answer of {} was lost ({why}) and it cannot be asked whether the effect happened: check it, then \
             mark the step done or retry it (embargo disclosure step {} {} --done|--retry)",
            effect.service, plan.id, step.name
        ))),
        Err(e @ (EffectError::RateLimited(_) | EffectError::Temporary(_))) if effect.can_reconcile => {
            // Nothing happened as far as can be known; should it have happened anyway, the
            // next attempt finds it: same intent (same idempotency key), reconciled first.
            Ok(Outcome::Retry(e.retry_after(), format!("{}: {e}", effect.service)))
        }
        Err(e @ (EffectError::RateLimited(_) | EffectError::Temporary(_))) => {
            // Nothing happened (the service said so, or no connection was made): the mark
            // and the intent are taken back.
            let mut tx = app.store.begin().await?;
            store::clear_called(&mut tx, step.id, app.now()).await?;
            store_intents::settle(&mut tx, intent.id, "failed", &format!("nothing happened: {e}"), app.now()).await?;
            tx.commit().await?;
            Ok(Outcome::Retry(e.retry_after(), format!("{}: {e}", effect.service)))
        }
        Err(EffectError::Refused(why)) => {
            let mut tx = app.store.begin().await?;
            store::clear_called(&mut tx, step.id, app.now()).await?;
            store_intents::settle(&mut tx, intent.id, "failed", &why, app.now()).await?;
            tx.commit().await?;
            Ok(Outcome::Failed(format!("{} refused: {why}", effect.service)))
        }
    }
}

fn advisory_id(content: &PlanContent) -> Option<String> {
    content.advisory.as_ref().map(|a| a.id.clone())
}

/// Publishes the advisory (a database effect: it happened exactly when the advisory is
/// published, which is what a retry checks first).
async fn publish_advisory(app: &App, content: &PlanContent) -> Outcome {
    let Some(id) = advisory_id(content) else { return Outcome::Failed("the plan has no advisory".into()) };
    match crate::advisories::get(app, &RUNBOOK, &id).await {
        Ok(a) if a.state == embargo_domain::AdvisoryState::Published => {
            return Outcome::Done(a.public_id.clone(), format!("published as {}", a.public_id.unwrap_or_default()));
        }
        Ok(_) => {}
        Err(e) => return Outcome::Retry(None, e.to_string()),
    }
    // Exactly what was approved: an advisory edited since is not published by the plan.
    let approved = content.advisory.as_ref().map(|a| a.record.as_str()).unwrap_or_default();
    match current_record(app, &id).await {
        Ok(now) if now == approved => {}
        Ok(_) => {
            return Outcome::Failed(format!(
                "advisory {id} changed since the plan was approved: plan again and have it approved"
            ));
        }
        Err(e) => return Outcome::Retry(None, e.to_string()),
    }
    match crate::advisories::publish(app, &RUNBOOK, &id, None).await {
        Ok(revision) => match crate::advisories::get(app, &RUNBOOK, &id).await {
            Ok(a) => Outcome::Done(
                a.public_id.clone(),
                format!("published as {} (revision {revision})", a.public_id.unwrap_or_default()),
            ),
            Err(e) => Outcome::Retry(None, e.to_string()),
        },
        Err(AppError::Invalid(why) | AppError::Conflict(why)) => Outcome::Failed(why),
        Err(e) => Outcome::Retry(None, e.to_string()),
    }
}

/// The stored record (JSON) of advisory `id`.
async fn current_record(app: &App, id: &str) -> Result<String, AppError> {
    let mut tx = app.store.snapshot().await?;
    let row = embargo_store::advisories::get(&mut tx, id).await?;
    tx.rollback().await?;
    row.map(|r| r.record).ok_or_else(|| AppError::NotFound(format!("advisory {id}")))
}

/// Publishes the CVE record through the CVE Services intent (reconciled by that module).
/// A publication this step already completed (its intent settled done since the step
/// started: a runner killed before recording it) is found, not made again.
async fn publish_cve(app: &App, content: &PlanContent, step: &Step) -> Outcome {
    let Some(id) = advisory_id(content) else { return Outcome::Failed("the plan has no advisory".into()) };
    if let (Some(cve), Some(started)) = (content.advisory.as_ref().and_then(|a| a.cve_id.clone()), step.started_at) {
        let found = async {
            let mut tx = app.store.snapshot().await?;
            let intents = store_intents::for_destination(&mut tx, &format!("cve-services:{cve}")).await?;
            tx.rollback().await?;
            Ok::<_, AppError>(intents.into_iter().find(|i| i.state == "done" && i.created_at >= started))
        };
        match found.await {
            Ok(Some(_)) => {
                return Outcome::Done(Some(cve.clone()), format!("{cve} was published at CVE Services (found)"));
            }
            Ok(None) => {}
            Err(e) => return Outcome::Retry(None, e.to_string()),
        }
    }
    match crate::cve::publish(app, &RUNBOOK, &id).await {
        Ok(crate::cve::Done::Sent(cve)) => Outcome::Done(Some(cve.clone()), format!("{cve} published at CVE Services")),
        Ok(crate::cve::Done::DryRun(planned)) => {
            Outcome::Done(None, format!("dry run (cve_services.dry_run): nothing was sent; {}", one_line(&planned)))
        }
        Err(AppError::Unavailable(why)) => Outcome::Retry(None, why),
        Err(AppError::Invalid(why) | AppError::Conflict(why) | AppError::NotFound(why)) => Outcome::Failed(why),
        Err(e) => Outcome::Retry(None, e.to_string()),
    }
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

/// Closes out: partners told the embargo is lifted, the report moved to disclosed (the
/// reporter told, with the advisory), fix developers' access taken, the private
/// repository archived, a retrospective scheduled. Each part checks whether it was done.
async fn close_out(app: &App, plan: &Plan, content: &PlanContent) -> Outcome {
    match channels::close_out(app, plan, content).await {
        Ok(detail) => Outcome::Done(None, detail),
        Err(AppError::Unavailable(why)) => Outcome::Retry(None, why),
        Err(AppError::Invalid(why) | AppError::Conflict(why)) => Outcome::Failed(why),
        Err(e) => Outcome::Retry(None, e.to_string()),
    }
}

/// The dry run (see `super::rehearse`): every step against scratch targets, what would go
/// out kept as each rehearsal step's output.
pub(crate) async fn rehearse(app: &App, actor: &Actor, plan: &Plan, report: &ReportRecord) -> Result<(), AppError> {
    let now = app.now();
    let stored = parse_content(plan)?;
    let fresh = content::build(app, report, plan.disclose_at, plan.emergency, &stored.messages).await?;
    let steps = content::steps(&fresh);
    {
        let mut tx = app.store.begin().await?;
        crate::authz::require(&mut tx, actor, crate::authz::Permission::PlanDisclosure.on(report.id)).await?;
        store::replace_steps(&mut tx, plan.id, REHEARSAL, &steps, now).await?;
        audit::record(&mut tx, app, actor, "disclosure.rehearse", &subject(plan.id), &format!("hash={}", fresh.hash()))
            .await?;
        tx.commit().await?;
    }
    let mut tx = app.store.snapshot().await?;
    let rows = store::steps(&mut tx, plan.id, REHEARSAL).await?;
    tx.rollback().await?;
    for step in rows {
        if step.state == StepState::Skipped {
            continue;
        }
        let started = app.now();
        let (state, detail, output) = match channels::rehearse_step(app, plan, &fresh, &step.name).await {
            Ok((detail, output)) => (StepState::Done, detail, output),
            Err(problem) => (StepState::Failed, problem, None),
        };
        let mut tx = app.store.begin().await?;
        store::claim(&mut tx, step.id, None, started).await?;
        if let Some(output) = &output {
            store::set_output(&mut tx, &step, output, app.now()).await?;
        }
        store::finish(&mut tx, step.id, StepState::Running, state, None, &detail, app.now()).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What a rehearsal of a plan produced: each step's output.
pub async fn rehearsal_outputs(app: &App, actor: &Actor, plan: &str) -> Result<Vec<(String, String)>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (found, _) = super::find_in(&mut tx, actor, plan, crate::authz::Permission::PlanDisclosure).await?;
    let steps = store::steps(&mut tx, found.id, REHEARSAL).await?;
    tx.rollback().await?;
    Ok(steps.into_iter().filter_map(|s| s.output.map(|o| (s.name, o))).collect())
}

/// The `disclosure.preflight_alert` job: mails the administrators and the report's assignee
/// that a plan's pre-flight checks found problems (the plan, the instant and the problems,
/// which name steps and settings, never report content), once per distinct set.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreflightAlert {
    plan: i64,
    digest: String,
}

impl Job for PreflightAlert {
    const KIND: &'static str = "disclosure.preflight_alert";

    fn key(&self) -> Option<String> {
        Some(format!("disclosure.preflight:{}:{}", self.plan, self.digest))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut tx = app.store.snapshot().await?;
        let plan = store::get(&mut tx, self.plan).await?;
        let steps = store::steps(&mut tx, self.plan, LIVE).await?;
        let users = embargo_store::users::list(&mut tx).await?;
        let report = match &plan {
            Some(plan) => embargo_store::reports::get(&mut tx, plan.report).await?,
            None => None,
        };
        tx.rollback().await?;
        let (Some(plan), Some(report)) = (plan, report) else {
            return claim.complete(app.store.begin().await?, app.now()).await;
        };
        let problems =
            steps.iter().find(|s| s.kind == StepKind::Preflight).map(|s| s.detail.clone()).unwrap_or_default();
        let recipients: Vec<_> = users
            .iter()
            .filter(|u| !u.disabled && !u.deleted)
            .filter(|u| u.role == embargo_domain::Role::Admin || Some(u.id) == report.assignee)
            .collect();
        let body = format!(
            "The pre-flight checks of disclosure plan {} (report {}, at {}) found problems:\n\n{}\n\n\
             Fix them before the instant, or the plan stops for a person then.\n{}/reports/{}/runbook\n",
            plan.id,
            report.reference,
            plan.disclose_at,
            problems,
            app.config.base_url(),
            report.reference
        );
        for user in recipients {
            let outbound = embargo_mail::outbound::OutboundMail {
                from: crate::mail::from_address(app),
                to: user.email.clone(),
                reply_to: app.config.organisation.security_address.clone(),
                subject: format!("[{}] Disclosure plan {}: pre-flight problems", report.reference, plan.id),
                body: body.clone(),
                message_id: crate::mail::new_message_id(app, "preflight"),
                in_reply_to: None,
                auto_reply: true,
                encrypt_to: None,
            };
            crate::mail::send(app, &format!("preflight-{}-{}", plan.id, claim.id()), &outbound).await?;
        }
        claim.complete(app.store.begin().await?, app.now()).await
    }
}
