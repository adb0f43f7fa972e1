//! `dicomtap fleet`: the central consumer of a fleet of dicomtap instances, and the
//! glue that makes `proxy` and `monitor` publish to the fleet bus (docs/fleet.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dicomtap_fleet::bus::BusSecurity;
use dicomtap_fleet::consumer::{self, Central, ConsumerConfig, FleetMetrics};
use dicomtap_fleet::publisher::{self, Publisher, PublisherConfig};
use dicomtap_fleet::state::FleetState;
use dicomtap_fleet::{EventSender, Identity};
use dicomtap_proxy::config::{IdentityConfig, host_name, parse_duration};
use dicomtap_proxy::metrics::Metrics;
use dicomtap_proxy::server::ProxyEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(clap::Args)]
#[command(
    about = "The fleet's central consumer: every site's events from NATS JetStream, checks across sites, fleet metrics and report",
    long_about = "Reads the fleet's events (associations, C-STOREs, Storage Commitment, findings, \
health) of every site from NATS JetStream with a durable consumer, so a restart resumes where it \
stopped. Keeps each event once in OUT/events.jsonl (de-duplicated by event id), runs the checks \
that need more than one instance (a silent Success whose commitment result came to another \
instance), serves the fleet metrics and writes OUT/fleet.html and OUT/fleet.json.\n\nStops on \
SIGTERM or Ctrl-C, writing the report.\n\nExample:\n  dicomtap fleet --nats nats://127.0.0.1:4222 \
--out /var/lib/dicomtap-fleet --statements /etc/dicomtap/statements"
)]
pub struct Args {
    /// NATS server URL(s).
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Where the event log, findings and report go.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Device statements (TOML), to name the devices behind AE titles.
    #[arg(long, value_name = "DIR")]
    statements: Option<PathBuf>,
    /// JetStream stream.
    #[arg(long, default_value = publisher::DEFAULT_STREAM)]
    stream: String,
    /// Durable consumer name; a consumer started again under it resumes.
    #[arg(long, default_value = "dicomtap-fleet")]
    durable: String,
    /// Subjects to read (e.g. dicomtap.north.> for one site).
    #[arg(long, default_value = "dicomtap.>")]
    filter: String,
    /// Where to serve the fleet metrics, or "off".
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9466")]
    metrics: String,
    #[command(flatten)]
    metrics_tls: super::proxy::MetricsTlsArgs,
    /// How often the report is rewritten.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    report_every: String,
    #[command(flatten)]
    bus: BusArgs,
}

/// TLS and credentials towards the bus (docs/fleet.md, "Across sites: TLS and
/// credentials"). Secrets are read from files.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BusArgs {
    /// Require TLS to the bus (the system's roots unless --nats-ca).
    #[arg(long)]
    nats_tls: bool,
    /// CA certificate (PEM) the bus's certificate must chain to; turns TLS on.
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// Client certificate (PEM), for a bus that verifies clients; with --nats-key.
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// NATS credentials file (user JWT and NKey seed).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nats_token_file", "nats_user"])]
    nats_creds: Option<PathBuf>,
    /// File holding the bus's token.
    #[arg(long, value_name = "FILE", conflicts_with = "nats_user")]
    nats_token_file: Option<PathBuf>,
    /// User name on the bus; with --nats-password-file.
    #[arg(long, value_name = "NAME", requires = "nats_password_file")]
    nats_user: Option<String>,
    /// File holding the user's password.
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    nats_password_file: Option<PathBuf>,
}

impl BusArgs {
    pub fn security(&self) -> BusSecurity {
        BusSecurity {
            tls_ca: self.nats_ca.clone(),
            tls_cert: self.nats_cert.clone(),
            tls_key: self.nats_key.clone(),
            tls: self.nats_tls,
            creds_file: self.nats_creds.clone(),
            token_file: self.nats_token_file.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
        }
    }

    /// Into a `[fleet]` table, over what the file says.
    fn apply(&self, t: &mut toml::Table) {
        let path = |p: &PathBuf| toml::Value::String(p.display().to_string());
        if self.nats_tls {
            t.insert("tls".into(), toml::Value::Boolean(true));
        }
        for (key, v) in [
            ("tls_ca", &self.nats_ca),
            ("tls_cert", &self.nats_cert),
            ("tls_key", &self.nats_key),
            ("creds_file", &self.nats_creds),
            ("token_file", &self.nats_token_file),
            ("password_file", &self.nats_password_file),
        ] {
            if let Some(p) = v {
                t.insert(key.into(), path(p));
            }
        }
        if let Some(u) = &self.nats_user {
            t.insert("user".into(), toml::Value::String(u.clone()));
        }
    }

    fn is_empty(&self) -> bool {
        self.security() == BusSecurity::default()
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let statements = match &args.statements {
        Some(dir) => dicomtap_analyzer::statement::load_dir(dir)
            .with_context(|| format!("{}: cannot load the statements", dir.display()))?,
        None => Vec::new(),
    };
    let report_every = parse_duration(&args.report_every).map_err(anyhow::Error::msg)?;
    let metrics_addr =
        dicomtap_proxy::config::parse_optional_addr(&args.metrics).map_err(anyhow::Error::msg)?;
    let tls = args.metrics_tls.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let metrics = Arc::new(Metrics::new(1).context("setting up metrics")?);
        let fleet_metrics =
            Arc::new(FleetMetrics::new(metrics.registry()).context("setting up metrics")?);
        let central = Central::open(&args.out, FleetState::new(&statements), fleet_metrics)?;
        say!(
            "dicomtap fleet: {} events already in {}",
            central.state.total,
            args.out.join("events.jsonl").display()
        );
        let central = Arc::new(tokio::sync::Mutex::new(central));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = match metrics_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("{addr}: cannot listen for metrics"))?;
                say!(
                    "dicomtap fleet: metrics on {}://{}/metrics",
                    dicomtap_proxy::metrics::http::scheme(tls.is_some()),
                    listener.local_addr()?
                );
                let guard = dicomtap_proxy::metrics::Guard { token: None, tls };
                Some(tokio::spawn(dicomtap_proxy::metrics::serve_guarded(
                    listener,
                    metrics.clone(),
                    stop_rx.clone(),
                    guard,
                )))
            }
            None => None,
        };
        let mut config = ConsumerConfig::new(args.nats.clone(), args.out.clone());
        config.stream = args.stream.clone();
        config.durable = args.durable.clone();
        config.filter = args.filter.clone();
        config.report_every = report_every;
        config.security = args.bus.security();
        config.security.check()?;
        let consuming = tokio::spawn(consumer::run(config, central.clone(), stop_rx));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        }
        let _ = stop_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(10), consuming).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => say_err!("dicomtap fleet: {e}"),
            Ok(Err(_)) | Err(_) => say_err!("dicomtap fleet: the consumer did not stop in time"),
        }
        if let Some(s) = server {
            let _ = s.await;
        }
        let c = central.lock().await;
        let path = c.write_report()?;
        say!(
            "dicomtap fleet: {} events from {} sites ({} duplicates dropped), {} findings; report {}",
            c.state.total,
            c.state.sites.len(),
            c.state.duplicates,
            c.state.finding_counts.values().sum::<u64>(),
            path.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The checked identity of an instance: `site` is required, the instance name defaults
/// to the host's.
pub fn identity(c: &IdentityConfig) -> anyhow::Result<Identity> {
    let Some(site) = &c.site else {
        bail!("fleet publishing needs a site name: --site NAME or [identity] site");
    };
    let instance = c.instance.clone().unwrap_or_else(host_name);
    Identity::new(site, &instance).map_err(anyhow::Error::msg)
}

/// `--fleet-nats`/`--fleet-spool` into the `[fleet]` table.
pub fn apply_publish_flags(
    fleet: &mut Option<toml::Table>,
    nats: Option<&str>,
    spool: Option<&Path>,
    bus: &BusArgs,
) -> anyhow::Result<()> {
    if nats.is_none() && spool.is_none() && bus.is_empty() {
        return Ok(());
    }
    let t = fleet.get_or_insert_with(toml::Table::new);
    bus.apply(t);
    if let Some(n) = nats {
        t.insert("nats".into(), toml::Value::String(n.to_string()));
    }
    if let Some(s) = spool {
        t.insert(
            "spool_dir".into(),
            toml::Value::String(s.display().to_string()),
        );
    }
    if !t.contains_key("nats") || !t.contains_key("spool_dir") {
        bail!(
            "fleet publishing needs both --fleet-nats URL and --fleet-spool DIR (or nats and spool_dir in [fleet])"
        );
    }
    Ok(())
}

/// Room for events between the proxy's analysis tasks and the publisher (about 1 KiB
/// each): enough for bursts, small enough to bound memory when the spool disk is slow.
pub const TAP_QUEUE: usize = 16_384;

/// A running publisher fed by the proxy's event tap ([`ProxyConfig::event_tap`]).
///
/// [`ProxyConfig::event_tap`]: dicomtap_proxy::config::ProxyConfig::event_tap
pub struct FleetPublishing {
    publisher: Publisher,
    subscriber: JoinHandle<()>,
    health: JoinHandle<()>,
}

impl FleetPublishing {
    pub fn start(
        table: &toml::Table,
        identity: &IdentityConfig,
        metrics: Arc<Metrics>,
        events: mpsc::Receiver<ProxyEvent>,
    ) -> anyhow::Result<FleetPublishing> {
        let config = PublisherConfig::from_table(table).map_err(anyhow::Error::msg)?;
        let id = self::identity(identity)?;
        say!(
            "dicomtap: fleet events of {}/{} to {} ({}; spool {})",
            id.site,
            id.instance,
            config.nats_url,
            config.security.describe(),
            config.spool_dir.display()
        );
        let publisher = Publisher::start(id, config, metrics.registry())?;
        let sender: EventSender = publisher.sender();
        let subscriber = publisher::spawn_proxy_tap(events, sender.clone());
        let health = publisher::spawn_health(
            metrics,
            publisher.metrics().clone(),
            sender,
            Duration::from_secs(10),
        );
        Ok(FleetPublishing {
            publisher,
            subscriber,
            health,
        })
    }

    /// Publishes what the stream still holds (a few seconds at most); the rest stays in
    /// the spool for the next start.
    pub async fn close(self) {
        // The proxy has stopped: its tap closes, the subscriber finishes.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.subscriber).await;
        self.health.abort();
        let left = self.publisher.close(Duration::from_secs(5)).await;
        if left > 0 {
            say!("dicomtap: {left} fleet events left in the spool for the next start");
        }
    }
}

/// For `monitor`: the sender and the runtime-bound tasks of a publisher.
pub fn start_for_monitor(
    nats: &str,
    spool: &Path,
    bus: &BusArgs,
    identity: &IdentityConfig,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Publisher, JoinHandle<()>)> {
    let mut config = PublisherConfig::new(nats, spool);
    config.security = bus.security();
    config.security.check()?;
    let id = self::identity(identity)?;
    let publisher = Publisher::start(id, config, metrics.registry())?;
    let health = publisher::spawn_health(
        metrics.clone(),
        publisher.metrics().clone(),
        publisher.sender(),
        Duration::from_secs(10),
    );
    Ok((publisher, health))
}
