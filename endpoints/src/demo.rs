//! `dicomtap demo`: the embedded default. An embedded storage SCP on loopback, the proxy in
//! front of it recording to pcapng + JSON lines with metrics on, a C-ECHO and a small
//! generated study sent through it by the embedded SCU, and a report of what the proxy
//! saw set against what the peers know happened (every object must arrive byte-identical).
//!
//! [`run_demo`] does it all in one go; [`DemoSession`] splits it up so that
//! `--keep-running` can leave the proxy and SCP up for other tools after the demo traffic.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dicomtap_wire::EventKind;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::peers::scp::{ScpConfig, ScpStorage, StorageScp};
use crate::peers::scu::{self, EchoOutcome, ScuOptions, StoreOutcome};
use crate::peers::study::{self, Study, StudyOptions};
use crate::peers::{PeerError, sop_class_keyword};
use dicomtap_proxy::config::{ListenerConfig, PayloadMode, ProxyConfig, RecordingConfig};
use dicomtap_proxy::server::{
    Notice, ProxyError, ProxyEvent, ProxyEventKind, ProxySummary, RunningProxy,
};

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Demo directory (recording in `recording/`, the study as files in `study/`);
    /// `None` makes a fresh one under the system temp directory.
    pub out_dir: Option<PathBuf>,
    /// Ports on 127.0.0.1; 0 lets the system choose.
    pub proxy_port: u16,
    pub metrics_port: u16,
    pub scp_port: u16,
    pub scp_ae_title: String,
    pub scu_ae_title: String,
    pub payload: PayloadMode,
    pub study: StudyOptions,
    /// How long shutdown waits for open associations.
    pub drain: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            out_dir: None,
            proxy_port: 0,
            metrics_port: 0,
            scp_port: 0,
            scp_ae_title: "DEMO-SCP".into(),
            scu_ae_title: "DEMO-SCU".into(),
            payload: PayloadMode::Full,
            study: StudyOptions::default(),
            drain: Duration::from_secs(5),
        }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("proxy: {0}")]
    Proxy(#[from] ProxyError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching /metrics from {addr}: {why}")]
    Metrics { addr: SocketAddr, why: String },
    #[error("a demo task failed: {0}")]
    Task(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// Everything the demo found out.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Where clients connect (the proxy).
    pub proxy_listen: SocketAddr,
    /// The embedded SCP behind it.
    pub scp_listen: SocketAddr,
    pub scp_ae_title: String,
    pub metrics_url: Option<String>,
    pub out_dir: PathBuf,
    pub recording_dir: PathBuf,
    /// The study as Part-10 files, for pointing storescu at the proxy.
    pub study_dir: PathBuf,
    pub study_instance_uid: String,
    pub recording_files: Vec<RecordingFile>,
    /// Associations as the proxy saw them on the wire.
    pub associations: Vec<AssociationReport>,
    /// What the SCU itself got back.
    pub echo: Option<EchoOutcome>,
    pub store: Option<StoreOutcome>,
    /// Each object sent, checked against what the SCP received.
    pub objects: Vec<ObjectCheck>,
    /// Objects the SCP received in total (the demo's, plus any sent by other tools under
    /// `--keep-running`).
    pub scp_received_objects: usize,
    /// A few lines of `/metrics`, as fetched over HTTP.
    pub metric_lines: Vec<String>,
    /// Events the report missed because it read them too slowly.
    pub events_lost: u64,
    pub proxy_summary: Option<ProxySummary>,
    /// Echo succeeded, every object stored with Success and byte-identical, and the
    /// recording files exist.
    pub ok: bool,
}

/// A file the recorder wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingFile {
    pub path: PathBuf,
    /// "pcapng", "events" or "other".
    pub kind: &'static str,
    pub bytes: u64,
    /// Unix permission bits, e.g. 0o600 (serialized as a number).
    pub mode: Option<u32>,
}

/// One association, from the proxy's events.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AssociationReport {
    pub id: u64,
    pub client: Option<SocketAddr>,
    pub upstream: Option<SocketAddr>,
    pub calling_ae: String,
    pub called_ae: String,
    pub proposed_contexts: usize,
    pub accepted_contexts: Vec<ContextReport>,
    pub rejected_contexts: Vec<ContextReport>,
    pub exchanges: Vec<ExchangeReport>,
    /// What the proxy's bounded peek found at the start of each data set.
    pub datasets: Vec<DatasetReport>,
    /// "released", "aborted: ...", "rejected: ...", or how the TCP connection ended.
    pub ended: String,
    pub duration_us: Option<u64>,
    /// Protocol findings and proxy notices on this association.
    pub notes: Vec<String>,
}

/// A presentation context and its result.
#[derive(Debug, Clone, Serialize)]
pub struct ContextReport {
    pub id: u8,
    pub abstract_syntax: String,
    pub sop_class: String,
    pub transfer_syntax: Option<String>,
    pub transfer_syntax_name: Option<String>,
    pub result: String,
}

/// A DIMSE request and its response.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeReport {
    /// Request name, e.g. "C-STORE".
    pub command: String,
    pub message_id: Option<u16>,
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    /// Status code as four hex digits, `None` if no response was seen.
    pub status: Option<String>,
    pub status_class: Option<String>,
    pub latency_us: Option<u64>,
}

/// The proxy's peek at one data set: identity and the character-set check.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    pub message_id: Option<u16>,
    pub sop_class: Option<String>,
    pub modality: Option<String>,
    /// Values of Specific Character Set (0008,0005).
    pub specific_character_set: Vec<String>,
    /// Text values not valid in the declared character set (the demo's should be none).
    pub invalid_text_values: usize,
    /// Declared sets the engine could not check.
    pub unchecked_character_sets: Vec<String>,
}

/// One object sent, end to end.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectCheck {
    pub sop_class: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    pub transfer_syntax_name: Option<String>,
    pub bytes: u64,
    /// Status the SCU got back, four hex digits.
    pub status: Option<String>,
    pub error: Option<String>,
    pub received: bool,
    pub byte_identical: bool,
}

/// The PS3.6 name of a transfer syntax (the UID as it came, padding and all).
fn transfer_syntax_name(uid: &str) -> Option<&'static str> {
    dicomtap_wire::syntax::name_of(uid.trim_end_matches(['\0', ' ']))
}

/// Events kept for the report. Bounded: under `--keep-running` other tools may send a lot.
#[derive(Default)]
struct Collected {
    events: Vec<ProxyEvent>,
    lost: u64,
}

const MAX_KEPT_EVENTS: usize = 100_000;

/// P-DATA summaries and data fragments are many and not needed for the report.
fn worth_keeping(ev: &ProxyEvent) -> bool {
    match ev.wire() {
        Some(w) => !matches!(w.kind, EventKind::PData(_) | EventKind::DataFragment(_)),
        None => true,
    }
}

async fn collect(mut rx: broadcast::Receiver<ProxyEvent>, into: Arc<Mutex<Collected>>) {
    loop {
        match rx.recv().await {
            Ok(ev) => {
                if worth_keeping(&ev) {
                    let mut c = into.lock().unwrap_or_else(|e| e.into_inner());
                    if c.events.len() < MAX_KEPT_EVENTS {
                        c.events.push(ev);
                    } else {
                        c.lost += 1;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                into.lock().unwrap_or_else(|e| e.into_inner()).lost += n;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// A running demo: SCP, proxy, and the event collector.
pub struct DemoSession {
    opts: DemoOptions,
    out_dir: PathBuf,
    recording_dir: PathBuf,
    study_dir: PathBuf,
    study: Study,
    scp: Option<StorageScp>,
    proxy: Option<RunningProxy>,
    proxy_listen: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    collected: Arc<Mutex<Collected>>,
    collector: JoinHandle<()>,
    echo: Option<EchoOutcome>,
    store: Option<StoreOutcome>,
}

/// A fresh directory under the system temp dir, named so that runs never collide.
fn fresh_demo_dir() -> PathBuf {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("dicomtap-demo-{}-{stamp}", std::process::id()))
}

/// Creates `dir` (and missing parents) readable by its owner only: it will hold
/// patient-like data. An existing directory is left as it is (think `--out /tmp`).
fn create_private_dir(dir: &Path) -> Result<(), DemoError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))
}

impl DemoSession {
    /// Generates the study, starts the SCP and the proxy in front of it.
    pub async fn start(opts: DemoOptions) -> Result<DemoSession, DemoError> {
        let out_dir = opts.out_dir.clone().unwrap_or_else(fresh_demo_dir);
        let recording_dir = out_dir.join("recording");
        let study_dir = out_dir.join("study");
        create_private_dir(&out_dir)?;
        create_private_dir(&study_dir)?;

        let study = study::generate(&opts.study)?;
        for obj in &study.objects {
            let path = study_dir.join(format!("{}.dcm", obj.sop_instance_uid));
            let bytes = obj.to_part10(Some(&opts.scu_ae_title))?;
            tokio::fs::write(&path, bytes)
                .await
                .map_err(io_err(format!("writing {}", path.display())))?;
        }

        let scp_config = ScpConfig {
            ae_title: opts.scp_ae_title.clone(),
            port: opts.scp_port,
            storage: ScpStorage::Memory {
                max_total_bytes: 256 * 1024 * 1024,
            },
            ..ScpConfig::default()
        };
        let scp = tokio::task::spawn_blocking(move || StorageScp::start(scp_config))
            .await
            .map_err(|e| DemoError::Task(e.to_string()))??;
        let scp_addr = scp.local_addr();

        let mut recording = RecordingConfig::new(&recording_dir);
        recording.payload = opts.payload;
        // The demo reads its own files right after shutdown; flush often.
        recording.flush_interval_ms = 50;
        let config = ProxyConfig {
            listeners: vec![ListenerConfig::new(
                SocketAddr::from((Ipv4Addr::LOCALHOST, opts.proxy_port)),
                scp_addr,
            )],
            metrics_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, opts.metrics_port))),
            recording: Some(recording),
            ..ProxyConfig::default()
        };
        let proxy = RunningProxy::start(config).await?;
        let proxy_listen = proxy
            .listen_addrs()
            .first()
            .copied()
            .ok_or_else(|| DemoError::Task("the proxy reported no listener".into()))?;
        let metrics_addr = proxy.metrics_addr();
        let collected = Arc::new(Mutex::new(Collected::default()));
        let collector = tokio::spawn(collect(proxy.subscribe_events(), collected.clone()));
        info!(%proxy_listen, %scp_addr, dir = %out_dir.display(), "demo started");
        Ok(DemoSession {
            opts,
            out_dir,
            recording_dir,
            study_dir,
            study,
            scp: Some(scp),
            proxy: Some(proxy),
            proxy_listen,
            metrics_addr,
            collected,
            collector,
            echo: None,
            store: None,
        })
    }

    /// Where clients connect.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_listen
    }

    /// The metrics endpoint.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The generated study.
    pub fn study(&self) -> &Study {
        &self.study
    }

    /// Sends the demo traffic through the proxy: a C-ECHO association, then one C-STORE
    /// association with the whole study.
    pub async fn exercise(&mut self) -> Result<(), DemoError> {
        let opts = ScuOptions {
            calling_ae_title: self.opts.scu_ae_title.clone(),
            called_ae_title: self.opts.scp_ae_title.clone(),
            ..ScuOptions::default()
        };
        let addr = self.proxy_listen;
        let echo_opts = opts.clone();
        let echo = tokio::task::spawn_blocking(move || scu::echo(addr, &echo_opts))
            .await
            .map_err(|e| DemoError::Task(e.to_string()))??;
        debug!(status = echo.status, "demo C-ECHO done");
        self.echo = Some(echo);
        let objects = self.study.objects.clone();
        let store = tokio::task::spawn_blocking(move || scu::store(addr, &opts, &objects))
            .await
            .map_err(|e| DemoError::Task(e.to_string()))??;
        debug!(objects = store.results.len(), "demo C-STORE done");
        self.store = Some(store);
        Ok(())
    }

    /// A report of everything so far, with the proxy still running (the recording may
    /// not be flushed yet).
    pub async fn snapshot(&self) -> DemoReport {
        // Give the per-association analysis a moment to catch up with the traffic.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let metric_lines = self.metric_lines().await;
        let files = self
            .proxy
            .as_ref()
            .map(RunningProxy::recording_files)
            .unwrap_or_default();
        self.report(metric_lines, files, None)
    }

    async fn metric_lines(&self) -> Vec<String> {
        match self.metrics_addr {
            Some(addr) => match fetch_metrics(addr).await {
                Ok(body) => pick_metric_lines(&body, 14),
                Err(e) => {
                    warn!(error = %e, "demo could not fetch /metrics");
                    vec![format!("# {e}")]
                }
            },
            None => Vec::new(),
        }
    }

    /// Fetches the metrics, shuts the proxy down (flushing the recording) and the SCP,
    /// and reports.
    pub async fn finish(mut self) -> Result<DemoReport, DemoError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let metric_lines = self.metric_lines().await;
        let summary = match self.proxy.take() {
            Some(p) => Some(p.shutdown(self.opts.drain).await?),
            None => None,
        };
        // The event channel closes when the proxy is gone; wait for the last events.
        let collector = std::mem::replace(&mut self.collector, tokio::spawn(async {}));
        let abort = collector.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), collector)
            .await
            .is_err()
        {
            abort.abort();
            warn!("event channel still open after shutdown; reporting what arrived");
        }
        let files = summary
            .as_ref()
            .map(|s| s.recording_files.clone())
            .unwrap_or_default();
        let report = self.report(metric_lines, files, summary);
        if let Some(scp) = self.scp.take() {
            let drain = self.opts.drain;
            tokio::task::spawn_blocking(move || scp.shutdown(drain))
                .await
                .map_err(|e| DemoError::Task(e.to_string()))?;
        }
        Ok(report)
    }

    fn report(
        &self,
        metric_lines: Vec<String>,
        files: Vec<PathBuf>,
        summary: Option<ProxySummary>,
    ) -> DemoReport {
        let (associations, events_lost) = {
            let c = self.collected.lock().unwrap_or_else(|e| e.into_inner());
            (build_associations(&c.events), c.lost)
        };
        let objects = self.check_objects();
        let scp_received_objects = self
            .scp
            .as_ref()
            .map(|scp| scp.received().len())
            .unwrap_or(0);
        let recording_files: Vec<RecordingFile> = files.iter().map(|p| describe_file(p)).collect();
        let echo_ok = self.echo.as_ref().is_some_and(|e| e.status == 0);
        let objects_ok = !objects.is_empty()
            && objects
                .iter()
                .all(|o| o.status.as_deref() == Some("0000") && o.byte_identical);
        let files_ok = recording_files.iter().any(|f| f.kind == "events")
            && (self.opts.payload == PayloadMode::None
                || recording_files.iter().any(|f| f.kind == "pcapng"));
        DemoReport {
            proxy_listen: self.proxy_listen,
            scp_listen: self
                .scp
                .as_ref()
                .map(StorageScp::local_addr)
                .unwrap_or(self.proxy_listen),
            scp_ae_title: self.opts.scp_ae_title.clone(),
            metrics_url: self.metrics_addr.map(|a| format!("http://{a}/metrics")),
            out_dir: self.out_dir.clone(),
            recording_dir: self.recording_dir.clone(),
            study_dir: self.study_dir.clone(),
            study_instance_uid: self.study.study_instance_uid.clone(),
            recording_files,
            associations,
            echo: self.echo.clone(),
            store: self.store.clone(),
            objects,
            scp_received_objects,
            metric_lines,
            events_lost,
            proxy_summary: summary,
            ok: echo_ok && objects_ok && files_ok,
        }
    }

    fn check_objects(&self) -> Vec<ObjectCheck> {
        let received = self
            .scp
            .as_ref()
            .map(StorageScp::received)
            .unwrap_or_default();
        let results = self.store.as_ref().map(|s| s.results.as_slice());
        self.study
            .objects
            .iter()
            .map(|obj| {
                let result = results.and_then(|rs| {
                    rs.iter()
                        .find(|r| r.sop_instance_uid == obj.sop_instance_uid)
                });
                let got = received
                    .iter()
                    .find(|r| r.sop_instance_uid == obj.sop_instance_uid);
                ObjectCheck {
                    sop_class: sop_class_keyword(&obj.sop_class_uid),
                    sop_instance_uid: obj.sop_instance_uid.clone(),
                    transfer_syntax: obj.transfer_syntax.clone(),
                    transfer_syntax_name: transfer_syntax_name(&obj.transfer_syntax)
                        .map(str::to_string),
                    bytes: obj.dataset.len() as u64,
                    status: result.and_then(|r| r.status).map(|s| format!("{s:04X}")),
                    error: result.and_then(|r| r.error.clone()),
                    received: got.is_some(),
                    byte_identical: got
                        .and_then(|r| r.dataset.as_ref())
                        .is_some_and(|d| *d == obj.dataset),
                }
            })
            .collect()
    }
}

/// Runs the whole demo: start, traffic, metrics, shutdown, report.
pub async fn run_demo(opts: DemoOptions) -> Result<DemoReport, DemoError> {
    let mut session = DemoSession::start(opts).await?;
    if let Err(e) = session.exercise().await {
        // Still shut down cleanly so the recording of the failure is readable.
        let _ = session.finish().await;
        return Err(e);
    }
    session.finish().await
}

fn describe_file(path: &Path) -> RecordingFile {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = if name.contains(".pcapng") {
        "pcapng"
    } else if name.contains(".jsonl") || name.contains("events") {
        "events"
    } else {
        "other"
    };
    let meta = std::fs::metadata(path).ok();
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        meta.as_ref().map(|m| m.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let mode = None;
    RecordingFile {
        path: path.to_path_buf(),
        kind,
        bytes: meta.map(|m| m.len()).unwrap_or(0),
        mode,
    }
}

/// GET /metrics over a plain TCP connection (HTTP/1.0, so no chunking to undo), bounded
/// in time and size.
async fn fetch_metrics(addr: SocketAddr) -> Result<String, DemoError> {
    const MAX: u64 = 16 << 20;
    let fail = |why: String| DemoError::Metrics { addr, why };
    let body = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut buf = Vec::new();
        stream.take(MAX).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    })
    .await
    .map_err(|_| fail("timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&body);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no HTTP header end".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(fail(format!("answered {status:?}")));
    }
    Ok(body.to_string())
}

/// The interesting non-zero samples: no comments, no histogram buckets.
fn pick_metric_lines(body: &str, max: usize) -> Vec<String> {
    body.lines()
        .filter(|l| l.starts_with("dicomtap_") && !l.contains("_bucket"))
        .filter(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v != 0.0)
        })
        .take(max)
        .map(str::to_string)
        .collect()
}

/// Folds the proxy's events into one report per association.
fn build_associations(events: &[ProxyEvent]) -> Vec<AssociationReport> {
    struct Work {
        report: AssociationReport,
        proposed: BTreeMap<u8, String>,
        /// Requests not answered yet, by (message ID).
        open: Vec<ExchangeReport>,
        released: bool,
        aborted: Option<String>,
    }
    let mut by_id: BTreeMap<u64, Work> = BTreeMap::new();
    for ev in events {
        let w = by_id.entry(ev.association).or_insert_with(|| Work {
            report: AssociationReport {
                id: ev.association,
                ..AssociationReport::default()
            },
            proposed: BTreeMap::new(),
            open: Vec::new(),
            released: false,
            aborted: None,
        });
        w.report.client = Some(ev.client);
        if ev.upstream.is_some() {
            w.report.upstream = ev.upstream;
        }
        match &ev.kind {
            ProxyEventKind::Proxy(n) => match &n.what {
                Notice::Closed {
                    duration_us, how, ..
                } => {
                    w.report.duration_us = Some(*duration_us);
                    if w.report.ended.is_empty() {
                        w.report.ended = how.clone();
                    }
                }
                Notice::UpstreamError { kind, message } => {
                    w.report.notes.push(format!("upstream {kind}: {message}"));
                }
                Notice::ProxyReject { why, .. } => {
                    w.report.notes.push(format!("proxy rejected: {why}"));
                }
                Notice::ProxyAbort { to, why } => {
                    w.report.notes.push(format!("proxy aborted {to}: {why}"));
                }
                _ => {}
            },
            ProxyEventKind::Conformance(c) => {
                w.report.notes.push(format!("conformance: {}", c.finding))
            }
            ProxyEventKind::Wire(e) => match &e.kind {
                EventKind::AssociateRq(rq) => {
                    w.report.calling_ae = rq.calling_ae.clone();
                    w.report.called_ae = rq.called_ae.clone();
                    w.report.proposed_contexts = rq.contexts.len();
                    for pc in &rq.contexts {
                        w.proposed.insert(pc.id, pc.abstract_syntax.clone());
                    }
                }
                EventKind::AssociateAc(ac) => {
                    for r in &ac.results {
                        let abstract_syntax = w.proposed.get(&r.id).cloned().unwrap_or_default();
                        let ctx = ContextReport {
                            id: r.id,
                            sop_class: sop_class_keyword(&abstract_syntax),
                            abstract_syntax,
                            transfer_syntax: r.transfer_syntax.clone(),
                            transfer_syntax_name: r
                                .transfer_syntax
                                .as_deref()
                                .and_then(transfer_syntax_name)
                                .map(str::to_string),
                            result: r.result_name.to_string(),
                        };
                        if r.accepted() {
                            w.report.accepted_contexts.push(ctx);
                        } else {
                            w.report.rejected_contexts.push(ctx);
                        }
                    }
                }
                EventKind::AssociateRj(rj) => {
                    w.report.ended = format!("rejected: {}", rj.description);
                }
                EventKind::ReleaseRp => w.released = true,
                EventKind::Abort(a) => {
                    w.aborted = Some(format!("aborted: {}", a.description));
                }
                EventKind::Command(c) => {
                    let cmd = &c.command;
                    let sop_class = cmd
                        .affected_sop_class
                        .clone()
                        .or_else(|| cmd.requested_sop_class.clone())
                        .or_else(|| c.abstract_syntax.clone())
                        .map(|u| sop_class_keyword(&u));
                    if cmd.is_request() {
                        w.open.push(ExchangeReport {
                            command: cmd.command.trim_end_matches("-RQ").to_string(),
                            message_id: cmd.message_id,
                            sop_class,
                            sop_instance: cmd.affected_sop_instance.clone(),
                            status: None,
                            status_class: None,
                            latency_us: None,
                        });
                    } else {
                        let pos = w.open.iter().position(|x| {
                            x.message_id.is_some() && x.message_id == cmd.responded_to
                        });
                        let mut x = match pos {
                            Some(i) => w.open.remove(i),
                            None => ExchangeReport {
                                command: cmd.command.trim_end_matches("-RSP").to_string(),
                                message_id: cmd.responded_to,
                                sop_class: sop_class.clone(),
                                sop_instance: cmd.affected_sop_instance.clone(),
                                status: None,
                                status_class: None,
                                latency_us: None,
                            },
                        };
                        if let Some(s) = &cmd.status {
                            x.status = Some(s.code.clone());
                            x.status_class = Some(format!("{:?}", s.class).to_lowercase());
                        }
                        x.latency_us = c.latency_us;
                        w.report.exchanges.push(x);
                    }
                }
                EventKind::DatasetPeek(p) => {
                    w.report.datasets.push(DatasetReport {
                        message_id: p.message_id,
                        sop_class: p.peek.sop_class_uid.as_deref().map(sop_class_keyword),
                        modality: p.peek.modality.clone(),
                        specific_character_set: p.peek.specific_character_set.clone(),
                        invalid_text_values: p.peek.invalid_text.len(),
                        unchecked_character_sets: p.peek.unchecked_character_sets.clone(),
                    });
                }
                EventKind::Finding(f) => {
                    w.report
                        .notes
                        .push(format!("{} {:?}: {}", f.severity, f.code, f.message));
                }
                _ => {}
            },
        }
    }
    by_id
        .into_values()
        .map(|mut w| {
            // Requests never answered are still exchanges worth listing.
            w.report.exchanges.append(&mut w.open);
            // An abort outranks a release; either outranks how TCP ended.
            if let Some(a) = w.aborted {
                w.report.ended = a;
            } else if w.released {
                w.report.ended = "released".into();
            }
            w.report
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_skip_comments_buckets_and_zeros() {
        let body = "# HELP x\n# TYPE x counter\ndicomtap_a_total 3\ndicomtap_b_total 0\n\
                    dicomtap_c_seconds_bucket{le=\"1\"} 2\nother_metric 5\ndicomtap_d{x=\"y z\"} 1.5\n";
        assert_eq!(
            pick_metric_lines(body, 10),
            vec!["dicomtap_a_total 3", "dicomtap_d{x=\"y z\"} 1.5"]
        );
    }

    #[test]
    fn transfer_syntax_names() {
        assert_eq!(
            transfer_syntax_name("1.2.840.10008.1.2\0"),
            Some("Implicit VR Little Endian")
        );
        assert_eq!(transfer_syntax_name("1.2.3"), None);
    }
}
