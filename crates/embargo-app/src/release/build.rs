//! The release build (ADR 26): the product's release command in the sandbox on a checkout of
//! each pushed tag, its `dist/` files published into the artifacts directory, and/or a signed
//! webhook to an external CI; then the artifacts are awaited until they verify.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embargo_domain::fix::{self as domain, SIGNATURE_HEADER};
use embargo_domain::{Actor, ReferenceId};
use embargo_store::products::ProductRecord;
use embargo_store::releases::{self as store, ReleaseBuild};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::artifacts::{self, ArtifactProblem, SUMS, Verified};
use super::{LinePush, PushPlan, ReleaseError};
use crate::authz::{self, Permission};
use crate::fixes::git;
use crate::sandbox::{self, Outcome, Spec};
use crate::{App, AppError, audit};

/// What [`trigger`] did for one release line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggered {
    /// The release line.
    pub line: String,
    /// The tag built.
    pub tag: String,
    /// The release command's run (see [`build_log`]), when the product has one.
    pub build: Option<i64>,
    /// The files published into the artifacts directory (names), when it has one.
    pub published: Vec<String>,
    /// Whether the webhook was delivered (answered 2xx).
    pub webhook: bool,
}

/// Starts the release build of every pushed line (the plan must have been pushed): the
/// product's release command, then its webhook. A product with neither does nothing (its
/// artifacts appear by other means; [`wait_for_artifacts`] still checks them).
///
/// Errors: [`ReleaseError::Permanent`] when the release command failed or timed out (its
/// log is kept: the message names the build) or the webhook was refused (4xx);
/// [`ReleaseError::Temporary`] when the checkout or the sandbox could not start, or the
/// webhook could not be reached or answered 429/5xx (nothing was taken: try again);
/// [`ReleaseError::Lost`] when the webhook's answer was lost after it was sent (do not send
/// again without a person; [`wait_for_artifacts`] may show that it arrived). A retry runs the
/// release command again on the same tag and publishes the same files.
pub async fn trigger(app: &App, plan: &PushPlan) -> Result<Vec<Triggered>, ReleaseError> {
    trigger_with(app, plan, &TriggerOptions::default()).await
}

/// How [`trigger_with`] departs from the product's settings (the dry run's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerOptions {
    /// Publish the release command's files here instead of the product's artifacts
    /// directory (`{version}` replaced); the rehearsal's scratch directory.
    pub publish_to: Option<PathBuf>,
    /// Do not send the release webhook (a rehearsal: a webhook cannot be taken back).
    pub skip_webhook: bool,
}

/// [`trigger`] with `options`: a rehearsal runs the release command on the rehearsed tags
/// and publishes into a scratch directory, and sends no webhook.
pub async fn trigger_with(
    app: &App,
    plan: &PushPlan,
    options: &TriggerOptions,
) -> Result<Vec<Triggered>, ReleaseError> {
    let product = super::product_of(app, plan).await?;
    let reference: ReferenceId =
        plan.report.parse().map_err(|_| ReleaseError::Permanent(format!("report {:?}", plan.report)))?;
    let report = {
        let mut tx = app.store.snapshot().await?;
        let report = embargo_store::reports::get_by_reference(&mut tx, &reference).await?;
        tx.rollback().await?;
        report.ok_or_else(|| ReleaseError::Permanent(format!("report {reference} is gone")))?
    };
    let mut out = Vec::new();
    for line in &plan.lines {
        let mut triggered = Triggered {
            line: line.line.clone(),
            tag: line.tag.clone(),
            build: None,
            published: Vec::new(),
            webhook: false,
        };
        if !product.release_command.trim().is_empty() {
            let (build, dist) = run_command(app, &product, report.id, line).await?;
            triggered.build = Some(build);
            let target = match &options.publish_to {
                Some(dir) => Some(dir.display().to_string()),
                None => Some(product.artifacts_dir.clone()).filter(|d| !d.is_empty()),
            };
            if let Some(target) = target {
                let dir = PathBuf::from(target.replace("{version}", &line.version));
                triggered.published = publish(&dist, &dir)?;
            }
        }
        if !product.release_webhook.is_empty() && !options.skip_webhook {
            webhook(app, &product, line).await?;
            triggered.webhook = true;
        }
        out.push(triggered);
    }
    Ok(out)
}

/// Runs the release command for one line; returns the build and its checkout's `dist/`
/// (kept in a temporary directory while the caller publishes it).
async fn run_command(
    app: &App,
    product: &ProductRecord,
    report: embargo_domain::ReportId,
    line: &LinePush,
) -> Result<(i64, Dist), ReleaseError> {
    let work = tempfile::Builder::new()
        .prefix("embargo-release-")
        .tempdir()
        .map_err(|e| ReleaseError::Temporary(format!("cannot make a directory for the checkout: {e}")))?;
    let checkout = work.path().join("src");
    let path = crate::fixes::repository_path(app, report);
    git::checkout(app, &path, &line.tag_ref, &checkout).await?;
    let quote = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let command = format!(
        "export EMBARGO_PRODUCT={} EMBARGO_LINE={} EMBARGO_VERSION={} EMBARGO_TAG={} EMBARGO_COMMIT={}\n{}",
        quote(&product.name),
        quote(&line.line),
        quote(&line.version),
        quote(&line.tag),
        quote(&line.commit),
        product.release_command
    );
    let spec = Spec {
        workdir: checkout.clone(),
        command,
        time_limit: Duration::from_secs(app.config.fixes.release_time_limit_seconds),
        hidden: [app.config.data_dir.clone(), PathBuf::from("/etc/embargo")]
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
    };
    let isolation = sandbox::available();
    let build = {
        let mut tx = app.store.begin().await?;
        let id =
            store::start(&mut tx, report, &line.line, &line.tag, &line.commit, isolation.as_str(), app.now()).await?;
        tx.commit().await?;
        id
    };
    let log: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = log.clone();
    sink.lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(format!("$ {}\n", product.release_command).as_bytes());
    let finished = sandbox::run(&spec, move |bytes: &[u8]| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
    })
    .await;
    let mut log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    let (state, exit_code, failure) = match finished {
        Ok(done) => {
            let seconds = done.duration.as_secs_f64();
            match done.outcome {
                Outcome::Passed => ("passed", Some(0), None),
                Outcome::Failed { exit_code, signal } => (
                    "failed",
                    exit_code.map(i64::from),
                    Some(match (exit_code, signal) {
                        (Some(code), _) => format!("exit code {code} after {seconds:.1} s"),
                        (None, Some(signal)) => format!("killed by signal {signal} after {seconds:.1} s"),
                        (None, None) => format!("failed after {seconds:.1} s"),
                    }),
                ),
                Outcome::TimedOut => (
                    "timed-out",
                    None,
                    Some(format!(
                        "killed at the limit of {} s (fixes.release_time_limit_seconds)",
                        app.config.fixes.release_time_limit_seconds
                    )),
                ),
            }
        }
        Err(e) => ("failed", None, Some(format!("the command could not run: {e}"))),
    };
    log.extend_from_slice(format!("\n--- {} ---\n", failure.as_deref().unwrap_or("passed")).as_bytes());
    let mut tx = app.store.begin().await?;
    store::finish(&mut tx, build, state, exit_code, &log, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        &Actor::System("release"),
        "release.build",
        &format!("release-build:{build}"),
        &format!("line={} tag={} state={state}", line.line, line.tag),
    )
    .await?;
    tx.commit().await?;
    if let Some(why) = failure {
        return Err(ReleaseError::Permanent(format!(
            "the release command of {} ({}) failed: {why}; its log is release build {build}",
            line.line, line.tag
        )));
    }
    Ok((build, Dist { _work: work, dir: checkout.join("dist") }))
}

/// A finished checkout's `dist/`, removed with the checkout when dropped.
struct Dist {
    _work: tempfile::TempDir,
    dir: PathBuf,
}

/// Copies the regular files of `dist/` (no links, no directories, no hidden names) into
/// `dir`, each written aside and renamed into place; writes `SHA256SUMS` over them when the
/// command left none. Returns the names published.
fn publish(dist: &Dist, dir: &Path) -> Result<Vec<String>, ReleaseError> {
    let io = |what: &str, e: std::io::Error| ReleaseError::Permanent(format!("cannot {what}: {e}"));
    // `dist` itself must be a directory of the checkout, not a link to one elsewhere.
    match std::fs::symlink_metadata(&dist.dir) {
        Ok(meta) if meta.file_type().is_dir() => {}
        Ok(_) => {
            return Err(ReleaseError::Permanent(
                "the release command left dist/ as something other than a directory (a link?): nothing is published"
                    .into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read the release command's dist/", e)),
    }
    let entries = match std::fs::read_dir(&dist.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read the release command's dist/", e)),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(&format!("create {}", dir.display()), e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("read the release command's dist/", e))?;
        // The command controls the checkout: a link could point at the server's files.
        let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| io("read dist/", e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        // A hard link could be a file of the server's that the command could see (without
        // bubblewrap): only files with one name are published.
        let single = std::os::unix::fs::MetadataExt::nlink(&meta) == 1;
        if !meta.file_type().is_file() || !single || name.starts_with('.') || name.chars().any(char::is_control) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    let mut sums = String::new();
    for name in &names {
        let bytes = std::fs::read(dist.dir.join(name)).map_err(|e| io(&format!("read dist/{name}"), e))?;
        if !name.starts_with(SUMS) {
            sums.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(&bytes))));
        }
        write_aside(dir, name, &bytes).map_err(|e| io(&format!("publish {name}"), e))?;
    }
    if !names.iter().any(|n| n == SUMS) && !names.is_empty() {
        write_aside(dir, SUMS, sums.as_bytes()).map_err(|e| io("publish SHA256SUMS", e))?;
        names.push(SUMS.to_owned());
    }
    Ok(names)
}

fn write_aside(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let aside = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&aside, bytes)?;
    std::fs::rename(&aside, dir.join(name))
}

/// POSTs `{product, line, tag, commit}` to the product's release webhook, signed like the
/// external CI's webhooks (`X-Embargo-Signature`), with `X-Embargo-Delivery:
/// release:<product>:<tag>` so that the CI can recognise a delivery it already has.
async fn webhook(app: &App, product: &ProductRecord, line: &LinePush) -> Result<(), ReleaseError> {
    let secret = app.config.fixes.release_webhook_secret.expose();
    if secret.is_empty() {
        return Err(ReleaseError::Permanent(
            "fixes.release_webhook_secret is not set: the webhook cannot be signed".into(),
        ));
    }
    let body = serde_json::json!({
        "product": product.name,
        "line": line.line,
        "tag": line.tag,
        "commit": line.commit,
    })
    .to_string();
    let signature = domain::sign(secret.as_bytes(), app.now().as_second(), body.as_bytes());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ReleaseError::Permanent(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ReleaseError::Permanent(format!("HTTP client: {e}")))?;
    let answer = client
        .post(&product.release_webhook)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header("x-embargo-delivery", format!("release:{}:{}", product.name, line.tag))
        .body(body)
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) if response.status().as_u16() == 429 || response.status().is_server_error() => {
            Err(ReleaseError::Temporary(format!("the release webhook answered {}", response.status())))
        }
        Ok(response) => Err(ReleaseError::Permanent(format!("the release webhook refused: {}", response.status()))),
        Err(e) if e.is_connect() => Err(ReleaseError::Temporary(format!("cannot reach the release webhook: {e}"))),
        Err(e) => Err(ReleaseError::Lost(format!("no answer from the release webhook for {}: {e}", line.tag))),
    }
}

/// Checks the plan's artifacts ([`artifacts::expected`], [`artifacts::verify`]) every
/// `fixes.artifacts_poll_seconds` until they verify or `fixes.artifacts_wait_seconds` have
/// passed; then the last check's problems. A product without an artifacts URL verifies at
/// once, with no files.
pub async fn wait_for_artifacts(
    app: &App,
    product: &ProductRecord,
    plan: &PushPlan,
) -> Result<Verified, Vec<ArtifactProblem>> {
    let expected = artifacts::expected(product, plan);
    let key = Some(product.signing_key.as_str()).filter(|k| !k.is_empty());
    let limit = Duration::from_secs(app.config.fixes.artifacts_wait_seconds);
    let poll = Duration::from_secs(app.config.fixes.artifacts_poll_seconds);
    let started = Instant::now();
    loop {
        let result = artifacts::verify(app, &expected, key).await;
        if result.is_ok() || started.elapsed() + poll > limit {
            return result;
        }
        tokio::time::sleep(poll).await;
    }
}

/// A release build with its log.
#[derive(Debug, Clone)]
pub struct BuildLog {
    /// The build.
    pub build: ReleaseBuild,
    /// What the command wrote (stdout and stderr), as written, with the sandbox's first line.
    pub log: Vec<u8>,
}

/// A release build of a report's fix with its log (those who may use the report's fix).
pub async fn build_log(app: &App, actor: &Actor, reference: &ReferenceId, build: i64) -> Result<BuildLog, AppError> {
    let mut tx = app.store.snapshot().await?;
    let not_found = || AppError::NotFound(format!("release build {build}"));
    let report = embargo_store::reports::get_by_reference(&mut tx, reference).await?.ok_or_else(not_found)?;
    match authz::require(&mut tx, actor, Permission::UseFixRepository.on(report.id)).await {
        Err(AppError::Forbidden(_)) => return Err(not_found()),
        other => other?,
    }
    let record = store::get(&mut tx, build).await?.filter(|b| b.report == report.id).ok_or_else(not_found)?;
    let log = store::log(&mut tx, build).await?;
    tx.rollback().await?;
    Ok(BuildLog { build: record, log })
}
