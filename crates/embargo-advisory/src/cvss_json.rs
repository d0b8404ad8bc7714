//! CVSS vectors as the FIRST JSON objects used by CVE (`cvssV3_1`, `cvssV4_0`) and CSAF
//! (`cvss_v3`). Every property is derived from the vector by `embargo_domain::cvss`.

use embargo_domain::cvss::{Score, Vector};
use serde_json::{Map, Value, json};

/// The FIRST JSON property name and value names of a CVSS 3.x metric (3.0 and 3.1 share
/// them).
pub(crate) fn v3_property(metric: &str, value: &str) -> Option<(&'static str, &'static str)> {
    let base = |v: &str| match v {
        "H" => "HIGH",
        "L" => "LOW",
        "N" => "NONE",
        "X" => "NOT_DEFINED",
        _ => "",
    };
    let av = |v: &str| match v {
        "N" => "NETWORK",
        "A" => "ADJACENT_NETWORK",
        "L" => "LOCAL",
        "P" => "PHYSICAL",
        "X" => "NOT_DEFINED",
        _ => "",
    };
    let ui = |v: &str| match v {
        "N" => "NONE",
        "R" => "REQUIRED",
        "X" => "NOT_DEFINED",
        _ => "",
    };
    let scope = |v: &str| match v {
        "U" => "UNCHANGED",
        "C" => "CHANGED",
        "X" => "NOT_DEFINED",
        _ => "",
    };
    let requirement = |v: &str| match v {
        "M" => "MEDIUM",
        other => base(other),
    };
    let (name, text) = match metric {
        "AV" => ("attackVector", av(value)),
        "AC" => ("attackComplexity", base(value)),
        "PR" => ("privilegesRequired", base(value)),
        "UI" => ("userInteraction", ui(value)),
        "S" => ("scope", scope(value)),
        "C" => ("confidentialityImpact", base(value)),
        "I" => ("integrityImpact", base(value)),
        "A" => ("availabilityImpact", base(value)),
        "E" => (
            "exploitCodeMaturity",
            match value {
                "U" => "UNPROVEN",
                "P" => "PROOF_OF_CONCEPT",
                "F" => "FUNCTIONAL",
                other => base(other),
            },
        ),
        "RL" => (
            "remediationLevel",
            match value {
                "O" => "OFFICIAL_FIX",
                "T" => "TEMPORARY_FIX",
                "W" => "WORKAROUND",
                "U" => "UNAVAILABLE",
                other => base(other),
            },
        ),
        "RC" => (
            "reportConfidence",
            match value {
                "U" => "UNKNOWN",
                "R" => "REASONABLE",
                "C" => "CONFIRMED",
                other => base(other),
            },
        ),
        "CR" => ("confidentialityRequirement", requirement(value)),
        "IR" => ("integrityRequirement", requirement(value)),
        "AR" => ("availabilityRequirement", requirement(value)),
        "MAV" => ("modifiedAttackVector", av(value)),
        "MAC" => ("modifiedAttackComplexity", base(value)),
        "MPR" => ("modifiedPrivilegesRequired", base(value)),
        "MUI" => ("modifiedUserInteraction", ui(value)),
        "MS" => ("modifiedScope", scope(value)),
        "MC" => ("modifiedConfidentialityImpact", base(value)),
        "MI" => ("modifiedIntegrityImpact", base(value)),
        "MA" => ("modifiedAvailabilityImpact", base(value)),
        _ => return None,
    };
    (!text.is_empty()).then_some((name, text))
}

fn severity(score: Score) -> String {
    score.severity().as_str().to_ascii_uppercase()
}

fn number(score: Score) -> Value {
    json!(score.value())
}

/// The FIRST CVSS v3.1 JSON object; `None` for a 4.0 vector.
pub fn cvss_v3_1(vector: &Vector) -> Option<Value> {
    let Vector::V31(v) = vector else { return None };
    let scores = v.scores();
    let mut object = Map::new();
    object.insert("version".into(), json!("3.1"));
    object.insert("vectorString".into(), json!(vector.to_string()));
    let mut temporal = false;
    let mut environmental = false;
    for (metric, value) in vector.iter() {
        if let Some((name, text)) = v3_property(metric, value) {
            object.insert(name.into(), json!(text));
        }
        temporal |= matches!(metric, "E" | "RL" | "RC");
        environmental |= !matches!(metric, "AV" | "AC" | "PR" | "UI" | "S" | "C" | "I" | "A" | "E" | "RL" | "RC");
    }
    object.insert("baseScore".into(), number(scores.base));
    object.insert("baseSeverity".into(), json!(severity(scores.base)));
    if temporal {
        object.insert("temporalScore".into(), number(scores.temporal));
        object.insert("temporalSeverity".into(), json!(severity(scores.temporal)));
    }
    if environmental {
        object.insert("environmentalScore".into(), number(scores.environmental));
        object.insert("environmentalSeverity".into(), json!(severity(scores.environmental)));
    }
    Some(Value::Object(object))
}

/// The FIRST CVSS v4.0 JSON object with the required properties; `None` for a 3.1 vector.
///
/// `baseScore` holds the vector's single 4.0 score, which is CVSS-B only when the vector has
/// no threat or environmental metrics.
pub fn cvss_v4_0(vector: &Vector) -> Option<Value> {
    let Vector::V40(v) = vector else { return None };
    let score = v.score().score;
    Some(json!({
        "version": "4.0",
        "vectorString": vector.to_string(),
        "baseScore": score.value(),
        "baseSeverity": severity(score),
    }))
}
