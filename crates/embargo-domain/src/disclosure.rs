//! The disclosure runbook's rules (issue 16): a plan's state machine with the two-person
//! arming bound to a hash of everything that will be published, the order of its steps,
//! and "never early": a step with a public effect may start only at or after the instant,
//! and a plan whose instant passed while nobody ran it goes on only within a grace, else
//! it waits for a person.
//!
//! ```text
//!   DRAFT ──approve (another person, hash of the content)──► ARMED ──instant──► RUNNING
//!     ▲                         │                                              │    │
//!     └──── any change disarms ─┘                        STOPPED (ask a person)◄┘    └──► DONE
//!   CANCELLED from DRAFT, ARMED or STOPPED
//! ```
//!
//! This module holds rules only; the application stores plans and steps, claims a step in
//! the transaction that checks [`may_start`] against trusted time, and carries out each
//! external effect as an intent.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

/// Where a disclosure plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanState {
    /// Being prepared; editable; nothing runs but rehearsals.
    Draft,
    /// A second person approved exactly this content; it runs at the instant.
    Armed,
    /// Its steps are running.
    Running,
    /// A step needs a person (a lost answer that cannot be checked, a missed instant).
    Stopped,
    /// Every step is done.
    Done,
    /// Given up before it ran (or while stopped).
    Cancelled,
}

impl PlanState {
    /// Every state.
    pub const ALL: [PlanState; 6] = [
        PlanState::Draft,
        PlanState::Armed,
        PlanState::Running,
        PlanState::Stopped,
        PlanState::Done,
        PlanState::Cancelled,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            PlanState::Draft => "draft",
            PlanState::Armed => "armed",
            PlanState::Running => "running",
            PlanState::Stopped => "stopped",
            PlanState::Done => "done",
            PlanState::Cancelled => "cancelled",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The state after `step`, or why not.
    pub fn apply(self, step: PlanStep<'_>) -> Result<PlanState, PlanError> {
        use PlanState::*;
        match (self, step) {
            (Draft, PlanStep::Approve(approval)) => approval.check().map(|()| Armed),
            // Any change to what will be published takes the approval back.
            (Draft | Armed, PlanStep::Change) => Ok(Draft),
            (Armed, PlanStep::Start) => Ok(Running),
            (Running | Stopped, PlanStep::Stop) => Ok(Stopped),
            (Stopped, PlanStep::Resume) => Ok(Running),
            (Running, PlanStep::Finish) => Ok(Done),
            (Draft | Armed | Stopped, PlanStep::Cancel) => Ok(Cancelled),
            (from, step) => Err(PlanError::Step { from, step: step.name() }),
        }
    }
}

impl fmt::Display for PlanState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A second person's approval of a plan's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval<'a> {
    /// Who made (last changed) the plan: an actor's identity.
    pub planner: &'a str,
    /// Who approves.
    pub approver: &'a str,
    /// The hash of the content the approver saw.
    pub approved_hash: &'a str,
    /// The hash of the plan's content now.
    pub current_hash: &'a str,
    /// Whether every step is ready to arm (complete texts, targets, artifacts).
    pub complete: bool,
}

impl Approval<'_> {
    fn check(&self) -> Result<(), PlanError> {
        if self.approver == self.planner {
            return Err(PlanError::SamePerson);
        }
        if !self.complete {
            return Err(PlanError::Incomplete);
        }
        if self.approved_hash != self.current_hash {
            return Err(PlanError::ContentChanged);
        }
        Ok(())
    }
}

/// A step of a plan's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStep<'a> {
    /// A second person approves this content.
    Approve(Approval<'a>),
    /// Something that will be published changed.
    Change,
    /// The instant came (or "disclose now").
    Start,
    /// A step needs a person.
    Stop,
    /// A person let it go on.
    Resume,
    /// The last step finished.
    Finish,
    /// Given up.
    Cancel,
}

impl PlanStep<'_> {
    fn name(&self) -> &'static str {
        match self {
            PlanStep::Approve(_) => "be approved",
            PlanStep::Change => "change",
            PlanStep::Start => "start",
            PlanStep::Stop => "stop",
            PlanStep::Resume => "resume",
            PlanStep::Finish => "finish",
            PlanStep::Cancel => "be cancelled",
        }
    }
}

/// Why a plan step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Not from this state.
    #[error("a plan that is {from} cannot {step}")]
    Step {
        /// Where the plan is.
        from: PlanState,
        /// What was asked.
        step: &'static str,
    },
    /// The approver made the plan.
    #[error("the person who prepared the plan cannot approve it: a second person must")]
    SamePerson,
    /// The plan is not complete.
    #[error("the plan is not complete: every step needs its texts and targets before it can be approved")]
    Incomplete,
    /// What was approved is not what will be published.
    #[error("the plan changed since it was shown for approval: review it again")]
    ContentChanged,
}

/// The kinds of step of a plan, in the order they must happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepKind {
    /// Checks from an hour before: branches merge, CI green, advisory valid, notices sent,
    /// channels answer. No public effect.
    Preflight,
    /// Merge the fix commits onto the public branches, tag, push atomically.
    MergeAndPush,
    /// Build and verify the release's artifacts.
    Binaries,
    /// Publish the advisory (pages, OSV, CSAF, Atom).
    PublishAdvisory,
    /// Publish the CVE record (from the published advisory) at CVE Services.
    PublishCve,
    /// Announce on one channel (blog, Slack, X, Mastodon, Bluesky, lists).
    Announce,
    /// Partners, reporter, report state, access, archive.
    CloseOut,
}

impl StepKind {
    /// Whether the step has an effect the public can see (and so never starts early).
    pub fn is_public(self) -> bool {
        !matches!(self, StepKind::Preflight)
    }

    /// The kinds that must be done before this one starts.
    pub fn after(self) -> &'static [StepKind] {
        use StepKind::*;
        match self {
            Preflight => &[],
            MergeAndPush => &[Preflight],
            Binaries => &[MergeAndPush],
            // The fix is never public without the advisory following; the advisory waits
            // for the fix to be public.
            PublishAdvisory => &[MergeAndPush],
            // The CVE record is the published advisory's.
            PublishCve => &[MergeAndPush, PublishAdvisory],
            // Nothing is announced before the fix is public, the binaries verified and the
            // advisory and its CVE record published.
            Announce => &[MergeAndPush, Binaries, PublishAdvisory, PublishCve],
            CloseOut => &[Announce, PublishAdvisory, PublishCve],
        }
    }
}

/// Where one step of a plan is.
///
/// ```text
///   PENDING ──claim──► RUNNING ──► DONE
///      ▲                  │  └──► FAILED ──retry──► PENDING
///      │                  └────► NEEDS-PERSON ──marked done──► DONE
///      └──────── retried deliberately ─┘
///   PENDING ──not part of this plan──► SKIPPED
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    /// Not started.
    Pending,
    /// Claimed by a runner; its effect may be under way.
    Running,
    /// Its effect happened (done now, found when reconciling, or marked by a person).
    Done,
    /// Refused for good by the service or by a check: a person retries it or cancels.
    Failed,
    /// The answer of a call that cannot be checked was lost, or the instant was missed:
    /// a person marks it done or retries it deliberately.
    NeedsPerson,
    /// Nothing to do for it in this plan.
    Skipped,
}

impl StepState {
    /// Every state.
    pub const ALL: [StepState; 6] = [
        StepState::Pending,
        StepState::Running,
        StepState::Done,
        StepState::Failed,
        StepState::NeedsPerson,
        StepState::Skipped,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::NeedsPerson => "needs-person",
            StepState::Skipped => "skipped",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether steps that wait for this one may go on.
    pub fn lets_others_go(self) -> bool {
        matches!(self, StepState::Done | StepState::Skipped)
    }

    /// Whether a person may move it to `to` (mark done, retry); runners use [`StepState::Running`]
    /// and the outcomes.
    pub fn person_may_move_to(self, to: StepState) -> bool {
        matches!(
            (self, to),
            (StepState::NeedsPerson, StepState::Done)
                | (StepState::NeedsPerson | StepState::Failed, StepState::Pending)
        )
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl StepKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::MergeAndPush => "merge-and-push",
            StepKind::Binaries => "binaries",
            StepKind::PublishAdvisory => "publish-advisory",
            StepKind::PublishCve => "publish-cve",
            StepKind::Announce => "announce",
            StepKind::CloseOut => "close-out",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        [
            StepKind::Preflight,
            StepKind::MergeAndPush,
            StepKind::Binaries,
            StepKind::PublishAdvisory,
            StepKind::PublishCve,
            StepKind::Announce,
            StepKind::CloseOut,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// Whether a step of kind `kind` may start given the states of the plan's steps (kind and
/// state each): every step of a kind it waits for ([`StepKind::after`]) is done or skipped.
pub fn ready(kind: StepKind, steps: &[(StepKind, StepState)]) -> bool {
    let before = kind.after();
    steps.iter().filter(|(k, _)| before.contains(k)).all(|(_, s)| s.lets_others_go())
}

/// What the "never early" rule says about starting a step now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRule {
    /// It may start.
    Go,
    /// Not yet: it may start at this instant.
    Wait(Timestamp),
    /// The instant passed longer ago than the grace while nothing ran (Embargo was down):
    /// a person decides.
    AskPerson {
        /// How late it is.
        late: SignedDuration,
    },
}

/// Whether a step may start at `now` (trusted time, read in the transaction that claims the
/// step). A step with a public effect never starts before the instant, except in emergency
/// mode; the plan's first public step starts late only within `grace` (after that, a person
/// decides); once public steps ran, the rest follow whatever the time.
pub fn may_start(
    kind: StepKind,
    instant: Timestamp,
    now: Timestamp,
    emergency: bool,
    public_started: bool,
    grace: SignedDuration,
) -> StartRule {
    if !kind.is_public() || emergency || public_started {
        return StartRule::Go;
    }
    if now < instant {
        return StartRule::Wait(instant);
    }
    let late = now.duration_since(instant);
    if late > grace { StartRule::AskPerson { late } } else { StartRule::Go }
}

/// The default grace after a missed instant.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_mins(15);

/// The hash that binds an approval to the content: every published item, sorted by name so
/// that the order of editing does not matter, each length-prefixed so that no two item
/// lists share a serialisation. `digest` is the caller's hash (SHA-256 in the application).
pub fn content_hash(items: &[(&str, &[u8])], digest: impl Fn(&[u8]) -> String) -> String {
    let mut sorted: Vec<&(&str, &[u8])> = items.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut buffer = Vec::new();
    for (name, content) in sorted {
        buffer.extend_from_slice(&(name.len() as u64).to_be_bytes());
        buffer.extend_from_slice(name.as_bytes());
        buffer.extend_from_slice(&(content.len() as u64).to_be_bytes());
        buffer.extend_from_slice(content);
    }
    digest(&buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn approval<'a>(planner: &'a str, approver: &'a str, seen: &'a str, now: &'a str) -> Approval<'a> {
        Approval { planner, approver, approved_hash: seen, current_hash: now, complete: true }
    }

    #[test]
    fn arming_takes_a_second_person_and_the_content_they_saw() {
        use PlanState::*;
        assert_eq!(Draft.apply(PlanStep::Approve(approval("a", "b", "h1", "h1"))), Ok(Armed));
        assert_eq!(Draft.apply(PlanStep::Approve(approval("a", "a", "h1", "h1"))), Err(PlanError::SamePerson));
        assert_eq!(Draft.apply(PlanStep::Approve(approval("a", "b", "h1", "h2"))), Err(PlanError::ContentChanged));
        let incomplete = Approval { complete: false, ..approval("a", "b", "h", "h") };
        assert_eq!(Draft.apply(PlanStep::Approve(incomplete)), Err(PlanError::Incomplete));
        assert_eq!(Armed.apply(PlanStep::Change), Ok(Draft), "a change disarms");
        assert!(Running.apply(PlanStep::Change).is_err(), "nothing changes once running");
        assert_eq!(Armed.apply(PlanStep::Start), Ok(Running));
        assert!(Draft.apply(PlanStep::Start).is_err(), "an unarmed plan never runs");
        assert_eq!(Running.apply(PlanStep::Stop), Ok(Stopped));
        assert_eq!(Stopped.apply(PlanStep::Resume), Ok(Running));
        assert_eq!(Running.apply(PlanStep::Finish), Ok(Done));
        assert!(Running.apply(PlanStep::Cancel).is_err(), "a running plan stops for a person instead");
        assert_eq!(Done.apply(PlanStep::Start).unwrap_err().to_string(), "a plan that is done cannot start");
        for s in PlanState::ALL {
            assert_eq!(PlanState::parse(s.code()), Some(s));
        }
    }

    #[test]
    fn nothing_public_starts_a_millisecond_early() {
        let instant = t("2026-12-15T16:00:00Z");
        let grace = DEFAULT_GRACE;
        let early = t("2026-12-15T15:59:59.999Z");
        assert_eq!(may_start(StepKind::MergeAndPush, instant, early, false, false, grace), StartRule::Wait(instant));
        assert_eq!(may_start(StepKind::Preflight, instant, early, false, false, grace), StartRule::Go);
        assert_eq!(may_start(StepKind::MergeAndPush, instant, instant, false, false, grace), StartRule::Go);
        assert_eq!(may_start(StepKind::MergeAndPush, instant, early, true, false, grace), StartRule::Go, "emergency");
        // Down over the instant: within the grace it runs, later a person decides.
        assert_eq!(
            may_start(StepKind::MergeAndPush, instant, t("2026-12-15T16:15:00Z"), false, false, grace),
            StartRule::Go
        );
        assert_eq!(
            may_start(StepKind::MergeAndPush, instant, t("2026-12-15T16:15:00.001Z"), false, false, grace),
            StartRule::AskPerson { late: SignedDuration::from_millis(15 * 60_000 + 1) }
        );
        // Once public steps ran, the rest follow (the fix is public: the advisory must come).
        assert_eq!(
            may_start(StepKind::PublishAdvisory, instant, t("2026-12-15T18:00:00Z"), false, true, grace),
            StartRule::Go
        );
    }

    #[test]
    fn announcements_wait_for_the_fix_the_binaries_and_the_advisory() {
        let before = StepKind::Announce.after();
        for needed in [StepKind::MergeAndPush, StepKind::Binaries, StepKind::PublishAdvisory, StepKind::PublishCve] {
            assert!(before.contains(&needed), "{needed:?}");
        }
        assert!(StepKind::PublishAdvisory.after().contains(&StepKind::MergeAndPush));
        // The order of kinds respects the dependencies.
        for kind in [
            StepKind::Preflight,
            StepKind::MergeAndPush,
            StepKind::Binaries,
            StepKind::PublishAdvisory,
            StepKind::PublishCve,
            StepKind::Announce,
            StepKind::CloseOut,
        ] {
            assert!(kind.after().iter().all(|k| *k < kind), "{kind:?}");
        }
    }

    #[test]
    fn a_step_waits_for_every_step_of_the_kinds_before_it() {
        use StepKind::*;
        use StepState as S;
        let steps = [(Preflight, S::Done), (MergeAndPush, S::Done), (Binaries, S::Running), (PublishAdvisory, S::Done)];
        assert!(!ready(Announce, &steps), "the binaries are not verified yet");
        assert!(ready(PublishAdvisory, &steps));
        let steps =
            [(MergeAndPush, S::Skipped), (Binaries, S::Done), (PublishAdvisory, S::Done), (Announce, S::NeedsPerson)];
        assert!(ready(Announce, &steps));
        assert!(!ready(CloseOut, &steps), "a channel waits for a person");
        assert!(S::NeedsPerson.person_may_move_to(S::Done));
        assert!(S::Failed.person_may_move_to(S::Pending));
        assert!(!S::Done.person_may_move_to(S::Pending), "a done effect is never redone");
        assert!(!S::Running.person_may_move_to(S::Done));
        for s in StepState::ALL {
            assert_eq!(StepState::parse(s.code()), Some(s));
        }
        for k in [Preflight, MergeAndPush, Binaries, PublishAdvisory, PublishCve, Announce, CloseOut] {
            assert_eq!(StepKind::parse(k.code()), Some(k));
        }
    }

    #[test]
    fn the_content_hash_ignores_order_and_sees_every_byte() {
        let digest = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let a = content_hash(&[("slack", b"hello"), ("blog", b"post")], digest);
        let b = content_hash(&[("blog", b"post"), ("slack", b"hello")], digest);
        assert_eq!(a, b);
        assert_ne!(a, content_hash(&[("slack", b"hellO"), ("blog", b"post")], digest));
        // Moving bytes between names changes it (length prefixes).
        assert_ne!(content_hash(&[("ab", b"c")], digest), content_hash(&[("a", b"bc")], digest));
    }
}
