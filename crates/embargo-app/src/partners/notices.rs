//! Pre-notices to partners: drafted from the advisory, the assessment and the backport
//! matrix with the patches frozen in, checked against every recipient list's embargo
//! policy, edited by the team (audited), then sent: one copy per current contact of every
//! active partner of the report's product, by mail (OpenPGP-encrypted with the patches and
//! an iCalendar file attached, or, to a contact without a key, only a pointer to the
//! portal) and in the portal. Reminders go a week before to those who have not
//! acknowledged, and a final notice with the exact time goes to every contact before the
//! instant. A revised date is a new notice to every partner.

use embargo_advisory::record::AdvisoryRecord;
use embargo_domain::partner::{DeliveryState, EmbargoPolicy, EmbargoState, EmbargoStep, Proposal};
use embargo_domain::{Actor, ReferenceId, ReportId, Timestamp};
use embargo_store::partners::{self as store, Delivery, Embargo, NewDelivery, NewNotice, Notice, Partner};
use embargo_store::{Tx, reports::ReportRecord};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::authz::{self, Permission};
use crate::jobs::{Claim, Job, JobError};
use crate::{App, AppError, audit};

/// How a draft is asked for.
#[derive(Debug, Clone, Copy)]
pub struct DraftOptions {
    /// The disclosure instant (UTC).
    pub disclose_at: Timestamp,
    /// A person confirmed a Friday, Saturday or Sunday.
    pub confirm_day: bool,
    /// Partners may deploy to hosted services before the date.
    pub deploy_hosted: bool,
    /// Partners may tell customers an issue exists, its ID and date.
    pub tell_customers: bool,
}

/// What [`draft`] made.
#[derive(Debug, Clone, Serialize)]
pub struct Drafted {
    /// The notice's ID (what `notice send` takes).
    pub notice: i64,
    /// The report.
    pub report: String,
    /// `pre-notice` or `revision`.
    pub kind: String,
    /// The instant (RFC 3339, UTC).
    pub disclose_at: String,
    /// What the policy warns about (accepted anyway).
    pub warnings: Vec<String>,
    /// The partners it will go to.
    pub partners: Vec<String>,
    /// The release lines whose patches it carries.
    pub patches: Vec<String>,
}

pub(super) fn subject_of(reference: &ReferenceId) -> String {
    format!("report:{reference}")
}

/// Finds a report for the team's disclosure work; a refusal is "not found".
pub(super) async fn report_for(tx: &mut Tx, actor: &Actor, reference: &ReferenceId) -> Result<ReportRecord, AppError> {
    let not_found = || AppError::NotFound(format!("report {reference}"));
    let report = embargo_store::reports::get_by_reference(tx, reference).await?.ok_or_else(not_found)?;
    match authz::require(tx, actor, Permission::PlanDisclosure.on(report.id)).await {
        Err(AppError::Forbidden(_)) => Err(not_found()),
        Err(e) => Err(e),
        Ok(()) => Ok(report),
    }
}

/// Refuses early notice for a report that is not being fixed: only an accepted report
/// (accepted, fixing, ready for disclosure) has something partners should prepare for.
pub(super) fn check_report_state(report: &ReportRecord) -> Result<(), AppError> {
    use embargo_domain::ReportState::*;
    match report.state {
        Accepted | Fixing | ReadyForDisclosure => Ok(()),
        other => Err(AppError::Conflict(format!(
            "{} is {}: partners are told only of an accepted report (accepted, fixing or ready for disclosure)",
            report.reference,
            other.code()
        ))),
    }
}

/// The report's product's active partners, or why there are none.
pub(super) async fn recipients(tx: &mut Tx, report: &ReportRecord) -> Result<(String, Vec<Partner>), AppError> {
    let product_id = report.product_id.ok_or_else(|| {
        AppError::Invalid(format!(
            "{} has no product yet, so no partner can be chosen: set it with `embargo report product {} NAME`",
            report.reference, report.reference
        ))
    })?;
    let product = embargo_store::products::list(tx)
        .await?
        .into_iter()
        .find(|p| p.id == product_id)
        .map(|p| p.name)
        .unwrap_or_default();
    let partners = store::active_partners_for_product(tx, product_id).await?;
    if partners.is_empty() {
        return Err(AppError::Invalid(format!(
            "no active partner receives notices for {product:?}: add one with `embargo partner add ORG --products {product}`"
        )));
    }
    Ok((product, partners))
}

/// Checks a date against the policy of every list the partners are on; returns the
/// warnings, or refuses with every rule broken (each said once).
pub(super) async fn check_policy(
    tx: &mut Tx,
    partners: &[Partner],
    proposal: Proposal,
) -> Result<(Vec<String>, SignedDuration), AppError> {
    let mut lists = Vec::new();
    for partner in partners {
        if !lists.iter().any(|l: &store::PartnerList| l.id == partner.list_id)
            && let Some(list) = store::list(tx, partner.list_id).await?
        {
            lists.push(list);
        }
    }
    if lists.is_empty() {
        lists.push(store::PartnerList { id: 0, name: "default".into(), policy: EmbargoPolicy::default() });
    }
    let (mut warnings, mut refusals) = (Vec::new(), Vec::new());
    let mut final_notice = SignedDuration::ZERO;
    for list in &lists {
        final_notice = final_notice.max(list.policy.final_notice);
        match list.policy.check(proposal) {
            Ok(found) => warnings.extend(found.iter().map(ToString::to_string)),
            Err(err) => {
                refusals.push(if lists.len() == 1 { err.to_string() } else { format!("list {}: {err}", list.name) })
            }
        }
    }
    warnings.dedup();
    if refusals.is_empty() {
        Ok((warnings, final_notice))
    } else {
        Err(AppError::Invalid(format!("the date is refused: {}", refusals.join("; "))))
    }
}

/// The kind of notice the embargo's state calls for, and when partners were first told.
fn next_kind(
    embargo: Option<&Embargo>,
    reference: &ReferenceId,
) -> Result<(&'static str, Option<Timestamp>), AppError> {
    match embargo {
        None => Ok(("pre-notice", None)),
        Some(e) if e.state == EmbargoState::Proposed => Ok(("pre-notice", None)),
        Some(e) if e.state.is_in_force() => Ok(("revision", e.first_notice_at)),
        Some(e) => {
            Err(AppError::Conflict(format!("the embargo on {reference} is {}: no new date can be proposed", e.state)))
        }
    }
}

/// Drafts a notice for a report's disclosure at `options.disclose_at`, after checking the
/// policy: the notice ID, or a refusal naming each rule the date breaks.
pub async fn draft(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
    options: DraftOptions,
) -> Result<Drafted, AppError> {
    let now = app.now();
    // Read and check first, without holding the writer.
    let (report, kind, partners, warnings, text) = {
        let mut tx = app.store.snapshot().await?;
        let report = report_for(&mut tx, actor, reference).await?;
        check_report_state(&report)?;
        let embargo = store::embargo(&mut tx, report.id).await?;
        let (kind, first_notice_at) = next_kind(embargo.as_ref(), reference)?;
        let (_, partners) = recipients(&mut tx, &report).await?;
        let proposal =
            Proposal { now, disclose_at: options.disclose_at, first_notice_at, confirm_day: options.confirm_day };
        let (warnings, _) = check_policy(&mut tx, &partners, proposal).await?;
        let mut text = compose_in(&mut tx, app, &report).await?;
        // A revision keeps the text the team sent (and edited) last; only the patches are
        // frozen again below.
        if kind == "revision"
            && let Some(last) = store::notices(&mut tx, report.id)
                .await?
                .into_iter()
                .find(|n| n.state != "draft" && matches!(n.kind.as_str(), "pre-notice" | "revision"))
        {
            let body = last.body.split_once(PATCHES_HEADING).map_or(last.body.as_str(), |(text, _)| text).to_owned();
            text = (last.subject, body);
        }
        tx.rollback().await?;
        (report, kind, partners, warnings, text)
    };
    let mut warnings = warnings;
    // The patches, frozen now: exactly the series that will be merged.
    let mut patches = Vec::new();
    match crate::fixes::status(app, actor, reference).await {
        Ok(fix) => {
            for line in fix.lines.iter().filter(|l| l.affected) {
                if line.head == line.base {
                    warnings.push(format!("release line {} has no fix commit yet: no patch for it", line.line));
                    continue;
                }
                let series = crate::fixes::patches(app, actor, reference, &line.line).await?;
                patches.push((line.line.clone(), series));
            }
        }
        Err(AppError::NotFound(_)) => {
            warnings.push("the report has no fix repository: the notice carries no patches".into())
        }
        Err(e) => return Err(e),
    }
    let mut tx = app.store.begin().await?;
    let report = report_for(&mut tx, actor, &report.reference).await?;
    let id = store::insert_notice(
        &mut tx,
        &NewNotice {
            report: report.id,
            kind,
            disclose_at: options.disclose_at,
            deploy_hosted: options.deploy_hosted,
            tell_customers: options.tell_customers,
            confirmed_day: options.confirm_day,
            subject: &text.0,
            body: &with_patch_list(&text.1, &patches),
            created_by: &actor.to_string(),
        },
        now,
    )
    .await?;
    for (line, series) in &patches {
        store::set_patch(&mut tx, id, line, series, &hex::encode(sha2::Sha256::digest(series))).await?;
    }
    // A first date is a proposal on the embargo; a revision moves it only when sent.
    let embargo = store::embargo(&mut tx, report.id).await?;
    if kind == "pre-notice" {
        let state = match &embargo {
            Some(e) => e.state.apply(EmbargoStep::Propose).map_err(|e| AppError::Conflict(e.to_string()))?,
            None => EmbargoState::Proposed,
        };
        store::save_embargo(
            &mut tx,
            &Embargo {
                report: report.id,
                state,
                disclose_at: options.disclose_at,
                first_notice_at: None,
                public_id: embargo
                    .as_ref()
                    .map_or_else(|| crate::tokens::secret("")[..12].to_owned(), |e| e.public_id.clone()),
                announced_at: None,
                announced_severity: None,
                created_at: embargo.as_ref().map_or(now, |e| e.created_at),
                updated_at: now,
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "notice.draft",
        &subject_of(&report.reference),
        &format!(
            "notice={id} kind={kind} disclose_at={} patches={} confirmed_day={}",
            options.disclose_at,
            patches.len(),
            options.confirm_day
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Drafted {
        notice: id,
        report: report.reference.to_string(),
        kind: kind.into(),
        disclose_at: options.disclose_at.to_string(),
        warnings,
        partners: partners.into_iter().map(|p| p.name).collect(),
        patches: patches.into_iter().map(|(line, _)| line).collect(),
    })
}

/// Where the list of patches starts in a notice's text.
const PATCHES_HEADING: &str = "\n== Patches ==\n";

fn with_patch_list(body: &str, patches: &[(String, Vec<u8>)]) -> String {
    let mut out = body.to_owned();
    out.push_str(PATCHES_HEADING);
    if patches.is_empty() {
        out.push_str("None attached yet.\n");
    } else {
        out.push_str(
            "Attached, one `git format-patch` series per release line: exactly the commits that will\n\
             be merged at disclosure. Apply with `git am` on the public branch.\n",
        );
        for (line, series) in patches {
            out.push_str(&format!(
                "- {}: {} (sha256 {})\n",
                line,
                patch_filename(line),
                hex::encode(sha2::Sha256::digest(series))
            ));
        }
    }
    out
}

/// The attachment name of a line's patch series.
pub(super) fn patch_filename(line: &str) -> String {
    let safe: String =
        line.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' }).collect();
    format!("fix-{safe}.patch")
}

/// The team's text of a notice, from the report's newest advisory, its assessment and its
/// backport matrix: (subject, body).
async fn compose_in(tx: &mut Tx, app: &App, report: &ReportRecord) -> Result<(String, String), AppError> {
    let advisory = newest_advisory(tx, report.id).await?;
    let assessment = crate::assessment::get_in(tx, report.id).await?;
    let lines = embargo_store::fixes::lines(tx, report.id).await.unwrap_or_default();
    let title = advisory.as_ref().map_or(report.title.as_str(), |a| a.title.as_str()).trim();
    let subject = format!("[EMBARGOED] {}: {}", report.reference, title);
    let mut body = String::new();
    body.push_str(&format!("{}\n\n", title));
    body.push_str("== Summary ==\n");
    let summary = advisory.as_ref().map(|a| a.summary.trim()).filter(|s| !s.is_empty()).unwrap_or("(to be written)");
    body.push_str(&format!("{summary}\n\n"));
    let cves: Vec<&str> = advisory.as_ref().and_then(|a| a.cve_id.as_deref()).into_iter().collect();
    body.push_str(&format!("CVE: {}\n", if cves.is_empty() { "not assigned yet".into() } else { cves.join(", ") }));
    let vectors: Vec<String> = match &advisory {
        Some(a) => [&a.severity.cvss_v4_0, &a.severity.cvss_v3_1].into_iter().flatten().cloned().collect(),
        None => [&assessment.cvss_v4, &assessment.cvss_v3].into_iter().flatten().cloned().collect(),
    };
    match vectors.first().and_then(|v| embargo_domain::cvss::Vector::parse(v).ok().map(|p| (v, p))) {
        Some((text, vector)) => {
            body.push_str(&format!("Severity: {} {:.1} ({text})\n", vector.severity(), vector.score().value()));
        }
        None => body.push_str("Severity: not assessed yet\n"),
    }
    body.push_str(&format!("Organisation: {}\n\n", app.config.organisation.name));
    body.push_str("== Affected and fixed versions ==\n");
    if lines.is_empty() {
        for affected in &assessment.affected {
            body.push_str(&format!(
                "- introduced {}, fixed in {}\n",
                if affected.introduced.is_empty() { "?" } else { &affected.introduced },
                if affected.fixed.is_empty() { "(not yet)" } else { &affected.fixed }
            ));
        }
        if assessment.affected.is_empty() {
            body.push_str("(to be written)\n");
        }
    }
    for line in &lines {
        if line.affected {
            body.push_str(&format!(
                "- release line {}: affected from {}, fixed in {}\n",
                line.line,
                if line.introduced.is_empty() { "?" } else { &line.introduced },
                if line.fixed_version.is_empty() { "(version to be decided)" } else { &line.fixed_version }
            ));
        } else {
            body.push_str(&format!("- release line {}: not affected\n", line.line));
        }
    }
    body.push_str("\n== How to tell if you are affected ==\n");
    let details = advisory.as_ref().map(|a| a.details.trim()).filter(|s| !s.is_empty()).unwrap_or("(to be written)");
    body.push_str(&format!("{details}\n\n"));
    body.push_str("== Mitigations ==\n");
    let workarounds = advisory
        .as_ref()
        .map(|a| a.workarounds.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or("None known: apply the patches.");
    body.push_str(&format!("{workarounds}\n\n"));
    body.push_str("== Detection ==\n(none provided)\n");
    Ok((subject, body))
}

async fn newest_advisory(tx: &mut Tx, report: ReportId) -> Result<Option<AdvisoryRecord>, AppError> {
    let row = embargo_store::advisories::newest_for_report(tx, report).await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.record).ok()))
}

/// A notice by what the command line gives: its ID, or a report's reference (its latest
/// notice). The actor must plan the report's disclosure.
pub async fn resolve(app: &App, actor: &Actor, text: &str) -> Result<i64, AppError> {
    let mut tx = app.store.snapshot().await?;
    let notice = resolve_in(&mut tx, actor, text).await?;
    tx.rollback().await?;
    Ok(notice.id)
}

pub(super) async fn resolve_in(tx: &mut Tx, actor: &Actor, text: &str) -> Result<Notice, AppError> {
    let text = text.trim();
    let id = text.strip_prefix("N-").unwrap_or(text);
    let notice = if let Ok(id) = id.parse::<i64>() {
        store::notice(tx, id).await?.ok_or_else(|| AppError::NotFound(format!("notice {text}")))?
    } else {
        let reference: ReferenceId = text
            .parse()
            .map_err(|_| AppError::Invalid(format!("{text:?} is neither a notice ID nor a report reference")))?;
        let report = report_for(tx, actor, &reference).await?;
        store::notices(tx, report.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::NotFound(format!("a notice about {reference}")))?
    };
    match authz::require(tx, actor, Permission::PlanDisclosure.on(notice.report)).await {
        Err(AppError::Forbidden(_)) => Err(AppError::NotFound(format!("notice {text}"))),
        Err(e) => Err(e),
        Ok(()) => Ok(notice),
    }
}

/// A draft's text and permissions, as the team edits them.
#[derive(Debug, Clone)]
pub struct NoticeText {
    /// Subject.
    pub subject: String,
    /// The team's text.
    pub body: String,
    /// May deploy to hosted services.
    pub deploy_hosted: bool,
    /// May tell customers.
    pub tell_customers: bool,
}

/// Edits a draft before it goes (audited: who, when, the text's hash; never the text).
pub async fn edit(app: &App, actor: &Actor, notice: &str, text: NoticeText) -> Result<(), AppError> {
    if text.subject.trim().is_empty() || text.body.trim().is_empty() {
        return Err(AppError::Invalid("a notice needs a subject and a text".into()));
    }
    if text.subject.chars().any(char::is_control) || text.subject.chars().count() > 300 {
        return Err(AppError::Invalid("the subject is one line of at most 300 characters".into()));
    }
    if text.body.len() > 1024 * 1024 {
        return Err(AppError::Invalid("a notice's text is at most 1 MiB".into()));
    }
    let mut tx = app.store.begin().await?;
    let mut found = resolve_in(&mut tx, actor, notice).await?;
    if found.state != "draft" {
        return Err(AppError::Conflict(format!("notice {} was {} already; draft a new one", found.id, found.state)));
    }
    found.subject = text.subject;
    found.body = text.body;
    found.deploy_hosted = text.deploy_hosted;
    found.tell_customers = text.tell_customers;
    store::edit_notice(&mut tx, &found, &actor.to_string(), app.now()).await?;
    let report =
        embargo_store::reports::get(&mut tx, found.report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let hash = hex::encode(sha2::Sha256::digest(format!("{}\n{}", found.subject, found.body)));
    audit::record(
        &mut tx,
        app,
        actor,
        "notice.edit",
        &subject_of(&report.reference),
        &format!(
            "notice={} sha256={hash} deploy_hosted={} tell_customers={}",
            found.id, found.deploy_hosted, found.tell_customers
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What [`send`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    /// The notice.
    pub notice: i64,
    /// The embargo's state now.
    pub embargo: String,
    /// Copies queued.
    pub copies: usize,
    /// Of which encrypted (the others only point to the portal).
    pub encrypted: usize,
    /// Policy warnings at the time of sending.
    pub warnings: Vec<String>,
}

/// Sends a drafted notice to every current contact of every active partner of the
/// report's product. The policy is checked again now; the embargo becomes active (a first
/// notice) or revised (a new date); older notices are superseded.
pub async fn send(app: &App, actor: &Actor, notice: &str, confirm_day: bool) -> Result<Sent, AppError> {
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let found = resolve_in(&mut tx, actor, notice).await?;
    if found.state != "draft" {
        return Err(AppError::Conflict(format!("notice {} was {} already", found.id, found.state)));
    }
    let report =
        embargo_store::reports::get(&mut tx, found.report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    check_report_state(&report)?;
    let (_, partners) = recipients(&mut tx, &report).await?;
    let embargo = store::embargo(&mut tx, report.id).await?;
    let (kind, first_notice_at) = next_kind(embargo.as_ref(), &report.reference)?;
    // A Friday confirmed at drafting stays confirmed: the draft's warnings were seen then.
    let confirm_day = confirm_day || found.confirmed_day;
    let proposal = Proposal { now, disclose_at: found.disclose_at, first_notice_at, confirm_day };
    let (warnings, final_notice) = check_policy(&mut tx, &partners, proposal).await?;
    let step = if kind == "pre-notice" { EmbargoStep::Send } else { EmbargoStep::Revise };
    let current = embargo.as_ref().map_or(EmbargoState::Proposed, |e| e.state);
    let state = current.apply(step).map_err(|e| AppError::Conflict(e.to_string()))?;
    let public_id =
        embargo.as_ref().map_or_else(|| crate::tokens::secret("")[..12].to_owned(), |e| e.public_id.clone());
    store::save_embargo(
        &mut tx,
        &Embargo {
            report: report.id,
            state,
            disclose_at: found.disclose_at,
            first_notice_at: first_notice_at.or(Some(now)),
            public_id,
            announced_at: embargo.as_ref().and_then(|e| e.announced_at),
            announced_severity: embargo.as_ref().and_then(|e| e.announced_severity.clone()),
            created_at: embargo.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        },
    )
    .await?;
    let (copies, encrypted) = queue_copies(&mut tx, app, &found, &partners).await?;
    if !store::mark_sent(&mut tx, found.id, &actor.to_string(), now).await? {
        return Err(AppError::Conflict(format!("notice {} was sent already", found.id)));
    }
    store::supersede_others(&mut tx, report.id, found.id).await?;
    for at in embargo_domain::partner::reminder_instants(now, found.disclose_at, final_notice) {
        let last = at == found.disclose_at.checked_sub(final_notice).unwrap_or(at);
        crate::jobs::enqueue_at(
            &mut tx,
            app,
            &NoticeReminder { notice: found.id, at_ms: at.as_millisecond(), last },
            at,
        )
        .await?;
    }
    audit::record(
        &mut tx,
        app,
        actor,
        "notice.send",
        &subject_of(&report.reference),
        &format!("notice={} embargo={} copies={copies} encrypted={encrypted}", found.id, state),
    )
    .await?;
    tx.commit().await?;
    Ok(Sent { notice: found.id, embargo: state.code().into(), copies, encrypted, warnings })
}

async fn subject_of_report(tx: &mut Tx, report: ReportId) -> Result<String, AppError> {
    let record = embargo_store::reports::get(tx, report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    Ok(subject_of(&record.reference))
}

/// Creates a copy of `notice` for every current contact of `partners` and queues its mail;
/// returns (copies, encrypted copies).
pub(super) async fn queue_copies(
    tx: &mut Tx,
    app: &App,
    notice: &Notice,
    partners: &[Partner],
) -> Result<(usize, usize), AppError> {
    let mut copies = Vec::new();
    for partner in partners {
        for contact in store::contacts(tx, partner.id, false).await? {
            copies.push((partner.id, contact, crate::mail::new_message_id(app, "notice")));
        }
    }
    if copies.is_empty() {
        return Err(AppError::Invalid("the partners of this product have no current contact".into()));
    }
    let rows: Vec<NewDelivery<'_>> = copies
        .iter()
        .map(|(partner, contact, message_id)| NewDelivery {
            partner_id: *partner,
            contact_id: contact.id,
            email: &contact.email,
            encrypted: contact.openpgp_key.is_some(),
            message_id,
        })
        .collect();
    let encrypted = rows.iter().filter(|r| r.encrypted).count();
    let ids = store::insert_deliveries(tx, notice.id, &rows).await?;
    for id in &ids {
        crate::jobs::enqueue(tx, app, &NoticeMail { delivery: *id }).await?;
    }
    Ok((ids.len(), encrypted))
}

/// One contact's line in [`NoticeStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct ContactStatus {
    /// Address.
    pub email: String,
    /// The partner.
    pub partner: String,
    /// `pending`, `sent`, `bounced`, `seen` or `acknowledged`.
    pub state: String,
    /// Whether the mail carried the notice encrypted (else only a pointer to the portal).
    pub encrypted: bool,
    /// Times (RFC 3339), when they happened.
    pub sent_at: Option<String>,
    /// Bounced.
    pub bounced_at: Option<String>,
    /// Seen in the portal.
    pub seen_at: Option<String>,
    /// Acknowledged.
    pub acknowledged_at: Option<String>,
    /// Last reminded.
    pub reminded_at: Option<String>,
}

/// A notice and its copies (`notice status --json`).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeStatus {
    /// The notice's ID.
    pub notice: i64,
    /// The report.
    pub report: String,
    /// `pre-notice`, `revision`, `broken`, `lifted`.
    pub kind: String,
    /// `draft`, `sent`, `superseded`.
    pub state: String,
    /// The instant (RFC 3339, UTC).
    pub disclose_at: String,
    /// The embargo's state.
    pub embargo: Option<String>,
    /// When the date and severity were pre-announced in public (RFC 3339), if they are.
    pub announced_at: Option<String>,
    /// The subject.
    pub subject: String,
    /// The team's text.
    pub body: String,
    /// Permissions granted.
    pub deploy_hosted: bool,
    /// Permissions granted.
    pub tell_customers: bool,
    /// Attached patch series: release line and SHA-256.
    pub patches: Vec<(String, String)>,
    /// Every copy.
    pub contacts: Vec<ContactStatus>,
}

/// A notice with the state of every copy (the team).
pub async fn status(app: &App, actor: &Actor, notice: &str) -> Result<NoticeStatus, AppError> {
    let mut tx = app.store.snapshot().await?;
    let found = resolve_in(&mut tx, actor, notice).await?;
    let report =
        embargo_store::reports::get(&mut tx, found.report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let embargo = store::embargo(&mut tx, report.id).await?;
    let mut contacts = Vec::new();
    let mut names = std::collections::HashMap::new();
    for d in store::deliveries(&mut tx, found.id).await? {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(d.partner_id) {
            e.insert(store::partner(&mut tx, d.partner_id).await?.map(|p| p.name).unwrap_or_default());
        }
        contacts.push(contact_status(&d, names[&d.partner_id].clone()));
    }
    let patches = store::patches(&mut tx, found.id).await?.into_iter().map(|p| (p.line, p.sha256)).collect();
    tx.rollback().await?;
    Ok(NoticeStatus {
        notice: found.id,
        report: report.reference.to_string(),
        kind: found.kind,
        state: found.state,
        disclose_at: found.disclose_at.to_string(),
        announced_at: embargo.as_ref().and_then(|e| e.announced_at).map(|t| t.to_string()),
        embargo: embargo.map(|e| e.state.code().to_owned()),
        subject: found.subject,
        body: found.body,
        deploy_hosted: found.deploy_hosted,
        tell_customers: found.tell_customers,
        patches,
        contacts,
    })
}

fn contact_status(d: &Delivery, partner: String) -> ContactStatus {
    let t = |v: Option<Timestamp>| v.map(|t| t.to_string());
    ContactStatus {
        email: d.email.clone(),
        partner,
        state: d.state.code().into(),
        encrypted: d.encrypted,
        sent_at: t(d.sent_at),
        bounced_at: t(d.bounced_at),
        seen_at: t(d.seen_at),
        acknowledged_at: t(d.acknowledged_at),
        reminded_at: t(d.reminded_at),
    }
}

/// The disclosure instant in UTC and in a partner's zone.
pub(super) fn instant_lines(at: Timestamp, zone: &str) -> (String, String) {
    let utc = at.strftime("%A %Y-%m-%d %H:%M UTC").to_string();
    let local = jiff::tz::TimeZone::get(zone)
        .map(|tz| at.to_zoned_datetime(tz).strftime("%A %Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|_| utc.clone());
    (utc, format!("{local} ({zone})"))
}

/// The whole text a partner reads: the instant in UTC and their zone, the permissions,
/// where to acknowledge, then the team's text.
pub(super) fn partner_text(app: &App, notice: &Notice, partner: &Partner) -> String {
    let (utc, local) = instant_lines(notice.disclose_at, &partner.time_zone);
    let link = format!("{}/partner/notices/{}", app.config.base_url(), notice.id);
    match notice.kind.as_str() {
        "broken" => format!(
            "THE EMBARGO IS BROKEN: the issue below is being disclosed now.\n\n\
             You may act on it in public from now on.\n\nDetails: {link}\n\n----\n\n{}",
            notice.body
        ),
        "lifted" => format!(
            "THE EMBARGO IS LIFTED: the issue below is now public.\n\nDetails: {link}\n\n----\n\n{}",
            notice.body
        ),
        kind => {
            let [deploy, tell] = embargo_domain::partner::Permissions {
                deploy_hosted: notice.deploy_hosted,
                tell_customers: notice.tell_customers,
            }
            .describe();
            let revised = if kind == "revision" { "THE DISCLOSURE DATE HAS CHANGED.\n\n" } else { "" };
            format!(
                "{revised}EMBARGOED: shared with {partner} under the embargo terms it accepted. Do not\n\
                 disclose this notice or anything in it before the instant below, except as the\n\
                 permissions below allow.\n\n\
                 Disclosure, not before:\n  {utc}\n  {local}\n\n\
                 Permissions until then:\n- {deploy}\n- {tell}\n\n\
                 Acknowledge receipt in the portal: {link}\n\n----\n\n{}",
                notice.body,
                partner = partner.name,
            )
        }
    }
}

/// Mails one contact their copy of a notice.
#[derive(Debug, Serialize, Deserialize)]
pub struct NoticeMail {
    delivery: i64,
}

impl Job for NoticeMail {
    const KIND: &'static str = "mail.notice";

    fn key(&self) -> Option<String> {
        Some(format!("notice-mail:{}", self.delivery))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut tx = app.store.snapshot().await?;
        let Some(delivery) = store::delivery(&mut tx, self.delivery).await? else {
            tx.rollback().await?;
            return claim.complete(app.store.begin().await?, app.now()).await;
        };
        let notice = store::notice(&mut tx, delivery.notice_id).await?;
        let partner = store::partner(&mut tx, delivery.partner_id).await?;
        let contact = store::contacts(&mut tx, delivery.partner_id, true)
            .await?
            .into_iter()
            .find(|c| c.id == delivery.contact_id);
        let (Some(notice), Some(partner), Some(contact)) = (notice, partner, contact) else {
            return Err(JobError::Permanent("the notice, its partner or its contact is gone".into()));
        };
        let patches = store::patches(&mut tx, notice.id).await?;
        tx.rollback().await?;
        if delivery.state != DeliveryState::Pending {
            return claim.complete(app.store.begin().await?, app.now()).await;
        }
        // A partner suspended (or a contact removed) since the notice was sent gets nothing
        // more of it; the end of an embargo still reaches everyone who was told.
        let ending = matches!(notice.kind.as_str(), "broken" | "lifted");
        if !ending && (partner.state != embargo_domain::PartnerState::Active || contact.removed_at.is_some()) {
            let mut tx = app.store.begin().await?;
            let subject =
                subject_of_report(&mut tx, notice.report).await.map_err(|e| JobError::Retry(e.to_string()))?;
            audit::record(
                &mut tx,
                app,
                &Actor::System("mail"),
                "notice.withheld",
                &subject,
                &format!("notice={} delivery={} partner={}", notice.id, delivery.id, partner.state.code()),
            )
            .await?;
            return claim.complete(tx, app.now()).await;
        }
        let outbound =
            |subject: String, body: String, encrypt_to: Option<String>| embargo_mail::outbound::OutboundMail {
                from: crate::mail::from_address(app),
                to: delivery.email.clone(),
                reply_to: app.config.organisation.security_address.clone(),
                subject,
                body,
                message_id: delivery.message_id.clone(),
                in_reply_to: None,
                auto_reply: true,
                encrypt_to,
            };
        let (mail, files) = match (&contact.openpgp_key, delivery.encrypted) {
            (Some(key), true) => {
                let mut files: Vec<embargo_mail::outbound::Attachment> = patches
                    .iter()
                    .map(|p| embargo_mail::outbound::Attachment {
                        filename: patch_filename(&p.line),
                        content_type: "text/x-patch".into(),
                        data: p.patch.clone(),
                    })
                    .collect();
                if matches!(notice.kind.as_str(), "pre-notice" | "revision") {
                    files.push(embargo_mail::outbound::Attachment {
                        filename: "disclosure.ics".into(),
                        content_type: "text/calendar; method=PUBLISH".into(),
                        data: calendar_text(app, &notice).into_bytes(),
                    });
                }
                (outbound(notice.subject.clone(), partner_text(app, &notice, &partner), Some(key.clone())), files)
            }
            // Without a key: never a detail, only where to read it.
            _ => (outbound(plain_subject(&notice), plain_body(app, &notice, &partner), None), Vec::new()),
        };
        let label = format!("notice-{}", delivery.id);
        let outcome = crate::mail::send_with_files(app, &label, &mail, &files).await;
        let now = app.now();
        let mut tx = app.store.begin().await?;
        let subject = subject_of_report(&mut tx, notice.report).await.map_err(|e| JobError::Retry(e.to_string()))?;
        match outcome {
            Ok(receipt) => {
                store::advance_delivery(&mut tx, delivery.id, DeliveryState::Sent, now).await?;
                let details = crate::mail::sent_details(Self::KIND, None, &receipt, delivery.encrypted);
                audit::record(
                    &mut tx,
                    app,
                    &Actor::System("mail"),
                    "mail.sent",
                    &subject,
                    &format!("{details} notice={} delivery={}", notice.id, delivery.id),
                )
                .await?;
            }
            // Refused for good (the relay refused the address): a bounce.
            Err(JobError::Permanent(reason)) => {
                store::advance_delivery(&mut tx, delivery.id, DeliveryState::Bounced, now).await?;
                audit::record(
                    &mut tx,
                    app,
                    &Actor::System("mail"),
                    "notice.bounce",
                    &subject,
                    &format!(
                        "notice={} delivery={} reason={}",
                        notice.id,
                        delivery.id,
                        crate::jobs::redact_addresses(&reason)
                    ),
                )
                .await?;
            }
            Err(retry) => return Err(retry),
        }
        claim.complete(tx, now).await
    }
}

fn plain_subject(notice: &Notice) -> String {
    match notice.kind.as_str() {
        "broken" | "lifted" => "An embargo you were told of has ended: details in the portal".into(),
        _ => "[EMBARGOED] A notice is waiting for you in the partner portal".into(),
    }
}

fn plain_body(app: &App, notice: &Notice, partner: &Partner) -> String {
    format!(
        "Hello,\n\nThe {org} security team shared a notice with {partner}. No OpenPGP key is on file\n\
         for this address, so the notice is not sent by mail. Read it, download its files and\n\
         acknowledge it in the partner portal:\n\n{base}/partner/notices/{id}\n\n\
         Add your OpenPGP key there to receive notices encrypted by mail.\n\n-- \n{org} security team\n",
        org = app.config.organisation.name,
        partner = partner.name,
        base = app.config.base_url(),
        id = notice.id,
    )
}

/// The iCalendar file of a notice's instant (no detail: an opaque label and the time).
pub(super) fn calendar_text(app: &App, notice: &Notice) -> String {
    // One event per report's embargo (a revision updates it: same UID, a higher SEQUENCE,
    // the notice's ID growing with each notice).
    embargo_domain::partner::disclosure_event(
        &format!("embargo-{}@{}", notice.report.0, app.config.mail_hostname()),
        &format!("N-{}", notice.id),
        notice.disclose_at,
        notice.sent_at.unwrap_or(notice.created_at),
        notice.id,
    )
}

/// Reminds the contacts of a sent notice: a week before, those who have not acknowledged;
/// at the final notice (`last`), every contact, with the exact time.
#[derive(Debug, Serialize, Deserialize)]
pub struct NoticeReminder {
    notice: i64,
    at_ms: i64,
    last: bool,
}

impl Job for NoticeReminder {
    const KIND: &'static str = "mail.notice_reminder";

    fn key(&self) -> Option<String> {
        Some(format!("notice-reminder:{}:{}", self.notice, self.at_ms))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let at = Timestamp::from_millisecond(self.at_ms).map_err(|e| JobError::Permanent(e.to_string()))?;
        let mut tx = app.store.snapshot().await?;
        let notice = store::notice(&mut tx, self.notice).await?;
        let embargo = match &notice {
            Some(n) => store::embargo(&mut tx, n.report).await?,
            None => None,
        };
        // Only the notice in force reminds: a revision or the embargo's end silences it.
        let current = matches!((&notice, &embargo), (Some(n), Some(e))
            if n.state == "sent" && e.state.is_in_force() && e.disclose_at == n.disclose_at);
        let Some(notice) = notice.filter(|_| current) else {
            tx.rollback().await?;
            return claim.complete(app.store.begin().await?, app.now()).await;
        };
        let mut todo = Vec::new();
        for d in store::deliveries(&mut tx, notice.id).await? {
            let due = d.reminded_at.is_none_or(|r| r < at) && d.state != DeliveryState::Pending;
            if !due || !(self.last || d.state.awaits_acknowledgement()) {
                continue;
            }
            let partner = store::partner(&mut tx, d.partner_id).await?;
            let contact =
                store::contacts(&mut tx, d.partner_id, false).await?.into_iter().find(|c| c.id == d.contact_id);
            if let (Some(partner), Some(contact)) =
                (partner.filter(|p| p.state == embargo_domain::PartnerState::Active), contact)
            {
                todo.push((d, partner, contact));
            }
        }
        tx.rollback().await?;
        for (d, partner, contact) in todo {
            let link = format!("{}/partner/notices/{}", app.config.base_url(), notice.id);
            let ask = if d.state.awaits_acknowledgement() {
                format!("Please acknowledge it in the portal: {link}\n")
            } else {
                format!("You acknowledged it; thank you. It stays in the portal: {link}\n")
            };
            let (subject, body, encrypt_to) = match &contact.openpgp_key {
                Some(key) => {
                    let (utc, local) = instant_lines(notice.disclose_at, &partner.time_zone);
                    let what = if self.last { "Final notice" } else { "Reminder" };
                    (
                        format!("{} ({what})", notice.subject),
                        format!(
                            "{what}: the embargo on this issue ends, and it is disclosed, at exactly\n  {utc}\n  {local}\n\n{ask}"
                        ),
                        Some(key.clone()),
                    )
                }
                None => (
                    "[EMBARGOED] A notice in the partner portal needs your attention".into(),
                    format!("Hello,\n\nA notice shared with {} is waiting in the partner portal.\n{ask}", partner.name),
                    None,
                ),
            };
            let mail = embargo_mail::outbound::OutboundMail {
                from: crate::mail::from_address(app),
                to: d.email.clone(),
                reply_to: app.config.organisation.security_address.clone(),
                subject,
                body,
                message_id: crate::mail::new_message_id(app, "notice-reminder"),
                in_reply_to: None,
                auto_reply: true,
                encrypt_to,
            };
            crate::mail::send(app, &format!("notice-reminder-{}-{}", d.id, self.at_ms), &mail).await?;
            let mut tx = app.store.begin().await?;
            store::mark_reminded(&mut tx, d.id, at).await?;
            let subject =
                subject_of_report(&mut tx, notice.report).await.map_err(|e| JobError::Retry(e.to_string()))?;
            audit::record(
                &mut tx,
                app,
                &Actor::System("mail"),
                "notice.remind",
                &subject,
                &format!("notice={} delivery={} final={}", notice.id, d.id, self.last),
            )
            .await?;
            tx.commit().await?;
        }
        claim.complete(app.store.begin().await?, app.now()).await
    }
}

/// Records that a partner's copy of a notice bounced (a delivery status notification
/// quoting its Message-ID came back); returns the report's reference.
pub(crate) async fn bounce_in(tx: &mut Tx, app: &App, actor: &Actor, copy: i64) -> Result<ReferenceId, AppError> {
    let delivery = store::delivery(tx, copy).await?.ok_or_else(|| AppError::NotFound(format!("copy {copy}")))?;
    let notice = store::notice(tx, delivery.notice_id).await?.ok_or_else(|| AppError::NotFound("notice".into()))?;
    let report =
        embargo_store::reports::get(tx, notice.report).await?.ok_or_else(|| AppError::NotFound("report".into()))?;
    let state = store::advance_delivery(tx, copy, DeliveryState::Bounced, app.now()).await?;
    audit::record(
        tx,
        app,
        actor,
        "notice.bounce",
        &subject_of(&report.reference),
        &format!("notice={} delivery={copy} state={}", notice.id, state.map_or("-", DeliveryState::code)),
    )
    .await?;
    Ok(report.reference)
}
