//! The Debian package (ADR 31, docs/upgrading.md), built with cargo-deb from the binary under
//! test and checked with the real tools:
//!
//! - its contents and control data (`dpkg-deb`): the binary, the unit, the configuration as
//!   a conffile readable by no one else, the maintainer scripts;
//! - as root (as CI runs), a real `dpkg -i` on this machine: the user, group and modes the
//!   maintainer scripts make, `systemd-analyze verify` of the installed unit and its
//!   `security` exposure, and the installed binary started as the `embargo` user on the
//!   packaged configuration, serving a page from the packaged data directory; then
//!   `dpkg --purge` and everything the test made removed. Not as root, that part is skipped
//!   (a failure under EMBARGO_TEST_STRICT=1).
//!
//! Not verified here: the unit running under a live systemd (the container has none as PID
//! 1), which `systemd-analyze verify` stands in for.

use std::path::{Path, PathBuf};
use std::process::Command;

use embargo_test_support::Server;
use embargo_test_support::require;

use crate::BIN;

fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(program: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(program, args);
    assert_eq!(code, 0, "{program} {args:?}: {stdout}{stderr}");
    stdout
}

fn tool(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// Builds the package from the binary under test: a debug build, stripped of its symbols
/// stripped first (as the release profile's package would be), so that packing stays quick.
/// The release package is the same recipe: `cargo deb -p embargo`.
fn build_package(out: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // cargo-deb takes the binary from <target dir>/release (it refuses the dev profile).
    let target_dir = out.join("target");
    std::fs::create_dir_all(target_dir.join("release")).unwrap();
    let binary = target_dir.join("release/embargo");
    ok("strip", &["--strip-all", "-o", binary.to_str().unwrap(), BIN]);
    let deb = out.join("embargo.deb");
    let status = Command::new("cargo")
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["deb", "-p", "embargo", "--no-build", "--no-strip", "--fast", "-Z", "gz", "--compress-system"])
        .arg("--output")
        .arg(&deb)
        .status()
        .expect("cargo deb runs");
    assert!(status.success(), "cargo deb failed");
    deb
}

#[test]
fn the_debian_package_installs_and_its_service_starts() {
    if require("cargo-deb", tool("cargo", &["deb", "--version"])).is_none()
        || require("strip (binutils)", tool("strip", &["--version"])).is_none()
        || require("dpkg-deb", tool("dpkg-deb", &["--version"])).is_none()
        || require("systemd-analyze", tool("systemd-analyze", &["--version"])).is_none()
    {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_package(scratch.path());
    let deb_path = deb.to_str().unwrap();

    // What the package holds, with owners and modes.
    let contents = ok("dpkg-deb", &["--contents", deb_path]);
    let entry = |path: &str| -> String {
        contents
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{contents}"))
            .to_owned()
    };
    // `dpkg-deb --contents` prints "MODE OWNER/GROUP SIZE DATE TIME PATH", owners as names or ids.
    let mode_owner = |path: &str| -> (String, String) {
        let line = entry(path);
        let mut fields = line.split_whitespace();
        let mode = fields.next().unwrap_or_default().to_owned();
        let owner = fields.next().unwrap_or_default().replace("root", "0");
        (mode, owner)
    };
    assert_eq!(mode_owner("usr/bin/embargo"), ("-rwxr-xr-x".into(), "0/0".into()));
    assert_eq!(mode_owner("etc/embargo/embargo.toml"), ("-rw-r-----".into(), "0/0".into()));
    assert_eq!(mode_owner("usr/share/doc/embargo/upgrading.md").0, "-rw-r--r--");
    // The production PostgreSQL settings, to include from postgresql.conf (docs/postgresql.md).
    assert_eq!(mode_owner("usr/share/doc/embargo/postgresql/embargo.conf").0, "-rw-r--r--");
    assert_eq!(mode_owner("usr/share/doc/embargo/postgresql.md").0, "-rw-r--r--");
    let unit = ["lib/systemd/system/embargo.service", "usr/lib/systemd/system/embargo.service"]
        .into_iter()
        .find(|p| contents.lines().any(|l| l.ends_with(&format!(" ./{p}"))))
        .unwrap_or_else(|| panic!("no unit in the package:\n{contents}"));
    let control = scratch.path().join("control");
    ok("dpkg-deb", &["--control", deb_path, control.to_str().unwrap()]);
    let read = |name: &str| std::fs::read_to_string(control.join(name)).unwrap_or_default();
    assert_eq!(read("conffiles").trim(), "/etc/embargo/embargo.toml");
    assert!(read("control").contains("Package: embargo"), "{}", read("control"));
    assert!(read("postinst").contains("useradd --system"), "{}", read("postinst"));
    assert!(read("postinst").contains("deb-systemd-helper"), "the unit's snippet is missing:\n{}", read("postinst"));

    // The packaged configuration is one this binary accepts, and says /var/lib/embargo.
    let root = scratch.path().join("root");
    ok("dpkg-deb", &["-x", deb_path, root.to_str().unwrap()]);
    let config = std::fs::read_to_string(root.join("etc/embargo/embargo.toml")).unwrap();
    assert!(config.contains("\ndata_dir = \"/var/lib/embargo\"\n"));

    let is_root = run("id", &["-u"]).1.trim() == "0";
    let installed = require(
        "root (to install the package with dpkg)",
        if is_root { Ok(()) } else { Err("not running as root".to_owned()) },
    );
    if installed.is_none() {
        return;
    }
    install_and_start(deb_path, unit);
}

/// Removes what installing the package made, however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "embargo"]);
        let _ = run("userdel", &["embargo"]);
        let _ = run("groupdel", &["embargo"]);
        let _ = std::fs::remove_dir_all("/var/lib/embargo");
        let _ = std::fs::remove_dir_all("/etc/embargo");
    }
}

fn dpkg_install(deb: &str) {
    // Another process (apt) may hold dpkg's lock for a while: wait for it, a bounded time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let (code, stdout, stderr) = run("dpkg", &["-i", deb]);
        if code == 0 {
            return;
        }
        let locked = stderr.contains("lock");
        assert!(locked && std::time::Instant::now() < deadline, "dpkg -i: {stdout}{stderr}");
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

fn install_and_start(deb: &str, unit: &str) {
    let (code, ..) = run("dpkg-query", &["-W", "embargo"]);
    assert_ne!(code, 0, "a package named embargo is already installed here; the test will not touch it");
    assert!(!Path::new("/var/lib/embargo").exists(), "/var/lib/embargo exists; the test will not touch it");
    let _cleanup = Installed;
    dpkg_install(deb);

    // The maintainer scripts: a system user without a shell, the modes of what it reads.
    let passwd = ok("getent", &["passwd", "embargo"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!((fields[5], fields[6]), ("/var/lib/embargo", "/usr/sbin/nologin"), "{passwd}");
    assert!(fields[2].parse::<u32>().unwrap() < 1000, "a system user: {passwd}");
    let stat = |path: &str| ok("stat", &["-c", "%a %U:%G", path]).trim().to_owned();
    assert_eq!(stat("/var/lib/embargo"), "750 embargo:embargo");
    assert_eq!(stat("/etc/embargo"), "750 root:embargo");
    assert_eq!(stat("/etc/embargo/embargo.toml"), "640 root:embargo");
    assert_eq!(stat("/usr/bin/embargo"), "755 root:root");
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "embargo"]);
    assert!(conffiles.contains("/etc/embargo/embargo.toml"), "{conffiles}");

    // The unit as systemd reads it, and how exposed the service is (0 best, 10 worst).
    let unit_path = format!("/{unit}");
    let (code, stdout, stderr) = run("systemd-analyze", &["verify", &unit_path]);
    assert_eq!(code, 0, "systemd-analyze verify: {stdout}{stderr}");
    assert!(!stderr.contains("embargo.service"), "systemd-analyze verify warns: {stderr}");
    let security = ok("systemd-analyze", &["security", "--offline=yes", &unit_path]);
    let exposure: f64 = security
        .lines()
        .find_map(|l| l.split("Overall exposure level for embargo.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{security}"));
    assert!(exposure <= 3.0, "exposure {exposure}:\n{security}");

    // The installed binary, as the service user, on the packaged configuration: it makes
    // its instance in /var/lib/embargo and serves pages.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=embargo", "--regid=embargo", "--init-groups", "--"])
        .args(["/usr/bin/embargo", "--config", "/etc/embargo/embargo.toml", "serve"])
        .args(["--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0"])
        .current_dir("/var/lib/embargo");
    for (key, _) in std::env::vars() {
        if key.starts_with("EMBARGO_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("EMBARGO_METRICS_LISTEN", "127.0.0.1:0").env("EMBARGO_MAIL__CHECK_SENDER_AUTHENTICATION", "false");
    let server = Server::start(cmd);
    assert_eq!(server.http("GET", "/healthz", &[], b"").status, 200, "{}", server.logs());
    let page = server.http("GET", "/report", &[], b"");
    assert_eq!(page.status, 200, "{}", server.logs());
    let policy = server.http("GET", "/.well-known/security.txt", &[], b"");
    assert!(
        policy.body.contains("mailto:security@example.org"),
        "the packaged configuration's address: {}",
        policy.body
    );
    assert_eq!(stat("/var/lib/embargo/master.key"), "600 embargo:embargo");
    assert_eq!(server.terminate(std::time::Duration::from_secs(20)), Some(0));
}
