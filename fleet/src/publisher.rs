//! The publisher: fleet events of one instance to NATS JetStream, at least once.
//!
//! Events are handed over through a bounded queue: the proxy's tap waits for room
//! ([`EventSender::send_wait`], on the proxy's analysis tasks, never on forwarding), so
//! nothing is lost there; `monitor` uses [`EventSender::send`], which never waits (a full
//! queue costs the event, counted in `dicomtap_fleet_events_lost_total`). One task
//! appends them to the disk [`Spool`]; another reads the spool, publishes each event with
//! its id as `Nats-Msg-Id` (the stream drops duplicates within its window) and advances
//! the spool only on the stream's acknowledgement. While the bus is unreachable the spool
//! fills (bounded, `dicomtap_fleet_spool_dropped_total` past its size); when it returns,
//! the backlog goes out oldest first. Nothing of this is on the forwarding path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use dicomtap_proxy::server::ProxyEvent;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::bus::BusSecurity;
use crate::digest::Digest;
use crate::schema::{Body, FleetEvent, HealthEvent, Identity, Kind, SCHEMA_VERSION};
use crate::spool::{Pos, Spool, SpoolError, ts_of};

/// Default JetStream stream of the fleet.
pub const DEFAULT_STREAM: &str = "DICOMTAP";

/// How to reach the bus and where to spool.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// NATS server URL(s), comma-separated, e.g. `nats://central.example:4222`.
    pub nats_url: String,
    pub spool_dir: PathBuf,
    /// Unacknowledged bytes the spool holds at most. Default 256 MiB.
    pub spool_max_bytes: u64,
    /// Size of one spool segment file. Default 8 MiB.
    pub segment_bytes: u64,
    /// JetStream stream name. Default `DICOMTAP`.
    pub stream: String,
    /// Create the stream (subjects `dicomtap.>`, file storage) if it does not exist.
    pub create_stream: bool,
    /// Events queued in memory between the event stream and the spool.
    pub queue: usize,
    /// Events published before waiting for their acknowledgements.
    pub batch: usize,
    /// How long an acknowledgement may take before the batch is sent again.
    pub ack_timeout: Duration,
    /// TLS and credentials for the bus.
    pub security: BusSecurity,
}

impl PublisherConfig {
    pub fn new(nats_url: impl Into<String>, spool_dir: impl Into<PathBuf>) -> PublisherConfig {
        PublisherConfig {
            nats_url: nats_url.into(),
            spool_dir: spool_dir.into(),
            spool_max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            stream: DEFAULT_STREAM.to_string(),
            create_stream: true,
            queue: 65_536,
            batch: 256,
            ack_timeout: Duration::from_secs(5),
            security: BusSecurity::default(),
        }
    }
}

/// `[fleet]` of the proxy's configuration file (docs/fleet.md): these keys, and those of
/// [`BusSecurity`]. serde's `deny_unknown_fields` does not work beside `flatten`, so what
/// neither takes is collected in `unknown` and refused by [`PublisherConfig::from_table`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FleetToml {
    /// NATS server URL(s).
    pub nats: String,
    /// Spool directory.
    pub spool_dir: PathBuf,
    #[serde(default)]
    pub spool_max_bytes: Option<u64>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub create_stream: Option<bool>,
    /// TLS and credentials.
    #[serde(flatten)]
    pub security: BusSecurity,
    /// Keys neither of the above knows.
    #[serde(flatten)]
    pub unknown: toml::Table,
}

impl PublisherConfig {
    /// From the `[fleet]` table of a configuration file.
    pub fn from_table(table: &toml::Table) -> Result<PublisherConfig, String> {
        let t: FleetToml = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("[fleet]: {}", e.message().trim()))?;
        if let Some(key) = t.unknown.keys().next() {
            return Err(format!("[fleet]: unknown field `{key}`"));
        }
        let mut c = PublisherConfig::new(t.nats, t.spool_dir);
        if let Some(b) = t.spool_max_bytes {
            c.spool_max_bytes = b;
        }
        if let Some(s) = t.stream {
            c.stream = s;
        }
        if let Some(b) = t.create_stream {
            c.create_stream = b;
        }
        c.security = t.security;
        c.security.check().map_err(|e| format!("[fleet]: {e}"))?;
        Ok(c)
    }
}

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("registering the fleet metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The publisher's own metrics, registered beside the instance's.
#[derive(Clone)]
pub struct PublisherMetrics {
    pub spool_bytes: IntGauge,
    pub spool_events: IntGauge,
    pub lag_seconds: Gauge,
    pub published_total: IntCounterVec,
    pub spool_dropped_total: IntCounter,
    pub events_lost_total: IntCounter,
    pub bus_connected: IntGauge,
    pub publish_errors_total: IntCounter,
}

impl PublisherMetrics {
    pub fn new(registry: &Registry) -> Result<PublisherMetrics, prometheus::Error> {
        let m = PublisherMetrics {
            spool_bytes: IntGauge::new(
                "dicomtap_fleet_spool_bytes",
                "Bytes of fleet events spooled on disk, not yet acknowledged by the bus.",
            )?,
            spool_events: IntGauge::new(
                "dicomtap_fleet_spool_events",
                "Fleet events spooled on disk, not yet acknowledged by the bus.",
            )?,
            lag_seconds: Gauge::new(
                "dicomtap_fleet_lag_seconds",
                "Age of the oldest fleet event not yet acknowledged by the bus (0 when none).",
            )?,
            published_total: IntCounterVec::new(
                Opts::new(
                    "dicomtap_fleet_published_total",
                    "Fleet events acknowledged by the bus, by kind.",
                ),
                &["kind"],
            )?,
            spool_dropped_total: IntCounter::new(
                "dicomtap_fleet_spool_dropped_total",
                "Fleet events not kept because the spool was full.",
            )?,
            events_lost_total: IntCounter::new(
                "dicomtap_fleet_events_lost_total",
                "Events the fleet publisher could not take: its queue was full (monitor: it never waits), or it had stopped.",
            )?,
            bus_connected: IntGauge::new(
                "dicomtap_fleet_bus_connected",
                "1 while the publisher is connected to the bus.",
            )?,
            publish_errors_total: IntCounter::new(
                "dicomtap_fleet_publish_errors_total",
                "Publish attempts that failed or were not acknowledged in time (the events are sent again).",
            )?,
        };
        registry.register(Box::new(m.spool_bytes.clone()))?;
        registry.register(Box::new(m.spool_events.clone()))?;
        registry.register(Box::new(m.lag_seconds.clone()))?;
        registry.register(Box::new(m.published_total.clone()))?;
        registry.register(Box::new(m.spool_dropped_total.clone()))?;
        registry.register(Box::new(m.events_lost_total.clone()))?;
        registry.register(Box::new(m.bus_connected.clone()))?;
        registry.register(Box::new(m.publish_errors_total.clone()))?;
        for k in Kind::ALL {
            m.published_total.with_label_values(&[k.as_str()]);
        }
        Ok(m)
    }
}

/// Stamps events with the instance's identity and a fleet-unique id, and queues them.
#[derive(Clone)]
pub struct EventSender {
    identity: Arc<Identity>,
    boot: u64,
    seq: Arc<AtomicU64>,
    tx: mpsc::Sender<FleetEvent>,
    metrics: PublisherMetrics,
}

impl EventSender {
    /// Queues one event; never waits. Returns whether it was queued.
    pub fn send(&self, ts_us: u64, body: Body) -> bool {
        match self.tx.try_send(self.stamp(ts_us, body)) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.events_lost_total.inc();
                false
            }
        }
    }

    /// Queues one event, waiting for room: for producers that are off the forwarding
    /// path and must not lose events (the proxy's tap). `false` once the publisher has
    /// stopped.
    pub async fn send_wait(&self, ts_us: u64, body: Body) -> bool {
        match self.tx.send(self.stamp(ts_us, body)).await {
            Ok(()) => true,
            Err(_) => {
                self.metrics.events_lost_total.inc();
                false
            }
        }
    }

    fn stamp(&self, ts_us: u64, body: Body) -> FleetEvent {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        FleetEvent {
            v: SCHEMA_VERSION,
            id: format!(
                "{}.{}.{}.{}",
                self.identity.site, self.identity.instance, self.boot, seq
            ),
            site: self.identity.site.clone(),
            instance: self.identity.instance.clone(),
            ts_us,
            body,
        }
    }
}

/// The running publisher.
pub struct Publisher {
    sender: EventSender,
    metrics: PublisherMetrics,
    closing: watch::Sender<bool>,
    spooler: JoinHandle<()>,
    shipper: JoinHandle<()>,
    spool: Arc<Mutex<Spool>>,
}

impl Publisher {
    /// Opens the spool (keeping what a previous run left unsent) and starts the tasks.
    /// Must be called inside a tokio runtime.
    pub fn start(
        identity: Identity,
        config: PublisherConfig,
        registry: &Registry,
    ) -> Result<Publisher, PublisherError> {
        let metrics = PublisherMetrics::new(registry)?;
        let spool = Spool::open(
            &config.spool_dir,
            config.spool_max_bytes,
            config.segment_bytes,
        )?;
        metrics.spool_bytes.set(spool.pending_bytes() as i64);
        metrics.spool_events.set(spool.pending_events() as i64);
        let spool = Arc::new(Mutex::new(spool));
        let (tx, rx) = mpsc::channel(config.queue.max(16));
        let boot = crate::now_us();
        let sender = EventSender {
            identity: Arc::new(identity.clone()),
            boot,
            seq: Arc::new(AtomicU64::new(0)),
            tx,
            metrics: metrics.clone(),
        };
        let (closing, closing_rx) = watch::channel(false);
        let notify = Arc::new(Notify::new());
        let spooler = tokio::spawn(spool_task(
            rx,
            spool.clone(),
            metrics.clone(),
            notify.clone(),
            closing_rx.clone(),
        ));
        let shipper = tokio::spawn(ship_task(
            identity,
            config,
            spool.clone(),
            metrics.clone(),
            notify,
            closing_rx,
        ));
        sender.send(
            boot,
            Body::Health(HealthEvent {
                what: "started".into(),
                value: 0,
                detail: format!("dicomtap {}", env!("CARGO_PKG_VERSION")),
            }),
        );
        Ok(Publisher {
            sender,
            metrics,
            closing,
            spooler,
            shipper,
            spool,
        })
    }

    pub fn sender(&self) -> EventSender {
        self.sender.clone()
    }

    pub fn metrics(&self) -> &PublisherMetrics {
        &self.metrics
    }

    /// Events spooled and not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.spool.lock().map(|s| s.pending_events()).unwrap_or(0)
    }

    /// Stops taking events, spools what is queued and keeps publishing for up to `wait`;
    /// what is still unsent stays in the spool for the next run. Returns what is left.
    pub async fn close(self, wait: Duration) -> u64 {
        let Publisher {
            sender,
            closing,
            spooler,
            shipper,
            spool,
            ..
        } = self;
        let pending = || spool.lock().map(|s| s.pending_events()).unwrap_or(0);
        let _ = closing.send(true);
        drop(sender);
        let _ = spooler.await;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if pending() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shipper.abort();
        let _ = shipper.await;
        pending()
    }
}

async fn spool_task(
    mut rx: mpsc::Receiver<FleetEvent>,
    spool: Arc<Mutex<Spool>>,
    metrics: PublisherMetrics,
    notify: Arc<Notify>,
    mut closing: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let first = tokio::select! {
            ev = rx.recv() => ev,
            _ = closing.changed() => {
                // Take what is queued now, then stop.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        let Ok(mut s) = spool.lock() else { break };
        for ev in batch {
            let line = match serde_json::to_vec(&ev) {
                Ok(l) => l,
                Err(_) => continue,
            };
            match s.append(&line, ev.ts_us) {
                Ok(true) => failing = false,
                Ok(false) => metrics.spool_dropped_total.inc(),
                Err(e) => {
                    metrics.spool_dropped_total.inc();
                    if !failing {
                        tracing::error!(
                            "fleet: {e}; events are dropped (and counted) until the spool can be written again"
                        );
                    }
                    failing = true;
                }
            }
        }
        metrics.spool_bytes.set(s.pending_bytes() as i64);
        metrics.spool_events.set(s.pending_events() as i64);
        drop(s);
        notify.notify_one();
    }
}

#[derive(serde::Deserialize)]
struct Head {
    id: String,
    kind: Kind,
}

async fn ship_task(
    identity: Identity,
    config: PublisherConfig,
    spool: Arc<Mutex<Spool>>,
    metrics: PublisherMetrics,
    notify: Arc<Notify>,
    _closing: watch::Receiver<bool>,
) {
    let mut client: Option<async_nats::Client> = None;
    let mut js: Option<jetstream::Context> = None;
    let mut stream_ok = false;
    let mut backoff = Duration::from_millis(200);
    let mut logged_down = false;
    loop {
        update_lag(&spool, &metrics);
        let Some(c) = client.as_ref() else {
            let opts = match config
                .security
                .options(format!("dicomtap {}/{}", identity.site, identity.instance))
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    // Files may come back (a certificate being renewed): keep trying.
                    if !logged_down {
                        tracing::error!("fleet: {e}; events stay in the spool");
                        logged_down = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            match opts.connect(config.nats_url.as_str()).await {
                Ok(c) => {
                    let mut ctx = jetstream::new(c.clone());
                    ctx.set_timeout(config.ack_timeout);
                    js = Some(ctx);
                    client = Some(c);
                    backoff = Duration::from_millis(200);
                    if logged_down {
                        tracing::info!("fleet: connected to {}", config.nats_url);
                    }
                    logged_down = false;
                }
                Err(e) => {
                    metrics.bus_connected.set(0);
                    if !logged_down {
                        tracing::warn!(
                            "fleet: cannot reach {}: {e}; spooling to {}",
                            config.nats_url,
                            config.spool_dir.display()
                        );
                        logged_down = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        let connected = matches!(
            c.connection_state(),
            async_nats::connection::State::Connected
        );
        metrics.bus_connected.set(i64::from(connected));
        let Some(ctx) = js.as_ref() else {
            client = None;
            continue;
        };
        if !stream_ok && config.create_stream {
            let cfg = jetstream::stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", crate::schema::SUBJECT_ROOT)],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            match ctx.get_or_create_stream(cfg).await {
                Ok(_) => stream_ok = true,
                Err(e) => {
                    metrics.publish_errors_total.inc();
                    tracing::debug!("fleet: stream {}: {e}", config.stream);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let batch = match spool.lock() {
            Ok(mut s) => s.read_batch(config.batch.max(1)),
            Err(_) => return,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("fleet: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        // Publish the whole batch, then wait for the acknowledgements in order.
        let mut acks = Vec::with_capacity(batch.len());
        let mut kinds = Vec::with_capacity(batch.len());
        for (pos, line) in &batch {
            let Ok(head) = serde_json::from_slice::<Head>(line) else {
                // Not an event (a damaged line): skipped, never sent.
                acks.push((*pos, None));
                kinds.push(None);
                continue;
            };
            let subject = identity.subject(head.kind);
            let msg = jetstream::message::PublishMessage::build()
                .payload(Bytes::copy_from_slice(line))
                .message_id(&head.id);
            match ctx.send_publish(subject, msg).await {
                Ok(fut) => {
                    acks.push((*pos, Some(fut)));
                    kinds.push(Some(head.kind));
                }
                Err(e) => {
                    tracing::debug!("fleet: publish: {e}");
                    break;
                }
            }
        }
        let mut done: Option<Pos> = None;
        let mut count = 0u64;
        let mut failed = acks.len() < batch.len();
        for ((pos, fut), kind) in acks.into_iter().zip(kinds) {
            let ok = match fut {
                None => true,
                Some(f) => match f.await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!("fleet: acknowledgement: {e}");
                        false
                    }
                },
            };
            if !ok {
                failed = true;
                break;
            }
            if let Some(k) = kind {
                metrics
                    .published_total
                    .with_label_values(&[k.as_str()])
                    .inc();
            }
            done = Some(pos);
            count += 1;
        }
        if let Some(upto) = done
            && let Ok(mut s) = spool.lock()
        {
            if let Err(e) = s.ack(upto, count) {
                tracing::error!("fleet: {e}");
            }
            let next = s
                .read_batch(1)
                .ok()
                .and_then(|b| b.into_iter().next())
                .and_then(|(_, l)| ts_of(&l));
            s.set_oldest_ts_us(next);
            metrics.spool_bytes.set(s.pending_bytes() as i64);
            metrics.spool_events.set(s.pending_events() as i64);
        }
        if failed {
            metrics.publish_errors_total.inc();
            metrics.bus_connected.set(0);
            // The stream may be gone (a new server): check it again before the next try.
            stream_ok = false;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            backoff = Duration::from_millis(200);
        }
    }
}

fn update_lag(spool: &Arc<Mutex<Spool>>, metrics: &PublisherMetrics) {
    let oldest = spool.lock().ok().and_then(|s| s.oldest_ts_us());
    let lag = oldest.map_or(0.0, |t| crate::now_us().saturating_sub(t) as f64 / 1e6);
    metrics.lag_seconds.set(lag);
}

/// Turns the proxy's event tap into fleet events. The tap is bounded and the proxy's
/// analysis waits for room in it, and this task waits for room in the publisher's queue,
/// so no event is lost between the proxy and the spool (the spool itself is bounded:
/// `dicomtap_fleet_spool_dropped_total`). Ends when the proxy has stopped.
pub fn spawn_proxy_tap(mut rx: mpsc::Receiver<ProxyEvent>, sender: EventSender) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut digest = Digest::new();
        let mut out = Vec::new();
        while let Some(ev) = rx.recv().await {
            digest.proxy_event(&ev, &mut out);
            for (ts, body) in out.drain(..) {
                if !sender.send_wait(ts, body).await {
                    return;
                }
            }
        }
    })
}

/// Publishes health events when the watched counters change (checked every `every`).
pub fn spawn_health(
    metrics: Arc<dicomtap_proxy::metrics::Metrics>,
    publisher: PublisherMetrics,
    sender: EventSender,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = [0u64; 4];
        let mut t = tokio::time::interval(every.max(Duration::from_millis(100)));
        loop {
            t.tick().await;
            let now = [
                metrics.recorder_dropped_total.get(),
                metrics.analysis_dropped_bytes_total.get(),
                publisher.events_lost_total.get(),
                publisher.spool_dropped_total.get(),
            ];
            let names = [
                "recorder_dropped",
                "analysis_dropped_bytes",
                "fleet_events_lost",
                "spool_dropped",
            ];
            for i in 0..4 {
                if now[i] != last[i] {
                    sender.send(
                        crate::now_us(),
                        Body::Health(HealthEvent {
                            what: names[i].to_string(),
                            value: now[i],
                            detail: String::new(),
                        }),
                    );
                }
            }
            last = now;
        }
    })
}
