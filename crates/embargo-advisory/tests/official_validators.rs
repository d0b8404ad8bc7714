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
    assert_eq!(files.len(), 4, "{files:?}");
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
    // Three of the four realistic advisories have a CVE ID: a container and a record each.
    assert_eq!(files.len(), 6, "{files:?}");
    for (name, path) in &files {
        // What we would POST to CVE Services, and the full record we export.
        let schema = if name.ends_with("-cna.json") { "cna-published" } else { "full" };
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
    assert_eq!(files.len(), 4, "{files:?}");
    let result = validate(&files.iter().map(|(_, path)| path).collect::<Vec<_>>());
    assert!(result.ok, "csaf-validator-lib rejects our CSAF:\n{}", result.text);
    for (_, path) in &files {
        assert!(result.text.contains(&format!("{}: valid (", path.display())), "{}", result.text);
    }

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
