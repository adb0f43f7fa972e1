#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap export` on captures of real peers: DCMTK storescu -> storescp (several
//! transfer syntaxes), getscu and movescu against dcmqrscp (C-GET / C-MOVE
//! sub-operations), and rewritten captures with a segment missing or cut short.
//!
//! Every exported data set must be byte-identical to what the receiving peer wrote (the
//! peers run bit-preserving, `+B`), to the original file when the transfer syntax was not
//! changed on the way, and pydicom must read every exported file.

use crate::netns;
use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netns::{data_frames, read_frames, resegment, stream_offsets, without, write_pcap};
use serde_json::Value;
use support::peers::{self, Dcmqrscp};
use support::{Capture, Proc, PydicomData, command, require_peers, run, run_ok, temp_dir};

const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Part-10 files

/// A Part-10 file split into its meta elements (tag -> value) and its data set bytes.
#[derive(Debug)]
struct Part10 {
    meta: BTreeMap<u16, Vec<u8>>,
    /// (0002,0000) as written.
    group_length: u32,
    /// Bytes of group 0002 after the group length element.
    meta_len: usize,
    dataset: Vec<u8>,
}

impl Part10 {
    fn read(path: &Path) -> Part10 {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.len() >= 132,
            "{}: shorter than a preamble",
            path.display()
        );
        assert_eq!(&bytes[128..132], b"DICM", "{}: no DICM", path.display());
        let mut pos = 132;
        let mut meta = BTreeMap::new();
        let mut group_length = 0;
        let mut after_gl = 0;
        while pos + 8 <= bytes.len() && bytes[pos..pos + 2] == [0x02, 0x00] {
            let elem = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
            let vr = &bytes[pos + 4..pos + 6];
            let (len, head) = if matches!(
                vr,
                b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"OD" | b"OL" | b"UC" | b"UR"
            ) {
                let l = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
                (l as usize, 12)
            } else {
                (
                    u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as usize,
                    8,
                )
            };
            let value = bytes[pos + head..pos + head + len].to_vec();
            if elem == 0 {
                group_length = u32::from_le_bytes(value[..4].try_into().unwrap());
                after_gl = pos + head + len;
            }
            meta.insert(elem, value);
            pos += head + len;
        }
        Part10 {
            meta,
            group_length,
            meta_len: pos - after_gl,
            dataset: bytes[pos..].to_vec(),
        }
    }

    /// A UI/AE/SH meta value without its padding.
    fn text(&self, elem: u16) -> Option<String> {
        let v = self.meta.get(&elem)?;
        Some(
            String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .to_string(),
        )
    }

    fn instance(&self) -> String {
        self.text(0x0003).unwrap_or_default()
    }

    fn transfer_syntax(&self) -> String {
        self.text(0x0010).unwrap_or_default()
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// dicomtap export

struct ExportRun {
    code: Option<i32>,
    objects: Vec<Value>,
    summary: Value,
    text: String,
}

fn export(captures: &[&Path], out: &Path, log: &Path) -> ExportRun {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("export");
    cmd.args(captures);
    cmd.arg("--out").arg(out).arg("--json");
    let r = run("dicomtap-export", cmd, log, TIMEOUT);
    let mut objects = Vec::new();
    let mut summary = Value::Null;
    for line in r.stdout.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        match v["type"].as_str() {
            Some("object") => objects.push(v),
            Some("summary") => summary = v,
            other => panic!("unexpected line type {other:?}: {line}"),
        }
    }
    ExportRun {
        code: r.status.code(),
        objects,
        summary,
        text: r.text(),
    }
}

/// Checks an exported file's meta against its record; returns the file.
fn check_exported(rec: &Value) -> Part10 {
    use std::os::unix::fs::PermissionsExt;
    let path = PathBuf::from(rec["path"].as_str().expect("exported object has a path"));
    let mode = path.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}: mode {mode:o}", path.display());
    let f = Part10::read(&path);
    assert_eq!(
        f.group_length as usize,
        f.meta_len,
        "{}: group length",
        path.display()
    );
    assert_eq!(f.meta.get(&0x0001).map(Vec::as_slice), Some(&[0u8, 1][..]));
    assert_eq!(f.text(0x0002).as_deref(), rec["sop_class"].as_str());
    assert_eq!(f.text(0x0003).as_deref(), rec["sop_instance"].as_str());
    assert_eq!(f.text(0x0010).as_deref(), rec["transfer_syntax"].as_str());
    assert_eq!(
        f.text(0x0012).as_deref(),
        Some(dicomtap_analyzer::export::IMPLEMENTATION_CLASS_UID)
    );
    assert!(f.text(0x0013).unwrap().starts_with("DICOMTAP_"));
    assert_eq!(f.text(0x0016).as_deref(), rec["sender_ae"].as_str());
    assert_eq!(f.dataset.len() as u64, rec["bytes"].as_u64().unwrap());
    // Named by SOP instance UID; the same instance again in one association gets -2, -3...
    let name = path.file_name().unwrap().to_str().unwrap();
    let instance = rec["sop_instance"].as_str().unwrap();
    let rest = name
        .strip_prefix(instance)
        .unwrap_or_else(|| panic!("{name} is not named {instance}"));
    assert!(
        rest == ".dcm"
            || rest
                .strip_prefix('-')
                .and_then(|r| r.strip_suffix(".dcm"))
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 2)),
        "{name}"
    );
    assert_eq!(
        path.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        rec["association"].to_string()
    );
    f
}

/// pydicom reads every file: path -> (Media Storage SOP Instance UID from the meta, SOP
/// Instance UID from the data set).
fn pydicom_read(py: &Path, files: &[PathBuf], log: &Path) -> BTreeMap<PathBuf, (String, String)> {
    let script = r#"
import sys, json, pydicom
out = {}
for p in sys.argv[1:]:
    try:
        ds = pydicom.dcmread(p)
        n = sum(1 for _ in ds.iterall())
        out[p] = {'instance': str(ds.SOPInstanceUID), 'meta': str(ds.file_meta.MediaStorageSOPInstanceUID), 'elements': n}
    except Exception as e:
        out[p] = {'error': repr(e)}
print(json.dumps(out))
"#;
    let mut cmd = Command::new(py);
    cmd.arg("-c").arg(script).args(files);
    let r = run_ok("pydicom-read", cmd, log, TIMEOUT);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("pydicom script output");
    let mut out = BTreeMap::new();
    for f in files {
        let e = &v[f.to_str().unwrap()];
        assert!(
            e["error"].is_null(),
            "pydicom cannot read {}: {}",
            f.display(),
            e["error"]
        );
        assert!(e["elements"].as_u64().unwrap() > 5);
        out.insert(
            f.clone(),
            (
                e["meta"].as_str().unwrap().to_string(),
                e["instance"].as_str().unwrap().to_string(),
            ),
        );
    }
    out
}

/// (instance, transfer syntax, data set) of every Part-10 file under `dir`.
fn received(dir: &Path) -> Vec<(String, String, Vec<u8>)> {
    files_under(dir)
        .iter()
        .map(|p| {
            let f = Part10::read(p);
            (f.instance(), f.transfer_syntax(), f.dataset)
        })
        .collect()
}

/// Original sample files' data sets by (SOP instance UID, transfer syntax): pydicom's
/// MR_small variants share one instance UID.
fn originals(files: &[PathBuf]) -> BTreeMap<(String, String), Vec<u8>> {
    files
        .iter()
        .map(|p| {
            let f = Part10::read(p);
            ((f.instance(), f.transfer_syntax()), f.dataset)
        })
        .collect()
}

/// Every exported object equals exactly one received file (as a multiset). The objects
/// sent by `verbatim_sender` (an SCU that sends files' data sets unchanged) must also
/// equal their original file, in the same transfer syntax. Returns how many did.
fn compare(
    exported: &[(Value, Part10)],
    mut got: Vec<(String, String, Vec<u8>)>,
    originals: &BTreeMap<(String, String), Vec<u8>>,
    verbatim_sender: Option<&str>,
    what: &str,
) -> usize {
    assert_eq!(
        exported.len(),
        got.len(),
        "{what}: {} objects exported, {} received by the peer",
        exported.len(),
        got.len()
    );
    let mut same_as_original = 0;
    for (rec, f) in exported {
        let instance = f.instance();
        let ts = f.transfer_syntax();
        let pos = got
            .iter()
            .position(|(i, t, d)| *i == instance && *t == ts && *d == f.dataset)
            .unwrap_or_else(|| {
                let near: Vec<_> = got
                    .iter()
                    .filter(|(i, _, _)| *i == instance)
                    .map(|(_, t, d)| (t.clone(), d.len()))
                    .collect();
                panic!(
                    "{what}: exported {} ({ts}, {} bytes) matches no file the peer wrote; same instance there: {near:?}\n{rec}",
                    instance,
                    f.dataset.len()
                )
            });
        got.remove(pos);
        if verbatim_sender.is_some() && rec["sender_ae"].as_str() == verbatim_sender {
            let od = originals
                .get(&(instance.clone(), ts.clone()))
                .unwrap_or_else(|| {
                    panic!("{what}: {instance} in {ts} is not one of the files sent")
                });
            assert!(
                *od == f.dataset,
                "{what}: {instance} ({ts}) differs from the original file's data set"
            );
            same_as_original += 1;
        }
    }
    same_as_original
}

// ---------------------------------------------------------------------------------------
// Peers

fn samples(data: &PydicomData) -> Vec<(&'static str, Vec<PathBuf>)> {
    let t = |n: &str| data.test_files.join(n);
    let c = |n: &str| data.charset_files.join(n);
    vec![
        // Proposes every uncompressed syntax, explicit LE first: kept as is.
        (
            "-x=",
            vec![
                t("CT_small.dcm"),
                t("MR_small.dcm"),
                t("rtplan.dcm"),
                c("chrH31.dcm"),
                c("chrX1.dcm"),
            ],
        ),
        ("-xi", vec![t("CT_small.dcm"), t("MR_small.dcm")]),
        ("-xb", vec![t("MR_small_bigendian.dcm"), t("rtplan.dcm")]),
        ("-xw", vec![t("JPEG2000.dcm")]),
        ("-xr", vec![t("MR_small_RLE.dcm")]),
        ("-xd", vec![t("image_dfl.dcm"), t("CT_small.dcm")]),
    ]
}

/// storescp as STORESCP, bit-preserving (`+B`), every transfer syntax, unique file names.
fn storescp(name: &str, recv: &Path, log: &Path) -> (Proc, u16) {
    peers::storescp(name, recv, log, &["+B", "+uf", "-aet", "STORESCP"])
}

fn storescu(opt: &str, aet: &str, aec: &str, port: u16, files: &[PathBuf], log: &Path) {
    let cmd = support::peers::storescu_command(&[opt, "-aet", aet, "-aec", aec], port, files);
    run_ok(&format!("storescu-{aet}"), cmd, log, TIMEOUT);
}

/// Sends the samples from storescu to storescp under a capture. Returns the capture, the
/// directory storescp wrote into and what was sent (AE title, files).
/// pynetdicom's SCU sending files unchanged: with `STORE_SEND_CHUNKED_DATASET` the data
/// set is streamed from the file as it is, in its own transfer syntax (DCMTK's storescu
/// re-encodes what it sends: explicit sequence lengths, no trailing padding).
const PY_VERBATIM_SCU: &str = r#"
import sys
from pydicom import dcmread
from pynetdicom import AE, _config
_config.STORE_SEND_CHUNKED_DATASET = True
host, port, aet, aec = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
files = sys.argv[5:]
ae = AE(ae_title=aet)
for f in files:
    ds = dcmread(f, stop_before_pixels=True)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
assoc = ae.associate(host, port, ae_title=aec)
if not assoc.is_established:
    sys.exit("association not established")
for f in files:
    st = assoc.send_c_store(f)
    print(f, st.Status if st else None)
    if not st or st.Status != 0:
        assoc.abort()
        sys.exit("store failed: " + f)
assoc.release()
"#;

/// The files pynetdicom sends verbatim: every kind of transfer syntax storescp accepts.
fn verbatim_samples(data: &PydicomData) -> Vec<PathBuf> {
    let t = |n: &str| data.test_files.join(n);
    vec![
        t("CT_small.dcm"),
        t("MR_small_implicit.dcm"),
        t("MR_small_bigendian.dcm"),
        t("JPEG2000.dcm"),
        t("MR_small_RLE.dcm"),
        t("rtplan.dcm"),
        data.charset_files.join("chrH31.dcm"),
    ]
}

fn capture_store(
    name: &str,
    data: &PydicomData,
    py: &Path,
    dir: &Path,
) -> (PathBuf, PathBuf, u16, Vec<(String, Vec<PathBuf>)>) {
    let recv = dir.join(format!("{name}-recv"));
    let (mut scp, port) = storescp(&format!("storescp-{name}"), &recv, dir);
    let cap = Capture::start(name, &[port], dir);
    let mut sent = Vec::new();
    for (i, (opt, files)) in samples(data).into_iter().enumerate() {
        let aet = format!("SCU{i}");
        storescu(opt, &aet, "STORESCP", port, &files, dir);
        sent.push((aet, files));
    }
    let files = verbatim_samples(data);
    let mut cmd = Command::new(py);
    cmd.arg("-c")
        .arg(PY_VERBATIM_SCU)
        .args(["127.0.0.1", &port.to_string(), "PYSCU", "STORESCP"])
        .args(&files);
    run_ok("pynetdicom-scu", cmd, dir, TIMEOUT);
    sent.push(("PYSCU".to_string(), files));
    let file = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));
    (file, recv, port, sent)
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn storescu_objects_exported_byte_identical() {
    let Some((py, data)) = require_peers("export store", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    let dir = temp_dir("export-store");
    let (capture, recv, _port, sent) = capture_store("store", &data, &py, dir.path());
    let out = dir.path().join("out");
    let r = export(&[&capture], &out, dir.path());
    assert_eq!(r.code, Some(0), "{}", r.text);
    let total: usize = sent.iter().map(|(_, f)| f.len()).sum();
    assert_eq!(r.objects.len(), total, "{}", r.text);
    assert_eq!(r.summary["stats"]["exported"], total as u64, "{}", r.text);
    let mut exported = Vec::new();
    for rec in &r.objects {
        assert_eq!(rec["result"], "exported", "{rec}");
        assert_eq!(rec["sender"], "requestor");
        assert_eq!(rec["transfer_syntax_negotiated"], true);
        assert_eq!(rec["response"]["code"], "0000", "{rec}");
        assert_eq!(rec["refused"], false);
        exported.push((rec.clone(), check_exported(rec)));
    }
    // Each association's sender AE is the storescu run's calling AE title, objects in order.
    for (aet, files) in &sent {
        let of_run: Vec<&Value> = r
            .objects
            .iter()
            .filter(|o| o["sender_ae"] == aet.as_str())
            .collect();
        assert_eq!(of_run.len(), files.len(), "{aet}: {of_run:?}");
    }
    let verbatim = verbatim_samples(&data);
    let originals = originals(&verbatim);
    let same = compare(
        &exported,
        received(&recv),
        &originals,
        Some("PYSCU"),
        "storescp",
    );
    assert_eq!(
        same,
        verbatim.len(),
        "every verbatim object equals its original"
    );
    // Several transfer syntaxes were really negotiated.
    let syntaxes: std::collections::BTreeSet<&str> = r
        .objects
        .iter()
        .filter_map(|o| o["transfer_syntax"].as_str())
        .collect();
    for ts in [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.5",
    ] {
        assert!(syntaxes.contains(ts), "{ts} not among {syntaxes:?}");
    }
    let paths: Vec<PathBuf> = exported
        .iter()
        .map(|(rec, _)| PathBuf::from(rec["path"].as_str().unwrap()))
        .collect();
    let read = pydicom_read(&py, &paths, dir.path());
    let mut disagreeing = 0;
    for (rec, _) in &exported {
        let (meta, own) = &read[&PathBuf::from(rec["path"].as_str().unwrap())];
        assert_eq!(meta, rec["sop_instance"].as_str().unwrap(), "{rec}");
        assert_eq!(own, rec["dataset_sop_instance"].as_str().unwrap(), "{rec}");
        // pydicom's rtplan.dcm has a meta instance UID that is not its data set's, and
        // pynetdicom sends the former as the affected SOP instance: the record says so.
        if meta != own {
            disagreeing += 1;
            assert_eq!(rec["sender_ae"], "PYSCU", "{rec}");
        }
    }
    assert!(disagreeing <= 1);
    // Nothing else was left in the output directory.
    assert_eq!(files_under(&out).len(), total);
}

/// Study Instance UIDs of files, via pydicom.
fn study_uids(py: &Path, files: &[PathBuf], log: &Path) -> Vec<String> {
    let mut cmd = Command::new(py);
    cmd.arg("-c")
        .arg("import sys, pydicom\nfor p in sys.argv[1:]:\n    print(pydicom.dcmread(p).StudyInstanceUID)")
        .args(files);
    run_ok("study-uids", cmd, log, TIMEOUT)
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn c_get_and_c_move_sub_operations_exported() {
    let Some((py, data)) = require_peers(
        "export get/move",
        &[
            "storescu", "storescp", "dcmqrscp", "getscu", "movescu", "dumpcap",
        ],
    ) else {
        return;
    };
    let dir = temp_dir("export-qr");
    let d = dir.path();
    let files = vec![
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("JPEG2000.dcm"),
    ];
    // The C-MOVE destination, STORESCP.
    let moved = d.join("moved");
    let (mut dest, dest_port) = storescp("storescp-dest", &moved, d);
    let qr = Dcmqrscp::configure(d, &[("STORESCP", dest_port)]);
    let port = qr.port;
    // Bit-preserving; JPEG 2000 accepted (preferred when proposed) and proposed for
    // the C-MOVE sub-operations.
    let mut qr = qr.start("dcmqrscp", d, &["+B", "+xw", "-xw"]);
    // Populate (not captured).
    storescu("-x=", "LOADER", "QRSCP", port, &files[..2], d);
    storescu("-xw", "LOADER", "QRSCP", port, &files[2..], d);

    let got = d.join("got");
    std::fs::create_dir(&got).unwrap();
    let studies = study_uids(&py, &files, d);
    let cap = Capture::start("qr", &[port, dest_port], d);
    for (i, study) in studies.iter().enumerate().take(2) {
        let args = vec![
            "-S".to_string(),
            "+B".into(),
            "-aet".into(),
            format!("GETSCU{i}"),
            "-aec".into(),
            "QRSCP".into(),
            "-od".into(),
            got.display().to_string(),
            "-k".into(),
            "QueryRetrieveLevel=STUDY".into(),
            "-k".into(),
            format!("StudyInstanceUID={study}"),
            "127.0.0.1".into(),
            port.to_string(),
        ];
        run_ok("getscu", command("getscu", &args), d, TIMEOUT);
    }
    let args = vec![
        "-S".to_string(),
        "-aet".into(),
        "MOVESCU".into(),
        "-aec".into(),
        "QRSCP".into(),
        "-aem".into(),
        "STORESCP".into(),
        "-k".into(),
        "QueryRetrieveLevel=STUDY".into(),
        "-k".into(),
        format!("StudyInstanceUID={}", studies[2]),
        "127.0.0.1".into(),
        port.to_string(),
    ];
    run_ok("movescu", command("movescu", &args), d, TIMEOUT);
    let capture = cap.finish();
    dest.stop("TERM", Duration::from_secs(5));
    qr.stop("TERM", Duration::from_secs(5));

    let out = d.join("out");
    let r = export(&[&capture], &out, d);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let originals = originals(&files);
    // C-GET: the acceptor (dcmqrscp) sends the objects back on the same association.
    let get: Vec<(Value, Part10)> = r
        .objects
        .iter()
        .filter(|o| o["sender"] == "acceptor")
        .map(|o| (o.clone(), check_exported(o)))
        .collect();
    assert!(get.len() >= 2, "C-GET objects: {}", r.text);
    for (o, _) in &get {
        assert_eq!(o["result"], "exported", "{o}");
        assert_eq!(o["sender_ae"], "QRSCP", "{o}");
        assert_eq!(o["response"]["code"], "0000", "{o}");
    }
    // DCMTK re-encodes what it sends (explicit sequence lengths, no trailing padding):
    // the evidence is what getscu, bit-preserving, wrote.
    compare(&get, received(&got), &originals, None, "getscu");
    // C-MOVE: dcmqrscp opens its own association to STORESCP and is its requestor.
    let mv: Vec<(Value, Part10)> = r
        .objects
        .iter()
        .filter(|o| o["sender"] == "requestor" && o["sender_ae"] == "QRSCP")
        .map(|o| (o.clone(), check_exported(o)))
        .collect();
    assert_eq!(mv.len(), 1, "C-MOVE objects: {}", r.text);
    assert_eq!(
        mv[0].0["server"].as_str().unwrap(),
        format!("127.0.0.1:{dest_port}")
    );
    compare(
        &mv,
        received(&moved),
        &originals,
        None,
        "C-MOVE destination",
    );
    let paths: Vec<PathBuf> = get
        .iter()
        .chain(&mv)
        .map(|(o, _)| PathBuf::from(o["path"].as_str().unwrap()))
        .collect();
    for (meta, own) in pydicom_read(&py, &paths, d).values() {
        assert_eq!(meta, own);
    }
}

#[test]
fn gap_or_cut_inside_an_object_is_reported_never_written() {
    let Some((py, data)) = require_peers("export gap", &["storescu", "storescp", "dumpcap"]) else {
        return;
    };
    let dir = temp_dir("export-gap");
    let d = dir.path();
    let recv = d.join("recv");
    let (mut scp, port) = storescp("storescp", &recv, d);
    let cap = Capture::start("gap", &[port], d);
    // CT_small first: 38 kB, several 16 kB PDUs (storescu's default max PDU).
    let files = vec![
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("rtplan.dcm"),
    ];
    storescu("-x=", "GAPSCU", "STORESCP", port, &files, d);
    let capture = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));
    let originals = originals(&files);
    let ct = Part10::read(&files[0]).instance();

    // Loopback carries up to 64 kB per segment: split them as a 1500-byte MTU would.
    let frames = resegment(&read_frames(&capture), 1448);
    let to_scp = data_frames(&frames, port, true);
    let offsets = stream_offsets(&frames, &to_scp);
    let stream: Vec<u8> = to_scp
        .iter()
        .flat_map(|&i| frames[i].payload_bytes().to_vec())
        .collect();
    // Where CT_small's data set is in the client's stream (as storescp received it).
    let ct_ds = received(&recv)
        .into_iter()
        .find(|(i, _, _)| *i == ct)
        .expect("storescp received CT_small")
        .2;
    let find = |needle: &[u8]| stream.windows(needle.len()).position(|w| w == needle);
    let ds_start = find(&ct_ds[..64]).expect("CT data set start in the stream") as u64;
    let ds_end =
        find(&ct_ds[ct_ds.len() - 64..]).expect("CT data set end in the stream") as u64 + 64;
    let inside: Vec<(usize, u64)> = offsets
        .iter()
        .copied()
        .filter(|&(i, off)| off > ds_start + 64 && off + (frames[i].payload as u64) < ds_end - 64)
        .collect();
    assert!(
        inside.len() >= 5,
        "CT_small spans only {} segments",
        inside.len()
    );

    // 1. Drop one segment in the middle of CT_small's data set.
    let dropped = inside[inside.len() / 2].0;
    let gap_pcap = d.join("gap.pcap");
    write_pcap(&gap_pcap, &without(&frames, &[dropped]));
    let out = d.join("out-gap");
    let r = export(&[&gap_pcap], &out, d);
    assert_eq!(
        r.code,
        Some(1),
        "an incomplete object makes the exit status 1\n{}",
        r.text
    );
    assert_eq!(r.objects.len(), 3, "{}", r.text);
    let incomplete: Vec<&Value> = r
        .objects
        .iter()
        .filter(|o| o["result"] == "incomplete")
        .collect();
    assert_eq!(incomplete.len(), 1, "{}", r.text);
    let inc = incomplete[0];
    assert_eq!(inc["sop_instance"], ct.as_str(), "{inc}");
    assert_eq!(inc["association"], 1, "numbered from 1, as the proxy does");
    assert_eq!(inc["message_id"], 1);
    assert!(inc["path"].is_null(), "{inc}");
    assert!(inc["reason"].as_str().unwrap().contains("missing"), "{inc}");
    assert!(inc["bytes"].as_u64().unwrap() > 0);
    // storescp did get it whole: the response is in the capture.
    assert_eq!(inc["response"]["code"], "0000", "{inc}");
    let mut exported = Vec::new();
    for o in r.objects.iter().filter(|o| o["result"] == "exported") {
        exported.push((o.clone(), check_exported(o)));
    }
    assert_eq!(exported.len(), 2);
    let mut recv_files = received(&recv);
    recv_files.retain(|(i, _, _)| *i != ct);
    compare(&exported, recv_files, &originals, None, "storescp (gap)");
    // Only the two whole objects are on disk: no temporary file left behind.
    assert_eq!(files_under(&out).len(), 2, "{:?}", files_under(&out));
    assert!(
        files_under(&out)
            .iter()
            .all(|p| !p.to_string_lossy().contains(&ct))
    );

    // 2. The capture ends inside CT_small's data set.
    let cut_pcap = d.join("cut.pcap");
    write_pcap(&cut_pcap, &frames[..dropped]);
    let out = d.join("out-cut");
    let r = export(&[&cut_pcap], &out, d);
    assert_eq!(r.code, Some(1), "{}", r.text);
    assert_eq!(r.objects.len(), 1, "{}", r.text);
    assert_eq!(r.objects[0]["result"], "incomplete");
    assert_eq!(r.objects[0]["sop_instance"], ct.as_str());
    assert!(r.objects[0]["response"].is_null());
    assert_eq!(files_under(&out).len(), 0, "{:?}", files_under(&out));

    // 3. The untouched capture exports all three, as pydicom reads them.
    let out = d.join("out-whole");
    let r = export(&[&capture], &out, d);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let paths: Vec<PathBuf> = r
        .objects
        .iter()
        .map(|o| PathBuf::from(o["path"].as_str().unwrap()))
        .collect();
    assert_eq!(paths.len(), 3);
    for (meta, own) in pydicom_read(&py, &paths, d).values() {
        assert_eq!(meta, own);
    }
}
