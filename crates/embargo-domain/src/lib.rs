//! The pure domain model of Embargo.
//!
//! This crate is the innermost layer (see `ARCHITECTURE.md`). It holds the types that carry
//! Embargo's invariants and the rules that act on them: reference identifiers, the report
//! lifecycle state machine, actors and roles, the audit-chain hashing, CVSS vectors, CWE
//! identifiers and SSVC supplier decisions, business calendars (working days, holidays,
//! iCalendar import) and the SLA clocks built on them, and near-duplicate signatures.
//!
//! Architecture invariant: nothing here does IO, nothing is `async`, and nothing depends on
//! a database, HTTP or mail crate. Every rule is a plain function of its inputs; the current
//! time is always passed in as a [`jiff::Timestamp`], never read from the clock.
#![forbid(unsafe_code)]

pub mod access;
pub mod actor;
pub mod advisory;
pub mod audit;
pub mod calendar;
pub mod cve_id;
pub mod cvss;
pub mod cwe;
pub mod disclosure;
pub mod fix;
pub mod ids;
pub mod lifecycle;
pub mod partner;
pub mod similarity;
pub mod sla;
pub mod ssvc;

pub use access::Grant;
pub use actor::{Actor, Role};
pub use advisory::{AdvisoryError, AdvisoryReview, AdvisoryState, AdvisoryStep};
pub use calendar::{BusinessCalendar, WorkingDuration};
pub use cve_id::{CveIdError, CveIdState, CveIdStep};
pub use cwe::CweId;
pub use fix::{CiState, CiStep, FixError};
pub use ids::{ReferenceId, ReferencePrefix, ReportId, UserId};
pub use lifecycle::{CloseReason, Lifecycle, Outcome, ReportState, Target, TargetError, Transition, TransitionError};
pub use partner::{DeliveryState, EmbargoPolicy, EmbargoState, EmbargoStep, PartnerState};

/// Re-exported so that callers name one time type everywhere.
pub use jiff::Timestamp;
