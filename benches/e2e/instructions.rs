//! Item 5: instructions the proxy executes per message, counted by callgrind.
//!
//! Wall times on a shared 2-core machine move by tens of percent; instruction counts do
//! not (the same binary on the same input gives the same count whatever else runs), so
//! this is the figure to compare two versions of the hot path with. The proxy runs under
//! `valgrind --tool=callgrind` twice per message kind with different message counts, on
//! one association; the difference divided by the difference in messages is the cost of
//! one message, start-up and shutdown cancelled out. User-space instructions only, all
//! threads: the kernel's share (socket and file copies) is not in it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Ctx;
use crate::dicom::EchoAssociation;
use crate::store::Workload;
use crate::util::{self, Proc, TempDir};

/// Message counts of the two runs per kind: (C-ECHO, C-STORE).
const ECHOES: [usize; 2] = [200, 1200];
const STORES: [usize; 2] = [100, 400];
/// Fewest files for the two store runs (a quarter of them, then all of them).
const MIN_FILES: usize = 40;

/// Runs item 5 with files of `small` (64 KiB objects) against `scp`.
pub fn run(ctx: &Ctx, small: &Workload, scp: SocketAddr) -> anyhow::Result<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&small.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    anyhow::ensure!(
        files.len() >= MIN_FILES,
        "instructions: the small workload has {} files, {MIN_FILES} needed (--small)",
        files.len(),
    );
    // The full counts when the workload allows, else (--quick: 200 files) a quarter and
    // all of what there is: the per-message figure is the difference of the two runs.
    let store_counts = if files.len() >= STORES[1] {
        STORES
    } else {
        [files.len() / 4, files.len()]
    };
    let mut rows = Vec::new();
    for (name, record) in [
        ("dicomtap (no recording)", false),
        ("dicomtap --payload full", true),
    ] {
        let count = |kind: &str, n: usize| -> anyhow::Result<u64> {
            let rec = if record {
                Some(TempDir::new(
                    ctx.record_root
                        .join(format!("rec-cg-{}", util::free_port()?)),
                )?)
            } else {
                None
            };
            let label = format!("{}-{kind}-{n}", if record { "full" } else { "none" });
            let ir = under_callgrind(
                ctx,
                scp,
                rec.as_ref().map(|d| d.path.as_path()),
                &label,
                |addr| match kind {
                    "echo" => echoes(addr, n),
                    _ => stores(ctx, addr, &files[..n]),
                },
            )?;
            eprintln!("e2e: callgrind {name:26} {n:5} x {kind}: {ir} instructions");
            Ok(ir)
        };
        let e = [count("echo", ECHOES[0])?, count("echo", ECHOES[1])?];
        let s = [
            count("store", store_counts[0])?,
            count("store", store_counts[1])?,
        ];
        let per =
            |ir: [u64; 2], n: [usize; 2]| (ir[1] as f64 - ir[0] as f64) / (n[1] - n[0]) as f64;
        rows.push(json!({
            "path": name,
            "per_echo_round_trip": per(e, ECHOES),
            "per_store_64k": per(s, store_counts),
            "echo_runs": [{"messages": ECHOES[0], "instructions": e[0]}, {"messages": ECHOES[1], "instructions": e[1]}],
            "store_runs": [{"messages": store_counts[0], "instructions": s[0]}, {"messages": store_counts[1], "instructions": s[1]}],
        }));
    }
    Ok(json!({ "tool": "valgrind --tool=callgrind", "rows": rows }))
}

/// Starts the proxy under callgrind in front of `scp`, runs `client` against it, stops
/// the proxy with SIGINT and returns its instruction count.
fn under_callgrind(
    ctx: &Ctx,
    scp: SocketAddr,
    record: Option<&Path>,
    label: &str,
    client: impl FnOnce(SocketAddr) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let out = ctx.work.join(format!("callgrind-{label}.out"));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&ctx.dicomtap)
        .args(["proxy", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(scp.to_string())
        .args(["--metrics", "off", "--drain", "5s"]);
    if let Some(dir) = record {
        cmd.arg("--record").arg(dir).args(["--payload", "full"]);
    }
    let mut proxy = Proc::spawn_piped("dicomtap under callgrind", cmd, &ctx.log("callgrind"))?
        .with_grace(Duration::from_secs(120));
    let line = proxy.wait_line("listening on", Duration::from_secs(120))?;
    let addr: SocketAddr = line
        .split_whitespace()
        .nth(4)
        .ok_or_else(|| anyhow::anyhow!("unexpected line {line:?}"))?
        .parse()?;
    client(addr)?;
    proxy.stop_with("-INT");
    let text = std::fs::read_to_string(&out).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (see {})",
            out.display(),
            ctx.log("callgrind").display()
        )
    })?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{}: no instruction total", out.display()))
}

/// `n` C-ECHOs on one association, each answered with Success.
fn echoes(addr: SocketAddr, n: usize) -> anyhow::Result<()> {
    let mut a = EchoAssociation::open(addr, "STORESCP")?;
    for _ in 0..n {
        let status = a.echo()?;
        anyhow::ensure!(status == Some(0), "C-ECHO status {status:?}");
    }
    a.release()
}

/// `files` stored by one storescu run (one association).
fn stores(ctx: &Ctx, addr: SocketAddr, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut cmd = Command::new("storescu");
    cmd.env("TCP_NODELAY", "1")
        .args(["-aet", "BENCH-SCU", "-aec", "STORESCP", "-nh"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .args(files);
    let (_, ok) = util::run_timed(
        cmd,
        Duration::from_secs(600),
        &ctx.log("storescu-callgrind"),
    )?;
    anyhow::ensure!(ok, "storescu through the proxy under callgrind failed");
    Ok(())
}
