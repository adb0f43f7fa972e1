//! End to end: `dicomtap demo --json` as a newcomer runs it. Every object must be stored
//! with Success and arrive byte-identical, the recording must exist owner-only, and tshark
//! (a decoder we did not write) must find every C-STORE-RQ in the capture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs the binary with a watchdog, so a hang fails the test instead of the CI job.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dicomtap");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "dicomtap demo did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn demo_json(out: &Path, extra: &[&str]) -> Value {
    let output = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_dicomtap"))
            .arg("demo")
            .arg("--out")
            .arg(out)
            .arg("--json")
            .args(extra),
        Duration::from_secs(120),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "dicomtap demo failed; stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

fn files_of_kind(report: &Value, kind: &str) -> Vec<PathBuf> {
    report["recording_files"]
        .as_array()
        .expect("recording_files")
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| PathBuf::from(f["path"].as_str().expect("path")))
        .collect()
}

#[test]
fn demo_stores_every_object_intact_and_tshark_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let report = demo_json(dir.path(), &[]);

    assert_eq!(report["ok"], true, "{report:#}");
    let objects = report["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 4, "3 CT slices + 1 secondary capture");
    for o in objects {
        assert_eq!(o["status"], "0000", "{o}");
        assert_eq!(o["received"], true, "{o}");
        assert_eq!(o["byte_identical"], true, "{o}");
    }
    assert_eq!(report["echo"]["status"], 0);

    // The proxy saw both associations and every exchange, with Success.
    let assocs = report["associations"].as_array().expect("associations");
    assert_eq!(assocs.len(), 2, "{report:#}");
    for a in assocs {
        assert_eq!(a["calling_ae"], "DEMO-SCU");
        assert_eq!(a["called_ae"], "DEMO-SCP");
        assert_eq!(a["ended"], "released", "{a}");
    }
    let stores: Vec<&Value> = assocs[1]["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .filter(|x| x["command"] == "C-STORE")
        .collect();
    assert_eq!(stores.len(), 4);
    assert!(stores.iter().all(|x| x["status"] == "0000"));
    // The proxy's peek found ISO_IR 192 in every data set and no invalid text, the
    // accented names of the Secondary Capture included.
    let datasets = assocs[1]["datasets"].as_array().expect("datasets");
    assert_eq!(datasets.len(), 4, "{report:#}");
    for d in datasets {
        assert_eq!(d["specific_character_set"][0], "ISO_IR 192", "{d}");
        assert_eq!(d["invalid_text_values"], 0, "{d}");
    }
    let accepted = assocs[1]["accepted_contexts"].as_array().expect("contexts");
    let syntaxes: Vec<&str> = accepted
        .iter()
        .filter_map(|c| c["transfer_syntax"].as_str())
        .collect();
    assert!(syntaxes.contains(&"1.2.840.10008.1.2"), "{syntaxes:?}");
    assert!(syntaxes.contains(&"1.2.840.10008.1.2.1"), "{syntaxes:?}");
    assert!(
        report["metric_lines"]
            .as_array()
            .expect("metric lines")
            .iter()
            .any(|l| l.as_str().unwrap_or("").starts_with("dicomtap_")),
        "no metric lines: {report:#}"
    );

    // Recording: present, non-empty, owner-only.
    let pcaps = files_of_kind(&report, "pcapng");
    let logs = files_of_kind(&report, "events");
    assert!(!pcaps.is_empty() && !logs.is_empty(), "{report:#}");
    for f in pcaps.iter().chain(&logs) {
        let meta = std::fs::metadata(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(meta.len() > 0, "{} is empty", f.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{} is not owner-only",
                f.display()
            );
        }
    }
    // The event log is JSON lines with the C-STOREs in it.
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    let store_rqs = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("event log line is JSON"))
        .filter(|v| v["command"] == "C-STORE-RQ")
        .count();
    assert_eq!(store_rqs, 4, "C-STORE-RQ in the event log");

    // tshark decodes the capture as DICOM and finds every C-STORE-RQ.
    let tshark = Command::new("tshark").arg("--version").output();
    assert!(
        tshark.is_ok_and(|o| o.status.success()),
        "tshark is not installed; run scripts/install-test-peers.sh first"
    );
    let port = report["scp_listen"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .expect("scp_listen port");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcaps[0])
        .args(["-d", &format!("tcp.port=={port},dicom"), "-Y", "dicom"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("C-STORE-RQ").count(),
        4,
        "tshark output:\n{text}"
    );
    assert_eq!(
        text.matches("C-STORE-RSP").count(),
        4,
        "tshark output:\n{text}"
    );
    assert_eq!(
        text.matches("C-ECHO-RQ").count(),
        1,
        "tshark output:\n{text}"
    );
    assert!(
        text.contains("A-ASSOCIATE request DEMO-SCU --> DEMO-SCP"),
        "{text}"
    );
}

#[test]
fn demo_payload_none_writes_event_log_only() {
    let dir = tempfile::tempdir().unwrap();
    let report = demo_json(dir.path(), &["--payload", "none", "--slices", "1"]);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["objects"].as_array().map(Vec::len), Some(2));
    assert!(files_of_kind(&report, "pcapng").is_empty(), "{report:#}");
    assert_eq!(files_of_kind(&report, "events").len(), 1);
}
