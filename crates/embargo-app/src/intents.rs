//! External effects as intents (ADR 14): the one way Embargo asks another service to do
//! something (CVE Services today; mailing lists, Mastodon and git hosts with the disclosure
//! runbook).
//!
//! 1. **Intent first.** The use case records the intent ([`request_in`]: operation,
//!    destination, a hash of the exact content, a unique idempotency key) and enqueues the
//!    [`IntentJob`] that carries it out, in the transaction of the decision, with its
//!    permission check and audit entry. At most one intent per destination is pending: a
//!    second request finds the first ([`Requested::InFlight`]) instead of asking twice.
//! 2. **The call is a job** ([`carry_out`]), so it survives a crash: any worker (or the
//!    command that asked, [`drive`]) takes it up.
//! 3. **Reconcile before calling.** Every attempt first asks the service whether the effect
//!    already happened ([`ExternalEffect::reconcile`]); it calls only when it did not. A
//!    crash between the call and the commit therefore leads to a read, never a second call.
//! 4. **Result after.** What the call (or the read) found is recorded, the intent settled,
//!    and the job completed, in one transaction fenced on the job's lease. A permanent
//!    refusal settles the intent as failed (so that a new request can be made); a temporary
//!    failure is retried with the job's backoff.
//!
//! A new kind of effect implements [`ExternalEffect`] beside its domain and registers
//! `IntentJob<ItsEffect>` in `crate::registry`.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use embargo_domain::Actor;
use embargo_store::Tx;
pub use embargo_store::intents::Intent;
use embargo_store::intents::{self as store_intents, NewIntent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jobs::{self, Claim, Job, JobError, Registry, Worker};
use crate::{App, AppError};

/// SHA-256 (hex) of the content an effect sends.
pub fn content_hash(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// An effect about to be requested.
#[derive(Debug, Clone, Copy)]
pub struct Effect<'a> {
    /// The kind of effect (`cve.publish`).
    pub operation: &'a str,
    /// Where it goes, as the service names it (`cve-services:CVE-2026-1234`).
    pub destination: &'a str,
    /// [`content_hash`] of the content to send.
    pub content_hash: &'a str,
}

/// What [`request_in`] found.
#[derive(Debug, Clone)]
pub enum Requested {
    /// A new intent was recorded.
    New(Intent),
    /// An intent for the same destination is still pending: carry that one out (reconcile),
    /// do not ask again.
    InFlight(Intent),
}

impl Requested {
    /// The intent, new or in flight.
    pub fn intent(&self) -> &Intent {
        match self {
            Requested::New(intent) | Requested::InFlight(intent) => intent,
        }
    }
}

/// A kind of external effect: how to reconcile with the service, call it, and record what
/// happened. Carried out by [`IntentJob`].
pub trait ExternalEffect: Send + Sync + Sized + 'static {
    /// The job kind that carries it out (never rename it).
    const KIND: &'static str;

    /// What the service answered, or what reconciling found.
    type Output: Send + Sync;

    /// The parameters of the request that the store does not hold (the amount of IDs to
    /// reserve, a rejection's reason), carried in the job's payload; they must hash to the
    /// intent's `content_hash` (checked in `prepare`). `()` when the store holds it all.
    type Request: Serialize + DeserializeOwned + Default + Send + Sync + 'static;

    /// Loads what the call needs for `intent` (and its `request`) from the store.
    /// `Err(Permanent)` when it can no longer be done (settles the intent as failed).
    fn prepare(
        app: &App,
        intent: &Intent,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self, JobError>> + Send;

    /// Asks the service whether the effect already happened: `Some` with what it found when
    /// it did (then nothing is sent), `None` when the call is still to be made.
    fn reconcile(&self, app: &App) -> impl Future<Output = Result<Option<Self::Output>, JobError>> + Send;

    /// Makes the call. The content sent must hash to the intent's `content_hash`.
    fn call(&self, app: &App) -> impl Future<Output = Result<Self::Output, JobError>> + Send;

    /// Records what happened in `tx` (state, audit entry) and returns the intent's result
    /// text (no content). `reconciled` says whether it was found rather than done now.
    fn record_in(
        &self,
        tx: &mut Tx,
        app: &App,
        intent: &Intent,
        output: &Self::Output,
        reconciled: bool,
    ) -> impl Future<Output = Result<String, AppError>> + Send;

    /// Records a permanent refusal in `tx` (audit entry); the intent is settled as failed.
    fn record_failure_in(
        &self,
        tx: &mut Tx,
        app: &App,
        intent: &Intent,
        reason: &str,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// The job that carries out the intent `intent` of effect `E` (see [`carry_out`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "E: ExternalEffect")]
pub struct IntentJob<E: ExternalEffect> {
    intent: i64,
    /// The request's parameters (absent in the payloads of effects that need none).
    #[serde(default)]
    request: E::Request,
    #[serde(skip)]
    effect: PhantomData<fn() -> E>,
}

impl<E: ExternalEffect> IntentJob<E> {
    /// The job of intent `intent` (its key; the request's parameters default).
    pub fn new(intent: i64) -> Self {
        Self::with_request(intent, E::Request::default())
    }

    /// The job of intent `intent` with its request's parameters.
    pub fn with_request(intent: i64, request: E::Request) -> Self {
        Self { intent, request, effect: PhantomData }
    }
}

impl<E: ExternalEffect> Job for IntentJob<E> {
    const KIND: &'static str = E::KIND;

    fn key(&self) -> Option<String> {
        Some(format!("intent:{}", self.intent))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        carry_out::<E>(app, self.intent, self.request, claim).await
    }
}

/// Records the intent of `effect` by `actor` in the caller's transaction (which holds the
/// permission check and the audit entry) and enqueues its job, due after one job lease so
/// that a worker takes it up only if the requester does not ([`drive`]). When an intent for
/// the same destination is pending, records nothing and returns that one.
pub(crate) async fn request_in<E: ExternalEffect>(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    effect: &Effect<'_>,
    request: E::Request,
) -> Result<Requested, AppError> {
    if let Some(pending) = store_intents::pending_for(tx, effect.destination).await? {
        // Its job may have given up (dead): it runs again, reconciling first.
        embargo_store::jobs::requeue_dead(tx, &IntentJob::<E>::new(pending.id).key().unwrap_or_default(), app.now())
            .await?;
        return Ok(Requested::InFlight(pending));
    }
    let earlier = store_intents::for_destination(tx, effect.destination).await?.len();
    // Deterministic: two requests racing for the same destination collide on the key.
    let key = format!("{}:{}:{}", effect.operation, effect.destination, earlier + 1);
    let now = app.now();
    let requested_by = actor.to_string();
    let id = store_intents::insert(
        tx,
        &NewIntent {
            idempotency_key: &key,
            operation: effect.operation,
            destination: effect.destination,
            content_hash: effect.content_hash,
            requested_by: &requested_by,
            at: now,
        },
    )
    .await
    .map_err(|e| match e {
        embargo_store::StoreError::Conflict(_) => {
            AppError::Conflict(format!("another request for {} is in flight", effect.destination))
        }
        other => other.into(),
    })?;
    let lease = jiff::SignedDuration::from_secs(i64::from(app.config.jobs.lease_seconds));
    jobs::enqueue_at(tx, app, &IntentJob::<E>::with_request(id, request), now.checked_add(lease).unwrap_or(now))
        .await?;
    let intent = store_intents::get(tx, id).await?.ok_or_else(|| AppError::NotFound(format!("intent {id}")))?;
    Ok(Requested::New(intent))
}

/// One intent.
pub async fn get(app: &App, id: i64) -> Result<Intent, AppError> {
    let mut tx = app.store.snapshot().await?;
    let intent = store_intents::get(&mut tx, id).await?;
    tx.rollback().await?;
    intent.ok_or_else(|| AppError::NotFound(format!("intent {id}")))
}

/// Carries out intent `id`: nothing when it is settled; else reconcile, and call only when
/// the effect did not happen; then record the result, settle the intent and complete the
/// job in one transaction.
pub async fn carry_out<E: ExternalEffect>(
    app: &App,
    id: i64,
    request: E::Request,
    claim: Claim,
) -> Result<(), JobError> {
    let intent = get(app, id).await.map_err(|e| match e {
        AppError::NotFound(what) => JobError::Permanent(format!("{what} does not exist")),
        other => other.into(),
    })?;
    if intent.state != "pending" {
        return claim.complete(app.store.begin().await?, app.now()).await;
    }
    let (effect, outcome) = match E::prepare(app, &intent, request).await {
        Ok(effect) => {
            let outcome = match effect.reconcile(app).await {
                Ok(Some(found)) => Ok((found, true)),
                Ok(None) => effect.call(app).await.map(|made| (made, false)),
                Err(err) => Err(err),
            };
            (Some(effect), outcome)
        }
        Err(err) => (None, Err(err)),
    };
    let now = app.now();
    match (effect, outcome) {
        (Some(effect), Ok((output, reconciled))) => {
            let mut tx = app.store.begin().await?;
            let result = effect.record_in(&mut tx, app, &intent, &output, reconciled).await?;
            store_intents::settle(&mut tx, intent.id, "done", &result, now).await?;
            jobs::mark_done_in(&mut tx, std::slice::from_ref(&claim), now).await?;
            tx.commit().await?;
            Ok(())
        }
        (effect, Err(JobError::Permanent(reason))) => {
            let mut tx = app.store.begin().await?;
            if let Some(effect) = effect {
                effect.record_failure_in(&mut tx, app, &intent, &reason).await?;
            }
            store_intents::settle(&mut tx, intent.id, "failed", &reason, now).await?;
            jobs::mark_done_in(&mut tx, std::slice::from_ref(&claim), now).await?;
            tx.commit().await?;
            Ok(())
        }
        (None, Ok(_)) => Err(JobError::Retry("no effect to record".into())),
        (_, Err(other)) => Err(other),
    }
}

/// How a driven intent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driven {
    /// Done; the result text.
    Done(String),
    /// Refused for good; the reason.
    Failed(String),
    /// Not yet: a temporary failure (retried by the workers with backoff), or another
    /// process holds the job.
    Pending(String),
}

/// Runs the job of a just-requested intent now, in the requesting process (the job is due
/// only after a lease, so no worker takes it meanwhile), and says how it ended. When
/// another process holds the job (a crashed command's lease not yet expired, or a worker),
/// waits for it, up to one lease and a little more.
pub async fn drive<E: ExternalEffect>(app: &App, intent: &Intent) -> Result<Driven, AppError> {
    let key = IntentJob::<E>::new(intent.id).key().unwrap_or_default();
    let mut tx = app.store.snapshot().await?;
    let job = embargo_store::jobs::id_by_key(&mut tx, &key).await?;
    tx.rollback().await?;
    let job = job.ok_or_else(|| AppError::NotFound(format!("the job of intent {}", intent.id)))?;
    let worker = Worker::with_registry(app.clone(), Registry::default().with::<IntentJob<E>>());
    let patience = Duration::from_secs(u64::from(app.config.jobs.lease_seconds) + 5);
    let started = std::time::Instant::now();
    loop {
        let ran = worker.run_job(job).await?;
        let intent = get(app, intent.id).await?;
        match intent.state.as_str() {
            "done" => return Ok(Driven::Done(intent.result.unwrap_or_default())),
            "failed" => return Ok(Driven::Failed(intent.result.unwrap_or_default())),
            _ => {}
        }
        let state = embargo_store::jobs::state_of(&app.store, job).await?;
        if ran || started.elapsed() >= patience {
            let why = match state {
                Some((_, Some(error))) => error,
                Some((state, None)) => format!("its job is {state}"),
                None => "its job is gone".into(),
            };
            return Ok(Driven::Pending(why));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
