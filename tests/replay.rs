#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap replay` against real peers: a storescu -> storescp session captured with
//! dumpcap is replayed against a fresh storescp (same statuses and contexts), against a
//! pynetdicom SCP that supports fewer SOP classes (the diff shows it), and against a fresh
//! Orthanc (same statuses). The original destination and incomplete recordings are
//! refused.
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A pynetdicom storage SCP that supports CT Image Storage only.
const CT_ONLY_PY: &str = r#"
import sys
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification, CTImageStorage
ae = AE(ae_title="CTONLY")
ae.add_supported_context(Verification)
ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000)])
"#;

/// storescp as STORESCP (its default transfer syntaxes) writing into `dir/received-NAME`.
fn storescp(dir: &Path, name: &str) -> (Proc, u16) {
    peers::storescp_with(
        name,
        &dir.join(format!("received-{name}")),
        dir,
        &["-aet", "STORESCP"],
    )
}

/// Captures a storescu session (CT_small + MR_small) to a storescp; also a second,
/// headers-only capture (snap length 96) of the same traffic. Returns both and the port
/// storescp listened on.
fn record_session(dir: &Path, test_files: &Path) -> (PathBuf, PathBuf, u16) {
    let (_scp, port) = storescp(dir, "storescp-original");
    let snapped_file = dir.join("snapped.pcapng");
    let mut snapped = Proc::spawn(
        "dumpcap-snapped",
        command(
            "dumpcap",
            &[
                "-i",
                "lo",
                "-q",
                "-s",
                "96",
                "-f",
                &format!("tcp port {port}"),
                "-w",
                snapped_file.to_str().unwrap(),
            ],
        ),
        dir,
    );
    assert!(wait_until(Duration::from_secs(15), || snapped
        .stderr()
        .contains("Capturing on")));
    let capture = Capture::start("session", &[port], dir);
    run_ok(
        "storescu",
        command(
            "storescu",
            &[
                "-aet".to_string(),
                "MODALITY".into(),
                "-aec".into(),
                "STORESCP".into(),
                "127.0.0.1".into(),
                port.to_string(),
                test_files.join("CT_small.dcm").display().to_string(),
                test_files.join("MR_small.dcm").display().to_string(),
            ],
        ),
        dir,
        Duration::from_secs(30),
    );
    let file = capture.finish();
    snapped.stop("INT", Duration::from_secs(10));
    (file, snapped_file, port)
}

fn replay(dir: &Path, name: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("replay").args(args);
    let out = run(name, cmd, dir, Duration::from_secs(120));
    (out.status.code().unwrap_or(-1), out.stdout)
}

fn replay_json(dir: &Path, name: &str, args: &[&str]) -> (i32, Vec<Value>) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out) = replay(dir, name, &a);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    (code, v.as_array().unwrap().clone())
}

fn statuses(summary: &Value) -> Vec<(String, String)> {
    summary["messages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, m)| {
            (
                id.clone(),
                m["status"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

#[test]
fn replay_reproduces_a_storescu_session_and_refuses_what_it_must() {
    let Some((_, data)) = require_peers(
        "replay_reproduces_a_storescu_session",
        &["storescp", "storescu", "dumpcap"],
    ) else {
        return;
    };
    let dir = temp_dir("replay-storescp");
    let (capture, snapped, original) = record_session(dir.path(), &data.test_files);

    // Against a fresh storescp: same contexts, same statuses.
    let (_scp, fresh) = storescp(dir.path(), "storescp-fresh");
    let to = format!("127.0.0.1:{fresh}");
    let cap = capture.to_str().unwrap();
    let (code, out) = replay_json(dir.path(), "replay-fresh", &[cap, "--to", &to, "--fast"]);
    assert_eq!(out.len(), 1, "{out:#?}");
    let a = &out[0];
    assert_eq!(code, 0, "{a:#}");
    assert!(a["refused"].is_null(), "{a:#}");
    assert_eq!(a["differences"].as_array().unwrap().len(), 0, "{a:#}");
    assert_eq!(a["replay"]["association"], "accepted");
    let st = statuses(&a["replay"]);
    assert_eq!(
        st,
        vec![("1".into(), "0000".into()), ("2".into(), "0000".into())],
        "{a:#}"
    );
    assert_eq!(statuses(&a["original"]), st);
    assert_eq!(a["original"]["contexts"], a["replay"]["contexts"]);
    assert_eq!(a["replay"]["ending"], "released");
    let received = std::fs::read_dir(dir.path().join("received-storescp-fresh"))
        .unwrap()
        .count();
    assert_eq!(received, 2);

    // With the original pacing and an AE title rewrite, as text.
    let (code, text) = replay(
        dir.path(),
        "replay-paced",
        &[cap, "--to", &to, "--calling-ae", "REPLAYER"],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("REPLAYER -> STORESCP"), "{text}");
    assert!(text.contains("no differences"), "{text}");

    // The original destination is refused unless allowed.
    let orig = format!("127.0.0.1:{original}");
    let (code, out) = replay_json(dir.path(), "replay-original", &[cap, "--to", &orig]);
    assert_eq!(code, 1);
    assert!(
        out[0]["refused"]
            .as_str()
            .unwrap()
            .contains("original destination"),
        "{out:#?}"
    );

    // A dry run says what would be sent.
    let (code, text) = replay(dir.path(), "replay-dry", &[cap, "--to", &to, "--dry-run"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("A-ASSOCIATE-RQ") && text.contains("A-RELEASE-RQ"),
        "{text}"
    );

    // A headers-only capture is refused as incomplete, with the reason.
    let (code, out) = replay_json(
        dir.path(),
        "replay-snapped",
        &[snapped.to_str().unwrap(), "--to", &to],
    );
    assert_eq!(code, 1);
    let why = out[0]["refused"].as_str().unwrap();
    assert!(
        why.contains("incomplete recording") && why.contains("missing"),
        "{why}"
    );
}

#[test]
fn replay_against_an_scp_without_the_sop_class_shows_the_difference() {
    let Some((py, data)) = require_peers(
        "replay_against_an_scp_without_the_sop_class",
        &["storescp", "storescu", "dumpcap"],
    ) else {
        return;
    };
    let dir = temp_dir("replay-ctonly");
    let (capture, _, _) = record_session(dir.path(), &data.test_files);
    std::fs::write(dir.path().join("ctonly.py"), CT_ONLY_PY).unwrap();
    let no_args: [&str; 0] = [];
    let (_scp, port) = peers::python_scp(
        "ctonly",
        &py,
        &dir.path().join("ctonly.py"),
        &no_args,
        dir.path(),
    );
    let to = format!("127.0.0.1:{port}");
    let (code, out) = replay_json(
        dir.path(),
        "replay-ctonly",
        &[
            capture.to_str().unwrap(),
            "--to",
            &to,
            "--fast",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(code, 1, "{out:#?}");
    let a = &out[0];
    let diffs: Vec<&str> = a["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        diffs.iter().any(|d| d.contains("MRImageStorage")
            && d.contains("acceptance")
            && d.contains("abstract-syntax-not-supported")),
        "{diffs:?}"
    );
    // The CT store still succeeds, the MR one does not.
    assert_eq!(a["replay"]["messages"]["1"]["status"], "0000", "{a:#}");
    assert!(
        diffs
            .iter()
            .any(|d| d.starts_with("message 2 C-STORE: status 0000 ->")),
        "{diffs:?}"
    );
}

#[test]
fn replay_against_a_fresh_orthanc_reproduces_the_statuses() {
    let Some((_, data)) = require_peers(
        "replay_against_a_fresh_orthanc",
        &["storescp", "storescu", "dumpcap", "Orthanc"],
    ) else {
        return;
    };
    let dir = temp_dir("replay-orthanc");
    let (capture, _, _) = record_session(dir.path(), &data.test_files);
    let port = free_port();
    let _orthanc = peers::orthanc(
        dir.path(),
        "orthanc",
        port,
        serde_json::json!({
            "DicomModalities": { "probe": ["DICOMTAP", "127.0.0.1", free_port()] },
        }),
    );
    let to = format!("127.0.0.1:{port}");
    let (_, out) = replay_json(
        dir.path(),
        "replay-orthanc",
        &[
            capture.to_str().unwrap(),
            "--to",
            &to,
            "--fast",
            "--called-ae",
            "ORTHANC",
        ],
    );
    let a = &out[0];
    assert!(
        a["refused"].is_null() && a["problems"].as_array().unwrap().is_empty(),
        "{a:#}"
    );
    assert_eq!(a["replay"]["association"], "accepted", "{a:#}");
    assert_eq!(statuses(&a["replay"]), statuses(&a["original"]), "{a:#}");
    // Orthanc may choose other transfer syntaxes; statuses are what must match.
    let diffs = a["differences"].as_array().unwrap();
    assert!(
        diffs
            .iter()
            .all(|d| !d.as_str().unwrap().contains("status")),
        "{diffs:?}"
    );

    // A C-GET session (the acceptor sends C-STORE requests the requestor answers),
    // recorded from the probe, replays to the same Orthanc when explicitly allowed.
    let capture = Capture::start("probe-session", &[port], dir.path());
    let mut probe = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    probe.args([
        "probe",
        "--allow-writes",
        "--target",
        &to,
        "--called-ae",
        "ORTHANC",
        "find-move",
    ]);
    run_ok("probe", probe, dir.path(), Duration::from_secs(120));
    let file = capture.finish();
    let (code, out) = replay_json(
        dir.path(),
        "replay-get",
        &[
            file.to_str().unwrap(),
            "--to",
            &to,
            "--fast",
            "--allow-original-destination",
        ],
    );
    assert_eq!(code, 0, "{out:#?}");
    let get = out
        .iter()
        .find(|a| a["original"]["messages"]["1"]["command"] == "C-GET")
        .unwrap_or_else(|| panic!("no C-GET association: {out:#?}"));
    assert_eq!(get["replay"]["messages"]["1"]["status"], "0000", "{get:#}");
    assert!(get["differences"].as_array().unwrap().is_empty(), "{get:#}");
}

/// A study recorded against a storescp that accepts JPEG 2000 (`+xa`), replayed to a
/// plain storescp (uncompressed only): each context proposes only the recorded transfer
/// syntax, the JPEG 2000 object's context is refused, that message is skipped with the
/// reason, and the uncompressed objects are stored; the target never aborts.
#[test]
fn replay_to_a_target_that_negotiates_differently_skips_what_it_cannot_take() {
    let Some((_, data)) = require_peers(
        "replay_negotiates_differently",
        &["storescp", "storescu", "dumpcap"],
    ) else {
        return;
    };
    let tmp = temp_dir("replay-renegotiate");
    let dir = tmp.path();
    let (_orig, port) = peers::storescp_with(
        "storescp-all",
        &dir.join("received-all"),
        dir,
        &["+xa", "-aet", "STORESCP"],
    );
    let capture = Capture::start("renegotiate", &[port], dir);
    let files = ["CT_small.dcm", "JPEG2000.dcm", "MR_small.dcm"]
        .map(|f| data.test_files.join(f).display().to_string());
    let mut args: Vec<String> = ["-R", "-xw", "-aet", "MODALITY", "-aec", "STORESCP"]
        .map(String::from)
        .to_vec();
    args.extend(["127.0.0.1".to_string(), port.to_string()]);
    args.extend(files);
    run_ok(
        "storescu",
        command("storescu", &args),
        dir,
        Duration::from_secs(60),
    );
    let capture = capture.finish();

    let (_fresh, fresh) = storescp(dir, "storescp-plain");
    let to = format!("127.0.0.1:{fresh}");
    let (code, out) = replay_json(
        dir,
        "replay-plain",
        &[capture.to_str().unwrap(), "--to", &to, "--fast"],
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    let a = &out[0];
    assert_eq!(code, 1, "differences: {a:#}");
    assert!(a["problems"].as_array().unwrap().is_empty(), "{a:#}");
    let skipped: Vec<&str> = a["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 1, "{a:#}");
    assert!(
        skipped[0].starts_with("message 2 (C-STORE-RQ")
            && skipped[0].contains("the target refused context")
            && skipped[0].contains("SecondaryCaptureImageStorage"),
        "{skipped:?}"
    );
    assert_eq!(a["replay"]["ending"], "released", "{a:#}");
    let st = statuses(&a["replay"]);
    assert_eq!(
        st,
        vec![("1".into(), "0000".into()), ("3".into(), "0000".into())],
        "{a:#}"
    );
    let received = std::fs::read_dir(dir.join("received-storescp-plain"))
        .unwrap()
        .count();
    assert_eq!(received, 2, "CT and MR stored");
}
