//! The monitor's alert rules (deploy/prometheus/monitor-alerts.yml) and capture health
//! dashboard (deploy/grafana/monitor/): promtool checks and unit-tests the rules, and
//! every metric they name is exported by a live `dicomtap monitor`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::spawn_monitor;
use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{command, http_get, require, run, temp_dir, wait_until, workspace_dir};

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("dicomtap_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn monitor_alerts_and_dashboard_use_what_the_monitor_exports() {
    if !require("monitor_alerts", &["promtool"]) {
        return;
    }
    let tmp = temp_dir("monitor-deploy");
    let dir = tmp.path();
    let deploy = workspace_dir().join("deploy");
    let rules = deploy.join("prometheus/monitor-alerts.yml");
    let check = run(
        "promtool-check",
        command("promtool", &["check", "rules", rules.to_str().unwrap()]),
        dir,
        Duration::from_secs(60),
    );
    assert!(check.status.success(), "{}", check.text());

    // promtool compares annotations exactly: test a copy without them.
    let mut doc: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(&rules).unwrap()).unwrap();
    for g in doc["groups"].as_array_mut().unwrap() {
        for r in g["rules"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("annotations");
        }
    }
    std::fs::write(
        dir.join("monitor-alerts.yml"),
        serde_norway::to_string(&doc).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        deploy.join("prometheus/monitor-alerts_test.yml"),
        dir.join("monitor-alerts_test.yml"),
    )
    .unwrap();
    let mut cmd = command("promtool", &["test", "rules", "monitor-alerts_test.yml"]);
    cmd.current_dir(dir);
    let t = run("promtool-test", cmd, dir, Duration::from_secs(60));
    assert!(t.status.success(), "{}", t.text());
    let tests = std::fs::read_to_string(deploy.join("prometheus/monitor-alerts_test.yml")).unwrap();
    for r in doc["groups"][0]["rules"].as_array().unwrap() {
        let name = r["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "no test for {name}"
        );
    }

    // A live monitor exports every metric the rules and the dashboard name.
    let capture = workspace_dir().join("fuzz/seeds/capture/dcmtk-echoscu-storescp.pcapng");
    let (mut mon, port) = spawn_monitor(dir, &capture, "--no-follow");
    assert!(
        wait_until(Duration::from_secs(20), || mon
            .stderr()
            .contains("TCP connections")),
        "{}",
        mon.output()
    );
    let body = http_get(port, "/metrics", None);
    mon.stop("INT", Duration::from_secs(10));
    let exported: BTreeSet<String> = metric_names(&body);
    let dashboard =
        std::fs::read_to_string(deploy.join("grafana/monitor/dicomtap-capture-health.json"))
            .unwrap();
    let d: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!(d["uid"], "dicomtap-capture-health");
    let named: BTreeSet<String> = metric_names(&std::fs::read_to_string(&rules).unwrap())
        .into_iter()
        .chain(metric_names(&dashboard))
        .collect();
    let missing: Vec<&String> = named.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "not exported by the monitor: {missing:?}\n{body}"
    );
    assert!(named.len() >= 8, "{named:?}");
}
