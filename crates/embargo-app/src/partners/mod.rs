//! Partners and early disclosure (ADR 21): partner organisations on lists with an embargo
//! policy, their contacts (each an account with the partner role, each with an OpenPGP
//! certificate where known) and the products they receive notices for; the notices
//! (`notices`), what partner contacts see in the portal (`portal`), and leaks, breaking
//! and lifting an embargo, and the public pre-announcement (`embargo`).
//!
//! Admins manage partners (`ManagePartners`); the team plans a report's disclosure
//! (`PlanDisclosure` on the report); partner contacts read only what was shared with their
//! organisation (`ReadShared` on a notice: a copy of it went to them).

mod embargo;
mod notices;
mod portal;

pub use embargo::{
    Announcement, LeakAlert, LeakDecision, LeakView, announce, announcements, break_embargo, check_date, decide_leak,
    leaks, lift, record_leak, withdraw_announcement,
};
pub(crate) use notices::bounce_in;
pub use notices::{
    ContactStatus, DraftOptions, Drafted, NoticeMail, NoticeReminder, NoticeStatus, NoticeText, Sent, draft, edit,
    resolve, send, status,
};
pub use portal::{
    SharedNotice, acknowledge, calendar_file, my_organisation, read_shared, remove_my_contact, set_my_contact, shared,
    shared_patch,
};

use embargo_domain::partner::{EmbargoPolicy, PartnerState};
use embargo_domain::{Actor, Role, Timestamp, UserId};
use embargo_store::partners::{self as store, NewPartner, Partner};
use embargo_store::{Tx, users};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permission};
use crate::jobs::{Claim, Job, JobError};
use crate::{App, AppError, audit};

/// The largest OpenPGP key accepted (armoured).
pub const MAX_KEY_BYTES: usize = 1024 * 1024;

/// Checks a short text field (terms version, voucher, list name): one line, printable.
pub(crate) fn check_field(what: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
    if value.chars().count() > max || value.chars().any(|c| c.is_control() || bidi(c)) {
        return Err(AppError::Invalid(format!(
            "{what} is one line of at most {max} characters, without control or direction-changing characters"
        )));
    }
    Ok(value.to_owned())
}

/// Refuses a key that another partner's contact already has: copies encrypted to it would
/// be readable by that other organisation.
async fn check_key_not_elsewhere(tx: &mut Tx, partner: i64, email: &str, fingerprint: &str) -> Result<(), AppError> {
    for other in store::contacts_with_fingerprint(tx, fingerprint).await? {
        if other.partner_id != partner {
            return Err(AppError::Invalid(format!(
                "the OpenPGP key for {email} ({fingerprint}) belongs to a contact of another partner: \
                 each organisation needs its own key"
            )));
        }
    }
    Ok(())
}

/// How long a partner contact's invitation link works.
pub const INVITATION_VALID: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A partner contact, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    /// Address.
    pub email: String,
    /// The fingerprint of their OpenPGP certificate; `null`: they get no details by mail.
    pub fingerprint: Option<String>,
}

/// A partner, as listed (`partner list --json`).
#[derive(Debug, Clone, Serialize)]
pub struct PartnerView {
    /// Id.
    pub id: i64,
    /// The organisation's name.
    pub name: String,
    /// `active`, `suspended` or `removed`.
    pub state: String,
    /// Its list (whose embargo policy applies).
    pub list: String,
    /// Products it receives notices for.
    pub products: Vec<String>,
    /// Current contacts.
    pub contacts: Vec<ContactView>,
    /// The version of the embargo terms it accepted ('' when none is recorded).
    pub terms_version: String,
    /// When (RFC 3339).
    pub terms_accepted_at: Option<String>,
    /// Who vouched for it.
    pub vouched_by: String,
    /// The time zone its notices show times in.
    pub time_zone: String,
    /// How many suspected leaks are recorded against it.
    pub leaks: usize,
}

async fn view_in(tx: &mut Tx, partner: &Partner) -> Result<PartnerView, AppError> {
    let list = store::list(tx, partner.list_id).await?.map(|l| l.name).unwrap_or_default();
    let contacts = store::contacts(tx, partner.id, false)
        .await?
        .into_iter()
        .map(|c| ContactView { email: c.email, fingerprint: c.fingerprint })
        .collect();
    Ok(PartnerView {
        id: partner.id,
        name: partner.name.clone(),
        state: partner.state.code().to_owned(),
        list,
        products: store::product_names(tx, partner.id).await?,
        contacts,
        terms_version: partner.terms_version.clone(),
        terms_accepted_at: partner.terms_accepted_at.map(|t| t.to_string()),
        vouched_by: partner.vouched_by.clone(),
        time_zone: partner.time_zone.clone(),
        leaks: store::leaks_of_partner(tx, partner.id).await?.len(),
    })
}

/// A contact to add: an address and, preferably, an ASCII-armoured OpenPGP certificate.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    /// Address.
    pub email: String,
    /// Armoured certificate.
    pub key: Option<String>,
}

/// What [`add`] is given.
#[derive(Debug, Clone, Default)]
pub struct NewPartnerInput {
    /// The organisation's name.
    pub name: String,
    /// Contacts.
    pub contacts: Vec<NewContact>,
    /// Product names it receives notices for.
    pub products: Vec<String>,
    /// Its list (`default` when none).
    pub list: Option<String>,
    /// The embargo terms version it accepted, and when.
    pub terms_version: Option<String>,
    /// When it accepted them (now, when a version is given without a time).
    pub terms_accepted_at: Option<Timestamp>,
    /// Who vouched for it.
    pub vouched_by: Option<String>,
    /// IANA time zone (UTC when none).
    pub time_zone: Option<String>,
}

/// Checks a certificate: it parses, and it can encrypt (a test message is encrypted to
/// it). Returns its fingerprint.
pub(crate) fn check_key(email: &str, key: &str) -> Result<String, AppError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(AppError::Invalid(format!("the OpenPGP key for {email} is larger than 1 MiB")));
    }
    if key.matches("-----BEGIN PGP PUBLIC KEY BLOCK-----").count() > 1 {
        return Err(AppError::Invalid(format!(
            "the file for {email} holds several OpenPGP keys: give each contact a file with their own key"
        )));
    }
    if key.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        return Err(AppError::Invalid(format!("the file for {email} holds a secret key: give the public key only")));
    }
    let fingerprint = embargo_mail::openpgp::certificate_fingerprint(key)
        .map_err(|e| AppError::Invalid(format!("the OpenPGP key for {email} cannot be read: {e}")))?;
    embargo_mail::openpgp::encrypt_to(key, b"embargo key check").map_err(|e| {
        AppError::Invalid(format!("the OpenPGP key for {email} ({fingerprint}) cannot be encrypted to: {e}"))
    })?;
    Ok(fingerprint)
}

fn check_name(name: &str) -> Result<String, AppError> {
    let name = check_field("a partner's name", name, 200)?;
    if name.is_empty() {
        return Err(AppError::Invalid("a partner needs a name".into()));
    }
    Ok(name)
}

fn check_zone(zone: &str) -> Result<String, AppError> {
    jiff::tz::TimeZone::get(zone)
        .map(|_| zone.to_owned())
        .map_err(|_| AppError::Invalid(format!("{zone:?} is not a time zone name (such as Europe/Paris or UTC)")))
}

/// Adds a partner organisation with its contacts and products (admins). Each contact gets
/// a partner account (or reuses theirs) and, without a password yet, an invitation mail.
pub async fn add(app: &App, actor: &Actor, input: NewPartnerInput) -> Result<PartnerView, AppError> {
    let name = check_name(&input.name)?;
    if input.contacts.is_empty() {
        return Err(AppError::Invalid("a partner needs at least one contact (--contact EMAIL)".into()));
    }
    let time_zone = check_zone(input.time_zone.as_deref().unwrap_or("UTC"))?;
    let terms_version = input.terms_version.as_deref().map(|v| check_field("the terms version", v, 100)).transpose()?;
    let vouched_by = input.vouched_by.as_deref().map(|v| check_field("who vouched", v, 200)).transpose()?;
    let mut contacts = Vec::new();
    for contact in &input.contacts {
        let email = crate::accounts::validate_email(&contact.email)?;
        let key = match &contact.key {
            Some(key) => Some((key.clone(), check_key(&email, key)?)),
            None => None,
        };
        contacts.push((email, key));
    }
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let list_name = input.list.as_deref().unwrap_or("default");
    let list = store::list_by_name(&mut tx, list_name)
        .await?
        .ok_or_else(|| AppError::Invalid(format!("there is no partner list {list_name:?}")))?;
    let product_ids = product_ids(&mut tx, &input.products).await?;
    let terms_accepted_at = input.terms_accepted_at.or(terms_version.as_ref().map(|_| now));
    let id = store::create_partner(
        &mut tx,
        &NewPartner {
            name: &name,
            list_id: list.id,
            terms_version: terms_version.as_deref().unwrap_or(""),
            terms_accepted_at,
            vouched_by: vouched_by.as_deref().unwrap_or(""),
            time_zone: &time_zone,
        },
        now,
    )
    .await
    .map_err(|e| match e {
        embargo_store::StoreError::Conflict(_) => {
            AppError::Conflict(format!("a partner named {name:?} exists already"))
        }
        e => e.into(),
    })?;
    store::set_products(&mut tx, id, &product_ids).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "partner.add",
        &format!("partner:{id}"),
        &format!("products={}", product_ids.len()),
    )
    .await?;
    for (email, key) in &contacts {
        add_contact_in(&mut tx, app, actor, id, email, key.as_ref().map(|(k, f)| (k.as_str(), f.as_str()))).await?;
    }
    let partner = store::partner(&mut tx, id).await?.ok_or_else(|| AppError::NotFound("partner".into()))?;
    let view = view_in(&mut tx, &partner).await?;
    tx.commit().await?;
    Ok(view)
}

async fn product_ids(tx: &mut Tx, names: &[String]) -> Result<Vec<i64>, AppError> {
    let all = embargo_store::products::list(tx).await?;
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|name| {
            all.iter().find(|p| p.name == name.trim()).map(|p| p.id).ok_or_else(|| {
                AppError::Invalid(format!(
                    "there is no product {:?} in the catalogue (see `embargo product list`)",
                    name.trim()
                ))
            })
        })
        .collect()
}

/// Adds a contact to a partner inside a transaction: their partner account (made, or an
/// existing partner account), the contact row, and an invitation when they have no
/// password yet.
async fn add_contact_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    partner: i64,
    email: &str,
    key: Option<(&str, &str)>,
) -> Result<i64, AppError> {
    let now = app.now();
    let (user, needs_password) = match users::by_email(tx, email).await? {
        Some(user) if user.role != Role::Partner => {
            return Err(AppError::Invalid(format!(
                "{email} has a {} account; partner contacts have partner accounts of their own",
                user.role.as_str()
            )));
        }
        Some(user) if user.disabled || user.deleted => {
            return Err(AppError::Invalid(format!("the account {email} is disabled; enable it first")));
        }
        Some(user) => (user.id, user.password_hash.is_none()),
        None => {
            let id = users::create(tx, email, Role::Partner, None, now).await?;
            audit::record(tx, app, actor, "user.create", &format!("user:{id}"), "role=partner").await?;
            (id, true)
        }
    };
    if let Some((_, fingerprint)) = key {
        check_key_not_elsewhere(tx, partner, email, fingerprint).await?;
    }
    let contact = store::add_contact(tx, partner, email, user, key, now).await?;
    // The key the contact has now (a contact added again keeps a key it had).
    let fingerprint =
        store::contacts(tx, partner, false).await?.into_iter().find(|c| c.id == contact).and_then(|c| c.fingerprint);
    audit::record(
        tx,
        app,
        actor,
        "partner.contact.add",
        &format!("partner:{partner}"),
        &format!("user={user} key={}", fingerprint.as_deref().unwrap_or("none")),
    )
    .await?;
    if needs_password {
        crate::jobs::enqueue(tx, app, &Invitation { user: user.0, at_ms: now.as_millisecond() }).await?;
    }
    Ok(contact)
}

async fn partner_named(tx: &mut Tx, name: &str) -> Result<Partner, AppError> {
    store::partner_by_name(tx, name.trim())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("partner {:?}", name.trim())))
}

/// Every partner (admins).
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<PartnerView>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let mut out = Vec::new();
    for partner in store::partners(&mut tx).await? {
        out.push(view_in(&mut tx, &partner).await?);
    }
    tx.rollback().await?;
    Ok(out)
}

/// One partner (admins).
pub async fn get(app: &App, actor: &Actor, name: &str) -> Result<PartnerView, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let partner = partner_named(&mut tx, name).await?;
    let view = view_in(&mut tx, &partner).await?;
    tx.rollback().await?;
    Ok(view)
}

/// Changes a partner's standing (admins): a suspended or removed partner receives no new
/// notice and its contacts no longer see what was shared with it.
pub async fn set_state(app: &App, actor: &Actor, name: &str, state: PartnerState) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let mut partner = partner_named(&mut tx, name).await?;
    let from = partner.state;
    partner.state = state;
    store::update_partner(&mut tx, &partner, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "partner.state",
        &format!("partner:{}", partner.id),
        &format!("from={} to={}", from.code(), state.code()),
    )
    .await?;
    tx.commit().await.map_err(Into::into)
}

/// What [`update`] changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct PartnerChange {
    /// Products (replaces the list).
    pub products: Option<Vec<String>>,
    /// Terms version accepted (now).
    pub terms_version: Option<String>,
    /// Who vouched.
    pub vouched_by: Option<String>,
    /// Time zone.
    pub time_zone: Option<String>,
    /// List.
    pub list: Option<String>,
}

/// Changes a partner's products, terms, voucher, zone or list (admins).
pub async fn update(app: &App, actor: &Actor, name: &str, change: PartnerChange) -> Result<PartnerView, AppError> {
    let zone = change.time_zone.as_deref().map(check_zone).transpose()?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let mut partner = partner_named(&mut tx, name).await?;
    if let Some(products) = &change.products {
        let ids = product_ids(&mut tx, products).await?;
        store::set_products(&mut tx, partner.id, &ids).await?;
    }
    if let Some(version) = change.terms_version {
        partner.terms_version = check_field("the terms version", &version, 100)?;
        partner.terms_accepted_at = Some(now);
    }
    if let Some(by) = change.vouched_by {
        partner.vouched_by = check_field("who vouched", &by, 200)?;
    }
    if let Some(zone) = zone {
        partner.time_zone = zone;
    }
    if let Some(list) = &change.list {
        partner.list_id = store::list_by_name(&mut tx, list)
            .await?
            .ok_or_else(|| AppError::Invalid(format!("there is no partner list {list:?}")))?
            .id;
    }
    store::update_partner(&mut tx, &partner, now).await?;
    audit::record(&mut tx, app, actor, "partner.update", &format!("partner:{}", partner.id), "").await?;
    let view = view_in(&mut tx, &partner).await?;
    tx.commit().await?;
    Ok(view)
}

/// Adds a contact to a partner (admins).
pub async fn add_contact(app: &App, actor: &Actor, name: &str, contact: NewContact) -> Result<(), AppError> {
    let email = crate::accounts::validate_email(&contact.email)?;
    let key = contact.key.as_deref().map(|k| check_key(&email, k).map(|f| (k.to_owned(), f))).transpose()?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let partner = partner_named(&mut tx, name).await?;
    add_contact_in(&mut tx, app, actor, partner.id, &email, key.as_ref().map(|(k, f)| (k.as_str(), f.as_str())))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a contact from a partner (admins): they see nothing shared any more.
pub async fn remove_contact(app: &App, actor: &Actor, name: &str, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let partner = partner_named(&mut tx, name).await?;
    let contact = store::contacts(&mut tx, partner.id, false)
        .await?
        .into_iter()
        .find(|c| c.email.eq_ignore_ascii_case(email.trim()))
        .ok_or_else(|| AppError::NotFound(format!("contact {} of {}", email.trim(), partner.name)))?;
    store::remove_contact(&mut tx, contact.id, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "partner.contact.remove",
        &format!("partner:{}", partner.id),
        &format!("user={}", contact.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A partner list's policy, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// The list.
    pub list: String,
    /// Longest embargo, in days.
    pub max_embargo_days: f64,
    /// Least notice, in days.
    pub min_notice_days: f64,
    /// Final notice, in hours before.
    pub final_notice_hours: i64,
    /// Preferred days (`Tuesday`...).
    pub preferred_days: Vec<String>,
    /// Preferred hour (UTC).
    pub preferred_hour: Option<i8>,
}

fn policy_view(list: &store::PartnerList) -> PolicyView {
    let p = &list.policy;
    PolicyView {
        list: list.name.clone(),
        max_embargo_days: p.max_embargo.as_secs_f64() / 86_400.0,
        min_notice_days: p.min_notice.as_secs_f64() / 86_400.0,
        final_notice_hours: p.final_notice.as_hours(),
        preferred_days: p.preferred_days.iter().map(|d| embargo_domain::partner::weekday_name(*d).to_owned()).collect(),
        preferred_hour: p.preferred_hour,
    }
}

/// Every list's policy (admins and those who plan disclosures).
pub async fn policies(app: &App, actor: &Actor) -> Result<Vec<PolicyView>, AppError> {
    let mut tx = app.store.snapshot().await?;
    if authz::require(&mut tx, actor, Permission::ManagePartners).await.is_err() {
        authz::require(&mut tx, actor, Permission::ListReports).await?;
    }
    let lists = store::lists(&mut tx).await?;
    tx.rollback().await?;
    Ok(lists.iter().map(policy_view).collect())
}

/// Creates a list or replaces its policy (admins).
pub async fn set_policy(app: &App, actor: &Actor, list: &str, policy: EmbargoPolicy) -> Result<PolicyView, AppError> {
    let list = check_field("a list's name", list, 100)?;
    let list = list.as_str();
    if list.is_empty() {
        return Err(AppError::Invalid("a list needs a name".into()));
    }
    if policy.min_notice > policy.max_embargo {
        return Err(AppError::Invalid("the minimum notice cannot be longer than the maximum embargo".into()));
    }
    if policy.final_notice < SignedDuration::from_hours(24) {
        return Err(AppError::Invalid("the final notice goes at least 24 hours before the disclosure".into()));
    }
    if policy.final_notice > policy.min_notice {
        return Err(AppError::Invalid("the final notice cannot come earlier than the minimum notice".into()));
    }
    if policy.preferred_hour.is_some_and(|h| !(0..24).contains(&h)) {
        return Err(AppError::Invalid("the preferred hour is 0 to 23 (UTC)".into()));
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManagePartners).await?;
    let id = store::set_list(&mut tx, list, &policy, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "partner.policy",
        &format!("partner_list:{id}"),
        &format!(
            "max_hours={} min_notice_hours={} final_hours={}",
            policy.max_embargo.as_hours(),
            policy.min_notice.as_hours(),
            policy.final_notice.as_hours()
        ),
    )
    .await?;
    let saved = store::list(&mut tx, id).await?.ok_or_else(|| AppError::NotFound("list".into()))?;
    tx.commit().await?;
    Ok(policy_view(&saved))
}

/// Mails a partner contact their invitation: a one-time link to set a password (only its
/// hash is stored; made when the mail goes).
#[derive(Debug, Serialize, Deserialize)]
pub struct Invitation {
    user: i64,
    at_ms: i64,
}

impl Job for Invitation {
    const KIND: &'static str = "mail.partner_invitation";

    fn key(&self) -> Option<String> {
        Some(format!("partner-invite:{}:{}", self.user, self.at_ms))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let now = app.now();
        let mut tx = app.store.begin().await?;
        let user = users::get(&mut tx, UserId(self.user)).await?;
        let Some(user) = user.filter(|u| !u.disabled && !u.deleted && u.password_hash.is_none()) else {
            return claim.complete(tx, now).await;
        };
        let token = crate::tokens::secret("");
        store::invite(&mut tx, user.id, &crate::tokens::hash(&token), now, now + INVITATION_VALID).await?;
        tx.commit().await?;
        let link = format!("{}/partner/welcome/{token}", app.config.base_url());
        let body = format!(
            "Hello,\n\n\
             The {org} security team added you as a contact of a partner organisation: you will\n\
             receive embargoed notices of vulnerabilities before their public disclosure.\n\n\
             Set your password here (the link works once, for 7 days):\n\n{link}\n\n\
             Then sign in at {base}/partner to read notices, download patches, acknowledge them,\n\
             and keep your organisation's contacts and OpenPGP keys current. Notices are mailed\n\
             encrypted to your OpenPGP key; without a key on file you get only a short mail\n\
             saying that a notice waits in the portal.\n\n-- \n{org} security team\n",
            org = app.config.organisation.name,
            base = app.config.base_url(),
        );
        let outbound = embargo_mail::outbound::OutboundMail {
            from: crate::mail::from_address(app),
            to: user.email.clone(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: "Partner access to embargoed notices".into(),
            body,
            message_id: crate::mail::new_message_id(app, "partner-invite"),
            in_reply_to: None,
            auto_reply: true,
            encrypt_to: None,
        };
        let label = format!("partner-invite-{}-{}", self.user, claim.id());
        crate::mail::send(app, &label, &outbound).await?;
        let mut tx = app.store.begin().await?;
        audit::record(
            &mut tx,
            app,
            &Actor::System("mail"),
            "mail.sent",
            &format!("user:{}", self.user),
            "kind=mail.partner_invitation",
        )
        .await?;
        claim.complete(tx, app.now()).await
    }
}

/// The address a valid partner invitation is for.
pub async fn invitation(app: &App, token: &str) -> Result<Option<String>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = match store::invitation(&mut tx, &crate::tokens::hash(token), app.now()).await? {
        Some((_, user)) => users::get(&mut tx, user)
            .await?
            .filter(|u| !u.disabled && !u.deleted && u.password_hash.is_none())
            .map(|u| u.email),
        None => None,
    };
    tx.rollback().await?;
    Ok(found)
}

/// Accepts a partner invitation: sets the account's first password; returns its address.
pub async fn accept_invitation(app: &App, token: &str, password: &str) -> Result<String, AppError> {
    let hash = crate::accounts::hash_password(password)?;
    let gone = || AppError::NotFound("this invitation link (used, expired or unknown)".into());
    let mut tx = app.store.begin().await?;
    let (id, user) = store::invitation(&mut tx, &crate::tokens::hash(token), app.now()).await?.ok_or_else(gone)?;
    let account = users::get(&mut tx, user).await?.filter(|u| !u.disabled && !u.deleted).ok_or_else(gone)?;
    if account.password_hash.is_some() || !store::accept_invitation(&mut tx, id, app.now()).await? {
        return Err(gone());
    }
    users::set_password_hash(&mut tx, user, Some(&hash)).await?;
    let actor = Actor::User { id: user, role: Role::Partner };
    audit::record(&mut tx, app, &actor, "user.invitation.accept", &format!("user:{user}"), "").await?;
    tx.commit().await?;
    Ok(account.email)
}
