//! The `git` CLI, run on the fix repositories (a runtime dependency; see ADR 19).
//!
//! Every call gets a clean environment for git (no `GIT_*` variable of the server, no
//! system or global configuration, no terminal prompt), so that what it does depends on its
//! arguments and the repository alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::{App, AppError};

/// The pre-receive hook every fix repository gets. Its rules are the files of `embargo/` in
/// the repository: `refs` (the fix branches, one per line), `words` (extended regular
/// expressions a commit message must not match before the lift) and `mode` (`warn` or
/// `refuse`).
pub(crate) const PRE_RECEIVE: &str = r#"#!/bin/sh
# Installed by Embargo (ADR 19): pushes go only to the fix branches, and commit messages
# that name the advisory, a CVE or "security" before the lift are warned about (or refused).
conf="$(git rev-parse --git-dir)/embargo"
zero=$(git hash-object --stdin </dev/null | tr '0-9a-f' '0')
mode=$(cat "$conf/mode" 2>/dev/null || echo refuse)
status=0
while read -r old new ref; do
  if ! grep -qxF -- "$ref" "$conf/refs"; then
    echo "embargo: refused $ref: push only to the fix branches: $(tr '\n' ' ' <"$conf/refs")" >&2
    status=1
    continue
  fi
  if [ "$new" = "$zero" ]; then
    echo "embargo: refused: $ref may not be deleted" >&2
    status=1
    continue
  fi
  for commit in $(git rev-list "$new" --not --all); do
    word=$(git log -1 --format=%B "$commit" | grep -oiE -f "$conf/words" | head -n 1)
    if [ -n "$word" ]; then
      if [ "$mode" = warn ]; then
        echo "embargo: warning: commit $commit names \"$word\" in its message; it becomes public with the fix" >&2
      else
        echo "embargo: refused: commit $commit names \"$word\" in its message before the lift; reword it" >&2
        status=1
      fi
    fi
  done
done
exit $status
"#;

/// A git command on `repo` (a bare repository or a work tree), environment cleaned.
pub fn command(app: &App, repo: Option<&Path>) -> Command {
    let mut cmd = Command::new(&app.config.fixes.git);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    if let Some(repo) = repo {
        cmd.arg("-C").arg(repo);
    }
    cmd
}

/// Runs a git command to its end; its standard output, or an error naming what failed
/// (git's own message, which holds no report content).
pub(crate) async fn run(mut cmd: Command, what: &str) -> Result<Vec<u8>, AppError> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| AppError::Unavailable(format!("cannot run git to {what}: {e} (is git installed?)")))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let message = String::from_utf8_lossy(&out.stderr);
        let message = message.trim();
        Err(AppError::Unavailable(format!("git could not {what}: {}", message.chars().take(2000).collect::<String>())))
    }
}

/// Creates a bare repository at `path` for a fix, with its hook and rules.
pub(crate) async fn init(app: &App, path: &Path) -> Result<(), AppError> {
    let mut cmd = command(app, None);
    cmd.args(["init", "--quiet", "--bare", "--initial-branch=embargo-empty"]).arg(path);
    run(cmd, "create the fix repository").await?;
    for (key, value) in [
        ("receive.denyDeletes", "true"),
        ("receive.denyNonFastForwards", "false"),
        ("receive.fsckObjects", "true"),
        ("http.receivepack", "true"),
        ("http.uploadpack", "true"),
        ("uploadpack.allowAnySHA1InWant", "false"),
        ("gc.auto", "0"),
        // A push is a fix, not a mirror: at most 256 MiB of pack at a time.
        ("receive.maxInputSize", "268435456"),
        ("core.hooksPath", "hooks"),
    ] {
        let mut cmd = command(app, Some(path));
        cmd.args(["config", key, value]);
        run(cmd, "configure the fix repository").await?;
    }
    let hook = path.join("hooks").join("pre-receive");
    std::fs::create_dir_all(path.join("hooks")).map_err(io("create the hooks directory"))?;
    std::fs::write(&hook, PRE_RECEIVE).map_err(io("install the pre-receive hook"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o700))
            .map_err(io("make the hook runnable"))?;
    }
    Ok(())
}

/// Writes the hook's rules: the refs that may be pushed, the words a commit message must
/// not name, and the mode.
pub(crate) fn write_rules(path: &Path, refs: &[String], words: &[String], mode: &str) -> Result<(), AppError> {
    let dir = path.join("embargo");
    std::fs::create_dir_all(&dir).map_err(io("write the hook rules"))?;
    let lines = |items: &[String]| items.iter().map(|i| format!("{i}\n")).collect::<String>();
    // Each file is written aside under a name of its own and renamed into place, so that
    // concurrent pushes never see (or make) a half-written rule.
    let suffix = crate::tokens::reply();
    for (name, content) in [("refs", lines(refs)), ("words", lines(words)), ("mode", format!("{mode}\n"))] {
        let aside = dir.join(format!(".{name}.{suffix}"));
        std::fs::write(&aside, content).map_err(io("write the hook rules"))?;
        std::fs::rename(&aside, dir.join(name)).map_err(io("write the hook rules"))?;
    }
    Ok(())
}

/// Fetches a public branch into the private repository as a fix branch; returns its commit.
/// Objects flow from the public repository into the private one, never the reverse.
pub(crate) async fn seed_line(app: &App, path: &Path, source: &str, line: &str) -> Result<String, AppError> {
    let fix_ref = embargo_domain::fix::fix_ref(line);
    let mut cmd = command(app, Some(path));
    cmd.args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--"])
        .arg(source)
        .arg(format!("+refs/heads/{line}:{fix_ref}"));
    run(cmd, &format!("fetch the release line {line} from the product's repository")).await?;
    head_of(app, path, &fix_ref).await?.ok_or_else(|| AppError::Unavailable(format!("the line {line} has no commit")))
}

/// The commit a ref points at, if it exists.
pub(crate) async fn head_of(app: &App, path: &Path, reference: &str) -> Result<Option<String>, AppError> {
    Ok(heads(app, path).await?.remove(reference))
}

/// Every branch of a repository with its commit.
pub(crate) async fn heads(app: &App, path: &Path) -> Result<BTreeMap<String, String>, AppError> {
    let mut cmd = command(app, Some(path));
    cmd.args(["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"]);
    let out = run(cmd, "read the fix branches").await?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, sha)| (name.to_owned(), sha.to_owned()))
        .collect())
}

/// The patch series from `base` to `head` (`git format-patch --stdout`), byte for byte what
/// will be merged.
pub(crate) async fn format_patch(app: &App, path: &Path, base: &str, head: &str) -> Result<Vec<u8>, AppError> {
    let mut cmd = command(app, Some(path));
    cmd.args(["format-patch", "--stdout", "--no-signature", "--binary"]).arg(format!("{base}..{head}"));
    run(cmd, "write the patch series").await
}

/// A fresh checkout of `commit` in `dest` (which must not exist).
pub(crate) async fn checkout(app: &App, path: &Path, commit: &str, dest: &Path) -> Result<(), AppError> {
    let mut cmd = command(app, None);
    cmd.args(["clone", "--quiet", "--no-local", "--no-checkout", "--"]).arg(path).arg(dest);
    run(cmd, "clone the fix for CI").await?;
    let mut cmd = command(app, Some(dest));
    cmd.args(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit]);
    run(cmd, "check the commit out for CI").await?;
    Ok(())
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> AppError {
    move |e| AppError::Internal(anyhow::anyhow!("cannot {what}: {e}"))
}

/// Where the data directory keeps the fix repositories.
pub(crate) fn root(app: &App) -> PathBuf {
    app.config.data_dir.join("repositories")
}
