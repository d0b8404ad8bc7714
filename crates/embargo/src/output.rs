//! Printing results for people (aligned text) and for programs (`--json`).
//!
//! The JSON shapes here are part of the CLI contract: add fields, do not rename them.

use embargo_app::jobs::JobRecord;
use embargo_app::reports::ReportDetail;
use embargo_app::reports::ReportRecord;
use embargo_app::views::{ReportSummaryView, ReportView, safe_filename};
use embargo_domain::Timestamp;
use embargo_domain::audit::StoredEntry;
use embargo_domain::cvss::{Score, Vector};
use serde_json::{Value, json};

fn time(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_else(|_| at.to_string())
}

/// Replaces control characters so that hostile text cannot drive the terminal.
pub fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| {
            // Control characters, and the bidirectional controls that can make text read
            // backwards in a terminal.
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if (c.is_control() && c != '\n' && c != '\t') || bidi { '\u{fffd}' } else { c }
        })
        .collect()
}

pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = clean(text).chars().map(|c| if c == '\n' || c == '\t' { ' ' } else { c }).collect();
    if flat.chars().count() > max { format!("{}…", flat.chars().take(max - 1).collect::<String>()) } else { flat }
}

pub fn report_list(reports: &[ReportRecord], as_json: bool) {
    if as_json {
        let list: Vec<ReportSummaryView> = reports.iter().map(ReportSummaryView::from_record).collect();
        println!("{}", json!(list));
        return;
    }
    if reports.is_empty() {
        println!("no reports");
        return;
    }
    println!("{:<16} {:<22} {:<20} TITLE", "ID", "STATE", "RECEIVED");
    for r in reports {
        println!(
            "{:<16} {:<22} {:<20} {}",
            r.reference,
            r.state.to_string(),
            time(r.created_at),
            one_line(&r.title, 60)
        );
    }
}

pub fn report_detail(detail: &ReportDetail, as_json: bool) {
    let r = &detail.report;
    if as_json {
        println!("{}", json!(ReportView::new(detail)));
        return;
    }
    println!("{}  {}", r.reference, one_line(&r.title, 100));
    println!("state:     {}", r.state);
    println!("received:  {} by {}", time(r.created_at), r.channel);
    println!(
        "reporter:  {}{}",
        clean(&detail.reporter.email),
        detail.reporter.name.as_deref().map(|n| format!(" ({})", one_line(n, 60))).unwrap_or_default()
    );
    if let Some(upstream) = &r.upstream {
        println!(
            "upstream:  {} (security contact {})",
            one_line(&upstream.project, 80),
            one_line(&upstream.contact, 80)
        );
    }
    if let Some(severity) = &detail.sla.severity {
        println!("severity:  {severity}");
    }
    for vector in [&detail.assessment.cvss_v3, &detail.assessment.cvss_v4].into_iter().flatten() {
        println!("cvss:      {vector}");
    }
    if !detail.assessment.cwe.is_empty() {
        println!("cwe:       {}", detail.assessment.cwe.join(", "));
    }
    if let Some(ssvc) = &detail.assessment.ssvc {
        println!("ssvc:      {ssvc}");
    }
    if !detail.clocks.is_empty() {
        println!("deadlines:");
        for c in &detail.clocks {
            let status = match (c.stopped, c.due) {
                (Some(stopped), Some(due)) => {
                    format!(
                        "{} at {} (due {})",
                        if stopped <= due { "met" } else { "missed" },
                        time(stopped),
                        time(due)
                    )
                }
                (Some(stopped), None) => format!("done at {}", time(stopped)),
                (None, Some(due)) => format!("due {}", time(due)),
                (None, None) => "paused (waiting on the reporter)".to_owned(),
            };
            println!("  {:<12} {status}", c.name);
        }
    }
    if !detail.attachments.is_empty() {
        println!("attachments:");
        for a in &detail.attachments {
            let safe = safe_filename(&a.filename, a.id);
            let sent_as =
                if safe == a.filename { String::new() } else { format!(", sent as {:?}", one_line(&a.filename, 80)) };
            println!(
                "  #{} {} ({}, {} bytes{sent_as})",
                a.id,
                one_line(&safe, 80),
                one_line(&a.media_type, 40),
                a.size
            );
        }
    }
    if !detail.transitions.is_empty() {
        println!("history:");
        for t in &detail.transitions {
            println!("  {}  {} -> {}  by {}", time(t.at), t.from, t.to, t.actor);
        }
    }
    for m in &detail.messages {
        println!();
        println!(
            "--- message {} ({}{}) from {} at {}",
            m.id,
            m.kind.as_str(),
            match (&m.pgp, m.quarantined) {
                (_, true) => ", QUARANTINED: not from the reporter".to_owned(),
                (Some(pgp), false) => format!(", {pgp}"),
                (None, false) => String::new(),
            },
            m.sender.as_deref().map(|s| one_line(s, 80)).unwrap_or_else(|| m.author.clone()),
            time(m.at)
        );
        if let Some(subject) = &m.subject {
            println!("subject: {}", one_line(subject, 100));
        }
        for code in &m.anomalies {
            println!("warning: {}", embargo_app::intake::anomaly_text(code));
        }
        println!();
        println!("{}", clean(&m.body));
    }
}

pub fn audit_entries(entries: &[StoredEntry], as_json: bool) {
    for e in entries {
        if as_json {
            println!(
                "{}",
                json!({ "seq": e.seq, "at_ms": e.at_ms, "actor": e.actor, "action": e.action,
                        "subject": e.subject, "details": e.details, "prev_hash": e.prev_hash, "hash": e.hash })
            );
        } else {
            let at = Timestamp::from_millisecond(e.at_ms).map(time).unwrap_or_default();
            println!("{:>6} {} {:<24} {:<20} {} {}", e.seq, at, e.actor, e.action, e.subject, e.details);
        }
    }
}

pub fn job_list(list: &[JobRecord], as_json: bool) {
    if as_json {
        let value: Vec<Value> = list
            .iter()
            .map(|j| {
                json!({ "id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts,
                             "run_at": time(j.run_at), "lease_owner": j.lease_owner, "last_error": j.last_error })
            })
            .collect();
        println!("{}", Value::Array(value));
        return;
    }
    println!("{:>6} {:<20} {:<8} {:>8} {:<20} LAST ERROR", "ID", "KIND", "STATE", "ATTEMPTS", "RUN AT");
    for j in list {
        println!(
            "{:>6} {:<20} {:<8} {:>8} {:<20} {}",
            j.id,
            j.kind,
            j.state,
            j.attempts,
            time(j.run_at),
            j.last_error.as_deref().unwrap_or("")
        );
    }
}

pub fn outbox(entries: &[embargo_app::mail::OutboxEntry], as_json: bool) {
    if as_json {
        let value: Vec<Value> = entries
            .iter()
            .map(|e| json!({ "path": e.path.display().to_string(), "date": e.date, "to": e.to, "subject": e.subject }))
            .collect();
        println!("{}", Value::Array(value));
        return;
    }
    if entries.is_empty() {
        println!("the outbox is empty");
        return;
    }
    for e in entries {
        println!("{}  to {}  {}", one_line(&e.date, 40), one_line(&e.to, 60), one_line(&e.subject, 80));
        println!("    {}", e.path.display());
    }
}

/// One CVSS score as JSON: the number and its severity (upper case, as in FIRST's JSON schemas).
fn cvss_score(score: Score) -> Value {
    json!({ "score": score.value(), "severity": score.severity().as_str().to_ascii_uppercase() })
}

pub fn cvss(vector: &Vector, as_json: bool) {
    if as_json {
        let mut value = json!({
            "version": vector.version(),
            "vector": vector.to_string(),
            "score": vector.score().value(),
            "severity": vector.severity().as_str().to_ascii_uppercase(),
        });
        match vector {
            Vector::V31(v) => {
                let s = v.scores();
                value["base"] = cvss_score(s.base);
                value["temporal"] = cvss_score(s.temporal);
                value["environmental"] = cvss_score(s.environmental);
            }
            Vector::V40(v) => value["nomenclature"] = json!(v.score().nomenclature.as_str()),
        }
        println!("{value}");
        return;
    }
    println!("{vector}");
    match vector {
        Vector::V31(v) => {
            let s = v.scores();
            for (name, score) in [("base", s.base), ("temporal", s.temporal), ("environmental", s.environmental)] {
                println!("{name:<15}{score:>5}  {}", score.severity());
            }
        }
        Vector::V40(v) => {
            let s = v.score();
            println!("{:<15}{:>5}  {}", s.nomenclature, s.score, s.score.severity());
        }
    }
}
