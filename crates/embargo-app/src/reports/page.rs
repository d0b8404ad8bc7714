//! Everything a report page shows, read in one snapshot and recorded in one audit commit
//! (ADR 32).

use embargo_domain::audit::StoredEntry;
use embargo_domain::{Actor, CloseReason, ReferenceId, ReportState};
use embargo_store::products::ProductRecord;
use embargo_store::users::UserRecord;

use super::access::{detail_in, read_details, read_in_full};
use super::inbox::reporter_history_in;
use super::index::{SIMILAR_ACTION, similar_reads, similar_with};
use super::lifecycle::{duplicates_visible, split_links_with};
use super::{ReportDetail, ReporterHistory, Similar, SplitLinks, require_on, subject};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};
use embargo_store::reports as sr;

/// The latest entries of a report's audit trail a page shows.
pub const TRAIL_SHOWN: i64 = 30;

/// A report page's contents, as far as the actor may see them.
#[derive(Debug, Clone)]
pub struct ReportPageData {
    /// The report in full (as [`super::show`] reads it).
    pub detail: ReportDetail,
    /// The latest [`TRAIL_SHOWN`] entries of its audit trail, oldest first, up to (not
    /// including) this page's own read.
    pub trail: Vec<StoredEntry>,
    /// The reports closed as duplicates of it (see [`super::duplicates_of`]).
    pub duplicates: Vec<ReferenceId>,
    /// The report it was closed as a duplicate of, if the actor may read that one.
    pub duplicate_of: Option<ReferenceId>,
    /// Its split links (see [`super::split_links`]).
    pub splits: SplitLinks,
    /// How the reporter's other reports turned out (see [`super::reporter_history`]).
    pub history: ReporterHistory,
    /// Near-duplicate suggestions (see [`super::similar`]).
    pub similar: Vec<Similar>,
    /// The enabled team accounts (see [`crate::accounts::team`]).
    pub team: Vec<UserRecord>,
    /// The product catalogue.
    pub products: Vec<ProductRecord>,
    /// Who was added to the report, for those who manage its access (empty for others).
    pub members: Vec<String>,
    /// What the actor may do on it (see [`super::abilities`]).
    pub abilities: super::ReportAbilities,
    /// Every account's name, to show who did what (see [`crate::accounts::people`]).
    pub people: crate::accounts::People,
}

/// Reads a report page: the report, its trail, links, the reporter's history, the
/// near-duplicate suggestions, the team and the products, in one snapshot, with the same
/// permission checks as each of those reads alone. The read of the report and of each
/// suggestion's title are recorded together, in one commit, before anything is returned.
pub async fn page(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<ReportPageData, AppError> {
    let mut tx = app.store.snapshot().await?;
    // The report with its reporter, SLA record, assessment, signature and the calendar's
    // version: one round trip.
    let mut read = read_in_full(&mut tx, reference).await?;
    let similarity = std::mem::take(&mut read.similarity);
    let report = &read.report;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let (team, people) = crate::accounts::team_and_people_in(&mut tx, actor).await?;
    authz::require(&mut tx, actor, Permission::ReadCatalogue).await?;
    let products = embargo_store::products::list(&mut tx).await?;
    let trail = embargo_store::audit::list_for_subject(&mut tx, &subject(reference), TRAIL_SHOWN).await?;
    let (duplicates, split_into) = sr::linked_to(&mut tx, report.id).await?;
    let duplicates = duplicates_visible(&mut tx, actor, duplicates).await?;
    let duplicate_of = match report.state {
        ReportState::Closed(CloseReason::Duplicate { of })
            if authz::require(&mut tx, actor, Permission::ReadReport.on(of)).await.is_ok() =>
        {
            embargo_store::reports::get(&mut tx, of).await?.map(|r| r.reference)
        }
        _ => None,
    };
    let splits = split_links_with(&mut tx, actor, report, split_into).await?;
    let history = reporter_history_in(&mut tx, actor, report).await?;
    let (similar, _) = similar_with(&mut tx, app, actor, report, similarity).await?;
    let members = match authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await {
        Ok(()) => super::report_members_in(&mut tx, actor, report.id).await?,
        Err(_) => Vec::new(),
    };
    let abilities = super::abilities_in(&mut tx, actor, report).await?;
    let detail = detail_in(&mut tx, app, read).await?;
    tx.rollback().await?;
    let own = (subject(reference), read_details(&detail));
    let suggestions = similar_reads(&similar);
    let mut reads: Vec<audit::ReadEntry<'_>> = vec![("report.read", &own.0, &own.1)];
    reads.extend(suggestions.iter().map(|(subject, details)| (SIMILAR_ACTION, subject.as_str(), details.as_str())));
    audit::record_read_entries(app, actor, &reads).await?;
    Ok(ReportPageData {
        detail,
        trail,
        duplicates,
        duplicate_of,
        splits,
        history,
        similar,
        team,
        products,
        members,
        abilities,
        people,
    })
}
