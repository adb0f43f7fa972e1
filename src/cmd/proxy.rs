//! `dicomtap proxy`: the live transparent proxy. Flags override the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dicomtap_proxy::config::{
    ListenerConfig, PayloadMode, ProxyConfig, RecordingConfig, Route, parse_duration,
    parse_optional_addr,
};
use dicomtap_proxy::server::RunningProxy;
use dicomtap_proxy::tls::{ClientAuth, ListenerTls, ServerTlsConfig};

#[derive(clap::Args)]
#[command(
    about = "Run the transparent proxy: forward byte-exact, record, export metrics",
    long_about = "Listens for DICOM associations and forwards every byte unchanged to the \
upstream (or, with --route, to the upstream chosen by the called AE title), while decoding \
a copy: events go to the JSON-lines log, metrics to /metrics, the traffic to pcapng.\n\n\
Stops on SIGTERM or Ctrl-C: stops accepting, lets open associations finish for up to \
--drain, then flushes the recording.\n\nExample:\n  dicomtap proxy --listen 0.0.0.0:11112 \
--upstream pacs.example:104 --record /var/lib/dicomtap --payload headers"
)]
pub struct Args {
    /// TOML configuration file (see docs/proxy.md); flags below override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (replaces the listeners of the file), e.g. 0.0.0.0:11112.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Default upstream, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    upstream: Option<String>,
    /// Route a called AE title to its own upstream, AE=HOST:PORT (repeatable).
    #[arg(long, value_name = "AE=HOST:PORT")]
    route: Vec<String>,
    /// Interception mode: forward each connection to its original destination
    /// (firewall REDIRECT; see docs/interception.md).
    #[arg(long)]
    transparent: bool,
    /// Record into this directory (pcapng + JSON-lines event log).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Directory of device statements (TOML): evaluate the conformance rules live, write
    /// findings to the event log and export dicomtap_conformance_findings_total.
    #[arg(long, value_name = "DIR")]
    statements: Option<PathBuf>,
    /// What the capture keeps: full, headers (no pixel data) or none (event log only).
    #[arg(long, value_name = "MODE")]
    payload: Option<PayloadMode>,
    /// Record both legs (client-proxy and proxy-upstream) separately.
    #[arg(long)]
    both_legs: bool,
    /// Slow forwarding down rather than drop recording data when the disk lags.
    #[arg(long)]
    backpressure: bool,
    /// How long forwarding may wait for room in the recorder's queue, per chunk, before
    /// the chunk is dropped from the recording and counted, e.g. 250ms (0: never wait).
    #[arg(long, value_name = "DURATION")]
    record_wait: Option<String>,
    /// Write the capture with direct I/O (O_DIRECT) instead of through the page cache.
    #[arg(long)]
    direct_io: bool,
    /// Rotate the recording at this many bytes.
    #[arg(long, value_name = "BYTES")]
    rotate_bytes: Option<u64>,
    /// Rotate the recording after this long, e.g. 1h.
    #[arg(long, value_name = "DURATION")]
    rotate_every: Option<String>,
    /// Keep at most this many recording file pairs (0: all).
    #[arg(long, value_name = "N")]
    keep_files: Option<usize>,
    /// Metrics endpoint address, or "off" (default 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR|off")]
    metrics: Option<String>,
    #[command(flatten)]
    metrics_tls: MetricsTlsArgs,
    /// Cap on concurrent associations.
    #[arg(long, value_name = "N")]
    max_associations: Option<usize>,
    /// Upstream connect timeout, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    connect_timeout: Option<String>,
    /// Close associations idle this long, e.g. 10m (0: never; default 15m).
    #[arg(long, value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// The client's A-ASSOCIATE-RQ must have arrived whole this long after the
    /// connection was accepted, else it is closed (PS3.8 ARTIM; default 30s).
    #[arg(long, value_name = "DURATION")]
    associate_rq_timeout: Option<String>,
    /// Cap on concurrent associations from one source address (0: none; default half
    /// of --max-associations).
    #[arg(long, value_name = "N")]
    max_associations_per_source: Option<usize>,
    /// How long open associations may finish at shutdown.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    drain: String,
    /// Site name: a label on every metric, part of every fleet event (docs/fleet.md).
    #[arg(long, value_name = "NAME")]
    site: Option<String>,
    /// Instance name within the site (default: the host name).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// Publish events to the fleet bus, NATS JetStream at this URL (needs --site and
    /// --fleet-spool, or [fleet] in the file).
    #[arg(long, value_name = "URL")]
    fleet_nats: Option<String>,
    /// Spool directory for fleet events while the bus is unreachable.
    #[arg(long, value_name = "DIR")]
    fleet_spool: Option<PathBuf>,
    #[command(flatten)]
    bus: super::fleet::BusArgs,
}

/// TLS for the metrics endpoint from the command line: the same flags on `dicomtap
/// proxy`, `monitor` and `fleet` (docs/tls.md). The paths are boxed to keep the
/// subcommands' arguments small.
#[derive(clap::Args)]
pub struct MetricsTlsArgs {
    /// Serve /metrics and /healthz over HTTPS only, with this certificate chain (PEM,
    /// leaf first; with --metrics-tls-key).
    #[arg(long, value_name = "FILE", value_parser = boxed_path())]
    metrics_tls_cert: Option<Box<PathBuf>>,
    /// The private key of --metrics-tls-cert (PEM).
    #[arg(long, value_name = "FILE", value_parser = boxed_path())]
    metrics_tls_key: Option<Box<PathBuf>>,
    /// Require scrapers to present a client certificate signed by a CA of this file (PEM).
    #[arg(long, value_name = "FILE", value_parser = boxed_path())]
    metrics_tls_client_ca: Option<Box<PathBuf>>,
}

fn boxed_path() -> impl clap::builder::TypedValueParser<Value = Box<PathBuf>> {
    use clap::builder::TypedValueParser;
    clap::builder::PathBufValueParser::new().map(Box::new)
}

impl MetricsTlsArgs {
    /// Applies the flags to `table` (`[metrics_tls]` of the file, if any): they replace
    /// its files, a client CA requires client certificates, the rest of the table stays.
    pub fn apply(&self, table: &mut Option<ServerTlsConfig>) -> anyhow::Result<()> {
        let flags = [
            &self.metrics_tls_cert,
            &self.metrics_tls_key,
            &self.metrics_tls_client_ca,
        ];
        if flags.iter().all(|f| f.is_none()) {
            return Ok(());
        }
        let base = table.take();
        let cert = self.metrics_tls_cert.as_deref().cloned();
        let key = self.metrics_tls_key.as_deref().cloned();
        let client_ca = self.metrics_tls_client_ca.as_deref().cloned();
        *table = Some(match base {
            Some(b) => ServerTlsConfig {
                cert: cert.unwrap_or(b.cert),
                key: key.unwrap_or(b.key),
                client_auth: match client_ca {
                    Some(_) => ClientAuth::Required,
                    None => b.client_auth,
                },
                client_ca: client_ca.or(b.client_ca),
                ..b
            },
            None => {
                let (Some(cert), Some(key)) = (cert, key) else {
                    bail!("--metrics-tls-cert and --metrics-tls-key go together");
                };
                ServerTlsConfig::new(cert, key, client_ca).map_err(anyhow::Error::msg)?
            }
        });
        Ok(())
    }

    /// The endpoint's TLS for `dicomtap monitor` and `dicomtap fleet`, which have no
    /// configuration file: its files are read now (an unusable one is named in the error).
    pub fn load(&self) -> anyhow::Result<Option<Arc<ListenerTls>>> {
        let mut table = None;
        self.apply(&mut table)?;
        match table {
            Some(c) => match ListenerTls::metrics(&c) {
                Ok(t) => Ok(Some(Arc::new(t))),
                Err(e) => bail!("TLS: {e}"),
            },
            None => Ok(None),
        }
    }
}

fn build_config(args: &Args) -> anyhow::Result<ProxyConfig> {
    let mut config = match &args.config {
        Some(path) => ProxyConfig::from_toml_file(path)?,
        None => ProxyConfig::default(),
    };
    let mut routes = Vec::new();
    for r in &args.route {
        let Some((ae, up)) = r.split_once('=') else {
            bail!("--route {r:?}: expected AE=HOST:PORT");
        };
        routes.push(Route {
            called_ae: ae.trim().to_string(),
            upstream: up.trim().to_string(),
        });
    }
    if let Some(listen) = args.listen {
        config.listeners = vec![ListenerConfig {
            name: None,
            listen,
            upstream: args.upstream.clone(),
            routes,
            transparent: args.transparent,
            tls: None,
            upstream_tls: None,
            access: None,
        }];
    } else {
        if args.upstream.is_some() || !routes.is_empty() || args.transparent {
            let [only] = config.listeners.as_mut_slice() else {
                bail!(
                    "--upstream/--route/--transparent without --listen need exactly one listener in the file"
                );
            };
            if let Some(u) = &args.upstream {
                only.upstream = Some(u.clone());
            }
            if !routes.is_empty() {
                only.routes = routes;
            }
            only.transparent |= args.transparent;
        }
    }
    if let Some(dir) = &args.statements {
        config.statements = Some(dir.clone());
    }
    if let Some(dir) = &args.record {
        let rc = config
            .recording
            .get_or_insert_with(|| RecordingConfig::new(dir.clone()));
        rc.dir = dir.clone();
    }
    if let Some(rc) = config.recording.as_mut() {
        if let Some(p) = args.payload {
            rc.payload = p;
        }
        rc.both_legs |= args.both_legs;
        rc.backpressure |= args.backpressure;
        if let Some(w) = &args.record_wait {
            rc.record_wait_ms = parse_duration(w).map_err(anyhow::Error::msg)?.as_millis() as u64;
        }
        rc.direct_io |= args.direct_io;
        if let Some(b) = args.rotate_bytes {
            rc.rotate_bytes = b;
        }
        if let Some(d) = &args.rotate_every {
            let every = parse_duration(d).map_err(anyhow::Error::msg)?;
            if every > Duration::ZERO && every < Duration::from_secs(1) {
                bail!("--rotate-every {d}: at least 1s (0 turns rotation by age off)");
            }
            rc.rotate_seconds = every.as_secs();
        }
        if let Some(k) = args.keep_files {
            rc.keep_files = k;
        }
    } else if args.payload.is_some()
        || args.both_legs
        || args.backpressure
        || args.record_wait.is_some()
        || args.direct_io
        || args.rotate_bytes.is_some()
        || args.rotate_every.is_some()
        || args.keep_files.is_some()
    {
        bail!(
            "--payload, --both-legs, --backpressure, --record-wait, --direct-io, --rotate-bytes, \
             --rotate-every and --keep-files need --record DIR"
        );
    }
    if let Some(m) = &args.metrics {
        config.metrics_listen = parse_optional_addr(m).map_err(anyhow::Error::msg)?;
    }
    args.metrics_tls.apply(&mut config.metrics_tls)?;
    if let Some(n) = args.max_associations {
        config.limits.max_associations = n;
    }
    if let Some(d) = &args.connect_timeout {
        config.limits.connect_timeout = parse_duration(d).map_err(anyhow::Error::msg)?;
    }
    if let Some(d) = &args.idle_timeout {
        let d = parse_duration(d).map_err(anyhow::Error::msg)?;
        config.limits.idle_timeout = (!d.is_zero()).then_some(d);
    }
    if let Some(d) = &args.associate_rq_timeout {
        config.limits.associate_rq_timeout = parse_duration(d).map_err(anyhow::Error::msg)?;
    }
    if let Some(n) = args.max_associations_per_source {
        config.limits.max_associations_per_source = Some(n);
    }
    if let Some(site) = &args.site {
        config.identity.site = Some(site.clone());
    }
    if let Some(instance) = &args.instance {
        config.identity.instance = Some(instance.clone());
    }
    super::fleet::apply_publish_flags(
        &mut config.fleet,
        args.fleet_nats.as_deref(),
        args.fleet_spool.as_deref(),
        &args.bus,
    )?;
    if config.identity.site.is_some() || config.fleet.is_some() {
        super::fleet::identity(&config.identity)?;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    let drain: Duration = parse_duration(&args.drain).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config, drain))
}

async fn serve(mut config: ProxyConfig, drain: Duration) -> anyhow::Result<ExitCode> {
    let upstreams: Vec<String> = config
        .listeners
        .iter()
        .map(|l| {
            if l.transparent {
                "original destination".to_string()
            } else {
                l.upstream.clone().unwrap_or_default()
            }
        })
        .collect();
    let fleet = config.fleet.clone();
    let identity = config.identity.clone();
    let metrics_tls = config.metrics_tls.is_some();
    let tap = fleet.as_ref().map(|_| {
        let (tx, rx) = tokio::sync::mpsc::channel(super::fleet::TAP_QUEUE);
        config.event_tap = Some(tx);
        rx
    });
    let proxy = RunningProxy::start(config).await?;
    let fleet = match (&fleet, tap) {
        (Some(table), Some(tap)) => Some(super::fleet::FleetPublishing::start(
            table,
            &identity,
            proxy.metrics(),
            tap,
        )?),
        _ => None,
    };
    for (addr, up) in proxy.listen_addrs().iter().zip(&upstreams) {
        say!("dicomtap proxy: listening on {addr} -> {up}");
    }
    if let Some(m) = proxy.metrics_addr() {
        say!(
            "dicomtap proxy: metrics on {}://{m}/metrics",
            dicomtap_proxy::metrics::http::scheme(metrics_tls)
        );
    }
    for f in proxy.recording_files() {
        say!("dicomtap proxy: recording to {}", f.display());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // SIGHUP: re-read the TLS certificates, keys and trust stores (docs/tls.md).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl-C")?;
                tracing::info!("interrupt: shutting down");
                break;
            }
            _ = hup.recv() => match proxy.reload_tls() {
                Ok(n) if metrics_tls => say!("dicomtap proxy: SIGHUP: reloaded TLS of {n} listener(s) and of the metrics endpoint"),
                Ok(n) => say!("dicomtap proxy: SIGHUP: reloaded TLS of {n} listener(s)"),
                Err(e) => {
                    tracing::error!("SIGHUP: TLS reload failed, keeping the certificates in use: {e}");
                    say!("dicomtap proxy: SIGHUP: TLS reload failed, keeping the certificates in use: {e}");
                }
            },
        }
    }
    say!(
        "dicomtap proxy: shutting down, draining for up to {}s",
        drain.as_secs_f64()
    );
    let summary = proxy.shutdown(drain).await?;
    if let Some(f) = fleet {
        f.close().await;
    }
    say!(
        "dicomtap proxy: {} associations, {} bytes from requestors, {} from acceptors, {} cut at drain, {} recorder drops",
        summary.associations,
        summary.bytes_from_requestors,
        summary.bytes_from_acceptors,
        summary.cut_at_drain,
        summary.recorder_dropped
    );
    if summary.recorder_dropped > 0 || summary.recorder_dropped_bytes > 0 {
        say!(
            "dicomtap proxy: recording incomplete: {} chunks, {} bytes dropped",
            summary.recorder_dropped,
            summary.recorder_dropped_bytes
        );
    }
    for f in &summary.recording_files {
        say!("dicomtap proxy: recorded {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_proxy::tls::TlsVersion;

    fn flags(cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> MetricsTlsArgs {
        let boxed = |p: Option<&str>| p.map(|p| Box::new(PathBuf::from(p)));
        MetricsTlsArgs {
            metrics_tls_cert: boxed(cert),
            metrics_tls_key: boxed(key),
            metrics_tls_client_ca: boxed(ca),
        }
    }

    #[test]
    fn metrics_tls_flags_make_or_amend_the_table() {
        // No flag: the file's table (or none) stays.
        let mut table = None;
        assert!(flags(None, None, None).apply(&mut table).is_ok());
        assert!(table.is_none());
        // One of cert and key alone, without a table to complete it, is refused.
        let e = flags(Some("c.pem"), None, None).apply(&mut table);
        assert!(e.is_err_and(|e| e.to_string().contains("--metrics-tls-key")));
        // Both: BCP 195 defaults, no client certificates.
        assert!(
            flags(Some("c.pem"), Some("k.pem"), None)
                .apply(&mut table)
                .is_ok()
        );
        let t = table.clone().map(|t| (t.cert, t.client_auth, t.versions));
        let both = vec![TlsVersion::Tls12, TlsVersion::Tls13];
        assert_eq!(t, Some(("c.pem".into(), ClientAuth::Off, both)));
        // The file's table narrowed to TLS 1.3; a client CA flag requires certificates
        // and keeps the rest.
        if let Some(t) = table.as_mut() {
            t.versions = vec![TlsVersion::Tls13];
        }
        assert!(flags(None, None, Some("ca.pem")).apply(&mut table).is_ok());
        let t = table.map(|t| (t.cert, t.client_ca, t.client_auth, t.versions));
        assert_eq!(
            t,
            Some((
                "c.pem".into(),
                Some("ca.pem".into()),
                ClientAuth::Required,
                vec![TlsVersion::Tls13]
            ))
        );
    }
}
