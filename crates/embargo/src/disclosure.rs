//! `embargo disclosure ...`: the disclosure runbook from the command line (see
//! `embargo_app::disclosure`).

use std::io::Read;
use std::process::ExitCode;

use embargo_app::disclosure::{self, PlanView, StepDecision};
use embargo_app::{App, AppError};
use embargo_domain::{ReferenceId, Timestamp};

use crate::cli::DisclosureCommand;
use crate::commands::{EX_DATAERR, EX_NOINPUT, EX_USAGE, Failure, acting, local_admin};
use crate::output::one_line;

type Outcome = Result<ExitCode, Failure>;

fn instant(text: &str) -> Result<Timestamp, Failure> {
    text.trim().parse().map_err(|_| {
        Failure::new(
            EX_USAGE,
            format!("{:?} is not an RFC 3339 instant, such as 2026-12-15T16:00:00Z", one_line(text, 60)),
        )
    })
}

fn reference(text: &str) -> Result<ReferenceId, Failure> {
    text.trim()
        .parse()
        .map_err(|_| Failure::new(EX_USAGE, format!("{:?} is not a report reference", one_line(text, 60))))
}

/// The `status --json` document: the contract's keys first (`state`, `steps` with `name`,
/// `state`, `started_at`, `finished_at`, `external_id`), then more.
fn json(view: &PlanView) -> serde_json::Value {
    serde_json::json!({
        "id": view.id,
        "report": view.report,
        "state": view.state,
        "at": view.at,
        "emergency": view.emergency,
        "planned_by": view.planned_by,
        "approved_by": view.approved_by,
        "approved_at": view.approved_at,
        "content_hash": view.content_hash,
        "stop_reason": view.stop_reason,
        "problems": view.problems,
        "steps": view.steps,
        "rehearsal": view.rehearsal,
    })
}

fn print(view: &PlanView) {
    println!(
        "plan {} for {} at {} [{}]{}",
        view.id,
        view.report,
        view.at,
        view.state,
        if view.emergency { " EMERGENCY" } else { "" }
    );
    println!("  content hash: {}", view.content_hash);
    if let Some(by) = &view.approved_by {
        println!("  approved by {by} at {}", view.approved_at.as_deref().unwrap_or(""));
    }
    if let Some(reason) = &view.stop_reason {
        println!("  stopped: {}", one_line(reason, 400));
    }
    for p in &view.problems {
        println!("  problem: {}", one_line(p, 400));
    }
    for s in &view.steps {
        let mut line = format!("  {:<44} {:<12}", s.name, s.state);
        if let Some(id) = &s.external_id {
            line.push_str(&format!(" {}", one_line(id, 200)));
        }
        if let Some(after) = s.started_after_instant_ms {
            line.push_str(&format!(" started {:+.3}s", after as f64 / 1000.0));
        }
        if let Some(took) = s.duration_ms {
            line.push_str(&format!(" took {:.3}s", took as f64 / 1000.0));
        }
        println!("{line}");
        if !s.detail.is_empty() && s.state != "pending" {
            println!("        {}", one_line(&s.detail, 400));
        }
    }
}

/// The largest text file taken.
const LIMIT: usize = 1 << 20;

fn read_text(path: &std::path::Path) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(LIMIT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read standard input: {e}")))?;
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?;
        file.take(LIMIT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?;
    }
    if bytes.len() > LIMIT {
        return Err(Failure::new(EX_DATAERR, format!("{} is larger than 1 MiB: not an announcement", path.display())));
    }
    String::from_utf8(bytes).map_err(|_| Failure::new(EX_DATAERR, format!("{} is not UTF-8 text", path.display())))
}

pub async fn run(app: App, command: DisclosureCommand) -> Outcome {
    let local = local_admin();
    match command {
        DisclosureCommand::Plan { report, at, emergency, as_user, json: as_json } => {
            let actor = acting(&app, &local, as_user.as_deref()).await?;
            let at = instant(&at)?;
            let view = disclosure::plan(&app, &actor, &reference(&report)?, at, emergency).await?;
            if as_json {
                println!("{}", json(&view));
            } else {
                println!("{}", view.id);
                print(&view);
            }
        }
        DisclosureCommand::Approve { plan, as_user, hash } => {
            let actor = acting(&app, &local, Some(&as_user)).await?;
            let view = disclosure::approve(&app, &actor, &plan, hash.as_deref()).await?;
            println!("plan {} armed by {as_user}: it runs at {}", view.id, view.at);
        }
        DisclosureCommand::Rehearse { plan, json: as_json } => {
            let view = disclosure::rehearse(&app, &local, &plan).await?;
            let outputs = disclosure::rehearsal_outputs(&app, &local, &plan).await?;
            if as_json {
                let outputs: serde_json::Map<String, serde_json::Value> =
                    outputs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                println!("{}", serde_json::json!({ "id": view.id, "rehearsal": view.rehearsal, "outputs": outputs }));
            } else {
                println!("rehearsal of plan {} (nothing was published):", view.id);
                for s in &view.rehearsal {
                    println!("  {:<40} {:<8} {}", s.name, s.state, one_line(&s.detail, 300));
                }
                for (name, output) in outputs {
                    println!("\n--- {name} ---\n{output}");
                }
            }
            if view.rehearsal.iter().any(|s| s.state == "failed") {
                return Ok(ExitCode::from(EX_DATAERR));
            }
        }
        DisclosureCommand::Status { plan, json: as_json } => {
            let view = disclosure::status(&app, &local, &plan).await?;
            if as_json {
                println!("{}", json(&view));
            } else {
                print(&view);
            }
        }
        DisclosureCommand::List { json: as_json } => {
            let views = disclosure::list(&app, &local).await?;
            if as_json {
                let all: Vec<serde_json::Value> = views.iter().map(json).collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for v in &views {
                    println!("{} {} {} [{}]", v.id, v.report, v.at, v.state);
                }
            }
        }
        DisclosureCommand::Message { plan, channel, text, subject } => {
            let view = match text {
                Some(path) => {
                    let text = read_text(&path)?;
                    disclosure::set_message(&app, &local, &plan, &channel, subject.as_deref(), &text).await?
                }
                None => disclosure::status(&app, &local, &plan).await?,
            };
            let message = view.content.message(&channel).ok_or_else(|| {
                Failure::from(AppError::NotFound(format!("a message for channel {channel:?} in plan {}", view.id)))
            })?;
            println!("To: {}", message.destination);
            if !message.subject.is_empty() {
                println!("Subject: {}", message.subject);
            }
            println!("\n{}", message.text);
        }
        DisclosureCommand::Step { plan, step, done, retry, note } => {
            let decision = match (done, retry) {
                (true, false) => StepDecision::MarkDone,
                (false, true) => StepDecision::Retry,
                _ => return Err(Failure::new(EX_USAGE, "say --done (it happened) or --retry (it did not)")),
            };
            let view = disclosure::decide_step(&app, &local, &plan, &step, decision, &note).await?;
            println!("plan {} [{}]", view.id, view.state);
        }
        DisclosureCommand::Resume { plan } => {
            let view = disclosure::resume(&app, &local, &plan).await?;
            println!("plan {} [{}]", view.id, view.state);
        }
        DisclosureCommand::Cancel { plan, reason } => {
            disclosure::cancel(&app, &local, &plan, &reason).await?;
            println!("plan {plan} cancelled");
        }
        DisclosureCommand::Run { plan } => {
            // In the foreground: until the plan is done or waits for a person, or its next
            // wake-up is more than a minute away.
            let view = disclosure::status(&app, &local, &plan).await?;
            loop {
                let next = disclosure::advance(&app, view.id).await?;
                let Some(at) = next else { break };
                let wait = at.duration_since(app.now());
                if wait > jiff::SignedDuration::from_secs(60) {
                    println!("plan {} wakes next at {at}", view.id);
                    break;
                }
                let wait = std::time::Duration::try_from(wait).unwrap_or_default();
                tokio::time::sleep(wait.max(std::time::Duration::from_millis(20))).await;
            }
            print(&disclosure::status(&app, &local, &plan).await?);
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}
