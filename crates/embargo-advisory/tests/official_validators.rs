//! The realistic advisories of `common` through the official tools, not only our own code:
//! `check-jsonschema` for OSV (against the bundled OSV schema), `cve validate` (cvelib) for
//! the CVE CNA container and full record, and BSI's `@secvisogram/csaf-validator-lib` (strict
//! schema and every mandatory test) for CSAF. `.ci/run` installs them into `.ci/tools/venv`
//! and `.ci/node`; a missing tool skips its test (fails under `EMBARGO_TEST_STRICT=1`).
//!
//! Each test also feeds its tool a deliberately broken output, which must be rejected: the
//! tool really runs and really validates.
//!
//! No network: the tools run with an unreachable HTTP(S) proxy, so any attempt to fetch a
//! schema fails instead of reaching out.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use embargo_test_support::require;
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<workspace>/.ci/tools/venv/bin/<name>`, else `<name>` on `PATH`.
fn venv_tool(name: &str, package: &str) -> Option<PathBuf> {
    let venv = workspace().join(".ci/tools/venv/bin").join(name);
    let found = if venv.exists() {
        Ok(venv)
    } else {
        on_path(name).ok_or_else(|| format!("{package} (PyPI) not found in .ci/tools/venv or on PATH (run .ci/run)"))
    };
    require(name, found)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The script running the secvisogram validator, with `node` and the installed library.
fn csaf_validator() -> Option<(PathBuf, PathBuf)> {
    let script = workspace().join(".ci/node/validate-csaf.mjs");
    let lib = workspace().join(".ci/node/node_modules/@secvisogram/csaf-validator-lib/package.json");
    let found = match on_path("node") {
        None => Err("node not found on PATH".to_owned()),
        Some(_) if !lib.exists() => Err(format!("{} missing (run .ci/run)", lib.display())),
        Some(node) => Ok((node, script)),
    };
    require("@secvisogram/csaf-validator-lib", found)
}

struct Run {
    ok: bool,
    text: String,
}

/// Runs a validator offline and keeps its exit status and everything it printed.
fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let out = Command::new(program)
        .args(args)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Run { ok: out.status.success(), text }
}

/// Every output of every realistic advisory, written to `dir`, whose relative name starts
/// with `prefix` (`osv/`, `cve/`, `csaf/`).
fn written(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let publisher = common::publisher();
    common::realistic()
        .iter()
        .flat_map(|record| common::write_outputs(dir, record, &publisher))
        .filter(|(name, _)| name.starts_with(prefix))
        .collect()
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn osv_outputs_pass_check_jsonschema() {
    let Some(tool) = venv_tool("check-jsonschema", "check-jsonschema") else { return };
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/osv/schema.json");
    let validate =
        |file: &Path| run(&tool, &["--schemafile".as_ref(), schema.as_os_str(), "--".as_ref(), file.as_os_str()]);
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path(), "osv/");
    assert_eq!(files.len(), 6, "{files:?}");
    for (name, path) in &files {
        let result = validate(path);
        assert!(result.ok, "check-jsonschema rejects {name}:\n{}", result.text);
    }

    // An ID with neither a registered prefix nor `x_` is refused by the official schema.
    let mut bad = common::json(&files[0].1);
    bad["id"] = json!("EMB-2026-0001");
    let result = validate(&write_json(dir.path(), "bad-osv.json", &bad));
    assert!(!result.ok && result.text.contains("$.id"), "a bad OSV id must fail:\n{}", result.text);
}

#[test]
fn cve_outputs_pass_cve_validate() {
    let Some(cve) = venv_tool("cve", "cvelib") else { return };
    let validate = |schema: &str, file: &Path| {
        run(&cve, &["validate".as_ref(), "-s".as_ref(), schema.as_ref(), "-f".as_ref(), file.as_os_str()])
    };
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path(), "cve/");
    // Five of the six realistic advisories have a CVE ID: a container and a record each (the
    // withdrawn one's are a rejected container and a REJECTED record).
    assert_eq!(files.len(), 10, "{files:?}");
    for (name, path) in &files {
        // What we would POST to CVE Services, and the full record we export.
        let schema = if name.ends_with("-cna.json") {
            "cna-published"
        } else if name.ends_with("-cna-rejected.json") {
            "cna-rejected"
        } else {
            "full"
        };
        let result = validate(schema, path);
        assert!(result.ok, "cve validate -s {schema} rejects {name}:\n{}", result.text);
    }

    let record = &files.iter().find(|(name, _)| name.ends_with("-record.json")).unwrap().1;
    let mut bad = common::json(record);
    bad["cveMetadata"]["cveId"] = json!("CVE-26-1");
    let result = validate("full", &write_json(dir.path(), "bad-record.json", &bad));
    assert!(!result.ok && result.text.contains("failed"), "a bad cveId must fail:\n{}", result.text);

    let container = &files.iter().find(|(name, _)| name.ends_with("-cna.json")).unwrap().1;
    let mut bad = common::json(container);
    bad["descriptions"] = json!([]);
    let result = validate("cna-published", &write_json(dir.path(), "bad-cna.json", &bad));
    assert!(!result.ok, "a container without descriptions must fail:\n{}", result.text);
}

/// Informative findings (§6.3) that our documents raise on purpose, with the reason: an
/// advisory without a CVE ID or a CWE says so truthfully; a version range is a
/// `product_version_range` (a `vers:` range, which is what the range means), so it has no
/// `product_version` ancestor (6.3.9), and neither has a product affected as a whole.
const EXPECTED_INFOS: &[(&str, &str)] = &[
    ("informativeTest_6_3_3", "missing CVE"),
    ("informativeTest_6_3_4", "missing cwe"),
    ("informativeTest_6_3_9", "missing ancestor with category product_version"),
    ("informativeTest_6_3_10", "usage of product_version_range category"),
];

#[test]
fn csaf_outputs_pass_the_secvisogram_validator() {
    let Some((node, script)) = csaf_validator() else { return };
    // Loading the library takes seconds: one run for the good files, one for the bad ones.
    let validate = |files: &[&PathBuf]| {
        let mut args = vec![script.as_os_str()];
        args.extend(files.iter().map(|f| f.as_os_str()));
        run(&node, &args)
    };
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path(), "csaf/");
    assert_eq!(files.len(), 6, "{files:?}");
    let result = validate(&files.iter().map(|(_, path)| path).collect::<Vec<_>>());
    assert!(result.ok, "csaf-validator-lib rejects our CSAF:\n{}", result.text);
    for (_, path) in &files {
        assert!(result.text.contains(&format!("{}: valid (", path.display())), "{}", result.text);
    }
    // The optional tests (6.2) warn about nothing; the informative tests (6.3) report only
    // what is expected, and only where it is true.
    // One exception, by necessity: CSAF 2.0 has no slot for a CVSS 4.0 score, so the advisory
    // scored with CVSS 4.0 only (EMB-2026-0003) has no score (6.2.3); its vector is in a note.
    // Inventing a 3.1 vector would be false.
    let cvss4_only = &files.iter().find(|(name, _)| name.contains("emb-2026-0003")).unwrap().1;
    let expected_warning = format!("{}: optionalTest_6_2_3 warning", cvss4_only.display());
    for line in result.text.lines() {
        if line.starts_with(&expected_warning) && line.ends_with("missing score") {
            continue;
        }
        assert!(!line.contains(" warning "), "an optional test warns:\n{line}\n\n{}", result.text);
        if line.contains(" info ") {
            assert!(
                EXPECTED_INFOS.iter().any(|(test, message)| line.contains(test) && line.ends_with(message)),
                "an unexpected informative finding:\n{line}"
            );
        }
    }
    let no_cve = &files.iter().find(|(name, _)| name.contains("emb-2026-0002")).unwrap().1;
    assert!(result.text.contains(&format!("{}: informativeTest_6_3_3 info", no_cve.display())), "{}", result.text);
    let with_cve = &files.iter().find(|(name, _)| name.contains("emb-2026-0001")).unwrap().1;
    assert!(!result.text.contains(&format!("{}: informativeTest_6_3_3", with_cve.display())), "{}", result.text);

    // The optional tests really run: a document with its keys out of order (6.2.13), without
    // its canonical URL (6.2.11), a product without identification helper (6.2.16) and a
    // range that is not `vers` (6.2.18) is warned about on each count.
    let mut careless = common::json(&files[0].1);
    careless["document"].as_object_mut().unwrap().remove("references");
    let branch = &mut careless["product_tree"]["branches"][0]["branches"][0]["branches"][0];
    branch["name"] = json!(">= 0.3.0, < 0.3.7");
    branch["product"].as_object_mut().unwrap().remove("product_identification_helper");
    let tracking = careless["document"]["tracking"].as_object_mut().unwrap();
    let id = tracking.remove("id").unwrap();
    tracking.insert("id".into(), id);
    careless["vulnerabilities"][0].as_object_mut().unwrap().remove("remediations");
    let careless_path = write_json(dir.path(), "careless.json", &careless);
    let careless_result = validate(&[&careless_path]);
    for test in [
        "optionalTest_6_2_2",
        "optionalTest_6_2_11",
        "optionalTest_6_2_13",
        "optionalTest_6_2_16",
        "optionalTest_6_2_18",
    ] {
        assert!(
            careless_result.text.contains(&format!("{}: {test} warning", careless_path.display())),
            "{test} must warn:\n{}",
            careless_result.text
        );
    }
    // Our implementation of these optional tests (the advisory check's warnings) finds what
    // the validator finds, test by test and place by place, on our documents and on this one.
    let ours = |path: &Path| -> std::collections::BTreeSet<(String, String)> {
        embargo_advisory::csaf::optional::run_all(&common::json(path))
            .into_iter()
            .map(|w| (w.test.to_owned(), w.path))
            .collect()
    };
    let theirs = |text: &str, path: &Path| -> std::collections::BTreeSet<(String, String)> {
        let prefix = format!("{}: optionalTest_", path.display());
        text.lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (test, rest) = rest.split_once(" warning ")?;
                let test = test.replace('_', ".");
                let place = rest.split(": ").next()?.to_owned();
                embargo_advisory::csaf::optional::IMPLEMENTED.contains(&test.as_str()).then_some((test, place))
            })
            .collect()
    };
    for (_, path) in &files {
        assert_eq!(ours(path), theirs(&result.text, path), "{}", path.display());
    }
    assert_eq!(ours(&careless_path), theirs(&careless_result.text, &careless_path));

    // The strict schema: a document without its tracking.
    let mut bad = common::json(&files[0].1);
    bad["document"].as_object_mut().unwrap().remove("tracking");
    let no_tracking = write_json(dir.path(), "no-tracking.json", &bad);
    // A mandatory test beyond the schema: 6.1.1, a product ID used but never defined.
    let mut bad = common::json(&files[0].1);
    bad["vulnerabilities"][0]["product_status"]["known_affected"].as_array_mut().unwrap().push(json!("P-UNDEFINED"));
    let undefined_product = write_json(dir.path(), "undefined-product.json", &bad);
    let result = validate(&[&no_tracking, &undefined_product]);
    assert!(!result.ok, "{}", result.text);
    for (path, finding) in [(&no_tracking, "csaf_2_0_strict error"), (&undefined_product, "mandatoryTest_6_1_1 error")]
    {
        let path = path.display();
        assert!(
            result.text.contains(&format!("{path}: INVALID")) && result.text.contains(&format!("{path}: {finding}")),
            "{path} must fail with {finding}:\n{}",
            result.text
        );
    }
}

/// Every product (name, version branch or `None`, purl) of a CSAF product tree.
fn csaf_purls(csaf: &Value) -> Vec<(String, Option<String>, String)> {
    fn walk(branches: &Value, version: Option<String>, out: &mut Vec<(String, Option<String>, String)>) {
        for branch in branches.as_array().into_iter().flatten() {
            let version = if branch["category"] == "product_version" {
                branch["name"].as_str().map(str::to_owned)
            } else {
                version.clone()
            };
            if let Some(purl) = branch["product"]["product_identification_helper"]["purl"].as_str() {
                let name = branch["product"]["name"].as_str().unwrap().to_owned();
                out.push((name, version.clone(), purl.to_owned()));
            }
            walk(&branch["branches"], version, out);
        }
    }
    let mut out = Vec::new();
    walk(&csaf["product_tree"]["branches"], None, &mut out);
    for product in csaf["product_tree"]["full_product_names"].as_array().into_iter().flatten() {
        let purl = product["product_identification_helper"]["purl"].as_str().unwrap().to_owned();
        out.push((product["name"].as_str().unwrap().to_owned(), None, purl));
    }
    out
}

/// The package URLs we publish, read back by an independent parser (packageurl-python, the
/// purl specification's reference implementation in Python): each parses, and a versioned
/// product's purl carries exactly its version (issue 19 item 3: a version appended after the
/// qualifiers was read as part of a qualifier, and no version at all).
#[test]
fn package_urls_parse_with_packageurl_python() {
    let Some(python) = venv_tool("python3", "python3 with packageurl-python") else { return };
    let probe = run(&python, &["-c".as_ref(), "import packageurl".as_ref()]);
    let found = if probe.ok {
        Ok(())
    } else {
        Err(format!("packageurl-python (PyPI) not installed in .ci/tools/venv (run .ci/run): {}", probe.text))
    };
    if require("packageurl-python", found).is_none() {
        return;
    }
    let publisher = common::publisher();
    let mut products = Vec::new();
    for record in common::realistic() {
        products.extend(csaf_purls(&embargo_advisory::csaf::to_csaf(&record, &publisher)));
    }
    assert_eq!(products.len(), 20, "{products:?}");
    let dir = tempfile::tempdir().unwrap();
    let input = write_json(dir.path(), "purls.json", &json!(products.iter().map(|p| &p.2).collect::<Vec<_>>()));
    let script = "import json, sys\n\
                  from packageurl import PackageURL\n\
                  out = []\n\
                  for text in json.load(open(sys.argv[1])):\n\
                  \x20   p = PackageURL.from_string(text)\n\
                  \x20   out.append({'type': p.type, 'namespace': p.namespace, 'name': p.name, 'version': p.version, 'qualifiers': p.qualifiers})\n\
                  print(json.dumps(out))\n";
    let result = run(&python, &["-c".as_ref(), script.as_ref(), input.as_os_str()]);
    assert!(result.ok, "packageurl-python refuses one of our purls:\n{}", result.text);
    let parsed: Vec<Value> = serde_json::from_str(result.text.trim()).unwrap();
    assert_eq!(parsed.len(), products.len());
    let mut qualified = 0;
    for ((name, version, purl), components) in products.iter().zip(&parsed) {
        let commit_fix = components["qualifiers"]["vcs_url"].as_str().is_some_and(|v| v.contains('@'));
        let expected = if commit_fix { None } else { version.clone() };
        assert_eq!(components["version"].as_str().map(str::to_owned), expected, "{name}: {purl} read as {components}");
        if components["qualifiers"]["arch"] == "source" {
            qualified += 1;
        }
        assert!(!components["qualifiers"].to_string().contains('@') || commit_fix, "{purl}: {components}");
    }
    // The Debian package of `git_and_qualified_purls`: its range, its listed and its fixed
    // version keep the `arch` qualifier next to the version.
    assert_eq!(qualified, 3, "{parsed:?}");
    let fixed = parsed.iter().find(|c| c["version"] == "1.2-3+deb12u1").expect("the fixed Debian version");
    assert_eq!((fixed["type"].as_str(), fixed["namespace"].as_str()), (Some("deb"), Some("debian")));
}
