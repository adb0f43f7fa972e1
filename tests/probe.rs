#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap probe` against real peers: DCMTK storescp (also over TLS), dcmqrscp, Orthanc,
//! and pynetdicom SCPs written here to misbehave the ways the probe must catch (silent
//! Success in Storage Commitment, wildcards applied to the surname only and Study Time
//! ignored, a claimed character set mangled, ARTIM and DIMSE timeouts shorter than the
//! statement says, fewer simultaneous associations than claimed, a crash on a data set
//! with an unknown VR).
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// pynetdicom SCPs, one misbehaviour per mode: `silent`, `surname`, `mangle`, `artim`,
/// `limit:N` (at most N associations), `crashvr` (the process dies on a data set it cannot
/// parse), `dimse` (2 s DIMSE and 3 s network timeouts; C-MOVE to the port in argv[3]),
/// `alphaonly` (keeps only the alphabetic group of a stored Patient's Name). Only
/// `surname` ignores Study Time in C-FIND.
const SCP_PY: &str = r#"
import fnmatch, os, sys, threading, time
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import (Verification, StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove, SecondaryCaptureImageStorage)

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
if mode.startswith("limit:"):
    ae.maximum_associations = int(mode.split(":")[1])
if mode == "dimse":
    ae.dimse_timeout = 2
    ae.network_timeout = 3
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove, TS)
    ae.add_requested_context(SecondaryCaptureImageStorage, TS)
stored = []

def on_store(event):
    if mode == "crashvr":
        try:
            for elem in event.dataset.iterall():
                elem.value
        except Exception:
            os._exit(3)
    ds = event.dataset
    ds.file_meta = event.file_meta
    if mode == "alphaonly" and "PatientName" in ds:
        ds.PatientName = str(ds.PatientName).split("=")[0]
    stored.append(ds)
    return 0x0000

def on_move(event):
    yield "127.0.0.1", int(sys.argv[3])
    uid = event.identifier.StudyInstanceUID
    matches = [ds for ds in stored if ds.StudyInstanceUID == uid]
    yield len(matches)
    for ds in matches:
        yield 0xFF00, ds

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
        if mode != "surname" and not date_match(str(q.get("StudyTime", "") or ""), str(ds.get("StudyTime", ""))):
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

handlers = [(evt.EVT_C_STORE, on_store), (evt.EVT_N_ACTION, on_action), (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_MOVE, on_move)]
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
        self.pyscp_args(py, mode, port, &[])
    }

    fn pyscp_args(&self, py: &Path, mode: &str, port: u16, extra: &[&str]) -> Proc {
        let script = self.path().join("scp.py");
        let mut cmd = Command::new(py);
        cmd.arg(&script).arg(mode).arg(port.to_string()).args(extra);
        let name = format!("pyscp-{}", mode.replace(':', "-"));
        let mut p = Proc::spawn(&name, cmd, self.path());
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
    // This SCP ignores Study Time: every time range matches all four studies.
    assert_eq!(row("080000-100000")[3], "ABCD");
    assert_eq!(row("080000-100000")[4], "DIFFERS");
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
    orthanc_with(dir, dicom_port, move_port, serde_json::json!({}))
}

/// [`orthanc`] with extra configuration entries.
fn orthanc_with(dir: &Path, dicom_port: u16, move_port: u16, extra: Value) -> Proc {
    let db = dir.join("orthanc-db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("orthanc.json");
    let mut json = serde_json::json!({
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
    if let (Some(j), Some(e)) = (json.as_object_mut(), extra.as_object()) {
        j.extend(e.clone());
    }
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
    // Claims UTF-8: the person-name component-group queries are then required.
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "DCMQRSCP"
[[ae]]
title = "DCMQRSCP"
acceptor = true
character_sets = ["ISO_IR 192"]
"#,
    );
    let (code, report) = scene.probe(
        "probe-dcmqrscp",
        &[
            "--target",
            &target,
            "--called-ae",
            "DCMQRSCP",
            "--statement",
            statement.to_str().unwrap(),
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
    let row = |value: &str| {
        rows.iter()
            .find(|r| r[1] == value)
            .unwrap_or_else(|| panic!("no row {value}: {rows:?}"))
    };
    // Component groups: the whole alphabetic=ideographic=phonetic value and a wildcard
    // over it match; dcmqrscp compares whole values, not single groups.
    assert_eq!(row("<T>YAMADA^TAROU=山田^太郎=やまだ^たろう")[4], "ok");
    assert_eq!(row("<T>YAMADA*")[4], "ok");
    assert_eq!(row("<T>YAMADA^TAROU")[4], "only the whole value matches");
    // Time ranges.
    assert_eq!(row("080000-100000")[3], "AC", "{rows:?}");
    assert_eq!(row("140000-")[3], "BD", "{rows:?}");
    assert_eq!(row("-083000")[3], "A", "{rows:?}");
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

/// A throwaway PKI made with `openssl`: a CA, a server certificate for
/// localhost/127.0.0.1 and a client certificate (one shared key).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        let ossl = |args: &[&str]| {
            let mut c = command("openssl", args);
            c.current_dir(&dir);
            run_ok("openssl", c, &dir, Duration::from_secs(60));
        };
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=dicomtap probe test CA",
        ]);
        ossl(&["genrsa", "-out", "leaf.key", "2048"]);
        for (name, subject, serial) in [
            ("server", "/O=dicomtap/CN=localhost", "11"),
            ("client", "/O=dicomtap/CN=probe", "12"),
        ] {
            let csr = format!("{name}.csr");
            let pem = format!("{name}.pem");
            ossl(&[
                "req", "-new", "-key", "leaf.key", "-out", &csr, "-subj", subject,
            ]);
            ossl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "30",
                "-extfile",
                "leaf.ext",
                "-out",
                &pem,
            ]);
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
}

#[test]
fn probe_over_tls_against_storescp_and_load_beyond_a_single_association() {
    if !require(
        "probe_over_tls_against_storescp_and_load_beyond_a_single_association",
        &["openssl", "storescp"],
    ) {
        return;
    }
    let scene = Scene::new("tls");
    let pki = Pki::new(scene.path());
    let port = free_port();
    let received = scene.path().join("received");
    std::fs::create_dir_all(&received).unwrap();
    // storescp with TLS, requiring a client certificate (DCMTK's default); one
    // association at a time.
    let mut scp = Proc::spawn(
        "storescp-tls",
        command(
            "storescp",
            &[
                "-aet",
                "STORESCP",
                "+tls",
                &pki.path("leaf.key"),
                &pki.path("server.pem"),
                "+cf",
                &pki.path("ca.pem"),
                "-od",
                received.to_str().unwrap(),
                &port.to_string(),
            ],
        ),
        scene.path(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10), Some(&mut scp)));
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "STORESCP"
[[ae]]
title = "STORESCP"
acceptor = true
max_associations = { acceptor = 1 }
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("leaf.key"),
    );
    let tls = [
        "--tls",
        "--tls-ca",
        ca.as_str(),
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
    ];
    let mut args = vec![
        "--target",
        &target,
        "--called-ae",
        "STORESCP",
        "--statement",
        statement.to_str().unwrap(),
        "--timeout",
        "3",
    ];
    args.extend(tls);
    let junit = scene.path().join("probe-tls.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    args.extend(["--junit", junit_arg.as_str()]);
    args.extend(["echo", "store", "max-pdu", "load"]);
    let (code, report) = scene.probe("probe-tls", &args);
    assert_eq!(code, 0, "{report:#}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"tls.version\" value=\"TLSv1."), "{xml}");
    for c in ["echo", "store", "max-pdu"] {
        assert_eq!(verdict(&report, c), "pass", "{c}: {report:#}");
    }
    assert!(
        report["tls"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{report:#}"
    );
    assert!(
        report["tls"]["cipher_suite"]
            .as_str()
            .is_some_and(|c| c.contains("GCM") || c.contains("CHACHA")),
        "{report:#}"
    );
    // The single object, the study of 4 and max-pdu's slice arrived through TLS.
    let files = std::fs::read_dir(&received).unwrap().count();
    assert!(files >= 5, "storescp received {files} files");
    // load: the statement's 1 + 1 associations over TLS; storescp takes one and leaves
    // the other unanswered instead of rejecting it.
    assert_eq!(
        verdict(&report, "load"),
        "differs-from-statement",
        "{report:#}"
    );
    let rows = table_rows(&report, "load");
    assert!(
        rows.iter().any(|r| r[0] == "accepted" && r[1] == "1"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r[0].starts_with("WORSE") && r[1] == "1"),
        "{rows:?}"
    );

    // Without a client certificate storescp refuses the handshake; a wrong server name
    // does not verify: both are reported, never silently downgraded to plain TCP.
    let (code, report) = scene.probe(
        "probe-tls-no-cert",
        &[
            "--target",
            &target,
            "--called-ae",
            "STORESCP",
            "--timeout",
            "3",
            "--tls",
            "--tls-ca",
            &ca,
            "echo",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "echo"), "fail", "{report:#}");
    let (code, report) = scene.probe(
        "probe-tls-wrong-name",
        &[
            "--target",
            &target,
            "--called-ae",
            "STORESCP",
            "--timeout",
            "3",
            "--tls",
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-server-name",
            "pacs.example",
            "echo",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    let summary = result(&report, "echo")["summary"].as_str().unwrap();
    assert!(summary.contains("TLS handshake"), "{summary}");
    assert!(report.get("tls").is_none(), "{report:#}");
}

#[test]
fn probe_load_catches_fewer_associations_than_claimed() {
    let Some((py, _)) = require_python("probe_load_catches_fewer_associations_than_claimed") else {
        return;
    };
    let scene = Scene::new("load");
    let claim = |n: u32| {
        format!(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"PYSCP\"\n[[ae]]\n\
             title = \"PYSCP\"\nacceptor = true\nmax_associations = {{ acceptor = {n} }}\n\
             [[ae.capability]]\nsop_class = \"Verification\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n\
             [[ae.capability]]\nsop_class = \"SecondaryCaptureImageStorage\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n"
        )
    };
    // Takes at most 2 associations, claims 10: 11 tried. (Under a burst pynetdicom
    // counts the associations still being negotiated, so it may take only 1.)
    let port = free_port();
    let _scp = scene.pyscp(&py, "limit:2", port);
    let statement = scene.statement(&claim(10));
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-load-2",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--statement",
            statement.to_str().unwrap(),
            "load",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        verdict(&report, "load"),
        "differs-from-statement",
        "{report:#}"
    );
    let rows = table_rows(&report, "load");
    let count = |rows: &[Vec<String>], what: &str| -> u32 {
        rows.iter()
            .filter(|r| r[0] == what)
            .map(|r| r[1].parse::<u32>().unwrap())
            .sum()
    };
    let accepted = count(&rows, "accepted");
    assert!((1..=2).contains(&accepted), "{rows:?}");
    assert_eq!(count(&rows, "C-ECHO Success"), accepted, "{rows:?}");
    assert_eq!(count(&rows, "C-STORE Success"), accepted, "{rows:?}");
    assert_eq!(count(&rows, "rejected"), 11 - accepted, "{rows:?}");
    assert!(
        rows.iter()
            .filter(|r| r[0] == "rejected")
            .all(|r| r[2].contains("local-limit-exceeded")),
        "{rows:?}"
    );
    let details = result(&report, "load")["details"].to_string();
    assert!(
        details.contains(&format!(
            "accepted {accepted} simultaneous associations, the statement claims 10"
        )),
        "{details}"
    );
}

#[test]
fn probe_load_as_claimed_by_dcmqrscp() {
    if !require("probe_load_as_claimed_by_dcmqrscp", &["dcmqrscp"]) {
        return;
    }
    let scene = Scene::new("load-dcmqrscp");
    let port = free_port();
    let db = scene.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = scene.path().join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 3\n\
             HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
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
    // Claims what it is configured for: 3. Four are tried, three accepted (each C-ECHO
    // and C-STORE), the fourth rejected with local-limit-exceeded.
    let statement = scene.statement(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"DCMQRSCP\"\n[[ae]]\n\
         title = \"DCMQRSCP\"\nacceptor = true\nmax_associations = { acceptor = 3 }\n\
         [[ae.capability]]\nsop_class = \"Verification\"\nrole = \"SCP\"\n\
         transfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n\
         [[ae.capability]]\nsop_class = \"SecondaryCaptureImageStorage\"\nrole = \"SCP\"\n\
         transfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n",
    );
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-load-dcmqrscp",
        &[
            "--target",
            &target,
            "--called-ae",
            "DCMQRSCP",
            "--statement",
            statement.to_str().unwrap(),
            "load",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(verdict(&report, "load"), "pass", "{report:#}");
    let summary = result(&report, "load")["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("4 simultaneous associations: 3 accepted, 1 rejected, 0 worse"),
        "{summary}"
    );
    let rows = table_rows(&report, "load");
    assert!(
        rows.iter()
            .any(|r| r[0] == "C-STORE Success" && r[1] == "3"),
        "{rows:?}"
    );
}

#[test]
fn probe_malformed_data_sets_catch_a_crash_on_an_unknown_vr() {
    let Some((py, _)) = require_python("probe_malformed_data_sets_catch_a_crash_on_an_unknown_vr")
    else {
        return;
    };
    let scene = Scene::new("crashvr");
    let port = free_port();
    let _scp = scene.pyscp(&py, "crashvr", port);
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-crashvr",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--timeout",
            "3",
            "malformed",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "malformed"), "fail", "{report:#}");
    let rows = table_rows(&report, "malformed");
    let at = rows
        .iter()
        .position(|r| r[0].contains("unknown VR code"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    // Up to the command-set cases the SCP survived; the unknown VR killed it.
    assert!(at > 0 && rows[at - 1][2].starts_with("Success"), "{rows:?}");
    assert!(rows[at][2].starts_with("FAILED"), "{rows:?}");
    assert_eq!(rows.len(), 11, "{rows:?}");
}

#[test]
fn probe_malformed_data_sets_against_storescp() {
    if !require("probe_malformed_data_sets_against_storescp", &["storescp"]) {
        return;
    }
    let scene = Scene::new("malformed-storescp");
    let port = free_port();
    let mut scp = Proc::spawn(
        "storescp",
        command(
            "storescp",
            &[
                "-aet",
                "STORESCP",
                "-od",
                scene.path().to_str().unwrap(),
                &port.to_string(),
            ],
        ),
        scene.path(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10), Some(&mut scp)));
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-malformed-storescp",
        &[
            "--target",
            &target,
            "--called-ae",
            "STORESCP",
            "--timeout",
            "3",
            "malformed",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(verdict(&report, "malformed"), "pass", "{report:#}");
    let rows = table_rows(&report, "malformed");
    let row = |needle: &str| {
        rows.iter()
            .find(|r| r[0].contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {rows:?}"))
    };
    // DCMTK cannot parse these data sets and aborts the association; it stays up.
    for case in [
        "unknown VR code",
        "length past the end",
        "without delimiters",
    ] {
        assert!(row(case)[1].contains("aborted"), "{case}: {rows:?}");
        assert_eq!(row(case)[2], "Success", "{case}: {rows:?}");
    }
    // A known tag with a wrong VR still parses: a C-STORE-RSP comes back.
    assert!(
        row("Rows (US) sent with VR FD")[1].starts_with("C-STORE-RSP"),
        "{rows:?}"
    );
}

#[test]
fn probe_timeouts_catches_shorter_dimse_timeouts_than_claimed() {
    let Some((py, _)) =
        require_python("probe_timeouts_catches_shorter_dimse_timeouts_than_claimed")
    else {
        return;
    };
    let scene = Scene::new("dimse");
    let (port, move_port) = (free_port(), free_port());
    let _scp = scene.pyscp_args(&py, "dimse", port, &[&move_port.to_string()]);
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "PYSCP"
[[ae]]
title = "PYSCP"
acceptor = true
timeouts_s = { dimse = 30 }
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe(
        "probe-dimse",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--statement",
            statement.to_str().unwrap(),
            "--listen",
            &listen,
            "--timeouts-max",
            "8",
            "timeouts",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        verdict(&report, "timeouts"),
        "differs-from-statement",
        "{report:#}"
    );
    let rows = table_rows(&report, "timeouts");
    let row = |needle: &str| {
        rows.iter()
            .find(|r| r[0].contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {rows:?}"))
    };
    let secs = |r: &Vec<String>| {
        r[1].trim_end_matches(" s")
            .parse::<f64>()
            .unwrap_or(f64::MAX)
    };
    // pynetdicom gives up on a message sent in parts after its 3 s network timeout...
    let partial = row("sent in parts");
    assert!((2.0..6.0).contains(&secs(partial)), "{rows:?}");
    assert!(partial[4].contains("shorter"), "{rows:?}");
    // ...and, as the C-MOVE SCU, on the held C-STORE-RSP after its 2 s DIMSE timeout.
    let sub = row("C-MOVE sub-operation");
    assert!((1.0..5.0).contains(&secs(sub)), "{rows:?}");
    assert!(sub[4].contains("shorter"), "{rows:?}");
    assert!(sub[2].contains("A-ABORT"), "{rows:?}");
}

#[test]
fn probe_timeouts_dimse_as_claimed_by_dcmqrscp() {
    if !require("probe_timeouts_dimse_as_claimed_by_dcmqrscp", &["dcmqrscp"]) {
        return;
    }
    let scene = Scene::new("dcmqrscp-dimse");
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
        command(
            "dcmqrscp",
            &["--dimse-timeout", "3", "-c", cfg.to_str().unwrap()],
        ),
        scene.path(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(10), Some(&mut qr)),
        "dcmqrscp did not start\n{}",
        qr.output()
    );
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "DCMQRSCP"
[[ae]]
title = "DCMQRSCP"
acceptor = true
timeouts_s = { dimse = 3 }
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe(
        "probe-dcmqrscp-dimse",
        &[
            "--target",
            &target,
            "--called-ae",
            "DCMQRSCP",
            "--statement",
            statement.to_str().unwrap(),
            "--listen",
            &listen,
            "--timeouts-max",
            "6",
            "timeouts",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(verdict(&report, "timeouts"), "pass", "{report:#}");
    let rows = table_rows(&report, "timeouts");
    for needle in ["sent in parts", "C-MOVE sub-operation"] {
        let r = rows
            .iter()
            .find(|r| r[0].contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {rows:?}"));
        assert_eq!(r[4], "as claimed", "{rows:?}");
        assert!(r[1].ends_with(" s") && !r[1].starts_with('>'), "{rows:?}");
    }
}

#[test]
fn probe_timeouts_and_matching_against_orthanc() {
    if !require("probe_timeouts_and_matching_against_orthanc", &["Orthanc"]) {
        return;
    }
    let scene = Scene::new("orthanc-timeouts");
    let (port, move_port) = (free_port(), free_port());
    // 4 s as SCP (idle, and a message sent in parts) and as SCU (C-MOVE sub-operations).
    let _orthanc = orthanc_with(
        scene.path(),
        port,
        move_port,
        serde_json::json!({ "DicomScpTimeout": 4, "DicomScuTimeout": 4 }),
    );
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "ORTHANC"
[[ae]]
title = "ORTHANC"
acceptor = true
timeouts_s = { idle = 4, dimse = 4 }
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe(
        "probe-orthanc-timeouts",
        &[
            "--target",
            &target,
            "--called-ae",
            "ORTHANC",
            "--statement",
            statement.to_str().unwrap(),
            "--listen",
            &listen,
            "--timeouts-max",
            "8",
            "matching",
            "timeouts",
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_ne!(verdict(&report, "timeouts"), "fail", "{report:#}");
    let rows = table_rows(&report, "timeouts");
    let row = |needle: &str| {
        rows.iter()
            .find(|r| r[0].contains(needle))
            .unwrap_or_else(|| panic!("no {needle}: {rows:?}"))
            .clone()
    };
    let secs = |r: &[String]| {
        r[1].trim_end_matches(" s")
            .parse::<f64>()
            .unwrap_or(f64::MAX)
    };
    for needle in ["idle", "C-MOVE sub-operation"] {
        let r = row(needle);
        assert_eq!(r[4], "as claimed", "{rows:?}");
        assert!((3.0..6.0).contains(&secs(&r)), "{rows:?}");
    }
    // The rest of a message: Orthanc 1.10 aborts after one to two DicomScpTimeouts.
    let partial = row("sent in parts");
    assert!((3.0..9.0).contains(&secs(&partial)), "{rows:?}");
    assert!(partial[2].contains("A-ABORT"), "{rows:?}");
    // Orthanc matches names case-insensitively (allowed for PN) and passes the rest,
    // time ranges included.
    assert_eq!(verdict(&report, "matching"), "pass", "{report:#}");
    let rows = table_rows(&report, "matching");
    let row = |value: &str| {
        rows.iter()
            .find(|r| r[1] == value)
            .unwrap_or_else(|| panic!("no row {value}: {rows:?}"))
    };
    assert!(
        row("<t>alpha^john")[4].starts_with("case-insensitive"),
        "{rows:?}"
    );
    assert_eq!(row("080000-100000")[3], "AC", "{rows:?}");
    assert_eq!(row("<T>YAMADA*")[3], "D", "{rows:?}");
}

#[test]
fn probe_matching_catches_component_groups_dropped_though_utf8_is_claimed() {
    let Some((py, _)) =
        require_python("probe_matching_catches_component_groups_dropped_though_utf8_is_claimed")
    else {
        return;
    };
    let scene = Scene::new("alphaonly");
    let port = free_port();
    let _scp = scene.pyscp(&py, "alphaonly", port);
    let statement = scene.statement(
        r#"schema = "dicomtap-statement/1"
[device]
name = "PYSCP"
[[ae]]
title = "PYSCP"
acceptor = true
character_sets = ["ISO_IR 192"]
"#,
    );
    let target = format!("127.0.0.1:{port}");
    let (code, report) = scene.probe(
        "probe-alphaonly",
        &[
            "--target",
            &target,
            "--called-ae",
            "PYSCP",
            "--statement",
            statement.to_str().unwrap(),
            "matching",
        ],
    );
    // Everything PS3.4 requires matches (time ranges included); the claimed UTF-8 name
    // with its ideographic and phonetic groups does not.
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        verdict(&report, "matching"),
        "differs-from-statement",
        "{report:#}"
    );
    let rows = table_rows(&report, "matching");
    let row = |value: &str| {
        rows.iter()
            .find(|r| r[1] == value)
            .unwrap_or_else(|| panic!("no row {value}: {rows:?}"))
    };
    assert_eq!(
        row("<T>YAMADA^TAROU=山田^太郎=やまだ^たろう")[4],
        "DIFFERS from the statement",
        "{rows:?}"
    );
    assert_eq!(row("<T>YAMADA*")[4], "ok", "{rows:?}");
    assert_eq!(row("080000-100000")[4], "ok", "{rows:?}");
    assert!(
        rows.iter().filter(|r| r[4] == "DIFFERS").count() == 0,
        "{rows:?}"
    );
}
