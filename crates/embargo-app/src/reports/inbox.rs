//! The inbox and report lists, and a reporter's history beside a report.

use embargo_domain::{Actor, ReferenceId, ReportState};
use embargo_store::reports::{self as sr, ReportFilter, ReportRecord};

use super::{audit_read, find, require_on, search_words};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// Inbox query, as typed in the filters.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// A state code, or `open`.
    pub state: Option<String>,
    /// A product id.
    pub product: Option<i64>,
    /// An assignee: an address, `me`, or `none`.
    pub assignee: Option<String>,
    /// `overdue` (the deadline of the clock that matters in the report's state has passed)
    /// or `soon` (it falls within two working days).
    pub due: Option<String>,
    /// Search words or a reference.
    pub search: Option<String>,
    /// `newest` (the default) or `flagged-last` (reports whose reporter is flagged, see
    /// [`ReporterHistory::flagged`], after the others).
    pub sort: Option<String>,
    /// Page number from 1.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

/// One inbox row.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The report.
    pub summary: embargo_store::reports::Summary,
    /// The assignee's address.
    pub assignee: Option<String>,
    /// The product's name.
    pub product: Option<String>,
}

pub use embargo_store::reports::INBOX_COUNT_CAP;

/// A page of the inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    /// Rows.
    pub rows: Vec<InboxRow>,
    /// Matching reports in all, counted up to [`INBOX_COUNT_CAP`] (a larger value means
    /// "more than the cap").
    pub total: i64,
    /// The enabled team accounts, for the assignee filter (empty unless the actor may list
    /// the team, as [`crate::accounts::team`]).
    pub team: Vec<embargo_store::users::UserRecord>,
    /// The product catalogue, for the product filter (empty unless the actor may read it).
    pub products: Vec<embargo_store::products::ProductRecord>,
    /// No report at all is visible to the actor, whatever the filters (read in the same
    /// snapshot, only when this page is empty): the inbox's first-run state.
    pub nothing_visible: bool,
}

/// The inbox: reports the actor may see, filtered, newest first. Listing shows titles, so
/// it is audited.
pub async fn inbox(app: &App, actor: &Actor, query: &InboxQuery) -> Result<InboxPage, AppError> {
    let state = query.state.as_deref().filter(|s| !s.is_empty() && *s != "any");
    if let Some(state) = state
        && state != "open"
        && !ReportState::CODES.contains(&state)
    {
        return Err(AppError::Invalid(format!("unknown state {state:?}")));
    }
    let flagged_last = match query.sort.as_deref().map(str::trim) {
        None | Some("" | "newest") => false,
        Some("flagged-last") => true,
        Some(other) => {
            return Err(AppError::Invalid(format!("unknown sort {other:?}; expected newest or flagged-last")));
        }
    };
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ListReports).await?;
    let me = match actor {
        Actor::User { id, .. } => Some(*id),
        _ => None,
    };
    let visible_to = authz::narrowed_to(actor, Permission::ListReports);
    let assignee = match query.assignee.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None | Some("any") => None,
        Some("none") => Some(None),
        Some("me") => Some(me),
        Some(email) => Some(Some(
            embargo_store::users::by_email(&mut tx, email)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("account {email}")))?
                .id,
        )),
    };
    let now = app.now();
    let due_before = match query.due.as_deref() {
        Some("overdue") => Some(now),
        Some("soon") => Some(crate::sla::calendar_in(&mut tx, app).await?.add_working_days(now, 2)),
        _ => None,
    };
    let search = query.search.as_deref().map(str::trim).unwrap_or("");
    let reference: Option<ReferenceId> = search.parse().ok();
    let per_page = query.per_page.clamp(1, 200);
    let page = query.page.clamp(1, 1_000_000);
    let mut filter = embargo_store::reports::InboxFilter {
        state: state.map(str::to_owned),
        product_id: query.product,
        assignee,
        visible_to,
        due_before,
        words: if reference.is_some() { Vec::new() } else { search_words(search).into_iter().take(4).collect() },
        flagged_last,
        offset: (page - 1) * per_page,
        limit: per_page,
    };
    let (summaries, total) = match &reference {
        Some(reference) => {
            // A reference goes straight to that report, if the actor may see it.
            let found = sr::get_by_reference(&mut tx, reference).await?;
            let allowed = match &found {
                Some(r) => authz::require(&mut tx, actor, Permission::ReadReport.on(r.id)).await.is_ok(),
                None => false,
            };
            filter.limit = 0;
            match found.filter(|_| allowed) {
                Some(r) => {
                    let sla = embargo_store::sla::get(&mut tx, r.id).await?;
                    let flagged = sr::reporter_history(&mut tx, r.reporter_id, r.id, visible_to).await?.flagged();
                    (
                        vec![embargo_store::reports::Summary {
                            due_at: sla.due_in(r.state),
                            id: r.id,
                            reference: r.reference,
                            state: r.state,
                            title: r.title,
                            assignee: r.assignee,
                            product_id: r.product_id,
                            ack_due_at: r.ack_due_at,
                            created_at: r.created_at,
                            updated_at: r.updated_at,
                            reporter_id: r.reporter_id,
                            flagged,
                        }],
                        1,
                    )
                }
                None => (Vec::new(), 0),
            }
        }
        None => sr::inbox(&mut tx, &filter).await?,
    };
    let nothing_visible = total == 0
        && sr::inbox(&mut tx, &embargo_store::reports::InboxFilter { visible_to, limit: 1, ..Default::default() })
            .await?
            .1
            == 0;
    let users = embargo_store::users::list(&mut tx).await?;
    let products = embargo_store::products::list(&mut tx).await?;
    let rows = summaries
        .into_iter()
        .map(|summary| InboxRow {
            assignee: summary.assignee.and_then(|a| users.iter().find(|u| u.id == a).map(|u| u.email.clone())),
            product: summary.product_id.and_then(|p| products.iter().find(|x| x.id == p).map(|x| x.name.clone())),
            summary,
        })
        .collect();
    // What the page's filters offer, read in the same snapshot (ADR 32).
    let team = match authz::require(&mut tx, actor, Permission::ListTeam).await {
        Ok(()) => users.into_iter().filter(|u| !u.disabled).collect(),
        Err(_) => Vec::new(),
    };
    let products = match authz::require(&mut tx, actor, Permission::ReadCatalogue).await {
        Ok(()) => products,
        Err(_) => Vec::new(),
    };
    tx.rollback().await?;
    audit_read(
        app,
        actor,
        "report.list",
        "reports",
        &format!("state={} page={page} count={total} search={}", state.unwrap_or("any"), !search.is_empty()),
    )
    .await?;
    Ok(InboxPage { rows, total, team, products, nothing_visible })
}

/// Lists reports the actor may see, newest first. Listing shows titles, so it is audited.
pub async fn list(app: &App, actor: &Actor, state: Option<&str>) -> Result<Vec<ReportRecord>, AppError> {
    if let Some(state) = state
        && !ReportState::CODES.contains(&state)
    {
        return Err(AppError::Invalid(format!(
            "unknown state {state:?}; expected one of {}",
            ReportState::CODES.join(", ")
        )));
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ListReports).await?;
    let member = authz::narrowed_to(actor, Permission::ListReports);
    let reports = sr::list(&mut tx, &ReportFilter { state: state.map(str::to_owned), member, limit: None }).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "report.list",
        "reports",
        &format!("state={} count={}", state.unwrap_or("any"), reports.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(reports)
}

pub use embargo_store::reports::{FLAG_MIN_INVALID, ReporterHistory};

/// The user whose need-to-know limits what `actor` may see of the reports, or `None` when
/// the actor sees every report (admins, the local admin, the system).
fn need_to_know(actor: &Actor) -> Option<embargo_domain::UserId> {
    authz::narrowed_to(actor, Permission::ListReports)
}

/// How the reporter's other reports turned out (counts only, never which reports): shown
/// beside a report so the team can weigh it. Only the reports the actor may see are
/// counted (need-to-know): a responder learns nothing of reports they cannot open.
pub async fn reporter_history(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<ReporterHistory, AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let history = reporter_history_in(&mut tx, actor, &report).await?;
    tx.rollback().await?;
    Ok(history)
}

/// [`reporter_history`] beside a report the actor may read, in the caller's snapshot.
pub(super) async fn reporter_history_in(
    tx: &mut embargo_store::Tx,
    actor: &Actor,
    report: &ReportRecord,
) -> Result<ReporterHistory, AppError> {
    Ok(sr::reporter_history(tx, report.reporter_id, report.id, need_to_know(actor)).await?)
}
