#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Drafts from real conformance statement documents, scored against reference statements
//! made from the same documents independently of the drafter (`tests/gold/`).

use std::path::{Path, PathBuf};

use dicomtap_analyzer::statement::{self, Role};
use dicomtap_draft::{draft, read_file, score};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

fn gold(name: &str) -> (statement::Statement, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/gold")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("gold file");
    let st = statement::parse(&text, &path).expect("gold loads");
    let raw: toml::Table = toml::from_str(&text).expect("gold is TOML");
    let unscored = raw
        .get("x")
        .and_then(|x| x.get("ts_not_stated"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (st, unscored)
}

/// Drafts `doc`, scores it against `gold`, and checks the thresholds.
fn check(doc: &str, gold_name: &str) -> dicomtap_draft::Drafted {
    let d = read_file(&fixture(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let drafted = draft(&d).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let (g, unscored) = gold(gold_name);
    let s = score::score(&drafted.statement, &g, &unscored);
    let msg = format!(
        "{doc}: caps recall {:.3} precision {:.3}, ts recall {:.3} precision {:.3}, private {:.2}\nmissed: {:?}\nextra: {:?}\n{}",
        s.cap_recall(),
        s.cap_precision(),
        s.ts_recall(),
        s.ts_precision(),
        s.private_kept(),
        s.missed,
        s.extra,
        drafted.report.to_text()
    );
    assert!(s.cap_recall() >= 0.95, "{msg}");
    assert!(s.cap_precision() >= 0.98, "{msg}");
    assert!(s.ts_recall() >= 0.9, "{msg}");
    assert!(s.ts_precision() >= 0.9, "{msg}");
    assert!(s.private_kept() >= 1.0, "{msg}");
    drafted
}

#[test]
fn orthanc_statement_2021() {
    let d = check("orthanc/DicomConformanceStatement-2021.txt", "orthanc-2021");
    let ae = &d.statement.ae[0];
    // "All the SOP Classes that are listed in the "Store SCP Conformance" section are
    // available as an SCU": the storage classes again as SCU, with the sentence as evidence.
    assert!(
        ae.capability("1.2.840.10008.5.1.4.1.1.2", Role::Scu)
            .is_some()
    );
    let key = format!("ae.{}.capability.CTImageStorage.SCU", ae.title);
    let ev = d
        .evidence
        .0
        .get(&key)
        .expect("evidence for the copied capability");
    assert!(ev.text.contains("Store SCP Conformance"), "{ev:?}");
    // The SCP prefers Explicit VR Little Endian, as the document says.
    let ct = ae
        .capability("1.2.840.10008.5.1.4.1.1.2", Role::Scp)
        .expect("CT SCP");
    assert_eq!(
        ct.preferred_transfer_syntaxes
            .first()
            .map(|t| t.uid.as_str()),
        Some("1.2.840.10008.1.2.1")
    );
}

#[test]
fn orthanc_statement_2016() {
    check("orthanc/DicomConformanceStatement-2016.txt", "orthanc-2016");
}

#[test]
fn dcmtk_storescp_man_page() {
    let d = check("dcmtk/storescp.man", "dcmtk-storescp");
    // The list offered only with --accept-all is not the default claim.
    let ae = &d.statement.ae[0];
    let ct = ae
        .capability("1.2.840.10008.5.1.4.1.1.2", Role::Scp)
        .expect("CT SCP");
    assert!(!ct.has_transfer_syntax("1.2.840.10008.1.2.4.50"), "{ct:?}");
    assert_eq!(
        ae.title, "STORESCP",
        "the AE title from the option's default"
    );
}

#[test]
fn dcmtk_dcmqrscp_man_page() {
    let d = check("dcmtk/dcmqrscp.man", "dcmtk-dcmqrscp");
    // DCMTK's private shutdown SOP class is kept as a private UID.
    assert!(
        d.statement
            .private_uids
            .contains_key("1.2.276.0.7230010.3.4.1915765545.18030.917282194.0")
    );
}

#[test]
fn pynetdicom_storescp_docs_and_their_mistakes() {
    let d = check("pynetdicom/storescp.rst", "pynetdicom-storescp");
    // The document prints 1.2.840.10008.5.1.4.1.1.1.1.1.1 for "Digital X-Ray Image
    // Storage - For Processing": reported, and drafted from the name.
    let r = &d.report;
    assert!(
        r.inconsistencies
            .iter()
            .any(|n| n.text.contains("1.2.840.10008.5.1.4.1.1.1.1.1.1")),
        "{}",
        r.to_text()
    );
    // Every claim has evidence pointing at a line of the document that says it.
    let text = std::fs::read_to_string(fixture("pynetdicom/storescp.rst")).expect("fixture");
    let lines: Vec<&str> = text.lines().collect();
    let ev = d
        .evidence
        .0
        .get("ae.STORESCP.capability.CTImageStorage.SCP")
        .expect("CT evidence");
    let line = lines
        .get(ev.at.line as usize - 1)
        .expect("the evidence line exists");
    assert!(
        line.contains("1.2.840.10008.5.1.4.1.1.2 ") || line.contains("CT Image Storage"),
        "line {}: {line}",
        ev.at.line
    );
}

#[test]
fn pynetdicom_qrscp_docs() {
    check("pynetdicom/qrscp.rst", "pynetdicom-qrscp");
}
