//! Diagnostics: the probe job, with which `embargo jobs probe` checks that workers run and
//! that no job runs twice (the two-worker kill test uses it).

use std::time::Duration;

use embargo_domain::Actor;
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError, audit};

/// The `diagnostic.probe` job: holds for a while, then records one row.
#[derive(Debug, Serialize, Deserialize)]
pub struct Probe {
    hold_ms: u64,
}

impl Job for Probe {
    const KIND: &'static str = "diagnostic.probe";

    fn key(&self) -> Option<String> {
        None
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_millis(self.hold_ms)).await;
        let now = app.now();
        let mut tx = app.store.begin().await?;
        embargo_store::jobs::record_probe(&mut tx, claim.stored(), now).await?;
        claim.complete(tx, now).await
    }
}

/// Enqueues `count` probe jobs that each hold for `hold_ms`; returns their ids.
pub async fn enqueue_probes(app: &App, actor: &Actor, count: u32, hold_ms: u64) -> Result<Vec<i64>, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageJobs).await?;
    let mut ids = Vec::new();
    for _ in 0..count {
        if let Some(id) = jobs::enqueue(&mut tx, app, &Probe { hold_ms }).await? {
            ids.push(id);
        }
    }
    audit::record(&mut tx, app, actor, "jobs.probe", "jobs", &format!("count={count} hold_ms={hold_ms}")).await?;
    tx.commit().await?;
    Ok(ids)
}
