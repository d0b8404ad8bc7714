//! The instance's OpenPGP key: created at first start, stored sealed, published for
//! reporters to encrypt to, used to decrypt what they send and to sign what the instance
//! sends. `rotate` replaces it: the new key is published and signs from then on, the old one
//! is kept (sealed) only to decrypt mail encrypted to it (ADR 30).

use std::time::{Duration, Instant};

use embargo_domain::Actor;
use embargo_mail::openpgp::InstanceKey;
use embargo_store::meta;

use crate::authz::{self, Permission};
use crate::context::CachedPgpKey;
use crate::{App, AppError, audit};

const META_KEY: &str = "openpgp.instance_key";
/// Retired keys: `openpgp.retired.<fingerprint>`, sealed.
const RETIRED_PREFIX: &str = "openpgp.retired.";
/// A counter moved by every rotation, read to notice one.
const VERSION_KEY: &str = "openpgp.key_version";
/// How long a process uses its loaded key before checking whether it was rotated.
const RECHECK: Duration = Duration::from_secs(3);

/// The key this process loaded last, without asking the database (for code that runs inside
/// another transaction right after `instance_key`).
pub(crate) fn loaded_key(app: &App) -> Option<InstanceKey> {
    app.pgp_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|c| c.key.clone())
}

/// The instance key (with the retired keys it also decrypts with), created (and audited) on
/// first use. Cached for the process, and checked against the key version in the database
/// every few seconds, so that a rotation by another process is taken up.
pub async fn instance_key(app: &App) -> Result<InstanceKey, AppError> {
    let cached = app.pgp_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(cached) = &cached
        && cached.checked.elapsed() < RECHECK
    {
        return Ok(cached.key.clone());
    }
    // A read first (a snapshot: no write lock); a write only to create the first key.
    let mut tx = app.store.snapshot().await?;
    let version = meta::get(&mut tx, VERSION_KEY).await?;
    if let Some(cached) = cached
        && cached.version == version
    {
        tx.rollback().await?;
        remember(app, &cached.key, version);
        return Ok(cached.key);
    }
    let stored = meta::get_sealed(&mut tx, META_KEY).await?;
    let mut retired = Vec::new();
    for name in meta::keys_with_prefix(&mut tx, RETIRED_PREFIX).await? {
        if let Some(text) = meta::get_sealed(&mut tx, &name).await? {
            retired.push(InstanceKey::from_armored_secret(&text).map_err(|e| AppError::Internal(e.into()))?);
        }
    }
    tx.rollback().await?;
    let key = match stored {
        Some(text) => InstanceKey::from_armored_secret(&text).map_err(|e| AppError::Internal(e.into()))?,
        None => {
            let key = generate(app)?;
            let armored = key.to_armored_secret().map_err(|e| AppError::Internal(e.into()))?;
            let mut tx = app.store.begin().await?;
            if !meta::insert_sealed(&mut tx, META_KEY, &armored).await? {
                // Another process created the key first (PostgreSQL, several instances):
                // use theirs, never a second one.
                tx.rollback().await?;
                return Box::pin(instance_key(app)).await;
            }
            audit::record(
                &mut tx,
                app,
                &Actor::System("openpgp"),
                "openpgp.key.create",
                "instance",
                &format!("fingerprint={}", key.fingerprint()),
            )
            .await?;
            tx.commit().await?;
            key
        }
    };
    let key = key.with_retired(retired);
    remember(app, &key, version);
    Ok(key)
}

fn remember(app: &App, key: &InstanceKey, version: Option<String>) {
    *app.pgp_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(CachedPgpKey { key: key.clone(), version, checked: Instant::now() });
}

fn generate(app: &App) -> Result<InstanceKey, AppError> {
    let organisation = &app.config.organisation;
    let user_id =
        format!("{} security <{}>", organisation.name.replace(['<', '>', '"'], ""), organisation.security_address);
    InstanceKey::generate(&user_id).map_err(|e| AppError::Internal(e.into()))
}

/// The instance's public key, armored, for `/.well-known/security.asc`.
pub async fn public_key(app: &App) -> Result<String, AppError> {
    instance_key(app).await?.public_armored().map_err(|e| AppError::Internal(e.into()))
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The key that was current, now kept only to decrypt.
    pub old_fingerprint: String,
    /// The new current key.
    pub new_fingerprint: String,
    /// Every retired key the instance still decrypts with (the old one included).
    pub retired: Vec<String>,
}

/// Replaces the instance key with a new one (an administrator's act, audited): from then on
/// the new key is published (`security.asc`, security.txt's signature, the CSAF provider
/// metadata) and signs outgoing mail and CSAF documents; the old secret key is kept, sealed,
/// to decrypt mail encrypted to it. Every process takes the new key up within seconds.
pub async fn rotate(app: &App, actor: &Actor) -> Result<Rotated, AppError> {
    // Make sure a key exists (a rotation of nothing is the first key).
    let _ = instance_key(app).await?;
    let new = generate(app)?;
    let armored = new.to_armored_secret().map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    // The counter first: it locks its row, so concurrent rotations run one after the other
    // and each retires the key the previous one made.
    meta::increment(&mut tx, VERSION_KEY).await?;
    let current = meta::get_sealed(&mut tx, META_KEY)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the instance key vanished")))?;
    let old = InstanceKey::from_armored_secret(&current).map_err(|e| AppError::Internal(e.into()))?;
    meta::set_sealed(&mut tx, &format!("{RETIRED_PREFIX}{}", old.fingerprint()), &current).await?;
    meta::set_sealed(&mut tx, META_KEY, &armored).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "openpgp.key.rotate",
        "instance",
        &format!("old={} new={}", old.fingerprint(), new.fingerprint()),
    )
    .await?;
    let retired: Vec<String> = meta::keys_with_prefix(&mut tx, RETIRED_PREFIX)
        .await?
        .into_iter()
        .map(|name| name.trim_start_matches(RETIRED_PREFIX).to_owned())
        .collect();
    tx.commit().await?;
    *app.pgp_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    Ok(Rotated { old_fingerprint: old.fingerprint(), new_fingerprint: new.fingerprint(), retired })
}
