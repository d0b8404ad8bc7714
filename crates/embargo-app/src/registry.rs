//! The one list of the job kinds this version runs. Each kind is a type implementing
//! [`Job`](crate::jobs::Job) beside its domain module; adding a kind is that file and one
//! line here. This module sits at the top of the crate (it names every domain), so that
//! the job runner in [`crate::jobs`] knows none of them.

use crate::intents::IntentJob;
use crate::jobs::{Registry, Worker};
use crate::{App, cve, diagnostics, disclosure, fixes, partners, postmaster, reports, sla_sweep};

/// Every job kind of this version.
pub fn registry() -> Registry {
    Registry::default()
        .with::<diagnostics::Probe>()
        .with::<reports::IndexJob>()
        .with::<reports::SimilarityReindex>()
        .with::<reports::AttachmentReseal>()
        .with::<reports::Acknowledgement>()
        .with::<reports::NotSecurity>()
        .with::<reports::ReporterMessage>()
        .with::<sla_sweep::SlaSweep>()
        .with::<sla_sweep::TeamAlert>()
        .with::<IntentJob<cve::PublishRecord>>()
        .with::<IntentJob<cve::ReserveIds>>()
        .with::<IntentJob<cve::RejectId>>()
        .with::<postmaster::Forward>()
        .with::<fixes::CiJob>()
        .with::<IntentJob<fixes::ExternalCi>>()
        .with::<fixes::Invitation>()
        .with::<partners::Invitation>()
        .with::<partners::NoticeMail>()
        .with::<partners::NoticeReminder>()
        .with::<partners::LeakAlert>()
        .with::<disclosure::RunPlan>()
        .with::<disclosure::PreflightAlert>()
}

impl Worker {
    /// A worker running every job kind of this version (see [`registry`]).
    pub fn new(app: App) -> Self {
        Self::with_registry(app, registry())
    }
}
