//! Merge and push: the fix commits fast-forwarded onto the public branches with their
//! release tags, in one atomic push with leases (ADR 26).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use embargo_domain::{ReferenceId, fix};
use embargo_store::fixes as fix_store;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use super::ReleaseError;
use crate::fixes::git;
use crate::{App, AppError};

/// The longest `git ls-remote` of the public repository may take.
const LS_REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest the push may take (then git is killed and the push is reconciled).
const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What one release line publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePush {
    /// The release line (the public branch's name).
    pub line: String,
    /// The public branch (`refs/heads/<line>`).
    pub branch: String,
    /// The public head the push expects (the fix branch's base): the lease.
    pub old: String,
    /// The commit the public branch is fast-forwarded to (the fix branch's head).
    pub commit: String,
    /// The commits that become public, oldest first (`old..commit`).
    pub commits: Vec<String>,
    /// The version that carries the fix (the backport matrix's fixed version).
    pub version: String,
    /// The release tag's name (`v1.2.3`).
    pub tag: String,
    /// The release tag's reference (`refs/tags/v1.2.3`).
    pub tag_ref: String,
    /// The annotated tag object (built in the private repository; the same bytes each time
    /// the plan is made from the same fix).
    pub tag_object: String,
}

/// What the merge-and-push step will do, made by [`prepare`]. Serialises (its JSON is
/// [`PushPlan::content_bytes`], what an approval hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPlan {
    /// The report whose fix is released (reference).
    pub report: String,
    /// The catalogue product.
    pub product: String,
    /// The public repository (the product's repository URL or path).
    pub remote: String,
    /// One entry per affected release line with fix commits, in the backport matrix's order (by name).
    pub lines: Vec<LinePush>,
}

impl PushPlan {
    /// The bytes an approval hashes: the plan's JSON (fields in a fixed order).
    #[must_use]
    pub fn content_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a plan serialises")
    }

    /// The intent destination of the push (ADR 14): the public repository, so that one push
    /// to it is in flight at a time.
    #[must_use]
    pub fn destination(&self) -> String {
        format!("git-push:{}", self.remote)
    }

    /// The intent destination of the release build of these tags.
    #[must_use]
    pub fn build_destination(&self) -> String {
        let tags: Vec<&str> = self.lines.iter().map(|l| l.tag.as_str()).collect();
        format!("release-build:{}:{}", self.product, tags.join(","))
    }

    /// Every reference the push writes, with the value it expects there now (`None`: must
    /// not exist) and the value it writes.
    fn updates(&self) -> Vec<(&str, Option<&str>, &str)> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.push((line.branch.as_str(), Some(line.old.as_str()), line.commit.as_str()));
        }
        for line in &self.lines {
            out.push((line.tag_ref.as_str(), None, line.tag_object.as_str()));
        }
        out
    }
}

/// What the public repository says about a plan ([`reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PushState {
    /// Every branch is still at its expected head and no tag exists: push.
    NotPushed,
    /// Every branch is at its fix head and every tag is the plan's: done (a lost answer).
    Pushed,
    /// Anything else: someone else changed `reference` (found at `found`, `None` when absent).
    /// Stop and ask a person.
    Moved {
        /// The reference that is neither as expected nor as pushed.
        reference: String,
        /// What it points at now.
        found: Option<String>,
    },
}

/// How the partners' patches compare with the push ([`verify_identical`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identical {
    /// The newest notice sent to partners whose patches were compared; `None` when no notice
    /// with patches was sent (nothing to compare).
    pub notice: Option<i64>,
    /// The release lines whose series matched byte for byte.
    pub lines: Vec<String>,
}

struct Fix {
    report: embargo_store::reports::ReportRecord,
    product: embargo_store::products::ProductRecord,
    lines: Vec<fix_store::FixLine>,
    path: PathBuf,
}

async fn load(app: &App, reference: &ReferenceId) -> Result<Fix, AppError> {
    let mut tx = app.store.snapshot().await?;
    let not_found = || AppError::NotFound(format!("fix of report {reference}"));
    let report = embargo_store::reports::get_by_reference(&mut tx, reference).await?.ok_or_else(not_found)?;
    let repository = fix_store::get(&mut tx, report.id).await?.ok_or_else(not_found)?;
    let lines = fix_store::lines(&mut tx, report.id).await?;
    let product = embargo_store::products::list(&mut tx)
        .await?
        .into_iter()
        .find(|p| p.id == repository.product_id)
        .ok_or_else(|| AppError::NotFound(format!("product {}", repository.product_id)))?;
    tx.rollback().await?;
    let path = crate::fixes::repository_path(app, report.id);
    if !path.is_dir() {
        return Err(not_found());
    }
    Ok(Fix { report, product, lines, path })
}

/// Reads a public repository's references (`git ls-remote`): each name with the object it
/// points at; for annotated tags, the tag object (not the peeled commit).
async fn ls_remote(app: &App, remote: &str, refs: &[&str]) -> Result<BTreeMap<String, String>, ReleaseError> {
    let mut cmd = git::command(app, None);
    cmd.args(["ls-remote", "--refs", "--"]).arg(remote).args(refs);
    let read = tokio::time::timeout(LS_REMOTE_TIMEOUT, git::run(cmd, "read the public repository's branches and tags"));
    let out = read
        .await
        .map_err(|_| ReleaseError::Temporary("the public repository did not answer git ls-remote in time".into()))?
        .map_err(|e| ReleaseError::Temporary(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (name.to_owned(), sha.to_owned()))
        .filter(|(name, _)| refs.contains(&name.as_str()))
        .collect())
}

async fn git_text(app: &App, path: &Path, args: &[&str], what: &str) -> Result<String, AppError> {
    let mut cmd = git::command(app, Some(path));
    cmd.args(args);
    Ok(String::from_utf8_lossy(&git::run(cmd, what).await?).trim().to_owned())
}

async fn is_ancestor(app: &App, path: &Path, old: &str, new: &str) -> Result<bool, AppError> {
    let mut cmd = git::command(app, Some(path));
    cmd.args(["merge-base", "--is-ancestor", old, new]).stdout(Stdio::null()).stderr(Stdio::null());
    let status = cmd.status().await.map_err(|e| AppError::Unavailable(format!("cannot run git: {e}")))?;
    Ok(status.success())
}

/// Builds the release tag object in the private repository, deterministically: the same
/// commit, tag name and product give the same bytes (the tagger is the organisation, at the
/// commit's own committer time), so a plan made again names the same object.
async fn make_tag(app: &App, fix: &Fix, commit: &str, tag: &str, version: &str) -> Result<String, AppError> {
    let time = git_text(app, &fix.path, &["show", "-s", "--format=%ct", commit], "read the commit's time").await?;
    let clean =
        |s: &str| s.chars().filter(|c| !matches!(c, '<' | '>' | '\n' | '\r') && !c.is_control()).collect::<String>();
    let name = Some(clean(app.config.organisation.name.trim())).filter(|n| !n.is_empty()).unwrap_or("Embargo".into());
    let address = clean(&app.config.organisation.security_address);
    let content = format!(
        "object {commit}\ntype commit\ntag {tag}\ntagger {name} <{address}> {time} +0000\n\n{} {version}\n",
        clean(&fix.product.name)
    );
    let mut cmd = git::command(app, Some(&fix.path));
    cmd.arg("mktag").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| AppError::Unavailable(format!("cannot run git mktag: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(content.as_bytes()).await.map_err(|e| AppError::Unavailable(format!("git mktag: {e}")))?;
    }
    let out = child.wait_with_output().await.map_err(|e| AppError::Unavailable(format!("git mktag: {e}")))?;
    if !out.status.success() {
        return Err(AppError::Internal(anyhow::anyhow!(
            "git could not make the tag {tag}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let object = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // Kept under its name in the private repository, so that the push sends it from there.
    let mut cmd = git::command(app, Some(&fix.path));
    cmd.args(["update-ref", &format!("refs/tags/{tag}"), &object]);
    git::run(cmd, "keep the release tag").await?;
    Ok(object)
}

/// Makes the push plan of a report's fix: for every affected release line with fix
/// commits, the public branch, its expected head (the fix branch's base), the fix head, the
/// commits and the release tag (from the line's fixed version and the product's tag format).
///
/// Refused with [`AppError::Conflict`] when a public head moved since the fix was based on
/// it (the fix must be rebased and CI run again: partners would otherwise get different
/// bytes), when a fix branch no longer descends from its base, or when a release tag exists
/// publicly and is not this plan's; [`AppError::Invalid`] when an affected line has no fixed
/// version or nothing is to be pushed; [`AppError::Unavailable`] when the public repository
/// cannot be read. A line whose public head already is its fix head (pushed before) plans
/// the same push, so [`reconcile`] says [`PushState::Pushed`].
///
/// `Ok(None)` when there is nothing to push: the report has no fix repository, or no affected
/// line has fix commits. [`AppError::NotFound`] when the report does not exist.
pub async fn prepare(app: &App, report: &ReferenceId) -> Result<Option<PushPlan>, AppError> {
    {
        let mut tx = app.store.snapshot().await?;
        let record = embargo_store::reports::get_by_reference(&mut tx, report)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("report {report}")))?;
        let has_fix = fix_store::get(&mut tx, record.id).await?.is_some();
        let changed = fix_store::lines(&mut tx, record.id).await?.iter().any(|l| l.affected && l.head != l.base);
        tx.rollback().await?;
        if !has_fix || !changed {
            return Ok(None);
        }
    }
    let fix = load(app, report).await?;
    if fix.product.repository_url.is_empty() {
        return Err(AppError::Invalid(format!("product {} has no repository to push to", fix.product.name)));
    }
    let heads = git::heads(app, &fix.path).await?;
    let format = super::tag_format(&fix.product).to_owned();
    let mut lines = Vec::new();
    for line in fix.lines.iter().filter(|l| l.affected) {
        let fix_ref = fix::fix_ref(&line.line);
        let head = heads.get(&fix_ref).cloned().unwrap_or_default();
        if head != line.head {
            return Err(AppError::Conflict(format!(
                "{} was pushed to since Embargo recorded it: wait for its CI, then plan again",
                fix::fix_branch(&line.line)
            )));
        }
        if line.head == line.base {
            continue;
        }
        if line.fixed_version.is_empty() {
            return Err(AppError::Invalid(format!(
                "release line {} has no fixed version: set it in the backport matrix (its release tag is named after it)",
                line.line
            )));
        }
        if !is_ancestor(app, &fix.path, &line.base, &line.head).await? {
            return Err(AppError::Conflict(format!(
                "{} no longer descends from its base {}: it cannot be fast-forwarded onto the public branch; \
                 rebase it onto {} and let CI run again",
                fix::fix_branch(&line.line),
                line.base,
                line.line
            )));
        }
        let tag = super::tag_name(&format, &line.fixed_version)?;
        let commits: Vec<String> = git_text(
            app,
            &fix.path,
            &["rev-list", "--reverse", &format!("{}..{}", line.base, line.head)],
            "list the fix commits",
        )
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
        let tag_object = make_tag(app, &fix, &line.head, &tag, &line.fixed_version).await?;
        lines.push(LinePush {
            line: line.line.clone(),
            branch: format!("refs/heads/{}", line.line),
            old: line.base.clone(),
            commit: line.head.clone(),
            commits,
            version: line.fixed_version.clone(),
            tag_ref: format!("refs/tags/{tag}"),
            tag,
            tag_object,
        });
    }
    if lines.is_empty() {
        return Ok(None);
    }
    if let Some(dup) = lines.iter().enumerate().find(|(i, l)| lines[..*i].iter().any(|o| o.tag == l.tag)) {
        return Err(AppError::Invalid(format!(
            "two release lines would both be tagged {}: give each its own fixed version",
            dup.1.tag
        )));
    }
    let plan = PushPlan {
        report: fix.report.reference.to_string(),
        product: fix.product.name.clone(),
        remote: fix.product.repository_url.clone(),
        lines,
    };
    let refs: Vec<&str> = plan.updates().into_iter().map(|(r, _, _)| r).collect();
    let public = ls_remote(app, &plan.remote, &refs).await.map_err(AppError::from)?;
    for line in &plan.lines {
        let found = public.get(&line.branch);
        if found != Some(&line.old) && found != Some(&line.commit) {
            return Err(AppError::Conflict(match found {
                Some(found) => format!(
                    "the public branch {} moved since the fix was based on it (expected {}, found {found}): rebase {} \
                     onto it and let CI run again; partners would otherwise get different bytes",
                    line.line,
                    line.old,
                    fix::fix_branch(&line.line)
                ),
                None => format!("the public repository has no branch {}", line.line),
            }));
        }
        if let Some(found) = public.get(&line.tag_ref)
            && found != &line.tag_object
        {
            return Err(AppError::Conflict(format!(
                "the tag {} already exists in the public repository (at {found}), and it is not this release's",
                line.tag
            )));
        }
    }
    Ok(Some(plan))
}

/// The newest notice sent to partners that carries patches.
async fn sent_patches(
    app: &App,
    report: &ReferenceId,
) -> Result<Option<(i64, Vec<embargo_store::partners::NoticePatch>)>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let record = embargo_store::reports::get_by_reference(&mut tx, report)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("report {report}")))?;
    let notices = embargo_store::partners::notices(&mut tx, record.id).await?;
    let mut found = None;
    for notice in notices.iter().filter(|n| n.state == "sent" && matches!(n.kind.as_str(), "pre-notice" | "revision")) {
        let patches = embargo_store::partners::patches(&mut tx, notice.id).await?;
        if !patches.is_empty() {
            found = Some((notice.id, patches));
            break;
        }
    }
    tx.rollback().await?;
    Ok(found)
}

/// Checks that what the plan publishes is byte for byte what partners received: for every
/// line, `git format-patch` of `old..commit` equals the series frozen into the newest notice
/// sent to partners, and the notice holds no series for a line that will not be pushed.
/// [`AppError::Conflict`] names each line that differs; `Ok` with `notice: None` when no
/// notice with patches was sent.
pub async fn verify_identical(app: &App, plan: &PushPlan) -> Result<Identical, AppError> {
    let reference: ReferenceId =
        plan.report.parse().map_err(|_| AppError::Invalid(format!("report {:?}", plan.report)))?;
    let Some((notice, patches)) = sent_patches(app, &reference).await? else {
        return Ok(Identical { notice: None, lines: Vec::new() });
    };
    let fix = load(app, &reference).await?;
    let mut differ = Vec::new();
    let mut same = Vec::new();
    for line in &plan.lines {
        let series = git::format_patch(app, &fix.path, &line.old, &line.commit).await?;
        match patches.iter().find(|p| p.line == line.line) {
            Some(sent) if sent.patch == series => same.push(line.line.clone()),
            Some(_) => differ.push(format!(
                "{}: the commits to push differ from the patches partners received in notice {notice}",
                line.line
            )),
            None => differ.push(format!("{}: partners received no patch for this line in notice {notice}", line.line)),
        }
    }
    for sent in patches.iter().filter(|p| !plan.lines.iter().any(|l| l.line == p.line)) {
        differ.push(format!("{}: partners received a patch in notice {notice} that this push leaves out", sent.line));
    }
    if differ.is_empty() {
        Ok(Identical { notice: Some(notice), lines: same })
    } else {
        Err(AppError::Conflict(format!(
            "the push is not what partners received: {}; send partners a revised notice, or plan again",
            differ.join("; ")
        )))
    }
}

/// Reads the public repository (`git ls-remote`, branches and tags) to tell whether the plan
/// was pushed: call it before every attempt, and after one whose answer was lost.
/// [`ReleaseError::Temporary`] when the repository cannot be read.
pub async fn reconcile(app: &App, plan: &PushPlan) -> Result<PushState, ReleaseError> {
    let updates = plan.updates();
    let refs: Vec<&str> = updates.iter().map(|(r, _, _)| *r).collect();
    let public = ls_remote(app, &plan.remote, &refs).await?;
    let pushed = updates.iter().all(|(r, _, new)| public.get(*r).map(String::as_str) == Some(*new));
    if pushed {
        return Ok(PushState::Pushed);
    }
    for (reference, old, _) in &updates {
        let found = public.get(*reference);
        if found.map(String::as_str) != *old {
            return Ok(PushState::Moved { reference: (*reference).to_owned(), found: found.cloned() });
        }
    }
    Ok(PushState::NotPushed)
}

/// Pushes the plan: one `git push --atomic` from the private repository to the public one,
/// with `--force-with-lease=<branch>:<old>` on every branch and a lease that every tag does
/// not exist yet, so either every branch and tag is written or none is.
///
/// [`ReleaseError::Permanent`] when a lease or the public repository refused (a head or tag
/// moved since the plan: nothing was pushed; stop and ask a person);
/// [`ReleaseError::Temporary`] when the repository could not be reached or a reference was
/// locked (reconcile, then try again).
pub async fn push(app: &App, plan: &PushPlan) -> Result<(), ReleaseError> {
    let reference: ReferenceId =
        plan.report.parse().map_err(|_| ReleaseError::Permanent(format!("report {:?}", plan.report)))?;
    let fix = load(app, &reference).await?;
    let mut cmd = git::command(app, Some(&fix.path));
    cmd.args(["push", "--atomic", "--porcelain", "--no-verify"]);
    for (reference, old, _) in plan.updates() {
        cmd.arg(format!("--force-with-lease={reference}:{}", old.unwrap_or("")));
    }
    cmd.arg("--").arg(&plan.remote);
    for (reference, _, new) in plan.updates() {
        cmd.arg(format!("{new}:{reference}"));
    }
    // At the limit git is killed (kill_on_drop): whether the push took is for reconcile to say.
    let out = tokio::time::timeout(PUSH_TIMEOUT, cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output())
        .await
        .map_err(|_| {
            ReleaseError::Temporary(format!(
                "git push did not finish within {} s: reconcile before trying again",
                PUSH_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| ReleaseError::Temporary(format!("cannot run git push: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(classify(&stdout, &stderr))
}

/// The dry run of the push: copies the public repository into `scratch` (a new bare
/// repository, `git clone --mirror`: objects flow from the public repository, never to it),
/// pushes the plan there exactly as [`push()`] would, and checks with [`reconcile`] that it
/// took. Returns the plan as rehearsed (its `remote` is the scratch copy), so the team can
/// look at the result (`git log`, `git show <tag>`). The public repository is untouched.
pub async fn rehearse(app: &App, plan: &PushPlan, scratch: &Path) -> Result<PushPlan, ReleaseError> {
    let mut cmd = git::command(app, None);
    cmd.args(["clone", "--quiet", "--mirror", "--"]).arg(&plan.remote).arg(scratch);
    git::run(cmd, "copy the public repository for the rehearsal").await.map_err(|e| match e {
        AppError::Unavailable(m) => ReleaseError::Temporary(m),
        other => ReleaseError::Permanent(other.to_string()),
    })?;
    let rehearsed = PushPlan { remote: scratch.display().to_string(), ..plan.clone() };
    push(app, &rehearsed).await?;
    match reconcile(app, &rehearsed).await? {
        PushState::Pushed => Ok(rehearsed),
        other => Err(ReleaseError::Permanent(format!("the rehearsal's push did not take: {other:?}"))),
    }
}

/// Reads `git push --porcelain`'s answer for a failed push.
fn classify(stdout: &str, stderr: &str) -> ReleaseError {
    let rejected: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with('!')).filter(|l| !l.contains("atomic push failed")).collect();
    let short = |s: &str| s.trim().chars().take(2000).collect::<String>();
    if stderr.contains("does not support --atomic") {
        return ReleaseError::Permanent(
            "the public repository's server does not support atomic pushes: Embargo pushes branches and tags \
             all or nothing, so it does not push there"
                .into(),
        );
    }
    if rejected.is_empty() {
        // Refused before any reference was considered: the remote was not reached.
        return ReleaseError::Temporary(format!("git push did not reach the public repository: {}", short(stderr)));
    }
    let text = rejected.join("; ");
    let locked = ["failed to lock", "cannot lock", "unable to lock", "lock", "temporar", "timeout"];
    if rejected.iter().all(|l| l.contains("[remote rejected]") && locked.iter().any(|w| l.contains(w))) {
        return ReleaseError::Temporary(format!("the public repository could not take the push now: {}", short(&text)));
    }
    if rejected.iter().any(|l| l.contains("stale info") || l.contains("fetch first") || l.contains("non-fast-forward"))
    {
        return ReleaseError::Permanent(format!(
            "the lease was refused: a public head moved since the plan was made, nothing was pushed ({}); \
             rebase the fix, let CI run again and approve a new plan",
            short(&text)
        ));
    }
    ReleaseError::Permanent(format!("the public repository refused the push, nothing was pushed: {}", short(&text)))
}

/// What would stop the push now, in words people read: a public head or tag moved since the
/// plan (with whether the fix still merges cleanly onto it), a fix branch moved, a line's
/// fixed version changed, CI not green (the fixes' readiness blockers), the commits not
/// what partners received, the public repository unreachable. Empty: nothing. When the plan
/// was already pushed, only what concerns the private side is checked.
pub async fn preflight(app: &App, plan: &PushPlan) -> Vec<String> {
    let mut problems = Vec::new();
    let reference: ReferenceId = match plan.report.parse() {
        Ok(r) => r,
        Err(_) => return vec![format!("report {:?} is not a reference", plan.report)],
    };
    let fix = match load(app, &reference).await {
        Ok(fix) => fix,
        Err(e) => return vec![format!("the fix of {reference}: {e}")],
    };
    // The private side: the fix heads and the matrix as the plan has them.
    match git::heads(app, &fix.path).await {
        Ok(heads) => {
            for line in &plan.lines {
                let head = heads.get(&fix::fix_ref(&line.line));
                if head != Some(&line.commit) {
                    problems.push(format!(
                        "{} moved since the plan was made (planned {}, now {}): make and approve the plan again",
                        fix::fix_branch(&line.line),
                        line.commit,
                        head.map_or("nothing", String::as_str)
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("cannot read the fix repository: {e}")),
    }
    for unfixed in fix.lines.iter().filter(|l| l.affected && l.head == l.base) {
        problems.push(format!(
            "release line {} is affected and its fix branch has no commits: it gets no fix at the disclosure",
            unfixed.line
        ));
    }
    for line in &plan.lines {
        match fix.lines.iter().find(|l| l.line == line.line) {
            Some(now) if now.fixed_version != line.version => problems.push(format!(
                "the fixed version of {} changed since the plan was made ({} then, {} now): make the plan again",
                line.line, line.version, now.fixed_version
            )),
            Some(_) => {}
            None => problems.push(format!("release line {} is no longer in the fix", line.line)),
        }
    }
    match blockers(app, &fix).await {
        Ok(found) => problems.extend(found.into_iter().map(|b| format!("CI is not green: {b}"))),
        Err(e) => problems.push(format!("cannot read the CI state: {e}")),
    }
    if let Err(e) = verify_identical(app, plan).await {
        problems.push(e.to_string());
    }
    // The public side.
    match reconcile(app, plan).await {
        Ok(PushState::NotPushed | PushState::Pushed) => {}
        Ok(PushState::Moved { reference, found }) => {
            let line = plan.lines.iter().find(|l| l.branch == reference);
            match (line, &found) {
                (Some(line), Some(found)) => {
                    let merges = merges_cleanly(app, &fix.path, &plan.remote, line, found).await;
                    problems.push(format!(
                        "the public branch {} moved since the plan was made (expected {}, found {found}){}: rebase {} \
                         onto it, let CI run again and approve a new plan",
                        line.line,
                        line.old,
                        match merges {
                            Some(true) => "; the fix still merges cleanly onto it",
                            Some(false) => "; the fix no longer merges cleanly onto it",
                            None => "",
                        },
                        fix::fix_branch(&line.line)
                    ));
                }
                _ => problems.push(format!(
                    "{reference} in the public repository is {} and this plan expects otherwise",
                    found.as_deref().unwrap_or("absent")
                )),
            }
        }
        Err(e) => problems.push(format!("cannot read the public repository: {e}")),
    }
    problems
}

async fn blockers(app: &App, fix: &Fix) -> Result<Vec<embargo_domain::fix::Blocker>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = fix_store::blockers(&mut tx, fix.report.id).await?;
    tx.rollback().await?;
    Ok(found)
}

/// Whether the fix head still merges cleanly onto a moved public head (fetched into the
/// private repository under `refs/embargo/public/`; objects flow public to private only).
async fn merges_cleanly(app: &App, path: &Path, remote: &str, line: &LinePush, found: &str) -> Option<bool> {
    let local = format!("refs/embargo/public/{}", line.line);
    let mut cmd = git::command(app, Some(path));
    cmd.args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--"])
        .arg(remote)
        .arg(format!("+{}:{local}", line.branch));
    git::run(cmd, "fetch the moved public branch").await.ok()?;
    let mut cmd = git::command(app, Some(path));
    cmd.args(["merge-tree", "--write-tree", found, &line.commit]).stdout(Stdio::null()).stderr(Stdio::null());
    let status = cmd.status().await.ok()?;
    match status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_lease_is_permanent_and_an_unreachable_remote_temporary() {
        let stale = "To /srv/public.git\n!\tabc:refs/heads/main\t[rejected] (stale info)\n\
                     !\tdef:refs/tags/v1\t[rejected] (atomic push failed)\nDone\n";
        assert!(matches!(classify(stale, "error: failed to push"), ReleaseError::Permanent(m) if m.contains("lease")));
        assert!(matches!(
            classify("", "fatal: unable to access 'https://x/': Could not resolve host"),
            ReleaseError::Temporary(_)
        ));
        let locked = "!\tabc:refs/heads/main\t[remote rejected] (failed to lock)\n";
        assert!(matches!(classify(locked, ""), ReleaseError::Temporary(_)));
        let hook = "!\tabc:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n";
        assert!(matches!(classify(hook, ""), ReleaseError::Permanent(_)));
        let old_server = "fatal: the receiving end does not support --atomic push";
        assert!(matches!(classify("", old_server), ReleaseError::Permanent(m) if m.contains("atomic")));
    }
}
