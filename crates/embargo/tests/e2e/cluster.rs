//! Two `embargo serve` instances on one PostgreSQL behind the same addresses (issue 17,
//! "Scale and faults"): SMTP and HTTP load together through a round-robin TCP balancer, one
//! instance killed with SIGKILL mid-load, then PostgreSQL itself crashed and restarted
//! mid-load. Every message answered 250 is stored once, every job's effect is committed once,
//! a web session made on one instance keeps working on the other, and intake recovers by
//! itself once the database is back. The figures are printed (`--nocapture`) and recorded in
//! BENCHMARKS.md ("Two instances under faults").

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embargo_test_support::{Instance, Server, http_request, private_postgres, require};

use crate::BIN;
use crate::smtp::{config, tool};

/// A TCP balancer on loopback, as HAProxy or a cloud load balancer would stand in front of
/// the instances: each new connection goes to the next backend in turn, skipping one that
/// refuses the connection; bytes are copied both ways until either side closes.
struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Balancer {
    fn new(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let backends = Arc::new(Mutex::new(backends));
        let stop = Arc::new(AtomicBool::new(false));
        let (list, stopped) = (backends.clone(), stop.clone());
        std::thread::spawn(move || {
            let next = AtomicUsize::new(0);
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let candidates = list.lock().unwrap().clone();
                let first = next.fetch_add(1, Ordering::Relaxed);
                let upstream = (0..candidates.len()).find_map(|i| {
                    let to = candidates[(first + i) % candidates.len()];
                    TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()
                });
                match upstream {
                    Some(upstream) => pipe(client, upstream),
                    None => drop(client),
                }
            }
        });
        Self { addr, backends, stop }
    }

    fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap() = backends;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn pipe(client: TcpStream, upstream: TcpStream) {
    for (mut from, mut to) in [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)] {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            // A backend that died cuts its clients off, as a real balancer does.
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// Web traffic through the balancer with one session cookie: counts answers by status and
/// the longest stretch without a 200.
struct WebLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    longest_gap_ms: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebLoad {
    fn start(addr: SocketAddr, cookie: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let longest_gap_ms = Arc::new(AtomicU64::new(0));
        let (s, o, f, g) = (stop.clone(), ok.clone(), failed.clone(), longest_gap_ms.clone());
        let thread = std::thread::spawn(move || {
            let mut last_ok = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let status = std::panic::catch_unwind(|| {
                    http_request(addr, "GET", "/inbox", &[("cookie", cookie.as_str())], b"").status
                })
                .unwrap_or(0);
                if status == 200 {
                    o.fetch_add(1, Ordering::Relaxed);
                    g.fetch_max(last_ok.elapsed().as_millis() as u64, Ordering::Relaxed);
                    last_ok = Instant::now();
                } else {
                    f.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self { stop, ok, failed, longest_gap_ms, thread: Some(thread) }
    }

    /// Stops the load; returns (answered 200, failed, longest gap between two 200s in ms).
    fn finish(mut self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.longest_gap_ms.load(Ordering::Relaxed),
        )
    }
}

/// A run of `smtp_client.py steady`: messages FIRST.. sent until each is answered 250.
fn steady_load(balancer: SocketAddr, first: u32, count: u32, log: &Path) -> Child {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/smtp_client.py"))
        .args(["steady", "127.0.0.1", &balancer.port().to_string()])
        .args([first.to_string(), count.to_string(), "8".into()])
        .arg(log)
        .arg("150")
        .spawn()
        .unwrap()
}

/// The log of a steady run: message number → seconds after its start when answered 250.
fn accepted(log: &Path) -> HashMap<u32, f64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let n: u32 = parts.next().unwrap().parse().unwrap();
        let second = parts.next().unwrap();
        assert_ne!(second, "refused", "message {n} was refused: {line}");
        out.insert(n, second.parse().unwrap());
    }
    out
}

fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sign_in(addr: SocketAddr) -> String {
    let body = b"email=lead%40example.org&password=correct+horse+battery+staple";
    let response = http_request(
        addr,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", "same-origin")],
        body,
    );
    assert_eq!(response.status, 303, "sign-in: {}", response.body);
    let cookie = response.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

fn serve(it: &Instance, file: &str) -> Server {
    it.serve_with(
        &["--config", file],
        &[
            ("EMBARGO_JOBS__LEASE_SECONDS", "2"),
            ("EMBARGO_JOBS__POLL_INTERVAL_MS", "50"),
            ("EMBARGO_WEB__REQUIRE_TOTP", "false"),
        ],
    )
}

struct Figures {
    lines: Vec<String>,
}

impl Figures {
    fn add(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_survive_a_killed_instance_and_a_database_crash() {
    let Some(_) = tool("python3") else { return };
    let Some(pg) = require("PostgreSQL", private_postgres()) else {
        return;
    };
    let db = pg.fresh_database();
    let it = Instance::new(BIN, Some(&db));
    let out = it.run(
        &["admin", "create-user", "--email", "lead@example.org", "--role", "admin", "--password-stdin"],
        b"correct horse battery staple\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let file = config(&it, "[mail]\nmessages_per_minute_per_ip = 1000000\nmax_connections_per_ip = 64\n");
    let mut figures = Figures { lines: Vec::new() };

    // Jobs that each commit one row with their completion: a job run twice would show.
    let out = it.run(&["jobs", "probe", "--count", "60", "--hold-ms", "100"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let a = serve(&it, &file);
    let b = serve(&it, &file);
    let smtp = Balancer::new(vec![a.smtp_addr, b.smtp_addr]);
    let web = Balancer::new(vec![a.addr, b.addr]);

    // One session, made through the balancer, is good on both instances.
    let cookie = sign_in(web.addr);
    for server in [&a, &b] {
        let inbox = server.http("GET", "/inbox", &[("cookie", &cookie)], b"");
        assert_eq!(inbox.status, 200, "the session is not known to {}", server.addr);
    }

    // Phase 1: SMTP and web load through the balancers; instance A killed partway.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let log1 = it.path("phase1.log");
    let started = Instant::now();
    let web_load = WebLoad::start(web.addr, cookie.clone());
    let mut load = steady_load(smtp.addr, 0, 600, &log1);
    wait_until("150 messages were accepted", 60, || accepted(&log1).len() >= 150);
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'running'").fetch_one(&pool).await.unwrap();
    let killed_at = started.elapsed().as_secs_f64();
    let before_kill = accepted(&log1).len();
    a.kill();
    smtp.set_backends(vec![b.smtp_addr]);
    web.set_backends(vec![b.addr]);
    assert!(load.wait().unwrap().success(), "the SMTP client failed");
    let phase1 = accepted(&log1);
    let elapsed1 = started.elapsed().as_secs_f64();
    let (ok, failed, gap) = web_load.finish();
    assert_eq!(phase1.len(), 600, "messages never accepted after the kill");
    assert!(before_kill < 600, "the kill came after the load");
    let first_after = phase1.values().filter(|t| **t > killed_at).fold(f64::MAX, |m, t| m.min(*t));
    figures.add(format!(
        "kill: 600 messages in {elapsed1:.1} s ({:.0}/s), {before_kill} accepted before SIGKILL of one instance \
         ({running} jobs running then), next 250 {:.0} ms after it; web: {ok} pages, {failed} failed, \
         longest gap {gap} ms",
        600.0 / elapsed1,
        (first_after - killed_at) * 1000.0
    ));
    // The session made before the kill works on the survivor.
    let inbox = web_load_check(web.addr, &cookie);
    assert_eq!(inbox, 200, "the session did not survive the loss of an instance");

    // Phase 2: A restarted; both behind the balancer; PostgreSQL crashed and restarted
    // mid-load, without touching either instance.
    let a = serve(&it, &file);
    smtp.set_backends(vec![a.smtp_addr, b.smtp_addr]);
    web.set_backends(vec![a.addr, b.addr]);
    let out = it.run(&["jobs", "probe", "--count", "60", "--hold-ms", "100"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    pool.close().await;
    let log2 = it.path("phase2.log");
    let started = Instant::now();
    let web_load = WebLoad::start(web.addr, cookie.clone());
    let mut load = steady_load(smtp.addr, 1000, 600, &log2);
    wait_until("150 more messages were accepted", 60, || accepted(&log2).len() >= 150);
    let before_crash = accepted(&log2).len();
    let crashed_at = started.elapsed().as_secs_f64();
    pg.crash().expect("PostgreSQL stops");
    // `pg_ctl -w` returned: every server process is gone. A 250 logged from half a second
    // later on (time for answers already on the wire) could not have been committed.
    let down_at = started.elapsed().as_secs_f64() + 0.5;
    std::thread::sleep(Duration::from_secs(2));
    let restarted_at = started.elapsed().as_secs_f64();
    pg.start_again().expect("PostgreSQL starts again");
    let back_at = started.elapsed().as_secs_f64();
    assert!(load.wait().unwrap().success(), "the SMTP client failed");
    let phase2 = accepted(&log2);
    let elapsed2 = started.elapsed().as_secs_f64();
    let (ok, failed, gap) = web_load.finish();
    assert_eq!(phase2.len(), 600, "intake did not recover after PostgreSQL came back");
    let during = phase2.values().filter(|t| **t > down_at && **t < restarted_at).count();
    let first_after = phase2.values().filter(|t| **t > back_at).fold(f64::MAX, |m, t| m.min(*t));
    figures.add(format!(
        "database crash: 600 messages in {elapsed2:.1} s, {before_crash} accepted before PostgreSQL was stopped \
         (-m immediate, {:.0} ms) for 2 s, {during} answered 250 while it was down, first 250 {:.0} ms after it was back \
         ({:.1} s to start); web: {ok} pages, {failed} failed, longest gap {gap} ms",
        (down_at - 0.5 - crashed_at) * 1000.0,
        (first_after - back_at) * 1000.0,
        back_at - restarted_at
    ));
    assert_eq!(during, 0, "a message was answered 250 while the database was down");
    assert_eq!(web_load_check(web.addr, &cookie), 200, "the session did not survive the database restart");

    // Every message answered 250 is stored exactly once.
    let reports = crate::smtp::reports(&it);
    let mut stored: HashMap<String, usize> = HashMap::new();
    for r in &reports {
        *stored.entry(r["title"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for n in phase1.keys().chain(phase2.keys()) {
        let count = stored.get(&format!("durability {n}")).copied().unwrap_or(0);
        assert_eq!(count, 1, "message {n} was answered 250 and stored {count} times");
    }
    assert_eq!(reports.len(), 1200, "reports that were never acknowledged appeared");

    // Every job ran to completion and committed its effect once, through the kill and the
    // database crash; both instances took part.
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // Jobs due now (recurring ones wait for their next time and are not counted).
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let open: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT kind, state, attempts FROM jobs WHERE state = 'running' OR (state = 'queued' AND run_at <= {now_ms})"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        if open.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "jobs never finished: {open:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, last_error FROM jobs WHERE state = 'dead'").fetch_all(&pool).await.unwrap();
    assert!(dead.is_empty(), "jobs gave up: {dead:?}");
    let counts: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT j.id, (SELECT COUNT(*) FROM job_probes p WHERE p.job_id = j.id) FROM jobs j \
         WHERE j.kind = 'diagnostic.probe'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(counts.len(), 120);
    for (job, n) in &counts {
        assert_eq!(*n, 1, "probe job {job} committed its effect {n} times");
    }
    let workers: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT worker) FROM job_probes").fetch_one(&pool).await.unwrap();
    assert!(workers >= 2, "the instances did not share the jobs");
    pool.close().await;

    // Every reporter got one acknowledgement per report (the mail jobs ran once each).
    let outbox = it.run(&["outbox", "list", "--json"], b"");
    let outbox: serde_json::Value = serde_json::from_str(&outbox.stdout).unwrap();
    let mut acks: HashMap<String, usize> = HashMap::new();
    for mail in outbox.as_array().unwrap() {
        let subject = mail["subject"].as_str().unwrap();
        if let Some(reference) = subject.split(['[', ']']).nth(1) {
            *acks.entry(reference.to_owned()).or_default() += 1;
        }
    }
    for r in &reports {
        let reference = r["reference"].as_str().unwrap();
        assert_eq!(acks.get(reference).copied().unwrap_or(0), 1, "{reference}: acknowledgements");
    }
    let out = it.run(&["audit", "verify"], b"");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    drop((a, b));
    let bench = std::env::var_os("EMBARGO_CLUSTER_FIGURES").map(PathBuf::from);
    if let Some(path) = bench {
        std::fs::write(path, figures.lines.join("\n") + "\n").unwrap();
    }
}

fn web_load_check(addr: SocketAddr, cookie: &str) -> u16 {
    http_request(addr, "GET", "/inbox", &[("cookie", cookie)], b"").status
}

/// A private HAProxy (own configuration in `dir`, loopback only, foreground).
struct HaProxy {
    child: Child,
}

impl HaProxy {
    fn start(dir: &Path, config: &str, ports: &[u16]) -> Option<Self> {
        let bin = tool("haproxy")?;
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for port in ports {
            crate::smtp::wait_for_port(*port);
        }
        Some(Self { child })
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(args: &[&str]) -> Vec<String> {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/smtp_client.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn behind_haproxy_each_sender_is_the_client_its_proxy_header_names() {
    let Some(_) = tool("python3") else { return };
    for db in embargo_test_support::both_backends() {
        let it = Instance::new(BIN, Some(&db));
        // Three messages a minute per sender; HAProxy's own address is a trusted balancer.
        let file = config(
            &it,
            "[mail]\nmessages_per_minute_per_ip = 3\nmax_connections_per_ip = 2\nproxy_protocol_from = [\"127.0.0.1\"]\n",
        );
        let server = it.serve_with(&["--config", &file], &[]);
        let (v2, v1) = (crate::smtp::free_port(), crate::smtp::free_port());
        let config = format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             frontend smtp_v2\n  bind 127.0.0.1:{v2}\n  default_backend embargo_v2\n\
             backend embargo_v2\n  server a {smtp} send-proxy-v2\n\
             frontend smtp_v1\n  bind 127.0.0.1:{v1}\n  default_backend embargo_v1\n\
             backend embargo_v1\n  server a {smtp} send-proxy\n",
            smtp = server.smtp_addr
        );
        let Some(_haproxy) = HaProxy::start(&it.path(""), &config, &[v2, v1]) else { return };
        let (v2, v1) = (v2.to_string(), v1.to_string());

        // Each sender behind the balancer has its own allowance: were the limit counted
        // against the balancer's address, the second sender would be refused at once.
        let tag = format!("proxied-{}", crate::smtp::rand_suffix());
        let first = client(&["burst", "127.0.0.1", &v2, "127.0.0.2", "4", &format!("{tag}-a")]);
        assert_eq!(first, ["250", "250", "250", "450"], "{}: sender 127.0.0.2 through send-proxy-v2", db.backend);
        let second = client(&["burst", "127.0.0.1", &v2, "127.0.0.3", "3", &format!("{tag}-b")]);
        assert_eq!(second, ["250", "250", "250"], "{}: sender 127.0.0.3 counted with another", db.backend);
        let third = client(&["burst", "127.0.0.1", &v1, "127.0.0.4", "4", &format!("{tag}-c")]);
        assert_eq!(third, ["250", "250", "250", "450"], "{}: sender 127.0.0.4 through send-proxy (v1)", db.backend);

        // A connection from the balancer's address without a header is closed unanswered
        // (it cannot be told from a spoofed one); a header from anyone else is not believed.
        let smtp = server.smtp_addr.port().to_string();
        assert_eq!(client(&["raw", "127.0.0.1", &smtp, "127.0.0.1", "EHLO direct.test"]), ["closed"]);
        let spoof = client(&["raw", "127.0.0.1", &smtp, "127.0.0.5", "PROXY TCP4 192.0.2.1 127.0.0.1 1234 25"]);
        assert!(spoof[0].starts_with("220 "), "{}: {spoof:?}", db.backend);
        assert!(spoof[1].starts_with("500 "), "{}: a PROXY header from a client was taken: {spoof:?}", db.backend);
        assert!(server.logs().contains("no PROXY header within 5 s"), "{}", server.logs());

        let titles: Vec<String> =
            crate::smtp::reports(&it).iter().map(|r| r["title"].as_str().unwrap().to_owned()).collect();
        assert_eq!(titles.iter().filter(|t| t.starts_with(&tag)).count(), 9, "{}: {titles:?}", db.backend);
    }
}
