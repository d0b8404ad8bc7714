//! The domain's rules as SQL, built from the domain's own codes so that each rule is written
//! once: which states are open, which deadline matters in a state, and who may know of a
//! report (need-to-know). A store test evaluates every fragment on both backends against the
//! Rust rule it stands for.

use std::sync::LazyLock;

use embargo_domain::ReportState;
use embargo_domain::sla::ClockKind;

/// `state IN ('a', 'b')` over a `reports` row, for these states' codes.
pub fn state_in(states: impl IntoIterator<Item = ReportState>) -> String {
    let mut codes: Vec<&str> = states.into_iter().map(ReportState::code).collect();
    codes.dedup();
    let quoted: Vec<String> = codes
        .iter()
        .map(|c| {
            // Codes are the domain's constants; a quote in one would be a bug, not input.
            assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "state code {c:?}");
            format!("'{c}'")
        })
        .collect();
    format!("state IN ({})", quoted.join(", "))
}

/// "Open" (`ReportState::OPEN`): every state but closed and disclosed.
pub static OPEN: LazyLock<String> = LazyLock::new(|| state_in(ReportState::OPEN));

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
/// `reports::is_member`, `reports::list` and `reports::inbox` all use it.
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
    }
}
