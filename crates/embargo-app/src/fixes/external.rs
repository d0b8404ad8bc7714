//! An external CI instead of the built-in runner (`fixes.external_ci_url`), for teams whose
//! tests need their own runners.
//!
//! Out: every push is an intent (`fix.ci.external`, one per CI run) carried out by a job that
//! POSTs `{"run", "report", "line", "commit", "clone_url", "callback_url"}` to the CI, signed
//! (`X-Embargo-Signature: t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">`, see
//! `embargo_domain::fix::sign`). A webhook cannot be asked whether it arrived, so the intent
//! is conservative: a refusal that proves nothing was taken (a connection refused, 429, 5xx)
//! is retried; an answer lost after the request went out (a timeout) is not guessed at: the
//! run fails with a log line asking a person to push again, unless the CI already called
//! back (that proves it arrived).
//!
//! In: `POST /fixes/ci-callback` with `{"run", "commit", "state", "log"}`, signed the same
//! way; the signature's time must be within five minutes (replays of older messages are
//! refused), the commit must be the run's, and the state follows the run's state machine
//! (a final state is never changed; the same final state again is accepted and ignored).

use std::sync::Arc;
use std::time::Duration;

use embargo_domain::fix::{self as domain, SIGNATURE_HEADER};
use embargo_domain::{Actor, CiState, CiStep};
use embargo_store::Tx;
use embargo_store::fixes as store;
use serde::Deserialize;

use crate::intents::{ExternalEffect, Intent};
use crate::jobs::JobError;
use crate::{App, AppError, audit};

/// The intent's operation.
pub(crate) const OPERATION: &str = "fix.ci.external";

/// Marks in `ci_runs.isolation` what happened to a run's webhook.
const SENDING: &str = "external:sending";
const REFUSED: &str = "external:refused";
const DELIVERED: &str = "external";

/// One run's webhook to the external CI.
pub struct ExternalCi {
    run: store::CiRun,
    body: Vec<u8>,
}

fn body_of(app: &App, run: &store::CiRun, reference: &str) -> Vec<u8> {
    serde_json::json!({
        "run": run.id,
        "report": reference,
        "line": run.line,
        "commit": run.commit,
        "clone_url": format!("{}/git/{reference}.git", app.config.base_url()),
        "callback_url": format!("{}/fixes/ci-callback", app.config.base_url()),
    })
    .to_string()
    .into_bytes()
}

/// Records the intent to send a run to the external CI (in the push's transaction).
pub(crate) async fn request_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    run: &store::CiRun,
    reference: &str,
) -> Result<Intent, AppError> {
    let body = body_of(app, run, reference);
    let destination = format!("external-ci:run:{}", run.id);
    let effect = crate::intents::Effect {
        operation: OPERATION,
        destination: &destination,
        content_hash: &crate::intents::content_hash(&body),
    };
    Ok(crate::intents::request_in::<ExternalCi>(tx, app, actor, &effect, ()).await?.intent().clone())
}

fn client() -> Result<reqwest::Client, JobError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| JobError::Permanent(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| JobError::Permanent(format!("HTTP client: {e}")))
}

async fn mark(app: &App, run: i64, isolation: &str) -> Result<(), JobError> {
    let mut tx = app.store.begin().await?;
    store::set_isolation(&mut tx, run, isolation).await?;
    tx.commit().await?;
    Ok(())
}

impl ExternalEffect for ExternalCi {
    const KIND: &'static str = OPERATION;
    type Output = ();
    type Request = ();

    async fn prepare(app: &App, intent: &Intent, (): ()) -> Result<Self, JobError> {
        let id: i64 =
            intent.destination.strip_prefix("external-ci:run:").and_then(|r| r.parse().ok()).ok_or_else(|| {
                JobError::Permanent(format!("not an external CI destination: {}", intent.destination))
            })?;
        let mut tx = app.store.snapshot().await?;
        let run = store::run(&mut tx, id).await?.ok_or_else(|| JobError::Permanent(format!("CI run {id} is gone")))?;
        let report = embargo_store::reports::get(&mut tx, run.report)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("the report of CI run {id} is gone")))?;
        tx.rollback().await?;
        let body = body_of(app, &run, &report.reference.to_string());
        if crate::intents::content_hash(&body) != intent.content_hash {
            return Err(JobError::Permanent("the instance's public URL changed since the push; push again".into()));
        }
        Ok(Self { run, body })
    }

    async fn reconcile(&self, app: &App) -> Result<Option<()>, JobError> {
        let mut tx = app.store.snapshot().await?;
        let run = store::run(&mut tx, self.run.id).await?;
        tx.rollback().await?;
        let Some(run) = run else { return Err(JobError::Permanent(format!("CI run {} is gone", self.run.id))) };
        // A callback proves the CI has the run.
        if run.state != CiState::Pending || run.isolation.as_deref() == Some(DELIVERED) {
            return Ok(Some(()));
        }
        if run.isolation.as_deref() == Some(SENDING) {
            return Err(JobError::Permanent(
                "the external CI may or may not have received this run (its answer was lost); \
                 nothing is sent twice: push again to start a new run"
                    .into(),
            ));
        }
        Ok(None)
    }

    async fn call(&self, app: &App) -> Result<(), JobError> {
        let secret = app.config.fixes.external_ci_secret.expose();
        let url = &app.config.fixes.external_ci_url;
        if url.is_empty() {
            return Err(JobError::Permanent("fixes.external_ci_url is no longer set".into()));
        }
        let now = app.now().as_second();
        let signature = domain::sign(secret.as_bytes(), now, &self.body);
        mark(app, self.run.id, SENDING).await?;
        let answer = client()?
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("x-embargo-delivery", format!("run-{}", self.run.id))
            .body(self.body.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                if status.as_u16() == 429 || status.is_server_error() {
                    // Refused: nothing was taken.
                    mark(app, self.run.id, REFUSED).await?;
                    Err(JobError::Retry(format!("the external CI answered {status}")))
                } else {
                    mark(app, self.run.id, REFUSED).await?;
                    Err(JobError::Permanent(format!("the external CI refused the run: {status}")))
                }
            }
            Err(e) if e.is_connect() => {
                mark(app, self.run.id, REFUSED).await?;
                Err(JobError::Retry(format!("cannot reach the external CI: {e}")))
            }
            // Sent, answer lost: the next attempt's reconcile stops and asks a person.
            Err(e) => Err(JobError::Retry(format!("no answer from the external CI: {e}"))),
        }
    }

    async fn record_in(
        &self,
        tx: &mut Tx,
        app: &App,
        _intent: &Intent,
        _output: &(),
        reconciled: bool,
    ) -> Result<String, AppError> {
        let run = store::run(tx, self.run.id).await?;
        if run.is_some_and(|r| r.state == CiState::Pending) {
            store::set_isolation(tx, self.run.id, DELIVERED).await?;
        }
        audit::record(
            tx,
            app,
            &Actor::System("ci"),
            "fix.ci.sent",
            &format!("run:{}", self.run.id),
            &format!("reconciled={reconciled}"),
        )
        .await?;
        Ok(format!("delivered run {}", self.run.id))
    }

    async fn record_failure_in(&self, tx: &mut Tx, app: &App, _intent: &Intent, reason: &str) -> Result<(), AppError> {
        if let Some(run) = store::run(tx, self.run.id).await?
            && !run.state.is_final()
        {
            store::append_log(tx, run.id, format!("--- not run: {reason} ---\n").as_bytes()).await?;
            if run.state == CiState::Pending {
                store::set_run_state(tx, run.id, CiState::Running, None, None, app.now()).await?;
            }
            store::set_run_state(tx, run.id, CiState::Failed, None, None, app.now()).await?;
        }
        audit::record(tx, app, &Actor::System("ci"), "fix.ci.unsent", &format!("run:{}", self.run.id), "").await?;
        Ok(())
    }
}

/// A callback of the external CI.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    run: i64,
    commit: String,
    state: String,
    #[serde(default)]
    log: String,
}

/// Takes a signed callback of the external CI: the run's state and log. Refused (as
/// [`AppError::Forbidden`]) when no external CI is configured or the signature is missing,
/// wrong or stale; [`AppError::Invalid`] for a body that does not fit the run.
pub async fn callback(app: &App, signature: Option<&str>, body: &[u8]) -> Result<CiState, AppError> {
    let secret = app.config.fixes.external_ci_secret.expose();
    if app.config.fixes.external_ci_url.is_empty() || secret.is_empty() {
        return Err(AppError::Forbidden("report CI results (no external CI is configured)"));
    }
    let signature = signature.ok_or(AppError::Forbidden("report CI results without a signature"))?;
    domain::verify(secret.as_bytes(), signature, body, app.now().as_second())
        .map_err(|_| AppError::Forbidden("report CI results with this signature"))?;
    let callback: Callback =
        serde_json::from_slice(body).map_err(|e| AppError::Invalid(format!("not a CI callback: {e}")))?;
    let to = CiState::parse(&callback.state).filter(|s| *s != CiState::Pending).ok_or_else(|| {
        AppError::Invalid(format!("state {:?}: running, passed, failed or timed-out", callback.state))
    })?;
    if callback.log.len() > 4 * 1024 * 1024 {
        return Err(AppError::Invalid("a callback's log has at most 4 MiB".into()));
    }
    let mut tx = app.store.begin().await?;
    let run = store::run(&mut tx, callback.run)
        .await?
        .filter(|r| r.commit == callback.commit)
        .ok_or_else(|| AppError::NotFound(format!("CI run {} at {}", callback.run, callback.commit)))?;
    // The same final state again (a redelivery) changes nothing.
    if run.state == to && to.is_final() {
        tx.rollback().await?;
        return Ok(to);
    }
    let mut state = run.state;
    if state == CiState::Pending {
        state = state.apply(CiStep::Start).map_err(|e| AppError::Conflict(e.to_string()))?;
        store::set_run_state(&mut tx, run.id, CiState::Running, Some(DELIVERED), None, app.now()).await?;
    }
    if to != CiState::Running {
        state.apply(CiStep::Finish(to)).map_err(|e| AppError::Conflict(e.to_string()))?;
    }
    if !callback.log.is_empty() {
        store::append_log(&mut tx, run.id, callback.log.as_bytes()).await?;
    }
    if to != CiState::Running {
        store::set_run_state(&mut tx, run.id, to, None, None, app.now()).await?;
    }
    audit::record(
        &mut tx,
        app,
        &Actor::System("ci"),
        "fix.ci.callback",
        &format!("run:{}", run.id),
        &format!("state={}", to.code()),
    )
    .await?;
    tx.commit().await?;
    Ok(to)
}

/// Whether runs go to an external CI.
pub(crate) fn configured(app: &App) -> bool {
    !app.config.fixes.external_ci_url.is_empty()
}

/// Carries out a freshly requested webhook at once (the job does it later otherwise).
pub(crate) fn send_soon(app: &App, intent: Intent) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::intents::drive::<ExternalCi>(&app, &intent).await {
            tracing::warn!(error = %e, "sending a run to the external CI failed; its job retries");
        }
    });
}
