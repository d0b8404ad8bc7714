//! The report lifecycle as a pure state machine.
//!
//! ```text
//!   new ──► acknowledged ──► triaging ──► accepted ──► fixing ──► ready-for-disclosure ──► disclosed
//!    │           │  ▲           │  ▲         │           ▲  │            │
//!    │           ▼  │           ▼  │         │           └──┼────────────┘ (fix reopened)
//!    │         needs-info ◄─────┘  │         │              │
//!    └──────────────┴──────────────┴─────────┴──────────────┴──► closed(reason) ──► triaging (reopen)
//! ```
//!
//! Every state but `disclosed` may be closed with a typed [`CloseReason`]; a closed report can
//! be reopened into triage (for example when a reporter answers after a needs-info
//! auto-close). `disclosed` is final. Staying in the same state is not a transition.

use std::fmt;

use jiff::Timestamp;

use crate::actor::Actor;
use crate::ids::ReportId;

/// Why a report was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Not a vulnerability, or not reproducible.
    Invalid,
    /// Another report describes the same issue; the threads are linked.
    Duplicate {
        /// The report this one duplicates. Never the report itself.
        of: ReportId,
    },
    /// A genuine bug but not a security issue: the reporter is sent to the public tracker.
    NotSecurity,
    /// Outside the scope of the policy (for example an unsupported product).
    OutOfScope,
    /// Junk.
    Spam,
    /// Accepted as real, but it will not be fixed.
    WontFix,
    /// The reporter did not answer the team's question in time (needs-info auto-close); an
    /// answer reopens it.
    NoResponse,
}

impl CloseReason {
    /// The stable text code (`invalid`, `duplicate`, `not-security`, `out-of-scope`, `spam`,
    /// `wont-fix`). A duplicate's target is stored separately.
    pub fn code(self) -> &'static str {
        match self {
            CloseReason::Invalid => "invalid",
            CloseReason::Duplicate { .. } => "duplicate",
            CloseReason::NotSecurity => "not-security",
            CloseReason::OutOfScope => "out-of-scope",
            CloseReason::Spam => "spam",
            CloseReason::WontFix => "wont-fix",
            CloseReason::NoResponse => "no-response",
        }
    }

    /// Rebuilds a reason from its code; `duplicate` needs the target report.
    pub fn from_code(code: &str, duplicate_of: Option<ReportId>) -> Option<Self> {
        Some(match (code, duplicate_of) {
            ("invalid", None) => CloseReason::Invalid,
            ("duplicate", Some(of)) => CloseReason::Duplicate { of },
            ("not-security", None) => CloseReason::NotSecurity,
            ("out-of-scope", None) => CloseReason::OutOfScope,
            ("spam", None) => CloseReason::Spam,
            ("wont-fix", None) => CloseReason::WontFix,
            ("no-response", None) => CloseReason::NoResponse,
            _ => return None,
        })
    }

    /// Every code, for help texts and validation messages.
    pub const CODES: [&'static str; 7] =
        ["invalid", "duplicate", "not-security", "out-of-scope", "spam", "wont-fix", "no-response"];
}

/// How a report turned out, for its reporter's track record (a reporter whose reports are
/// invalid again and again, and never valid, is flagged in the inbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A real vulnerability: accepted (or further), or closed as won't-fix.
    Valid,
    /// Closed as invalid, spam, not a security issue, or out of scope.
    Invalid,
    /// Closed as a duplicate of another report.
    Duplicate,
}

/// Where a report is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportState {
    /// Received, nobody has looked yet.
    New,
    /// The team has acknowledged receipt to the reporter.
    Acknowledged,
    /// Under analysis.
    Triaging,
    /// Waiting on the reporter; SLA clocks pause here.
    NeedsInfo,
    /// Confirmed as a vulnerability to be fixed.
    Accepted,
    /// A fix is being developed.
    Fixing,
    /// The fix is ready; waiting for the disclosure date.
    ReadyForDisclosure,
    /// Publicly disclosed. Final.
    Disclosed,
    /// Closed, with a typed reason.
    Closed(CloseReason),
}

impl ReportState {
    /// Every state code, in lifecycle order.
    pub const CODES: [&'static str; 9] = [
        "new",
        "acknowledged",
        "triaging",
        "needs-info",
        "accepted",
        "fixing",
        "ready-for-disclosure",
        "disclosed",
        "closed",
    ];

    /// The stable text code of the state (the close reason is separate).
    pub fn code(self) -> &'static str {
        match self {
            ReportState::New => "new",
            ReportState::Acknowledged => "acknowledged",
            ReportState::Triaging => "triaging",
            ReportState::NeedsInfo => "needs-info",
            ReportState::Accepted => "accepted",
            ReportState::Fixing => "fixing",
            ReportState::ReadyForDisclosure => "ready-for-disclosure",
            ReportState::Disclosed => "disclosed",
            ReportState::Closed(_) => "closed",
        }
    }

    /// Rebuilds a state from stored codes.
    pub fn from_codes(state: &str, close_reason: Option<&str>, duplicate_of: Option<ReportId>) -> Option<Self> {
        let open = |s| (close_reason.is_none() && duplicate_of.is_none()).then_some(s);
        match state {
            "new" => open(ReportState::New),
            "acknowledged" => open(ReportState::Acknowledged),
            "triaging" => open(ReportState::Triaging),
            "needs-info" => open(ReportState::NeedsInfo),
            "accepted" => open(ReportState::Accepted),
            "fixing" => open(ReportState::Fixing),
            "ready-for-disclosure" => open(ReportState::ReadyForDisclosure),
            "disclosed" => open(ReportState::Disclosed),
            "closed" => CloseReason::from_code(close_reason?, duplicate_of).map(ReportState::Closed),
            _ => None,
        }
    }

    /// The open states: every state but `closed` and `disclosed` (see [`Self::is_open`]).
    /// The store's SQL for "open" is built from this list.
    pub const OPEN: [ReportState; 7] = [
        ReportState::New,
        ReportState::Acknowledged,
        ReportState::Triaging,
        ReportState::NeedsInfo,
        ReportState::Accepted,
        ReportState::Fixing,
        ReportState::ReadyForDisclosure,
    ];

    /// One state for every code (`closed` with one of its reasons: the rules that SQL
    /// builds from codes do not depend on the reason).
    pub fn of_every_code() -> [ReportState; 9] {
        use ReportState::*;
        [
            New,
            Acknowledged,
            Triaging,
            NeedsInfo,
            Accepted,
            Fixing,
            ReadyForDisclosure,
            Disclosed,
            Closed(CloseReason::Invalid),
        ]
    }

    /// Every state a stored row can be in as far as codes go: each state code, and `closed`
    /// with each close reason (a duplicate's original is a placeholder: no rule that SQL
    /// builds from codes depends on it).
    pub fn of_every_code_and_reason() -> Vec<ReportState> {
        let open = Self::of_every_code().into_iter().filter(|s| !s.is_closed());
        let closed = CloseReason::CODES.iter().map(|code| {
            let reason = CloseReason::from_code(code, None).unwrap_or(CloseReason::Duplicate { of: ReportId(0) });
            ReportState::Closed(reason)
        });
        open.chain(closed).collect()
    }

    /// Whether the report is closed (with any reason).
    pub fn is_closed(self) -> bool {
        matches!(self, ReportState::Closed(_))
    }

    /// How the report turned out, for its reporter's track record; `None` while that is not
    /// known: before acceptance, or closed for lack of an answer (an answer reopens it).
    pub fn outcome(self) -> Option<Outcome> {
        use ReportState::*;
        match self {
            New | Acknowledged | Triaging | NeedsInfo => None,
            Accepted | Fixing | ReadyForDisclosure | Disclosed => Some(Outcome::Valid),
            Closed(CloseReason::WontFix) => Some(Outcome::Valid),
            Closed(CloseReason::Invalid | CloseReason::Spam | CloseReason::NotSecurity | CloseReason::OutOfScope) => {
                Some(Outcome::Invalid)
            }
            Closed(CloseReason::Duplicate { .. }) => Some(Outcome::Duplicate),
            Closed(CloseReason::NoResponse) => None,
        }
    }

    /// Whether the report is still being worked on (not closed and not disclosed).
    pub fn is_open(self) -> bool {
        !matches!(self, ReportState::Closed(_) | ReportState::Disclosed)
    }

    /// The main path of a report, in order: where a report that turns out to be a real
    /// vulnerability goes, one step at a time. `needs-info` and `closed` are off it.
    pub const PATH: [ReportState; 7] = [
        ReportState::New,
        ReportState::Acknowledged,
        ReportState::Triaging,
        ReportState::Accepted,
        ReportState::Fixing,
        ReportState::ReadyForDisclosure,
        ReportState::Disclosed,
    ];

    /// The position of the state on [`Self::PATH`], or `None` off it (needs-info, closed).
    pub fn on_path(self) -> Option<usize> {
        Self::PATH.iter().position(|s| *s == self)
    }

    /// How far along [`Self::PATH`] a report with this history got: the furthest path
    /// position of the current state and of every state it was in (`from`) or moved to.
    /// A report in needs-info after triage stands at triage; a closed one where it was.
    pub fn furthest_on_path(self, history: impl IntoIterator<Item = ReportState>) -> usize {
        history.into_iter().chain([self]).filter_map(Self::on_path).max().unwrap_or(0)
    }

    /// The move that carries the report forward: the next state on [`Self::PATH`], back to
    /// triage from needs-info, a closed report reopened into triage; `None` for a disclosed
    /// report. Always a move [`Self::can_move_to`] allows (a test checks every state).
    pub fn next_move(self) -> Option<ReportState> {
        use ReportState::*;
        match self {
            NeedsInfo | Closed(_) => Some(Triaging),
            Disclosed => None,
            on_path => on_path.on_path().and_then(|i| Self::PATH.get(i + 1)).copied(),
        }
    }

    /// Whether the lifecycle allows moving from `self` to `target` in one step.
    pub fn can_move_to(self, target: ReportState) -> bool {
        use ReportState::*;
        match (self, target) {
            (Disclosed, _) => false,
            (Closed(_), Triaging) => true,
            (Closed(_), _) => false,
            (_, Closed(_)) => true,
            (New, Acknowledged | Triaging | NeedsInfo) => true,
            (Acknowledged, Triaging | NeedsInfo | Accepted) => true,
            (Triaging, NeedsInfo | Accepted) => true,
            (NeedsInfo, Triaging | Accepted) => true,
            (Accepted, Fixing | NeedsInfo) => true,
            (Fixing, ReadyForDisclosure | Accepted) => true,
            (ReadyForDisclosure, Disclosed | Fixing) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ReportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportState::Closed(CloseReason::Duplicate { of }) => f.pad(&format!("closed (duplicate of report {of})")),
            ReportState::Closed(reason) => f.pad(&format!("closed ({})", reason.code())),
            other => f.pad(other.code()),
        }
    }
}

/// A target as a person asks for it at an edge (CLI, web form, API): a state code, or
/// `closed:<reason>`, and for `closed:duplicate` the original report. `Of` names the original:
/// a reference as typed at the edge, a [`ReportId`] once the use case has found it.
///
/// Parsed once, at the edge ([`Target::parse`]); a duplicate without its original, or an
/// original with any other target, cannot be built, so no use case checks for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<Of>(Aim<Of>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Aim<Of> {
    /// Any state but closed as a duplicate (which needs its original).
    State(ReportState),
    /// Closed as a duplicate of this report.
    Duplicate(Of),
}

/// Why a typed target could not be built from what a person typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Neither a state code nor `closed:<reason>`.
    #[error(
        "unknown target state {0:?}; expected one of {states}, or closed:<reason> with a reason among {reasons}",
        states = ReportState::CODES.iter().filter(|c| **c != "closed").copied().collect::<Vec<_>>().join(", "),
        reasons = CloseReason::CODES.join(", ")
    )]
    Unknown(String),
    /// `closed:duplicate` without the original.
    #[error("closing as a duplicate (closed:duplicate) needs the original report (duplicate_of, --duplicate-of)")]
    DuplicateWithoutOriginal,
    /// An original with a target other than `closed:duplicate`.
    #[error("an original report only goes with closed:duplicate")]
    OriginalWithoutDuplicate,
}

impl<Of> Target<Of> {
    /// Parses a target as typed by a person: a state code, or `closed:<reason>`; the original
    /// of a duplicate comes separately (`--duplicate-of`, the form's `duplicate_of` field).
    pub fn parse(text: &str, duplicate_of: Option<Of>) -> Result<Self, TargetError> {
        let state = match text.split_once(':') {
            Some(("closed", "duplicate")) => {
                return duplicate_of.map(|of| Target(Aim::Duplicate(of))).ok_or(TargetError::DuplicateWithoutOriginal);
            }
            Some(("closed", reason)) => CloseReason::from_code(reason, None).map(ReportState::Closed),
            Some(_) => None,
            None if text != "closed" => ReportState::from_codes(text, None, None),
            None => None,
        }
        .ok_or_else(|| TargetError::Unknown(text.to_owned()))?;
        match duplicate_of {
            Some(_) => Err(TargetError::OriginalWithoutDuplicate),
            None => Ok(Target(Aim::State(state))),
        }
    }

    /// Closing as a duplicate of `of`.
    pub fn duplicate_of(of: Of) -> Self {
        Target(Aim::Duplicate(of))
    }

    /// The original, when this target closes as a duplicate.
    pub fn original(&self) -> Option<&Of> {
        match &self.0 {
            Aim::Duplicate(of) => Some(of),
            Aim::State(_) => None,
        }
    }

    /// The state this target names, once `find` has turned the original (if any) into its
    /// report id; `find`'s error (not found, not readable) is passed on.
    pub async fn resolve<E>(self, find: impl AsyncFnOnce(Of) -> Result<ReportId, E>) -> Result<ReportState, E> {
        match self.0 {
            Aim::State(state) => Ok(state),
            Aim::Duplicate(of) => Ok(ReportState::Closed(CloseReason::Duplicate { of: find(of).await? })),
        }
    }

    /// Whether the lifecycle allows moving from `from` to this target (the original does not
    /// matter: no edge depends on it).
    pub fn allowed_from(&self, from: ReportState) -> bool {
        match &self.0 {
            Aim::State(to) => from.can_move_to(*to),
            // The placeholder id is never stored: only the kind of state decides the edge.
            Aim::Duplicate(_) => from.can_move_to(ReportState::Closed(CloseReason::Duplicate { of: ReportId(0) })),
        }
    }
}

impl Target<()> {
    /// Every target a person can ask for, in lifecycle order (state codes, then each close
    /// reason), without originals: for the choices of a form and for help texts.
    pub fn every() -> Vec<Target<()>> {
        let states = ReportState::of_every_code().into_iter().filter(|s| s.code() != "closed").map(Aim::State);
        let closes = CloseReason::CODES.iter().map(|code| match CloseReason::from_code(code, None) {
            Some(reason) => Aim::State(ReportState::Closed(reason)),
            None => Aim::Duplicate(()),
        });
        states.chain(closes).map(Target).collect()
    }
}

/// A target without an original (`closed:duplicate` needs [`Target::parse`] with one).
impl<Of> std::str::FromStr for Target<Of> {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, TargetError> {
        Target::parse(text, None)
    }
}

impl<Of> fmt::Display for Target<Of> {
    /// The target as typed: `triaging`, `closed:spam`, `closed:duplicate` (the original is
    /// not part of the text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Aim::State(ReportState::Closed(reason)) => write!(f, "closed:{}", reason.code()),
            Aim::State(state) => f.write_str(state.code()),
            Aim::Duplicate(_) => f.write_str("closed:duplicate"),
        }
    }
}

/// One recorded move of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: ReportState,
    /// The state after.
    pub to: ReportState,
    /// Who made the move.
    pub actor: Actor,
    /// When.
    pub at: Timestamp,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The lifecycle has no edge between the two states.
    #[error("a report cannot move from {from} to {to}")]
    NotAllowed {
        /// Current state.
        from: ReportState,
        /// Requested state.
        to: ReportState,
    },
    /// The report is already in that state.
    #[error("the report is already {0}")]
    Unchanged(ReportState),
    /// A report was closed as a duplicate of itself.
    #[error("a report cannot be a duplicate of itself")]
    DuplicateOfItself,
}

/// A report's lifecycle: its current state and every transition that led there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    report: ReportId,
    state: ReportState,
    history: Vec<Transition>,
}

impl Lifecycle {
    /// A new report's lifecycle, in state `new`.
    pub fn new(report: ReportId) -> Self {
        Self { report, state: ReportState::New, history: Vec::new() }
    }

    /// Rebuilds a lifecycle from stored state and history.
    pub fn restore(report: ReportId, state: ReportState, history: Vec<Transition>) -> Self {
        Self { report, state, history }
    }

    /// The current state.
    pub fn state(&self) -> ReportState {
        self.state
    }

    /// All transitions so far, oldest first.
    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    /// Checks a move without making it.
    pub fn check(&self, to: ReportState) -> Result<(), TransitionError> {
        if let ReportState::Closed(CloseReason::Duplicate { of }) = to
            && of == self.report
        {
            return Err(TransitionError::DuplicateOfItself);
        }
        if to == self.state {
            return Err(TransitionError::Unchanged(to));
        }
        if !self.state.can_move_to(to) {
            return Err(TransitionError::NotAllowed { from: self.state, to });
        }
        Ok(())
    }

    /// Makes a move, recording actor and time. On error nothing changes.
    pub fn apply(&mut self, to: ReportState, actor: Actor, at: Timestamp) -> Result<&Transition, TransitionError> {
        self.check(to)?;
        self.history.push(Transition { from: self.state, to, actor, at });
        self.state = to;
        Ok(self.history.last().expect("just pushed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ME: ReportId = ReportId(1);
    const OTHER: ReportId = ReportId(2);

    fn all_states() -> Vec<ReportState> {
        use ReportState::*;
        let mut states = vec![New, Acknowledged, Triaging, NeedsInfo, Accepted, Fixing, ReadyForDisclosure, Disclosed];
        for reason in [
            CloseReason::Invalid,
            CloseReason::Duplicate { of: OTHER },
            CloseReason::Duplicate { of: ME },
            CloseReason::NotSecurity,
            CloseReason::OutOfScope,
            CloseReason::Spam,
            CloseReason::WontFix,
            CloseReason::NoResponse,
        ] {
            states.push(Closed(reason));
        }
        states
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn the_happy_path_reaches_disclosure() {
        use ReportState::*;
        let mut life = Lifecycle::new(ME);
        for (i, to) in [Acknowledged, Triaging, Accepted, Fixing, ReadyForDisclosure, Disclosed].into_iter().enumerate()
        {
            life.apply(to, Actor::System("test"), at(i as i64)).unwrap();
        }
        assert_eq!(life.state(), Disclosed);
        assert_eq!(life.history().len(), 6);
        assert_eq!(life.history()[0].from, New);
    }

    #[test]
    fn the_next_move_is_always_allowed_and_follows_the_path() {
        use ReportState::*;
        for state in all_states() {
            match state.next_move() {
                Some(next) => assert!(state.can_move_to(next), "{state} -> {next}"),
                None => assert_eq!(state, Disclosed),
            }
        }
        // Following the next move from `new` walks the whole path.
        let mut walked = vec![New];
        while let Some(next) = walked.last().unwrap().next_move() {
            walked.push(next);
        }
        assert_eq!(walked, ReportState::PATH);
        assert_eq!(NeedsInfo.next_move(), Some(Triaging));
        assert_eq!(Closed(CloseReason::Spam).next_move(), Some(Triaging));
        // Off the path, the furthest point reached counts.
        assert_eq!(NeedsInfo.on_path(), None);
        assert_eq!(NeedsInfo.furthest_on_path([New, Acknowledged, Triaging]), 2);
        assert_eq!(Closed(CloseReason::Invalid).furthest_on_path([New]), 0);
        assert_eq!(Fixing.furthest_on_path([New, Accepted]), 4);
    }

    #[test]
    fn illegal_moves_are_refused_with_a_clear_error() {
        let mut life = Lifecycle::new(ME);
        let err = life.apply(ReportState::Disclosed, Actor::Reporter, at(0)).unwrap_err();
        assert_eq!(err.to_string(), "a report cannot move from new to disclosed");
        assert_eq!(life.state(), ReportState::New);
        assert!(life.history().is_empty());
    }

    #[test]
    fn a_report_cannot_duplicate_itself() {
        let life = Lifecycle::new(ME);
        let to = ReportState::Closed(CloseReason::Duplicate { of: ME });
        assert_eq!(life.check(to), Err(TransitionError::DuplicateOfItself));
        assert!(life.check(ReportState::Closed(CloseReason::Duplicate { of: OTHER })).is_ok());
    }

    #[test]
    fn closed_reports_reopen_into_triage_only() {
        let mut life = Lifecycle::new(ME);
        life.apply(ReportState::Closed(CloseReason::Spam), Actor::Reporter, at(0)).unwrap();
        assert!(life.check(ReportState::Acknowledged).is_err());
        assert!(life.check(ReportState::Closed(CloseReason::Invalid)).is_err());
        life.apply(ReportState::Triaging, Actor::Reporter, at(1)).unwrap();
        assert_eq!(life.state(), ReportState::Triaging);
    }

    #[test]
    fn the_open_list_is_the_open_rule() {
        for state in all_states() {
            assert_eq!(ReportState::OPEN.contains(&state), state.is_open(), "{state}");
        }
        let codes: Vec<_> = ReportState::of_every_code().iter().map(|s| s.code()).collect();
        assert_eq!(codes, ReportState::CODES);
    }

    #[test]
    fn every_code_and_reason_is_listed_once() {
        let every = ReportState::of_every_code_and_reason();
        assert_eq!(every.len(), ReportState::CODES.len() - 1 + CloseReason::CODES.len());
        for state in all_states() {
            let listed = every.iter().filter(|s| {
                s.code() == state.code()
                    && match (s, state) {
                        (ReportState::Closed(a), ReportState::Closed(b)) => a.code() == b.code(),
                        _ => true,
                    }
            });
            assert_eq!(listed.count(), 1, "{state}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for state in all_states() {
            let (reason, dup) = match state {
                ReportState::Closed(r) => (
                    Some(r.code()),
                    match r {
                        CloseReason::Duplicate { of } => Some(of),
                        _ => None,
                    },
                ),
                _ => (None, None),
            };
            assert_eq!(ReportState::from_codes(state.code(), reason, dup), Some(state));
        }
        assert_eq!(ReportState::from_codes("closed", Some("duplicate"), None), None);
        assert_eq!(ReportState::from_codes("new", Some("spam"), None), None);
        assert_eq!(ReportState::from_codes("bogus", None, None), None);
    }

    fn resolved(target: Target<ReportId>) -> ReportState {
        let found: Result<ReportState, std::convert::Infallible> = ready(target.resolve(async |of| Ok(of)));
        found.unwrap()
    }

    /// Polls a future that never waits (the resolvers of these tests are immediate).
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => unreachable!("the resolver does not wait"),
        }
    }

    #[test]
    fn targets_are_parsed_once_and_typed() {
        let parse = |text: &str, of: Option<ReportId>| Target::parse(text, of);
        assert_eq!(
            resolved(parse("closed:not-security", None).unwrap()),
            ReportState::Closed(CloseReason::NotSecurity)
        );
        assert_eq!(resolved(parse("triaging", None).unwrap()), ReportState::Triaging);
        assert_eq!(
            resolved(parse("closed:duplicate", Some(OTHER)).unwrap()),
            ReportState::Closed(CloseReason::Duplicate { of: OTHER })
        );
        assert_eq!(parse("closed:duplicate", Some(OTHER)).unwrap().original(), Some(&OTHER));
        assert_eq!(parse("closed:spam", None).unwrap().original(), None);
        // A duplicate needs its original; an original needs a duplicate.
        assert_eq!(parse("closed:duplicate", None), Err(TargetError::DuplicateWithoutOriginal));
        assert_eq!(parse("closed:spam", Some(OTHER)), Err(TargetError::OriginalWithoutDuplicate));
        assert_eq!(parse("triaging", Some(OTHER)), Err(TargetError::OriginalWithoutDuplicate));
        for bad in ["closed", "triaging:x", "closed:bogus", "shut", "", "CLOSED:spam"] {
            assert_eq!(parse(bad, None), Err(TargetError::Unknown(bad.to_owned())), "{bad:?}");
        }
        let message = parse("bogus", None).unwrap_err().to_string();
        assert!(
            message.contains("triaging") && message.contains("wont-fix") && !message.contains(" closed,"),
            "{message}"
        );
    }

    #[test]
    fn every_target_prints_as_it_parses() {
        let every = Target::every();
        assert_eq!(every.len(), ReportState::CODES.len() - 1 + CloseReason::CODES.len());
        for target in every {
            let text = target.to_string();
            let of = target.original().map(|()| OTHER);
            let again = Target::parse(&text, of).unwrap();
            assert_eq!(again.to_string(), text);
            for from in all_states() {
                let to = resolved(again.clone());
                assert_eq!(target.allowed_from(from), from.can_move_to(to), "{from} -> {text}");
            }
        }
    }

    fn any_state() -> impl Strategy<Value = ReportState> {
        proptest::sample::select(all_states())
    }

    proptest! {
        /// Whatever is asked of it, the machine only ever follows allowed edges, records
        /// exactly the accepted moves, and leaves everything untouched on refusal.
        #[test]
        fn random_walks_follow_only_allowed_edges(targets in proptest::collection::vec(any_state(), 0..60)) {
            let mut life = Lifecycle::new(ME);
            let mut accepted = 0usize;
            for (i, to) in targets.into_iter().enumerate() {
                let before = life.clone();
                match life.apply(to, Actor::System("prop"), at(i as i64)) {
                    Ok(t) => {
                        prop_assert_eq!(t.from, before.state());
                        prop_assert_eq!(t.to, to);
                        prop_assert!(before.state().can_move_to(to));
                        prop_assert_ne!(to, ReportState::Closed(CloseReason::Duplicate { of: ME }));
                        accepted += 1;
                    }
                    Err(_) => prop_assert_eq!(&life, &before),
                }
            }
            prop_assert_eq!(life.history().len(), accepted);
            // The history is a connected chain from `new` to the current state.
            let mut state = ReportState::New;
            for t in life.history() {
                prop_assert_eq!(t.from, state);
                state = t.to;
            }
            prop_assert_eq!(state, life.state());
        }

        /// `disclosed` is final and is only ever entered from `ready-for-disclosure`.
        #[test]
        fn disclosure_is_final_and_gated(targets in proptest::collection::vec(any_state(), 0..60)) {
            let mut life = Lifecycle::new(ME);
            for (i, to) in targets.into_iter().enumerate() {
                let _ = life.apply(to, Actor::System("prop"), at(i as i64));
            }
            let history = life.history();
            for (i, t) in history.iter().enumerate() {
                if t.to == ReportState::Disclosed {
                    prop_assert_eq!(t.from, ReportState::ReadyForDisclosure);
                    prop_assert_eq!(i, history.len() - 1);
                }
            }
        }

        /// The edge relation never allows a self-loop and never leaves `disclosed`.
        #[test]
        fn edges_have_no_self_loops(from in any_state(), to in any_state()) {
            let life = Lifecycle::restore(ME, from, Vec::new());
            if from == to || from == ReportState::Disclosed {
                prop_assert!(life.check(to).is_err());
            }
        }
    }
}
