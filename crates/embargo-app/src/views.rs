//! One serialisable view per resource, shared by the JSON API (`embargo-web`) and the
//! command line's `--json` (`embargo`), so the two cannot drift apart.
//!
//! Domain and store types are not `Serialize`; these are. Their keys are a contract with
//! programs outside the project: add keys, never rename or remove one. Where the API and
//! the CLI had grown different names for the same thing, a view carries both (`id` and
//! `reference`, `created_at` and `received_at`, `pgp` and `openpgp`, ...).
//!
//! Attachment names are reporter input: [`safe_filename`] gives the name a program or a
//! person may use as a path; the original stays in `filename`.

use embargo_domain::{ReportState, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::reports::{InboxRow, ReportDetail, ReportRecord};

/// A time in the views: RFC 3339 in UTC, to the second.
pub fn time(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

/// The `state` and `close_reason` keys of a state.
fn state_codes(state: ReportState) -> (&'static str, Option<&'static str>) {
    match state {
        ReportState::Closed(reason) => ("closed", Some(reason.code())),
        other => (other.code(), None),
    }
}

/// A report as one row of a list (`GET /api/v1/reports`, `embargo report list --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportSummaryView {
    /// The reference (`SEC-2026-1`), as the CLI names it.
    pub id: String,
    /// The reference, as the API names it.
    pub reference: String,
    /// Title.
    pub title: String,
    /// State code (`closed` for every closed report).
    pub state: &'static str,
    /// Why it was closed, when it is.
    pub close_reason: Option<&'static str>,
    /// How it arrived (`email`, `web`, ...); absent where the listing does not read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The product's id.
    pub product_id: Option<i64>,
    /// The assignee's user id.
    pub assignee_id: Option<i64>,
    /// The product's name; absent where the listing does not read it.
    #[serde(skip_serializing_if = "Absent::is_absent")]
    pub product: Absent<String>,
    /// The assignee's address; absent where the listing does not read it.
    #[serde(skip_serializing_if = "Absent::is_absent")]
    pub assignee: Absent<String>,
    /// When the acknowledgement is due.
    pub ack_due_at: Option<String>,
    /// The deadline that matters in the report's state; absent where the listing does not
    /// compute it.
    #[serde(skip_serializing_if = "Absent::is_absent")]
    pub due_at: Absent<String>,
    /// Received, as the CLI names it.
    pub created_at: String,
    /// Received, as the API names it.
    pub received_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// A key that some sources of a view do not fill: `Absent` leaves the key out, `Value`
/// writes it (`null` included), so a program never reads a missing value as "none".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Absent<T> {
    /// Not read by this source: the key is left out.
    #[default]
    Absent,
    /// Read: the key is written.
    Value(Option<T>),
}

impl<T> Absent<T> {
    fn is_absent(&self) -> bool {
        matches!(self, Absent::Absent)
    }
}

impl<T: Serialize> Serialize for Absent<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Absent::Absent | Absent::Value(None) => serializer.serialize_none(),
            Absent::Value(Some(value)) => value.serialize(serializer),
        }
    }
}

impl ReportSummaryView {
    /// A row of the inbox (the API's list).
    pub fn from_inbox(row: &InboxRow) -> Self {
        let s = &row.summary;
        let (state, close_reason) = state_codes(s.state);
        Self {
            id: s.reference.to_string(),
            reference: s.reference.to_string(),
            title: s.title.clone(),
            state,
            close_reason,
            channel: None,
            product_id: s.product_id,
            assignee_id: s.assignee.map(|a| a.0),
            product: Absent::Value(row.product.clone()),
            assignee: Absent::Value(row.assignee.clone()),
            ack_due_at: s.ack_due_at.map(time),
            due_at: Absent::Value(s.due_at.map(time)),
            created_at: time(s.created_at),
            received_at: time(s.created_at),
            updated_at: time(s.updated_at),
        }
    }

    /// A report record (the CLI's list).
    pub fn from_record(r: &ReportRecord) -> Self {
        let (state, close_reason) = state_codes(r.state);
        Self {
            id: r.reference.to_string(),
            reference: r.reference.to_string(),
            title: r.title.clone(),
            state,
            close_reason,
            channel: Some(r.channel.clone()),
            product_id: r.product_id,
            assignee_id: r.assignee.map(|a| a.0),
            product: Absent::Absent,
            assignee: Absent::Absent,
            ack_due_at: r.ack_due_at.map(time),
            due_at: Absent::Absent,
            created_at: time(r.created_at),
            received_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

/// A report with everything the team may read (`GET /api/v1/reports/{reference}`,
/// `embargo report show --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// The reference, as the CLI names it.
    pub id: String,
    /// The reference, as the API names it.
    pub reference: String,
    /// Title.
    pub title: String,
    /// State code.
    pub state: &'static str,
    /// Why it was closed, when it is.
    pub close_reason: Option<&'static str>,
    /// How it arrived.
    pub channel: String,
    /// The report's text, exactly as received.
    pub body: String,
    /// The fields of a web-form report.
    pub form: Value,
    /// The product's id.
    pub product_id: Option<i64>,
    /// The assignee's user id.
    pub assignee_id: Option<i64>,
    /// When the acknowledgement is due.
    pub ack_due_at: Option<String>,
    /// Received, as the CLI names it.
    pub created_at: String,
    /// Received, as the API names it.
    pub received_at: String,
    /// Last changed.
    pub updated_at: String,
    /// Who reported it.
    pub reporter: ReporterView,
    /// The upstream project and its contact, when the flaw is in a dependency.
    pub upstream: Option<UpstreamView>,
    /// The thread, oldest first, each message with its attachments.
    pub messages: Vec<MessageView>,
    /// Every attachment of the report.
    pub attachments: Vec<AttachmentView>,
    /// Lifecycle history.
    pub transitions: Vec<TransitionView>,
    /// The SLA clocks.
    pub deadlines: Vec<DeadlineView>,
    /// SLA warnings and escalations raised.
    pub sla_alerts: Vec<AlertView>,
    /// Severity, CVSS, CWE, SSVC and affected versions.
    pub assessment: AssessmentView,
}

/// The reporter.
#[derive(Debug, Clone, Serialize)]
pub struct ReporterView {
    /// Address as given.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether an OpenPGP key is on file (the API's name).
    pub has_openpgp_key: bool,
    /// The same, as the CLI names it.
    pub openpgp_key: bool,
}

/// The upstream project.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamView {
    /// The project.
    pub project: String,
    /// Its security contact.
    pub contact: String,
}

/// One message of the thread.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Row id.
    pub id: i64,
    /// `inbound`, `outbound` or `note`.
    pub kind: &'static str,
    /// Author.
    pub author: String,
    /// Sender address.
    pub sender: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Text, exactly as received.
    pub body: String,
    /// Size of the kept original, in bytes.
    pub raw_size: Option<usize>,
    /// Whether it is quarantined (not from the reporter).
    pub quarantined: bool,
    /// Whether the reporter sees it on the status page.
    pub visible_to_reporter: bool,
    /// OpenPGP status at intake (the API's name).
    pub openpgp: Option<String>,
    /// The same, as the CLI names it.
    pub pgp: Option<String>,
    /// Sender authentication results (the API's name).
    pub sender_authentication: Option<String>,
    /// The same, as the CLI names it.
    pub auth: Option<String>,
    /// What was wrong with it as received (`malformed-mime`, `ambiguous-sender`,
    /// `sender-mismatch`); empty when nothing was.
    pub anomalies: Vec<String>,
    /// When.
    pub at: String,
    /// Its attachments.
    pub attachments: Vec<AttachmentView>,
}

/// An attachment: `filename` is the name as sent (evidence, never a path); `safe_name` is
/// the one to save it under.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// Row id.
    pub id: i64,
    /// The name as the reporter sent it.
    pub filename: String,
    /// The name to use as a path ([`safe_filename`]).
    pub safe_name: String,
    /// Media type as sent.
    pub media_type: String,
    /// Size in bytes.
    pub size: i64,
    /// The message it came with.
    pub message: Option<i64>,
}

/// A lifecycle transition.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionView {
    /// State code before.
    pub from: String,
    /// State code after.
    pub to: &'static str,
    /// The close reason, when it closed the report.
    pub close_reason: Option<&'static str>,
    /// Who.
    pub actor: String,
    /// When.
    pub at: String,
}

/// An SLA clock.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlineView {
    /// `acknowledge`, `analyse`, `update` or `fix`.
    pub clock: &'static str,
    /// Budget in working days.
    pub budget_working_days: u32,
    /// Started.
    pub started: String,
    /// Deadline; none while paused.
    pub due: Option<String>,
    /// When it stopped.
    pub stopped: Option<String>,
    /// For a stopped clock: whether it stopped by its deadline.
    pub met: Option<bool>,
    /// Whether it is paused (waiting on the reporter).
    pub paused: bool,
}

/// An SLA alert raised.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// The clock.
    pub clock: String,
    /// `warning` or `breach`.
    pub kind: String,
    /// The deadline it was about.
    pub due: String,
    /// When it was raised.
    pub at: String,
}

/// The assessment.
#[derive(Debug, Clone, Serialize)]
pub struct AssessmentView {
    /// Severity.
    pub severity: Option<String>,
    /// CVSS 3.1 vector.
    pub cvss_v3: Option<String>,
    /// CVSS 4.0 vector.
    pub cvss_v4: Option<String>,
    /// CWE identifiers.
    pub cwe: Vec<String>,
    /// SSVC decision vector.
    pub ssvc: Option<String>,
    /// Affected products and ranges.
    pub affected: Vec<crate::assessment::Affected>,
}

impl AttachmentView {
    fn new(a: &embargo_store::attachments::AttachmentMeta) -> Self {
        Self {
            id: a.id,
            filename: a.filename.clone(),
            safe_name: safe_filename(&a.filename, a.id),
            media_type: a.media_type.clone(),
            size: a.size,
            message: a.message,
        }
    }
}

impl ReportView {
    /// The view of a report as `reports::show` returned it.
    pub fn new(detail: &ReportDetail) -> Self {
        let r = &detail.report;
        let (state, close_reason) = state_codes(r.state);
        let attachments: Vec<AttachmentView> = detail.attachments.iter().map(AttachmentView::new).collect();
        let has_key = detail.reporter.openpgp_key.is_some();
        Self {
            id: r.reference.to_string(),
            reference: r.reference.to_string(),
            title: r.title.clone(),
            state,
            close_reason,
            channel: r.channel.clone(),
            body: r.body.clone(),
            form: r.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null),
            product_id: r.product_id,
            assignee_id: r.assignee.map(|a| a.0),
            ack_due_at: r.ack_due_at.map(time),
            created_at: time(r.created_at),
            received_at: time(r.created_at),
            updated_at: time(r.updated_at),
            reporter: ReporterView {
                email: detail.reporter.email.clone(),
                name: detail.reporter.name.clone(),
                has_openpgp_key: has_key,
                openpgp_key: has_key,
            },
            upstream: r
                .upstream
                .as_ref()
                .map(|u| UpstreamView { project: u.project.clone(), contact: u.contact.clone() }),
            messages: detail
                .messages
                .iter()
                .map(|m| MessageView {
                    id: m.id,
                    kind: m.kind.as_str(),
                    author: m.author.clone(),
                    sender: m.sender.clone(),
                    subject: m.subject.clone(),
                    body: m.body.clone(),
                    raw_size: m.raw_size,
                    quarantined: m.quarantined,
                    visible_to_reporter: m.visible_to_reporter,
                    openpgp: m.pgp.clone(),
                    pgp: m.pgp.clone(),
                    sender_authentication: m.auth.clone(),
                    auth: m.auth.clone(),
                    anomalies: m.anomalies.clone(),
                    at: time(m.at),
                    attachments: attachments.iter().filter(|a| a.message == Some(m.id)).cloned().collect(),
                })
                .collect(),
            attachments,
            transitions: detail
                .transitions
                .iter()
                .map(|t| {
                    let (to, close_reason) = state_codes(t.to);
                    TransitionView { from: t.from.clone(), to, close_reason, actor: t.actor.clone(), at: time(t.at) }
                })
                .collect(),
            deadlines: detail
                .clocks
                .iter()
                .map(|c| DeadlineView {
                    clock: c.name,
                    budget_working_days: c.budget_days,
                    started: time(c.started),
                    due: c.due.map(time),
                    stopped: c.stopped.map(time),
                    met: c.stopped.zip(c.due).map(|(s, d)| s <= d),
                    paused: c.stopped.is_none() && c.due.is_none(),
                })
                .collect(),
            sla_alerts: detail
                .alerts
                .iter()
                .map(|a| AlertView {
                    clock: a.clock.clone(),
                    kind: a.kind.clone(),
                    due: time(a.due_at),
                    at: time(a.at),
                })
                .collect(),
            assessment: AssessmentView {
                severity: detail.sla.severity.clone(),
                cvss_v3: detail.assessment.cvss_v3.clone(),
                cvss_v4: detail.assessment.cvss_v4.clone(),
                cwe: detail.assessment.cwe.clone(),
                ssvc: detail.assessment.ssvc.clone(),
                affected: detail.assessment.affected.clone(),
            },
        }
    }
}

/// The longest safe name, in bytes (most file systems allow 255).
const MAX_NAME_BYTES: usize = 200;

/// A file name that is safe to use as a path on any common system, from a name a reporter
/// sent: only the last path component (`../../etc/passwd` gives `passwd`); control
/// characters, invisible formatting (bidirectional overrides such as U+202E, zero-width
/// characters) and the characters Windows refuses (`<>:"|?*`) become `_`; leading dots and
/// spaces and trailing dots and spaces go (no hidden files, nothing Windows trims); names
/// Windows reserves (`CON`, `NUL`, `COM1`, `LPT1.txt`, ...) get a leading `_`; at most 200
/// bytes, keeping a short extension; an empty result becomes `attachment-<id>`. The
/// original name is kept unchanged beside it.
pub fn safe_filename(name: &str, id: i64) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let replaced: String = last.chars().map(|c| if unsafe_in_name(c) { '_' } else { c }).collect();
    let trimmed = replaced.trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']);
    // A name that was only dots, spaces and replaced characters says nothing.
    if trimmed.chars().all(|c| matches!(c, '_' | '.' | ' ')) {
        return format!("attachment-{id}");
    }
    let mut safe = trimmed.to_owned();
    let stem = safe.split('.').next().unwrap_or_default().trim_end().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.chars().nth(3).is_some_and(|d| "0123456789¹²³".contains(d))
            && stem.chars().count() == 4);
    if reserved {
        safe.insert(0, '_');
    }
    if safe.len() > MAX_NAME_BYTES {
        let extension = safe.rfind('.').map(|i| safe[i..].to_owned()).filter(|e| e.len() <= 16).unwrap_or_default();
        let mut cut = MAX_NAME_BYTES - extension.len();
        while !safe.is_char_boundary(cut) {
            cut -= 1;
        }
        safe = format!("{}{extension}", safe[..cut].trim_end_matches(['.', ' ']));
    }
    safe
}

/// Characters that never go into a safe name.
fn unsafe_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '/' | '\\')
        // Bidirectional controls, zero-width and other invisible formatting characters.
        || matches!(c, '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

#[cfg(test)]
mod tests {
    use super::safe_filename;

    #[test]
    fn hostile_attachment_names_become_safe_paths() {
        let cases: &[(&str, &str)] = &[
            ("report.pdf", "report.pdf"),
            ("../../../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system32\\drivers\\etc\\hosts", "hosts"),
            ("/absolute/path.txt", "path.txt"),
            ("a\0b\u{1}c\r\n.txt", "a_b_c__.txt"),
            ("invoice\u{202e}fdp.exe", "invoice_fdp.exe"),
            ("zero\u{200b}width\u{2066}.txt", "zero_width_.txt"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("LPT1.log", "_LPT1.log"),
            ("com9", "_com9"),
            ("COM10.txt", "COM10.txt"),
            ("console.txt", "console.txt"),
            ("what?.txt", "what_.txt"),
            ("trailing. . ", "trailing"),
            (".bashrc", "bashrc"),
            ("", "attachment-7"),
            ("..", "attachment-7"),
            ("../", "attachment-7"),
            ("\u{202e}", "attachment-7"),
            ("Ünïcödé 名前.txt", "Ünïcödé 名前.txt"),
            ("__init__.py", "__init__.py"),
        ];
        for (name, expected) in cases {
            assert_eq!(safe_filename(name, 7), *expected, "{name:?}");
        }
        let long = format!("{}.tar.gz", "é".repeat(300));
        let safe = safe_filename(&long, 1);
        assert!(safe.len() <= 200, "{}", safe.len());
        assert!(safe.ends_with("é.gz"), "{safe}");
        let long_ext = format!("x.{}", "y".repeat(400));
        assert!(safe_filename(&long_ext, 1).len() <= 200);
        // Whatever the input, the result is one plain path component.
        for name in ["a/b", "a\\b", "\0", "a:b", "\u{202e}x", ". .", "NUL.tar.gz", &"z".repeat(1000)] {
            let safe = safe_filename(name, 3);
            assert!(!safe.is_empty());
            assert!(!safe.contains(['/', '\\', '\0', ':', '\u{202e}']), "{safe:?}");
            assert!(!safe.starts_with('.') && !safe.ends_with(['.', ' ']), "{safe:?}");
            assert!(safe.len() <= 200);
        }
    }
}
