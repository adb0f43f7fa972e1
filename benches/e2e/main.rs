//! End-to-end benchmark harness: dicomtap against its peers, every figure a ratio measured
//! in one run. `scripts/bench.sh` (or `cargo bench --bench e2e`) runs it; docs/performance.md
//! explains the method and the results.
//!
//! 1. C-STORE throughput, DCMTK storescu -> storescp (--ignore): direct, socat, HAProxy
//!    (TCP mode), dicomtap without recording, with headers-only and with full recording;
//!    configurations interleaved over the repetitions, medians and ratios.
//! 2. C-ECHO round-trip latency on one open association per path (p50/p99), interleaved.
//! 3. Many simultaneous associations through dicomtap: peak RSS, C-ECHO throughput on all
//!    of them against as many opened directly.
//! 4. `dicomtap analyze` against tshark on a capture of item 1's traffic: wall time and
//!    peak memory.
//! 5. Instructions the proxy executes per C-ECHO round trip and per 64 KiB C-STORE
//!    (callgrind): the figure that noise does not move.
//!
//! Everything listens on 127.0.0.1; every process it starts is ended by its pid when its
//! guard drops; every loop is bounded.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it does nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod analyze;
mod dicom;
mod echo;
mod instructions;
mod many;
mod profile;
mod store;
mod util;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

/// Settings of one run.
pub struct Ctx {
    pub dicomtap: PathBuf,
    /// Scratch directory (logs, haproxy.cfg, perf data), on the same disk as recordings.
    pub work: PathBuf,
    /// Where recordings and the capture go (same disk as `work`).
    pub record_root: PathBuf,
    pub reps: usize,
    pub large: usize,
    pub small: usize,
    pub echo_rounds: usize,
    pub echo_per_round: usize,
    pub associations: usize,
    pub many_echoes: usize,
    pub many_bursts: usize,
    pub analyze_reps: usize,
    pub tshark_reps: usize,
}

impl Ctx {
    pub fn log(&self, name: &str) -> PathBuf {
        self.work.join("logs").join(format!("{name}.log"))
    }
}

const USAGE: &str = "\
dicomtap end-to-end benchmarks (see docs/performance.md)

usage: cargo bench --bench e2e -- [options]      (or scripts/bench.sh [options])
       (run directly, the binary needs --bench among its arguments, as cargo bench passes)

  --quick              small sizes, 2 repetitions (a smoke run of a minute or two)
  --reps N             repetitions of each C-STORE configuration (default 5)
  --large N            16 MiB objects in the large workload (default 20)
  --small N            64 KiB objects in the small workload (default 2000)
  --associations N     simultaneous associations for item 3 (default 1000)
  --sections LIST      comma-separated subset of store,echo,many,analyze,instructions
                       (default all; instructions needs valgrind)
  --profile            also perf-record the proxy and the analyzer (needs perf)
  --out FILE           JSON results (default benches/results/latest.json)
  --keep               keep the scratch directory (capture, recordings, logs)
";

/// What the command line asked for.
struct Opts {
    ctx: Ctx,
    sections: Vec<String>,
    profile: bool,
    out: PathBuf,
    keep: bool,
}

fn parse_args() -> anyhow::Result<Option<Opts>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(None);
    }
    // cargo bench passes --bench; cargo test passes nothing (and this target has
    // test = false anyway): never run the heavy harness from a test run.
    // Test harness flags (`cargo test -- --nocapture`) must not start it either.
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "e2e: nothing to do without --bench (run scripts/bench.sh or cargo bench --bench e2e)"
        );
        return Ok(None);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dicomtap = std::env::var_os("DICOMTAP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dicomtap")));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let work = target.join("bench-e2e");
    let mut ctx = Ctx {
        dicomtap,
        record_root: work.clone(),
        work,
        reps: 5,
        large: 20,
        small: 2000,
        echo_rounds: 20,
        echo_per_round: 250,
        associations: 1000,
        many_echoes: 5,
        many_bursts: 3,
        analyze_reps: 3,
        tshark_reps: 2,
    };
    let mut sections: Vec<String> = ["store", "echo", "many", "analyze", "instructions"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut profile = false;
    let mut keep = false;
    let mut out = root.join("benches/results/latest.json");
    let mut it = args.into_iter();
    let num = |v: Option<String>, flag: &str| -> anyhow::Result<usize> {
        v.ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?
            .parse()
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                ctx.reps = 2;
                ctx.large = 4;
                ctx.small = 200;
                ctx.echo_rounds = 4;
                ctx.echo_per_round = 100;
                ctx.associations = 100;
                ctx.many_bursts = 2;
                ctx.analyze_reps = 1;
                ctx.tshark_reps = 1;
            }
            "--reps" => ctx.reps = num(it.next(), "--reps")?.max(1),
            "--large" => ctx.large = num(it.next(), "--large")?,
            "--small" => ctx.small = num(it.next(), "--small")?,
            "--associations" => ctx.associations = num(it.next(), "--associations")?.max(1),
            "--sections" => {
                sections = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--sections needs a value"))?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
            }
            "--profile" => profile = true,
            "--keep" => keep = true,
            "--out" => {
                out = PathBuf::from(
                    it.next()
                        .ok_or_else(|| anyhow::anyhow!("--out needs a value"))?,
                )
            }
            other => eprintln!("e2e: ignoring argument {other:?}"),
        }
    }
    Ok(Some(Opts {
        ctx,
        sections,
        profile,
        out,
        keep,
    }))
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cmd = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| {
                let s = String::from_utf8_lossy(&o.stdout).to_string();
                let s = if s.trim().is_empty() {
                    String::from_utf8_lossy(&o.stderr).to_string()
                } else {
                    s
                };
                s.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    };
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_total_mib": mem_kib / 1024,
        "kernel": cmd("uname", &["-r"]),
        "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "storescu": cmd("storescu", &["--version"]),
        "socat": cmd("socat", &["-V"]).to_string(),
        "haproxy": cmd("haproxy", &["-v"]),
        "tshark": cmd("tshark", &["--version"]),
        "rustc": cmd("rustc", &["--version"]),
    })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The table of results and the goals, as text.
fn table(results: &Value) -> (String, Vec<Value>) {
    use std::fmt::Write;
    let mut t = String::new();
    let mut goals = Vec::new();
    if let Some(s) = results.get("store") {
        let _ = writeln!(
            t,
            "\n== 1. C-STORE throughput: storescu -> storescp --ignore, median of {} interleaved runs ==",
            s["reps"]
        );
        let _ = writeln!(
            t,
            "{:6} {:30} {:>9} {:>9} {:>9} {:>14}",
            "load", "path", "MB/s", "vs direct", "vs socat*", "relay CPU s/GB"
        );
        for r in s["rows"].as_array().into_iter().flatten() {
            let cpu = r["relay_cpu_s_per_gb"].as_f64();
            let _ = writeln!(
                t,
                "{:6} {:30} {:>9.1} {:>9.3} {:>9.3} {:>14}",
                r["workload"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or(""),
                f(&r["mb_per_s"]),
                f(&r["vs_direct"]),
                f(&r["vs_socat"]),
                cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into())
            );
        }
        let _ = writeln!(
            t,
            "  * socat -b65536 nodelay; relay CPU: user+system of the relay process per GB sent"
        );
        for p in s["proxies"].as_array().into_iter().flatten() {
            let _ = writeln!(
                t,
                "  {}: recorder dropped {} chunks ({} B), analysis dropped {} B, recording {:.0} MB ({:.0} MB direct, {:.0} MB page cache), peak RSS {:.1} MiB",
                p["path"].as_str().unwrap_or(""),
                p["recorder_dropped_total"],
                p["recorder_dropped_bytes_total"],
                p["analysis_dropped_bytes_total"],
                f(&p["recording_bytes_on_disk"]) / 1e6,
                f(&p["recorder_written_direct_bytes"]) / 1e6,
                f(&p["recorder_written_page_cache_bytes"]) / 1e6,
                f(&p["peak_rss_kib"]) / 1024.0
            );
        }
        for full_path in ["dicomtap --payload full", "dicomtap full --backpressure"] {
            let dropped = s["proxies"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["path"] == full_path)
                .map(|p| f(&p["recorder_dropped_total"]))
                .unwrap_or(f64::NAN);
            for socat in ["socat -b65536 nodelay", "socat (defaults)"] {
                for w in ["large", "small"] {
                    let row = |path: &str| {
                        s["rows"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|r| r["workload"] == w && r["path"] == path)
                            .cloned()
                    };
                    if let (Some(full), Some(so)) = (row(full_path), row(socat)) {
                        let ratio = f(&so["median_s"]) / f(&full["median_s"]);
                        goals.push(json!({
                            "goal": format!("{full_path} >= {socat} ({w})"),
                            "measured": format!("{ratio:.3}x, recorder dropped {dropped}"),
                            "pass": ratio >= 1.0 && dropped == 0.0,
                            "primary": socat == "socat -b65536 nodelay" && full_path == "dicomtap --payload full",
                        }));
                    }
                }
            }
        }
    }
    if let Some(e) = results.get("echo") {
        let _ = writeln!(
            t,
            "\n== 2. C-ECHO round trip on one association ({} rounds x {} echoes, interleaved) ==",
            e["rounds"], e["echoes_per_round"]
        );
        let _ = writeln!(
            t,
            "{:26} {:>9} {:>9} {:>9} {:>11} {:>11}",
            "path", "p50 us", "p90 us", "p99 us", "added p50", "added p99"
        );
        for r in e["rows"].as_array().into_iter().flatten() {
            let _ = writeln!(
                t,
                "{:26} {:>9.1} {:>9.1} {:>9.1} {:>11.1} {:>11.1}",
                r["path"].as_str().unwrap_or(""),
                f(&r["p50_us"]),
                f(&r["p90_us"]),
                f(&r["p99_us"]),
                f(&r["added_p50_us"]),
                f(&r["added_p99_us"])
            );
            let path = r["path"].as_str().unwrap_or("");
            if path.starts_with("dicomtap") {
                let added = f(&r["added_p50_us"]);
                goals.push(json!({
                    "goal": format!("added C-ECHO p50 < 50 us ({path})"),
                    "measured": format!("{added:.1} us"),
                    "pass": added < 50.0,
                    "primary": true,
                }));
            }
        }
    }
    if let Some(m) = results.get("many") {
        let n = &m["associations"];
        let _ = writeln!(
            t,
            "\n== 3. {n} simultaneous associations through {} ==",
            m["proxy"].as_str().unwrap_or("")
        );
        let _ = writeln!(
            t,
            "proxy RSS idle {:.1} MiB, {n} open {:.1} MiB ({:.1} KiB each), peak {:.1} MiB; {} fds",
            f(&m["proxy_rss_idle_kib"]) / 1024.0,
            f(&m["proxy_rss_open_kib"]) / 1024.0,
            f(&m["proxy_rss_per_association_kib"]),
            f(&m["proxy_peak_rss_kib"]) / 1024.0,
            m["proxy_fds_open"]
        );
        let _ = writeln!(
            t,
            "open {n}: direct {:.2} s, via dicomtap {:.2} s; C-ECHO on all at once: direct {:.0}/s, via dicomtap {:.0}/s ({:.3}x)",
            f(&m["open_direct_s"]),
            f(&m["open_via_proxy_s"]),
            f(&m["echo_per_s_direct_median"]),
            f(&m["echo_per_s_proxy_median"]),
            f(&m["echo_throughput_vs_direct"])
        );
        let peak = f(&m["proxy_peak_rss_kib"]) / 1024.0;
        goals.push(json!({
            "goal": format!("{n} associations < 150 MiB peak RSS"),
            "measured": format!("{peak:.1} MiB"),
            "pass": peak < 150.0 && m["associations"].as_u64() == Some(1000),
            "primary": true,
        }));
    }
    if let Some(a) = results.get("analyze") {
        let size = f(&a["capture"]["bytes"]) / 1e6;
        let _ = writeln!(t, "\n== 4. analyzer vs tshark on a {size:.0} MB pcapng ==");
        let _ = writeln!(
            t,
            "{:26} {:>9} {:>9} {:>13}",
            "tool", "wall s", "MB/s", "peak RSS MiB"
        );
        let _ = writeln!(
            t,
            "{:26} {:>9.2} {:>9.1} {:>13.1}",
            "dicomtap analyze --json",
            f(&a["analyzer_median_s"]),
            f(&a["analyzer_mb_per_s"]),
            f(&a["analyzer_peak_rss_kib"]) / 1024.0
        );
        let _ = writeln!(
            t,
            "{:26} {:>9.2} {:>9.1} {:>13.1}",
            "tshark -T fields (DICOM)",
            f(&a["tshark_median_s"]),
            f(&a["tshark_mb_per_s"]),
            f(&a["tshark_peak_rss_kib"]) / 1024.0
        );
        let _ = writeln!(
            t,
            "speed-up {:.1}x; analyzer saw {} associations, {} PDUs, {} data sets; tshark {} DICOM PDUs",
            f(&a["speedup_vs_tshark"]),
            a["analyzer_sessions"],
            a["analyzer_pdus"],
            a["analyzer_data_sets"],
            a["tshark_dicom_pdus"]
        );
        let sp = f(&a["speedup_vs_tshark"]);
        let rss = f(&a["analyzer_peak_rss_kib"]) / 1024.0;
        goals.push(json!({
            "goal": "analyzer >= 20x tshark",
            "measured": format!("{sp:.1}x"),
            "pass": sp >= 20.0,
            "primary": true,
        }));
        goals.push(json!({
            "goal": "analyzer peak RSS < 64 MiB",
            "measured": format!("{rss:.1} MiB"),
            "pass": rss < 64.0,
            "primary": true,
        }));
    }
    if let Some(i) = results.get("instructions") {
        let _ = writeln!(
            t,
            "\n== 5. instructions per message in the proxy (callgrind, user space, all threads) =="
        );
        let _ = writeln!(
            t,
            "{:26} {:>18} {:>18}",
            "path", "C-ECHO round trip", "64 KiB C-STORE"
        );
        for r in i["rows"].as_array().into_iter().flatten() {
            let _ = writeln!(
                t,
                "{:26} {:>18.0} {:>18.0}",
                r["path"].as_str().unwrap_or(""),
                f(&r["per_echo_round_trip"]),
                f(&r["per_store_64k"])
            );
        }
    }
    if !goals.is_empty() {
        let _ = writeln!(t, "\n== goals ==");
        for g in &goals {
            let _ = writeln!(
                t,
                "{:4} {:62} {}{}",
                if g["pass"] == true { "PASS" } else { "FAIL" },
                g["goal"].as_str().unwrap_or(""),
                g["measured"].as_str().unwrap_or(""),
                if g["primary"] == true {
                    ""
                } else {
                    "  (reference)"
                }
            );
        }
    }
    (t, goals)
}

fn main() -> anyhow::Result<()> {
    let Some(Opts {
        ctx,
        sections,
        profile,
        out,
        keep,
    }) = parse_args()?
    else {
        return Ok(());
    };
    let started = Instant::now();
    util::install_signal_cleanup()?;
    anyhow::ensure!(
        ctx.dicomtap.exists(),
        "{} not found (build it: cargo build --release)",
        ctx.dicomtap.display()
    );
    for tool in ["storescu", "storescp", "socat"] {
        anyhow::ensure!(
            util::have(tool),
            "{tool} not found: run scripts/install-test-peers.sh"
        );
    }
    let mut work = util::TempDir::new(ctx.work.clone())?;
    work.keep = keep;
    std::fs::create_dir_all(ctx.work.join("logs"))?;
    let want = |s: &str| sections.iter().any(|x| x == s);
    let mut results = serde_json::Map::new();
    results.insert("machine".into(), machine());
    results.insert("dicomtap".into(), json!(ctx.dicomtap));
    results.insert("record_dir".into(), json!(ctx.record_root));

    // Test data on tmpfs so storescu reads from memory.
    let shm = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let data = util::TempDir::new(shm.join(format!("dicomtap-bench-{}", std::process::id())))?;
    let need_data = want("store") || want("analyze") || want("instructions") || profile;
    let workloads = if need_data {
        let t = Instant::now();
        let w = store::generate(&data.path, ctx.large, ctx.small)?;
        eprintln!(
            "e2e: generated {} in {:.1} s",
            w.iter()
                .map(|w| format!(
                    "{} ({} files, {:.0} MB)",
                    w.name,
                    w.files,
                    w.bytes as f64 / 1e6
                ))
                .collect::<Vec<_>>()
                .join(", "),
            t.elapsed().as_secs_f64()
        );
        w
    } else {
        Vec::new()
    };
    results.insert(
        "workloads".into(),
        json!(
            workloads
                .iter()
                .map(|w| json!({"name": w.name, "files": w.files, "bytes": w.bytes}))
                .collect::<Vec<_>>()
        ),
    );

    if want("store") || want("analyze") || want("instructions") || profile {
        let (scp, scp_addr) = store::start_storescp(&ctx, false)?;
        if want("store") {
            results.insert("store".into(), store::run(&ctx, &workloads, scp_addr)?);
        }
        if want("analyze") {
            let (file, cap) = analyze::capture(&ctx, &workloads, scp_addr)?;
            results.insert(
                "analyze".into(),
                analyze::run(&ctx, &file, scp_addr.port(), cap)?,
            );
            if profile {
                let dir = out.parent().unwrap_or(Path::new(".")).to_path_buf();
                std::fs::create_dir_all(&dir)?;
                results.insert(
                    "profile_analyze".into(),
                    profile::analyzer(&ctx, &file, scp_addr.port(), &dir)?,
                );
            }
            let _ = std::fs::remove_file(&file);
        }
        if want("instructions") {
            match workloads.iter().find(|w| w.name == "small") {
                Some(small) if util::have("valgrind") => {
                    results.insert(
                        "instructions".into(),
                        instructions::run(&ctx, small, scp_addr)?,
                    );
                }
                Some(_) => eprintln!("e2e: valgrind not installed, item 5 skipped"),
                None => eprintln!("e2e: no small workload, item 5 skipped"),
            }
        }
        if profile {
            let dir = out.parent().unwrap_or(Path::new(".")).to_path_buf();
            std::fs::create_dir_all(&dir)?;
            let large: Vec<store::Workload> = workloads
                .iter()
                .filter(|w| w.name == "large")
                .cloned()
                .collect();
            results.insert(
                "profile_proxy".into(),
                profile::proxy(&ctx, &large, scp_addr, &dir)?,
            );
        }
        drop(scp);
    }
    drop(data);
    if want("echo") || want("many") {
        let (scp, scp_addr) = store::start_storescp(&ctx, true)?;
        if want("echo") {
            results.insert("echo".into(), echo::run(&ctx, scp_addr)?);
        }
        if want("many") {
            results.insert("many".into(), many::run(&ctx, scp_addr)?);
        }
        drop(scp);
    }

    let mut results = Value::Object(results);
    let (text, goals) = table(&results);
    results["goals"] = json!(goals);
    results["wall_s"] = json!(started.elapsed().as_secs_f64());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("{text}");
    println!(
        "\ne2e: {:.0} s; results in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
