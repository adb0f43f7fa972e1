#![allow(clippy::expect_used, clippy::unwrap_used)]
//! docs/rules/ is generated from the rule catalogue: one page per rule and an index.
//! `DICOMTAP_BLESS=1 cargo test -p dicomtap-analyzer --test conformance_docs` rewrites
//! the pages; otherwise this test fails when they are out of date.

use std::path::PathBuf;

use dicomtap_analyzer::conformance::rules::{CATALOGUE, doc_index, doc_page};

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/rules")
}

#[test]
fn rule_pages_match_the_catalogue() {
    let dir = docs_dir();
    let bless = std::env::var("DICOMTAP_BLESS").is_ok_and(|v| v == "1");
    let mut expected: Vec<(PathBuf, String)> = CATALOGUE
        .iter()
        .map(|r| (dir.join(format!("{}.md", r.id_str())), doc_page(r)))
        .collect();
    expected.push((dir.join("README.md"), doc_index()));
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
        for (path, text) in &expected {
            std::fs::write(path, text).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (path, text) in &expected {
        if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run with DICOMTAP_BLESS=1 to regenerate): {stale:?}"
    );
    // No page for a rule that no longer exists.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let known = name == "README.md"
            || CATALOGUE
                .iter()
                .any(|r| format!("{}.md", r.id_str()) == name);
        assert!(
            known,
            "docs/rules/{name} documents no rule of the catalogue"
        );
    }
}
