//! The .ics holiday reader (`embargo_domain::calendar::parse_ics_holidays`): never panics,
//! and its documented bounds hold.
#![no_main]

use embargo_domain::calendar::{ICS_MAX_DATES, parse_ics_holidays};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(holidays) = parse_ics_holidays(text) {
        assert!(holidays.dates.len() <= ICS_MAX_DATES);
    }
});
