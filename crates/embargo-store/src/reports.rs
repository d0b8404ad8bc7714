//! Reports: reference numbering, sealed content, lifecycle state and its history.

use embargo_domain::{CloseReason, ReferenceId, ReferencePrefix, ReportId, ReportState, Timestamp, Transition, UserId};
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
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO reference_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = reference_counters.last + 1 \
         RETURNING last",
    )
    .bind(i64::from(year))
    .fetch_one(tx.conn())
    .await?;
    let number = u32::try_from(last).map_err(|_| StoreError::Corrupt("reference counter".into()))?;
    ReferenceId::new(prefix.clone(), year, number).map_err(|e| StoreError::Corrupt(e.to_string()))
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

/// Inserts a new report in state `new`.
pub async fn insert(tx: &mut Tx, new: &NewReport<'_>) -> Result<ReportId, StoreError> {
    let title = tx.seal(new.title, &title_aad(new.reference));
    let body = tx.seal(new.body, &body_aad(new.reference));
    let status = tx.seal(new.status_token, &status_aad(new.reference));
    let at = ms(new.received_at);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reports (reference, ref_year, ref_number, state, channel, reporter_id, \
         title_enc, body_enc, reply_token, status_token_hash, status_token_enc, created_at, updated_at) \
         VALUES ($1, $2, $3, 'new', $4, $5, $6, $7, $9, $10, $11, $8, $8) RETURNING id",
    )
    .bind(new.reference.to_string())
    .bind(i64::from(new.reference.year()))
    .bind(i64::from(new.reference.number()))
    .bind(new.channel)
    .bind(new.reporter_id)
    .bind(title)
    .bind(body)
    .bind(at)
    .bind(new.reply_token)
    .bind(new.status_token_hash)
    .bind(status)
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "report reference or token"))?;
    Ok(ReportId(id))
}

const SELECT_REPORT: &str = "SELECT id, reference, state, close_reason, duplicate_of, channel, \
     reporter_id, title_enc, body_enc, reply_token, upstream_enc, created_at, updated_at FROM reports";

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
            "{SELECT_REPORT} WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR id IN (SELECT report_id FROM report_members WHERE user_id = $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
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

/// Whether a team member has access to a report.
pub async fn is_member(tx: &mut Tx, report: ReportId, user: UserId) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM report_members WHERE report_id = $1 AND user_id = $2")
        .bind(report.0)
        .bind(user.0)
        .fetch_optional(tx.conn())
        .await?;
    Ok(found.is_some())
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

/// The report whose status-link token has this hash.
pub async fn by_status_token_hash(tx: &mut Tx, hash: &str) -> Result<Option<ReportId>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM reports WHERE status_token_hash = $1")
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
