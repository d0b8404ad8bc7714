//! SLA clocks: budgets in working days that pause while a report waits on its reporter.
//!
//! A clock starts at an instant with a budget of working days (see [`SlaPolicy`]) and uses up
//! working time in a team's [`BusinessCalendar`]. Needs-info intervals pause it: working time
//! inside a pause is not used. A pause is `(from, Some(until))` once the reporter replied, or
//! `(from, None)` while still waiting. Pauses may be given in any order and may overlap; parts
//! before the clock's start are ignored.
//!
//! Everything is measured with [`BusinessCalendar::working_days_between`] and located with its
//! exact inverse [`BusinessCalendar::add_working_duration`], so resuming a clock with X working
//! seconds left lands exactly X working seconds later. Without pauses a deadline is the same
//! local time N working days later, except when the start or end day is a DST-change day
//! that is a working day, where it can be off the wall-clock time by up to the size of the
//! change, just under an hour in most zones (see [`crate::calendar`]). What to do on a warning or a breach
//! (notify, escalate) is the caller's business.

use jiff::Timestamp;

use crate::calendar::{BusinessCalendar, WorkingDuration};
use crate::cvss::Severity;
use crate::lifecycle::ReportState;

/// Fix targets in working days by severity; `None` means no target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixTargets {
    pub critical: Option<u32>,
    pub high: Option<u32>,
    pub medium: Option<u32>,
    pub low: Option<u32>,
}

impl FixTargets {
    /// The target for `severity` (severity None has no target).
    pub fn for_severity(&self, severity: Severity) -> Option<u32> {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::None => None,
        }
    }
}

/// A team's SLA policy. Budgets are in working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    /// From receipt to acknowledgement.
    pub acknowledge_days: u32,
    /// From receipt to a first substantive (non-automatic) response, if tracked.
    pub first_response_days: Option<u32>,
    /// To the end of the analysis: from receipt, or from the acknowledgement (see
    /// [`SlaPolicy::analyse_from_receipt`]).
    pub analyse_days: u32,
    /// Whether the analysis clock starts at receipt (the policy's reading of "acknowledge and
    /// analyse within N working days": both done N working days after the report arrived)
    /// rather than at the acknowledgement (then the analysis can end up to
    /// `acknowledge_days + analyse_days` working days after receipt).
    pub analyse_from_receipt: bool,
    /// The longest gap between reporter-visible updates while the report is open.
    pub update_every_days: Option<u32>,
    /// From the end of the analysis to a fix, by severity.
    pub fix_days: FixTargets,
    /// The share of a budget, in percent, at which a warning is due (clamped to 100).
    pub warn_at_percent: u8,
}

impl Default for SlaPolicy {
    /// Acknowledge and analyse within 10 working days of receipt (the policy's numbers), an
    /// update at least every 10 working days, no first-response or fix targets, warnings at
    /// 80 %.
    fn default() -> Self {
        SlaPolicy {
            acknowledge_days: 10,
            first_response_days: None,
            analyse_days: 10,
            analyse_from_receipt: true,
            update_every_days: Some(10),
            fix_days: FixTargets::default(),
            warn_at_percent: 80,
        }
    }
}

/// The clocks a report can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClockKind {
    Acknowledge,
    FirstResponse,
    Analyse,
    Update,
    Fix,
}

impl SlaPolicy {
    /// The budget of clock `kind` in working days, if the policy sets one (`severity` matters
    /// only for [`ClockKind::Fix`]; without one there is no fix target).
    pub fn budget_days(&self, kind: ClockKind, severity: Option<Severity>) -> Option<u32> {
        match kind {
            ClockKind::Acknowledge => Some(self.acknowledge_days),
            ClockKind::FirstResponse => self.first_response_days,
            ClockKind::Analyse => Some(self.analyse_days),
            ClockKind::Update => self.update_every_days,
            ClockKind::Fix => severity.and_then(|s| self.fix_days.for_severity(s)),
        }
    }
}

/// Where a clock stands at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockStatus {
    /// Less than the warning share of the budget is used.
    OnTrack { due: Timestamp },
    /// At least the warning share is used, but not all.
    Warning { due: Timestamp },
    /// The budget ran out at `due`; `by` is the working time used since (pauses excluded).
    Breached { due: Timestamp, by: WorkingDuration },
    /// Waiting on the reporter with this much of the budget left; no deadline while frozen.
    Paused { remaining_working_seconds: u64 },
}

/// The pauses as sorted, disjoint `(from, until)` intervals starting no earlier than `started`
/// (`until` None: still open; nothing after an open pause matters).
fn normalise(started: Timestamp, pauses: &[(Timestamp, Option<Timestamp>)]) -> Vec<(Timestamp, Option<Timestamp>)> {
    let mut sorted: Vec<(Timestamp, Option<Timestamp>)> = pauses
        .iter()
        .filter(|(_, until)| until.is_none_or(|u| u > started))
        .map(|&(from, until)| (from.max(started), until))
        .filter(|(from, until)| until.is_none_or(|u| u > *from))
        .collect();
    sorted.sort_by_key(|(from, _)| *from);
    let mut merged: Vec<(Timestamp, Option<Timestamp>)> = Vec::with_capacity(sorted.len());
    for (from, until) in sorted {
        if let Some(last) = merged.last_mut() {
            match last.1 {
                None => break,
                Some(end) if from <= end => {
                    last.1 = until.map(|u| u.max(end));
                    continue;
                }
                Some(_) => {}
            }
        }
        merged.push((from, until));
    }
    merged
}

/// The instant at which `amount` of working time has been used by a clock started at
/// `started`, with `pauses`. None if a pause that is still open began before then: the clock
/// is frozen and the instant unknown.
pub fn when_used(
    cal: &BusinessCalendar,
    started: Timestamp,
    amount: WorkingDuration,
    pauses: &[(Timestamp, Option<Timestamp>)],
) -> Option<Timestamp> {
    let mut at = started;
    let mut left = amount;
    for (from, until) in normalise(started, pauses) {
        let available = cal.working_days_between(at, from);
        if available >= left {
            break;
        }
        left = left.saturating_sub(available);
        at = until?;
    }
    Some(cal.add_working_duration(at, left))
}

/// The working time used by a clock started at `started` up to `now`, pauses excluded (pauses
/// that begin after `now` do not matter).
pub fn used(
    cal: &BusinessCalendar,
    started: Timestamp,
    pauses: &[(Timestamp, Option<Timestamp>)],
    now: Timestamp,
) -> WorkingDuration {
    let mut at = started;
    let mut total = WorkingDuration::ZERO;
    for (from, until) in normalise(started, pauses) {
        if from >= now {
            break;
        }
        total = total.saturating_add(cal.working_days_between(at, from));
        match until {
            Some(until) if until < now => at = until,
            _ => return total,
        }
    }
    if now > at { total.saturating_add(cal.working_days_between(at, now)) } else { total }
}

/// The deadline of a clock with `budget_days` working days: None while a still-open pause
/// froze it before the budget ran out. If the budget ran out before that pause began, that
/// (past) instant is returned.
pub fn deadline(
    cal: &BusinessCalendar,
    started: Timestamp,
    budget_days: u32,
    pauses: &[(Timestamp, Option<Timestamp>)],
) -> Option<Timestamp> {
    when_used(cal, started, WorkingDuration::from_days(budget_days), pauses)
}

/// The warning share of a budget, in working seconds (exact: a working day has 86 400).
fn warning_share(budget_days: u32, warn_at_percent: u8) -> WorkingDuration {
    let budget = WorkingDuration::from_days(budget_days).seconds();
    WorkingDuration::from_seconds(budget * u64::from(warn_at_percent.min(100)) / 100)
}

/// The instant at which `warn_at_percent` % of the budget is used, under the rules of
/// [`deadline`].
pub fn warning_at(
    cal: &BusinessCalendar,
    started: Timestamp,
    budget_days: u32,
    warn_at_percent: u8,
    pauses: &[(Timestamp, Option<Timestamp>)],
) -> Option<Timestamp> {
    when_used(cal, started, warning_share(budget_days, warn_at_percent), pauses)
}

/// Where a clock stands at `now`. Pauses that begin after `now` are not taken into account.
/// A clock that is paused after its budget ran out stays [`ClockStatus::Breached`]; a budget
/// that runs out exactly at `now` is breached (by zero).
pub fn status(
    cal: &BusinessCalendar,
    started: Timestamp,
    budget_days: u32,
    warn_at_percent: u8,
    pauses: &[(Timestamp, Option<Timestamp>)],
    now: Timestamp,
) -> ClockStatus {
    let known: Vec<_> = pauses.iter().copied().filter(|(from, _)| *from <= now).collect();
    let budget = WorkingDuration::from_days(budget_days);
    let spent = used(cal, started, &known, now);
    let due = when_used(cal, started, budget, &known);
    match due {
        Some(due) if spent >= budget && due <= now => ClockStatus::Breached { due, by: spent.saturating_sub(budget) },
        None => ClockStatus::Paused { remaining_working_seconds: budget.saturating_sub(spent).seconds() },
        Some(due) => {
            let paused_now =
                normalise(started, &known).iter().any(|(from, until)| *from <= now && until.is_none_or(|u| now < u));
            if paused_now {
                ClockStatus::Paused { remaining_working_seconds: budget.saturating_sub(spent).seconds() }
            } else if spent >= warning_share(budget_days, warn_at_percent) {
                ClockStatus::Warning { due }
            } else {
                ClockStatus::OnTrack { due }
            }
        }
    }
}

impl ClockKind {
    /// The clock's stable name in alerts and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Acknowledge => "acknowledge",
            ClockKind::FirstResponse => "first-response",
            ClockKind::Analyse => "analyse",
            ClockKind::Update => "update",
            ClockKind::Fix => "fix",
        }
    }

    /// The clock's bit in [`SlaRecord::paused_clocks`].
    pub fn bit(self) -> u8 {
        match self {
            ClockKind::Acknowledge => 1,
            ClockKind::Analyse => 2,
            ClockKind::Fix => 4,
            ClockKind::Update => 8,
            ClockKind::FirstResponse => 16,
        }
    }

    /// The clock whose deadline matters while a report is in `state`: acknowledgement
    /// (new), analysis (acknowledged, triaging) or fix (accepted, fixing); none otherwise
    /// (needs-info is paused; ready, disclosed and closed reports owe nothing). The store's
    /// SQL for "the deadline that matters" is built from this function.
    pub fn that_matters_in(state: ReportState) -> Option<ClockKind> {
        match state {
            ReportState::New => Some(ClockKind::Acknowledge),
            ReportState::Acknowledged | ReportState::Triaging => Some(ClockKind::Analyse),
            ReportState::Accepted | ReportState::Fixing => Some(ClockKind::Fix),
            ReportState::NeedsInfo
            | ReportState::ReadyForDisclosure
            | ReportState::Disclosed
            | ReportState::Closed(_) => None,
        }
    }
}

/// Where a deadline stands at an instant, in working time on the calendar (what a person
/// reads: "acknowledge within 3 working days", "overdue by 1 working day").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueIn {
    /// Not yet: this much working time is left.
    Left(WorkingDuration),
    /// Passed: by this much working time (zero when it passed outside working time).
    Overdue(WorkingDuration),
}

impl DueIn {
    /// How `due` stands at `now` on `calendar` (a deadline at `now` is overdue).
    pub fn at(calendar: &BusinessCalendar, due: Timestamp, now: Timestamp) -> DueIn {
        if due <= now {
            DueIn::Overdue(calendar.working_days_between(due, now))
        } else {
            DueIn::Left(calendar.working_days_between(now, due))
        }
    }

    /// Whether the deadline has passed.
    pub fn is_overdue(self) -> bool {
        matches!(self, DueIn::Overdue(_))
    }
}

/// A report's SLA milestones and deadlines, as stored beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaRecord {
    /// When the report left `new`.
    pub acknowledged_at: Option<Timestamp>,
    /// When the analysis ended: accepted, or closed.
    pub assessed_at: Option<Timestamp>,
    /// When the fix was ready (ready-for-disclosure).
    pub fixed_at: Option<Timestamp>,
    /// When it was disclosed.
    pub disclosed_at: Option<Timestamp>,
    /// When it was last closed.
    pub closed_at: Option<Timestamp>,
    /// The last update the reporter could see (a reply or a state notice).
    pub last_update_at: Option<Timestamp>,
    /// The acknowledgement deadline.
    pub ack_due_at: Option<Timestamp>,
    /// The analysis deadline.
    pub analyse_due_at: Option<Timestamp>,
    /// When the reporter is next owed an update.
    pub update_due_at: Option<Timestamp>,
    /// The fix deadline (by severity).
    pub fix_due_at: Option<Timestamp>,
    /// Since when the report has waited on the reporter (needs-info); clocks are paused.
    pub needs_info_since: Option<Timestamp>,
    /// The next instant the SLA sweep must look at the report.
    pub next_sla_at: Option<Timestamp>,
    /// Severity from the CVSS assessment (`critical`, `high`, `medium`, `low`, `none`).
    pub severity: Option<String>,
    /// The running clocks that are paused with time left ([`ClockKind::bit`]): they have no
    /// deadline while the report waits on the reporter, but they are not over (a clock whose
    /// time ran out before the pause keeps its past deadline and is not in here).
    pub paused_clocks: u8,
}

impl SlaRecord {
    /// The stored deadline of a clock (the update clock's only while it runs).
    pub fn due_of(&self, kind: ClockKind) -> Option<Timestamp> {
        match kind {
            ClockKind::Acknowledge => self.ack_due_at,
            ClockKind::Analyse => self.analyse_due_at,
            ClockKind::Update => self.update_due_at,
            ClockKind::Fix => self.fix_due_at,
            ClockKind::FirstResponse => None,
        }
    }

    /// The deadline that matters in `state` (see [`ClockKind::that_matters_in`]).
    pub fn due_in(&self, state: ReportState) -> Option<Timestamp> {
        ClockKind::that_matters_in(state).and_then(|kind| self.due_of(kind))
    }
}

/// One clock of a report, as [`compute`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// Which clock.
    pub kind: ClockKind,
    /// Its name in alerts and the audit trail ([`ClockKind::name`]).
    pub name: &'static str,
    /// When it started.
    pub started: Timestamp,
    /// Its budget in working days.
    pub budget_days: u32,
    /// When it stopped (its milestone), if it did.
    pub stopped: Option<Timestamp>,
    /// Needs-info pauses that apply to it (clipped to its stop).
    pub pauses: Vec<(Timestamp, Option<Timestamp>)>,
    /// Its deadline; `None` while paused.
    pub due: Option<Timestamp>,
    /// When the warning is due; `None` while paused.
    pub warn: Option<Timestamp>,
}

/// One move of a report's lifecycle, as the clocks need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// Whether the report left `new` with this move (the acknowledgement).
    pub from_new: bool,
    /// The state after.
    pub to: ReportState,
    /// When.
    pub at: Timestamp,
}

/// The inputs of [`compute`].
#[derive(Debug, Clone)]
pub struct ReportClocks<'a> {
    /// Current state.
    pub state: ReportState,
    /// Received.
    pub created_at: Timestamp,
    /// Lifecycle history, oldest first.
    pub moves: &'a [Move],
    /// The last update the reporter could see.
    pub last_update_at: Option<Timestamp>,
    /// The stored SLA columns (deadlines of stopped clocks are kept from here).
    pub previous: &'a SlaRecord,
}

fn severity_of(code: Option<&str>) -> Severity {
    match code {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("low") => Severity::Low,
        // Unrated (and "none") reports get the medium target: every accepted report has a clock.
        _ => Severity::Medium,
    }
}

/// Computes a report's milestones, clocks and deadlines from its history:
/// * **acknowledge**: from receipt until the report leaves `new`;
/// * **analyse**: from receipt (or from the acknowledgement, see
///   [`SlaPolicy::analyse_from_receipt`]) until the analysis ends (accepted, or closed);
/// * **update**: while an acknowledged report is open, from the last update the reporter
///   could see (a reply or a state notice) or the acknowledgement;
/// * **fix**: from acceptance until the fix is ready (ready-for-disclosure), by severity.
///
/// Every clock pauses while the report waits on the reporter (needs-info); a stopped clock
/// keeps the deadline it was judged by (from `previous`). `next_sla_at` is the earliest
/// warning, deadline or needs-info auto-close (`needs_info_close_days` calendar days) still
/// ahead of a running clock.
pub fn compute(
    calendar: &BusinessCalendar,
    policy: &SlaPolicy,
    needs_info_close_days: u32,
    input: &ReportClocks<'_>,
) -> (SlaRecord, Vec<Clock>) {
    let first = |test: &dyn Fn(&Move) -> bool| input.moves.iter().find(|t| test(t)).map(|t| t.at);
    let acknowledged_at = first(&|t| t.from_new);
    let assessed_at = first(&|t| {
        matches!(
            t.to,
            ReportState::Accepted
                | ReportState::Fixing
                | ReportState::ReadyForDisclosure
                | ReportState::Disclosed
                | ReportState::Closed(_)
        )
    });
    let accepted_at = first(&|t| {
        matches!(
            t.to,
            ReportState::Accepted | ReportState::Fixing | ReportState::ReadyForDisclosure | ReportState::Disclosed
        )
    });
    let fixed_at = first(&|t| matches!(t.to, ReportState::ReadyForDisclosure | ReportState::Disclosed));
    let disclosed_at = first(&|t| t.to == ReportState::Disclosed);
    let last_into = |state: fn(&ReportState) -> bool| input.moves.iter().rev().find(|t| state(&t.to)).map(|t| t.at);
    let closed_at = if matches!(input.state, ReportState::Closed(_)) {
        last_into(|s| matches!(s, ReportState::Closed(_)))
    } else {
        None
    };
    let needs_info_since =
        if input.state == ReportState::NeedsInfo { last_into(|s| *s == ReportState::NeedsInfo) } else { None };
    let ended = if input.state.is_open() { None } else { closed_at.or(disclosed_at) };

    let mut pauses = Vec::new();
    let mut open: Option<Timestamp> = None;
    for t in input.moves {
        if let Some(from) = open.take() {
            pauses.push((from, Some(t.at)));
        }
        if t.to == ReportState::NeedsInfo {
            open = Some(t.at);
        }
    }
    if let Some(from) = open {
        pauses.push((from, None));
    }

    let severity = severity_of(input.previous.severity.as_deref());
    // (clock, started, stopped, the deadline kept from before)
    type Wanted = (ClockKind, Option<Timestamp>, Option<Timestamp>, Option<Timestamp>);
    let mut wanted: Vec<Wanted> = vec![
        (ClockKind::Acknowledge, Some(input.created_at), acknowledged_at.or(ended), input.previous.ack_due_at),
        (
            ClockKind::Analyse,
            if policy.analyse_from_receipt { Some(input.created_at) } else { acknowledged_at },
            assessed_at.or(ended),
            input.previous.analyse_due_at,
        ),
        (ClockKind::Fix, accepted_at, fixed_at.or(ended), input.previous.fix_due_at),
    ];
    if let Some(acknowledged) = acknowledged_at {
        let since = input.last_update_at.map_or(acknowledged, |u| u.max(acknowledged));
        wanted.push((ClockKind::Update, Some(since), ended, None));
    }
    let mut result = Vec::new();
    for (kind, started, stopped, kept) in wanted {
        let (Some(started), Some(budget_days)) = (started, policy.budget_days(kind, Some(severity))) else {
            continue;
        };
        let clipped: Vec<_> = pauses
            .iter()
            .filter(|(from, _)| stopped.is_none_or(|s| *from < s))
            .map(|&(from, until)| {
                (
                    from,
                    match (until, stopped) {
                        (Some(u), Some(s)) => Some(u.min(s)),
                        (None, Some(s)) => Some(s),
                        (u, None) => u,
                    },
                )
            })
            .collect();
        let computed = deadline(calendar, started, budget_days, &clipped);
        // A stopped clock keeps the deadline it was judged by.
        let due = if stopped.is_some() { kept.or(computed) } else { computed };
        let warn = warning_at(calendar, started, budget_days, policy.warn_at_percent, &clipped);
        result.push(Clock { kind, name: kind.name(), started, budget_days, stopped, pauses: clipped, due, warn });
    }
    let due_of = |kind| result.iter().find(|c: &&Clock| c.kind == kind).and_then(|c| c.due);
    let close_at = needs_info_since.and_then(|since| {
        since.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(needs_info_close_days))).ok()
    });
    let next_sla_at =
        result.iter().filter(|c| c.stopped.is_none()).flat_map(|c| [c.warn, c.due]).flatten().chain(close_at).min();
    let record = SlaRecord {
        acknowledged_at,
        assessed_at,
        fixed_at,
        disclosed_at,
        closed_at,
        last_update_at: input.last_update_at,
        ack_due_at: due_of(ClockKind::Acknowledge),
        analyse_due_at: due_of(ClockKind::Analyse),
        update_due_at: result.iter().find(|c| c.kind == ClockKind::Update && c.stopped.is_none()).and_then(|c| c.due),
        fix_due_at: due_of(ClockKind::Fix),
        needs_info_since,
        next_sla_at,
        severity: input.previous.severity.clone(),
        paused_clocks: result
            .iter()
            .filter(|c| c.stopped.is_none() && c.due.is_none())
            .fold(0, |bits, c| bits | c.kind.bit()),
    };
    (record, result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_deadline_reads_as_working_time_left_or_overdue() {
        let calendar = BusinessCalendar::new(jiff::tz::TimeZone::UTC);
        let friday: Timestamp = "2026-03-06T12:00:00Z".parse().unwrap();
        let tuesday: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        // Friday noon to Tuesday noon: two working days (the weekend does not count).
        assert_eq!(DueIn::at(&calendar, tuesday, friday), DueIn::Left(WorkingDuration::from_days(2)));
        assert_eq!(DueIn::at(&calendar, friday, tuesday), DueIn::Overdue(WorkingDuration::from_days(2)));
        assert!(DueIn::at(&calendar, friday, friday).is_overdue());
    }

    use super::*;
    use crate::calendar::WORKING_DAY_SECONDS;
    use jiff::tz::TimeZone;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn utc() -> BusinessCalendar {
        BusinessCalendar::new(TimeZone::UTC)
    }

    const DAY: u64 = WORKING_DAY_SECONDS;

    #[test]
    fn policy_budgets() {
        let mut policy = SlaPolicy::default();
        policy.fix_days.critical = Some(5);
        assert_eq!(policy.budget_days(ClockKind::Acknowledge, None), Some(10));
        assert_eq!(policy.budget_days(ClockKind::Analyse, None), Some(10));
        assert_eq!(policy.budget_days(ClockKind::FirstResponse, None), None);
        assert_eq!(policy.budget_days(ClockKind::Update, None), Some(10));
        assert_eq!(policy.budget_days(ClockKind::Fix, Some(Severity::Critical)), Some(5));
        assert_eq!(policy.budget_days(ClockKind::Fix, Some(Severity::Low)), None);
        assert_eq!(policy.budget_days(ClockKind::Fix, None), None);
        assert_eq!(policy.warn_at_percent, 80);
    }

    #[test]
    fn without_pauses_the_deadline_is_whole_working_days() {
        let cal = utc();
        // Wed 25 Nov 2026 10:00 + 10 working days = Wed 9 Dec 10:00.
        let started = at("2026-11-25T10:00:00Z");
        assert_eq!(deadline(&cal, started, 10, &[]), Some(at("2026-12-09T10:00:00Z")));
        assert_eq!(deadline(&cal, started, 10, &[]), Some(cal.add_working_days(started, 10)));
        // 80 % of 10 days is 8 days: Mon 7 Dec 10:00.
        assert_eq!(warning_at(&cal, started, 10, 80, &[]), Some(at("2026-12-07T10:00:00Z")));
        // 50 % of 1 day from Friday 18:00: 12 working hours, 6 on Friday and 6 on Monday.
        assert_eq!(warning_at(&cal, at("2026-11-27T18:00:00Z"), 1, 50, &[]), Some(at("2026-11-30T06:00:00Z")));
    }

    #[test]
    fn a_pause_across_a_weekend_costs_only_its_working_time() {
        let cal = utc();
        // Started Mon 23 Nov 09:00, 5 working days: due Mon 30 Nov 09:00 without pauses.
        let started = at("2026-11-23T09:00:00Z");
        assert_eq!(deadline(&cal, started, 5, &[]), Some(at("2026-11-30T09:00:00Z")));
        // Needs-info from Fri 27 Nov 15:00 to Mon 30 Nov 11:00: 9 working hours on Friday and 11
        // on Monday are paused (20 h); the weekend was free anyway.
        let pause = [(at("2026-11-27T15:00:00Z"), Some(at("2026-11-30T11:00:00Z")))];
        // Before the pause: Mon 09:00 .. Fri 15:00 = 4.25 days used; 18 h left from Mon 30 11:00:
        // 13 h on Monday and 5 h on Tuesday.
        assert_eq!(deadline(&cal, started, 5, &pause), Some(at("2026-12-01T05:00:00Z")));
        // Which is the unpaused deadline plus the paused working time (20 h).
        let paused_time = cal.working_days_between(pause[0].0, pause[0].1.unwrap());
        assert_eq!(paused_time.seconds(), 20 * 3600);
        assert_eq!(
            deadline(&cal, started, 5, &pause),
            Some(cal.add_working_duration(at("2026-11-30T09:00:00Z"), paused_time))
        );
        // A pause entirely inside the weekend changes nothing.
        let weekend = [(at("2026-11-28T08:00:00Z"), Some(at("2026-11-29T20:00:00Z")))];
        assert_eq!(deadline(&cal, started, 5, &weekend), Some(at("2026-11-30T09:00:00Z")));
    }

    #[test]
    fn an_open_pause_freezes_the_clock() {
        let cal = utc();
        let started = at("2026-11-23T09:00:00Z");
        let open = [(at("2026-11-25T09:00:00Z"), None)];
        assert_eq!(deadline(&cal, started, 5, &open), None);
        assert_eq!(warning_at(&cal, started, 5, 80, &open), None);
        // Status while waiting: 2 days used, 3 left, whenever we look.
        for now in ["2026-11-25T10:00:00Z", "2026-12-25T10:00:00Z"] {
            assert_eq!(
                status(&cal, started, 5, 80, &open, at(now)),
                ClockStatus::Paused { remaining_working_seconds: 3 * DAY }
            );
        }
        // But a warning that falls before the open pause is known: 40 % = 2 days, Wed 09:00.
        assert_eq!(warning_at(&cal, started, 5, 40, &open), Some(at("2026-11-25T09:00:00Z")));
        // And a budget that ran out before the pause stays breached.
        let late = [(at("2026-12-02T09:00:00Z"), None)];
        assert_eq!(deadline(&cal, started, 5, &late), Some(at("2026-11-30T09:00:00Z")));
        assert_eq!(
            status(&cal, started, 5, 80, &late, at("2026-12-10T09:00:00Z")),
            ClockStatus::Breached { due: at("2026-11-30T09:00:00Z"), by: WorkingDuration::from_days(2) }
        );
    }

    #[test]
    fn resuming_gives_back_the_remaining_time() {
        let cal = utc();
        let started = at("2026-11-23T09:00:00Z");
        // Paused Wed 09:00 to the next Wed 09:00 (5 working days), 3 days left on resumption.
        let pauses = [(at("2026-11-25T09:00:00Z"), Some(at("2026-12-02T09:00:00Z")))];
        assert_eq!(deadline(&cal, started, 5, &pauses), Some(at("2026-12-07T09:00:00Z")));
        assert_eq!(
            status(&cal, started, 5, 80, &pauses, at("2026-12-02T09:00:00Z")),
            ClockStatus::OnTrack { due: at("2026-12-07T09:00:00Z") }
        );
        // 80 % = 4 days: 2 before the pause, 2 after: Fri 4 Dec 09:00.
        assert_eq!(warning_at(&cal, started, 5, 80, &pauses), Some(at("2026-12-04T09:00:00Z")));
        assert_eq!(
            status(&cal, started, 5, 80, &pauses, at("2026-12-04T09:00:00Z")),
            ClockStatus::Warning { due: at("2026-12-07T09:00:00Z") }
        );
        assert_eq!(
            status(&cal, started, 5, 80, &pauses, at("2026-12-07T09:00:00Z")),
            ClockStatus::Breached { due: at("2026-12-07T09:00:00Z"), by: WorkingDuration::ZERO }
        );
        assert_eq!(
            status(&cal, started, 5, 80, &pauses, at("2026-12-07T21:00:00Z")),
            ClockStatus::Breached { due: at("2026-12-07T09:00:00Z"), by: WorkingDuration::from_seconds(DAY / 2) }
        );
    }

    #[test]
    fn pauses_overlapping_out_of_order_or_before_the_start() {
        let cal = utc();
        let started = at("2026-11-23T09:00:00Z");
        let tidy = [(at("2026-11-24T09:00:00Z"), Some(at("2026-11-26T09:00:00Z")))];
        let messy = [
            (at("2026-11-25T09:00:00Z"), Some(at("2026-11-26T09:00:00Z"))),
            (at("2026-11-20T09:00:00Z"), Some(at("2026-11-23T08:00:00Z"))), // before the start
            (at("2026-11-24T09:00:00Z"), Some(at("2026-11-25T12:00:00Z"))),
            (at("2026-11-24T10:00:00Z"), Some(at("2026-11-24T11:00:00Z"))), // inside another
        ];
        assert_eq!(deadline(&cal, started, 5, &messy), deadline(&cal, started, 5, &tidy));
        assert_eq!(deadline(&cal, started, 5, &tidy), Some(at("2026-12-02T09:00:00Z")));
        // A pause that covers the start delays the whole clock.
        let covering = [(at("2026-11-20T09:00:00Z"), Some(at("2026-11-24T09:00:00Z")))];
        assert_eq!(deadline(&cal, started, 5, &covering), Some(at("2026-12-01T09:00:00Z")));
    }

    #[test]
    fn the_deadline_that_matters_follows_the_state() {
        use crate::lifecycle::CloseReason;
        let record = SlaRecord {
            ack_due_at: Some(at("2026-12-01T00:00:00Z")),
            analyse_due_at: Some(at("2026-12-02T00:00:00Z")),
            update_due_at: Some(at("2026-12-03T00:00:00Z")),
            fix_due_at: Some(at("2026-12-04T00:00:00Z")),
            ..SlaRecord::default()
        };
        let cases = [
            (ReportState::New, record.ack_due_at),
            (ReportState::Acknowledged, record.analyse_due_at),
            (ReportState::Triaging, record.analyse_due_at),
            (ReportState::NeedsInfo, None),
            (ReportState::Accepted, record.fix_due_at),
            (ReportState::Fixing, record.fix_due_at),
            (ReportState::ReadyForDisclosure, None),
            (ReportState::Disclosed, None),
            (ReportState::Closed(CloseReason::Spam), None),
        ];
        assert_eq!(cases.len(), crate::lifecycle::ReportState::CODES.len());
        for (state, due) in cases {
            assert_eq!(record.due_in(state), due, "{state}");
        }
    }

    #[test]
    fn report_clocks_stop_at_their_milestones_and_pause_for_the_reporter() {
        let cal = utc();
        let created = at("2026-11-23T09:00:00Z"); // a Monday
        let moves = [
            Move { from_new: true, to: ReportState::Triaging, at: at("2026-11-24T09:00:00Z") },
            Move { from_new: false, to: ReportState::NeedsInfo, at: at("2026-11-25T09:00:00Z") },
            Move { from_new: false, to: ReportState::Triaging, at: at("2026-11-26T09:00:00Z") },
        ];
        let previous = SlaRecord::default();
        let input = ReportClocks {
            state: ReportState::Triaging,
            created_at: created,
            moves: &moves,
            last_update_at: None,
            previous: &previous,
        };
        let policy = SlaPolicy { analyse_from_receipt: false, ..SlaPolicy::default() };
        let (record, clocks) = compute(&cal, &policy, 30, &input);
        assert_eq!(record.acknowledged_at, Some(at("2026-11-24T09:00:00Z")));
        let ack = clocks.iter().find(|c| c.kind == ClockKind::Acknowledge).unwrap();
        assert_eq!(ack.stopped, record.acknowledged_at);
        let analyse = clocks.iter().find(|c| c.kind == ClockKind::Analyse).unwrap();
        assert_eq!(analyse.stopped, None);
        // Ten working days from Tue 24 Nov 09:00 plus the one working day paused.
        assert_eq!(analyse.due, Some(at("2026-12-09T09:00:00Z")));
        assert_eq!(record.analyse_due_at, analyse.due);
        assert_eq!(record.due_in(ReportState::Triaging), analyse.due);
        assert!(clocks.iter().all(|c| c.name == c.kind.name()));
        assert_eq!(record.needs_info_since, None);
        // Waiting on the reporter: the auto-close is the next thing the sweep looks at.
        let (waiting, _) = compute(&cal, &policy, 1, &ReportClocks { state: ReportState::NeedsInfo, ..input });
        assert_eq!(waiting.needs_info_since, Some(at("2026-11-25T09:00:00Z")));
    }

    /// Issue 20: "acknowledges and analyses within 10 working days" reads, and by default
    /// means, both within 10 working days of receipt; from the acknowledgement the analysis
    /// could end 20 working days after receipt.
    #[test]
    fn by_default_the_analysis_is_due_ten_working_days_after_receipt() {
        let cal = utc();
        let created = at("2026-11-23T09:00:00Z"); // a Monday
        // Acknowledged on the last day allowed.
        let moves = [Move { from_new: true, to: ReportState::Triaging, at: at("2026-12-07T08:00:00Z") }];
        let previous = SlaRecord::default();
        let input = ReportClocks {
            state: ReportState::Triaging,
            created_at: created,
            moves: &moves,
            last_update_at: None,
            previous: &previous,
        };
        let (record, _) = compute(&cal, &SlaPolicy::default(), 30, &input);
        assert_eq!(record.ack_due_at, Some(at("2026-12-07T09:00:00Z")));
        assert_eq!(record.analyse_due_at, Some(at("2026-12-07T09:00:00Z")), "both from receipt");
        let from_ack = SlaPolicy { analyse_from_receipt: false, ..SlaPolicy::default() };
        let (record, _) = compute(&cal, &from_ack, 30, &input);
        assert_eq!(record.analyse_due_at, Some(at("2026-12-21T08:00:00Z")), "20 working days after receipt");
    }

    /// Issue 20: a clock paused with time left has no deadline but is still running; one whose
    /// time ran out before the pause keeps its (past) deadline.
    #[test]
    fn paused_clocks_are_marked_and_a_missed_deadline_survives_the_pause() {
        let cal = utc();
        let created = at("2026-11-23T09:00:00Z");
        let previous = SlaRecord::default();
        let policy = SlaPolicy { analyse_from_receipt: false, analyse_days: 2, ..SlaPolicy::default() };
        // Acknowledged Tuesday, asked a question Wednesday: one working day left.
        let moves = [
            Move { from_new: true, to: ReportState::Triaging, at: at("2026-11-24T09:00:00Z") },
            Move { from_new: false, to: ReportState::NeedsInfo, at: at("2026-11-25T09:00:00Z") },
        ];
        let input = ReportClocks {
            state: ReportState::NeedsInfo,
            created_at: created,
            moves: &moves,
            last_update_at: None,
            previous: &previous,
        };
        let (record, _) = compute(&cal, &policy, 30, &input);
        assert_eq!(record.analyse_due_at, None);
        assert_eq!(record.paused_clocks & ClockKind::Analyse.bit(), ClockKind::Analyse.bit());
        assert_eq!(record.paused_clocks & ClockKind::Acknowledge.bit(), 0, "stopped");
        // Asked only after the two days ran out: missed, with its deadline, not paused.
        let late = [
            Move { from_new: true, to: ReportState::Triaging, at: at("2026-11-24T09:00:00Z") },
            Move { from_new: false, to: ReportState::NeedsInfo, at: at("2026-11-30T09:00:00Z") },
        ];
        let (record, _) = compute(&cal, &policy, 30, &ReportClocks { moves: &late, ..input });
        assert_eq!(record.analyse_due_at, Some(at("2026-11-26T09:00:00Z")));
        assert_eq!(record.paused_clocks & ClockKind::Analyse.bit(), 0);
    }

    #[test]
    fn status_ignores_pauses_after_now() {
        let cal = utc();
        let started = at("2026-11-23T09:00:00Z");
        let future = [(at("2026-11-27T09:00:00Z"), None)];
        assert_eq!(
            status(&cal, started, 5, 80, &future, at("2026-11-24T09:00:00Z")),
            ClockStatus::OnTrack { due: at("2026-11-30T09:00:00Z") }
        );
        // A zero-day budget is breached at once, and a 0 % warning warns at once.
        assert_eq!(
            status(&cal, started, 0, 80, &[], started),
            ClockStatus::Breached { due: started, by: WorkingDuration::ZERO }
        );
        assert_eq!(status(&cal, started, 5, 0, &[], started), ClockStatus::Warning { due: at("2026-11-30T09:00:00Z") });
        assert_eq!(used(&cal, started, &[], at("2026-11-20T09:00:00Z")), WorkingDuration::ZERO);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn instant(offset: i64) -> Timestamp {
            Timestamp::from_second(1_790_000_000 + offset).unwrap()
        }

        proptest! {
            #[test]
            fn the_deadline_uses_exactly_the_budget(
                budget in 0u32..15,
                raw in proptest::collection::vec((0i64..3_000_000, 1i64..600_000), 0..4),
            ) {
                let cal = BusinessCalendar::new(TimeZone::get("Europe/Paris").unwrap());
                let started = instant(0);
                let pauses: Vec<_> = raw.iter().map(|&(a, len)| (instant(a), Some(instant(a + len)))).collect();
                let due = deadline(&cal, started, budget, &pauses).unwrap();
                prop_assert_eq!(used(&cal, started, &pauses, due), WorkingDuration::from_days(budget));
                if budget > 0 {
                    let before = Timestamp::from_second(due.as_second() - 1).unwrap();
                    prop_assert!(used(&cal, started, &pauses, before) < WorkingDuration::from_days(budget));
                }
                // Pauses never bring a deadline forward.
                prop_assert!(due >= deadline(&cal, started, budget, &[]).unwrap());
            }
        }
    }
}
