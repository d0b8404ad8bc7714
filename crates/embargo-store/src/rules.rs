//! The domain's rules as SQL, built from the domain's own codes so that each rule is written
//! once: which states are open or closed, which deadline matters in a state, how a report
//! turned out for its reporter's track record, and who may know of a report (need-to-know).
//! A store test (`sql_rules_agree_with_the_domain_rules`) evaluates every fragment on both
//! backends against the Rust rule it stands for.
//!
//! The fragments use unqualified columns of a `reports` row; inside a sub-query over
//! `reports o` they refer to `o`, the innermost table, on both backends.

use std::sync::LazyLock;

use embargo_domain::sla::ClockKind;
use embargo_domain::{Outcome, ReportState};

/// `state IN ('a', 'b')` over a `reports` row, for these states' codes.
pub fn state_in(states: impl IntoIterator<Item = ReportState>) -> String {
    let mut codes: Vec<&str> = states.into_iter().map(ReportState::code).collect();
    codes.dedup();
    let quoted: Vec<String> = codes.iter().map(|c| quoted(c)).collect();
    format!("state IN ({})", quoted.join(", "))
}

/// A constant code, quoted for SQL.
fn quoted(code: &str) -> String {
    // Codes are the domain's constants; a quote in one would be a bug, not input.
    assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "code {code:?}");
    format!("'{code}'")
}

/// A `reports` row in one of these states, close reasons included (`state` and
/// `close_reason`): `closed` rows match only with one of the listed states' reasons.
pub fn state_among(states: impl IntoIterator<Item = ReportState>) -> String {
    let (mut codes, mut reasons) = (Vec::new(), Vec::new());
    for state in states {
        match state {
            ReportState::Closed(reason) => reasons.push(quoted(reason.code())),
            other => codes.push(quoted(other.code())),
        }
    }
    codes.dedup();
    reasons.dedup();
    let mut terms = Vec::new();
    if !codes.is_empty() {
        terms.push(format!("state IN ({})", codes.join(", ")));
    }
    if !reasons.is_empty() {
        terms.push(format!("(state = 'closed' AND close_reason IN ({}))", reasons.join(", ")));
    }
    if terms.is_empty() {
        terms.push("1 = 0".to_owned());
    }
    format!("({})", terms.join(" OR "))
}

/// "Open" (`ReportState::OPEN`): every state but closed and disclosed.
pub static OPEN: LazyLock<String> = LazyLock::new(|| state_in(ReportState::OPEN));

/// "Closed", with any reason (`ReportState::is_closed`).
pub static CLOSED: LazyLock<String> =
    LazyLock::new(|| state_in(ReportState::of_every_code().into_iter().filter(|s| s.is_closed())));

/// A report that turned out this way for its reporter's track record
/// (`ReportState::outcome`).
pub fn outcome_is(outcome: Outcome) -> String {
    state_among(ReportState::of_every_code_and_reason().into_iter().filter(|s| s.outcome() == Some(outcome)))
}

/// The column holding a clock's deadline.
pub fn due_column(kind: ClockKind) -> Option<&'static str> {
    match kind {
        ClockKind::Acknowledge => Some("ack_due_at"),
        ClockKind::Analyse => Some("analyse_due_at"),
        ClockKind::Update => Some("update_due_at"),
        ClockKind::Fix => Some("fix_due_at"),
        ClockKind::FirstResponse => None,
    }
}

/// "The deadline that matters" in a report's state (`ClockKind::that_matters_in`), as a
/// `CASE` over a `reports` row.
pub static DUE_AT: LazyLock<String> = LazyLock::new(|| {
    let mut arms = Vec::new();
    let kinds =
        [ClockKind::Acknowledge, ClockKind::FirstResponse, ClockKind::Analyse, ClockKind::Update, ClockKind::Fix];
    for kind in kinds {
        let states: Vec<ReportState> =
            ReportState::of_every_code().into_iter().filter(|s| ClockKind::that_matters_in(*s) == Some(kind)).collect();
        if states.is_empty() {
            continue;
        }
        let column = due_column(kind).expect("a clock that matters in a state has a stored deadline");
        arms.push(format!("WHEN {} THEN {column}", state_in(states)));
    }
    format!("(CASE {} ELSE NULL END)", arms.join(" "))
});

/// Need-to-know over a `reports` row for the user in parameter `user` (for example `$2`):
/// the report is assigned to them, they were added to it, or they are responsible for its
/// product (`embargo_domain::access::ReportTies::need_to_know`). The one visibility rule:
/// `reports::is_member`, `reports::list`, `reports::inbox` and the reporter history all use it.
pub fn visible_to(user: &str) -> String {
    format!(
        "(assignee_id = {user} \
         OR id IN (SELECT report_id FROM report_members WHERE user_id = {user}) \
         OR product_id IN (SELECT product_id FROM product_responders WHERE user_id = {user}))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_built_from_the_codes() {
        assert_eq!(
            *OPEN,
            "state IN ('new', 'acknowledged', 'triaging', 'needs-info', 'accepted', 'fixing', 'ready-for-disclosure')"
        );
        assert_eq!(
            *DUE_AT,
            "(CASE WHEN state IN ('new') THEN ack_due_at \
             WHEN state IN ('acknowledged', 'triaging') THEN analyse_due_at \
             WHEN state IN ('accepted', 'fixing') THEN fix_due_at ELSE NULL END)"
        );
        assert_eq!(*CLOSED, "state IN ('closed')");
        assert_eq!(
            outcome_is(Outcome::Valid),
            "(state IN ('accepted', 'fixing', 'ready-for-disclosure', 'disclosed') \
             OR (state = 'closed' AND close_reason IN ('wont-fix')))"
        );
        assert_eq!(
            outcome_is(Outcome::Invalid),
            "((state = 'closed' AND close_reason IN ('invalid', 'not-security', 'out-of-scope', 'spam')))"
        );
        assert_eq!(outcome_is(Outcome::Duplicate), "((state = 'closed' AND close_reason IN ('duplicate')))");
        assert_eq!(state_among([]), "(1 = 0)");
    }
}
