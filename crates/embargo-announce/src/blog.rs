//! The blog: a Markdown post committed to a Hugo site's git repository and pushed, with the
//! `git` command-line tool. The post is `content/posts/<marker in lower case>.md`
//! ([`crate::render::blog_path`]); the commit's author, committer and date are fixed (the
//! instant), and its message carries the idempotency key. Reconciling clones the remote's
//! default branch and looks for that file with the marker in it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::render::blog_path;
use crate::{Channel, ChannelError, ChannelKind, Outgoing, Posted, text};

/// How many times a push rejected as non-fast-forward is rebuilt on the new head.
const PUSH_ATTEMPTS: usize = 5;
const CHANNEL: ChannelKind = ChannelKind::Blog;

/// A Hugo site's git repository. Credentials belong in git's own configuration (an SSH key,
/// a credential helper); a password in the URL is kept out of `Debug` and error messages.
#[derive(Clone)]
pub struct Blog {
    repository: String,
    git: String,
    site_url: Option<String>,
    author_name: String,
    author_email: String,
    timeout: Duration,
}

impl std::fmt::Debug for Blog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blog")
            .field("repository", &self.redacted(&self.repository))
            .field("site_url", &self.site_url)
            .field("author", &format_args!("{} <{}>", self.author_name, self.author_email))
            .finish()
    }
}

/// The user information of a URL's authority (`user:password` in `https://user:password@host/`).
fn userinfo(repository: &str) -> Option<&str> {
    let (_, rest) = repository.split_once("://")?;
    let authority = rest.split('/').next()?;
    authority.rsplit_once('@').map(|(info, _)| info).filter(|info| info.contains(':'))
}

/// Why a git command failed.
#[derive(Debug)]
enum GitError {
    /// It could not run, or ran out of time.
    NotRun(String),
    /// It ran and failed: its standard output and error.
    Failed { stdout: String, stderr: String },
}

impl GitError {
    fn message(&self) -> String {
        match self {
            Self::NotRun(message) => message.clone(),
            Self::Failed { stderr, stdout } => {
                let text = if stderr.trim().is_empty() { stdout } else { stderr };
                crate::http::shorten(text)
            }
        }
    }
}

impl Blog {
    /// A blog at `repository` (a URL or path git can clone and push), committing as
    /// `Embargo <embargo@localhost>`, with 60 seconds for each git command.
    pub fn new(repository: &str) -> Result<Self, ChannelError> {
        let repository = repository.trim();
        if repository.is_empty() || repository.starts_with('-') || repository.contains('\n') {
            return Err(ChannelError::refused_here(CHANNEL, "the blog repository is missing or malformed"));
        }
        Ok(Self {
            repository: repository.to_owned(),
            git: "git".into(),
            site_url: None,
            author_name: "Embargo".into(),
            author_email: "embargo@localhost".into(),
            timeout: Duration::from_secs(60),
        })
    }

    /// The site's public base URL: a post's URL is then `<site_url>/posts/<slug>/` (Hugo's
    /// default for the `posts` section).
    pub fn with_site_url(mut self, site_url: &str) -> Self {
        self.site_url = Some(site_url.trim().trim_end_matches('/').to_owned());
        self
    }

    /// The commit's author and committer.
    pub fn with_author(mut self, name: &str, email: &str) -> Self {
        self.author_name = name.to_owned();
        self.author_email = email.to_owned();
        self
    }

    /// The `git` program to run (default: `git` on the `PATH`).
    pub fn with_git(mut self, program: &str) -> Self {
        self.git = program.to_owned();
        self
    }

    /// The limit for each git command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `text` without the repository URL's password.
    fn redacted(&self, text: &str) -> String {
        match userinfo(&self.repository).and_then(|info| info.split_once(':')).map(|(_, password)| password) {
            Some(password) if !password.is_empty() => text.replace(password, "[redacted]"),
            _ => text.to_owned(),
        }
    }

    fn url_of(&self, path: &str) -> Option<String> {
        let slug = path.trim_start_matches("content/posts/").trim_end_matches(".md");
        self.site_url.as_ref().map(|site| format!("{site}/posts/{slug}/"))
    }

    async fn git(&self, dir: &Path, args: &[&str], env: &[(&str, String)]) -> Result<String, GitError> {
        let mut command = Command::new(&self.git);
        command
            .current_dir(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = match tokio::time::timeout(self.timeout, command.output()).await {
            Err(_) => return Err(GitError::NotRun(format!("git {} timed out", args[0]))),
            Ok(Err(e)) => return Err(GitError::NotRun(format!("git {}: {e}", args[0]))),
            Ok(Ok(output)) => output,
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(GitError::Failed { stdout, stderr: String::from_utf8_lossy(&output.stderr).into_owned() })
        }
    }

    /// Clones the default branch into `dir/site`; returns the checkout and the branch name.
    async fn clone(&self, dir: &Path) -> Result<(PathBuf, String), ChannelError> {
        let site = dir.join("site");
        let site_arg = site.to_string_lossy().into_owned();
        self.git(dir, &["clone", "--quiet", "--no-tags", "--single-branch", "--", &self.repository, &site_arg], &[])
            .await
            .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("clone: {}", e.message()) })?;
        let branch = self
            .git(&site, &["symbolic-ref", "--short", "HEAD"], &[])
            .await
            .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("branch: {}", e.message()) })?
            .trim()
            .to_owned();
        Ok((site, branch))
    }

    /// The post at `path` in the checkout, if it holds the marker: its adding commit.
    async fn find(&self, site: &Path, path: &str, marker: &str) -> Result<Option<Posted>, ChannelError> {
        let Ok(content) = tokio::fs::read_to_string(site.join(path)).await else {
            return Ok(None);
        };
        if !text::contains_marker(&content, marker) {
            return Err(ChannelError::refused_here(CHANNEL, format!("{path} exists without the marker {marker}")));
        }
        let commit = self
            .git(site, &["log", "-1", "--diff-filter=A", "--format=%H", "--", path], &[])
            .await
            .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("log: {}", e.message()) })?;
        Ok(Some(Posted { id: format!("{}:{path}", commit.trim()), url: self.url_of(path) }))
    }

    fn scratch() -> Result<tempfile::TempDir, ChannelError> {
        tempfile::Builder::new()
            .prefix("embargo-blog-")
            .tempdir()
            .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("temporary directory: {e}") })
    }
}

impl Channel for Blog {
    fn kind(&self) -> ChannelKind {
        CHANNEL
    }

    async fn reconcile(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        self.reconcile_inner(outgoing).await.map_err(|e| self.scrub(e))
    }

    async fn post(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        self.post_inner(outgoing).await.map_err(|e| self.scrub(e))
    }

    async fn check_credentials(&self) -> Result<(), ChannelError> {
        self.check_inner().await.map_err(|e| self.scrub(e))
    }
}

impl Blog {
    fn scrub(&self, error: ChannelError) -> ChannelError {
        match userinfo(&self.repository).and_then(|info| info.split_once(':')) {
            Some((_, password)) => error.scrub(password),
            None => error,
        }
    }

    async fn reconcile_inner(&self, outgoing: &Outgoing) -> Result<Option<Posted>, ChannelError> {
        let scratch = Self::scratch()?;
        let (site, _) = self.clone(scratch.path()).await?;
        self.find(&site, &blog_path(&outgoing.marker), &outgoing.marker).await
    }

    async fn post_inner(&self, outgoing: &Outgoing) -> Result<Posted, ChannelError> {
        text::check(CHANNEL, &outgoing.marker, &outgoing.text)
            .map_err(|why| ChannelError::refused_here(CHANNEL, why))?;
        let path = blog_path(&outgoing.marker);
        let scratch = Self::scratch()?;
        let (site, branch) = self.clone(scratch.path()).await?;
        let date = format!("@{} +0000", outgoing.at.as_second());
        let env = [
            ("GIT_AUTHOR_NAME", self.author_name.clone()),
            ("GIT_AUTHOR_EMAIL", self.author_email.clone()),
            ("GIT_AUTHOR_DATE", date.clone()),
            ("GIT_COMMITTER_NAME", self.author_name.clone()),
            ("GIT_COMMITTER_EMAIL", self.author_email.clone()),
            ("GIT_COMMITTER_DATE", date),
        ];
        let message = format!("Announce {}\n\nIdempotency-Key: {}\n", outgoing.marker, outgoing.idempotency_key);
        let temporary = |what: &str, e: GitError| ChannelError::Temporary {
            channel: CHANNEL,
            message: format!("{what}: {}", e.message()),
        };
        for _ in 0..PUSH_ATTEMPTS {
            // Posted already (by an attempt whose answer was lost, or by the head we fetched).
            if let Some(posted) = self.find(&site, &path, &outgoing.marker).await? {
                return Ok(posted);
            }
            let file = site.join(&path);
            if let Some(parent) = file.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| ChannelError::Temporary {
                    channel: CHANNEL,
                    message: format!("writing the post: {e}"),
                })?;
            }
            tokio::fs::write(&file, &outgoing.text)
                .await
                .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("writing the post: {e}") })?;
            self.git(&site, &["add", "--", &path], &[]).await.map_err(|e| temporary("add", e))?;
            self.git(&site, &["-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", &message], &env)
                .await
                .map_err(|e| temporary("commit", e))?;
            let commit = self.git(&site, &["rev-parse", "HEAD"], &[]).await.map_err(|e| temporary("rev-parse", e))?;
            let refspec = format!("HEAD:refs/heads/{branch}");
            match self.git(&site, &["push", "--porcelain", "--quiet", "origin", &refspec], &[]).await {
                Ok(_) => {
                    return Ok(Posted { id: format!("{}:{path}", commit.trim()), url: self.url_of(&path) });
                }
                Err(GitError::Failed { stdout, stderr }) => {
                    let all = format!("{stdout}\n{stderr}");
                    // The branch moved: seen by git before sending (`[rejected]`, non-fast-forward),
                    // or by the remote while updating the ref (`cannot lock ref … is at … but
                    // expected …`).
                    let moved = all.contains("[rejected]")
                        || all.contains("non-fast-forward")
                        || all.contains("fetch first")
                        || all.contains("cannot lock ref")
                        || all.contains("failed to update ref");
                    if all.contains("[remote rejected]") && !moved {
                        return Err(ChannelError::Refused {
                            channel: CHANNEL,
                            status: None,
                            message: format!("push: {}", crate::http::shorten(&all)),
                        });
                    }
                    if moved {
                        // Someone pushed meanwhile: rebuild on the new head.
                        tracing::debug!(branch = %branch, "the blog's branch moved; rebuilding the post on its new head");
                        self.git(&site, &["fetch", "--quiet", "origin"], &[])
                            .await
                            .map_err(|e| temporary("fetch", e))?;
                        self.git(&site, &["reset", "--hard", "--quiet", &format!("origin/{branch}")], &[])
                            .await
                            .map_err(|e| temporary("reset", e))?;
                        continue;
                    }
                    return Err(ChannelError::Lost {
                        channel: CHANNEL,
                        message: format!("push: {}", crate::http::shorten(&all)),
                    });
                }
                Err(e @ GitError::NotRun(_)) => {
                    return Err(ChannelError::Lost { channel: CHANNEL, message: format!("push: {}", e.message()) });
                }
            }
        }
        Err(ChannelError::Temporary {
            channel: CHANNEL,
            message: format!("push: the branch {branch} moved {PUSH_ATTEMPTS} times in a row"),
        })
    }

    async fn check_inner(&self) -> Result<(), ChannelError> {
        let scratch = Self::scratch()?;
        self.git(scratch.path(), &["ls-remote", "--heads", "--", &self.repository], &[])
            .await
            .map(|_| ())
            .map_err(|e| ChannelError::Temporary { channel: CHANNEL, message: format!("ls-remote: {}", e.message()) })
    }
}
