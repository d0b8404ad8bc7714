//! The operations commands: `backup`, `restore`, `doctor` and `keys` (ADR 30).

use std::path::Path;
use std::process::ExitCode;

use embargo_app::App;
use embargo_app::backup::{self, Decryption, Encryption, RestoreFailure};
use embargo_app::config::Config;
use embargo_app::doctor::{self, Status};

use crate::cli::KeysCommand;
use crate::commands::{
    EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE, Failure, Outcome, local_admin,
};

pub async fn backup(app: App, file: &Path) -> Outcome {
    let encryption = Encryption::from_env().map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?;
    let encrypted_to = match &encryption {
        Encryption::Recipients(r) => format!("{} age recipient(s)", r.len()),
        Encryption::Passphrase(_) => "a passphrase".to_owned(),
    };
    let summary = backup::create(&app, &local_admin(), file, encryption).await;
    app.store.close().await;
    let summary = summary?;
    println!(
        "backup written to {} ({} bytes, encrypted to {encrypted_to}): {} database, {} file(s) of the data directory, \
         master key {}{}",
        file.display(),
        summary.bytes,
        summary.manifest.backend,
        summary.manifest.files,
        summary.manifest.master_key_id,
        if summary.manifest.previous_key_ids.is_empty() {
            String::new()
        } else {
            format!(" (and {} from a rotation under way)", summary.manifest.previous_key_ids.join(", "))
        }
    );
    println!("the master key is inside: keep the backup's identity or passphrase as safe as the master key itself");
    for skipped in &summary.skipped {
        eprintln!("embargo: skipped {skipped} (not a regular file or directory)");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(config: Config, file: &Path, identity: Option<&Path>) -> Outcome {
    let failure = |err: RestoreFailure| {
        let code = match &err {
            RestoreFailure::NotEmpty(_) => EX_CANTCREAT,
            RestoreFailure::Unreadable(_) => EX_DATAERR,
            RestoreFailure::KeyMismatch(_) => EX_CONFIG,
            RestoreFailure::Unavailable(_) => EX_UNAVAILABLE,
            RestoreFailure::Failed(_) => EX_SOFTWARE,
        };
        Failure::new(code, err.to_string())
    };
    let decryption = Decryption::from_env(identity).map_err(failure)?;
    let place = config.database_place();
    let data_dir = config.data_dir.clone();
    let summary = backup::restore(config, &local_admin(), file, decryption).await.map_err(failure)?;
    println!(
        "restored the backup of {} into {} and {place}: {} file(s); the master key opens the data; the audit trail \
         verifies ({} entries)",
        summary.manifest.created_at,
        data_dir.display(),
        summary.files,
        summary.audit_entries
    );
    println!(
        "checkpoints signed after the backup (kept elsewhere) name entries this copy does not have: \
         `audit verify --checkpoints` with them reports the loss since the backup"
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn doctor(config: &Config, json: bool) -> Outcome {
    let checks = doctor::run(config).await;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if json {
        let out = serde_json::json!({ "healthy": failed == 0, "checks": checks });
        println!("{out}");
    } else {
        for check in &checks {
            println!("{:<4}  {:<15} {}", check.status.label(), check.check, crate::output::clean(&check.message));
            if let Some(fix) = &check.fix {
                println!("      {:<15} fix: {}", "", crate::output::clean(fix));
            }
        }
        println!();
        match (failed, warned) {
            (0, 0) => println!("healthy"),
            (0, w) => println!("healthy, with {w} warning(s)"),
            (f, _) => println!("{f} problem(s) to fix"),
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn keys(app: App, command: KeysCommand) -> Outcome {
    let actor = local_admin();
    let result = match command {
        KeysCommand::RotateMaster { batch, grace_seconds } => {
            let options = embargo_app::keys::RotationOptions {
                batch,
                grace: std::time::Duration::from_secs(grace_seconds),
                ..Default::default()
            };
            let summary = embargo_app::keys::rotate_master(&app, &actor, &options, |line| println!("{line}")).await;
            summary.map(|s| {
                if s.prepared_only {
                    return;
                }
                println!(
                    "master key rotated: {} in use; {} retired ({} value(s) re-wrapped in {} pass(es){})",
                    s.new_key_id,
                    s.old_key_ids.join(", "),
                    s.rewrapped,
                    s.passes,
                    if s.previous_file_removed {
                        "; master.key.previous removed"
                    } else if std::env::var_os("EMBARGO_MASTER_KEY").is_some() {
                        "; remove EMBARGO_MASTER_KEY_PREVIOUS from every process"
                    } else {
                        ""
                    }
                );
                println!("back up the new master key now: backups taken before hold only the old one");
            })
        }
        KeysCommand::RotateOpenpgp => embargo_app::openpgp::rotate(&app, &actor).await.map(|r| {
            println!("OpenPGP key rotated: {} is published and signs from now on", r.new_fingerprint);
            println!(
                "{} is kept to decrypt mail encrypted to it ({} retired key(s) in all)",
                r.old_fingerprint,
                r.retired.len()
            );
        }),
        KeysCommand::Status { json } => status(&app, json).await,
    };
    app.store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn status(app: &App, json: bool) -> Result<(), embargo_app::AppError> {
    let keys = app.store.keys();
    let pgp = embargo_app::openpgp::instance_key(app).await?;
    if json {
        let out = serde_json::json!({
            "master_key_id": keys.key_id(),
            "previous_master_key_ids": keys.previous_key_ids(),
            "openpgp_fingerprint": pgp.fingerprint(),
            "openpgp_retired": pgp.retired_fingerprints(),
        });
        println!("{out}");
    } else {
        println!("master key {}", keys.key_id());
        if !keys.previous_key_ids().is_empty() {
            println!(
                "rotation under way: {} still opens older values; run `embargo keys rotate-master` to finish",
                keys.previous_key_ids().join(", ")
            );
        }
        println!("OpenPGP key {}", pgp.fingerprint());
        for old in pgp.retired_fingerprints() {
            println!("retired OpenPGP key {old} (decrypts only)");
        }
    }
    Ok(())
}
