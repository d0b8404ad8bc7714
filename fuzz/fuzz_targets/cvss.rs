//! CVSS vectors (`embargo_domain::cvss::Vector`): parsing never panics; a vector that parses
//! scores within 0–10, prints in canonical form, and that form parses to the same vector.
#![no_main]

use embargo_domain::cvss::Vector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(vector) = Vector::parse(text) else { return };
    let score = vector.score();
    assert!((0.0..=10.0).contains(&score.value()), "{text}: {}", score.value());
    let _ = vector.severity();
    let canonical = vector.to_string();
    let again = Vector::parse(&canonical).unwrap_or_else(|e| panic!("{text} printed as {canonical}, which fails: {e}"));
    assert_eq!(again.to_string(), canonical);
    assert_eq!(again.score().tenths(), score.tenths());
});
