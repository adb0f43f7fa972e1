//! `dicomtap proxy` (the built binary) between real DICOM peers: DCMTK echoscu/storescu
//! to storescp, tshark on the recording. Skips (with a message) when the peers are not
//! installed; scripts/install-test-peers.sh installs them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::peers::storescp;
use support::{Proc, free_port, http_get, peers_available, printed_addr, wait_until};

type R = Result<(), Box<dyn std::error::Error>>;

struct Proxy {
    proc: Proc,
    port: u16,
    metrics: Option<u16>,
    files: Vec<PathBuf>,
}

/// Starts `dicomtap proxy --listen 127.0.0.1:0 ARGS` and reads its address lines: its
/// listener, its metrics endpoint unless `--metrics off`, its recording files with
/// `--record`.
fn proxy(args: &[&str], log_dir: &Path) -> Result<Proxy, Box<dyn std::error::Error>> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.arg("proxy")
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    let mut proc = Proc::spawn("proxy", cmd, log_dir);
    let option = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .map(|i| args.get(i + 1))
    };
    let want_metrics = option("--metrics").is_some_and(|v| v != Some(&"off"));
    let want_files = if option("--record").is_some() { 2 } else { 0 };
    let addr_port = |s: &str| printed_addr(s).map(|a| a.port());
    let read = |text: &str| {
        let (mut port, mut metrics, mut files) = (None, None, Vec::new());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("dicomtap proxy: listening on ") {
                port = addr_port(rest);
            } else if let Some(rest) = line.strip_prefix("dicomtap proxy: metrics on ") {
                metrics = addr_port(rest);
            } else if let Some(rest) = line.strip_prefix("dicomtap proxy: recording to ") {
                files.push(PathBuf::from(rest));
            }
        }
        (port, metrics, files)
    };
    wait_until(Duration::from_secs(10), || {
        let (port, metrics, files) = read(&proc.stdout());
        (port.is_some() && metrics.is_some() == want_metrics && files.len() >= want_files)
            || proc.try_wait().is_some()
    });
    let (port, metrics, files) = read(&proc.stdout());
    let Some(port) = port else {
        return Err(format!("the proxy printed no listening address\n{}", proc.output()).into());
    };
    Ok(Proxy {
        proc,
        port,
        metrics,
        files,
    })
}

fn sample(name: &str) -> PathBuf {
    // pydicom's samples in the project venv ($DICOMTAP_VENV or .venv).
    support::pydicom_data()
        .map(|d| d.test_files)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".venv/lib/python3.11/site-packages/pydicom/data/test_files")
        })
        .join(name)
}

fn samples() -> Vec<PathBuf> {
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "rtplan.dcm",
        "SC_rgb.dcm",
        "emri_small.dcm",
    ]
    .iter()
    .map(|n| sample(n))
    .filter(|p| p.exists())
    .collect()
}

fn storescu(port: u16, files: &[PathBuf]) -> std::io::Result<std::process::Output> {
    Command::new("storescu")
        .args(["-aet", "STORESCU", "-aec", "ANY-SCP", "+sd"])
        .arg("-R") // propose each file's own transfer syntax (JPEG 2000 included)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(files)
        .output()
}

fn dir_contents(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path())?,
        );
    }
    Ok(out)
}

/// Stops the proxy with SIGTERM, within 5 s.
fn sigterm(p: &mut Proc) -> std::io::Result<()> {
    p.signal("TERM");
    match p.wait_timeout(Duration::from_secs(5)) {
        Some(_) => Ok(()),
        None => Err(std::io::Error::other("proxy did not exit after SIGTERM")),
    }
}

#[test]
fn storescu_through_proxy_delivers_identical_files_and_a_decodable_recording() -> R {
    if !peers_available(&["storescp", "storescu", "echoscu", "tshark"]) {
        return Ok(());
    }
    let files = samples();
    assert!(!files.is_empty(), "pydicom sample files missing");
    let tmp = tempfile::tempdir()?;
    let (direct_dir, proxied_dir, rec_dir) = (
        tmp.path().join("direct"),
        tmp.path().join("proxied"),
        tmp.path().join("rec"),
    );

    // Without the proxy.
    let (_scp1, port1) = storescp("storescp-direct", &direct_dir, tmp.path(), &[]);
    let out = storescu(port1, &files)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Through the proxy.
    let (_scp2, port2) = storescp("storescp-proxied", &proxied_dir, tmp.path(), &[]);
    let upstream = format!("127.0.0.1:{port2}");
    let mut p = proxy(
        &[
            "--upstream",
            &upstream,
            "--record",
            rec_dir.to_str().ok_or("path")?,
            "--direct-io",
            "--metrics",
            "127.0.0.1:0",
        ],
        tmp.path(),
    )?;
    let echo = Command::new("echoscu")
        .args(["127.0.0.1", &p.port.to_string()])
        .output()?;
    assert!(
        echo.status.success(),
        "{}",
        String::from_utf8_lossy(&echo.stderr)
    );
    let out = storescu(p.port, &files)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let direct = dir_contents(&direct_dir)?;
    let proxied = dir_contents(&proxied_dir)?;
    assert_eq!(direct.len(), files.len());
    assert_eq!(
        direct.keys().collect::<Vec<_>>(),
        proxied.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &direct {
        assert!(
            proxied.get(name) == Some(bytes),
            "{name} differs through the proxy"
        );
    }

    // Metrics parse back and count what happened.
    let metrics = http_get(p.metrics.ok_or("no metrics port")?, "/metrics", None);
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("dicomtap_associations_total{called_ae=\"ANY-SCP\",calling_ae=\"STORESCU\",result=\"accepted\"} 1"),
        "{metrics}"
    );
    let health = http_get(p.metrics.ok_or("no metrics port")?, "/healthz", None);
    assert!(health.ends_with("ok\n"), "{health}");

    // The capture's bytes are counted as written (directly or through the page cache)
    // once a flush tick has passed, and never more than the file holds.
    let capture = p
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pcapng"))
        .ok_or("no pcapng")?
        .clone();
    let written = || {
        let text = http_get(p.metrics.unwrap_or(0), "/metrics", None);
        ["direct", "page_cache"].map(|io| {
            let key = format!("dicomtap_recorder_written_bytes_total{{io=\"{io}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(key.as_str()))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || {
            let [d, c] = written();
            d + c > 40_000
        }),
        "written bytes never counted: {:?}",
        written()
    );
    let [d, c] = written();
    let on_disk = std::fs::metadata(&capture)?.len();
    assert!(d + c <= on_disk, "{d} + {c} counted, {on_disk} on disk");
    if direct_io_works_in(&rec_dir) {
        assert!(d > 0, "nothing written directly: {d} + {c}");
    }

    sigterm(&mut p.proc)?;
    let pcap = p
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pcapng"))
        .ok_or("no pcapng")?;
    let log = p
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .ok_or("no jsonl")?;

    // The event log's counts.
    let mut log_counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(log)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let ev = v["event"].as_str().unwrap_or("").to_string();
        if ev == "command" {
            let c = v["command"].as_str().unwrap_or("").to_string();
            *log_counts.entry(c).or_default() += 1;
        }
        *log_counts.entry(ev).or_default() += 1;
    }
    assert_eq!(log_counts.get("associate_rq"), Some(&2), "{log_counts:?}");
    assert_eq!(
        log_counts.get("C-STORE-RQ"),
        Some(&files.len()),
        "{log_counts:?}"
    );

    // tshark's reading of the capture.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            &format!("tcp.port=={port2},dicom"),
            "-Y",
            "dicom",
            "-T",
            "fields",
        ])
        .args(["-e", "dicom.pdu.type"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rq = text.lines().filter(|l| l.starts_with("0x01")).count();
    assert_eq!(Some(&rq), log_counts.get("associate_rq"), "{text}");
    let summary = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-d", &format!("tcp.port=={port2},dicom"), "-Y", "dicom"])
        .output()?;
    let summary = String::from_utf8_lossy(&summary.stdout);
    let count = |needle: &str| summary.matches(needle).count();
    for cmd in ["C-ECHO-RQ", "C-ECHO-RSP", "C-STORE-RQ", "C-STORE-RSP"] {
        assert_eq!(
            Some(&count(cmd)),
            log_counts.get(cmd),
            "tshark and the event log disagree on {cmd}:\n{summary}"
        );
    }
    assert_eq!(count("A-RELEASE request"), 2, "{summary}");
    Ok(())
}

#[test]
fn echoscu_sees_an_association_reject_when_nothing_listens_upstream() -> R {
    if !peers_available(&["echoscu"]) {
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let dead = free_port();
    let upstream = format!("127.0.0.1:{dead}");
    let p = proxy(&["--upstream", &upstream, "--metrics", "off"], tmp.path())?;
    let out = Command::new("echoscu")
        .args(["-v", "127.0.0.1", &p.port.to_string()])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(text.contains("Association Rejected"), "{text}");
    assert!(text.contains("Transient"), "{text}");
    Ok(())
}

#[test]
fn a_4gb_pdu_does_not_stop_a_concurrent_echo() -> R {
    if !peers_available(&["storescp", "echoscu"]) {
        return Ok(());
    }
    use std::io::Write;
    let tmp = tempfile::tempdir()?;
    let (_scp, port) = storescp("storescp", &tmp.path().join("in"), tmp.path(), &[]);
    let upstream = format!("127.0.0.1:{port}");
    let p = proxy(&["--upstream", &upstream, "--metrics", "off"], tmp.path())?;
    let mut raw = TcpStream::connect(("127.0.0.1", p.port))?;
    raw.write_all(&[0x04, 0, 0xff, 0xff, 0xff, 0xff])?;
    raw.write_all(&vec![0u8; 1 << 20])?;
    let out = Command::new("echoscu")
        .args(["127.0.0.1", &p.port.to_string()])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Memory stays bounded whatever the header says.
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.proc.pid()))?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(rss_kb < 200_000, "proxy RSS {rss_kb} kB");
    Ok(())
}

/// Recording options without `--record` would be silently ignored: they are refused.
#[test]
fn recording_flags_without_a_recording_directory_are_refused() {
    for flag in [
        &["--rotate-every", "1h"][..],
        &["--keep-files", "3"],
        &["--backpressure"],
        &["--direct-io"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dicomtap"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
            ])
            .args(["--metrics", "off"])
            .args(flag)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag:?} was accepted");
        assert!(stderr.contains("need --record DIR"), "{flag:?}: {stderr}");
    }
}

/// Whether files in `dir` can be opened with O_DIRECT (not on tmpfs of older kernels).
fn direct_io_works_in(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    #[cfg(target_arch = "x86_64")]
    const O_DIRECT: i32 = 0o40000;
    #[cfg(not(target_arch = "x86_64"))]
    return false;
    #[cfg(target_arch = "x86_64")]
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(O_DIRECT)
        .open(dir.join(".direct-probe"))
        .is_ok()
}
