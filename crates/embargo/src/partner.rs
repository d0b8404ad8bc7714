//! `embargo partner ...` and `embargo notice ...`: partners and early disclosure from the
//! command line (see `embargo_app::partners`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use embargo_app::{App, partners};
use embargo_domain::Timestamp;
use embargo_domain::partner::{EmbargoPolicy, PartnerState, parse_weekday};
use jiff::SignedDuration;

use crate::cli::{NoticeCommand, PartnerCommand};
use crate::commands::{EX_DATAERR, EX_NOINPUT, EX_USAGE, Failure, local_admin, parse_reference};
use crate::output::one_line;

type Outcome = Result<ExitCode, Failure>;

fn read_key(path: &Path) -> Result<String, Failure> {
    let limit = partners::MAX_KEY_BYTES as u64;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::new(EX_DATAERR, format!("{} is larger than 1 MiB: not an OpenPGP key", path.display())));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure::new(EX_DATAERR, format!("{} is not an ASCII-armoured OpenPGP key", path.display())))
}

fn instant(text: &str) -> Result<Timestamp, Failure> {
    text.trim().parse().map_err(|_| {
        Failure::new(
            EX_USAGE,
            format!("{:?} is not an RFC 3339 instant, such as 2026-12-15T16:00:00Z", one_line(text, 60)),
        )
    })
}

fn json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string(value).unwrap_or_default());
}

fn print_partner(p: &partners::PartnerView) {
    println!(
        "{} [{}] list={} products={} terms={} vouched_by={} zone={} leaks={}",
        one_line(&p.name, 80),
        p.state,
        one_line(&p.list, 100),
        if p.products.is_empty() { "-".into() } else { p.products.join(",") },
        if p.terms_version.is_empty() { "-".into() } else { one_line(&p.terms_version, 100) },
        if p.vouched_by.is_empty() { "-".into() } else { one_line(&p.vouched_by, 100) },
        p.time_zone,
        p.leaks
    );
    for c in &p.contacts {
        println!(
            "  {} key={}",
            one_line(&c.email, 254),
            c.fingerprint.as_deref().unwrap_or("none (notices only point to the portal)")
        );
    }
}

pub async fn partner(app: App, command: PartnerCommand) -> Outcome {
    let actor = local_admin();
    match command {
        PartnerCommand::Add { org, contacts, keys, products, list, terms, vouched_by, time_zone, json: as_json } => {
            if keys.len() > contacts.len() {
                return Err(Failure::new(
                    EX_USAGE,
                    "more --key files than --contact addresses: give one key per contact, in order",
                ));
            }
            let mut new = Vec::new();
            for (i, email) in contacts.into_iter().enumerate() {
                let key = keys.get(i).map(|p| read_key(p)).transpose()?;
                new.push(partners::NewContact { email, key });
            }
            let view = partners::add(
                &app,
                &actor,
                partners::NewPartnerInput {
                    name: org,
                    contacts: new,
                    products,
                    list,
                    terms_version: terms,
                    terms_accepted_at: None,
                    vouched_by,
                    time_zone,
                },
            )
            .await?;
            if as_json {
                json(&view);
            } else {
                print_partner(&view);
            }
        }
        PartnerCommand::List { json: as_json } => {
            let all = partners::list(&app, &actor).await?;
            if as_json {
                json(&all);
            } else if all.is_empty() {
                println!("no partners yet: embargo partner add ORG --contact EMAIL --key FILE --products P");
            } else {
                all.iter().for_each(print_partner);
            }
        }
        PartnerCommand::Set { org, products, terms, vouched_by, time_zone, list } => {
            let change = partners::PartnerChange { products, terms_version: terms, vouched_by, time_zone, list };
            print_partner(&partners::update(&app, &actor, &org, change).await?);
        }
        PartnerCommand::Suspend { org } => {
            partners::set_state(&app, &actor, &org, PartnerState::Suspended).await?;
            println!("{}: suspended", one_line(&org, 80));
        }
        PartnerCommand::Activate { org } => {
            partners::set_state(&app, &actor, &org, PartnerState::Active).await?;
            println!("{}: active", one_line(&org, 80));
        }
        PartnerCommand::Remove { org } => {
            partners::set_state(&app, &actor, &org, PartnerState::Removed).await?;
            println!("{}: removed", one_line(&org, 80));
        }
        PartnerCommand::AddContact { org, email, key } => {
            let key = key.as_deref().map(read_key).transpose()?;
            partners::add_contact(&app, &actor, &org, partners::NewContact { email: email.clone(), key }).await?;
            println!("{}: {} added", one_line(&org, 80), email.trim());
        }
        PartnerCommand::RemoveContact { org, email } => {
            partners::remove_contact(&app, &actor, &org, &email).await?;
            println!("{}: {} removed", one_line(&org, 80), email.trim());
        }
        PartnerCommand::Policy { list, max_days, min_notice_days, final_notice_hours, days, hour, json: as_json } => {
            let changing = max_days.is_some()
                || min_notice_days.is_some()
                || final_notice_hours.is_some()
                || days.is_some()
                || hour.is_some();
            let views = if changing {
                let current = partners::policies(&app, &actor).await?.into_iter().find(|p| p.list == list);
                let mut policy = EmbargoPolicy::default();
                if let Some(current) = current {
                    policy.max_embargo = SignedDuration::from_secs((current.max_embargo_days * 86_400.0) as i64);
                    policy.min_notice = SignedDuration::from_secs((current.min_notice_days * 86_400.0) as i64);
                    policy.final_notice = SignedDuration::from_hours(current.final_notice_hours);
                    policy.preferred_days = current.preferred_days.iter().filter_map(|d| parse_weekday(d)).collect();
                    policy.preferred_hour = current.preferred_hour;
                }
                if let Some(d) = max_days {
                    policy.max_embargo = SignedDuration::from_hours(i64::from(d) * 24);
                }
                if let Some(d) = min_notice_days {
                    policy.min_notice = SignedDuration::from_hours(i64::from(d) * 24);
                }
                if let Some(h) = final_notice_hours {
                    policy.final_notice = SignedDuration::from_hours(i64::from(h));
                }
                if let Some(days) = days {
                    let mut parsed = Vec::new();
                    for day in days.split(',').filter(|d| !d.trim().is_empty()) {
                        parsed.push(parse_weekday(day).ok_or_else(|| {
                            Failure::new(
                                EX_USAGE,
                                format!("{:?} is not a weekday (mon, tue, ... or Monday, ...)", one_line(day, 20)),
                            )
                        })?);
                    }
                    policy.preferred_days = parsed;
                }
                if let Some(hour) = hour {
                    policy.preferred_hour = match hour.trim() {
                        "none" | "" => None,
                        h => Some(h.parse::<i8>().map_err(|_| Failure::new(EX_USAGE, "--hour is 0 to 23, or none"))?),
                    };
                }
                vec![partners::set_policy(&app, &actor, &list, policy).await?]
            } else {
                partners::policies(&app, &actor).await?
            };
            if as_json {
                json(&views);
            } else {
                for p in views {
                    println!(
                        "{}: at most {} days of embargo, at least {} days' notice, final notice {} h before, preferred {} at {}",
                        one_line(&p.list, 100),
                        p.max_embargo_days,
                        p.min_notice_days,
                        p.final_notice_hours,
                        if p.preferred_days.is_empty() { "any day".into() } else { p.preferred_days.join(", ") },
                        p.preferred_hour.map_or_else(|| "any hour".into(), |h| format!("{h:02}:00 UTC"))
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn notice(app: App, command: NoticeCommand) -> Outcome {
    let actor = local_admin();
    match command {
        NoticeCommand::Draft {
            id,
            disclose_at,
            confirm_day,
            allow_hosted_deploy,
            allow_customer_notice,
            json: as_json,
        } => {
            let reference = parse_reference(&app, &id)?;
            let options = partners::DraftOptions {
                disclose_at: instant(&disclose_at)?,
                confirm_day,
                deploy_hosted: allow_hosted_deploy,
                tell_customers: allow_customer_notice,
            };
            let drafted = partners::draft(&app, &actor, &reference, options).await?;
            for warning in &drafted.warnings {
                eprintln!("embargo: warning: {warning}");
            }
            if as_json {
                json(&drafted);
            } else {
                println!("{}", drafted.notice);
            }
        }
        NoticeCommand::Edit { notice, subject, body, allow_hosted_deploy, allow_customer_notice } => {
            let current = partners::status(&app, &actor, &notice).await?;
            let body = match body {
                Some(path) if path.as_os_str() == "-" => {
                    let mut bytes = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read standard input: {e}")))?;
                    String::from_utf8(bytes)
                        .map_err(|_| Failure::new(EX_DATAERR, "standard input is not UTF-8 text"))?
                }
                Some(path) => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| Failure::new(EX_NOINPUT, format!("cannot read {}: {e}", path.display())))?;
                    String::from_utf8(bytes)
                        .map_err(|_| Failure::new(EX_DATAERR, format!("{} is not UTF-8 text", path.display())))?
                }
                None => current.body.clone(),
            };
            let text = partners::NoticeText {
                subject: subject.unwrap_or(current.subject),
                body,
                deploy_hosted: allow_hosted_deploy.unwrap_or(current.deploy_hosted),
                tell_customers: allow_customer_notice.unwrap_or(current.tell_customers),
            };
            partners::edit(&app, &actor, &notice, text).await?;
            println!("notice {} edited", current.notice);
        }
        NoticeCommand::Send { notice, confirm_day, json: as_json } => {
            let sent = partners::send(&app, &actor, &notice, confirm_day).await?;
            for warning in &sent.warnings {
                eprintln!("embargo: warning: {warning}");
            }
            if as_json {
                json(&sent);
            } else {
                println!(
                    "notice {} queued to {} contacts ({} encrypted; the others are told to read it in the portal); embargo {}",
                    sent.notice, sent.copies, sent.encrypted, sent.embargo
                );
            }
        }
        NoticeCommand::Status { notice, json: as_json } => {
            let status = partners::status(&app, &actor, &notice).await?;
            if as_json {
                json(&status);
            } else {
                println!(
                    "notice {} ({}, {}) about {}: disclosure {}; embargo {}",
                    status.notice,
                    status.kind,
                    status.state,
                    status.report,
                    status.disclose_at,
                    status.embargo.as_deref().unwrap_or("-")
                );
                for c in &status.contacts {
                    println!(
                        "  {:<40} {:<24} {:<13} {}",
                        one_line(&c.email, 254),
                        one_line(&c.partner, 24),
                        c.state,
                        if c.encrypted { "encrypted" } else { "portal only" }
                    );
                }
            }
        }
        NoticeCommand::Show { notice } => {
            let status = partners::status(&app, &actor, &notice).await?;
            println!("Subject: {}\n", one_line(&status.subject, 300));
            print!("{}", crate::output::clean(&status.body));
        }
        NoticeCommand::Leak { id, partner, details } => {
            let leak = partners::record_leak(&app, &actor, &id, partner.as_deref(), &details).await?;
            println!("leak {leak} recorded; decide with: embargo notice decide {leak} keep|move|break");
        }
        NoticeCommand::Decide { leak, decision, to, confirm_day } => {
            let decision = match decision.as_str() {
                "keep" => partners::LeakDecision::Keep,
                "break" => partners::LeakDecision::Break,
                _ => partners::LeakDecision::Move {
                    to: instant(to.as_deref().ok_or_else(|| Failure::new(EX_USAGE, "move needs --to RFC3339"))?)?,
                    confirm_day,
                },
            };
            partners::decide_leak(&app, &actor, leak, decision).await?;
            println!("leak {leak}: decided");
        }
        NoticeCommand::Break { id, reason } => {
            let reference = parse_reference(&app, &id)?;
            partners::break_embargo(&app, &actor, &reference, &reason).await?;
            println!("{reference}: embargo broken; every partner is being told");
        }
        NoticeCommand::Lift { id } => {
            let reference = parse_reference(&app, &id)?;
            partners::lift(&app, &actor, &reference).await?;
            println!("{reference}: embargo lifted; every partner is being told");
        }
        NoticeCommand::Announce { id, withdraw } => {
            let reference = parse_reference(&app, &id)?;
            if withdraw {
                partners::withdraw_announcement(&app, &actor, &reference).await?;
                println!("{reference}: pre-announcement withdrawn");
            } else {
                let a = partners::announce(&app, &actor, &reference).await?;
                println!("pre-announced: {} severity {} (public ID {})", a.disclose_at, a.severity, a.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
