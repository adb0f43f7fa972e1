//! The central consumer: reads the fleet's stream from JetStream with a durable pull
//! consumer (so a restart resumes where it stopped), keeps every event exactly once in
//! its own log (de-duplicated by event id: the bus delivers at least once), runs the
//! fleet's checks across sites, serves fleet metrics and writes the fleet report.
//!
//! An event is acknowledged to the bus only after it is written to the log, so a consumer
//! killed at any point loses nothing: what it had not acknowledged comes again, and what
//! comes again is recognised by its id (the log is read back at start).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::sync::watch;

use crate::schema::{FleetEvent, SUBJECT_ROOT};
use crate::state::{Applied, FleetFinding, FleetState};

/// Distinct sites (and devices per site) used as label values before the rest count as
/// `other`.
pub const MAX_SITES: usize = 256;
pub const MAX_DEVICES: usize = 512;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub nats_url: String,
    pub stream: String,
    /// Durable consumer name: a consumer restarted under the same name resumes.
    pub durable: String,
    /// Subjects read, default `dicomtap.>` (every site and kind).
    pub filter: String,
    /// Where the event log (`events.jsonl`), `findings.jsonl` and `fleet.html` go.
    pub out_dir: PathBuf,
    /// Messages fetched at a time.
    pub batch: usize,
    /// How often the report is rewritten.
    pub report_every: Duration,
    /// TLS and credentials for the bus.
    pub security: crate::bus::BusSecurity,
}

impl ConsumerConfig {
    pub fn new(nats_url: impl Into<String>, out_dir: impl Into<PathBuf>) -> ConsumerConfig {
        ConsumerConfig {
            nats_url: nats_url.into(),
            stream: crate::publisher::DEFAULT_STREAM.to_string(),
            durable: "dicomtap-fleet".to_string(),
            filter: format!("{SUBJECT_ROOT}.>"),
            out_dir: out_dir.into(),
            batch: 512,
            report_every: Duration::from_secs(30),
            security: crate::bus::BusSecurity::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConsumerError + '_ {
    move |source| ConsumerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The fleet metrics the consumer serves.
pub struct FleetMetrics {
    pub events_total: IntCounterVec,
    pub duplicates_total: IntCounter,
    pub findings_total: IntCounterVec,
    pub associations_total: IntCounterVec,
    pub stores_total: IntCounterVec,
    pub last_event_seconds: IntGaugeVec,
    pub bus_connected: IntGauge,
    sites: Mutex<BTreeSet<String>>,
    devices: Mutex<BTreeSet<String>>,
}

impl FleetMetrics {
    pub fn new(registry: &Registry) -> Result<FleetMetrics, prometheus::Error> {
        let vec = |n: &str, h: &str, l: &[&str]| IntCounterVec::new(Opts::new(n, h), l);
        let m = FleetMetrics {
            events_total: vec(
                "dicomtap_fleet_events_total",
                "Fleet events taken (each once), by site and kind.",
                &["site", "kind"],
            )?,
            duplicates_total: IntCounter::new(
                "dicomtap_fleet_duplicates_total",
                "Fleet events delivered again and recognised by their id.",
            )?,
            findings_total: vec(
                "dicomtap_fleet_findings_total",
                "Conformance findings across the fleet by site, device, rule, severity and by (instance: the instance's own checker; fleet: checked across instances).",
                &["site", "device", "rule", "severity", "by"],
            )?,
            associations_total: vec(
                "dicomtap_fleet_associations_total",
                "Associations across the fleet by site and outcome.",
                &["site", "outcome"],
            )?,
            stores_total: vec(
                "dicomtap_fleet_stores_total",
                "C-STOREs across the fleet by site and status class.",
                &["site", "status_class"],
            )?,
            last_event_seconds: IntGaugeVec::new(
                Opts::new(
                    "dicomtap_fleet_last_event_timestamp_seconds",
                    "Time of the latest event of each site (UNIX seconds).",
                ),
                &["site"],
            )?,
            bus_connected: IntGauge::new(
                "dicomtap_fleet_consumer_connected",
                "1 while the consumer is connected to the bus.",
            )?,
            sites: Mutex::new(BTreeSet::new()),
            devices: Mutex::new(BTreeSet::new()),
        };
        registry.register(Box::new(m.events_total.clone()))?;
        registry.register(Box::new(m.duplicates_total.clone()))?;
        registry.register(Box::new(m.findings_total.clone()))?;
        registry.register(Box::new(m.associations_total.clone()))?;
        registry.register(Box::new(m.stores_total.clone()))?;
        registry.register(Box::new(m.last_event_seconds.clone()))?;
        registry.register(Box::new(m.bus_connected.clone()))?;
        Ok(m)
    }

    fn capped(set: &Mutex<BTreeSet<String>>, cap: usize, v: &str) -> String {
        let Ok(mut s) = set.lock() else {
            return "other".to_string();
        };
        if s.contains(v) {
            return v.to_string();
        }
        if s.len() < cap {
            s.insert(v.to_string());
            return v.to_string();
        }
        "other".to_string()
    }

    fn observe(&self, ev: &FleetEvent, findings: &[FleetFinding]) {
        let site = Self::capped(&self.sites, MAX_SITES, &ev.site);
        self.events_total
            .with_label_values(&[site.as_str(), ev.kind().as_str()])
            .inc();
        self.last_event_seconds
            .with_label_values(&[site.as_str()])
            .set((ev.ts_us / 1_000_000) as i64);
        match &ev.body {
            crate::schema::Body::Association(a) => {
                self.associations_total
                    .with_label_values(&[site.as_str(), a.outcome.as_str()])
                    .inc();
            }
            crate::schema::Body::Store(s) => {
                self.stores_total
                    .with_label_values(&[site.as_str(), s.status_class.as_str()])
                    .inc();
            }
            _ => {}
        }
        for f in findings {
            let site = Self::capped(&self.sites, MAX_SITES, &f.site);
            let device = Self::capped(&self.devices, MAX_DEVICES, &f.device);
            let rule = match dicomtap_analyzer::conformance::RuleId::from_id(&f.rule) {
                Some(r) => r.as_str().to_string(),
                None => "other".to_string(),
            };
            self.findings_total
                .with_label_values(&[&site, &device, &rule, &f.severity, f.by])
                .inc();
        }
    }
}

/// The consumer's state and its log on disk.
pub struct Central {
    pub state: FleetState,
    log: File,
    findings: File,
    out_dir: PathBuf,
    metrics: Arc<FleetMetrics>,
}

impl Central {
    /// Opens (or creates) the output directory and reads back the event log.
    pub fn open(
        out_dir: &Path,
        state: FleetState,
        metrics: Arc<FleetMetrics>,
    ) -> Result<Central, ConsumerError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(out_dir)
            .map_err(io(out_dir))?;
        let log_path = out_dir.join("events.jsonl");
        let mut central = Central {
            state,
            log: append_private(&log_path)?,
            findings: append_private(&out_dir.join("findings.jsonl"))?,
            out_dir: out_dir.to_path_buf(),
            metrics,
        };
        // Read back what earlier runs took (rebuilds the counts and the id set; findings
        // were written then and are not written again).
        let file = File::open(&log_path).map_err(io(&log_path))?;
        let reader = BufReader::new(file);
        for line in reader.split(b'\n') {
            let line = line.map_err(io(&log_path))?;
            let Ok(ev) = serde_json::from_slice::<FleetEvent>(&line) else {
                continue;
            };
            if let Applied::New(f) = central.state.apply(&ev) {
                central.metrics.observe(&ev, &f);
            }
        }
        Ok(central)
    }

    /// Takes one event (already parsed). Writes it to the log when new.
    pub fn take(&mut self, ev: &FleetEvent, raw: &[u8]) -> Result<bool, ConsumerError> {
        match self.state.apply(ev) {
            Applied::Duplicate => {
                self.metrics.duplicates_total.inc();
                Ok(false)
            }
            Applied::New(found) => {
                let path = self.out_dir.join("events.jsonl");
                let mut line = raw.to_vec();
                line.push(b'\n');
                self.log.write_all(&line).map_err(io(&path))?;
                for f in &found {
                    let fpath = self.out_dir.join("findings.jsonl");
                    let mut l = serde_json::to_vec(f).unwrap_or_default();
                    l.push(b'\n');
                    self.findings.write_all(&l).map_err(io(&fpath))?;
                }
                self.metrics.observe(ev, &found);
                Ok(true)
            }
        }
    }

    /// Makes the log durable before acknowledging.
    pub fn sync(&mut self) -> Result<(), ConsumerError> {
        let path = self.out_dir.join("events.jsonl");
        self.log.sync_data().map_err(io(&path))?;
        Ok(())
    }

    /// Writes `fleet.html` (and `fleet.json`, the same figures for machines).
    pub fn write_report(&self) -> Result<PathBuf, ConsumerError> {
        let html = crate::report::html(&self.state, crate::now_us());
        let path = self.out_dir.join("fleet.html");
        write_private(&path, html.as_bytes())?;
        let json = crate::report::json(&self.state);
        write_private(&self.out_dir.join("fleet.json"), json.as_bytes())?;
        Ok(path)
    }
}

fn append_private(path: &Path) -> Result<File, ConsumerError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConsumerError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Reads the stream until `stop` turns true; reconnects and resumes whenever the bus goes
/// away. Writes the report every `report_every` and at the end.
pub async fn run(
    config: ConsumerConfig,
    central: Arc<tokio::sync::Mutex<Central>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let mut last_report = Instant::now();
    let mut backoff = Duration::from_millis(200);
    let metrics = central.lock().await.metrics.clone();
    'outer: while !*stop.borrow() {
        let consumer = match connect(&config).await {
            Ok(c) => c,
            Err(e) => {
                metrics.bus_connected.set(0);
                tracing::warn!("fleet consumer: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        metrics.bus_connected.set(1);
        backoff = Duration::from_millis(200);
        loop {
            if *stop.borrow() {
                break 'outer;
            }
            if last_report.elapsed() >= config.report_every {
                let c = central.lock().await;
                if let Err(e) = c.write_report() {
                    tracing::error!("fleet report: {e}");
                }
                last_report = Instant::now();
            }
            let batch = consumer
                .fetch()
                .max_messages(config.batch.max(1))
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("fleet consumer: fetch: {e}");
                    metrics.bus_connected.set(0);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue 'outer;
                }
            };
            let mut msgs = Vec::new();
            let mut broken = false;
            while let Some(m) = batch.next().await {
                match m {
                    Ok(m) => msgs.push(m),
                    Err(e) => {
                        tracing::debug!("fleet consumer: message: {e}");
                        broken = true;
                        break;
                    }
                }
            }
            if !msgs.is_empty() {
                let mut c = central.lock().await;
                for m in &msgs {
                    match serde_json::from_slice::<FleetEvent>(&m.payload) {
                        Ok(ev) => {
                            c.take(&ev, &m.payload)?;
                        }
                        Err(e) => {
                            tracing::warn!(
                                "fleet consumer: not a fleet event on {}: {e}",
                                m.subject
                            );
                        }
                    }
                }
                c.sync()?;
                drop(c);
                for m in &msgs {
                    if let Err(e) = m.ack().await {
                        tracing::debug!("fleet consumer: ack: {e}");
                    }
                }
            }
            if broken {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue 'outer;
            }
        }
    }
    let c = central.lock().await;
    c.write_report()?;
    Ok(())
}

async fn connect(
    config: &ConsumerConfig,
) -> Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>, String> {
    let client = config
        .security
        .options("dicomtap fleet".to_string())
        .await
        .map_err(|e| e.to_string())?
        .connect(config.nats_url.as_str())
        .await
        .map_err(|e| format!("cannot reach {}: {e}", config.nats_url))?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{SUBJECT_ROOT}.>")],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {}: {e}", config.stream))?;
    stream
        .get_or_create_consumer(
            &config.durable,
            jetstream::consumer::pull::Config {
                durable_name: Some(config.durable.clone()),
                filter_subject: config.filter.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {}: {e}", config.durable))
}
