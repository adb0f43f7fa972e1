//! Item 1: C-STORE throughput, storescu -> storescp, direct and through each relay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Ctx;
use crate::dicom;
use crate::util::{self, Proc, TempDir};

/// A set of Part-10 files in one directory.
#[derive(Clone)]
pub struct Workload {
    pub name: &'static str,
    pub dir: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// Writes the large and the small workload under `root` (a tmpfs, so storescu reads from
/// memory).
pub fn generate(root: &Path, large: usize, small: usize) -> anyhow::Result<Vec<Workload>> {
    let mut out = Vec::new();
    for (name, count, rows, cols) in [
        ("large", large, 2048u16, 4096u16), // 16 MiB of pixel data each
        ("small", small, 128, 256),         // 64 KiB each
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let study = dicom::new_uid();
        let series = dicom::new_uid();
        let mut bytes = 0;
        for i in 0..count {
            bytes += dicom::write_ct_file(
                &dir.join(format!("{name}{i:05}.dcm")),
                rows,
                cols,
                &study,
                &series,
                i + 1,
            )?;
        }
        out.push(Workload {
            name,
            dir,
            files: count,
            bytes,
        });
    }
    Ok(out)
}

/// storescp in single-process mode, discarding what it receives (`--ignore`), so the
/// figure is the network path's and not the disk's.
pub fn start_storescp(ctx: &Ctx, fork: bool) -> anyhow::Result<(Proc, SocketAddr)> {
    let port = util::free_port()?;
    let mut cmd = Command::new("storescp");
    // DCMTK as packaged leaves Nagle's algorithm on unless TCP_NODELAY=1: then every
    // response waits ~40 ms for a delayed ACK and that, not the path, is what one measures.
    cmd.env("TCP_NODELAY", "1");
    cmd.args(["--ignore", "-dhl", "--aetitle", "STORESCP"]);
    if fork {
        cmd.arg("--fork");
    }
    cmd.arg(port.to_string());
    let p = Proc::spawn(
        if fork { "storescp --fork" } else { "storescp" },
        cmd,
        &ctx.log("storescp"),
        true,
    )?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    util::wait_port(addr, Duration::from_secs(10))?;
    Ok((p, addr))
}

/// A relay between storescu and storescp.
pub struct Relay {
    pub name: String,
    pub proc: Option<Proc>,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub record_dir: Option<TempDir>,
    /// Only the large workload goes through it (socat with Nagle on needs ~40 ms per
    /// small object: minutes per repetition, and nothing learnt).
    pub large_only: bool,
}

/// socat as a relay that inspects nothing. `tuned`: 64 KiB transfer buffer (like the
/// proxy's read buffer) and TCP_NODELAY on both legs; otherwise socat's defaults (8 KiB,
/// Nagle on), which is how it is usually run.
pub fn start_socat(ctx: &Ctx, upstream: SocketAddr, tuned: bool) -> anyhow::Result<Relay> {
    let port = util::free_port()?;
    let mut cmd = Command::new("socat");
    let opts = if tuned {
        cmd.args(["-b", "65536"]);
        ",nodelay"
    } else {
        ""
    };
    cmd.arg(format!(
        "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr{opts}"
    ))
    .arg(format!("TCP:{upstream}{opts}"));
    let name = if tuned {
        "socat -b65536 nodelay"
    } else {
        "socat (defaults)"
    };
    let p = Proc::spawn(name, cmd, &ctx.log("socat"), true)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    util::wait_port(addr, Duration::from_secs(10))?;
    Ok(Relay {
        name: name.to_string(),
        proc: Some(p),
        addr,
        metrics: None,
        record_dir: None,
        large_only: false,
    })
}

pub fn start_haproxy(ctx: &Ctx, upstream: SocketAddr) -> anyhow::Result<Relay> {
    let port = util::free_port()?;
    let cfg = ctx.work.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\n\
             frontend dicom\n  bind 127.0.0.1:{port}\n  default_backend scp\n\n\
             backend scp\n  server s1 {upstream}\n"
        ),
    )?;
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&cfg);
    let p = Proc::spawn("haproxy", cmd, &ctx.log("haproxy"), true)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    util::wait_port(addr, Duration::from_secs(10))?;
    Ok(Relay {
        name: "haproxy (tcp mode)".into(),
        proc: Some(p),
        addr,
        metrics: None,
        record_dir: None,
        large_only: false,
    })
}

/// `dicomtap proxy` in front of `upstream`; `payload` None: no recording at all.
pub fn start_dicomtap(
    ctx: &Ctx,
    upstream: SocketAddr,
    payload: Option<&str>,
    extra: &[&str],
) -> anyhow::Result<Relay> {
    start_dicomtap_env(ctx, upstream, payload, extra, &[])
}

/// [`start_dicomtap`] with `env` set for the proxy.
pub fn start_dicomtap_env(
    ctx: &Ctx,
    upstream: SocketAddr,
    payload: Option<&str>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<Relay> {
    let mut cmd = Command::new(&ctx.dicomtap);
    cmd.envs(env.iter().copied());
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.to_string())
        .args(["--metrics", "127.0.0.1:0", "--drain", "2s"])
        .args(extra);
    let name = match payload {
        None => "dicomtap (no recording)".to_string(),
        Some(p) => format!("dicomtap --payload {p}"),
    };
    let record_dir = match payload {
        None => None,
        Some(p) => {
            let d = TempDir::new(
                ctx.record_root
                    .join(format!("rec-{p}-{}", util::free_port()?)),
            )?;
            cmd.arg("--record").arg(&d.path).args(["--payload", p]);
            Some(d)
        }
    };
    let mut p = Proc::spawn_piped(&name, cmd, &ctx.log("dicomtap-proxy"))?;
    let line = p.wait_line("listening on", Duration::from_secs(15))?;
    let addr: SocketAddr = line
        .split_whitespace()
        .nth(4)
        .ok_or_else(|| anyhow::anyhow!("unexpected line {line:?}"))?
        .parse()?;
    let mline = p.wait_line("metrics on", Duration::from_secs(5))?;
    let metrics: Option<SocketAddr> = mline
        .rsplit("http://")
        .next()
        .and_then(|s| s.strip_suffix("/metrics"))
        .and_then(|s| s.parse().ok());
    Ok(Relay {
        name,
        proc: Some(p),
        addr,
        metrics,
        record_dir,
        large_only: false,
    })
}

fn storescu(addr: SocketAddr, dir: &Path) -> Command {
    let mut cmd = Command::new("storescu");
    cmd.env("TCP_NODELAY", "1");
    cmd.args(["-aet", "BENCH-SCU", "-aec", "STORESCP", "-nh", "+sd"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(dir);
    cmd
}

/// One storescu run of `w` to `addr`: wall seconds, or an error (non-zero exit, timeout).
pub fn send(ctx: &Ctx, addr: SocketAddr, w: &Workload) -> anyhow::Result<f64> {
    let (secs, ok) = util::run_timed(
        storescu(addr, &w.dir),
        Duration::from_secs(300),
        &ctx.log("storescu"),
    )?;
    anyhow::ensure!(
        ok,
        "storescu to {addr} failed (see {})",
        ctx.log("storescu").display()
    );
    Ok(secs)
}

/// Runs item 1; returns its JSON section. `workloads` are sent through every relay,
/// `reps` times, configurations interleaved (the order rotates every repetition).
pub fn run(ctx: &Ctx, workloads: &[Workload], scp: SocketAddr) -> anyhow::Result<Value> {
    let mut relays: Vec<Relay> = vec![Relay {
        name: "direct".into(),
        proc: None,
        addr: scp,
        metrics: None,
        record_dir: None,
        large_only: false,
    }];
    relays.push(start_socat(ctx, scp, true)?);
    let mut plain = start_socat(ctx, scp, false)?;
    plain.large_only = true;
    relays.push(plain);
    if util::have("haproxy") {
        relays.push(start_haproxy(ctx, scp)?);
    } else {
        eprintln!("e2e: haproxy not installed, skipped (apt-get install haproxy)");
    }
    relays.push(start_dicomtap(ctx, scp, None, &[])?);
    relays.push(start_dicomtap(ctx, scp, Some("headers"), &[])?);
    // The default: forwarding waits for room in the recorder's queue, at most 250 ms
    // per chunk, then drops and counts.
    relays.push(start_dicomtap(ctx, scp, Some("full"), &[])?);
    // Dropping at once when the queue is full (the default before the bounded wait).
    let mut no_wait = start_dicomtap(ctx, scp, Some("full"), &["--record-wait", "0"])?;
    no_wait.name = "dicomtap full --record-wait 0".into();
    relays.push(no_wait);
    // The default on a disk that stalls: the recorder takes 20 ms per chunk (a test
    // hook), far behind the traffic. Forwarding must go on; the drops are counted.
    let mut stalled = start_dicomtap_env(
        ctx,
        scp,
        Some("full"),
        &[],
        &[("DICOMTAP_TEST_RECORDER_STALL_MS", "20")],
    )?;
    stalled.name = "dicomtap full, stalled disk".into();
    relays.push(stalled);
    // The same with direct I/O, against the page cache of the default.
    let mut direct = start_dicomtap(ctx, scp, Some("full"), &["--direct-io"])?;
    direct.name = "dicomtap full --direct-io".into();
    relays.push(direct);
    // Full recording that never drops (the forwarding waits for the recorder).
    let mut bp = start_dicomtap(ctx, scp, Some("full"), &["--backpressure"])?;
    bp.name = "dicomtap full --backpressure".into();
    relays.push(bp);

    // Warm-up: one small send through each path (page cache, first-connection costs).
    for r in relays.iter().filter(|r| !r.large_only) {
        if let Some(w) = workloads.iter().find(|w| w.name == "small") {
            send(ctx, r.addr, w).map_err(|e| anyhow::anyhow!("warm-up via {}: {e}", r.name))?;
        }
    }

    let n = relays.len();
    // secs[workload][relay] = samples; cpu[workload][relay] = relay CPU seconds samples.
    let mut secs = vec![vec![Vec::new(); n]; workloads.len()];
    let mut cpu = vec![vec![Vec::new(); n]; workloads.len()];
    for rep in 0..ctx.reps {
        for (wi, w) in workloads.iter().enumerate() {
            for k in 0..n {
                let ri = (k + rep) % n;
                let r = &relays[ri];
                if r.large_only && w.name != "large" {
                    continue;
                }
                // Dirty pages left by the previous run (a recording written through the
                // page cache) go to the disk now, not during this run.
                let _ = std::process::Command::new("sync").status();
                let pid = r.proc.as_ref().map(|p| p.pid());
                let cpu0 = pid.and_then(util::proc_cpu_secs);
                let s = send(ctx, r.addr, w).map_err(|e| anyhow::anyhow!("via {}: {e}", r.name))?;
                let cpu1 = pid.and_then(util::proc_cpu_secs);
                secs[wi][ri].push(s);
                if let (Some(a), Some(b)) = (cpu0, cpu1) {
                    cpu[wi][ri].push(b - a);
                }
                eprintln!(
                    "e2e: store rep {}/{} {:5} {:28} {:7.3} s {:8.1} MB/s",
                    rep + 1,
                    ctx.reps,
                    w.name,
                    r.name,
                    s,
                    w.bytes as f64 / s / 1e6
                );
            }
        }
    }

    let mut rows = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        let direct = util::median(&secs[wi][0]);
        // The tuned socat is the baseline: Nagle's algorithm alone makes the default one
        // slow on request/response traffic, which says nothing about relaying.
        let socat = util::median(&secs[wi][1]);
        for (ri, r) in relays.iter().enumerate() {
            if secs[wi][ri].is_empty() {
                continue;
            }
            let med = util::median(&secs[wi][ri]);
            let cpu_med = util::median(&cpu[wi][ri]);
            rows.push(json!({
                "workload": w.name,
                "files": w.files,
                "bytes": w.bytes,
                "path": r.name,
                "samples_s": secs[wi][ri],
                "median_s": med,
                "mb_per_s": w.bytes as f64 / med / 1e6,
                "vs_direct": direct / med,
                "vs_socat": socat / med,
                "relay_cpu_s_median": if cpu_med.is_nan() { Value::Null } else { json!(cpu_med) },
                "relay_cpu_s_per_gb": if cpu_med.is_nan() { Value::Null } else { json!(cpu_med / (w.bytes as f64 / 1e9)) },
            }));
        }
    }

    // What the recorders and the engine kept up with.
    let mut proxies = Vec::new();
    for r in &mut relays {
        let Some(m) = r.metrics else { continue };
        let text = util::http_get(m, "/metrics").unwrap_or_default();
        let rec_bytes = r
            .record_dir
            .as_ref()
            .map(|d| dir_size(&d.path))
            .unwrap_or(0);
        let pid = r.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
        proxies.push(json!({
            "path": r.name,
            "recorder_dropped_total": util::metric_sum(&text, "dicomtap_recorder_dropped_total"),
            "recorder_dropped_bytes_total": util::metric_sum(&text, "dicomtap_recorder_dropped_bytes_total"),
            "recorder_written_direct_bytes": util::metric_sum(&text, "dicomtap_recorder_written_bytes_total{io=\"direct\"}"),
            "recorder_written_page_cache_bytes": util::metric_sum(&text, "dicomtap_recorder_written_bytes_total{io=\"page_cache\"}"),
            "analysis_dropped_bytes_total": util::metric_sum(&text, "dicomtap_analysis_dropped_bytes_total"),
            "bytes_total": util::metric_sum(&text, "dicomtap_bytes_total"),
            "dimse_messages_total": util::metric_sum(&text, "dicomtap_dimse_messages_total"),
            "recording_bytes_on_disk": rec_bytes,
            "peak_rss_kib": util::proc_status_kib(pid, "VmHWM"),
        }));
    }
    let order: Vec<&str> = relays.iter().map(|r| r.name.as_str()).collect();
    Ok(json!({
        "reps": ctx.reps,
        "paths": order,
        "pdu_max_length": 16384,
        "scp": "storescp --ignore (single process)",
        "rows": rows,
        "proxies": proxies,
    }))
}

pub fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| if m.is_dir() { 0 } else { m.len() })
                .sum()
        })
        .unwrap_or(0)
}
