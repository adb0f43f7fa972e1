//! What the recording holds when the recorder cannot keep up (issues 16 and 19): real
//! DCMTK `storescu` -> `dicomtap proxy` (the built binary) -> `storescp`, with
//!
//! - a normal disk: the default recording (a bounded wait for room in the queue) drops
//!   nothing, and `dicomtap analyze` finds the whole association in it;
//! - a recorder stalled on every chunk (`DICOMTAP_TEST_RECORDER_STALL_MS`, a disk far
//!   slower than the traffic): forwarding still completes in a bounded time, the drops are
//!   counted in chunks and bytes (metrics, shutdown summary), and the capture says where
//!   and how much is missing, which `analyze` reports as gaps of that association;
//! - a full disk (an 8 MiB tmpfs mounted by the test; root only, else skipped with a
//!   message): the same, for bytes lost in failed writes.
//!
//! Skips (with a message) when the peers are not installed; scripts/install-test-peers.sh
//! installs them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "../benches/e2e/dicom.rs"]
mod dicom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::peers::storescp;
use support::{Proc, Tmpfs, http_get, peers_available, printed_addr, wait_until};

/// Longest a storescu run may take here; every run must end well within it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

struct Proxy {
    proc: Proc,
    port: u16,
    metrics: u16,
    capture: PathBuf,
}

/// `dicomtap proxy -c CONFIG` (one listener on 127.0.0.1:0 towards `upstream`, metrics on
/// 127.0.0.1:0, recording into `rec` with `recording` settings), `env` set; once it has
/// printed its listener, metrics endpoint and recording files.
fn proxy(dir: &Path, upstream: u16, rec: &Path, recording: &str, env: &[(&str, &str)]) -> Proxy {
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_listen = \"127.0.0.1:0\"\n\n[[listener]]\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"127.0.0.1:{upstream}\"\n\n[recording]\ndir = {:?}\n{recording}\n",
            rec.display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("proxy").arg("-c").arg(&config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Proc::spawn("proxy", cmd, dir);
    let read = |text: &str| {
        let (mut port, mut metrics, mut capture) = (None, None, None);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("dicomtap proxy: listening on ") {
                port = printed_addr(rest).map(|a| a.port());
            } else if let Some(rest) = line.strip_prefix("dicomtap proxy: metrics on ") {
                metrics = printed_addr(rest).map(|a| a.port());
            } else if let Some(rest) = line.strip_prefix("dicomtap proxy: recording to ")
                && rest.ends_with(".pcapng")
            {
                capture = Some(PathBuf::from(rest));
            }
        }
        (port, metrics, capture)
    };
    wait_until(Duration::from_secs(10), || {
        let (p, m, c) = read(&proc.stdout());
        (p.is_some() && m.is_some() && c.is_some()) || proc.try_wait().is_some()
    });
    let (Some(port), Some(metrics), Some(capture)) = read(&proc.stdout()) else {
        panic!("the proxy did not start\n{}", proc.output());
    };
    Proxy {
        proc,
        port,
        metrics,
        capture,
    }
}

/// `count` CT images of `rows` x `rows` 16-bit pseudo-random pixels in `dir`.
fn images(dir: &Path, count: usize, rows: u16) -> (Vec<PathBuf>, u64) {
    std::fs::create_dir_all(dir).unwrap();
    let (study, series) = (dicom::new_uid(), dicom::new_uid());
    let mut total = 0;
    let files = (0..count)
        .map(|n| {
            let p = dir.join(format!("ct{n}.dcm"));
            total += dicom::write_ct_file(&p, rows, rows, &study, &series, n).unwrap();
            p
        })
        .collect();
    (files, total)
}

/// storescu of `files` to `port`, bounded; returns how long it took.
fn storescu(port: u16, files: &[PathBuf], dir: &Path) -> Duration {
    let started = Instant::now();
    let mut cmd = Command::new("storescu");
    cmd.args(["-aet", "MODALITY", "-aec", "ARCHIVE"])
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(files);
    let mut p = Proc::spawn("storescu", cmd, dir);
    let status = p
        .wait_timeout(RUN_TIMEOUT)
        .unwrap_or_else(|| panic!("storescu did not finish in {RUN_TIMEOUT:?}"));
    assert!(status.success(), "storescu failed\n{}", p.output());
    started.elapsed()
}

/// The sum of one metric family's samples in the proxy's exposition.
fn metric(port: u16, name: &str) -> u64 {
    http_get(port, "/metrics", None)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// SIGTERM, bounded; the proxy's output.
fn stop(mut p: Proxy) -> String {
    p.proc.signal("TERM");
    assert!(
        p.proc.wait_timeout(Duration::from_secs(20)).is_some(),
        "the proxy did not stop\n{}",
        p.proc.output()
    );
    p.proc.stdout()
}

/// The `recording incomplete: N chunks, M bytes dropped` line of a shutdown summary.
fn incomplete(summary: &str) -> Option<(u64, u64)> {
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix("dicomtap proxy: recording incomplete: "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some((words.first()?.parse().ok()?, words.get(2)?.parse().ok()?))
}

/// The last KiB of each file (pseudo-random pixel data, one of a kind), sorted: storescp
/// rewrites the file meta information, not the data set.
fn tails<P: AsRef<Path>>(files: impl IntoIterator<Item = P>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(f).unwrap();
            b[b.len().saturating_sub(1024)..].to_vec()
        })
        .collect();
    out.sort();
    out
}

/// The files storescp received are the images sent.
fn assert_received(out: &Path, sent: &[PathBuf]) {
    let received: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(received.len(), sent.len(), "files received");
    assert!(
        tails(&received) == tails(sent),
        "the received images differ"
    );
}

/// What `dicomtap analyze` says of a capture: its text, its sessions (JSON) and the
/// capture statistics of its summary.
struct Analysis {
    text: String,
    sessions: Vec<Value>,
    stats: Value,
}

fn analyze(capture: &Path) -> Analysis {
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
        cmd.arg("analyze").arg(capture);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "analyze failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (mut sessions, mut stats) = (Vec::new(), Value::Null);
    for line in run(true).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str() {
            Some("session") => sessions.push(v["session"].clone()),
            Some("summary") => stats = v["captures"][0]["stats"].clone(),
            _ => {}
        }
    }
    Analysis {
        text: run(false),
        sessions,
        stats,
    }
}

/// Bytes missing from each association's capture, by association number.
fn gaps(a: &Analysis) -> BTreeMap<u64, u64> {
    a.sessions
        .iter()
        .map(|s| {
            let side = |k: &str| s[k]["gap_bytes"].as_u64().unwrap_or(0);
            (
                s["id"].as_u64().unwrap_or(0),
                side("requestor") + side("acceptor"),
            )
        })
        .collect()
}

/// A test's set-up: its directory, `count` CT images of `rows` x `rows` pixels (`total`
/// bytes) and storescp listening; `None` (the test skips) without the peers.
struct Scene {
    tmp: support::TempDir,
    files: Vec<PathBuf>,
    total: u64,
    _scp: Proc,
    scp_port: u16,
}

fn scene(name: &str, count: usize, rows: u16) -> Option<Scene> {
    if !peers_available(&["storescp", "storescu"]) {
        return None;
    }
    let tmp = support::temp_dir(name);
    let (files, total) = images(&tmp.path().join("in"), count, rows);
    let (scp, scp_port) = storescp("storescp", &tmp.path().join("out"), tmp.path(), &[]);
    Some(Scene {
        tmp,
        files,
        total,
        _scp: scp,
        scp_port,
    })
}

#[test]
fn the_default_recording_of_a_normal_disk_is_complete() {
    let Some(s) = scene("rec-complete", 4, 2048) else {
        return;
    };
    let (tmp, files, total, scp_port) = (&s.tmp, &s.files, s.total, s.scp_port);
    let p = proxy(tmp.path(), scp_port, &tmp.path().join("rec"), "", &[]);
    storescu(p.port, files, tmp.path());
    let forwarded = metric(p.metrics, "dicomtap_bytes_total");
    assert!(forwarded > total, "{forwarded} bytes forwarded of {total}");
    assert_eq!(metric(p.metrics, "dicomtap_recorder_dropped_total"), 0);
    assert_eq!(
        metric(p.metrics, "dicomtap_recorder_dropped_bytes_total"),
        0
    );
    let capture = p.capture.clone();
    let summary = stop(p);
    assert_eq!(incomplete(&summary), None, "{summary}");
    assert_received(&tmp.path().join("out"), files);
    let a = analyze(&capture);
    assert_eq!(a.sessions.len(), 1, "{}", a.text);
    assert_eq!(gaps(&a), BTreeMap::from([(1, 0)]), "{}", a.text);
    assert_eq!(a.stats["gaps"], 0, "{}", a.stats);
    assert_eq!(a.stats["recorder_lost_bytes"], 0, "{}", a.stats);
    assert_eq!(a.sessions[0]["dimse"]["C-STORE"]["success"], 4);
    assert!(!a.text.contains("incomplete"), "{}", a.text);
}

#[test]
fn a_stalled_recorder_drops_and_counts_without_holding_forwarding_up() {
    let Some(s) = scene("rec-stalled", 2, 1024) else {
        return;
    };
    let (tmp, files, total, scp_port) = (&s.tmp, &s.files, s.total, s.scp_port);
    // Every chunk takes the recorder 100 ms: recording it all would take longer than
    // RUN_TIMEOUT (the files are hundreds of chunks). A queue of 4 chunks, 20 ms of wait
    // per chunk at most.
    let stall_ms = 100;
    let p = proxy(
        tmp.path(),
        scp_port,
        &tmp.path().join("rec"),
        "queue_chunks = 4\nrecord_wait_ms = 20",
        &[("DICOMTAP_TEST_RECORDER_STALL_MS", &stall_ms.to_string())],
    );
    let took = storescu(p.port, files, tmp.path());
    let chunks = metric(p.metrics, "dicomtap_recorder_dropped_total");
    let bytes = metric(p.metrics, "dicomtap_recorder_dropped_bytes_total");
    let forwarded = metric(p.metrics, "dicomtap_bytes_total");
    assert!(
        chunks > 0 && bytes > 0,
        "{chunks} chunks, {bytes} bytes dropped"
    );
    assert!(
        bytes < forwarded && forwarded > total,
        "{bytes} bytes dropped of {forwarded} forwarded"
    );
    eprintln!(
        "stalled recorder: storescu took {took:?}; {chunks} chunks, {bytes} of {forwarded} bytes dropped"
    );
    // Recording the dropped chunks would have taken 100 ms each; once a 20 ms wait ran
    // out, the others were dropped without waiting.
    assert!(
        took < Duration::from_millis(stall_ms * chunks / 4),
        "storescu took {took:?} for {chunks} dropped chunks: forwarding waited for the recorder"
    );
    let capture = p.capture.clone();
    let summary = stop(p);
    assert_eq!(incomplete(&summary), Some((chunks, bytes)), "{summary}");
    assert_received(&tmp.path().join("out"), files);
    // The capture says what is missing, and where: every dropped byte is a gap of
    // association 1.
    let a = analyze(&capture);
    assert_eq!(gaps(&a), BTreeMap::from([(1, bytes)]), "{}", a.text);
    assert_eq!(a.stats["recorder_lost_bytes"], bytes, "{}", a.stats);
    assert!(
        a.text.contains(&format!(
            "recording incomplete: {bytes} bytes dropped by the recorder"
        )),
        "{}",
        a.text
    );
    assert!(a.text.contains("capture incomplete: "), "{}", a.text);
}

#[test]
fn a_full_disk_is_counted_in_bytes_and_the_capture_says_it_is_incomplete() {
    // 24 MiB of images through a recording disk of 8 MiB.
    let Some(s) = scene("rec-full", 3, 2048) else {
        return;
    };
    let (tmp, files, total, scp_port) = (&s.tmp, &s.files, s.total, s.scp_port);
    const DISK: u64 = 8 << 20;
    let disk = Tmpfs::mount(&tmp.path().join("rec"), DISK);
    if !disk.mounted {
        eprintln!("SKIPPED: no full disk without a tmpfs");
        return;
    }
    let p = proxy(tmp.path(), scp_port, &disk.dir, "", &[]);
    storescu(p.port, files, tmp.path());
    let forwarded = metric(p.metrics, "dicomtap_bytes_total");
    assert!(forwarded > total);
    let capture = p.capture.clone();
    let summary = stop(p);
    // Forwarding went on with the disk full.
    assert_received(&tmp.path().join("out"), files);
    let (chunks, bytes) = incomplete(&summary).unwrap_or_else(|| panic!("{summary}"));
    // What did not fit is counted: all but what the disk holds.
    assert!(
        chunks > 0 && bytes >= forwarded - DISK && bytes < forwarded,
        "{chunks} chunks, {bytes} bytes dropped of {forwarded} through a {DISK}-byte disk"
    );
    // The capture, cut by the full disk, says so for the association.
    let a = analyze(&capture);
    let g = gaps(&a);
    eprintln!(
        "full disk: {chunks} chunks, {bytes} of {forwarded} bytes dropped; analyze: {g:?} missing, {} noted lost",
        a.stats["recorder_lost_bytes"]
    );
    assert_eq!(g.keys().copied().collect::<Vec<_>>(), [1], "{}", a.text);
    // Every byte the proxy counted as dropped is noted in the capture as lost there.
    assert_eq!(g[&1], bytes, "{}", a.text);
    assert_eq!(a.stats["recorder_lost_bytes"], bytes, "{}", a.stats);
    assert!(a.text.contains("recording incomplete: "), "{}", a.text);
    assert!(a.text.contains("capture incomplete: "), "{}", a.text);
    drop(disk);
}
