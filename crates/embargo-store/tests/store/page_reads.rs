//! The reads a page makes, fewer and cheaper (ADR 38): the inbox's statements carry only the
//! filters that are set, a report page reads its row with what goes with it in one
//! statement, and the reports linked to it in another. Each must give what the reads it
//! replaces give.

use std::collections::BTreeSet;

use embargo_domain::sla::SlaRecord;
use embargo_domain::{Actor, CloseReason, ReportId, ReportState, Role, Transition};
use embargo_store::reports::InboxFilter;
use embargo_store::{assessments, meta, products, reports, sla, users};
use embargo_test_support::both_backends;

use super::{at, new_report, open};

/// Every combination of the inbox's filters lists exactly the reports that each of its
/// filters alone lists, in the unfiltered order (newest first), and counts them; "flagged
/// last" only reorders. Each filter alone keeps some reports and leaves out others, so every
/// condition is exercised.
#[tokio::test]
async fn inbox_filters_combine_as_each_alone_says() {
    for db in both_backends() {
        let store = open(&db).await;
        let mut tx = store.begin().await.unwrap();
        let assignee = users::create(&mut tx, "a@example.org", Role::Responder, None, at(0)).await.unwrap();
        let viewer = users::create(&mut tx, "v@example.org", Role::Responder, None, at(0)).await.unwrap();
        let product = products::create(&mut tx, "p", at(0)).await.unwrap();
        let other = products::create(&mut tx, "q", at(0)).await.unwrap();
        tx.commit().await.unwrap();
        let mut ids = Vec::new();
        for n in 0..12i64 {
            let (id, reference) = new_report(&store, 2026, "t", "b", &format!("r{}@example.org", n % 3)).await;
            let mut tx = store.begin().await.unwrap();
            let state = match n % 3 {
                0 => ReportState::New,
                1 => ReportState::Triaging,
                _ => ReportState::Closed(CloseReason::Invalid),
            };
            if state != ReportState::New {
                let t = Transition { from: ReportState::New, to: state, actor: Actor::System("test"), at: at(1) };
                reports::record_transition(&mut tx, id, &t).await.unwrap();
            }
            reports::set_product(&mut tx, id, Some(if n % 2 == 0 { product } else { other }), at(1)).await.unwrap();
            if n % 4 < 2 {
                reports::assign(&mut tx, id, Some(assignee), at(1)).await.unwrap();
            }
            if n % 5 < 2 {
                reports::add_member(&mut tx, id, viewer, at(1)).await.unwrap();
            }
            let due =
                SlaRecord { ack_due_at: Some(at(100 * n)), analyse_due_at: Some(at(100 * n)), ..SlaRecord::default() };
            sla::set(&mut tx, id, &due).await.unwrap();
            let words: Vec<String> = [(n % 2 == 0, "alpha"), (n % 3 == 0, "beta")]
                .into_iter()
                .filter(|(has, _)| *has)
                .map(|(_, w)| w.to_owned())
                .collect();
            let reference = reference.parse().unwrap();
            let index = reports::prepare_index(store.keys(), id, &words, Some((&reference, b"s", &[])));
            reports::write_index(&mut tx, &[index]).await.unwrap();
            tx.commit().await.unwrap();
            ids.push(id);
        }

        let states = [None, Some("open"), Some("triaging")];
        let products = [None, Some(product)];
        let assignees = [None, Some(None), Some(Some(assignee))];
        let viewers = [None, Some(viewer)];
        let dues = [None, Some(at(550))];
        let word_sets: [&[&str]; 3] = [&[], &["alpha"], &["alpha", "beta"]];
        let filter = |s: usize, p: usize, a: usize, v: usize, d: usize, w: usize, flagged_last: bool| InboxFilter {
            state: states[s].map(str::to_owned),
            product_id: products[p],
            assignee: assignees[a],
            visible_to: viewers[v],
            due_before: dues[d],
            words: word_sets[w].iter().map(|w| (*w).to_owned()).collect(),
            flagged_last,
            offset: 0,
            limit: 100,
        };
        let mut tx = store.snapshot().await.unwrap();
        let listed = async |tx: &mut embargo_store::Tx, filter: &InboxFilter| -> (Vec<ReportId>, i64) {
            let (rows, total) = reports::inbox(tx, filter).await.unwrap();
            (rows.iter().map(|r| r.id).collect(), total)
        };
        let (everything, _) = listed(&mut tx, &filter(0, 0, 0, 0, 0, 0, false)).await;
        assert_eq!(everything.iter().copied().collect::<BTreeSet<_>>(), ids.iter().copied().collect());
        // What each filter alone keeps.
        let mut alone: Vec<Vec<BTreeSet<ReportId>>> = Vec::new();
        for (dimension, choices) in [3, 2, 3, 2, 2, 3].into_iter().enumerate() {
            let mut kept = Vec::new();
            for choice in 0..choices {
                let mut at = [0; 6];
                at[dimension] = choice;
                let (found, _) = listed(&mut tx, &filter(at[0], at[1], at[2], at[3], at[4], at[5], false)).await;
                let found: BTreeSet<ReportId> = found.into_iter().collect();
                if choice > 0 {
                    assert!(
                        !found.is_empty() && found.len() < ids.len(),
                        "filter {dimension}/{choice} alone keeps some and leaves some ({})",
                        db.backend
                    );
                }
                kept.push(found);
            }
            alone.push(kept);
        }
        let mut combinations = 0;
        for s in 0..3 {
            for p in 0..2 {
                for a in 0..3 {
                    for v in 0..2 {
                        for d in 0..2 {
                            for w in 0..3 {
                                let choice = [s, p, a, v, d, w];
                                let expected: Vec<ReportId> = everything
                                    .iter()
                                    .copied()
                                    .filter(|id| (0..6).all(|k| alone[k][choice[k]].contains(id)))
                                    .collect();
                                let (found, total) = listed(&mut tx, &filter(s, p, a, v, d, w, false)).await;
                                assert_eq!(found, expected, "filters {choice:?} ({})", db.backend);
                                assert_eq!(total, expected.len() as i64, "count of {choice:?} ({})", db.backend);
                                let (reordered, _) = listed(&mut tx, &filter(s, p, a, v, d, w, true)).await;
                                assert_eq!(
                                    reordered.iter().copied().collect::<BTreeSet<_>>(),
                                    expected.iter().copied().collect::<BTreeSet<_>>(),
                                    "flagged last, {choice:?} ({})",
                                    db.backend
                                );
                                combinations += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(combinations, 216);
        // Pages: the limit and the offset cut the same list.
        let page = InboxFilter { offset: 3, limit: 4, ..filter(0, 0, 0, 0, 0, 0, false) };
        let (found, total) = listed(&mut tx, &page).await;
        assert_eq!(found, everything[3..7].to_vec(), "{}", db.backend);
        assert_eq!(total, ids.len() as i64);
        tx.rollback().await.unwrap();
    }
}

/// A page's one read of a report gives what the separate reads give in the same snapshot:
/// the record, its reporter, its SLA record, the assessment, the signature with the
/// similarity generation, and the
/// `instance_meta` value asked for; the reports linked to it give its duplicates and its
/// splits.
#[tokio::test]
async fn a_page_read_gives_what_each_read_gives() {
    for db in both_backends() {
        let store = open(&db).await;
        let (id, reference) = new_report(&store, 2026, "the title", "the body", "r@example.org").await;
        let reference: embargo_domain::ReferenceId = reference.parse().unwrap();
        let (plain, _) = new_report(&store, 2026, "plain", "b", "r@example.org").await;
        let (duplicate, duplicate_ref) = new_report(&store, 2026, "dup", "b", "r@example.org").await;
        let (split, split_ref) = new_report(&store, 2026, "split", "b", "r@example.org").await;
        let (both, both_ref) = new_report(&store, 2026, "both", "b", "r@example.org").await;
        let mut tx = store.begin().await.unwrap();
        // The SLA record holds the severity too: it is written first.
        let deadlines = SlaRecord { ack_due_at: Some(at(60)), fix_due_at: Some(at(90)), ..SlaRecord::default() };
        sla::set(&mut tx, id, &deadlines).await.unwrap();
        assessments::set(&mut tx, id, &reference, r#"{"severity":"high"}"#, Some("high")).await.unwrap();
        let index = reports::prepare_index(store.keys(), id, &[], Some((&reference, b"signature", &[])));
        reports::write_index(&mut tx, &[index]).await.unwrap();
        meta::set(&mut tx, "page.test", "7").await.unwrap();
        for linked in [duplicate, both] {
            let to = ReportState::Closed(CloseReason::Duplicate { of: id });
            let t = Transition { from: ReportState::New, to, actor: Actor::System("test"), at: at(1) };
            reports::record_transition(&mut tx, linked, &t).await.unwrap();
        }
        reports::mark_split(&mut tx, split, id).await.unwrap();
        reports::mark_split(&mut tx, both, id).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.snapshot().await.unwrap();
        let read = reports::get_for_page(&mut tx, &reference, "page.test").await.unwrap().unwrap();
        let record = reports::get_by_reference(&mut tx, &reference).await.unwrap().unwrap();
        assert_eq!(format!("{:?}", read.report), format!("{record:?}"), "{}", db.backend);
        assert_eq!(read.assessment, assessments::get(&mut tx, id).await.unwrap());
        assert_eq!(read.assessment.1.as_deref(), Some("high"));
        assert_eq!(read.similarity, reports::similarity_and_generation(&mut tx, id).await.unwrap());
        assert_eq!(read.similarity.0.as_deref(), Some(&b"signature"[..]));
        assert!(read.similarity.1 > 0, "the generation grew with the index write ({})", db.backend);
        assert_eq!(read.meta.as_deref(), Some("7"));
        let reporter = embargo_store::reporters::get(&mut tx, record.reporter_id).await.unwrap();
        assert_eq!(format!("{:?}", read.reporter), format!("{reporter:?}"), "{}", db.backend);
        assert_eq!(read.reporter.email, "r@example.org");
        assert_eq!(read.sla, sla::get(&mut tx, id).await.unwrap(), "{}", db.backend);
        assert_eq!(read.sla.ack_due_at, Some(at(60)), "{}", db.backend);
        // Not indexed, no assessment, no such key.
        let plain_ref = reports::get(&mut tx, plain).await.unwrap().unwrap().reference;
        let other = reports::get_for_page(&mut tx, &plain_ref, "no.such.key").await.unwrap().unwrap();
        assert_eq!((other.assessment, other.similarity.0, other.meta), ((None, None), None, None));
        assert_eq!(other.similarity.1, read.similarity.1, "one generation for the instance");
        let missing = "EMB-2026-999".parse().unwrap();
        assert!(reports::get_for_page(&mut tx, &missing, "page.test").await.unwrap().is_none());

        let (duplicates, splits) = reports::linked_to(&mut tx, id).await.unwrap();
        let named = |id: ReportId, reference: &str| (id, reference.parse::<embargo_domain::ReferenceId>().unwrap());
        assert_eq!(duplicates, vec![named(duplicate, &duplicate_ref), named(both, &both_ref)], "{}", db.backend);
        assert_eq!(splits, vec![named(split, &split_ref), named(both, &both_ref)], "{}", db.backend);
        assert_eq!(splits, reports::split_into(&mut tx, id).await.unwrap());
        assert_eq!(reports::linked_to(&mut tx, plain).await.unwrap(), (Vec::new(), Vec::new()));
        tx.rollback().await.unwrap();
    }
}
