#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `dicomtap analyze` against tshark's DICOM dissector on captures of real peers: DCMTK
//! echoscu, storescu, findscu, getscu and movescu (against storescp and dcmqrscp) and
//! pynetdicom SCU -> pynetdicom SCP, run in a network namespace pair joined by a veth link
//! at MTU 1500 (so PDUs span many segments; loopback with 1448-byte re-segmentation when
//! namespaces are not permitted). Associations, PDUs by type and DIMSE messages by command
//! and status must agree; loss, reordering and duplication are produced deterministically
//! by rewriting the capture. Also the public third-party captures.

use crate::netns;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netns::{NetnsPair, duplicated, read_frames, resegment, swapped, without, write_pcap};
use serde_json::Value;
use support::peers::Dcmqrscp;
use support::{Capture, Proc, require, require_python, run, run_ok, temp_dir, tshark_fields};

const TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// What dicomtap says

#[derive(Debug, Default)]
struct View {
    /// client port -> (calling AE, called AE)
    associations: BTreeMap<u16, (String, String)>,
    /// (client port, PDU type) -> count
    pdus: BTreeMap<(u16, u8), u64>,
    /// (client port, command, message id, status word) -> count
    dimse: BTreeMap<(u16, String, u16, String), u64>,
    gaps: u64,
}

fn status_word_ours(class: Option<&str>) -> String {
    match class {
        None => String::new(),
        Some("success") => "success".into(),
        Some("pending") => "pending".into(),
        Some(_) => "other".into(),
    }
}

fn port_of(addr: &Value) -> u16 {
    addr.as_str()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {addr}"))
}

fn dicomtap_view(capture: &Path, ports: &[u16], log: &Path) -> View {
    let events = log.join(format!(
        "{}.events.jsonl",
        capture.file_name().unwrap().to_string_lossy()
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("analyze")
        .arg(capture)
        .arg("--json")
        .arg("--events")
        .arg(&events);
    for p in ports {
        cmd.arg("--port").arg(p.to_string());
    }
    let r = run("dicomtap-analyze", cmd, log, TIMEOUT);
    assert!(
        r.status.code().is_some_and(|c| c <= 1),
        "dicomtap analyze failed:\n{}",
        r.text()
    );
    let mut v = View::default();
    for line in r.stdout.lines() {
        let j: Value = serde_json::from_str(line).unwrap();
        if j["type"] == "session" {
            let s = &j["session"];
            if let (Some(a), Some(b)) = (
                s["requestor"]["ae_title"].as_str(),
                s["acceptor"]["ae_title"].as_str(),
            ) {
                v.associations
                    .insert(port_of(&s["client"]), (a.to_string(), b.to_string()));
            }
        } else if j["type"] == "summary" {
            for c in j["captures"].as_array().unwrap() {
                v.gaps += c["stats"]["gaps"].as_u64().unwrap_or(0);
            }
        }
    }
    let text = std::fs::read_to_string(&events).unwrap();
    for line in text.lines() {
        let j: Value = serde_json::from_str(line).unwrap();
        let port = port_of(&j["client"]);
        let e = &j["event"];
        let pdu = match e["event"].as_str().unwrap() {
            "associate_rq" => Some(1),
            "associate_ac" => Some(2),
            "associate_rj" => Some(3),
            "p_data" => Some(4),
            "release_rq" => Some(5),
            "release_rp" => Some(6),
            "abort" => Some(7),
            "command" => {
                let name = e["command"].as_str().unwrap().to_string();
                let id = e["message_id"]
                    .as_u64()
                    .or_else(|| e["responded_to"].as_u64())
                    .unwrap_or(u64::from(u16::MAX)) as u16;
                let st = status_word_ours(e["status"]["class"].as_str());
                *v.dimse.entry((port, name, id, st)).or_default() += 1;
                None
            }
            _ => None,
        };
        if let Some(t) = pdu {
            *v.pdus.entry((port, t)).or_default() += 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// What tshark says

fn tshark_view(capture: &Path, ports: &[u16], log: &Path) -> View {
    let decode: Vec<String> = ports
        .iter()
        .flat_map(|p| ["-d".to_string(), format!("tcp.port=={p},dicom")])
        .collect();
    let mut extra: Vec<&str> = decode.iter().map(String::as_str).collect();
    extra.extend(["-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "dicom"]);
    let rows = tshark_fields(
        capture,
        &extra,
        &[
            "tcp.srcport",
            "tcp.dstport",
            "dicom.pdu.type",
            "dicom.assoc.ae.calling",
            "dicom.assoc.ae.called",
        ],
        log,
    );
    let mut v = View::default();
    for r in rows {
        let get = |i: usize| r.get(i).map(String::as_str).unwrap_or("");
        let (src, dst): (u16, u16) = (get(0).parse().unwrap(), get(1).parse().unwrap());
        let client = if ports.contains(&dst) { src } else { dst };
        for t in get(2).split('|').filter(|t| !t.is_empty()) {
            let t = u8::from_str_radix(t.trim_start_matches("0x"), 16).unwrap();
            *v.pdus.entry((client, t)).or_default() += 1;
        }
        let calling: Vec<&str> = get(3).split('|').collect();
        let called: Vec<&str> = get(4).split('|').collect();
        if !get(3).is_empty() {
            v.associations.insert(
                client,
                (calling[0].trim().to_string(), called[0].trim().to_string()),
            );
        }
    }
    v.dimse = tshark_dimse(capture, &extra, ports, log);
    v
}

/// DIMSE messages from tshark's PDML: the command set elements it shows as text lines
/// ("(0000,0100) 2 Command Field ... C-FIND-RSP"), read in order per packet.
fn tshark_dimse(
    capture: &Path,
    extra: &[&str],
    ports: &[u16],
    log: &Path,
) -> BTreeMap<(u16, String, u16, String), u64> {
    let file = capture.to_str().unwrap();
    let mut args = vec!["-r", file, "-n"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-T", "pdml"]);
    let pdml = support::tshark(&args, log);
    let mut out = BTreeMap::new();
    let (mut src, mut dst) = (0u16, 0u16);
    // (command, message id, status)
    let mut cur: Option<(String, u16, String)> = None;
    let flush = |cur: &mut Option<(String, u16, String)>,
                 out: &mut BTreeMap<(u16, String, u16, String), u64>,
                 src: u16,
                 dst: u16| {
        if let Some((name, id, st)) = cur.take() {
            let client = if ports.contains(&dst) { src } else { dst };
            *out.entry((client, name, id, st)).or_default() += 1;
        }
    };
    let attr = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!("{key}=\""))? + key.len() + 2;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_string())
    };
    for line in pdml.lines() {
        let line = line.trim();
        if line.starts_with("<packet>") {
            flush(&mut cur, &mut out, src, dst);
            continue;
        }
        if line.contains("name=\"tcp.srcport\"") {
            src = attr(line, "show").and_then(|v| v.parse().ok()).unwrap_or(0);
            continue;
        }
        if line.contains("name=\"tcp.dstport\"") {
            dst = attr(line, "show").and_then(|v| v.parse().ok()).unwrap_or(0);
            continue;
        }
        let Some(show) = attr(line, "show") else {
            continue;
        };
        let value = |s: &str| s.split_whitespace().last().unwrap_or("").to_string();
        if show.starts_with("(0000,0100)") && show.contains("Command Field") {
            flush(&mut cur, &mut out, src, dst);
            cur = Some((value(&show), u16::MAX, String::new()));
        } else if show.starts_with("(0000,0110)") || show.starts_with("(0000,0120)") {
            if let Some(c) = cur.as_mut() {
                c.1 = value(&show).parse().unwrap_or(u16::MAX);
            }
        } else if show.starts_with("(0000,0900)")
            && let Some(c) = cur.as_mut()
        {
            let code = show
                .rsplit_once("(0x")
                .and_then(|(_, h)| u16::from_str_radix(h.trim_end_matches(')'), 16).ok());
            c.2 = match code {
                Some(0) => "success".into(),
                Some(0xFF00 | 0xFF01) => "pending".into(),
                _ => "other".into(),
            };
        }
    }
    flush(&mut cur, &mut out, src, dst);
    out
}

fn assert_agree(ours: &View, theirs: &View, what: &str) {
    assert_eq!(
        ours.associations, theirs.associations,
        "{what}: associations"
    );
    assert_eq!(ours.pdus, theirs.pdus, "{what}: PDUs by type");
    assert_eq!(ours.dimse, theirs.dimse, "{what}: DIMSE messages");
}

/// Every entry of `a` is in `b`, at most as often.
fn sub_multiset<K: Ord + std::fmt::Debug>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>, what: &str) {
    for (k, n) in a {
        let m = b.get(k).copied().unwrap_or(0);
        assert!(
            *n <= m,
            "{what}: {k:?} {n} times, but only {m} in the reference"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Peers, in namespaces or on loopback

/// Where the peers run: a namespace pair, or loopback.
struct Net {
    pair: Option<NetnsPair>,
    server_ip: String,
    client_ip: String,
}

impl Net {
    fn new() -> Net {
        match NetnsPair::create() {
            Ok(pair) => Net {
                server_ip: pair.server_ip.clone(),
                client_ip: pair.client_ip.clone(),
                pair: Some(pair),
            },
            Err(e) => {
                eprintln!(
                    "SKIPPED (network namespaces): {e}; running the peers on loopback instead, \
                     with segments split to 1448 bytes after capture"
                );
                Net {
                    pair: None,
                    server_ip: "127.0.0.1".into(),
                    client_ip: "127.0.0.1".into(),
                }
            }
        }
    }

    fn cmd(&self, server_side: bool, program: &str, args: &[String]) -> Command {
        match &self.pair {
            Some(p) => {
                let ns = if server_side { &p.server } else { &p.client };
                let exe = support::find_executable(program)
                    .map_or_else(|| program.to_string(), |p| p.display().to_string());
                NetnsPair::command(ns, &exe, args)
            }
            None => support::command(program, args),
        }
    }

    fn port(&self, fixed: u16) -> u16 {
        if self.pair.is_some() {
            fixed
        } else {
            support::free_port()
        }
    }

    /// Waits until something listens on `port` on the side's address (`ss`, so that no
    /// connection is made and captured).
    fn wait_listen(&self, server_side: bool, port: u16, proc: &mut Proc) {
        let ok = support::wait_until(Duration::from_secs(20), || {
            if proc.try_wait().is_some() {
                return true;
            }
            let out = self
                .cmd(server_side, "ss", &["-Hltn".to_string()])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            out.lines().any(|l| l.contains(&format!(":{port} ")))
        });
        assert!(
            ok && proc.try_wait().is_none(),
            "{} did not listen on {port}\n{}",
            proc.name(),
            proc.output()
        );
    }

    /// dumpcap on the server's veth, tcp on the given ports (none on loopback).
    fn capture(&self, name: &str, ports: &[u16], dir: &Path) -> Option<Capture> {
        let p = self.pair.as_ref()?;
        Some(Capture::start_with(
            name,
            &p.server_if,
            ports,
            dir,
            |args| self.cmd(true, "dumpcap", args),
        ))
    }
}

const PY_SCP: &str = r#"
import sys
from pynetdicom import AE, evt, AllStoragePresentationContexts, VerificationPresentationContexts
def on_store(event):
    return 0x0000
ae = AE(ae_title="PYSCP")
ae.supported_contexts = AllStoragePresentationContexts + VerificationPresentationContexts
ae.start_server((sys.argv[1], int(sys.argv[2])), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])
"#;

const PY_SCU: &str = r#"
import sys
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification
host, port = sys.argv[1], int(sys.argv[2])
files = sys.argv[3:]
ae = AE(ae_title="PYSCU")
ae.add_requested_context(Verification)
dss = [dcmread(f) for f in files]
for ds in dss:
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
assoc = ae.associate(host, port, ae_title="PYSCP")
if not assoc.is_established:
    sys.exit("not established")
assoc.send_c_echo()
for ds in dss:
    st = assoc.send_c_store(ds)
    if not st or st.Status != 0:
        sys.exit("store failed")
assoc.release()
"#;

/// Runs every peer scenario under one capture; returns the capture (re-segmented on
/// loopback) and the DICOM server ports.
fn capture_peers(net: &Net, dir: &Path) -> (PathBuf, Vec<u16>) {
    let (py, data) = require_python("analyze real peers").expect("python venv");
    let files: Vec<PathBuf> = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"]
        .iter()
        .map(|f| data.test_files.join(f))
        .collect();
    let store_port = net.port(11112);
    let qr_port = net.port(11113);
    let py_port = net.port(11114);
    let dest_port = net.port(11115);
    let recv = dir.join("recv");
    let moved = dir.join("moved");
    for d in [&recv, &moved] {
        std::fs::create_dir(d).unwrap();
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let mut storescp = Proc::spawn(
        "storescp",
        net.cmd(
            true,
            "storescp",
            &s(&[
                "+xa",
                "-aet",
                "STORESCP",
                "-od",
                recv.to_str().unwrap(),
                &store_port.to_string(),
            ]),
        ),
        dir,
    );
    net.wait_listen(true, store_port, &mut storescp);
    // The C-MOVE destination runs on the client side, so the sub-association crosses the link.
    let mut dest = Proc::spawn(
        "storescp-dest",
        net.cmd(
            false,
            "storescp",
            &s(&[
                "+xa",
                "-aet",
                "MOVEDEST",
                "-od",
                moved.to_str().unwrap(),
                &dest_port.to_string(),
            ]),
        ),
        dir,
    );
    net.wait_listen(false, dest_port, &mut dest);
    // The move destination is reached across the link.
    let qr_cfg = Dcmqrscp::configure_at(dir, qr_port, &[("MOVEDEST", &net.client_ip, dest_port)]);
    let mut qr = Proc::spawn(
        "dcmqrscp",
        net.cmd(
            true,
            "dcmqrscp",
            &s(&["-c", qr_cfg.config.to_str().unwrap()]),
        ),
        dir,
    );
    net.wait_listen(true, qr_port, &mut qr);
    let mut pyscp = Proc::spawn(
        "pynetdicom-scp",
        net.cmd(
            true,
            py.to_str().unwrap(),
            &s(&["-c", PY_SCP, &net.server_ip, &py_port.to_string()]),
        ),
        dir,
    );
    net.wait_listen(true, py_port, &mut pyscp);

    let client = |name: &str, program: &str, args: Vec<String>| {
        run_ok(name, net.cmd(false, program, &args), dir, TIMEOUT);
    };
    let sip = net.server_ip.clone();
    // Populate dcmqrscp before the capture (MR_small's study is moved, CT_small's patient
    // fetched with C-GET).
    let mut load = s(&[
        "-aet",
        "LOADER",
        "-aec",
        "QRSCP",
        &sip,
        &qr_port.to_string(),
    ]);
    load.extend(files.iter().map(|f| f.display().to_string()));
    client("load", "storescu", load);

    let ports = vec![store_port, qr_port, py_port, dest_port];
    let cap = net.capture("peers", &ports, dir);
    let lo = if cap.is_none() {
        Some(Capture::start("peers", &ports, dir))
    } else {
        None
    };

    client(
        "echoscu",
        "echoscu",
        s(&[
            "-aet",
            "ECHOSCU",
            "-aec",
            "STORESCP",
            &sip,
            &store_port.to_string(),
        ]),
    );
    let mut store = s(&[
        "-aet",
        "STORESCU",
        "-aec",
        "STORESCP",
        &sip,
        &store_port.to_string(),
    ]);
    store.extend(files.iter().map(|f| f.display().to_string()));
    client("storescu", "storescu", store);
    client(
        "findscu",
        "findscu",
        s(&[
            "-S",
            "-aet",
            "FINDSCU",
            "-aec",
            "QRSCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID",
            "-k",
            "PatientID",
            &sip,
            &qr_port.to_string(),
        ]),
    );
    let got = dir.join("got");
    std::fs::create_dir(&got).unwrap();
    client(
        "getscu",
        "getscu",
        s(&[
            "-aet",
            "GETSCU",
            "-aec",
            "QRSCP",
            "-od",
            got.to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=1CT1",
            "-P",
            &sip,
            &qr_port.to_string(),
        ]),
    );
    let mv = run(
        "movescu",
        net.cmd(
            false,
            "movescu",
            &s(&[
                "-S",
                "-aet",
                "MOVESCU",
                "-aec",
                "QRSCP",
                "-aem",
                "MOVEDEST",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                "StudyInstanceUID=1.3.6.1.4.1.5962.1.2.4.20040826185059.5457",
                &sip,
                &qr_port.to_string(),
            ]),
        ),
        dir,
        TIMEOUT,
    );
    assert!(
        mv.status.success(),
        "movescu:\n{}\n{}\n{}",
        mv.text(),
        qr.output(),
        dest.output()
    );
    let mut pyargs = vec![
        "-c".to_string(),
        PY_SCU.to_string(),
        sip.clone(),
        py_port.to_string(),
    ];
    pyargs.extend(files[..2].iter().map(|f| f.display().to_string()));
    client("pynetdicom-scu", py.to_str().unwrap(), pyargs);

    let file = match (cap, lo) {
        (Some(cap), _) => cap.finish(),
        (None, Some(lo)) => {
            // Loopback carries up to 64 kB per segment: split as a 1500-byte MTU would.
            let f = lo.finish();
            let split = dir.join("peers-split.pcap");
            write_pcap(&split, &resegment(&read_frames(&f), 1448));
            split
        }
        _ => unreachable!(),
    };
    for p in [&mut pyscp, &mut qr, &mut dest, &mut storescp] {
        p.stop("TERM", Duration::from_secs(5));
    }
    (file, ports)
}

#[test]
fn analyze_agrees_with_tshark_on_real_peers_including_loss_reorder_duplication() {
    if !require(
        "analyze real peers",
        &[
            "echoscu", "storescu", "storescp", "findscu", "getscu", "movescu", "dcmqrscp",
            "dumpcap", "tshark", "ss",
        ],
    ) {
        return;
    }
    if require_python("analyze real peers").is_none() {
        return;
    }
    let dir = temp_dir("analyze-peers");
    let d = dir.path();
    let net = Net::new();
    let (capture, ports) = capture_peers(&net, d);
    drop(net);

    let frames = read_frames(&capture);
    let theirs = tshark_view(&capture, &ports, d);
    let ours = dicomtap_view(&capture, &ports, d);
    // Sanity: the scenarios are all there.
    let commands: BTreeSet<&str> = theirs.dimse.keys().map(|k| k.1.as_str()).collect();
    for c in [
        "C-ECHO-RQ",
        "C-STORE-RQ",
        "C-STORE-RSP",
        "C-FIND-RQ",
        "C-FIND-RSP",
        "C-GET-RQ",
        "C-GET-RSP",
        "C-MOVE-RQ",
        "C-MOVE-RSP",
    ] {
        assert!(
            commands.contains(c),
            "{c} missing from tshark's view: {commands:?}"
        );
    }
    assert_eq!(theirs.associations.len(), 7, "{:?}", theirs.associations);
    assert!(
        frames.iter().all(|f| f.payload <= 1448),
        "segments larger than the MTU in the capture"
    );
    let big_pdus = frames.iter().filter(|f| f.payload == 1448).count();
    assert!(
        big_pdus > 50,
        "only {big_pdus} full-size segments: PDUs do not span segments"
    );
    assert_agree(&ours, &theirs, "as captured");
    assert_eq!(ours.gaps, 0);

    // Data segments of every connection, client -> server and back.
    let data: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.payload > 0)
        .map(|(i, _)| i)
        .collect();

    // Reordering: swap every 7th data segment with the next data segment of the same
    // direction and connection (timestamps stay in order).
    let mut pairs = Vec::new();
    let mut used = BTreeSet::new();
    for (k, &i) in data.iter().enumerate() {
        if k % 7 != 3 || used.contains(&i) {
            continue;
        }
        let f = &frames[i];
        if let Some(&j) = data[k + 1..]
            .iter()
            .find(|&&j| frames[j].src_port == f.src_port && frames[j].dst_port == f.dst_port)
            && !used.contains(&j)
        {
            pairs.push((i, j));
            used.insert(i);
            used.insert(j);
        }
    }
    assert!(pairs.len() > 10);
    let reordered = d.join("reordered.pcap");
    write_pcap(&reordered, &swapped(&frames, &pairs));
    let v = dicomtap_view(&reordered, &ports, d);
    assert_agree(&v, &theirs, "reordered");
    assert_eq!(v.gaps, 0, "reordering is not loss");

    // Duplication: every 5th data segment sent twice.
    let dups: Vec<usize> = data.iter().copied().step_by(5).collect();
    let duplicated_file = d.join("duplicated.pcap");
    write_pcap(&duplicated_file, &duplicated(&frames, &dups));
    let v = dicomtap_view(&duplicated_file, &ports, d);
    assert_agree(&v, &theirs, "duplicated");
    assert_eq!(v.gaps, 0, "duplication is not loss");

    // Loss: drop every 40th data segment. dicomtap must report the gaps, resynchronise,
    // and what it still reports must be true (in the complete capture's tshark view) and
    // cover at least what tshark still decodes from the lossy file.
    let drops: Vec<usize> = data.iter().copied().skip(20).step_by(40).collect();
    let lossy = d.join("lossy.pcap");
    write_pcap(&lossy, &without(&frames, &drops));
    let v = dicomtap_view(&lossy, &ports, d);
    let t = tshark_view(&lossy, &ports, d);
    assert!(
        v.gaps >= 1,
        "no gap reported for {} dropped segments",
        drops.len()
    );
    sub_multiset(
        &v.dimse,
        &theirs.dimse,
        "lossy: dicomtap vs the complete capture",
    );
    sub_multiset(&v.pdus, &theirs.pdus, "lossy: PDUs vs the complete capture");
    sub_multiset(&t.dimse, &v.dimse, "lossy: tshark's DIMSE vs dicomtap's");
    let lost: u64 = theirs.dimse.values().sum::<u64>() - v.dimse.values().sum::<u64>();
    let total: u64 = theirs.dimse.values().sum();
    assert!(
        lost * 4 < total,
        "lost {lost} of {total} DIMSE messages for {} dropped segments",
        drops.len()
    );
    for (port, aes) in &v.associations {
        assert_eq!(theirs.associations.get(port), Some(aes));
    }
    eprintln!(
        "lossy: {} segments dropped, {} gaps reported; DIMSE messages: dicomtap {}, tshark {}, complete {}",
        drops.len(),
        v.gaps,
        v.dimse.values().sum::<u64>(),
        t.dimse.values().sum::<u64>(),
        total
    );
}

// ---------------------------------------------------------------------------------------
// Public captures

#[test]
fn public_captures_analyze_as_documented() {
    if !require("public captures", &["tshark"]) {
        return;
    }
    let dir = temp_dir("analyze-public");
    let pcap = support::public_captures_dir().join("ndpi-dicom.pcap");
    assert!(
        pcap.is_file(),
        "{} missing (set DICOMTAP_SHARED)",
        pcap.display()
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("analyze").arg(&pcap).arg("--json");
    let r = run_ok("analyze-ndpi", cmd, dir.path(), TIMEOUT);
    let sessions: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|j| j["type"] == "session")
        .map(|j| j["session"].clone())
        .collect();
    assert_eq!(sessions.len(), 4, "{}", r.stdout);
    // The README's table says the fourth flow is bogus_local's 123-context request; the
    // bytes (and tshark) say that it is testclient's, and that bogus_local's is the
    // 4-context one.
    let expected = [
        ("testclient", "testserver", 4),
        ("testclient", "testserver", 123),
        ("testclient", "testserver", 123),
        ("bogus_local", "bogus_remote", 4),
    ];
    for (s, (calling, called, contexts)) in sessions.iter().zip(expected) {
        assert_eq!(s["outcome"]["kind"], "no_answer", "{s}");
        assert_eq!(s["requestor"]["ae_title"], calling);
        assert_eq!(s["acceptor"]["ae_title"], called);
        assert_eq!(s["contexts"].as_array().unwrap().len(), contexts);
        assert_eq!(
            s["requestor"]["implementation_class_uid"],
            "1.2.826.0.1.3680043.9.7133.1.1"
        );
        assert_eq!(
            s["server"].as_str().unwrap().rsplit(':').next(),
            Some("104")
        );
    }
    // The text view says so too.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("analyze").arg(&pcap);
    let text = run_ok("analyze-ndpi-text", cmd, dir.path(), TIMEOUT).stdout;
    assert_eq!(text.matches("no answer seen").count(), 4, "{text}");
    assert_eq!(text.matches("to 123 proposed ctx").count(), 2, "{text}");
    assert_eq!(text.matches("to 4 proposed ctx").count(), 2, "{text}");
    // And tshark agrees on the AE titles of the four requests.
    let theirs = tshark_view(&pcap, &[104], dir.path());
    let ours: Vec<(String, String)> = sessions
        .iter()
        .map(|s| {
            (
                s["requestor"]["ae_title"].as_str().unwrap().to_string(),
                s["acceptor"]["ae_title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let tshark_aes: Vec<(String, String)> = theirs.associations.values().cloned().collect();
    let mut a = ours.clone();
    a.sort();
    let mut b = tshark_aes;
    b.sort();
    assert_eq!(a, b);
    assert_eq!(theirs.pdus.values().sum::<u64>(), 4);

    // The 16503-byte request split over two segments, alone.
    let two = support::public_captures_dir().join("tapirx-dicom_arq_2_get_testclient.pcap");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("analyze").arg(&two).arg("--json");
    let out = run_ok("analyze-two", cmd, dir.path(), TIMEOUT).stdout;
    let s: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(s["session"]["contexts"].as_array().unwrap().len(), 123);
    // 16332 + 177 bytes of TCP payload: the whole PDU (6-byte header, 16503-byte body).
    assert_eq!(s["session"]["requestor"]["bytes"], 16509);
}
