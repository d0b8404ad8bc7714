//! CVE Services: reserving IDs, assigning them to advisories, publishing an advisory's CNA
//! container, rejecting IDs (`ManageCveIds`; publishing is `PublishCve`, which the system holds
//! too, for a job), audited; the
//! configured dry run (the default) shows what would be sent and sends nothing. See ADR 11.
//!
//! The network call happens outside any database transaction; what it changed is recorded
//! afterwards, in one transaction with its audit entry.

use embargo_cve::{ApiKey, Batch, Client, CveId, Environment, Outcome};
use embargo_domain::cve_id::Write;
use embargo_domain::{Actor, AdvisoryState, CveIdState, CveIdStep};
use embargo_store::cve_ids::{self, CveIdRow};

use crate::authz::{self, Permission};
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

async fn allowed(app: &App, actor: &Actor, permission: Permission) -> Result<(), AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, permission).await?;
    tx.rollback().await?;
    Ok(())
}

fn parse_id(text: &str) -> Result<CveId, AppError> {
    CveId::parse(text.trim()).map_err(AppError::Invalid)
}

/// Reserves `count` IDs for this year (sequential) and records them.
pub async fn reserve(app: &App, actor: &Actor, count: u32) -> Result<Done<Vec<String>>, AppError> {
    allowed(app, actor, Permission::ManageCveIds).await?;
    if !(1..=10).contains(&count) {
        return Err(AppError::Invalid("reserve between 1 and 10 IDs at a time".into()));
    }
    let year = u16::try_from(app.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year())
        .map_err(|e| AppError::Internal(e.into()))?;
    let outcome = client(app)?.reserve(count, year, Batch::Sequential).await.map_err(service_error)?;
    let mut tx = app.store.begin().await?;
    let result = match outcome {
        Outcome::DryRun(planned) => {
            audit::record(&mut tx, app, actor, "cve.reserve", "cve", &format!("count={count} dry_run=true")).await?;
            Done::DryRun(planned.to_string())
        }
        Outcome::Done(reservation) => {
            let mut ids = Vec::new();
            for info in &reservation.ids {
                let id = info.cve_id.to_string();
                let state = CveIdState::parse(info.state.as_str()).ok_or_else(|| {
                    AppError::Invalid(format!("CVE Services: {id} has the unknown state {:?}", info.state.as_str()))
                })?;
                cve_ids::insert(&mut tx, &id, state, &actor.to_string(), app.now()).await?;
                ids.push(id);
            }
            audit::record(&mut tx, app, actor, "cve.reserve", "cve", &format!("ids={}", ids.join(","))).await?;
            Done::Sent(ids)
        }
    };
    tx.commit().await?;
    Ok(result)
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
    crate::advisories::edited_in(&mut tx, actor, &advisory, now).await?;
    embargo_store::advisories::update_record(&mut tx, advisory.id, advisory_id, &json, now).await?;
    cve_ids::assign(&mut tx, &id, advisory.id, now).await?;
    audit::record(&mut tx, app, actor, "cve.assign", &format!("advisory:{advisory_id}"), &format!("cve={id}")).await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes (or updates) an approved or published advisory's CNA container at CVE
/// Services.
pub async fn publish(app: &App, actor: &Actor, advisory_id: &str) -> Result<Done<String>, AppError> {
    allowed(app, actor, Permission::PublishCve).await?;
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
    let mut tx = app.store.snapshot().await?;
    let row = cve_ids::get(&mut tx, &id).await?;
    tx.rollback().await?;
    let row = row.ok_or_else(|| AppError::NotFound(format!("{id} was not reserved here")))?;
    let container = embargo_advisory::cve::cna_container(&advisory.record, &crate::advisories::publisher(app));
    let cve = parse_id(&id)?;
    let client = client(app)?;
    let (to, write) = row.state.check(CveIdStep::Publish)?;
    let outcome = match write {
        Write::Create => client.publish(&cve, &container).await,
        Write::Update => client.update(&cve, &container).await,
    }
    .map_err(service_error)?;
    let mut tx = app.store.begin().await?;
    let subject = format!("advisory:{advisory_id}");
    let result = match outcome {
        Outcome::DryRun(planned) => {
            audit::record(&mut tx, app, actor, "cve.publish", &subject, &format!("cve={id} dry_run=true")).await?;
            Done::DryRun(planned.to_string())
        }
        Outcome::Done(_) => {
            cve_ids::set_state(&mut tx, &id, to, app.now()).await?;
            audit::record(&mut tx, app, actor, "cve.publish", &subject, &format!("cve={id}")).await?;
            Done::Sent(id.clone())
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// Rejects an ID (with a reason in English).
pub async fn reject(app: &App, actor: &Actor, cve_id: &str, reason: &str) -> Result<Done<String>, AppError> {
    allowed(app, actor, Permission::ManageCveIds).await?;
    let cve = parse_id(cve_id)?;
    let id = cve.to_string();
    let mut tx = app.store.snapshot().await?;
    let row = cve_ids::get(&mut tx, &id).await?;
    tx.rollback().await?;
    let row = row.ok_or_else(|| AppError::NotFound(format!("{id} was not reserved here")))?;
    if reason.trim().is_empty() {
        return Err(AppError::Invalid("give the reason for the rejection".into()));
    }
    let client = client(app)?;
    let (to, write) = row.state.check(CveIdStep::Reject)?;
    let outcome = match write {
        Write::Create => client.reject(&cve, reason.trim(), &[]).await,
        Write::Update => client.reject_existing(&cve, reason.trim(), &[]).await,
    }
    .map_err(service_error)?;
    let mut tx = app.store.begin().await?;
    let result = match outcome {
        Outcome::DryRun(planned) => {
            audit::record(&mut tx, app, actor, "cve.reject", "cve", &format!("cve={id} dry_run=true")).await?;
            Done::DryRun(planned.to_string())
        }
        Outcome::Done(_) => {
            cve_ids::set_state(&mut tx, &id, to, app.now()).await?;
            audit::record(&mut tx, app, actor, "cve.reject", "cve", &format!("cve={id}")).await?;
            Done::Sent(id)
        }
    };
    tx.commit().await?;
    Ok(result)
}
