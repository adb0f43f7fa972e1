#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Statement diff: negotiation predictions and differences; the bundled statements.

use std::path::{Path, PathBuf};

use dicomtap_analyzer::statement::{self, Statement, diff};

fn st(text: &str) -> Statement {
    statement::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

const MODALITY: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "MOD"
[[ae]]
title = "MOD"
initiator = true
acceptor = true
max_pdu_send = 65536
max_pdu_receive = 16384
character_sets = ["ISO_IR 192"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian", "JPEG2000Lossless"]
[[ae.capability]]
sop_class = "MRImageStorage"
role = "SCU"
transfer_syntaxes = ["JPEG2000Lossless"]
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
storage_commitment = { report_on = ["same_association"], max_wait_s = 60 }
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
role_selection = { scu = false, scp = true }
[[ae.capability]]
sop_class = "StudyRootQueryRetrieveInformationModelGet"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#;

const PACS: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "PACS"
[[ae]]
title = "PACS"
initiator = true
acceptor = true
max_pdu_receive = 32768
character_sets = ["ISO_IR 100"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian", "JPEG2000Lossless"]
preferred_transfer_syntaxes = ["JPEG2000Lossless"]
[[ae.capability]]
sop_class = "MRImageStorage"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian"]
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
storage_commitment = { report_on = ["new_association"], max_wait_s = 3600 }
[[ae.capability]]
sop_class = "StudyRootQueryRetrieveInformationModelGet"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#;

#[test]
fn predicts_contexts_and_differences() {
    let r = diff::diff(&[st(MODALITY), st(PACS)]);
    let p = r
        .pairs
        .iter()
        .find(|p| p.initiator.ae == "MOD" && p.acceptor.ae == "PACS")
        .unwrap();
    let ctx = |kw: &str, role: &str| {
        p.contexts
            .iter()
            .find(|c| c.sop_class.label() == kw && c.initiator_role.as_str() == role)
            .unwrap()
    };
    // preference of the acceptor wins over the proposal order
    assert_eq!(
        ctx("CTImageStorage", "SCU")
            .transfer_syntax
            .as_ref()
            .unwrap()
            .label(),
        "JPEG2000Lossless"
    );
    // no common transfer syntax
    let mr = ctx("MRImageStorage", "SCU");
    assert!(
        !mr.accepted && mr.rejection.as_ref().unwrap().contains("result 4"),
        "{mr:?}"
    );
    // C-GET storage sub-operations: the PACS does not state role selection
    let get = ctx("CTImageStorage", "SCP");
    assert!(
        get.issues
            .iter()
            .any(|i| i.topic == "role-selection" && i.severity == diff::IssueSeverity::Failure),
        "{get:?}"
    );
    // storage commitment: same association only vs new association only
    let sc = ctx("StorageCommitmentPushModel", "SCU");
    assert!(
        sc.issues
            .iter()
            .any(|i| i.topic == "storage-commitment" && i.message.contains("never arrive")),
        "{sc:?}"
    );
    assert!(sc.issues.iter().any(|i| i.message.contains("3600")));
    // PDU: MOD sends 65536 but PACS takes 32768
    assert!(
        p.association
            .iter()
            .any(|i| i.topic == "max-pdu" && i.message.contains("32768")),
        "{:?}",
        p.association
    );
    assert_eq!(p.pdu_to_acceptor, 32768);
    assert!(
        p.association
            .iter()
            .any(|i| i.topic == "character-sets" && i.message.contains("ISO_IR 192"))
    );
    assert_eq!(p.verdict, diff::Verdict::Partial);
    assert!(r.has_failure());
    // the other direction: the PACS proposes CT to the modality, whose SCP capability
    // is only for C-GET role reversal but still accepts the default role
    let back = r.pairs.iter().find(|p| p.initiator.ae == "PACS").unwrap();
    assert_eq!(back.verdict, diff::Verdict::Compatible, "{back:?}");
    let text = diff::to_text(&r);
    assert!(
        text.contains("MOD/MOD") && text.contains("REJECTED"),
        "{text}"
    );
    let html = diff::to_html(&r, "t");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("class=\"partial\""));
}

#[test]
fn allow_list_and_tls_reject_the_association() {
    let pacs = PACS.replace("character_sets = [\"ISO_IR 100\"]", "character_sets = [\"ISO_IR 100\"]\naccept_calling_ae_titles = [\"WS1\"]\ntls = { required = true }");
    let r = diff::diff(&[st(MODALITY), st(&pacs)]);
    let p = r.pairs.iter().find(|p| p.initiator.ae == "MOD").unwrap();
    assert_eq!(p.verdict, diff::Verdict::Incompatible);
    assert!(
        p.association
            .iter()
            .any(|i| i.topic == "ae-allow-list" && i.message.contains("reason 3"))
    );
    assert!(
        p.association
            .iter()
            .any(|i| i.topic == "tls" && i.severity == diff::IssueSeverity::Failure)
    );
}

#[test]
fn same_title_shows_drift() {
    let observed = MODALITY
        .replace("name = \"MOD\"", "name = \"MOD_OBSERVED\"")
        .replace(
            "[\"JPEG2000Lossless\"]\n[[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"",
            "[\"JPEGLSLossless\"]\n[[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"",
        );
    let r = diff::diff(&[st(MODALITY), st(&observed)]);
    let d = r.drift.iter().find(|d| d.title == "MOD").unwrap();
    assert!(
        d.differences
            .iter()
            .any(|x| x.topic == "transfer-syntax" && x.message.contains("JPEGLSLossless")),
        "{d:?}"
    );
    assert!(r.has_drift());
}

#[test]
fn bundled_statements_are_valid_and_interoperate() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../statements");
    // statements/ loads as one site; the alternative of one of its AE titles diffs with it.
    let mut all = statement::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let alt = dir.join("alternatives/pynetdicom-storescp.toml");
    all.extend(statement::load_files(std::slice::from_ref(&alt)).unwrap_or_else(|e| panic!("{e}")));
    // The two storescp share their default AE title: not one site as they are.
    let storescps: Vec<Statement> = all
        .iter()
        .filter(|s| s.device.name.ends_with("_STORESCP"))
        .cloned()
        .collect();
    let err = statement::load::check_distinguishable_aes(&storescps);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].message.contains("dcmtk-storescp.toml") && err[0].file == alt,
        "{}",
        err[0]
    );
    let names: Vec<&str> = all.iter().map(|s| s.device.name.as_str()).collect();
    for n in [
        "DCMTK_STORESCP",
        "DCMTK_DCMQRSCP",
        "ORTHANC",
        "PYNETDICOM_STORESCP",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    for s in &all {
        assert!(
            s.device.document.is_some(),
            "{} documents its sources",
            s.device.name
        );
    }
    let r = diff::diff(&all);
    // dcmqrscp's C-MOVE sub-operations go to storescp: every storage class it proposes is accepted
    let p = r
        .pairs
        .iter()
        .find(|p| p.initiator.device == "DCMTK_DCMQRSCP" && p.acceptor.device == "DCMTK_STORESCP")
        .unwrap();
    assert_eq!(
        p.verdict,
        diff::Verdict::Compatible,
        "{:?}",
        p.contexts
            .iter()
            .filter(|c| !c.accepted)
            .collect::<Vec<_>>()
    );
    let ct = p
        .contexts
        .iter()
        .find(|c| c.sop_class.label() == "CTImageStorage")
        .unwrap();
    assert_eq!(
        ct.transfer_syntax.as_ref().unwrap().label(),
        "ExplicitVRLittleEndian"
    );
}
