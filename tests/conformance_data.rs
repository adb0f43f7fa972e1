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

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::conformance::*;
use support::*;

/// A data.py server peer, started and listening on `port`.
fn data_peer(scene: &Scene, py: &Path, name: &str, port: u16, args: &[&str]) -> Proc {
    scene.script_peer(py, "data.py", name, port, args)
}

/// A data.py client run to completion (bounded, must succeed); its standard output.
fn data_run(scene: &Scene, py: &Path, name: &str, args: &[&str]) -> String {
    scene.script_run(py, "data.py", name, args)
}

/// data.py `send`: PYSENDER stores `file` as it is at STORESCP on `port`, every P-DATA-TF
/// cut to `pdu` bytes ("0": pynetdicom's own sizing), captured. The sender's output (it
/// may fail: the traffic is what matters) and the capture.
fn send_captured(
    scene: &Scene,
    py: &Path,
    name: &str,
    port: u16,
    file: &Path,
    pdu: &str,
) -> (RunOutput, PathBuf) {
    let args = [
        "send",
        &port.to_string(),
        "STORESCP",
        "PYSENDER",
        file.to_str().unwrap(),
        pdu,
    ];
    let mut out = None;
    let capture = scene.capture(name, &[port], || {
        out = Some(run(
            name,
            scene.script(py, "data.py", &args),
            scene.path(),
            Duration::from_secs(60),
        ));
    });
    (out.unwrap(), capture)
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

/// PYSENDER sending CT images in Latin-1 with CT_small.dcm's private creators.
fn ct_sender_statement() -> String {
    statement(
        "PY_SENDER",
        "PYSENDER",
        &format!("initiator = true\ncharacter_sets = [\"ISO_IR 100\"]\nprivate_creators = {GEMS}"),
        &[("CTImageStorage", "SCU", ALL_TS)],
        "",
    )
}

/// A device with one AE that claims `timeouts_s`: its name, AE title, side (`initiator`
/// or `acceptor`) and one capability.
struct TimeoutClaim<'a> {
    device: &'a str,
    title: &'a str,
    side: &'a str,
    capability: (&'a str, &'a str, &'a str),
}

impl TimeoutClaim<'_> {
    /// The statement (its file named after the AE title) claiming `timeouts_s = {timeouts}`.
    fn write(&self, scene: &Scene, timeouts: &str) {
        let text = statement(
            self.device,
            self.title,
            &format!("{} = true\ntimeouts_s = {timeouts}", self.side),
            &[self.capability],
            "",
        );
        scene.statement(&format!("{}.toml", self.title.to_lowercase()), &text);
    }

    /// With `timeouts` claimed, the one finding in `capture` is of `rule` for this device,
    /// about `claim`, after a wait within `gap` seconds: that finding.
    fn finding(
        &self,
        (scene, capture): (&Scene, &Path),
        timeouts: &str,
        (rule, claim): (&str, &str),
        gap: Range<f64>,
    ) -> Value {
        self.write(scene, timeouts);
        let (findings, _, _) = scene.analyze(capture);
        let f = sole(&findings, rule, self.device);
        assert_eq!(f["claim"], claim);
        let observed = text(&f["observed"]);
        assert!(gap.contains(&gap_of(observed)), "{observed}");
        f
    }

    /// Claimed as it behaves (`timeouts`): `capture` raises nothing (the exit code is not
    /// checked: an association that ended without release is a protocol warning of its
    /// own).
    fn assert_silent(&self, (scene, capture): (&Scene, &Path), timeouts: &str) {
        self.write(scene, timeouts);
        let (findings, _, _) = scene.analyze(capture);
        assert!(findings.is_empty(), "{}", dump(&findings));
    }
}

const ALL_TS: &str =
    "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]";

/// What pynetdicom proposes and accepts by default.
const PY_TS: &str = "[\"ExplicitVRLittleEndian\", \"ImplicitVRLittleEndian\", \"DeflatedExplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]";

/// The private creators of pydicom's CT_small.dcm.
const GEMS: &str = "[\"GEMS_IDEN_01\", \"GEMS_PATI_01\", \"GEMS_ACQU_01\", \"GEMS_RELA_01\", \"GEMS_STDY_01\", \"GEMS_SERS_01\", \"GEMS_IMAG_01\", \"GEMS_IMPS_01\", \"GEMS_PARM_01\"]";

/// The SOP Instance UID of pydicom's CT_small.dcm.
const CT_SMALL_INSTANCE: &str = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";

/// Findings of `rule` (any device).
fn of_rule(findings: &[Value], rule: &str) -> Vec<Value> {
    findings
        .iter()
        .filter(|f| f["rule"] == rule)
        .cloned()
        .collect()
}

/// The one finding of `rule` for `device`, the only one of that rule for any device.
fn one_of_rule(findings: &[Value], rule: &str, device: &str) -> Value {
    let f = with(findings, rule, device);
    assert_eq!(f.len(), 1, "{}", dump(findings));
    assert_eq!(of_rule(findings, rule).len(), 1, "{}", dump(findings));
    f[0].clone()
}

/// `rule` was not raised at all.
fn assert_not_raised(findings: &[Value], rule: &str) {
    assert!(of_rule(findings, rule).is_empty(), "{}", dump(findings));
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
    let Some((scene, py, data)) = conformance_scene("encoding", &["storescp", "dumpcap"]) else {
        return;
    };
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
    scene.statement("sender.toml", &ct_sender_statement());
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let send = |name: &str, file: &Path| {
        // storescp cannot read the mislabelled data set: the exchange may fail, the
        // traffic is what matters.
        let (out, capture) = send_captured(&scene, &py, name, port, file, "0");
        assert!(out.stdout.contains("stored"), "{}", out.text());
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("encoding-wrong", &wrong);
    let (good, _) = send("encoding-right", &right);
    drop(scp);

    let f = one_of_rule(&bad, "dataset-encoding-differs", "PY_SENDER");
    assert_eq!(
        text(&f["claim"]),
        "data encoded in the negotiated transfer syntax ExplicitVRLittleEndian"
    );
    assert!(
        text(&f["observed"]).contains("encoded as ImplicitVrLittleEndian"),
        "{f}"
    );
    assert_eq!(f["severity"], "error");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    assert_eq!(f["evidence"]["message_id"], 1);
    assert_eq!(f["evidence"]["sop_instance"], CT_SMALL_INSTANCE);
    // Correctly labelled, the same bytes conform.
    assert_not_raised(&good, "dataset-encoding-differs");
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
    let Some((scene, py, _)) = conformance_scene("private-ts", &["dumpcap"]) else {
        return;
    };
    let port = free_port();
    let p = port.to_string();
    let scp = data_peer(
        &scene,
        &py,
        "private-scp",
        port,
        &["private-scp", &p, PRIVATE_TS],
    );
    let mut out = String::new();
    let capture = scene.capture("private-ts", &[port], || {
        out = data_run(
            &scene,
            &py,
            "private-scu",
            &["private-scu", &p, "PRIVSCP", "PRIVSCU", PRIVATE_TS],
        );
    });
    drop(scp);
    assert!(
        out.contains(&format!("accepted 1.2.840.10008.5.1.4.1.1.2 {PRIVATE_TS}")),
        "the private syntax was not negotiated:\n{out}"
    );

    // The vendor's two AEs: CT Image Storage in `ts`, Verification as pynetdicom has it.
    let vendor = |device: &str, title: &str, side: &str, role: &str, ts: &str, tail: &str| {
        statement(
            device,
            title,
            &format!("{side} = true"),
            &[("CTImageStorage", role, ts), ("Verification", role, PY_TS)],
            tail,
        )
    };
    let scu = |ts: &str, tail: &str| vendor("VENDOR_SCU", "PRIVSCU", "initiator", "SCU", ts, tail);
    let scp_st =
        |ts: &str, tail: &str| vendor("VENDOR_SCP", "PRIVSCP", "acceptor", "SCP", ts, tail);
    // Statements that do not document the UID.
    scene.statement("scu.toml", &scu("[\"ExplicitVRLittleEndian\"]", ""));
    scene.statement("scp.toml", &scp_st("[\"ExplicitVRLittleEndian\"]", ""));
    let (findings, _, junit) = scene.analyze(&capture);
    let undocumented = |device: &str, verb: &str, from: &str| {
        let f = with(&findings, "private-transfer-syntax-undocumented", device);
        assert_eq!(f.len(), 1, "{}", dump(&findings));
        assert_eq!(
            text(&f[0]["observed"]),
            format!(
                "{verb} unregistered transfer syntax {PRIVATE_TS} for CTImageStorage (context 1)"
            )
        );
        assert_evidence(&f[0], &capture, port, Some(from));
        f[0].clone()
    };
    let proposed = undocumented("VENDOR_SCU", "proposed", "requestor");
    assert_eq!(proposed["claim"], "private_uids: no entry for this UID");
    undocumented("VENDOR_SCP", "accepted", "acceptor");
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
    scene.assert_conforms("scp.toml", &scp_st(&claimed, &private), &capture);
}

// ---------------------------------------------------------------------------------------
// pdu-exceeds-peer-max

#[test]
fn a_sender_ignoring_the_peers_max_length_is_reported() {
    let Some((scene, py, data)) = conformance_scene("peer-max", &["storescp", "dumpcap"]) else {
        return;
    };
    scene.statement("sender.toml", &ct_sender_statement());
    let port = free_port();
    // storescp advertises Max Length 8192.
    let scp = scene.storescp(port, &["--max-pdu", "8192"]);
    let file = data.test_files.join("CT_small.dcm");
    let send = |name: &str, pdu: &str| {
        let (out, capture) = send_captured(&scene, &py, name, port, &file, pdu);
        (scene.analyze(&capture).0, out, capture)
    };
    // 32768-byte P-DATA-TF PDUs, whatever storescp advertised.
    let (bad, out, bad_capture) = send("peer-max-over", "32768");
    // pynetdicom's own sizing.
    let (good, good_out, _) = send("peer-max-ok", "0");
    drop(scp);

    assert_eq!(
        with(&bad, "pdu-exceeds-peer-max", "PY_SENDER").len(),
        1,
        "{}\n{}",
        dump(&bad),
        out.text()
    );
    let f = one_of_rule(&bad, "pdu-exceeds-peer-max", "PY_SENDER");
    assert_eq!(f["claim"], "P-DATA-TF no larger than the peer's Max Length");
    assert_eq!(
        text(&f["observed"]),
        "sent a P-DATA-TF of 32768 bytes; the acceptor advertised Max Length 8192"
    );
    assert_eq!(f["severity"], "error");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    assert!(
        good_out.stdout.contains("stored 0000"),
        "{}",
        good_out.text()
    );
    assert_not_raised(&good, "pdu-exceeds-peer-max");
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
    let Some((scene, _, data)) =
        conformance_scene("max-send", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
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
        let capture = scene.capture(name, &[port], || {
            scene.storescu(port, "STORESCU", extra, std::slice::from_ref(&file))
        });
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("max-send-over", &[]);
    let (good, _) = send("max-send-ok", &["--max-send-pdu", "8192"]);
    drop(scp);

    let f = one_of_rule(&bad, "pdu-exceeds-claimed-max-send", "DCMTK_STORESCU");
    assert_eq!(f["claim"], "max_pdu_send = 8192");
    // DCMTK fills the peer's 16384 less the 6 bytes of the PDV item header.
    let size: u32 = text(&f["observed"])
        .strip_prefix("sent a P-DATA-TF of ")
        .and_then(|s| s.strip_suffix(" bytes"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{f}"));
    assert!((8193..=16384).contains(&size), "{f}");
    assert_eq!(f["severity"], "warning");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    // Within the peer's maximum: only the statement's own limit was exceeded.
    assert_not_raised(&bad, "pdu-exceeds-peer-max");
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// character-set-not-claimed, private-creator-undocumented

/// storescu sends `files` to storescp, captured; the capture and storescp's port.
fn storescu_capture(scene: &Scene, name: &str, files: &[PathBuf]) -> (PathBuf, u16) {
    scene.with_storescp(name, &[], |port| {
        scene.storescu(port, "STORESCU", &[], files)
    })
}

/// DCMTK_STORESCU sending `sops` with these character sets and private creators.
fn storescu_statement(character_sets: &str, private_creators: &str, sops: &[&str]) -> String {
    let caps: Vec<(&str, &str, &str)> = sops.iter().map(|sop| (*sop, "SCU", ALL_TS)).collect();
    statement(
        "DCMTK_STORESCU",
        "STORESCU",
        &format!(
            "initiator = true\ncharacter_sets = {character_sets}\nprivate_creators = {private_creators}"
        ),
        &caps,
        "",
    )
}

#[test]
fn multilingual_files_in_unclaimed_character_sets_are_reported() {
    let Some((scene, _, data)) =
        conformance_scene("charsets", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
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
    let (capture, port) = storescu_capture(&scene, "charsets", &files);
    let storescu = |sets: &str| {
        storescu_statement(
            sets,
            "[\"AGFA\"]",
            &[
                "SecondaryCaptureImageStorage",
                "ComputedRadiographyImageStorage",
            ],
        )
    };
    // Latin-1 and UTF-8 are claimed; Cyrillic, Greek and Japanese are not. ISO 2022 IR 6
    // (the default repertoire with code extensions) needs no claim of its own.
    let (findings, _, _) = scene.analyze_with(
        "storescu.toml",
        &storescu("[\"ISO_IR 100\", \"ISO_IR 192\"]"),
        &capture,
    );
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
    assert_not_raised(&findings, "text-invalid-in-character-set");

    // Every set the files declare claimed: nothing.
    scene.assert_conforms(
        "storescu.toml",
        &storescu(
            "[\"ISO_IR 100\", \"ISO_IR 192\", \"ISO_IR 144\", \"ISO_IR 126\", \"ISO 2022 IR 87\"]",
        ),
        &capture,
    );
}

#[test]
fn undocumented_private_creators_are_reported_for_the_sender() {
    let Some((scene, _, data)) =
        conformance_scene("creators", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    // CT_small.dcm carries nine GEMS_* private creators; MR_small.dcm none.
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let (capture, port) = storescu_capture(&scene, "creators", &files);
    let storescu = |creators: &str| {
        storescu_statement(
            "[\"ISO_IR 100\"]",
            creators,
            &["CTImageStorage", "MRImageStorage"],
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
    let (findings, _, _) = scene.analyze_with(
        "storescu.toml",
        &storescu(&format!("{documented:?}")),
        &capture,
    );
    let f = one_of_rule(&findings, "private-creator-undocumented", "DCMTK_STORESCU");
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("data set has private creator(s) ")
            && observed.contains("\"GEMS_IMPS_01\" (0029,")
            && observed.contains("\"GEMS_PARM_01\" (0043,"),
        "{observed}"
    );
    for d in documented {
        assert!(!observed.contains(d), "{d} is documented: {observed}");
    }
    assert_eq!(f["claim"], format!("private_creators = {documented:?}"));
    assert_eq!(f["evidence"]["sop_instance"], CT_SMALL_INSTANCE);
    assert_evidence(&f, &capture, port, Some("requestor"));

    let all: Vec<&str> = documented
        .iter()
        .copied()
        .chain(["GEMS_IMPS_01", "GEMS_PARM_01"])
        .collect();
    scene.assert_conforms("storescu.toml", &storescu(&format!("{all:?}")), &capture);
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

/// A captured commitment exchange: the archive (commitment SCP) on `port`, the modality
/// listening for reports on `report_port`.
struct Commitment {
    capture: PathBuf,
    port: u16,
    report_port: u16,
}

/// The commitment SCP reporting in `mode` after `delay` s, the modality holding its
/// association at most `hold` s; the modality must print `expect`.
fn commitment(
    scene: &Scene,
    py: &Path,
    data: &PydicomData,
    (mode, delay, hold): (&str, &str, &str),
    expect: &str,
) -> Commitment {
    let (port, report_port) = (free_port(), free_port());
    let (p, r) = (port.to_string(), report_port.to_string());
    let archive = data_peer(
        scene,
        py,
        "archive",
        port,
        &["commit-scp", &p, mode, delay, &r],
    );
    let file = data.test_files.join("CT_small.dcm");
    let mut out = String::new();
    let capture = scene.capture(&format!("commit-{mode}"), &[port, report_port], || {
        out = data_run(
            scene,
            py,
            "modality",
            &["commit-scu", &p, &r, file.to_str().unwrap(), hold],
        );
    });
    drop(archive);
    assert!(out.contains(expect), "{out}");
    Commitment {
        capture,
        port,
        report_port,
    }
}

/// The one storage-commitment-overdue finding: no report within the claimed 1 s of the
/// N-ACTION (message 1, which the evidence points at).
fn assert_overdue_within_1_s(findings: &[Value], c: &Commitment) -> Value {
    let f = with(findings, "storage-commitment-overdue", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(findings));
    assert_eq!(f[0]["claim"], "storage_commitment.max_wait_s = 1");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("no N-EVENT-REPORT for transaction ")
            && observed
                .ends_with("(1 instance(s)) within 1 s of the N-ACTION (its report is overdue)"),
        "{observed}"
    );
    assert_eq!(f[0]["evidence"]["message_id"], 1);
    assert_evidence(&f[0], &c.capture, c.port, None);
    f[0].clone()
}

#[test]
fn a_commitment_report_later_than_claimed_is_overdue() {
    let Some((scene, py, data)) = conformance_scene("commit-late", &["dumpcap"]) else {
        return;
    };
    // The report comes on a new association 3 s after the N-ACTION.
    let c = commitment(&scene, &py, &data, ("new", "3", "15"), "report received");

    // Claimed: reports within 1 s, on the same association.
    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"same_association\"]", "1"),
        &c.capture,
    );
    // The deadline passes in capture time as the report's association opens, before the
    // report itself: the finding is made then, against the N-ACTION, and the late report
    // is not reported overdue a second time.
    let f = assert_overdue_within_1_s(&findings, &c);
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
    assert_evidence(&a[0], &c.capture, c.report_port, Some("requestor"));
    let related = a[0]["evidence"]["related"].as_array().unwrap();
    assert_eq!(related.len(), 1, "{}", a[0]);
    assert_eq!(
        related[0]["association"], f["evidence"]["association"],
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
    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
        &c.capture,
    );
    sole(&findings, "storage-commitment-overdue", "PY_ARCHIVE");

    // Claimed wait long enough: nothing.
    scene.assert_conforms(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
        &c.capture,
    );
}

#[test]
fn a_commitment_never_reported_is_overdue_once_the_claimed_wait_passed() {
    let Some((scene, py, data)) = conformance_scene("commit-never", &["dumpcap"]) else {
        return;
    };
    // No report at all; the modality keeps its association 3 s, then releases.
    let c = commitment(&scene, &py, &data, ("none", "0", "3"), "no report");

    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
        &c.capture,
    );
    // The evidence points at the N-ACTION (pynetdicom numbers it 1, as the C-STORE).
    assert_overdue_within_1_s(&findings, &c);
    assert_eq!(findings.len(), 1, "{}", dump(&findings));

    // The capture ends before a 10 s deadline: it proves nothing, nothing is reported.
    scene.assert_conforms(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
        &c.capture,
    );
}

#[test]
fn a_commitment_report_on_an_unclaimed_kind_of_association_is_reported() {
    let Some((scene, py, data)) = conformance_scene("commit-assoc", &["dumpcap"]) else {
        return;
    };
    let same = commitment(&scene, &py, &data, ("same", "0.5", "15"), "report received");
    let new = commitment(&scene, &py, &data, ("new", "0.5", "15"), "report received");

    // Reported on the same association; the statement says new associations only.
    let claim_new = archive_statement("[\"new_association\"]", "60");
    let (findings, _, _) = scene.analyze_with("archive.toml", &claim_new, &same.capture);
    let f = sole(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(
        f["claim"],
        "storage_commitment.report_on = [new_association]"
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("sent the report for transaction ")
            && observed.contains(" on same association (association #"),
        "{observed}"
    );
    assert_evidence(&f, &same.capture, same.port, Some("acceptor"));
    let related = f["evidence"]["related"].as_array().unwrap();
    assert_eq!(
        f["evidence"]["association"], related[0]["association"],
        "{f}"
    );
    // The new-association report conforms to that claim.
    scene.assert_conforms("archive.toml", &claim_new, &new.capture);

    // And the other way round.
    let claim_same = archive_statement("[\"same_association\"]", "60");
    let (findings, _, _) = scene.analyze_with("archive.toml", &claim_same, &new.capture);
    let f = sole(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(
        f["claim"],
        "storage_commitment.report_on = [same_association]"
    );
    assert!(
        text(&f["observed"]).contains(" on new association (association #"),
        "{f}"
    );
    assert_evidence(&f, &new.capture, new.report_port, Some("requestor"));
    scene.assert_conforms("archive.toml", &claim_same, &same.capture);
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

/// pynetdicom waited longer than claimed (severity info), then aborted: it "gave up
/// (A-ABORT) after waiting" and then `what`.
fn assert_pynetdicom_gave_up(f: &Value, what: &str) {
    assert_eq!(f["severity"], "info");
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("gave up (A-ABORT) after waiting ") && observed.ends_with(what),
        "{observed}"
    );
}

/// An association with `acceptor` on `port`, idle (Verification, nothing sent) for at most
/// `hold` s, which the acceptor ends; captured.
fn idle_association(
    scene: &Scene,
    py: &Path,
    name: &str,
    port: u16,
    acceptor: &str,
    hold: &str,
) -> PathBuf {
    let mut out = String::new();
    let capture = scene.capture(name, &[port], || {
        out = data_run(
            scene,
            py,
            "idle",
            &["idle", &port.to_string(), acceptor, "IDLER", hold],
        );
    });
    assert!(out.contains("ended by the acceptor"), "{out}");
    capture
}

#[test]
fn storescp_ending_an_idle_association_before_its_claimed_timeout() {
    let Some((scene, py, _)) = conformance_scene("timeout-short", &["storescp", "dumpcap"]) else {
        return;
    };
    let port = free_port();
    // storescp's socket timeout ends an association idle for 2 s.
    let scp = scene.storescp(port, &["--socket-timeout", "2"]);
    let capture = idle_association(&scene, &py, "timeout-short", port, "STORESCP", "10");
    drop(scp);
    let storescp = TimeoutClaim {
        device: "DCMTK_STORESCP",
        title: "STORESCP",
        side: "acceptor",
        capability: ("Verification", "SCP", ALL_TS),
    };
    let f = storescp.finding(
        (&scene, &capture),
        "{ idle = 10 }",
        ("timeout-shorter-than-claimed", "timeouts_s.idle = 10"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(observed.starts_with("gave up ("), "{observed}");
    assert!(observed.ends_with(" on an idle association"), "{observed}");
    assert_evidence(&f, &capture, port, Some("acceptor"));

    // Claimed as it behaves: nothing.
    storescp.assert_silent((&scene, &capture), "{ idle = 2 }");
}

#[test]
fn pynetdicom_ending_an_idle_association_later_than_claimed() {
    let Some((scene, py, _)) = conformance_scene("timeout-long", &["dumpcap"]) else {
        return;
    };
    let port = free_port();
    // pynetdicom's network timeout aborts an association idle for 4 s.
    let scp = data_peer(
        &scene,
        &py,
        "idle-scp",
        port,
        &["idle-scp", &port.to_string(), "4"],
    );
    let capture = idle_association(&scene, &py, "timeout-long", port, "IDLESCP", "15");
    drop(scp);
    let idle_scp = TimeoutClaim {
        device: "PY_IDLESCP",
        title: "IDLESCP",
        side: "acceptor",
        capability: ("Verification", "SCP", PY_TS),
    };
    let f = idle_scp.finding(
        (&scene, &capture),
        "{ idle = 1.5 }",
        ("timeout-longer-than-claimed", "timeouts_s.idle = 1.5"),
        3.5..6.0,
    );
    assert_pynetdicom_gave_up(&f, " on an idle association");
    assert_evidence(&f, &capture, port, Some("acceptor"));

    idle_scp.assert_silent((&scene, &capture), "{ idle = 4 }");
}

#[test]
fn storescu_giving_up_on_a_slow_response_before_its_claimed_dimse_timeout() {
    let Some((scene, py, data)) = conformance_scene("timeout-dimse", &["storescu", "dumpcap"])
    else {
        return;
    };
    let port = free_port();
    // The SCP answers C-STORE after 5 s; storescu waits 2 s.
    let scp = data_peer(
        &scene,
        &py,
        "slow-scp",
        port,
        &["slow-scp", &port.to_string(), "5"],
    );
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
    let mut out = None;
    let capture = scene.capture("timeout-dimse", &[port], || {
        out = Some(run(
            "storescu",
            command("storescu", &args),
            scene.path(),
            Duration::from_secs(30),
        ));
    });
    drop(scp);
    let out = out.unwrap();
    assert!(
        !out.status.success(),
        "storescu did not time out:\n{}",
        out.text()
    );
    let storescu = TimeoutClaim {
        device: "DCMTK_STORESCU",
        title: "STORESCU",
        side: "initiator",
        capability: ("MRImageStorage", "SCU", ALL_TS),
    };
    let f = storescu.finding(
        (&scene, &capture),
        "{ dimse = 30 }",
        ("timeout-shorter-than-claimed", "timeouts_s.dimse = 30"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.contains(" for a DIMSE response (its oldest unanswered request was sent "),
        "{observed}"
    );
    assert_evidence(&f, &capture, port, Some("requestor"));

    storescu.assert_silent((&scene, &capture), "{ dimse = 2 }");
}

/// A requestor that gets no answer to its A-ASSOCIATE-RQ: the mute acceptor reads it and
/// never answers, so what ends the association is the requestor's ARTIM (ACSE) timeout.
fn unanswered_association(
    scene: &Scene,
    py: &Path,
    name: &str,
    requestor: impl FnOnce(u16) -> std::process::Command,
) -> (PathBuf, String) {
    let port = free_port();
    let mute = data_peer(
        scene,
        py,
        "mute-scp",
        port,
        &["mute-scp", &port.to_string(), "30"],
    );
    let mut out = None;
    let capture = scene.capture(name, &[port], || {
        out = Some(run(
            name,
            requestor(port),
            scene.path(),
            Duration::from_secs(60),
        ));
    });
    drop(mute);
    (capture, out.unwrap().text())
}

#[test]
fn echoscu_giving_up_on_an_association_answer_before_its_claimed_artim() {
    let Some((scene, py, _)) = conformance_scene("timeout-artim-short", &["echoscu", "dumpcap"])
    else {
        return;
    };
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
    let echoscu = TimeoutClaim {
        device: "DCMTK_ECHOSCU",
        title: "ECHOSCU",
        side: "initiator",
        capability: ("Verification", "SCU", ALL_TS),
    };
    let f = echoscu.finding(
        (&scene, &capture),
        "{ artim = 30 }",
        ("timeout-shorter-than-claimed", "timeouts_s.artim = 30"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("gave up (") && observed.ends_with(" for the A-ASSOCIATE answer"),
        "{observed}"
    );
    assert_eq!(text(&f["evidence"]["from"]), "requestor", "{f}");

    // Claimed as it behaves: nothing. (The idle and DIMSE claims do not apply while the
    // association is not established.)
    echoscu.assert_silent((&scene, &capture), "{ artim = 2, idle = 60, dimse = 60 }");
}

#[test]
fn pynetdicom_giving_up_on_an_association_answer_later_than_claimed() {
    let Some((scene, py, _)) = conformance_scene("timeout-artim-long", &["dumpcap"]) else {
        return;
    };
    // pynetdicom waits 4 s for the A-ASSOCIATE-AC (acse_timeout), then aborts.
    let (capture, out) = unanswered_association(&scene, &py, "artim-scu", |port| {
        scene.script(
            &py,
            "data.py",
            &["artim-scu", &port.to_string(), "MUTE", "PYSCU", "4"],
        )
    });
    assert!(out.contains("gave up after"), "{out}");
    let pyscu = TimeoutClaim {
        device: "PY_SCU",
        title: "PYSCU",
        side: "initiator",
        capability: ("Verification", "SCU", PY_TS),
    };
    let f = pyscu.finding(
        (&scene, &capture),
        "{ artim = 1.5 }",
        ("timeout-longer-than-claimed", "timeouts_s.artim = 1.5"),
        3.5..6.0,
    );
    assert_pynetdicom_gave_up(&f, " for the A-ASSOCIATE answer");
    assert_eq!(text(&f["evidence"]["from"]), "requestor", "{f}");

    pyscu.assert_silent((&scene, &capture), "{ artim = 4 }");
}

// ---------------------------------------------------------------------------------------
// implementation-uid-changed

#[test]
fn an_implementation_class_uid_other_than_claimed_is_reported() {
    let Some((scene, py, data)) = conformance_scene("impl-uid", &["storescp", "dumpcap"]) else {
        return;
    };
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let file = data.test_files.join("MR_small.dcm");
    let (out, capture) = send_captured(&scene, &py, "impl-uid", port, &file, "0");
    drop(scp);
    assert!(out.status.success(), "send failed:\n{}", out.text());
    assert!(out.stdout.contains("stored 0000"), "{}", out.text());
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
    let (findings, _, _) = scene.analyze_with(
        "sender.toml",
        &sender("1.2.826.0.1.3680043.9.3811.1.5.0"),
        &capture,
    );
    let f = sole(&findings, "implementation-uid-changed", "PY_SENDER");
    assert_eq!(
        f["claim"],
        "implementation_class_uid = \"1.2.826.0.1.3680043.9.3811.1.5.0\""
    );
    assert_eq!(
        text(&f["observed"]),
        format!("sent Implementation Class UID {real:?}")
    );
    assert_evidence(&f, &capture, port, Some("requestor"));

    scene.assert_conforms("sender.toml", &sender(&real), &capture);
}
