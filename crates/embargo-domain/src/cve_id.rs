//! A CVE ID's life at CVE Services, as a pure state machine.
//!
//! ```text
//!   RESERVED ──publish (create)──► PUBLISHED ──publish (update)──► PUBLISHED
//!      │                              │
//!      └──reject (create)──► REJECTED ◄┘ reject (update)
//!                              └──► REJECTED: reject (update: a new reason)
//! ```
//!
//! The codes are CVE Services' own (`RESERVED`, `PUBLISHED`, `REJECTED`). Publishing a
//! reserved ID creates its record; a later publication or rejection updates it. A rejected
//! ID is neither assigned nor published again here (CVE Services would take a record back,
//! but that is a person's decision made there, and the publication job treats a rejected ID
//! as a permanent failure).

use std::fmt;

/// Where a CVE ID is at CVE Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CveIdState {
    /// Reserved by us; no record yet.
    Reserved,
    /// Its record is public.
    Published,
    /// Rejected (its record says why); no advisory may take it.
    Rejected,
}

impl CveIdState {
    /// Every code, as CVE Services spells them.
    pub const CODES: [&'static str; 3] = ["RESERVED", "PUBLISHED", "REJECTED"];

    /// Every state, in the order of [`Self::CODES`].
    pub const ALL: [CveIdState; 3] = [CveIdState::Reserved, CveIdState::Published, CveIdState::Rejected];

    /// The stable code (CVE Services' spelling).
    pub fn code(self) -> &'static str {
        match self {
            CveIdState::Reserved => "RESERVED",
            CveIdState::Published => "PUBLISHED",
            CveIdState::Rejected => "REJECTED",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for CveIdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// What we do with a CVE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CveIdStep {
    /// Put it into an advisory's record (the state does not change).
    Assign,
    /// Publish its record (create, or update a published one).
    Publish,
    /// Reject it.
    Reject,
}

impl CveIdStep {
    /// Every step.
    pub const ALL: [CveIdStep; 3] = [CveIdStep::Assign, CveIdStep::Publish, CveIdStep::Reject];

    fn describe(self) -> &'static str {
        match self {
            CveIdStep::Assign => "assigned",
            CveIdStep::Publish => "published",
            CveIdStep::Reject => "rejected",
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} CVE ID cannot be {}", step.describe())]
pub struct CveIdError {
    /// The current state.
    pub from: CveIdState,
    /// The refused step.
    pub step: CveIdStep,
}

/// Whether this is CVE Services' first write of a record or a later one (they are
/// different operations there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The first: create (publish a record, reject a reserved ID).
    Create,
    /// A later one: update (a published record, or reject a published ID).
    Update,
}

impl CveIdState {
    /// Checks a step: the state it leads to and which kind of write it is at CVE Services.
    pub fn check(self, step: CveIdStep) -> Result<(CveIdState, Write), CveIdError> {
        use CveIdState::*;
        use CveIdStep::*;
        match (self, step) {
            (Rejected, Assign) => Err(CveIdError { from: self, step }),
            (state, Assign) => Ok((state, Write::Update)),
            (Reserved, Publish) => Ok((Published, Write::Create)),
            (Rejected, Publish) => Err(CveIdError { from: self, step }),
            (Published, Publish) => Ok((Published, Write::Update)),
            (Reserved, Reject) => Ok((Rejected, Write::Create)),
            (Published | Rejected, Reject) => Ok((Rejected, Write::Update)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CveIdState::*;
    use CveIdStep::*;

    #[test]
    fn every_edge_is_allowed_or_refused_as_drawn() {
        let table = [
            (Reserved, Assign, Some((Reserved, Write::Update))),
            (Reserved, Publish, Some((Published, Write::Create))),
            (Reserved, Reject, Some((Rejected, Write::Create))),
            (Published, Assign, Some((Published, Write::Update))),
            (Published, Publish, Some((Published, Write::Update))),
            (Published, Reject, Some((Rejected, Write::Update))),
            (Rejected, Assign, None),
            (Rejected, Publish, None),
            (Rejected, Reject, Some((Rejected, Write::Update))),
        ];
        assert_eq!(table.len(), CveIdState::ALL.len() * CveIdStep::ALL.len());
        for (from, step, expected) in table {
            match expected {
                Some(to) => assert_eq!(from.check(step), Ok(to), "{from:?} {step:?}"),
                None => assert_eq!(from.check(step), Err(CveIdError { from, step })),
            }
        }
        assert_eq!(Rejected.check(Assign).unwrap_err().to_string(), "a REJECTED CVE ID cannot be assigned");
    }

    #[test]
    fn codes_round_trip() {
        for (state, code) in CveIdState::ALL.into_iter().zip(CveIdState::CODES) {
            assert_eq!(CveIdState::parse(code), Some(state));
            assert_eq!(state.to_string(), code);
        }
        assert_eq!(CveIdState::parse("reserved"), None);
    }
}
