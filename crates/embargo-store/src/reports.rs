//! Reports: reference numbering, sealed content, lifecycle state and its history.

use std::sync::LazyLock;

use embargo_domain::{
    CloseReason, Outcome, ReferenceId, ReferencePrefix, ReportId, ReportState, Timestamp, Transition, UserId,
};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// A report to insert. Content is plaintext here and sealed on the way in.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    /// The reference, from [`next_reference`].
    pub reference: &'a ReferenceId,
    /// How it arrived: `email`, `web`, `api` or `cli`.
    pub channel: &'a str,
    /// Who reported it (see [`crate::reporters`]).
    pub reporter_id: i64,
    /// Title or mail subject.
    pub title: &'a str,
    /// The report's text.
    pub body: &'a str,
    /// When it was received.
    pub received_at: Timestamp,
    /// The token of the report's reply address.
    pub reply_token: &'a str,
    /// The reporter's status-link token (sealed here).
    pub status_token: &'a str,
    /// The status token's hash, for lookup.
    pub status_token_hash: &'a str,
    /// The structured fields of a web-form report (JSON, sealed here).
    pub details: Option<&'a str>,
    /// The product it concerns, when known.
    pub product_id: Option<i64>,
    /// When the acknowledgement is due.
    pub ack_due_at: Option<Timestamp>,
    /// When the SLA sweep must first look at it (see [`crate::sla`]).
    pub next_sla_at: Option<Timestamp>,
}

/// A report as read back, content opened.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    /// Database id.
    pub id: ReportId,
    /// Human reference.
    pub reference: ReferenceId,
    /// Current state.
    pub state: ReportState,
    /// Arrival channel.
    pub channel: String,
    /// Reporter row.
    pub reporter_id: i64,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// The token of the report's reply address.
    pub reply_token: String,
    /// The upstream project and contact, when the flaw is in a dependency.
    pub upstream: Option<Upstream>,
    /// The team member responsible for it.
    pub assignee: Option<UserId>,
    /// The product it concerns, when known.
    pub product_id: Option<i64>,
    /// The structured fields of a web-form report (JSON).
    pub details: Option<String>,
    /// When the acknowledgement is due.
    pub ack_due_at: Option<Timestamp>,
    /// Whether the reporter's status link was revoked.
    pub status_revoked: bool,
    /// The report this one was split off (several findings in one report).
    pub split_from: Option<ReportId>,
    /// Received.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Where a report about a dependency is coordinated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The upstream project (for example `Docker`).
    pub project: String,
    /// Its security contact (an address or URL).
    pub contact: String,
}

fn upstream_aad(reference: &ReferenceId) -> String {
    format!("reports.upstream:{reference}")
}

/// A transition as read back from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// State code before (`closed` without its reason: a closed report only reopens).
    pub from: String,
    /// State after.
    pub to: ReportState,
    /// Actor, in its stored text form.
    pub actor: String,
    /// When.
    pub at: Timestamp,
}

impl TransitionRecord {
    /// The move as the SLA clocks read it.
    pub fn as_move(&self) -> embargo_domain::sla::Move {
        embargo_domain::sla::Move { from_new: self.from == ReportState::New.code(), to: self.to, at: self.at }
    }
}

/// Which reports to list.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Only reports in this state code (`closed` matches every close reason).
    pub state: Option<String>,
    /// Only reports this user may see as a member (need-to-know); `None` means all.
    pub member: Option<UserId>,
    /// At most this many, newest first.
    pub limit: Option<i64>,
}

/// Hands out the next reference for `year`: numbers are sequential per year and never
/// reused, because the counter row is updated in the caller's transaction.
pub async fn next_reference(tx: &mut Tx, prefix: &ReferencePrefix, year: i16) -> Result<ReferenceId, StoreError> {
    let references = next_references(tx, prefix, year, 1).await?;
    references.into_iter().next().ok_or_else(|| StoreError::Corrupt("reference counter".into()))
}

/// Hands out the next `count` references for `year` in one statement (see [`next_reference`]).
pub async fn next_references(
    tx: &mut Tx,
    prefix: &ReferencePrefix,
    year: i16,
    count: u32,
) -> Result<Vec<ReferenceId>, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO reference_counters (year, last) VALUES ($1, $2) \
         ON CONFLICT (year) DO UPDATE SET last = reference_counters.last + $2 \
         RETURNING last",
    )
    .bind(i64::from(year))
    .bind(i64::from(count))
    .fetch_one(tx.conn())
    .await?;
    let last = u32::try_from(last).map_err(|_| StoreError::Corrupt("reference counter".into()))?;
    let first = (last + 1).checked_sub(count).ok_or_else(|| StoreError::Corrupt("reference counter".into()))?;
    (first..=last)
        .map(|number| ReferenceId::new(prefix.clone(), year, number).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

fn title_aad(reference: &ReferenceId) -> String {
    format!("reports.title:{reference}")
}

fn body_aad(reference: &ReferenceId) -> String {
    format!("reports.body:{reference}")
}

fn status_aad(reference: &ReferenceId) -> String {
    format!("reports.status_token:{reference}")
}

fn details_aad(reference: &ReferenceId) -> String {
    format!("reports.details:{reference}")
}

/// Inserts a new report in state `new`.
pub async fn insert(tx: &mut Tx, new: &NewReport<'_>) -> Result<ReportId, StoreError> {
    let ids = insert_many(tx, std::slice::from_ref(new)).await?;
    ids.first().copied().ok_or_else(|| StoreError::Corrupt("report insert".into()))
}

/// Inserts new reports in one statement; returns their ids in order.
pub async fn insert_many(tx: &mut Tx, new: &[NewReport<'_>]) -> Result<Vec<ReportId>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO reports (reference, ref_year, ref_number, state, channel, reporter_id, \
         title_enc, body_enc, reply_token, status_token_hash, status_token_enc, created_at, updated_at, \
         details_enc, product_id, ack_due_at, next_sla_at) VALUES {} RETURNING id, reference",
        crate::values_list(
            "($1, $2, $3, 'new', $4, $5, $6, $7, $9, $10, $11, $8, $8, $12, $13, $14, $15)",
            15,
            new.len()
        )
    );
    let mut query = crate::bulk(sql);
    for report in new {
        query = query
            .bind(report.reference.to_string())
            .bind(i64::from(report.reference.year()))
            .bind(i64::from(report.reference.number()))
            .bind(report.channel)
            .bind(report.reporter_id)
            .bind(tx.seal(report.title, &title_aad(report.reference)))
            .bind(tx.seal(report.body, &body_aad(report.reference)))
            .bind(ms(report.received_at))
            .bind(report.reply_token)
            .bind(report.status_token_hash)
            .bind(tx.seal(report.status_token, &status_aad(report.reference)))
            .bind(report.details.map(|d| tx.seal(d, &details_aad(report.reference))))
            .bind(report.product_id)
            .bind(report.ack_due_at.map(ms))
            .bind(report.next_sla_at.map(ms));
    }
    let rows = query.fetch_all(tx.conn()).await.map_err(|e| StoreError::on_unique(e, "report reference or token"))?;
    // RETURNING gives no order; match the rows back by reference.
    let mut ids = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        ids.insert(row.try_get::<String, _>("reference")?, ReportId(row.try_get("id")?));
    }
    new.iter()
        .map(|report| {
            ids.get(&report.reference.to_string()).copied().ok_or_else(|| StoreError::Corrupt("report insert".into()))
        })
        .collect()
}

const SELECT_REPORT: &str = "SELECT id, reference, state, close_reason, duplicate_of, channel, \
     reporter_id, title_enc, body_enc, reply_token, upstream_enc, created_at, updated_at, \
     assignee_id, product_id, details_enc, ack_due_at, status_revoked_at, split_from FROM reports";

fn state_of(row: &sqlx::any::AnyRow) -> Result<ReportState, StoreError> {
    let state: String = row.try_get("state")?;
    let reason: Option<String> = row.try_get("close_reason")?;
    let duplicate_of: Option<i64> = row.try_get("duplicate_of")?;
    ReportState::from_codes(&state, reason.as_deref(), duplicate_of.map(ReportId))
        .ok_or_else(|| StoreError::Corrupt(format!("report state {state:?}")))
}

fn reference_of(row: &sqlx::any::AnyRow) -> Result<ReferenceId, StoreError> {
    let text: String = row.try_get("reference")?;
    text.parse().map_err(|_| StoreError::Corrupt(format!("reference {text:?}")))
}

fn record(tx: &Tx, row: &sqlx::any::AnyRow) -> Result<ReportRecord, StoreError> {
    let reference = reference_of(row)?;
    let title: Vec<u8> = row.try_get("title_enc")?;
    let body: Vec<u8> = row.try_get("body_enc")?;
    Ok(ReportRecord {
        id: ReportId(row.try_get("id")?),
        state: state_of(row)?,
        channel: row.try_get("channel")?,
        reporter_id: row.try_get("reporter_id")?,
        title: tx.open(&title, &title_aad(&reference))?,
        body: tx.open(&body, &body_aad(&reference))?,
        reply_token: row.try_get("reply_token")?,
        upstream: match row.try_get::<Option<Vec<u8>>, _>("upstream_enc")? {
            Some(sealed) => {
                let text = tx.open(&sealed, &upstream_aad(&reference))?;
                let (project, contact) = text.split_once('\n').unwrap_or((&text, ""));
                Some(Upstream { project: project.to_owned(), contact: contact.to_owned() })
            }
            None => None,
        },
        assignee: row.try_get::<Option<i64>, _>("assignee_id")?.map(UserId),
        product_id: row.try_get("product_id")?,
        details: match row.try_get::<Option<Vec<u8>>, _>("details_enc")? {
            Some(sealed) => Some(tx.open(&sealed, &details_aad(&reference))?),
            None => None,
        },
        ack_due_at: row.try_get::<Option<i64>, _>("ack_due_at")?.map(ts).transpose()?,
        status_revoked: row.try_get::<Option<i64>, _>("status_revoked_at")?.is_some(),
        split_from: row.try_get::<Option<i64>, _>("split_from")?.map(ReportId),
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
        reference,
    })
}

/// Reads a report by its reference, content opened.
pub async fn get_by_reference(tx: &mut Tx, reference: &ReferenceId) -> Result<Option<ReportRecord>, StoreError> {
    let row =
        sqlx::query(const_format_select_by_reference()).bind(reference.to_string()).fetch_optional(tx.conn()).await?;
    row.map(|row| record(tx, &row)).transpose()
}

/// Reads a report by id, content opened.
pub async fn get(tx: &mut Tx, id: ReportId) -> Result<Option<ReportRecord>, StoreError> {
    let row = sqlx::query(const_format_select_by_id()).bind(id.0).fetch_optional(tx.conn()).await?;
    row.map(|row| record(tx, &row)).transpose()
}

/// A report as its page shows it, read in one statement (see [`get_for_page`]).
#[derive(Debug, Clone)]
pub struct PageRead {
    /// The report, content opened.
    pub report: ReportRecord,
    /// Its assessment document and severity, as [`crate::assessments::get`] gives them.
    pub assessment: (Option<String>, Option<String>),
    /// Its near-duplicate signature and the similarity generation, as
    /// [`similarity_and_generation`] gives them.
    pub similarity: (Option<Vec<u8>>, i64),
    /// The `instance_meta` value the caller asked for.
    pub meta: Option<String>,
    /// Who reported it, as [`crate::reporters::get`] gives them.
    pub reporter: crate::reporters::ReporterRecord,
    /// Its SLA milestones and deadlines, as [`crate::sla::get`] gives them.
    pub sla: crate::sla::SlaRecord,
}

/// Reads a report by its reference with what its page shows besides the record, in one
/// statement: its reporter, SLA record and assessment, the near-duplicate signature with the
/// similarity generation, and the `instance_meta` value of `meta_key` (a page needs the
/// calendar's version). Each is what its own read would give in the same snapshot; a page
/// makes one round trip instead of six (ADR 38).
pub async fn get_for_page(
    tx: &mut Tx,
    reference: &ReferenceId,
    meta_key: &str,
) -> Result<Option<PageRead>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let report = SELECT_REPORT.strip_suffix(" FROM reports").expect("SELECT_REPORT reads reports");
        let report_columns: Vec<&str> = report.trim_start_matches("SELECT ").split(", ").collect();
        // The SLA columns are columns of `reports` too; those read already are not repeated.
        let sla: Vec<&str> = crate::sla::COLUMNS.split(", ").filter(|c| !report_columns.contains(c)).collect();
        let reporter: Vec<String> = ["email_index", "email_enc", "name_enc", "openpgp_key_enc"]
            .iter()
            .map(|c| format!("(SELECT {c} FROM reporters WHERE reporters.id = reports.reporter_id) AS reporter_{c}"))
            .collect();
        format!(
            "{report}, {sla}, assessment_enc, similarity_enc, {reporter}, \
             (SELECT value FROM instance_meta WHERE key = $2) AS generation, \
             (SELECT value FROM instance_meta WHERE key = $3) AS meta \
             FROM reports WHERE reference = $1",
            sla = sla.join(", "),
            reporter = reporter.join(", "),
        )
    });
    let row = sqlx::query(sql.as_str())
        .bind(reference.to_string())
        .bind(SIMILARITY_GENERATION)
        .bind(meta_key)
        .fetch_optional(tx.conn())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let report = record(tx, &row)?;
    let sealed: Option<Vec<u8>> = row.try_get("assessment_enc")?;
    let assessment = (crate::assessments::open_document(tx, &report.reference, sealed)?, row.try_get("severity")?);
    let similarity = similarity_of_row(tx, &row, &report.reference)?;
    let reporter = crate::reporters::reporter_in(tx, &row, report.reporter_id, "reporter_")?;
    let sla = crate::sla::sla_record(&row)?;
    Ok(Some(PageRead { assessment, similarity, meta: row.try_get("meta")?, reporter, sla, report }))
}

/// Reads several reports in one statement, content opened (those that exist).
pub async fn get_many(
    tx: &mut Tx,
    ids: &[ReportId],
) -> Result<std::collections::HashMap<ReportId, ReportRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let sql = format!("{SELECT_REPORT} WHERE id IN ({})", crate::placeholder_list(1, ids.len()));
    let mut query = crate::bulk(sql);
    for id in ids {
        query = query.bind(id.0);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter().map(|row| record(tx, row).map(|r| (r.id, r))).collect()
}

// sqlx 0.9 only takes `&'static str` as trusted SQL; these keep one column list.
fn const_format_select_by_reference() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("{SELECT_REPORT} WHERE reference = $1"))
}

fn const_format_select_by_id() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("{SELECT_REPORT} WHERE id = $1"))
}

/// Lists reports, newest first, content opened.
pub async fn list(tx: &mut Tx, filter: &ReportFilter) -> Result<Vec<ReportRecord>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "{SELECT_REPORT} WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR {}) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
            crate::rules::visible_to("$2")
        )
    });
    let rows = sqlx::query(sql.as_str())
        .bind(filter.state.clone())
        .bind(filter.member.map(|u| u.0))
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(|row| record(tx, row)).collect()
}

/// Applies a transition: updates the report's state and appends to its history.
/// The caller has checked it against the lifecycle (see [`embargo_domain::Lifecycle`]).
pub async fn record_transition(tx: &mut Tx, report: ReportId, transition: &Transition) -> Result<(), StoreError> {
    let (reason, duplicate_of) = match transition.to {
        ReportState::Closed(reason) => (
            Some(reason.code()),
            match reason {
                CloseReason::Duplicate { of } => Some(of.0),
                _ => None,
            },
        ),
        _ => (None, None),
    };
    let at = ms(transition.at);
    let updated = sqlx::query(
        "UPDATE reports SET state = $1, close_reason = $2, duplicate_of = $3, updated_at = $4 \
         WHERE id = $5 AND state = $6",
    )
    .bind(transition.to.code())
    .bind(reason)
    .bind(duplicate_of)
    .bind(at)
    .bind(report.0)
    .bind(transition.from.code())
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "report {report} was not in state {} when moving it",
            transition.from.code()
        )));
    }
    // Reports linked as duplicates are not suggested to each other: suggestions computed
    // before the link was made or undone are out of date.
    let duplicate = |state: &ReportState| matches!(state, ReportState::Closed(CloseReason::Duplicate { .. }));
    if duplicate(&transition.from) || duplicate(&transition.to) {
        crate::meta::increment(tx, SIMILARITY_GENERATION).await?;
    }
    sqlx::query(
        "INSERT INTO report_transitions (report_id, from_state, to_state, close_reason, \
         duplicate_of, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(report.0)
    .bind(transition.from.code())
    .bind(transition.to.code())
    .bind(reason)
    .bind(duplicate_of)
    .bind(transition.actor.to_string())
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A report's lifecycle history, oldest first.
pub async fn transitions(tx: &mut Tx, report: ReportId) -> Result<Vec<TransitionRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.from_state, t.to_state, t.close_reason, t.duplicate_of, t.actor, t.at \
         FROM report_transitions t WHERE t.report_id = $1 ORDER BY t.id",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let from: String = row.try_get("from_state")?;
            let to: String = row.try_get("to_state")?;
            let reason: Option<String> = row.try_get("close_reason")?;
            let duplicate_of: Option<i64> = row.try_get("duplicate_of")?;
            let to = ReportState::from_codes(&to, reason.as_deref(), duplicate_of.map(ReportId))
                .ok_or_else(|| StoreError::Corrupt(format!("transition to {to:?}")))?;
            Ok(TransitionRecord { from, to, actor: row.try_get("actor")?, at: ts(row.try_get("at")?)? })
        })
        .collect()
}

/// Gives a team member access to a report.
pub async fn add_member(tx: &mut Tx, report: ReportId, user: UserId, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO report_members (report_id, user_id, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (report_id, user_id) DO NOTHING",
    )
    .bind(report.0)
    .bind(user.0)
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether a team member may see a report (need-to-know): they were added to it, it is
/// assigned to them, or they are responsible for its product.
pub async fn is_member(tx: &mut Tx, report: ReportId, user: UserId) -> Result<bool, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT 1 FROM reports WHERE id = $1 AND {}", crate::rules::visible_to("$2"))
    });
    let found: Option<i64> =
        sqlx::query_scalar(SQL.as_str()).bind(report.0).bind(user.0).fetch_optional(tx.conn()).await?;
    Ok(found.is_some())
}

/// The team members added to a report.
pub async fn members(tx: &mut Tx, report: ReportId) -> Result<Vec<UserId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM report_members WHERE report_id = $1 ORDER BY added_at")
        .bind(report.0)
        .fetch_all(tx.conn())
        .await?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// Takes a team member's explicit access to a report; returns whether they had it.
pub async fn remove_member(tx: &mut Tx, report: ReportId, user: UserId) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM report_members WHERE report_id = $1 AND user_id = $2")
        .bind(report.0)
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a team member off every report (account deleted): their memberships go and the
/// reports assigned to them become unassigned. Returns (memberships, assignments) removed.
pub async fn remove_user_everywhere(tx: &mut Tx, user: UserId, at: Timestamp) -> Result<(u64, u64), StoreError> {
    let members = sqlx::query("DELETE FROM report_members WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?;
    let assigned = sqlx::query("UPDATE reports SET assignee_id = NULL, updated_at = $1 WHERE assignee_id = $2")
        .bind(ms(at))
        .bind(user.0)
        .execute(tx.conn())
        .await?;
    Ok((members.rows_affected(), assigned.rows_affected()))
}

/// Assigns a report to a team member (or nobody).
pub async fn assign(tx: &mut Tx, report: ReportId, user: Option<UserId>, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE reports SET assignee_id = $1, updated_at = $2 WHERE id = $3")
        .bind(user.map(|u| u.0))
        .bind(ms(at))
        .bind(report.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Sets the product a report concerns.
pub async fn set_product(tx: &mut Tx, report: ReportId, product: Option<i64>, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE reports SET product_id = $1, updated_at = $2 WHERE id = $3")
        .bind(product)
        .bind(ms(at))
        .bind(report.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Adds search terms (blind indexes, see [`term_index`]) to a report, all in one statement:
/// the indexes travel as one JSON array (a report has hundreds of words; a statement each
/// would cost a round trip each).
pub async fn add_terms(tx: &mut Tx, report: ReportId, words: &[String]) -> Result<(), StoreError> {
    let rows = prepare_index(&tx.keys, report, words, None);
    write_index(tx, std::slice::from_ref(&rows)).await
}

/// A report's index entries, blind-indexed and sealed by [`prepare_index`] (which needs
/// only the keys, so it can run before the write transaction) and written by
/// [`write_index`].
#[derive(Debug, Clone)]
pub struct IndexRows {
    report: ReportId,
    terms: Vec<String>,
    /// The sealed near-duplicate signature and its band keys.
    similarity: Option<(Vec<u8>, Vec<String>)>,
}

/// Prepares a report's search terms (`words`) and, when given, its near-duplicate signature
/// (`(reference, signature, band keys)`) for [`write_index`].
pub fn prepare_index(
    keys: &embargo_crypto::Keyring,
    report: ReportId,
    words: &[String],
    similarity: Option<(&ReferenceId, &[u8], &[String])>,
) -> IndexRows {
    IndexRows {
        report,
        terms: words.iter().map(|w| keys.blind_index(TERM_DOMAIN, w.as_bytes())).collect(),
        similarity: similarity.map(|(reference, signature, bands)| {
            (keys.seal(signature, similarity_aad(reference).as_bytes()), bands.to_vec())
        }),
    }
}

/// Writes prepared index entries for several reports: one statement for all their terms, and
/// for the signatures one update, one delete of the old band keys and one insert of the new. A
/// report's new signature replaces its old one and its bands, and is recorded as computed by
/// this version's method (`similarity_version`, [`embargo_domain::similarity::SIGNATURE_VERSION`]).
pub async fn write_index(tx: &mut Tx, rows: &[IndexRows]) -> Result<(), StoreError> {
    // The one dialect difference here: how a JSON array of [text, report] pairs becomes rows.
    let backend = tx.backend();
    // `on_conflict`: a report's terms grow with its messages (a word seen before is skipped);
    // its bands are replaced whole (deleted just before), so they are inserted plainly: a
    // speculative insertion per row cost PostgreSQL about a third more (ADR 36).
    let insert_pairs = |table: &str, column: &str, on_conflict: bool| {
        let on_conflict = if on_conflict { " ON CONFLICT DO NOTHING" } else { "" };
        match backend {
            crate::Backend::Sqlite => format!(
                "INSERT INTO {table} ({column}, report_id) SELECT value ->> 0, value ->> 1 FROM json_each($1) \
                 WHERE true{on_conflict}"
            ),
            crate::Backend::Postgres => format!(
                "INSERT INTO {table} ({column}, report_id) SELECT e ->> 0, (e ->> 1)::bigint \
                 FROM jsonb_array_elements($1::jsonb) AS e{on_conflict}"
            ),
        }
    };
    let pairs = |of: &dyn Fn(&IndexRows) -> Vec<&String>| -> Result<Option<String>, StoreError> {
        let mut pairs: Vec<(&String, i64)> =
            rows.iter().flat_map(|row| of(row).into_iter().map(|text| (text, row.report.0))).collect();
        // Each pair once, so that a plain insert never meets itself.
        pairs.sort_unstable();
        pairs.dedup();
        if pairs.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(&pairs).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    if let Some(json) = pairs(&|row| row.terms.iter().collect())? {
        let sql = insert_pairs("report_terms", "term", true);
        crate::bulk(sql).bind(json).execute(tx.conn()).await?;
    }
    let signed: Vec<&IndexRows> = rows.iter().filter(|row| row.similarity.is_some()).collect();
    if signed.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE reports SET similarity_enc = CASE id {} END, similarity_version = ${} WHERE id IN ({})",
        (0..signed.len()).map(|i| format!("WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(" "),
        2 * signed.len() + 1,
        crate::placeholder_list(2 * signed.len() + 2, signed.len())
    );
    let mut update = crate::bulk(sql);
    for row in &signed {
        update = update.bind(row.report.0).bind(row.similarity.as_ref().map(|(sealed, _)| sealed.clone()));
    }
    update = update.bind(i64::from(embargo_domain::similarity::SIGNATURE_VERSION));
    for row in &signed {
        update = update.bind(row.report.0);
    }
    update.execute(tx.conn()).await?;
    crate::meta::increment(tx, SIMILARITY_GENERATION).await?;
    let sql = format!("DELETE FROM report_bands WHERE report_id IN ({})", crate::placeholder_list(1, signed.len()));
    let mut delete = crate::bulk(sql);
    for row in &signed {
        delete = delete.bind(row.report.0);
    }
    delete.execute(tx.conn()).await?;
    if let Some(json) = pairs(&|row| row.similarity.iter().flat_map(|(_, bands)| bands).collect())? {
        let sql = insert_pairs("report_bands", "band", false);
        crate::bulk(sql).bind(json).execute(tx.conn()).await?;
    }
    Ok(())
}

/// The blind index of a normalised search word.
pub fn term_index(tx: &Tx, word: &str) -> String {
    tx.keys.blind_index(TERM_DOMAIN, word.as_bytes())
}

const TERM_DOMAIN: &str = "reports.term";

/// Replaces the reporter's status link (the old one stops working) and clears a revocation.
pub async fn rotate_status_token(
    tx: &mut Tx,
    report: &ReportRecord,
    token: &str,
    token_hash: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let sealed = tx.seal(token, &status_aad(&report.reference));
    sqlx::query(
        "UPDATE reports SET status_token_hash = $1, status_token_enc = $2, status_revoked_at = NULL, \
         updated_at = $3 WHERE id = $4",
    )
    .bind(token_hash)
    .bind(sealed)
    .bind(ms(at))
    .bind(report.id.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Revokes the reporter's status link.
pub async fn revoke_status_token(tx: &mut Tx, report: ReportId, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE reports SET status_revoked_at = $1, updated_at = $1 WHERE id = $2")
        .bind(ms(at))
        .bind(report.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A report as listed in the inbox: no body, only what a row shows.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Database id.
    pub id: ReportId,
    /// Reference.
    pub reference: ReferenceId,
    /// State.
    pub state: ReportState,
    /// Title, opened.
    pub title: String,
    /// Assignee.
    pub assignee: Option<UserId>,
    /// Product.
    pub product_id: Option<i64>,
    /// When the acknowledgement is due.
    pub ack_due_at: Option<Timestamp>,
    /// The deadline of the clock that matters in its state: acknowledgement (new),
    /// analysis (acknowledged, triaging) or fix (accepted, fixing). None otherwise, and
    /// while paused (needs-info).
    pub due_at: Option<Timestamp>,
    /// Received.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// The reporter row.
    pub reporter_id: i64,
    /// Whether the reporter's other reports make this one flagged (see
    /// [`ReporterHistory::flagged`]).
    pub flagged: bool,
}

/// Inbox filters. Every field narrows the list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// Only this state code; `open` means every state but closed and disclosed.
    pub state: Option<String>,
    /// Only this product.
    pub product_id: Option<i64>,
    /// Only reports assigned to this user; `Some(None)` means unassigned.
    pub assignee: Option<Option<UserId>>,
    /// Need-to-know: only reports this user may see (see [`is_member`]).
    pub visible_to: Option<UserId>,
    /// Only reports whose current deadline ([`Summary::due_at`]) is before this time.
    pub due_before: Option<Timestamp>,
    /// Only reports containing every one of these words (at most four are used).
    pub words: Vec<String>,
    /// Order flagged reports (see [`ReporterHistory::flagged`]) after the others; they are
    /// never left out.
    pub flagged_last: bool,
    /// Skip this many.
    pub offset: i64,
    /// Return at most this many.
    pub limit: i64,
}

/// A value bound to an inbox statement.
enum Bound {
    Text(String),
    Int(i64),
}

/// The conditions of an inbox statement, with only the filters that are set, and their
/// values in parameter order. The text depends only on which filters are set (at most a few
/// hundred texts in all), so each is prepared once per connection and PostgreSQL keeps a
/// generic plan for it; a single text with `$1 IS NULL OR ...` for every filter was planned
/// anew on every call, which cost more than running it (ADR 38).
struct InboxConditions {
    where_: String,
    binds: Vec<Bound>,
    /// The parameter holding the viewer (need-to-know), if any.
    viewer: Option<String>,
}

impl InboxConditions {
    fn of(tx: &Tx, filter: &InboxFilter) -> Self {
        let mut binds = Vec::new();
        let mut param = |value: Bound| {
            binds.push(value);
            format!("${}", binds.len())
        };
        let mut conditions: Vec<String> = Vec::new();
        match filter.state.as_deref() {
            None => {}
            Some("open") => conditions.push(crate::rules::OPEN.clone()),
            Some(code) => conditions.push(format!("state = {}", param(Bound::Text(code.to_owned())))),
        }
        if let Some(product) = filter.product_id {
            conditions.push(format!("product_id = {}", param(Bound::Int(product))));
        }
        match filter.assignee {
            None => {}
            Some(None) => conditions.push("assignee_id IS NULL".to_owned()),
            Some(Some(user)) => conditions.push(format!("assignee_id = {}", param(Bound::Int(user.0)))),
        }
        let viewer = filter.visible_to.map(|user| param(Bound::Int(user.0)));
        if let Some(viewer) = &viewer {
            conditions.push(crate::rules::visible_to(viewer));
        }
        if let Some(before) = filter.due_before {
            conditions.push(format!("{} <= {}", *crate::rules::DUE_AT, param(Bound::Int(ms(before)))));
        }
        for word in filter.words.iter().take(4) {
            let term = param(Bound::Text(term_index(tx, word)));
            conditions.push(format!("id IN (SELECT report_id FROM report_terms WHERE term = {term})"));
        }
        let where_ = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        Self { where_, binds, viewer }
    }

    fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for value in &self.binds {
            query = match value {
                Bound::Text(text) => query.bind(text.clone()),
                Bound::Int(n) => query.bind(*n),
            };
        }
        query
    }
}

/// The inbox counts matching reports up to this many; beyond, it reports `cap + 1`.
pub const INBOX_COUNT_CAP: i64 = 1_000;

/// One page of the inbox, newest first (flagged reports last when asked), and the number
/// of matching reports (at most [`INBOX_COUNT_CAP`] + 1).
pub async fn inbox(tx: &mut Tx, filter: &InboxFilter) -> Result<(Vec<Summary>, i64), StoreError> {
    let conditions = InboxConditions::of(tx, filter);
    let page = format!(
        "SELECT id, reference, state, close_reason, duplicate_of, title_enc, assignee_id, product_id, \
         ack_due_at, {due_at} AS due_at, created_at, updated_at, reporter_id, {flagged} AS flagged \
         FROM reports {where_} ORDER BY {flagged_first}created_at DESC, id DESC LIMIT {limit} OFFSET {offset}",
        flagged = flagged_sql("reports", conditions.viewer.as_deref()),
        due_at = *crate::rules::DUE_AT,
        where_ = conditions.where_,
        flagged_first = if filter.flagged_last { "flagged, " } else { "" },
        // Numbers, not parameters: PostgreSQL's generic plan for a `LIMIT $n` guesses a
        // tenth of the table and loses to planning anew on every call.
        limit = filter.limit.max(0),
        offset = filter.offset.max(0),
    );
    // Counting stops past the cap: an exact count of a large inbox costs a scan per page
    // view, and "more than 1,000" says enough.
    let count = format!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM reports {} LIMIT {}) AS matching",
        conditions.where_,
        INBOX_COUNT_CAP + 1
    );
    // Both texts are made of the fragments above only; every value is bound.
    let rows = conditions.bind(sqlx::query(sqlx::AssertSqlSafe(page))).fetch_all(tx.conn()).await?;
    let total: i64 =
        conditions.bind(sqlx::query(sqlx::AssertSqlSafe(count))).fetch_one(tx.conn()).await?.try_get("n")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let reference = reference_of(row)?;
        let title: Vec<u8> = row.try_get("title_enc")?;
        out.push(Summary {
            id: ReportId(row.try_get("id")?),
            state: state_of(row)?,
            title: tx.open(&title, &title_aad(&reference))?,
            assignee: row.try_get::<Option<i64>, _>("assignee_id")?.map(UserId),
            product_id: row.try_get("product_id")?,
            ack_due_at: row.try_get::<Option<i64>, _>("ack_due_at")?.map(ts).transpose()?,
            due_at: row.try_get::<Option<i64>, _>("due_at")?.map(ts).transpose()?,
            created_at: ts(row.try_get("created_at")?)?,
            updated_at: ts(row.try_get("updated_at")?)?,
            reporter_id: row.try_get("reporter_id")?,
            flagged: row.try_get::<i64, _>("flagged")? != 0,
            reference,
        });
    }
    Ok((out, total))
}

// ---- Reporter history ----------------------------------------------------------------

/// How a reporter's other reports turned out (instance-local): counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReporterHistory {
    /// Other reports in all.
    pub total: i64,
    /// Valid ([`Outcome::Valid`]): accepted, fixing, ready for disclosure, disclosed, or
    /// closed as won't-fix.
    pub valid: i64,
    /// Invalid ([`Outcome::Invalid`]): closed as invalid, spam, not-security or out-of-scope.
    pub invalid: i64,
    /// Closed as duplicates ([`Outcome::Duplicate`]).
    pub duplicates: i64,
}

impl ReporterHistory {
    /// Reports without an outcome yet ([`ReportState::outcome`] is `None`): new,
    /// acknowledged, triaging, needs-info, or closed for lack of an answer.
    pub fn open(&self) -> i64 {
        self.total - self.valid - self.invalid - self.duplicates
    }

    /// Flagged: at least [`FLAG_MIN_INVALID`] invalid reports and no valid one. A flag only
    /// orders the inbox; nothing is refused or hidden because of it.
    pub fn flagged(&self) -> bool {
        self.invalid >= FLAG_MIN_INVALID && self.valid == 0
    }
}

/// Invalid reports (and no valid one) from which a reporter's reports are flagged.
pub const FLAG_MIN_INVALID: i64 = 3;

/// The outcome classes (`ReportState::outcome`), over the `reports` row of a sub-query.
static VALID_SQL: LazyLock<String> = LazyLock::new(|| crate::rules::outcome_is(Outcome::Valid));
static INVALID_SQL: LazyLock<String> = LazyLock::new(|| crate::rules::outcome_is(Outcome::Invalid));
static DUPLICATE_SQL: LazyLock<String> = LazyLock::new(|| crate::rules::outcome_is(Outcome::Duplicate));

/// 1 when the report in row `outer` is flagged by its reporter's other reports, else 0 (two
/// correlated look-ups on the `reports_reporter` index). With a `viewer` (a parameter
/// holding a user), only the other reports that user may see count, as in
/// [`reporter_history`]; all count without.
fn flagged_sql(outer: &str, viewer: Option<&str>) -> String {
    let visible = viewer.map(|viewer| format!(" AND {}", crate::rules::visible_to(viewer))).unwrap_or_default();
    format!(
        "(CASE WHEN (SELECT COUNT(*) FROM reports o WHERE o.reporter_id = {outer}.reporter_id \
         AND o.id <> {outer}.id AND {invalid}{visible}) >= {FLAG_MIN_INVALID} \
         AND NOT EXISTS (SELECT 1 FROM reports o WHERE o.reporter_id = {outer}.reporter_id \
         AND o.id <> {outer}.id AND {valid}{visible}) THEN 1 ELSE 0 END)",
        invalid = *INVALID_SQL,
        valid = *VALID_SQL,
    )
}

/// How the reporter's reports other than `except` turned out, in one statement on the
/// `reports_reporter` index (which holds every column read here, migration 0012). With `visible_to`, only the reports that
/// user may see (need-to-know) are counted: the history tells nothing about the others.
pub async fn reporter_history(
    tx: &mut Tx,
    reporter: i64,
    except: ReportId,
    visible_to: Option<UserId>,
) -> Result<ReporterHistory, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN {valid} THEN 1 ELSE 0 END), 0) AS valid, \
             COALESCE(SUM(CASE WHEN {invalid} THEN 1 ELSE 0 END), 0) AS invalid, \
             COALESCE(SUM(CASE WHEN {duplicate} THEN 1 ELSE 0 END), 0) AS duplicates \
             FROM reports o WHERE o.reporter_id = $1 AND o.id <> $2 AND ($3 IS NULL OR {visible})",
            valid = *VALID_SQL,
            invalid = *INVALID_SQL,
            duplicate = *DUPLICATE_SQL,
            visible = crate::rules::visible_to("$3"),
        )
    });
    let row = sqlx::query(sql.as_str())
        .bind(reporter)
        .bind(except.0)
        .bind(visible_to.map(|u| u.0))
        .fetch_one(tx.conn())
        .await?;
    Ok(ReporterHistory {
        total: row.try_get("total")?,
        valid: row.try_get("valid")?,
        invalid: row.try_get("invalid")?,
        duplicates: row.try_get("duplicates")?,
    })
}

/// Counts reports per state code (for metrics).
pub async fn count_by_state(tx: &mut Tx) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM reports GROUP BY state ORDER BY state")
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(|row| Ok((row.try_get("state")?, row.try_get("n")?))).collect()
}

/// The report whose reply address carries `token`.
pub async fn by_reply_token(tx: &mut Tx, token: &str) -> Result<Option<ReportId>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE reply_token = $1")
        .bind(token)
        .fetch_optional(tx.conn())
        .await?;
    Ok(id.map(ReportId))
}

/// The report whose status-link token has this hash, unless the link was revoked.
pub async fn by_status_token_hash(tx: &mut Tx, hash: &str) -> Result<Option<ReportId>, StoreError> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM reports WHERE status_token_hash = $1 AND status_revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(tx.conn())
            .await?;
    Ok(id.map(ReportId))
}

/// A report's status-link token, opened (for the mail that carries the link).
pub async fn status_token(tx: &mut Tx, report: ReportId) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT reference, status_token_enc FROM reports WHERE id = $1")
        .bind(report.0)
        .fetch_one(tx.conn())
        .await?;
    let reference = reference_of(&row)?;
    let sealed: Vec<u8> = row.try_get("status_token_enc")?;
    tx.open(&sealed, &status_aad(&reference))
}

/// [`status_token`] of several reports, in one statement.
pub async fn status_tokens(
    tx: &mut Tx,
    reports: &[ReportId],
) -> Result<std::collections::HashMap<ReportId, String>, StoreError> {
    if reports.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let sql = format!(
        "SELECT id, reference, status_token_enc FROM reports WHERE id IN ({})",
        crate::placeholder_list(1, reports.len())
    );
    let mut query = crate::bulk(sql);
    for report in reports {
        query = query.bind(report.0);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter()
        .map(|row| {
            let reference = reference_of(row)?;
            let sealed: Vec<u8> = row.try_get("status_token_enc")?;
            Ok((ReportId(row.try_get("id")?), tx.open(&sealed, &status_aad(&reference))?))
        })
        .collect()
}

/// Marks a report as being about a dependency, recording the upstream project and contact.
pub async fn set_upstream(
    tx: &mut Tx,
    report: &ReportRecord,
    upstream: &Upstream,
    at: Timestamp,
) -> Result<(), StoreError> {
    let text = format!("{}\n{}", upstream.project.replace('\n', " "), upstream.contact.replace('\n', " "));
    let sealed = tx.seal(&text, &upstream_aad(&report.reference));
    sqlx::query("UPDATE reports SET upstream_enc = $1, updated_at = $2 WHERE id = $3")
        .bind(sealed)
        .bind(ms(at))
        .bind(report.id.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

// ---- Split reports -------------------------------------------------------------------

/// Records that `report` was split off `from`.
pub async fn mark_split(tx: &mut Tx, report: ReportId, from: ReportId) -> Result<(), StoreError> {
    sqlx::query("UPDATE reports SET split_from = $1 WHERE id = $2")
        .bind(from.0)
        .bind(report.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The reports split off `report`, oldest first.
pub async fn split_into(tx: &mut Tx, report: ReportId) -> Result<Vec<(ReportId, ReferenceId)>, StoreError> {
    let rows = sqlx::query("SELECT id, reference FROM reports WHERE split_from = $1 ORDER BY id")
        .bind(report.0)
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(|row| Ok((ReportId(row.try_get("id")?), reference_of(row)?))).collect()
}

/// The reports linked to `report` from their side, in one statement: those closed as its
/// duplicates and those split off it ([`split_into`]), by id, each list by id.
pub async fn linked_to(
    tx: &mut Tx,
    report: ReportId,
) -> Result<(Vec<(ReportId, ReferenceId)>, Vec<(ReportId, ReferenceId)>), StoreError> {
    let rows = sqlx::query(
        "SELECT id, reference, duplicate_of, split_from FROM reports WHERE duplicate_of = $1 OR split_from = $1 \
         ORDER BY id",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    let (mut duplicates, mut splits) = (Vec::new(), Vec::new());
    for row in &rows {
        let link = (ReportId(row.try_get("id")?), reference_of(row)?);
        if row.try_get::<Option<i64>, _>("duplicate_of")? == Some(report.0) {
            duplicates.push(link.clone());
        }
        if row.try_get::<Option<i64>, _>("split_from")? == Some(report.0) {
            splits.push(link);
        }
    }
    Ok((duplicates, splits))
}

// ---- Near-duplicates -----------------------------------------------------------------

fn similarity_aad(reference: &ReferenceId) -> String {
    format!("reports.similarity:{reference}")
}

/// A report's near-duplicate signature, opened, once it was indexed.
pub async fn similarity(tx: &mut Tx, report: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(similarity_and_generation(tx, report).await?.0)
}

/// The `instance_meta` counter of what near-duplicate suggestions are computed from (see
/// [`similarity_and_generation`]).
const SIMILARITY_GENERATION: &str = "similarity.generation";

/// A report's near-duplicate signature, opened, once it was indexed, and the generation of
/// everything suggestions are computed from, in one statement: the generation grows with
/// every write of signatures and bands ([`write_index`]) and every change of a report's
/// `duplicate_of` ([`record_transition`]), in their transactions. While it stays the same,
/// [`similarity_candidates`] and the signatures it reads give the same answer, so a caller
/// may keep what it computed from them (ADR 37).
pub async fn similarity_and_generation(tx: &mut Tx, report: ReportId) -> Result<(Option<Vec<u8>>, i64), StoreError> {
    let row = sqlx::query(
        "SELECT reference, similarity_enc, (SELECT value FROM instance_meta WHERE key = $2) AS generation \
         FROM reports WHERE id = $1",
    )
    .bind(report.0)
    .bind(SIMILARITY_GENERATION)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok((None, 0)) };
    let reference = reference_of(&row)?;
    similarity_of_row(tx, &row, &reference)
}

/// The opened `similarity_enc` and the `generation` column of a row.
fn similarity_of_row(
    tx: &Tx,
    row: &sqlx::any::AnyRow,
    reference: &ReferenceId,
) -> Result<(Option<Vec<u8>>, i64), StoreError> {
    let generation = match row.try_get::<Option<String>, _>("generation")? {
        Some(text) => text.parse().map_err(|_| StoreError::Corrupt(format!("{SIMILARITY_GENERATION} {text:?}")))?,
        None => 0,
    };
    match row.try_get::<Option<Vec<u8>>, _>("similarity_enc")? {
        Some(sealed) => Ok((Some(tx.keys.open(&sealed, similarity_aad(reference).as_bytes())?), generation)),
        None => Ok((None, generation)),
    }
}

/// Reports whose near-duplicate signature was computed by an older method than `version`
/// (see [`write_index`]), by increasing id, at most `limit`. Reports not indexed yet are not
/// listed (their `report.index` job computes the current signature). Reads the
/// `reports_similarity_version` index only.
pub async fn similarity_stale(tx: &mut Tx, version: u8, limit: i64) -> Result<Vec<ReportId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE similarity_version < $1 ORDER BY id LIMIT $2")
        .bind(i64::from(version))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
    Ok(ids.into_iter().map(ReportId).collect())
}

/// A report sharing at least one band with another.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Database id.
    pub id: ReportId,
    /// Reference.
    pub reference: ReferenceId,
    /// Its signature, opened.
    pub signature: Vec<u8>,
    /// How many of the report's bands it shares, among the band rows read (see
    /// [`similarity_candidates`]).
    pub shared: i64,
    /// The sum over those bands of 1 / (the rows read for the band): a rare band counts
    /// more than one a whole template or campaign shares. Candidates are ranked by it.
    pub rarity: f64,
}

/// What looking for candidates read: the work of one call, bounded by its arguments
/// whatever the corpus (see [`similarity_candidates`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateWork {
    /// The report's own band keys read.
    pub own_bands: usize,
    /// Rows read from the band index for those keys (other reports' memberships).
    pub band_rows: usize,
    /// Distinct reports among those rows.
    pub distinct: usize,
    /// Candidates whose row and signature were read (at most the `limit`).
    pub signatures: usize,
}

/// The reports sharing at least one band with `report`, best first, at most `limit`: not
/// the report itself, and not those already linked to it as duplicates (either way).
///
/// The work is bounded whatever the corpus: for each of the report's bands, at most
/// `per_band` of the reports received just before it and `per_band` of those received just
/// after it are read (index range scans on the band key's primary key), so a band shared by
/// a whole scanner campaign costs the same as a band shared by two reports. The reports
/// read are ranked by the rarity of the bands they share ([`Candidate::rarity`]), then by
/// their number, then by closeness in time of arrival, and only the best `limit` have
/// their signatures read. Returns what was read.
pub async fn similarity_candidates(
    tx: &mut Tx,
    report: ReportId,
    per_band: i64,
    limit: i64,
) -> Result<(Vec<Candidate>, CandidateWork), StoreError> {
    let mut work = CandidateWork::default();
    // The report's own band keys (hexadecimal) as one text: one row to hand over, not 64.
    let own_bands = match tx.backend() {
        crate::Backend::Sqlite => "SELECT group_concat(band, ',') FROM report_bands WHERE report_id = $1",
        crate::Backend::Postgres => "SELECT string_agg(band, ',') FROM report_bands WHERE report_id = $1",
    };
    let joined: Option<String> = sqlx::query_scalar(own_bands).bind(report.0).fetch_one(tx.conn()).await?;
    let mut bands: Vec<String> =
        joined.as_deref().unwrap_or_default().split(',').filter(|b| !b.is_empty()).map(str::to_owned).collect();
    bands.sort();
    work.own_bands = bands.len();
    if bands.is_empty() || per_band <= 0 || limit <= 0 {
        return Ok((Vec::new(), work));
    }
    // Per band, the nearest reports on either side of this one in arrival order (ids grow
    // with arrival), each row with the band's position (1-based, in `bands`' order). The up
    // to 64 × 8 rows come back as one text (`band:id,band:id,...`): one row to hand over
    // instead of hundreds, which through sqlx cost more than the scans (ADR 32).
    let joined: Option<String> = match tx.backend() {
        // One small statement: the bands are a lateral list, each read by two index range
        // scans. PostgreSQL planned the union form below anew on each execution (128
        // branches: about 20 ms of planning per page, measured with `perf`).
        crate::Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT string_agg(b.position || ':' || near.report_id, ',') \
                 FROM unnest(string_to_array($1, ',')) WITH ORDINALITY AS b(band, position) \
                 CROSS JOIN LATERAL ((SELECT report_id FROM report_bands WHERE band = b.band AND report_id < $2 \
                 ORDER BY report_id DESC LIMIT $3) UNION ALL (SELECT report_id FROM report_bands \
                 WHERE band = b.band AND report_id > $2 ORDER BY report_id LIMIT $3)) AS near",
            )
            .bind(bands.join(","))
            .bind(report.0)
            .bind(per_band)
            .fetch_one(tx.conn())
            .await?
        }
        // SQLite has no lateral join: one union branch per band and side. The statement's
        // text depends only on the number of bands, so it stays prepared (and is not
        // prepared again on each execution: the planner does not look at bound values,
        // `SQLITE_ENABLE_QPSG` in `.cargo/config.toml`).
        crate::Backend::Sqlite => {
            let (own, cap) = (bands.len() + 1, bands.len() + 2);
            let sql = (1..=bands.len())
                .map(|band| {
                    format!(
                        "SELECT CAST({band} AS BIGINT) AS band, report_id FROM (SELECT report_id FROM report_bands \
                         WHERE band = ${band} AND report_id < ${own} ORDER BY report_id DESC LIMIT ${cap}) AS before{band} \
                         UNION ALL SELECT CAST({band} AS BIGINT) AS band, report_id FROM (SELECT report_id FROM report_bands \
                         WHERE band = ${band} AND report_id > ${own} ORDER BY report_id LIMIT ${cap}) AS after{band}"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let sql = format!("SELECT group_concat(band || ':' || report_id, ',') FROM ({sql}) AS near");
            let mut query = crate::bulk(sql);
            for band in &bands {
                query = query.bind(band.clone());
            }
            query.bind(report.0).bind(per_band).fetch_one(tx.conn()).await?.try_get(0)?
        }
    };
    let rows: Vec<(i64, i64)> = joined
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (band, id) = pair.split_once(':').unwrap_or_default();
            match (band.parse(), id.parse()) {
                (Ok(band), Ok(id)) => Ok((band, id)),
                _ => Err(StoreError::Corrupt(format!("band row {pair:?}"))),
            }
        })
        .collect::<Result<_, StoreError>>()?;
    work.band_rows = rows.len();
    // A band read in full with few rows is a rare one: sharing it says more than sharing a
    // band that a whole template or campaign holds. Each shared band counts 1 / (rows read
    // for it), and candidates are ranked by that sum, then by the count, then by closeness.
    let mut rows_in_band: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    for (band, _) in &rows {
        *rows_in_band.entry(*band).or_default() += 1;
    }
    let mut shared: std::collections::HashMap<i64, (f64, i64)> = std::collections::HashMap::with_capacity(rows.len());
    for (band, id) in rows {
        let entry = shared.entry(id).or_default();
        entry.0 += 1.0 / f64::from(rows_in_band[&band]);
        entry.1 += 1;
    }
    work.distinct = shared.len();
    let mut ranked: Vec<(i64, f64, i64)> =
        shared.into_iter().map(|(id, (rarity, count))| (id, rarity, count)).collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(b.2.cmp(&a.2))
            .then(a.0.abs_diff(report.0).cmp(&b.0.abs_diff(report.0)))
            .then(a.0.cmp(&b.0))
    });
    ranked.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if ranked.is_empty() {
        return Ok((Vec::new(), work));
    }
    let sql = format!(
        "SELECT id, reference, similarity_enc FROM reports WHERE id IN ({}) AND similarity_enc IS NOT NULL \
         AND (duplicate_of IS NULL OR duplicate_of <> $1) \
         AND id NOT IN (SELECT duplicate_of FROM reports WHERE id = $1 AND duplicate_of IS NOT NULL)",
        crate::placeholder_list(2, ranked.len())
    );
    let mut query = crate::bulk(sql).bind(report.0);
    for (id, _, _) in &ranked {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    work.signatures = rows.len();
    let mut found: std::collections::HashMap<i64, Candidate> = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let reference = reference_of(row)?;
        let sealed: Vec<u8> = row.try_get("similarity_enc")?;
        let id: i64 = row.try_get("id")?;
        found.insert(
            id,
            Candidate {
                id: ReportId(id),
                signature: tx.keys.open(&sealed, similarity_aad(&reference).as_bytes())?,
                shared: 0,
                rarity: 0.0,
                reference,
            },
        );
    }
    let candidates = ranked
        .into_iter()
        .filter_map(|(id, rarity, shared)| found.remove(&id).map(|candidate| Candidate { shared, rarity, ..candidate }))
        .collect();
    Ok((candidates, work))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Store;

    /// ADR 38: each inbox statement has text for its filters only, so PostgreSQL plans it
    /// once per connection and keeps that generic plan. The former text with
    /// `$1 IS NULL OR ...` for every filter was planned anew on every call (a custom plan
    /// each time, costing more than running it). PostgreSQL only: SQLite plans a statement
    /// once when it is prepared (ADR 37).
    #[tokio::test]
    async fn inbox_statements_keep_one_generic_plan() {
        for db in embargo_test_support::both_backends() {
            if db.backend != "postgres" {
                continue;
            }
            let store = Store::connect(&db.url, Arc::new(embargo_crypto::Keyring::generate())).await.unwrap();
            store.migrate().await.unwrap();
            let mut tx = store.snapshot().await.unwrap();
            let filters = [
                InboxFilter { state: Some("open".into()), limit: 50, ..Default::default() },
                InboxFilter {
                    state: Some("triaging".into()),
                    assignee: Some(Some(UserId(1))),
                    visible_to: Some(UserId(2)),
                    due_before: Some(Timestamp::from_second(1_780_000_000).unwrap()),
                    words: vec!["parser".into()],
                    flagged_last: true,
                    limit: 50,
                    ..Default::default()
                },
            ];
            for filter in &filters {
                for _ in 0..12 {
                    inbox(&mut tx, filter).await.unwrap();
                }
            }
            // The statements this connection prepared that read the inbox's pages and counts.
            let plans: Vec<(String, i64, i64)> = sqlx::query(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE '%FROM reports%' AND statement NOT LIKE '%pg_prepared_statements%'",
            )
            .fetch_all(tx.conn())
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
            assert_eq!(plans.len(), 4, "a page and a count statement per filter shape: {plans:?}");
            for (statement, generic, custom) in &plans {
                assert!(
                    *custom <= 5 && *generic >= 7,
                    "planned {custom} times for 12 calls, generic plan used {generic} times: {statement}"
                );
            }
            tx.rollback().await.unwrap();
        }
    }
}
