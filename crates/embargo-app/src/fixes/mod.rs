//! Private fix repositories (policy: "the fix is prepared in a private repository").
//!
//! An accepted report gets one private git repository, in the data directory, seeded from
//! its product's public repository: a fix branch `fix/<line>` per supported release line.
//! The web crate serves it over git's smart HTTP protocol (`git http-backend`) to the team
//! members of the report and to the fix developers invited to it, who sign in with a
//! personal access token as the HTTP password; [`git_repository`] is that access check.
//! Every push to a fix branch queues a private CI run of the product's test command on the
//! pushed commit ([`CiRun`](ci::CiRun), in a sandbox); the backport matrix (affected or not,
//! the version that will carry the fix) feeds the report's affected ranges and so the
//! advisory's OSV, CVE and CSAF outputs; a line whose CI did not pass keeps the report
//! from being ready for disclosure unless a person overrides it with a reason.
//!
//! Leak safety (ADR 19): objects only flow from the public repository into the private one;
//! nothing here writes to a public repository, and no public route serves a fix repository.

mod ci;
mod external;
pub mod git;
mod invite;

use std::path::PathBuf;

use embargo_domain::fix;
use embargo_domain::{Actor, CiState, ReferenceId, ReportId, ReportState};
use embargo_store::Tx;
use embargo_store::fixes::{self as store, FixLine, FixRepository};
use serde::Serialize;

pub use self::ci::CiJob;
pub use self::external::{ExternalCi, callback as external_ci_callback};
pub use self::invite::*;
pub use embargo_store::fixes::{CiRun, FixComment};

use crate::authz::{self, Permission};
use crate::{App, AppError, audit, reports};

fn subject(reference: &ReferenceId) -> String {
    format!("fix:{reference}")
}

/// The directory of a report's fix repository.
pub(crate) fn repository_path(app: &App, report: ReportId) -> PathBuf {
    git::root(app).join(format!("{}.git", report.0))
}

/// The clone URL of a report's fix repository.
pub fn clone_url(app: &App, reference: &ReferenceId) -> String {
    format!("{}/git/{reference}.git", app.config.base_url())
}

/// Refuses a fix permission as "not found", like report permissions: those off the fix do
/// not learn that it exists.
async fn find_for(
    tx: &mut Tx,
    actor: &Actor,
    reference: &ReferenceId,
    permission: Permission,
) -> Result<(embargo_store::reports::ReportRecord, FixRepository), AppError> {
    let not_found = || AppError::NotFound(format!("fix of report {reference}"));
    let report = embargo_store::reports::get_by_reference(tx, reference).await?.ok_or_else(not_found)?;
    match authz::require(tx, actor, permission.on(report.id)).await {
        Err(AppError::Forbidden(_)) => return Err(not_found()),
        other => other?,
    }
    let repository = store::get(tx, report.id).await?.ok_or_else(not_found)?;
    Ok((report, repository))
}

/// What [`open`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    /// The clone URL (`<public_url>/git/<REPORT>.git`).
    pub clone_url: String,
    /// The release lines, each with its fix branch.
    pub lines: Vec<String>,
    /// False when the report already had its repository (nothing was done).
    pub created: bool,
}

/// Opens a report's private fix repository: the report must be accepted (or being fixed)
/// and under a catalogue product with a repository and release lines. Seeds a fix branch
/// per line from the public repository, moves an accepted report to fixing, and returns
/// the clone URL. Opening it again returns the same URL.
pub async fn open(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Opened, AppError> {
    let (report, product) = {
        let mut tx = app.store.snapshot().await?;
        let report = reports::readable(&mut tx, actor, reference).await?;
        authz::require(&mut tx, actor, Permission::ManageFixRepository.on(report.id)).await?;
        if let Some(_existing) = store::get(&mut tx, report.id).await? {
            let lines = store::lines(&mut tx, report.id).await?.into_iter().map(|l| l.line).collect();
            tx.rollback().await?;
            return Ok(Opened { clone_url: clone_url(app, reference), lines, created: false });
        }
        if !matches!(report.state, ReportState::Accepted | ReportState::Fixing) {
            return Err(AppError::Invalid(format!(
                "report {reference} is {}: a fix repository is opened once the report is accepted",
                report.state.code()
            )));
        }
        let product_id = report.product_id.ok_or_else(|| {
            AppError::Invalid(format!(
                "report {reference} is under no product: put it under one (embargo report product {reference} NAME)"
            ))
        })?;
        let product = embargo_store::products::list(&mut tx)
            .await?
            .into_iter()
            .find(|p| p.id == product_id)
            .ok_or_else(|| AppError::NotFound(format!("product {product_id}")))?;
        tx.rollback().await?;
        (report, product)
    };
    if product.repository_url.is_empty() {
        return Err(AppError::Invalid(format!(
            "product {} has no repository: set one (embargo product set {} --repository URL)",
            product.name, product.name
        )));
    }
    if product.release_lines.is_empty() {
        return Err(AppError::Invalid(format!(
            "product {} has no release lines: set them (embargo product set {} --release-lines main,...)",
            product.name, product.name
        )));
    }
    for line in &product.release_lines {
        fix::check_line_name(line).map_err(|e| AppError::Invalid(e.to_string()))?;
    }

    // The repository is built aside and moved into place, so that a crash leaves no
    // half-seeded repository under the final name.
    let root = git::root(app);
    std::fs::create_dir_all(&root).map_err(|e| AppError::Internal(anyhow::anyhow!("cannot create {root:?}: {e}")))?;
    let path = repository_path(app, report.id);
    let building = root.join(format!(".{}.git.{}", report.id.0, crate::tokens::reply()));
    let built = async {
        git::init(app, &building).await?;
        let mut bases = Vec::new();
        for line in &product.release_lines {
            bases.push((line.clone(), git::seed_line(app, &building, &product.repository_url, line).await?));
        }
        let first = fix::fix_ref(&product.release_lines[0]);
        let mut cmd = git::command(app, Some(&building));
        cmd.args(["symbolic-ref", "HEAD", &first]);
        git::run(cmd, "set the default branch").await?;
        Ok::<_, AppError>(bases)
    }
    .await;
    let bases = match built {
        Ok(bases) => bases,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&building);
            return Err(e);
        }
    };

    let now = app.now();
    let mut tx = app.store.begin().await?;
    let report = reports::readable(&mut tx, actor, reference).await?;
    authz::require(&mut tx, actor, Permission::ManageFixRepository.on(report.id)).await?;
    let record = FixRepository {
        report: report.id,
        product_id: product.id,
        source_url: product.repository_url.clone(),
        test_command: product.test_command.clone(),
        created_at: now,
        created_by: actor.to_string(),
    };
    if let Err(e) = store::create(&mut tx, &record).await {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e.into());
    }
    for (line, base) in &bases {
        store::add_line(&mut tx, report.id, line, base, now).await?;
    }
    write_rules(app, &mut tx, &report, &building).await?;
    // A repository left by a crash before its record was committed is not anyone's: replace it.
    if path.exists() {
        std::fs::remove_dir_all(&path)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot replace the stale {path:?}: {e}")))?;
    }
    std::fs::rename(&building, &path).map_err(|e| AppError::Internal(anyhow::anyhow!("cannot move {path:?}: {e}")))?;
    let details = format!("product={} lines={}", product.id, product.release_lines.join(","));
    audit::record(&mut tx, app, actor, "fix.open", &subject(reference), &details).await?;
    if report.state == ReportState::Accepted {
        reports::change_state_in(&mut tx, app, actor, reference, ReportState::Fixing, reports::Notice::None).await?;
    }
    if let Err(e) = tx.commit().await {
        let _ = std::fs::remove_dir_all(&path);
        return Err(e.into());
    }
    Ok(Opened { clone_url: clone_url(app, reference), lines: product.release_lines.clone(), created: true })
}

/// Writes the pre-receive hook's rules for a report's repository at `path`: the fix
/// branches, and what commit messages must not name before the lift (the report's
/// reference, its advisories' IDs and CVE IDs, any CVE ID, "security").
async fn write_rules(
    app: &App,
    tx: &mut Tx,
    report: &embargo_store::reports::ReportRecord,
    path: &std::path::Path,
) -> Result<(), AppError> {
    let refs: Vec<String> = store::lines(tx, report.id).await?.iter().map(|l| fix::fix_ref(&l.line)).collect();
    let mut words = vec![regex_escape(&report.reference.to_string())];
    for id in embargo_store::advisories::for_report(tx, report.id).await? {
        for row in embargo_store::advisories::list(tx, None).await?.into_iter().filter(|r| r.id == id) {
            words.push(regex_escape(&row.advisory_id));
        }
    }
    words.extend(["CVE-[0-9]{4}-[0-9]+".to_owned(), "security".to_owned(), "vulnerab".to_owned()]);
    git::write_rules(path, &refs, &words, &app.config.fixes.commit_message_check)
}

/// Escapes a value for an extended regular expression (as grep -E reads it).
fn regex_escape(value: &str) -> String {
    value.chars().fold(String::new(), |mut out, c| {
        if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// Who may use a fix repository over git: the directory to serve, for an actor who may use
/// the report's fix; "not found" for anyone else and for reports without one (the web layer
/// answers both alike). Before a push, the hook's rules are brought up to date.
pub async fn git_repository(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    push: bool,
) -> Result<PathBuf, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let path = repository_path(app, report.id);
    if push {
        write_rules(app, &mut tx, &report, &path).await?;
    }
    tx.rollback().await?;
    if !path.is_dir() {
        return Err(AppError::NotFound(format!("fix of report {reference}")));
    }
    Ok(path)
}

/// After a push: records each fix branch's new head and queues a CI run of it. Returns the
/// runs queued. Safe to call at any time (a head already recorded queues nothing).
pub async fn after_push(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<i64>, AppError> {
    let path = {
        let mut tx = app.store.snapshot().await?;
        let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
        tx.rollback().await?;
        repository_path(app, report.id)
    };
    let heads = git::heads(app, &path).await?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (report, repository) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let mut queued = Vec::new();
    let mut webhooks = Vec::new();
    for line in store::lines(&mut tx, report.id).await? {
        let Some(head) = heads.get(&fix::fix_ref(&line.line)) else { continue };
        if !store::set_head(&mut tx, report.id, &line.line, head, now).await? {
            continue;
        }
        audit::record(&mut tx, app, actor, "fix.push", &subject(reference), &format!("line={} head={head}", line.line))
            .await?;
        if repository.test_command.trim().is_empty() {
            continue;
        }
        if let Some(run) = store::add_run(&mut tx, report.id, &line.line, head, now).await? {
            if external::configured(app) {
                let record = store::run(&mut tx, run).await?.ok_or_else(|| AppError::NotFound(format!("run {run}")))?;
                webhooks.push(external::request_in(&mut tx, app, actor, &record, &reference.to_string()).await?);
            } else {
                crate::jobs::enqueue(&mut tx, app, &CiJob { run }).await?;
            }
            queued.push(run);
        }
    }
    tx.commit().await?;
    for intent in webhooks {
        external::send_soon(app, intent);
    }
    Ok(queued)
}

/// Records every fix's heads that the store does not know yet (and queues their CI), as
/// Embargo itself: for pushes git applied but whose recording was interrupted.
pub(crate) async fn catch_up(app: &App) -> Result<(), AppError> {
    let reports = {
        let mut tx = app.store.snapshot().await?;
        let mut references = Vec::new();
        for report in store::all(&mut tx).await? {
            if let Some(record) = embargo_store::reports::get(&mut tx, report).await? {
                references.push(record.reference);
            }
        }
        tx.rollback().await?;
        references
    };
    let system = Actor::System("fixes");
    for reference in reports {
        if let Err(e) = after_push(app, &system, &reference).await {
            tracing::warn!(error = %e, "catching up with a fix repository failed");
        }
    }
    Ok(())
}

/// One release line of a fix, as `fix status` and the pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct LineStatus {
    /// The public branch that carries the line.
    pub line: String,
    /// Its fix branch in the private repository.
    pub branch: String,
    /// The public commit the fix branch started from.
    pub base: String,
    /// The fix branch's head.
    pub head: String,
    /// CI on the head: pending (queued, or nothing ran yet), running, passed, failed,
    /// timed-out.
    pub ci: String,
    /// The CI run on the head, if any.
    pub run: Option<i64>,
    /// Whether the line is affected.
    pub affected: bool,
    /// Its first affected version ('' when unknown).
    pub introduced: String,
    /// The version that will carry the fix ('' until decided).
    pub fixed_version: String,
    /// Why a person let the line through although its CI did not pass.
    pub ci_override: Option<String>,
    /// Commits on the fix branch that are not on the public line.
    pub changed: bool,
}

/// A fix at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct FixStatus {
    /// The report.
    pub report: String,
    /// The clone URL.
    pub clone_url: String,
    /// The catalogue product.
    pub product: String,
    /// The test command private CI runs ('' for none).
    pub test_command: String,
    /// The backport matrix.
    pub lines: Vec<LineStatus>,
    /// What keeps the fix from being ready for disclosure (empty: nothing).
    pub blockers: Vec<String>,
}

async fn status_in(
    tx: &mut Tx,
    app: &App,
    report: &embargo_store::reports::ReportRecord,
    repository: &FixRepository,
) -> Result<FixStatus, AppError> {
    let lines = store::lines(tx, report.id).await?;
    let runs = store::runs(tx, report.id).await?;
    let product = embargo_store::products::list(tx)
        .await?
        .into_iter()
        .find(|p| p.id == repository.product_id)
        .map_or_else(String::new, |p| p.name);
    let statuses: Vec<LineStatus> = lines.iter().map(|line| line_status(line, &runs)).collect();
    let blockers = store::blockers_of(&lines, &runs).into_iter().map(|b| b.to_string()).collect();
    Ok(FixStatus {
        report: report.reference.to_string(),
        clone_url: clone_url(app, &report.reference),
        product,
        test_command: repository.test_command.clone(),
        lines: statuses,
        blockers,
    })
}

fn line_status(line: &FixLine, runs: &[CiRun]) -> LineStatus {
    let run = store::run_on_head(line, runs);
    LineStatus {
        line: line.line.clone(),
        branch: fix::fix_branch(&line.line),
        base: line.base.clone(),
        head: line.head.clone(),
        ci: run.map_or(CiState::Pending, |r| r.state).code().to_owned(),
        run: run.map(|r| r.id),
        affected: line.affected,
        introduced: line.introduced.clone(),
        fixed_version: line.fixed_version.clone(),
        ci_override: line.ci_override.clone(),
        changed: line.head != line.base,
    }
}

/// A fix's status: the backport matrix with CI on each line's head.
pub async fn status(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<FixStatus, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (report, repository) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let status = status_in(&mut tx, app, &report, &repository).await?;
    tx.rollback().await?;
    Ok(status)
}

/// A change to one row of the backport matrix.
#[derive(Debug, Clone, Default)]
pub struct MatrixChange {
    /// Whether the line is affected.
    pub affected: Option<bool>,
    /// Its first affected version.
    pub introduced: Option<String>,
    /// The version that will carry the fix.
    pub fixed_version: Option<String>,
}

/// Changes a row of the backport matrix, and feeds the matrix into the report's affected
/// versions (and so into its draft advisories' OSV, CVE and CSAF outputs): one range per
/// affected line, from its first affected version to the version that carries the fix.
pub async fn set_line(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    line: &str,
    change: &MatrixChange,
) -> Result<LineStatus, AppError> {
    let check = |value: &Option<String>, what: &str| -> Result<Option<String>, AppError> {
        value
            .as_deref()
            .map(|v| {
                let v = v.trim();
                if v.len() > 100 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err(AppError::Invalid(format!("the {what} is a version such as 1.4.2 (no spaces)")))
                } else {
                    Ok(v.to_owned())
                }
            })
            .transpose()
    };
    let introduced = check(&change.introduced, "first affected version")?;
    let fixed = check(&change.fixed_version, "fixed version")?;
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let (report, repository) = find_for(&mut tx, actor, reference, Permission::ManageFixRepository).await?;
    let current = store::lines(&mut tx, report.id)
        .await?
        .into_iter()
        .find(|l| l.line == line)
        .ok_or_else(|| AppError::NotFound(format!("release line {line} of the fix of {reference}")))?;
    let affected = change.affected.unwrap_or(current.affected);
    let introduced = introduced.unwrap_or(current.introduced);
    let fixed = fixed.unwrap_or(current.fixed_version);
    store::set_matrix(&mut tx, report.id, line, affected, &introduced, &fixed, now).await?;
    let lines = store::lines(&mut tx, report.id).await?;
    crate::assessment::set_affected_from_fix(&mut tx, &report, repository.product_id, &lines).await?;
    crate::advisories::refresh_affected_in(&mut tx, app, report.id, repository.product_id).await?;
    audit::record(
        &mut tx,
        app,
        actor,
        "fix.matrix",
        &subject(reference),
        &format!("line={line} affected={affected} introduced={introduced} fixed={fixed}"),
    )
    .await?;
    let runs = store::runs(&mut tx, report.id).await?;
    let status = lines.iter().find(|l| l.line == line).map(|l| line_status(l, &runs));
    tx.commit().await?;
    status.ok_or_else(|| AppError::NotFound(format!("release line {line}")))
}

/// Lets a line through although its CI did not pass (a person's decision, with a reason,
/// audited); an empty reason takes the override back. A new push clears it.
pub async fn override_ci(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    line: &str,
    reason: &str,
) -> Result<(), AppError> {
    let reason = reason.trim();
    if reason.len() > 2000 {
        return Err(AppError::Invalid("the reason has at most 2000 bytes".into()));
    }
    let mut tx = app.store.begin().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::ManageFixRepository).await?;
    let reason = Some(reason).filter(|r| !r.is_empty());
    if !store::set_override(&mut tx, report.id, line, reason, app.now()).await? {
        return Err(AppError::NotFound(format!("release line {line} of the fix of {reference}")));
    }
    let details = match reason {
        Some(reason) => format!("line={line} override=set reason={}", reason.replace(['\n', '\r'], " ")),
        None => format!("line={line} override=cleared"),
    };
    audit::record(&mut tx, app, actor, "fix.ci_override", &subject(reference), &details).await?;
    tx.commit().await?;
    Ok(())
}

/// A CI run with its log so far.
#[derive(Debug, Clone)]
pub struct RunLog {
    /// The run.
    pub run: CiRun,
    /// What the command wrote (stdout and stderr), as written.
    pub log: Vec<u8>,
}

/// A CI run of a fix, with its log.
pub async fn run_log(app: &App, actor: &Actor, reference: &ReferenceId, run: i64) -> Result<RunLog, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let run = store::run(&mut tx, run)
        .await?
        .filter(|r| r.report == report.id)
        .ok_or_else(|| AppError::NotFound(format!("CI run {run}")))?;
    let log = store::log(&mut tx, run.id).await?;
    tx.rollback().await?;
    Ok(RunLog { run, log })
}

/// A fix's CI runs, newest first.
pub async fn runs(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<CiRun>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let runs = store::runs(&mut tx, report.id).await?;
    tx.rollback().await?;
    Ok(runs)
}

/// The patch series of a line (`git format-patch` from the public base to the fix branch's
/// head), byte for byte what will be merged at disclosure; the partner notice attaches it.
pub async fn patches(app: &App, actor: &Actor, reference: &ReferenceId, line: &str) -> Result<Vec<u8>, AppError> {
    let (path, fix_line) = {
        let mut tx = app.store.snapshot().await?;
        let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
        let fix_line = store::lines(&mut tx, report.id)
            .await?
            .into_iter()
            .find(|l| l.line == line)
            .ok_or_else(|| AppError::NotFound(format!("release line {line} of the fix of {reference}")))?;
        tx.rollback().await?;
        (repository_path(app, report.id), fix_line)
    };
    git::format_patch(app, &path, &fix_line.base, &fix_line.head).await
}

/// The fixes an actor may work on (for a fix developer's start page).
pub async fn mine(app: &App, actor: &Actor) -> Result<Vec<FixStatus>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let mut out = Vec::new();
    for report_id in store::all(&mut tx).await? {
        if authz::require(&mut tx, actor, Permission::UseFixRepository.on(report_id)).await.is_err() {
            continue;
        }
        let (Some(report), Some(repository)) =
            (embargo_store::reports::get(&mut tx, report_id).await?, store::get(&mut tx, report_id).await?)
        else {
            continue;
        };
        out.push(status_in(&mut tx, app, &report, &repository).await?);
    }
    tx.rollback().await?;
    Ok(out)
}

/// Adds to a fix's discussion (the team of the report and its fix developers read it; the
/// report's own thread stays theirs alone).
pub async fn comment(app: &App, actor: &Actor, reference: &ReferenceId, body: &str) -> Result<i64, AppError> {
    if body.trim().is_empty() {
        return Err(AppError::Invalid("write something".into()));
    }
    if body.len() > 100_000 {
        return Err(AppError::Invalid("a comment has at most 100,000 bytes".into()));
    }
    let mut tx = app.store.begin().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let author = match actor {
        Actor::User { id, .. } => {
            embargo_store::users::get(&mut tx, *id).await?.map_or_else(|| actor.to_string(), |u| u.email)
        }
        other => other.to_string(),
    };
    let id = store::add_comment(&mut tx, report.id, &author, body, app.now()).await?;
    audit::record(&mut tx, app, actor, "fix.comment", &subject(reference), &format!("comment={id}")).await?;
    tx.commit().await?;
    Ok(id)
}

/// A fix's discussion, oldest first.
pub async fn comments(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<FixComment>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let (report, _) = find_for(&mut tx, actor, reference, Permission::UseFixRepository).await?;
    let comments = store::comments(&mut tx, report.id).await?;
    tx.rollback().await?;
    Ok(comments)
}
