//! The private CI's sandboxed runner (`embargo_app::sandbox`), with the real `bwrap`,
//! `unshare` and `sh`: each property is checked in every sandbox this machine offers, and
//! where it is meaningful also without a sandbox, to show that the sandbox is what makes the
//! difference. A missing sandbox is skipped with a printed reason, or fails under
//! `EMBARGO_TEST_STRICT=1`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use embargo_app::sandbox::{self, Finished, Isolation, LOG_LIMIT, Outcome, PATH, Spec};
use embargo_test_support::require;

/// The sandboxes to test: bubblewrap and namespaces, each when it works here (otherwise a
/// printed skip, or a failure in strict mode).
fn sandboxes() -> Vec<Isolation> {
    let mut found = Vec::new();
    let bwrap = if sandbox::works(Isolation::Bubblewrap) {
        Ok(())
    } else {
        Err("bwrap is not installed or cannot make namespaces here".to_owned())
    };
    if require("the bubblewrap sandbox (bwrap)", bwrap).is_some() {
        found.push(Isolation::Bubblewrap);
    }
    let unshare = if sandbox::works(Isolation::Namespaces) {
        Ok(())
    } else {
        Err("unshare/setpriv missing or user namespaces disabled".to_owned())
    };
    if require("the namespaces sandbox (unshare)", unshare).is_some() {
        found.push(Isolation::Namespaces);
    }
    found
}

/// A directory of its own under the target directory: outside `/tmp` (private in the
/// sandboxes), so that what the sandbox hides would otherwise be visible.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sandbox-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn spec(workdir: &Path, command: &str) -> Spec {
    Spec {
        workdir: workdir.to_owned(),
        command: command.to_owned(),
        time_limit: Duration::from_secs(120),
        hidden: Vec::new(),
    }
}

async fn run(spec: &Spec, isolation: Isolation) -> (Finished, String) {
    let mut log = Vec::new();
    let finished = sandbox::run_with(spec, isolation, |bytes: &[u8]| log.extend_from_slice(bytes)).await.unwrap();
    assert_eq!(finished.isolation, isolation);
    (finished, String::from_utf8_lossy(&log).into_owned())
}

#[tokio::test]
async fn a_passing_command_passes_and_writes_its_checkout() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let dir = scratch();
        let (finished, log) =
            run(&spec(dir.path(), "echo hello from the test; echo built > artefact"), isolation).await;
        assert_eq!(finished.outcome, Outcome::Passed, "{isolation}: {log}");
        assert!(log.contains("hello from the test\n"), "{isolation}: {log}");
        assert_eq!(std::fs::read_to_string(dir.path().join("artefact")).unwrap(), "built\n", "{isolation}");
        assert!(!finished.log_truncated);
    }
}

#[tokio::test]
async fn a_failing_command_fails_with_its_exit_code() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let dir = scratch();
        let (finished, log) = run(&spec(dir.path(), "echo about to fail; exit 3"), isolation).await;
        assert_eq!(finished.outcome, Outcome::Failed { exit_code: Some(3), signal: None }, "{isolation}: {log}");
        assert!(log.contains("about to fail\n"), "{isolation}: {log}");
    }
}

#[tokio::test]
async fn the_first_line_of_the_log_names_the_isolation_and_warns_without_one() {
    for isolation in sandboxes() {
        let dir = scratch();
        let (_, log) = run(&spec(dir.path(), "true"), isolation).await;
        let first = log.lines().next().unwrap();
        let expected = match isolation {
            Isolation::Bubblewrap => "sandbox: bubblewrap (no network",
            Isolation::Namespaces => "sandbox: Linux namespaces via unshare",
            Isolation::None => unreachable!(),
        };
        assert!(first.starts_with(expected), "{first}");
        assert!(!log.contains("WARNING"), "{log}");
    }
    let dir = scratch();
    let (_, log) = run(&spec(dir.path(), "true"), Isolation::None).await;
    assert!(
        log.starts_with(
            "WARNING: no sandbox on this machine: the command runs with the server's privileges and network"
        ),
        "{log}"
    );
    // This machine's choice is the strongest sandbox that works.
    assert_eq!(sandbox::available(), sandboxes().first().copied().unwrap_or(Isolation::None));
}

#[tokio::test]
async fn the_command_cannot_reach_the_network() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = scratch();
        let command = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo connected to the listener");
        let (finished, log) = run(&spec(dir.path(), &command), isolation).await;
        let accepted = match listener.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("{e}"),
        };
        if isolation.is_sandboxed() {
            assert!(matches!(finished.outcome, Outcome::Failed { .. }), "{isolation}: {log}");
            assert!(!log.contains("connected to the listener"), "{isolation}: {log}");
            assert!(!accepted, "{isolation}: the listener got a connection from the sandbox");
        } else {
            // The same command without a sandbox connects: the test can see a leak.
            assert_eq!(finished.outcome, Outcome::Passed, "{log}");
            assert!(log.contains("connected to the listener"), "{log}");
            assert!(accepted, "the unsandboxed command's connection was not accepted");
        }
    }
}

#[tokio::test]
async fn hidden_paths_cannot_be_read_and_the_checkout_stays_usable() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        // The data directory holds the key and (inside it) the checkout; the checkout holds a
        // hidden directory and a hidden file of its own.
        let root = scratch();
        let data = root.path().join("data");
        let workdir = data.join("ci").join("run-1");
        std::fs::create_dir_all(workdir.join("secrets")).unwrap();
        std::fs::write(data.join("master.key"), "data-key-material\n").unwrap();
        std::fs::write(workdir.join("secrets").join("token"), "token-material\n").unwrap();
        std::fs::write(workdir.join("config.toml"), "config-material\n").unwrap();
        std::fs::write(workdir.join("visible.txt"), "visible-material\n").unwrap();
        let mut spec = spec(&workdir, "");
        spec.hidden = vec![
            data.clone(),
            workdir.join("secrets"),
            workdir.join("config.toml"),
            root.path().join("does-not-exist"),
        ];
        spec.command = format!(
            "cat visible.txt; cat {key}; cat secrets/token; cat config.toml; ls -A {data} | sed 's/^/listed: /'; echo written > new.txt",
            key = data.join("master.key").display(),
            data = data.display()
        );
        let (finished, log) = run(&spec, isolation).await;
        assert!(log.contains("visible-material"), "{isolation}: {log}");
        assert_eq!(std::fs::read_to_string(workdir.join("new.txt")).unwrap(), "written\n", "{isolation}");
        if isolation.is_sandboxed() {
            assert!(log.contains("listed: ci\n"), "{isolation}: {log}");
            for secret in ["data-key-material", "token-material", "config-material", "listed: master.key"] {
                assert!(!log.contains(secret), "{isolation}: {secret} leaked: {log}");
            }
            assert!(matches!(finished.outcome, Outcome::Passed | Outcome::Failed { .. }));
        } else {
            // Without a sandbox the same command reads them all: the test would see a leak.
            for secret in ["data-key-material", "token-material", "config-material", "listed: master.key"] {
                assert!(log.contains(secret), "{secret} not read without a sandbox: {log}");
            }
        }
    }
}

#[tokio::test]
async fn the_sandbox_shows_the_system_read_only_and_nothing_of_the_server() {
    for isolation in sandboxes() {
        let dir = scratch();
        // This project's sources are outside the checkout: bubblewrap does not show them.
        let project = env!("CARGO_MANIFEST_DIR");
        let command = format!(
            "if touch /usr/embargo-sandbox-probe 2>/dev/null; then echo system-writable; fi; \
             if ls {project} >/dev/null 2>&1; then echo project-visible; fi; \
             if echo x > /tmp/probe && cat /tmp/probe >/dev/null; then echo tmp-writable; fi; \
             if [ \"$(id -u)\" = 0 ] && grep -q '^CapEff:\\s*0*$' /proc/self/status; then echo no-capabilities; fi"
        );
        let (finished, log) = run(&spec(dir.path(), &command), isolation).await;
        assert_eq!(finished.outcome, Outcome::Passed, "{isolation}: {log}");
        assert!(log.contains("tmp-writable"), "{isolation}: {log}");
        assert!(!Path::new("/usr/embargo-sandbox-probe").exists());
        assert!(!log.contains("system-writable"), "{isolation}: {log}");
        if isolation == Isolation::Bubblewrap {
            assert!(!log.contains("project-visible"), "{log}");
        }
        if running_as_root() {
            assert!(log.contains("no-capabilities"), "{isolation}: {log}");
        }
    }
}

/// Whether these tests run as root (then the sandbox's root must have no capabilities).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

const SECRET_VARIABLE: &str = "EMBARGO_SANDBOX_TEST_SECRET";
const SECRET_VALUE: &str = "s3cret-of-the-server-7f2c";

/// The test binary runs itself again with a secret in its environment (setting a variable
/// in this process would take unsafe code), and that run checks that no sandbox passes it on.
#[test]
fn the_environment_is_scrubbed() {
    if std::env::var(SECRET_VARIABLE).is_ok() {
        return check_scrubbed_environment();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["the_environment_is_scrubbed", "--exact", "--nocapture", "--test-threads=1"])
        .env(SECRET_VARIABLE, SECRET_VALUE)
        .env("DATABASE_URL", format!("postgres://embargo:{SECRET_VALUE}@db/embargo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("scrubbed environment checked"), "{stdout}");
}

fn check_scrubbed_environment() {
    assert_eq!(std::env::var(SECRET_VARIABLE).unwrap(), SECRET_VALUE);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let dir = scratch();
        let (finished, log) = runtime.block_on(run(&spec(dir.path(), "echo BEGIN; env; echo END"), isolation));
        assert_eq!(finished.outcome, Outcome::Passed, "{log}");
        assert!(!log.contains(SECRET_VALUE), "{isolation}: the server's secret leaked: {log}");
        let env = log.split("BEGIN\n").nth(1).unwrap().split("END\n").next().unwrap();
        let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
        for (name, _) in &vars {
            // What sh itself adds (PWD, SHLVL, OLDPWD, _) is fine; nothing of the server.
            assert!(
                ["PATH", "HOME", "LANG", "CI", "PWD", "SHLVL", "OLDPWD", "_"].contains(name),
                "{isolation}: {name} leaked: {env}"
            );
        }
        assert!(vars.contains(&("PATH", PATH)), "{env}");
        assert!(vars.contains(&("LANG", "C.UTF-8")), "{env}");
        assert!(vars.contains(&("CI", "true")), "{env}");
        assert!(vars.iter().any(|(name, _)| *name == "HOME"), "{env}");
        println!("scrubbed environment checked: {isolation}");
    }
}

#[tokio::test]
async fn output_streams_while_the_command_runs_in_the_order_written() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let dir = scratch();
        // The command waits for a file that the test creates only after it saw the first
        // lines: the log must arrive while the command is still running.
        let spec = spec(
            dir.path(),
            "echo out-1; echo err-1 >&2; echo out-2; while [ ! -e release ]; do sleep 0.05; done; echo after-release",
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let task = tokio::spawn(async move {
            sandbox::run_with(&spec, isolation, move |bytes: &[u8]| {
                let _ = tx.send(bytes.to_vec());
            })
            .await
        });
        let mut seen = String::new();
        while !seen.contains("out-2\n") {
            let chunk = rx.recv().await.expect("the run ended before its first lines arrived");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!task.is_finished(), "{isolation}");
        assert!(!seen.contains("after-release"), "{isolation}");
        std::fs::write(dir.path().join("release"), "").unwrap();
        let finished = task.await.unwrap().unwrap();
        while let Some(chunk) = rx.recv().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert_eq!(finished.outcome, Outcome::Passed, "{isolation}: {seen}");
        // stdout and stderr share one pipe: the log is in the order the command wrote.
        assert!(seen.contains("out-1\nerr-1\nout-2\nafter-release\n"), "{isolation}: {seen}");
    }
}

/// The processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker)))
        .map(|e| e.path())
        .collect()
}

#[tokio::test]
async fn at_the_time_limit_the_whole_process_tree_is_killed() {
    for (n, isolation) in sandboxes().into_iter().chain([Isolation::None]).enumerate() {
        let dir = scratch();
        // Unique sleep durations mark the processes: one that ignores SIGTERM, one in the
        // background, one in a session of its own.
        let marker = format!("1000.{}{n}", std::process::id());
        let [ignores_term, background, own_session] = [1, 2, 3].map(|i| format!("{marker}{i}"));
        let mut spec = spec(
            dir.path(),
            &format!(
                "sh -c \"trap '' TERM; sleep {ignores_term}; :\" & sleep {background} & setsid sleep {own_session} & echo started; wait"
            ),
        );
        spec.time_limit = Duration::from_secs(5);
        let mut running_before = None;
        let mut log = Vec::new();
        let finished = sandbox::run_with(&spec, isolation, |bytes: &[u8]| {
            log.extend_from_slice(bytes);
            if running_before.is_none() && String::from_utf8_lossy(&log).contains("started\n") {
                running_before = Some([&ignores_term, &background, &own_session].map(|m| processes_with(m).len()));
            }
        })
        .await
        .unwrap();
        let log = String::from_utf8_lossy(&log);
        assert_eq!(finished.outcome, Outcome::TimedOut, "{isolation}: {log}");
        assert!(log.contains("[time limit of 5s reached"), "{log}");
        let before = running_before.expect("the command never started");
        assert!(before.iter().all(|&count| count > 0), "{isolation}: {before:?}");
        // Nothing survives the run: checked right when it returns.
        for m in [&ignores_term, &background, &own_session] {
            assert_eq!(processes_with(m), Vec::<PathBuf>::new(), "{isolation}: {m} survived");
        }
        assert!(finished.duration < Duration::from_secs(100), "{isolation}: {:?}", finished.duration);
    }
}

#[tokio::test]
async fn the_log_is_capped_and_the_command_still_finishes() {
    let isolation = sandbox::available();
    let dir = scratch();
    let (finished, log) =
        run(&spec(dir.path(), "head -c 6000000 /dev/zero | tr '\\0' x; echo; echo finished"), isolation).await;
    assert_eq!(finished.outcome, Outcome::Passed, "{}", &log[..200]);
    assert!(finished.log_truncated);
    let note = format!("\n[log truncated: output beyond {LOG_LIMIT} bytes was discarded]\n");
    assert_eq!(log.len(), LOG_LIMIT + note.len());
    assert!(log.ends_with(&note));
    assert!(!log.contains("finished"));
}

#[tokio::test]
async fn a_missing_checkout_is_an_error_and_a_hidden_checkout_is_refused() {
    let dir = scratch();
    let err = sandbox::run_with(&spec(&dir.path().join("missing"), "true"), Isolation::None, |_: &[u8]| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let mut hidden = spec(dir.path(), "true");
    hidden.hidden = vec![dir.path().to_owned()];
    let err = sandbox::run_with(&hidden, Isolation::None, |_: &[u8]| {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_cancelled_run_kills_the_process_tree() {
    for (n, isolation) in sandboxes().into_iter().chain([Isolation::None]).enumerate() {
        let dir = scratch();
        let marker = format!("1001.{}{n}", std::process::id());
        let [background, own_session] = [1, 2].map(|i| format!("{marker}{i}"));
        let spec = spec(dir.path(), &format!("sleep {background} & setsid sleep {own_session} & echo started; wait"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let task = tokio::spawn(async move {
            sandbox::run_with(&spec, isolation, move |bytes: &[u8]| {
                let _ = tx.send(bytes.to_vec());
            })
            .await
        });
        let mut seen = String::new();
        while !seen.contains("started\n") {
            seen.push_str(&String::from_utf8_lossy(&rx.recv().await.expect("the run ended before it started")));
        }
        assert!(!processes_with(&background).is_empty() && !processes_with(&own_session).is_empty(), "{isolation}");
        // The CI job's future is dropped (a shutdown, a cancelled run).
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        // The kill is sent when the run is dropped; SIGKILL takes effect shortly after.
        let mut left = Vec::new();
        for _ in 0..200 {
            left = [&background, &own_session].into_iter().flat_map(|m| processes_with(m)).collect();
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(left, Vec::<PathBuf>::new(), "{isolation}: survived the cancelled run");
    }
}

#[tokio::test]
async fn a_command_killed_by_a_signal_fails() {
    for isolation in sandboxes().into_iter().chain([Isolation::None]) {
        let dir = scratch();
        let (finished, log) = run(&spec(dir.path(), "echo before; kill -KILL $$"), isolation).await;
        assert!(log.contains("before\n"), "{isolation}: {log}");
        match isolation {
            // The sandbox's own process reports its command's death by signal as 128 + 9.
            Isolation::Bubblewrap | Isolation::Namespaces => {
                assert_eq!(finished.outcome, Outcome::Failed { exit_code: Some(137), signal: None }, "{isolation}");
            }
            Isolation::None => assert_eq!(finished.outcome, Outcome::Failed { exit_code: None, signal: Some(9) }),
        }
    }
}
