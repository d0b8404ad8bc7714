//! An advisory's review as a pure state machine, with the two-person rule.
//!
//! ```text
//!            edit                submit            approve             publish
//!   draft ◄──────── (any) draft ─────────► in-review ───────► approved ─────────► published
//!     ▲                                       │                  │                   │
//!     └───────────── request changes ─────────┴──────────────────┘      edit (a new  │
//!     └──────────────────────────────────────────────────────────────── revision) ───┘
//!                                                                   withdraw        │
//!                                                         withdrawn ◄────────────────┘
//! ```
//!
//! Editing returns anything but a withdrawn advisory to draft: its outputs changed, so it is
//! reviewed again. The machine remembers everyone who edited the revision under review (since
//! the last publication) and who asked for review; the approver must be none of them (the
//! second pair of eyes). Publishing starts the next revision with nobody's edits. Withdrawing
//! takes a published advisory (with no edit pending) to `withdrawn`, which is final: the
//! withdrawal is itself a published revision, and nothing follows it.

use std::collections::BTreeSet;
use std::fmt;

use crate::actor::Actor;

/// Where an advisory is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdvisoryState {
    /// Being written; private.
    Draft,
    /// Every output validated; waiting for a second person.
    InReview,
    /// A second person approved this revision; it may be published.
    Approved,
    /// On the public pages and feeds (its last published revision).
    Published,
    /// Withdrawn from publication. Final.
    Withdrawn,
}

impl AdvisoryState {
    /// Every state code, in review order (the values the database's check admits).
    pub const CODES: [&'static str; 5] = ["draft", "in-review", "approved", "published", "withdrawn"];

    /// Every state, in the order of [`Self::CODES`].
    pub const ALL: [AdvisoryState; 5] = [
        AdvisoryState::Draft,
        AdvisoryState::InReview,
        AdvisoryState::Approved,
        AdvisoryState::Published,
        AdvisoryState::Withdrawn,
    ];

    /// The stable text code.
    pub fn code(self) -> &'static str {
        match self {
            AdvisoryState::Draft => "draft",
            AdvisoryState::InReview => "in-review",
            AdvisoryState::Approved => "approved",
            AdvisoryState::Published => "published",
            AdvisoryState::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored or typed code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for AdvisoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// What someone does to an advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdvisoryStep {
    /// Change the record (including assigning a CVE ID, or creating it).
    Edit,
    /// Ask for review.
    SubmitForReview,
    /// Approve the revision in review.
    Approve,
    /// Send it back to draft.
    RequestChanges,
    /// Publish the approved revision.
    Publish,
    /// Withdraw a published advisory (a final revision that says so).
    Withdraw,
}

impl AdvisoryStep {
    /// Every step.
    pub const ALL: [AdvisoryStep; 6] = [
        AdvisoryStep::Edit,
        AdvisoryStep::SubmitForReview,
        AdvisoryStep::Approve,
        AdvisoryStep::RequestChanges,
        AdvisoryStep::Publish,
        AdvisoryStep::Withdraw,
    ];

    /// The state the step leads to from `from`, if the machine has that edge.
    pub fn target(self, from: AdvisoryState) -> Option<AdvisoryState> {
        use AdvisoryState::*;
        use AdvisoryStep::*;
        match (self, from) {
            (_, Withdrawn) => None,
            (Edit, _) => Some(Draft),
            (SubmitForReview, Draft) => Some(InReview),
            (Approve, InReview) => Some(Approved),
            (RequestChanges, InReview | Approved) => Some(Draft),
            (Publish, Approved) => Some(Published),
            (Withdraw, Published) => Some(Withdrawn),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            AdvisoryStep::Edit => "edited",
            AdvisoryStep::SubmitForReview => "submitted for review",
            AdvisoryStep::Approve => "approved",
            AdvisoryStep::RequestChanges => "sent back to draft",
            AdvisoryStep::Publish => "published",
            AdvisoryStep::Withdraw => "withdrawn",
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvisoryError {
    /// The machine has no such edge.
    #[error("an advisory that is {from} cannot be {}", step.describe())]
    NotAllowed {
        /// Current state.
        from: AdvisoryState,
        /// The refused step.
        step: AdvisoryStep,
    },
    /// The approver edited the revision in review.
    #[error("a second person must approve: you edited this revision")]
    ApproverEdited,
    /// The approver asked for the review.
    #[error("a second person must approve: you asked for this review")]
    ApproverSubmitted,
}

/// An advisory's review: its state, who edited the revision under review, who asked for
/// review. People are compared by [`Actor::identity`], so a change of role does not make
/// someone a second person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryReview {
    state: AdvisoryState,
    editors: BTreeSet<String>,
    submitted_by: Option<String>,
}

impl AdvisoryReview {
    /// A new advisory, a draft written by `author`.
    pub fn new(author: &Actor) -> Self {
        Self { state: AdvisoryState::Draft, editors: BTreeSet::from([author.identity()]), submitted_by: None }
    }

    /// Rebuilds the review from stored state: the editors of the current revision (as
    /// [`Actor::identity`] texts) and who asked for review (an actor's text or identity).
    pub fn restore(
        state: AdvisoryState,
        editors: impl IntoIterator<Item = String>,
        submitted_by: Option<&str>,
    ) -> Self {
        Self {
            state,
            editors: editors.into_iter().collect(),
            submitted_by: submitted_by.map(crate::actor::identity_of),
        }
    }

    /// The current state.
    pub fn state(&self) -> AdvisoryState {
        self.state
    }

    /// Who edited the revision under review, as [`Actor::identity`] texts.
    pub fn editors(&self) -> impl Iterator<Item = &str> {
        self.editors.iter().map(String::as_str)
    }

    /// Checks a step without taking it; returns the state it leads to.
    pub fn check(&self, step: AdvisoryStep, actor: &Actor) -> Result<AdvisoryState, AdvisoryError> {
        let to = step.target(self.state).ok_or(AdvisoryError::NotAllowed { from: self.state, step })?;
        if step == AdvisoryStep::Approve {
            let me = actor.identity();
            if self.editors.contains(&me) {
                return Err(AdvisoryError::ApproverEdited);
            }
            if self.submitted_by.as_deref() == Some(me.as_str()) {
                return Err(AdvisoryError::ApproverSubmitted);
            }
        }
        Ok(to)
    }

    /// Takes a step. On error nothing changes.
    pub fn apply(&mut self, step: AdvisoryStep, actor: &Actor) -> Result<AdvisoryState, AdvisoryError> {
        let to = self.check(step, actor)?;
        match step {
            AdvisoryStep::Edit => {
                if self.state == AdvisoryState::Published {
                    // A new revision: the published one was reviewed; nobody has edited this.
                    self.editors.clear();
                }
                self.editors.insert(actor.identity());
                self.submitted_by = None;
            }
            AdvisoryStep::SubmitForReview => self.submitted_by = Some(actor.identity()),
            AdvisoryStep::RequestChanges => self.submitted_by = None,
            AdvisoryStep::Approve => {}
            AdvisoryStep::Publish | AdvisoryStep::Withdraw => self.editors.clear(),
        }
        self.state = to;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Role;
    use crate::ids::UserId;
    use AdvisoryState::*;
    use AdvisoryStep::*;

    fn user(id: i64, role: Role) -> Actor {
        Actor::User { id: UserId(id), role }
    }

    /// Every (state, step) pair: the allowed edges and nothing else.
    #[test]
    fn every_edge_is_allowed_or_refused_as_drawn() {
        let expected = |from: AdvisoryState, step: AdvisoryStep| -> Option<AdvisoryState> {
            match (from, step) {
                (Draft | InReview | Approved | Published, Edit) => Some(Draft),
                (Draft, SubmitForReview) => Some(InReview),
                (InReview, Approve) => Some(Approved),
                (InReview | Approved, RequestChanges) => Some(Draft),
                (Approved, Publish) => Some(Published),
                (Published, Withdraw) => Some(Withdrawn),
                _ => None,
            }
        };
        let reviewer = user(99, Role::Admin);
        let mut allowed = 0;
        for from in AdvisoryState::ALL {
            for step in AdvisoryStep::ALL {
                let mut review = AdvisoryReview::restore(from, ["user:1".to_owned()], Some("user:2:responder"));
                let before = review.clone();
                match (expected(from, step), review.apply(step, &reviewer)) {
                    (Some(to), Ok(got)) => {
                        assert_eq!(got, to, "{from:?} {step:?}");
                        assert_eq!(review.state(), to);
                        allowed += 1;
                    }
                    (None, Err(err)) => {
                        assert_eq!(err, AdvisoryError::NotAllowed { from, step });
                        assert_eq!(review, before, "a refused step changes nothing");
                    }
                    (want, got) => panic!("{from:?} {step:?}: expected {want:?}, got {got:?}"),
                }
            }
        }
        assert_eq!(allowed, 10);
    }

    #[test]
    fn refusals_say_why() {
        let review = AdvisoryReview::restore(Published, Vec::<String>::new(), None);
        assert_eq!(
            review.check(Approve, &Actor::System("t")).unwrap_err().to_string(),
            "an advisory that is published cannot be approved"
        );
        let review = AdvisoryReview::restore(Draft, Vec::<String>::new(), None);
        assert_eq!(
            review.check(Publish, &Actor::System("t")).unwrap_err().to_string(),
            "an advisory that is draft cannot be published"
        );
        let review = AdvisoryReview::restore(Withdrawn, Vec::<String>::new(), None);
        assert_eq!(
            review.check(Edit, &Actor::System("t")).unwrap_err().to_string(),
            "an advisory that is withdrawn cannot be edited"
        );
    }

    /// Issue 12 item 9: a responder edits, an admin submits, and the responder may not approve.
    #[test]
    fn nobody_who_edited_the_revision_approves_it() {
        let responder = user(1, Role::Responder);
        let admin = user(2, Role::Admin);
        let other = user(3, Role::Responder);
        let mut review = AdvisoryReview::new(&admin);
        review.apply(Edit, &responder).unwrap();
        review.apply(SubmitForReview, &admin).unwrap();
        assert_eq!(review.check(Approve, &responder), Err(AdvisoryError::ApproverEdited));
        assert_eq!(review.check(Approve, &admin), Err(AdvisoryError::ApproverEdited), "the author edited it too");
        // The same person with another role is the same person.
        assert_eq!(review.check(Approve, &user(1, Role::Admin)), Err(AdvisoryError::ApproverEdited));
        review.apply(Approve, &other).unwrap();
        review.apply(Publish, &admin).unwrap();
        assert_eq!(review.editors().count(), 0, "publication starts a new revision");
    }

    #[test]
    fn who_asked_for_review_does_not_approve_it() {
        let author = user(1, Role::Responder);
        let submitter = user(2, Role::Admin);
        let mut review = AdvisoryReview::new(&author);
        review.apply(SubmitForReview, &submitter).unwrap();
        assert_eq!(review.check(Approve, &submitter), Err(AdvisoryError::ApproverSubmitted));
        // Stored submitters carry the role they had; the person is what counts.
        let stored = AdvisoryReview::restore(InReview, ["user:1".to_owned()], Some("user:2:responder"));
        assert_eq!(stored.check(Approve, &submitter), Err(AdvisoryError::ApproverSubmitted));
        assert!(stored.check(Approve, &user(3, Role::Responder)).is_ok());
    }

    #[test]
    fn editing_a_published_advisory_starts_a_revision_with_only_the_new_editor() {
        let first = user(1, Role::Responder);
        let second = user(2, Role::Responder);
        let mut review = AdvisoryReview::restore(Published, Vec::<String>::new(), None);
        review.apply(Edit, &second).unwrap();
        assert_eq!(review.editors().collect::<Vec<_>>(), ["user:2"]);
        review.apply(SubmitForReview, &second).unwrap();
        assert!(review.check(Approve, &first).is_ok(), "an editor of an earlier revision may review this one");
        assert_eq!(review.check(Approve, &second), Err(AdvisoryError::ApproverEdited));
    }

    #[test]
    fn an_approver_who_then_edits_cannot_approve_again() {
        let author = user(1, Role::Responder);
        let reviewer = user(2, Role::Responder);
        let mut review = AdvisoryReview::new(&author);
        review.apply(SubmitForReview, &author).unwrap();
        review.apply(Approve, &reviewer).unwrap();
        review.apply(Edit, &reviewer).unwrap();
        review.apply(SubmitForReview, &author).unwrap();
        assert_eq!(review.check(Approve, &reviewer), Err(AdvisoryError::ApproverEdited));
    }

    #[test]
    fn codes_round_trip() {
        for (state, code) in AdvisoryState::ALL.into_iter().zip(AdvisoryState::CODES) {
            assert_eq!(state.code(), code);
            assert_eq!(AdvisoryState::parse(code), Some(state));
        }
        assert_eq!(AdvisoryState::parse("Draft"), None);
        assert_eq!(AdvisoryState::parse("in_review"), None);
    }
}
