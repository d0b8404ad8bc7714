//! Advisories end to end on SQLite and PostgreSQL: a draft from a report's assessment, the
//! review by a second person, publication with a signed CSAF document, need-to-know, the
//! audit trail, OSV import, and that nothing of a draft is public before publication.

use crate::common;

use common::instance_with;
use embargo_app::reports::{self, Submission};
use embargo_app::{AppError, accounts, advisories, assessment, audit};
use embargo_domain::{Actor, AdvisoryState, Role};
use embargo_test_support::both_backends;

fn submission(title: &str) -> Submission {
    Submission { reporter_name: Some("Rita Reporter".into()), ..common::submission("reporter@example.net", title) }
}

#[tokio::test]
async fn a_report_becomes_a_reviewed_signed_published_advisory() {
    for db in both_backends() {
        let it = instance_with(db, |c| {
            c.public_url = "https://security.example.org".into();
            c.organisation.name = "Example Project".into();
        })
        .await;
        let app = &it.app;
        let backend = it.db.backend;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let lead_id = accounts::create_user(app, &local, "lead@example.org", Role::Admin, None).await.unwrap();
        let lead = Actor::User { id: lead_id, role: Role::Admin };
        let on_id = accounts::create_user(app, &local, "on@example.org", Role::Responder, None).await.unwrap();
        let on = Actor::User { id: on_id, role: Role::Responder };
        let off_id = accounts::create_user(app, &local, "off@example.org", Role::Responder, None).await.unwrap();
        let off = Actor::User { id: off_id, role: Role::Responder };

        let product = accounts::create_product(app, &lead, "libparse").await.unwrap();
        accounts::update_product(
            app,
            &lead,
            product,
            "https://git.example.org/libparse",
            "crates.io",
            "pkg:cargo/libparse",
            "2.x",
        )
        .await
        .unwrap();
        let reference =
            reports::submit(app, &Actor::Reporter, submission("Heap overflow in libparse")).await.unwrap().reference;
        reports::assign(app, &lead, &reference, Some("on@example.org")).await.unwrap();
        assessment::set_cvss(app, &on, &reference, "3.1", Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"))
            .await
            .unwrap();
        assessment::set_classification(app, &on, &reference, "CWE-787", None).await.unwrap();
        let rows = [assessment::Affected {
            product_id: product,
            introduced: "2.0.0".into(),
            fixed: "2.4.1".into(),
            last_affected: String::new(),
        }];
        assessment::set_affected(app, &on, &reference, &rows).await.unwrap();

        // The responder on the report starts the advisory; it is prefilled from the assessment.
        let id = advisories::create(app, &on, "", Some(&reference)).await.unwrap();
        // A draft has a handle, not a public ID: public IDs are given at publication.
        assert!(id.starts_with("DRAFT-2026-"), "{id}");
        let draft = advisories::get(app, &on, &id).await.unwrap();
        assert_eq!(draft.state, AdvisoryState::Draft);
        assert_eq!(draft.record.title, "Heap overflow in libparse");
        assert_eq!(draft.record.severity.cvss_v3_1.as_deref(), Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"));
        assert_eq!(draft.record.weaknesses[0].id, "CWE-787");
        assert_eq!(draft.record.affected[0].purl.as_deref(), Some("pkg:cargo/libparse"));
        assert_eq!(draft.reports, vec![reference.clone()]);

        // Someone off the report cannot tell the advisory exists.
        assert!(matches!(advisories::get(app, &off, &id).await, Err(AppError::NotFound(_))), "{backend}");
        assert!(advisories::list(app, &off, None).await.unwrap().is_empty());
        assert!(matches!(advisories::list(app, &Actor::Reporter, None).await, Err(AppError::Forbidden(_))));

        // Invalid outputs cannot go to review: the editor gets the reasons.
        let mut record = draft.record.clone();
        record.summary = "A crafted file makes the parser write past a buffer.".into();
        record.details = "Parsing a crafted archive overflows a heap buffer.".into();
        record.workarounds = "Do not parse untrusted archives until you upgrade.".into();
        record.cve_id = Some("CVE-26-1".into());
        advisories::update(app, &on, &id, record.clone()).await.unwrap();
        let refused = advisories::submit_for_review(app, &on, &id).await.unwrap_err();
        assert!(matches!(refused, AppError::Invalid(ref m) if m.contains("cve")), "{refused}");
        record.cve_id = None;
        record.credits = vec![embargo_advisory::Credit {
            name: "Rita Reporter".into(),
            contact: Vec::new(),
            kind: Some(embargo_advisory::CreditType::Finder),
        }];
        let validation = advisories::update(app, &on, &id, record).await.unwrap();
        assert!(validation.is_publishable(), "{validation}");

        // Review: the one who asked cannot approve; a second person can.
        advisories::submit_for_review(app, &on, &id).await.unwrap();
        assert!(matches!(advisories::approve(app, &on, &id).await, Err(AppError::Conflict(_))));
        assert!(matches!(advisories::publish(app, &lead, &id, None).await, Err(AppError::Conflict(_))), "not approved");
        assert!(advisories::published(app).await.unwrap().is_empty(), "nothing public yet");
        advisories::approve(app, &lead, &id).await.unwrap();
        assert_eq!(advisories::publish(app, &lead, &id, None).await.unwrap(), 1);
        let public_id = advisories::get(app, &lead, &id).await.unwrap().public_id.expect("a public ID");
        assert_eq!(public_id, "EMB-2026-0001", "the first publication of the year");
        assert!(advisories::published_one(app, &id).await.unwrap().is_none(), "the handle is not public");

        let public = advisories::published_one(app, &public_id).await.unwrap().expect("published");
        assert_eq!(public.public_id, public_id);
        assert_eq!(public.revision, 1);
        assert!(public.csaf_filename.ends_with(".json"));
        assert!(public.csaf_signature.contains("BEGIN PGP SIGNATURE"));
        let osv: serde_json::Value = serde_json::from_str(&public.osv).unwrap();
        assert_eq!(osv["id"], format!("x_{public_id}"), "OSV gets our public ID in the x_ form");
        assert!(public.markdown.contains("Do not parse untrusted archives"), "mitigations in the announcement");
        let csaf: serde_json::Value = serde_json::from_str(&public.csaf).unwrap();
        assert_eq!(csaf["document"]["tracking"]["status"], "final");
        assert_eq!(csaf["document"]["publisher"]["namespace"], "https://security.example.org");

        // An edit after publication is a new draft; the public keeps revision 1 until the
        // update is reviewed and published as revision 2. The new revision starts with
        // nobody's edits but its own.
        let mut record = advisories::get(app, &lead, &id).await.unwrap().record;
        record.details.push_str("\n\nUpdated with the fixed 1.x release.");
        advisories::update(app, &on, &id, record).await.unwrap();
        let draft = advisories::get(app, &lead, &id).await.unwrap();
        assert_eq!(draft.state, AdvisoryState::Draft);
        assert_eq!(draft.editors, [format!("user:{on_id}")], "{backend}");
        assert_eq!(advisories::published_one(app, &public_id).await.unwrap().unwrap().revision, 1);
        // Issue 12 item 9: the responder edited, an admin asked for review; the responder
        // is not the second pair of eyes, and publishing is not theirs to do.
        advisories::submit_for_review(app, &lead, &id).await.unwrap();
        let refused = advisories::approve(app, &on, &id).await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("you edited this revision")), "{refused}");
        let refused = advisories::approve(app, &lead, &id).await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("you asked for this review")), "{refused}");
        advisories::approve(app, &local, &id).await.unwrap();
        let refused = advisories::publish(app, &on, &id, Some("Adds the 1.x fix.")).await.unwrap_err();
        assert!(matches!(refused, AppError::Forbidden("publish advisories")), "{refused}");
        assert_eq!(advisories::published_one(app, &public_id).await.unwrap().unwrap().revision, 1, "still revision 1");
        assert_eq!(advisories::publish(app, &lead, &id, Some("Adds the 1.x fix.")).await.unwrap(), 2);
        assert!(advisories::get(app, &lead, &id).await.unwrap().editors.is_empty(), "published: a new revision");
        let public = advisories::published_one(app, &public_id).await.unwrap().unwrap();
        let csaf: serde_json::Value = serde_json::from_str(&public.csaf).unwrap();
        assert_eq!(csaf["document"]["tracking"]["revision_history"].as_array().unwrap().len(), 2);
        assert_eq!(advisories::published_revisions_all(app).await.unwrap().len(), 2);

        // Every step is on the audit trail.
        let actions: Vec<String> = audit::list(app, &local, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.subject == format!("advisory:{id}"))
            .map(|e| e.action)
            .collect();
        for expected in [
            "advisory.create",
            "advisory.edit",
            "advisory.review.request",
            "advisory.review.approve",
            "advisory.publish",
        ] {
            assert!(actions.iter().any(|a| a == expected), "{expected} missing: {actions:?}");
        }
    }
}

#[tokio::test]
async fn osv_records_import_as_drafts_and_export_in_every_format() {
    let Some(vectors) = embargo_test_support::vectors_dir("osv/linter-testdata") else { return };
    for db in both_backends() {
        let it = instance_with(db, |_| {}).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let mut imported = 0;
        for entry in std::fs::read_dir(&vectors).unwrap().flatten() {
            let path = entry.path();
            // The linter's bad examples are named no<problem>-<id>.json.
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.extension().is_none_or(|e| e != "json") || name.starts_with("no") {
                continue;
            }
            let json = std::fs::read_to_string(&path).unwrap();
            let draft =
                advisories::import_osv(app, &local, &json).await.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let osv: serde_json::Value =
                serde_json::from_str(&advisories::export(app, &local, &draft.id, "osv").await.unwrap()).unwrap();
            let original: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(
                osv["aliases"].as_array().unwrap().iter().any(|a| *a == original["id"]) || osv["id"] == original["id"]
            );
            imported += 1;
        }
        assert!(imported > 0, "no good linter records found in {}", vectors.display());
        let list = advisories::list(app, &local, Some(AdvisoryState::Draft)).await.unwrap();
        assert_eq!(list.len(), imported);
        assert!(matches!(advisories::import_osv(app, &local, "{not json").await, Err(AppError::Invalid(_))));
        let responder_id = accounts::create_user(app, &local, "r@example.org", Role::Responder, None).await.unwrap();
        let responder = Actor::User { id: responder_id, role: Role::Responder };
        assert!(matches!(advisories::import_osv(app, &responder, "{}").await, Err(AppError::Forbidden(_))));
    }
}

async fn public_id_of(app: &embargo_app::App, actor: &Actor, id: &str) -> Option<String> {
    advisories::get(app, actor, id).await.unwrap().public_id
}

/// Takes a draft to approved: `author` writes a publishable record, `reviewer` approves.
async fn approved(app: &embargo_app::App, author: &Actor, reviewer: &Actor, id: &str, title: &str) {
    let mut record = advisories::get(app, author, id).await.unwrap().record;
    record.title = title.into();
    record.summary = format!("{title}: a crafted input crashes the parser.");
    record.affected = vec![
        serde_json::from_value(serde_json::json!({
            "product": "libparse", "vendor": "Example Project", "ecosystem": "crates.io",
            "purl": "pkg:cargo/libparse",
            "ranges": [{"kind": "SEMVER", "events": [{"introduced": "2.0.0"}, {"fixed": "2.4.1"}]}],
        }))
        .unwrap(),
    ];
    let validation = advisories::update(app, author, id, record).await.unwrap();
    assert!(validation.is_publishable(), "{validation}");
    advisories::submit_for_review(app, author, id).await.unwrap();
    advisories::approve(app, reviewer, id).await.unwrap();
}

/// Issue 19 item 5: drafts and imports take internal handles; the public ID is the next
/// number of the public sequence when an advisory is first published, so that the published
/// IDs have no gaps and say nothing about drafts (how many, or in which order).
#[tokio::test]
async fn public_ids_are_given_at_publication_without_gaps() {
    for db in both_backends() {
        let it = instance_with(db, |c| c.advisories.prefix = "ACME".into()).await;
        let app = &it.app;
        let backend = it.db.backend;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let lead_id = accounts::create_user(app, &local, "lead@example.org", Role::Admin, None).await.unwrap();
        let lead = Actor::User { id: lead_id, role: Role::Admin };
        let first = advisories::create(app, &lead, "First draft", None).await.unwrap();
        let second = advisories::create(app, &lead, "Second draft", None).await.unwrap();
        let osv = r#"{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2026-01-02T00:00:00Z", "summary": "Imported",
            "details": "An imported record.", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
            "versions": ["1.0.0"]}]}"#;
        let imported = advisories::import_osv(app, &lead, osv).await.unwrap().id;
        let third = advisories::create(app, &lead, "Third draft", None).await.unwrap();
        assert_eq!(
            [&first, &second, &imported, &third].map(String::as_str),
            ["DRAFT-2026-0001", "DRAFT-2026-0002", "DRAFT-2026-0003", "DRAFT-2026-0004"],
            "{backend}"
        );
        assert!(advisories::get(app, &lead, &third).await.unwrap().public_id.is_none());

        // The third is published first: it is ACME-2026-0001, whatever came before it.
        approved(app, &lead, &local, &third, "Third").await;
        advisories::publish(app, &lead, &third, None).await.unwrap();
        approved(app, &lead, &local, &first, "First").await;
        advisories::publish(app, &lead, &first, None).await.unwrap();
        assert_eq!(public_id_of(app, &lead, &third).await.as_deref(), Some("ACME-2026-0001"), "{backend}");
        assert_eq!(public_id_of(app, &lead, &first).await.as_deref(), Some("ACME-2026-0002"), "{backend}");
        assert_eq!((public_id_of(app, &lead, &second).await, public_id_of(app, &lead, &imported).await), (None, None));
        let mut published: Vec<String> =
            advisories::published(app).await.unwrap().into_iter().map(|p| p.public_id).collect();
        published.sort();
        assert_eq!(published, ["ACME-2026-0001", "ACME-2026-0002"]);

        // A new revision keeps its public ID; the record carries it, its handle stays.
        let mut record = advisories::get(app, &lead, &third).await.unwrap().record;
        assert_eq!(record.id.to_string(), "ACME-2026-0001");
        record.details = "More details.".into();
        advisories::update(app, &lead, &third, record).await.unwrap();
        advisories::submit_for_review(app, &lead, &third).await.unwrap();
        advisories::approve(app, &local, &third).await.unwrap();
        // Either name finds it.
        assert_eq!(advisories::publish(app, &lead, "ACME-2026-0001", None).await.unwrap(), 2);
        assert_eq!(public_id_of(app, &lead, &third).await.as_deref(), Some("ACME-2026-0001"));
        let p = advisories::published_one(app, "ACME-2026-0001").await.unwrap().unwrap();
        assert_eq!((p.revision, p.csaf_filename.as_str()), (2, "acme-2026-0001.json"));
        let csaf: serde_json::Value = serde_json::from_str(&p.csaf).unwrap();
        assert_eq!(csaf["document"]["tracking"]["id"], "ACME-2026-0001");
        assert!(!p.csaf.contains("DRAFT-") && !p.osv.contains("DRAFT-") && !p.html.contains("DRAFT-"));

        // The audit trail names the handle and the public ID given.
        let entries = audit::list(app, &local, 0, 10_000).await.unwrap();
        let publish =
            entries.iter().find(|e| e.action == "advisory.publish" && e.subject == format!("advisory:{first}"));
        assert!(publish.unwrap().details.contains("public_id=ACME-2026-0002"), "{backend}");
    }
}

/// Issue 19 item 1: an advisory is withdrawn in Embargo itself (admins, with a reason,
/// audited): a final revision published at once, withdrawn in OSV, CSAF and the CVE record.
#[tokio::test]
async fn a_published_advisory_is_withdrawn_in_every_format() {
    for db in both_backends() {
        let it = instance_with(db, |c| {
            c.public_url = "https://security.example.org".into();
            c.advisories.cve_org_id = "b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into();
        })
        .await;
        let app = &it.app;
        let backend = it.db.backend;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let lead_id = accounts::create_user(app, &local, "lead@example.org", Role::Admin, None).await.unwrap();
        let lead = Actor::User { id: lead_id, role: Role::Admin };
        let responder_id = accounts::create_user(app, &local, "r@example.org", Role::Responder, None).await.unwrap();
        let responder = Actor::User { id: responder_id, role: Role::Responder };
        let id = advisories::create(app, &lead, "Withdrawn later", None).await.unwrap();
        let refused = advisories::withdraw(app, &lead, &id, "Not a bug.").await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("cannot be withdrawn")), "{refused}");
        let mut record = advisories::get(app, &lead, &id).await.unwrap().record;
        record.cve_id = Some("CVE-2026-48152".into());
        record.references = vec![
            serde_json::from_value(
                serde_json::json!({"url": "https://git.example.org/libparse/releases/2.4.1", "type": "FIX"}),
            )
            .unwrap(),
        ];
        advisories::update(app, &lead, &id, record).await.unwrap();
        approved(app, &lead, &local, &id, "Parser crash").await;
        advisories::publish(app, &lead, &id, None).await.unwrap();
        let public_id = advisories::get(app, &lead, &id).await.unwrap().public_id.unwrap();
        it.clock.advance_secs(30 * 3600);

        // A pending edit (not reviewed) is not published by a withdrawal.
        let mut edited = advisories::get(app, &lead, &id).await.unwrap().record;
        edited.details = "An unreviewed change.".into();
        advisories::update(app, &lead, &id, edited).await.unwrap();
        let refused = advisories::withdraw(app, &lead, &id, "Not a bug.").await.unwrap_err();
        assert!(matches!(refused, AppError::Conflict(ref m) if m.contains("unpublished edits")), "{refused}");
        advisories::submit_for_review(app, &lead, &id).await.unwrap();
        advisories::approve(app, &local, &id).await.unwrap();
        advisories::publish(app, &lead, &id, Some("More details.")).await.unwrap();

        let refused = advisories::withdraw(app, &responder, &id, "Not a bug.").await.unwrap_err();
        assert!(matches!(refused, AppError::NotFound(_) | AppError::Forbidden(_)), "{refused}");
        let refused = advisories::withdraw(app, &lead, &id, "  ").await.unwrap_err();
        assert!(matches!(refused, AppError::Invalid(_)), "{refused}");
        let reason = "The crash needs a build option nobody ships; it is not a vulnerability.";
        assert_eq!(advisories::withdraw(app, &lead, &public_id, reason).await.unwrap(), 3, "{backend}");

        let advisory = advisories::get(app, &lead, &id).await.unwrap();
        assert_eq!(advisory.state, AdvisoryState::Withdrawn);
        let p = advisories::published_one(app, &public_id).await.unwrap().unwrap();
        assert_eq!(p.revision, 3);
        let osv: serde_json::Value = serde_json::from_str(&p.osv).unwrap();
        let (published, withdrawn) = (osv["published"].as_str().unwrap(), osv["withdrawn"].as_str().unwrap());
        assert!(withdrawn > published, "{osv:#}");
        assert!(osv["details"].as_str().unwrap().contains(reason));
        let cve: serde_json::Value = serde_json::from_str(p.cve_record.as_deref().unwrap()).unwrap();
        assert_eq!(cve["cveMetadata"]["state"], "REJECTED");
        assert_eq!(cve["containers"]["cna"]["rejectedReasons"][0]["value"], reason);
        let csaf: serde_json::Value = serde_json::from_str(&p.csaf).unwrap();
        assert_eq!(csaf["document"]["category"], "csaf_base");
        assert_eq!(csaf["document"]["notes"][0]["title"], "Reasoning for Withdrawal");
        let history = csaf["document"]["tracking"]["revision_history"].as_array().unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2]["summary"], format!("Withdrawn: {reason}"));
        assert!(csaf.get("vulnerabilities").is_none());
        assert!(p.markdown.contains("## Withdrawn"));

        // Final: no edit, no second withdrawal.
        let record = advisories::get(app, &lead, &id).await.unwrap().record;
        assert!(matches!(advisories::update(app, &lead, &id, record).await, Err(AppError::Conflict(_))));
        assert!(matches!(advisories::withdraw(app, &lead, &id, reason).await, Err(AppError::Conflict(_))));
        let entries = audit::list(app, &local, 0, 10_000).await.unwrap();
        assert!(
            entries.iter().any(|e| e.action == "advisory.withdraw" && e.subject == format!("advisory:{id}")),
            "{backend}"
        );
    }
}

/// Issue 19 item 1: an imported withdrawn record keeps its dates (import does not reset
/// `published`), and published here it is withdrawn in every format, `withdrawn` after
/// `published`.
#[tokio::test]
async fn an_imported_withdrawal_stays_withdrawn() {
    let Some(dir) = embargo_test_support::vectors_dir("osv/ghsa-to-osv") else { return };
    let text = std::fs::read_to_string(dir.join("withdrawn.osv.json")).unwrap();
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    for db in both_backends() {
        // The record has a CVE ID: its CVE record needs the CNA's organisation.
        let it = instance_with(db, |c| c.advisories.cve_org_id = "b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into()).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let lead_id = accounts::create_user(app, &local, "lead@example.org", Role::Admin, None).await.unwrap();
        let lead = Actor::User { id: lead_id, role: Role::Admin };
        let id = advisories::import_osv(app, &lead, &text).await.unwrap().id;
        let draft = advisories::get(app, &lead, &id).await.unwrap().record;
        let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(draft.published.map(|t| t.as_second()), Some(at(&original["published"])));
        assert_eq!(draft.withdrawn.map(|t| t.as_second()), Some(at(&original["withdrawn"])));
        advisories::submit_for_review(app, &lead, &id).await.unwrap();
        advisories::approve(app, &local, &id).await.unwrap();
        advisories::publish(app, &lead, &id, None).await.unwrap();
        let advisory = advisories::get(app, &lead, &id).await.unwrap();
        assert_eq!(advisory.state, AdvisoryState::Withdrawn);
        let p = advisories::published_one(app, advisory.public_id.as_deref().unwrap()).await.unwrap().unwrap();
        let osv: serde_json::Value = serde_json::from_str(&p.osv).unwrap();
        assert_eq!(at(&osv["published"]), at(&original["published"]));
        assert!(at(&osv["withdrawn"]) >= at(&osv["published"]), "{osv:#}");
        let csaf: serde_json::Value = serde_json::from_str(&p.csaf).unwrap();
        assert_eq!(csaf["document"]["category"], "csaf_base");
        assert!(!p.csaf.contains("known_affected"));
        let history = csaf["document"]["tracking"]["revision_history"].as_array().unwrap();
        assert!(history[0]["summary"].as_str().unwrap().starts_with("Withdrawn: "), "{history:?}");
        let cve: serde_json::Value = serde_json::from_str(p.cve_record.as_deref().unwrap()).unwrap();
        assert_eq!(cve["cveMetadata"]["state"], "REJECTED");
        assert_eq!(draft.modified.as_second(), app.now().as_second(), "the draft changed here, at import");
    }
}

/// Issue 19 item 4: an imported package that is in the catalogue gets the catalogue's vendor
/// (the organisation); one whose record names no vendor gets the organisation too, never the
/// ecosystem's name.
#[tokio::test]
async fn imported_packages_get_the_catalogue_vendor() {
    for db in both_backends() {
        let it = instance_with(db, |c| c.organisation.name = "Example Project".into()).await;
        let app = &it.app;
        let local = Actor::LocalAdmin { os_user: "root".into() };
        let product = accounts::create_product(app, &local, "core").await.unwrap();
        accounts::update_product(app, &local, product, "", "Maven", "pkg:maven/org.example/core", "").await.unwrap();
        let osv = r#"{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2026-01-02T00:00:00Z", "details": "x",
            "affected": [{"package": {"ecosystem": "Maven", "name": "core", "purl": "pkg:maven/org.example/core"},
                          "versions": ["1.0"]},
                         {"package": {"ecosystem": "PyPI", "name": "acme-tls"}, "versions": ["1.0"]}]}"#;
        let id = advisories::import_osv(app, &local, osv).await.unwrap().id;
        let record = advisories::get(app, &local, &id).await.unwrap().record;
        let vendors: Vec<&str> = record.affected.iter().map(|a| a.vendor.as_str()).collect();
        assert_eq!(vendors, ["Example Project", "Example Project"]);
    }
}
