//! Master key rotation (ADR 30): a new master key seals from the switch on; every sealed
//! value's data key is re-wrapped under it, in batches, while the server runs; the old key
//! is kept (in `master.key.previous`, or `EMBARGO_MASTER_KEY_PREVIOUS`) until a full pass,
//! started after a grace period, finds nothing sealed under it. Every step is idempotent,
//! so a rotation killed at any point is finished by running it again.
//!
//! Running processes take the rotated key up from the key files (`watch`, every
//! [`WATCH_INTERVAL`]). Derived keys (blind indexes, band keys) keep coming from the
//! instance's first master key, kept sealed in the database from the first rotation on.

use std::path::Path;
use std::time::Duration;

use embargo_crypto::{KEY_FILE_NAME, KeySource, Keyring, PREVIOUS_KEY_FILE_NAME};
use embargo_domain::Actor;
use embargo_store::{meta, ops};
use tokio::sync::watch as signal;

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// How often running processes look for a rotated key in the key files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// The shortest grace between the switch and the pass that may retire the old key: longer
/// than a watch interval, so that every running process seals with the new key by then.
pub const MIN_GRACE: Duration = Duration::from_secs(5);
/// When the switch to the new key happened (Unix ms), while a rotation is under way.
const SWITCHED_AT: &str = "keys.rotation.switched_at";

/// How a rotation runs.
#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// Values re-wrapped per transaction.
    pub batch: i64,
    /// How long after the switch the retiring pass may start (at least [`MIN_GRACE`]): long
    /// enough for every process that loaded the old key before the switch (a short command
    /// such as `ingest-mail` included) to have finished.
    pub grace: Duration,
    /// A rest between batches, leaving the database to the server's own work.
    pub pause: Duration,
}

impl Default for RotationOptions {
    fn default() -> Self {
        Self { batch: 500, grace: Duration::from_secs(120), pause: Duration::from_millis(5) }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationSummary {
    /// The retired key(s).
    pub old_key_ids: Vec<String>,
    /// The key now in use.
    pub new_key_id: String,
    /// Whether this run made the new key (false: it finished a rotation begun before).
    pub started: bool,
    /// Values re-wrapped by this run.
    pub rewrapped: u64,
    /// Full passes over the sealed columns.
    pub passes: u32,
    /// With keys from the environment and no older key given yet: only the derivation root was
    /// recorded; the operator now restarts every process with the new and the old key.
    pub prepared_only: bool,
    /// Whether the old key files were removed (false with keys from the environment: the
    /// operator removes `EMBARGO_MASTER_KEY_PREVIOUS`).
    pub previous_file_removed: bool,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// Where the key came from, for this process.
fn key_source() -> KeySource {
    if std::env::var_os("EMBARGO_MASTER_KEY").is_some() { KeySource::Environment } else { KeySource::File }
}

/// Rotates the master key, or finishes a rotation under way. `progress` gets a line per step.
pub async fn rotate_master(
    app: &App,
    actor: &Actor,
    options: &RotationOptions,
    mut progress: impl FnMut(&str),
) -> Result<RotationSummary, AppError> {
    let grace = options.grace.max(MIN_GRACE);
    let data_dir = app.config.data_dir.clone();
    let keys = app.store.keys();
    {
        let mut tx = app.store.begin().await?;
        authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
        tx.rollback().await?;
    }
    let mut summary = RotationSummary::default();
    // One rotation at a time per data directory (the lock goes with the process).
    let _lock = lock(&data_dir)?;
    if keys.previous_key_ids().is_empty() {
        // 1. Keep the derivation root (blind indexes stay valid), sealed under the old key,
        //    before any process uses the new key.
        let mut tx = app.store.begin().await?;
        let root = keys.derivation_root();
        meta::record_derivation_root(&mut tx, &base64_of(&root)).await?;
        tx.commit().await?;
        if key_source() == KeySource::Environment {
            progress(
                "the master key comes from EMBARGO_MASTER_KEY: the derivation root is recorded; now set \
                 EMBARGO_MASTER_KEY to a new key (32 random bytes, base64) and EMBARGO_MASTER_KEY_PREVIOUS to the \
                 old one for every process, restart them, then run `embargo keys rotate-master` again to re-wrap \
                 the data",
            );
            summary.prepared_only = true;
            summary.new_key_id = keys.key_id();
            return Ok(summary);
        }
        // 2. The old key goes to master.key.previous first, then the new key into master.key:
        //    a kill between the two leaves the old key in both, which is no rotation yet.
        let old = keys.current_base64();
        let new = Keyring::generate();
        embargo_crypto::write_private_file(&data_dir.join(PREVIOUS_KEY_FILE_NAME), &format!("{}\n", old.as_str()))
            .map_err(|e| internal(format!("{}: {e}", data_dir.join(PREVIOUS_KEY_FILE_NAME).display())))?;
        crash_point("previous-written");
        embargo_crypto::write_private_file(
            &data_dir.join(KEY_FILE_NAME),
            &format!("{}\n", new.current_base64().as_str()),
        )
        .map_err(|e| internal(format!("{}: {e}", data_dir.join(KEY_FILE_NAME).display())))?;
        summary.started = true;
        progress(&format!("new master key {} written to {}", new.key_id(), data_dir.join(KEY_FILE_NAME).display()));
    }
    // 3. This process takes the files' keys up (as every running one does within seconds).
    if key_source() == KeySource::File {
        adopt_files(app, &data_dir)?;
    }
    let new_id = keys.key_id();
    let old_ids = keys.previous_key_ids();
    summary.new_key_id = new_id.clone();
    summary.old_key_ids = old_ids.clone();
    // 4. The database records the new key, and when the switch happened (kept across runs).
    let switched_at = {
        let mut tx = app.store.begin().await?;
        meta::set_key_id(&mut tx, &new_id).await?;
        let at = match meta::get(&mut tx, SWITCHED_AT).await?.and_then(|v| v.parse::<i64>().ok()) {
            Some(at) => at,
            None => {
                let at = app.now().as_millisecond();
                meta::set(&mut tx, SWITCHED_AT, &at.to_string()).await?;
                audit::record(
                    &mut tx,
                    app,
                    actor,
                    "keys.master.switch",
                    "instance",
                    &format!("from={} to={new_id}", old_ids.join(",")),
                )
                .await?;
                at
            }
        };
        tx.commit().await?;
        at
    };
    progress(&format!("sealing with {new_id}; re-wrapping what is sealed under {}", old_ids.join(", ")));
    // 5. Passes until one that started after the grace finds nothing under an old key.
    loop {
        let pass_started = jiff::Timestamp::now().as_millisecond();
        let found = rewrap_pass(app, options, &mut summary, &mut progress).await?;
        summary.passes += 1;
        let settled = pass_started >= switched_at + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        progress(&format!("pass {}: {found} value(s) were under an old key", summary.passes));
        if found == 0 && settled {
            break;
        }
        if found == 0 {
            let wait = switched_at + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX) - pass_started;
            progress(&format!(
                "waiting {} s (the grace after the switch) before the last pass",
                wait.max(0) / 1000 + 1
            ));
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait.max(0)).unwrap_or(0) + 10)).await;
        }
    }
    // 6. Retire: nothing is sealed under the old key any more.
    if key_source() == KeySource::File {
        let path = data_dir.join(PREVIOUS_KEY_FILE_NAME);
        match std::fs::remove_file(&path) {
            Ok(()) => summary.previous_file_removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(format!("{}: {e}", path.display()))),
        }
        if let Ok(dir) = std::fs::File::open(&data_dir) {
            let _ = dir.sync_all();
        }
        adopt_files(app, &data_dir)?;
    }
    let mut tx = app.store.begin().await?;
    meta::delete(&mut tx, SWITCHED_AT).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "keys.master.rotate",
        "instance",
        &format!("retired={} current={new_id} rewrapped={}", old_ids.join(","), summary.rewrapped),
    )
    .await?;
    tx.commit().await?;
    Ok(summary)
}

/// One pass over every sealed column and the sealed instance secrets; returns how many
/// values were under an old key.
async fn rewrap_pass(
    app: &App,
    options: &RotationOptions,
    summary: &mut RotationSummary,
    progress: &mut impl FnMut(&str),
) -> Result<u64, AppError> {
    let mut found = 0;
    let columns = {
        let mut tx = app.store.snapshot().await?;
        let columns = ops::sealed_columns(&mut tx).await?;
        tx.rollback().await?;
        columns
    };
    for column in &columns {
        let mut after: Option<String> = None;
        let mut column_found = 0;
        loop {
            let mut tx = app.store.begin().await?;
            let batch = ops::rewrap_batch(&mut tx, column, after.as_deref(), options.batch.max(1)).await?;
            tx.commit().await?;
            if batch.written > 0 {
                crash_point("batch");
            }
            found += batch.found;
            column_found += batch.found;
            summary.rewrapped += batch.written;
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
            if !options.pause.is_zero() {
                tokio::time::sleep(options.pause).await;
            }
        }
        if column_found > 0 {
            progress(&format!("{}.{}: {column_found} re-wrapped", column.table, column.column));
        }
    }
    let mut tx = app.store.begin().await?;
    let (meta_found, meta_written) = ops::rewrap_meta(&mut tx).await?;
    tx.commit().await?;
    found += meta_found;
    summary.rewrapped += meta_written;
    Ok(found)
}

/// An exclusive lock on `<data_dir>/master.key.lock`, held until dropped (or the process
/// ends): two rotations at once would each write a new key.
fn lock(data_dir: &Path) -> Result<std::fs::File, AppError> {
    let path = data_dir.join("master.key.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| internal(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::Conflict(
            "another `embargo keys rotate-master` is running on this data directory; let it finish".into(),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(internal(format!("{}: {e}", path.display()))),
    }
}

/// The crash tests' kill switch: `EMBARGO_TEST_CRASH_AT=keys.rotate.<phase>` kills the
/// process there (`batch` after the first committed batch that re-wrapped something).
fn crash_point(phase: &str) {
    let Ok(wanted) = std::env::var("EMBARGO_TEST_CRASH_AT") else { return };
    if wanted.strip_prefix("keys.rotate.") == Some(phase) {
        tracing::warn!(phase, "EMBARGO_TEST_CRASH_AT: killing this process");
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        std::process::abort();
    }
}

fn base64_of(bytes: &[u8; 32]) -> String {
    // The key file's own encoding.
    Keyring::from_bytes(*bytes).current_base64().to_string()
}

/// Loads the key files and takes their keys up in this process.
fn adopt_files(app: &App, data_dir: &Path) -> Result<(), AppError> {
    match Keyring::load_with_previous(data_dir, None, None) {
        Ok(Some((loaded, _))) => {
            app.store.keys().adopt(&loaded);
            Ok(())
        }
        Ok(None) => Err(AppError::Invalid(format!("{} is missing", data_dir.join(KEY_FILE_NAME).display()))),
        Err(e) => Err(AppError::Invalid(e.to_string())),
    }
}

/// Takes a rotated master key up while the process runs: every [`WATCH_INTERVAL`] the key
/// files are read and, when they changed, their keys replace the ones in use (the
/// derivation root stays). Only for keys from the data directory (the environment cannot
/// change under a running process). Returns when `stop` turns true.
pub async fn watch(app: App, mut stop: signal::Receiver<bool>) {
    if key_source() == KeySource::Environment {
        return;
    }
    let data_dir = app.config.data_dir.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let keys = app.store.keys();
        match Keyring::load_with_previous(&data_dir, None, None) {
            Ok(Some((loaded, _))) => {
                if loaded.key_id() != keys.key_id() || loaded.previous_key_ids() != keys.previous_key_ids() {
                    tracing::info!(
                        key_id = %loaded.key_id(),
                        previous = %loaded.previous_key_ids().join(","),
                        "the master key files changed (a rotation): using them now"
                    );
                    keys.adopt(&loaded);
                }
            }
            Ok(None) => tracing::warn!("the master key file is missing; still using the key loaded at start"),
            Err(e) => tracing::warn!(error = %e, "cannot read the master key files; still using the keys loaded"),
        }
    }
}
