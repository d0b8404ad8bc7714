//! Our CSAF 2.0 mandatory tests against the OASIS corpus (`testcases.json`): for every
//! mandatory test we implement, each `valid` file passes that test and each `failures` file
//! fails it. Tests we do not implement are listed, not counted.

mod common;

use embargo_advisory::csaf::mandatory;
use embargo_advisory::schema::{self, Schema};

#[test]
fn mandatory_tests_agree_with_the_oasis_corpus() {
    let Some(dir) = common::vectors("csaf/csaf_2.0/test/validator/data") else { return };
    let cases = common::json(&dir.join("testcases.json"));
    let (mut checked, mut wrong, mut skipped) = (0, Vec::new(), Vec::new());
    for case in cases["tests"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        if case["group"] != "mandatory" {
            continue;
        }
        for (list, should_fail) in [("valid", false), ("failures", true)] {
            for file in case[list].as_array().into_iter().flatten() {
                let name = file["name"].as_str().unwrap();
                let document = common::json(&dir.join(name));
                let Some(failures) = mandatory::run(id, &document) else {
                    skipped.push(format!("{id} ({name})"));
                    continue;
                };
                checked += 1;
                if failures.is_empty() == should_fail {
                    wrong.push(format!("{id} {list} {name}: {failures:?}"));
                }
            }
        }
    }
    let unimplemented: Vec<&str> = mandatory::NOT_IMPLEMENTED.iter().map(|(id, _)| *id).collect();
    println!(
        "CSAF mandatory tests: {checked} corpus files checked, {} wrong; not implemented: {} ({} files skipped)",
        wrong.len(),
        unimplemented.join(", "),
        skipped.len()
    );
    assert!(checked >= 140, "only {checked} files checked");
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
    assert!(skipped.iter().all(|s| unimplemented.iter().any(|id| s.starts_with(&format!("{id} ")))));
}

#[test]
fn the_oasis_examples_pass_the_schema_and_every_implemented_test() {
    let Some(dir) = common::vectors("csaf/csaf_2.0/examples/csaf") else { return };
    let mut checked = 0;
    for sub in [dir.clone(), dir.join("csaf_vex")] {
        for entry in std::fs::read_dir(sub).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let document = common::json(&path);
            assert_eq!(schema::validate(Schema::Csaf, &document), Vec::<String>::new(), "{}", path.display());
            assert_eq!(mandatory::run_all(&document), vec![], "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 19, "{checked}");
}
