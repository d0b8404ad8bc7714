//! Near-duplicate suggestions measured on a labelled corpus (`data/duplicates.txt`, issue 20):
//! 30 distinct reports and 8 duplicates of some of them (reworded, translated, a different
//! proof of concept, forwarded with quotes, terse). A pair is suggested when the two reports
//! share an LSH band and score at or above `SUGGEST_THRESHOLD`, as `report similar` does.
//! The figures are in BENCHMARKS.md ("Near-duplicate suggestions").

use embargo_domain::similarity::{SUGGEST_THRESHOLD, bands, estimated_jaccard, signature};

struct Entry {
    id: String,
    product: String,
    bug: String,
    text: String,
}

fn corpus() -> Vec<Entry> {
    let text = include_str!("data/duplicates.txt");
    let mut entries: Vec<Entry> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("=== ") {
            let parts: Vec<&str> = head.split('|').map(str::trim).collect();
            let [id, product, bug] = parts[..] else { panic!("bad head {head:?}") };
            entries.push(Entry { id: id.into(), product: product.into(), bug: bug.into(), text: String::new() });
        } else if let Some(entry) = entries.last_mut() {
            entry.text.push_str(line);
            entry.text.push('\n');
        }
    }
    entries
}

/// (true positives, false positives, duplicate pairs), over every pair of the corpus.
fn measure() -> (usize, usize, usize) {
    let key = [7u8; 32];
    let entries = corpus();
    let signed: Vec<_> = entries
        .iter()
        .map(|e| {
            let s = signature(&e.text, Some(&e.product));
            let b = bands(&s, &key);
            (e, s, b)
        })
        .collect();
    let (mut found, mut false_pairs, mut duplicates) = (0, 0, 0);
    for (i, (a, sa, ba)) in signed.iter().enumerate() {
        for (b, sb, bb) in &signed[i + 1..] {
            let duplicate = a.bug == b.bug;
            let shared = ba.iter().zip(bb).any(|(x, y)| x == y);
            let score = estimated_jaccard(sa, sb);
            let suggested = shared && score >= SUGGEST_THRESHOLD;
            if duplicate {
                duplicates += 1;
                println!("duplicate {} / {}: score {score:.3}, shares a band: {shared}", a.id, b.id);
            }
            match (duplicate, suggested) {
                (true, true) => found += 1,
                (false, true) => {
                    println!("false pair {} / {}: score {score:.3}", a.id, b.id);
                    false_pairs += 1
                }
                _ => {}
            }
        }
    }
    (found, false_pairs, duplicates)
}

#[test]
fn the_corpus_is_what_it_says() {
    let entries = corpus();
    assert_eq!(entries.len(), 38);
    let mut bugs: Vec<&str> = entries.iter().map(|e| e.bug.as_str()).collect();
    bugs.sort();
    bugs.dedup();
    assert_eq!(bugs.len(), 30, "30 distinct reports");
    assert!(entries.iter().all(|e| !e.text.trim().is_empty()));
}

/// What the current method finds on the corpus. It suggests no unrelated pair, but finds
/// only the duplicates that keep most of the original's words; issue 20 asks for at least 7
/// of 8 (not reached yet: see BENCHMARKS.md).
#[test]
fn suggestions_on_the_labelled_corpus() {
    let (found, false_pairs, duplicates) = measure();
    println!("found {found} of {duplicates} duplicate pairs, {false_pairs} false pairs");
    assert_eq!(duplicates, 8);
    assert_eq!(false_pairs, 0, "no unrelated pair is suggested");
    assert!(found >= 1, "{found}");
}
