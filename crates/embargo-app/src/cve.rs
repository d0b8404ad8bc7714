//! CVE Services: reserving IDs, assigning them to advisories, publishing an advisory's CNA
//! container, rejecting IDs. Every call is a command (admins; publishing also the system,
//! for the disclosure runbook), audited; the configured dry run (the default) shows what
//! would be sent and sends nothing. See ADR 11.
//!
//! The network call happens outside any database transaction. Reserving, publishing (and
//! updating) and rejecting are external effects with their intent recorded first and
//! reconciled against CVE Services before any retry ([`reserve`] / [`ReserveIds`],
//! [`publish`] / [`PublishRecord`], [`reject`] / [`RejectId`]; ADR 14): a call whose answer
//! was lost (a crash, a timeout after the service acted) is found at the service on the next
//! attempt, never made twice.

use embargo_cve::{ApiKey, Batch, Client, CveId, Environment, Outcome};
use embargo_domain::cve_id::Write;
use embargo_domain::{Actor, AdvisoryState, CveIdState, CveIdStep};
use embargo_store::Tx;
use embargo_store::cve_ids::{self, CveIdRow};
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::intents::{self, Driven, Effect, ExternalEffect, Intent, Requested};
use crate::jobs::JobError;
use crate::{App, AppError, audit};

/// What a CVE Services command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Done<T> {
    /// Sent; the result.
    Sent(T),
    /// Dry run: the request that would have been sent, as text (the key redacted).
    DryRun(String),
}

fn client(app: &App) -> Result<Client, AppError> {
    let c = &app.config.cve_services;
    if c.org.is_empty() {
        return Err(AppError::Invalid("set [cve_services] org and user (and api_key) to use CVE Services".into()));
    }
    let environment = Environment::parse(&c.environment)
        .ok_or_else(|| AppError::Invalid(format!("cve_services.environment {:?}", c.environment)))?;
    let mut config = embargo_cve::Config::new(environment, &c.org, &c.user, ApiKey::new(c.api_key.expose()));
    config.base_url = c.effective_base_url().to_owned();
    config.dry_run = c.dry_run;
    config.timeout = std::time::Duration::from_secs(u64::from(c.timeout_seconds.max(1)));
    Client::new(config).map_err(|e| AppError::Invalid(e.to_string()))
}

fn service_error(err: embargo_cve::Error) -> AppError {
    if err.is_retryable() {
        AppError::Unavailable(format!("CVE Services: {err}"))
    } else {
        AppError::Invalid(format!("CVE Services: {err}"))
    }
}

async fn admin(app: &App, actor: &Actor) -> Result<(), AppError> {
    permitted(app, actor, Permission::ManageCveIds).await
}

async fn permitted(app: &App, actor: &Actor, permission: Permission) -> Result<(), AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, permission).await?;
    tx.rollback().await?;
    Ok(())
}

fn parse_id(text: &str) -> Result<CveId, AppError> {
    CveId::parse(text.trim()).map_err(AppError::Invalid)
}

/// Reserves `count` IDs for this year (sequential) and records them, as an external effect
/// (see [`crate::intents`] and [`ReserveIds`]): the intent (the year, the hash of the
/// request) is recorded with the permission check and an audit entry, the call runs as a
/// `cve.reserve` job which this command drives at once, and the IDs are recorded after. When
/// the answer was lost, the next attempt (this command again, or a worker once the lease
/// expired) finds the IDs at CVE Services instead of reserving again; while a reservation
/// for the year is in flight, a new request finishes that one and returns its IDs. Dry run
/// sends and records nothing.
pub async fn reserve(app: &App, actor: &Actor, count: u32) -> Result<Done<Vec<String>>, AppError> {
    admin(app, actor).await?;
    if !(1..=10).contains(&count) {
        return Err(AppError::Invalid("reserve between 1 and 10 IDs at a time".into()));
    }
    let year = u16::try_from(app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year())
        .map_err(|e| AppError::Internal(e.into()))?;
    let client = client(app)?;
    if client.config().dry_run {
        let outcome = client.reserve(count, year, Batch::Sequential).await.map_err(service_error)?;
        let mut tx = app.store.begin().await?;
        audit::record(&mut tx, app, actor, "cve.reserve", "cve", &format!("count={count} dry_run=true")).await?;
        tx.commit().await?;
        return Ok(match outcome {
            Outcome::DryRun(planned) => Done::DryRun(planned.to_string()),
            Outcome::Done(_) => Done::Sent(Vec::new()),
        });
    }
    let request = ReserveRequest { amount: count, year };
    let hash = request.hash(&client.config().org);
    let destination = format!("cve-services:reserve:{year}");
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCveIds).await?;
    let requested = intents::request_in::<ReserveIds>(
        &mut tx,
        app,
        actor,
        &Effect { operation: RESERVE, destination: &destination, content_hash: &hash },
        request,
    )
    .await?;
    let intent = requested.intent().clone();
    let details = match &requested {
        Requested::New(_) => format!("count={count} year={year} intent={} hash={hash}", intent.id),
        Requested::InFlight(_) => format!("count={count} year={year} intent={} in_flight=true", intent.id),
    };
    audit::record(&mut tx, app, actor, "cve.reserve.request", "cve", &details).await?;
    tx.commit().await?;
    match intents::drive::<ReserveIds>(app, &intent).await? {
        Driven::Done(ids) => Ok(Done::Sent(ids.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect())),
        Driven::Failed(reason) => Err(AppError::Invalid(format!("CVE Services: {reason}"))),
        Driven::Pending(why) => Err(AppError::Unavailable(format!(
            "CVE Services: {why}; the reservation is recorded and will be retried (or found) by the job workers"
        ))),
    }
}

/// The intent operations of [`ReserveIds`] and [`RejectId`].
const RESERVE: &str = "cve.reserve";
const REJECT: &str = "cve.reject";

/// What a reservation asks for: the payload of its job, hashed into its intent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    amount: u32,
    year: u16,
}

impl ReserveRequest {
    /// The hash of the request as sent (its query).
    fn hash(&self, org: &str) -> String {
        let query = format!("amount={}&cve_year={}&short_name={org}&batch_type=sequential", self.amount, self.year);
        intents::content_hash(query.as_bytes())
    }
}

/// How far before the intent an ID found at CVE Services may have been reserved and still be
/// this intent's (clocks of two machines).
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);

/// Reserving IDs at CVE Services: the effect behind the `cve.reserve` job (see [`reserve`]).
/// Reconciled by listing the organisation's reserved IDs of the year: those reserved by
/// Embargo's CVE Services user since the intent (allowing for clock skew) that are not
/// recorded here are the lost answer's IDs. (An ID reserved in that window by the same
/// user with another tool would be taken for one of them: it is then recorded here as
/// reserved, which reserves nothing more.)
#[derive(Debug)]
pub struct ReserveIds {
    request: ReserveRequest,
    since: jiff::Timestamp,
}

impl ExternalEffect for ReserveIds {
    const KIND: &'static str = "cve.reserve";
    type Output = Vec<(String, CveIdState)>;
    type Request = ReserveRequest;

    async fn prepare(app: &App, intent: &Intent, request: ReserveRequest) -> Result<Self, JobError> {
        let client = client(app)?;
        if request.hash(&client.config().org) != intent.content_hash {
            return Err(JobError::Permanent(format!(
                "the reservation of intent {} does not match its hash",
                intent.id
            )));
        }
        Ok(Self { request, since: intent.created_at })
    }

    async fn reconcile(&self, app: &App) -> Result<Option<Self::Output>, JobError> {
        let client = client(app)?;
        let (org, user) = (client.config().org.clone(), client.config().user.clone());
        let listed = client.list_ids(embargo_cve::IdState::Reserved, self.request.year).await.map_err(job_error)?;
        let earliest = self.since.checked_sub(CLOCK_SKEW).unwrap_or(self.since);
        let mut found = Vec::new();
        let mut tx = app.store.snapshot().await?;
        for info in listed {
            let by = info.requested_by.as_ref();
            let ours = by.and_then(|b| b.cna.as_deref()).or(info.owning_cna.as_deref()) == Some(org.as_str())
                && by.and_then(|b| b.user.as_deref()) == Some(user.as_str());
            // An unreadable time is taken as recent: better recorded than reserved twice.
            let recent =
                info.reserved.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_none_or(|t| t >= earliest);
            let id = info.cve_id.to_string();
            if ours && recent && cve_ids::get(&mut tx, &id).await?.is_none() {
                found.push((info.reserved.clone().unwrap_or_default(), id));
            }
        }
        tx.rollback().await?;
        if found.is_empty() {
            return Ok(None);
        }
        found.sort();
        found.truncate(self.request.amount as usize);
        Ok(Some(found.into_iter().map(|(_, id)| (id, CveIdState::Reserved)).collect()))
    }

    async fn call(&self, app: &App) -> Result<Self::Output, JobError> {
        let outcome =
            client(app)?.reserve(self.request.amount, self.request.year, Batch::Sequential).await.map_err(job_error)?;
        let reservation = match outcome {
            Outcome::Done(reservation) => reservation,
            Outcome::DryRun(_) => {
                return Err(JobError::Permanent("cve_services.dry_run is on: nothing was sent".into()));
            }
        };
        let mut ids = Vec::new();
        for info in &reservation.ids {
            let id = info.cve_id.to_string();
            let state = CveIdState::parse(info.state.as_str()).ok_or_else(|| {
                JobError::Permanent(format!("CVE Services: {id} has the unknown state {:?}", info.state.as_str()))
            })?;
            ids.push((id, state));
        }
        Ok(ids)
    }

    async fn record_in(
        &self,
        tx: &mut Tx,
        app: &App,
        intent: &Intent,
        ids: &Self::Output,
        reconciled: bool,
    ) -> Result<String, AppError> {
        // The requester's permission was checked with the intent; the job carries it out.
        for (id, state) in ids {
            cve_ids::insert(tx, id, *state, &intent.requested_by, app.now()).await?;
        }
        let list: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        let details = format!(
            "ids={} intent={} requested_by={} reconciled={reconciled}",
            list.join(","),
            intent.id,
            intent.requested_by
        );
        audit::record(tx, app, &Actor::System("cve"), "cve.reserve", "cve", &details).await?;
        Ok(list.join(","))
    }

    async fn record_failure_in(&self, tx: &mut Tx, app: &App, intent: &Intent, reason: &str) -> Result<(), AppError> {
        let details = format!("count={} intent={} reason={reason}", self.request.amount, intent.id);
        audit::record(tx, app, &Actor::System("cve"), "cve.reserve.failed", "cve", &details).await?;
        Ok(())
    }
}

/// The IDs reserved here, newest first.
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<CveIdRow>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManageCveIds).await?;
    let rows = cve_ids::list(&mut tx).await?;
    tx.rollback().await?;
    Ok(rows)
}

/// Assigns a reserved ID to an advisory: the ID goes into its record, which goes back to
/// draft (its outputs changed, so it is reviewed again).
pub async fn assign(app: &App, actor: &Actor, cve_id: &str, advisory_id: &str) -> Result<(), AppError> {
    let id = parse_id(cve_id)?.to_string();
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCveIds).await?;
    let row = cve_ids::get(&mut tx, &id).await?.ok_or_else(|| AppError::NotFound(format!("reserved ID {id}")))?;
    if row.advisory.is_some() {
        return Err(AppError::Conflict(format!("{id} is already assigned to {}", row.advisory_id.unwrap_or_default())));
    }
    row.state.check(CveIdStep::Assign)?;
    let advisory = embargo_store::advisories::get(&mut tx, advisory_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("advisory {advisory_id}")))?;
    let mut record: embargo_advisory::AdvisoryRecord =
        serde_json::from_str(&advisory.record).map_err(|e| AppError::Internal(e.into()))?;
    record.cve_id = Some(id.clone());
    record.modified = now;
    let json = serde_json::to_string(&record).map_err(|e| AppError::Internal(e.into()))?;
    embargo_store::advisories::update_record(&mut tx, advisory.id, &advisory.advisory_id, &json, now).await?;
    crate::advisories::edited_in(&mut tx, actor, &advisory, now).await?;
    cve_ids::assign(&mut tx, &id, advisory.id, now).await?;
    let subject = format!("advisory:{}", advisory.advisory_id);
    audit::record(&mut tx, app, actor, "cve.assign", &subject, &format!("cve={id}")).await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes (or updates) an approved or published advisory's CNA container at CVE
/// Services, as an external effect (see [`crate::intents`]): the intent (the ID, the hash
/// of the container, an idempotency key) is recorded with the permission check and an audit
/// entry, the call runs as a `cve.publish` job which this command drives at once, and the
/// result is recorded after. After a crash, the next attempt (this command again, or any
/// worker once the lease expired) first reads the ID's state at CVE Services and records a
/// publication that happened instead of sending it twice. Dry run sends and records
/// nothing.
pub async fn publish(app: &App, actor: &Actor, advisory_id: &str) -> Result<Done<String>, AppError> {
    permitted(app, actor, Permission::PublishCve).await?;
    let advisory = crate::advisories::get(app, actor, advisory_id).await?;
    if !matches!(advisory.state, AdvisoryState::Approved | AdvisoryState::Published) {
        return Err(AppError::Conflict(format!(
            "advisory {advisory_id} is {}; only an approved or published advisory goes to CVE Services",
            advisory.state
        )));
    }
    let id = advisory
        .record
        .cve_id
        .clone()
        .ok_or_else(|| AppError::Invalid(format!("advisory {advisory_id} has no CVE ID; assign one first")))?;
    if !advisory.validation.is_publishable() {
        return Err(AppError::Invalid(advisory.validation.problems().join("\n")));
    }
    let container = embargo_advisory::cve::cna_container(&advisory.record, &crate::advisories::publisher(app));
    let cve = parse_id(&id)?;
    let client = client(app)?;
    let subject = format!("advisory:{}", advisory.id);
    if client.config().dry_run {
        let mut tx = app.store.snapshot().await?;
        let row = cve_ids::get(&mut tx, &id).await?;
        tx.rollback().await?;
        let row = row.ok_or_else(|| AppError::NotFound(format!("{id} was not reserved here")))?;
        let outcome = match row.state.check(CveIdStep::Publish)?.1 {
            Write::Create => client.publish(&cve, &container).await,
            Write::Update => client.update(&cve, &container).await,
        }
        .map_err(service_error)?;
        let mut tx = app.store.begin().await?;
        audit::record(&mut tx, app, actor, "cve.publish", &subject, &format!("cve={id} dry_run=true")).await?;
        tx.commit().await?;
        return Ok(match outcome {
            Outcome::DryRun(planned) => Done::DryRun(planned.to_string()),
            Outcome::Done(_) => Done::Sent(id),
        });
    }
    // The intent, with the permission check and the audit entry.
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::PublishCve).await?;
    let row =
        cve_ids::get(&mut tx, &id).await?.ok_or_else(|| AppError::NotFound(format!("{id} was not reserved here")))?;
    let operation = match row.state.check(CveIdStep::Publish)?.1 {
        Write::Create => PUBLISH,
        Write::Update => UPDATE,
    };
    let hash = container_hash(&container)?;
    let destination = destination(&id);
    let requested = intents::request_in::<PublishRecord>(
        &mut tx,
        app,
        actor,
        &Effect { operation, destination: &destination, content_hash: &hash },
        (),
    )
    .await?;
    let intent = requested.intent().clone();
    if intent.operation != PUBLISH && intent.operation != UPDATE {
        return Err(AppError::Conflict(format!(
            "{id}: another request ({}) is in flight; run again once it is done",
            intent.operation
        )));
    }
    let details = match &requested {
        Requested::New(_) => format!("cve={id} intent={} operation={operation} hash={hash}", intent.id),
        Requested::InFlight(_) => format!("cve={id} intent={} in_flight=true", intent.id),
    };
    audit::record(&mut tx, app, actor, "cve.publish.request", &subject, &details).await?;
    tx.commit().await?;
    match intents::drive::<PublishRecord>(app, &intent).await? {
        Driven::Done(_) => Ok(Done::Sent(id)),
        Driven::Failed(reason) => Err(AppError::Invalid(format!("CVE Services: {reason}"))),
        Driven::Pending(why) => Err(AppError::Unavailable(format!(
            "CVE Services: {why}; the publication of {id} is recorded and will be retried by the job workers"
        ))),
    }
}

/// The intent operations of [`PublishRecord`].
const PUBLISH: &str = "cve.publish";
const UPDATE: &str = "cve.update";

/// Where a publication goes.
fn destination(id: &str) -> String {
    format!("cve-services:{id}")
}

/// The hash of a CNA container as sent (keys in order, so the same container always
/// hashes the same).
fn container_hash(container: &serde_json::Value) -> Result<String, AppError> {
    Ok(intents::content_hash(&serde_json::to_vec(container).map_err(|e| AppError::Internal(e.into()))?))
}

/// Publishing or updating an advisory's CVE record at CVE Services: the effect behind the
/// `cve.publish` job (see [`publish`]).
#[derive(Debug)]
pub struct PublishRecord {
    cve: CveId,
    advisory_id: String,
    container: serde_json::Value,
    update: bool,
}

impl ExternalEffect for PublishRecord {
    const KIND: &'static str = "cve.publish";
    type Output = ();
    type Request = ();

    async fn prepare(app: &App, intent: &Intent, (): ()) -> Result<Self, JobError> {
        let id = intent
            .destination
            .strip_prefix("cve-services:")
            .ok_or_else(|| JobError::Permanent(format!("not a CVE Services destination: {}", intent.destination)))?;
        let cve = CveId::parse(id).map_err(JobError::Permanent)?;
        let mut tx = app.store.snapshot().await?;
        let row = cve_ids::get(&mut tx, id).await?;
        let advisory = match row.as_ref().and_then(|r| r.advisory_id.as_deref()) {
            Some(advisory_id) => embargo_store::advisories::get(&mut tx, advisory_id).await?,
            None => None,
        };
        tx.rollback().await?;
        let advisory = advisory.ok_or_else(|| JobError::Permanent(format!("{id} is not assigned to an advisory")))?;
        let record: embargo_advisory::AdvisoryRecord =
            serde_json::from_str(&advisory.record).map_err(|e| JobError::Permanent(e.to_string()))?;
        let container = embargo_advisory::cve::cna_container(&record, &crate::advisories::publisher(app));
        if container_hash(&container)? != intent.content_hash {
            return Err(JobError::Permanent(format!(
                "advisory {} changed after its publication was requested; publish it again",
                advisory.advisory_id
            )));
        }
        Ok(Self { cve, advisory_id: advisory.advisory_id, container, update: intent.operation == UPDATE })
    }

    async fn reconcile(&self, app: &App) -> Result<Option<()>, JobError> {
        if self.update {
            // A whole-container PUT: repeating it after a crash leaves the same record.
            return Ok(None);
        }
        let info = client(app)?.get_id(&self.cve).await.map_err(job_error)?;
        match CveIdState::parse(info.state.as_str()) {
            Some(CveIdState::Published) => Ok(Some(())),
            Some(CveIdState::Rejected) => Err(JobError::Permanent(format!("{} is rejected at CVE Services", self.cve))),
            _ => Ok(None),
        }
    }

    async fn call(&self, app: &App) -> Result<(), JobError> {
        let client = client(app)?;
        let outcome = if self.update {
            client.update(&self.cve, &self.container).await
        } else {
            client.publish(&self.cve, &self.container).await
        }
        .map_err(job_error)?;
        match outcome {
            Outcome::Done(_) => Ok(()),
            Outcome::DryRun(_) => Err(JobError::Permanent("cve_services.dry_run is on: nothing was sent".into())),
        }
    }

    async fn record_in(
        &self,
        tx: &mut Tx,
        app: &App,
        intent: &Intent,
        _: &(),
        reconciled: bool,
    ) -> Result<String, AppError> {
        let actor = Actor::System("cve");
        authz::require(tx, &actor, Permission::PublishCve).await?;
        let id = self.cve.to_string();
        cve_ids::set_state(tx, &id, CveIdState::Published, app.now()).await?;
        let details =
            format!("cve={id} intent={} requested_by={} reconciled={reconciled}", intent.id, intent.requested_by);
        audit::record(tx, app, &actor, "cve.publish", &format!("advisory:{}", self.advisory_id), &details).await?;
        Ok(format!("{id} PUBLISHED{}", if reconciled { " (found published)" } else { "" }))
    }

    async fn record_failure_in(&self, tx: &mut Tx, app: &App, intent: &Intent, reason: &str) -> Result<(), AppError> {
        let details = format!("cve={} intent={} reason={reason}", self.cve, intent.id);
        let subject = format!("advisory:{}", self.advisory_id);
        audit::record(tx, app, &Actor::System("cve"), "cve.publish.failed", &subject, &details).await?;
        Ok(())
    }
}

fn job_error(err: embargo_cve::Error) -> JobError {
    if err.is_retryable() {
        JobError::Retry(format!("CVE Services: {err}"))
    } else {
        JobError::Permanent(err.to_string())
    }
}

/// Rejects an ID (with a reason in English), as an external effect (see [`RejectId`]): the
/// intent (the ID, the hash of the reason) is recorded with the permission check and an
/// audit entry, the call runs as a `cve.reject` job which this command drives at once, and
/// the state is recorded after. When the answer was lost, the next attempt reads the ID's
/// state at CVE Services and records a rejection that happened instead of sending it again.
/// Dry run sends and records nothing.
pub async fn reject(app: &App, actor: &Actor, cve_id: &str, reason: &str) -> Result<Done<String>, AppError> {
    admin(app, actor).await?;
    let cve = parse_id(cve_id)?;
    let id = cve.to_string();
    let mut tx = app.store.snapshot().await?;
    let row = cve_ids::get(&mut tx, &id).await?;
    tx.rollback().await?;
    let row = row.ok_or_else(|| AppError::NotFound(format!("{id} was not reserved here")))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::Invalid("give the reason for the rejection".into()));
    }
    let client = client(app)?;
    let (_, write) = row.state.check(CveIdStep::Reject)?;
    if client.config().dry_run {
        let outcome = match write {
            Write::Create => client.reject(&cve, reason, &[]).await,
            Write::Update => client.reject_existing(&cve, reason, &[]).await,
        }
        .map_err(service_error)?;
        let mut tx = app.store.begin().await?;
        audit::record(&mut tx, app, actor, "cve.reject", "cve", &format!("cve={id} dry_run=true")).await?;
        tx.commit().await?;
        return Ok(match outcome {
            Outcome::DryRun(planned) => Done::DryRun(planned.to_string()),
            Outcome::Done(_) => Done::Sent(id),
        });
    }
    let request = RejectRequest { reason: reason.to_owned() };
    let hash = request.hash();
    let destination = destination(&id);
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCveIds).await?;
    let requested = intents::request_in::<RejectId>(
        &mut tx,
        app,
        actor,
        &Effect { operation: REJECT, destination: &destination, content_hash: &hash },
        request,
    )
    .await?;
    let intent = requested.intent().clone();
    if intent.operation != REJECT {
        return Err(AppError::Conflict(format!(
            "{id}: another request ({}) is in flight; run again once it is done",
            intent.operation
        )));
    }
    let details = match &requested {
        Requested::New(_) => format!("cve={id} intent={} hash={hash}", intent.id),
        Requested::InFlight(_) => format!("cve={id} intent={} in_flight=true", intent.id),
    };
    audit::record(&mut tx, app, actor, "cve.reject.request", "cve", &details).await?;
    tx.commit().await?;
    match intents::drive::<RejectId>(app, &intent).await? {
        Driven::Done(_) => Ok(Done::Sent(id)),
        Driven::Failed(reason) => Err(AppError::Invalid(format!("CVE Services: {reason}"))),
        Driven::Pending(why) => Err(AppError::Unavailable(format!(
            "CVE Services: {why}; the rejection of {id} is recorded and will be retried by the job workers"
        ))),
    }
}

/// What a rejection asks for: the payload of its job, hashed into its intent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRequest {
    reason: String,
}

impl RejectRequest {
    fn hash(&self) -> String {
        intents::content_hash(self.reason.as_bytes())
    }
}

/// Rejecting an ID at CVE Services: the effect behind the `cve.reject` job (see [`reject`]).
/// Reconciled with `GET /cve-id/{id}`: an ID REJECTED there (and not here) was rejected.
#[derive(Debug)]
pub struct RejectId {
    cve: CveId,
    reason: String,
    /// The ID has a record (published, or rejected before): `PUT` rather than `POST`.
    existing: bool,
    /// Already rejected here: a new reason replaces the old (a `PUT` that is safe to repeat).
    again: bool,
}

impl ExternalEffect for RejectId {
    const KIND: &'static str = "cve.reject";
    type Output = ();
    type Request = RejectRequest;

    async fn prepare(app: &App, intent: &Intent, request: RejectRequest) -> Result<Self, JobError> {
        if request.hash() != intent.content_hash {
            return Err(JobError::Permanent(format!("the rejection of intent {} does not match its hash", intent.id)));
        }
        let id = intent
            .destination
            .strip_prefix("cve-services:")
            .ok_or_else(|| JobError::Permanent(format!("not a CVE Services destination: {}", intent.destination)))?;
        let cve = CveId::parse(id).map_err(JobError::Permanent)?;
        let mut tx = app.store.snapshot().await?;
        let row = cve_ids::get(&mut tx, id).await?;
        tx.rollback().await?;
        let row = row.ok_or_else(|| JobError::Permanent(format!("{id} was not reserved here")))?;
        let (_, write) = row.state.check(CveIdStep::Reject).map_err(|e| JobError::Permanent(e.to_string()))?;
        Ok(Self {
            cve,
            reason: request.reason,
            existing: write == Write::Update,
            again: row.state == CveIdState::Rejected,
        })
    }

    async fn reconcile(&self, app: &App) -> Result<Option<()>, JobError> {
        if self.again {
            // Replacing the reason of a rejected record: repeating the PUT leaves the same.
            return Ok(None);
        }
        let info = client(app)?.get_id(&self.cve).await.map_err(job_error)?;
        Ok((CveIdState::parse(info.state.as_str()) == Some(CveIdState::Rejected)).then_some(()))
    }

    async fn call(&self, app: &App) -> Result<(), JobError> {
        let client = client(app)?;
        let outcome = if self.existing {
            client.reject_existing(&self.cve, &self.reason, &[]).await
        } else {
            client.reject(&self.cve, &self.reason, &[]).await
        }
        .map_err(job_error)?;
        match outcome {
            Outcome::Done(_) => Ok(()),
            Outcome::DryRun(_) => Err(JobError::Permanent("cve_services.dry_run is on: nothing was sent".into())),
        }
    }

    async fn record_in(
        &self,
        tx: &mut Tx,
        app: &App,
        intent: &Intent,
        _: &(),
        reconciled: bool,
    ) -> Result<String, AppError> {
        // The requester's permission was checked with the intent; the job carries it out.
        let id = self.cve.to_string();
        cve_ids::set_state(tx, &id, CveIdState::Rejected, app.now()).await?;
        let details =
            format!("cve={id} intent={} requested_by={} reconciled={reconciled}", intent.id, intent.requested_by);
        audit::record(tx, app, &Actor::System("cve"), "cve.reject", "cve", &details).await?;
        Ok(format!("{id} REJECTED{}", if reconciled { " (found rejected)" } else { "" }))
    }

    async fn record_failure_in(&self, tx: &mut Tx, app: &App, intent: &Intent, reason: &str) -> Result<(), AppError> {
        let details = format!("cve={} intent={} reason={reason}", self.cve, intent.id);
        audit::record(tx, app, &Actor::System("cve"), "cve.reject.failed", "cve", &details).await?;
        Ok(())
    }
}
