//! The reporter's side of the web: the report form with its anti-spam measure, and the
//! private status page reached by an unguessable link.
//!
//! Anti-spam without third parties: the form carries a signed challenge. The page's script
//! solves a small proof of work on it (a nonce whose SHA-256 with the challenge starts with
//! `web.proof_of_work_bits` zero bits); without JavaScript, the same challenge is accepted
//! once `web.no_script_delay_seconds` have passed since the form was served. Challenges
//! work once and expire after an hour; submissions are also limited per network address.

use embargo_domain::{Actor, ReferenceId, ReportId, ReportState, Timestamp};
use embargo_store::{attachments, messages, reporters, reports as sr, sessions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::reports::{Channel, Submission, Upload};
use crate::{App, AppError, audit};

/// How long a form challenge stays valid.
const CHALLENGE_LIFETIME_MS: i64 = 60 * 60 * 1000;

/// A challenge for the report form.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The signed challenge, sent back with the form.
    pub token: String,
    /// The proof-of-work difficulty in bits.
    pub bits: u32,
}

fn challenge_mac(app: &App, payload: &str) -> String {
    app.store.keys().blind_index("web.form_challenge", payload.as_bytes())
}

/// Issues a form challenge.
pub fn challenge(app: &App) -> Challenge {
    let payload = format!("{}.{}", app.now().as_millisecond(), &crate::tokens::secret("")[..24]);
    Challenge { token: format!("{payload}.{}", challenge_mac(app, &payload)), bits: app.config.web.proof_of_work_bits }
}

/// Whether `nonce` solves `challenge` at `bits` of difficulty.
pub fn proof_of_work_valid(challenge: &str, nonce: &str, bits: u32) -> bool {
    if nonce.is_empty() || nonce.len() > 32 {
        return false;
    }
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    let mut left = bits;
    for byte in digest {
        if left == 0 {
            return true;
        }
        let take = left.min(8);
        if byte >> (8 - take) != 0 {
            return false;
        }
        left -= take;
    }
    left == 0
}

/// What the reporter typed into the form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportForm {
    /// Title.
    pub title: String,
    /// Product id from the catalogue, or empty.
    pub product: String,
    /// Affected product as the reporter names it (when not in the catalogue) .
    pub product_other: String,
    /// Affected version(s).
    pub version: String,
    /// Description.
    pub description: String,
    /// Steps to reproduce / proof of concept.
    pub steps: String,
    /// Impact.
    pub impact: String,
    /// Contact address.
    pub email: String,
    /// Name, optional.
    pub name: String,
    /// Optional OpenPGP key (armored).
    pub openpgp_key: String,
    /// Name to credit, optional.
    pub credit_name: String,
    /// `name`, `anonymous` or `none`.
    pub credit: String,
    /// `no`, `assisted` or `generated`.
    pub ai_used: String,
    /// The challenge.
    pub challenge: String,
    /// The proof-of-work solution (empty without JavaScript).
    pub nonce: String,
}

/// Field-level problems with a form, to show beside each field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormErrors {
    /// (field name, message).
    pub fields: Vec<(&'static str, String)>,
    /// A problem with the whole form (anti-spam, rate limit).
    pub form: Option<String>,
}

impl FormErrors {
    /// The message for one field.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    /// The first field with an error (focused when the form comes back).
    pub fn first(&self) -> Option<&'static str> {
        self.fields.first().map(|(f, _)| *f)
    }

    /// Whether there is nothing wrong.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }
}

/// Why the form was refused.
#[derive(Debug)]
pub enum FormRejection {
    /// Fix these and send again (the input is kept).
    Errors(FormErrors),
    /// Something else went wrong.
    App(AppError),
}

impl From<AppError> for FormRejection {
    fn from(err: AppError) -> Self {
        FormRejection::App(err)
    }
}

impl From<embargo_store::StoreError> for FormRejection {
    fn from(err: embargo_store::StoreError) -> Self {
        FormRejection::App(err.into())
    }
}

/// A committed form report.
#[derive(Debug, Clone)]
pub struct Received {
    /// Reference.
    pub reference: ReferenceId,
    /// The status-page token (shown once on the confirmation page).
    pub status_token: String,
}

fn validate(app: &App, form: &ReportForm, uploads: &[Upload], products: &[i64]) -> FormErrors {
    let mut errors = FormErrors::default();
    let mut need = |field: &'static str, value: &str, label: &str, max: usize| {
        if value.trim().is_empty() {
            errors.fields.push((field, format!("Please enter {label}.")));
        } else if value.len() > max {
            errors.fields.push((field, format!("This is too long (at most {max} characters).")));
        }
    };
    need("title", &form.title, "a short title", 300);
    need("description", &form.description, "a description of the vulnerability", 200_000);
    need("email", &form.email, "an e-mail address we can reach you at", 320);
    let optional = [
        ("steps", &form.steps, 200_000),
        ("impact", &form.impact, 50_000),
        ("version", &form.version, 300),
        ("product_other", &form.product_other, 300),
        ("name", &form.name, 200),
        ("credit_name", &form.credit_name, 200),
        ("openpgp_key", &form.openpgp_key, 100_000),
    ];
    for (field, value, max) in optional {
        if value.len() > max {
            errors.fields.push((field, format!("This is too long (at most {max} characters).")));
        }
    }
    let email = form.email.trim();
    let plausible = email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !email.contains(char::is_whitespace)
        && !email.contains(['<', '>', ',', ';']);
    if !email.is_empty() && !plausible {
        errors.fields.push(("email", "This does not look like an e-mail address.".into()));
    }
    if !form.product.is_empty() && form.product.parse::<i64>().map_or(true, |p| !products.contains(&p)) {
        errors.fields.push(("product", "Please choose a product from the list.".into()));
    }
    if !["", "name", "anonymous", "none"].contains(&form.credit.as_str()) {
        errors.fields.push(("credit", "Please choose how to be credited.".into()));
    }
    if !["", "no", "assisted", "generated"].contains(&form.ai_used.as_str()) {
        errors.fields.push(("ai_used", "Please choose an answer.".into()));
    }
    if !form.openpgp_key.trim().is_empty()
        && let Err(e) = embargo_mail::openpgp::certificate_fingerprint(form.openpgp_key.trim())
    {
        errors.fields.push(("openpgp_key", format!("This is not a usable OpenPGP public key ({e}).")));
    }
    let size: usize = uploads.iter().map(|u| u.data.len()).sum::<usize>() + form.description.len() + form.steps.len();
    if size as u64 > app.config.limits.max_message_bytes {
        errors.fields.push((
            "attachments",
            format!(
                "The files are too large together (at most {} MB).",
                app.config.limits.max_message_bytes / 1_000_000
            ),
        ));
    }
    errors
}

/// Checks the challenge: signed by us, not expired, solved or waited for. Returns the
/// wait left (seconds) when it was sent too early without a solution.
fn check_challenge(app: &App, form: &ReportForm, now: Timestamp) -> Result<(), String> {
    let parts: Vec<&str> = form.challenge.rsplitn(2, '.').collect();
    let [mac, payload] = parts.as_slice() else { return Err("The form has expired. Please send it again.".into()) };
    if !constant_time_eq(challenge_mac(app, payload).as_bytes(), mac.as_bytes()) {
        return Err("The form has expired. Please send it again.".into());
    }
    let issued: i64 = payload.split('.').next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let age = now.as_millisecond() - issued;
    if !(0..CHALLENGE_LIFETIME_MS).contains(&age) {
        return Err("The form has expired. Please send it again.".into());
    }
    if proof_of_work_valid(&form.challenge, form.nonce.trim(), app.config.web.proof_of_work_bits) {
        return Ok(());
    }
    let wait_ms = i64::from(app.config.web.no_script_delay_seconds) * 1000;
    if age < wait_ms {
        let left = (wait_ms - age + 999) / 1000;
        return Err(format!(
            "To keep out automated spam, this form needs a few seconds: please wait {left} more second{} and send it again.",
            if left == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn compose_body(form: &ReportForm, product_name: Option<&str>) -> String {
    let mut body = String::new();
    let mut section = |heading: &str, text: &str| {
        if !text.trim().is_empty() {
            body.push_str(&format!("## {heading}\n\n{}\n\n", text.trim()));
        }
    };
    let product = match (product_name, form.product_other.trim()) {
        (Some(p), "") => p.to_owned(),
        (Some(p), other) => format!("{p} ({other})"),
        (None, other) => other.to_owned(),
    };
    section("Affected product", &product);
    section("Affected version", &form.version);
    section("Description", &form.description);
    section("Steps to reproduce / proof of concept", &form.steps);
    section("Impact", &form.impact);
    body.trim_end().to_owned()
}

/// Accepts a report from the web form: checks the fields, the anti-spam challenge and the
/// per-address rate, then commits the report, its attachments, the reporter's key and the
/// acknowledgement job in one transaction.
pub async fn submit_form(
    app: &App,
    form: &ReportForm,
    uploads: Vec<Upload>,
    address: &str,
) -> Result<Received, FormRejection> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let products = embargo_store::products::list(&mut tx).await?;
    let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
    let mut errors = validate(app, form, &uploads, &ids);
    if let Err(problem) = check_challenge(app, form, now) {
        errors.form = Some(problem);
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        return Err(FormRejection::Errors(errors));
    }
    let hour = now.as_millisecond() / 3_600_000 * 3_600_000;
    let key = format!("form:address:{}", crate::tokens::hash(address));
    if sessions::count(&mut tx, &key, hour).await? >= i64::from(app.config.web.reports_per_hour_per_ip) {
        tx.rollback().await?;
        return Err(FormRejection::Errors(FormErrors {
            fields: Vec::new(),
            form: Some("Too many reports were sent from your network in the last hour. Please try again later, or send your report by e-mail.".into()),
        }));
    }
    let expires = now.checked_add(jiff::SignedDuration::from_hours(2)).unwrap_or(now);
    if !sessions::spend_challenge(&mut tx, &crate::tokens::hash(&form.challenge), expires).await? {
        tx.rollback().await?;
        return Err(FormRejection::Errors(FormErrors {
            fields: Vec::new(),
            form: Some("This form was sent already. Please check your mailbox for our acknowledgement.".into()),
        }));
    }
    sessions::hit(&mut tx, &key, hour).await?;
    sessions::purge(&mut tx, hour - 24 * 3_600_000, now).await?;
    let product_id = form.product.parse::<i64>().ok();
    let product_name = products.iter().find(|p| Some(p.id) == product_id).map(|p| p.name.as_str());
    let details = serde_json::json!({
        "product": product_name,
        "product_other": form.product_other.trim(),
        "version": form.version.trim(),
        "description": form.description.trim(),
        "steps": form.steps.trim(),
        "impact": form.impact.trim(),
        "credit_name": form.credit_name.trim(),
        "credit": if form.credit.is_empty() { "name" } else { form.credit.as_str() },
        "ai_used": if form.ai_used.is_empty() { "no" } else { form.ai_used.as_str() },
    });
    let submission = Submission {
        channel: Channel::Web,
        reporter_email: form.email.trim().to_owned(),
        reporter_name: Some(form.name.trim().to_owned()).filter(|n| !n.is_empty()),
        title: form.title.trim().to_owned(),
        body: compose_body(form, product_name),
        attachments: uploads,
        raw: None,
        message_id: None,
        acknowledge: true,
        pgp: None,
        auth: None,
        anomalies: None,
        details: Some(details.to_string()),
        product_id,
    };
    // A key typed into the form is taken as the reporter's only for a new reporter: anyone
    // can type anyone's address, so for a known address it is attached to the report for
    // the team to look at and import.
    let known_reporter = reporters::by_email(&mut tx, form.email.trim()).await?.is_some();
    let key = form.openpgp_key.trim();
    let mut submission = submission;
    if !key.is_empty() && known_reporter {
        submission.attachments.push(Upload {
            filename: "openpgp-key-from-form.asc".into(),
            media_type: "application/pgp-keys".into(),
            data: key.as_bytes().to_vec(),
        });
    }
    let submitted = crate::reports::submit_in(&mut tx, app, &Actor::Reporter, &submission).await?;
    if !key.is_empty() && !known_reporter {
        let record = sr::get(&mut tx, submitted.id).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
        reporters::set_openpgp_key(&mut tx, record.reporter_id, key).await?;
        audit::record(
            &mut tx,
            app,
            &Actor::Reporter,
            "reporter.key.import",
            &format!("report:{}", submitted.reference),
            "via=form",
        )
        .await?;
    }
    tx.commit().await?;
    crate::reports::submitted_log(&submitted.reference, Channel::Web);
    Ok(Received { reference: submitted.reference, status_token: submitted.status_token })
}

/// One entry of the reporter's timeline.
#[derive(Debug, Clone)]
pub enum StatusEvent {
    /// A state change.
    State {
        /// New state.
        state: ReportState,
        /// When.
        at: Timestamp,
    },
    /// A message the reporter may see.
    Message {
        /// From the reporter (true) or the team.
        from_reporter: bool,
        /// Subject.
        subject: Option<String>,
        /// Text.
        body: String,
        /// Names of attached files.
        attachments: Vec<String>,
        /// When.
        at: Timestamp,
    },
}

/// What the status page shows.
#[derive(Debug, Clone)]
pub struct StatusView {
    /// Reference.
    pub reference: ReferenceId,
    /// Title.
    pub title: String,
    /// Current state.
    pub state: ReportState,
    /// Received.
    pub received_at: Timestamp,
    /// When the acknowledgement is due (while not yet acknowledged).
    pub ack_due_at: Option<Timestamp>,
    /// Whether the team has acknowledged the report.
    pub acknowledged: bool,
    /// Oldest first.
    pub events: Vec<StatusEvent>,
    /// When the team's next update to the reporter is due (while the report is open).
    pub update_due_at: Option<Timestamp>,
    /// The target date of the fix, once the report is accepted as a vulnerability.
    pub fix_due_at: Option<Timestamp>,
    /// The planned disclosure date, once one is set (and until it is reached).
    pub disclose_at: Option<Timestamp>,
    /// While the team waits on the reporter: what they asked and when the report closes
    /// without an answer.
    pub needs_info: Option<NeedsInfo>,
}

/// What the team asked a reporter, on a report waiting for their answer.
#[derive(Debug, Clone)]
pub struct NeedsInfo {
    /// The text of the team's latest message since the report began to wait (the questions).
    pub asked: Option<String>,
    /// Waiting since.
    pub since: Timestamp,
    /// When the report is closed for lack of an answer.
    pub closes_at: Option<Timestamp>,
}

async fn report_for_token(tx: &mut embargo_store::Tx, token: &str) -> Result<ReportId, AppError> {
    // Tokens are 64 hex characters; anything else is not looked up at all.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound("status page".into()));
    }
    sr::by_status_token_hash(tx, &crate::tokens::hash(token))
        .await?
        .ok_or_else(|| AppError::NotFound("status page".into()))
}

/// Whether `token` is a live status link (checked before an upload is read).
pub async fn link_valid(app: &App, token: &str) -> Result<bool, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = report_for_token(&mut tx, token).await;
    tx.rollback().await?;
    match found {
        Ok(_) => Ok(true),
        Err(AppError::NotFound(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The status page of the report behind `token`. Reads are audited.
pub async fn status(app: &App, token: &str) -> Result<StatusView, AppError> {
    let mut tx = app.store.snapshot().await?;
    let id = report_for_token(&mut tx, token).await?;
    let report = sr::get(&mut tx, id).await?.ok_or_else(|| AppError::NotFound("status page".into()))?;
    let transitions = sr::transitions(&mut tx, id).await?;
    let all_messages = messages::list(&mut tx, id).await?;
    let files = attachments::list(&mut tx, id).await?;
    let mut events: Vec<StatusEvent> =
        transitions.iter().map(|t| StatusEvent::State { state: t.to, at: t.at }).collect();
    for message in all_messages.into_iter().filter(|m| m.visible_to_reporter) {
        events.push(StatusEvent::Message {
            from_reporter: message.kind == messages::MessageKind::Inbound,
            subject: message.subject,
            body: message.body,
            attachments: files.iter().filter(|f| f.message == Some(message.id)).map(|f| f.filename.clone()).collect(),
            at: message.at,
        });
    }
    events.sort_by_key(|e| match e {
        StatusEvent::State { at, .. } | StatusEvent::Message { at, .. } => *at,
    });
    let acknowledged = transitions.iter().any(|t| t.from == "new");
    let sla = embargo_store::sla::get(&mut tx, id).await?;
    let embargo = embargo_store::partners::embargo(&mut tx, id).await?;
    tx.rollback().await?;
    let open = !matches!(report.state, ReportState::Closed(_) | ReportState::Disclosed);
    let accepted =
        matches!(report.state, ReportState::Accepted | ReportState::Fixing | ReportState::ReadyForDisclosure);
    let disclose_at = embargo
        .filter(|e| {
            open && matches!(
                e.state,
                embargo_domain::EmbargoState::Proposed
                    | embargo_domain::EmbargoState::Active
                    | embargo_domain::EmbargoState::Revised
            )
        })
        .map(|e| e.disclose_at);
    let needs_info = (report.state == ReportState::NeedsInfo).then(|| {
        let since = sla
            .needs_info_since
            .or_else(|| transitions.iter().rev().find(|t| t.to == ReportState::NeedsInfo).map(|t| t.at))
            .unwrap_or(report.created_at);
        let asked = events.iter().rev().find_map(|e| match e {
            StatusEvent::Message { from_reporter: false, body, at, .. } if *at >= since => Some(body.clone()),
            _ => None,
        });
        NeedsInfo { asked, since, closes_at: crate::sla::close_due(app, since) }
    });
    let subject = format!("report:{}", report.reference);
    crate::reports::audit_read(app, &Actor::Reporter, "report.read", &subject, "via=status-link").await?;
    Ok(StatusView {
        reference: report.reference,
        title: report.title,
        state: report.state,
        received_at: report.created_at,
        ack_due_at: report.ack_due_at.filter(|_| !acknowledged),
        acknowledged,
        events,
        update_due_at: sla.update_due_at.filter(|_| open && report.state != ReportState::NeedsInfo),
        fix_due_at: sla.fix_due_at.filter(|_| accepted),
        disclose_at,
        needs_info,
    })
}

/// A reply from the status page, with files. The reporter is who holds the link.
pub async fn status_reply(app: &App, token: &str, body: &str, uploads: Vec<Upload>) -> Result<ReferenceId, AppError> {
    let body = body.replace("\r\n", "\n");
    if body.trim().is_empty() && uploads.is_empty() {
        return Err(AppError::Invalid("Please write a message or attach a file.".into()));
    }
    if body.len() > 200_000 {
        return Err(AppError::Invalid("The message is too long (at most 200,000 characters).".into()));
    }
    let size: usize = uploads.iter().map(|u| u.data.len()).sum();
    if size as u64 > app.config.limits.max_message_bytes {
        return Err(AppError::Invalid("The files are too large together.".into()));
    }
    let mut tx = app.store.begin().await?;
    let id = report_for_token(&mut tx, token).await?;
    let report = sr::get(&mut tx, id).await?.ok_or_else(|| AppError::NotFound("status page".into()))?;
    let reporter = reporters::get(&mut tx, report.reporter_id).await?;
    let message = Submission {
        reporter_name: reporter.name,
        attachments: uploads,
        ..Submission::new(Channel::Web, &reporter.email, &format!("Re: {}", report.title), &body)
    };
    let reference = crate::reports::add_inbound_message_in(&mut tx, app, &Actor::Reporter, id, &message, false).await?;
    tx.commit().await?;
    tracing::info!(report = %reference, "reporter replied on the status page");
    Ok(reference)
}

/// The reporter replaces their status link (for example after sharing it by mistake);
/// returns the new token. The old link stops working at once.
pub async fn rotate_link(app: &App, token: &str) -> Result<String, AppError> {
    let mut tx = app.store.begin().await?;
    let id = report_for_token(&mut tx, token).await?;
    let report = sr::get(&mut tx, id).await?.ok_or_else(|| AppError::NotFound("status page".into()))?;
    let new = crate::tokens::secret("");
    sr::rotate_status_token(&mut tx, &report, &new, &crate::tokens::hash(&new), app.now()).await?;
    audit::record(
        &mut tx,
        app,
        &Actor::Reporter,
        "report.status_link.rotate",
        &format!("report:{}", report.reference),
        "via=status-link",
    )
    .await?;
    tx.commit().await?;
    Ok(new)
}

/// Products for the form's list.
pub async fn products(app: &App) -> Result<Vec<embargo_store::products::ProductRecord>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let list = embargo_store::products::list(&mut tx).await?;
    tx.rollback().await?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_of_work_checks_leading_zero_bits() {
        let challenge = "1.abc.def";
        let nonce = (0u64..).find(|n| proof_of_work_valid(challenge, &n.to_string(), 8)).unwrap();
        let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
        assert_eq!(digest[0], 0);
        assert!(!proof_of_work_valid(challenge, "", 0));
        // A nonce that solves 8 bits rarely solves 20.
        let solves_20 = (0u64..2000).filter(|n| proof_of_work_valid(challenge, &n.to_string(), 20)).count();
        assert!(solves_20 < 5);
    }
}
