//! Signed checkpoints of the audit chain (ADR 4).
//!
//! The hash chain shows any partial edit, but someone who can write the database can cut
//! the tail and set the head to match, and the chain is intact again. A checkpoint is the
//! head (sequence number, hash, time) signed with the Ed25519 key in
//! `<data_dir>/audit-checkpoint.key` (`embargo_crypto::checkpoint`), which is not in the
//! database. Checkpoints are written one JSON object a line to
//! `<data_dir>/audit-checkpoints.jsonl` (append-only) and to the log (target
//! `embargo::audit_checkpoint`), for an operator to ship elsewhere. `verify_against` then
//! detects a chain that no longer holds a signed entry: truncated, or rewritten after it.
//!
//! `serve` writes one at start and every [`INTERVAL`] while the chain moved; `embargo audit
//! checkpoint` writes one on demand. Each checkpoint is itself an audit entry
//! (`audit.checkpoint`), included in the head it signs.

use std::io::Write;
use std::time::Duration;

use embargo_crypto::checkpoint::{self as signing, CheckpointKey};
use embargo_domain::Actor;
use embargo_domain::audit::ChainError;
use embargo_store::audit as store_audit;
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// The checkpoint file, in the data directory.
pub const FILE: &str = "audit-checkpoints.jsonl";

/// How often `serve` signs a checkpoint while the chain moves.
pub const INTERVAL: Duration = Duration::from_secs(10 * 60);

/// A signed checkpoint, as exported (one JSON object a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last entry's sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// When it was signed (Unix milliseconds; signed).
    pub at_ms: i64,
    /// The same time, RFC 3339 (for people; not signed).
    pub at: String,
    /// The public key that signed it (hex).
    pub key: String,
    /// The Ed25519 signature (hex) of `embargo_crypto::checkpoint::checkpoint_message`.
    pub signature: String,
}

fn load_key(app: &App) -> Result<CheckpointKey, AppError> {
    let (key, created) =
        CheckpointKey::load_or_create(&app.config.data_dir).map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    if created {
        tracing::warn!(
            path = %CheckpointKey::path(&app.config.data_dir).display(),
            public_key = %key.public_hex(),
            "created the audit checkpoint key; keep a copy of its public key (audit-checkpoint.pub) and the \
             checkpoints outside this machine"
        );
    }
    Ok(key)
}

fn append_line(app: &App, line: &str) -> Result<(), AppError> {
    let path = app.config.data_dir.join(FILE);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{}: {e}", path.display())))?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{}: {e}", path.display())))
}

/// Signs a checkpoint of the chain's head now (recording it as an audit entry first, so
/// that the checkpoint covers its own record), appends it to the checkpoint file and logs
/// it. Those who may read the audit trail may do this.
pub async fn checkpoint(app: &App, actor: &Actor) -> Result<Checkpoint, AppError> {
    let key = load_key(app)?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ReadAudit).await?;
    audit::record(&mut tx, app, actor, "audit.checkpoint", "audit", &format!("key={}", &key.public_hex()[..16]))
        .await?;
    let (seq, hash) = store_audit::head(&mut tx)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the audit head row is missing")))?;
    tx.commit().await?;
    let at = app.now();
    let at_ms = at.as_millisecond();
    let signature = key.sign(seq, &hash, at_ms);
    let checkpoint = Checkpoint { seq, hash, at_ms, at: at.to_string(), key: key.public_hex(), signature };
    let line = serde_json::to_string(&checkpoint).map_err(|e| AppError::Internal(e.into()))?;
    append_line(app, &line)?;
    tracing::info!(target: "embargo::audit_checkpoint", checkpoint = %line, "audit checkpoint signed");
    Ok(checkpoint)
}

/// Signs a checkpoint at once and then every `interval` while the chain moved, until
/// `stop` turns true (run by `serve`). Failures are logged and retried at the next tick.
pub async fn run_periodic(app: App, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let actor = Actor::System("audit");
    let mut last: Option<i64> = None;
    loop {
        let head = async {
            let mut tx = app.store.snapshot().await?;
            let head = store_audit::head(&mut tx).await?;
            tx.rollback().await?;
            Ok::<_, AppError>(head)
        }
        .await;
        match head {
            Ok(Some((seq, _))) if last == Some(seq) => {}
            Ok(_) => match checkpoint(&app, &actor).await {
                Ok(done) => last = Some(done.seq),
                Err(err) => tracing::warn!(error = %err, "cannot sign an audit checkpoint"),
            },
            Err(err) => tracing::warn!(error = %err, "cannot read the audit head for a checkpoint"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The outcome of checking the chain against exported checkpoints.
#[derive(Debug)]
pub enum CheckpointCheck {
    /// Every checkpoint's entry is in the chain with the signed hash.
    Consistent {
        /// Checkpoints checked.
        checked: usize,
        /// The latest checkpoint's sequence number.
        latest: i64,
    },
    /// A checkpoint line is not a valid checkpoint signed by the trusted key.
    BadCheckpoint {
        /// Its line number in the file.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The chain disagrees with a checkpoint.
    Broken(ChainError),
}

/// The public key of the data directory's checkpoint key (hex), without creating one.
pub fn local_public_key(app: &App) -> Result<String, AppError> {
    let path = CheckpointKey::path(&app.config.data_dir);
    if !path.exists() {
        return Err(AppError::Invalid(format!(
            "{} does not exist: give the checkpoints' public key with --checkpoint-key",
            path.display()
        )));
    }
    Ok(load_key(app)?.public_hex())
}

/// Checks the chain against checkpoints exported earlier (`text`: the lines of a checkpoint
/// file), each of which must be signed by `trusted_key` (hex): the entry of every checkpoint
/// must still be in the chain with the hash that was signed. With an intact chain (see
/// `audit::verify`), this proves every entry up to the latest checkpoint is as it was.
pub async fn verify_against(
    app: &App,
    actor: &Actor,
    text: &str,
    trusted_key: &str,
) -> Result<CheckpointCheck, AppError> {
    let trusted_key = trusted_key.trim().to_lowercase();
    let mut checkpoints = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line_no = index + 1;
        let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(line) else {
            return Ok(CheckpointCheck::BadCheckpoint { line: line_no, reason: "not a checkpoint".into() });
        };
        if checkpoint.key.to_lowercase() != trusted_key {
            return Ok(CheckpointCheck::BadCheckpoint {
                line: line_no,
                reason: format!("signed by key {}, not the trusted key {trusted_key}", checkpoint.key),
            });
        }
        if !signing::verify_checkpoint(
            &trusted_key,
            checkpoint.seq,
            &checkpoint.hash,
            checkpoint.at_ms,
            &checkpoint.signature,
        ) {
            return Ok(CheckpointCheck::BadCheckpoint {
                line: line_no,
                reason: format!("the signature of the checkpoint of entry {} does not verify", checkpoint.seq),
            });
        }
        checkpoints.push(checkpoint);
    }
    let Some(latest) = checkpoints.iter().map(|c| c.seq).max() else {
        return Err(AppError::Invalid("the checkpoint file holds no checkpoints".into()));
    };
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ReadAudit).await?;
    let head = store_audit::head(&mut tx).await?;
    let Some((head_seq, _)) = head else {
        let entries = store_audit::count(&mut tx).await?;
        tx.rollback().await?;
        return Ok(CheckpointCheck::Broken(ChainError::HeadMissing { entries }));
    };
    checkpoints.sort_by_key(|c| c.seq);
    for checkpoint in &checkpoints {
        let problem = match store_audit::hash_at(&mut tx, checkpoint.seq).await? {
            Some(hash) if hash == checkpoint.hash => continue,
            Some(_) => "its hash differs from the signed checkpoint".to_owned(),
            None if head_seq < checkpoint.seq => {
                format!("missing: the chain now ends at entry {head_seq}, before this signed entry")
            }
            None => "missing".to_owned(),
        };
        tx.rollback().await?;
        return Ok(CheckpointCheck::Broken(ChainError::Checkpoint {
            seq: checkpoint.seq,
            problem,
            signed_at: checkpoint.at.clone(),
        }));
    }
    tx.rollback().await?;
    Ok(CheckpointCheck::Consistent { checked: checkpoints.len(), latest })
}
