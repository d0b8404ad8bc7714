//! The official JSON schemas, bundled (`schemas/SOURCES.md`, ADR 9), and validation against
//! them. Validators are compiled once. No schema is ever fetched: `jsonschema` is built
//! without `resolve-http`, and every referenced schema is registered from the bundle.

use std::sync::OnceLock;

use jsonschema::{Registry, Validator};
use serde_json::Value;

/// The bundled schema files: (path under `schemas/`, contents).
pub const BUNDLED: &[(&str, &str)] = &[
    ("osv/schema.json", include_str!("../schemas/osv/schema.json")),
    ("cve/CVE_JSON_bundled_5.1.1.json", include_str!("../schemas/cve/CVE_JSON_bundled_5.1.1.json")),
    (
        "cve/CVE_JSON_cnaPublishedContainer_5.1.1.json",
        include_str!("../schemas/cve/CVE_JSON_cnaPublishedContainer_5.1.1.json"),
    ),
    ("csaf/csaf_json_schema.json", include_str!("../schemas/csaf/csaf_json_schema.json")),
    ("csaf/first/cvss-v2.0.json", include_str!("../schemas/csaf/first/cvss-v2.0.json")),
    ("csaf/first/cvss-v3.0.json", include_str!("../schemas/csaf/first/cvss-v3.0.json")),
    ("csaf/first/cvss-v3.1.json", include_str!("../schemas/csaf/first/cvss-v3.1.json")),
];

/// One of the bundled schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    /// OSV 1.7.5.
    Osv,
    /// CVE JSON 5.1.1, a full published record.
    CveRecord,
    /// CVE JSON 5.1.1, a published CNA container (what CVE Services accepts).
    CveCnaContainer,
    /// CVE JSON 5.1.1, a full rejected record (the schema's `Rejected` branch).
    CveRejectedRecord,
    /// CVE JSON 5.1.1, a rejected CNA container (the bundled schema's `cnaRejectedContainer`).
    CveRejectedContainer,
    /// CSAF 2.0 (with the FIRST CVSS schemas it references).
    Csaf,
    /// FIRST CVSS v2.0, v3.0 and v3.1 JSON.
    CvssV2,
    CvssV30,
    CvssV31,
}

fn text(path: &str) -> &'static str {
    BUNDLED.iter().find(|(p, _)| *p == path).map(|(_, t)| *t).expect("bundled schema")
}

fn parse(path: &str) -> Value {
    serde_json::from_str(text(path)).expect("bundled schemas are JSON")
}

/// The FIRST schemas as the CSAF schema refers to them, and under their own IDs.
fn first_schemas() -> Vec<(String, Value)> {
    let mut resources = Vec::new();
    for version in ["2.0", "3.0", "3.1"] {
        let schema = parse(&format!("csaf/first/cvss-v{version}.json"));
        let own = schema.get("$id").or_else(|| schema.get("id")).and_then(Value::as_str).map(str::to_owned);
        resources.push((format!("https://www.first.org/cvss/cvss-v{version}.json"), schema.clone()));
        if let Some(own) = own {
            resources.push((own, schema));
        }
    }
    resources
}

fn compile(schema: Schema) -> Validator {
    let (path, with_first) = match schema {
        Schema::Osv => ("osv/schema.json", false),
        Schema::CveRecord => ("cve/CVE_JSON_bundled_5.1.1.json", false),
        Schema::CveCnaContainer => ("cve/CVE_JSON_cnaPublishedContainer_5.1.1.json", false),
        Schema::CveRejectedRecord | Schema::CveRejectedContainer => ("cve/CVE_JSON_bundled_5.1.1.json", false),
        Schema::Csaf => ("csaf/csaf_json_schema.json", true),
        Schema::CvssV2 => ("csaf/first/cvss-v2.0.json", false),
        Schema::CvssV30 => ("csaf/first/cvss-v3.0.json", false),
        Schema::CvssV31 => ("csaf/first/cvss-v3.1.json", false),
    };
    let mut root = parse(path);
    let mut resources = if with_first { first_schemas() } else { Vec::new() };
    let part = match schema {
        // A published record is the schema's first `oneOf` branch, a rejected one the second;
        // validating against one branch names the failing field instead of "not valid under
        // any of oneOf".
        Schema::CveRecord => Some("#/oneOf/0"),
        Schema::CveRejectedRecord => Some("#/oneOf/1"),
        Schema::CveRejectedContainer => Some("#/definitions/cnaRejectedContainer"),
        _ => None,
    };
    if let Some(part) = part {
        let id = root["$id"].as_str().expect("the CVE schema has an $id").to_owned();
        resources.push((id.clone(), root));
        root = serde_json::json!({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": format!("{id}{part}")});
    }
    let mut options = jsonschema::options();
    options = options.should_validate_formats(true);
    let registry;
    if !resources.is_empty() {
        let mut builder = Registry::new();
        for (uri, resource) in resources {
            builder = builder.add(uri, resource).expect("valid schema URI");
        }
        registry = builder.prepare().expect("bundled schemas resolve");
        options = options.with_registry(&registry);
    }
    options.build(&root).unwrap_or_else(|e| panic!("bundled schema {path} does not compile: {e}"))
}

fn validator(schema: Schema) -> &'static Validator {
    static CELLS: [OnceLock<Validator>; 9] = [const { OnceLock::new() }; 9];
    let index = schema as usize;
    CELLS[index].get_or_init(|| compile(schema))
}

/// Every schema error of `instance`, as `"<JSON pointer>: <message>"` (the pointer is `/` for
/// the document itself). Empty when valid.
pub fn validate(schema: Schema, instance: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "/".to_owned() } else { path };
            format!("{path}: {}", shorten(&e.to_string()))
        })
        .collect()
}

/// Keeps messages readable when the schema quotes a long value or pattern: the start (the
/// value) and the end (what is wrong with it) survive.
fn shorten(message: &str) -> String {
    const HEAD: usize = 160;
    const TAIL: usize = 140;
    let chars: Vec<char> = message.chars().collect();
    if chars.len() > HEAD + TAIL + 10 {
        let head: String = chars[..HEAD].iter().collect();
        let tail: String = chars[chars.len() - TAIL..].iter().collect();
        format!("{head} … {tail}")
    } else {
        message.to_owned()
    }
}
