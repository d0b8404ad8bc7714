//! Conformance of `embargo_domain::cvss` against third-party CVSS corpora in
//! `../shared/vectors/cvss` (see its `SOURCES.md`):
//!
//! - FIRST reference scores for 4.0 (via cticommons/cvss), valid and invalid records, with the
//!   2024 half-up rounding corrections applied;
//! - FIRST 4.0 MacroVector extremes and specification examples;
//! - FIRST 3.1 user-guide examples and Red Hat's exhaustive 3.1 base vectors with their
//!   (base, temporal, environmental) triples, and Red Hat's 4.0 sets.
//!
//! Every mismatch is collected; the assertion names the counts and the first few.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use embargo_domain::cvss::{Score, Vector};
use serde_json::Value;

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/cvss");
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("EMBARGO_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("the CVSS corpus is required (EMBARGO_TEST_STRICT=1) but missing at {}", dir.display());
    } else {
        println!("skipped: no CVSS corpus at {}", dir.display());
        None
    }
}

fn json(path: &Path) -> Vec<Value> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        text
    } else {
        String::from_utf8(bytes).unwrap()
    };
    match serde_json::from_str(&text).unwrap() {
        Value::Array(records) => records,
        other => panic!("{}: expected an array, got {other}", path.display()),
    }
}

/// A score as tenths, exactly.
fn tenths(value: &Value) -> u8 {
    let value = value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"));
    (value * 10.0).round() as u8
}

fn show(tenths: u8) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Collects results for one corpus.
#[derive(Default)]
struct Tally {
    checked: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, ok: bool, describe: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(describe());
        }
    }

    fn assert(self, name: &str) {
        println!("{name}: {} checked, {} failed", self.checked, self.failures.len());
        assert!(self.checked > 0, "{name}: nothing checked");
        assert!(
            self.failures.is_empty(),
            "{name}: {} of {} failed; first ones:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

fn v40_score(vector: &Vector) -> Score {
    match vector {
        Vector::V40(v) => v.score().score,
        Vector::V31(_) => panic!("expected 4.0: {vector}"),
    }
}

fn v31_triple(vector: &Vector) -> [u8; 3] {
    match vector {
        Vector::V31(v) => {
            let s = v.scores();
            [s.base.tenths(), s.temporal.tenths(), s.environmental.tenths()]
        }
        Vector::V40(_) => panic!("expected 3.1: {vector}"),
    }
}

/// The 2024 corrections: FIRST's reference file predates the half-up rounding fix.
fn corrections(dir: &Path) -> HashMap<String, u8> {
    json(&dir.join("cticommons-first/v40-rounding-corrections.json"))
        .iter()
        .map(|r| (r["vector"].as_str().unwrap().to_owned(), tenths(&r["score"])))
        .collect()
}

/// Checks one record of a FIRST-style list: valid ones score exactly, invalid ones are rejected.
fn check_v40_record(tally: &mut Tally, record: &Value, expected: impl FnOnce(&str) -> u8) {
    let text = record["vector"].as_str().unwrap();
    let valid = record.get("valid").and_then(Value::as_bool).unwrap_or(true);
    match (valid, Vector::parse(text)) {
        (true, Ok(vector)) => {
            let want = expected(text);
            let got = v40_score(&vector);
            let severity = record.get("severity").and_then(Value::as_str).unwrap_or_default();
            tally.check(
                got.tenths() == want && (severity.is_empty() || got.severity().as_str().eq_ignore_ascii_case(severity)),
                || format!("{text}: got {got} ({}), want {} ({severity})", got.severity(), show(want)),
            );
            tally.check(vector.to_string() == text, || format!("{text}: shown as {vector}"));
        }
        (true, Err(e)) => tally.check(false, || format!("{text}: valid but rejected: {e}")),
        (false, Ok(vector)) => tally.check(false, || format!("{text}: invalid but accepted as {vector}")),
        (false, Err(_)) => tally.check(true, String::new),
    }
}

#[test]
fn v40_first_reference_complete() {
    let Some(dir) = corpus_dir() else { return };
    let corrections = corrections(&dir);
    let records = json(&dir.join("cticommons-first/v40-reference-complete.json.gz"));
    let (mut valid, mut invalid) = (Tally::default(), Tally::default());
    for record in &records {
        let tally = if record["valid"].as_bool() == Some(true) { &mut valid } else { &mut invalid };
        check_v40_record(tally, record, |v| corrections.get(v).copied().unwrap_or_else(|| tenths(&record["score"])));
    }
    // Valid records are checked twice (score and canonical form).
    assert_eq!((valid.checked / 2, invalid.checked), (41_270, 25_028), "record counts changed");
    valid.assert("v40-reference-complete (valid, score and canonical form)");
    invalid.assert("v40-reference-complete (invalid, rejected)");
}

#[test]
fn v40_first_reference_base_macro_examples_and_corrections() {
    let Some(dir) = corpus_dir() else { return };
    let corrections = corrections(&dir);
    let mut base = Tally::default();
    for record in &json(&dir.join("cticommons-first/v40-reference-base.json")) {
        check_v40_record(&mut base, record, |v| {
            corrections.get(&format!("{v}/E:A")).copied().unwrap_or_else(|| tenths(&record["score"]))
        });
    }
    base.assert("v40-reference-base");
    for file in ["v40-macro.json", "v40-base.json", "v40-rounding-corrections.json"] {
        let mut tally = Tally::default();
        for record in &json(&dir.join("cticommons-first").join(file)) {
            check_v40_record(&mut tally, record, |_| tenths(&record["score"]));
        }
        tally.assert(file);
    }
}

/// Red Hat's line format: `VECTOR - 9.2`, `VECTOR - (9.2,)` or `VECTOR - (10.0, 9.9, 9.9)`.
fn redhat_lines(path: &Path) -> Vec<(String, Vec<u8>)> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (vector, scores) = line.split_once(" - ").unwrap_or_else(|| panic!("bad line {line:?}"));
            let scores = scores
                .trim_matches(|c| c == '(' || c == ')')
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| (s.parse::<f64>().unwrap() * 10.0).round() as u8)
                .collect();
            (vector.to_owned(), scores)
        })
        .collect()
}

#[test]
fn v40_redhat_sets() {
    let Some(dir) = corpus_dir() else { return };
    for file in ["vectors_simple4", "vectors_supplemental4", "vectors_security4", "vectors_threat4"] {
        let mut tally = Tally::default();
        for (text, want) in redhat_lines(&dir.join("redhat-cvss-vectors").join(file)) {
            match Vector::parse(&text) {
                Ok(vector) => {
                    let got = v40_score(&vector);
                    tally.check(got.tenths() == want[0], || format!("{text}: got {got}, want {}", show(want[0])));
                }
                Err(e) => tally.check(false, || format!("{text}: rejected: {e}")),
            }
        }
        tally.assert(file);
    }
}

#[test]
fn v31_first_examples_and_redhat_simple31() {
    let Some(dir) = corpus_dir() else { return };
    let mut first = Tally::default();
    for record in json(&dir.join("cticommons-first/v31-base.json")) {
        let text = record["vector"].as_str().unwrap();
        let want = tenths(&record["score"]);
        match Vector::parse(text) {
            Ok(vector) => {
                let [base, ..] = v31_triple(&vector);
                let severity = record["severity"].as_str().unwrap();
                tally_v31(
                    &mut first,
                    text,
                    base == want && vector.severity().as_str().eq_ignore_ascii_case(severity),
                    || format!("base {} ({}), want {} ({severity})", show(base), vector.severity(), show(want)),
                );
            }
            Err(e) => first.check(false, || format!("{text}: rejected: {e}")),
        }
    }
    for record in json(&dir.join("cticommons-first/v31-complete.json")) {
        let text = record["vector"].as_str().unwrap();
        let want = [tenths(&record["base"]), tenths(&record["temporal"]), tenths(&record["environmental"])];
        match Vector::parse(text) {
            Ok(vector) => {
                let got = v31_triple(&vector);
                let headline = vector.score().tenths() == tenths(&record["final"]);
                tally_v31(&mut first, text, got == want && headline, || format!("got {got:?}, want {want:?}"));
            }
            Err(e) => first.check(false, || format!("{text}: rejected: {e}")),
        }
    }
    first.assert("FIRST v31-base + v31-complete");

    let mut redhat = Tally::default();
    for (text, want) in redhat_lines(&dir.join("redhat-cvss-vectors/vectors_simple31")) {
        match Vector::parse(&text) {
            Ok(vector) => {
                let got = v31_triple(&vector);
                redhat.check(got[..] == want[..], || format!("{text}: got {got:?}, want {want:?} (tenths)"));
                redhat.check(vector.to_string() == text, || format!("{text}: shown as {vector}"));
            }
            Err(e) => redhat.check(false, || format!("{text}: rejected: {e}")),
        }
    }
    assert_eq!(redhat.checked, 2 * 2_592, "vectors_simple31 line count changed");
    redhat.assert("Red Hat vectors_simple31 (base, temporal, env; canonical form)");
}

fn tally_v31(tally: &mut Tally, text: &str, ok: bool, describe: impl FnOnce() -> String) {
    tally.check(ok, || format!("{text}: {}", describe()));
}
