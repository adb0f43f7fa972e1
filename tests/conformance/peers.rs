#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Conformance rules against real peers: DCMTK storescu/storescp and pynetdicom scripts
//! produce each violation on loopback, dumpcap captures it, and `dicomtap analyze
//! --statements` must report it (and nothing when the traffic conforms).
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

use crate::support;

use std::time::Duration;

use support::conformance::*;
use support::*;

const STORESCU_STATEMENT: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "DCMTK_STORESCU"
document = "storescu(1) man page, DCMTK 3.6"
[[ae]]
title = "STORESCU"
initiator = true
character_sets = ["ISO_IR 100", "ISO_IR 192"]
private_creators = ["GEMS_IDEN_01", "GEMS_PATI_01", "GEMS_ACQU_01", "GEMS_RELA_01", "GEMS_STDY_01", "GEMS_SERS_01", "GEMS_IMAG_01", "GEMS_IMPS_01", "GEMS_PARM_01"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCU"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian"]
[[ae.capability]]
sop_class = "MRImageStorage"
role = "SCU"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian"]
[[ae.capability]]
sop_class = "SecondaryCaptureImageStorage"
role = "SCU"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian"]
"#;

fn storescp_statement(sop_classes: &[&str], transfer_syntaxes: &str, max_pdu: u32) -> String {
    let mut s = format!(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"DCMTK_STORESCP\"\n[[ae]]\ntitle = \"STORESCP\"\nacceptor = true\nmax_pdu_receive = {max_pdu}\n"
    );
    for c in sop_classes {
        s.push_str(&format!(
            "[[ae.capability]]\nsop_class = \"{c}\"\nrole = \"SCP\"\ntransfer_syntaxes = {transfer_syntaxes}\n"
        ));
    }
    s
}

#[test]
fn storescu_sends_a_sop_class_and_transfer_syntax_the_statement_does_not_claim() {
    let Some((scene, _, data)) =
        conformance_scene("unclaimed", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    // storescp claims CT in Explicit VR Little Endian only; it is sent MR, and CT with -xi
    // (Implicit VR Little Endian only), which storescp accepts by default.
    scene.statement(
        "storescp.toml",
        &storescp_statement(&["CTImageStorage"], "[\"ExplicitVRLittleEndian\"]", 16384),
    );
    scene.statement("storescu.toml", STORESCU_STATEMENT);
    let (capture, _) = scene.with_storescp("unclaimed", &[], |port| {
        scene.storescu(
            port,
            "STORESCU",
            &["-xi"],
            &[
                data.test_files.join("CT_small.dcm"),
                data.test_files.join("MR_small.dcm"),
            ],
        );
    });
    let (findings, code, junit) = scene.analyze(&capture);
    let mr = with(&findings, "sop-class-not-claimed", "DCMTK_STORESCP");
    assert_eq!(mr.len(), 1, "{}", dump(&findings));
    assert!(
        mr[0]["observed"]
            .as_str()
            .unwrap()
            .contains("MRImageStorage as SCP"),
        "{}",
        dump(&mr)
    );
    assert_eq!(mr[0]["evidence"]["from"], "acceptor");
    let ts = with(&findings, "transfer-syntax-not-claimed", "DCMTK_STORESCP");
    assert_eq!(ts.len(), 1, "{}", dump(&findings));
    assert!(
        ts[0]["observed"]
            .as_str()
            .unwrap()
            .contains("chose ImplicitVRLittleEndian for CTImageStorage"),
        "{}",
        dump(&ts)
    );
    // The sender conforms to its own statement.
    assert!(
        with(&findings, "sop-class-not-claimed", "DCMTK_STORESCU").is_empty(),
        "{}",
        dump(&findings)
    );
    assert_eq!(code, 1, "warnings with --fail-on warning exit 1");
    assert!(junit.contains("name=\"sop-class-not-claimed\""), "{junit}");
    assert!(
        junit.contains("<failure type=\"transfer-syntax-not-claimed\""),
        "{junit}"
    );
}

#[test]
fn conforming_storescu_and_storescp_raise_nothing() {
    let Some((scene, _, data)) =
        conformance_scene("conforming", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    scene.statement(
        "storescp.toml",
        &storescp_statement(
            &["CTImageStorage", "MRImageStorage"],
            "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]",
            16384,
        ),
    );
    scene.statement("storescu.toml", STORESCU_STATEMENT);
    let (capture, _) = scene.with_storescp("conforming", &[], |port| {
        scene.storescu(
            port,
            "STORESCU",
            &["-xe"],
            &[
                data.test_files.join("CT_small.dcm"),
                data.test_files.join("MR_small.dcm"),
            ],
        );
        scene.storescu(
            port,
            "STORESCU",
            &[],
            &[data.test_files.join("MR_small.dcm")],
        );
    });
    let (findings, code, junit) = scene.analyze(&capture);
    assert!(
        findings.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&findings)
    );
    assert_eq!(code, 0);
    assert!(junit.contains("tests=\"64\" failures=\"0\""), "{junit}");
}

#[test]
fn storescp_advertises_a_max_pdu_other_than_claimed() {
    let Some((scene, _, data)) = conformance_scene("maxpdu", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    scene.statement(
        "storescp.toml",
        &storescp_statement(
            &["MRImageStorage"],
            "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]",
            16384,
        ),
    );
    let (capture, _) = scene.with_storescp("maxpdu", &["--max-pdu", "8192"], |port| {
        scene.storescu(
            port,
            "STORESCU",
            &[],
            &[data.test_files.join("MR_small.dcm")],
        );
    });
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "max-pdu-advertised-differs", "DCMTK_STORESCP");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "max_pdu_receive = 16384");
    assert_eq!(f[0]["observed"], "advertised Max Length 8192");
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
}

#[test]
fn text_in_a_wrong_character_set_is_reported_for_the_sender() {
    let Some((scene, py, data)) =
        conformance_scene("charset", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    // chrFren.dcm holds Latin-1 names ("Buc^Jérôme"); declared as UTF-8 they are invalid.
    let wrong = scene.path().join("chrFren-utf8.dcm");
    let src = data.charset_files.join("chrFren.dcm");
    run_ok(
        "rewrite",
        scene.python(
            &py,
            &[
                "rewrite".into(),
                src.display().to_string(),
                wrong.display().to_string(),
                "ISO_IR 192".into(),
            ],
        ),
        scene.path(),
        Duration::from_secs(30),
    );
    scene.statement("storescu.toml", STORESCU_STATEMENT);
    let (capture, _) = scene.with_storescp("charset", &[], |port| {
        scene.storescu(port, "STORESCU", &[], &[wrong]);
    });
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "text-invalid-in-character-set", "DCMTK_STORESCU");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    let observed = f[0]["observed"].as_str().unwrap();
    assert!(
        observed.contains("ISO_IR 192") && observed.contains("(0010,0010)"),
        "{observed}"
    );
    assert_eq!(f[0]["severity"], "error");
    assert!(
        !observed.contains("Buc"),
        "the value itself is never reported"
    );
    // ISO_IR 192 is claimed: only the invalid text is a finding.
    assert!(
        with(&findings, "character-set-not-claimed", "DCMTK_STORESCU").is_empty(),
        "{}",
        dump(&findings)
    );
}

#[test]
fn implementation_version_changes_between_associations() {
    let Some((scene, py, data)) =
        conformance_scene("version", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    // The modality's statement states no implementation identifiers: the first seen is the
    // baseline, a different one later is drift (a "software update": DCMTK, then pynetdicom).
    scene.statement(
        "modality.toml",
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"MODALITY_X\"\n[[ae]]\ntitle = \"MODALITY\"\ninitiator = true\n",
    );
    let (capture, _) = scene.with_storescp("version", &[], |port| {
        let file = data.test_files.join("MR_small.dcm");
        scene.storescu(port, "MODALITY", &[], std::slice::from_ref(&file));
        run_ok(
            "pynetdicom-store",
            scene.python(
                &py,
                &[
                    "store".into(),
                    port.to_string(),
                    "STORESCP".into(),
                    "MODALITY".into(),
                    file.display().to_string(),
                ],
            ),
            scene.path(),
            Duration::from_secs(30),
        );
    });
    let (findings, _, _) = scene.analyze(&capture);
    let v = with(&findings, "implementation-version-changed", "MODALITY_X");
    assert_eq!(v.len(), 1, "{}", dump(&findings));
    assert!(
        v[0]["claim"].as_str().unwrap().contains("OFFIS_DCMTK"),
        "{}",
        dump(&v)
    );
    // The second association (pynetdicom) drifted from the first (DCMTK).
    assert!(
        v[0]["observed"].as_str().unwrap().contains("PYNETDICOM"),
        "{}",
        dump(&v)
    );
    assert_eq!(
        with(&findings, "implementation-uid-changed", "MODALITY_X").len(),
        1,
        "{}",
        dump(&findings)
    );
}

const ARCHIVE_STATEMENT: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "PY_ARCHIVE"
[[ae]]
title = "ARCHIVE"
acceptor = true
initiator = true
statuses = ["0000"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "DeflatedExplicitVRLittleEndian", "ExplicitVRBigEndian"]
[[ae.capability]]
sop_class = "MRImageStorage"
role = "SCP"
transfer_syntaxes = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "DeflatedExplicitVRLittleEndian", "ExplicitVRBigEndian"]
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian", "DeflatedExplicitVRLittleEndian", "ExplicitVRBigEndian"]
role_selection = { scu = false, scp = true }
storage_commitment = { report_on = ["new_association"], max_wait_s = 60 }
"#;

#[test]
fn success_then_commitment_failure_is_a_silent_success() {
    let Some((scene, py, data)) = conformance_scene("silent", &["dumpcap"]) else {
        return;
    };
    scene.statement("archive.toml", ARCHIVE_STATEMENT);
    let (port, report_port) = (free_port(), free_port());
    let cap = Capture::start("silent", &[port, report_port], scene.path());
    let mut archive = Proc::spawn(
        "archive",
        scene.python(
            &py,
            &[
                "archive".into(),
                port.to_string(),
                "0000".into(),
                report_port.to_string(),
            ],
        ),
        scene.path(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20), Some(&mut archive)),
        "{}",
        archive.output()
    );
    let file = data.test_files.join("CT_small.dcm");
    let out = run(
        "modality",
        scene.python(
            &py,
            &[
                "modality".into(),
                port.to_string(),
                report_port.to_string(),
                file.display().to_string(),
            ],
        ),
        scene.path(),
        Duration::from_secs(40),
    );
    assert!(
        out.status.success() && out.stdout.contains("report received"),
        "{}\n{}",
        out.text(),
        archive.output()
    );
    drop(archive);
    let (findings, code, junit) = scene.analyze(&cap.finish());
    let f = with(&findings, "silent-success", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    let observed = f[0]["observed"].as_str().unwrap();
    assert!(
        observed.contains("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"),
        "{observed}"
    );
    // The report came on a new association, after the one of the C-STORE (association
    // numbers also count dumpcap-visible port probes, so only their order is checked).
    let related = f[0]["evidence"]["related"].as_array().unwrap();
    assert_eq!(related.len(), 2, "{}", f[0]);
    let store = related
        .iter()
        .find(|r| r["what"].as_str().unwrap().starts_with("C-STORE-RSP"))
        .unwrap();
    assert!(
        f[0]["evidence"]["association"].as_u64() > store["association"].as_u64(),
        "{}",
        f[0]
    );
    assert!(
        observed.contains(&format!(
            "on association #{}",
            f[0]["evidence"]["association"]
        )),
        "{observed}"
    );
    assert_eq!(f[0]["severity"], "error");
    assert_eq!(
        findings.len(),
        1,
        "nothing else differs from the statement:\n{}",
        dump(&findings)
    );
    assert_eq!(code, 1);
    assert!(
        junit.contains("<failure type=\"silent-success\""),
        "{junit}"
    );
}

#[test]
fn a_status_the_statement_does_not_list_is_reported() {
    let Some((scene, py, data)) = conformance_scene("status", &["storescu", "dumpcap"]) else {
        return;
    };
    scene.statement("archive.toml", ARCHIVE_STATEMENT);
    let port = free_port();
    let cap = Capture::start("status", &[port], scene.path());
    let mut archive = Proc::spawn(
        "archive",
        scene.python(
            &py,
            &[
                "archive".into(),
                port.to_string(),
                "A700".into(),
                "0".into(),
            ],
        ),
        scene.path(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20), Some(&mut archive)),
        "{}",
        archive.output()
    );
    let args = ["-R", "-aet", "STORESCU", "-aec", "ARCHIVE", "127.0.0.1"];
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.push(port.to_string());
    all.push(data.test_files.join("MR_small.dcm").display().to_string());
    // storescu exits non-zero when a store fails; the traffic is what matters.
    let _ = run(
        "storescu",
        command("storescu", &all),
        scene.path(),
        Duration::from_secs(30),
    );
    drop(archive);
    let (findings, _, _) = scene.analyze(&cap.finish());
    let f = with(&findings, "status-not-claimed", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert!(
        f[0]["observed"]
            .as_str()
            .unwrap()
            .starts_with("returned A700"),
        "{}",
        dump(&f)
    );
    assert_eq!(f[0]["claim"], "statuses for MRImageStorage = [0000]");
    assert_eq!(f[0]["evidence"]["message_id"], 1);
}
