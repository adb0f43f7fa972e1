//! `dicomtap monitor`: passive monitoring. Reads a capture stream continuously (standard
//! input from `tcpdump -U -w -`, or a growing capture file) and serves the same
//! Prometheus metrics as the proxy, so a SPAN port gets the same dashboards.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::{
    CaptureConfig, CaptureReader, ConnId, ConnectionInfo, DEFAULT_SERVER_PORTS,
};
use dicomtap_analyzer::session::{Outcome, Session};
use dicomtap_proxy::metrics::{AssociationObserver, Metrics};
use dicomtap_wire::{EngineConfig, Event, EventKind, Side};

#[derive(clap::Args)]
pub struct Args {
    /// Capture to read: `-` for standard input (`tcpdump -U -w - port 104 | dicomtap monitor -`),
    /// or a pcap/pcapng file that another program is still writing (followed like `tail -f`).
    input: PathBuf,
    /// Where to serve /metrics and /healthz.
    #[arg(long, default_value = "127.0.0.1:9465")]
    metrics: SocketAddr,
    #[command(flatten)]
    metrics_tls: super::proxy::MetricsTlsArgs,
    /// Stop at the end of the file instead of waiting for more (for a finished capture).
    #[arg(long)]
    no_follow: bool,
    /// A DICOM server port, to tell client from server when the handshake was not seen and
    /// to count TLS connections to it as DICOM over TLS (repeatable).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Exit when the input ends instead of serving the final figures until interrupted.
    #[arg(long)]
    exit_when_done: bool,
    /// Distinct AE titles used as metric labels before further ones count as `other`.
    #[arg(long, default_value_t = 50)]
    ae_title_cap: usize,
    /// Site name: a label on every metric, part of every fleet event (docs/fleet.md).
    #[arg(long, value_name = "NAME")]
    site: Option<String>,
    /// Instance name within the site (default: the host name).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// Publish events to the fleet bus, NATS JetStream at this URL (needs --site and
    /// --fleet-spool).
    #[arg(long, value_name = "URL", requires_all = ["site", "fleet_spool"])]
    fleet_nats: Option<String>,
    /// Spool directory for fleet events while the bus is unreachable.
    #[arg(long, value_name = "DIR", requires = "fleet_nats")]
    fleet_spool: Option<PathBuf>,
    #[command(flatten)]
    bus: super::fleet::BusArgs,
    /// The input is the first of the files `tcpdump -C` or `-G` writes: at its end, go on
    /// with the next one written in the same directory (names starting like the input's,
    /// without its extension and trailing digits), in the order they were written.
    #[arg(long)]
    rotated: bool,
}

/// Feeds every engine event to the per-association metric observer.
struct MetricsSink {
    metrics: Arc<Metrics>,
    observers: HashMap<ConnId, AssociationObserver>,
    /// Fleet events (with --fleet-nats).
    fleet: Option<FleetSink>,
    /// An association PDU (RQ or AC, whose length the events do not carry) whose size is
    /// known when the next PDU or the end of that direction comes: (type, start offset).
    pending_pdu: HashMap<(ConnId, Side), (u8, u64)>,
}

struct FleetSink {
    digest: dicomtap_fleet::digest::Digest,
    sender: dicomtap_fleet::EventSender,
    out: Vec<(u64, dicomtap_fleet::Body)>,
    last_ts_us: u64,
}

impl MetricsSink {
    /// PDU sizes for every PDU type, as the proxy counts them.
    fn count_pdu(&mut self, conn: ConnId, event: &Event) {
        let pdu = match &event.kind {
            EventKind::AssociateRq(_) => Some((0x01, None)),
            EventKind::AssociateAc(_) => Some((0x02, None)),
            EventKind::AssociateRj(_) => Some((0x03, Some(10))),
            EventKind::PData(p) => Some((0x04, Some(u64::from(p.pdu_length) + 6))),
            EventKind::ReleaseRq => Some((0x05, Some(10))),
            EventKind::ReleaseRp => Some((0x06, Some(10))),
            EventKind::Abort(_) => Some((0x07, Some(10))),
            EventKind::UnknownPdu { .. } | EventKind::StreamEnd { .. } => Some((0, None)),
            _ => None,
        };
        let Some((t, len)) = pdu else {
            return;
        };
        let key = (conn, event.from);
        if let Some((pt, start)) = self.pending_pdu.remove(&key)
            && event.offset > start
        {
            self.metrics.observe_pdu(pt, event.offset - start);
        }
        match len {
            Some(n) => self.metrics.observe_pdu(t, n),
            None if t != 0 => {
                self.pending_pdu.insert(key, (t, event.offset));
            }
            None => {}
        }
    }
}

impl AnalysisSink for MetricsSink {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        if let Some(f) = self.fleet.as_mut() {
            f.last_ts_us = f.last_ts_us.max(event.ts_us);
            f.digest.wire(
                conn.id.0,
                Some(conn.client),
                Some(conn.server),
                event,
                &mut f.out,
            );
            for (ts, body) in f.out.drain(..) {
                f.sender.send(ts, body);
            }
        }
        let obs = self.observers.entry(conn.id).or_insert_with(|| {
            self.metrics.associations_active.inc();
            AssociationObserver::new(self.metrics.clone())
        });
        obs.observe(event);
        self.count_pdu(conn.id, event);
    }

    fn session(&mut self, conn: &ConnectionInfo, session: Session) {
        for side in [Side::Requestor, Side::Acceptor] {
            self.pending_pdu.remove(&(conn.id, side));
        }
        let mut obs = match self.observers.remove(&conn.id) {
            Some(o) => {
                self.metrics.associations_active.dec();
                o
            }
            None => AssociationObserver::new(self.metrics.clone()),
        };
        if let Outcome::NoAnswer = session.outcome {
            obs.outcome("no_response");
        }
        if let Some(f) = self.fleet.as_mut() {
            let (req, acc) = (session.requestor.bytes, session.acceptor.bytes);
            f.digest.end(conn.id.0, f.last_ts_us, req, acc, &mut f.out);
            for (ts, body) in f.out.drain(..) {
                f.sender.send(ts, body);
            }
        }
        for (side, label) in [
            (&session.requestor, "to_upstream"),
            (&session.acceptor, "to_client"),
        ] {
            self.metrics
                .bytes_total
                .with_label_values(&[label])
                .inc_by(side.bytes);
        }
    }
}

/// A reader that waits for more bytes at the end of a file still being written; with
/// `rotation`, it ends the file instead once a newer file of the rotation exists.
struct Follow {
    file: std::fs::File,
    stop: Arc<AtomicBool>,
    rotation: Option<Rotation>,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || self.stop.load(Ordering::Relaxed) {
                return Ok(n);
            }
            if let Some(r) = &self.rotation
                && r.next().is_some()
            {
                // tcpdump opened the next file: this one is complete. (A last read
                // catches what it wrote just before.)
                return self.file.read(buf);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The files of a `tcpdump -C` / `-G` rotation: the directory, the common start of their
/// names, and those already read.
#[derive(Clone)]
struct Rotation {
    dir: PathBuf,
    stem: String,
    done: Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

impl Rotation {
    fn new(first: &std::path::Path) -> Rotation {
        let dir = first
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let name = first
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string();
        Rotation {
            dir,
            stem,
            done: Arc::new(std::sync::Mutex::new(vec![first.to_path_buf()])),
        }
    }

    /// The oldest file of the rotation not read yet.
    fn next(&self) -> Option<PathBuf> {
        let done = self.done.lock().ok()?;
        let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .take(100_000)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&self.stem))
            .map(|e| e.path())
            .filter(|p| p.is_file() && !done.contains(p))
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        candidates.sort();
        candidates.into_iter().next().map(|(_, p)| p)
    }

    fn mark(&self, p: &std::path::Path) {
        if let Ok(mut d) = self.done.lock() {
            d.push(p.to_path_buf());
        }
    }
}

/// Follows a growing file and, with `rotation`, the files written after it, through one
/// reassembler (an association spanning two files stays one association).
fn follow_files(
    name: &str,
    first: Follow,
    config: CaptureConfig,
    rotation: Option<Rotation>,
    stop: &Arc<AtomicBool>,
    analysis: &mut Analysis<MetricsSink>,
    health: &mut dicomtap_proxy::metrics::CaptureHealth,
) -> Result<dicomtap_analyzer::capture::CaptureStats, dicomtap_analyzer::capture::CaptureError> {
    let mut reader = CaptureReader::new(name.to_string(), first)?.with_config(config);
    // One reassembler for all the files: its statistics are cumulative over them.
    loop {
        reader.process_observed(analysis, false, |st, ts| health.update(st, ts))?;
        let Some(r) = &rotation else {
            return Ok(reader.finish(analysis));
        };
        if stop.load(Ordering::Relaxed) {
            return Ok(reader.finish(analysis));
        }
        let Some(next) = r.next() else {
            return Ok(reader.finish(analysis));
        };
        r.mark(&next);
        let file = std::fs::File::open(&next).map_err(|source| {
            dicomtap_analyzer::capture::CaptureError::Open {
                file: next.display().to_string(),
                source,
            }
        })?;
        say_err!("{name}: continuing with {}", next.display());
        reader.switch_input(
            next.display().to_string(),
            Follow {
                file,
                stop: stop.clone(),
                rotation: rotation.clone(),
            },
        )?;
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let identity = dicomtap_proxy::config::IdentityConfig {
        site: args.site.clone(),
        instance: args.instance.clone(),
    };
    if identity.site.is_some() {
        super::fleet::identity(&identity)?;
    }
    let metrics = Arc::new(
        Metrics::with_labels(args.ae_title_cap, &identity.labels())
            .context("setting up metrics")?,
    );
    // Nothing a passive monitor cannot move: no recorder, upstream or TLS metrics; the
    // counters with known label values exist at zero from the start.
    metrics.passive().context("setting up metrics")?;
    metrics.zero_known_series();
    let tls = args.metrics_tls.load()?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let publishing = match (&args.fleet_nats, &args.fleet_spool) {
        (Some(nats), Some(spool)) => {
            let _guard = rt.enter();
            Some(super::fleet::start_for_monitor(
                nats, spool, &args.bus, &identity, &metrics,
            )?)
        }
        _ => None,
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(args.metrics))
        .with_context(|| format!("{}: cannot listen for metrics", args.metrics))?;
    let bound = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheme = dicomtap_proxy::metrics::http::scheme(tls.is_some());
    let guard = dicomtap_proxy::metrics::Guard { token: None, tls };
    let server = rt.spawn(dicomtap_proxy::metrics::serve_guarded(
        listener,
        metrics.clone(),
        stop_rx,
        guard,
    ));
    say!("metrics: {scheme}://{bound}/metrics");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let mut ports: Vec<u16> = DEFAULT_SERVER_PORTS.to_vec();
    ports.extend(&args.ports);
    let config = CaptureConfig {
        server_ports: ports.clone(),
        ..CaptureConfig::default()
    };
    let sink = MetricsSink {
        metrics: metrics.clone(),
        observers: HashMap::new(),
        fleet: publishing.as_ref().map(|(p, _)| FleetSink {
            digest: dicomtap_fleet::digest::Digest::new(),
            sender: p.sender(),
            out: Vec::new(),
            last_ts_us: 0,
        }),
        pending_pdu: HashMap::new(),
    };
    let mut analysis = Analysis::new(
        EngineConfig {
            emit_pdata: true,
            // Storage Commitment data sets, for the fleet's commitment events.
            emit_data: publishing.is_some(),
            ..EngineConfig::default()
        },
        sink,
    )
    // TLS on a --port is DICOM over TLS (its bytes are counted), as in `analyze`.
    .with_server_ports(ports);
    let name = args.input.display().to_string();
    let mut health = metrics
        .capture_health(if name == "-" { "stdin" } else { &name })
        .context("setting up metrics")?;
    let result = if name == "-" {
        CaptureReader::new("standard input", std::io::stdin().lock())
            .map(|r| r.with_config(config))
            .and_then(|mut r| {
                r.process_observed(&mut analysis, true, |st, ts| health.update(st, ts))
            })
    } else {
        let file =
            std::fs::File::open(&args.input).with_context(|| format!("{name}: cannot open"))?;
        if args.no_follow {
            CaptureReader::new(name.clone(), file)
                .map(|r| r.with_config(config))
                .and_then(|mut r| {
                    r.process_observed(&mut analysis, true, |st, ts| health.update(st, ts))
                })
        } else {
            let rotation = args.rotated.then(|| Rotation::new(&args.input));
            let follow = Follow {
                file,
                stop: stop.clone(),
                rotation: rotation.clone(),
            };
            follow_files(
                &name,
                follow,
                config,
                rotation,
                &stop,
                &mut analysis,
                &mut health,
            )
        }
    };
    let code = match result {
        Ok(stats) => {
            say_err!(
                "{name}: {} packets, {} TCP connections",
                stats.packets,
                stats.connections
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.is_truncation() => {
            say_err!("dicomtap: {e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            say_err!("dicomtap: {e}");
            ExitCode::from(super::EXIT_USAGE)
        }
    };
    if !args.exit_when_done {
        // Keep serving the final figures until interrupted, so a scrape can read them.
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(analysis);
    if let Some((p, health)) = publishing {
        health.abort();
        let left = rt.block_on(p.close(Duration::from_secs(5)));
        if left > 0 {
            say_err!("dicomtap: {left} fleet events left in the spool for the next start");
        }
    }
    let _ = stop_tx.send(true);
    let _ = rt.block_on(server);
    Ok(code)
}
