//! Event log lines on a stalled disk (issue 16): real DCMTK `storescu` -> `dicomtap proxy`
//! (the built binary, or `DICOMTAP_BIN`) -> `storescp`, the recorder stalled on every
//! chunk (`DICOMTAP_TEST_RECORDER_STALL_MS`). The analysis task hands its event lines to
//! the recorder; they wait for room in its queue within the same budget as chunks
//! (`record_wait_ms`), then are dropped and counted. Were they to wait without a bound,
//! the analysis task would wait at the recorder's speed and its own queue would overflow:
//! traffic forwarded but never analysed (`dicomtap_analysis_dropped_bytes_total`).
//!
//! Skips (with a message) when the peers are not installed; scripts/install-test-peers.sh
//! installs them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "../benches/e2e/dicom.rs"]
mod dicom;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::peers::storescp;
use support::{Proc, http_get, peers_available, printed_addr, wait_until};

/// Longest a storescu run may take here; every run must end well within it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The sum of one metric family's samples in the proxy's exposition.
fn metric(port: u16, name: &str) -> u64 {
    http_get(port, "/metrics", None)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn event_lines_on_a_stalled_disk_wait_within_the_budget_and_analysis_keeps_up() {
    if !peers_available(&["storescp", "storescu"]) {
        return;
    }
    let tmp = support::temp_dir("rec-events-wait");
    let dir = tmp.path();
    // Many small objects: several event lines each (commands, peeks, data set ends).
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let (study, series) = (dicom::new_uid(), dicom::new_uid());
    let files: Vec<PathBuf> = (0..150)
        .map(|n| {
            let p = input.join(format!("ct{n}.dcm"));
            dicom::write_ct_file(&p, 64, 64, &study, &series, n).unwrap();
            p
        })
        .collect();
    let (_scp, scp_port) = storescp("storescp", &dir.join("out"), dir, &[]);

    // Every chunk takes the recorder 100 ms; a queue of 4, 20 ms of wait at most; an
    // analysis queue of 8 chunks, which a wait of 100 ms per event line overflows.
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_listen = \"127.0.0.1:0\"\n\n[limits]\nanalysis_queue_chunks = 8\n\n[[listener]]\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"127.0.0.1:{scp_port}\"\n\n[recording]\ndir = {:?}\n\
             queue_chunks = 4\nrecord_wait_ms = 20\n",
            dir.join("rec").display().to_string()
        ),
    )
    .unwrap();
    let bin = std::env::var_os("DICOMTAP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dicomtap")));
    let mut cmd = Command::new(bin);
    cmd.arg("proxy")
        .arg("-c")
        .arg(&config)
        .env("DICOMTAP_TEST_RECORDER_STALL_MS", "100");
    let mut proxy = Proc::spawn("proxy", cmd, dir);
    let ports = |text: &str| {
        let (mut port, mut metrics) = (None, None);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("dicomtap proxy: listening on ") {
                port = printed_addr(rest).map(|a| a.port());
            } else if let Some(rest) = line.strip_prefix("dicomtap proxy: metrics on ") {
                metrics = printed_addr(rest).map(|a| a.port());
            }
        }
        port.zip(metrics)
    };
    wait_until(Duration::from_secs(10), || {
        ports(&proxy.stdout()).is_some() || proxy.try_wait().is_some()
    });
    let (port, metrics_port) = ports(&proxy.stdout())
        .unwrap_or_else(|| panic!("the proxy did not start\n{}", proxy.output()));

    let started = Instant::now();
    let mut scu = Command::new("storescu");
    scu.args(["-aet", "MODALITY", "-aec", "ARCHIVE"])
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(&files);
    let mut scu = Proc::spawn("storescu", scu, dir);
    let status = scu
        .wait_timeout(RUN_TIMEOUT)
        .unwrap_or_else(|| panic!("storescu did not finish in {RUN_TIMEOUT:?}"));
    assert!(status.success(), "storescu failed\n{}", scu.output());
    let took = started.elapsed();
    // Let the analysis task finish what it was given.
    std::thread::sleep(Duration::from_millis(500));

    let forwarded = metric(metrics_port, "dicomtap_bytes_total");
    let dropped = metric(metrics_port, "dicomtap_recorder_dropped_total");
    let dropped_bytes = metric(metrics_port, "dicomtap_recorder_dropped_bytes_total");
    let not_analysed = metric(metrics_port, "dicomtap_analysis_dropped_bytes_total");
    eprintln!(
        "stalled recorder, {} objects: storescu took {took:?}; recorder dropped {dropped} \
         messages ({dropped_bytes} bytes); {not_analysed} of {forwarded} bytes not analysed",
        files.len()
    );
    assert!(
        dropped > 0 && dropped_bytes > 0,
        "the stalled recorder dropped nothing"
    );
    assert_eq!(
        not_analysed, 0,
        "the analysis waited for the stalled recorder and its queue overflowed"
    );
    // Every C-STORE was analysed: the metrics count each response.
    let stores = http_get(metrics_port, "/metrics", None)
        .lines()
        .filter(|l| l.starts_with("dicomtap_dimse_") && l.contains("C-STORE"))
        .count();
    assert!(stores > 0, "no C-STORE in the metrics");

    proxy.signal("TERM");
    assert!(
        proxy.wait_timeout(Duration::from_secs(20)).is_some(),
        "the proxy did not stop\n{}",
        proxy.output()
    );
    let received = std::fs::read_dir(dir.join("out")).unwrap().count();
    assert_eq!(received, files.len(), "files received");
    // What reached the event log is whole lines of JSON.
    for entry in std::fs::read_dir(dir.join("rec")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "{}: {line}",
                    Path::new(&p).display()
                );
            }
        }
    }
}
