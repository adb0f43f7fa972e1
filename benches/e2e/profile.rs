//! Optional (`--profile`): where the time goes. `perf record` on the proxy while it carries
//! the large workload with full recording, and on `dicomtap analyze` over the capture; the
//! flat reports (by shared object and symbol) are written beside the JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Ctx;
use crate::store::{self, Workload};
use crate::util::{self, Proc};

/// Two flat views: by thread and shared object (which part of the process), then by
/// shared object and symbol.
fn report(data: &Path, out: &Path) -> anyhow::Result<()> {
    let mut text = Vec::new();
    for (sort, limit) in [("comm,dso", "0.5"), ("dso,sym", "0.7")] {
        let o = Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", sort])
            .args(["--percent-limit", limit, "-i"])
            .arg(data)
            .stderr(Stdio::null())
            .output()?;
        text.extend_from_slice(&o.stdout);
    }
    std::fs::write(out, &text)?;
    Ok(())
}

pub fn proxy(
    ctx: &Ctx,
    workloads: &[Workload],
    scp: SocketAddr,
    out_dir: &Path,
) -> anyhow::Result<Value> {
    let mut result = serde_json::Map::new();
    for payload in ["full", "none-recording"] {
        let relay = if payload == "full" {
            store::start_dicomtap(ctx, scp, Some("full"), &[])?
        } else {
            store::start_dicomtap(ctx, scp, None, &[])?
        };
        let pid = relay.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
        let data = ctx.work.join(format!("perf-proxy-{payload}.data"));
        let mut cmd = Command::new("perf");
        cmd.args(["record", "-F", "1999", "-p", &pid.to_string(), "-o"])
            .arg(&data);
        let mut perf = Proc::spawn("perf record", cmd, &ctx.log("perf"), false)?;
        std::thread::sleep(Duration::from_millis(500));
        let mut secs = 0.0;
        for w in workloads {
            secs += store::send(ctx, relay.addr, w)?;
        }
        perf.stop_with("-INT");
        drop(perf);
        let txt: PathBuf = out_dir.join(format!("profile-proxy-{payload}.txt"));
        report(&data, &txt)?;
        let _ = std::fs::remove_file(&data);
        result.insert(
            payload.to_string(),
            json!({ "report": txt, "send_s": secs }),
        );
        drop(relay);
    }
    Ok(Value::Object(result))
}

pub fn analyzer(ctx: &Ctx, capture: &Path, port: u16, out_dir: &Path) -> anyhow::Result<Value> {
    let data = ctx.work.join("perf-analyze.data");
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", "1999", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&ctx.dicomtap)
        .arg("analyze")
        .arg(capture)
        .args(["--json", "--port", &port.to_string()]);
    cmd.stdout(Stdio::null());
    let (secs, _) = util::run_timed(cmd, Duration::from_secs(600), &ctx.log("perf"))?;
    let txt = out_dir.join("profile-analyze.txt");
    report(&data, &txt)?;
    let _ = std::fs::remove_file(&data);
    Ok(json!({ "report": txt, "wall_s_under_perf": secs }))
}
