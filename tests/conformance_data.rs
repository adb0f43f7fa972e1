#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Data and timing conformance rules against real peers: for every rule, DCMTK or
//! pynetdicom peers produce the violation on loopback, dumpcap captures it, and `dicomtap
//! analyze --statements` must report exactly that rule for the right device; the same
//! peers with conforming options, or the same capture against a statement that matches
//! what the device really does, raise nothing for the rule.
//!
//! The pynetdicom peers are in tests/conformance_support/data.py. Peers come from
//! scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::conformance::*;
use support::*;

const DATA_PY: &str = include_str!("conformance_support/data.py");

/// `python data.py ARGS...` in the scene's directory.
fn data_py(scene: &Scene, py: &Path, args: &[&str]) -> Command {
    let script = scene.path().join("data.py");
    if !script.exists() {
        std::fs::write(&script, DATA_PY).unwrap();
    }
    let mut all = vec![script.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    command(py.to_str().unwrap(), &all)
}

/// A data.py server peer, started and listening on `port`.
fn data_peer(scene: &Scene, py: &Path, name: &str, port: u16, args: &[&str]) -> Proc {
    let mut p = Proc::spawn(name, data_py(scene, py, args), scene.path());
    assert!(
        wait_for_port(port, Duration::from_secs(20), Some(&mut p)),
        "{name} did not start\n{}",
        p.output()
    );
    p
}

/// A data.py client run to completion (bounded); its standard output.
fn data_run(scene: &Scene, py: &Path, name: &str, args: &[&str]) -> String {
    run_ok(
        name,
        data_py(scene, py, args),
        scene.path(),
        Duration::from_secs(60),
    )
    .stdout
}

/// A statement of one AE with the given AE-level lines and capabilities
/// (`(sop_class, role, transfer syntaxes as a TOML array)`), plus free TOML after them.
fn statement(
    device: &str,
    title: &str,
    ae: &str,
    caps: &[(&str, &str, &str)],
    tail: &str,
) -> String {
    let mut s = format!(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"{device}\"\n[[ae]]\ntitle = \"{title}\"\n{ae}\n"
    );
    for (sop, role, ts) in caps {
        s.push_str(&format!(
            "[[ae.capability]]\nsop_class = \"{sop}\"\nrole = \"{role}\"\ntransfer_syntaxes = {ts}\n"
        ));
    }
    s.push_str(tail);
    s
}

const ALL_TS: &str =
    "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]";

/// What pynetdicom proposes and accepts by default.
const PY_TS: &str = "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"DeflatedExplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]";

/// The private creators of pydicom's CT_small.dcm.
const GEMS: &str = "[\"GEMS_IDEN_01\", \"GEMS_PATI_01\", \"GEMS_ACQU_01\", \"GEMS_RELA_01\", \"GEMS_STDY_01\", \"GEMS_SERS_01\", \"GEMS_IMAG_01\", \"GEMS_IMPS_01\", \"GEMS_PARM_01\"]";

/// Findings of `rule` (any device).
fn of_rule(findings: &[Value], rule: &str) -> Vec<Value> {
    findings
        .iter()
        .filter(|f| f["rule"] == rule)
        .cloned()
        .collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The finding's evidence points into `capture`, at an association with the server on
/// 127.0.0.1:`port`, and at what `from` sent (when the finding is about one PDU).
fn assert_evidence(f: &Value, capture: &Path, port: u16, from: Option<&str>) {
    let ev = &f["evidence"];
    assert_eq!(text(&ev["source"]), capture.to_str().unwrap(), "{f}");
    assert_eq!(text(&ev["server"]), format!("127.0.0.1:{port}"), "{f}");
    assert!(text(&ev["client"]).starts_with("127.0.0.1:"), "{f}");
    assert!(ev["association"].is_u64(), "{f}");
    // Capture time, not zero or made up: after 2020.
    assert!(
        ev["ts_us"].as_u64().unwrap_or(0) > 1_577_836_800_000_000,
        "{f}"
    );
    match from {
        Some(side) => assert_eq!(text(&ev["from"]), side, "{f}"),
        None => assert!(ev.get("from").is_none(), "{f}"),
    }
}

// ---------------------------------------------------------------------------------------
// dataset-encoding-differs

#[test]
fn implicit_vr_data_on_an_explicit_vr_context_is_reported_for_the_sender() {
    if !require("conformance", &["storescp", "dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("encoding");
    // The same Implicit VR data set, once labelled Explicit VR Little Endian (so pynetdicom
    // proposes and sends it on an Explicit VR context), once labelled correctly.
    let (wrong, right) = (
        scene.path().join("ct-implicit-as-explicit.dcm"),
        scene.path().join("ct-implicit.dcm"),
    );
    let src = data.test_files.join("CT_small.dcm");
    data_run(
        &scene,
        &py,
        "mislabel",
        &[
            "mislabel",
            src.to_str().unwrap(),
            wrong.to_str().unwrap(),
            right.to_str().unwrap(),
        ],
    );
    scene.statement(
        "sender.toml",
        &statement(
            "PY_SENDER",
            "PYSENDER",
            &format!(
                "initiator = true\ncharacter_sets = [\"ISO_IR 100\"]\nprivate_creators = {GEMS}"
            ),
            &[("CTImageStorage", "SCU", ALL_TS)],
            "",
        ),
    );
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let send = |name: &str, file: &PathBuf| {
        let cap = Capture::start(name, &[port], scene.path());
        // storescp cannot read the mislabelled data set: the exchange may fail, the
        // traffic is what matters.
        let out = run(
            name,
            data_py(
                &scene,
                &py,
                &[
                    "send",
                    &port.to_string(),
                    "STORESCP",
                    "PYSENDER",
                    file.to_str().unwrap(),
                    "0",
                ],
            ),
            scene.path(),
            Duration::from_secs(60),
        );
        assert!(out.stdout.contains("stored"), "{}", out.text());
        let capture = cap.finish();
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("encoding-wrong", &wrong);
    let (good, _) = send("encoding-right", &right);
    drop(scp);

    let f = with(&bad, "dataset-encoding-differs", "PY_SENDER");
    assert_eq!(f.len(), 1, "{}", dump(&bad));
    assert_eq!(
        of_rule(&bad, "dataset-encoding-differs").len(),
        1,
        "{}",
        dump(&bad)
    );
    assert_eq!(
        text(&f[0]["claim"]),
        "data encoded in the negotiated transfer syntax ExplicitVRLittleEndian"
    );
    assert!(
        text(&f[0]["observed"]).contains("encoded as ImplicitVrLittleEndian"),
        "{}",
        dump(&f)
    );
    assert_eq!(f[0]["severity"], "error");
    assert_evidence(&f[0], &bad_capture, port, Some("requestor"));
    assert_eq!(f[0]["evidence"]["message_id"], 1);
    assert_eq!(
        f[0]["evidence"]["sop_instance"],
        "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    );
    // Correctly labelled, the same bytes conform.
    assert!(
        of_rule(&good, "dataset-encoding-differs").is_empty(),
        "{}",
        dump(&good)
    );
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// private-transfer-syntax-undocumented

const PRIVATE_TS: &str = "1.3.6.1.4.1.99999.7.1";

#[test]
fn a_private_transfer_syntax_is_reported_unless_documented() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, _)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("private-ts");
    let port = free_port();
    let scp = data_peer(
        &scene,
        &py,
        "private-scp",
        port,
        &["private-scp", &port.to_string(), PRIVATE_TS],
    );
    let cap = Capture::start("private-ts", &[port], scene.path());
    let out = data_run(
        &scene,
        &py,
        "private-scu",
        &[
            "private-scu",
            &port.to_string(),
            "PRIVSCP",
            "PRIVSCU",
            PRIVATE_TS,
        ],
    );
    assert!(
        out.contains(&format!("accepted 1.2.840.10008.5.1.4.1.1.2 {PRIVATE_TS}")),
        "the private syntax was not negotiated:\n{out}"
    );
    let capture = cap.finish();
    drop(scp);

    // Statements that do not document the UID.
    let scu = |ts: &str, tail: &str| {
        statement(
            "VENDOR_SCU",
            "PRIVSCU",
            "initiator = true",
            &[
                ("CTImageStorage", "SCU", ts),
                ("Verification", "SCU", PY_TS),
            ],
            tail,
        )
    };
    let scp_st = |ts: &str, tail: &str| {
        statement(
            "VENDOR_SCP",
            "PRIVSCP",
            "acceptor = true",
            &[
                ("CTImageStorage", "SCP", ts),
                ("Verification", "SCP", PY_TS),
            ],
            tail,
        )
    };
    scene.statement("scu.toml", &scu("[\"ExplicitVRLittleEndian\"]", ""));
    scene.statement("scp.toml", &scp_st("[\"ExplicitVRLittleEndian\"]", ""));
    let (findings, _, junit) = scene.analyze(&capture);
    let proposed = with(
        &findings,
        "private-transfer-syntax-undocumented",
        "VENDOR_SCU",
    );
    assert_eq!(proposed.len(), 1, "{}", dump(&findings));
    assert_eq!(proposed[0]["claim"], "private_uids: no entry for this UID");
    assert_eq!(
        text(&proposed[0]["observed"]),
        format!(
            "proposed unregistered transfer syntax {PRIVATE_TS} for CTImageStorage (context 1)"
        )
    );
    assert_evidence(&proposed[0], &capture, port, Some("requestor"));
    let accepted = with(
        &findings,
        "private-transfer-syntax-undocumented",
        "VENDOR_SCP",
    );
    assert_eq!(accepted.len(), 1, "{}", dump(&findings));
    assert_eq!(
        text(&accepted[0]["observed"]),
        format!(
            "accepted unregistered transfer syntax {PRIVATE_TS} for CTImageStorage (context 1)"
        )
    );
    assert_evidence(&accepted[0], &capture, port, Some("acceptor"));
    assert_eq!(
        of_rule(&findings, "private-transfer-syntax-undocumented").len(),
        2,
        "{}",
        dump(&findings)
    );
    assert!(
        junit.contains("<failure type=\"private-transfer-syntax-undocumented\""),
        "{junit}"
    );

    // Documented as a private UID and claimed: nothing at all.
    let private = format!(
        "[private_uids]\n\"{PRIVATE_TS}\" = {{ private = true, name = \"Vendor fast\" }}\n"
    );
    let claimed = format!("[\"{PRIVATE_TS}\", \"ExplicitVRLittleEndian\"]");
    scene.statement("scu.toml", &scu(&claimed, &private));
    scene.statement("scp.toml", &scp_st(&claimed, &private));
    let (findings, code, _) = scene.analyze(&capture);
    assert!(
        findings.is_empty(),
        "documented private syntax raised:\n{}",
        dump(&findings)
    );
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------------------------------
// pdu-exceeds-peer-max

#[test]
fn a_sender_ignoring_the_peers_max_length_is_reported() {
    if !require("conformance", &["storescp", "dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("peer-max");
    scene.statement(
        "sender.toml",
        &statement(
            "PY_SENDER",
            "PYSENDER",
            &format!(
                "initiator = true\ncharacter_sets = [\"ISO_IR 100\"]\nprivate_creators = {GEMS}"
            ),
            &[("CTImageStorage", "SCU", ALL_TS)],
            "",
        ),
    );
    let port = free_port();
    // storescp advertises Max Length 8192.
    let scp = scene.storescp(port, &["--max-pdu", "8192"]);
    let file = data.test_files.join("CT_small.dcm");
    let send = |name: &str, pdu: &str| {
        let cap = Capture::start(name, &[port], scene.path());
        let out = run(
            name,
            data_py(
                &scene,
                &py,
                &[
                    "send",
                    &port.to_string(),
                    "STORESCP",
                    "PYSENDER",
                    file.to_str().unwrap(),
                    pdu,
                ],
            ),
            scene.path(),
            Duration::from_secs(60),
        );
        let capture = cap.finish();
        (scene.analyze(&capture).0, out, capture)
    };
    // 32768-byte P-DATA-TF PDUs, whatever storescp advertised.
    let (bad, out, bad_capture) = send("peer-max-over", "32768");
    // pynetdicom's own sizing.
    let (good, good_out, _) = send("peer-max-ok", "0");
    drop(scp);

    let f = with(&bad, "pdu-exceeds-peer-max", "PY_SENDER");
    assert_eq!(f.len(), 1, "{}\n{}", dump(&bad), out.text());
    assert_eq!(
        of_rule(&bad, "pdu-exceeds-peer-max").len(),
        1,
        "{}",
        dump(&bad)
    );
    assert_eq!(
        f[0]["claim"],
        "P-DATA-TF no larger than the peer's Max Length"
    );
    assert_eq!(
        text(&f[0]["observed"]),
        "sent a P-DATA-TF of 32768 bytes; the acceptor advertised Max Length 8192"
    );
    assert_eq!(f[0]["severity"], "error");
    assert_evidence(&f[0], &bad_capture, port, Some("requestor"));
    assert!(
        good_out.stdout.contains("stored 0000"),
        "{}",
        good_out.text()
    );
    assert!(
        of_rule(&good, "pdu-exceeds-peer-max").is_empty(),
        "{}",
        dump(&good)
    );
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// pdu-exceeds-claimed-max-send

#[test]
fn storescu_sending_larger_pdus_than_claimed_is_reported() {
    if !require("conformance", &["storescu", "storescp", "dumpcap"]) {
        return;
    }
    let Some((_, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("max-send");
    scene.statement(
        "storescu.toml",
        &statement(
            "DCMTK_STORESCU",
            "STORESCU",
            &format!(
                "initiator = true\nmax_pdu_send = 8192\nprivate_creators = {GEMS}\ncharacter_sets = [\"ISO_IR 100\"]"
            ),
            &[("CTImageStorage", "SCU", ALL_TS)],
            "",
        ),
    );
    let port = free_port();
    // storescp advertises its default 16384; storescu fills it.
    let scp = scene.storescp(port, &[]);
    let file = data.test_files.join("CT_small.dcm");
    let send = |name: &str, extra: &[&str]| {
        let cap = Capture::start(name, &[port], scene.path());
        scene.storescu(port, "STORESCU", extra, std::slice::from_ref(&file));
        let capture = cap.finish();
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("max-send-over", &[]);
    let (good, _) = send("max-send-ok", &["--max-send-pdu", "8192"]);
    drop(scp);

    let f = with(&bad, "pdu-exceeds-claimed-max-send", "DCMTK_STORESCU");
    assert_eq!(f.len(), 1, "{}", dump(&bad));
    assert_eq!(
        of_rule(&bad, "pdu-exceeds-claimed-max-send").len(),
        1,
        "{}",
        dump(&bad)
    );
    assert_eq!(f[0]["claim"], "max_pdu_send = 8192");
    // DCMTK fills the peer's 16384 less the 6 bytes of the PDV item header.
    let size: u32 = text(&f[0]["observed"])
        .strip_prefix("sent a P-DATA-TF of ")
        .and_then(|s| s.strip_suffix(" bytes"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", dump(&f)));
    assert!((8193..=16384).contains(&size), "{}", dump(&f));
    assert_eq!(f[0]["severity"], "warning");
    assert_evidence(&f[0], &bad_capture, port, Some("requestor"));
    // Within the peer's maximum: only the statement's own limit was exceeded.
    assert!(
        of_rule(&bad, "pdu-exceeds-peer-max").is_empty(),
        "{}",
        dump(&bad)
    );
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// character-set-not-claimed

#[test]
fn multilingual_files_in_unclaimed_character_sets_are_reported() {
    if !require("conformance", &["storescu", "storescp", "dumpcap"]) {
        return;
    }
    let Some((_, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("charsets");
    let files: Vec<PathBuf> = [
        "chrFren.dcm",                // ISO_IR 100
        "chrRuss.dcm",                // ISO_IR 144
        "chrGreek.dcm",               // ISO_IR 126
        "chrH31.dcm",                 // \ISO 2022 IR 87
        "chrX1.dcm",                  // ISO_IR 192
        "chrJapMultiExplicitIR6.dcm", // ISO 2022 IR 6\ISO 2022 IR 87
    ]
    .iter()
    .map(|f| data.charset_files.join(f))
    .collect();
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let cap = Capture::start("charsets", &[port], scene.path());
    scene.storescu(port, "STORESCU", &[], &files);
    let capture = cap.finish();
    drop(scp);

    let storescu = |sets: &str| {
        statement(
            "DCMTK_STORESCU",
            "STORESCU",
            &format!("initiator = true\ncharacter_sets = {sets}\nprivate_creators = [\"AGFA\"]"),
            &[
                ("SecondaryCaptureImageStorage", "SCU", ALL_TS),
                ("ComputedRadiographyImageStorage", "SCU", ALL_TS),
            ],
            "",
        )
    };
    // Latin-1 and UTF-8 are claimed; Cyrillic, Greek and Japanese are not. ISO 2022 IR 6
    // (the default repertoire with code extensions) needs no claim of its own.
    scene.statement(
        "storescu.toml",
        &storescu("[\"ISO_IR 100\", \"ISO_IR 192\"]"),
    );
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "character-set-not-claimed", "DCMTK_STORESCU");
    let mut observed: Vec<&str> = f.iter().map(|f| text(&f["observed"])).collect();
    observed.sort_unstable();
    assert_eq!(
        observed,
        [
            "data set declares Specific Character Set \"ISO_IR 126\"",
            "data set declares Specific Character Set \"ISO_IR 144\"",
            "data set declares Specific Character Set \"\\\\ISO 2022 IR 87\"",
        ],
        "{}",
        dump(&findings)
    );
    for x in &f {
        assert_eq!(
            x["claim"],
            "character_sets = [\"ISO_IR 100\", \"ISO_IR 192\"]"
        );
        assert_evidence(x, &capture, port, Some("requestor"));
        assert!(x["evidence"]["sop_instance"].is_string(), "{x}");
    }
    assert_eq!(
        of_rule(&findings, "character-set-not-claimed").len(),
        3,
        "{}",
        dump(&findings)
    );
    // The text itself is valid in each declared set.
    assert!(
        of_rule(&findings, "text-invalid-in-character-set").is_empty(),
        "{}",
        dump(&findings)
    );

    // Every set the files declare claimed: nothing.
    scene.statement(
        "storescu.toml",
        &storescu(
            "[\"ISO_IR 100\", \"ISO_IR 192\", \"ISO_IR 144\", \"ISO_IR 126\", \"ISO 2022 IR 87\"]",
        ),
    );
    let (findings, code, _) = scene.analyze(&capture);
    assert!(
        findings.is_empty(),
        "conforming character sets raised:\n{}",
        dump(&findings)
    );
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------------------------------
// private-creator-undocumented

#[test]
fn undocumented_private_creators_are_reported_for_the_sender() {
    if !require("conformance", &["storescu", "storescp", "dumpcap"]) {
        return;
    }
    let Some((_, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("creators");
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let cap = Capture::start("creators", &[port], scene.path());
    // CT_small.dcm carries nine GEMS_* private creators; MR_small.dcm none.
    scene.storescu(
        port,
        "STORESCU",
        &[],
        &[
            data.test_files.join("CT_small.dcm"),
            data.test_files.join("MR_small.dcm"),
        ],
    );
    let capture = cap.finish();
    drop(scp);
    let storescu = |creators: &str| {
        statement(
            "DCMTK_STORESCU",
            "STORESCU",
            &format!(
                "initiator = true\ncharacter_sets = [\"ISO_IR 100\"]\nprivate_creators = {creators}"
            ),
            &[
                ("CTImageStorage", "SCU", ALL_TS),
                ("MRImageStorage", "SCU", ALL_TS),
            ],
            "",
        )
    };
    let documented = [
        "GEMS_IDEN_01",
        "GEMS_PATI_01",
        "GEMS_ACQU_01",
        "GEMS_RELA_01",
        "GEMS_STDY_01",
        "GEMS_SERS_01",
        "GEMS_IMAG_01",
    ];
    scene.statement("storescu.toml", &storescu(&format!("{documented:?}")));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "private-creator-undocumented", "DCMTK_STORESCU");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(
        of_rule(&findings, "private-creator-undocumented").len(),
        1,
        "{}",
        dump(&findings)
    );
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("data set has private creator(s) ")
            && observed.contains("\"GEMS_IMPS_01\" (0029,")
            && observed.contains("\"GEMS_PARM_01\" (0043,"),
        "{observed}"
    );
    for d in documented {
        assert!(!observed.contains(d), "{d} is documented: {observed}");
    }
    assert_eq!(f[0]["claim"], format!("private_creators = {documented:?}"));
    assert_eq!(
        f[0]["evidence"]["sop_instance"],
        "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    );
    assert_evidence(&f[0], &capture, port, Some("requestor"));

    let all: Vec<&str> = documented
        .iter()
        .copied()
        .chain(["GEMS_IMPS_01", "GEMS_PARM_01"])
        .collect();
    scene.statement("storescu.toml", &storescu(&format!("{all:?}")));
    let (findings, code, _) = scene.analyze(&capture);
    assert!(
        findings.is_empty(),
        "documented private creators raised:\n{}",
        dump(&findings)
    );
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------------------------------
// Storage Commitment: storage-commitment-overdue, storage-commitment-report-association

fn archive_statement(report_on: &str, max_wait_s: &str) -> String {
    statement(
        "PY_ARCHIVE",
        "ARCHIVE",
        "acceptor = true\ninitiator = true",
        &[("CTImageStorage", "SCP", PY_TS)],
        &format!(
            "[[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"\nrole = \"SCP\"\ntransfer_syntaxes = {PY_TS}\nrole_selection = {{ scu = false, scp = true }}\nstorage_commitment = {{ report_on = {report_on}, max_wait_s = {max_wait_s} }}\n"
        ),
    )
}

/// The commitment SCP reporting in `mode` after `delay` s, the modality holding its
/// association at most `hold` s: the capture.
fn commitment(
    scene: &Scene,
    py: &Path,
    data: &PydicomData,
    mode: &str,
    delay: &str,
    hold: &str,
) -> (PathBuf, String, u16, u16) {
    let (port, report_port) = (free_port(), free_port());
    let archive = data_peer(
        scene,
        py,
        "archive",
        port,
        &[
            "commit-scp",
            &port.to_string(),
            mode,
            delay,
            &report_port.to_string(),
        ],
    );
    let cap = Capture::start(
        &format!("commit-{mode}"),
        &[port, report_port],
        scene.path(),
    );
    let file = data.test_files.join("CT_small.dcm");
    let out = data_run(
        scene,
        py,
        "modality",
        &[
            "commit-scu",
            &port.to_string(),
            &report_port.to_string(),
            file.to_str().unwrap(),
            hold,
        ],
    );
    let capture = cap.finish();
    drop(archive);
    (capture, out, port, report_port)
}

#[test]
fn a_commitment_report_later_than_claimed_is_overdue() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("commit-late");
    // The report comes on a new association 3 s after the N-ACTION.
    let (capture, out, port, report_port) = commitment(&scene, &py, &data, "new", "3", "15");
    assert!(out.contains("report received"), "{out}");

    // Claimed: reports within 1 s, on the same association.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"same_association\"]", "1"),
    );
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "storage-commitment-overdue", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "storage_commitment.max_wait_s = 1");
    // The deadline passes in capture time as the report's association opens, before the
    // report itself: the finding is made then, against the N-ACTION, and the late report
    // is not reported overdue a second time.
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("no N-EVENT-REPORT for transaction ")
            && observed
                .ends_with("(1 instance(s)) within 1 s of the N-ACTION (its report is overdue)"),
        "{observed}"
    );
    assert_eq!(f[0]["evidence"]["message_id"], 1);
    assert_evidence(&f[0], &capture, port, None);
    // The transaction is still remembered when the late report comes: it is checked for
    // its association, with the N-ACTION linked.
    let a = with(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(a.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 2, "{}", dump(&findings));
    assert!(
        text(&a[0]["observed"]).contains(" on new association (association #"),
        "{}",
        a[0]
    );
    assert_evidence(&a[0], &capture, report_port, Some("requestor"));
    let related = a[0]["evidence"]["related"].as_array().unwrap();
    assert_eq!(related.len(), 1, "{}", a[0]);
    assert_eq!(
        related[0]["association"], f[0]["evidence"]["association"],
        "{}",
        a[0]
    );
    assert_eq!(related[0]["message_id"], 1, "{}", a[0]);
    assert_ne!(
        a[0]["evidence"]["association"], related[0]["association"],
        "{}",
        a[0]
    );

    // New associations claimed: only the lateness.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
    );
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "storage-commitment-overdue", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));

    // Claimed wait long enough: nothing.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
    );
    let (findings, code, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
    assert_eq!(code, 0);
}

#[test]
fn a_commitment_never_reported_is_overdue_once_the_claimed_wait_passed() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("commit-never");
    // No report at all; the modality keeps its association 3 s, then releases.
    let (capture, out, port, _) = commitment(&scene, &py, &data, "none", "0", "3");
    assert!(out.contains("no report"), "{out}");

    scene.statement(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
    );
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "storage-commitment-overdue", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "storage_commitment.max_wait_s = 1");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("no N-EVENT-REPORT for transaction ")
            && observed
                .ends_with("(1 instance(s)) within 1 s of the N-ACTION (its report is overdue)"),
        "{observed}"
    );
    // The evidence points at the N-ACTION (pynetdicom numbers it 1, as the C-STORE).
    assert_eq!(f[0]["evidence"]["message_id"], 1);
    assert_evidence(&f[0], &capture, port, None);

    // The capture ends before a 10 s deadline: it proves nothing, nothing is reported.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
    );
    let (findings, code, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
    assert_eq!(code, 0);
}

#[test]
fn a_commitment_report_on_an_unclaimed_kind_of_association_is_reported() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("commit-assoc");
    let same = commitment(&scene, &py, &data, "same", "0.5", "15");
    let out = &same.1;
    assert!(out.contains("report received"), "{out}");
    let new = commitment(&scene, &py, &data, "new", "0.5", "15");
    let out = &new.1;
    assert!(out.contains("report received"), "{out}");

    // Reported on the same association; the statement says new associations only.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "60"),
    );
    let (findings, _, _) = scene.analyze(&same.0);
    let f = with(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(
        f[0]["claim"],
        "storage_commitment.report_on = [new_association]"
    );
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("sent the report for transaction ")
            && observed.contains(" on same association (association #"),
        "{observed}"
    );
    assert_evidence(&f[0], &same.0, same.2, Some("acceptor"));
    let related = f[0]["evidence"]["related"].as_array().unwrap();
    assert_eq!(
        f[0]["evidence"]["association"], related[0]["association"],
        "{}",
        f[0]
    );
    // The new-association report conforms to that claim.
    let (findings, code, _) = scene.analyze(&new.0);
    assert!(findings.is_empty(), "{}", dump(&findings));
    assert_eq!(code, 0);

    // And the other way round.
    scene.statement(
        "archive.toml",
        &archive_statement("[\"same_association\"]", "60"),
    );
    let (findings, _, _) = scene.analyze(&new.0);
    let f = with(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(
        f[0]["claim"],
        "storage_commitment.report_on = [same_association]"
    );
    assert!(
        text(&f[0]["observed"]).contains(" on new association (association #"),
        "{}",
        dump(&f)
    );
    assert_evidence(&f[0], &new.0, new.3, Some("requestor"));
    let (findings, code, _) = scene.analyze(&same.0);
    assert!(findings.is_empty(), "{}", dump(&findings));
    assert_eq!(code, 0);
}

// ---------------------------------------------------------------------------------------
// timeout-shorter-than-claimed, timeout-longer-than-claimed

fn gap_of(observed: &str) -> f64 {
    observed
        .split(" after waiting ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no gap in {observed:?}"))
}

#[test]
fn storescp_ending_an_idle_association_before_its_claimed_timeout() {
    if !require("conformance", &["storescp", "dumpcap"]) {
        return;
    }
    let Some((py, _)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("timeout-short");
    let port = free_port();
    // storescp's socket timeout ends an association idle for 2 s.
    let scp = scene.storescp(port, &["--socket-timeout", "2"]);
    let cap = Capture::start("timeout-short", &[port], scene.path());
    let out = data_run(
        &scene,
        &py,
        "idle",
        &["idle", &port.to_string(), "STORESCP", "IDLER", "10"],
    );
    assert!(out.contains("ended by the acceptor"), "{out}");
    let capture = cap.finish();
    drop(scp);
    let storescp = |timeouts: &str| {
        statement(
            "DCMTK_STORESCP",
            "STORESCP",
            &format!("acceptor = true\ntimeouts_s = {timeouts}"),
            &[("Verification", "SCP", ALL_TS)],
            "",
        )
    };
    scene.statement("storescp.toml", &storescp("{ idle = 10 }"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "timeout-shorter-than-claimed", "DCMTK_STORESCP");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "timeouts_s.idle = 10");
    let observed = text(&f[0]["observed"]);
    assert!(observed.starts_with("gave up ("), "{observed}");
    assert!(observed.ends_with(" on an idle association"), "{observed}");
    let gap = gap_of(observed);
    assert!((1.5..4.0).contains(&gap), "{observed}");
    assert_evidence(&f[0], &capture, port, Some("acceptor"));

    // Claimed as it behaves: nothing.
    scene.statement("storescp.toml", &storescp("{ idle = 2 }"));
    // (No exit code check: the association that ended without release is a protocol
    // warning of its own.)
    let (findings, _, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
}

#[test]
fn pynetdicom_ending_an_idle_association_later_than_claimed() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, _)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("timeout-long");
    let port = free_port();
    // pynetdicom's network timeout aborts an association idle for 4 s.
    let scp = data_peer(
        &scene,
        &py,
        "idle-scp",
        port,
        &["idle-scp", &port.to_string(), "4"],
    );
    let cap = Capture::start("timeout-long", &[port], scene.path());
    let out = data_run(
        &scene,
        &py,
        "idle",
        &["idle", &port.to_string(), "IDLESCP", "IDLER", "15"],
    );
    assert!(out.contains("ended by the acceptor"), "{out}");
    let capture = cap.finish();
    drop(scp);
    let idle_scp = |timeouts: &str| {
        statement(
            "PY_IDLESCP",
            "IDLESCP",
            &format!("acceptor = true\ntimeouts_s = {timeouts}"),
            &[("Verification", "SCP", PY_TS)],
            "",
        )
    };
    scene.statement("idle.toml", &idle_scp("{ idle = 1.5 }"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "timeout-longer-than-claimed", "PY_IDLESCP");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "timeouts_s.idle = 1.5");
    assert_eq!(f[0]["severity"], "info");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("gave up (A-ABORT) after waiting ")
            && observed.ends_with(" on an idle association"),
        "{observed}"
    );
    let gap = gap_of(observed);
    assert!((3.5..6.0).contains(&gap), "{observed}");
    assert_evidence(&f[0], &capture, port, Some("acceptor"));

    scene.statement("idle.toml", &idle_scp("{ idle = 4 }"));
    // (No exit code check: the association that ended without release is a protocol
    // warning of its own.)
    let (findings, _, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
}

#[test]
fn storescu_giving_up_on_a_slow_response_before_its_claimed_dimse_timeout() {
    if !require("conformance", &["storescu", "dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("timeout-dimse");
    let port = free_port();
    // The SCP answers C-STORE after 5 s; storescu waits 2 s.
    let scp = data_peer(
        &scene,
        &py,
        "slow-scp",
        port,
        &["slow-scp", &port.to_string(), "5"],
    );
    let cap = Capture::start("timeout-dimse", &[port], scene.path());
    let file = data.test_files.join("MR_small.dcm");
    let args = [
        "-R".to_string(),
        "--dimse-timeout".into(),
        "2".into(),
        "-aet".into(),
        "STORESCU".into(),
        "-aec".into(),
        "SLOWSCP".into(),
        "127.0.0.1".into(),
        port.to_string(),
        file.display().to_string(),
    ];
    let out = run(
        "storescu",
        command("storescu", &args),
        scene.path(),
        Duration::from_secs(30),
    );
    assert!(
        !out.status.success(),
        "storescu did not time out:\n{}",
        out.text()
    );
    let capture = cap.finish();
    drop(scp);
    let storescu = |timeouts: &str| {
        statement(
            "DCMTK_STORESCU",
            "STORESCU",
            &format!("initiator = true\ntimeouts_s = {timeouts}"),
            &[("MRImageStorage", "SCU", ALL_TS)],
            "",
        )
    };
    scene.statement("storescu.toml", &storescu("{ dimse = 30 }"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "timeout-shorter-than-claimed", "DCMTK_STORESCU");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "timeouts_s.dimse = 30");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.contains(" for a DIMSE response (its oldest unanswered request was sent "),
        "{observed}"
    );
    let gap = gap_of(observed);
    assert!((1.5..4.0).contains(&gap), "{observed}");
    assert_evidence(&f[0], &capture, port, Some("requestor"));

    scene.statement("storescu.toml", &storescu("{ dimse = 2 }"));
    // (No exit code check: the association that ended without release is a protocol
    // warning of its own.)
    let (findings, _, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
}

/// A requestor that gets no answer to its A-ASSOCIATE-RQ: the mute acceptor reads it and
/// never answers, so what ends the association is the requestor's ARTIM (ACSE) timeout.
fn unanswered_association(
    scene: &Scene,
    py: &Path,
    name: &str,
    requestor: impl FnOnce(u16) -> Command,
) -> (PathBuf, String) {
    let port = free_port();
    let mute = data_peer(
        scene,
        py,
        "mute-scp",
        port,
        &["mute-scp", &port.to_string(), "30"],
    );
    let cap = Capture::start(name, &[port], scene.path());
    let out = run(name, requestor(port), scene.path(), Duration::from_secs(60));
    let capture = cap.finish();
    drop(mute);
    (capture, out.text())
}

#[test]
fn echoscu_giving_up_on_an_association_answer_before_its_claimed_artim() {
    if !require("conformance", &["echoscu", "dumpcap"]) {
        return;
    }
    let Some((py, _)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("timeout-artim-short");
    // echoscu waits 2 s for the A-ASSOCIATE-AC (-ta 2), then closes.
    let (capture, out) = unanswered_association(&scene, &py, "echoscu", |port| {
        command(
            "echoscu",
            &[
                "-ta",
                "2",
                "-aet",
                "ECHOSCU",
                "-aec",
                "MUTE",
                "127.0.0.1",
                &port.to_string(),
            ],
        )
    });
    assert!(out.contains("DUL network read timeout"), "{out}");
    let statement_with = |timeouts: &str| {
        statement(
            "DCMTK_ECHOSCU",
            "ECHOSCU",
            &format!("initiator = true\ntimeouts_s = {timeouts}"),
            &[("Verification", "SCU", ALL_TS)],
            "",
        )
    };
    scene.statement("echoscu.toml", &statement_with("{ artim = 30 }"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "timeout-shorter-than-claimed", "DCMTK_ECHOSCU");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "timeouts_s.artim = 30");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("gave up (") && observed.ends_with(" for the A-ASSOCIATE answer"),
        "{observed}"
    );
    let gap = gap_of(observed);
    assert!((1.5..4.0).contains(&gap), "{observed}");
    assert_eq!(text(&f[0]["evidence"]["from"]), "requestor", "{}", f[0]);

    // Claimed as it behaves: nothing. (The idle and DIMSE claims do not apply while the
    // association is not established.)
    scene.statement(
        "echoscu.toml",
        &statement_with("{ artim = 2, idle = 60, dimse = 60 }"),
    );
    let (findings, _, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
}

#[test]
fn pynetdicom_giving_up_on_an_association_answer_later_than_claimed() {
    if !require("conformance", &["dumpcap"]) {
        return;
    }
    let Some((py, _)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("timeout-artim-long");
    // pynetdicom waits 4 s for the A-ASSOCIATE-AC (acse_timeout), then aborts.
    let (capture, out) = unanswered_association(&scene, &py, "artim-scu", |port| {
        data_py(
            &scene,
            &py,
            &["artim-scu", &port.to_string(), "MUTE", "PYSCU", "4"],
        )
    });
    assert!(out.contains("gave up after"), "{out}");
    let statement_with = |timeouts: &str| {
        statement(
            "PY_SCU",
            "PYSCU",
            &format!("initiator = true\ntimeouts_s = {timeouts}"),
            &[("Verification", "SCU", PY_TS)],
            "",
        )
    };
    scene.statement("pyscu.toml", &statement_with("{ artim = 1.5 }"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "timeout-longer-than-claimed", "PY_SCU");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(f[0]["claim"], "timeouts_s.artim = 1.5");
    assert_eq!(f[0]["severity"], "info");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("gave up (A-ABORT) after waiting ")
            && observed.ends_with(" for the A-ASSOCIATE answer"),
        "{observed}"
    );
    let gap = gap_of(observed);
    assert!((3.5..6.0).contains(&gap), "{observed}");
    assert_eq!(text(&f[0]["evidence"]["from"]), "requestor", "{}", f[0]);

    scene.statement("pyscu.toml", &statement_with("{ artim = 4 }"));
    let (findings, _, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
}

// ---------------------------------------------------------------------------------------
// implementation-uid-changed

#[test]
fn an_implementation_class_uid_other_than_claimed_is_reported() {
    if !require("conformance", &["storescp", "dumpcap"]) {
        return;
    }
    let Some((py, data)) = require_python("conformance") else {
        return;
    };
    let scene = Scene::new("impl-uid");
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let cap = Capture::start("impl-uid", &[port], scene.path());
    let file = data.test_files.join("MR_small.dcm");
    let out = data_run(
        &scene,
        &py,
        "send",
        &[
            "send",
            &port.to_string(),
            "STORESCP",
            "PYSENDER",
            file.to_str().unwrap(),
            "0",
        ],
    );
    assert!(out.contains("stored 0000"), "{out}");
    let capture = cap.finish();
    drop(scp);
    // What pynetdicom really sends, from pynetdicom itself.
    let real = run_ok(
        "impl-uid",
        command(
            py.to_str().unwrap(),
            &[
                "-c",
                "import pynetdicom; print(pynetdicom.PYNETDICOM_IMPLEMENTATION_UID)",
            ],
        ),
        scene.path(),
        Duration::from_secs(30),
    )
    .stdout
    .trim()
    .to_string();
    assert!(real.starts_with("1.2.826.0.1.3680043.9.3811."), "{real}");
    let sender = |uid: &str| {
        statement(
            "PY_SENDER",
            "PYSENDER",
            &format!("initiator = true\nimplementation_class_uid = \"{uid}\""),
            &[("MRImageStorage", "SCU", ALL_TS)],
            "",
        )
    };
    // The statement names an older build's UID.
    scene.statement("sender.toml", &sender("1.2.826.0.1.3680043.9.3811.1.5.0"));
    let (findings, _, _) = scene.analyze(&capture);
    let f = with(&findings, "implementation-uid-changed", "PY_SENDER");
    assert_eq!(f.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 1, "{}", dump(&findings));
    assert_eq!(
        f[0]["claim"],
        "implementation_class_uid = \"1.2.826.0.1.3680043.9.3811.1.5.0\""
    );
    assert_eq!(
        text(&f[0]["observed"]),
        format!("sent Implementation Class UID {real:?}")
    );
    assert_evidence(&f[0], &capture, port, Some("requestor"));

    scene.statement("sender.toml", &sender(&real));
    let (findings, code, _) = scene.analyze(&capture);
    assert!(findings.is_empty(), "{}", dump(&findings));
    assert_eq!(code, 0);
}
