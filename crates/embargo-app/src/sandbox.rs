//! The sandboxed runner of a product's test command (private CI, ADR 18).
//!
//! [`run`] runs `sh -c <command>` in a fresh checkout with no network, no secrets, a time limit
//! and a scrubbed environment, inside the best sandbox this machine offers ([`available`]):
//!
//! * Bubblewrap ([`Isolation::Bubblewrap`]): `bwrap` with new network, PID, IPC and UTS namespaces, every
//!   capability dropped, a read-only view of the system (`/usr`, `/etc` and the `/bin`, `/lib`
//!   links only: no `/home`, `/root`, `/var`, `/srv` or `/opt`), a private `/tmp`, the checkout
//!   bound read-write, and every hidden path covered by an empty tmpfs (a file by `/dev/null`).
//! * Namespaces ([`Isolation::Namespaces`]): `unshare` (user, network, PID, IPC, UTS and mount namespaces)
//!   when bubblewrap is missing: the same hidden paths, private `/tmp` and read-only `/usr` and
//!   `/etc`, capabilities dropped by `setpriv` before the command starts; the rest of the file
//!   system is visible, and writable as far as the server's user may write it.
//! * None ([`Isolation::None`]): the command runs as the server's user with its network. The first
//!   line of the log says so plainly.
//!
//! In every mode the environment is cleared and set to [`PATH`], `HOME`, `LANG=C.UTF-8` and
//! `CI=true`; standard output and standard error share one pipe, so the log is in the order the
//! command wrote it, and reaches `on_output` as it comes; the log is capped at [`LOG_LIMIT`]
//! (then one "log truncated" line, and the rest is read and discarded so the command never
//! blocks on a full pipe). At the time limit the whole process tree is killed: the sandbox's
//! PID namespace dies with its first process, and the runner also kills the process group and
//! every descendant it finds in `/proc` before it returns.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::io::AsyncReadExt as _;

/// The most log bytes passed to `on_output`; beyond it one "log truncated" line, then nothing.
pub const LOG_LIMIT: usize = 4 * 1024 * 1024;

/// The `PATH` of the command.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// The system as the sandbox shows it, read-only: programs, libraries and configuration.
/// What of `/etc` a command sees under bubblewrap: the dynamic linker's cache, the users and
/// groups (names only), name service and locale settings, public CA certificates and the
/// alternatives links that name programs. Nothing that holds a secret.
const ETC_ALLOWED: [&str; 17] = [
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "localtime",
    "timezone",
    "mime.types",
    "ssl/certs",
    "ca-certificates",
    "ca-certificates.conf",
    "profile",
    "environment",
    "os-release",
];

const SYSTEM: [&str; 8] = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// How long output is still read after the command's first process exited (only matters
/// without a sandbox, where a process that left the process group can keep the pipe open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// A fresh checkout, read-write for the command; the command starts there.
    pub workdir: PathBuf,
    /// Run with `sh -c`.
    pub command: String,
    /// After this the command and every process it started are killed.
    pub time_limit: Duration,
    /// Paths the command must not be able to read (the data directory, the repositories, the
    /// configuration and key files). Directories are covered by an empty tmpfs, files by
    /// `/dev/null`; a path that does not exist is skipped. Without a sandbox they stay readable.
    pub hidden: Vec<PathBuf>,
}

/// The sandbox a command ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// bubblewrap (`bwrap`).
    Bubblewrap,
    /// Linux namespaces through `unshare` and `setpriv` (util-linux), without bwrap.
    Namespaces,
    /// No sandbox: the server's user, privileges and network.
    None,
}

impl Isolation {
    /// `bubblewrap`, `namespaces` or `none`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bubblewrap => "bubblewrap",
            Self::Namespaces => "namespaces",
            Self::None => "none",
        }
    }

    /// Whether the command is cut off from the network and the hidden paths.
    #[must_use]
    pub fn is_sandboxed(self) -> bool {
        self != Self::None
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Passed,
    /// Any other exit status, or killed by a signal. (In a sandbox, a command killed by a
    /// signal is usually reported by the sandbox as exit code 128 + the signal.)
    Failed { exit_code: Option<i32>, signal: Option<i32> },
    /// The time limit was reached; every process of the command was killed.
    TimedOut,
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub isolation: Isolation,
    pub duration: Duration,
    /// Whether the log passed the [`LOG_LIMIT`] and the rest was discarded.
    pub log_truncated: bool,
}

/// The best sandbox this machine offers, found once by trying each (bwrap, then unshare) on
/// `true`. Blocks the first time, for as long as those two probes take.
pub fn available() -> Isolation {
    static FOUND: OnceLock<Isolation> = OnceLock::new();
    *FOUND.get_or_init(|| {
        [Isolation::Bubblewrap, Isolation::Namespaces]
            .into_iter()
            .find(|&isolation| works(isolation))
            .unwrap_or(Isolation::None)
    })
}

/// Whether `isolation` can run `true` here (the tool exists and the kernel lets it make its
/// namespaces). Not cached; [`available`] is.
#[must_use]
pub fn works(isolation: Isolation) -> bool {
    let Ok(plan) = Plan::new(&std::env::temp_dir(), &[]) else { return false };
    let mut command = plan.command(isolation, "true");
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command.status().is_ok_and(|status| status.success())
}

/// Runs `spec` in the best sandbox of this machine ([`available`]); see [`run_with`].
///
/// # Errors
/// As [`run_with`].
pub async fn run(spec: &Spec, on_output: impl FnMut(&[u8]) + Send) -> io::Result<Finished> {
    run_with(spec, available(), on_output).await
}

/// Runs `spec` with the given isolation (tests use it to compare with and without a sandbox;
/// production calls [`run`]). `on_output` receives the log as it comes: first one line that
/// names the isolation (a warning when there is none), then the command's merged output,
/// then, at the time limit, a line saying the command was killed.
///
/// # Errors
/// `InvalidInput` when the working directory is not a directory or is itself hidden; the
/// error of spawning the sandbox or of reading its output. A failing command is not an error
/// but [`Outcome::Failed`].
pub async fn run_with(
    spec: &Spec,
    isolation: Isolation,
    mut on_output: impl FnMut(&[u8]) + Send,
) -> io::Result<Finished> {
    let plan = Plan::new(&spec.workdir, &spec.hidden)?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.time_limit;
    let mut log = Log { sink: &mut on_output, written: 0, truncated: false };
    log.write(banner(isolation, &plan, spec.time_limit).as_bytes());

    // One pipe for stdout and stderr: the log keeps the order in which the command wrote.
    let (reader, writer) = io::pipe()?;
    let mut command = plan.command(isolation, &spec.command);
    command.stdin(Stdio::null()).stdout(writer.try_clone()?).stderr(writer).process_group(0);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let mut child = command.spawn()?;
    // Our copies of the pipe's write end go with the command, so the pipe ends when the
    // command's processes are gone.
    drop(command);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other("the sandbox exited before it could be watched"))?;
    // If this future is dropped, the command's processes go with it.
    let mut guard = TreeGuard { pid, reaped: false, armed: true };
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let mut buf = vec![0u8; 64 * 1024];

    let mut eof = false;
    let status = loop {
        tokio::select! {
            read = pipe.read(&mut buf), if !eof => match read? {
                0 => eof = true,
                n => log.write(&buf[..n]),
            },
            status = child.wait() => break Some(status?),
            () = tokio::time::sleep_until(deadline) => break None,
        }
    };
    let outcome = match status {
        Some(status) => {
            guard.reaped = true;
            // Background processes the command left behind go now (in a sandbox they died
            // with its PID namespace); then the rest of the output.
            kill_group(pid);
            drain(&mut pipe, &mut buf, &mut log, eof).await?;
            if status.success() {
                Outcome::Passed
            } else {
                Outcome::Failed { exit_code: status.code(), signal: status.signal() }
            }
        }
        None => {
            kill_tree(pid).await;
            child.wait().await?;
            guard.reaped = true;
            kill_group(pid);
            // What the command wrote before it was killed.
            drain(&mut pipe, &mut buf, &mut log, eof).await?;
            log.note(&format!(
                "\n[time limit of {:?} reached: the command and every process it started were killed]\n",
                spec.time_limit
            ));
            Outcome::TimedOut
        }
    };
    guard.disarm();
    Ok(Finished { outcome, isolation, duration: started.elapsed(), log_truncated: log.truncated })
}

/// Reads the rest of the output, for at most [`DRAIN_GRACE`]: once the command's processes are
/// gone the pipe ends at once; only a process that escaped the process group without a
/// sandbox can hold it open.
async fn drain<F: FnMut(&[u8])>(
    pipe: &mut tokio::net::unix::pipe::Receiver,
    buf: &mut [u8],
    log: &mut Log<'_, F>,
    mut eof: bool,
) -> io::Result<()> {
    let until = tokio::time::Instant::now() + DRAIN_GRACE;
    while !eof {
        tokio::select! {
            read = pipe.read(buf) => match read? {
                0 => eof = true,
                n => log.write(&buf[..n]),
            },
            () = tokio::time::sleep_until(until) => break,
        }
    }
    Ok(())
}

/// The first line of the log.
fn banner(isolation: Isolation, plan: &Plan, time_limit: Duration) -> String {
    let hidden = plan.mounts.iter().filter(|m| !matches!(m, Mount::Workdir(_))).count();
    match isolation {
        Isolation::Bubblewrap => format!(
            "sandbox: bubblewrap (no network, no capabilities, read-only system, private /tmp, {hidden} hidden paths, scrubbed environment, time limit {time_limit:?})\n"
        ),
        Isolation::Namespaces => format!(
            "sandbox: Linux namespaces via unshare, bubblewrap is not installed (no network, no capabilities, read-only /usr and /etc, private /tmp, {hidden} hidden paths, scrubbed environment, time limit {time_limit:?}; the rest of the file system is visible, and writable as far as the server's user may write it)\n"
        ),
        Isolation::None => format!(
            "WARNING: no sandbox on this machine: the command runs with the server's privileges and network (scrubbed environment, time limit {time_limit:?})\n"
        ),
    }
}

/// The capped log.
struct Log<'a, F> {
    sink: &'a mut F,
    written: usize,
    truncated: bool,
}

impl<F: FnMut(&[u8])> Log<'_, F> {
    fn write(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        let room = LOG_LIMIT - self.written;
        if bytes.len() <= room {
            (self.sink)(bytes);
            self.written += bytes.len();
        } else {
            (self.sink)(&bytes[..room]);
            self.written = LOG_LIMIT;
            self.truncated = true;
            self.note(&format!("\n[log truncated: output beyond {LOG_LIMIT} bytes was discarded]\n"));
        }
    }

    /// A line of the runner's own, past the cap.
    fn note(&mut self, line: &str) {
        (self.sink)(line.as_bytes());
    }
}

/// A mount over the system view, in the order they are made (parents first, so a hidden
/// path inside the checkout stays hidden and a checkout inside a hidden path stays usable).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mount {
    Workdir(PathBuf),
    HideDir(PathBuf),
    HideFile(PathBuf),
}

impl Mount {
    fn path(&self) -> &Path {
        match self {
            Self::Workdir(p) | Self::HideDir(p) | Self::HideFile(p) => p,
        }
    }
}

/// The checked, canonical paths of a run.
struct Plan {
    workdir: PathBuf,
    mounts: Vec<Mount>,
}

impl Plan {
    fn new(workdir: &Path, hidden: &[PathBuf]) -> io::Result<Self> {
        let workdir = workdir.canonicalize()?;
        if !workdir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", workdir.display()),
            ));
        }
        let mut mounts = vec![Mount::Workdir(workdir.clone())];
        for path in hidden {
            let path = match path.canonicalize() {
                Ok(path) => path,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if path == workdir {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the working directory {} is hidden", workdir.display()),
                ));
            }
            mounts.push(if path.is_dir() { Mount::HideDir(path) } else { Mount::HideFile(path) });
        }
        // Stable: a parent before its children, otherwise in the given order.
        mounts.sort_by_key(|m| m.path().components().count());
        Ok(Self { workdir, mounts })
    }

    /// The process to spawn: the sandbox around `sh -c <command>`, with a scrubbed environment.
    fn command(&self, isolation: Isolation, user_command: &str) -> std::process::Command {
        let (mut command, home) = match isolation {
            Isolation::Bubblewrap => (self.bwrap(user_command), PathBuf::from("/tmp")),
            Isolation::Namespaces => (self.unshare(user_command), PathBuf::from("/tmp")),
            Isolation::None => {
                let mut command = std::process::Command::new("/bin/sh");
                command.arg("-c").arg(user_command);
                (command, self.workdir.clone())
            }
        };
        command
            .current_dir(&self.workdir)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .env("CI", "true");
        command
    }

    fn bwrap(&self, user_command: &str) -> std::process::Command {
        let mut c = std::process::Command::new("bwrap");
        c.args(["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]);
        c.args(["--hostname", "embargo-ci", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
        // The system, read-only: programs, libraries and /etc, nothing of the users or services.
        for dir in SYSTEM {
            let Ok(meta) = std::fs::symlink_metadata(dir) else { continue };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(dir) {
                    c.arg("--symlink").arg(target).arg(dir);
                }
            } else if dir == "/etc" {
                // Of /etc only what programs need to run, never keys and credentials (TLS
                // keys, /etc/shadow, the server's own configuration): an empty /etc with
                // these entries bound read-only.
                c.args(["--tmpfs", "/etc"]);
                for entry in ETC_ALLOWED {
                    let path = format!("/etc/{entry}");
                    c.arg("--ro-bind-try").arg(&path).arg(&path);
                }
                c.args(["--remount-ro", "/etc"]);
            } else if meta.is_dir() {
                c.args(["--ro-bind", dir, dir]);
            }
        }
        c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        for mount in &self.mounts {
            match mount {
                Mount::Workdir(p) => c.arg("--bind").arg(p).arg(p),
                Mount::HideDir(p) => c.arg("--tmpfs").arg(p),
                Mount::HideFile(p) => c.arg("--ro-bind").arg("/dev/null").arg(p),
            };
        }
        c.arg("--chdir").arg(&self.workdir).args(["/bin/sh", "-c", user_command]);
        c
    }

    /// `unshare` as root of a new user namespace mounts the hidden paths over, then `setpriv`
    /// drops every capability (so nothing can be unmounted) and runs the command.
    fn unshare(&self, user_command: &str) -> std::process::Command {
        // $1 is the checkout, $2 the command, $3... the mounts: paths only travel as arguments.
        let mut script = String::from("set -e\nexec 9<\"$1\"\n");
        // The system read-only (the directories, not the links to them), then a private /tmp.
        for dir in SYSTEM {
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                script.push_str(&format!("mount --rbind {dir} {dir}\nmount -o remount,bind,ro {dir}\n"));
            }
        }
        script.push_str("mount -t tmpfs -o mode=1777 embargo-tmp /tmp\n");
        for (i, mount) in self.mounts.iter().enumerate() {
            let n = i + 3;
            script.push_str(&match mount {
                // The checkout again, through the descriptor opened before anything covered it.
                Mount::Workdir(_) => {
                    format!("mkdir -p \"${{{n}}}\"\nmount --no-canonicalize --bind /proc/self/fd/9 \"${{{n}}}\"\n")
                }
                Mount::HideDir(_) => format!("mount -t tmpfs -o mode=0755,size=64k embargo-hidden \"${{{n}}}\"\n"),
                Mount::HideFile(_) => format!("mount --bind /dev/null \"${{{n}}}\"\n"),
            });
        }
        // The shell stays as the namespace's first process (which ignores signals it has no
        // handler for), so the command is an ordinary process: `kill $$` works, and its exit
        // status, 128 + a signal's number if killed, is the sandbox's.
        script.push_str("exec 9<&-\ncd \"$1\"\nsetpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all --no-new-privs /bin/sh -c \"$2\"\n");
        let mut c = std::process::Command::new("unshare");
        c.args([
            "--user",
            "--map-root-user",
            "--net",
            "--pid",
            "--ipc",
            "--uts",
            "--mount",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ]);
        c.args(["/bin/sh", "-c", &script, "embargo-sandbox"]).arg(&self.workdir).arg(user_command);
        c.args(self.mounts.iter().map(Mount::path));
        c
    }
}

/// Kills the command's process tree when dropped before [`TreeGuard::disarm`] (the run
/// future was cancelled): the whole tree while the first process is not reaped, afterwards
/// only its process group (its pid may name another process by then).
struct TreeGuard {
    pid: Pid,
    reaped: bool,
    armed: bool,
}

impl TreeGuard {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.reaped {
            kill_group(self.pid);
        } else {
            stop_and_kill(self.pid);
        }
    }
}

/// Kills what is left of the command's process group (it runs in its own, led by `root`).
/// Safe after `root` was reaped: a process group's id is not reused while it has members.
fn kill_group(root: Pid) {
    let _ = kill_process_group(root, Signal::KILL);
}

/// Kills `root`, its process group and every descendant found in `/proc` (processes that left
/// the group, such as bwrap's sandbox, which is a new session), then waits until they are
/// gone. The tree is stopped first, until no new descendant appears (a stopped process cannot
/// fork, and no parent dies before its children are known), and only then killed. Only while
/// `root` is not reaped (so that its pid still names it).
async fn kill_tree(root: Pid) {
    let tree = stop_and_kill(root);
    // SIGKILL is not instant: wait (boundedly) until each is gone or a zombie.
    for _ in 0..500 {
        if tree.iter().all(|&pid| !alive(pid)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The synchronous part of [`kill_tree`]: stops the tree, kills it, returns the pids killed.
fn stop_and_kill(root: Pid) -> Vec<Pid> {
    let _ = kill_process(root, Signal::STOP);
    let _ = kill_process_group(root, Signal::STOP);
    let mut tree: Vec<Pid> = Vec::new();
    for _ in 0..100 {
        let new: Vec<Pid> = descendants(root).into_iter().filter(|pid| !tree.contains(pid)).collect();
        if new.is_empty() {
            break;
        }
        for &pid in &new {
            let _ = kill_process(pid, Signal::STOP);
        }
        tree.extend(new);
    }
    let _ = kill_process_group(root, Signal::KILL);
    for &pid in &tree {
        let _ = kill_process(pid, Signal::KILL);
    }
    let _ = kill_process(root, Signal::KILL);
    tree
}

/// `(state, ppid, pgrp)` of a process, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: Pid) -> bool {
    stat(pid.as_raw_nonzero().get()).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// The live (not zombie) descendants of `root`, and the live members of its process group.
fn descendants(root: Pid) -> Vec<Pid> {
    let root = root.as_raw_nonzero().get();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut procs = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Some((state, ppid, pgrp)) = stat(pid) {
            procs.push((pid, state, ppid, pgrp));
        }
    }
    let mut found: Vec<i32> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, _, ppid, _) in &procs {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    for &(pid, _, _, pgrp) in &procs {
        if pgrp == root && pid != root && !found.contains(&pid) {
            found.push(pid);
        }
    }
    procs
        .iter()
        .filter(|&&(pid, state, _, _)| found.contains(&pid) && state != 'Z' && state != 'X')
        .filter_map(|&(pid, ..)| Pid::from_raw(pid))
        .collect()
}
