#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap statement check|import|diff|infer` end to end.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dicomtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dicomtap"))
        .args(args)
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_reports_file_line_key_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("analyzer/tests/fixtures/statements/acme_ct9000.toml");
    let out = dicomtap(&["statement", "check", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: device ACME_CT9000, 1 AE: CT9000"));

    let bad = dir.path().join("bad.toml");
    let src = std::fs::read_to_string(&example).unwrap().replace(
        "\"JPEG2000Lossless\", \"ExplicitVRLittleEndian\"",
        "\"JPEG2000Lossles\", \"ExplicitVRLittleEndian\"",
    );
    std::fs::write(&bad, src).unwrap();
    let out = dicomtap(&["statement", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:35: ae[0].capability[0].transfer_syntaxes[0]: unknown keyword \"JPEG2000Lossles\"",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn bundled_statements_check() {
    let out = dicomtap(&[
        "statement",
        "check",
        root().join("statements").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4);
}

#[test]
fn import_writes_a_valid_statement() {
    let dir = tempfile::tempdir().unwrap();
    let json = root().join("analyzer/tests/fixtures/dcm4che/modality.json");
    let out_file = dir.path().join("ct.toml");
    let out = dicomtap(&[
        "statement",
        "import",
        json.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("note:"));
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(written.starts_with("# Imported by dicomtap"), "{written}");
    let out = dicomtap(&["statement", "check", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn diff_matrix_json_html_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("diff.html");
    let s = root().join("statements");
    let a = s.join("dcmtk-dcmqrscp.toml");
    let b = s.join("dcmtk-storescp.toml");
    let out = dicomtap(&[
        "statement",
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--fail-on-incompatible",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("DCMTK_DCMQRSCP/DCMQRSCP") && t.contains("ok 121/121"),
        "{t}"
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<table>"));
    // orthanc proposes Q/R classes storescp does not take: a predicted failure
    let o = s.join("orthanc-1.10.toml");
    let out = dicomtap(&[
        "statement",
        "diff",
        o.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
        "--fail-on-incompatible",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"][0]["verdict"], "partial");
}

#[test]
fn infer_from_a_public_capture() {
    let cap = std::env::var_os("DICOMTAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"))
        .join("captures/public/tapirx-dicom_arq_2_get_testclient.pcap");
    if !cap.exists() {
        eprintln!("skipped: {} not present", cap.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("inferred.toml");
    let out = dicomtap(&[
        "statement",
        "infer",
        cap.to_str().unwrap(),
        "--ae",
        "testclient",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = dicomtap_analyzer::statement::load(&out_file).unwrap();
    let ae = st.ae("testclient").unwrap();
    assert!(ae.initiator && !ae.acceptor);
    assert_eq!(
        ae.implementation_version_name.as_deref(),
        Some("GODICOM_1_1")
    );
    assert_eq!(ae.capability.len(), 123);
    // not in the capture: an error, exit 2
    let out = dicomtap(&[
        "statement",
        "infer",
        cap.to_str().unwrap(),
        "--ae",
        "NOBODY",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
