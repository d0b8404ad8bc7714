//! Advisories: drafts written from reports (or imported from OSV), reviewed by a second
//! person, and published: every output computed from the record, validated, the CSAF
//! document signed with the instance's OpenPGP key, and stored as a publication that the
//! public routes serve.
//!
//! States and steps are the domain's `AdvisoryReview` machine: `draft` → `in-review` (only
//! when every output is valid) → `approved` (by someone who neither edited the revision nor
//! asked for its review) → `published` (by someone holding `PublishAdvisory`: admins).
//! Every edit (including a CVE ID assigned) adds its actor to the revision's editors and
//! returns the advisory to draft. Editing a published advisory makes a new draft revision;
//! the public keeps the last published one until the next publication.
//!
//! Need-to-know: admins see every advisory; a responder sees one only when it covers at
//! least one report and they may read every report it covers. Anything else is "not found".

use embargo_advisory::{AdvisoryId, AdvisoryRecord, Publisher, PublisherCategory, Report as Validation};
use embargo_domain::access::Grant;
use embargo_domain::actor::identity_of;
use embargo_domain::{Actor, AdvisoryReview, AdvisoryState, AdvisoryStep, ReferenceId, ReportId, Timestamp};
use embargo_store::Tx;
/// One published revision as the public routes serve it.
pub use embargo_store::advisories::Publication;
use embargo_store::advisories::{self as store, AdvisoryRow};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// An advisory as the team sees it.
#[derive(Debug, Clone)]
pub struct Advisory {
    /// The internal handle (`DRAFT-YYYY-NNNN`), stable from creation on.
    pub id: String,
    /// The public ID, assigned at the first publication.
    pub public_id: Option<String>,
    /// Where it is in its review.
    pub state: AdvisoryState,
    /// The record.
    pub record: AdvisoryRecord,
    /// What validation of every output says now.
    pub validation: Validation,
    /// The reports it covers.
    pub reports: Vec<ReferenceId>,
    /// Who asked for review.
    pub submitted_by: Option<String>,
    /// Who approved.
    pub approved_by: Option<String>,
    /// Who edited the revision under review (identities: `user:7`), none of whom may
    /// approve it.
    pub editors: Vec<String>,
    /// How many revisions were published.
    pub published_revisions: i64,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The publisher named in outputs, from the configuration.
pub fn publisher(app: &App) -> Publisher {
    let config = &app.config;
    let a = &config.advisories;
    let non_empty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    Publisher {
        name: config.organisation.name.clone(),
        namespace: non_empty(&a.publisher_namespace).unwrap_or_else(|| config.base_url()),
        contact: Some(config.organisation.security_address.clone()),
        category: match a.publisher_category.as_str() {
            "coordinator" => PublisherCategory::Coordinator,
            "discoverer" => PublisherCategory::Discoverer,
            "user" => PublisherCategory::User,
            "other" => PublisherCategory::Other,
            _ => PublisherCategory::Vendor,
        },
        cve_org_id: non_empty(&a.cve_org_id),
        cve_short_name: non_empty(&a.cve_short_name),
        csaf_documents_url: config.csaf_provider_url().map(|base| format!("{base}/.well-known/csaf/white")),
    }
}

/// The prefix of internal handles: drafts and imports are `DRAFT-YYYY-NNNN` until their
/// publication gives them a public ID (ADR 23).
pub const HANDLE_PREFIX: &str = "DRAFT";

fn prefix(app: &App) -> Result<embargo_domain::ReferencePrefix, AppError> {
    let text = match app.config.advisories.prefix.as_str() {
        "" => app.config.organisation.reference_prefix.as_str(),
        p => p,
    };
    if text == HANDLE_PREFIX {
        return Err(AppError::Invalid(format!("{HANDLE_PREFIX} is the prefix of draft handles, not a public prefix")));
    }
    embargo_domain::ReferencePrefix::parse(text).map_err(|e| AppError::Invalid(e.to_string()))
}

fn year_of(now: Timestamp) -> i16 {
    now.to_zoned_datetime(jiff::tz::TimeZone::UTC).year()
}

/// A new internal handle for a draft or an import.
async fn new_handle(tx: &mut Tx, now: Timestamp) -> Result<AdvisoryId, AppError> {
    let year = year_of(now);
    let number = store::next_handle(tx, year).await?;
    let prefix = embargo_domain::ReferencePrefix::parse(HANDLE_PREFIX).map_err(|e| AppError::Internal(e.into()))?;
    AdvisoryId::new(prefix, year, number).map_err(|e| AppError::Internal(anyhow::anyhow!("{e:?}")))
}

fn parse_record(row: &AdvisoryRow) -> Result<AdvisoryRecord, AppError> {
    serde_json::from_str(&row.record).map_err(|e| AppError::Internal(e.into()))
}

fn to_json(record: &AdvisoryRecord) -> Result<String, AppError> {
    serde_json::to_string(record).map_err(|e| AppError::Internal(e.into()))
}

fn subject(id: &str) -> String {
    format!("advisory:{id}")
}

fn state_of(row: &AdvisoryRow) -> Result<AdvisoryState, AppError> {
    AdvisoryState::parse(&row.state).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("advisory {} has the unknown state {:?}", row.advisory_id, row.state))
    })
}

/// The review machine of a stored advisory.
async fn review_of(tx: &mut Tx, row: &AdvisoryRow) -> Result<AdvisoryReview, AppError> {
    let editors = store::editors(tx, row.id).await?;
    Ok(AdvisoryReview::restore(state_of(row)?, editors.iter().map(|e| identity_of(e)), row.submitted_by.as_deref()))
}

async fn save_editors(tx: &mut Tx, id: i64, review: &AdvisoryReview) -> Result<(), AppError> {
    store::set_editors(tx, id, &review.editors().collect::<Vec<_>>()).await?;
    Ok(())
}

/// Records an edit of a stored advisory's record by `actor` (the record itself is written
/// by the caller): the actor becomes an editor of the revision, and the advisory returns to
/// draft. Returns the state it was in.
pub(crate) async fn edited_in(
    tx: &mut Tx,
    actor: &Actor,
    row: &AdvisoryRow,
    now: Timestamp,
) -> Result<AdvisoryState, AppError> {
    let mut review = review_of(tx, row).await?;
    let from = review.state();
    let to = review.apply(AdvisoryStep::Edit, actor)?;
    if to != from {
        store::set_state(tx, row.id, to.code(), None, None, now).await?;
    }
    save_editors(tx, row.id, &review).await?;
    Ok(from)
}

/// Loads an advisory the actor may see, else "not found".
async fn find(tx: &mut Tx, actor: &Actor, id: &str) -> Result<AdvisoryRow, AppError> {
    authz::require(tx, actor, Permission::EditAdvisory).await?;
    let not_found = || AppError::NotFound(format!("advisory {id}"));
    let row = store::get(tx, id).await?.ok_or_else(not_found)?;
    if !may_see(tx, actor, row.id).await? {
        return Err(not_found());
    }
    Ok(row)
}

async fn may_see(tx: &mut Tx, actor: &Actor, advisory: i64) -> Result<bool, AppError> {
    if authz::grant(actor, Permission::EditAdvisory) == Grant::All {
        return Ok(true);
    }
    let reports = store::reports(tx, advisory).await?;
    if reports.is_empty() {
        return Ok(false);
    }
    for report in reports {
        if authz::require(tx, actor, Permission::ReadReport.on(report)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn view(tx: &mut Tx, app: &App, row: AdvisoryRow) -> Result<Advisory, AppError> {
    let record = parse_record(&row)?;
    let mut reports = Vec::new();
    for id in store::reports(tx, row.id).await? {
        if let Some(report) = embargo_store::reports::get(tx, id).await? {
            reports.push(report.reference);
        }
    }
    let published_revisions = published_revisions(tx, &row).await?;
    let review = review_of(tx, &row).await?;
    Ok(Advisory {
        validation: embargo_advisory::validate_outputs(&record, &publisher(app)),
        editors: review.editors().map(str::to_owned).collect(),
        state: review.state(),
        id: row.advisory_id,
        public_id: row.public_id,
        record,
        reports,
        submitted_by: row.submitted_by,
        approved_by: row.approved_by,
        published_revisions,
        updated_at: row.updated_at,
    })
}

async fn published_revisions(tx: &mut Tx, row: &AdvisoryRow) -> Result<i64, AppError> {
    Ok(store::latest_publication(tx, row.id).await?.map_or(0, |p| p.revision))
}

/// A new draft, covering `report` when given: its title, and from its assessment the CVSS
/// vectors, CWE identifiers and the affected versions of catalogue products.
pub async fn create(app: &App, actor: &Actor, title: &str, report: Option<&ReferenceId>) -> Result<String, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::EditAdvisory).await?;
    let linked = match report {
        Some(reference) => {
            let record = embargo_store::reports::get_by_reference(&mut tx, reference)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("report {reference}")))?;
            match authz::require(&mut tx, actor, Permission::ReadReport.on(record.id)).await {
                Err(AppError::Forbidden(_)) => return Err(AppError::NotFound(format!("report {reference}"))),
                other => other?,
            }
            Some(record)
        }
        None if authz::grant(actor, Permission::EditAdvisory) != Grant::All => {
            return Err(AppError::Invalid("start an advisory from a report you work on".into()));
        }
        None => None,
    };
    let id = new_handle(&mut tx, now).await?;
    let title = title.trim();
    let mut record = AdvisoryRecord {
        id: id.clone(),
        cve_id: None,
        aliases: Vec::new(),
        related: Vec::new(),
        title: match (title, &linked) {
            ("", Some(report)) => report.title.clone(),
            (t, _) => t.to_owned(),
        },
        summary: String::new(),
        details: String::new(),
        affected: Vec::new(),
        severity: Default::default(),
        weaknesses: Vec::new(),
        credits: Vec::new(),
        references: Vec::new(),
        workarounds: String::new(),
        revisions: Vec::new(),
        published: None,
        modified: now,
        withdrawn: None,
        withdrawn_reason: String::new(),
        upstream: Vec::new(),
        database_specific: None,
    };
    if let Some(report) = &linked {
        prefill(&mut tx, app, &mut record, report).await?;
    }
    let advisory = store::insert(&mut tx, &id.to_string(), &to_json(&record)?, &actor.to_string(), now).await?;
    save_editors(&mut tx, advisory, &AdvisoryReview::new(actor)).await?;
    if let Some(report) = &linked {
        store::link_report(&mut tx, advisory, report.id).await?;
    }
    let details = linked.as_ref().map_or_else(String::new, |r| format!("report={}", r.reference));
    audit::record(&mut tx, app, actor, "advisory.create", &subject(&id.to_string()), &details).await?;
    tx.commit().await?;
    Ok(id.to_string())
}

/// Fills a new record from a report's assessment and the product catalogue.
async fn prefill(
    tx: &mut Tx,
    app: &App,
    record: &mut AdvisoryRecord,
    report: &embargo_store::reports::ReportRecord,
) -> Result<(), AppError> {
    let assessment = crate::assessment::get_in(tx, report.id).await?;
    record.severity.cvss_v3_1 = assessment.cvss_v3.clone();
    record.severity.cvss_v4_0 = assessment.cvss_v4.clone();
    record.weaknesses =
        assessment.cwe.iter().map(|id| embargo_advisory::Weakness { id: id.clone(), name: None }).collect();
    let products = embargo_store::products::list(tx).await?;
    add_affected(app, record, &assessment.affected, &products, None);
    record.credits = reporter_credit(tx, report).await?.into_iter().collect();
    Ok(())
}

/// The credit the reporter asked for on the report form: by the name they gave (the credit
/// name, else their name), as an anonymous reporter, or none. Reports that came another way
/// carry no choice: the team asks.
async fn reporter_credit(
    tx: &mut Tx,
    report: &embargo_store::reports::ReportRecord,
) -> Result<Option<embargo_advisory::Credit>, AppError> {
    let Some(details) = report.details.as_deref() else { return Ok(None) };
    let details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let choice = details.get("credit").and_then(|c| c.as_str()).unwrap_or("name");
    let name = match choice {
        "none" => return Ok(None),
        "anonymous" => "Anonymous reporter".to_owned(),
        _ => {
            let given = details.get("credit_name").and_then(|c| c.as_str()).unwrap_or("").trim().to_owned();
            if given.is_empty() {
                let reporter = embargo_store::reporters::get(tx, report.reporter_id).await?;
                match reporter.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
                    Some(name) => name,
                    None => return Ok(None),
                }
            } else {
                given
            }
        }
    };
    // One line in the editor: no line breaks or control characters.
    let name: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    Ok(Some(embargo_advisory::Credit {
        name: name.trim().to_owned(),
        contact: Vec::new(),
        kind: Some(embargo_advisory::CreditType::Reporter),
    }))
}

/// The advisories that cover `report` and are not yet published (drafts, in review,
/// approved), as (handle, title), for the warning before another is started.
pub async fn open_for_report(
    app: &App,
    actor: &Actor,
    report: &ReferenceId,
) -> Result<Vec<(String, String)>, AppError> {
    let all = list(app, actor, None).await?;
    Ok(all
        .into_iter()
        .filter(|a| {
            a.reports.contains(report)
                && matches!(a.state, AdvisoryState::Draft | AdvisoryState::InReview | AdvisoryState::Approved)
        })
        .map(|a| (a.id, a.title))
        .collect())
}

/// Adds the affected ranges of an assessment to a record: one range per row, grouped by
/// catalogue product (only `only`, when given).
fn add_affected(
    app: &App,
    record: &mut AdvisoryRecord,
    rows: &[crate::assessment::Affected],
    products: &[embargo_store::products::ProductRecord],
    only: Option<i64>,
) {
    for row in rows.iter().filter(|r| only.is_none_or(|p| p == r.product_id)) {
        let Some(product) = products.iter().find(|p| p.id == row.product_id) else { continue };
        let mut events = vec![embargo_advisory::Event::Introduced(row.introduced.clone())];
        if !row.fixed.is_empty() {
            events.push(embargo_advisory::Event::Fixed(row.fixed.clone()));
        } else if !row.last_affected.is_empty() {
            events.push(embargo_advisory::Event::LastAffected(row.last_affected.clone()));
        }
        let range = embargo_advisory::Range {
            kind: if product.ecosystem.is_empty() {
                embargo_advisory::RangeKind::Ecosystem
            } else {
                embargo_advisory::RangeKind::Semver
            },
            events,
            database_specific: None,
        };
        match record.affected.iter_mut().find(|a| a.product == product.name) {
            Some(existing) => existing.ranges.push(range),
            None => record.affected.push(embargo_advisory::Affected {
                product: product.name.clone(),
                vendor: app.config.organisation.name.clone(),
                ecosystem: Some(product.ecosystem.clone()).filter(|e| !e.is_empty()),
                purl: Some(product.purl.clone()).filter(|p| !p.is_empty()),
                // A local mirror (a path or file:// URL, for the fix repository) is not public.
                repository: Some(product.repository_url.clone())
                    .filter(|r| r.starts_with("https://") || r.starts_with("http://")),
                ranges: vec![range],
                versions: Vec::new(),
                ecosystem_specific: None,
                database_specific: None,
            }),
        }
    }
}

/// Brings the affected ranges of one product in a report's draft advisories in line with
/// the report's assessment (the fix's backport matrix changed). Advisories past draft keep
/// what their reviewers saw; they take the change when sent back to draft and saved.
pub(crate) async fn refresh_affected_in(
    tx: &mut Tx,
    app: &App,
    report: ReportId,
    product: i64,
) -> Result<Vec<String>, AppError> {
    let assessment = crate::assessment::get_in(tx, report).await?;
    let products = embargo_store::products::list(tx).await?;
    let Some(name) = products.iter().find(|p| p.id == product).map(|p| p.name.clone()) else {
        return Ok(Vec::new());
    };
    let mut refreshed = Vec::new();
    let linked = store::for_report(tx, report).await?;
    for row in store::list(tx, Some(AdvisoryState::Draft.code())).await? {
        if !linked.contains(&row.id) {
            continue;
        }
        let mut record = parse_record(&row)?;
        record.affected.retain(|a| a.product != name);
        add_affected(app, &mut record, &assessment.affected, &products, Some(product));
        record.modified = app.now();
        store::update_record(tx, row.id, &row.advisory_id, &to_json(&record)?, app.now()).await?;
        refreshed.push(row.advisory_id);
    }
    Ok(refreshed)
}

/// A draft made by [`import_osv`].
#[derive(Debug, Clone)]
pub struct ImportedDraft {
    /// The draft's handle.
    pub id: String,
    /// What the import could not carry over as it was: one sentence per OSV field path.
    pub notes: Vec<String>,
}

/// Imports an OSV (or GHSA-in-OSV) record as a new draft with a handle of ours; the record's
/// own ID becomes an alias (admins). Its dates are kept as the record says (an imported
/// withdrawal stays after the publication it withdraws); a package that matches a catalogue
/// product gets the catalogue's vendor (the organisation), and one whose record names no
/// vendor gets the organisation, never the ecosystem's name.
pub async fn import_osv(app: &App, actor: &Actor, json: &str) -> Result<ImportedDraft, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ImportAdvisory).await?;
    let id = new_handle(&mut tx, now).await?;
    let organisation = app.config.organisation.name.clone();
    let imported = embargo_advisory::osv::import_osv(json, id.clone(), &organisation)
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    let mut record = imported.record;
    // The draft changed here and now; its publication and withdrawal times stay the record's.
    record.modified = now;
    let products = embargo_store::products::list(&mut tx).await?;
    for affected in &mut record.affected {
        let in_catalogue = products.iter().any(|p| {
            (!p.purl.is_empty() && affected.purl.as_deref() == Some(p.purl.as_str()))
                || (p.name == affected.product && affected.ecosystem.as_deref().unwrap_or("") == p.ecosystem)
        });
        if in_catalogue {
            affected.vendor = organisation.clone();
        }
    }
    let advisory = store::insert(&mut tx, &id.to_string(), &to_json(&record)?, &actor.to_string(), now).await?;
    save_editors(&mut tx, advisory, &AdvisoryReview::new(actor)).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "advisory.import",
        &subject(&id.to_string()),
        &format!("format=osv dropped={}", imported.notes.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(ImportedDraft { id: id.to_string(), notes: imported.notes.iter().map(ToString::to_string).collect() })
}

/// Reads an advisory with the validation of every output (audited).
pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<Advisory, AppError> {
    let mut tx = app.store.snapshot().await?;
    let row = find(&mut tx, actor, id).await?;
    let advisory = view(&mut tx, app, row).await?;
    tx.rollback().await?;
    crate::audit::record_read(app, actor, "advisory.read", &subject(&advisory.id), "").await?;
    Ok(advisory)
}

/// A line of the advisory list.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The handle.
    pub id: String,
    /// The public ID, once published.
    pub public_id: Option<String>,
    /// State.
    pub state: AdvisoryState,
    /// Title.
    pub title: String,
    /// CVE ID.
    pub cve_id: Option<String>,
    /// Last changed.
    pub updated_at: Timestamp,
    /// The severity of the headline CVSS vector (4.0 before 3.1), with its score: `High 7.5`.
    pub severity: Option<String>,
    /// The reports it covers.
    pub reports: Vec<ReferenceId>,
}

/// The severity of a record's headline vector (CVSS 4.0 first), as `High 7.5`.
pub fn severity_label(record: &AdvisoryRecord) -> Option<String> {
    [&record.severity.cvss_v4_0, &record.severity.cvss_v3_1].into_iter().flatten().find_map(|v| {
        let vector = embargo_domain::cvss::Vector::parse(v).ok()?;
        let score = vector.score();
        let name = vector.severity().as_str();
        let mut label = name.to_owned();
        if let Some(first) = label.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        Some(format!("{label} {:.1}", score.value()))
    })
}

/// The advisories the actor may see, most recently changed first (audited).
pub async fn list(app: &App, actor: &Actor, state: Option<AdvisoryState>) -> Result<Vec<Summary>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::EditAdvisory).await?;
    let mut out = Vec::new();
    for row in store::list(&mut tx, state.map(AdvisoryState::code)).await? {
        if !may_see(&mut tx, actor, row.id).await? {
            continue;
        }
        let record = parse_record(&row)?;
        let mut reports = Vec::new();
        for id in store::reports(&mut tx, row.id).await? {
            if let Some(report) = embargo_store::reports::get(&mut tx, id).await? {
                reports.push(report.reference);
            }
        }
        out.push(Summary {
            state: state_of(&row)?,
            severity: severity_label(&record),
            id: row.advisory_id,
            public_id: row.public_id,
            title: record.title,
            cve_id: record.cve_id,
            updated_at: row.updated_at,
            reports,
        });
    }
    tx.rollback().await?;
    crate::audit::record_read(app, actor, "advisory.list", "advisories", &format!("count={}", out.len())).await?;
    Ok(out)
}

/// Replaces a draft's record (the ID and publication times are kept). Editing an advisory
/// that is in review, approved or published returns it to draft: it must be reviewed again.
pub async fn update(app: &App, actor: &Actor, id: &str, mut record: AdvisoryRecord) -> Result<Validation, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    let old = parse_record(&row)?;
    record.id = old.id.clone();
    record.published = old.published;
    record.revisions = old.revisions.clone();
    record.withdrawn = old.withdrawn;
    record.withdrawn_reason = old.withdrawn_reason.clone();
    record.modified = now;
    let from = edited_in(&mut tx, actor, &row, now).await?;
    store::update_record(&mut tx, row.id, &row.advisory_id, &to_json(&record)?, now).await?;
    audit::record(&mut tx, app, actor, "advisory.edit", &subject(&row.advisory_id), &format!("from={}", from.code()))
        .await?;
    tx.commit().await?;
    Ok(embargo_advisory::validate_outputs(&record, &publisher(app)))
}

/// Links another report to an advisory.
pub async fn link_report(app: &App, actor: &Actor, id: &str, reference: &ReferenceId) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    let report = embargo_store::reports::get_by_reference(&mut tx, reference)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {reference}")))?;
    match authz::require(&mut tx, actor, Permission::ReadReport.on(report.id)).await {
        Err(AppError::Forbidden(_)) => return Err(AppError::NotFound(format!("report {reference}"))),
        other => other?,
    }
    store::link_report(&mut tx, row.id, report.id).await?;
    audit::record(&mut tx, app, actor, "advisory.link", &subject(&row.advisory_id), &format!("report={reference}"))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Asks for review: only a draft whose every output is valid.
pub async fn submit_for_review(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    let mut review = review_of(&mut tx, &row).await?;
    let to = review.apply(AdvisoryStep::SubmitForReview, actor)?;
    let record = parse_record(&row)?;
    let validation = embargo_advisory::validate_outputs(&record, &publisher(app));
    if !validation.is_publishable() {
        return Err(AppError::Invalid(format!(
            "the advisory's outputs are not valid yet:\n{}",
            validation.problems().join("\n")
        )));
    }
    store::set_state(&mut tx, row.id, to.code(), Some(&actor.to_string()), None, now).await?;
    audit::record(&mut tx, app, actor, "advisory.review.request", &subject(&row.advisory_id), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Approves an advisory in review; the approver must be someone who neither edited the
/// revision nor asked for its review (the second pair of eyes).
pub async fn approve(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    authz::require(&mut tx, actor, Permission::ReviewAdvisory).await?;
    let to = review_of(&mut tx, &row).await?.apply(AdvisoryStep::Approve, actor)?;
    store::set_state(&mut tx, row.id, to.code(), None, Some(&actor.to_string()), now).await?;
    audit::record(&mut tx, app, actor, "advisory.review.approve", &subject(&row.advisory_id), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Sends an advisory in review back to draft.
pub async fn request_changes(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    authz::require(&mut tx, actor, Permission::ReviewAdvisory).await?;
    let to = review_of(&mut tx, &row).await?.apply(AdvisoryStep::RequestChanges, actor)?;
    store::set_state(&mut tx, row.id, to.code(), None, None, now).await?;
    audit::record(&mut tx, app, actor, "advisory.review.changes", &subject(&row.advisory_id), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Publishes an approved advisory now: gives it its public ID at its first publication (the
/// next number of the public sequence, in this transaction: drafts never take one, so the
/// public sequence has no gaps), stamps the publication time and the revision, computes and
/// validates every output, signs the CSAF document, and stores the publication that public
/// routes serve. Returns the revision number.
pub async fn publish(app: &App, actor: &Actor, id: &str, summary: Option<&str>) -> Result<i64, AppError> {
    let key = crate::openpgp::instance_key(app).await?;
    let now = app.now().round(jiff::Unit::Second).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    authz::require(&mut tx, actor, Permission::PublishAdvisory).await?;
    let mut review = review_of(&mut tx, &row).await?;
    let mut to = review.apply(AdvisoryStep::Publish, actor)?;
    let mut record = parse_record(&row)?;
    if record.withdrawn.is_some() {
        // An imported withdrawal: published withdrawn, and final like any withdrawal.
        to = review.apply(AdvisoryStep::Withdraw, actor)?;
    }
    let revision = published_revisions(&mut tx, &row).await? + 1;
    let public_id = match &row.public_id {
        Some(public) => public.parse::<AdvisoryId>().map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
        None => {
            let year = year_of(now);
            let number = store::next_number(&mut tx, year).await?;
            let public = AdvisoryId::new(prefix(app)?, year, number)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e:?}")))?;
            store::set_public_id(&mut tx, row.id, &public.to_string()).await?;
            public
        }
    };
    record.id = public_id;
    let first = record.published.unwrap_or(now);
    record.published = Some(first);
    // An imported withdrawal published here for the first time is withdrawn as it appears.
    if let Some(withdrawn) = record.withdrawn {
        record.withdrawn = Some(withdrawn.max(first));
    }
    record.modified = now;
    let number = u32::try_from(revision).map_err(|e| AppError::Internal(e.into()))?;
    let default = match (record.withdrawn.is_some(), revision) {
        // The revision history records the withdrawal (CSAF), here as in `withdraw`.
        (true, _) => format!("Withdrawn: {}", record.withdrawal_text()),
        (false, 1) => "Initial release.".to_owned(),
        (false, _) => "Updated.".to_owned(),
    };
    let note = summary.map(str::trim).filter(|s| !s.is_empty()).map_or(default, str::to_owned);
    record.revisions.push(embargo_advisory::Revision { number, date: now, summary: note });
    let publication = publication(app, &row, &record, revision, &key)?;
    store::publish(&mut tx, &publication).await?;
    store::update_record(&mut tx, row.id, &row.advisory_id, &to_json(&record)?, now).await?;
    store::set_state(&mut tx, row.id, to.code(), None, row.approved_by.as_deref(), now).await?;
    save_editors(&mut tx, row.id, &review).await?;
    let details = format!("public_id={} revision={revision}", publication.public_id);
    audit::record(&mut tx, app, actor, "advisory.publish", &subject(&row.advisory_id), &details).await?;
    tx.commit().await?;
    metrics::counter!("embargo_advisories_published_total").increment(1);
    tracing::info!(advisory = %publication.public_id, revision, "advisory published");
    Ok(revision)
}

/// Every output of `record` as one published revision: validated (an invalid one is refused
/// with its problems), the CSAF document signed.
fn publication(
    app: &App,
    row: &AdvisoryRow,
    record: &AdvisoryRecord,
    revision: i64,
    key: &embargo_mail::openpgp::InstanceKey,
) -> Result<Publication, AppError> {
    let publisher = publisher(app);
    let validation = embargo_advisory::validate_outputs(record, &publisher);
    if !validation.is_publishable() {
        return Err(AppError::Invalid(format!(
            "the advisory's outputs are not valid:\n{}",
            validation.problems().join("\n")
        )));
    }
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| AppError::Internal(e.into()));
    let csaf = pretty(&embargo_advisory::csaf::to_csaf(record, &publisher))?;
    let csaf_signature = key.sign_detached(csaf.as_bytes()).map_err(|e| AppError::Internal(e.into()))?;
    let public_id = record.id.to_string();
    Ok(Publication {
        advisory: row.id,
        revision,
        cve_id: record.cve_id.clone(),
        title: record.title.clone(),
        published_at: record.published.unwrap_or(record.modified),
        modified_at: record.modified,
        osv: pretty(&embargo_advisory::osv::to_osv(record))?,
        cve_record: match record.cve_id {
            Some(_) => Some(pretty(&embargo_advisory::cve::cve_record(record, &publisher))?),
            None => None,
        },
        csaf_filename: embargo_advisory::csaf::csaf_filename(&public_id),
        public_id,
        csaf,
        csaf_signature,
        markdown: embargo_advisory::markdown::to_markdown(record, &publisher),
        html: embargo_advisory::markdown::to_html(record, &publisher),
    })
}

/// Withdraws a published advisory (admins): a final revision that says why, published at
/// once in every format (CSAF: the withdrawal in the revision history and a "Reasoning for
/// Withdrawal" note, no product claimed affected; CVE: a `REJECTED` record; OSV: `withdrawn`),
/// after which the advisory cannot change. Refused while an edit of it is pending (that
/// revision was not reviewed). Rejecting its CVE ID at CVE Services is `cve reject`'s job.
/// Returns the revision number.
pub async fn withdraw(app: &App, actor: &Actor, id: &str, reason: &str) -> Result<i64, AppError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::Invalid("give the reason for the withdrawal; it is published with it".into()));
    }
    let key = crate::openpgp::instance_key(app).await?;
    let now = app.now().round(jiff::Unit::Second).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = app.store.begin().await?;
    let row = find(&mut tx, actor, id).await?;
    authz::require(&mut tx, actor, Permission::PublishAdvisory).await?;
    let mut review = review_of(&mut tx, &row).await?;
    let revision = published_revisions(&mut tx, &row).await? + 1;
    if revision > 1 && review.state() != AdvisoryState::Published && review.state() != AdvisoryState::Withdrawn {
        return Err(AppError::Conflict(format!(
            "advisory {} has unpublished edits ({}); publish or undo them before withdrawing it",
            row.advisory_id,
            review.state()
        )));
    }
    let to = review.apply(AdvisoryStep::Withdraw, actor)?;
    let mut record = parse_record(&row)?;
    let public_id =
        row.public_id.clone().ok_or_else(|| AppError::Internal(anyhow::anyhow!("published without a public ID")))?;
    record.id = public_id.parse().map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    record.withdrawn = Some(now);
    record.withdrawn_reason = reason.to_owned();
    record.modified = now;
    let number = u32::try_from(revision).map_err(|e| AppError::Internal(e.into()))?;
    record.revisions.push(embargo_advisory::Revision { number, date: now, summary: format!("Withdrawn: {reason}") });
    let publication = publication(app, &row, &record, revision, &key)?;
    store::publish(&mut tx, &publication).await?;
    store::update_record(&mut tx, row.id, &row.advisory_id, &to_json(&record)?, now).await?;
    store::set_state(&mut tx, row.id, to.code(), None, row.approved_by.as_deref(), now).await?;
    save_editors(&mut tx, row.id, &review).await?;
    let details = format!("public_id={public_id} revision={revision}");
    audit::record(&mut tx, app, actor, "advisory.withdraw", &subject(&row.advisory_id), &details).await?;
    tx.commit().await?;
    tracing::info!(advisory = %public_id, revision, "advisory withdrawn");
    Ok(revision)
}

/// One output of an advisory, computed from its current record (for the editor and
/// `embargo advisory export`; the public routes serve publications instead).
pub async fn export(app: &App, actor: &Actor, id: &str, format: &str) -> Result<String, AppError> {
    let advisory = get(app, actor, id).await?;
    let publisher = publisher(app);
    let record = &advisory.record;
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).map_err(|e| AppError::Internal(e.into()));
    let need_cve = || {
        if record.cve_id.is_none() {
            Err(AppError::Invalid("this advisory has no CVE ID, so it has no CVE output".into()))
        } else {
            Ok(())
        }
    };
    match format {
        "osv" => pretty(embargo_advisory::osv::to_osv(record)),
        "cve" => {
            need_cve()?;
            if record.withdrawn.is_some() {
                pretty(embargo_advisory::cve::rejected_container(record, &publisher))
            } else {
                pretty(embargo_advisory::cve::cna_container(record, &publisher))
            }
        }
        "cve-record" => {
            need_cve()?;
            pretty(embargo_advisory::cve::cve_record(record, &publisher))
        }
        "csaf" => pretty(embargo_advisory::csaf::to_csaf(record, &publisher)),
        "markdown" => Ok(embargo_advisory::markdown::to_markdown(record, &publisher)),
        "html" => Ok(embargo_advisory::markdown::to_html(record, &publisher)),
        "json" => serde_json::to_string_pretty(record).map_err(|e| AppError::Internal(e.into())),
        other => Err(AppError::Invalid(format!(
            "unknown format {other:?}; expected osv, cve, cve-record, csaf, markdown, html or json"
        ))),
    }
}

/// The latest revision of every published advisory (public: no permission needed, nothing
/// unpublished is read).
pub async fn published(app: &App) -> Result<Vec<Publication>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let list = store::publications(&mut tx).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Every published revision, oldest first (public).
pub async fn published_revisions_all(app: &App) -> Result<Vec<Publication>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let list = store::all_revisions(&mut tx).await?;
    tx.rollback().await?;
    Ok(list)
}

/// The latest revision of one published advisory (public).
pub async fn published_one(app: &App, public_id: &str) -> Result<Option<Publication>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = store::publication(&mut tx, public_id).await?;
    tx.rollback().await?;
    Ok(found)
}
