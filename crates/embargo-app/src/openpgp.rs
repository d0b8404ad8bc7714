//! The instance's OpenPGP key: created at first start, stored sealed, published for
//! reporters to encrypt to, used to decrypt what they send.

use embargo_domain::Actor;
use embargo_mail::openpgp::InstanceKey;
use embargo_store::meta;

use crate::{App, AppError, audit};

const META_KEY: &str = "openpgp.instance_key";

/// The instance key, created (and audited) on first use. Cached for the process.
pub async fn instance_key(app: &App) -> Result<InstanceKey, AppError> {
    if let Some(key) = app.pgp_key.get() {
        return Ok(key.clone());
    }
    let mut tx = app.store.begin().await?;
    let key = match meta::get_sealed(&mut tx, META_KEY).await? {
        Some(text) => InstanceKey::from_armored_secret(&text).map_err(|e| AppError::Internal(e.into()))?,
        None => {
            let organisation = &app.config.organisation;
            let user_id = format!(
                "{} security <{}>",
                organisation.name.replace(['<', '>', '"'], ""),
                organisation.security_address
            );
            let key = InstanceKey::generate(&user_id).map_err(|e| AppError::Internal(e.into()))?;
            let armored = key.to_armored_secret().map_err(|e| AppError::Internal(e.into()))?;
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
            key
        }
    };
    tx.commit().await?;
    let _ = app.pgp_key.set(key.clone());
    Ok(app.pgp_key.get().cloned().unwrap_or(key))
}

/// The instance's public key, armored, for `/.well-known/security.asc`.
pub async fn public_key(app: &App) -> Result<String, AppError> {
    instance_key(app).await?.public_armored().map_err(|e| AppError::Internal(e.into()))
}
