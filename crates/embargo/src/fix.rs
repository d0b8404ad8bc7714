//! `embargo fix ...`: private fix repositories from the command line (see `embargo_app::fixes`).

use std::io::Write;
use std::process::ExitCode;

use embargo_app::{App, fixes};

use crate::cli::FixCommand;
use crate::commands::{EX_USAGE, Failure, local_admin, parse_reference};

type Outcome = Result<ExitCode, Failure>;

pub async fn fix(app: App, command: FixCommand) -> Outcome {
    let actor = local_admin();
    match command {
        FixCommand::Open { id, json } => {
            let reference = parse_reference(&app, &id)?;
            let opened = fixes::open(&app, &actor, &reference).await?;
            if json {
                println!("{}", serde_json::to_string(&opened).unwrap_or_default());
            } else {
                if !opened.created {
                    eprintln!("embargo: {reference} already has its fix repository");
                }
                println!("{}", opened.clone_url);
            }
        }
        FixCommand::Invite { id, email, json } => {
            let reference = parse_reference(&app, &id)?;
            let invited = fixes::invite(&app, &actor, &reference, &email).await?;
            if json {
                println!("{}", serde_json::to_string(&invited).unwrap_or_default());
            } else {
                let how = if invited.mailed { "; an invitation to set a password is mailed" } else { "" };
                println!("{}: {} may work on the fix{how}", reference, invited.email);
            }
        }
        FixCommand::Status { id, json } => {
            let reference = parse_reference(&app, &id)?;
            let status = fixes::status(&app, &actor, &reference).await?;
            if json {
                println!("{}", serde_json::to_string(&status).unwrap_or_default());
            } else {
                println!("{} ({}): {}", status.report, status.product, status.clone_url);
                if status.test_command.is_empty() {
                    println!("no test command: CI does not run (embargo product set NAME --test-command CMD)");
                }
                println!("{:<20} {:<24} {:<12} {:<10} {:<9} fixed in", "line", "branch", "head", "ci", "affected");
                for line in &status.lines {
                    println!(
                        "{:<20} {:<24} {:<12} {:<10} {:<9} {}",
                        line.line,
                        line.branch,
                        &line.head[..line.head.len().min(12)],
                        line.ci,
                        if line.affected { "yes" } else { "no" },
                        line.fixed_version
                    );
                }
                if status.blockers.is_empty() {
                    println!("ready for disclosure: every affected line passed CI (or was overridden)");
                } else {
                    println!("not ready: {}", status.blockers.join("; "));
                }
            }
        }
        FixCommand::SetLine { id, line, fixed_version, introduced, affected, not_affected } => {
            let reference = parse_reference(&app, &id)?;
            let change = fixes::MatrixChange {
                affected: if not_affected {
                    Some(false)
                } else if affected {
                    Some(true)
                } else {
                    None
                },
                introduced,
                fixed_version,
            };
            let line = fixes::set_line(&app, &actor, &reference, &line, &change).await?;
            println!(
                "{reference} {}: affected={} introduced={} fixed={}",
                line.line,
                line.affected,
                if line.introduced.is_empty() { "0" } else { &line.introduced },
                line.fixed_version
            );
        }
        FixCommand::Override { id, line, reason } => {
            let reference = parse_reference(&app, &id)?;
            fixes::override_ci(&app, &actor, &reference, &line, &reason).await?;
            if reason.trim().is_empty() {
                println!("{reference} {line}: override taken back");
            } else {
                println!("{reference} {line}: may be ready although its CI did not pass");
            }
        }
        FixCommand::Log { id, run, line } => {
            let reference = parse_reference(&app, &id)?;
            let run = match (run, line) {
                (Some(run), _) => run,
                (None, Some(line)) => {
                    let status = fixes::status(&app, &actor, &reference).await?;
                    status
                        .lines
                        .iter()
                        .find(|l| l.line == line)
                        .and_then(|l| l.run)
                        .ok_or_else(|| Failure::new(1, format!("no CI run on the head of {line}")))?
                }
                (None, None) => return Err(Failure::new(EX_USAGE, "give --run N or --line LINE")),
            };
            let log = fixes::run_log(&app, &actor, &reference, run).await?;
            let mut out = std::io::stdout().lock();
            // The log is what a pushed command wrote: on a terminal its control characters
            // are shown, not obeyed (no escape sequences reach the admin's terminal).
            let shown = if std::io::IsTerminal::is_terminal(&std::io::stdout()) { visible(&log.log) } else { log.log };
            let _ = out.write_all(&shown);
            let _ = out.flush();
            eprintln!("embargo: run {} on {} at {}: {}", log.run.id, log.run.line, log.run.commit, log.run.state);
        }
        FixCommand::Runs { id, json } => {
            let reference = parse_reference(&app, &id)?;
            let runs = fixes::runs(&app, &actor, &reference).await?;
            if json {
                let value: Vec<serde_json::Value> = runs
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "run": r.id, "line": r.line, "commit": r.commit, "ci": r.state.code(),
                            "isolation": r.isolation, "exit_code": r.exit_code,
                            "created_at": r.created_at.to_string(),
                            "started_at": r.started_at.map(|t| t.to_string()),
                            "finished_at": r.finished_at.map(|t| t.to_string()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(value));
            } else {
                for r in &runs {
                    println!("{:<6} {:<20} {:<12} {}", r.id, r.line, &r.commit[..r.commit.len().min(12)], r.state);
                }
            }
        }
        FixCommand::Patches { id, line } => {
            let reference = parse_reference(&app, &id)?;
            let series = fixes::patches(&app, &actor, &reference, &line).await?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&series);
            let _ = out.flush();
        }
    }
    app.store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Control characters (but newlines and tabs) as `\xNN`, and bytes that are not UTF-8 as
/// `\xNN` too: nothing is dropped, nothing is obeyed.
fn visible(log: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(log.len());
    for chunk in log.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.into_bytes()
}
