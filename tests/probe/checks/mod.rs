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

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::pki::Pki;
use support::*;

/// pynetdicom SCPs, one misbehaviour per mode: `silent` (`silentct`: CT storage only;
/// `missing`: the report commits the first instance and leaves the others out),
/// `surname`, `mangle`, `artim`,
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
    # `silentct`: `silent`, on a device that stores CT only.
    if mode != "silentct" or cx.abstract_syntax == "1.2.840.10008.5.1.4.1.1.2":
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
        if mode == "missing":
            # Commits the first instance and leaves the others out of the report.
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = refs[0]
            ds.ReferencedSOPSequence = [item]
            assoc.send_n_event_report(ds, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
            return
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

    fn pyscp_args(&self, py: &Path, mode: &str, port: u16, extra: &[&str]) -> Proc {
        let script = self.path().join("scp.py");
        let mut cmd = Command::new(py);
        cmd.arg(&script).arg(mode).arg(port.to_string()).args(extra);
        let name = format!("pyscp-{}", mode.replace(':', "-"));
        self.listening(&name, cmd, port, Duration::from_secs(20))
    }

    /// `cmd` started as `name`, once it listens on `port` (waiting at most `wait`).
    fn listening(&self, name: &str, cmd: Command, port: u16, wait: Duration) -> Proc {
        let mut p = Proc::spawn(name, cmd, self.path());
        assert!(
            wait_for_port(port, wait, Some(&mut p)),
            "{name} did not start\n{}",
            p.output()
        );
        p
    }

    /// storescp as STORESCP on `port` with `args` before the port.
    /// storescp on a free port writing what it receives into `received/` of the scene:
    /// the process, its port and that folder.
    fn receiving_storescp(&self) -> (Proc, u16, PathBuf) {
        let port = free_port();
        let received = self.path().join("received");
        std::fs::create_dir_all(&received).unwrap();
        let scp = self.storescp("storescp", port, &["-od", received.to_str().unwrap()]);
        (scp, port, received)
    }

    fn storescp(&self, name: &str, port: u16, args: &[&str]) -> Proc {
        let mut all = vec!["-aet", "STORESCP"];
        all.extend(args);
        let port_arg = port.to_string();
        all.push(&port_arg);
        self.listening(
            name,
            command("storescp", &all),
            port,
            Duration::from_secs(10),
        )
    }

    /// dcmqrscp as DCMQRSCP on `port`, taking at most `max_associations`, with the probe's
    /// move destination registered at `move_port` (if any) and `args` before `-c`.
    fn dcmqrscp(
        &self,
        port: u16,
        max_associations: u32,
        move_port: Option<u16>,
        args: &[&str],
    ) -> Proc {
        let db = self.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        let cfg = self.path().join("dcmqrscp.cfg");
        let hosts = move_port
            .map(|p| format!("probe = (DICOMTAP, 127.0.0.1, {p})\n"))
            .unwrap_or_default();
        std::fs::write(
            &cfg,
            format!(
                "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = {max_associations}\n\
                 HostTable BEGIN\n{hosts}HostTable END\n\
                 VendorTable BEGIN\nVendorTable END\n\
                 AETable BEGIN\nDCMQRSCP {} RW (200, 1024mb) ANY\nAETable END\n",
                db.display()
            ),
        )
        .unwrap();
        let mut all = args.to_vec();
        all.extend(["-c", cfg.to_str().unwrap()]);
        self.listening(
            "dcmqrscp",
            command("dcmqrscp", &all),
            port,
            Duration::from_secs(10),
        )
    }

    fn statement(&self, text: &str) -> PathBuf {
        let p = self.path().join("device.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs the probe with `--json --allow-writes`; returns the exit code and the report.
    fn probe(&self, name: &str, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--allow-writes"];
        all.extend(args);
        self.probe_as_given(name, &all)
    }

    /// Runs the probe with `--json` and `args` only; the exit code and the report.
    fn probe_as_given(&self, name: &str, args: &[&str]) -> (i32, Value) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
        cmd.arg("probe").arg("--json").args(args);
        let out = run(name, cmd, self.path(), Duration::from_secs(240));
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("probe output is not JSON ({e}):\n{}", out.text()));
        (out.status.code().unwrap_or(-1), v)
    }

    /// The probe of `called_ae` at 127.0.0.1:`port`, with the statement `statement` (if
    /// any) written to device.toml, then `args` (options and checks).
    fn probe_ae(
        &self,
        name: &str,
        (called_ae, port): (&str, u16),
        statement: Option<&str>,
        args: &[&str],
    ) -> (i32, Value) {
        let target = format!("127.0.0.1:{port}");
        let mut all = vec!["--target", target.as_str(), "--called-ae", called_ae];
        let statement = statement.map(|text| self.statement(text));
        if let Some(path) = &statement {
            all.extend(["--statement", path.to_str().unwrap()]);
        }
        all.extend(args);
        self.probe(name, &all)
    }
}

/// A scene with the pynetdicom SCP of `mode` (see [`SCP_PY`]) listening as PYSCP on a
/// free port.
struct PyScp {
    scene: Scene,
    data: PydicomData,
    port: u16,
    _scp: Proc,
}

impl PyScp {
    /// `extra`: the mode's further arguments. `None` (the test returns) when pynetdicom is
    /// missing and allowed to be.
    fn start(test: &str, scene: &str, mode: &str, extra: &[&str]) -> Option<PyScp> {
        let (py, data) = require_python(test)?;
        let scene = Scene::new(scene);
        let port = free_port();
        let scp = scene.pyscp_args(&py, mode, port, extra);
        Some(PyScp {
            scene,
            data,
            port,
            _scp: scp,
        })
    }

    /// [`Scene::probe_ae`] of PYSCP.
    fn probe(&self, name: &str, statement: Option<&str>, args: &[&str]) -> (i32, Value) {
        self.scene
            .probe_ae(name, ("PYSCP", self.port), statement, args)
    }
}

/// A device of one acceptor AE, `name` (also its AE title), with `lines` after
/// `acceptor = true`.
fn acceptor_statement(name: &str, lines: &str) -> String {
    format!(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"{name}\"\n[[ae]]\n\
         title = \"{name}\"\nacceptor = true\n{lines}\n"
    )
}

/// [`acceptor_statement`] claiming `max_associations = { acceptor = N }` with Verification
/// and Secondary Capture (what the load check uses).
fn load_statement(name: &str, n: u32) -> String {
    acceptor_statement(
        name,
        &format!(
            "max_associations = {{ acceptor = {n} }}\n\
             [[ae.capability]]\nsop_class = \"Verification\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n\
             [[ae.capability]]\nsop_class = \"SecondaryCaptureImageStorage\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ExplicitVRLittleEndian\"]"
        ),
    )
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

fn summary<'a>(report: &'a Value, check: &str) -> &'a str {
    result(report, check)["summary"].as_str().unwrap()
}

/// The probe exited with `expected_code` and each of `checks` has the verdict `expected`.
fn assert_verdicts(report: &Value, code: i32, expected_code: i32, checks: &[&str], expected: &str) {
    assert_eq!(code, expected_code, "{report:#}");
    for c in checks {
        assert_eq!(verdict(report, c), expected, "{c}: {report:#}");
    }
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

/// The row whose column `col` is `value`.
fn row_of<'a>(rows: &'a [Vec<String>], col: usize, value: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[col] == value)
        .unwrap_or_else(|| panic!("no row {value}: {rows:?}"))
}

/// The row whose first column contains `needle`.
fn row_about<'a>(rows: &'a [Vec<String>], needle: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0].contains(needle))
        .unwrap_or_else(|| panic!("no {needle}: {rows:?}"))
}

/// A timing row's seconds (its second column, "N s"); `f64::MAX` when not a number.
fn secs(r: &[String]) -> f64 {
    r[1].trim_end_matches(" s")
        .parse::<f64>()
        .unwrap_or(f64::MAX)
}

/// A fresh Orthanc on free loopback ports, with the probe's move destination registered
/// and `extra` configuration entries.
fn orthanc(dir: &Path, dicom_port: u16, move_port: u16, extra: Value) -> Proc {
    let mut json = serde_json::json!({
        "DicomModalities": { "probe": ["DICOMTAP", "127.0.0.1", move_port] },
    });
    if let (Some(j), Some(e)) = (json.as_object_mut(), extra.as_object()) {
        j.extend(e.clone());
    }
    support::peers::orthanc(dir, "orthanc", dicom_port, json)
}

/// storescp accepting only CT and MR storage (an association negotiation profile, `-xf`).
fn ct_mr_storescp(scene: &Scene, port: u16, received: &Path) -> Proc {
    let cfg = scene.path().join("ctmr.cfg");
    std::fs::write(
        &cfg,
        "[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n\
         TransferSyntax2 = LittleEndianImplicit\n\n[[PresentationContexts]]\n[CTMR]\n\
         PresentationContext1 = CTImageStorage\\Uncompressed\n\
         PresentationContext2 = MRImageStorage\\Uncompressed\n\
         PresentationContext3 = VerificationSOPClass\\Uncompressed\n\n\
         [[Profiles]]\n[CTMR]\nPresentationContexts = CTMR\n",
    )
    .unwrap();
    std::fs::create_dir_all(received).unwrap();
    scene.storescp(
        "storescp-ctmr",
        port,
        &[
            "-xf",
            cfg.to_str().unwrap(),
            "CTMR",
            "-od",
            received.to_str().unwrap(),
        ],
    )
}

mod commitment;
mod load;
mod malformed;
mod matching;
mod retrieve;
mod storage;
mod timeouts;
