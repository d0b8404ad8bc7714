//! OSV import (`embargo_advisory::osv::import_osv`): any JSON is refused or imported, never a
//! panic; an imported record can be rendered into every output and validated.
#![no_main]

use embargo_advisory::osv::{import_osv, to_osv};
use embargo_advisory::{AdvisoryId, Publisher};
use embargo_domain::ReferencePrefix;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let id = AdvisoryId::new(ReferencePrefix::parse("EMB").unwrap(), 2026, 1).unwrap();
    let Ok(imported) = import_osv(text, id, "Example") else { return };
    let record = imported.record;
    let _ = record.validate();
    let _ = to_osv(&record);
    let publisher: Publisher =
        serde_json::from_value(serde_json::json!({"name": "Example", "namespace": "https://example.com"})).unwrap();
    let _ = embargo_advisory::markdown::to_html(&record, &publisher);
    // The stored form reads back.
    let stored = serde_json::to_string(&record).unwrap();
    let _: embargo_advisory::AdvisoryRecord = serde_json::from_str(&stored).unwrap();
});
