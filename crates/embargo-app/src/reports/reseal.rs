//! The `attachment.reseal` job: attachments sealed before migration 0022 are bound to their
//! report only; this re-seals them bound to their row (ADR 31), in the background after an
//! upgrade.

use embargo_store::Tx;
use embargo_store::attachments;
use serde::{Deserialize, Serialize};

use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError};

/// The `attachment.reseal` job: re-seals at most [`RESEAL_ROWS`] attachments (and, past the
/// first, [`RESEAL_BYTES`] of content) sealed by version 1, and enqueues the next batch in
/// the same transaction as its writes. A worker enqueues the first when it starts if any
/// attachment is still of version 1 ([`Job::on_worker_start`]); until then such an
/// attachment opens as before. One whose values do not open where they are is set aside
/// (never re-sealed, still refused on reading) and counted in
/// `embargo_attachments_unreadable_total`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttachmentReseal {
    /// The first attachment still to re-seal when the job was enqueued: one job per batch,
    /// whoever enqueues it.
    first: i64,
}

/// Attachments re-sealed per `attachment.reseal` job, at most.
pub const RESEAL_ROWS: i64 = 64;
/// Bytes of attachment content re-sealed per job, at most (past the first attachment).
pub const RESEAL_BYTES: i64 = 64 << 20;

impl AttachmentReseal {
    async fn next(tx: &mut Tx) -> Result<Option<Self>, AppError> {
        Ok(attachments::first_stale(tx).await?.map(|first| Self { first }))
    }
}

impl Job for AttachmentReseal {
    const KIND: &'static str = "attachment.reseal";

    fn key(&self) -> Option<String> {
        Some(format!("attachment.reseal:v{}:{}", attachments::SEAL_VERSION, self.first))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut tx = app.store.begin().await?;
        let outcome = attachments::reseal_stale(&mut tx, RESEAL_ROWS, RESEAL_BYTES).await?;
        if let Some(next) = Self::next(&mut tx).await? {
            jobs::enqueue(&mut tx, app, &next).await?;
        }
        for id in &outcome.unreadable {
            tracing::warn!(
                kind = Self::KIND,
                attachment = id,
                "an attachment's sealed values do not open where they are (moved from another row or altered): \
                 left as it is, and refused on reading"
            );
        }
        metrics::counter!("embargo_attachments_resealed_total").increment(outcome.resealed as u64);
        metrics::counter!("embargo_attachments_unreadable_total").increment(outcome.unreadable.len() as u64);
        claim.complete(tx, app.now()).await
    }

    async fn on_worker_start(app: &App) -> Result<(), AppError> {
        // Looked up in a snapshot: the writer is taken only when there is something to do.
        let mut snapshot = app.store.snapshot().await?;
        let first = Self::next(&mut snapshot).await?;
        snapshot.rollback().await?;
        jobs::start_batches(app, first, "attachments sealed by an older version: re-sealing them to their row").await
    }
}
