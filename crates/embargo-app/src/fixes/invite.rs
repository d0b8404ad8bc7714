//! Fix developers: invited by e-mail to one report's fix. An invitation makes (or reuses)
//! a `fix-developer` account, gives it that fix (need-to-know: the account is a member of
//! the report, and its role lets it use the fix repository and nothing else of the
//! report), and mails a one-time link to set a password. Tokens for git come from
//! `embargo admin create-token` or the account page.

use embargo_domain::{Actor, ReferenceId, ReportId, Role, Timestamp, UserId};
use embargo_store::fixes as store;
use embargo_store::users;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::{find_for, subject};
use crate::authz::{self, Permission};
use crate::jobs::{Claim, Job, JobError};
use crate::{App, AppError, audit};

/// How long an invitation link works.
pub const INVITATION_VALID: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What [`invite`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Invited {
    /// The account.
    pub user: i64,
    /// Its address.
    pub email: String,
    /// Whether the account was made now.
    pub created: bool,
    /// Whether an invitation mail was queued (fix developers without a password yet; team
    /// members and fix developers who already sign in find the fix on their pages).
    pub mailed: bool,
}

/// Invites someone to a report's fix: a new fix-developer account (or an existing one) is
/// given the fix, and a fix developer is mailed a link to set a password. Giving a team
/// member the fix gives them the report, which only those who manage report access may do.
pub async fn invite(app: &App, actor: &Actor, reference: &ReferenceId, email: &str) -> Result<Invited, AppError> {
    let email = crate::accounts::validate_email(email)?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::ManageFixRepository).await?;
    let (user, role, created, has_password) = match users::by_email(&mut tx, &email).await? {
        Some(user) if user.disabled || user.deleted => {
            return Err(AppError::Invalid(format!("the account {email} is disabled; enable it first")));
        }
        Some(user) => (user.id, user.role, false, user.password_hash.is_some()),
        None => {
            let id = users::create(&mut tx, &email, Role::FixDeveloper, None, now).await?;
            audit::record(&mut tx, app, actor, "user.create", &format!("user:{id}"), "role=fix-developer").await?;
            (id, Role::FixDeveloper, true, false)
        }
    };
    match role {
        Role::FixDeveloper => {}
        Role::Admin | Role::Responder => {
            authz::require(&mut tx, actor, Permission::ManageReportAccess.on(report.id)).await?;
        }
        Role::Partner => {
            return Err(AppError::Invalid(format!("{email} is a partner account; fix developers have their own")));
        }
    }
    embargo_store::reports::add_member(&mut tx, report.id, user, now).await?;
    audit::record(&mut tx, app, actor, "fix.invite", &subject(reference), &format!("user={user}")).await?;
    // A link to set a password goes to a fix developer who has none yet; one who has finds
    // the new fix on their start page.
    let mailed = role == Role::FixDeveloper && !has_password;
    if mailed {
        crate::jobs::enqueue(
            &mut tx,
            app,
            &Invitation { report: report.id.0, user: user.0, at_ms: now.as_millisecond() },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Invited { user: user.0, email, created, mailed })
}

/// Mails a fix developer their invitation: a one-time link to set a password, made when
/// the mail goes (only its hash is stored; the job's payload holds identifiers only).
#[derive(Debug, Serialize, Deserialize)]
pub struct Invitation {
    report: i64,
    user: i64,
    at_ms: i64,
}

impl Job for Invitation {
    const KIND: &'static str = "mail.fix_invitation";

    fn key(&self) -> Option<String> {
        Some(format!("fix-invite:{}:{}:{}", self.report, self.user, self.at_ms))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let now = app.now();
        let mut tx = app.store.begin().await?;
        let report = embargo_store::reports::get(&mut tx, ReportId(self.report))
            .await?
            .ok_or_else(|| JobError::Permanent(format!("report {} does not exist", self.report)))?;
        let user = users::get(&mut tx, UserId(self.user)).await?;
        let Some(user) = user.filter(|u| !u.disabled && !u.deleted) else {
            return claim.complete(tx, now).await;
        };
        let token = crate::tokens::secret("");
        store::invite(&mut tx, user.id, report.id, &crate::tokens::hash(&token), now, now + INVITATION_VALID).await?;
        tx.commit().await?;
        let link = format!("{}/invitations/{token}", app.config.base_url());
        let body = format!(
            "Hello,\n\n\
             The {org} security team invites you to prepare the fix for {reference} in a private\n\
             repository. Set your password here (the link works once, for 7 days):\n\n{link}\n\n\
             Then sign in, create a personal access token on your account page, and clone:\n\n\
             git clone {clone}\n\n\
             (user name: your e-mail address; password: the token). What you see there is under\n\
             embargo: do not push it anywhere else and do not mention it in public before the\n\
             disclosure.\n\n-- \n{org} security team\n",
            org = app.config.organisation.name,
            reference = report.reference,
            clone = super::clone_url(app, &report.reference),
        );
        let outbound = embargo_mail::outbound::OutboundMail {
            from: crate::mail::from_address(app),
            to: user.email.clone(),
            reply_to: app.config.organisation.security_address.clone(),
            subject: format!("[{}] Invitation to prepare a fix", report.reference),
            body,
            message_id: crate::mail::new_message_id(app, "invite"),
            in_reply_to: None,
            auto_reply: true,
            encrypt_to: None,
        };
        let label = format!("invite-{}-{}", report.reference, claim.id());
        let receipt = crate::mail::send(app, &label, &outbound).await?;
        let details = crate::mail::sent_details(Self::KIND, None, &receipt, false);
        crate::mail::record_sent(app, &claim, &report.reference, &details).await
    }
}

/// Who an invitation link is for (its address and report), while it is valid.
pub async fn invitation(app: &App, token: &str) -> Result<Option<(String, ReferenceId)>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = valid_invitation(&mut tx, app.now(), token).await?;
    let out = match found {
        Some((invitation, email)) => {
            embargo_store::reports::get(&mut tx, invitation.report).await?.map(|report| (email, report.reference))
        }
        None => None,
    };
    tx.rollback().await?;
    Ok(out)
}

async fn valid_invitation(
    tx: &mut embargo_store::Tx,
    now: Timestamp,
    token: &str,
) -> Result<Option<(store::Invitation, String)>, AppError> {
    let Some(invitation) = store::invitation(tx, &crate::tokens::hash(token)).await? else { return Ok(None) };
    if invitation.accepted_at.is_some() || invitation.expires_at <= now {
        return Ok(None);
    }
    let user = users::get(tx, invitation.user).await?.filter(|u| !u.disabled && !u.deleted);
    Ok(user.map(|u| (invitation, u.email)))
}

/// Accepts an invitation: sets the account's password (the link then stops working);
/// returns the account's address, to sign in with.
pub async fn accept_invitation(app: &App, token: &str, password: &str) -> Result<String, AppError> {
    let hash = crate::accounts::hash_password(password)?;
    let mut tx = app.store.begin().await?;
    let (invitation, email) = valid_invitation(&mut tx, app.now(), token)
        .await?
        .ok_or_else(|| AppError::NotFound("this invitation link (used, expired or unknown)".into()))?;
    // A link sets the first password only: an older link of an account that has one is
    // not a way to reset it (that is the admins' `reset-password`, which ends sessions).
    let has_password = users::get(&mut tx, invitation.user).await?.is_some_and(|u| u.password_hash.is_some());
    if has_password || !store::accept_invitation(&mut tx, invitation.id, app.now()).await? {
        return Err(AppError::NotFound("this invitation link (used, expired or unknown)".into()));
    }
    users::set_password_hash(&mut tx, invitation.user, Some(&hash)).await?;
    let actor = Actor::User { id: invitation.user, role: Role::FixDeveloper };
    audit::record(&mut tx, app, &actor, "user.invitation.accept", &format!("user:{}", invitation.user), "").await?;
    tx.commit().await?;
    Ok(email)
}
