//! Partners and early disclosure: partner lists with their embargo policy, partner
//! organisations with their contacts and products, a report's embargo, the notices sent
//! about it (text and patches sealed), each contact's copy with its delivery state, leaks
//! (sealed) and partner contacts' invitations.

use embargo_domain::partner::{DeliveryState, EmbargoPolicy, EmbargoState, PartnerState, parse_weekday};
use embargo_domain::{ReportId, Timestamp, UserId};
use jiff::SignedDuration;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, Tx, ms, ts};

fn opt_ts(value: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    value.map(ts).transpose()
}

fn invalid(what: &str, code: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} code {code:?}"))
}

// ---------------------------------------------------------------------------------------
// Lists

/// A partner list and its embargo policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerList {
    /// Id.
    pub id: i64,
    /// Name (`default` is made by the migration).
    pub name: String,
    /// Its policy.
    pub policy: EmbargoPolicy,
}

fn list_of(row: &AnyRow) -> Result<PartnerList, StoreError> {
    let days: String = row.try_get("preferred_days")?;
    let hour: Option<i64> = row.try_get("preferred_hour")?;
    Ok(PartnerList {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        policy: EmbargoPolicy {
            max_embargo: SignedDuration::from_hours(row.try_get("max_embargo_hours")?),
            min_notice: SignedDuration::from_hours(row.try_get("min_notice_hours")?),
            final_notice: SignedDuration::from_hours(row.try_get("final_notice_hours")?),
            preferred_days: days.split(',').filter_map(parse_weekday).collect(),
            preferred_hour: hour.and_then(|h| i8::try_from(h).ok()),
        },
    })
}

const LIST_COLUMNS: &str =
    "id, name, max_embargo_hours, min_notice_hours, final_notice_hours, preferred_days, preferred_hour";

/// Every list, by name.
pub async fn lists(tx: &mut Tx) -> Result<Vec<PartnerList>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LIST_COLUMNS} FROM partner_lists ORDER BY name")))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(list_of).collect()
}

/// A list by id.
pub async fn list(tx: &mut Tx, id: i64) -> Result<Option<PartnerList>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LIST_COLUMNS} FROM partner_lists WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(list_of).transpose()
}

/// A list by name.
pub async fn list_by_name(tx: &mut Tx, name: &str) -> Result<Option<PartnerList>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LIST_COLUMNS} FROM partner_lists WHERE name = $1")))
        .bind(name)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(list_of).transpose()
}

/// Creates a list or replaces its policy; returns its id.
pub async fn set_list(tx: &mut Tx, name: &str, policy: &EmbargoPolicy, now: Timestamp) -> Result<i64, StoreError> {
    let days: Vec<&str> =
        policy.preferred_days.iter().map(|d| &embargo_domain::partner::weekday_name(*d)[..3]).collect();
    let days = days.join(",").to_ascii_lowercase();
    let hour = policy.preferred_hour.map(i64::from);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO partner_lists (name, max_embargo_hours, min_notice_hours, final_notice_hours, preferred_days, \
         preferred_hour, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (name) DO UPDATE SET max_embargo_hours = excluded.max_embargo_hours, \
         min_notice_hours = excluded.min_notice_hours, final_notice_hours = excluded.final_notice_hours, \
         preferred_days = excluded.preferred_days, preferred_hour = excluded.preferred_hour RETURNING id",
    )
    .bind(name)
    .bind(policy.max_embargo.as_hours())
    .bind(policy.min_notice.as_hours())
    .bind(policy.final_notice.as_hours())
    .bind(days)
    .bind(hour)
    .bind(ms(now))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// Partners and contacts

/// A partner organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Id.
    pub id: i64,
    /// The organisation's name.
    pub name: String,
    /// Its list.
    pub list_id: i64,
    /// Its standing.
    pub state: PartnerState,
    /// The version of the embargo terms it accepted ('' when none recorded).
    pub terms_version: String,
    /// When it accepted them.
    pub terms_accepted_at: Option<Timestamp>,
    /// Who vouched for it.
    pub vouched_by: String,
    /// The time zone its notices show times in (IANA name).
    pub time_zone: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

const PARTNER_COLUMNS: &str = "p.id, p.name, p.list_id, p.state, p.terms_version, p.terms_accepted_at, p.vouched_by, p.time_zone, p.created_at, \
     p.updated_at";

fn partner_of(row: &AnyRow) -> Result<Partner, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Partner {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        list_id: row.try_get("list_id")?,
        state: PartnerState::parse(&state).ok_or_else(|| invalid("partner state", &state))?,
        terms_version: row.try_get("terms_version")?,
        terms_accepted_at: opt_ts(row.try_get("terms_accepted_at")?)?,
        vouched_by: row.try_get("vouched_by")?,
        time_zone: row.try_get("time_zone")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

/// What a new partner is made of.
#[derive(Debug, Clone)]
pub struct NewPartner<'a> {
    /// Name.
    pub name: &'a str,
    /// Its list.
    pub list_id: i64,
    /// Terms version accepted.
    pub terms_version: &'a str,
    /// When.
    pub terms_accepted_at: Option<Timestamp>,
    /// Who vouched.
    pub vouched_by: &'a str,
    /// Time zone.
    pub time_zone: &'a str,
}

/// Creates a partner (active). [`StoreError::Conflict`] when the name is taken.
pub async fn create_partner(tx: &mut Tx, new: &NewPartner<'_>, now: Timestamp) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO partners (name, list_id, state, terms_version, terms_accepted_at, vouched_by, time_zone, \
         created_at, updated_at) VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(new.name)
    .bind(new.list_id)
    .bind(new.terms_version)
    .bind(new.terms_accepted_at.map(ms))
    .bind(new.vouched_by)
    .bind(new.time_zone)
    .bind(ms(now))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "a partner with this name"))
}

/// Updates a partner's terms, voucher, time zone and list.
pub async fn update_partner(tx: &mut Tx, partner: &Partner, now: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE partners SET list_id = $2, terms_version = $3, terms_accepted_at = $4, vouched_by = $5, \
         time_zone = $6, state = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(partner.id)
    .bind(partner.list_id)
    .bind(&partner.terms_version)
    .bind(partner.terms_accepted_at.map(ms))
    .bind(&partner.vouched_by)
    .bind(&partner.time_zone)
    .bind(partner.state.code())
    .bind(ms(now))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A partner by name.
pub async fn partner_by_name(tx: &mut Tx, name: &str) -> Result<Option<Partner>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners p WHERE p.name = $1")))
        .bind(name)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(partner_of).transpose()
}

/// A partner by id.
pub async fn partner(tx: &mut Tx, id: i64) -> Result<Option<Partner>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners p WHERE p.id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(partner_of).transpose()
}

/// Every partner, by name.
pub async fn partners(tx: &mut Tx) -> Result<Vec<Partner>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners p ORDER BY p.name")))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(partner_of).collect()
}

/// The active partners that receive notices for a product.
pub async fn active_partners_for_product(tx: &mut Tx, product: i64) -> Result<Vec<Partner>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PARTNER_COLUMNS} FROM partners p JOIN partner_products pp ON pp.partner_id = p.id \
         WHERE pp.product_id = $1 AND p.state = 'active' ORDER BY p.name"
    )))
    .bind(product)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(partner_of).collect()
}

/// Replaces the products a partner receives notices for.
pub async fn set_products(tx: &mut Tx, partner: i64, products: &[i64]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM partner_products WHERE partner_id = $1").bind(partner).execute(tx.conn()).await?;
    for product in products {
        sqlx::query("INSERT INTO partner_products (partner_id, product_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(partner)
            .bind(product)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// The names of the products a partner receives notices for.
pub async fn product_names(tx: &mut Tx, partner: i64) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT pr.name FROM partner_products pp JOIN products pr ON pr.id = pp.product_id \
         WHERE pp.partner_id = $1 ORDER BY pr.name",
    )
    .bind(partner)
    .fetch_all(tx.conn())
    .await?)
}

/// A partner's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Id.
    pub id: i64,
    /// The partner.
    pub partner_id: i64,
    /// Address (a role alias preferably).
    pub email: String,
    /// The contact's account (role partner).
    pub user_id: UserId,
    /// Their OpenPGP certificate (armored), if known.
    pub openpgp_key: Option<String>,
    /// Its fingerprint.
    pub fingerprint: Option<String>,
    /// Added.
    pub created_at: Timestamp,
    /// Removed (kept for the record of what they received).
    pub removed_at: Option<Timestamp>,
}

const CONTACT_COLUMNS: &str =
    "c.id, c.partner_id, c.email, c.user_id, c.openpgp_key, c.fingerprint, c.created_at, c.removed_at";

fn contact_of(row: &AnyRow) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: row.try_get("id")?,
        partner_id: row.try_get("partner_id")?,
        email: row.try_get("email")?,
        user_id: UserId(row.try_get("user_id")?),
        openpgp_key: row.try_get("openpgp_key")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: ts(row.try_get("created_at")?)?,
        removed_at: opt_ts(row.try_get("removed_at")?)?,
    })
}

/// Adds a contact, or brings back a removed one with the new key.
pub async fn add_contact(
    tx: &mut Tx,
    partner: i64,
    email: &str,
    user: UserId,
    key: Option<(&str, &str)>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO partner_contacts (partner_id, email, user_id, openpgp_key, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id, email) DO UPDATE SET removed_at = NULL, \
         openpgp_key = COALESCE(excluded.openpgp_key, partner_contacts.openpgp_key), \
         fingerprint = COALESCE(excluded.fingerprint, partner_contacts.fingerprint) RETURNING id",
    )
    .bind(partner)
    .bind(email)
    .bind(user.0)
    .bind(key.map(|k| k.0))
    .bind(key.map(|k| k.1))
    .bind(ms(now))
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// A partner's contacts (current ones unless `all`), oldest first.
pub async fn contacts(tx: &mut Tx, partner: i64, all: bool) -> Result<Vec<Contact>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM partner_contacts c WHERE c.partner_id = $1 AND ($2 = 1 OR c.removed_at IS NULL) \
         ORDER BY c.id"
    )))
    .bind(partner)
    .bind(i64::from(all))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(contact_of).collect()
}

/// The current contact rows of an account (one per partner it speaks for; normally one).
pub async fn contacts_of_user(tx: &mut Tx, user: UserId) -> Result<Vec<Contact>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM partner_contacts c WHERE c.user_id = $1 AND c.removed_at IS NULL ORDER BY c.id"
    )))
    .bind(user.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(contact_of).collect()
}

/// Sets a contact's certificate.
pub async fn set_contact_key(tx: &mut Tx, contact: i64, key: Option<(&str, &str)>) -> Result<(), StoreError> {
    sqlx::query("UPDATE partner_contacts SET openpgp_key = $2, fingerprint = $3 WHERE id = $1")
        .bind(contact)
        .bind(key.map(|k| k.0))
        .bind(key.map(|k| k.1))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Removes a contact (the row stays for the record).
pub async fn remove_contact(tx: &mut Tx, contact: i64, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE partner_contacts SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL")
        .bind(contact)
        .bind(ms(now))
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------
// Embargoes

/// A report's embargo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embargo {
    /// The report.
    pub report: ReportId,
    /// Where it is.
    pub state: EmbargoState,
    /// The disclosure instant.
    pub disclose_at: Timestamp,
    /// When partners were first told.
    pub first_notice_at: Option<Timestamp>,
    /// An opaque identifier, the only one a public pre-announcement shows.
    pub public_id: String,
    /// When the date and severity were pre-announced in public, if they were.
    pub announced_at: Option<Timestamp>,
    /// The severity pre-announced.
    pub announced_severity: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

const EMBARGO_COLUMNS: &str = "report_id, state, disclose_at, first_notice_at, public_id, announced_at, \
     announced_severity, created_at, updated_at";

fn embargo_of(row: &AnyRow) -> Result<Embargo, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Embargo {
        report: ReportId(row.try_get("report_id")?),
        state: EmbargoState::parse(&state).ok_or_else(|| invalid("embargo state", &state))?,
        disclose_at: ts(row.try_get("disclose_at")?)?,
        first_notice_at: opt_ts(row.try_get("first_notice_at")?)?,
        public_id: row.try_get("public_id")?,
        announced_at: opt_ts(row.try_get("announced_at")?)?,
        announced_severity: row.try_get("announced_severity")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

/// A report's embargo, if it has one.
pub async fn embargo(tx: &mut Tx, report: ReportId) -> Result<Option<Embargo>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {EMBARGO_COLUMNS} FROM embargoes WHERE report_id = $1")))
        .bind(report.0)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(embargo_of).transpose()
}

/// Writes a report's embargo (creating it the first time).
pub async fn save_embargo(tx: &mut Tx, embargo: &Embargo) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO embargoes (report_id, state, disclose_at, first_notice_at, public_id, announced_at, \
         announced_severity, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (report_id) DO UPDATE SET state = excluded.state, disclose_at = excluded.disclose_at, \
         first_notice_at = excluded.first_notice_at, announced_at = excluded.announced_at, \
         announced_severity = excluded.announced_severity, updated_at = excluded.updated_at",
    )
    .bind(embargo.report.0)
    .bind(embargo.state.code())
    .bind(ms(embargo.disclose_at))
    .bind(embargo.first_notice_at.map(ms))
    .bind(&embargo.public_id)
    .bind(embargo.announced_at.map(ms))
    .bind(&embargo.announced_severity)
    .bind(ms(embargo.created_at))
    .bind(ms(embargo.updated_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The embargoes pre-announced in public and still in force, soonest first.
pub async fn announced(tx: &mut Tx) -> Result<Vec<Embargo>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EMBARGO_COLUMNS} FROM embargoes WHERE announced_at IS NOT NULL AND state IN ('active', 'revised') \
         ORDER BY disclose_at, public_id"
    )))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(embargo_of).collect()
}

// ---------------------------------------------------------------------------------------
// Notices

/// A notice to partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Id.
    pub id: i64,
    /// The report.
    pub report: ReportId,
    /// `pre-notice`, `revision`, `broken` or `lifted`.
    pub kind: String,
    /// `draft`, `sent` or `superseded`.
    pub state: String,
    /// The disclosure instant it announces.
    pub disclose_at: Timestamp,
    /// What partners may do before it.
    pub deploy_hosted: bool,
    /// What partners may tell customers.
    pub tell_customers: bool,
    /// A person confirmed the day (a Friday or a weekend) when drafting.
    pub confirmed_day: bool,
    /// The subject (sealed at rest).
    pub subject: String,
    /// The team's text (sealed at rest).
    pub body: String,
    /// Who drafted it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// Who last edited the text.
    pub edited_by: Option<String>,
    /// When.
    pub edited_at: Option<Timestamp>,
    /// Who sent it.
    pub sent_by: Option<String>,
    /// When.
    pub sent_at: Option<Timestamp>,
}

fn notice_aad(report: ReportId, what: &str) -> String {
    format!("notices.{what}:{}", report.0)
}

const NOTICE_COLUMNS: &str = "id, report_id, kind, state, disclose_at, deploy_hosted, tell_customers, confirmed_day, subject_enc, \
     body_enc, created_by, created_at, edited_by, edited_at, sent_by, sent_at";

fn notice_of(tx: &Tx, row: &AnyRow) -> Result<Notice, StoreError> {
    let report = ReportId(row.try_get("report_id")?);
    let subject: Vec<u8> = row.try_get("subject_enc")?;
    let body: Vec<u8> = row.try_get("body_enc")?;
    Ok(Notice {
        id: row.try_get("id")?,
        report,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        disclose_at: ts(row.try_get("disclose_at")?)?,
        deploy_hosted: row.try_get::<i64, _>("deploy_hosted")? != 0,
        tell_customers: row.try_get::<i64, _>("tell_customers")? != 0,
        confirmed_day: row.try_get::<i64, _>("confirmed_day")? != 0,
        subject: tx.open(&subject, &notice_aad(report, "subject"))?,
        body: tx.open(&body, &notice_aad(report, "body"))?,
        created_by: row.try_get("created_by")?,
        created_at: ts(row.try_get("created_at")?)?,
        edited_by: row.try_get("edited_by")?,
        edited_at: opt_ts(row.try_get("edited_at")?)?,
        sent_by: row.try_get("sent_by")?,
        sent_at: opt_ts(row.try_get("sent_at")?)?,
    })
}

/// A new notice (a draft).
#[derive(Debug, Clone)]
pub struct NewNotice<'a> {
    /// The report.
    pub report: ReportId,
    /// Its kind.
    pub kind: &'a str,
    /// The instant.
    pub disclose_at: Timestamp,
    /// Permissions.
    pub deploy_hosted: bool,
    /// Permissions.
    pub tell_customers: bool,
    /// The day was confirmed.
    pub confirmed_day: bool,
    /// Subject.
    pub subject: &'a str,
    /// Text.
    pub body: &'a str,
    /// Who drafts it.
    pub created_by: &'a str,
}

/// Stores a draft notice; returns its id.
pub async fn insert_notice(tx: &mut Tx, new: &NewNotice<'_>, now: Timestamp) -> Result<i64, StoreError> {
    let subject = tx.seal(new.subject, &notice_aad(new.report, "subject"));
    let body = tx.seal(new.body, &notice_aad(new.report, "body"));
    Ok(sqlx::query_scalar(
        "INSERT INTO notices (report_id, kind, state, disclose_at, deploy_hosted, tell_customers, confirmed_day, \
         subject_enc, body_enc, created_by, created_at) VALUES ($1, $2, 'draft', $3, $4, $5, $10, $6, $7, $8, $9) \
         RETURNING id",
    )
    .bind(new.report.0)
    .bind(new.kind)
    .bind(ms(new.disclose_at))
    .bind(i64::from(new.deploy_hosted))
    .bind(i64::from(new.tell_customers))
    .bind(subject)
    .bind(body)
    .bind(new.created_by)
    .bind(ms(now))
    .bind(i64::from(new.confirmed_day))
    .fetch_one(tx.conn())
    .await?)
}

/// A notice by id.
pub async fn notice(tx: &mut Tx, id: i64) -> Result<Option<Notice>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(|row| notice_of(tx, row)).transpose()
}

/// A report's notices, newest first.
pub async fn notices(tx: &mut Tx, report: ReportId) -> Result<Vec<Notice>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE report_id = $1 ORDER BY id DESC"
    )))
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| notice_of(tx, row)).collect()
}

/// Replaces a draft's text and permissions. `false` when the notice is no draft.
pub async fn edit_notice(tx: &mut Tx, notice: &Notice, edited_by: &str, now: Timestamp) -> Result<bool, StoreError> {
    let subject = tx.seal(&notice.subject, &notice_aad(notice.report, "subject"));
    let body = tx.seal(&notice.body, &notice_aad(notice.report, "body"));
    let done = sqlx::query(
        "UPDATE notices SET subject_enc = $2, body_enc = $3, deploy_hosted = $4, tell_customers = $5, \
         edited_by = $6, edited_at = $7 WHERE id = $1 AND state = 'draft'",
    )
    .bind(notice.id)
    .bind(subject)
    .bind(body)
    .bind(i64::from(notice.deploy_hosted))
    .bind(i64::from(notice.tell_customers))
    .bind(edited_by)
    .bind(ms(now))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a draft sent. `false` when it was no longer a draft (sent by someone else).
pub async fn mark_sent(tx: &mut Tx, id: i64, by: &str, now: Timestamp) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE notices SET state = 'sent', sent_by = $2, sent_at = $3 WHERE id = $1 AND state = 'draft'")
            .bind(id)
            .bind(by)
            .bind(ms(now))
            .execute(tx.conn())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks every other draft or sent notice of the report superseded.
pub async fn supersede_others(tx: &mut Tx, report: ReportId, keep: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE notices SET state = 'superseded' WHERE report_id = $1 AND id <> $2 AND state <> 'superseded'")
        .bind(report.0)
        .bind(keep)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// One release line's patch series attached to a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticePatch {
    /// The release line.
    pub line: String,
    /// The `format-patch` mbox.
    pub patch: Vec<u8>,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Attaches a line's patches to a notice (sealed), replacing any.
pub async fn set_patch(tx: &mut Tx, notice: i64, line: &str, patch: &[u8], sha256: &str) -> Result<(), StoreError> {
    let sealed = tx.keys.seal(patch, format!("notice_patches:{notice}:{line}").as_bytes());
    sqlx::query(
        "INSERT INTO notice_patches (notice_id, line, patch_enc, sha256) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (notice_id, line) DO UPDATE SET patch_enc = excluded.patch_enc, sha256 = excluded.sha256",
    )
    .bind(notice)
    .bind(line)
    .bind(sealed)
    .bind(sha256)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A notice's patches, by line.
pub async fn patches(tx: &mut Tx, notice: i64) -> Result<Vec<NoticePatch>, StoreError> {
    let rows = sqlx::query("SELECT line, patch_enc, sha256 FROM notice_patches WHERE notice_id = $1 ORDER BY line")
        .bind(notice)
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|row| {
            let line: String = row.try_get("line")?;
            let sealed: Vec<u8> = row.try_get("patch_enc")?;
            let patch = tx.keys.open(&sealed, format!("notice_patches:{notice}:{line}").as_bytes())?;
            Ok(NoticePatch { line, patch, sha256: row.try_get("sha256")? })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Deliveries

/// One contact's copy of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// The notice.
    pub notice_id: i64,
    /// The partner.
    pub partner_id: i64,
    /// The contact.
    pub contact_id: i64,
    /// The address it went to.
    pub email: String,
    /// Whether the copy is encrypted to the contact's key (else it says only that a notice
    /// waits in the portal).
    pub encrypted: bool,
    /// Where it is.
    pub state: DeliveryState,
    /// The Message-ID of the mail (bounces quote it).
    pub message_id: String,
    /// Sent.
    pub sent_at: Option<Timestamp>,
    /// Bounced.
    pub bounced_at: Option<Timestamp>,
    /// Seen in the portal.
    pub seen_at: Option<Timestamp>,
    /// Acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// Last reminded.
    pub reminded_at: Option<Timestamp>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.notice_id, d.partner_id, d.contact_id, d.email, d.encrypted, d.state, \
     d.message_id, d.sent_at, d.bounced_at, d.seen_at, d.acknowledged_at, d.reminded_at";

fn delivery_of(row: &AnyRow) -> Result<Delivery, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        notice_id: row.try_get("notice_id")?,
        partner_id: row.try_get("partner_id")?,
        contact_id: row.try_get("contact_id")?,
        email: row.try_get("email")?,
        encrypted: row.try_get::<i64, _>("encrypted")? != 0,
        state: DeliveryState::parse(&state).ok_or_else(|| invalid("delivery state", &state))?,
        message_id: row.try_get("message_id")?,
        sent_at: opt_ts(row.try_get("sent_at")?)?,
        bounced_at: opt_ts(row.try_get("bounced_at")?)?,
        seen_at: opt_ts(row.try_get("seen_at")?)?,
        acknowledged_at: opt_ts(row.try_get("acknowledged_at")?)?,
        reminded_at: opt_ts(row.try_get("reminded_at")?)?,
    })
}

/// A copy to create.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The partner.
    pub partner_id: i64,
    /// The contact.
    pub contact_id: i64,
    /// Address.
    pub email: &'a str,
    /// Encrypted to the contact's key.
    pub encrypted: bool,
    /// Our Message-ID.
    pub message_id: &'a str,
}

/// Creates the copies of a notice (pending); returns their ids.
pub async fn insert_deliveries(tx: &mut Tx, notice: i64, copies: &[NewDelivery<'_>]) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(copies.len());
    for copy in copies {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notice_deliveries (notice_id, partner_id, contact_id, email, encrypted, state, message_id) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
        )
        .bind(notice)
        .bind(copy.partner_id)
        .bind(copy.contact_id)
        .bind(copy.email)
        .bind(i64::from(copy.encrypted))
        .bind(copy.message_id)
        .fetch_one(tx.conn())
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// A notice's copies, by partner and contact.
pub async fn deliveries(tx: &mut Tx, notice: i64) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM notice_deliveries d WHERE d.notice_id = $1 ORDER BY d.partner_id, d.contact_id"
    )))
    .bind(notice)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(delivery_of).collect()
}

/// One copy.
pub async fn delivery(tx: &mut Tx, id: i64) -> Result<Option<Delivery>, StoreError> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLUMNS} FROM notice_deliveries d WHERE d.id = $1")))
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    row.as_ref().map(delivery_of).transpose()
}

/// The copy whose mail had one of these Message-IDs (a bounce quotes it).
pub async fn delivery_by_message_ids(tx: &mut Tx, ids: &[&str]) -> Result<Option<Delivery>, StoreError> {
    for id in ids {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notice_deliveries d WHERE d.message_id = $1"
        )))
        .bind(*id)
        .fetch_optional(tx.conn())
        .await?;
        if let Some(row) = row {
            return delivery_of(&row).map(Some);
        }
    }
    Ok(None)
}

/// The partners that were sent a copy of any notice about a report (not drafts).
pub async fn partners_told(tx: &mut Tx, report: ReportId) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT d.partner_id FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id \
         WHERE n.report_id = $1 AND n.state <> 'draft' ORDER BY d.partner_id",
    )
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?)
}

/// The contacts (of any partner) whose certificate has this fingerprint.
pub async fn contacts_with_fingerprint(tx: &mut Tx, fingerprint: &str) -> Result<Vec<Contact>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS} FROM partner_contacts c WHERE c.fingerprint = $1 AND c.removed_at IS NULL ORDER BY c.id"
    )))
    .bind(fingerprint)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(contact_of).collect()
}

/// Moves a copy forward to `to` (never back: see `DeliveryState::advance`), stamping the
/// state's time; returns the state it is in now.
pub async fn advance_delivery(
    tx: &mut Tx,
    id: i64,
    to: DeliveryState,
    at: Timestamp,
) -> Result<Option<DeliveryState>, StoreError> {
    let Some(current) = delivery(tx, id).await? else { return Ok(None) };
    let next = current.state.advance(to);
    let column = match to {
        DeliveryState::Pending => None,
        DeliveryState::Sent => Some("sent_at"),
        DeliveryState::Bounced => Some("bounced_at"),
        DeliveryState::Seen => Some("seen_at"),
        DeliveryState::Acknowledged => Some("acknowledged_at"),
    };
    if let Some(column) = column {
        // The time of the event is kept even when a later state already holds (first time).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE notice_deliveries SET state = $2, {column} = COALESCE({column}, $3) WHERE id = $1"
        )))
        .bind(id)
        .bind(next.code())
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    }
    Ok(Some(next))
}

/// Records a reminder sent to a copy's contact.
pub async fn mark_reminded(tx: &mut Tx, id: i64, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE notice_deliveries SET reminded_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What a partner contact sees in the portal: the sent notices shared with the account's
/// partner (through a copy to one of its current contacts), newest first, each once.
pub async fn shared_with(tx: &mut Tx, user: UserId) -> Result<Vec<(Notice, Delivery)>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM notice_deliveries d \
         JOIN partner_contacts c ON c.id = d.contact_id \
         JOIN partners p ON p.id = d.partner_id \
         JOIN notices n ON n.id = d.notice_id \
         WHERE c.user_id = $1 AND c.removed_at IS NULL AND p.state = 'active' AND n.state <> 'draft' \
         ORDER BY d.notice_id DESC"
    )))
    .bind(user.0)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let delivery = delivery_of(row)?;
        if out.iter().any(|(n, _): &(Notice, Delivery)| n.id == delivery.notice_id) {
            continue;
        }
        if let Some(notice) = notice(tx, delivery.notice_id).await? {
            out.push((notice, delivery));
        }
    }
    Ok(out)
}

/// Whether a notice was shared with the account: a copy of it went to the account as a
/// current contact of an active partner. Returns that copy.
pub async fn shared_copy(tx: &mut Tx, notice: i64, user: UserId) -> Result<Option<Delivery>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM notice_deliveries d \
         JOIN partner_contacts c ON c.id = d.contact_id \
         JOIN partners p ON p.id = d.partner_id \
         JOIN notices n ON n.id = d.notice_id \
         WHERE d.notice_id = $1 AND c.user_id = $2 AND c.removed_at IS NULL AND p.state = 'active' \
         AND n.state <> 'draft' ORDER BY d.id LIMIT 1"
    )))
    .bind(notice)
    .bind(user.0)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(delivery_of).transpose()
}

// ---------------------------------------------------------------------------------------
// Leaks

/// A suspected leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Id.
    pub id: i64,
    /// The report.
    pub report: ReportId,
    /// The partner suspected, if any.
    pub partner_id: Option<i64>,
    /// Who recorded it.
    pub recorded_by: String,
    /// What leaked, to whom, the evidence (sealed at rest).
    pub details: String,
    /// `keep`, `move` or `break`, once decided.
    pub decision: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Timestamp>,
    /// Recorded.
    pub created_at: Timestamp,
}

fn leak_of(tx: &Tx, row: &AnyRow) -> Result<Leak, StoreError> {
    let report = ReportId(row.try_get("report_id")?);
    let sealed: Vec<u8> = row.try_get("details_enc")?;
    Ok(Leak {
        id: row.try_get("id")?,
        report,
        partner_id: row.try_get("partner_id")?,
        recorded_by: row.try_get("recorded_by")?,
        details: tx.open(&sealed, &format!("partner_leaks:{}", report.0))?,
        decision: row.try_get("decision")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: opt_ts(row.try_get("decided_at")?)?,
        created_at: ts(row.try_get("created_at")?)?,
    })
}

const LEAK_COLUMNS: &str =
    "id, report_id, partner_id, recorded_by, details_enc, decision, decided_by, decided_at, created_at";

/// Records a suspected leak; returns its id.
pub async fn insert_leak(
    tx: &mut Tx,
    report: ReportId,
    partner: Option<i64>,
    recorded_by: &str,
    details: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let sealed = tx.seal(details, &format!("partner_leaks:{}", report.0));
    Ok(sqlx::query_scalar(
        "INSERT INTO partner_leaks (report_id, partner_id, recorded_by, details_enc, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(report.0)
    .bind(partner)
    .bind(recorded_by)
    .bind(sealed)
    .bind(ms(now))
    .fetch_one(tx.conn())
    .await?)
}

/// A report's leaks, oldest first.
pub async fn leaks(tx: &mut Tx, report: ReportId) -> Result<Vec<Leak>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LEAK_COLUMNS} FROM partner_leaks WHERE report_id = $1 ORDER BY id"
    )))
    .bind(report.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| leak_of(tx, row)).collect()
}

/// A partner's leak history, oldest first.
pub async fn leaks_of_partner(tx: &mut Tx, partner: i64) -> Result<Vec<Leak>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LEAK_COLUMNS} FROM partner_leaks WHERE partner_id = $1 ORDER BY id"
    )))
    .bind(partner)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|row| leak_of(tx, row)).collect()
}

/// A leak by id.
pub async fn leak(tx: &mut Tx, id: i64) -> Result<Option<Leak>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LEAK_COLUMNS} FROM partner_leaks WHERE id = $1")))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(|row| leak_of(tx, row)).transpose()
}

/// Records the decision on a leak. `false` when it was decided already.
pub async fn decide_leak(tx: &mut Tx, id: i64, decision: &str, by: &str, at: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE partner_leaks SET decision = $2, decided_by = $3, decided_at = $4 WHERE id = $1 AND decision IS NULL",
    )
    .bind(id)
    .bind(decision)
    .bind(by)
    .bind(ms(at))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------
// Invitations

/// Stores a partner contact's invitation (only the token's hash).
pub async fn invite(
    tx: &mut Tx,
    user: UserId,
    token_hash: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO partner_invitations (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(user.0)
    .bind(token_hash)
    .bind(ms(at))
    .bind(ms(expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The account a valid (unused, unexpired) invitation is for.
pub async fn invitation(tx: &mut Tx, token_hash: &str, at: Timestamp) -> Result<Option<(i64, UserId)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, user_id FROM partner_invitations WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(ms(at))
    .fetch_optional(tx.conn())
    .await?;
    row.map(|row| Ok((row.try_get("id")?, UserId(row.try_get("user_id")?)))).transpose()
}

/// Uses an invitation. `false` when it was used already.
pub async fn accept_invitation(tx: &mut Tx, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE partner_invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL")
        .bind(id)
        .bind(ms(at))
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}
