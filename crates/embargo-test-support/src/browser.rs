//! A headless Chromium for end-to-end tests, driven over WebDriver (`chromedriver`), with
//! axe-core accessibility checks and screenshots.
//!
//! [`Browser::start`] runs `/usr/bin/chromedriver` on a free loopback port (it picks the port
//! itself: `--port=0`) in its own process group, and opens a headless Chromium session with a
//! fresh profile directory. Dropping the [`Browser`] (or [`Browser::quit`]) kills that whole
//! process group; a detached watchdog does the same if the test process dies first, so no
//! browser outlives its tests.
//!
//! Without Chromium or chromedriver (Debian: `chromium`, `chromium-driver`) the browser tests
//! are skipped, or fail under `EMBARGO_TEST_STRICT=1` (see [`crate::require`]).
//!
//! axe-core comes from the npm package that `.ci/run` installs into `.ci/node/node_modules`
//! (`npm ci --prefix .ci/node`), or from the file named by `EMBARGO_AXE_JS`. It is injected
//! through WebDriver's script execution, which Chrome runs outside the page's Content Security
//! Policy, so pages under a strict CSP (`default-src 'none'; script-src 'self'`) can be
//! checked as they are served.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use thirtyfour::{ChromeCapabilities, ChromiumLikeCapabilities, DesiredCapabilities, WebDriver};

/// The Chromium binary (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server for it (Debian's `chromium-driver` package).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The axe-core rule tags that [`Browser::axe_serious`] runs: WCAG 2.0 and 2.1, levels A and AA.
pub const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// How long chromedriver may take to listen and Chromium to open a session.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Browser::quit`] waits for the browser to close before killing it.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line switches for Chromium. `--no-sandbox` is needed when the tests run as root
/// (as CI does); the rest keep the browser quiet, deterministic and off the network.
///
/// Even with background networking off, Chromium (with Debian's default flags) still tries
/// Google's account, update, time and model servers and preconnects to its search engine.
/// The host resolver rule answers every name but the loopback ones with "not found" inside
/// the browser, so none of that reaches DNS or leaves the machine; pages under test are
/// served on 127.0.0.1 or localhost.
const CHROMIUM_ARGS: &[&str] = &[
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A headless Chromium session and the chromedriver serving it.
#[derive(Debug)]
pub struct Browser {
    // The profile directory is removed (field drop) after `Drop::drop` has killed the
    // processes that use it.
    driver: Option<WebDriver>,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `/usr/bin/chromedriver` on a free 127.0.0.1 port and a headless Chromium session.
    ///
    /// Returns `None` after printing `skipped: ...` (via [`crate::require`]) when Chromium or
    /// chromedriver is missing, or when they are installed but cannot start a session (for
    /// example a chromedriver of another version than the browser); under
    /// `EMBARGO_TEST_STRICT=1` both panic instead.
    pub async fn start() -> Option<Browser> {
        // thirtyfour's HTTP client is reqwest, built (through feature unification with the CVE
        // Services client) without a default rustls crypto provider: name ring, as everything
        // else here does. An error only means a provider was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::require("Chromium", found(CHROMIUM, "chromium"))?;
        crate::require("chromedriver", found(CHROMEDRIVER, "chromium-driver"))?;
        crate::require("headless Chromium", Self::launch().await)
    }

    async fn launch() -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let log = profile.path().join("chromedriver.log");
        let user_data = profile.path().join("profile");

        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Chromium's crash database and caches go to ~/.config and ~/.cache otherwise.
            .env("XDG_CONFIG_HOME", profile.path().join("config"))
            .env("XDG_CACHE_HOME", profile.path().join("cache"));
        // A process group of its own, led by chromedriver: Chromium and its helpers join it, so
        // one signal to the group ends them all.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {CHROMEDRIVER}: {e}"))?;
        spawn_watchdog(child.id(), profile.path());

        let port = match wait_for_port(&mut child).await {
            Ok(port) => port,
            Err(e) => {
                kill_group(&mut child);
                return Err(format!("{e}{}", log_tail(&log)));
            }
        };

        let mut browser = Browser { driver: None, chromedriver: child, _profile: profile };
        match new_session(port, &user_data).await {
            Ok(driver) => {
                browser.driver = Some(driver);
                Ok(browser)
            }
            Err(e) => Err(format!("{e}{}", log_tail(&log))),
        }
    }

    /// The WebDriver session.
    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("browser session")
    }

    /// Runs axe-core (the WCAG 2.0/2.1 A and AA rules, [`AXE_TAGS`]) on the current page and
    /// returns the violations whose impact is `serious` or `critical`, as (rule id, help text,
    /// number of offending nodes).
    ///
    /// Without axe-core (see the module documentation) this prints `skipped: ...` and returns
    /// no violations, or panics under `EMBARGO_TEST_STRICT=1`.
    pub async fn axe_serious(&self) -> Vec<(String, String, usize)> {
        let Some(source) = crate::require("axe-core", axe_source()) else {
            return Vec::new();
        };
        let driver = self.driver();
        let loaded = driver
            .execute("return typeof window.axe === 'object' && typeof window.axe.run === 'function';", Vec::new())
            .await
            .expect("checking for axe-core");
        if loaded.json() != &serde_json::Value::Bool(true) {
            // Scripts run through WebDriver are not subject to the page's CSP; the library
            // assigns itself to `window.axe` (there is no `module` in that scope).
            driver.execute(source.as_str(), Vec::new()).await.expect("injecting axe-core");
        }
        let tags = serde_json::to_value(AXE_TAGS).expect("tags");
        let ret = driver
            .execute_async(
                r#"
                const tags = arguments[0];
                const done = arguments[arguments.length - 1];
                if (typeof window.axe !== 'object') {
                    done({ error: 'axe-core did not load into the page' });
                    return;
                }
                window.axe
                    .run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
                    .then(
                        (results) => done({
                            violations: results.violations.map((v) => ({
                                id: v.id,
                                impact: v.impact,
                                help: v.help,
                                nodes: v.nodes.length,
                            })),
                        }),
                        (err) => done({ error: String(err && err.stack || err) }),
                    );
                "#,
                vec![tags],
            )
            .await
            .expect("running axe-core");
        parse_axe(ret.json())
    }

    /// Runs every axe-core rule that is on by default (all tags, best practices included) on
    /// the current page and panics listing each violation of any impact (rule, impact, help
    /// and up to five offending elements), naming the page's address.
    ///
    /// Without axe-core this prints `skipped: ...` and returns, or panics under
    /// `EMBARGO_TEST_STRICT=1` (see [`Browser::axe_serious`]).
    pub async fn assert_axe_clean(&self) {
        let Some(source) = crate::require("axe-core", axe_source()) else {
            return;
        };
        let driver = self.driver();
        self.inject_axe(&source).await;
        let ret = driver
            .execute_async(
                r#"
                const done = arguments[arguments.length - 1];
                if (typeof window.axe !== 'object') {
                    done({ error: 'axe-core did not load into the page' });
                    return;
                }
                window.axe
                    .run(document, { resultTypes: ['violations'] })
                    .then(
                        (results) => done({
                            violations: results.violations.map((v) => ({
                                id: v.id,
                                impact: v.impact,
                                help: v.help,
                                nodes: v.nodes.slice(0, 5).map((n) => String(n.target) + ': ' + n.failureSummary),
                            })),
                        }),
                        (err) => done({ error: String(err && err.stack || err) }),
                    );
                "#,
                Vec::new(),
            )
            .await
            .expect("running axe-core");
        let value = ret.json();
        if let Some(error) = value.get("error") {
            panic!("axe-core failed: {error}");
        }
        let violations = value.get("violations").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        if !violations.is_empty() {
            let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let list: Vec<String> = violations
                .iter()
                .map(|v| {
                    format!(
                        "{} ({}): {}\n    {}",
                        v["id"].as_str().unwrap_or_default(),
                        v["impact"].as_str().unwrap_or("none"),
                        v["help"].as_str().unwrap_or_default(),
                        v["nodes"]
                            .as_array()
                            .map(|n| n.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n    "))
                            .unwrap_or_default()
                    )
                })
                .collect();
            panic!("axe-core finds {} violation(s) on {url}:\n{}", list.len(), list.join("\n"));
        }
    }

    async fn inject_axe(&self, source: &str) {
        let driver = self.driver();
        let loaded = driver
            .execute("return typeof window.axe === 'object' && typeof window.axe.run === 'function';", Vec::new())
            .await
            .expect("checking for axe-core");
        if loaded.json() != &serde_json::Value::Bool(true) {
            driver.execute(source, Vec::new()).await.expect("injecting axe-core");
        }
    }

    /// For each width (CSS pixels; the height is 900), resizes the viewport and panics when
    /// the current page scrolls sideways (`document.documentElement.scrollWidth >
    /// innerWidth`), naming the widest elements that stick out. The viewport is left at the
    /// last width.
    pub async fn assert_no_horizontal_overflow(&self, widths: &[u32]) {
        let driver = self.driver();
        for &w in widths {
            self.resize(w, 900).await;
            let ret = driver
                .execute(
                    r#"
                    const inner = window.innerWidth;
                    const scroll = document.documentElement.scrollWidth;
                    const culprits = [];
                    if (scroll > inner) {
                        for (const el of document.querySelectorAll('body *')) {
                            const r = el.getBoundingClientRect();
                            if ((r.right > inner + 0.5 && r.width > 0) || el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible') {
                                let name = el.tagName.toLowerCase();
                                if (el.id) name += '#' + el.id;
                                if (el.className && typeof el.className === 'string') name += '.' + el.className.trim().split(/\s+/).join('.');
                                culprits.push(name + ' (right edge ' + Math.round(r.right) + ')');
                                if (culprits.length >= 8) break;
                            }
                        }
                    }
                    return [inner, scroll, culprits];
                    "#,
                    Vec::new(),
                )
                .await
                .expect("measuring the page width");
            let (inner, scroll, culprits): (u32, u32, Vec<String>) = ret.convert().expect("widths");
            if scroll > inner {
                let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                panic!(
                    "{url} scrolls sideways at {w} px: scrollWidth {scroll} > innerWidth {inner}; sticking out: {}",
                    culprits.join(", ")
                );
            }
        }
    }

    /// Submits bad input through a form of the current page and checks that the same form
    /// comes back with the field marked and the input kept.
    ///
    /// `form` is a CSS selector of the form; `values` are (field name, value) pairs set in it
    /// (text fields, text areas, selects; by script, so long values are quick); `field` is the
    /// name of the field that must come back marked. The form is submitted with its first
    /// submit button (`submit_css`, when given, names another one inside the form), and the
    /// answer must be the same form (`form` matches again) whose `field` has
    /// `aria-invalid="true"` and an `aria-describedby` naming a non-empty error message, and
    /// whose fields hold the values sent (password fields excepted). Returns the error
    /// message shown.
    pub async fn assert_bad_input_kept(
        &self,
        form: &str,
        values: &[(&str, &str)],
        field: &str,
        submit_css: Option<&str>,
    ) -> String {
        use thirtyfour::prelude::*;
        let driver = self.driver();
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let form_el = driver.find(By::Css(form)).await.unwrap_or_else(|e| panic!("no form {form} on {url}: {e}"));
        for (name, value) in values {
            let set = driver
                .execute(
                    r#"
                    const [form, name, value] = arguments;
                    const el = form.querySelector('[name="' + CSS.escape(name) + '"]');
                    if (!el) return false;
                    el.value = value;
                    return true;
                    "#,
                    vec![form_el.to_json().expect("element"), serde_json::json!(name), serde_json::json!(value)],
                )
                .await
                .expect("setting a field");
            assert_eq!(set.json(), &serde_json::Value::Bool(true), "no field {name} in {form} on {url}");
        }
        let old = driver.find(By::Tag("html")).await.expect("page");
        let button = match submit_css {
            Some(css) => form_el.find(By::Css(css)).await,
            None => form_el.find(By::Css("button[type=submit], input[type=submit], button:not([type])")).await,
        }
        .unwrap_or_else(|e| panic!("no submit button in {form} on {url}: {e}"));
        // A script click, so a button under a sticky header is still pressed.
        driver.execute("arguments[0].click();", vec![button.to_json().expect("element")]).await.expect("submitting");
        let mut left = false;
        for _ in 0..400 {
            if !old.is_present().await.unwrap_or(false) {
                left = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(left, "submitting {form} on {url} did not load a page");
        let answer = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let ret = driver
            .execute(
                r#"
                const [formCss, field, values] = arguments;
                const form = document.querySelector(formCss);
                if (!form) return { error: 'the form ' + formCss + ' is not on the answer: ' + document.title + ': ' + (document.querySelector('main') || document.body).innerText.slice(0, 400) };
                const el = form.querySelector('[name="' + CSS.escape(field) + '"]:not([type=hidden])');
                if (!el) return { error: 'no field ' + field + ' in the answer' };
                if (el.getAttribute('aria-invalid') !== 'true') return { error: 'the field ' + field + ' is not marked aria-invalid' };
                const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
                const texts = ids.map((id) => document.getElementById(id)).filter(Boolean).map((e) => e.textContent.trim()).filter(Boolean);
                if (!texts.length) return { error: 'the field ' + field + ' names no error message in aria-describedby' };
                for (const [name, value] of values) {
                    const f = form.querySelector('[name="' + CSS.escape(name) + '"]');
                    if (!f) return { error: 'no field ' + name + ' in the answer' };
                    if (f.type !== 'password' && f.value !== value.replace(/\r\n?/g, '\n')) return { error: 'the field ' + name + ' came back as ' + JSON.stringify(f.value.slice(0, 80)) + ', not as sent' };
                }
                return { message: texts.join(' ') };
                "#,
                vec![
                    serde_json::json!(form),
                    serde_json::json!(field),
                    serde_json::json!(values.iter().map(|(n, v)| vec![*n, *v]).collect::<Vec<_>>()),
                ],
            )
            .await
            .expect("checking the answer");
        let value = ret.json();
        if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
            panic!("bad input in {form} on {url} (answered by {answer}): {error}");
        }
        value.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned()
    }

    /// Saves a PNG screenshot of the current page (the visible viewport) to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.driver().screenshot_as_png().await.expect("taking a screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Sets the size of the viewport, in CSS pixels (for example 390×844 for a phone): the
    /// window is resized so that `window.innerWidth` × `window.innerHeight` is `w` × `h`
    /// (headless Chromium still counts a browser frame into the window's size).
    pub async fn resize(&self, w: u32, h: u32) {
        let driver = self.driver();
        let fail = |e: thirtyfour::error::WebDriverError| -> ! { panic!("resizing the viewport to {w}x{h}: {e}") };
        driver.set_window_rect(0, 0, w, h).await.unwrap_or_else(|e| fail(e));
        let (inner_w, inner_h): (u32, u32) = driver
            .execute("return [window.innerWidth, window.innerHeight];", Vec::new())
            .await
            .and_then(|ret| ret.convert())
            .unwrap_or_else(|e| fail(e));
        if (inner_w, inner_h) != (w, h) {
            let outer_w = (2 * w).saturating_sub(inner_w);
            let outer_h = (2 * h).saturating_sub(inner_h);
            driver.set_window_rect(0, 0, outer_w, outer_h).await.unwrap_or_else(|e| fail(e));
        }
    }

    /// Ends the session (closing Chromium gracefully), then chromedriver and everything it
    /// started.
    pub async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            let spare = driver.clone();
            match tokio::time::timeout(QUIT_TIMEOUT, driver.quit()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("closing the browser session: {e}"),
                Err(_) => {
                    eprintln!("closing the browser session: no answer within {}s", QUIT_TIMEOUT.as_secs());
                    // Keeps thirtyfour's blocking fallback off (see Drop): the kill ends it.
                    let _ = spare.leak();
                }
            }
        }
        // Drop kills the process group; then the profile directory is removed.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.chromedriver);
        // A WebDriver session that was not quit would otherwise be ended by thirtyfour's own
        // Drop with a blocking HTTP request, which waits out its 120 s timeout when called
        // from a current-thread runtime (as `#[tokio::test]` is): its pooled connection
        // belongs to the very runtime that Drop blocks. The processes are dead by now, so the
        // session is merely marked as ended (in every clone of the handle).
        if let Some(driver) = self.driver.take() {
            let _ = driver.leak();
        }
    }
}

fn found(path: &str, package: &str) -> Result<(), String> {
    if Path::new(path).is_file() { Ok(()) } else { Err(format!("{path} not found (install Debian's {package})")) }
}

/// Reads chromedriver's standard output until it says which port it listens on, then keeps
/// draining it on the same thread so that the server never blocks on a full pipe.
async fn wait_for_port(child: &mut Child) -> Result<u16, String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("started successfully on port ").nth(1)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
            }
        }
    });
    let waited = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT)).await.expect("waiting thread");
    match waited {
        Ok(Some(port)) => Ok(port),
        Ok(None) => Err("chromedriver printed an unreadable port".to_owned()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("chromedriver did not start listening within {}s", START_TIMEOUT.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("chromedriver exited before listening".to_owned()),
    }
}

fn capabilities(user_data: &Path) -> thirtyfour::error::WebDriverResult<ChromeCapabilities> {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM)?;
    for arg in CHROMIUM_ARGS {
        caps.add_arg(arg)?;
    }
    caps.add_arg(&format!("--user-data-dir={}", user_data.display()))?;
    Ok(caps)
}

async fn new_session(port: u16, user_data: &Path) -> Result<WebDriver, String> {
    let caps = capabilities(user_data).map_err(|e| format!("capabilities: {e}"))?;
    let server = format!("http://127.0.0.1:{port}");
    let driver = tokio::time::timeout(START_TIMEOUT, WebDriver::new(server, caps))
        .await
        .map_err(|_| format!("no browser session within {}s", START_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot start a session of {CHROMIUM}: {e}"))?;
    if let Err(e) = driver.set_script_timeout(Duration::from_secs(60)).await {
        let _ = driver.quit().await;
        return Err(format!("setting the script timeout: {e}"));
    }
    Ok(driver)
}

/// SIGKILL to chromedriver's process group (chromedriver, Chromium and its helpers), then
/// reaps chromedriver. Called once, before anything else reaps chromedriver: until then its
/// process id cannot be reused, so the group id names this group and no other.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .arg(format!("-{}", child.id()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A detached shell that kills the process group when the test process is gone (say, killed
/// by a timeout) while the group still exists, and then removes the profile directory.
fn spawn_watchdog(pgid: u32, profile: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null && kill -0 -{pgid} 2>/dev/null; do sleep 0.5; done; \
         if ! kill -0 {pid} 2>/dev/null; then kill -KILL -{pgid} 2>/dev/null; sleep 0.5; rm -rf '{profile}'; fi",
        pid = std::process::id(),
        profile = profile.display(),
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

/// The last lines of chromedriver's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("\nchromedriver log ({}):\n{}", log.display(), lines[lines.len().saturating_sub(20)..].join("\n"))
}

/// Where axe-core's `axe.min.js` is: `EMBARGO_AXE_JS`, or the copy that `npm ci --prefix
/// .ci/node` installs in the workspace.
pub fn axe_path() -> PathBuf {
    match std::env::var_os("EMBARGO_AXE_JS") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let workspace = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
            workspace.join(".ci/node/node_modules/axe-core/axe.min.js")
        }
    }
}

/// The contents of `axe.min.js`, read once per test process.
fn axe_source() -> Result<Arc<String>, String> {
    static SOURCE: OnceLock<Result<Arc<String>, String>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let path = axe_path();
            std::fs::read_to_string(&path)
                .map(Arc::new)
                .map_err(|e| format!("{}: {e} (run `npm ci --prefix .ci/node`, or set EMBARGO_AXE_JS)", path.display()))
        })
        .clone()
}

fn parse_axe(value: &serde_json::Value) -> Vec<(String, String, usize)> {
    if let Some(error) = value.get("error") {
        panic!("axe-core failed: {error}");
    }
    let violations =
        value.get("violations").and_then(|v| v.as_array()).unwrap_or_else(|| panic!("axe-core returned {value}"));
    violations
        .iter()
        .filter(|v| matches!(v.get("impact").and_then(|i| i.as_str()), Some("serious" | "critical")))
        .map(|v| {
            let text = |key: &str| v.get(key).and_then(|s| s.as_str()).unwrap_or_default().to_owned();
            let nodes = v.get("nodes").and_then(|n| n.as_u64()).unwrap_or(0);
            (text("id"), text("help"), usize::try_from(nodes).unwrap_or(usize::MAX))
        })
        .collect()
}
