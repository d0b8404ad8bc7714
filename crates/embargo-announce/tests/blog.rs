//! The blog channel against real bare git repositories holding a minimal Hugo site, and the
//! post built by real Hugo.

use std::path::{Path, PathBuf};
use std::process::Command;

use embargo_announce::{Blog, Channel, ChannelError, render};
use embargo_test_support::require;

use crate::{announcement, outgoing};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Site")
        .env("GIT_AUTHOR_EMAIL", "site@example.org")
        .env("GIT_COMMITTER_NAME", "Site")
        .env("GIT_COMMITTER_EMAIL", "site@example.org")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A bare repository (default branch `main`) holding a minimal Hugo site; returns the
/// temporary directory and the repository's path.
fn site_repository() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("site.git");
    git(dir.path(), &["init", "--quiet", "--bare", "--initial-branch=main", bare.to_str().unwrap()]);
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("layouts/_default")).unwrap();
    std::fs::create_dir_all(work.join("content/posts")).unwrap();
    std::fs::write(
        work.join("hugo.toml"),
        "baseURL = 'https://blog.example.org/'\ntitle = 'Security blog'\ndisableKinds = ['taxonomy', 'term', 'RSS', 'sitemap']\n",
    )
    .unwrap();
    std::fs::write(
        work.join("layouts/_default/single.html"),
        "<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1><time>{{ .Date.Format \"2006-01-02\" }}</time>{{ .Content }}</body></html>\n",
    )
    .unwrap();
    std::fs::write(
        work.join("layouts/_default/list.html"),
        "<ul>{{ range .Pages }}<li>{{ .Title }}</li>{{ end }}</ul>\n",
    )
    .unwrap();
    std::fs::write(
        work.join("layouts/index.html"),
        "<ul>{{ range .Site.RegularPages }}<li>{{ .Title }}</li>{{ end }}</ul>\n",
    )
    .unwrap();
    std::fs::write(work.join("content/posts/hello.md"), "---\ntitle: Hello\ndate: 2026-01-01T00:00:00Z\n---\nHello.\n")
        .unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "A site"]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
    std::fs::remove_dir_all(&work).unwrap();
    (dir, bare)
}

fn checkout(bare: &Path, into: &Path) -> PathBuf {
    let target = into.join("checkout");
    git(into, &["clone", "--quiet", bare.to_str().unwrap(), target.to_str().unwrap()]);
    target
}

#[tokio::test]
async fn the_post_is_committed_once_deterministically_and_reconciled() {
    let (dir, bare) = site_repository();
    let blog = Blog::new(bare.to_str().unwrap()).unwrap().with_site_url("https://blog.example.org/");
    blog.check_credentials().await.unwrap();
    let post = render::blog(&announcement());
    let out = outgoing(&post.text, "intent-5");
    assert_eq!(blog.reconcile(&out).await.unwrap(), None);
    let posted = blog.post(&out).await.unwrap();
    assert_eq!(posted.url.as_deref(), Some("https://blog.example.org/posts/emb-2026-0001/"));
    let head = git(&bare, &["rev-parse", "main"]);
    assert_eq!(posted.id, format!("{}:content/posts/emb-2026-0001.md", head.trim()));
    // Deterministic author, committer and date; the key in the message.
    let meta = git(&bare, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%aI|%cI|%B", "main"]);
    assert!(
        meta.starts_with(
            "Embargo <embargo@localhost>|Embargo <embargo@localhost>|2026-12-05T14:00:00Z|2026-12-05T14:00:00Z|Announce EMB-2026-0001"
        ),
        "{meta}"
    );
    assert!(meta.contains("Idempotency-Key: intent-5"));
    let file = git(&bare, &["show", "main:content/posts/emb-2026-0001.md"]);
    assert_eq!(file, post.text);
    // Reconciling finds it; posting again (a retry whose answer was lost) adds nothing.
    assert_eq!(blog.reconcile(&out).await.unwrap(), Some(posted.clone()));
    assert_eq!(blog.post(&out).await.unwrap(), posted);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "2");
    drop(dir);
}

#[tokio::test]
async fn a_push_racing_another_one_is_rebuilt_on_the_new_head() {
    let (dir, bare) = site_repository();
    // The first push finds the branch moved under it (another commit lands while it is
    // received): the remote refuses to update the ref, as with a concurrent push.
    install_hook(
        &bare,
        r#"#!/bin/sh
cat >/dev/null
if [ ! -e "$GIT_DIR/raced" ]; then
  touch "$GIT_DIR/raced"
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  parent=$(git rev-parse refs/heads/main)
  c=$(GIT_AUTHOR_NAME=Other GIT_AUTHOR_EMAIL=o@example.org GIT_COMMITTER_NAME=Other GIT_COMMITTER_EMAIL=o@example.org git commit-tree "$parent^{tree}" -p "$parent" -m "someone else")
  git update-ref refs/heads/main "$c" "$parent"
fi
exit 0
"#,
    );
    let blog = Blog::new(bare.to_str().unwrap()).unwrap();
    let out = outgoing(&render::blog(&announcement()).text, "intent-6");
    let posted = blog.post(&out).await.unwrap();
    let log = git(&bare, &["log", "--format=%s", "main"]);
    assert_eq!(log, "Announce EMB-2026-0001\nsomeone else\nA site\n");
    assert!(posted.id.starts_with(git(&bare, &["rev-parse", "main"]).trim()));
    drop(dir);
}

#[tokio::test]
async fn concurrent_posts_of_several_advisories_all_land_once() {
    let (dir, bare) = site_repository();
    let blog = Blog::new(bare.to_str().unwrap()).unwrap();
    let outs: Vec<_> = (1..=4)
        .map(|n| {
            let mut a = announcement();
            a.advisory_id = format!("EMB-2026-000{n}");
            let mut out = outgoing(&render::blog(&a).text, &format!("intent-{n}"));
            out.marker = a.advisory_id;
            out
        })
        .collect();
    let results = futures_util::future::join_all(outs.iter().map(|out| blog.post(out))).await;
    for result in results {
        result.unwrap();
    }
    let log = git(&bare, &["log", "--format=%s", "--first-parent", "main"]);
    for n in 1..=4 {
        assert_eq!(log.matches(&format!("Announce EMB-2026-000{n}\n")).count(), 1, "{log}");
    }
    assert_eq!(git(&bare, &["rev-list", "--count", "--merges", "main"]).trim(), "0");
    drop(dir);
}

fn install_hook(bare: &Path, script: &str) {
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, script).unwrap();
    let mut permissions = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).unwrap();
}

#[tokio::test]
async fn a_push_that_times_out_is_lost_and_the_retry_posts_at_most_once() {
    let (dir, bare) = site_repository();
    // The first push is received but answered only after the client gave up.
    install_hook(
        &bare,
        "#!/bin/sh\ncat >/dev/null\nif [ ! -e \"$GIT_DIR/slow\" ]; then touch \"$GIT_DIR/slow\"; sleep 3; fi\nexit 0\n",
    );
    let blog = Blog::new(bare.to_str().unwrap()).unwrap().with_timeout(std::time::Duration::from_secs(1));
    let out = outgoing(&render::blog(&announcement()).text, "intent-11");
    let error = blog.post(&out).await.unwrap_err();
    assert!(matches!(error, ChannelError::Lost { .. }), "{error:?}");
    assert!(error.is_retryable() && error.may_have_happened());
    // Whatever the remote did with the abandoned push, the caller's retry (reconcile, then
    // post only when not found) leaves exactly one post.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let posted = match blog.reconcile(&out).await.unwrap() {
        Some(found) => found,
        None => blog.post(&out).await.unwrap(),
    };
    let log = git(&bare, &["log", "--format=%s", "main"]);
    assert_eq!(log.matches("Announce EMB-2026-0001").count(), 1, "{log}");
    assert_eq!(blog.reconcile(&out).await.unwrap(), Some(posted));
    drop(dir);
}

#[tokio::test]
async fn git_failures_are_temporary_refused_or_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = outgoing(&render::blog(&announcement()).text, "k");
    // No repository: nothing happened.
    let missing = Blog::new(dir.path().join("nothing.git").to_str().unwrap()).unwrap();
    assert!(matches!(missing.post(&out).await, Err(ChannelError::Temporary { .. })));
    assert!(matches!(missing.reconcile(&out).await, Err(ChannelError::Temporary { .. })));
    assert!(missing.check_credentials().await.is_err());
    // A hook that refuses the push: refused for good.
    let (site, bare) = site_repository();
    install_hook(&bare, "#!/bin/sh\necho 'posts need review' >&2\nexit 1\n");
    let error = Blog::new(bare.to_str().unwrap()).unwrap().post(&out).await.unwrap_err();
    assert!(matches!(error, ChannelError::Refused { .. }), "{error:?}");
    // No git program: nothing happened.
    let no_git = Blog::new(bare.to_str().unwrap()).unwrap().with_git("/nonexistent/git");
    assert!(matches!(no_git.post(&out).await, Err(ChannelError::Temporary { .. })));
    // A password in the repository's URL shows nowhere.
    let with_password = Blog::new("http://embargo:s3cret-pw@127.0.0.1:1/site.git").unwrap();
    assert!(!format!("{with_password:?}").contains("s3cret-pw"));
    let error = with_password.post(&out).await.unwrap_err();
    assert!(matches!(error, ChannelError::Temporary { .. }), "{error:?}");
    assert!(!error.to_string().contains("s3cret-pw"), "{error}");
    // A text without front matter is refused before anything is cloned.
    let error =
        Blog::new(bare.to_str().unwrap()).unwrap().post(&outgoing("EMB-2026-0001 text", "k")).await.unwrap_err();
    assert!(matches!(error, ChannelError::Refused { status: None, .. }), "{error:?}");
    drop(site);
}

fn hugo() -> Result<(), String> {
    match Command::new("hugo").arg("version").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("hugo version failed: {}", String::from_utf8_lossy(&output.stderr))),
        Err(e) => Err(format!("hugo: {e}")),
    }
}

#[tokio::test]
async fn hugo_builds_the_pushed_post_with_hostile_text_escaped_not_stripped() {
    if require("hugo", hugo()).is_none() {
        return;
    }
    let (dir, bare) = site_repository();
    let a = announcement();
    // As the runbook does it: rendered with the ID's placeholder (public IDs are given at
    // publication), approved, filled at posting time.
    let mut draft = a.clone();
    draft.advisory_id = render::ID_PLACEHOLDER.into();
    draft.url = format!("https://security.example.org/advisories/{}", render::ID_PLACEHOLDER);
    let approved = render::blog(&draft).text;
    let blog = Blog::new(bare.to_str().unwrap()).unwrap().with_git("git");
    blog.post(&outgoing(&render::fill(&approved, &a.advisory_id, &draft.url), "intent-8")).await.unwrap();
    let site = checkout(&bare, dir.path());
    let public = dir.path().join("public");
    let output = Command::new("hugo")
        // The post is dated at the disclosure instant, which may be later today than this
        // test runs: Hugo leaves future posts out unless asked.
        .args([
            "--source",
            site.to_str().unwrap(),
            "--destination",
            public.to_str().unwrap(),
            "--quiet",
            "--buildFuture",
        ])
        .env("HUGO_CACHEDIR", dir.path().join("hugo-cache"))
        .output()
        .unwrap();
    assert!(output.status.success(), "hugo: {}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_to_string(public.join("posts/emb-2026-0001/index.html")).unwrap();
    // The mitigation, every character there, as text.
    assert!(
        page.contains("Set parser.strict=true &amp; block &lt;script&gt;alert(1)&lt;/script&gt; {{&lt; shortcode &gt;}} until upgraded."),
        "{page}"
    );
    assert!(!page.contains("<script") && !page.contains("raw HTML omitted"), "{page}");
    // The title (front matter) and the table.
    assert!(
        page.contains("<title>EMB-2026-0001: Heap overflow in the &lt;b&gt;parser&lt;/b&gt; &amp; friends</title>"),
        "{page}"
    );
    assert!(page.contains("<td>&gt;= 2.4.0, &lt; 2.4.7</td>"), "{page}");
    assert!(page.contains("<time>2026-12-05</time>"), "{page}");
    assert!(page.contains("<h2 id=\"mitigations\">Mitigations</h2>"), "{page}");
    assert!(page.contains("https://security.example.org/advisories/EMB-2026-0001"), "{page}");
}
