//! Team accounts: the first admin, users, API tokens.
//!
//! Passwords are hashed with Argon2id (PHC strings). API tokens and one-time links are
//! random 256-bit values shown once; only their SHA-256 is stored, which is enough for
//! values with that much entropy.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use embargo_domain::{Actor, Role, UserId};
use embargo_store::users;

use crate::authz::{self, Permission};
use crate::{App, AppError, audit};

/// The purpose of the first-admin link.
const FIRST_ADMIN: &str = "first-admin";

/// Minimum password length for team accounts.
pub const MIN_PASSWORD_LEN: usize = 12;

pub(crate) fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::Invalid(format!("the password must have at least {MIN_PASSWORD_LEN} characters")));
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2: {e}")))
}

/// A valid Argon2id hash of a random password, checked against when an account does not
/// exist so that sign-in takes as long either way.
pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3ZVYzZ5vLwQ7x2n8lQ0pY9Zx3mH0c7wq0b0vY8vN1yE";

/// Whether `password` matches a stored Argon2id hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Whether `password` is the password of the enabled account `email`. (The sign-in page,
/// with throttling and TOTP, builds on this.)
pub async fn verify_password_of(app: &App, email: &str, password: &str) -> Result<bool, AppError> {
    let mut tx = app.store.begin().await?;
    let user = users::by_email(&mut tx, email).await?;
    tx.rollback().await?;
    Ok(match user {
        Some(user) if !user.disabled => user.password_hash.as_deref().is_some_and(|h| verify_password(h, password)),
        _ => false,
    })
}

pub(crate) fn validate_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    // An addr-spec as people use it (RFC 5321 without quoted local parts or address
    // literals): nothing that could break a header or a terminal.
    let local_ok = |l: &str| {
        !l.is_empty() && l.len() <= 64 && l.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    };
    let domain_ok = |d: &str| {
        d == "localhost"
            || (d.contains('.')
                && d.split('.')
                    .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-')))
    };
    let valid = email.len() <= 254
        && email.rsplit_once('@').is_some_and(|(local, domain)| local_ok(local) && domain_ok(domain));
    if valid { Ok(email) } else { Err(AppError::Invalid(format!("{email:?} is not an e-mail address"))) }
}

/// Creates a team account.
pub async fn create_user(
    app: &App,
    actor: &Actor,
    email: &str,
    role: Role,
    password: Option<&str>,
) -> Result<UserId, AppError> {
    let email = validate_email(email)?;
    if !Role::ASSIGNABLE.contains(&role) {
        return Err(AppError::Invalid(format!(
            "{} accounts come with their feature; for now an account is an admin or a responder",
            role.as_str()
        )));
    }
    let hash = password.map(hash_password).transpose()?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let id = users::create(&mut tx, &email, role, hash.as_deref(), app.now()).await?;
    audit::record(&mut tx, app, actor, "user.create", &format!("user:{id}"), &format!("role={}", role.as_str()))
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates an API token for an account; returns the token, which is shown only once.
pub async fn create_token(app: &App, actor: &Actor, email: &str, name: &str) -> Result<String, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    let token = crate::tokens::secret("emb_");
    let id = users::create_token(&mut tx, user.id, &crate::tokens::hash(&token), name, app.now()).await?;
    audit::record(&mut tx, app, actor, "token.create", &format!("user:{}", user.id), &format!("token={id}")).await?;
    tx.commit().await?;
    Ok(token)
}

/// The actor an API token stands for, if it is valid.
pub async fn authenticate_token(app: &App, token: &str) -> Result<Option<Actor>, AppError> {
    let mut tx = app.store.begin().await?;
    let user = users::by_token_hash(&mut tx, &crate::tokens::hash(token), app.now()).await?;
    tx.commit().await?;
    Ok(user.map(|u| Actor::User { id: u.id, role: u.role }))
}

/// The team account someone at the command line acts as (`--as EMAIL`): what they do next is
/// checked against that account's permissions and recorded under its name. Only who may
/// manage accounts (the local administrator) may act as another account, never as a
/// disabled one; the switch itself is audited, naming both.
pub async fn act_as(app: &App, actor: &Actor, email: &str) -> Result<Actor, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    if user.disabled {
        return Err(AppError::Forbidden("act as a disabled account"));
    }
    audit::record(&mut tx, app, actor, "user.act_as", &format!("user:{}", user.id), "").await?;
    tx.commit().await?;
    Ok(Actor::User { id: user.id, role: user.role })
}

/// At start: while no admin exists, issues a one-time link (valid 24 hours) to create the
/// first one, and returns its URL under `base_url`. Returns `None` once an admin exists.
pub async fn first_admin_link(app: &App, base_url: &str) -> Result<Option<String>, AppError> {
    let mut tx = app.store.begin().await?;
    if users::count_admins(&mut tx).await? > 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let token = crate::tokens::secret("");
    let now = app.now();
    let expires = now.checked_add(jiff::SignedDuration::from_hours(24)).map_err(|e| AppError::Internal(e.into()))?;
    users::create_one_time(&mut tx, &crate::tokens::hash(&token), FIRST_ADMIN, now, expires).await?;
    audit::record(&mut tx, app, &Actor::System("setup"), "setup.link.create", "setup", "expires_in=24h").await?;
    tx.commit().await?;
    Ok(Some(format!("{}/setup/{token}", base_url.trim_end_matches('/'))))
}

/// Whether a first-admin link is still usable.
pub async fn first_admin_link_valid(app: &App, token: &str) -> Result<bool, AppError> {
    let mut tx = app.store.begin().await?;
    let valid = users::one_time_valid(&mut tx, &crate::tokens::hash(token), FIRST_ADMIN, app.now()).await?
        && users::count_admins(&mut tx).await? == 0;
    tx.rollback().await?;
    Ok(valid)
}

/// Creates the first admin through the one-time link. The link works once, and only while
/// no admin exists.
pub async fn create_first_admin(app: &App, token: &str, email: &str, password: &str) -> Result<UserId, AppError> {
    let email = validate_email(email)?;
    let hash = hash_password(password)?;
    let mut tx = app.store.begin().await?;
    let used = users::consume_one_time(&mut tx, &crate::tokens::hash(token), FIRST_ADMIN, app.now()).await?;
    if !used || users::count_admins(&mut tx).await? > 0 {
        tx.rollback().await?;
        return Err(AppError::NotFound("setup link (it was used, has expired, or an admin exists)".into()));
    }
    let id = users::create(&mut tx, &email, Role::Admin, Some(&hash), app.now()).await?;
    audit::record(
        &mut tx,
        app,
        &Actor::System("setup"),
        "user.create",
        &format!("user:{id}"),
        "role=admin via=setup-link",
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Every team account (admins only).
pub async fn list_users(app: &App, actor: &Actor) -> Result<Vec<users::UserRecord>, AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let list = users::list(&mut tx).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Team members to pick from (for assignment); any team member may see the list.
pub async fn team(app: &App, actor: &Actor) -> Result<Vec<users::UserRecord>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let list = team_in(&mut tx, actor).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Team accounts by id, to show people by name rather than by their stored actor text
/// (`user:7:admin`): in threads, timelines and the audit trail. Every account is in it,
/// disabled and deleted ones too (what they did stays attributed).
#[derive(Debug, Clone, Default)]
pub struct People {
    names: std::collections::HashMap<i64, (String, bool)>,
}

impl People {
    /// The name of an account by id (its address; "deleted account N" for a deleted one).
    pub fn user(&self, id: i64) -> String {
        match self.names.get(&id) {
            Some((_, true)) => format!("deleted account {id}"),
            Some((email, false)) => email.clone(),
            None => format!("account {id}"),
        }
    }

    /// The name of an actor in its stored text form ([`Actor`]'s `Display`): an account's
    /// address, "the reporter", "Embargo (intake)" for the system, "root (command line)".
    pub fn name(&self, actor: &str) -> String {
        if let Some(rest) = actor.strip_prefix("user:") {
            let id = rest.split(':').next().unwrap_or(rest);
            if let Ok(id) = id.parse::<i64>() {
                return self.user(id);
            }
        }
        if actor == "reporter" {
            return "the reporter".to_owned();
        }
        if let Some(component) = actor.strip_prefix("system:") {
            return format!("Embargo ({component})");
        }
        if let Some(user) = actor.strip_prefix("cli:") {
            return format!("{user} (command line)");
        }
        actor.to_owned()
    }

    /// A text with account references (`user:7`, `user:7:admin`, `user=7`) replaced by
    /// names: the details of an audit entry.
    pub fn in_text(&self, text: &str) -> String {
        text.split(' ')
            .map(|word| {
                let (key, value) = match word.split_once('=') {
                    Some((key, value)) => (Some(key), value),
                    None => (None, word),
                };
                let id = match (key, value.strip_prefix("user:")) {
                    (_, Some(rest)) => rest.split(':').next().and_then(|id| id.parse::<i64>().ok()),
                    (Some("user"), None) => value.parse::<i64>().ok(),
                    _ => None,
                };
                match (key, id) {
                    (Some(key), Some(id)) => format!("{key}={}", self.user(id)),
                    (None, Some(id)) => self.user(id),
                    _ => word.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every account's name, for showing who did what (those who may list the team).
pub async fn people(app: &App, actor: &Actor) -> Result<People, AppError> {
    let mut tx = app.store.snapshot().await?;
    let people = people_in(&mut tx, actor).await?;
    tx.rollback().await?;
    Ok(people)
}

/// [`people`], in the caller's snapshot.
pub(crate) async fn people_in(tx: &mut embargo_store::Tx, actor: &Actor) -> Result<People, AppError> {
    authz::require(tx, actor, Permission::ListTeam).await?;
    let list = users::list(tx).await?;
    Ok(People { names: list.into_iter().map(|u| (u.id.0, (u.email, u.deleted))).collect() })
}

/// [`team_in`] and [`people_in`] from one read of the accounts (a report page shows both).
pub(crate) async fn team_and_people_in(
    tx: &mut embargo_store::Tx,
    actor: &Actor,
) -> Result<(Vec<users::UserRecord>, People), AppError> {
    authz::require(tx, actor, Permission::ListTeam).await?;
    let list = users::list(tx).await?;
    let people = People { names: list.iter().map(|u| (u.id.0, (u.email.clone(), u.deleted))).collect() };
    Ok((list.into_iter().filter(|u| !u.disabled).collect(), people))
}

/// [`team`], in the caller's snapshot.
pub(crate) async fn team_in(tx: &mut embargo_store::Tx, actor: &Actor) -> Result<Vec<users::UserRecord>, AppError> {
    authz::require(tx, actor, Permission::ListTeam).await?;
    Ok(users::list(tx).await?.into_iter().filter(|u| !u.disabled).collect())
}

/// A product and who is responsible for it.
#[derive(Debug, Clone)]
pub struct ProductView {
    /// The product.
    pub product: embargo_store::products::ProductRecord,
    /// Addresses of its responders.
    pub responders: Vec<String>,
}

/// The product catalogue with responders.
pub async fn products(app: &App, actor: &Actor) -> Result<Vec<ProductView>, AppError> {
    let mut tx = app.store.snapshot().await?;
    authz::require(&mut tx, actor, Permission::ReadCatalogue).await?;
    let all = users::list(&mut tx).await?;
    let mut out = Vec::new();
    for product in embargo_store::products::list(&mut tx).await? {
        let ids = embargo_store::products::responders(&mut tx, product.id).await?;
        let responders = all.iter().filter(|u| ids.contains(&u.id)).map(|u| u.email.clone()).collect();
        out.push(ProductView { product, responders });
    }
    tx.rollback().await?;
    Ok(out)
}

/// Adds a product to the catalogue (admins).
pub async fn create_product(app: &App, actor: &Actor, name: &str) -> Result<i64, AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid("a product needs a name of at most 200 characters".into()));
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    let id = embargo_store::products::create(&mut tx, name, app.now()).await?;
    audit::record(&mut tx, app, actor, "product.create", &format!("product:{id}"), "").await?;
    tx.commit().await?;
    Ok(id)
}

/// Checks a package URL's shape: `pkg:<type>/<name>` with an optional namespace,
/// version, qualifiers and subpath (the purl specification's components).
pub fn valid_purl(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("pkg:") else { return false };
    let Some((kind, path)) = rest.split_once('/') else { return false };
    let kind_ok = !kind.is_empty()
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    let name = path.split(['@', '?', '#']).next().unwrap_or("");
    kind_ok && !name.is_empty() && !name.ends_with('/') && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Sets a product's catalogue details: repository URL, OSV ecosystem, package URL and the
/// supported release lines (admins).
pub async fn update_product(
    app: &App,
    actor: &Actor,
    id: i64,
    repository_url: &str,
    ecosystem: &str,
    purl: &str,
    release_lines: &str,
) -> Result<(), AppError> {
    update_product_details(app, actor, id, repository_url, ecosystem, purl, release_lines, None).await
}

/// [`update_product`], and the test command private CI runs on every push to a fix branch
/// (`None` keeps it; empty: no CI).
#[allow(clippy::too_many_arguments)]
pub async fn update_product_details(
    app: &App,
    actor: &Actor,
    id: i64,
    repository_url: &str,
    ecosystem: &str,
    purl: &str,
    release_lines: &str,
    test_command: Option<&str>,
) -> Result<(), AppError> {
    let repository_url = repository_url.trim();
    if !(repository_url.is_empty()
        || (repository_url.starts_with("https://")
            || repository_url.starts_with("http://")
            || repository_url.starts_with("file:///")
            || repository_url.starts_with('/'))
            && repository_url.len() <= 500
            && !repository_url.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(AppError::Invalid(
            "the repository is an https:// URL, a file:// URL or an absolute local path (of a git repository)".into(),
        ));
    }
    let test_command = test_command.map(str::trim);
    if let Some(command) = test_command
        && (command.len() > 4000 || command.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    {
        return Err(AppError::Invalid("the test command is one shell command line of at most 4000 bytes".into()));
    }
    let ecosystem = ecosystem.trim();
    if ecosystem.len() > 60 || ecosystem.chars().any(char::is_control) {
        return Err(AppError::Invalid("the ecosystem is an OSV ecosystem name such as crates.io, npm or PyPI".into()));
    }
    let purl = purl.trim();
    if !(purl.is_empty() || valid_purl(purl)) {
        return Err(AppError::Invalid(format!("{purl:?} is not a package URL such as pkg:cargo/example")));
    }
    let mut lines: Vec<String> = Vec::new();
    for line in release_lines.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if line.len() > 40 || embargo_domain::fix::check_line_name(line).is_err() {
            return Err(AppError::Invalid(format!(
                "release line {line:?}: the public branch that carries it, at most 40 characters \
                 (letters, digits, '.', '-', '_', '/')"
            )));
        }
        if !lines.iter().any(|l| l == line) {
            lines.push(line.to_owned());
        }
    }
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    let mut product = embargo_store::products::list(&mut tx)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| AppError::NotFound(format!("product {id}")))?;
    product.repository_url = repository_url.to_owned();
    product.ecosystem = ecosystem.to_owned();
    product.purl = purl.to_owned();
    product.release_lines = lines;
    if let Some(command) = test_command {
        command.clone_into(&mut product.test_command);
    }
    embargo_store::products::update(&mut tx, &product).await?;
    audit::record(&mut tx, app, actor, "product.update", &format!("product:{id}"), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Makes a team member responsible for a product: they see its reports (admins).
pub async fn add_product_responder(app: &App, actor: &Actor, product: i64, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    if !embargo_store::products::list(&mut tx).await?.iter().any(|p| p.id == product) {
        return Err(AppError::NotFound(format!("product {product}")));
    }
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    embargo_store::products::add_responder(&mut tx, product, user.id).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "product.responder.add",
        &format!("product:{product}"),
        &format!("user={}", user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The actor's own API tokens.
pub async fn my_tokens(app: &App, actor: &Actor) -> Result<Vec<users::TokenRecord>, AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("list API tokens")) };
    let mut tx = app.store.snapshot().await?;
    let list = users::tokens(&mut tx, *id).await?;
    tx.rollback().await?;
    Ok(list)
}

/// Creates an API token for the actor's own account; returns it (shown once).
pub async fn create_my_token(app: &App, actor: &Actor, name: &str) -> Result<String, AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("create API tokens")) };
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid("give the token a name of at most 100 characters".into()));
    }
    let mut tx = app.store.begin().await?;
    let token = crate::tokens::secret("emb_");
    let token_id = users::create_token(&mut tx, *id, &crate::tokens::hash(&token), name, app.now()).await?;
    audit::record(&mut tx, app, actor, "token.create", &format!("user:{id}"), &format!("token={token_id}")).await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes one of the actor's own API tokens.
pub async fn revoke_my_token(app: &App, actor: &Actor, token: i64) -> Result<(), AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("revoke API tokens")) };
    let mut tx = app.store.begin().await?;
    if !users::revoke_token(&mut tx, *id, token, app.now()).await? {
        return Err(AppError::NotFound("token".into()));
    }
    audit::record(&mut tx, app, actor, "token.revoke", &format!("user:{id}"), &format!("token={token}")).await?;
    tx.commit().await?;
    Ok(())
}

// ---- Offboarding and recovery ------------------------------------------------------------
//
// Every change below is effective at once: sessions and API tokens are looked up in the
// database on every request, and those of an account that is disabled, deleted or reset
// are revoked in the same transaction as the change (so re-enabling an account does not
// bring a stolen cookie or token back). There is always at least one active admin.

/// An account by address for an admin operation (deleted accounts are not found).
async fn account(tx: &mut embargo_store::Tx, email: &str) -> Result<users::UserRecord, AppError> {
    users::by_email(tx, email)
        .await?
        .filter(|u| !u.deleted)
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))
}

/// Refuses when `user` is the last active admin (disabling or deleting them would leave
/// nobody to manage the instance from the web).
async fn keep_an_admin(tx: &mut embargo_store::Tx, user: &users::UserRecord, doing: &str) -> Result<(), AppError> {
    if user.role == Role::Admin && !user.disabled && users::count_admins(tx).await? <= 1 {
        return Err(AppError::Conflict(format!(
            "cannot {doing} {}: it is the last active admin (make another admin first)",
            user.email
        )));
    }
    Ok(())
}

/// What disabling or deleting an account revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Live browser sessions ended.
    pub sessions: u64,
    /// API tokens revoked.
    pub tokens: u64,
    /// Products the account was responsible for (deletion only).
    pub products: u64,
    /// Reports it was a member of (deletion only).
    pub memberships: u64,
    /// Reports that were assigned to it and are now unassigned (deletion only).
    pub assignments: u64,
}

/// Disables an account (admins): it can no longer sign in, and its sessions and API tokens
/// are revoked at once. Refused for the last active admin.
pub async fn disable_user(app: &App, actor: &Actor, email: &str) -> Result<Revoked, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = account(&mut tx, email).await?;
    keep_an_admin(&mut tx, &user, "disable").await?;
    if !users::set_disabled(&mut tx, user.id, true).await? {
        tx.rollback().await?;
        return Err(AppError::Conflict(format!("account {} is already disabled", user.email)));
    }
    let revoked = Revoked {
        sessions: embargo_store::sessions::revoke_all(&mut tx, user.id, now).await?,
        tokens: users::revoke_all_tokens(&mut tx, user.id, now).await?,
        ..Revoked::default()
    };
    let details = format!("sessions={} tokens={}", revoked.sessions, revoked.tokens);
    audit::record(&mut tx, app, actor, "user.disable", &format!("user:{}", user.id), &details).await?;
    tx.commit().await?;
    tracing::info!(user = user.id.0, sessions = revoked.sessions, tokens = revoked.tokens, "account disabled");
    Ok(revoked)
}

/// Enables a disabled account again (admins). Its old sessions and tokens stay revoked.
pub async fn enable_user(app: &App, actor: &Actor, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = account(&mut tx, email).await?;
    if !users::set_disabled(&mut tx, user.id, false).await? {
        tx.rollback().await?;
        return Err(AppError::Conflict(format!("account {} is not disabled", user.email)));
    }
    audit::record(&mut tx, app, actor, "user.enable", &format!("user:{}", user.id), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes an account (admins). The row stays, anonymised, so that its audit entries,
/// transitions and the messages and notes it wrote stay attributed to `user:<id>`; its
/// address, password, second factor, sessions, tokens, product responsibilities and report
/// memberships go, and reports assigned to it become unassigned. Refused for the last
/// active admin.
pub async fn delete_user(app: &App, actor: &Actor, email: &str) -> Result<Revoked, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = account(&mut tx, email).await?;
    keep_an_admin(&mut tx, &user, "delete").await?;
    let (memberships, assignments) = embargo_store::reports::remove_user_everywhere(&mut tx, user.id, now).await?;
    let revoked = Revoked {
        sessions: embargo_store::sessions::revoke_all(&mut tx, user.id, now).await?,
        tokens: users::revoke_all_tokens(&mut tx, user.id, now).await?,
        products: embargo_store::products::remove_responder_everywhere(&mut tx, user.id).await?,
        memberships,
        assignments,
    };
    users::anonymise(&mut tx, user.id, now).await?;
    let details = format!(
        "sessions={} tokens={} products={} memberships={} assignments={}",
        revoked.sessions, revoked.tokens, revoked.products, revoked.memberships, revoked.assignments
    );
    audit::record(&mut tx, app, actor, "user.delete", &format!("user:{}", user.id), &details).await?;
    tx.commit().await?;
    tracing::info!(user = user.id.0, "account deleted (anonymised)");
    Ok(revoked)
}

/// A random password for [`reset_password`] without one: 24 characters of a-z, A-Z, 2-9
/// (about 140 bits).
fn random_password() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// Sets a new password for an account (admins) and ends its sessions. Without `password`
/// a random one is made; the password set is returned (to hand over once).
pub async fn reset_password(app: &App, actor: &Actor, email: &str, password: Option<&str>) -> Result<String, AppError> {
    let password = password.map_or_else(random_password, str::to_owned);
    let hash = hash_password(&password)?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = account(&mut tx, email).await?;
    users::set_password_hash(&mut tx, user.id, Some(&hash)).await?;
    let sessions = embargo_store::sessions::revoke_all(&mut tx, user.id, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "user.password.reset",
        &format!("user:{}", user.id),
        &format!("sessions={sessions}"),
    )
    .await?;
    tx.commit().await?;
    Ok(password)
}

/// Removes an account's second factor (a lost authenticator; admins): the TOTP secret and
/// every recovery code go, its sessions end, and the next sign-in sets TOTP up again.
pub async fn reset_totp(app: &App, actor: &Actor, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
    let user = account(&mut tx, email).await?;
    users::clear_totp(&mut tx, user.id).await?;
    let sessions = embargo_store::sessions::revoke_all(&mut tx, user.id, app.now()).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "user.totp.reset",
        &format!("user:{}", user.id),
        &format!("sessions={sessions}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many recovery codes a set holds.
pub const RECOVERY_CODES: usize = 10;

/// A recovery code: 16 characters of the RFC 4648 base32 alphabet (80 random bits), in
/// groups of four.
fn recovery_code() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The stored form of a recovery code as typed: case, spaces and dashes do not matter.
pub(crate) fn recovery_code_hash(code: &str) -> String {
    let normal: String = code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    crate::tokens::hash(&format!("recovery:{normal}"))
}

/// Makes a new set of recovery codes for `user` in the caller's transaction (the old set
/// stops working) and audits it; returns the codes, to be shown once.
pub(crate) async fn new_recovery_codes(
    tx: &mut embargo_store::Tx,
    app: &App,
    actor: &Actor,
    user: UserId,
) -> Result<Vec<String>, AppError> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| recovery_code_hash(c)).collect();
    users::replace_recovery_codes(tx, user, &hashes, app.now()).await?;
    audit::record(
        tx,
        app,
        actor,
        "auth.recovery_codes.generate",
        &format!("user:{user}"),
        &format!("count={}", codes.len()),
    )
    .await?;
    Ok(codes)
}

async fn recovery_codes_for(app: &App, actor: &Actor, user: &users::UserRecord) -> Result<Vec<String>, AppError> {
    let mut tx = app.store.begin().await?;
    if !users::totp(&mut tx, user.id).await?.is_some_and(|t| t.enabled) {
        tx.rollback().await?;
        return Err(AppError::Conflict(format!(
            "{} has no second factor set up: recovery codes are made when TOTP is confirmed",
            user.email
        )));
    }
    let codes = new_recovery_codes(&mut tx, app, actor, user.id).await?;
    tx.commit().await?;
    Ok(codes)
}

/// A new set of recovery codes for an account (admins, for example from the command line
/// for someone who used theirs up); the old set stops working. Shown once.
pub async fn regenerate_recovery_codes(app: &App, actor: &Actor, email: &str) -> Result<Vec<String>, AppError> {
    let user = {
        let mut tx = app.store.begin().await?;
        authz::require(&mut tx, actor, Permission::ManageAccounts).await?;
        let user = account(&mut tx, email).await?;
        tx.rollback().await?;
        user
    };
    recovery_codes_for(app, actor, &user).await
}

/// A new set of recovery codes for the actor's own account; the old set stops working.
pub async fn my_recovery_codes(app: &App, actor: &Actor) -> Result<Vec<String>, AppError> {
    let Actor::User { id, .. } = actor else { return Err(AppError::Forbidden("make recovery codes")) };
    let mut tx = app.store.snapshot().await?;
    let user = users::get(&mut tx, *id).await?.ok_or_else(|| AppError::NotFound("account".into()))?;
    tx.rollback().await?;
    recovery_codes_for(app, actor, &user).await
}

/// How many unused recovery codes the actor's own account has.
pub async fn my_recovery_codes_left(app: &App, actor: &Actor) -> Result<i64, AppError> {
    let Actor::User { id, .. } = actor else { return Ok(0) };
    let mut tx = app.store.snapshot().await?;
    let left = users::recovery_codes_left(&mut tx, *id).await?;
    tx.rollback().await?;
    Ok(left)
}

async fn product_by_id(
    tx: &mut embargo_store::Tx,
    id: i64,
) -> Result<embargo_store::products::ProductRecord, AppError> {
    embargo_store::products::list(tx)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| AppError::NotFound(format!("product {id}")))
}

/// Takes a product's responsibility from a team member (admins): they stop seeing its
/// reports at once (unless assigned to or members of them).
pub async fn remove_product_responder(app: &App, actor: &Actor, product: i64, email: &str) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    let record = product_by_id(&mut tx, product).await?;
    let user = users::by_email(&mut tx, email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("account {}", email.trim())))?;
    if !embargo_store::products::remove_responder(&mut tx, product, user.id).await? {
        tx.rollback().await?;
        return Err(AppError::NotFound(format!("{} as a responder of {}", user.email, record.name)));
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "product.responder.remove",
        &format!("product:{product}"),
        &format!("user={}", user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn product_name(name: &str) -> Result<&str, AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid("a product needs a name of at most 200 characters".into()));
    }
    Ok(name)
}

/// Renames a product (admins). Reports keep pointing at it; advisories already written
/// keep the name they were written with (it is part of their record), new ones take the
/// new name.
pub async fn rename_product(app: &App, actor: &Actor, product: i64, name: &str) -> Result<(), AppError> {
    let name = product_name(name)?;
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    product_by_id(&mut tx, product).await?;
    embargo_store::products::rename(&mut tx, product, name).await?;
    audit::record(&mut tx, app, actor, "product.rename", &format!("product:{product}"), "").await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a product (admins), with its responders. Refused while reports name it or
/// advisories list it as affected: move those reports to another product first (advisories
/// keep their record; a product they name stays in the catalogue).
pub async fn delete_product(app: &App, actor: &Actor, product: i64) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    authz::require(&mut tx, actor, Permission::ManageCatalogue).await?;
    let record = product_by_id(&mut tx, product).await?;
    let reports = embargo_store::products::report_count(&mut tx, product).await?;
    let mut advisories = Vec::new();
    for row in embargo_store::advisories::list(&mut tx, None).await? {
        let parsed: embargo_advisory::AdvisoryRecord = serde_json::from_str(&row.record)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("advisory {}: {e}", row.advisory_id)))?;
        if parsed.affected.iter().any(|a| a.product == record.name) {
            advisories.push(row.advisory_id);
        }
    }
    if reports > 0 || !advisories.is_empty() {
        tx.rollback().await?;
        let mut why = Vec::new();
        if reports > 0 {
            why.push(format!("{reports} report(s) name it (move them to another product first)"));
        }
        if !advisories.is_empty() {
            why.push(format!("advisories list it as affected: {}", advisories.join(", ")));
        }
        return Err(AppError::Conflict(format!("cannot delete product {}: {}", record.name, why.join("; "))));
    }
    embargo_store::products::delete(&mut tx, product).await?;
    audit::record(&mut tx, app, actor, "product.delete", &format!("product:{product}"), "").await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod people_tests {
    use super::People;

    #[test]
    fn people_are_named_in_actor_texts_and_audit_details() {
        let people = People {
            names: [(1, ("ann@team.test".to_owned(), false)), (2, ("deleted-2@deleted.invalid".to_owned(), true))]
                .into_iter()
                .collect(),
        };
        assert_eq!(people.name("user:1:admin"), "ann@team.test");
        assert_eq!(people.name("user:2:responder"), "deleted account 2");
        assert_eq!(people.name("user:9:responder"), "account 9");
        assert_eq!(people.name("reporter"), "the reporter");
        assert_eq!(people.name("system:intake"), "Embargo (intake)");
        assert_eq!(people.name("cli:root"), "root (command line)");
        assert_eq!(people.in_text("assignee=user:1 from=new"), "assignee=ann@team.test from=new");
        assert_eq!(people.in_text("user=2 by user:1:admin"), "user=deleted account 2 by ann@team.test");
        assert_eq!(people.in_text("messages=3 assignee=nobody"), "messages=3 assignee=nobody");
    }
}
