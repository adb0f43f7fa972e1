//! The HTML report, checked in a real headless browser, and `dicomtap monitor` serving
//! metrics from a capture of real peers.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::spawn_monitor;
use crate::support;

use std::path::Path;
use std::time::Duration;

use support::*;

const DICOMTAP: &str = env!("CARGO_BIN_EXE_dicomtap");

/// Captures storescu sending two pydicom samples to storescp, then an echoscu from another
/// AE title, and returns (capture, storescp port).
fn capture_traffic(dir: &Path) -> (std::path::PathBuf, u16) {
    let (_, data) = require_python("report").expect("pydicom samples");
    let port = free_port();
    let out = dir.join("received");
    std::fs::create_dir_all(&out).unwrap();
    let port_s = port.to_string();
    let mut scp = Proc::spawn(
        "storescp",
        command(
            "storescp",
            &["-aet", "STORESCP", "-od", out.to_str().unwrap(), &port_s],
        ),
        dir,
    );
    assert!(
        wait_for_port(port, Duration::from_secs(15), Some(&mut scp)),
        "storescp: {}",
        scp.output()
    );
    let cap = Capture::start("report", &[port], dir);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let options = ["-aec", "STORESCP", "-aet", "MODALITY"];
    let cmd = support::peers::storescu_command(&options, port, &files);
    run_ok("storescu", cmd, dir, Duration::from_secs(60));
    run_ok(
        "echoscu",
        command(
            "echoscu",
            &[
                "-aec",
                "STORESCP",
                "-aet",
                "CHECKER",
                "127.0.0.1",
                &port.to_string(),
            ],
        ),
        dir,
        Duration::from_secs(30),
    );
    let file = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));
    (file, port)
}

#[test]
fn html_report_renders_in_chromium() {
    if !require(
        "html_report",
        &["storescu", "storescp", "echoscu", "dumpcap", "chromium"],
    ) {
        return;
    }
    let tmp = temp_dir("report");
    let dir = tmp.path();
    let (capture, _) = capture_traffic(dir);
    let html = dir.join("report.html");
    let out = run_ok(
        "analyze",
        command(
            DICOMTAP,
            &[
                "analyze",
                capture.to_str().unwrap(),
                "--html",
                html.to_str().unwrap(),
            ],
        ),
        dir,
        Duration::from_secs(60),
    );
    assert!(
        out.text().contains("MODALITY -> STORESCP"),
        "{}",
        out.text()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&html).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600, "the report holds patient data: owner-only");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the report must be self-contained"
    );

    let profile = dir.join("chromium-profile");
    let url = format!("file://{}", html.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push("--dump-dom".into());
    args.push(url.clone());
    let dom = run_ok(
        "chromium-dom",
        command("chromium", &args),
        dir,
        Duration::from_secs(90),
    )
    .stdout;
    // What the browser parsed: the summary, one device row per AE title, the timeline.
    assert!(
        dom.contains("<b>2</b> associations"),
        "summary missing from the rendered DOM:\n{dom}"
    );
    for ae in ["MODALITY", "STORESCP", "CHECKER"] {
        assert!(
            dom.contains(&format!("<td>{ae}</td>")),
            "device {ae} missing from the DOM"
        );
    }
    assert!(dom.contains("aria-label=\"association timeline\""));
    assert!(
        dom.contains("C-STORE"),
        "latency histogram of C-STORE missing"
    );

    let png = dir.join("report.png");
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--screenshot={}", png.display()));
    args.push("--window-size=1400,1000".into());
    args.push(url);
    run_ok(
        "chromium-png",
        command("chromium", &args),
        dir,
        Duration::from_secs(90),
    );
    let bytes = std::fs::read(&png).expect("chromium wrote a screenshot");
    assert!(
        bytes.len() > 10_000 && bytes.starts_with(b"\x89PNG"),
        "screenshot is {} bytes",
        bytes.len()
    );
}

#[test]
fn monitor_serves_metrics_of_a_capture() {
    if !require("monitor", &["storescu", "storescp", "echoscu", "dumpcap"]) {
        return;
    }
    let tmp = temp_dir("monitor");
    let dir = tmp.path();
    let (capture, _) = capture_traffic(dir);
    let (mut mon, mport) = spawn_monitor(dir, &capture, "--no-follow");
    assert!(
        wait_for_port(mport, Duration::from_secs(20), Some(&mut mon)),
        "monitor: {}",
        mon.output()
    );
    // The monitor goes through the capture as it reads it: the association is counted at
    // its A-ASSOCIATE-AC, its messages after. Wait for all of them.
    let expected = [
        "dicomtap_associations_total{called_ae=\"STORESCP\",calling_ae=\"MODALITY\",result=\"accepted\"} 1",
        "dicomtap_dimse_messages_total{command=\"C-STORE-RQ\",sop_class=\"CTImageStorage\",status_class=\"none\"} 1",
        "dicomtap_dimse_messages_total{command=\"C-STORE-RSP\",sop_class=\"MRImageStorage\",status_class=\"success\"} 1",
        "dicomtap_dimse_messages_total{command=\"C-ECHO-RSP\",sop_class=\"Verification\",status_class=\"success\"} 1",
    ];
    let mut body = String::new();
    let ok = wait_until(Duration::from_secs(20), || {
        body = http_get(mport, "/metrics", None);
        expected.iter().all(|line| body.contains(line))
    });
    let missing: Vec<&&str> = expected.iter().filter(|l| !body.contains(**l)).collect();
    assert!(ok, "metrics never showed {missing:?}:\n{body}");
    // No patient data in labels: the samples' patient names never appear.
    assert!(
        !body.contains("CompressedSamples") && !body.contains("^"),
        "metrics must not carry PHI"
    );
    mon.stop("INT", Duration::from_secs(10));
}

/// Runs `dicomtap monitor CAPTURE --no-follow EXTRA` until it has read the whole capture;
/// returns its /metrics.
fn monitor_metrics(dir: &Path, name: &str, capture: &Path, extra: &[&str]) -> String {
    let mport = free_port();
    let metrics = format!("127.0.0.1:{mport}");
    let mut args = vec![
        "monitor",
        capture.to_str().unwrap(),
        "--no-follow",
        "--metrics",
        &metrics,
    ];
    args.extend_from_slice(extra);
    let mut mon = Proc::spawn(name, command(DICOMTAP, &args), dir);
    assert!(
        wait_for_port(mport, Duration::from_secs(20), Some(&mut mon)),
        "monitor: {}",
        mon.output()
    );
    assert!(
        wait_until(Duration::from_secs(20), || mon
            .stderr()
            .contains("TCP connections")),
        "monitor never finished the capture: {}",
        mon.output()
    );
    let body = http_get(mport, "/metrics", None);
    mon.stop("INT", Duration::from_secs(10));
    body
}

/// The value of a metric line that starts with `series` (0 when absent).
fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn monitor_counts_tls_on_a_given_port_as_dicom() {
    let Some((_, data)) = require_peers(
        "monitor_tls",
        &["storescu", "storescp", "dumpcap", "openssl"],
    ) else {
        return;
    };
    let tmp = temp_dir("monitor-tls");
    let dir = tmp.path();
    // The test PKI's localhost certificate, used by both sides, which trust its CA.
    let pki = support::pki::Pki::new(dir);
    let (key, cert, ca) = (
        pki.path("leaf.key"),
        pki.path("server.pem"),
        pki.path("ca.pem"),
    );
    let tls = ["+tls", key.as_str(), cert.as_str(), "+cf", ca.as_str()];
    // storescp over TLS on a free (non-default) port; storescu sends CT_small.dcm.
    let (scp, port) = support::peers::storescp(
        "storescp-tls",
        &dir.join("received"),
        dir,
        &[&["-aet", "STORESCP"][..], &tls[..]].concat(),
    );
    let cap = Capture::start("monitor-tls", &[port], dir);
    let file = data.test_files.join("CT_small.dcm");
    let size = std::fs::metadata(&file).unwrap().len() as f64;
    let port_s = port.to_string();
    let mut args = vec!["-aec", "STORESCP", "-aet", "MODALITY"];
    args.extend_from_slice(&tls);
    args.extend_from_slice(&["127.0.0.1", &port_s, file.to_str().unwrap()]);
    run_ok(
        "storescu",
        command("storescu", &args),
        dir,
        Duration::from_secs(60),
    );
    let capture = cap.finish();
    drop(scp);

    let sent = "dicomtap_bytes_total{direction=\"to_upstream\"}";
    // Without --port the TLS connection on an unknown port is not DICOM: not counted.
    let body = monitor_metrics(dir, "monitor-noport", &capture, &[]);
    assert_eq!(metric(&body, sent), 0.0, "{body}");
    // With it, its (encrypted) bytes are: at least the file storescu sent.
    let body = monitor_metrics(dir, "monitor-port", &capture, &["--port", &port_s]);
    let bytes = metric(&body, sent);
    assert!(bytes > size, "{bytes} bytes counted, file {size}\n{body}");
    assert!(
        metric(&body, "dicomtap_bytes_total{direction=\"to_client\"}") > 0.0,
        "{body}"
    );
}

/// `dicomtap monitor` shows its own blind spots: capture health per input (packets,
/// bytes, gaps, out-of-order, retransmissions, evictions, time of the last packet),
/// counters with known labels at zero from the start, PDU sizes of every PDU type, and
/// nothing of a recorder or upstream it does not have. It follows the files a real
/// `tcpdump -C 1` rotation writes, as one stream.
#[test]
fn monitor_exports_capture_health_and_follows_a_tcpdump_rotation() {
    if !require("monitor_health", &["storescu", "storescp", "tcpdump"]) {
        return;
    }
    let (_, data) = require_python("monitor_health").expect("pydicom samples");
    let tmp = temp_dir("monitor-rotation");
    let dir = tmp.path();
    let (_scp, port) = support::peers::storescp_with(
        "storescp",
        &dir.join("received"),
        dir,
        &["-aet", "STORESCP"],
    );
    let base = dir.join("spool").join("dicom.pcap");
    std::fs::create_dir_all(base.parent().unwrap()).unwrap();
    // -C 1: a new file every million bytes (dicom.pcap, dicom.pcap1, ...); -U: packet-buffered.
    let port_s = port.to_string();
    let mut args = vec![
        "-i",
        "lo",
        "-U",
        "-s",
        "0",
        "-C",
        "1",
        "-w",
        base.to_str().unwrap(),
        "tcp",
        "port",
        &port_s,
    ];
    // tcpdump drops root for its own user, who cannot write into our directory.
    if is_root() {
        args.extend(["-Z", "root"]);
    }
    let mut dump = Proc::spawn("tcpdump", command("tcpdump", &args), dir);
    assert!(
        wait_until(Duration::from_secs(15), || base.exists()),
        "tcpdump did not start: {}",
        dump.output()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (mut mon, mport) = spawn_monitor(dir, &base, "--rotated");
    assert!(
        wait_for_port(mport, Duration::from_secs(20), Some(&mut mon)),
        "monitor: {}",
        mon.output()
    );
    let before = http_get(mport, "/metrics", None);
    // At zero from the start; nothing of a proxy.
    for zero in [
        "dicomtap_aborts_total{source=\"service_provider\"} 0",
        "dicomtap_protocol_findings_total{code=\"capture_gap\",severity=\"warning\"} 0",
        "dicomtap_capture_gaps_total{input=",
    ] {
        assert!(before.contains(zero), "{zero}:\n{before}");
    }
    for absent in [
        "dicomtap_recorder_",
        "dicomtap_upstream_errors",
        "dicomtap_tls_handshakes",
    ] {
        assert!(!before.contains(absent), "{absent}:\n{before}");
    }
    // 40 x CT_small (about 39 kB each): a bit over 1.5 MB, two files or more.
    let ct = data.test_files.join("CT_small.dcm");
    let files: Vec<std::path::PathBuf> = (0..40).map(|_| ct.clone()).collect();
    let cmd =
        support::peers::storescu_command(&["-aec", "STORESCP", "-aet", "MODALITY"], port, &files);
    run_ok("storescu", cmd, dir, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(500));
    let rotated: Vec<_> = std::fs::read_dir(base.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert!(rotated.len() >= 2, "tcpdump rotated: {rotated:?}");
    let expected = "dicomtap_dimse_messages_total{command=\"C-STORE-RSP\",sop_class=\"CTImageStorage\",status_class=\"success\"} 40";
    let mut body = String::new();
    let ok = wait_until(Duration::from_secs(30), || {
        body = http_get(mport, "/metrics", None);
        body.contains(expected)
    });
    dump.stop("INT", Duration::from_secs(10));
    mon.stop("INT", Duration::from_secs(10));
    assert!(
        ok,
        "all 40 stores across the rotated files:\n{body}\n{}",
        mon.output()
    );
    let input = base.display().to_string();
    let packets = metric(
        &body,
        &format!("dicomtap_capture_packets_total{{input=\"{input}\"}}"),
    );
    assert!(packets > 100.0, "{body}");
    let last = metric(
        &body,
        &format!("dicomtap_capture_last_packet_timestamp_seconds{{input=\"{input}\"}}"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 120.0, "last packet {last}, now {now}");
    assert_eq!(
        metric(
            &body,
            &format!("dicomtap_capture_gaps_total{{input=\"{input}\"}}")
        ),
        0.0,
        "{body}"
    );
    // PDU sizes of every PDU type, not only P-DATA-TF.
    for t in [
        "associate_rq",
        "associate_ac",
        "p_data_tf",
        "release_rq",
        "release_rp",
    ] {
        assert!(
            metric(&body, &format!("dicomtap_pdu_bytes_count{{type=\"{t}\"}}")) >= 1.0,
            "{t}:\n{body}"
        );
    }
    assert!(
        mon.stderr().contains("continuing with"),
        "the monitor followed the rotation: {}",
        mon.output()
    );
}
