#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The evidence of issue 3 for `dicomtap proxy` (the built binary) between real peers:
//! pynetdicom SCU and SCP, DCMTK query/retrieve against dcmqrscp, storage commitment with
//! Orthanc, the bytes of both legs compared on the wire (dumpcap on loopback), an upstream
//! killed mid-transfer, the recorder's rotation, retention, both-legs and headers modes,
//! idle timeout, SIGTERM drain and `kill -9`, and the metrics endpoint checked by promtool
//! with bounded label cardinality.
//!
//! Every peer runs on 127.0.0.1 on a free port, every wait is bounded, every process is
//! killed by PID when its guard drops.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dicomtap_analyzer::capture::{CaptureReader, ConnId, ConnectionInfo, Side, StreamEnd, StreamSink};
use support::{
    Proc, command, free_port, require, require_python, run, run_ok, temp_dir, tshark,
    wait_for_port, wait_until,
};

const START: Duration = Duration::from_secs(20);
const PEER: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The proxy

/// A running `dicomtap proxy` and what it printed about itself.
struct Proxy {
    proc: Proc,
    listen: Vec<SocketAddr>,
    metrics: Option<SocketAddr>,
    files: Vec<PathBuf>,
}

impl Proxy {
    fn port(&self) -> u16 {
        self.listen[0].port()
    }
}

#[derive(Default)]
struct Printed {
    listen: Vec<SocketAddr>,
    metrics: Option<SocketAddr>,
    files: Vec<PathBuf>,
}

fn parse_printed(text: &str) -> Printed {
    let mut p = Printed::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("dicomtap proxy: listening on ") {
            if let Some(a) = rest.split_whitespace().next().and_then(|a| a.parse().ok()) {
                p.listen.push(a);
            }
        } else if let Some(rest) = line.strip_prefix("dicomtap proxy: metrics on http://") {
            p.metrics = rest.split('/').next().and_then(|a| a.parse().ok());
        } else if let Some(rest) = line.strip_prefix("dicomtap proxy: recording to ") {
            p.files.push(PathBuf::from(rest.trim()));
        }
    }
    p
}

/// Starts `dicomtap proxy ARGS` (add `--metrics off` or `--metrics 127.0.0.1:0` yourself:
/// the default port would collide between tests) and waits until it printed
/// `listeners` listening lines, its metrics line when `metrics`, and `files` recording lines.
fn start_proxy(
    name: &str,
    args: &[&str],
    dir: &Path,
    listeners: usize,
    metrics: bool,
    files: usize,
) -> Proxy {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("proxy").args(args).env("DICOMTAP_LOG", "info");
    let mut proc = Proc::spawn(name, cmd, dir);
    let ready = wait_until(START, || {
        let p = parse_printed(&proc.stdout());
        (p.listen.len() >= listeners && p.metrics.is_some() == metrics && p.files.len() >= files)
            || proc.try_wait().is_some()
    });
    let p = parse_printed(&proc.stdout());
    assert!(
        ready && proc.try_wait().is_none(),
        "dicomtap proxy {args:?} did not start\n{}",
        proc.output()
    );
    Proxy {
        proc,
        listen: p.listen,
        metrics: p.metrics,
        files: p.files,
    }
}

/// Every event of every `*.jsonl` file in `dir`, files in name order.
fn events_in(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            // A line cut by a kill is not an event.
            if let Ok(v) = serde_json::from_str(line) {
                out.push(v);
            }
        }
    }
    out
}

/// The `command` events named `name`.
fn commands<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == "command" && e["command"] == name)
        .collect()
}

fn count_event(events: &[serde_json::Value], name: &str) -> usize {
    events.iter().filter(|e| e["event"] == name).count()
}

/// Waits until the event log in `dir` satisfies `cond` (the recorder flushes every 200 ms).
fn wait_events(dir: &Path, timeout: Duration, cond: impl Fn(&[serde_json::Value]) -> bool) -> bool {
    wait_until(timeout, || cond(&events_in(dir)))
}

/// `GET path` from the metrics endpoint: (status line, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

// ---------------------------------------------------------------------------------------
// Peers

/// `storescp +xa -od out EXTRA port`; returns it once it listens.
fn storescp(name: &str, out: &Path, log_dir: &Path, extra: &[&str]) -> (Proc, u16) {
    std::fs::create_dir_all(out).expect("creating storescp's output directory");
    let port = free_port();
    let mut args: Vec<String> = vec!["+xa".into(), "-od".into(), out.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(port.to_string());
    let mut p = Proc::spawn(name, command("storescp", &args), log_dir);
    assert!(
        wait_for_port(port, START, Some(&mut p)),
        "storescp did not listen on {port}\n{}",
        p.output()
    );
    (p, port)
}

fn storescu_args(port: u16, files: &[PathBuf]) -> Vec<String> {
    let mut args: Vec<String> = ["-aet", "STORESCU", "-aec", "ANY-SCP", "-R", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(port.to_string());
    args.extend(files.iter().map(|f| f.display().to_string()));
    args
}

/// Files by relative path with their bytes; Debug shows names and sizes only.
#[derive(PartialEq, Eq, Default)]
struct Files(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v.len())))
            .finish()
    }
}

impl Files {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Every regular file under `dir` (recursively), by relative path, with its bytes.
fn dir_contents(dir: &Path) -> Files {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    Files(out)
}

fn assert_same_files(direct: &Path, proxied: &Path, what: &str) -> usize {
    let a = dir_contents(direct).0;
    let b = dir_contents(proxied).0;
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: different files with and without the proxy"
    );
    for (name, bytes) in &a {
        assert!(
            b.get(name) == Some(bytes),
            "{what}: {name} differs through the proxy ({} vs {} bytes)",
            bytes.len(),
            b.get(name).map_or(0, Vec::len)
        );
    }
    a.len()
}

/// A DICOM file's data set, without preamble and file meta group.
fn without_file_meta(file: &[u8]) -> Vec<u8> {
    if file.get(128..132) != Some(b"DICM") {
        return file.to_vec();
    }
    // (0002,0000) UL, explicit VR: tag 4, VR 2, length 2, value 4.
    let len = file
        .get(140..144)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    file.get(144 + len..).unwrap_or(&[]).to_vec()
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

// ---------------------------------------------------------------------------------------
// 1. pynetdicom SCU -> proxy -> pynetdicom SCP

const PY_SCP: &str = r#"
import os, sys
from pynetdicom import AE, evt, AllStoragePresentationContexts, ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification

out = sys.argv[2]
count = [0]

def on_store(event):
    # Some samples share a SOP instance UID: number them in arrival order.
    count[0] += 1
    name = "%03d-%s" % (count[0], event.request.AffectedSOPInstanceUID)
    # The data set exactly as received, and the file pynetdicom makes of it.
    with open(os.path.join(out, name + ".raw"), "wb") as f:
        f.write(event.request.DataSet.getvalue())
    with open(os.path.join(out, name + ".dcm"), "wb") as f:
        f.write(event.encoded_dataset(include_meta=True))
    return 0x0000

ae = AE(ae_title="PYSCP")
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
ae.add_supported_context(Verification)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store)])
"#;

const PY_SCU: &str = r#"
import sys
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification

ae = AE(ae_title="PYSCU")
ae.add_requested_context(Verification)
datasets = [dcmread(f) for f in sys.argv[2:]]
seen = set()
for ds in datasets:
    key = (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    if key not in seen:
        seen.add(key)
        ae.add_requested_context(*key)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="PYSCP")
if not assoc.is_established:
    sys.exit("association not established")
print("ECHO 0x%04x" % assoc.send_c_echo().Status, flush=True)
for ds in datasets:
    print("STORE 0x%04x" % assoc.send_c_store(ds).Status, flush=True)
assoc.release()
"#;

#[test]
fn pynetdicom_store_is_byte_identical_through_the_proxy() {
    let Some((python, data)) = require_python("pynetdicom_store") else {
        return;
    };
    let tmp = temp_dir("ev-pynet");
    let dir = tmp.path();
    std::fs::write(dir.join("scp.py"), PY_SCP).unwrap();
    std::fs::write(dir.join("scu.py"), PY_SCU).unwrap();
    let files: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "rtplan.dcm",
        "SC_rgb_rle.dcm",
    ]
    .iter()
    .map(|n| data.test_files.join(n))
    .chain([data.charset_files.join("chrX2.dcm")])
    .collect();

    let scp = |name: &str, out: &Path| -> (Proc, u16) {
        std::fs::create_dir_all(out).unwrap();
        let port = free_port();
        let mut cmd = Command::new(&python);
        cmd.arg(dir.join("scp.py")).arg(port.to_string()).arg(out);
        let mut p = Proc::spawn(name, cmd, dir);
        assert!(
            wait_for_port(port, START, Some(&mut p)),
            "the pynetdicom SCP did not listen\n{}",
            p.output()
        );
        (p, port)
    };
    let scu = |name: &str, port: u16| {
        let mut cmd = Command::new(&python);
        cmd.arg(dir.join("scu.py")).arg(port.to_string()).args(&files);
        let out = run_ok(name, cmd, dir, PEER);
        assert_eq!(lines_with(&out.stdout, "ECHO 0x0000"), 1, "{}", out.text());
        assert_eq!(
            lines_with(&out.stdout, "STORE 0x0000"),
            files.len(),
            "{}",
            out.text()
        );
    };

    let (direct_dir, proxied_dir, rec) = (dir.join("direct"), dir.join("proxied"), dir.join("rec"));
    let (_scp1, p1) = scp("scp-direct", &direct_dir);
    scu("scu-direct", p1);
    let (_scp2, p2) = scp("scp-proxied", &proxied_dir);
    let up = format!("127.0.0.1:{p2}");
    let proxy = start_proxy(
        "proxy",
        &["--listen", "127.0.0.1:0", "--upstream", &up, "--metrics", "off", "--record", rec.to_str().unwrap()],
        dir,
        1,
        false,
        2,
    );
    scu("scu-proxied", proxy.port());

    let n = assert_same_files(&direct_dir, &proxied_dir, "pynetdicom SCP");
    assert_eq!(
        n,
        2 * files.len(),
        "one .raw and one .dcm per file: {:?}",
        dir_contents(&direct_dir)
    );
    assert!(
        wait_events(&rec, START, |ev| commands(ev, "C-STORE-RSP").len() == files.len()
            && count_event(ev, "closed") == 1),
        "event log: {:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    assert_eq!(commands(&ev, "C-ECHO-RQ").len(), 1);
    assert_eq!(commands(&ev, "C-STORE-RQ").len(), files.len());
    assert!(
        commands(&ev, "C-STORE-RSP")
            .iter()
            .all(|c| c["status"]["value"] == 0),
        "{:?}",
        commands(&ev, "C-STORE-RSP")
    );
}

// ---------------------------------------------------------------------------------------
// 2. findscu / movescu / getscu against dcmqrscp

/// dcmqrscp's configuration: AE QRSCP over `db`, move destinations DESTA and DESTB.
fn write_dcmqrscp_config(dir: &Path, port: u16, dests: &[(&str, u16)]) -> PathBuf {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("dcmqrscp.cfg");
    let hosts: String = dests
        .iter()
        .map(|(ae, p)| format!("{} = ({ae}, 127.0.0.1, {p})\n", ae.to_lowercase()))
        .collect();
    let text = format!(
        "NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\nMaxAssociations = 16\n\
         HostTable BEGIN\n{hosts}HostTable END\n\
         VendorTable BEGIN\nVendorTable END\n\
         AETable BEGIN\nQRSCP {} RW (50, 256mb) ANY\nAETable END\n",
        db.display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// One value of `tag` (e.g. "0020,000d") of a file, by dcmdump.
fn dcmdump_value(file: &Path, tag: &str, dir: &Path) -> String {
    let out = run_ok(
        "dcmdump",
        command("dcmdump", &["+P".as_ref(), tag.as_ref(), file.as_os_str()]),
        dir,
        PEER,
    );
    let l = out.stdout.lines().next().unwrap_or("").to_string();
    l[l.find('[').expect("a value") + 1..l.find(']').expect("a value")].to_string()
}

/// What one round of find/move/get gave.
#[derive(Debug, PartialEq)]
struct QrResult {
    find_matches: usize,
    find_responses: Files,
    move_final: Vec<String>,
    moved: Files,
    got: Files,
    get_final: Vec<String>,
}

/// The sub-operation counter lines of the final response in a DCMTK -d log.
fn suboperation_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("Suboperations") || l.contains("Sub-operations"))
        .map(|l| l.trim_start_matches(|c: char| c != ':').to_string())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn find_move_get_through_the_proxy_match_direct() {
    if !require(
        "find_move_get",
        &["dcmqrscp", "storescu", "storescp", "findscu", "movescu", "getscu", "dcmdump"],
    ) {
        return;
    }
    let Some((_, data)) = require_python("find_move_get") else {
        return;
    };
    let tmp = temp_dir("ev-qr");
    let dir = tmp.path();
    let (_dest_a, port_a) = storescp("dest-a", &dir.join("moved-direct"), dir, &["-aet", "DESTA"]);
    let (_dest_b, port_b) = storescp("dest-b", &dir.join("moved-proxied"), dir, &["-aet", "DESTB"]);
    let qr_port = free_port();
    let cfg = write_dcmqrscp_config(dir, qr_port, &[("DESTA", port_a), ("DESTB", port_b)]);
    let mut qr = Proc::spawn(
        "dcmqrscp",
        command("dcmqrscp", &["-d".as_ref(), "-c".as_ref(), cfg.as_os_str()]),
        dir,
    );
    assert!(
        wait_for_port(qr_port, START, Some(&mut qr)),
        "dcmqrscp did not listen\n{}",
        qr.output()
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("rtplan.dcm"),
    ];
    let mut populate: Vec<String> = ["-aet", "STORESCU", "-aec", "QRSCP", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    populate.push(qr_port.to_string());
    populate.extend(files.iter().map(|f| f.display().to_string()));
    run_ok("populate", command("storescu", &populate), dir, PEER);
    let study = dcmdump_value(&files[0], "0020,000d", dir);
    let patient = dcmdump_value(&files[0], "0010,0020", dir);

    let rec = dir.join("rec");
    let up = format!("127.0.0.1:{qr_port}");
    let proxy = start_proxy(
        "proxy",
        &["--listen", "127.0.0.1:0", "--upstream", &up, "--metrics", "off", "--record", rec.to_str().unwrap()],
        dir,
        1,
        false,
        2,
    );

    let round = |label: &str, port: u16, dest: &str| -> QrResult {
        let p = port.to_string();
        let common = ["-aet", "QRSCU", "-aec", "QRSCP"];
        let find_dir = dir.join(format!("find-{label}"));
        std::fs::create_dir_all(&find_dir).unwrap();
        let fd = find_dir.display().to_string();
        let find = run_ok(
            &format!("findscu-{label}"),
            command(
                "findscu",
                &[
                    &["-v"][..],
                    &common[..],
                    &["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientName"],
                    &["-k", "StudyDate", "-X", "-od", &fd, "127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        // findscu makes up a new Media Storage SOP Instance UID per file: compare the
        // response data sets, not the file meta.
        let mut find_responses = dir_contents(&find_dir);
        for bytes in find_responses.0.values_mut() {
            *bytes = without_file_meta(bytes);
        }
        let find_log = format!("{}{}", find.stdout, find.stderr);
        assert!(find_log.contains("Find Response"), "{}", find.text());
        let study_key = format!("StudyInstanceUID={study}");
        let md = dir.join(format!("moved-{label}"));
        let mv = run_ok(
            &format!("movescu-{label}"),
            command(
                "movescu",
                &[
                    &["-d"][..],
                    &common[..],
                    &["-aem", dest, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", &study_key],
                    &["127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        let got_dir = dir.join(format!("got-{label}"));
        std::fs::create_dir_all(&got_dir).unwrap();
        let gd = got_dir.display().to_string();
        let patient_key = format!("PatientID={patient}");
        let get = run_ok(
            &format!("getscu-{label}"),
            command(
                "getscu",
                &[
                    &["-d"][..],
                    &common[..],
                    &["-od", &gd, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", &patient_key],
                    &["127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        let mv_log = format!("{}{}", mv.stdout, mv.stderr);
        let get_log = format!("{}{}", get.stdout, get.stderr);
        // The move's store sub-association ends before the final C-MOVE-RSP.
        QrResult {
            find_matches: find_responses.len(),
            find_responses,
            move_final: suboperation_lines(&mv_log),
            moved: dir_contents(&md),
            got: dir_contents(&got_dir),
            get_final: suboperation_lines(&get_log),
        }
    };
    let direct = round("direct", qr_port, "DESTA");
    let proxied = round("proxied", proxy.port(), "DESTB");
    assert!(direct.find_matches >= 2, "CT and MR studies: {direct:?}");
    assert_eq!(direct.find_responses.len(), direct.find_matches);
    assert_eq!(direct.moved.len(), 1, "the CT study: {:?}", direct.moved);
    assert!(!direct.got.is_empty(), "the CT patient's instances");
    assert!(!direct.move_final.is_empty(), "movescu -d prints the counters");
    assert_eq!(proxied.find_matches, direct.find_matches);
    assert_eq!(proxied.find_responses, direct.find_responses, "C-FIND responses");
    assert_eq!(proxied.move_final, direct.move_final, "C-MOVE sub-operations");
    assert_eq!(proxied.get_final, direct.get_final, "C-GET sub-operations");
    assert_eq!(
        proxied.moved.0.keys().collect::<Vec<_>>(),
        direct.moved.0.keys().collect::<Vec<_>>()
    );
    assert!(proxied.moved == direct.moved, "moved files differ");
    assert!(proxied.got == direct.got, "retrieved (C-GET) files differ");

    // The event log saw the same: matches, and the final counters of the move and the get.
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") == 3),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let pending_find = commands(&ev, "C-FIND-RSP")
        .iter()
        .filter(|c| c["status"]["value"] == 0xFF00)
        .count();
    assert_eq!(pending_find, direct.find_matches);
    let final_move = commands(&ev, "C-MOVE-RSP")
        .into_iter()
        .find(|c| c["status"]["value"] == 0)
        .expect("a final C-MOVE-RSP");
    assert_eq!(final_move["sub_operations"]["completed"], 1, "{final_move}");
    assert_eq!(final_move["sub_operations"]["failed"], 0, "{final_move}");
    let final_get = commands(&ev, "C-GET-RSP")
        .into_iter()
        .find(|c| c["status"]["value"] == 0)
        .expect("a final C-GET-RSP");
    assert_eq!(
        final_get["sub_operations"]["completed"].as_u64(),
        Some(direct.got.len() as u64),
        "{final_get}"
    );
    // The C-GET's C-STORE sub-operations travel the same association through the proxy.
    assert_eq!(commands(&ev, "C-STORE-RQ").len(), direct.got.len());
}

// ---------------------------------------------------------------------------------------
// 4. Both legs byte-identical on the wire

/// Bytes per connection and side, from dicomtap's own capture reader.
#[derive(Default)]
struct Streams {
    conns: BTreeMap<u64, (ConnectionInfo, [Vec<u8>; 2], u64)>,
}

impl StreamSink for Streams {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        self.conns
            .insert(conn.id.0, (conn.clone(), [Vec::new(), Vec::new()], 0));
    }
    fn on_data(&mut self, conn: ConnId, from: Side, _ts_us: u64, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn.0) {
            c.1[from.index()].extend_from_slice(data);
        }
    }
    fn on_gap(&mut self, conn: ConnId, _from: Side, _ts_us: u64, missing: u64) {
        if let Some(c) = self.conns.get_mut(&conn.0) {
            c.2 += missing;
        }
    }
    fn on_end(&mut self, _conn: ConnId, _from: Side, _ts_us: u64, _how: StreamEnd) {}
    fn on_close(&mut self, _conn: ConnId, _ts_us: u64) {}
}

#[test]
fn both_legs_carry_identical_bytes_on_the_wire() {
    if !require("both_legs_wire", &["storescp", "storescu", "dumpcap"]) {
        return;
    }
    let Some((_, data)) = require_python("both_legs_wire") else {
        return;
    };
    let tmp = temp_dir("ev-legs");
    let dir = tmp.path();
    let (_scp, up_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let listen_port = free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let up = format!("127.0.0.1:{up_port}");
    let proxy = start_proxy(
        "proxy",
        &["--listen", &listen, "--upstream", &up, "--metrics", "off"],
        dir,
        1,
        false,
        0,
    );
    let files: Vec<PathBuf> = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "rtdose.dcm"]
        .iter()
        .map(|n| data.test_files.join(n))
        .collect();
    let cap = support::Capture::start("legs", &[listen_port, up_port], dir);
    run_ok("storescu", command("storescu", &storescu_args(proxy.port(), &files)), dir, PEER);
    run_ok("echoscu", command("echoscu", &["127.0.0.1".to_string(), proxy.port().to_string()]), dir, PEER);
    let pcap = cap.finish();

    let mut streams = Streams::default();
    CaptureReader::open(&pcap)
        .expect("opening dumpcap's capture")
        .process(&mut streams)
        .expect("reading dumpcap's capture");
    let front: Vec<_> = streams
        .conns
        .values()
        .filter(|c| c.0.server.port() == listen_port)
        .collect();
    let back: Vec<_> = streams
        .conns
        .values()
        .filter(|c| c.0.server.port() == up_port)
        .collect();
    assert_eq!(front.len(), 2, "storescu and echoscu to the proxy");
    assert_eq!(back.len(), 2, "the proxy to storescp, twice");
    for (f, b) in front.iter().zip(&back) {
        assert_eq!((f.2, b.2), (0, 0), "dumpcap lost packets");
        assert!(f.1[0].len() > 100, "the requestor sent something");
        assert!(
            f.1[0] == b.1[0],
            "client->proxy ({} bytes) and proxy->upstream ({} bytes) differ",
            f.1[0].len(),
            b.1[0].len()
        );
        assert!(
            f.1[1] == b.1[1],
            "upstream->proxy ({} bytes) and proxy->client ({} bytes) differ",
            b.1[1].len(),
            f.1[1].len()
        );
    }
    let total: usize = front.iter().map(|c| c.1[0].len()).sum();
    let sizes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(total as u64 > sizes / 2, "the data sets crossed: {total} bytes");
}
