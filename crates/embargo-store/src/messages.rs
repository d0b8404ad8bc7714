//! Messages on a report: mail in and out, form submissions and internal notes, all sealed.

use embargo_domain::{ReportId, Timestamp};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// From the reporter (mail, form, status page).
    Inbound,
    /// From the team to the reporter.
    Outbound,
    /// Internal note, never shown to the reporter.
    Note,
}

impl MessageKind {
    /// Stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Inbound => "inbound",
            MessageKind::Outbound => "outbound",
            MessageKind::Note => "note",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "inbound" => Some(MessageKind::Inbound),
            "outbound" => Some(MessageKind::Outbound),
            "note" => Some(MessageKind::Note),
            _ => None,
        }
    }
}

/// A message to insert; plaintext here, sealed on the way in.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// The report it belongs to.
    pub report: ReportId,
    /// What it is.
    pub kind: MessageKind,
    /// Who wrote it (actor text form).
    pub author: &'a str,
    /// The sender as it appeared (mail From), if any.
    pub sender: Option<&'a str>,
    /// Subject, if any.
    pub subject: Option<&'a str>,
    /// Text shown to people.
    pub body: &'a str,
    /// The original message bytes (kept for mail, so nothing is ever lost to parsing).
    pub raw: Option<&'a [u8]>,
    /// The mail Message-ID, indexed blindly for threading.
    pub message_id: Option<&'a str>,
    /// Set for mail to the reply address from someone other than the reporter.
    pub quarantined: bool,
    /// OpenPGP status at intake (`pgp-mime`, `pgp-inline+signed`, `undecryptable`...).
    pub pgp: Option<&'a str>,
    /// Sender authentication results (`dkim=... spf=... dmarc=...`), for mail over SMTP.
    pub auth: Option<&'a str>,
    /// What was wrong with a received message: comma-separated codes (`malformed-mime`,
    /// `ambiguous-sender`, `sender-mismatch`), `None` when nothing was.
    pub anomalies: Option<&'a str>,
    /// When.
    pub at: Timestamp,
}

/// A message as read back, opened.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    /// Row id.
    pub id: i64,
    /// What it is.
    pub kind: MessageKind,
    /// Author text.
    pub author: String,
    /// Sender.
    pub sender: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Text.
    pub body: String,
    /// Size of the kept original, in bytes, when there is one.
    pub raw_size: Option<usize>,
    /// Whether the message is quarantined (not from the reporter).
    pub quarantined: bool,
    /// OpenPGP status at intake.
    pub pgp: Option<String>,
    /// Sender authentication results.
    pub auth: Option<String>,
    /// What was wrong with it, as codes (see [`NewMessage::anomalies`]); empty when nothing.
    pub anomalies: Vec<String>,
    /// Whether the reporter sees it on the status page (their own messages and the team's
    /// mail to them; never notes or quarantined mail).
    pub visible_to_reporter: bool,
    /// When.
    pub at: Timestamp,
}

fn aad(report: ReportId, field: &str) -> String {
    format!("messages.{field}:{report}")
}

/// The blind index of a Message-ID (angle brackets and case of the domain ignored).
pub fn message_id_index(tx: &Tx, message_id: &str) -> String {
    let trimmed = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    tx.keys.blind_index("messages.message_id", trimmed.as_bytes())
}

/// Inserts a message; returns its row id.
pub async fn insert(tx: &mut Tx, new: &NewMessage<'_>) -> Result<i64, StoreError> {
    let ids = insert_many(tx, std::slice::from_ref(new)).await?;
    ids.first().copied().ok_or_else(|| StoreError::Corrupt("message insert".into()))
}

/// Inserts messages, each on a different report, in one statement; returns their row ids
/// in order. (Several messages on one report are inserted one by one.)
pub async fn insert_many(tx: &mut Tx, new: &[NewMessage<'_>]) -> Result<Vec<i64>, StoreError> {
    let distinct = new.iter().enumerate().all(|(i, m)| new[..i].iter().all(|other| other.report != m.report));
    if !distinct {
        let mut ids = Vec::with_capacity(new.len());
        for message in new {
            ids.extend(Box::pin(insert_many(tx, std::slice::from_ref(message))).await?);
        }
        return Ok(ids);
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO messages (report_id, kind, author, sender_enc, subject_enc, body_enc, \
         raw_enc, message_id_index, created_at, quarantined, pgp, auth_results, visible_to_reporter, anomalies) \
         VALUES {} RETURNING id, report_id",
        crate::values_list("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", 14, new.len())
    );
    let mut query = crate::bulk(sql);
    for message in new {
        let report = message.report;
        let visible = match message.kind {
            MessageKind::Inbound => !message.quarantined,
            MessageKind::Outbound => true,
            MessageKind::Note => false,
        };
        query = query
            .bind(report.0)
            .bind(message.kind.as_str())
            .bind(message.author)
            .bind(message.sender.map(|v| tx.seal(v, &aad(report, "sender"))))
            .bind(message.subject.map(|v| tx.seal(v, &aad(report, "subject"))))
            .bind(tx.seal(message.body, &aad(report, "body")))
            .bind(message.raw.map(|v| tx.keys.seal(v, aad(report, "raw").as_bytes())))
            .bind(message.message_id.map(|m| message_id_index(tx, m)))
            .bind(ms(message.at))
            .bind(i64::from(message.quarantined))
            .bind(message.pgp)
            .bind(message.auth)
            .bind(i64::from(visible))
            .bind(message.anomalies.filter(|a| !a.is_empty()));
    }
    // RETURNING gives no order; the reports are distinct, so they match the rows back.
    let mut ids = std::collections::HashMap::with_capacity(new.len());
    for row in query.fetch_all(tx.conn()).await? {
        ids.insert(row.try_get::<i64, _>("report_id")?, row.try_get::<i64, _>("id")?);
    }
    new.iter()
        .map(|m| ids.get(&m.report.0).copied().ok_or_else(|| StoreError::Corrupt("message insert".into())))
        .collect()
}

const SELECT_MESSAGE: &str = "SELECT id, kind, author, sender_enc, subject_enc, body_enc, raw_enc, quarantined, pgp, \
     auth_results, visible_to_reporter, created_at, anomalies FROM messages";

fn message_of(tx: &Tx, report: ReportId, row: &sqlx::any::AnyRow) -> Result<MessageRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    let sender: Option<Vec<u8>> = row.try_get("sender_enc")?;
    let subject: Option<Vec<u8>> = row.try_get("subject_enc")?;
    let body: Vec<u8> = row.try_get("body_enc")?;
    let raw: Option<Vec<u8>> = row.try_get("raw_enc")?;
    let quarantined: i64 = row.try_get("quarantined")?;
    let visible: i64 = row.try_get("visible_to_reporter")?;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        kind: MessageKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("message kind {kind:?}")))?,
        author: row.try_get("author")?,
        sender: sender.map(|v| tx.open(&v, &aad(report, "sender"))).transpose()?,
        subject: subject.map(|v| tx.open(&v, &aad(report, "subject"))).transpose()?,
        body: tx.open(&body, &aad(report, "body"))?,
        raw_size: raw.map(|v| tx.keys.open(&v, aad(report, "raw").as_bytes()).map(|r| r.len())).transpose()?,
        quarantined: quarantined != 0,
        pgp: row.try_get("pgp")?,
        auth: row.try_get("auth_results")?,
        anomalies: row
            .try_get::<Option<String>, _>("anomalies")?
            .map(|a| a.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        visible_to_reporter: visible != 0,
        at: ts(row.try_get("created_at")?)?,
    })
}

/// A report's messages, oldest first, opened.
pub async fn list(tx: &mut Tx, report: ReportId) -> Result<Vec<MessageRecord>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| format!("{SELECT_MESSAGE} WHERE report_id = $1 ORDER BY id"));
    let rows = sqlx::query(sql.as_str()).bind(report.0).fetch_all(tx.conn()).await?;
    rows.iter().map(|row| message_of(tx, report, row)).collect()
}

/// One message of a report, opened.
pub async fn get(tx: &mut Tx, report: ReportId, message: i64) -> Result<Option<MessageRecord>, StoreError> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| format!("{SELECT_MESSAGE} WHERE report_id = $1 AND id = $2"));
    let row = sqlx::query(sql.as_str()).bind(report.0).bind(message).fetch_optional(tx.conn()).await?;
    row.map(|row| message_of(tx, report, &row)).transpose()
}

/// The original bytes of a message, when kept.
pub async fn raw(tx: &mut Tx, report: ReportId, message: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let raw: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT raw_enc FROM messages WHERE id = $1 AND report_id = $2")
            .bind(message)
            .bind(report.0)
            .fetch_optional(tx.conn())
            .await?;
    match raw.flatten() {
        Some(sealed) => Ok(Some(tx.keys.open(&sealed, aad(report, "raw").as_bytes())?)),
        None => Ok(None),
    }
}

/// [`raw`] of several (report, message) pairs, in one statement: the original bytes by
/// message id, for the messages that have them.
pub async fn raws(
    tx: &mut Tx,
    messages: &[(ReportId, i64)],
) -> Result<std::collections::HashMap<i64, Vec<u8>>, StoreError> {
    if messages.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let sql = format!(
        "SELECT id, report_id, raw_enc FROM messages WHERE id IN ({}) AND raw_enc IS NOT NULL",
        crate::placeholder_list(1, messages.len())
    );
    let mut query = crate::bulk(sql);
    for (_, message) in messages {
        query = query.bind(*message);
    }
    let mut found = std::collections::HashMap::new();
    for row in query.fetch_all(tx.conn()).await? {
        let (id, report): (i64, i64) = (row.try_get("id")?, row.try_get("report_id")?);
        // Only the message asked for on its own report.
        if messages.contains(&(ReportId(report), id)) {
            let sealed: Vec<u8> = row.try_get("raw_enc")?;
            found.insert(id, tx.keys.open(&sealed, aad(ReportId(report), "raw").as_bytes())?);
        }
    }
    Ok(found)
}

/// The reports that hold a message with any of these Message-IDs (for threading replies).
pub async fn reports_by_message_ids(tx: &mut Tx, message_ids: &[&str]) -> Result<Vec<ReportId>, StoreError> {
    let mut found = Vec::new();
    for (_, report) in reports_for_message_ids(tx, message_ids).await? {
        if !found.contains(&report) {
            found.push(report);
        }
    }
    Ok(found)
}

/// Which reports hold messages with these Message-IDs, in one statement: pairs of (position
/// in `message_ids`, report), ordered by position.
pub async fn reports_for_message_ids(tx: &mut Tx, message_ids: &[&str]) -> Result<Vec<(usize, ReportId)>, StoreError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let indexes: Vec<String> = message_ids.iter().map(|m| message_id_index(tx, m)).collect();
    let sql = format!(
        "SELECT DISTINCT report_id, message_id_index FROM messages WHERE message_id_index IN ({})",
        crate::placeholder_list(1, indexes.len())
    );
    let mut query = crate::bulk(sql);
    for index in &indexes {
        query = query.bind(index.as_str());
    }
    let mut found = Vec::new();
    for row in query.fetch_all(tx.conn()).await? {
        let index: String = row.try_get("message_id_index")?;
        let report = ReportId(row.try_get("report_id")?);
        for (position, _) in indexes.iter().enumerate().filter(|(_, i)| **i == index) {
            found.push((position, report));
        }
    }
    found.sort_by_key(|&(position, report)| (position, report.0));
    Ok(found)
}

/// The original bytes of the reporter's latest message that came by mail, if any.
pub async fn latest_inbound_raw(tx: &mut Tx, report: ReportId) -> Result<Option<Vec<u8>>, StoreError> {
    let raw: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT raw_enc FROM messages WHERE report_id = $1 AND kind = 'inbound' AND quarantined = 0 \
         AND raw_enc IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .bind(report.0)
    .fetch_optional(tx.conn())
    .await?;
    match raw.flatten() {
        Some(sealed) => Ok(Some(tx.keys.open(&sealed, aad(report, "raw").as_bytes())?)),
        None => Ok(None),
    }
}
