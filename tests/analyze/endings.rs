//! How associations end, as `dicomtap analyze` reports it from captures of real peers: the
//! first cause is the ending, what the other side answered comes after it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use support::peers::storescp;
use support::{Capture, command, require_peers, run, temp_dir, workspace_dir};

/// A requestor closes TCP in the middle of a P-DATA-TF; storescp answers with A-ABORT.
/// The ending is the requestor's close inside a PDU, then the acceptor's A-ABORT; the
/// single A-ABORT is not reported as "A-ABORT after A-ABORT".
#[test]
fn close_inside_a_pdu_then_abort_is_reported_in_that_order() {
    let Some((python, _)) = require_peers("close_inside_a_pdu", &["storescp", "dumpcap"]) else {
        return;
    };
    let tmp = temp_dir("endings");
    let dir = tmp.path();
    let (_scp, port) = storescp("storescp", &dir.join("in"), dir, &["-aet", "SCP"]);
    let cap = Capture::start("close-mid-pdu", &[port], dir);
    let script = workspace_dir().join("tests/peers_py/close_mid_pdu.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(&script).arg(port.to_string()).arg("SCP");
    let client = run("close-mid-pdu", cmd, dir, Duration::from_secs(60));
    assert!(client.status.success(), "{}", client.text());
    let pcap = cap.finish();

    let out = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        Duration::from_secs(60),
    );
    let sessions: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"].clone())
        .collect();
    assert_eq!(sessions.len(), 1, "{}", out.text());
    let s = &sessions[0];
    let ending = &s["ending"];
    assert_eq!(ending["kind"], "closed", "{s:#}");
    assert_eq!(ending["by"], "requestor", "{s:#}");
    assert_eq!(ending["inside_pdu"], true, "{s:#}");
    assert!(
        ending["answer"]
            .as_str()
            .is_some_and(|a| a.starts_with("A-ABORT")),
        "storescp answered the close with A-ABORT: {s:#}"
    );
    let findings: Vec<&str> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(findings.contains(&"truncated_pdu"), "{findings:?}");
    assert!(!findings.contains(&"unexpected_pdu"), "{s:#}");

    let text = run(
        "analyze-text",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", pcap.to_str().unwrap()],
        ),
        dir,
        Duration::from_secs(60),
    );
    assert!(
        text.stdout
            .contains("closed by requestor inside a PDU without release, then A-ABORT"),
        "{}",
        text.text()
    );
}
