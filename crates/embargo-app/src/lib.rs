//! Embargo's use cases.
//!
//! Every function here takes the [`App`] context and an [`embargo_domain::Actor`], checks
//! permission with [`authz`], does its work in one store transaction, writes an audit entry
//! in that same transaction, and commits. Modules are the product's domains.
//!
//! Architecture invariants:
//! * No HTTP here (that is `embargo-web`) and no SQL (that is `embargo-store`).
//! * Every state change and every read of report content calls `authz::require` first and
//!   `audit::record` before commit.
//! * External side effects are jobs (see [`jobs`]), enqueued in the transaction of the change
//!   that needs them.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod advisories;
pub mod assessment;
pub mod audit;
pub mod authz;
pub mod backup;
pub mod checkpoints;
pub mod config;
mod context;
pub mod cve;
pub mod diagnostics;
pub mod disclosure;
pub mod doctor;
mod error;
pub mod fixes;
pub mod intake;
pub mod intents;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod openpgp;
pub mod partners;
pub mod policy;
pub mod portal;
pub mod postmaster;
pub mod registry;
pub mod release;
pub mod reports;
pub mod sandbox;
pub mod sessions;
pub mod sla;
pub mod sla_sweep;
mod tokens;
pub mod views;

pub use context::{App, Clock, OpenError, OpenMode, Opened, SystemClock};
pub use embargo_crypto::KeySource;
pub use embargo_store::OpenFailure;
pub use error::AppError;
