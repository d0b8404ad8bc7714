//! What a plan will publish, and the hash that binds the approval to it.

use embargo_domain::disclosure::{StepKind, StepState, content_hash};
use embargo_domain::{AdvisoryState, Timestamp};
use embargo_store::disclosure::NewStep;
use embargo_store::reports::ReportRecord;
use serde::{Deserialize, Serialize};

use super::channels;
use crate::{App, AppError};

/// The advisory a plan publishes, as it was when the plan was made (or refreshed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAdvisory {
    /// Its handle (`DRAFT-...`, or its public ID once published).
    pub id: String,
    /// Its public ID, once it has one.
    pub public_id: Option<String>,
    /// Its review state.
    pub state: String,
    /// Its CVE ID.
    pub cve_id: Option<String>,
    /// The record (JSON), as it will be published.
    pub record: String,
    /// What keeps it from being published (validation, review).
    pub problems: Vec<String>,
}

/// One channel's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The channel (`slack`, `x`, `mastodon`, `bluesky`, `blog`, `lists`).
    pub channel: String,
    /// Where it goes (no secrets: a host, a repository, addresses).
    pub destination: String,
    /// The subject (mail) or title (blog); empty for the others.
    pub subject: String,
    /// The text, with `{advisory_id}` and `{advisory_url}` filled at publication.
    pub text: String,
    /// Whether the team edited it (a new plan keeps edited texts).
    pub edited: bool,
}

/// Everything a plan will publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanContent {
    /// The report's reference.
    pub report: String,
    /// The instant.
    pub at: Timestamp,
    /// Disclose now.
    pub emergency: bool,
    /// The advisory.
    pub advisory: Option<PlannedAdvisory>,
    /// The push of the fix onto the public branches (the release module's plan), if the
    /// report has changes to publish.
    pub push: Option<serde_json::Value>,
    /// Why there is no push, or what keeps it from being ready.
    pub push_problems: Vec<String>,
    /// The release's files that must verify before anything is announced.
    pub artifacts: Vec<String>,
    /// A digest of each channel's full address and credentials, and of the product's release
    /// settings: an approval holds only for the same accounts and the same build.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, String>,
    /// One message per configured channel.
    pub messages: Vec<Message>,
}

impl PlanContent {
    /// The hash of everything that will be published.
    pub fn hash(&self) -> String {
        let at = self.at.to_string();
        let emergency = if self.emergency { "yes" } else { "no" };
        let advisory = self.advisory.as_ref().map(|a| a.record.clone()).unwrap_or_default();
        let push = self.push.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let artifacts = self.artifacts.join("\n");
        let mut named: Vec<(String, Vec<u8>)> = vec![
            ("instant".into(), at.into_bytes()),
            ("emergency".into(), emergency.as_bytes().to_vec()),
            ("advisory".into(), advisory.into_bytes()),
            ("push".into(), push.into_bytes()),
            ("artifacts".into(), artifacts.into_bytes()),
        ];
        for (name, digest) in &self.targets {
            named.push((format!("target:{name}"), digest.clone().into_bytes()));
        }
        for m in &self.messages {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(m.destination.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(m.subject.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(m.text.as_bytes());
            named.push((format!("message:{}", m.channel), bytes));
        }
        let items: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        content_hash(&items, crate::intents::content_hash)
    }

    /// What keeps the plan from being approved, in words (empty: nothing).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.advisory {
            None => problems.push(format!(
                "report {} has no advisory: write one and link it (embargo advisory create --report {})",
                self.report, self.report
            )),
            Some(a) => problems.extend(a.problems.iter().cloned()),
        }
        problems.extend(self.push_problems.iter().cloned());
        for m in &self.messages {
            if m.text.trim().is_empty() {
                problems.push(format!("the {} message is empty", m.channel));
                continue;
            }
            // What the channel would refuse (no marker, too long, not its format) is refused now.
            if let Some(kind) = embargo_announce::ChannelKind::parse(&m.channel)
                && kind != embargo_announce::ChannelKind::Mail
                && let Err(why) = embargo_announce::text::check(kind, embargo_announce::text::ID_PLACEHOLDER, &m.text)
            {
                problems.push(format!("the {} message: {why}", m.channel));
            }
        }
        problems
    }

    /// The message of `channel`.
    pub fn message(&self, channel: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.channel == channel)
    }
}

/// Builds a plan's content from its sources now; `kept` are the plan's earlier messages,
/// whose edited texts are kept.
pub(crate) async fn build(
    app: &App,
    report: &ReportRecord,
    at: Timestamp,
    emergency: bool,
    kept: &[Message],
) -> Result<PlanContent, AppError> {
    let advisory = planned_advisory(app, report).await?;
    let record = match &advisory {
        Some(a) => Some(
            serde_json::from_str::<embargo_advisory::AdvisoryRecord>(&a.record)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("advisory record: {e}")))?,
        ),
        None => None,
    };
    let (push, push_problems, artifacts) = channels::release_plan(app, report).await?;
    let mut targets = std::collections::BTreeMap::new();
    for target in channels::configured(app) {
        targets.insert(target.channel.to_owned(), channels::target_digest(app, target.channel));
    }
    if let Some(digest) = channels::release_digest(app, report).await? {
        targets.insert("release".to_owned(), digest);
    }
    let mut messages = Vec::new();
    for target in channels::configured(app) {
        let kept_one = kept.iter().find(|m| m.channel == target.channel && m.edited);
        let message = match (kept_one, &record) {
            (Some(m), _) => Message { destination: target.destination.clone(), ..m.clone() },
            (None, Some(record)) => channels::render(app, &target, record, at)?,
            (None, None) => Message {
                channel: target.channel.to_owned(),
                destination: target.destination.clone(),
                subject: String::new(),
                text: String::new(),
                edited: false,
            },
        };
        messages.push(message);
    }
    let mut advisory = advisory;
    if let (Some(a), Some(record)) = (&mut advisory, &record)
        && record.workarounds.trim().is_empty()
        && !messages.is_empty()
    {
        a.problems.push(format!(
            "advisory {} has no workarounds: every announcement carries the mitigations (write them in the advisory)",
            a.id
        ));
    }
    Ok(PlanContent {
        report: report.reference.to_string(),
        at,
        emergency,
        advisory,
        push,
        push_problems,
        artifacts,
        targets,
        messages,
    })
}

async fn planned_advisory(app: &App, report: &ReportRecord) -> Result<Option<PlannedAdvisory>, AppError> {
    let mut tx = app.store.snapshot().await?;
    let row = embargo_store::advisories::newest_for_report(&mut tx, report.id).await?;
    tx.rollback().await?;
    let Some(row) = row else { return Ok(None) };
    let system = embargo_domain::Actor::System("disclosure");
    let advisory = crate::advisories::get(app, &system, &row.advisory_id).await?;
    let mut problems = Vec::new();
    if !matches!(advisory.state, AdvisoryState::Approved | AdvisoryState::Published) {
        problems.push(format!(
            "advisory {} is {}: it must be approved before the plan is (embargo advisory submit / approve)",
            advisory.id, advisory.state
        ));
    }
    if !advisory.validation.is_publishable() {
        for p in advisory.validation.problems() {
            problems.push(format!("advisory {}: {p}", advisory.id));
        }
    }
    Ok(Some(PlannedAdvisory {
        id: advisory.id.clone(),
        public_id: advisory.public_id.clone(),
        state: advisory.state.to_string(),
        cve_id: advisory.record.cve_id.clone(),
        record: row.record,
        problems,
    }))
}

/// The steps of a plan, in order, each pending or skipped with the reason.
pub(crate) fn steps(content: &PlanContent) -> Vec<NewStep> {
    let mut steps = Vec::new();
    let mut add = |name: &str, kind: StepKind, skip: Option<String>, detail: String| {
        let state = if skip.is_some() { StepState::Skipped } else { StepState::Pending };
        steps.push(NewStep {
            ordinal: steps.len() as i64,
            name: name.to_owned(),
            kind,
            state,
            detail: skip.unwrap_or(detail),
        });
    };
    add("preflight", StepKind::Preflight, None, "checks from before the instant".into());
    add(
        "push",
        StepKind::MergeAndPush,
        content.push.is_none().then(|| "nothing to push: the report's fix has no changes on a public line".into()),
        "merge the fix onto the public branches, tag, push atomically".into(),
    );
    add(
        "binaries",
        StepKind::Binaries,
        content.artifacts.is_empty().then(|| "the product lists no release artifacts".into()),
        format!("build and verify {} artifact(s)", content.artifacts.len()),
    );
    let published = content.advisory.as_ref().is_some_and(|a| a.state == AdvisoryState::Published.to_string());
    add(
        "advisory",
        StepKind::PublishAdvisory,
        published.then(|| "the advisory is already published".into()),
        "publish the advisory (pages, OSV, CSAF, Atom)".into(),
    );
    add(
        "cve",
        StepKind::PublishCve,
        content.advisory.as_ref().is_none_or(|a| a.cve_id.is_none()).then(|| "the advisory has no CVE ID".into()),
        "publish the CVE record at CVE Services".into(),
    );
    for m in &content.messages {
        if m.channel == "lists" {
            // Each list its own copy, each its own step (and intent).
            for address in channels::list_addresses(m) {
                add(&format!("announce.list:{address}"), StepKind::Announce, None, format!("mail {address}"));
            }
        } else {
            add(&format!("announce.{}", m.channel), StepKind::Announce, None, format!("announce to {}", m.destination));
        }
    }
    add("closeout", StepKind::CloseOut, None, "partners, reporter, report state, access, archive".into());
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> PlanContent {
        PlanContent {
            report: "SEC-2026-1".into(),
            at: "2026-12-15T16:00:00Z".parse().unwrap(),
            emergency: false,
            advisory: None,
            push: None,
            push_problems: Vec::new(),
            artifacts: vec!["https://example.org/app-1.0.1.tar".into()],
            targets: [("slack".to_owned(), "digest-a".to_owned())].into_iter().collect(),
            messages: vec![Message {
                channel: "x".into(),
                destination: "https://api.x.com".into(),
                subject: String::new(),
                text: "{advisory_id}: upgrade. Mitigation: none.".into(),
                edited: false,
            }],
        }
    }

    #[test]
    fn the_hash_sees_the_channels_accounts_the_texts_and_the_instant() {
        let base = content();
        let hash = base.hash();
        assert_eq!(hash, content().hash(), "the same content hashes the same");
        let mut other_webhook = content();
        other_webhook.targets.insert("slack".into(), "digest-b".into());
        assert_ne!(hash, other_webhook.hash(), "another webhook or token disarms");
        let mut other_text = content();
        other_text.messages[0].text.push('!');
        assert_ne!(hash, other_text.hash());
        let mut later = content();
        later.at = "2026-12-15T16:00:01Z".parse().unwrap();
        assert_ne!(hash, later.hash());
        let mut emergency = content();
        emergency.emergency = true;
        assert_ne!(hash, emergency.hash());
    }

    #[test]
    fn a_text_the_channel_would_refuse_keeps_the_plan_from_approval() {
        let mut c = content();
        assert!(c.problems().iter().all(|p| !p.contains("the x message")), "{:?}", c.problems());
        c.messages[0].text = "Upgrade now.".into();
        assert!(c.problems().iter().any(|p| p.contains("the x message") && p.contains("marker")), "{:?}", c.problems());
    }
}
