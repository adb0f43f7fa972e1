//! `dicomtap proxy --statements`: the conformance rules run live, findings reach the event
//! log and `dicomtap_conformance_findings_total`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use support::*;

const DICOMTAP: &str = env!("CARGO_BIN_EXE_dicomtap");

/// A statement for storescp that claims CT Image Storage only, in Explicit VR LE only.
const NARROW: &str = r#"
schema = "dicomtap-statement/1"

[device]
name = "NARROW_SCP"

[[ae]]
title = "STORESCP"
acceptor = true

[[ae.capability]]
sop_class = "Verification"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian"]

[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["ExplicitVRLittleEndian"]
"#;

/// Reads the proxy's "listening on" and "metrics on" and "recording to" lines.
fn addresses(proc: &Proc) -> Option<(u16, u16, Vec<std::path::PathBuf>)> {
    let out = proc.stdout();
    let port = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| {
                let addr = rest
                    .split_whitespace()
                    .next()?
                    .trim_start_matches("http://")
                    .split('/')
                    .next()?;
                addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
            })
    };
    let files = out
        .lines()
        .filter_map(|l| l.strip_prefix("dicomtap proxy: recording to "))
        .map(std::path::PathBuf::from)
        .collect();
    Some((
        port("dicomtap proxy: listening on ")?,
        port("dicomtap proxy: metrics on ")?,
        files,
    ))
}

#[test]
fn live_findings_in_event_log_and_metrics() {
    let Some((_, data)) = require_peers("proxy_statements", &["storescu", "storescp"]) else {
        return;
    };
    let tmp = temp_dir("proxy-statements");
    let dir = tmp.path();
    let statements = dir.join("statements");
    std::fs::create_dir_all(&statements).unwrap();
    std::fs::write(statements.join("narrow.toml"), NARROW).unwrap();
    let received = dir.join("received");
    std::fs::create_dir_all(&received).unwrap();
    let scp_port = free_port();
    let mut scp = Proc::spawn(
        "storescp",
        command(
            "storescp",
            &[
                "-aet",
                "STORESCP",
                "-od",
                received.to_str().unwrap(),
                &scp_port.to_string(),
            ],
        ),
        dir,
    );
    assert!(
        wait_for_port(scp_port, Duration::from_secs(15), Some(&mut scp)),
        "{}",
        scp.output()
    );
    let record = dir.join("rec");
    let mut proxy = Proc::spawn(
        "proxy",
        command(
            DICOMTAP,
            &[
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &format!("127.0.0.1:{scp_port}"),
                "--metrics",
                "127.0.0.1:0",
                "--record",
                record.to_str().unwrap(),
                "--statements",
                statements.to_str().unwrap(),
            ],
        ),
        dir,
    );
    let mut addrs = None;
    assert!(
        wait_until(Duration::from_secs(15), || {
            addrs = addresses(&proxy);
            addrs.is_some()
        }),
        "proxy did not start: {}",
        proxy.output()
    );
    let (port, mport, _) = addrs.unwrap();

    // MR is not claimed; CT sent in Implicit VR LE (-xi) is not in the claimed syntaxes.
    let files = [
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("CT_small.dcm"),
    ];
    let cmd = support::peers::storescu_command(&["-xi", "-aec", "STORESCP"], port, &files);
    run_ok("storescu", cmd, dir, Duration::from_secs(60));

    let mut metrics = String::new();
    let seen = wait_until(Duration::from_secs(10), || {
        metrics = http_get(mport, "/metrics", None);
        metrics.contains("rule=\"sop-class-not-claimed\"")
            && metrics.contains("rule=\"transfer-syntax-not-claimed\"")
    });
    assert!(seen, "conformance metrics missing:\n{metrics}");
    assert!(metrics.contains("dicomtap_conformance_findings_total{device=\"NARROW_SCP\",rule=\"sop-class-not-claimed\",severity=\"warning\"}"), "{metrics}");

    proxy.stop("TERM", Duration::from_secs(15));
    scp.stop("TERM", Duration::from_secs(5));
    let log: String = std::fs::read_dir(&record)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let findings: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "conformance_finding")
        .collect();
    let rules: Vec<&str> = findings.iter().filter_map(|f| f["rule"].as_str()).collect();
    assert!(rules.contains(&"sop-class-not-claimed"), "{rules:?}");
    assert!(rules.contains(&"transfer-syntax-not-claimed"), "{rules:?}");
    assert!(findings.iter().all(|f| f["device"] == "NARROW_SCP"));
    // The data set bytes the rules read are not written to the event log.
    assert!(!log.contains("data_fragment"));
}
