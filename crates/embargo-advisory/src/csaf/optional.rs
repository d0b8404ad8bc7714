//! Our implementation of the CSAF 2.0 optional tests (§6.2) that concern what Embargo
//! writes, so that the advisory check (the editor, `embargo advisory check`) shows them as
//! warnings, not only the official validator in the tests: 6.2.2 (missing remediation),
//! 6.2.3 (missing score), 6.2.11 (missing canonical URL), 6.2.13 (keys not sorted), 6.2.16
//! (missing product identification helper) and 6.2.18 (product version range without
//! `vers`). `official_validators.rs` checks that these agree with BSI's validator on our
//! documents and on a careless one.
//!
//! Warnings never block publication: a document scored with CVSS 4.0 only, for instance, has
//! no CSAF 2.0 score to give (6.2.3).

use serde_json::Value;

use super::csaf_filename;
use super::mandatory::Failure;

/// The optional tests implemented here.
pub const IMPLEMENTED: &[&str] = &["6.2.2", "6.2.3", "6.2.11", "6.2.13", "6.2.16", "6.2.18"];

fn warn(test: &'static str, path: String, message: &str) -> Failure {
    Failure { test, path, message: message.to_owned() }
}

/// The product IDs a vulnerability says are affected, with their JSON pointers.
fn affected(vulnerability: &Value, index: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for status in ["first_affected", "known_affected", "last_affected"] {
        for (k, id) in vulnerability["product_status"][status].as_array().into_iter().flatten().enumerate() {
            if let Some(id) = id.as_str() {
                out.push((id.to_owned(), format!("/vulnerabilities/{index}/product_status/{status}/{k}")));
            }
        }
    }
    out
}

/// The product IDs named by `product_ids`/`products` lists (and the groups they name).
fn covered(doc: &Value, list: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in list.as_array().into_iter().flatten() {
        out.extend(item[key].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
        for group in item["group_ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            for g in doc["product_tree"]["product_groups"].as_array().into_iter().flatten() {
                if g["group_id"] == group {
                    out.extend(
                        g["product_ids"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned),
                    );
                }
            }
        }
    }
    out
}

fn keys_sorted(value: &Value, path: String, out: &mut Vec<Failure>) {
    match value {
        Value::Object(map) => {
            if !map.keys().is_sorted() {
                out.push(warn(
                    "6.2.13",
                    if path.is_empty() { "/".into() } else { path.clone() },
                    "not sorted alphabetically",
                ));
            }
            for (k, v) in map {
                keys_sorted(v, format!("{path}/{k}"), out);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                keys_sorted(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn branches(list: &Value, path: &str, out: &mut Vec<Failure>) {
    for (i, branch) in list.as_array().into_iter().flatten().enumerate() {
        let here = format!("{path}/{i}");
        if branch.get("product").is_some() && branch["product"].get("product_identification_helper").is_none() {
            out.push(warn("6.2.16", format!("{here}/product"), "missing product identification helper"));
        }
        if branch["category"] == "product_version_range"
            && let Some(name) = branch["name"].as_str()
        {
            let scheme_ok =
                name.strip_prefix("vers:").and_then(|rest| rest.split_once('/')).is_some_and(|(scheme, body)| {
                    !body.is_empty()
                        && scheme.starts_with(|c: char| c.is_ascii_lowercase() || matches!(c, '.' | '-' | '+'))
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
                });
            if !scheme_ok {
                out.push(warn("6.2.18", here.clone(), "product version range without vers"));
            }
        }
        branches(&branch["branches"], &format!("{here}/branches"), out);
    }
}

/// Every warning of the implemented optional tests, in test order.
pub fn run_all(doc: &Value) -> Vec<Failure> {
    let mut out = Vec::new();
    for (i, vulnerability) in doc["vulnerabilities"].as_array().into_iter().flatten().enumerate() {
        let remedied = covered(doc, &vulnerability["remediations"], "product_ids");
        let scored = covered(doc, &vulnerability["scores"], "products");
        for (id, path) in affected(vulnerability, i) {
            if !remedied.contains(&id) {
                out.push(warn("6.2.2", path.clone(), "missing remediation"));
            }
            if !scored.contains(&id) {
                out.push(warn("6.2.3", path, "missing score"));
            }
        }
    }
    let file = doc["document"]["tracking"]["id"].as_str().map(csaf_filename);
    let canonical = doc["document"]["references"].as_array().into_iter().flatten().any(|r| {
        r["category"] == "self"
            && r["url"].as_str().is_some_and(|url| {
                url.starts_with("https://") && file.as_deref().is_some_and(|file| url.ends_with(file))
            })
    });
    if !canonical {
        out.push(warn("6.2.11", "/document/references".into(), "missing canonical url"));
    }
    let mut sorting = Vec::new();
    keys_sorted(doc, String::new(), &mut sorting);
    out.extend(sorting);
    let tree = &doc["product_tree"];
    for (i, product) in tree["full_product_names"].as_array().into_iter().flatten().enumerate() {
        if product.get("product_identification_helper").is_none() {
            let path = format!("/product_tree/full_product_names/{i}");
            out.push(warn("6.2.16", path, "missing product identification helper"));
        }
    }
    for (i, relationship) in tree["relationships"].as_array().into_iter().flatten().enumerate() {
        if relationship["full_product_name"].get("product_identification_helper").is_none() {
            let path = format!("/product_tree/relationships/{i}/full_product_name");
            out.push(warn("6.2.16", path, "missing product identification helper"));
        }
    }
    branches(&tree["branches"], "/product_tree/branches", &mut out);
    out
}
