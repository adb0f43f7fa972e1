//! Soak test of `dicomtap proxy` (issue 8, "Reliability"): many concurrent associations of
//! real DCMTK peers through the built binary while faults are injected on a schedule, then
//! checks of correctness and of resource use.
//!
//! - upstream: DCMTK `storescp +xa +uf -od DIR` (restarted on the same port after each kill);
//! - proxy: `dicomtap proxy --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --record TMPFS`, the
//!   recording directory on a 4 MiB tmpfs mounted by the test (root only; without root a
//!   plain directory is used and the full-disk part is skipped with a message);
//! - load: 8 worker threads, each looping `storescu -v` (1 to 3 pydicom samples) or
//!   `echoscu -v`, every run bounded by a timeout that must never fire;
//! - faults, in a cycle: SIGKILL of storescp and restart (with an `echoscu` probe while it
//!   is down), SIGSTOP/SIGCONT of storescp, half an A-ASSOCIATE-RQ then FIN, half an
//!   A-ASSOCIATE-RQ then RST (python sets SO_LINGER 0, std cannot), half a P-DATA then RST
//!   (std only: the socket is closed with an unread C-ECHO-RSP in its receive queue, which
//!   makes Linux send RST), a PDU of unknown type, a P-DATA declaring 4 GB, garbage bytes;
//!   the recording disk fills up by itself.
//!
//! Length: `DICOMTAP_SOAK_SECS` seconds of load (default 75; the whole test then takes
//! about two minutes on a 2-core machine).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{LOCALHOST, Proc, Tmpfs, command, free_port, temp_dir, wait_for_port, wait_until};

const DEFAULT_SECS: u64 = 75;
const WORKERS: usize = 8;
/// A client run taking longer than this counts as a hang (it must never happen).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
const TMPFS_SIZE: u64 = 4 << 20;
const SAMPLES: [&str; 7] = [
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "MR_small_bigendian.dcm",
    "waveform_ecg.dcm",
    "image_dfl.dcm",
    "examples_rgb_color.dcm",
];

// ---------------------------------------------------------------------------------------
// Small helpers

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// The data set of a Part-10 file (after the preamble and the file meta group, whose
/// Source Application Entity Title differs from run to run).
fn data_set(file: &[u8]) -> &[u8] {
    if file.len() < 144 || &file[128..132] != b"DICM" || &file[132..138] != b"\x02\0\0\0UL" {
        return file;
    }
    let meta = u32::from_le_bytes([file[140], file[141], file[142], file[143]]) as usize;
    file.get(144 + meta..).unwrap_or(file)
}

/// Metric samples `name{labels} value` (or `name value`) as (labels, value).
fn metric(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                let (labels, v) = r.split_once('}')?;
                (labels.to_string(), v)
            } else if rest.starts_with(' ') {
                (String::new(), rest)
            } else {
                return None;
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

fn metric_sum(text: &str, name: &str, label_filter: &str) -> f64 {
    metric(text, name)
        .iter()
        .filter(|(l, _)| l.contains(label_filter))
        .map(|(_, v)| v)
        .sum()
}

// ---------------------------------------------------------------------------------------
// PDUs for the raw clients

fn pdu(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, 0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn item(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, 0];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ae(title: &str) -> [u8; 16] {
    let mut a = [b' '; 16];
    a[..title.len()].copy_from_slice(title.as_bytes());
    a
}

/// An A-ASSOCIATE-RQ proposing Verification in implicit VR little endian.
fn associate_rq(calling: &str) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(&ae("ANY-SCP"));
    body.extend_from_slice(&ae(calling));
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    let mut pc = vec![1, 0, 0, 0];
    pc.extend(item(0x30, b"1.2.840.10008.1.1"));
    pc.extend(item(0x40, b"1.2.840.10008.1.2"));
    body.extend(item(0x20, &pc));
    let mut ui = item(0x51, &16384u32.to_be_bytes());
    ui.extend(item(0x52, b"1.2.3.4.5.6"));
    body.extend(item(0x50, &ui));
    pdu(0x01, &body)
}

/// A P-DATA-TF with a C-ECHO-RQ command set on presentation context 1.
fn echo_pdata(msg_id: u16) -> Vec<u8> {
    fn elem(out: &mut Vec<u8>, e: u16, value: &[u8]) {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let mut rest = Vec::new();
    elem(&mut rest, 0x0002, b"1.2.840.10008.1.1\0");
    elem(&mut rest, 0x0100, &0x0030u16.to_le_bytes());
    elem(&mut rest, 0x0110, &msg_id.to_le_bytes());
    elem(&mut rest, 0x0800, &0x0101u16.to_le_bytes());
    let mut cmd = Vec::new();
    elem(&mut cmd, 0x0000, &(rest.len() as u32).to_le_bytes());
    cmd.extend(rest);
    let mut pdv = ((cmd.len() + 2) as u32).to_be_bytes().to_vec();
    pdv.extend_from_slice(&[1, 0x03]);
    pdv.extend(cmd);
    pdu(0x04, &pdv)
}

fn read_pdu(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 6];
    s.read_exact(&mut h)?;
    let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::other("PDU too long"));
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((h[0], body))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s =
        TcpStream::connect_timeout(&SocketAddr::from((LOCALHOST, port)), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// The upstream

struct Upstream {
    proc: Option<Proc>,
    port: u16,
    out: PathBuf,
    logs: PathBuf,
    starts: u32,
}

impl Upstream {
    fn start(port: u16, out: &Path, logs: &Path) -> Upstream {
        let mut u = Upstream {
            proc: None,
            port,
            out: out.to_path_buf(),
            logs: logs.to_path_buf(),
            starts: 0,
        };
        u.restart();
        u
    }

    fn restart(&mut self) {
        self.starts += 1;
        // The port may linger briefly after a kill: a few attempts.
        for attempt in 0..10 {
            let cmd = command(
                "storescp",
                &[
                    "+xa".to_string(),
                    "+uf".to_string(),
                    "-od".to_string(),
                    self.out.display().to_string(),
                    self.port.to_string(),
                ],
            );
            let mut p = Proc::spawn(
                &format!("storescp-{}-{attempt}", self.starts),
                cmd,
                &self.logs,
            );
            if wait_for_port(self.port, Duration::from_secs(20), Some(&mut p)) {
                self.proc = Some(p);
                return;
            }
            eprintln!("soak: storescp did not come up:\n{}", p.output());
            drop(p);
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("storescp could not be restarted on port {}", self.port);
    }

    fn signal(&mut self, sig: &str) {
        if let Some(p) = self.proc.as_mut() {
            p.signal(sig);
        }
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal("CONT");
            p.stop("KILL", Duration::from_secs(10));
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.signal("CONT");
    }
}

// ---------------------------------------------------------------------------------------
// Client runs

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// "Association Rejected" (the proxy's RJ while the upstream is down).
    Rejected,
    /// "Peer aborted Association" / "Association Aborted" (A-ABORT or a close).
    Aborted,
    /// The connection was closed under the client in the middle of a PDU ("TCP I/O
    /// Error", broken pipe, reset, "DUL network closed" after a FIN of the killed upstream
    /// passed on): the A-P-ABORT of PS3.8 9.1.7, since an A-ABORT
    /// cannot be inserted in the middle of a PDU (docs/proxy.md).
    Closed,
    /// The client's own network/ACSE/DIMSE timeout fired.
    ClientTimeout,
    /// Could not even connect to the proxy.
    ConnectFailed,
    /// The test's per-run timeout fired (a hang).
    Hung,
    Other,
}

struct Run {
    started: Instant,
    tool: &'static str,
    outcome: Outcome,
    /// The association was accepted (the client saw an A-ASSOCIATE-AC).
    accepted: bool,
    /// Sample index of every store that got a Success response.
    stored: Vec<usize>,
    text: String,
}

fn classify(exit_ok: bool, text: &str) -> Outcome {
    if exit_ok && !text.contains("E: ") && !text.contains("F: ") {
        return Outcome::Ok;
    }
    if text.contains("Association Rejected") {
        Outcome::Rejected
    } else if text.contains("Peer aborted Association") || text.contains("Association Aborted") {
        Outcome::Aborted
    } else if text.contains("TCP I/O Error") || text.contains("DUL network closed") {
        Outcome::Closed
    } else if text.contains("TCP Initialization Error") {
        Outcome::ConnectFailed
    } else if text.to_ascii_lowercase().contains("timeout") {
        Outcome::ClientTimeout
    } else {
        Outcome::Other
    }
}

fn client_run(
    tool: &'static str,
    args: Vec<String>,
    files: &[(usize, PathBuf)],
    name: &str,
    logs: &Path,
) -> Run {
    let started = Instant::now();
    let mut all: Vec<String> = args;
    all.extend(files.iter().map(|(_, p)| p.display().to_string()));
    let mut p = Proc::spawn(name, command(tool, &all), logs);
    let status = p.wait_timeout(RUN_TIMEOUT);
    if status.is_none() {
        p.stop("KILL", Duration::from_secs(5));
    }
    let text = format!("{}{}", p.stdout(), p.stderr());
    let outcome = match status {
        None => Outcome::Hung,
        Some(s) => classify(s.success(), &text),
    };
    // Attribute each Success response to the file being sent at the time.
    let mut stored = Vec::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("I: Sending file: ") {
            current = files
                .iter()
                .find(|(_, p)| p.display().to_string() == path.trim())
                .map(|(i, _)| *i);
        } else if line.contains("Received Store Response (Success)")
            && let Some(i) = current.take()
        {
            stored.push(i);
        }
    }
    let _ = std::fs::remove_file(logs.join(format!("{name}.stdout")));
    let _ = std::fs::remove_file(logs.join(format!("{name}.stderr")));
    Run {
        started,
        tool,
        outcome,
        accepted: text.contains("Association Accepted"),
        stored,
        text,
    }
}

fn storescu_args(port: u16, calling: &str) -> Vec<String> {
    ["-v", "-aet", calling, "-aec", "ANY-SCP", "-R", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect()
}

fn echoscu_args(port: u16, calling: &str) -> Vec<String> {
    ["-v", "-aet", calling, "-aec", "ANY-SCP", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect()
}

// ---------------------------------------------------------------------------------------
// Raw fault clients

/// Half an A-ASSOCIATE-RQ, then FIN (shutdown of the write side) and close.
fn half_rq_fin(port: u16) -> std::io::Result<()> {
    let mut s = connect(port)?;
    let rq = associate_rq("HALFFIN");
    s.write_all(&rq[..rq.len() / 2])?;
    std::thread::sleep(Duration::from_millis(300));
    s.shutdown(Shutdown::Write)?;
    // Whatever comes back (an abort, a close) within a bound.
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    Ok(())
}

/// Half an A-ASSOCIATE-RQ, then RST: std cannot set SO_LINGER, so a python one-liner does.
fn half_rq_rst(python: &Path, port: u16, logs: &Path, n: u64) -> bool {
    let rq = associate_rq("HALFRST");
    let script = "import socket,struct,sys,time\n\
                  s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=10)\n\
                  s.sendall(bytes.fromhex(sys.argv[2]))\n\
                  time.sleep(0.3)\n\
                  s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n\
                  s.close()\n";
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        script,
        &port.to_string(),
        &support::hex_encode(&rq[..rq.len() / 2]),
    ]);
    let name = format!("rst-{n}");
    let mut p = Proc::spawn(&name, cmd, logs);
    let ok = p
        .wait_timeout(Duration::from_secs(30))
        .is_some_and(|s| s.success());
    if !ok {
        eprintln!("soak: the python RST client failed:\n{}", p.output());
    }
    ok
}

/// A whole association with one C-ECHO, then half of a second P-DATA, then a close with
/// the (peeked, unread) echo response still in the receive queue: Linux answers that
/// close with RST. Returns whether the RST path was taken (the response had arrived).
fn half_pdata_rst(port: u16) -> std::io::Result<bool> {
    let mut s = connect(port)?;
    s.write_all(&associate_rq("HALFPDATA"))?;
    let (kind, _) = read_pdu(&mut s)?;
    if kind != 0x02 {
        return Ok(false);
    }
    s.write_all(&echo_pdata(1))?;
    let mut b = [0u8; 1];
    let arrived = s.peek(&mut b).is_ok_and(|n| n == 1);
    let second = echo_pdata(2);
    s.write_all(&second[..second.len() / 2])?;
    drop(s);
    Ok(arrived)
}

/// Raw bytes, then FIN, then read until the proxy closes (bounded).
fn raw_bytes(port: u16, bytes: &[u8]) -> std::io::Result<()> {
    let mut s = connect(port)?;
    // The peer may close early on garbage: a write error is part of the game.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    Ok(())
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[derive(Default, Debug)]
struct Faults {
    kills: u64,
    down_probes_rejected: u64,
    stalls: u64,
    half_rq_fin: u64,
    half_rq_rst: u64,
    half_pdata_rst: u64,
    unknown_pdu: u64,
    pdu_4gb: u64,
    garbage: u64,
    raw_errors: u64,
}

// ---------------------------------------------------------------------------------------

fn soak_secs() -> u64 {
    std::env::var("DICOMTAP_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SECS)
        .max(10)
}

fn start_proxy(upstream: u16, rec: &Path, logs: &Path) -> (Proc, u16, SocketAddr) {
    let cmd = command(
        env!("CARGO_BIN_EXE_dicomtap"),
        &[
            "proxy".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--upstream".into(),
            format!("127.0.0.1:{upstream}"),
            "--metrics".into(),
            "127.0.0.1:0".into(),
            "--record".into(),
            rec.display().to_string(),
            "--rotate-bytes".into(),
            "1048576".into(),
            "--drain".into(),
            "10s".into(),
        ],
    );
    let mut p = Proc::spawn("proxy", cmd, logs);
    let (mut listen, mut metrics) = (None, None);
    let up = wait_until(Duration::from_secs(30), || {
        for line in p.stdout().lines() {
            if let Some(r) = line.strip_prefix("dicomtap proxy: listening on ") {
                listen = support::printed_addr(r);
            } else if let Some(r) = line.strip_prefix("dicomtap proxy: metrics on ") {
                metrics = support::printed_addr(r);
            }
        }
        (listen.is_some() && metrics.is_some()) || p.try_wait().is_some()
    });
    assert!(
        up && p.try_wait().is_none(),
        "the proxy did not start:\n{}",
        p.output()
    );
    (p, listen.unwrap().port(), metrics.unwrap())
}

#[test]
fn soak_proxy_under_faults() {
    if !support::require(
        "soak",
        &["storescp", "storescu", "echoscu", "tshark", "mount"],
    ) {
        return;
    }
    let Some((python, data)) = support::require_python("soak") else {
        return;
    };
    let secs = soak_secs();
    let tmp = temp_dir("soak");
    let logs = tmp.path().join("logs");
    let ref_out = tmp.path().join("reference");
    let up_out = tmp.path().join("upstream");
    for d in [&logs, &ref_out, &up_out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let samples: Vec<PathBuf> = SAMPLES
        .iter()
        .map(|n| data.test_files.join(n))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        samples.len() >= 3,
        "pydicom samples missing in {}",
        data.test_files.display()
    );

    // Reference: what storescp writes for each sample without the proxy.
    let mut reference: Vec<Vec<u8>> = Vec::new();
    {
        let mut scp = Upstream::start(free_port(), &ref_out, &logs);
        for (i, s) in samples.iter().enumerate() {
            let r = client_run(
                "storescu",
                storescu_args(scp.port, "REFERENCE"),
                &[(i, s.clone())],
                &format!("ref-{i}"),
                &logs,
            );
            assert_eq!(
                r.outcome,
                Outcome::Ok,
                "reference store of {}:\n{}",
                s.display(),
                r.text
            );
            let files: Vec<PathBuf> = std::fs::read_dir(&ref_out)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(files.len(), 1, "{files:?}");
            reference.push(data_set(&std::fs::read(&files[0]).unwrap()).to_vec());
            std::fs::remove_file(&files[0]).unwrap();
        }
        scp.kill();
    }

    // Declared before the proxy so that it is unmounted after the proxy is gone.
    let tmpfs = Tmpfs::mount(&tmp.path().join("rec"), TMPFS_SIZE);
    let rec = tmpfs.dir.clone();
    let upstream = Arc::new(Mutex::new(Upstream::start(free_port(), &up_out, &logs)));
    let up_port = upstream.lock().unwrap().port;
    let (mut proxy, port, metrics_addr) = start_proxy(up_port, &rec, &logs);
    let pid = proxy.pid();

    // Warm-up, then the baseline.
    for n in 0..2 {
        let r = client_run(
            "echoscu",
            echoscu_args(port, "WARMUP"),
            &[],
            &format!("warm-e{n}"),
            &logs,
        );
        assert_eq!(r.outcome, Outcome::Ok, "{}", r.text);
        let files: Vec<(usize, PathBuf)> = samples.iter().cloned().enumerate().collect();
        let r = client_run(
            "storescu",
            storescu_args(port, "WARMUP"),
            &files,
            &format!("warm-s{n}"),
            &logs,
        );
        assert_eq!(r.outcome, Outcome::Ok, "{}", r.text);
        assert_eq!(r.stored.len(), samples.len(), "{}", r.text);
    }
    let warmup_stored: Vec<usize> = (0..2).flat_map(|_| 0..samples.len()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let base_fd = fd_count(pid);
    let base_rss = proc_status_kb(pid, "VmRSS:");
    eprintln!("soak: {secs} s of load; proxy pid {pid}, baseline {base_fd} fds, RSS {base_rss} kB");

    let deadline = Instant::now() + Duration::from_secs(secs);
    let runs: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    let faults: Mutex<Faults> = Mutex::new(Faults::default());
    let disk_full_at: Mutex<Option<Instant>> = Mutex::new(None);
    let peak_rss = AtomicU64::new(base_rss);
    let peak_fd = AtomicU64::new(base_fd as u64);
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        // Load.
        for w in 0..WORKERS {
            let (runs, samples, logs, stop) = (&runs, &samples, &logs, &stop);
            scope.spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let calling = format!("W{w}R{}", n % 1000);
                    let r = if n % 4 == 0 {
                        client_run(
                            "echoscu",
                            echoscu_args(port, &calling),
                            &[],
                            &format!("w{w}-{n}-echo"),
                            logs,
                        )
                    } else {
                        let k = 1 + (n as usize + w) % 3;
                        let files: Vec<(usize, PathBuf)> = (0..k)
                            .map(|j| {
                                let i = (n as usize * 3 + w + j) % samples.len();
                                (i, samples[i].clone())
                            })
                            .collect();
                        client_run(
                            "storescu",
                            storescu_args(port, &calling),
                            &files,
                            &format!("w{w}-{n}-store"),
                            logs,
                        )
                    };
                    runs.lock().unwrap().push(r);
                }
            });
        }
        // Resource and disk watcher.
        {
            let (disk_full_at, peak_rss, peak_fd, rec) = (&disk_full_at, &peak_rss, &peak_fd, &rec);
            let mounted = tmpfs.mounted;
            scope.spawn(move || {
                while Instant::now() < deadline {
                    peak_rss.fetch_max(proc_status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                    peak_fd.fetch_max(fd_count(pid) as u64, Ordering::Relaxed);
                    if mounted && dir_bytes(rec) + (256 << 10) >= TMPFS_SIZE {
                        disk_full_at
                            .lock()
                            .unwrap()
                            .get_or_insert_with(Instant::now);
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        // Faults.
        {
            let (faults, upstream, logs, python) = (&faults, &upstream, &logs, &python);
            scope.spawn(move || {
                let mut step = 0u64;
                // Let the load settle first.
                std::thread::sleep(Duration::from_secs(3));
                while Instant::now() + Duration::from_secs(8) < deadline {
                    step += 1;
                    let port_ok = |r: std::io::Result<()>| {
                        if r.is_err() {
                            faults.lock().unwrap().raw_errors += 1;
                        }
                    };
                    match step % 8 {
                        0 => {
                            // Kill the upstream; a client arriving meanwhile must get RJ.
                            upstream.lock().unwrap().kill();
                            let r = client_run(
                                "echoscu",
                                echoscu_args(port, "DOWNPROBE"),
                                &[],
                                &format!("probe-{step}"),
                                logs,
                            );
                            {
                                let mut f = faults.lock().unwrap();
                                f.kills += 1;
                                if r.outcome == Outcome::Rejected && r.text.contains("Transient") {
                                    f.down_probes_rejected += 1;
                                } else {
                                    eprintln!(
                                        "soak: probe while the upstream was down:\n{}",
                                        r.text
                                    );
                                }
                            }
                            std::thread::sleep(Duration::from_secs(1));
                            upstream.lock().unwrap().restart();
                        }
                        1 => {
                            port_ok(half_rq_fin(port));
                            faults.lock().unwrap().half_rq_fin += 1;
                        }
                        2 => {
                            if half_rq_rst(python, port, logs, step) {
                                faults.lock().unwrap().half_rq_rst += 1;
                            } else {
                                faults.lock().unwrap().raw_errors += 1;
                            }
                        }
                        3 => match half_pdata_rst(port) {
                            Ok(true) => faults.lock().unwrap().half_pdata_rst += 1,
                            _ => faults.lock().unwrap().raw_errors += 1,
                        },
                        4 => {
                            upstream.lock().unwrap().signal("STOP");
                            std::thread::sleep(Duration::from_secs(4));
                            upstream.lock().unwrap().signal("CONT");
                            faults.lock().unwrap().stalls += 1;
                        }
                        5 => {
                            let mut b = pdu(0x09, &pseudo_random(64, step));
                            b.extend(associate_rq("AFTERJUNK"));
                            port_ok(raw_bytes(port, &b));
                            faults.lock().unwrap().unknown_pdu += 1;
                        }
                        6 => {
                            let mut b = vec![0x04, 0, 0xff, 0xff, 0xff, 0xff];
                            b.extend(vec![0u8; 1 << 20]);
                            port_ok(raw_bytes(port, &b));
                            faults.lock().unwrap().pdu_4gb += 1;
                        }
                        _ => {
                            port_ok(raw_bytes(port, &pseudo_random(4096, step)));
                            faults.lock().unwrap().garbage += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
            });
        }
    });
    let load_end = Instant::now();
    upstream.lock().unwrap().signal("CONT");

    let runs = runs.into_inner().unwrap();
    let faults = faults.into_inner().unwrap();
    let disk_full_at = disk_full_at.into_inner().unwrap();
    let mut by_outcome: BTreeMap<(&str, Outcome), usize> = BTreeMap::new();
    for r in &runs {
        *by_outcome.entry((r.tool, r.outcome)).or_default() += 1;
    }
    eprintln!(
        "soak: {} client runs in {:?}: {by_outcome:?}",
        runs.len(),
        load_end.duration_since(deadline - Duration::from_secs(secs))
    );
    eprintln!("soak: faults {faults:?}");

    // 1. Every failure was reported to the client the standard way; nothing hung.
    let bad: Vec<&Run> = runs
        .iter()
        .filter(|r| {
            !matches!(
                r.outcome,
                Outcome::Ok | Outcome::Rejected | Outcome::Aborted | Outcome::Closed
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} client runs failed in a non-standard way or hung; first:\n{:?} {}",
        bad.len(),
        bad[0].outcome,
        bad[0].text
    );
    let ok_runs = runs.iter().filter(|r| r.outcome == Outcome::Ok).count();
    assert!(
        ok_runs * 2 > runs.len(),
        "fewer than half the client runs succeeded: {by_outcome:?}"
    );
    assert!(
        faults.kills > 0 && faults.stalls > 0,
        "the fault schedule did not run: {faults:?}"
    );

    // 2. Resources return to the baseline; no association is left open.
    let scrape = || {
        let (status, body) = support::http_get_status_body(metrics_addr.port(), "/metrics", None);
        assert!(
            status.contains(" 200"),
            "/metrics did not answer: {status:?}"
        );
        body
    };
    let settled = wait_until(Duration::from_secs(60), || {
        metric_sum(&scrape(), "dicomtap_associations_active", "") == 0.0
    });
    assert!(
        settled,
        "associations still active a minute after the load:\n{}",
        scrape()
    );
    let fds_back = wait_until(Duration::from_secs(30), || fd_count(pid) <= base_fd + 4);
    let fd_now = fd_count(pid);
    let rss_now = proc_status_kb(pid, "VmRSS:");
    eprintln!(
        "soak: fds {base_fd} -> peak {} -> {fd_now}; RSS {base_rss} kB -> peak {} kB -> {rss_now} kB",
        peak_fd.load(Ordering::Relaxed),
        peak_rss.load(Ordering::Relaxed)
    );
    assert!(
        fds_back,
        "the proxy's descriptors did not return to the baseline: {base_fd} -> {fd_now}"
    );
    assert!(
        rss_now < base_rss + 32 * 1024,
        "the proxy's RSS did not return near its baseline: {base_rss} kB -> {rss_now} kB"
    );

    // 3. Metrics match what happened.
    let m = scrape();
    let assoc_total = metric_sum(&m, "dicomtap_associations_total", "");
    let assoc_accepted = metric_sum(&m, "dicomtap_associations_total", "result=\"accepted\"");
    let proxy_rejected = metric_sum(
        &m,
        "dicomtap_associations_total",
        "result=\"proxy_rejected_upstream\"",
    );
    let upstream_errors = metric_sum(&m, "dicomtap_upstream_errors_total", "");
    let proxy_aborts = metric_sum(&m, "dicomtap_aborts_total", "source=\"proxy\"");
    let findings = metric_sum(&m, "dicomtap_protocol_findings_total", "");
    let rec_dropped = metric_sum(&m, "dicomtap_recorder_dropped_total", "");
    let client_accepted = runs.iter().filter(|r| r.accepted).count() + 4;
    let client_rejected = runs
        .iter()
        .filter(|r| r.outcome == Outcome::Rejected)
        .count() as u64
        + faults.down_probes_rejected;
    eprintln!(
        "soak: metrics: associations {assoc_total} (accepted {assoc_accepted}, proxy_rejected_upstream \
         {proxy_rejected}), upstream errors {upstream_errors}, proxy aborts {proxy_aborts}, findings \
         {findings}, recorder dropped {rec_dropped}; clients: {client_accepted} accepted, {client_rejected} rejected"
    );
    assert!(
        assoc_accepted >= client_accepted as f64,
        "accepted associations undercounted:\n{m}"
    );
    assert!(
        assoc_total >= (client_accepted as u64 + client_rejected) as f64,
        "{m}"
    );
    assert!(
        proxy_rejected >= client_rejected as f64,
        "proxy rejects undercounted:\n{m}"
    );
    assert!(
        upstream_errors >= client_rejected as f64 && upstream_errors > 0.0,
        "{m}"
    );
    assert!(
        faults.down_probes_rejected > 0,
        "no probe saw the RJ while the upstream was down"
    );
    assert!(
        proxy_aborts > 0.0,
        "resets mid-stream produced no proxy abort:\n{m}"
    );
    assert!(findings > 0.0, "malformed PDUs produced no finding:\n{m}");

    // 4. Every Success arrived byte-identical (storescp's file equals the reference file).
    let mut successes = vec![0usize; samples.len()];
    for i in runs
        .iter()
        .flat_map(|r| r.stored.iter())
        .chain(warmup_stored.iter())
    {
        successes[*i] += 1;
    }
    let mut matched = vec![0usize; samples.len()];
    let mut unmatched = Vec::new();
    for e in std::fs::read_dir(&up_out).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        match reference
            .iter()
            .position(|r| r.as_slice() == data_set(&bytes))
        {
            Some(i) => matched[i] += 1,
            None => unmatched.push(path),
        }
    }
    eprintln!(
        "soak: stores with Success per sample {successes:?}, identical files {matched:?}, other files {}",
        unmatched.len()
    );
    for (i, s) in samples.iter().enumerate() {
        assert!(
            matched[i] >= successes[i],
            "{}: {} Success responses but only {} byte-identical files at storescp",
            s.display(),
            successes[i],
            matched[i]
        );
    }
    // Only a store cut by a SIGKILL of storescp while it wrote may leave another file.
    assert!(
        unmatched.len() as u64 <= faults.kills,
        "{} files at storescp match no reference (kills {}): {unmatched:?}",
        unmatched.len(),
        faults.kills
    );

    // 5. Forwarding went on after the recording disk was full.
    if let Some(t) = disk_full_at {
        let after = runs
            .iter()
            .filter(|r| r.started > t && r.outcome == Outcome::Ok)
            .count();
        eprintln!(
            "soak: recording disk full after {:?}; {after} successful runs since",
            t.duration_since(deadline - Duration::from_secs(secs))
        );
        if t + Duration::from_secs(10) < load_end {
            assert!(
                after > 0,
                "nothing succeeded once the recording disk was full"
            );
        }
    } else if tmpfs.mounted {
        eprintln!(
            "soak: the recording disk never filled up ({} bytes)",
            dir_bytes(&rec)
        );
    }

    // 6. A clean stop (exit 0 even with the disk full, docs/proxy.md "SIGTERM"), then the
    // recordings are readable. Defects are collected and asserted last, so that every
    // check runs.
    let mut defects: Vec<String> = Vec::new();
    if disk_full_at.is_some() && rec_dropped == 0.0 {
        defects.push(
            "the recording disk was full but dicomtap_recorder_dropped_total stayed 0 \
             (the lost chunks and events are not counted)"
                .into(),
        );
    }
    let status = proxy.stop("TERM", Duration::from_secs(60));
    let proxy_err = proxy.stderr();
    let recorder_errors = proxy_err.lines().filter(|l| l.contains("recorder")).count();
    eprintln!("soak: proxy exit {status:?}; {recorder_errors} recorder error lines");
    if !status.is_some_and(|s| s.success()) {
        defects.push(format!(
            "the proxy did not exit 0 on SIGTERM ({status:?}): {}",
            proxy_err.lines().last().unwrap_or("")
        ));
    }
    let mut pcaps: Vec<PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    pcaps.sort();
    assert!(!pcaps.is_empty(), "no recording in {}", rec.display());
    let mut unreadable = Vec::new();
    for (k, f) in pcaps.iter().enumerate() {
        let size = f.metadata().map_or(0, |m| m.len());
        let mut cmd = command(env!("CARGO_BIN_EXE_dicomtap"), &["analyze", "--json"]);
        cmd.arg(f);
        let a = support::run(
            &format!("analyze-{k}"),
            cmd,
            &logs,
            Duration::from_secs(180),
        );
        let mut cmd = command("tshark", &["-n", "-q", "-r"]);
        cmd.arg(f);
        let t = support::run(&format!("tshark-{k}"), cmd, &logs, Duration::from_secs(180));
        // A file cut by the full disk may end in the middle of a block.
        let cut_short = t.stderr.contains("cut short");
        let a_err = a.stderr.lines().last().unwrap_or("").to_string();
        let a_truncated = [
            "truncat",
            "cut short",
            "end of file",
            "unexpected end",
            "eof",
        ]
        .iter()
        .any(|w| a_err.to_ascii_lowercase().contains(w));
        eprintln!(
            "soak: {} ({size} bytes): analyze exit {:?} {a_err:?}, tshark exit {:?}{}",
            f.file_name().unwrap().to_string_lossy(),
            a.status.code(),
            t.status.code(),
            if cut_short { " (cut short)" } else { "" }
        );
        let analyze_ok = a.status.success() || (cut_short && a_truncated);
        if !analyze_ok || !(t.status.success() || cut_short) {
            unreadable.push(format!(
                "{}: analyze {}\ntshark {}",
                f.display(),
                a.text(),
                t.text()
            ));
        }
    }
    assert!(
        unreadable.is_empty(),
        "unreadable recordings:\n{}",
        unreadable.join("\n")
    );
    drop(upstream);
    drop(tmpfs);
    assert!(defects.is_empty(), "proxy defects:\n{}", defects.join("\n"));
}
