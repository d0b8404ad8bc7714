//! `embargo_domain::ssvc` against CERT/CC's published SSVC data in `../shared/vectors/ssvc`
//! (see its `SOURCES.md`): every row of the Supplier Patch Development Priority 1.0.0 CSV,
//! and the JSON decision table's decision points (ids, value keys and names) and mapping.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use embargo_domain::ssvc::{
    DecisionPoint, Exploitation, Priority, PublicSafetyImpact, SUPPLIER_TABLE_ID, SupplierDecision, TechnicalImpact,
    Utility,
};
use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/ssvc"));
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("EMBARGO_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("the SSVC vectors are required (EMBARGO_TEST_STRICT=1) but missing at {}", dir.display());
    } else {
        println!("skipped: no SSVC vectors at {}", dir.display());
        None
    }
}

fn by_name<P: DecisionPoint>(name: &str) -> P {
    P::from_name(name).unwrap_or_else(|| panic!("{}: no value named {name:?}", P::NAME))
}

fn column<P: DecisionPoint>() -> String {
    format!("{} v{}", P::NAME, P::VERSION)
}

#[test]
fn every_csv_row_matches_the_table() {
    let Some(dir) = vectors() else { return };
    let path = dir.join("csv/ssvc/supplier_patch_development_priority_1_0_0.csv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let expected_header = format!(
        "row,{},{},{},{},\"{}\"",
        column::<Exploitation>(),
        column::<Utility>(),
        column::<TechnicalImpact>(),
        column::<PublicSafetyImpact>(),
        column::<Priority>()
    );
    assert_eq!(header, expected_header);
    let mut checked = 0;
    let mut seen = std::collections::HashSet::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 6, "{line}");
        let decision = SupplierDecision {
            exploitation: by_name(fields[1]),
            utility: by_name(fields[2]),
            technical_impact: by_name(fields[3]),
            public_safety_impact: by_name(fields[4]),
        };
        let expected: Priority = by_name(fields[5]);
        assert_eq!(decision.priority(), expected, "row {}: {line}", fields[0]);
        assert!(seen.insert(decision), "row {} repeats an input", fields[0]);
        checked += 1;
    }
    assert_eq!(checked, 36, "the CSV covers every combination");
}

#[test]
fn the_json_decision_table_matches() {
    let Some(dir) = vectors() else { return };
    let path = dir.join("json/decision_tables/ssvc/supplier_patch_development_priority_1_0_0.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: Value = serde_json::from_str(&text).unwrap();
    let id = format!("{}:{}:{}", table["namespace"].as_str().unwrap(), table["key"], table["version"]);
    assert_eq!(id.replace('"', ""), SUPPLIER_TABLE_ID);
    assert_eq!(table["outcome"], Priority::id());

    // Each decision point: id, name, and the values' keys and names in order.
    fn check<P: DecisionPoint>(points: &Value) {
        let point = &points[P::id()];
        assert!(point.is_object(), "no decision point {}", P::id());
        assert_eq!(point["name"], P::NAME);
        let values: Vec<(&str, &str)> = point["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["key"].as_str().unwrap(), v["name"].as_str().unwrap()))
            .collect();
        let ours: Vec<(&str, &str)> = P::ALL.iter().map(|v| (v.key(), v.name())).collect();
        assert_eq!(values, ours, "{}", P::id());
    }
    let points = &table["decision_points"];
    assert_eq!(points.as_object().unwrap().len(), 5);
    check::<Exploitation>(points);
    check::<Utility>(points);
    check::<TechnicalImpact>(points);
    check::<PublicSafetyImpact>(points);
    check::<Priority>(points);

    // The mapping, by keys.
    let mapping = table["mapping"].as_array().unwrap();
    assert_eq!(mapping.len(), 36);
    let mut from_json = BTreeMap::new();
    for row in mapping {
        let key = |id: String| row[&id].as_str().unwrap_or_else(|| panic!("{id} missing in {row}")).to_string();
        let decision = SupplierDecision {
            exploitation: Exploitation::from_key(&key(Exploitation::id())).unwrap(),
            utility: Utility::from_key(&key(Utility::id())).unwrap(),
            technical_impact: TechnicalImpact::from_key(&key(TechnicalImpact::id())).unwrap(),
            public_safety_impact: PublicSafetyImpact::from_key(&key(PublicSafetyImpact::id())).unwrap(),
        };
        let outcome = Priority::from_key(&key(Priority::id())).unwrap();
        assert_eq!(decision.priority(), outcome, "{row}");
        from_json.insert(decision.to_string(), outcome);
    }
    assert_eq!(from_json.len(), 36);
}

#[test]
fn the_archived_vector_example_has_our_shape() {
    // The archived computed example is a coordinator decision with the old keys; only its
    // frame (prefix, `key:value/` segments, timestamp, trailing slash) is ours.
    let Some(dir) = vectors() else { return };
    let path = dir.join("schema_examples/archive/Computed-CVE-2014-0751-Coordinator.json");
    let example: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let computed = example["computed"].as_str().unwrap();
    let body = computed.strip_prefix("SSVCv2/").and_then(|b| b.strip_suffix('/')).unwrap();
    let segments: Vec<&str> = body.split('/').collect();
    let (last, pairs) = segments.split_last().unwrap();
    assert!(pairs.iter().all(|p| p.split_once(':').is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())));
    assert_eq!(last.parse::<jiff::Timestamp>().unwrap().to_string(), example["timestamp"].as_str().unwrap());
}
