//! The SLA sweep: every minute (the `sla.sweep` job), looks at the reports whose next SLA
//! instant has come, raises warnings and escalations (once each, recorded in `sla_alerts`,
//! audited, and mailed to the people responsible by `mail.team_alert` jobs), and closes
//! needs-info reports whose reporter did not answer in time (see `crate::sla` for the
//! clocks). Above `reports`: closing a report is a lifecycle change.

use embargo_domain::{Actor, CloseReason, ReportId, ReportState, Role, Timestamp};
use embargo_store::Tx;
use serde::{Deserialize, Serialize};

use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError, audit, sla};

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Reports looked at.
    pub reports: usize,
    /// Warnings raised.
    pub warnings: usize,
    /// Escalations raised.
    pub breaches: usize,
    /// Needs-info reports closed for lack of an answer.
    pub closed: usize,
}

/// Looks at every report whose next SLA instant has come: raises warnings and escalations
/// (once each) and closes needs-info reports whose reporter did not answer in time.
pub async fn sweep(app: &App) -> Result<Sweep, AppError> {
    const BATCH: i64 = 100;
    let mut outcome = Sweep::default();
    loop {
        let now = app.now();
        let mut tx = app.store.begin().await?;
        let due = embargo_store::sla::due(&mut tx, now, BATCH).await?;
        for report in &due {
            sweep_report_in(&mut tx, app, *report, now, &mut outcome).await?;
        }
        tx.commit().await?;
        outcome.reports += due.len();
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    if outcome != Sweep::default() {
        tracing::info!(
            reports = outcome.reports,
            warnings = outcome.warnings,
            breaches = outcome.breaches,
            closed = outcome.closed,
            "SLA sweep"
        );
    }
    Ok(outcome)
}

async fn sweep_report_in(
    tx: &mut Tx,
    app: &App,
    report: ReportId,
    now: Timestamp,
    outcome: &mut Sweep,
) -> Result<(), AppError> {
    let actor = Actor::System("sla");
    let (mut sla, mut clocks) = sla::refresh_in(tx, app, report, None).await?;
    if let Some(since) = sla.needs_info_since
        && sla::close_due(app, since).is_some_and(|at| at <= now)
    {
        let record =
            embargo_store::reports::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
        crate::reports::change_state_in(
            tx,
            app,
            &actor,
            &record.reference,
            ReportState::Closed(CloseReason::NoResponse),
            crate::reports::Notice::Template,
        )
        .await?;
        outcome.closed += 1;
        (sla, clocks) = sla::refresh_in(tx, app, report, None).await?;
    }
    for clock in clocks.iter().filter(|c| c.stopped.is_none()) {
        let (Some(due), Some(warn)) = (clock.due, clock.warn) else { continue };
        let kind = if due <= now {
            "breach"
        } else if warn <= now {
            "warning"
        } else {
            continue;
        };
        if embargo_store::sla::record_alert(tx, report, clock.name, kind, due, now).await? {
            raise_in(tx, app, report, clock.name, kind, due).await?;
            if kind == "breach" {
                outcome.breaches += 1;
            } else {
                outcome.warnings += 1;
            }
        }
    }
    let next = clocks
        .iter()
        .filter(|c| c.stopped.is_none())
        .flat_map(|c| [c.warn, c.due])
        .flatten()
        .chain(sla.needs_info_since.and_then(|s| sla::close_due(app, s)))
        .filter(|at| *at > now)
        .min();
    if next != sla.next_sla_at {
        sla.next_sla_at = next;
        embargo_store::sla::set(tx, report, &sla).await?;
    }
    Ok(())
}

/// Audits an alert and mails it to the people responsible: the assignee, else the
/// product's responders, else the admins; a breach also goes to every admin.
async fn raise_in(
    tx: &mut Tx,
    app: &App,
    report: ReportId,
    clock: &str,
    kind: &str,
    due: Timestamp,
) -> Result<(), AppError> {
    let record = embargo_store::reports::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let users = embargo_store::users::list(tx).await?;
    let admins: Vec<_> = users.iter().filter(|u| u.role == Role::Admin && !u.disabled).map(|u| u.id).collect();
    let mut recipients = match (record.assignee, record.product_id) {
        (Some(user), _) => vec![user],
        (None, Some(product)) => embargo_store::products::responders(tx, product).await?,
        (None, None) => Vec::new(),
    };
    if recipients.is_empty() || kind == "breach" {
        recipients.extend(&admins);
    }
    recipients.sort_by_key(|u| u.0);
    recipients.dedup();
    recipients.retain(|id| users.iter().any(|u| u.id == *id && !u.disabled));
    let subject_text = format!("report:{}", record.reference);
    let details = format!("clock={clock} due={due} recipients={}", recipients.len());
    audit::record(tx, app, &Actor::System("sla"), &format!("sla.{kind}"), &subject_text, &details).await?;
    for user in recipients {
        let alert = TeamAlert {
            report: report.0,
            user: user.0,
            clock: clock.to_owned(),
            kind: kind.to_owned(),
            due_ms: due.as_millisecond(),
        };
        jobs::enqueue(tx, app, &alert).await?;
    }
    metrics::counter!("embargo_sla_alerts_total", "clock" => clock.to_owned(), "kind" => kind.to_owned()).increment(1);
    Ok(())
}

/// The `sla.sweep` job: runs [`sweep`] and schedules the next sweep a minute later. A
/// worker schedules one when it starts, so the sweep runs while any worker does.
#[derive(Debug, Serialize, Deserialize)]
pub struct SlaSweep {
    /// The minute slot (Unix seconds / 60) it runs in: one sweep per slot, whoever
    /// schedules it. (Absent from jobs of older versions.)
    #[serde(default)]
    slot: i64,
}

/// How often the SLA sweep runs.
const SLA_SWEEP_EVERY_SECONDS: i64 = 60;

impl Job for SlaSweep {
    const KIND: &'static str = "sla.sweep";

    fn key(&self) -> Option<String> {
        Some(format!("sla.sweep:{}", self.slot))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        sweep(app).await?;
        schedule(app, app.now()).await?;
        let now = app.now();
        claim.complete(app.store.begin().await?, now).await
    }

    async fn on_worker_start(app: &App) -> Result<(), AppError> {
        let now = app.now();
        schedule(app, now.checked_sub(jiff::SignedDuration::from_secs(SLA_SWEEP_EVERY_SECONDS)).unwrap_or(now)).await
    }
}

/// Schedules the SLA sweep for the minute after `after` (idempotent per minute, so any
/// number of workers schedule it once).
pub async fn schedule(app: &App, after: Timestamp) -> Result<(), AppError> {
    let slot = after.as_second().div_euclid(SLA_SWEEP_EVERY_SECONDS) + 1;
    let run_at = Timestamp::from_second(slot * SLA_SWEEP_EVERY_SECONDS).unwrap_or(after);
    let mut tx = app.store.begin().await?;
    jobs::enqueue_at(&mut tx, app, &SlaSweep { slot }, run_at).await?;
    tx.commit().await?;
    Ok(())
}

/// The `mail.team_alert` job: mails a team member an SLA warning or escalation about a
/// report: the reference, the clock, the deadline and a link, never report content. Once
/// per (report, clock, kind, deadline, member).
#[derive(Debug, Serialize, Deserialize)]
pub struct TeamAlert {
    report: i64,
    user: i64,
    clock: String,
    kind: String,
    due_ms: i64,
}

impl Job for TeamAlert {
    const KIND: &'static str = "mail.team_alert";

    fn key(&self) -> Option<String> {
        let TeamAlert { report, user, clock, kind, due_ms } = self;
        Some(format!("sla:{report}:{clock}:{kind}:{due_ms}:{user}"))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut tx = app.store.begin().await?;
        let report = embargo_store::reports::get(&mut tx, ReportId(self.report))
            .await?
            .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", self.report)))?;
        let user = embargo_store::users::get(&mut tx, embargo_domain::UserId(self.user)).await?;
        let tz = sla::calendar_in(&mut tx, app).await?.time_zone.clone();
        tx.rollback().await?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            let now = app.now();
            return claim.complete(app.store.begin().await?, now).await;
        };
        let due = Timestamp::from_millisecond(self.due_ms).map_err(|e| JobError::Permanent(e.to_string()))?;
        let text = crate::mail::sla_alert(app, &report.reference, &self.clock, &self.kind, due, &tz);
        let outbound = embargo_mail::outbound::OutboundMail {
            from: crate::mail::from_address(app),
            to: user.email.clone(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: text.subject,
            body: text.body,
            message_id: crate::mail::new_message_id(app, "sla"),
            in_reply_to: None,
            auto_reply: true,
            encrypt_to: None,
        };
        let label = format!("sla-{}-{}", report.reference, claim.id());
        let receipt = crate::mail::send(app, &label, &outbound).await?;
        let details = crate::mail::sent_details(Self::KIND, None, &receipt, false);
        crate::mail::record_sent(app, &claim, &report.reference, &details).await
    }
}
