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
        assert!(id.starts_with("EMB-2026-"), "{id}");
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

        let public = advisories::published_one(app, &id).await.unwrap().expect("published");
        assert_eq!(public.revision, 1);
        assert!(public.csaf_filename.ends_with(".json"));
        assert!(public.csaf_signature.contains("BEGIN PGP SIGNATURE"));
        let osv: serde_json::Value = serde_json::from_str(&public.osv).unwrap();
        assert_eq!(osv["id"], format!("x_{id}"), "without a CVE ID, OSV gets our ID in the x_ form");
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
        assert_eq!(advisories::published_one(app, &id).await.unwrap().unwrap().revision, 1);
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
        assert_eq!(advisories::published_one(app, &id).await.unwrap().unwrap().revision, 1, "still revision 1");
        assert_eq!(advisories::publish(app, &lead, &id, Some("Adds the 1.x fix.")).await.unwrap(), 2);
        assert!(advisories::get(app, &lead, &id).await.unwrap().editors.is_empty(), "published: a new revision");
        let public = advisories::published_one(app, &id).await.unwrap().unwrap();
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
