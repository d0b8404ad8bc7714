//! Fills an instance with generated reports for the web benchmark (`bench/web.py`), and
//! signs an admin in (password and TOTP) to get a session cookie for the load generator.
//!
//! Usage: `cargo run --release --example seed -- DATA_DIR DATABASE_URL|"" COUNT`
//! Prints one JSON line: `{"cookie": "...", "reference": "..."}`.

use std::sync::Arc;

use embargo_app::config::{Config, Secret};
use embargo_app::reports::{self, Channel, Submission};
use embargo_app::{App, accounts, sessions};
use embargo_domain::{Actor, Role};

const WORDS: &[&str] = &[
    "overflow",
    "parser",
    "heap",
    "buffer",
    "injection",
    "query",
    "login",
    "bypass",
    "token",
    "session",
    "archive",
    "extractor",
    "path",
    "traversal",
    "deserialization",
    "template",
    "redirect",
    "header",
    "cookie",
    "upload",
    "image",
    "decoder",
    "race",
    "condition",
    "privilege",
    "escalation",
    "sandbox",
    "escape",
    "signature",
    "verify",
];

fn text(seed: u64, words: usize) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..words)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            WORDS[(x % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (data_dir, url, count) = (&args[1], &args[2], args[3].parse::<u64>().expect("COUNT"));
    let config = Config {
        data_dir: data_dir.into(),
        database_url: Secret::new(url.clone()),
        web: embargo_app::config::Web { require_totp: true, ..Default::default() },
        ..Config::default()
    };
    let (app, _) = App::open(config).await.expect("open");
    let system = Actor::System("seed");
    let tasks = if url.starts_with("postgres") { 8 } else { 1 };
    let app = Arc::new(app);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let app = app.clone();
        let system = system.clone();
        handles.push(tokio::spawn(async move {
            let mut last = None;
            for i in (t..count).step_by(tasks as usize) {
                let submission = Submission {
                    reporter_name: Some(format!("Reporter {}", i % 5000)),
                    ..Submission::new(
                        Channel::Email,
                        &format!("reporter{}@example.net", i % 5000),
                        &format!("{} in {}", text(i, 3), text(i + 7, 2)),
                        &text(i * 31, 120),
                    )
                };
                last = Some(reports::submit(&app, &system, submission).await.expect("submit").reference);
            }
            last
        }));
    }
    let mut reference = None;
    for handle in handles {
        reference = handle.await.unwrap().or(reference);
    }
    let reference = reference.expect("at least one report");
    // A message thread on the benchmarked report page.
    let local = Actor::LocalAdmin { os_user: "seed".into() };
    for i in 0..5 {
        reports::add_note(&app, &local, &reference, &text(1000 + i, 60)).await.unwrap();
    }
    let email = "bench-admin@example.org";
    let password = "benchmark admin password";
    accounts::create_user(&app, &local, email, Role::Admin, Some(password)).await.expect("admin");
    let partial = sessions::sign_in_password(&app, email, password, "bench", "wrk", None).await.unwrap();
    let session = sessions::session(&app, &partial.token).await.unwrap().unwrap();
    let enrolment = sessions::totp_enrolment(&app, &session).await.unwrap();
    let code = sessions::totp_code(&enrolment.secret, app.now()).unwrap();
    let token = sessions::sign_in_totp(&app, &session, &code, "bench", None).await.unwrap();
    println!(
        "{}",
        serde_json::json!({ "cookie": format!("embargo_session={token}"), "reference": reference.to_string() })
    );
}
