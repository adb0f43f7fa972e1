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

use dicomtap_analyzer::capture::{
    CaptureReader, ConnId, ConnectionInfo, Side, StreamEnd, StreamSink,
};
use support::peers::{Dcmqrscp, python_scp, storescp};
use support::{
    Proc, command, free_port, http_get_status_body, require, require_python, run, run_ok, temp_dir,
    tshark, wait_until,
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
            p.listen.extend(support::printed_addr(rest));
        } else if let Some(rest) = line.strip_prefix("dicomtap proxy: metrics on ") {
            p.metrics = support::printed_addr(rest);
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

/// `dicomtap proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:UP --metrics off --record
/// REC EXTRA`, once it printed its listener and its two recording files.
fn recording_proxy(name: &str, up: u16, rec: &Path, extra: &[&str], dir: &Path) -> Proxy {
    let upstream = format!("127.0.0.1:{up}");
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--metrics",
        "off",
        "--record",
        rec.to_str().expect("temporary paths are UTF-8"),
    ];
    args.extend_from_slice(extra);
    start_proxy(name, &args, dir, 1, false, 2)
}

/// `dicomtap proxy --config DIR/proxy.toml` with `toml` written there, once it printed
/// `listeners` listening lines, its metrics line when `metrics`, and `files` recording lines.
fn configured_proxy(
    toml: &str,
    dir: &Path,
    listeners: usize,
    metrics: bool,
    files: usize,
) -> Proxy {
    let cfg = dir.join("proxy.toml");
    std::fs::write(&cfg, toml).expect("writing the proxy's configuration");
    let cfg = cfg.to_str().expect("temporary paths are UTF-8");
    start_proxy("proxy", &["--config", cfg], dir, listeners, metrics, files)
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

// ---------------------------------------------------------------------------------------
// Peers

/// storescu (STORESCU to ANY-SCP, each file in its own transfer syntax), to success.
fn storescu(name: &str, port: u16, files: &[PathBuf], dir: &Path) -> support::RunOutput {
    run_ok(name, storescu_command(port, files), dir, PEER)
}

/// storescu from STORESCU to ANY-SCP, each file in its own transfer syntax (`-R`).
fn storescu_command(port: u16, files: &[PathBuf]) -> std::process::Command {
    let options = ["-aet", "STORESCU", "-aec", "ANY-SCP", "-R"];
    support::peers::storescu_command(&options, port, files)
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

/// Echo, then store every file, printing each status (tests/peers_py/store_scu.py).
const PY_SCU: &str = include_str!("peers_py/store_scu.py");

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
        python_scp(name, &python, &dir.join("scp.py"), &[out], dir)
    };
    let scu = |name: &str, port: u16| {
        let mut cmd = Command::new(&python);
        cmd.arg(dir.join("scu.py"))
            .arg(port.to_string())
            .args(&files);
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
    let proxy = recording_proxy("proxy", p2, &rec, &[], dir);
    scu("scu-proxied", proxy.port());

    let n = assert_same_files(&direct_dir, &proxied_dir, "pynetdicom SCP");
    assert_eq!(
        n,
        2 * files.len(),
        "one .raw and one .dcm per file: {:?}",
        dir_contents(&direct_dir)
    );
    assert!(
        wait_events(&rec, START, |ev| commands(ev, "C-STORE-RSP").len()
            == files.len()
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
        &[
            "dcmqrscp", "storescu", "storescp", "findscu", "movescu", "getscu", "dcmdump",
        ],
    ) {
        return;
    }
    let Some((_, data)) = require_python("find_move_get") else {
        return;
    };
    let tmp = temp_dir("ev-qr");
    let dir = tmp.path();
    let (_dest_a, port_a) = storescp("dest-a", &dir.join("moved-direct"), dir, &["-aet", "DESTA"]);
    let (_dest_b, port_b) = storescp(
        "dest-b",
        &dir.join("moved-proxied"),
        dir,
        &["-aet", "DESTB"],
    );
    // AE QRSCP, move destinations DESTA and DESTB.
    let qr = Dcmqrscp::configure(dir, &[("DESTA", port_a), ("DESTB", port_b)]);
    let qr_port = qr.port;
    let _qr = qr.start("dcmqrscp", dir, &["-d"]);
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
    let proxy = recording_proxy("proxy", qr_port, &rec, &[], dir);

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
                    &[
                        "-S",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        "StudyInstanceUID",
                        "-k",
                        "PatientName",
                    ],
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
                    &[
                        "-aem",
                        dest,
                        "-S",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        &study_key,
                    ],
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
                    &[
                        "-od",
                        &gd,
                        "-P",
                        "-k",
                        "QueryRetrieveLevel=PATIENT",
                        "-k",
                        &patient_key,
                    ],
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
    assert!(
        !direct.move_final.is_empty(),
        "movescu -d prints the counters"
    );
    assert_eq!(proxied.find_matches, direct.find_matches);
    assert_eq!(
        proxied.find_responses, direct.find_responses,
        "C-FIND responses"
    );
    assert_eq!(
        proxied.move_final, direct.move_final,
        "C-MOVE sub-operations"
    );
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
    let files: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "rtplan.dcm",
        "rtdose.dcm",
    ]
    .iter()
    .map(|n| data.test_files.join(n))
    .collect();
    let cap = support::Capture::start("legs", &[listen_port, up_port], dir);
    storescu("storescu", proxy.port(), &files, dir);
    run_ok(
        "echoscu",
        command(
            "echoscu",
            &["127.0.0.1".to_string(), proxy.port().to_string()],
        ),
        dir,
        PEER,
    );
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
    assert!(
        total as u64 > sizes / 2,
        "the data sets crossed: {total} bytes"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Storage commitment with Orthanc

const PY_COMMIT: &str = r#"
import sys, threading
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, StorageCommitmentPushModelInstance

port, listen_port, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
src = dcmread(path, stop_before_pixels=True)
done = threading.Event()

def on_report(event):
    info = event.event_information
    print("EVENT_REPORT type=%s assoc=%s refs=%d failed=%d" % (
        event.event_type, "same" if event.assoc.is_requestor else "new",
        len(info.get("ReferencedSOPSequence", [])), len(info.get("FailedSOPSequence", []))),
        flush=True)
    done.set()
    return 0x0000, None

handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
ae = AE(ae_title="PYSCU")
# Orthanc reports on a new association, as the storage commitment SCP: both roles.
ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
server = ae.start_server(("127.0.0.1", listen_port), block=False, evt_handlers=handlers)
ae.add_requested_context(StorageCommitmentPushModel)
assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC", evt_handlers=handlers)
if not assoc.is_established:
    sys.exit("association not established")
ds = Dataset()
ds.TransactionUID = generate_uid()
item = Dataset()
item.ReferencedSOPClassUID = src.SOPClassUID
item.ReferencedSOPInstanceUID = src.SOPInstanceUID
ds.ReferencedSOPSequence = [item]
status, _ = assoc.send_n_action(ds, 1, StorageCommitmentPushModel,
                                StorageCommitmentPushModelInstance)
print("N_ACTION 0x%04x" % status.Status, flush=True)
# The report may come on this association; give it a moment before releasing.
done.wait(2)
assoc.release()
ok = done.wait(30)
server.shutdown()
sys.exit(0 if ok else "no N-EVENT-REPORT within 30 s")
"#;

#[test]
fn storage_commitment_with_orthanc_through_the_proxy() {
    if !require("storage_commitment", &["Orthanc", "storescu"]) {
        return;
    }
    let Some((python, data)) = require_python("storage_commitment") else {
        return;
    };
    let tmp = temp_dir("ev-commit");
    let dir = tmp.path();
    // Front: SCU -> proxy A -> Orthanc. Back: Orthanc -> proxy B -> the SCU's listener.
    let (orthanc_port, front, back, scu_listen) =
        (free_port(), free_port(), free_port(), free_port());
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"off\"\n\
         [[listener]]\nname = \"to-orthanc\"\nlisten = \"127.0.0.1:{front}\"\nupstream = \"127.0.0.1:{orthanc_port}\"\n\
         [[listener]]\nname = \"to-scu\"\nlisten = \"127.0.0.1:{back}\"\nupstream = \"127.0.0.1:{scu_listen}\"\n\
         [recording]\ndir = \"{}\"\n",
        rec.display()
    );
    let _proxy = configured_proxy(&toml, dir, 2, false, 2);
    let _orthanc = support::peers::orthanc(
        dir,
        "orthanc",
        orthanc_port,
        serde_json::json!({
            "DicomModalities": {
                "pyscu": { "AET": "PYSCU", "Host": "127.0.0.1", "Port": back,
                           "AllowStorageCommitment": true },
                "storescu": ["STORESCU", "127.0.0.1", back],
            },
        }),
    );
    let file = data.test_files.join("CT_small.dcm");
    run_ok(
        "storescu",
        command(
            "storescu",
            &[
                "-aet",
                "STORESCU",
                "-aec",
                "ORTHANC",
                "127.0.0.1",
                &front.to_string(),
                file.to_str().unwrap(),
            ],
        ),
        dir,
        PEER,
    );
    std::fs::write(dir.join("commit.py"), PY_COMMIT).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("commit.py"))
        .arg(front.to_string())
        .arg(scu_listen.to_string())
        .arg(&file);
    let out = run_ok("commit", cmd, dir, PEER);
    eprintln!(
        "storage commitment SCU: {}",
        out.stdout.replace('\n', " | ")
    );
    assert!(out.stdout.contains("N_ACTION 0x0000"), "{}", out.text());
    assert!(
        out.stdout.contains("EVENT_REPORT type=1") && out.stdout.contains("refs=1 failed=0"),
        "Orthanc reports the instance as committed (event type 1):\n{}",
        out.text()
    );

    // The event log: N-ACTION on the front association, N-EVENT-REPORT (on whichever
    // association Orthanc chose, here through listener B) with its response.
    assert!(
        wait_events(&rec, START, |ev| !commands(ev, "N-EVENT-REPORT-RSP")
            .is_empty()
            && count_event(ev, "closed") >= 3),
        "{:#?}",
        events_in(&rec)
            .iter()
            .filter(|e| e["event"] != "p_data")
            .map(|e| format!("{} {} {}", e["assoc"], e["event"], e["command"]))
            .collect::<Vec<_>>()
    );
    let ev = events_in(&rec);
    let action_rq = commands(&ev, "N-ACTION-RQ");
    let action_rsp = commands(&ev, "N-ACTION-RSP");
    let report_rq = commands(&ev, "N-EVENT-REPORT-RQ");
    assert_eq!(
        (action_rq.len(), action_rsp.len(), report_rq.len()),
        (1, 1, 1)
    );
    assert_eq!(action_rq[0]["action_type_id"], 1);
    assert_eq!(action_rsp[0]["status"]["value"], 0);
    assert_eq!(report_rq[0]["event_type_id"], 1, "{}", report_rq[0]);
    assert_eq!(
        report_rq[0]["affected_sop_class"], "1.2.840.10008.1.20.1",
        "storage commitment push model"
    );
    // Orthanc 1.10 reports from a job, on a new association to the modality's address
    // (here listener B of the proxy).
    assert!(out.stdout.contains("assoc=new"), "{}", out.text());
    {
        assert_ne!(report_rq[0]["assoc"], action_rq[0]["assoc"]);
        let rq = ev
            .iter()
            .find(|e| e["event"] == "associate_rq" && e["assoc"] == report_rq[0]["assoc"])
            .expect("the report's A-ASSOCIATE-RQ");
        assert_eq!(rq["calling_ae"], "ORTHANC", "{rq}");
        assert_eq!(rq["called_ae"], "PYSCU", "{rq}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Upstream killed mid-transfer

/// Writes a minimal Secondary Capture file (explicit VR little endian) with `pixels` bytes
/// of pixel data.
fn write_big_dicom(path: &Path, pixels: usize) {
    fn elem(out: &mut Vec<u8>, group: u16, element: u16, vr: &[u8; 2], value: &[u8]) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ") {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
    }
    fn uid(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        v
    }
    let sc = "1.2.840.10008.5.1.4.1.1.7";
    let inst = format!("1.2.826.0.1.3680043.2.1143.{}", pixels);
    let mut meta = Vec::new();
    elem(&mut meta, 2, 1, b"OB", &[0, 1]);
    elem(&mut meta, 2, 2, b"UI", &uid(sc));
    elem(&mut meta, 2, 3, b"UI", &uid(&inst));
    elem(&mut meta, 2, 0x10, b"UI", &uid("1.2.840.10008.1.2.1"));
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    elem(&mut out, 2, 0, b"UL", &(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    elem(&mut out, 8, 0x16, b"UI", &uid(sc));
    elem(&mut out, 8, 0x18, b"UI", &uid(&inst));
    elem(&mut out, 8, 0x60, b"CS", b"OT");
    elem(&mut out, 0x10, 0x10, b"PN", b"Test^Big");
    elem(&mut out, 0x10, 0x20, b"LO", b"BIG1");
    elem(&mut out, 0x20, 0x0d, b"UI", &uid(&format!("{inst}.1")));
    elem(&mut out, 0x20, 0x0e, b"UI", &uid(&format!("{inst}.2")));
    let pixels: Vec<u8> = (0..pixels).map(|i| (i % 251) as u8).collect();
    elem(&mut out, 0x7fe0, 0x10, b"OB", &pixels);
    std::fs::write(path, out).unwrap();
}

#[test]
fn upstream_killed_mid_transfer_aborts_the_client_and_spares_others() {
    if !require("upstream_killed", &["storescp", "storescu", "echoscu"]) {
        return;
    }
    let tmp = temp_dir("ev-kill");
    let dir = tmp.path();
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 48 << 20);
    // The victim reads slowly (one PDU a second), so the transfer is surely in progress.
    let (mut victim, victim_port) = storescp(
        "victim",
        &dir.join("victim"),
        dir,
        &["-v", "--sleep-during", "1"],
    );
    let (_other, other_port) = storescp("other", &dir.join("other"), dir, &[]);
    let (a, b) = (free_port(), free_port());
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"127.0.0.1:0\"\n\
         [[listener]]\nlisten = \"127.0.0.1:{a}\"\nupstream = \"127.0.0.1:{victim_port}\"\n\
         [[listener]]\nlisten = \"127.0.0.1:{b}\"\nupstream = \"127.0.0.1:{other_port}\"\n\
         [recording]\ndir = \"{}\"\npayload = \"headers\"\n",
        rec.display()
    );
    let mut proxy = configured_proxy(&toml, dir, 2, true, 2);

    let mut scu = Proc::spawn(
        "storescu-big",
        storescu_command(a, std::slice::from_ref(&big)),
        dir,
    );
    assert!(
        wait_until(START, || victim.output().contains("Received Store Request")),
        "the transfer did not start\n{}\n{}",
        victim.output(),
        scu.output()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(scu.try_wait().is_none(), "storescu is still sending");
    // Meanwhile another association through the same proxy works.
    let echo = |name: &str| {
        run(
            name,
            command("echoscu", &["-aet", "ECHOSCU", "127.0.0.1", &b.to_string()]),
            dir,
            PEER,
        )
    };
    let during = echo("echo-during");
    assert!(during.status.success(), "{}", during.text());

    victim.stop("KILL", Duration::from_secs(5));
    let killed_at = Instant::now();
    let status = scu.wait_timeout(Duration::from_secs(30));
    let scu_log = scu.output();
    assert!(
        status.is_some(),
        "storescu hangs after the upstream was killed\n{scu_log}"
    );
    assert!(
        !status.unwrap().success(),
        "storescu reports a failure\n{scu_log}"
    );
    assert!(
        scu_log.contains("Abort") || scu_log.contains("abort") || scu_log.contains("Failed"),
        "storescu says the association was aborted or failed\n{scu_log}"
    );
    eprintln!("storescu gave up {:?} after the kill", killed_at.elapsed());

    let after = echo("echo-after");
    assert!(after.status.success(), "{}", after.text());
    assert!(
        proxy.proc.try_wait().is_none(),
        "the proxy is still running"
    );

    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") >= 3),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let big_assoc = commands(&ev, "C-STORE-RQ")
        .first()
        .map(|c| c["assoc"].clone())
        .expect("the big C-STORE-RQ");
    let of_big: Vec<&serde_json::Value> = ev.iter().filter(|e| e["assoc"] == big_assoc).collect();
    let notice = of_big
        .iter()
        .find(|e| e["event"] == "proxy_abort")
        .unwrap_or_else(|| panic!("no proxy_abort for the big association: {of_big:#?}"));
    assert_eq!(notice["to"], "requestor", "{notice}");
    assert!(
        of_big
            .iter()
            .any(|e| e["event"] == "upstream_error" && e["kind"] == "reset"),
        "{of_big:#?}"
    );
    let echoes = commands(&ev, "C-ECHO-RSP");
    assert_eq!(echoes.len(), 2, "both echoes answered");
    // The fault shows in the metrics too, and the exposition still passes promtool.
    let metrics = proxy.metrics.expect("a metrics address").port();
    let (_, body) = http_get_status_body(metrics, "/metrics", None);
    promtool_check(&body, dir);
    assert_eq!(
        metric_sum(&body, "dicomtap_upstream_errors_total", "kind=\"reset\""),
        1.0,
        "{body}"
    );
    assert!(
        metric_sum(&body, "dicomtap_aborts_total", "source=\"proxy\"") >= 1.0,
        "{body}"
    );
    let _ = proxy.proc.stop("TERM", Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------
// 6. Recording

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().unwrap().permissions().mode() & 0o777
}

/// The recording files in `dir` with `ext`, in name (= creation) order.
fn recordings(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Per TCP stream of a capture: (first packet is a SYN, ports, DICOM commands tshark saw).
fn tshark_streams(
    pcap: &Path,
    decode_ports: &[u16],
    dir: &Path,
) -> BTreeMap<u64, (bool, BTreeSet<u16>)> {
    let mut extra: Vec<String> = Vec::new();
    for p in decode_ports {
        extra.push("-d".into());
        extra.push(format!("tcp.port=={p},dicom"));
    }
    let extra_ref: Vec<&str> = extra.iter().map(String::as_str).collect();
    let rows = support::tshark_fields(
        pcap,
        &extra_ref,
        &[
            "tcp.stream",
            "tcp.flags.syn",
            "tcp.flags.ack",
            "tcp.srcport",
            "tcp.dstport",
        ],
        dir,
    );
    let mut out: BTreeMap<u64, (bool, BTreeSet<u16>)> = BTreeMap::new();
    for r in rows {
        let Some(stream) = r.first().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let syn = r.get(1).is_some_and(|s| s == "1" || s == "True");
        let ack = r.get(2).is_some_and(|s| s == "1" || s == "True");
        let entry = out.entry(stream).or_insert((syn && !ack, BTreeSet::new()));
        for i in [3, 4] {
            if let Some(p) = r.get(i).and_then(|s| s.parse().ok()) {
                entry.1.insert(p);
            }
        }
    }
    out
}

/// Frames tshark's TCP analysis flags (lost segments, bad ACKs, retransmissions...): a
/// synthesized capture with consistent sequence numbers has none.
fn tcp_analysis_problems(pcap: &Path, dir: &Path) -> Vec<String> {
    tshark(
        &[
            "-r",
            pcap.to_str().unwrap(),
            "-n",
            "-Y",
            "tcp.analysis.flags && !tcp.analysis.window_update",
        ],
        dir,
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// How many times tshark's DICOM dissector shows `needle` (e.g. "C-STORE-RQ").
fn tshark_dicom_count(pcap: &Path, port: u16, needle: &str, dir: &Path) -> usize {
    let decode = format!("tcp.port=={port},dicom");
    let text = tshark(
        &[
            "-r",
            pcap.to_str().unwrap(),
            "-n",
            "-d",
            &decode,
            "-Y",
            "dicom",
        ],
        dir,
    );
    text.matches(needle).count()
}

#[test]
fn recording_rotates_by_size_and_keeps_the_newest() {
    if !require("rotation", &["storescp", "storescu", "tshark"]) {
        return;
    }
    let Some((_, data)) = require_python("rotation") else {
        return;
    };
    let tmp = temp_dir("ev-rotate");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy(
        "proxy",
        up,
        &rec,
        &["--rotate-bytes", "30000", "--keep-files", "3"],
        dir,
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    for i in 0..3 {
        storescu(&format!("storescu-{i}"), proxy.port(), &files, dir);
    }
    let status = proxy.proc.stop("TERM", Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.proc.output()
    );
    let recorded: Vec<PathBuf> = proxy
        .proc
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("dicomtap proxy: recorded "))
        .map(PathBuf::from)
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    assert!(
        recorded.len() > 3,
        "rotated more often than kept: {recorded:?}"
    );
    let pcaps = recordings(&rec, "pcapng");
    let logs = recordings(&rec, "jsonl");
    assert_eq!(pcaps.len(), 3, "retention keeps 3 pairs: {pcaps:?}");
    assert_eq!(logs.len(), 3, "{logs:?}");
    // The newest ones: the last three created.
    let mut newest = recorded.clone();
    newest.sort();
    let newest = newest[newest.len() - 3..].to_vec();
    assert_eq!(pcaps, newest);
    assert_eq!(mode_of(&rec), 0o700);
    for p in &pcaps {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
        let streams = tshark_streams(p, &[up], dir);
        for (s, (starts_with_syn, _)) in &streams {
            assert!(
                starts_with_syn,
                "stream {s} of {} has no handshake of its own",
                p.display()
            );
        }
        let problems = tcp_analysis_problems(p, dir);
        assert!(problems.is_empty(), "{}: {problems:#?}", p.display());
    }
    // Rotation happened inside associations: some file continues one with a handshake.
    let with_streams = pcaps
        .iter()
        .filter(|p| !tshark_streams(p, &[up], dir).is_empty())
        .count();
    assert!(with_streams >= 2, "several kept files carry traffic");
}

#[test]
fn recording_rotates_by_age_and_keeps_each_association_whole() {
    if !require("rotate_age", &["storescp", "storescu", "tshark"]) {
        return;
    }
    let Some((_, data)) = require_python("rotate_age") else {
        return;
    };
    let tmp = temp_dir("ev-rotate-age");
    let dir = tmp.path();
    // A slow upstream: a second per PDU, so one association spans several rotations.
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &["--sleep-during", "1"]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--rotate-every", "1s"], dir);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let t0 = Instant::now();
    storescu("storescu", proxy.port(), &files, dir);
    let took = t0.elapsed();
    let status = proxy.proc.stop("TERM", Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.proc.output()
    );
    assert!(took > Duration::from_secs(2), "the store took {took:?}");

    // Size never triggers (256 MiB by default): every new pair is the age limit's.
    let pcaps = recordings(&rec, "pcapng");
    let logs = recordings(&rec, "jsonl");
    assert!(
        pcaps.len() >= 3,
        "a new pair every second of a {took:?} store: {pcaps:?}"
    );
    let stems =
        |v: &[PathBuf]| -> Vec<PathBuf> { v.iter().map(|p| p.with_extension("")).collect() };
    assert_eq!(
        stems(&pcaps),
        stems(&logs),
        "capture and log rotate together"
    );
    assert_eq!(mode_of(&rec), 0o700);
    for f in pcaps.iter().chain(&logs) {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }

    let ev = events_in(&rec);
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 1, "one association: {closed:?}");
    assert_eq!(closed[0]["how"], "closed", "{}", closed[0]);
    assert_eq!(commands(&ev, "C-STORE-RSP").len(), 2, "{ev:?}");
    let sent = [
        closed[0]["bytes_from_requestor"].as_u64().unwrap(),
        closed[0]["bytes_from_acceptor"].as_u64().unwrap(),
    ];
    assert!(sent[0] > 0 && sent[1] > 0, "{}", closed[0]);

    // Each file stands on its own, and together they hold every byte of the association.
    let mut recorded = [0u64; 2];
    let mut files_with_traffic = 0;
    for p in &pcaps {
        let streams = tshark_streams(p, &[up], dir);
        for (s, (starts_with_syn, _)) in &streams {
            assert!(
                starts_with_syn,
                "stream {s} of {} has no handshake of its own",
                p.display()
            );
        }
        let problems = tcp_analysis_problems(p, dir);
        assert!(problems.is_empty(), "{}: {problems:#?}", p.display());
        let mut payload = 0;
        for row in support::tshark_fields(p, &[], &["tcp.dstport", "tcp.len"], dir) {
            let len: u64 = row.get(1).and_then(|l| l.parse().ok()).unwrap_or(0);
            let to_upstream = row.first().is_some_and(|d| *d == up.to_string());
            recorded[usize::from(!to_upstream)] += len;
            payload += len;
        }
        files_with_traffic += usize::from(payload > 0);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
        cmd.arg("analyze")
            .arg(p)
            .arg("--json")
            .arg("--port")
            .arg(up.to_string());
        let r = run("dicomtap-analyze", cmd, dir, PEER);
        assert!(
            r.status.code().is_some_and(|c| c <= 1),
            "dicomtap analyze {}:\n{}",
            p.display(),
            r.text()
        );
    }
    assert!(
        files_with_traffic >= 2,
        "the association's bytes span several files: {pcaps:?}"
    );
    assert_eq!(
        recorded, sent,
        "bytes [to upstream, to client] in the captures vs. forwarded"
    );
}

#[test]
fn recording_both_legs_has_two_conversations_per_association() {
    if !require("both_legs", &["storescp", "storescu", "tshark"]) {
        return;
    }
    let Some((_, data)) = require_python("both_legs") else {
        return;
    };
    let tmp = temp_dir("ev-both");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--both-legs"], dir);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    storescu("storescu-1", proxy.port(), &files, dir);
    storescu("storescu-2", proxy.port(), &files, dir);
    let listen = proxy.port();
    proxy.proc.stop("TERM", Duration::from_secs(30));
    let pcap = &recordings(&rec, "pcapng")[0];
    let streams = tshark_streams(pcap, &[up, listen], dir);
    assert_eq!(
        streams.len(),
        4,
        "two associations, two legs each: {streams:?}"
    );
    let front = streams.values().filter(|s| s.1.contains(&listen)).count();
    let back = streams.values().filter(|s| s.1.contains(&up)).count();
    assert_eq!((front, back), (2, 2), "{streams:?}");
    let problems = tcp_analysis_problems(pcap, dir);
    assert!(problems.is_empty(), "{problems:#?}");
    // Both legs decode, each with every command.
    let text = tshark(
        &[
            "-r",
            pcap.to_str().unwrap(),
            "-n",
            "-d",
            &format!("tcp.port=={up},dicom"),
            "-d",
            &format!("tcp.port=={listen},dicom"),
            "-Y",
            "dicom",
        ],
        dir,
    );
    assert_eq!(
        text.matches("C-STORE-RQ").count(),
        2 * 2 * files.len(),
        "{text}"
    );
    assert_eq!(
        text.matches("C-STORE-RSP").count(),
        2 * 2 * files.len(),
        "{text}"
    );
}

#[test]
fn recording_headers_mode_keeps_commands_not_pixels() {
    if !require("headers_mode", &["storescp", "storescu", "tshark"]) {
        return;
    }
    let Some((_, data)) = require_python("headers_mode") else {
        return;
    };
    let tmp = temp_dir("ev-headers");
    let dir = tmp.path();
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 2 << 20);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        big,
    ];
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let mut sizes = Vec::new();
    let mut analyzed = Vec::new();
    for mode in ["full", "headers"] {
        let rec = dir.join(mode);
        let mut proxy = recording_proxy(
            &format!("proxy-{mode}"),
            up,
            &rec,
            &["--payload", mode],
            dir,
        );
        storescu(&format!("storescu-{mode}"), proxy.port(), &files, dir);
        proxy.proc.stop("TERM", Duration::from_secs(30));
        let pcap = recordings(&rec, "pcapng")[0].clone();
        sizes.push(pcap.metadata().unwrap().len());
        for cmd in ["C-STORE-RQ", "C-STORE-RSP"] {
            assert_eq!(
                tshark_dicom_count(&pcap, up, cmd, dir),
                files.len(),
                "{mode}: tshark decodes every {cmd}"
            );
        }
        let ev = events_in(&rec);
        assert_eq!(commands(&ev, "C-STORE-RQ").len(), files.len());
        let peeks = ev.iter().filter(|e| e["event"] == "dataset_peek").count();
        assert_eq!(peeks, files.len(), "{mode}: a peek per data set");
        analyzed.push(analyzed_sessions(&pcap, dir));
    }
    // The analyzer reads the headers-only recording as it reads the full one: what the
    // proxy left out on purpose is neither capture loss nor a reason to reorder streams.
    let (full_an, headers_an) = (&analyzed[0], &analyzed[1]);
    assert_eq!(full_an.len(), 1, "one association: {full_an:#?}");
    assert_eq!(full_an, headers_an, "headers vs full recording");
    let s = &headers_an[0];
    assert_eq!(s["findings"], serde_json::json!([]), "{s:#?}");
    assert_eq!(s["dimse"]["C-STORE"]["success"], files.len(), "{s:#?}");
    assert_eq!(s["ending"]["kind"], "released", "{s:#?}");
    let (full, headers) = (sizes[0], sizes[1]);
    assert!(
        full > 2 << 20,
        "the full capture holds the pixel data: {full}"
    );
    assert!(
        headers * 10 < full,
        "headers mode leaves out the pixel data: {headers} vs {full}"
    );
}

/// `dicomtap analyze --json` of `pcap`: its sessions without what differs between two
/// runs of the same traffic (addresses, times; a latency only as present or not).
fn analyzed_sessions(pcap: &Path, dir: &Path) -> Vec<serde_json::Value> {
    let out = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        PEER,
    );
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", out.text());
    let mut sessions: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"].clone())
        .collect();
    for s in &mut sessions {
        let o = s.as_object_mut().unwrap();
        for k in ["client", "server", "first_ts_us", "last_ts_us"] {
            o.remove(k);
        }
        if let Some(ex) = o.get_mut("exchanges").and_then(|e| e.as_array_mut()) {
            for e in ex {
                let e = e.as_object_mut().unwrap();
                e.remove("ts_us");
                let has = e.remove("latency_us").is_some_and(|l| l.is_u64());
                e.insert("answered_with_latency".into(), has.into());
            }
        }
        if let Some(f) = o.get_mut("findings").and_then(|e| e.as_array_mut()) {
            for f in f {
                let f = f.as_object_mut().unwrap();
                f.remove("ts_us");
            }
        }
        if let Some(e) = o.get_mut("ending").and_then(|e| e.as_object_mut()) {
            e.retain(|k, _| k == "kind" || k == "by" || k == "source");
        }
    }
    sessions
}

const PY_IDLE: &str = r#"
import sys, time
from pynetdicom import AE
from pynetdicom.sop_class import Verification

ae = AE(ae_title="IDLESCU")
ae.add_requested_context(Verification)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]))
if not assoc.is_established:
    sys.exit("association not established")
print("ECHO 0x%04x" % assoc.send_c_echo().Status, flush=True)
deadline = time.time() + float(sys.argv[2])
busy = len(sys.argv) > 3 and sys.argv[3] == "busy"
while time.time() < deadline and assoc.is_alive():
    if busy:
        # Traffic every 300 ms: never idle for the 1 s timeout.
        assoc.send_c_echo()
        time.sleep(0.3)
    else:
        time.sleep(0.05)
print("ABORTED" if assoc.is_aborted else "ALIVE" if assoc.is_alive() else "ENDED", flush=True)
if assoc.is_alive():
    assoc.release()
"#;

#[test]
fn idle_association_is_aborted_after_the_idle_timeout() {
    if !require("idle_timeout", &["storescp"]) {
        return;
    }
    let Some((python, _)) = require_python("idle_timeout") else {
        return;
    };
    let tmp = temp_dir("ev-idle");
    let dir = tmp.path();
    let (scp, up) = storescp("storescp", &dir.join("in"), dir, &["-v"]);
    let rec = dir.join("rec");
    let proxy = recording_proxy("proxy", up, &rec, &["--idle-timeout", "1s"], dir);
    std::fs::write(dir.join("idle.py"), PY_IDLE).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py"))
        .arg(proxy.port().to_string())
        .arg("8");
    let started = Instant::now();
    let out = run_ok("idle", cmd, dir, PEER);
    let took = started.elapsed();
    assert!(out.stdout.contains("ECHO 0x0000"), "{}", out.text());
    assert!(
        out.stdout.contains("ABORTED"),
        "the client got an A-ABORT:\n{}",
        out.text()
    );
    assert!(
        took < Duration::from_secs(7),
        "aborted after about 1 s, not at the end: {took:?}"
    );
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") == 1),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let aborts: BTreeSet<String> = ev
        .iter()
        .filter(|e| e["event"] == "proxy_abort" && e["why"] == "idle timeout")
        .map(|e| e["to"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        aborts,
        ["acceptor".to_string(), "requestor".to_string()].into(),
        "A-ABORT to both sides"
    );
    let closed = ev.iter().find(|e| e["event"] == "closed").unwrap();
    assert_eq!(closed["how"], "idle timeout");

    // An association that keeps talking outlives the timeout.
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py"))
        .arg(proxy.port().to_string())
        .arg("3")
        .arg("busy");
    let out = run_ok("busy", cmd, dir, PEER);
    assert!(
        out.stdout.contains("ALIVE"),
        "not aborted while busy:\n{}",
        out.text()
    );
    // storescp saw the abort too.
    assert!(
        wait_until(Duration::from_secs(5), || scp.output().contains("Abort")),
        "{}",
        scp.output()
    );
}

#[test]
fn sigterm_lets_an_association_in_progress_finish() {
    if !require("sigterm_drain", &["storescp", "storescu", "echoscu"]) {
        return;
    }
    let Some((_, data)) = require_python("sigterm_drain") else {
        return;
    };
    let tmp = temp_dir("ev-drain");
    let dir = tmp.path();
    // A slow upstream: a second per PDU, so CT_small takes several seconds.
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &["--sleep-during", "1"]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--drain", "30s"], dir);
    let port = proxy.port();
    let files = [data.test_files.join("CT_small.dcm")];
    let mut scu = Proc::spawn("storescu", storescu_command(port, &files), dir);
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "associate_ac") == 1),
        "the association did not start: {:?}",
        events_in(&rec)
    );
    assert!(
        scu.try_wait().is_none(),
        "the store is still in progress at SIGTERM"
    );
    let t0 = Instant::now();
    proxy.proc.signal("TERM");
    assert!(
        wait_until(Duration::from_secs(5), || proxy
            .proc
            .stdout()
            .contains("shutting down")),
        "{}",
        proxy.proc.output()
    );
    // No new associations once draining.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the proxy still accepts during the drain"
    );
    let status = scu.wait_timeout(PEER);
    assert!(
        status.is_some_and(|s| s.success()),
        "the association in progress completes: {}",
        scu.output()
    );
    let exit = proxy.proc.wait_timeout(Duration::from_secs(30));
    assert!(exit.is_some_and(|s| s.success()), "{}", proxy.proc.output());
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "within the drain time"
    );
    let out = proxy.proc.stdout();
    assert!(out.contains("0 cut at drain"), "{out}");
    let ev = events_in(&rec);
    assert_eq!(commands(&ev, "C-STORE-RSP").len(), 1);
    assert_eq!(count_event(&ev, "release_rp"), 1, "{ev:?}");
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(
        closed[0]["how"], "closed",
        "released, not cut: {}",
        closed[0]
    );

    // A drain too short for the association in progress: it is cut, and says so.
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 1 << 20);
    let rec2 = dir.join("rec-cut");
    let mut proxy = recording_proxy("proxy-cut", up, &rec2, &["--drain", "1s"], dir);
    let mut scu = Proc::spawn("storescu-cut", storescu_command(proxy.port(), &[big]), dir);
    assert!(
        wait_events(&rec2, START, |ev| count_event(ev, "associate_ac") == 1),
        "the association did not start: {:?}",
        events_in(&rec2)
    );
    let t0 = Instant::now();
    proxy.proc.signal("TERM");
    let exit = proxy.proc.wait_timeout(Duration::from_secs(20));
    assert!(exit.is_some_and(|s| s.success()), "{}", proxy.proc.output());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the drain ends after 1 s: {:?}",
        t0.elapsed()
    );
    assert!(
        proxy.proc.stdout().contains("1 cut at drain"),
        "{}",
        proxy.proc.output()
    );
    let status = scu.wait_timeout(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "storescu learns that its association was cut: {}",
        scu.output()
    );
    let ev = events_in(&rec2);
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(
        closed.len(),
        1,
        "the cut association has its closed event: {:?}",
        ev.iter().map(|e| e["event"].clone()).collect::<Vec<_>>()
    );
    assert_eq!(closed[0]["how"], "cut at drain", "{}", closed[0]);
    // The client's direction was mid-PDU (a data set streaming), the upstream's between
    // PDUs: the client gets the A-ABORT.
    assert!(
        ev.iter().any(|e| e["event"] == "proxy_abort"
            && e["to"] == "requestor"
            && e["why"] == "cut at drain"),
        "{ev:?}"
    );
}

#[test]
fn kill_9_leaves_a_readable_recording() {
    if !require("kill_9", &["storescp", "storescu", "tshark"]) {
        return;
    }
    let Some((_, data)) = require_python("kill_9") else {
        return;
    };
    let tmp = temp_dir("ev-kill9");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &[], dir);
    let one = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let many: Vec<PathBuf> = one.iter().cycle().take(400).cloned().collect();
    let mut scu = Proc::spawn("storescu", storescu_command(proxy.port(), &many), dir);
    let pcap = proxy
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pcapng"))
        .cloned()
        .expect("a pcapng");
    assert!(
        wait_until(START, || pcap.metadata().map(|m| m.len()).unwrap_or(0)
            > 1 << 20),
        "nothing recorded"
    );
    assert!(
        scu.try_wait().is_none(),
        "traffic is still flowing at the kill"
    );
    proxy.proc.stop("KILL", Duration::from_secs(5));
    let _ = scu.wait_timeout(Duration::from_secs(10));

    let read = run(
        "tshark-read",
        command(
            "tshark",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-n",
                "-d",
                &format!("tcp.port=={up},dicom"),
            ],
        ),
        dir,
        PEER,
    );
    assert!(
        read.status.success() || read.stderr.contains("cut short in the middle of a packet"),
        "tshark reads the capture left by kill -9:\n{}",
        read.stderr
    );
    let frames = read.stdout.lines().count();
    let problems = tcp_analysis_problems(&pcap, dir);
    assert!(problems.is_empty(), "{problems:#?}");
    // The event log beside it: whole lines only.
    let log = proxy
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .expect("a jsonl");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the log ends with a whole line"
    );
    for line in text.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line}"
        );
    }
    assert!(frames > 10, "{}", read.text());
    assert!(
        read.stdout.contains("C-STORE-RQ"),
        "tshark decodes DICOM in it"
    );
    let analyze = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        PEER,
    );
    let sessions: Vec<serde_json::Value> = analyze
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .collect();
    // A clean end (whole blocks were written), or a cut-short last record that is named.
    let clean = analyze.status.success();
    let cut = analyze.status.code() == Some(2) && analyze.stderr.contains("is truncated");
    assert!(
        !sessions.is_empty() && (clean || cut),
        "dicomtap analyze reads the capture up to its last complete packet:\n{}",
        analyze.text()
    );
    eprintln!(
        "kill -9: tshark exit {:?}, analyze exit {:?}, {} sessions, {frames} frames",
        read.status.code(),
        analyze.status.code(),
        sessions.len()
    );
}

// ---------------------------------------------------------------------------------------
// 7. Metrics

/// `promtool check metrics` on an exposition text; fails the test on any complaint.
fn promtool_check(body: &str, dir: &Path) {
    let file = dir.join("metrics.txt");
    std::fs::write(&file, body).unwrap();
    let promtool = support::find_executable("promtool").expect(
        "promtool missing: install Debian's `prometheus` package (scripts/install-test-peers.sh)",
    );
    let mut check = Command::new(promtool);
    check
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap());
    let out = run("promtool", check, dir, PEER);
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}\n{body}",
        out.text()
    );
}

/// Every value of `label` over every sample of an exposition text, with its count.
fn label_values(body: &str, label: &str) -> HashMap<String, usize> {
    let key = format!("{label}=\"");
    let mut out: HashMap<String, usize> = HashMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        if let Some(i) = line.find(&key) {
            let rest = &line[i + key.len()..];
            let v = &rest[..rest.find('"').unwrap_or(0)];
            *out.entry(v.to_string()).or_default() += 1;
        }
    }
    out
}

/// The sum of the samples of `name` whose labels contain `labels` (e.g. `kind="reset"`).
fn metric_sum(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_pass_promtool_and_ae_titles_are_capped() {
    if !require("metrics", &["storescp", "storescu", "echoscu", "promtool"]) {
        return;
    }
    let Some((_, data)) = require_python("metrics") else {
        return;
    };
    let tmp = temp_dir("ev-metrics");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let toml = format!(
        "metrics_listen = \"127.0.0.1:0\"\n\
         [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{up}\"\n\
         [metrics]\nae_title_cap = 50\n"
    );
    let proxy = configured_proxy(&toml, dir, 1, true, 0);
    let port = proxy.port().to_string();
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    storescu("storescu", proxy.port(), &files, dir);
    // 60 distinct calling AE titles against a cap of 50.
    for i in 0..60 {
        let (aet, aec) = (format!("MODALITY{i:02}"), format!("PACS{i:02}"));
        run_ok(
            &format!("echo-{i}"),
            command(
                "echoscu",
                &[
                    "-aet",
                    aet.as_str(),
                    "-aec",
                    aec.as_str(),
                    "127.0.0.1",
                    &port,
                ],
            ),
            dir,
            PEER,
        );
    }
    let metrics = proxy.metrics.expect("a metrics address");
    let (status, body) = http_get_status_body(metrics.port(), "/metrics", None);
    assert!(status.contains("200"), "{status}");
    promtool_check(&body, dir);

    for label in ["calling_ae", "called_ae"] {
        let values = label_values(&body, label);
        assert!(
            values.len() <= 51,
            "{} {label} values: {values:?}",
            values.len()
        );
        assert!(
            values.contains_key("other"),
            "the overflow bucket: {values:?}"
        );
    }
    let calling = label_values(&body, "calling_ae");
    assert!(calling.contains_key("STORESCU"), "{calling:?}");
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("dicomtap_associations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 61.0, "every association counted once");
}

/// One numbering everywhere: with `max_associations = 1`, an echoscu while a pynetdicom
/// association is held open is rejected by the proxy (local-limit-exceeded), then another
/// one goes through. `dicomtap analyze` of the recording numbers each association as the
/// proxy's event log does (it reads the proxy's number from the packet comments).
#[test]
fn analyze_numbers_a_recording_as_the_proxy_event_log() {
    if !require("numbering", &["storescp", "echoscu"]) {
        return;
    }
    let Some((python, _)) = require_python("numbering") else {
        return;
    };
    let tmp = temp_dir("ev-numbering");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"off\"\n[limits]\nmax_associations = 1\n\
         [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{up}\"\n\
         [recording]\ndir = \"{}\"\n",
        rec.display()
    );
    let mut proxy = configured_proxy(&toml, dir, 1, false, 2);
    let port = proxy.port();
    std::fs::write(dir.join("idle.py"), PY_IDLE).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py")).arg(port.to_string()).arg("4");
    let mut held = Proc::spawn("held", cmd, dir);
    assert!(
        wait_until(START, || held.stdout().contains("ECHO 0x0000")),
        "{}",
        held.output()
    );
    let echo = |name: &str| {
        run(
            name,
            command(
                "echoscu",
                &["-aet", "ECHOSCU", "127.0.0.1", &port.to_string()],
            ),
            dir,
            PEER,
        )
    };
    let refused = echo("echo-refused");
    assert!(
        !refused.status.success(),
        "over the limit: {}",
        refused.text()
    );
    assert!(
        held.wait_timeout(Duration::from_secs(30)).is_some(),
        "{}",
        held.output()
    );
    let after = echo("echo-after");
    assert!(after.status.success(), "{}", after.text());
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") >= 3),
        "{:?}",
        events_in(&rec)
    );
    proxy.proc.stop("TERM", Duration::from_secs(10));
    let ev = events_in(&rec);
    let echo_assoc = commands(&ev, "C-ECHO-RQ")
        .iter()
        .map(|c| c["assoc"].as_u64().unwrap())
        .collect::<BTreeSet<u64>>();
    assert_eq!(echo_assoc.len(), 2, "{ev:#?}");
    assert!(echo_assoc.contains(&1), "{echo_assoc:?}");
    let last = *echo_assoc.iter().max().unwrap();
    assert!(
        last >= 3,
        "the refused association took a number: {echo_assoc:?}"
    );
    let logged: BTreeSet<u64> = ev.iter().filter_map(|e| e["assoc"].as_u64()).collect();
    assert_eq!(logged.len(), 3, "{ev:#?}");
    let pcap = recordings(&rec, "pcapng")[0].clone();
    let out = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        PEER,
    );
    let ids: BTreeSet<u64> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        logged,
        "analyze numbers as the event log: {}",
        out.text()
    );
    assert!(echo_assoc.is_subset(&ids), "{echo_assoc:?} {ids:?}");
}
