//! A fleet of dicomtap instances on real engines, all started and stopped by the tests on
//! loopback: NATS with JetStream (events and findings, at least once through a disk
//! spool, de-duplicated by event id at the central consumer), and Prometheus remote-writing
//! two sites' metrics into VictoriaMetrics (queried through its PromQL API).
//!
//! Real DICOM traffic: DCMTK storescu and storescp, the pynetdicom storage commitment peers
//! of the conformance tests.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::conformance::{Scene, conformance_scene};
use support::{
    Proc, command, free_port, http_get_status_body, peers, require, run, start_proxy,
    wait_for_port, wait_until,
};

/// `nats-server -js` on 127.0.0.1:`port` with its store in `dir`.
fn nats(dir: &Path, name: &str, port: u16) -> Proc {
    nats_with(dir, name, port, &[])
}

/// The same with more arguments (TLS, authentication).
fn nats_with(dir: &Path, name: &str, port: u16, extra: &[String]) -> Proc {
    let store = dir.join("nats-store");
    std::fs::create_dir_all(&store).unwrap();
    let mut args = vec![
        "-js".to_string(),
        "-sd".into(),
        store.display().to_string(),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    args.extend(extra.iter().cloned());
    let mut p = Proc::spawn(name, command("nats-server", &args), dir);
    assert!(
        wait_for_port(port, Duration::from_secs(20), Some(&mut p)),
        "nats-server did not listen\n{}",
        p.output()
    );
    p
}

/// `dicomtap fleet`, with its metrics port read from its output.
fn consumer(dir: &Path, name: &str, nats_port: u16, out: &Path, statements: &Path) -> (Proc, u16) {
    consumer_with(dir, name, nats_port, out, statements, "dicomtap-fleet", &[])
}

/// `dicomtap fleet` under the durable name `durable`, with `extra` arguments.
fn consumer_with(
    dir: &Path,
    name: &str,
    nats_port: u16,
    out: &Path,
    statements: &Path,
    durable: &str,
    extra: &[String],
) -> (Proc, u16) {
    let mut args = vec![
        "fleet".to_string(),
        "--durable".into(),
        durable.to_string(),
        "--nats".into(),
        format!("nats://127.0.0.1:{nats_port}"),
        "--out".into(),
        out.display().to_string(),
        "--statements".into(),
        statements.display().to_string(),
        "--metrics".into(),
        "127.0.0.1:0".into(),
        "--report-every".into(),
        "1s".into(),
    ];
    args.extend(extra.iter().cloned());
    let mut p = Proc::spawn(name, command(env!("CARGO_BIN_EXE_dicomtap"), &args), dir);
    let up = wait_until(Duration::from_secs(20), || {
        p.stdout().contains("metrics on") || p.try_wait().is_some()
    });
    assert!(up && p.try_wait().is_none(), "{}", p.output());
    let port = p
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("dicomtap fleet: metrics on "))
        .and_then(support::printed_addr)
        .map(|a| a.port())
        .unwrap();
    (p, port)
}

fn proxy_toml(
    site: &str,
    instance: &str,
    upstream: u16,
    nats_port: u16,
    spool: &Path,
    extra: &str,
) -> String {
    format!(
        "[identity]\nsite = \"{site}\"\ninstance = \"{instance}\"\n\n\
         [fleet]\nnats = \"nats://127.0.0.1:{nats_port}\"\nspool_dir = \"{}\"\n{extra}\n\
         [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{upstream}\"\n",
        spool.display()
    )
}

/// The events the consumer logged.
fn events(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(evs: &[Value], site: &str, kind: &str) -> usize {
    evs.iter()
        .filter(|e| e["site"] == site && e["kind"] == kind)
        .count()
}

/// Sum of the samples of metric `name` whose labels include every `filters` pair.
fn metric(port: u16, name: &str, filters: &[(&str, &str)]) -> f64 {
    let (_, body) = http_get_status_body(port, "/metrics", None);
    let mut sum = 0.0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => ("", v),
                None => continue,
            },
        };
        if filters
            .iter()
            .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")))
        {
            sum += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

fn storescu(dir: &Path, port: u16, calling: &str, called: &str, files: &[PathBuf]) {
    let opts = ["-aet", calling, "-aec", called];
    let out = run(
        "storescu",
        peers::storescu_command(&opts, port, files),
        dir,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.text());
}

/// Every event id once, and for each run of each instance a gap-free sequence from 0.
fn assert_exactly_once(evs: &[Value], gap_free: bool) -> BTreeMap<String, u64> {
    let mut ids = BTreeSet::new();
    let mut runs: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for e in evs {
        let id = e["id"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "event {id} logged twice");
        let (run, seq) = id.rsplit_once('.').unwrap();
        runs.entry(run.to_string())
            .or_default()
            .insert(seq.parse().unwrap());
    }
    let mut sizes = BTreeMap::new();
    for (run, seqs) in runs {
        let n = seqs.len() as u64;
        if !gap_free {
            sizes.insert(run, n);
            continue;
        }
        assert_eq!(
            seqs.iter().next_back().copied(),
            Some(n - 1),
            "events of {run} missing: {seqs:?}"
        );
        sizes.insert(run, n);
    }
    sizes
}

const ARCHIVE_STATEMENT: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "PY_ARCHIVE"
[[ae]]
title = "ARCHIVE"
acceptor = true
initiator = true
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian"]
"#;

fn fleet_scene(name: &str) -> Option<(Scene, PathBuf, support::PydicomData)> {
    if !require("fleet", &["nats-server", "storescu"]) {
        return None;
    }
    conformance_scene(name, &[])
}

mod bus;
mod central_store;
mod config;
mod throughput;
