//! The partner portal's use cases: a partner contact signs in (a partner account) and sees
//! only the notices shared with their organisation (`ReadShared` on each notice: a copy
//! went to them as a current contact of an active partner), reads one (recorded as seen),
//! downloads its patches and its calendar file, acknowledges it, and keeps their
//! organisation's contacts and OpenPGP keys current.

use embargo_domain::partner::DeliveryState;
use embargo_domain::{Actor, Role};
use embargo_store::Tx;
use embargo_store::partners::{self as store, Contact, Notice, Partner};
use serde::Serialize;

use super::notices::{instant_lines, partner_text, patch_filename};
use super::{PartnerView, check_key, view_in};
use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// A notice as a partner contact sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedNotice {
    /// The notice's ID.
    pub id: i64,
    /// `pre-notice`, `revision`, `broken`, `lifted`.
    pub kind: String,
    /// `sent` or `superseded` (a newer notice replaced it).
    pub state: String,
    /// The subject.
    pub subject: String,
    /// The disclosure instant, UTC (RFC 3339).
    pub disclose_at: String,
    /// The instant in UTC, as people read it.
    pub disclose_utc: String,
    /// The instant in the partner's time zone.
    pub disclose_local: String,
    /// Where the actor's copy is: `sent`, `bounced`, `seen`, `acknowledged`.
    pub delivery: String,
    /// The whole text (the instant, the permissions, then the team's text); empty in lists.
    pub text: String,
    /// The attached patch series: file name, release line, SHA-256, size in bytes.
    pub patches: Vec<(String, String, String, usize)>,
}

fn shared_view(
    notice: &Notice,
    delivery: DeliveryState,
    partner: &Partner,
    app: &App,
    full: Option<&[store::NoticePatch]>,
) -> SharedNotice {
    let (utc, local) = instant_lines(notice.disclose_at, &partner.time_zone);
    SharedNotice {
        id: notice.id,
        kind: notice.kind.clone(),
        state: notice.state.clone(),
        subject: notice.subject.clone(),
        disclose_at: notice.disclose_at.to_string(),
        disclose_utc: utc,
        disclose_local: local,
        delivery: delivery.code().into(),
        text: full.map(|_| partner_text(app, notice, partner)).unwrap_or_default(),
        patches: full
            .unwrap_or_default()
            .iter()
            .map(|p| (patch_filename(&p.line), p.line.clone(), p.sha256.clone(), p.patch.len()))
            .collect(),
    }
}

/// The partner an account speaks for (its first current contact row's).
async fn own_partner(tx: &mut Tx, actor: &Actor) -> Result<(Contact, Partner), AppError> {
    let Actor::User { id, role: Role::Partner } = actor else {
        return Err(AppError::Forbidden(Permission::ReadShared.describe()));
    };
    authz::require(tx, actor, Permission::ReadShared).await?;
    for contact in store::contacts_of_user(tx, *id).await? {
        if let Some(partner) = store::partner(tx, contact.partner_id).await?
            && partner.state == embargo_domain::PartnerState::Active
        {
            return Ok((contact, partner));
        }
    }
    Err(AppError::Forbidden(Permission::ReadShared.describe()))
}

/// The notices shared with the actor's organisation, newest first.
pub async fn shared(app: &App, actor: &Actor) -> Result<Vec<SharedNotice>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ReadShared).await?;
    let Actor::User { id, .. } = actor else {
        tx.rollback().await?;
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (notice, delivery) in store::shared_with(&mut tx, *id).await? {
        if let Some(partner) = store::partner(&mut tx, delivery.partner_id).await? {
            out.push(shared_view(&notice, delivery.state, &partner, app, None));
        }
    }
    tx.rollback().await?;
    Ok(out)
}

async fn shared_in(tx: &mut Tx, actor: &Actor, notice: i64) -> Result<(Notice, store::Delivery, Partner), AppError> {
    let not_found = || AppError::NotFound(format!("notice {notice}"));
    let Actor::User { id, .. } = actor else { return Err(not_found()) };
    match authz::require(tx, actor, Permission::ReadShared.on_notice(notice)).await {
        Err(AppError::Forbidden(_)) => return Err(not_found()),
        other => other?,
    }
    let delivery = store::shared_copy(tx, notice, *id).await?.ok_or_else(not_found)?;
    let found = store::notice(tx, notice).await?.ok_or_else(not_found)?;
    let partner = store::partner(tx, delivery.partner_id).await?.ok_or_else(not_found)?;
    Ok((found, delivery, partner))
}

/// Reads a notice shared with the actor's organisation; records that their copy was seen.
pub async fn read_shared(app: &App, actor: &Actor, notice: i64) -> Result<SharedNotice, AppError> {
    let mut tx = app.store.begin().await?;
    let (found, delivery, partner) = shared_in(&mut tx, actor, notice).await?;
    let state =
        store::advance_delivery(&mut tx, delivery.id, DeliveryState::Seen, app.now()).await?.unwrap_or(delivery.state);
    if delivery.state < DeliveryState::Seen {
        audit::record(
            &mut tx,
            app,
            actor,
            "notice.seen",
            &format!("notice:{notice}"),
            &format!("delivery={}", delivery.id),
        )
        .await?;
    }
    let patches = store::patches(&mut tx, notice).await?;
    tx.commit().await?;
    Ok(shared_view(&found, state, &partner, app, Some(&patches)))
}

/// A notice's patch series for one release line (by its file name or its line).
pub async fn shared_patch(app: &App, actor: &Actor, notice: i64, file: &str) -> Result<(String, Vec<u8>), AppError> {
    let mut tx = app.store.begin().await?;
    shared_in(&mut tx, actor, notice).await?;
    let patch = store::patches(&mut tx, notice)
        .await?
        .into_iter()
        .find(|p| patch_filename(&p.line) == file || p.line == file)
        .ok_or_else(|| AppError::NotFound(format!("patch {file} of notice {notice}")))?;
    audit::record(&mut tx, app, actor, "notice.download", &format!("notice:{notice}"), &format!("line={}", patch.line))
        .await?;
    tx.commit().await?;
    Ok((patch_filename(&patch.line), patch.patch))
}

/// The iCalendar file of a shared notice's instant.
pub async fn calendar_file(app: &App, actor: &Actor, notice: i64) -> Result<String, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (found, _, _) = shared_in(&mut tx, actor, notice).await?;
    tx.rollback().await?;
    Ok(super::notices::calendar_text(app, &found))
}

/// Acknowledges a shared notice (and, with it, its embargo terms).
pub async fn acknowledge(app: &App, actor: &Actor, notice: i64) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let (found, delivery, _) = shared_in(&mut tx, actor, notice).await?;
    if found.state == "superseded" {
        return Err(AppError::Conflict(format!(
            "notice {notice} was replaced by a newer notice; acknowledge that one instead"
        )));
    }
    if delivery.state != DeliveryState::Acknowledged {
        store::advance_delivery(&mut tx, delivery.id, DeliveryState::Acknowledged, app.now()).await?;
        audit::record(
            &mut tx,
            app,
            actor,
            "notice.acknowledge",
            &format!("notice:{notice}"),
            &format!("delivery={}", delivery.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The actor's organisation, its contacts and their keys.
pub async fn my_organisation(app: &App, actor: &Actor) -> Result<PartnerView, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (_, partner) = own_partner(&mut tx, actor).await?;
    let view = view_in(&mut tx, &partner).await?;
    tx.rollback().await?;
    Ok(view)
}

/// Adds a contact to the actor's organisation, or updates one's key (a contact keeps the
/// organisation's contacts current). An empty key removes a contact's key.
pub async fn set_my_contact(app: &App, actor: &Actor, email: &str, key: Option<&str>) -> Result<(), AppError> {
    let email = crate::accounts::validate_email(email)?;
    let key = key.map(str::trim).filter(|k| !k.is_empty());
    let checked = key.map(|k| check_key(&email, k).map(|f| (k.to_owned(), f))).transpose()?;
    let mut tx = app.store.begin().await?;
    let (_, partner) = own_partner(&mut tx, actor).await?;
    if let Some((_, fingerprint)) = &checked {
        super::check_key_not_elsewhere(&mut tx, partner.id, &email, fingerprint).await?;
    }
    let existing =
        store::contacts(&mut tx, partner.id, false).await?.into_iter().find(|c| c.email.eq_ignore_ascii_case(&email));
    let key_ref = checked.as_ref().map(|(k, f)| (k.as_str(), f.as_str()));
    match existing {
        Some(contact) => {
            store::set_contact_key(&mut tx, contact.id, key_ref).await?;
            audit::record(
                &mut tx,
                app,
                actor,
                "partner.contact.key",
                &format!("partner:{}", partner.id),
                &format!("user={} key={}", contact.user_id, key_ref.map_or("none", |k| k.1)),
            )
            .await?;
        }
        None => {
            super::add_contact_in(&mut tx, app, actor, partner.id, &email, key_ref).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Removes a contact of the actor's organisation (never the last one).
pub async fn remove_my_contact(app: &App, actor: &Actor, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let (_, partner) = own_partner(&mut tx, actor).await?;
    let contacts = store::contacts(&mut tx, partner.id, false).await?;
    let contact = contacts
        .iter()
        .find(|c| c.email.eq_ignore_ascii_case(email.trim()))
        .ok_or_else(|| AppError::NotFound(format!("contact {}", email.trim())))?;
    if contacts.len() == 1 {
        return Err(AppError::Invalid("an organisation keeps at least one contact".into()));
    }
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
