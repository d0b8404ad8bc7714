//! Single sign-on (ADR 29): identities at an OpenID provider linked to accounts by
//! (issuer, subject), and sign-ins under way (their `state` hashed, their nonce and PKCE
//! verifier sealed, each used once).

use embargo_domain::{Timestamp, UserId};
use sqlx::Row;

use crate::{StoreError, Tx, ms, ts};

/// An identity linked to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Id.
    pub id: i64,
    /// The account.
    pub user: UserId,
    /// The provider's issuer identifier.
    pub issuer: String,
    /// The subject at that issuer.
    pub subject: String,
    /// The address the provider gave when it was linked (for people to read).
    pub email: String,
    /// Linked.
    pub created_at: Timestamp,
    /// Last signed in with.
    pub last_used_at: Option<Timestamp>,
}

fn identity_of(row: &sqlx::any::AnyRow) -> Result<Identity, StoreError> {
    Ok(Identity {
        id: row.try_get("id")?,
        user: UserId(row.try_get("user_id")?),
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        created_at: ts(row.try_get("created_at")?)?,
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(ts).transpose()?,
    })
}

/// The identity (issuer, subject), if linked.
pub async fn identity(tx: &mut Tx, issuer: &str, subject: &str) -> Result<Option<Identity>, StoreError> {
    let row = sqlx::query(
        "SELECT id, user_id, issuer, subject, email, created_at, last_used_at FROM oidc_identities \
         WHERE issuer = $1 AND subject = $2",
    )
    .bind(issuer)
    .bind(subject)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(identity_of).transpose()
}

/// An account's linked identities.
pub async fn identities_of(tx: &mut Tx, user: UserId) -> Result<Vec<Identity>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, user_id, issuer, subject, email, created_at, last_used_at FROM oidc_identities \
         WHERE user_id = $1 ORDER BY id",
    )
    .bind(user.0)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(identity_of).collect()
}

/// Links (issuer, subject) to an account. A subject linked to any account, or an account
/// already linked at this issuer, is a conflict.
pub async fn link(
    tx: &mut Tx,
    user: UserId,
    issuer: &str,
    subject: &str,
    email: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO oidc_identities (user_id, issuer, subject, email, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id",
    )
    .bind(user.0)
    .bind(issuer)
    .bind(subject)
    .bind(email)
    .bind(ms(at))
    .fetch_one(tx.conn())
    .await
    .map_err(|e| StoreError::on_unique(e, "a link of this identity, or of this account at this provider"))
}

/// Records a sign-in with an identity.
pub async fn used(tx: &mut Tx, id: i64, at: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE oidc_identities SET last_used_at = $1 WHERE id = $2")
        .bind(ms(at))
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Removes an account's identities (at one issuer, or every one); returns how many.
pub async fn unlink(tx: &mut Tx, user: UserId, issuer: Option<&str>) -> Result<u64, StoreError> {
    let done = match issuer {
        Some(issuer) => {
            sqlx::query("DELETE FROM oidc_identities WHERE user_id = $1 AND issuer = $2")
                .bind(user.0)
                .bind(issuer)
                .execute(tx.conn())
                .await?
        }
        None => sqlx::query("DELETE FROM oidc_identities WHERE user_id = $1").bind(user.0).execute(tx.conn()).await?,
    };
    Ok(done.rows_affected())
}

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The hash of the browser cookie it is bound to.
    pub browser_hash: String,
    /// `sign-in`, `link` or `invitation`.
    pub purpose: String,
    /// For `link`: the account.
    pub user: Option<UserId>,
    /// For `link`: the session that started it (it must still be live).
    pub session: Option<i64>,
    /// For `invitation`: which one (the kind and the hash of its token).
    pub invitation: Option<String>,
    /// Where to go afterwards.
    pub next: Option<String>,
    /// The nonce and PKCE verifier (opened).
    pub secrets: String,
    /// Expires.
    pub expires_at: Timestamp,
}

fn flow_aad(state_hash: &str) -> String {
    format!("oidc_flows.secrets:{state_hash}")
}

/// Stores a sign-in under way (the secrets sealed).
pub async fn create_flow(tx: &mut Tx, state_hash: &str, flow: &Flow, at: Timestamp) -> Result<(), StoreError> {
    let sealed = tx.seal(&flow.secrets, &flow_aad(state_hash));
    sqlx::query(
        "INSERT INTO oidc_flows (state_hash, browser_hash, purpose, user_id, session_id, invitation, next_path, \
         secrets_enc, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(state_hash)
    .bind(&flow.browser_hash)
    .bind(&flow.purpose)
    .bind(flow.user.map(|u| u.0))
    .bind(flow.session)
    .bind(flow.invitation.as_deref())
    .bind(flow.next.as_deref())
    .bind(sealed)
    .bind(ms(at))
    .bind(ms(flow.expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Takes a sign-in under way: marks it used and returns it, only if it was unused and has
/// not expired (a `state` works once). The caller checks the browser binding.
pub async fn take_flow(tx: &mut Tx, state_hash: &str, at: Timestamp) -> Result<Option<Flow>, StoreError> {
    let updated =
        sqlx::query("UPDATE oidc_flows SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL AND expires_at > $1")
            .bind(ms(at))
            .bind(state_hash)
            .execute(tx.conn())
            .await?;
    if updated.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT browser_hash, purpose, user_id, session_id, invitation, next_path, secrets_enc, expires_at \
         FROM oidc_flows WHERE state_hash = $1",
    )
    .bind(state_hash)
    .fetch_one(tx.conn())
    .await?;
    let sealed: Vec<u8> = row.try_get("secrets_enc")?;
    Ok(Some(Flow {
        browser_hash: row.try_get("browser_hash")?,
        purpose: row.try_get("purpose")?,
        user: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
        session: row.try_get("session_id")?,
        invitation: row.try_get("invitation")?,
        next: row.try_get("next_path")?,
        secrets: tx.open(&sealed, &flow_aad(state_hash))?,
        expires_at: ts(row.try_get("expires_at")?)?,
    }))
}

/// Forgets sign-ins that expired before `before`.
pub async fn purge_flows(tx: &mut Tx, before: Timestamp) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM oidc_flows WHERE expires_at < $1").bind(ms(before)).execute(tx.conn()).await?;
    Ok(done.rows_affected())
}
