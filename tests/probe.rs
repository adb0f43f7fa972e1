#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap probe` against real peers: DCMTK storescp, Orthanc, and pynetdicom SCPs
//! written here to misbehave the ways the probe must catch (silent Success in Storage
//! Commitment, wildcards applied to the surname only, a claimed character set mangled,
//! an ARTIM timeout shorter than the statement says).
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// pynetdicom SCPs, one misbehaviour per mode: `silent`, `surname`, `mangle`, `artim`.
const SCP_PY: &str = r#"
import fnmatch, sys, threading, time
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import (Verification, StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelFind)

mode, port = sys.argv[1], int(sys.argv[2])
TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
ae = AE(ae_title="PYSCP")
ae.add_supported_context(Verification, TS)
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, TS)
ae.add_supported_context(StorageCommitmentPushModel, [ImplicitVRLittleEndian])
ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind, TS)
ae.add_supported_context(PatientRootQueryRetrieveInformationModelFind, TS)
if mode == "artim":
    ae.acse_timeout = 2
stored = []

def on_store(event):
    ds = event.dataset
    stored.append(ds)
    return 0x0000

def on_action(event):
    info = event.action_information
    tx = info.TransactionUID
    refs = [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in info.ReferencedSOPSequence]
    assoc = event.assoc
    def report():
        time.sleep(0.5)
        ds = Dataset()
        ds.TransactionUID = tx
        failed = []
        for cls, inst in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = cls
            item.ReferencedSOPInstanceUID = inst
            item.FailureReason = 0x0110
            failed.append(item)
        ds.FailedSOPSequence = failed
        assoc.send_n_event_report(ds, 2, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
    threading.Thread(target=report, daemon=True).start()
    return 0x0000, None

def pn_match(pattern, value):
    if pattern in ("", "*"):
        return True
    if "*" in pattern or "?" in pattern:
        # The misbehaviour: the pattern is applied to the family name only.
        if mode == "surname":
            return fnmatch.fnmatchcase(value.split("^")[0], pattern)
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern

def date_match(q, v):
    if not q:
        return True
    if "-" in q:
        lo, hi = q.split("-", 1)
        return (not lo or v >= lo) and (not hi or v <= hi)
    return v == q

def on_find(event):
    q = event.identifier
    for ds in stored:
        name = str(ds.get("PatientName", ""))
        if not pn_match(str(q.get("PatientName", "") or ""), name):
            continue
        pid = str(q.get("PatientID", "") or "")
        if pid and not fnmatch.fnmatchcase(str(ds.get("PatientID", "")), pid):
            continue
        if not date_match(str(q.get("StudyDate", "") or ""), str(ds.get("StudyDate", ""))):
            continue
        suid = str(q.get("StudyInstanceUID", "") or "")
        if suid and suid != ds.StudyInstanceUID:
            continue
        rsp = Dataset()
        rsp.QueryRetrieveLevel = "STUDY"
        rsp.StudyInstanceUID = ds.StudyInstanceUID
        rsp.PatientID = ds.get("PatientID", "")
        rsp.StudyDate = ds.get("StudyDate", "")
        if mode == "mangle":
            # Claims the original character set, re-encodes the name through Latin-1.
            text = str(ds.PatientName).encode("latin_1", "replace").decode("latin_1")
            rsp.SpecificCharacterSet = "ISO_IR 100"
            rsp.PatientName = text
        else:
            if "SpecificCharacterSet" in ds:
                rsp.SpecificCharacterSet = ds.SpecificCharacterSet
            rsp.PatientName = ds.get("PatientName", "")
        yield 0xFF00, rsp

handlers = [(evt.EVT_C_STORE, on_store), (evt.EVT_N_ACTION, on_action), (evt.EVT_C_FIND, on_find)]
print("listening", flush=True)
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=handlers)
"#;

struct Scene {
    dir: TempDir,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let dir = temp_dir(&format!("probe-{name}"));
        std::fs::write(dir.path().join("scp.py"), SCP_PY).unwrap();
        Scene { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pyscp(&self, py: &Path, mode: &str, port: u16) -> Proc {
        let script = self.path().join("scp.py");
        let mut cmd = Command::new(py);
        cmd.arg(&script).arg(mode).arg(port.to_string());
        let mut p = Proc::spawn(&format!("pyscp-{mode}"), cmd, self.path());
        assert!(
            wait_for_port(port, Duration::from_secs(20), Some(&mut p)),
            "pynetdicom SCP did not start\n{}",
            p.output()
        );
        p
    }

    fn statement(&self, text: &str) -> PathBuf {
        let p = self.path().join("device.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs the probe with `--json`; returns the exit code and the report.
    fn probe(&self, name: &str, args: &[&str]) -> (i32, Value) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
        cmd.arg("probe").arg("--json").args(args);
        let out = run(name, cmd, self.path(), Duration::from_secs(240));
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("probe output is not JSON ({e}):\n{}", out.text()));
        (out.status.code().unwrap_or(-1), v)
    }
}

fn result<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check} in {report:#}"))
}

fn verdict(report: &Value, check: &str) -> String {
    result(report, check)["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

fn table_rows(report: &Value, check: &str) -> Vec<Vec<String>> {
    result(report, check)["table"]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn probe_echo_contexts_store_against_storescp() {
    if !require("probe_echo_contexts_store_against_storescp", &["storescp"]) {
        return;
    }
    let scene = Scene::new("storescp");
    let port = free_port();
    let received = scene.path().join("received");
    std::fs::create_dir_all(&received).unwrap();
    let mut scp = Proc::spawn(
        "storescp",
        command(
            "storescp",
            &[
                "-aet",
                "STORESCP",
                "-od",
                received.to_str().unwrap(),
                &port.to_string(),
            ],
        ),
        scene.path(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10), Some(&mut scp)));
    let html = scene.path().join("probe.html");
    let junit = scene.path().join("probe.xml");
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-storescp",
        &[
            "--target",
            &target,
            "--called-ae",
            "STORESCP",
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "echo",
            "contexts",
            "store",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    for c in ["echo", "contexts", "store"] {
        assert_eq!(verdict(&report, c), "pass", "{c}: {report:#}");
    }
    // storescp accepts every storage class in the uncompressed syntaxes.
    let rows = table_rows(&report, "contexts");
    assert!(
        rows.iter().any(|r| r[0] == "CTImageStorage"
            && r[1] == "ExplicitVRLittleEndian"
            && r[3] == "accepted"),
        "{rows:?}"
    );
    // The stored object and the full study (3 CT slices, 1 Secondary Capture) arrived.
    let files = std::fs::read_dir(&received).unwrap().count();
    assert_eq!(files, 5, "storescp received {files} files");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase") && xml.contains("name=\"store\""),
        "{xml}"
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("<h2 id=\"contexts\">")
    );
    // Disruptive checks never run unless named.
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["check"] != "malformed")
    );
}

#[test]
fn probe_commitment_catches_silent_success() {
    let Some((py, _)) = require_python("probe_commitment_catches_silent_success") else {
        return;
    };
    let scene = Scene::new("silent");
    let port = free_port();
    let _scp = scene.pyscp(&py, "silent", port);
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-silent",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--commit-wait",
            "10",
            "store",
            "commitment",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "store"), "pass", "{report:#}");
    assert_eq!(verdict(&report, "commitment"), "fail", "{report:#}");
    let c = result(&report, "commitment");
    assert!(
        c["summary"].as_str().unwrap().contains("silent Success"),
        "{c:#}"
    );
    assert!(
        c["details"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .unwrap()
            .contains("reported failed (reason 0110)")),
        "{c:#}"
    );
}

#[test]
fn probe_matching_catches_wildcard_on_surname_only() {
    let Some((py, _)) = require_python("probe_matching_catches_wildcard_on_surname_only") else {
        return;
    };
    let scene = Scene::new("surname");
    let port = free_port();
    let _scp = scene.pyscp(&py, "surname", port);
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-surname",
        &["--target", &target, "--called-ae", "PYSCP", "matching"],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "matching"), "fail");
    let rows = table_rows(&report, "matching");
    let row = |value: &str| {
        rows.iter()
            .find(|r| r[1] == value)
            .unwrap_or_else(|| panic!("no row {value}: {rows:?}"))
    };
    // Wildcards inside the surname work; across the component separator they do not.
    assert_eq!(row("<T>ALPHA*")[4], "ok");
    assert_eq!(row("<T>ALPHA^JOHN")[4], "ok");
    assert_eq!(row("<T>AL*A^JOHN")[4], "DIFFERS");
    assert_eq!(row("<T>ALPHA^J*")[4], "DIFFERS");
    assert_eq!(row("*^MARY")[4], "DIFFERS");
    assert_eq!(row("*ALPHA")[3], "A");
    assert_eq!(row("20210101-20211231")[4], "ok");
}

#[test]
fn probe_charset_catches_mangled_names() {
    let Some((py, data)) = require_python("probe_charset_catches_mangled_names") else {
        return;
    };
    let scene = Scene::new("mangle");
    let port = free_port();
    let _scp = scene.pyscp(&py, "mangle", port);
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "PYSCP"
[[ae]]
title = "PYSCP"
acceptor = true
character_sets = ["ISO_IR 100", "ISO_IR 144", "ISO_IR 126", "ISO_IR 192"]
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-mangle",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--statement",
            statement.to_str().unwrap(),
            "--charset-files",
            data.charset_files.to_str().unwrap(),
            "charset",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "charset"), "fail", "{report:#}");
    let rows = table_rows(&report, "charset");
    let row = |f: &str| {
        rows.iter()
            .find(|r| r[0] == f)
            .unwrap_or_else(|| panic!("no {f}: {rows:?}"))
    };
    assert!(row("chrRuss.dcm")[3].starts_with("MANGLED"), "{rows:?}");
    assert!(row("chrGreek.dcm")[3].starts_with("MANGLED"), "{rows:?}");
    // Latin-1 names survive a Latin-1 re-encoding.
    assert!(
        row("chrFren.dcm")[3].contains("same text") || row("chrFren.dcm")[3] == "identical",
        "{rows:?}"
    );
}

#[test]
fn probe_timeouts_catches_shorter_artim_than_claimed() {
    let Some((py, _)) = require_python("probe_timeouts_catches_shorter_artim_than_claimed") else {
        return;
    };
    let scene = Scene::new("artim");
    let port = free_port();
    let _scp = scene.pyscp(&py, "artim", port);
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "PYSCP"
[[ae]]
title = "PYSCP"
acceptor = true
timeouts_s = { artim = 30 }
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-artim",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--statement",
            statement.to_str().unwrap(),
            "--timeouts-max",
            "8",
            "timeouts",
        ],
    );
    // Differing from the statement is not a failure (unless --strict).
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        verdict(&report, "timeouts"),
        "differs-from-statement",
        "{report:#}"
    );
    let rows = table_rows(&report, "timeouts");
    let artim = rows.iter().find(|r| r[0].starts_with("ARTIM")).unwrap();
    let secs: f64 = artim[1].trim_end_matches(" s").parse().unwrap_or(f64::MAX);
    assert!((1.0..6.0).contains(&secs), "{rows:?}");
    assert!(artim[4].contains("shorter"), "{rows:?}");
}

/// A fresh Orthanc on free loopback ports, with the probe's move destination registered.
fn orthanc(dir: &Path, dicom_port: u16, move_port: u16) -> Proc {
    let db = dir.join("orthanc-db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("orthanc.json");
    let json = serde_json::json!({
        "Name": "dicomtap-probe-test",
        "StorageDirectory": db,
        "IndexDirectory": db,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": free_port(),
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomModalities": { "probe": ["DICOMTAP", "127.0.0.1", move_port] },
        "Plugins": [],
    });
    std::fs::write(&cfg, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let cmd = if is_root() && user_ids("orthanc").is_some() {
        // Only the database belongs to Orthanc; the test directory stays ours (dumpcap
        // and the other peers write there) but must be traversable.
        let _ = Command::new("chown")
            .arg("-R")
            .arg("orthanc")
            .arg(&db)
            .status();
        set_mode(dir, 0o755);
        command(
            "runuser",
            &["-u", "orthanc", "--", "Orthanc", cfg.to_str().unwrap()],
        )
    } else {
        command("Orthanc", &[cfg.to_str().unwrap()])
    };
    let mut p = Proc::spawn("orthanc", cmd, dir);
    assert!(
        wait_for_port(dicom_port, Duration::from_secs(30), Some(&mut p)),
        "Orthanc did not start\n{}",
        p.output()
    );
    p
}

#[test]
fn probe_echo_store_find_move_against_orthanc() {
    if !require("probe_echo_store_find_move_against_orthanc", &["Orthanc"]) {
        return;
    }
    let scene = Scene::new("orthanc");
    let (port, move_port) = (free_port(), free_port());
    let _orthanc = orthanc(scene.path(), port, move_port);
    let target = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe(
        "probe-orthanc",
        &[
            "--target",
            &target,
            "--called-ae",
            "ORTHANC",
            "--listen",
            &listen,
            "--move-ae",
            "DICOMTAP",
            "echo",
            "store",
            "find-move",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    for c in ["echo", "store", "find-move"] {
        assert_eq!(verdict(&report, c), "pass", "{c}: {report:#}");
    }
    let summary = result(&report, "find-move")["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        summary.contains("C-MOVE delivered it") && summary.contains("C-GET returned it"),
        "{summary}"
    );
}

#[test]
fn probe_store_find_move_matching_against_dcmqrscp() {
    if !require(
        "probe_store_find_move_matching_against_dcmqrscp",
        &["dcmqrscp"],
    ) {
        return;
    }
    let scene = Scene::new("dcmqrscp");
    let (port, move_port) = (free_port(), free_port());
    let db = scene.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = scene.path().join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\nprobe = (DICOMTAP, 127.0.0.1, {move_port})\nHostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nDCMQRSCP {} RW (200, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let mut qr = Proc::spawn(
        "dcmqrscp",
        command("dcmqrscp", &["-c", cfg.to_str().unwrap()]),
        scene.path(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(10), Some(&mut qr)),
        "dcmqrscp did not start\n{}",
        qr.output()
    );
    let target = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe(
        "probe-dcmqrscp",
        &[
            "--target",
            &target,
            "--called-ae",
            "DCMQRSCP",
            "--listen",
            &listen,
            "echo",
            "store",
            "commitment",
            "find-move",
            "matching",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    for c in ["echo", "store", "find-move", "matching"] {
        assert_eq!(verdict(&report, c), "pass", "{c}: {report:#}");
    }
    // dcmqrscp offers no Storage Commitment: skipped, not failed.
    assert_eq!(verdict(&report, "commitment"), "skipped", "{report:#}");
    let rows = table_rows(&report, "matching");
    let case = rows.iter().find(|r| r[1] == "<t>alpha^john").unwrap();
    assert_eq!(case[4], "case-sensitive", "{rows:?}");
}

#[test]
fn probe_matrix_echoes_every_source_to_every_destination() {
    if !require(
        "probe_matrix_echoes_every_source_to_every_destination",
        &["storescp"],
    ) {
        return;
    }
    let scene = Scene::new("matrix");
    let (port, down) = (free_port(), free_port());
    let mut scp = Proc::spawn(
        "storescp",
        command("storescp", &["-aet", "STORESCP", &port.to_string()]),
        scene.path(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10), Some(&mut scp)));
    let devices = scene.path().join("devices");
    std::fs::create_dir_all(&devices).unwrap();
    std::fs::write(
        devices.join("site.toml"),
        format!(
            r#"schema = "dicomtap-statement/1"
[device]
name = "SITE"
[[ae]]
title = "MODALITY"
initiator = true
[[ae]]
title = "STORESCP"
hosts = ["127.0.0.1"]
port = {port}
acceptor = true
accept_calling_ae_titles = ["DICOMTAP"]
[[ae]]
title = "GONE"
hosts = ["127.0.0.1"]
port = {down}
acceptor = true
"#
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args([
        "probe",
        "matrix",
        "--json",
        "--timeout",
        "3",
        "--source",
        "DICOMTAP",
        "--devices",
    ])
    .arg(&devices);
    let out = run("probe-matrix", cmd, scene.path(), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let m: Value = serde_json::from_str(&out.stdout).unwrap();
    let cell = |s: &str, d: &str| {
        m["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["source"] == s && c["destination"] == d)
            .unwrap_or_else(|| panic!("no cell {s} -> {d}: {m:#}"))
            .clone()
    };
    assert_eq!(cell("DICOMTAP", "STORESCP")["verdict"], "pass");
    // storescp answers anyone; the statement says it only accepts DICOMTAP.
    assert_eq!(
        cell("MODALITY", "STORESCP")["verdict"],
        "differs-from-statement"
    );
    assert_eq!(cell("MODALITY", "GONE")["verdict"], "fail");
}
