//! Every finding code the engine can emit is documented.

use dicomtap_wire::FindingCode;

#[test]
fn every_finding_code_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/findings.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let missing: Vec<&str> = FindingCode::ALL
        .iter()
        .map(|c| c.id())
        .filter(|id| !doc.contains(&format!("`{id}`")))
        .collect();
    assert!(missing.is_empty(), "docs/findings.md lacks {missing:?}");
}
