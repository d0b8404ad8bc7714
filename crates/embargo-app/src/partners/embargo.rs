//! The end of an embargo and what may be said of it before: suspected leaks and the
//! decision on them (keep the date, move it, or break the embargo now), breaking and
//! lifting (each tells every partner at once), and the public pre-announcement of the date
//! and the severity, which reveals nothing else.

use embargo_domain::partner::{EmbargoState, EmbargoStep, Proposal};
use embargo_domain::{Actor, ReferenceId, Role, Timestamp};
use embargo_store::Tx;
use embargo_store::partners::{self as store, Embargo, NewNotice};
use serde::Serialize;

use super::notices::{check_policy, queue_copies, recipients, report_for, resolve_in, subject_of};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// A suspected leak, as the team sees it.
#[derive(Debug, Clone, Serialize)]
pub struct LeakView {
    /// Id.
    pub id: i64,
    /// The report.
    pub report: String,
    /// The partner suspected, if named.
    pub partner: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
    /// What leaked, to whom, the evidence.
    pub details: String,
    /// `keep`, `move` or `break`, once decided.
    pub decision: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

/// Records a suspected leak of a report's embargo. The team names the report (and the
/// partner suspected, if any); a partner contact names a notice shared with them.
pub async fn record_leak(
    app: &App,
    actor: &Actor,
    target: &str,
    partner: Option<&str>,
    details: &str,
) -> Result<i64, AppError> {
    let details = details.trim();
    if details.is_empty() {
        return Err(AppError::Invalid("say what leaked, to whom, and the evidence".into()));
    }
    if details.len() > 64 * 1024 {
        return Err(AppError::Invalid("a leak's description is at most 64 KiB".into()));
    }
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (report, partner_id) = if matches!(actor, Actor::User { role: Role::Partner, .. }) {
        let notice: i64 = target
            .trim()
            .trim_start_matches("N-")
            .parse()
            .map_err(|_| AppError::Invalid(format!("{target:?} is not a notice ID")))?;
        let not_found = || AppError::NotFound(format!("notice {notice}"));
        match authz::require(&mut tx, actor, Permission::ReadShared.on_notice(notice)).await {
            Err(AppError::Forbidden(_)) => return Err(not_found()),
            other => other?,
        }
        let found = store::notice(&mut tx, notice).await?.ok_or_else(not_found)?;
        let record = embargo_store::reports::get(&mut tx, found.report).await?.ok_or_else(not_found)?;
        (record, None)
    } else {
        let reference: ReferenceId = match target.trim().parse() {
            Ok(reference) => reference,
            Err(_) => {
                let notice = resolve_in(&mut tx, actor, target).await?;
                embargo_store::reports::get(&mut tx, notice.report)
                    .await?
                    .ok_or_else(|| AppError::NotFound("report".into()))?
                    .reference
            }
        };
        let report = report_for(&mut tx, actor, &reference).await?;
        let partner_id = match partner {
            Some(name) => {
                let id = store::partner_by_name(&mut tx, name.trim())
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("partner {:?}", name.trim())))?
                    .id;
                // A leak is held against a partner only if it was told.
                if !store::partners_told(&mut tx, report.id).await?.contains(&id) {
                    return Err(AppError::Invalid(format!(
                        "{} was never sent a notice about {reference}: record the leak without naming it",
                        name.trim()
                    )));
                }
                Some(id)
            }
            None => None,
        };
        (report, partner_id)
    };
    if store::embargo(&mut tx, report.id).await?.is_none() {
        return Err(AppError::Conflict(format!(
            "{} has no embargo: no date was ever proposed to partners",
            report.reference
        )));
    }
    let id = store::insert_leak(&mut tx, report.id, partner_id, &actor.to_string(), details, now).await?;
    // The people who can decide hear of it at once: the assignee and the admins.
    let mut people: Vec<i64> = report.assignee.map(|u| u.0).into_iter().collect();
    for user in embargo_store::users::list(&mut tx).await? {
        if user.role == Role::Admin && !user.disabled && !user.deleted && !people.contains(&user.id.0) {
            people.push(user.id.0);
        }
    }
    for user in people {
        crate::jobs::enqueue(&mut tx, app, &LeakAlert { leak: id, user }).await?;
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "embargo.leak",
        &subject_of(&report.reference),
        &format!("leak={id} partner={}", partner_id.map_or_else(|| "-".into(), |p| p.to_string())),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A report's recorded leaks (the team).
pub async fn leaks(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<LeakView>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = report_for(&mut tx, actor, reference).await?;
    let mut out = Vec::new();
    for leak in store::leaks(&mut tx, report.id).await? {
        let partner = match leak.partner_id {
            Some(id) => store::partner(&mut tx, id).await?.map(|p| p.name),
            None => None,
        };
        out.push(LeakView {
            id: leak.id,
            report: reference.to_string(),
            partner,
            recorded_by: leak.recorded_by,
            details: leak.details,
            decision: leak.decision,
            decided_by: leak.decided_by,
            created_at: leak.created_at.to_string(),
        });
    }
    tx.rollback().await?;
    Ok(out)
}

/// What a person decides about a suspected leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakDecision {
    /// Keep the date.
    Keep,
    /// Move the date (a revision to every partner, checked against the policy).
    Move {
        /// The new instant.
        to: Timestamp,
        /// A Friday or weekend confirmed.
        confirm_day: bool,
    },
    /// Break the embargo now.
    Break,
}

/// Decides on a leak (those who plan the report's disclosure). Moving the date sends a
/// revised notice to every partner; breaking tells every partner at once that the
/// embargo is broken and leaves the embargo `broken`, which the disclosure runbook's
/// emergency mode acts on.
pub async fn decide_leak(app: &App, actor: &Actor, leak: i64, decision: LeakDecision) -> Result<(), AppError> {
    let code = match decision {
        LeakDecision::Keep => "keep",
        LeakDecision::Move { .. } => "move",
        LeakDecision::Break => "break",
    };
    // Who may decide, and whether it is still open, before anything is done.
    let (reference, permissions) = {
        let mut tx = app.store.snapshot().await?;
        let found = store::leak(&mut tx, leak).await?.ok_or_else(|| AppError::NotFound(format!("leak {leak}")))?;
        let record = embargo_store::reports::get(&mut tx, found.report)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("leak {leak}")))?;
        let report = report_for(&mut tx, actor, &record.reference).await?;
        if found.decision.is_some() {
            return Err(AppError::Conflict(format!("leak {leak} was decided already")));
        }
        // A new date keeps what partners were allowed to do.
        let last = store::notices(&mut tx, report.id)
            .await?
            .into_iter()
            .find(|n| n.state != "draft" && matches!(n.kind.as_str(), "pre-notice" | "revision"));
        tx.rollback().await?;
        (report.reference, last.map_or((false, false), |n| (n.deploy_hosted, n.tell_customers)))
    };
    // The decision is recorded with its effect: in the same transaction for breaking, right
    // after a revision that went out for moving; a refused date records nothing.
    let record = async |tx: &mut Tx| -> Result<(), AppError> {
        if !store::decide_leak(tx, leak, code, &actor.to_string(), app.now()).await? {
            return Err(AppError::Conflict(format!("leak {leak} was decided already")));
        }
        audit::record(
            tx,
            app,
            actor,
            "embargo.leak.decide",
            &subject_of(&reference),
            &format!("leak={leak} decision={code}"),
        )
        .await?;
        Ok(())
    };
    match decision {
        LeakDecision::Keep => {
            let mut tx = app.store.begin().await?;
            record(&mut tx).await?;
            tx.commit().await?;
        }
        LeakDecision::Move { to, confirm_day } => {
            let (deploy_hosted, tell_customers) = permissions;
            let drafted = super::notices::draft(
                app,
                actor,
                &reference,
                super::DraftOptions { disclose_at: to, confirm_day, deploy_hosted, tell_customers },
            )
            .await?;
            super::notices::send(app, actor, &drafted.notice.to_string(), confirm_day).await?;
            let mut tx = app.store.begin().await?;
            record(&mut tx).await?;
            tx.commit().await?;
        }
        LeakDecision::Break => {
            let mut tx = app.store.begin().await?;
            end_embargo(&mut tx, app, actor, &reference, EmbargoStep::Break, &format!("leak {leak}")).await?;
            record(&mut tx).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

async fn end_embargo(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    step: EmbargoStep,
    why: &str,
) -> Result<(), AppError> {
    let now = app.now();
    let report = report_for(tx, actor, reference).await?;
    let embargo = store::embargo(tx, report.id)
        .await?
        .ok_or_else(|| AppError::Conflict(format!("{reference} has no embargo: no date was ever proposed")))?;
    let state = embargo.state.apply(step).map_err(|e| AppError::Conflict(e.to_string()))?;
    let told = embargo.state.is_in_force();
    store::save_embargo(tx, &Embargo { state, updated_at: now, ..embargo.clone() }).await?;
    let kind = if step == EmbargoStep::Break { "broken" } else { "lifted" };
    let body = match step {
        EmbargoStep::Break => format!(
            "The embargo on {reference} ended early ({why}); the disclosure happens now. The notice\n\
             you received earlier is no longer under embargo. The advisory follows as soon as it is\n\
             published.\n"
        ),
        _ => format!("The embargo on {reference} is lifted: the advisory and the fix are public.\n"),
    };
    let subject = format!(
        "[{}] {reference}: embargo {kind}",
        if step == EmbargoStep::Break { "EMBARGO BROKEN" } else { "LIFTED" }
    );
    let id = store::insert_notice(
        tx,
        &NewNotice {
            report: report.id,
            kind,
            disclose_at: now,
            deploy_hosted: true,
            tell_customers: true,
            confirmed_day: true,
            subject: &subject,
            body: &body,
            created_by: &actor.to_string(),
        },
        now,
    )
    .await?;
    // Every partner who was told hears of the end at once (whatever the product's partners
    // are now, suspended or not); none were told of a proposal.
    let mut copies = 0;
    if told {
        let mut partners = Vec::new();
        for id in store::partners_told(tx, report.id).await? {
            if let Some(partner) = store::partner(tx, id).await?
                && partner.state != embargo_domain::PartnerState::Removed
            {
                partners.push(partner);
            }
        }
        let notice = store::notice(tx, id).await?.ok_or_else(|| AppError::NotFound("notice".into()))?;
        copies = queue_copies(tx, app, &notice, &partners).await?.0;
        store::mark_sent(tx, id, &actor.to_string(), now).await?;
        store::supersede_others(tx, report.id, id).await?;
    }
    audit::record(
        tx,
        app,
        actor,
        if step == EmbargoStep::Break { "embargo.break" } else { "embargo.lift" },
        &subject_of(reference),
        &format!("from={} notice={id} copies={copies}", embargo.state),
    )
    .await?;
    Ok(())
}

/// Breaks a report's embargo now: every partner is told at once, and the embargo is
/// `broken` (the disclosure runbook's emergency mode acts on it).
pub async fn break_embargo(app: &App, actor: &Actor, reference: &ReferenceId, why: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    end_embargo(&mut tx, app, actor, reference, EmbargoStep::Break, why).await?;
    tx.commit().await?;
    Ok(())
}

/// Lifts a report's embargo at disclosure: every partner is told it is public.
pub async fn lift(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    end_embargo(&mut tx, app, actor, reference, EmbargoStep::Lift, "").await?;
    tx.commit().await?;
    Ok(())
}

/// Checks that a proposed date would pass the policy now (for a page that previews).
pub async fn check_date(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    disclose_at: Timestamp,
    confirm_day: bool,
) -> Result<Vec<String>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = report_for(&mut tx, actor, reference).await?;
    let (_, partners) = recipients(&mut tx, &report).await?;
    let embargo = store::embargo(&mut tx, report.id).await?;
    let first = embargo.filter(|e| e.state.is_in_force()).and_then(|e| e.first_notice_at);
    let (warnings, _) =
        check_policy(&mut tx, &partners, Proposal { now: app.now(), disclose_at, first_notice_at: first, confirm_day })
            .await?;
    tx.rollback().await?;
    Ok(warnings)
}

/// A public pre-announcement: the date and the severity, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announcement {
    /// An opaque identifier (not the report's reference, not an advisory ID).
    pub id: String,
    /// The disclosure instant.
    pub disclose_at: Timestamp,
    /// The highest severity (`Critical`, `High`, ...).
    pub severity: String,
}

/// Pre-announces a report's disclosure date and severity in public (as OpenSSL and Go do).
/// Only an embargo partners were told of can be announced; the severity is the
/// assessment's.
pub async fn announce(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Announcement, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let report = report_for(&mut tx, actor, reference).await?;
    let embargo = store::embargo(&mut tx, report.id)
        .await?
        .filter(|e| e.state.is_in_force())
        .ok_or_else(|| AppError::Conflict(format!("{reference} has no embargo in force: send a pre-notice first")))?;
    let severity = crate::assessment::get_in(&mut tx, report.id)
        .await?
        .severity()
        .ok_or_else(|| AppError::Invalid(format!("{reference} has no severity yet: assess it (CVSS) first")))?
        .as_str()
        .to_owned();
    store::save_embargo(
        &mut tx,
        &Embargo {
            announced_at: Some(now),
            announced_severity: Some(severity.clone()),
            updated_at: now,
            ..embargo.clone()
        },
    )
    .await?;
    audit::record(&mut tx, app, actor, "embargo.announce", &subject_of(reference), &format!("severity={severity}"))
        .await?;
    tx.commit().await?;
    Ok(Announcement { id: embargo.public_id, disclose_at: embargo.disclose_at, severity })
}

/// Withdraws a public pre-announcement.
pub async fn withdraw_announcement(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<(), AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let report = report_for(&mut tx, actor, reference).await?;
    let embargo = store::embargo(&mut tx, report.id)
        .await?
        .filter(|e| e.announced_at.is_some())
        .ok_or_else(|| AppError::Conflict(format!("{reference} is not pre-announced")))?;
    store::save_embargo(&mut tx, &Embargo { announced_at: None, announced_severity: None, updated_at: now, ..embargo })
        .await?;
    audit::record(&mut tx, app, actor, "embargo.announce.withdraw", &subject_of(reference), "").await?;
    tx.commit().await?;
    Ok(())
}

/// The public pre-announcements: embargoes in force that were announced (no actor: this
/// is public; it reveals only an opaque ID, the date and the severity).
pub async fn announcements(app: &App) -> Result<Vec<Announcement>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = store::announced(&mut tx).await?;
    tx.rollback().await?;
    Ok(found
        .into_iter()
        .filter(|e| e.state != EmbargoState::Lifted)
        .map(|e| Announcement {
            id: e.public_id,
            disclose_at: e.disclose_at,
            severity: e.announced_severity.unwrap_or_default(),
        })
        .collect())
}

/// Tells a person who can decide that a leak was recorded: the report's reference and a
/// link, never what leaked (team mail may travel unencrypted).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LeakAlert {
    leak: i64,
    user: i64,
}

impl crate::jobs::Job for LeakAlert {
    const KIND: &'static str = "mail.leak_alert";

    fn key(&self) -> Option<String> {
        Some(format!("leak-alert:{}:{}", self.leak, self.user))
    }

    async fn run(self, app: &App, claim: crate::jobs::Claim) -> Result<(), crate::jobs::JobError> {
        let mut tx = app.store.snapshot().await?;
        let leak = store::leak(&mut tx, self.leak).await?;
        let user = embargo_store::users::get(&mut tx, embargo_domain::UserId(self.user)).await?;
        let report = match &leak {
            Some(leak) => embargo_store::reports::get(&mut tx, leak.report).await?,
            None => None,
        };
        tx.rollback().await?;
        let (Some(report), Some(user)) = (report, user.filter(|u| !u.disabled && !u.deleted)) else {
            return claim.complete(app.store.begin().await?, app.now()).await;
        };
        let body = format!(
            "A suspected leak of the embargo on {reference} was recorded (leak {leak}).\n\n\
             Decide whether to keep the date, move it, or break the embargo now:\n\
             {base}/reports/{reference}/disclosure\n\
             or: embargo notice decide {leak} keep|move --to RFC3339|break\n",
            reference = report.reference,
            leak = self.leak,
            base = app.config.base_url(),
        );
        let outbound = embargo_mail::outbound::OutboundMail {
            from: crate::mail::from_address(app),
            to: user.email.clone(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: format!("[{}] Suspected embargo leak: decide now", report.reference),
            body,
            message_id: crate::mail::new_message_id(app, "leak"),
            in_reply_to: None,
            auto_reply: true,
            encrypt_to: None,
        };
        let receipt = crate::mail::send(app, &format!("leak-alert-{}-{}", self.leak, self.user), &outbound).await?;
        let details = crate::mail::sent_details(Self::KIND, None, &receipt, false);
        crate::mail::record_sent(app, &claim, &report.reference, &details).await
    }
}
