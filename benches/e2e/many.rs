//! Item 3: many simultaneous associations through dicomtap: the proxy's memory, and C-ECHO
//! throughput on all of them at once, against the same number opened directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::Ctx;
use crate::dicom;
use crate::store;
use crate::util;

const OP_TIMEOUT: Duration = Duration::from_secs(60);

async fn read_pdu(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u8> {
    buf.resize(6, 0);
    s.read_exact(&mut buf[..6]).await?;
    let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
    anyhow::ensure!(len <= 1 << 20, "PDU of {len} bytes");
    buf.resize(6 + len, 0);
    s.read_exact(&mut buf[6..]).await?;
    Ok(buf[0])
}

async fn open(addr: SocketAddr, rq: Arc<Vec<u8>>) -> anyhow::Result<TcpStream> {
    let mut s = timeout(OP_TIMEOUT, TcpStream::connect(addr)).await??;
    s.set_nodelay(true)?;
    s.write_all(&rq).await?;
    let mut buf = Vec::new();
    let t = timeout(OP_TIMEOUT, read_pdu(&mut s, &mut buf)).await??;
    anyhow::ensure!(t == 0x02, "expected A-ASSOCIATE-AC, got PDU type {t:#04x}");
    Ok(s)
}

/// Opens `n` associations, at most `parallel` handshakes at a time. Returns the streams
/// and the wall time.
async fn open_all(
    addr: SocketAddr,
    n: usize,
    parallel: usize,
) -> anyhow::Result<(Vec<TcpStream>, f64)> {
    let rq = Arc::new(dicom::echo_associate_rq("BENCH-SCU", "STORESCP"));
    let sem = Arc::new(Semaphore::new(parallel));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let sem = sem.clone();
        let rq = rq.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            open(addr, rq).await
        }));
    }
    let mut streams = Vec::with_capacity(n);
    let mut errors = 0usize;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    anyhow::ensure!(
        errors == 0,
        "{errors} of {n} associations to {addr} failed, first: {}",
        first_error.unwrap_or_default()
    );
    Ok((streams, started.elapsed().as_secs_f64()))
}

/// Every association sends `per_assoc` C-ECHO-RQ in sequence, all associations at once.
/// Returns (streams back, echoes per second).
async fn echo_burst(
    streams: Vec<TcpStream>,
    per_assoc: usize,
) -> anyhow::Result<(Vec<TcpStream>, f64)> {
    let n = streams.len();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for mut s in streams {
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(256);
            for i in 0..per_assoc {
                let rq = dicom::echo_pdata(i as u16 + 1)?;
                s.write_all(&rq).await?;
                let t = timeout(OP_TIMEOUT, read_pdu(&mut s, &mut buf)).await??;
                anyhow::ensure!(t == 0x04, "expected P-DATA-TF, got {t:#04x}");
                anyhow::ensure!(
                    dicom::echo_rsp_status(&buf) == Some(0),
                    "C-ECHO-RSP not Success"
                );
            }
            Ok::<_, anyhow::Error>(s)
        }));
    }
    let mut back = Vec::with_capacity(n);
    for t in tasks {
        back.push(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((back, (n * per_assoc) as f64 / secs))
}

async fn release_all(streams: Vec<TcpStream>) -> usize {
    let mut tasks = Vec::new();
    for mut s in streams {
        tasks.push(tokio::spawn(async move {
            s.write_all(&dicom::RELEASE_RQ).await?;
            let mut buf = Vec::new();
            let t = timeout(OP_TIMEOUT, read_pdu(&mut s, &mut buf)).await??;
            anyhow::ensure!(t == 0x06, "expected A-RELEASE-RP, got {t:#04x}");
            Ok::<_, anyhow::Error>(())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(Ok(()))) {
            ok += 1;
        }
    }
    ok
}

pub fn run(ctx: &Ctx, scp: SocketAddr) -> anyhow::Result<Value> {
    let n = ctx.associations;
    let limit = util::nofile_limit().unwrap_or(0);
    // The harness holds 2n client sockets; the proxy (which inherits the limit) 2n + files.
    anyhow::ensure!(
        limit >= (2 * n as u64 + 256),
        "open-files limit {limit} is too low for {n} associations through the proxy: run `ulimit -n 65536` first (scripts/bench.sh does)"
    );
    let max = (n + 64).to_string();
    // All of them come from 127.0.0.1: no per-source limit here.
    let proxy = store::start_dicomtap(
        ctx,
        scp,
        Some("full"),
        &[
            "--max-associations",
            &max,
            "--max-associations-per-source",
            "0",
        ],
    )?;
    let pid = proxy.proc.as_ref().map(|p| p.pid()).unwrap_or(0);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let per_assoc = ctx.many_echoes;
    let bursts = ctx.many_bursts;
    rt.block_on(async {
        // Warm-up and baseline: one association through the proxy, then idle.
        let (w, _) = open_all(proxy.addr, 1, 1).await?;
        let (w, _) = echo_burst(w, 10).await?;
        release_all(w).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_idle = util::proc_status_kib(pid, "VmRSS").unwrap_or(0);

        let (direct, open_direct_s) = open_all(scp, n, 32).await?;
        eprintln!("e2e: many: {n} direct associations open in {open_direct_s:.2} s");
        let (proxied, open_proxy_s) = open_all(proxy.addr, n, 32).await?;
        eprintln!("e2e: many: {n} associations through dicomtap open in {open_proxy_s:.2} s");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_open = util::proc_status_kib(pid, "VmRSS").unwrap_or(0);
        let fds_open = util::proc_fds(pid).unwrap_or(0);
        let active = proxy
            .metrics
            .and_then(|m| util::http_get(m, "/metrics").ok())
            .map(|t| util::metric_sum(&t, "dicomtap_associations_active"))
            .unwrap_or(f64::NAN);

        let mut direct_rates = Vec::new();
        let mut proxy_rates = Vec::new();
        let mut d = direct;
        let mut p = proxied;
        for b in 0..bursts {
            // Alternate which path goes first.
            let order = if b % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                if which == 0 {
                    let (back, rate) = echo_burst(d, per_assoc).await?;
                    d = back;
                    direct_rates.push(rate);
                } else {
                    let (back, rate) = echo_burst(p, per_assoc).await?;
                    p = back;
                    proxy_rates.push(rate);
                }
            }
        }
        let rss_after = util::proc_status_kib(pid, "VmRSS").unwrap_or(0);
        let hwm = util::proc_status_kib(pid, "VmHWM").unwrap_or(0);
        let released_direct = release_all(d).await;
        let released_proxy = release_all(p).await;
        let dm = util::median(&direct_rates);
        let pm = util::median(&proxy_rates);
        eprintln!(
            "e2e: many: proxy RSS idle {} KiB, {n} open {} KiB, peak {} KiB; echo/s direct {dm:.0} via dicomtap {pm:.0}",
            rss_idle, rss_open, hwm
        );
        Ok::<_, anyhow::Error>(json!({
            "associations": n,
            "proxy": proxy.name,
            "scp": "storescp --fork",
            "open_files_limit": limit,
            "open_direct_s": open_direct_s,
            "open_via_proxy_s": open_proxy_s,
            "proxy_associations_active": active,
            "proxy_fds_open": fds_open,
            "proxy_rss_idle_kib": rss_idle,
            "proxy_rss_open_kib": rss_open,
            "proxy_rss_after_echo_kib": rss_after,
            "proxy_peak_rss_kib": hwm,
            "proxy_rss_per_association_kib": (rss_open.saturating_sub(rss_idle)) as f64 / n as f64,
            "echoes_per_association_per_burst": per_assoc,
            "bursts": bursts,
            "echo_per_s_direct": direct_rates,
            "echo_per_s_proxy": proxy_rates,
            "echo_per_s_direct_median": dm,
            "echo_per_s_proxy_median": pm,
            "echo_throughput_vs_direct": pm / dm,
            "released_direct": released_direct,
            "released_proxy": released_proxy,
        }))
    })
}
