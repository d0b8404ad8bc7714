//! A throwaway PostgreSQL server started from the system's binaries, once per test process.
//!
//! The server listens only on a Unix socket in a private temporary directory (no TCP port).
//! When the tests run as root, where `initdb` refuses to run, the server runs as the
//! unprivileged `postgres` user (or `nobody`). A detached watchdog shuts the server down and
//! removes its directory when the test process exits, so no server outlives its tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

/// A running throwaway server.
#[derive(Debug)]
pub struct PgServer {
    root: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    /// Stopped and removed when dropped (a test's own server; the shared one is never dropped).
    private: bool,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The shared server, started on first use; `Err` says why it cannot run here.
pub fn postgres() -> Result<&'static PgServer, String> {
    SERVER.get_or_init(|| start(false)).as_ref().map_err(Clone::clone)
}

/// A server of the calling test's own, which it may stop, restart or crash
/// ([`PgServer::crash`], [`PgServer::start_again`]) without disturbing other tests; stopped
/// and removed when dropped. `Err` says why it cannot run here.
pub fn private_postgres() -> Result<PgServer, String> {
    start(true)
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    if let Some(dir) = candidates.into_iter().rev().find(|d| d.join("initdb").exists()) {
        return Ok(dir);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .ok_or_else(|| "initdb and pg_ctl not found (install the postgresql package)".to_owned())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id").arg(name).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.arg("-u").arg(user).arg("--").arg(exe);
                cmd
            }
            None => Command::new(exe),
        }
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("socket")
    }

    /// The server's data directory (for tests that inspect raw files).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://embargo@localhost:{}/{name}?host={}", self.port, self.socket_dir().display())
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`: no checkpoint,
    /// clients cut off, recovery from the WAL at the next start).
    pub fn crash(&self) -> Result<(), String> {
        run(
            self.command("pg_ctl").arg("-D").arg(self.data_dir()).arg("-m").arg("immediate").arg("-w").arg("stop"),
            "pg_ctl stop",
        )
    }

    /// Starts the server again after [`PgServer::crash`], waiting until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        self.launch()
    }

    fn launch(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses='' -k {} -p {} -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.socket_dir().display(),
            self.port
        );
        run(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.root.join("server.log"))
                .arg("-o")
                .arg(options)
                .arg("-w")
                .arg("start")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "pg_ctl start",
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            format!("{e}\n{log}")
        })
    }

    /// Creates a new, empty database and returns it.
    pub fn fresh_database(&self) -> crate::TestDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{}_{n}", std::process::id(), rand::thread_rng().r#gen::<u32>());
        let status = self
            .command("createdb")
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg("embargo")
            .arg(&name)
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name} failed");
        crate::TestDb { url: self.url(&name), backend: "postgres", files: self.data_dir(), _dir: None }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn chown_to(path: &Path, user: &str) -> Result<(), String> {
    run(Command::new("chown").arg("-R").arg(user).arg(path), "chown")
}

fn start(private: bool) -> Result<PgServer, String> {
    let bin = find_bin_dir()?;
    let run_as = if is_root() {
        Some(
            ["postgres", "nobody"]
                .into_iter()
                .find(|u| user_exists(u))
                .ok_or("running as root and no unprivileged user (postgres, nobody) exists")?
                .to_owned(),
        )
    } else {
        None
    };
    let root = tempfile::Builder::new().prefix("embargo-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    std::fs::create_dir_all(root.join("socket")).map_err(|e| e.to_string())?;
    if let Some(user) = &run_as {
        chown_to(&root, user)?;
    }
    // Each server has its own socket directory, so the port only names the socket file.
    let port = 5432 + (std::process::id() % 1000) as u16;
    let server = PgServer { root, bin, run_as, port, private };
    // The watchdog is started before the server so that a failure below still cleans up.
    spawn_watchdog(&server);
    run(
        server
            .command("initdb")
            .arg("-D")
            .arg(server.data_dir())
            .arg("-U")
            .arg("embargo")
            .arg("-A")
            .arg("trust")
            .arg("-E")
            .arg("UTF8")
            .arg("--no-sync"),
        "initdb",
    )?;
    server.launch()?;
    Ok(server)
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.private {
            let _ = self.crash();
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Starts a detached shell that waits for this process to exit, then stops the server
/// immediately and removes its directory.
fn spawn_watchdog(server: &PgServer) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         if [ -f {data}/postmaster.pid ]; then kill -QUIT \"$(head -n 1 {data}/postmaster.pid)\" 2>/dev/null; sleep 1; fi; \
         rm -rf {root}",
        pid = std::process::id(),
        data = server.data_dir().display(),
        root = server.root.display(),
    );
    let _ = Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
