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

use crate::support;

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

fn gap_of(observed: &str) -> f64 {
    observed
        .split(" after waiting ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no gap in {observed:?}"))
}

mod commitment;
mod content;
mod encoding;
mod timeouts;
