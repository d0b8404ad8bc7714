//! Near-duplicate suggestions measured on a labelled corpus (`data/duplicates.txt`, issue 20):
//! 30 distinct reports and 8 duplicates of some of them (reworded, translated, a different
//! proof of concept, forwarded with quotes, terse).
//!
//! Suggestions are made here as `report similar` makes them (`embargo_app::reports::similar`
//! and `embargo_store::reports::similarity_candidates`): the reports are numbered in corpus
//! order (their arrival); for each report, every band's nearest [`PER_BAND`] reports before
//! it and after it that share the band are read, ranked by the rarity of the bands they
//! share (each counting 1 / the rows read for it), then by their number and closeness in
//! arrival, the best [`CANDIDATES`] are scored together with
//! [`scores`], and those at or above [`SUGGEST_THRESHOLD`] are suggested, best first, at
//! most [`SHOWN`]. A duplicate is found when the page of the later report suggests the
//! earlier one; a false pair is an unrelated pair suggested on either page. The figures
//! are in BENCHMARKS.md ("Near-duplicate suggestions").

use std::collections::HashMap;

use embargo_domain::similarity::{SUGGEST_THRESHOLD, Signature, bands, scores, signature};

/// `embargo_app::reports::SIMILAR_PER_BAND`.
const PER_BAND: usize = 4;
/// `embargo_app::reports::SIMILAR_CANDIDATES`.
const CANDIDATES: usize = 64;
/// `embargo_app::reports::SIMILAR_SHOWN`.
const SHOWN: usize = 5;

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

/// The suggestions on each report's page: (index of the suggested report, score), best
/// first, at or above `threshold`, at most `shown`.
fn suggestions(signed: &[(Signature, Vec<u64>)], threshold: f64, shown: usize) -> Vec<Vec<(usize, f64)>> {
    // The band index: band key -> the reports holding it, in arrival order.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    for (report, (_, bands)) in signed.iter().enumerate() {
        for band in bands {
            index.entry(*band).or_default().push(report);
        }
    }
    (0..signed.len())
        .map(|own| {
            let (signature, own_bands) = &signed[own];
            // other -> (rarity, shared bands)
            let mut shared: HashMap<usize, (f64, usize)> = HashMap::new();
            for band in own_bands {
                let holders = &index[band];
                let before = holders.iter().filter(|&&o| o < own).rev().take(PER_BAND);
                let after = holders.iter().filter(|&&o| o > own).take(PER_BAND);
                let read: Vec<usize> = before.chain(after).copied().collect();
                for &other in &read {
                    let entry = shared.entry(other).or_default();
                    entry.0 += 1.0 / read.len() as f64;
                    entry.1 += 1;
                }
            }
            let mut ranked: Vec<(usize, f64, usize)> = shared.into_iter().map(|(o, (r, c))| (o, r, c)).collect();
            ranked.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(b.2.cmp(&a.2))
                    .then(a.0.abs_diff(own).cmp(&b.0.abs_diff(own)))
                    .then(a.0.cmp(&b.0))
            });
            ranked.truncate(CANDIDATES);
            let theirs: Vec<&Signature> = ranked.iter().map(|&(other, _, _)| &signed[other].0).collect();
            let mut scored: Vec<(usize, f64)> = ranked
                .iter()
                .zip(scores(signature, &theirs))
                .filter(|(_, score)| *score >= threshold)
                .map(|(&(other, _, _), score)| (other, score))
                .collect();
            scored.sort_by(|(x, a), (y, b)| b.total_cmp(a).then(x.cmp(y)));
            scored.truncate(shown);
            scored
        })
        .collect()
}

/// (duplicates found, false pairs, duplicate pairs), over every distinct pair of the corpus.
/// Pairs of two [filler](template_filler) reports are not counted either way.
fn measure(key: [u8; 32]) -> (usize, usize, usize) {
    measure_entries(key, corpus())
}

/// [`measure`] of `entries`.
fn measure_entries(key: [u8; 32], entries: Vec<Entry>) -> (usize, usize, usize) {
    let signed: Vec<(Signature, Vec<u64>)> = entries
        .iter()
        .map(|e| {
            let s = signature(&e.text, Some(&e.product));
            let b = bands(&s, &key);
            (s, b)
        })
        .collect();
    let shown = suggestions(&signed, SUGGEST_THRESHOLD, SHOWN);
    let suggested = |a: usize, b: usize| shown[a].iter().find(|(o, _)| *o == b).map(|(_, s)| *s);
    let (mut found, mut false_pairs, mut duplicates, mut filler_pairs) = (0, 0, 0, 0);
    let is_filler = |e: &Entry| e.bug.starts_with("filler-");
    for (i, a) in entries.iter().enumerate() {
        for (j, b) in entries.iter().enumerate().skip(i + 1) {
            let shared = signed[i].1.iter().zip(&signed[j].1).filter(|(x, y)| x == y).count();
            if a.bug == b.bug {
                duplicates += 1;
                let page = suggested(j, i);
                println!(
                    "duplicate {} / {}: shares {shared} of the bands, suggested on {}'s page: {page:?}",
                    a.id, b.id, b.id
                );
                found += usize::from(page.is_some());
            } else {
                if let Some(score) = suggested(i, j).or(suggested(j, i)) {
                    if is_filler(a) && is_filler(b) {
                        filler_pairs += 1;
                    } else {
                        println!("false pair {} / {}: score {score:.3}", a.id, b.id);
                        false_pairs += 1;
                    }
                }
            }
        }
    }
    // The margin: every duplicate's score on the later report's page, and the best unrelated
    // pair's on either page, with no threshold and no limit.
    let raw = suggestions(&signed, 0.0, usize::MAX);
    let score_on = |page: usize, other: usize| raw[page].iter().find(|(o, _)| *o == other).map_or(0.0, |(_, s)| *s);
    let (mut duplicate_scores, mut best_unrelated) = (Vec::new(), 0.0_f64);
    for (i, a) in entries.iter().enumerate() {
        for (j, b) in entries.iter().enumerate().skip(i + 1) {
            if a.bug == b.bug {
                duplicate_scores.push(score_on(j, i));
            } else if !(a.bug.starts_with("filler-") && b.bug.starts_with("filler-")) {
                best_unrelated = best_unrelated.max(score_on(i, j)).max(score_on(j, i));
            }
        }
    }
    duplicate_scores.sort_by(|a, b| b.total_cmp(a));
    if filler_pairs > 0 {
        println!("pairs of filler reports suggested (not counted): {filler_pairs}");
    }
    println!(
        "duplicates score {}; the best unrelated pair {best_unrelated:.3}",
        duplicate_scores.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", ")
    );
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

/// Issue 20: at least 7 of the 8 duplicates are suggested, and no unrelated pair is. (The
/// method before ADR 27, a MinHash of words in 32 bands of 4, found 1 of 8.)
#[test]
fn suggestions_on_the_labelled_corpus() {
    // The band key decides which reports become candidates: the same under any key.
    for key in [[7u8; 32], [1u8; 32], [0xa5u8; 32]] {
        let (found, false_pairs, duplicates) = measure(key);
        println!("found {found} of {duplicates} duplicate pairs, {false_pairs} false pairs");
        assert_eq!(duplicates, 8);
        assert_eq!(false_pairs, 0, "no unrelated pair is suggested");
        assert!(found >= 7, "found {found} of 8");
    }
}

/// `count` reports written on the corpus's two templates (the router's and the portal's),
/// each a different bug: a vulnerability class in a component, with a request and a payload,
/// drawn with a fixed SplitMix64 sequence. None is about a component of the corpus.
fn template_filler(count: usize) -> Vec<Entry> {
    const CLASSES: &[&str] = &[
        "stored cross-site scripting",
        "reflected cross-site scripting",
        "SQL injection",
        "command injection",
        "path traversal",
        "open redirect",
        "missing authorisation",
        "information disclosure",
        "denial of service",
        "cross-site request forgery",
        "server-side request forgery",
        "XML external entity injection",
    ];
    const ROUTER: &[&str] = &[
        "wireless settings",
        "parental controls",
        "firmware upgrade",
        "DHCP leases",
        "port forwarding",
        "guest network",
        "time settings",
        "VPN server",
        "USB storage",
        "QoS rules",
        "DDNS settings",
        "LED schedule",
    ];
    const PORTAL: &[&str] = &[
        "billing address",
        "team invitations",
        "API tokens",
        "audit export",
        "profile picture upload",
        "support tickets",
        "SAML settings",
        "usage reports",
        "notification settings",
        "file sharing",
        "dashboard widgets",
        "calendar sync",
    ];
    const PARAMS: &[&str] = &["id", "name", "mode", "target", "page", "lang", "item", "ref"];
    const PAYLOADS: &[&str] = &[
        "<svg onload=alert(1)>",
        "1' OR '1'='1",
        "$(id)",
        "../../../../etc/hosts",
        "https://evil.example/",
        "99999",
        "http://127.0.0.1:22/",
        "%0d%0aSet-Cookie:x=1",
    ];
    let mut state = 0x5eed_u64;
    let mut pick = |list: &[&'static str]| -> &'static str {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        list[((z ^ (z >> 31)) % list.len() as u64) as usize]
    };
    (0..count)
        .map(|n| {
            let (class, param, payload) = (pick(CLASSES), pick(PARAMS), pick(PAYLOADS));
            let (product, text) = if n % 2 == 0 {
                let component = pick(ROUTER);
                let cgi = component.to_lowercase().replace(' ', "_");
                (
                    "Acme Router AR-500",
                    format!(
                        "Product: Acme Router AR-500, firmware 2.3.1.\nSummary: {class} in the {component} page.\n\
                     Steps to reproduce:\n1. Log in to the admin interface at http://192.168.1.1.\n\
                     2. Open /cgi-bin/{cgi}?{param}={payload} in the browser.\n\
                     3. The {component} page handles the {param} parameter unsafely.\n\
                     Impact: an attacker on the local network can abuse the {component} page of the router.\n\
                     Please let me know if you need further information.\n"
                    ),
                )
            } else {
                let component = pick(PORTAL);
                let path = component.to_lowercase().replace(' ', "-");
                (
                    "Acme Cloud Portal",
                    format!(
                        "Product: Acme Cloud Portal, version 5.2.\nSummary: {class} in {component}.\n\
                     Steps to reproduce:\n1. Log in as a customer at https://portal.acme.example/login.\n\
                     2. Send GET /api/{path}?{param}={payload}.\n\
                     3. The portal processes the {param} parameter without validation.\n\
                     Impact: any customer can abuse {component} of the portal.\n\
                     Please let me know if you need further information.\n"
                    ),
                )
            };
            Entry { id: format!("f{n:04}"), product: product.into(), bug: format!("filler-{n}"), text }
        })
        .collect()
}

/// Candidates are read a bounded number per band (ADR 16): with 1,000 reports on the same
/// two templates arriving between the originals and their duplicates, every template band
/// is crowded, and the duplicates must still be found through the bands they share rarely.
/// Measured (BENCHMARKS.md): 6 of 8 found, no false pair. The German duplicate is lost:
/// everything it shares with its original (the product, the login URL, the payload
/// `admin' OR '1'='1`) is common among the filler, whose portal half starts at the same login
/// URL and an eighth of which uses that payload. The best unrelated pair (the terse XXE report
/// and the command injection that also reads `/etc/passwd`) scores 0.279, close to the
/// threshold. Pairs of filler reports, 90 % the same text, are grouped like a scanner
/// campaign's (`similarity::VERBATIM_THRESHOLD`).
#[test]
fn suggestions_among_a_thousand_template_reports() {
    let entries = corpus();
    let (originals, duplicates): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| e.id.starts_with('r'));
    let crowded: Vec<Entry> = originals.into_iter().chain(template_filler(1000)).chain(duplicates).collect();
    let (found, false_pairs, duplicate_pairs) = measure_entries([7u8; 32], crowded);
    println!("among 1,000 template reports: found {found} of {duplicate_pairs}, {false_pairs} false pairs");
    assert_eq!(duplicate_pairs, 8);
    assert!(found >= 6, "found {found} of 8");
    assert_eq!(false_pairs, 0);
}
