//! The browser harness against pages served with a strict Content Security Policy: axe-core
//! must still load, find the serious violations of a broken page and none on a clean page;
//! screenshots must be PNG files of the requested viewport; and no Chromium process may
//! outlive its [`Browser`].

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use embargo_test_support::Browser;

/// The CSP of the clean page: nothing at all may load or run in it.
const CSP_NONE: &str = "default-src 'none'";
/// The CSP of the broken page: the application's own, where only scripts of the page's
/// origin may run (none inline, none injected by the page).
const CSP_APP: &str = "default-src 'none'; script-src 'self'";

const CLEAN: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Clean page</title></head>
<body>
<main>
<h1>Report a vulnerability</h1>
<p>Nothing here is wrong.</p>
</main>
</body>
</html>
"#;

/// The same page with an image that has no text alternative (axe `image-alt`, critical) and
/// light grey text on white (axe `color-contrast`, serious). Inline styles are blocked by the
/// CSP, so the colours come from presentational attributes.
const BROKEN: &str = r##"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken page</title></head>
<body>
<main>
<h1>Report a vulnerability</h1>
<img src="/pixel.png" width="10" height="10">
<table><tr><td><font color="#dddddd">Barely visible text on white.</font></td></tr></table>
<p id="probe"></p>
</main>
</body>
</html>
"##;

/// A 1×1 transparent PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The clean page with a long unbreakable token in preformatted text: wider than a phone.
const WIDE: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Wide page</title></head>",
    "<body><main><h1>Wide</h1><pre>",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "</pre></main></body></html>"
);

/// A form posting to `/marked` (which answers with the field marked and the input kept) and
/// one posting to `/unmarked` (which answers with the blank form again).
const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Form</title></head>
<body><main><h1>Form</h1>
<form id="good" method="post" action="/marked"><label for="q">Query</label><input id="q" name="q"><button>Send</button></form>
<form id="bad" method="post" action="/unmarked"><label for="r">Other</label><input id="r" name="r"><button>Send</button></form>
</main></body></html>
"#;

/// The answer of `/marked`: the form with the sent value and the field marked.
const MARKED: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error: Form</title></head>
<body><main><h1>Form</h1>
<form id="good" method="post" action="/marked"><label for="q">Query</label>
<input id="q" name="q" value="kept value" aria-invalid="true" aria-describedby="q-error">
<span id="q-error">Error: not a query</span><button>Send</button></form>
</main></body></html>
"#;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Serves `/clean`, `/broken` and `/pixel.png` on a free loopback port, each with a CSP
/// header, from background threads that live as long as the test process. Each connection
/// has a thread of its own: Chromium opens spare connections that it may never use.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || respond(stream));
        }
    });
    format!("http://{addr}")
}

fn respond(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else { return };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body): (&str, &str, &[u8]) = match path {
        "/clean" => ("200 OK", "text/html; charset=utf-8", CLEAN.as_bytes()),
        "/broken" => ("200 OK", "text/html; charset=utf-8", BROKEN.as_bytes()),
        "/pixel.png" => ("200 OK", "image/png", PIXEL),
        "/wide" => ("200 OK", "text/html; charset=utf-8", WIDE.as_bytes()),
        "/form" | "/unmarked" => ("200 OK", "text/html; charset=utf-8", FORM.as_bytes()),
        "/marked" => ("422 Unprocessable Entity", "text/html; charset=utf-8", MARKED.as_bytes()),
        _ => ("404 Not Found", "text/plain", b"not found"),
    };
    let csp = if path == "/broken" { CSP_APP } else { CSP_NONE };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {csp}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

#[tokio::test]
async fn axe_runs_under_a_strict_csp_and_screenshots_are_png() {
    let Some(browser) = Browser::start().await else { return };
    let base = serve();
    let driver = browser.driver();

    // A clean page: no serious violation.
    driver.goto(format!("{base}/clean")).await.expect("open the clean page");
    assert_eq!(driver.title().await.expect("title"), "Clean page");
    let clean = browser.axe_serious().await;
    assert!(clean.is_empty(), "a clean page has no serious violations, found {clean:?}");

    // The page's own CSP blocks scripts: an inline script added to it does not run...
    driver.goto(format!("{base}/broken")).await.expect("open the broken page");
    let ran = driver
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            const blocked = [];
            document.addEventListener('securitypolicyviolation', (e) => blocked.push(e.violatedDirective));
            const s = document.createElement('script');
            s.textContent = "document.getElementById('probe').textContent = 'inline ran';";
            document.body.appendChild(s);
            setTimeout(() => done({ probe: document.getElementById('probe').textContent, blocked }), 200);
            "#,
            Vec::new(),
        )
        .await
        .expect("probe the CSP");
    let probe = ran.json();
    assert_eq!(probe["probe"], "", "the CSP must block inline scripts: {probe}");
    assert!(
        probe["blocked"]
            .as_array()
            .is_some_and(|b| b.iter().any(|d| d.as_str().is_some_and(|d| d.starts_with("script-src")))),
        "the page reports the blocked script: {probe}"
    );

    // ...but axe-core, injected through WebDriver, does. (Without axe-core, `axe_serious`
    // has said the check is skipped, or failed the test in strict mode.)
    let broken = browser.axe_serious().await;
    if embargo_test_support::browser::axe_path().is_file() {
        let ids: Vec<&str> = broken.iter().map(|(id, _, _)| id.as_str()).collect();
        assert!(ids.contains(&"image-alt"), "missing alt text is reported: {broken:?}");
        assert!(ids.contains(&"color-contrast"), "low contrast is reported: {broken:?}");
        let (_, help, nodes) = broken.iter().find(|(id, _, _)| id == "image-alt").expect("image-alt");
        assert_eq!(*nodes, 1, "one image without alt");
        assert!(!help.is_empty(), "help text");
    }

    // Screenshots, at a phone's size.
    browser.resize(390, 844).await;
    let (width, height): (u64, u64) = driver
        .execute("return [window.innerWidth, window.innerHeight];", Vec::new())
        .await
        .expect("viewport")
        .convert()
        .expect("numbers");
    assert_eq!((width, height), (390, 844), "the viewport has the requested size");
    let dir = tempfile::tempdir().expect("temporary directory");
    let shot = dir.path().join("phone.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).expect("read the screenshot");
    assert!(png.starts_with(PNG_SIGNATURE), "a PNG file");
    // The IHDR chunk holds the image's size: the viewport's, in device pixels.
    let png_width = u32::from_be_bytes(png[16..20].try_into().expect("width"));
    assert_eq!(png_width, 390, "the screenshot is as wide as the viewport");

    browser.quit().await;
}

/// The three checks of every page: sideways scrolling, axe-core at any impact, and bad input
/// coming back marked and kept; each fails on a page that breaks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_checks_pass_good_pages_and_fail_bad_ones() {
    let Some(browser) = Browser::start().await else { return };
    let browser = std::sync::Arc::new(browser);
    let base = serve();
    let driver = browser.driver().clone();

    driver.goto(format!("{base}/clean")).await.expect("open the clean page");
    browser.assert_no_horizontal_overflow(&[390, 1280]).await;
    if embargo_test_support::browser::axe_path().is_file() {
        browser.assert_axe_clean().await;
    }

    driver.goto(format!("{base}/wide")).await.expect("open the wide page");
    browser.assert_no_horizontal_overflow(&[1280]).await;
    let b = browser.clone();
    let failed = tokio::spawn(async move { b.assert_no_horizontal_overflow(&[390]).await }).await;
    let message = failed.expect_err("a page wider than the phone fails").into_panic();
    let message = message.downcast_ref::<String>().expect("a message");
    assert!(message.contains("scrolls sideways at 390 px") && message.contains("pre"), "{message}");

    if embargo_test_support::browser::axe_path().is_file() {
        driver.goto(format!("{base}/broken")).await.expect("open the broken page");
        let b = browser.clone();
        let failed = tokio::spawn(async move { b.assert_axe_clean().await }).await;
        let message = failed.expect_err("violations fail").into_panic();
        let message = message.downcast_ref::<String>().expect("a message");
        assert!(message.contains("image-alt (critical)"), "{message}");
    }

    driver.goto(format!("{base}/form")).await.expect("open the form");
    let shown = browser.assert_bad_input_kept("#good", &[("q", "kept value")], "q", None).await;
    assert_eq!(shown, "Error: not a query");
    driver.goto(format!("{base}/form")).await.expect("open the form");
    let b = browser.clone();
    let failed = tokio::spawn(async move { b.assert_bad_input_kept("#bad", &[("r", "lost")], "r", None).await }).await;
    let message = failed.expect_err("an unmarked answer fails").into_panic();
    let message = message.downcast_ref::<String>().expect("a message");
    assert!(message.contains("field r is not marked"), "{message}");
}

#[tokio::test]
async fn dropping_the_browser_ends_its_processes() {
    let Some(browser) = Browser::start().await else { return };
    let base = serve();
    browser.driver().goto(format!("{base}/clean")).await.expect("open the page");
    // chromedriver reports the profile directory it gave Chromium: it tells this browser's
    // processes from those of the other tests running beside this one.
    let caps = browser.driver().capabilities();
    let profile = caps.get("chrome").and_then(|c| c["userDataDir"].as_str()).expect("chrome.userDataDir").to_owned();
    assert!(!profile.is_empty());
    let before = chromium_processes(&profile);
    assert!(before.len() > 1, "Chromium (browser, renderer, helpers) runs while the browser is open: {before:?}");
    // They share chromedriver's process group, which is what the harness kills.
    let groups: Vec<u32> = before.iter().filter_map(|&pid| stat(pid).map(|s| s.pgid)).collect();
    assert!(groups.windows(2).all(|w| w[0] == w[1]), "one process group: {groups:?}");
    drop(browser);
    // chromedriver is killed and reaped at once; the kernel may take a moment with the rest.
    let alive = || before.iter().copied().filter(|&pid| stat(pid).is_some_and(|s| s.state != 'Z')).collect::<Vec<_>>();
    let mut left = alive();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = alive();
    }
    assert!(left.is_empty(), "Chromium processes outlive the browser: {left:?}");
    assert!(!std::path::Path::new(&profile).exists(), "the profile directory {profile} is removed");
}

/// The ids of the running Chromium processes of the profile directory `profile`: the browser
/// process (which has it on its command line) and the helpers that descend from it.
fn chromium_processes(profile: &str) -> Vec<u32> {
    let mut browsers = Vec::new();
    let mut all = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return all };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("/usr/lib/chromium/") {
            all.push(pid);
            if cmdline.contains(&format!("--user-data-dir={profile}")) {
                browsers.push(pid);
            }
        }
    }
    all.retain(|&pid| browsers.iter().any(|&b| descends_from(pid, b)));
    all
}

struct Stat {
    state: char,
    ppid: u32,
    pgid: u32,
}

/// Fields of `/proc/PID/stat`; `None` once the process is gone.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses, which may contain spaces).
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgid })
}

/// Whether `pid` is `ancestor` or descends from it.
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        match stat(pid) {
            Some(s) if s.ppid > 1 => pid = s.ppid,
            _ => return false,
        }
    }
    false
}
