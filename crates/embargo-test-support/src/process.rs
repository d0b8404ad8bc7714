//! Running the real `embargo` binary in tests, and talking HTTP to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A data directory (and optionally a database URL) for running `embargo` commands.
#[derive(Debug)]
pub struct Instance {
    /// The `embargo` executable.
    pub bin: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// `--database-url`, when not SQLite in the data directory.
    pub database_url: Option<String>,
    _dir: tempfile::TempDir,
}

/// The outcome of one command.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Instance {
    /// A fresh instance using `bin`, on the database of `db` (SQLite uses the data directory),
    /// created with `embargo migrate` (only `serve` and `migrate` create an instance).
    pub fn new(bin: &str, db: Option<&crate::TestDb>) -> Self {
        let it = Self::uncreated(bin, db);
        let out = it.run(&["migrate"], b"");
        assert_eq!(out.code, 0, "embargo migrate: {}", out.stderr);
        it
    }

    /// [`Instance::new`] without creating the instance: its data directory does not exist yet.
    pub fn uncreated(bin: &str, db: Option<&crate::TestDb>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database_url = db.filter(|db| db.backend == "postgres").map(|db| db.url.clone());
        Self { bin: PathBuf::from(bin), data_dir: dir.path().join("data"), database_url, _dir: dir }
    }

    /// A command with `--data-dir` (and `--database-url`) set, clean of `EMBARGO_*`
    /// variables from the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("--data-dir").arg(&self.data_dir);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("EMBARGO_") && key != "EMBARGO_TEST_STRICT" {
                cmd.env_remove(key);
            }
        }
        // Tests reach no DNS server but their own: sender authentication is off unless a
        // test turns it on with its own resolver (see the DKIM/SPF/DMARC test).
        cmd.env("EMBARGO_MAIL__CHECK_SENDER_AUTHENTICATION", "false");
        cmd
    }

    /// Runs a command with `stdin` as input.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_command(self.command(args), stdin)
    }

    /// Starts `embargo serve` on free loopback ports and waits until it prints them.
    pub fn serve(&self, extra_env: &[(&str, &str)]) -> Server {
        self.serve_with(&[], extra_env)
    }

    /// [`Instance::serve`] with extra arguments (such as `--config FILE`).
    pub fn serve_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Server {
        let mut all = vec!["serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut cmd = self.command(&all);
        // Metrics on their own free loopback port too (a test may override it).
        cmd.env("EMBARGO_METRICS_LISTEN", "127.0.0.1:0");
        cmd.envs(extra_env.iter().copied());
        Server::start(cmd)
    }

    /// A file in the instance's temporary directory (beside the data directory).
    pub fn path(&self, name: &str) -> PathBuf {
        self.data_dir.parent().expect("data dir has a parent").join(name)
    }

    /// The database files on disk, for SQLite (for PostgreSQL see `PgServer::data_dir`).
    pub fn sqlite_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Runs a prepared command to completion.
pub fn run_command(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the embargo binary runs");
    child.stdin.take().expect("stdin").write_all(stdin).ok();
    let out = child.wait_with_output().expect("waits");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `embargo serve`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens for HTTP.
    pub addr: SocketAddr,
    /// Where it listens for SMTP.
    pub smtp_addr: SocketAddr,
    /// Where it serves Prometheus metrics, when it has a metrics listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Everything printed on standard output so far, whole lines.
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Everything printed on standard error so far (the logs).
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a prepared `serve` command and waits (at most 30 s) for its address.
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the embargo binary runs");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });
        let err = child.stderr.take().expect("stderr");
        let text = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let find = |marker: &str| {
                stdout.lock().expect("lock").iter().find_map(|line| {
                    let rest = line.split(marker).nth(1)?;
                    rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
                })
            };
            let ready = stdout.lock().expect("lock").iter().any(|l| l.starts_with("Ready."));
            if let (true, Some(addr), Some(smtp_addr)) = (ready, find("running at http://"), find("SMTP intake at ")) {
                // "Metrics for Prometheus at http://ADDR/metrics." names the address with the path.
                let metrics_addr = stdout.lock().expect("lock").iter().find_map(|line| {
                    let rest = line.split("Metrics for Prometheus at http://").nth(1)?;
                    rest.split('/').next()?.parse::<SocketAddr>().ok()
                });
                return Self { child, addr, smtp_addr, metrics_addr, stdout, stderr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("embargo serve exited with {status}: {}", stderr.lock().expect("lock"));
            }
            assert!(Instant::now() < deadline, "embargo serve did not start: {}", stderr.lock().expect("lock"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends an HTTP/1.1 request and reads the whole response.
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        http_request(self.addr, method, path, headers, body)
    }

    /// `GET /metrics` on the metrics listener (panics when the server has none).
    pub fn metrics(&self, headers: &[(&str, &str)]) -> HttpResponse {
        let addr = self.metrics_addr.expect("the server has a metrics listener (metrics_listen)");
        http_request(addr, "GET", "/metrics", headers, b"")
    }

    /// The stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("lock").clone()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit code.
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The logs printed so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl HttpResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough for tests.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("writes");
    stream.write_all(body).expect("writes");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reads");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse { status, headers, body: body.to_owned() }
}
