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

use crate::support;

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
    Proc, command, free_port, http_get_status_body, require, require_peers, require_python, run,
    run_ok, temp_dir, tshark, wait_until,
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

mod forwarding;
mod lifecycle;
mod metrics;
mod recording;
