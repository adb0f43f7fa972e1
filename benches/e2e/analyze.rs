//! Item 4: `dicomtap analyze` against tshark on the same large capture of real peers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Ctx;
use crate::store::{self, Workload};
use crate::util::{self, Proc};

/// Captures one direct storescu -> storescp run of every workload on `lo` with dumpcap.
pub fn capture(
    ctx: &Ctx,
    workloads: &[Workload],
    scp: SocketAddr,
) -> anyhow::Result<(PathBuf, Value)> {
    let file = ctx.record_root.join("capture.pcapng");
    let _ = std::fs::remove_file(&file);
    let log = ctx.log("dumpcap");
    let mut cmd = Command::new("dumpcap");
    cmd.args(["-i", "lo", "-B", "512", "-q", "-f"])
        .arg(format!("tcp port {}", scp.port()))
        .arg("-w")
        .arg(&file);
    let mut dumpcap = Proc::spawn("dumpcap", cmd, &log, false)?;
    // dumpcap creates the file once the capture runs.
    let mut waited = 0;
    while !file.exists() && waited < 100 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    anyhow::ensure!(
        file.exists(),
        "dumpcap did not start (see {})",
        log.display()
    );
    std::thread::sleep(Duration::from_millis(500));
    for w in workloads {
        store::send(ctx, scp, w)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    dumpcap.stop_with("-INT");
    let size = std::fs::metadata(&file)?.len();
    let dumpcap_log = std::fs::read_to_string(&log).unwrap_or_default();
    let dropped = dumpcap_log
        .lines()
        .filter(|l| l.contains("dropped"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    Ok((
        file.clone(),
        json!({ "file": file, "bytes": size, "dumpcap": dropped }),
    ))
}

/// Runs `cmd` under `/usr/bin/time -v`, stdout to `out`; (wall s, max RSS KiB).
fn timed(ctx: &Ctx, name: &str, args: &[String], out: &Path) -> anyhow::Result<(f64, u64)> {
    let tfile = ctx.work.join(format!("time-{name}.txt"));
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v").arg("-o").arg(&tfile).args(args);
    cmd.stdout(std::fs::File::create(out)?);
    let (secs, ok) = run_with_stdout(cmd, Duration::from_secs(900), &ctx.log(name))?;
    let t = std::fs::read_to_string(&tfile).unwrap_or_default();
    let rss = t
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(ok, "{name} failed: {}", t.lines().next().unwrap_or(""));
    Ok((secs, rss))
}

fn run_with_stdout(mut cmd: Command, timeout: Duration, log: &Path) -> anyhow::Result<(f64, bool)> {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    cmd.stdin(std::process::Stdio::null()).stderr(err);
    let started = std::time::Instant::now();
    let mut child = cmd.spawn()?;
    util::register(child.id(), false);
    let r = loop {
        if let Some(status) = child.try_wait()? {
            // dicomtap analyze exits 1 when findings reach --fail-on (not set here).
            break Ok((started.elapsed().as_secs_f64(), status.code() == Some(0)));
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Err(anyhow::anyhow!("timed out after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    util::unregister(child.id());
    r
}

pub fn run(ctx: &Ctx, file: &Path, port: u16, capture: Value) -> anyhow::Result<Value> {
    let size = std::fs::metadata(file)?.len() as f64;
    let f = file.display().to_string();
    let analyzer: Vec<String> = vec![
        ctx.dicomtap.display().to_string(),
        "analyze".into(),
        f.clone(),
        "--json".into(),
        "--port".into(),
        port.to_string(),
    ];
    let tshark: Vec<String> = vec![
        "tshark".into(),
        "-r".into(),
        f.clone(),
        "-d".into(),
        format!("tcp.port=={port},dicom"),
        "-T".into(),
        "fields".into(),
        "-e".into(),
        "dicom.pdu.type".into(),
    ];
    let a_out = ctx.work.join("analyze.out");
    let t_out = ctx.work.join("tshark.out");
    let mut a_runs = Vec::new();
    let mut t_runs = Vec::new();
    let rounds = ctx.analyze_reps.max(ctx.tshark_reps);
    for i in 0..rounds {
        if i < ctx.analyze_reps {
            let r = timed(ctx, "analyze", &analyzer, &a_out)?;
            eprintln!("e2e: analyze {:7.2} s {:7.1} MiB", r.0, r.1 as f64 / 1024.0);
            a_runs.push(r);
        }
        if i < ctx.tshark_reps {
            let r = timed(ctx, "tshark", &tshark, &t_out)?;
            eprintln!("e2e: tshark  {:7.2} s {:7.1} MiB", r.0, r.1 as f64 / 1024.0);
            t_runs.push(r);
        }
    }
    // What each of them saw, as a check that both really decoded the DICOM traffic.
    let a_text = std::fs::read_to_string(&a_out).unwrap_or_default();
    let sessions = a_text.lines().filter(|l| l.contains("\"session\"")).count();
    let mut data_sets = 0u64;
    let mut pdus = 0u64;
    for line in a_text.lines().filter(|l| l.contains("\"session\"")) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        data_sets += find_key(&v, "data_sets")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        for side in ["requestor", "acceptor"] {
            pdus += find_key(&v, side)
                .and_then(|p| p.get("pdus"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }
    let summary: Value = a_text
        .lines()
        .rev()
        .find(|l| l.contains("summary"))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    let t_text = std::fs::read_to_string(&t_out).unwrap_or_default();
    let tshark_pdus: usize = t_text
        .lines()
        .map(|l| l.split(',').filter(|v| !v.trim().is_empty()).count())
        .sum();
    let tshark_pdata = t_text
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|v| v.trim() == "4")
        .count();

    let a_secs: Vec<f64> = a_runs.iter().map(|r| r.0).collect();
    let t_secs: Vec<f64> = t_runs.iter().map(|r| r.0).collect();
    let a_rss: Vec<f64> = a_runs.iter().map(|r| r.1 as f64).collect();
    let t_rss: Vec<f64> = t_runs.iter().map(|r| r.1 as f64).collect();
    let a_med = util::median(&a_secs);
    let t_med = util::median(&t_secs);
    let a_peak = a_rss.iter().copied().fold(0.0, f64::max);
    let t_peak = t_rss.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "capture": capture,
        "analyzer_cmd": analyzer.join(" "),
        "tshark_cmd": tshark.join(" "),
        "analyzer_s": a_secs,
        "tshark_s": t_secs,
        "analyzer_median_s": a_med,
        "tshark_median_s": t_med,
        "analyzer_mb_per_s": size / a_med / 1e6,
        "tshark_mb_per_s": size / t_med / 1e6,
        "speedup_vs_tshark": t_med / a_med,
        "analyzer_peak_rss_kib": a_peak,
        "tshark_peak_rss_kib": t_peak,
        "analyzer_sessions": sessions,
        "analyzer_data_sets": data_sets,
        "analyzer_pdus": pdus,
        "analyzer_summary": summary,
        "tshark_dicom_pdus": tshark_pdus,
        "tshark_p_data_pdus": tshark_pdata,
    }))
}

/// The first value under `key`, depth first.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}
