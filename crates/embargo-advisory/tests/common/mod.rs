//! Shared by the integration tests: where the third-party vectors are, and a publisher.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use embargo_advisory::{Publisher, PublisherCategory};

/// `../shared/vectors/<sub>` seen from the workspace root, or `None` (with a printed reason)
/// when absent; under `EMBARGO_TEST_STRICT=1` a missing corpus is a failure.
pub fn vectors(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors")).join(sub);
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("EMBARGO_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("the test vectors are required (EMBARGO_TEST_STRICT=1) but missing at {}", dir.display());
    } else {
        println!("skipped: no test vectors at {}", dir.display());
        None
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn publisher() -> Publisher {
    Publisher {
        name: "Example Security Team".into(),
        namespace: "https://security.example.org".into(),
        contact: Some("security@example.org".into()),
        category: PublisherCategory::Vendor,
        cve_org_id: Some("b3476cb9-2e3d-41a6-98d0-0f47421a65b6".into()),
        cve_short_name: Some("example".into()),
    }
}
