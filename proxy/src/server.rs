//! The live proxy: listeners, one task per association, byte-exact forwarding in both
//! directions, fault answers (A-ASSOCIATE-RJ, A-ABORT), and the copies handed to the
//! analysis engine, the metrics and the recorder.
//!
//! Forwarding never waits on understanding: each direction reads into its buffer, writes
//! the bytes on unchanged, then hands a copy to the association's analysis task through a
//! bounded queue (when it is full the engine is told of a gap) and to the recorder (drop and
//! count, or backpressure, as configured).

mod budget;
mod chunks;
pub mod framing;
mod origdst;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicomtap_wire::{Conversation, EngineConfig, Side, StreamEnd};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use dicomtap_analyzer::capture::{ConnId, ConnectionInfo, RequestorBy};
use dicomtap_analyzer::conformance::{Checker, ConformanceFinding};
use dicomtap_analyzer::session::SessionBuilder;

use crate::config::{EventTap, Limits, ListenerConfig, ProxyConfig};
use crate::metrics::{AssociationObserver, Metrics};
use crate::recorder::{RecordMsg, Recorder, RecorderHandle, now_us};
use crate::tls::{Conn, ConnRead, ConnWrite, Leg, ListenerTls};
use budget::{EventBudget, Held};
use chunks::ChunkPool;
use dicomtap_analyzer::text::escape_controls;
use framing::PduFramer;

pub use crate::events::{ConformanceEvent, Notice, ProxyEvent, ProxyEventKind, ProxyNotice};

/// Why the proxy could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("configuration: {0}")]
    Config(String),
    // The cause follows as the error's source (printed once, by the chain).
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("recording")]
    Recorder(#[from] crate::recorder::RecorderError),
    #[error("metrics: {0}")]
    Metrics(String),
    /// A certificate, key or trust store could not be used (the message names the file).
    #[error("TLS: {0}")]
    Tls(crate::tls::TlsError),
    #[error("statements: {0}")]
    Statements(String),
}

/// What a proxy run did, returned by [`RunningProxy::shutdown`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxySummary {
    pub associations: u64,
    pub bytes_from_requestors: u64,
    pub bytes_from_acceptors: u64,
    /// Associations still open when the drain timeout ran out (they were closed), in any
    /// phase: forwarding, connecting upstream, in a TLS handshake, waiting for the first
    /// PDU, or being answered with an A-ASSOCIATE-RJ.
    pub cut_at_drain: usize,
    /// Chunks (and event lines) and forwarded bytes missing from the recording.
    pub recorder_dropped: u64,
    pub recorder_dropped_bytes: u64,
    pub recording_files: Vec<PathBuf>,
}

/// State shared by the listeners and every association.
struct Shared {
    limits: Limits,
    metrics: Arc<Metrics>,
    events: broadcast::Sender<ProxyEvent>,
    recorder: Option<RecorderHandle>,
    /// The fleet publisher's queue: gets what the recorder gets, waited for likewise.
    tap: Option<EventTap>,
    engine: EngineConfig,
    /// Conformance rules, shared by all associations (Storage Commitment and simultaneous
    /// associations span several).
    checker: Option<Mutex<Checker>>,
    next_id: AtomicU64,
    active: AtomicUsize,
    /// Connections being turned away (limit rejects): bounded too.
    rejecting: AtomicUsize,
    /// Admitted associations per source address (entries removed at 0), for
    /// `limits.max_associations_per_source`.
    per_source: Mutex<HashMap<IpAddr, usize>>,
    analyses: AtomicUsize,
    associations: AtomicU64,
    bytes: [AtomicU64; 2],
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    /// Set when the drain time is over: open associations are cut (A-ABORT where between
    /// PDUs, close, `closed` event) rather than dropped silently.
    cut: watch::Sender<bool>,
}

impl Shared {
    /// Counts one more association from `ip`, unless that would pass the per-source
    /// limit (then `false`, nothing counted).
    fn admit_source(&self, ip: IpAddr) -> bool {
        let limit = self.limits.per_source_limit();
        let mut map = self
            .per_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if limit.is_some_and(|l| *n >= l) {
            if *n == 0 {
                map.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn release_source(&self, ip: IpAddr) {
        let mut map = self
            .per_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    /// Associations not ended yet: admitted ones and those being turned away.
    fn open(&self) -> usize {
        self.active.load(Ordering::Acquire) + self.rejecting.load(Ordering::Acquire)
    }

    /// Runs `work` (an association's steps before forwarding, which are not cut-aware
    /// themselves) until it is done, or until the drain time is over (`None`; `work` is
    /// dropped, which closes its sockets).
    async fn unless_cut<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut cut_rx = self.cut.subscribe();
        tokio::select! {
            r = work => Some(r),
            () = async {
                if cut_rx.wait_for(|c| *c).await.is_err() {
                    // The sender lives in `self`: cannot happen; never cut then.
                    std::future::pending::<()>().await;
                }
            } => None,
        }
    }
}

/// How long past the drain time shutdown may take to cut the associations still open
/// (A-ABORT, close, `closed` event) and let the analyses log their last events.
pub const CUT_GRACE: Duration = Duration::from_millis(1000);

/// A started proxy: its sockets are bound and it serves until [`RunningProxy::shutdown`].
pub struct RunningProxy {
    listen_addrs: Vec<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    metrics_task: Option<JoinHandle<()>>,
    recorder: Option<Recorder>,
    /// Per listener, in configuration order: its TLS (reloaded by [`RunningProxy::reload_tls`]).
    tls: Vec<Arc<ListenerTls>>,
}

impl RunningProxy {
    /// Binds every listener (and the metrics endpoint), starts the recorder, and serves.
    pub async fn start(config: ProxyConfig) -> Result<RunningProxy, ProxyError> {
        config.validate().map_err(ProxyError::Config)?;
        let metrics = Arc::new(
            Metrics::with_labels(config.metrics.ae_title_cap, &config.identity.labels())
                .map_err(|e| ProxyError::Metrics(e.to_string()))?,
        );
        let tls = config
            .listeners
            .iter()
            .map(|l| ListenerTls::load(l.tls.as_ref(), l.upstream_tls.as_ref()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProxyError::Tls)?;
        let metrics_token = crate::access::load_metrics_token(
            config.metrics_token.as_deref(),
            config.metrics_token_file.as_deref(),
        )
        .map_err(ProxyError::Config)?;
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let sock = TcpListener::bind(l.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    addr: l.listen,
                    source,
                })?;
            let addr = sock.local_addr().map_err(|source| ProxyError::Bind {
                addr: l.listen,
                source,
            })?;
            listeners.push((sock, addr, Arc::new(l.clone())));
        }
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ProxyError::Bind { addr, source })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let recorder = match &config.recording {
            Some(rc) => Some(Recorder::start(rc.clone(), metrics.clone())?),
            None => None,
        };
        let (events, _) = broadcast::channel(4096);
        let engine = EngineConfig {
            max_association_pdu: config.limits.max_associate_rq_bytes.max(64 * 1024),
            ..EngineConfig::default()
        };
        let checker = match &config.statements {
            Some(dir) => {
                let statements = dicomtap_analyzer::statement::load_dir(dir)
                    .map_err(|e| ProxyError::Statements(format!("{}: {e}", dir.display())))?;
                let mut checker = Checker::new(statements);
                checker.set_source("live");
                Some(Mutex::new(checker))
            }
            None => None,
        };
        // Data set bytes for the rules, and for the fleet's Storage Commitment events.
        let engine = if checker.is_some() || config.fleet.is_some() {
            Checker::engine_config(engine)
        } else {
            engine
        };
        let shared = Arc::new(Shared {
            limits: config.limits.clone(),
            metrics: metrics.clone(),
            events,
            recorder: recorder.as_ref().map(|r| r.handle()),
            tap: config.event_tap.clone(),
            engine,
            checker,
            next_id: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            rejecting: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            analyses: AtomicUsize::new(0),
            associations: AtomicU64::new(0),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            tasks: Mutex::new(HashMap::new()),
            cut: watch::channel(false).0,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut listen_addrs = Vec::new();
        let mut accept_tasks = Vec::new();
        for ((sock, addr, lc), tls) in listeners.into_iter().zip(tls.iter().cloned()) {
            tracing::info!(
                "listening on {addr} -> {}",
                lc.upstream.as_deref().unwrap_or("original destination")
            );
            listen_addrs.push(addr);
            accept_tasks.push(tokio::spawn(accept_loop(
                sock,
                addr,
                lc,
                tls,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        let metrics_task = metrics_listener.map(|l| {
            tracing::info!(
                "metrics on http://{}/metrics",
                metrics_addr.map(|a| a.to_string()).unwrap_or_default()
            );
            tokio::spawn(crate::metrics::serve_with_token(
                l,
                metrics.clone(),
                stop_rx.clone(),
                metrics_token.clone(),
            ))
        });
        Ok(RunningProxy {
            listen_addrs,
            metrics_addr,
            shared,
            stop,
            accept_tasks,
            metrics_task,
            recorder,
            tls,
        })
    }

    /// Re-reads every TLS certificate, key and trust store (SIGHUP) and uses them for the
    /// handshakes from now on; open connections keep theirs. All or nothing: when a file
    /// cannot be used, the error is returned and the configurations in use stay. Returns
    /// the number of listeners with TLS.
    pub fn reload_tls(&self) -> Result<usize, ProxyError> {
        let prepared = self
            .tls
            .iter()
            .map(|t| t.prepare())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProxyError::Tls)?;
        let mut n = 0;
        for (t, p) in self.tls.iter().zip(prepared) {
            n += usize::from(t.is_active());
            t.install(p);
        }
        Ok(n)
    }

    /// The bound listener addresses, in configuration order (real ports when 0 was asked).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The metrics, e.g. to render them without HTTP.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Associations open now.
    pub fn active_associations(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// The files being written now: the pcapng capture (unless payload mode is none) and
    /// the event log.
    pub fn recording_files(&self) -> Vec<PathBuf> {
        self.recorder
            .as_ref()
            .map(|r| r.current_files())
            .unwrap_or_default()
    }

    /// Every event of every association from now on. A slow receiver loses events
    /// (`RecvError::Lagged`), never slows the proxy.
    pub fn subscribe_events(&self) -> broadcast::Receiver<ProxyEvent> {
        self.shared.events.subscribe()
    }

    /// Stops accepting, lets open associations finish for up to `drain`, closes the rest,
    /// flushes and closes the recording. Returns within `drain` plus [`CUT_GRACE`] (plus
    /// the time the recording takes to flush), however the open associations behave.
    pub async fn shutdown(self, drain: Duration) -> Result<ProxySummary, ProxyError> {
        let drain_end = Instant::now() + drain;
        let end = drain_end + CUT_GRACE;
        let _ = self.stop.send(true);
        for t in self.accept_tasks {
            let _ = t.await;
        }
        while self.shared.open() > 0 && Instant::now() < drain_end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cut = self.shared.open();
        if cut > 0 {
            tracing::warn!("drain timeout: closing {cut} open association(s)");
            // Each association ends itself, whatever phase it is in (connecting upstream, a
            // TLS handshake, waiting for the first PDU, forwarding): A-ABORT where between
            // PDUs, close, `closed` event. A task still running after that is aborted; its
            // association logs its `closed` event when dropped.
            let _ = self.shared.cut.send(true);
            let abort_at = drain_end + CUT_GRACE / 2;
            while self.shared.open() > 0 && Instant::now() < abort_at {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let handles: Vec<AbortHandle> = self
                .shared
                .tasks
                .lock()
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default();
            for h in handles {
                h.abort();
            }
        }
        // Analyses finish their queues and hand their last events to the recorder, within
        // what is left of the grace (at least a moment, for the `closed` events just sent).
        let end = end.max(Instant::now() + Duration::from_millis(100));
        while (self.shared.analyses.load(Ordering::Acquire) > 0 || self.shared.open() > 0)
            && Instant::now() < end
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let behind = self.shared.analyses.load(Ordering::Acquire);
        if behind > 0 {
            tracing::warn!(
                "drain: {behind} association analyses still running; their last events may be missing from the event log"
            );
        }
        if let Some(t) = self.metrics_task {
            let _ = t.await;
        }
        let mut summary = ProxySummary {
            associations: self.shared.associations.load(Ordering::Relaxed),
            bytes_from_requestors: self.shared.bytes[0].load(Ordering::Relaxed),
            bytes_from_acceptors: self.shared.bytes[1].load(Ordering::Relaxed),
            cut_at_drain: cut,
            recorder_dropped: 0,
            recorder_dropped_bytes: 0,
            recording_files: Vec::new(),
        };
        if let Some(rec) = self.recorder {
            let handle = rec.handle();
            let stats = rec.close().await?;
            summary.recording_files = stats.files;
            // After the close: its last writes may have failed too.
            summary.recorder_dropped = handle.dropped();
            summary.recorder_dropped_bytes = handle.dropped_bytes();
        }
        Ok(summary)
    }
}

async fn accept_loop(
    sock: TcpListener,
    local: SocketAddr,
    lc: Arc<ListenerConfig>,
    tls: Arc<ListenerTls>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = sock.accept() => a,
        };
        let (client, client_addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept on {local}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let max = shared.limits.max_associations;
        let admitted = shared
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        let source = client_addr.ip();
        let mut refuse = (!admitted).then_some(RejectWhy::Limit);
        if admitted && !shared.admit_source(source) {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            shared
                .metrics
                .connections_shed_total
                .with_label_values(&["source_limit"])
                .inc();
            refuse = Some(RejectWhy::SourceLimit);
        }
        if let Some(why) = refuse {
            if shared.rejecting.load(Ordering::Acquire) >= max.saturating_add(64) {
                tracing::warn!("association {id} from {client_addr}: over the limit, dropped");
                continue;
            }
            shared.rejecting.fetch_add(1, Ordering::AcqRel);
            let shared2 = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let assoc = Association::new(id, client_addr, local, shared2.clone());
                assoc.notice(Notice::Accepted { listen: local });
                let work = async {
                    if let Some(client) = tls_accept(&assoc, &tls, client).await {
                        reject(client, Vec::new(), &assoc, why, None).await;
                    }
                };
                if shared2.unless_cut(work).await.is_none() {
                    assoc.cut_before_forwarding().await;
                }
                drop(assoc);
                shared2.rejecting.fetch_sub(1, Ordering::AcqRel);
            });
            continue;
        }
        shared.metrics.associations_active.inc();
        shared.associations.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        let lc = lc.clone();
        let tls = tls.clone();
        let handle = tokio::spawn(async move {
            let _guard = ActiveGuard {
                id,
                source,
                shared: shared2.clone(),
            };
            run_association(id, client, client_addr, local, lc, tls, shared2).await;
        });
        if let Ok(mut tasks) = shared.tasks.lock()
            && !handle.is_finished()
        {
            tasks.insert(id, handle.abort_handle());
        }
    }
}

/// Keeps the active count and the task table right however the task ends.
struct ActiveGuard {
    id: u64,
    source: IpAddr,
    shared: Arc<Shared>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.shared.release_source(self.source);
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.associations_active.dec();
        if let Ok(mut t) = self.shared.tasks.lock() {
            t.remove(&self.id);
        }
    }
}

struct AnalysisGuard(Arc<Shared>);

impl Drop for AnalysisGuard {
    fn drop(&mut self) {
        self.0.analyses.fetch_sub(1, Ordering::AcqRel);
    }
}

enum AnalysisMsg {
    Data {
        from: Side,
        ts_us: u64,
        bytes: Bytes,
        gap_before: u64,
    },
    End {
        from: Side,
        ts_us: u64,
        how: StreamEnd,
    },
    Notice(ProxyNotice),
    Upstream(SocketAddr),
    Outcome(&'static str),
}

/// One association's copies: to its analysis task, to the recorder, to the counters.
struct Association {
    id: u64,
    client: SocketAddr,
    listen: SocketAddr,
    shared: Arc<Shared>,
    analysis: mpsc::Sender<AnalysisMsg>,
    analysis_gap: [AtomicU64; 2],
    rec_skip: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    /// `dicomtap_bytes_total` for each direction, resolved once (not per chunk).
    bytes_metric: [prometheus::IntCounter; 2],
    started: Instant,
    /// Milliseconds since `started` of the last byte either way.
    last_activity_ms: AtomicU64,
    recording: AtomicBool,
    /// Where the association is ([`Phase`] as u8), for the `closed` event of a cut.
    phase: AtomicU8,
    /// The `closed` event was logged: it is logged exactly once.
    closed_sent: AtomicBool,
    /// The client's first PDU has arrived whole (the ARTIM timer is stopped).
    rq_done: AtomicBool,
}

/// The steps of an association, named in its `closed` event when the drain cuts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    ClientTls,
    FirstPdu,
    ConnectingUpstream,
    UpstreamTls,
    Rejecting,
    Forwarding,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::ClientTls,
        Phase::FirstPdu,
        Phase::ConnectingUpstream,
        Phase::UpstreamTls,
        Phase::Rejecting,
        Phase::Forwarding,
    ];

    fn text(self) -> &'static str {
        match self {
            Phase::ClientTls => "client TLS handshake",
            Phase::FirstPdu => "waiting for the first PDU",
            Phase::ConnectingUpstream => "connecting upstream",
            Phase::UpstreamTls => "upstream TLS handshake",
            Phase::Rejecting => "answering with A-ASSOCIATE-RJ",
            Phase::Forwarding => "forwarding",
        }
    }
}

impl Association {
    fn new(id: u64, client: SocketAddr, listen: SocketAddr, shared: Arc<Shared>) -> Association {
        let (tx, rx) = mpsc::channel(shared.limits.analysis_queue_chunks.max(1));
        shared.analyses.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(analyse(id, client, shared.clone(), rx));
        let bytes_metric = [Side::Requestor, Side::Acceptor].map(|side| {
            shared
                .metrics
                .bytes_total
                .with_label_values(&[direction(side)])
        });
        Association {
            id,
            client,
            listen,
            shared,
            analysis: tx,
            analysis_gap: [AtomicU64::new(0), AtomicU64::new(0)],
            rec_skip: [AtomicU64::new(0), AtomicU64::new(0)],
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            bytes_metric,
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            phase: AtomicU8::new(Phase::ClientTls as u8),
            closed_sent: AtomicBool::new(false),
            rq_done: AtomicBool::new(false),
        }
    }

    fn count_rq_timeout(&self) {
        self.shared
            .metrics
            .connections_shed_total
            .with_label_values(&["associate_rq_timeout"])
            .inc();
    }

    /// When the client's A-ASSOCIATE-RQ must be complete: `associate_rq_timeout` after
    /// the connection was accepted (PS3.8 ARTIM).
    fn rq_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.started + self.shared.limits.associate_rq_timeout)
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    fn phase(&self) -> Phase {
        let p = self.phase.load(Ordering::Acquire);
        Phase::ALL
            .into_iter()
            .find(|x| *x as u8 == p)
            .unwrap_or(Phase::Forwarding)
    }

    /// The drain time ran out before forwarding began (connecting upstream, a TLS
    /// handshake, waiting for the first PDU, answering with an RJ): the sockets are
    /// already closed; log the end.
    async fn cut_before_forwarding(&self) {
        let phase = self.phase();
        tracing::warn!(assoc = self.id, client = %self.client, "cut at drain while {}", phase.text());
        self.end(Side::Requestor, StreamEnd::Close).await;
        self.closed(&format!("cut at drain ({})", phase.text()));
    }

    fn notice(&self, what: Notice) {
        let n = ProxyNotice {
            ts_us: now_us(),
            what,
        };
        // Notices are rare; wait-free try, then a spawned send so none is lost.
        self.control(AnalysisMsg::Notice(n));
    }

    fn control(&self, msg: AnalysisMsg) {
        if let Err(mpsc::error::TrySendError::Full(msg)) = self.analysis.try_send(msg) {
            let tx = self.analysis.clone();
            // Also called from `drop`, which may run outside the runtime (at its shutdown).
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        let _ = tx.send(msg).await;
                    });
                }
                Err(_) => tracing::debug!(assoc = self.id, "runtime gone: a notice is lost"),
            }
        }
    }

    /// Starts the recorded conversation.
    async fn open_recording(&self, upstream: SocketAddr, proxy_local: Option<SocketAddr>) {
        if let Some(rec) = &self.shared.recorder {
            let ok = rec
                .send_wait(RecordMsg::Open {
                    assoc: self.id,
                    ts_us: now_us(),
                    client: self.client,
                    upstream,
                    proxy_listen: self.listen,
                    proxy_local,
                })
                .await;
            self.recording.store(ok, Ordering::Release);
        }
    }

    /// Bytes sent by `from`, already forwarded: count, analyse, record.
    ///
    /// `bytes` is shared by reference with the analysis task and the recorder: no copy.
    async fn tap(&self, from: Side, ts_us: u64, bytes: Bytes) {
        let i = from.index();
        let n = bytes.len() as u64;
        self.bytes[i].fetch_add(n, Ordering::Relaxed);
        self.shared.bytes[i].fetch_add(n, Ordering::Relaxed);
        self.bytes_metric[i].inc_by(n);
        // Only the idle watch reads it: no clock read per chunk without an idle timeout.
        if self.shared.limits.idle_timeout.is_some() {
            self.last_activity_ms
                .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        let gap_before = self.analysis_gap[i].swap(0, Ordering::AcqRel);
        let msg = AnalysisMsg::Data {
            from,
            ts_us,
            bytes: bytes.clone(),
            gap_before,
        };
        if self.analysis.try_send(msg).is_err() {
            self.analysis_gap[i].fetch_add(gap_before + n, Ordering::AcqRel);
            self.shared.metrics.analysis_dropped_bytes_total.inc_by(n);
        }
        if self.recording.load(Ordering::Acquire)
            && let Some(rec) = &self.shared.recorder
        {
            let skipped_before = self.rec_skip[i].swap(0, Ordering::AcqRel);
            let msg = RecordMsg::Data {
                assoc: self.id,
                ts_us,
                from,
                bytes,
                skipped_before,
            };
            if !rec.send(msg).await {
                self.rec_skip[i].fetch_add(skipped_before + n, Ordering::AcqRel);
            }
        }
    }

    async fn end(&self, from: Side, how: StreamEnd) {
        let ts_us = now_us();
        self.control(AnalysisMsg::End { from, ts_us, how });
        if self.recording.load(Ordering::Acquire)
            && let Some(rec) = &self.shared.recorder
        {
            rec.send_wait(RecordMsg::End {
                assoc: self.id,
                ts_us,
                from,
                how,
                skipped_before: self.rec_skip[from.index()].swap(0, Ordering::AcqRel),
            })
            .await;
        }
    }

    /// Logs the association's end: the first call does, later ones do nothing.
    fn closed(&self, how: &str) {
        if self.closed_sent.swap(true, Ordering::AcqRel) {
            return;
        }
        self.notice(Notice::Closed {
            bytes_from_requestor: self.bytes[0].load(Ordering::Relaxed),
            bytes_from_acceptor: self.bytes[1].load(Ordering::Relaxed),
            duration_us: self.started.elapsed().as_micros() as u64,
            how: how.to_string(),
        });
        tracing::info!(
            assoc = self.id,
            client = %self.client,
            "association closed ({how}): {} bytes from requestor, {} from acceptor",
            self.bytes[0].load(Ordering::Relaxed),
            self.bytes[1].load(Ordering::Relaxed)
        );
    }
}

impl Drop for Association {
    /// A task aborted (or a path that forgot): the association still gets its `closed`.
    fn drop(&mut self) {
        if self.closed_sent.load(Ordering::Acquire) {
            return;
        }
        let phase = self.phase().text();
        let how = if *self.shared.cut.borrow() {
            format!("cut at drain ({phase})")
        } else {
            format!("ended ({phase})")
        };
        self.closed(&how);
    }
}

fn direction(from: Side) -> &'static str {
    match from {
        Side::Requestor => "to_upstream",
        Side::Acceptor => "to_client",
    }
}

/// The analysis side of one association: the wire engine, metrics, event fan-out.
async fn analyse(
    id: u64,
    client: SocketAddr,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<AnalysisMsg>,
) {
    let _guard = AnalysisGuard(shared.clone());
    let mut conv = Conversation::new(shared.engine.clone());
    let mut observer = AssociationObserver::new(shared.metrics.clone());
    // Only kept for the conformance rules, which read sessions when associations end.
    let mut session = shared
        .checker
        .as_ref()
        .map(|_| SessionBuilder::new(id, Some(client), None));
    let mut conn_info = ConnectionInfo {
        id: ConnId(id),
        client,
        server: client,
        first_ts_us: now_us(),
        requestor_known_by: RequestorBy::SynSeen,
    };
    let mut framers = [PduFramer::new(), PduFramer::new()];
    let mut upstream = None;
    let kept = shared.recorder.is_some() || shared.tap.is_some();
    // The event for the subscribers, the recorder and the fleet tap; `None` when none
    // would see it (no recording, no fleet and nobody subscribed: the usual case outside
    // tests and the demo), which spares building and moving it.
    let emit = |kind: ProxyEventKind, upstream: Option<SocketAddr>| {
        let subscribed = shared.events.receiver_count() > 0;
        if !subscribed && !kept {
            return None;
        }
        let ev = ProxyEvent {
            association: id,
            client,
            upstream,
            kind,
        };
        if subscribed {
            let _ = shared.events.send(ev.clone());
        }
        kept.then_some(ev)
    };
    // For the recorder, per message; reused.
    let mut out: Vec<ProxyEvent> = Vec::new();
    // Storage Commitment data set fragments, for the fleet tap only (not logged).
    let mut tap_only: Vec<ProxyEvent> = Vec::new();
    let mut budget = EventBudget::new();
    let held = |why: Held| {
        shared
            .metrics
            .event_log_suppressed_total
            .with_label_values(&[why.label()])
            .inc();
    };
    let summary = |budget: &mut EventBudget| {
        budget.take_summary().map(|s| {
            ProxyEventKind::Proxy(ProxyNotice {
                ts_us: now_us(),
                what: Notice::EventsSuppressed(s),
            })
        })
    };
    let mut commit_dataset = CommitDataset::default();
    while let Some(msg) = rx.recv().await {
        match msg {
            AnalysisMsg::Data {
                from,
                ts_us,
                bytes,
                gap_before,
            } => {
                let i = from.index();
                budget.traffic(bytes.len() as u64);
                if gap_before > 0 {
                    conv.gap(from, ts_us, gap_before);
                    framers[i] = PduFramer::new();
                }
                framers[i].scan(&bytes, |t, len| observer.observe_pdu(t, len));
                conv.feed(from, ts_us, &bytes);
            }
            AnalysisMsg::End { from, ts_us, how } => conv.end(from, ts_us, how),
            AnalysisMsg::Notice(n) => {
                match &n.what {
                    Notice::UpstreamError { kind, .. } => {
                        shared
                            .metrics
                            .upstream_errors_total
                            .with_label_values(&[kind.as_str()])
                            .inc();
                    }
                    Notice::ProxyAbort { .. } => {
                        shared
                            .metrics
                            .aborts_total
                            .with_label_values(&["proxy"])
                            .inc();
                    }
                    Notice::Closed { .. } => {
                        if let Some(s) = summary(&mut budget) {
                            budget.notice();
                            out.extend(emit(s, upstream));
                        }
                    }
                    _ => {}
                }
                budget.notice();
                out.extend(emit(ProxyEventKind::Proxy(n), upstream));
            }
            AnalysisMsg::Upstream(u) => {
                upstream = Some(u);
                conn_info.server = u;
            }
            AnalysisMsg::Outcome(o) => observer.outcome(o),
        }
        // Events are looked at in place and only taken when someone gets them.
        while let Some(ev) = conv.peek_event() {
            observer.observe(ev);
            if let Some(checker) = &shared.checker {
                if let Some(s) = session.as_mut() {
                    s.observe(ev);
                }
                let findings = match checker.lock() {
                    Ok(mut c) => {
                        c.observe(&conn_info, ev);
                        c.drain()
                    }
                    Err(_) => Vec::new(),
                };
                for f in findings {
                    let kind = format!("conformance:{}", f.rule);
                    let ev = conformance_event(&shared, f);
                    match budget.finding(&kind) {
                        Ok(()) => out.extend(emit(ev, upstream)),
                        Err(why) => held(why),
                    }
                }
            }
            // Data set bytes are for the rules only; they are not part of the event log.
            // Those of Storage Commitment data sets (UIDs only) also go to subscribers,
            // for the fleet's checks across instances (docs/fleet.md).
            let to_subscribers = commit_dataset.track(ev)
                && (shared.events.receiver_count() > 0 || shared.tap.is_some());
            let logged = !matches!(ev.kind, dicomtap_wire::EventKind::DataFragment(_))
                && (kept || shared.events.receiver_count() > 0);
            if to_subscribers {
                if let Some(ev) = conv.poll() {
                    let ev = ProxyEvent {
                        association: id,
                        client,
                        upstream,
                        kind: ProxyEventKind::Wire(ev),
                    };
                    if shared.tap.is_some() {
                        tap_only.push(ev.clone());
                    }
                    let _ = shared.events.send(ev);
                }
            } else if !logged {
                conv.skip();
            } else if let Err(why) = budget.wire(ev) {
                held(why);
                conv.skip();
            } else if let Some(ev) = conv.poll() {
                out.extend(emit(ProxyEventKind::Wire(budget.trim(ev)), upstream));
            }
        }
        if let Some(tap) = &shared.tap {
            for ev in tap_only.drain(..) {
                let _ = tap.send(ev).await;
            }
        }
        for ev in out.drain(..) {
            deliver(&shared, ev).await;
        }
    }
    observer.outcome("no_response");
    if let (Some(checker), Some(s)) = (&shared.checker, session) {
        let findings = match checker.lock() {
            Ok(mut c) => {
                c.end_association(&conn_info, &s.finish());
                c.drain()
            }
            Err(_) => Vec::new(),
        };
        for f in findings {
            let kind = format!("conformance:{}", f.rule);
            let ev = conformance_event(&shared, f);
            match budget.finding(&kind) {
                Ok(()) => out.extend(emit(ev, upstream)),
                Err(why) => held(why),
            }
        }
    }
    // Held back after `closed` (or no `closed` came): told last.
    if let Some(s) = summary(&mut budget) {
        budget.notice();
        out.extend(emit(s, upstream));
    }
    shared
        .metrics
        .event_log_lines
        .observe(budget.lines_logged() as f64);
    for ev in out.drain(..) {
        deliver(&shared, ev).await;
    }
}

/// Hands an event to the fleet tap and to the recorder, waiting for room in each (this
/// runs on the analysis task: forwarding does not wait).
async fn deliver(shared: &Shared, ev: ProxyEvent) {
    match (&shared.tap, &shared.recorder) {
        (Some(tap), Some(rec)) => {
            let _ = tap.send(ev.clone()).await;
            rec.send_wait(RecordMsg::Event(Box::new(ev))).await;
        }
        (Some(tap), None) => {
            let _ = tap.send(ev).await;
        }
        (None, Some(rec)) => {
            rec.send_wait(RecordMsg::Event(Box::new(ev))).await;
        }
        (None, None) => {}
    }
}

/// Follows which data set of an association is a Storage Commitment one (N-ACTION-RQ or
/// N-EVENT-REPORT-RQ of the Push Model), so its fragments reach the event subscribers.
#[derive(Default)]
struct CommitDataset {
    current: Option<(u8, dicomtap_wire::Side)>,
}

impl CommitDataset {
    /// Whether `ev` is a fragment of a Storage Commitment data set.
    fn track(&mut self, ev: &dicomtap_wire::Event) -> bool {
        use dicomtap_analyzer::conformance::commit::STORAGE_COMMITMENT_PUSH_MODEL;
        match &ev.kind {
            dicomtap_wire::EventKind::Command(c) => {
                let cmd = &c.command;
                let class = cmd
                    .requested_sop_class
                    .as_deref()
                    .or(cmd.affected_sop_class.as_deref())
                    .or(c.abstract_syntax.as_deref());
                if matches!(cmd.command, "N-ACTION-RQ" | "N-EVENT-REPORT-RQ")
                    && cmd.has_dataset
                    && class == Some(STORAGE_COMMITMENT_PUSH_MODEL)
                {
                    self.current = Some((c.pc_id, ev.from));
                } else if self.current.is_some_and(|(_, side)| side == ev.from) {
                    self.current = None;
                }
                false
            }
            dicomtap_wire::EventKind::DataFragment(f) => {
                let ours = self.current == Some((f.pc_id, ev.from));
                if ours && f.last {
                    self.current = None;
                }
                ours
            }
            _ => false,
        }
    }
}

/// Counts a conformance finding and turns it into an event-log entry.
fn conformance_event(shared: &Shared, finding: ConformanceFinding) -> ProxyEventKind {
    shared
        .metrics
        .conformance_findings_total
        .with_label_values(&[
            &finding.device,
            &finding.rule.to_string(),
            &finding.severity.to_string(),
        ])
        .inc();
    ProxyEventKind::Conformance(ConformanceEvent {
        ts_us: finding.evidence.ts_us,
        event: "conformance_finding",
        finding,
    })
}

/// How reading the first PDU went.
enum FirstPdu {
    /// A complete A-ASSOCIATE-RQ (its called AE title).
    Rq(String),
    /// Something else, too large, or incomplete when the client closed: forward as is.
    Other,
    /// The client closed or failed before sending anything.
    Nothing,
    Timeout,
}

/// Reads from `client` into `buf` until the first PDU is complete (or is not an RQ, or
/// exceeds the cap).
async fn read_first_pdu(
    client: &mut Conn,
    buf: &mut Vec<u8>,
    limits: &Limits,
    deadline: tokio::time::Instant,
) -> FirstPdu {
    let cap = limits.max_associate_rq_bytes as u64;
    let fut = async {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if buf.len() >= 6 {
                if buf[0] != 0x01 {
                    return FirstPdu::Other;
                }
                let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as u64;
                if len + 6 > cap {
                    return FirstPdu::Other;
                }
                if buf.len() as u64 >= len + 6 {
                    let pdu = &buf[..(len + 6) as usize];
                    return match framing::called_ae(pdu) {
                        Some(ae) => FirstPdu::Rq(ae),
                        None => FirstPdu::Other,
                    };
                }
            }
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    return if buf.is_empty() {
                        FirstPdu::Nothing
                    } else {
                        FirstPdu::Other
                    };
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout_at(deadline, fut)
        .await
        .unwrap_or(FirstPdu::Timeout)
}

enum RejectWhy {
    Limit,
    /// `limits.max_associations_per_source` from this address.
    SourceLimit,
    Upstream,
    /// Access control: result 1 (permanent), source 1 (service-user), the denial's reason.
    Access(crate::access::Denial),
}

/// Answers the client with an A-ASSOCIATE-RJ (after its RQ, read here if not yet) and
/// closes.
async fn reject(
    mut client: Conn,
    mut pre: Vec<u8>,
    assoc: &Association,
    why: RejectWhy,
    intended: Option<SocketAddr>,
) {
    assoc.set_phase(Phase::Rejecting);
    let limits = assoc.shared.limits.clone();
    let (result, source, reason, why_text, outcome) = match &why {
        RejectWhy::Limit => (
            2,
            3,
            2,
            "concurrent association limit reached",
            "proxy_rejected_limit",
        ),
        RejectWhy::SourceLimit => (
            2,
            3,
            2,
            "per-source association limit reached",
            "proxy_rejected_limit",
        ),
        RejectWhy::Upstream => (2, 3, 1, "upstream unavailable", "proxy_rejected_upstream"),
        RejectWhy::Access(d) => (1, 1, d.reason, d.detail.as_str(), "proxy_rejected_access"),
    };
    assoc
        .open_recording(intended.unwrap_or(assoc.listen), None)
        .await;
    let first = if pre.len() >= 6 {
        FirstPdu::Other
    } else {
        read_first_pdu(&mut client, &mut pre, &limits, assoc.rq_deadline()).await
    };
    if matches!(first, FirstPdu::Timeout) {
        assoc.count_rq_timeout();
    }
    if !pre.is_empty() {
        assoc
            .tap(Side::Requestor, now_us(), Bytes::copy_from_slice(&pre))
            .await;
    }
    if matches!(first, FirstPdu::Nothing | FirstPdu::Timeout) && pre.is_empty() {
        assoc.control(AnalysisMsg::Outcome(outcome));
        assoc.end(Side::Requestor, StreamEnd::Close).await;
        assoc.closed("client sent nothing");
        return;
    }
    let rj = framing::associate_rj(result, source, reason);
    assoc.notice(Notice::ProxyReject {
        result,
        source,
        reason,
        why: why_text.into(),
    });
    assoc.control(AnalysisMsg::Outcome(outcome));
    let ok = tokio::time::timeout(Duration::from_secs(5), async {
        client.write_all(&rj).await?;
        client.shutdown().await
    })
    .await;
    if matches!(ok, Ok(Ok(()))) {
        assoc
            .tap(Side::Acceptor, now_us(), Bytes::copy_from_slice(&rj))
            .await;
    }
    // Give the client a moment to read the answer and close first.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assoc.end(Side::Acceptor, StreamEnd::Close).await;
    assoc.end(Side::Requestor, StreamEnd::Close).await;
    assoc.closed(why_text);
}

fn classify_connect_error(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "refused",
        HostUnreachable | NetworkUnreachable | AddrNotAvailable => "unreachable",
        TimedOut => "timeout",
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => "resolve",
        _ => "other",
    }
}

async fn run_association(
    id: u64,
    client: TcpStream,
    client_addr: SocketAddr,
    listen: SocketAddr,
    lc: Arc<ListenerConfig>,
    tls: Arc<ListenerTls>,
    shared: Arc<Shared>,
) {
    let assoc = Association::new(id, client_addr, listen, shared.clone());
    assoc.notice(Notice::Accepted { listen });
    tracing::info!(assoc = id, client = %client_addr, "association accepted on {listen}");
    let _ = client.set_nodelay(true);
    match shared.unless_cut(prepare(&assoc, client, &lc, &tls)).await {
        Some(Some((client, upstream, pre))) => {
            assoc.set_phase(Phase::Forwarding);
            forward(&assoc, client, upstream, pre).await;
        }
        // Ended before forwarding (rejected, failed handshake...): logged already.
        Some(None) => {}
        None => assoc.cut_before_forwarding().await,
    }
}

/// Everything before forwarding: the client's TLS handshake, access control, routing,
/// the upstream connection and its TLS handshake. `None` when the association ended
/// here (its `closed` event is logged).
async fn prepare(
    assoc: &Association,
    client: TcpStream,
    lc: &ListenerConfig,
    tls: &ListenerTls,
) -> Option<(Conn, Conn, Vec<u8>)> {
    let shared = &assoc.shared;
    let limits = &shared.limits;
    let (id, client_addr, listen) = (assoc.id, assoc.client, assoc.listen);
    let mut client = tls_accept(assoc, tls, client).await?;
    let mut pre = Vec::new();

    // Access control (docs/access-control.md): decided on the A-ASSOCIATE-RQ.
    if let Some(acl) = lc.access.as_ref().filter(|a| a.is_active()) {
        assoc.set_phase(Phase::FirstPdu);
        let first = read_first_pdu(&mut client, &mut pre, limits, assoc.rq_deadline()).await;
        if matches!(first, FirstPdu::Timeout) {
            assoc.count_rq_timeout();
        }
        if matches!(first, FirstPdu::Nothing | FirstPdu::Timeout) && pre.is_empty() {
            assoc.end(Side::Requestor, StreamEnd::Close).await;
            assoc.closed("client sent nothing");
            return None;
        }
        let rq = matches!(first, FirstPdu::Rq(_)).then_some(pre.as_slice());
        if let Err(denial) = acl.check_addr(client_addr, rq) {
            tracing::warn!(assoc = id, client = %client_addr, "access denied: {}", escape_controls(&denial.detail));
            shared
                .metrics
                .access_denied_total
                .with_label_values(&[denial.label])
                .inc();
            assoc.notice(Notice::AccessDenied {
                rule: denial.label.into(),
                detail: denial.detail.clone(),
            });
            reject(client, pre, assoc, RejectWhy::Access(denial), None).await;
            return None;
        }
    }

    // Where to?
    let target: Result<String, (String, String)> = if lc.transparent {
        match origdst::original_dst(client.tcp(), listen.is_ipv6()) {
            Ok(dst) if dst == listen || client.tcp().local_addr().ok() == Some(dst) => Err((
                "other".into(),
                format!("connection to {dst} was not redirected (no original destination)"),
            )),
            Ok(dst) => Ok(dst.to_string()),
            Err(e) => Err(("other".into(), format!("SO_ORIGINAL_DST: {e}"))),
        }
    } else if !lc.routes.is_empty() {
        assoc.set_phase(Phase::FirstPdu);
        match read_first_pdu(&mut client, &mut pre, limits, assoc.rq_deadline()).await {
            FirstPdu::Rq(called) => {
                let route = lc.routes.iter().find(|r| r.called_ae == called);
                tracing::debug!(
                    assoc = id,
                    "called AE {called:?} -> {:?}",
                    route.map(|r| &r.upstream)
                );
                match (route, &lc.upstream) {
                    (Some(r), _) => Ok(r.upstream.clone()),
                    (None, Some(u)) => Ok(u.clone()),
                    (None, None) => Err((
                        "no_route".into(),
                        format!("no route for called AE {called:?}"),
                    )),
                }
            }
            first @ (FirstPdu::Nothing | FirstPdu::Timeout) if pre.is_empty() => {
                if matches!(first, FirstPdu::Timeout) {
                    assoc.count_rq_timeout();
                }
                assoc.end(Side::Requestor, StreamEnd::Close).await;
                assoc.closed("client sent nothing");
                return None;
            }
            _ => lc
                .upstream
                .clone()
                .ok_or_else(|| ("no_route".into(), "no default upstream".into())),
        }
    } else {
        lc.upstream
            .clone()
            .ok_or_else(|| ("no_route".into(), "no upstream".into()))
    };

    let target_host = target
        .as_ref()
        .map(|t| crate::tls::host_of(t))
        .unwrap_or_default();
    assoc.set_phase(Phase::ConnectingUpstream);
    let connected = match target {
        Ok(t) => match tokio::time::timeout(limits.connect_timeout, TcpStream::connect(t.as_str()))
            .await
        {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err((classify_connect_error(&e).to_string(), format!("{t}: {e}"))),
            Err(_) => Err((
                "timeout".to_string(),
                format!("{t}: no connection within {:?}", limits.connect_timeout),
            )),
        },
        Err(e) => Err(e),
    };
    let upstream = match connected {
        Ok(s) => s,
        Err((kind, message)) => {
            tracing::warn!(assoc = id, client = %client_addr, "upstream {kind}: {message}");
            assoc.notice(Notice::UpstreamError { kind, message });
            reject(client, pre, assoc, RejectWhy::Upstream, None).await;
            return None;
        }
    };
    let _ = upstream.set_nodelay(true);
    let upstream_addr = upstream.peer_addr().ok();
    let local = upstream.local_addr().ok();
    assoc.set_phase(Phase::UpstreamTls);
    let upstream = match tls
        .connect(
            upstream,
            &target_host,
            limits.connect_timeout,
            &shared.metrics,
        )
        .await
    {
        Ok((conn, facts)) => {
            if let Some(f) = facts {
                assoc.notice(crate::tls::established_notice(Leg::Upstream, &f));
            }
            conn
        }
        Err(f) => {
            tracing::warn!(assoc = id, client = %client_addr, "upstream TLS handshake failed: {}", escape_controls(&f.reason));
            assoc.notice(crate::tls::failed_notice(&f));
            assoc.notice(Notice::UpstreamError {
                kind: "tls".into(),
                message: f.reason,
            });
            reject(client, pre, assoc, RejectWhy::Upstream, upstream_addr).await;
            return None;
        }
    };
    if let Some(u) = upstream_addr {
        assoc.control(AnalysisMsg::Upstream(u));
        if let Some(local) = local {
            assoc.notice(Notice::UpstreamConnected { local });
        }
        assoc.open_recording(u, local).await;
    }
    Some((client, upstream, pre))
}

/// The client leg's TLS handshake when the listener terminates TLS (docs/tls.md); the
/// plain stream otherwise. On failure the association ends here (nothing was forwarded).
async fn tls_accept(assoc: &Association, tls: &ListenerTls, tcp: TcpStream) -> Option<Conn> {
    let shared = &assoc.shared;
    assoc.set_phase(Phase::ClientTls);
    match tls
        .accept(tcp, shared.limits.associate_rq_timeout, &shared.metrics)
        .await
    {
        Ok((conn, facts)) => {
            if let Some(f) = facts {
                assoc.notice(crate::tls::established_notice(Leg::Client, &f));
            }
            Some(conn)
        }
        Err(f) => {
            tracing::warn!(assoc = assoc.id, client = %assoc.client, "TLS handshake failed: {}", escape_controls(&f.reason));
            assoc.notice(crate::tls::failed_notice(&f));
            assoc.control(AnalysisMsg::Outcome("tls_failed"));
            assoc.end(Side::Requestor, StreamEnd::Close).await;
            assoc.closed("TLS handshake failed");
            None
        }
    }
}

/// How one direction ended.
#[derive(Debug)]
enum PumpEnd {
    /// The sender closed its side; the FIN was passed on.
    Fin,
    /// Reading from the sender failed (reset).
    ReadFailed,
    /// Writing to the receiver failed (it is gone).
    WriteFailed,
}

async fn pump(
    rd: &mut ConnRead,
    wr: &mut ConnWrite,
    from: Side,
    assoc: &Association,
    framer: &mut PduFramer,
    buf_size: usize,
) -> PumpEnd {
    let mut pool = ChunkPool::new(buf_size);
    let mut rq_pending = from == Side::Requestor && !assoc.rq_done.load(Ordering::Acquire);
    loop {
        match rd.read_buf(pool.buffer()).await {
            Ok(0) => {
                let _ = wr.shutdown().await;
                assoc.end(from, StreamEnd::Close).await;
                return PumpEnd::Fin;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(assoc = assoc.id, "read from {from}: {e}");
                assoc.end(from, StreamEnd::Reset).await;
                return PumpEnd::ReadFailed;
            }
        };
        let ts = now_us();
        let chunk = pool.take();
        if let Err(e) = wr.write_all(&chunk).await {
            tracing::debug!(assoc = assoc.id, "write to {}: {e}", from.peer());
            return PumpEnd::WriteFailed;
        }
        // Only the boundaries matter here (where an A-ABORT may go).
        framer.scan(&chunk, |_, _| {});
        if rq_pending && framer.first_complete() {
            rq_pending = false;
            assoc.rq_done.store(true, Ordering::Release);
        }
        assoc.tap(from, ts, chunk).await;
    }
}

/// Ends when the ARTIM deadline passes before the client's first PDU is complete.
async fn rq_watch(assoc: &Association) {
    tokio::time::sleep_until(assoc.rq_deadline()).await;
    if assoc.rq_done.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

async fn idle_watch(assoc: &Association, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let last = Duration::from_millis(assoc.last_activity_ms.load(Ordering::Relaxed));
        let since = assoc.started.elapsed().saturating_sub(last);
        if since >= idle {
            return;
        }
        tokio::time::sleep(idle - since + Duration::from_millis(5)).await;
    }
}

/// A future polled only on its first poll and after its own wake-ups.
///
/// `forward` waits on both pumps, the idle watch and the drain cut in one `select!`, which
/// polls every branch whenever the task is woken: each chunk forwarded one way also polled
/// the other pump, the idle timer and the cut watch, a fixed cost per chunk that showed in
/// the per-message profile. Each branch gets its own waker here, which notes the wake-up
/// before waking the task.
struct WhenWoken<F> {
    fut: F,
    wakeup: Arc<Wakeup>,
    /// `wakeup` as a waker, made once.
    waker: Waker,
}

struct Wakeup {
    woken: AtomicBool,
    /// The task's waker as of the last poll.
    task: Mutex<Option<Waker>>,
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted before the task is woken, so the poll it leads to sees it.
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = task.as_ref() {
            t.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> WhenWoken<F> {
    fn new(fut: F) -> Self {
        let wakeup = Arc::new(Wakeup {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(wakeup.clone());
        WhenWoken { fut, wakeup, waker }
    }
}

impl<F: Future + Unpin> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut task = this
                .wakeup
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        if !this.wakeup.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.fut).poll(&mut Context::from_waker(&this.waker))
    }
}

/// Forwards both directions until both are closed, or one fails (then the other side
/// gets an A-ABORT where a PDU boundary allows, and is closed).
async fn forward(assoc: &Association, client: Conn, upstream: Conn, pre: Vec<u8>) {
    let limits = &assoc.shared.limits;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let mut framers = [PduFramer::new(), PduFramer::new()];
    let mut ended = [false, false];
    if !pre.is_empty() {
        let ts = now_us();
        if uw.write_all(&pre).await.is_err() {
            assoc.notice(Notice::UpstreamError {
                kind: "reset".into(),
                message: "upstream closed before the A-ASSOCIATE-RQ was forwarded".into(),
            });
        }
        framers[0].scan(&pre, |_, _| {});
        if framers[0].first_complete() {
            assoc.rq_done.store(true, Ordering::Release);
        }
        assoc.tap(Side::Requestor, ts, Bytes::from(pre)).await;
    }
    enum Stop {
        Done,
        Failed(Side, PumpEnd),
        Idle,
        RqTimeout,
        Cut,
    }
    let stop = {
        let [f0, f1] = &mut framers;
        let bs = limits.read_buffer_bytes;
        let c2u = pump(&mut cr, &mut uw, Side::Requestor, assoc, f0, bs);
        let u2c = pump(&mut ur, &mut cw, Side::Acceptor, assoc, f1, bs);
        let idle = idle_watch(assoc, limits.idle_timeout);
        let artim = rq_watch(assoc);
        let mut cut_rx = assoc.shared.cut.subscribe();
        let cut = async move {
            if cut_rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(c2u, u2c, idle, artim, cut);
        let (mut c2u, mut u2c) = (WhenWoken::new(c2u), WhenWoken::new(u2c));
        let (mut idle, mut cut) = (WhenWoken::new(idle), WhenWoken::new(cut));
        let mut artim = WhenWoken::new(artim);
        loop {
            if ended[0] && ended[1] {
                break Stop::Done;
            }
            tokio::select! {
                r = &mut c2u, if !ended[0] => {
                    ended[0] = true;
                    if !matches!(r, PumpEnd::Fin) { break Stop::Failed(Side::Requestor, r); }
                }
                r = &mut u2c, if !ended[1] => {
                    ended[1] = true;
                    if !matches!(r, PumpEnd::Fin) { break Stop::Failed(Side::Acceptor, r); }
                }
                _ = &mut idle => break Stop::Idle,
                _ = &mut artim => break Stop::RqTimeout,
                _ = &mut cut => break Stop::Cut,
            }
        }
    };
    let abort = framing::abort(2, 0);
    match stop {
        Stop::Done => assoc.closed("closed"),
        Stop::Failed(side, how) => {
            // Who is gone: the sender whose read failed, or the receiver we could not write to.
            let gone = match how {
                PumpEnd::ReadFailed => side,
                _ => side.peer(),
            };
            let survivor = gone.peer();
            let (kind, text) = match gone {
                Side::Acceptor => ("reset", "upstream reset the connection"),
                Side::Requestor => ("client_reset", "client reset the connection"),
            };
            if gone == Side::Acceptor {
                assoc.notice(Notice::UpstreamError {
                    kind: kind.into(),
                    message: text.into(),
                });
            }
            // The survivor receives what `gone` sent: that direction's framer.
            let boundary = framers[gone.index()].at_boundary();
            let writer = match survivor {
                Side::Requestor => &mut cw,
                Side::Acceptor => &mut uw,
            };
            let can_write = matches!(how, PumpEnd::ReadFailed) || !ended[gone.index()];
            if boundary
                && can_write
                && tokio::time::timeout(Duration::from_secs(2), writer.write_all(&abort))
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                assoc.notice(Notice::ProxyAbort {
                    to: survivor,
                    why: text.into(),
                });
                assoc
                    .tap(gone, now_us(), Bytes::copy_from_slice(&abort))
                    .await;
            }
            let _ = writer.shutdown().await;
            if !ended[gone.index()] && !matches!(how, PumpEnd::ReadFailed) {
                assoc.end(gone, StreamEnd::Reset).await;
            }
            if !ended[survivor.index()] {
                assoc.end(survivor, StreamEnd::Close).await;
            }
            assoc.closed(text);
        }
        Stop::RqTimeout => {
            // PS3.8 9.2.3 (AA-2): the ARTIM timer expired before the A-ASSOCIATE-RQ was
            // whole; the transport connection is closed, no PDU is sent (there is no
            // association to abort). The upstream had at most part of the RQ.
            tracing::warn!(
                assoc = assoc.id,
                client = %assoc.client,
                "no complete A-ASSOCIATE-RQ within {:?}: closed",
                limits.associate_rq_timeout
            );
            assoc.count_rq_timeout();
            let _ = uw.shutdown().await;
            let _ = cw.shutdown().await;
            for side in [Side::Requestor, Side::Acceptor] {
                if !ended[side.index()] {
                    assoc.end(side, StreamEnd::Close).await;
                }
            }
            assoc.closed("association request timeout");
        }
        Stop::Idle | Stop::Cut => {
            let why = match stop {
                Stop::Idle => {
                    assoc
                        .shared
                        .metrics
                        .connections_shed_total
                        .with_label_values(&["idle_timeout"])
                        .inc();
                    "idle timeout"
                }
                _ => "cut at drain",
            };
            // At the drain's end the time is already spent: a short grace for the A-ABORT.
            let grace = match stop {
                Stop::Cut => Duration::from_millis(250),
                _ => Duration::from_secs(2),
            };
            for (side, writer) in [(Side::Requestor, &mut uw), (Side::Acceptor, &mut cw)] {
                // `side`'s bytes go through `writer`; abort the receiver if between PDUs.
                if !ended[side.index()] && framers[side.index()].at_boundary() {
                    let ok = tokio::time::timeout(grace, writer.write_all(&abort))
                        .await
                        .is_ok_and(|r| r.is_ok());
                    if ok {
                        assoc.notice(Notice::ProxyAbort {
                            to: side.peer(),
                            why: why.into(),
                        });
                        assoc
                            .tap(side, now_us(), Bytes::copy_from_slice(&abort))
                            .await;
                    }
                }
                // A peer that reads nothing must not hold the close (nor the drain) up.
                let _ = tokio::time::timeout(grace, writer.shutdown()).await;
            }
            for side in [Side::Requestor, Side::Acceptor] {
                if !ended[side.index()] {
                    assoc.end(side, StreamEnd::Close).await;
                }
            }
            assoc.closed(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its polls; ready once `ready` is set (it wakes itself through the waker it
    /// was last given when `ready` is set from outside).
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if let Ok(mut w) = self.waker.lock() {
                *w = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn when_woken_polls_a_branch_only_after_its_own_wake_up() {
        let (polls, ready) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waker = Arc::new(Mutex::new(None::<Waker>));
        let probe = Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: waker.clone(),
        };
        tokio::pin!(probe);
        let mut quiet = WhenWoken::new(probe);
        let mut ticks = 0;
        let done = loop {
            tokio::select! {
                () = &mut quiet => break ticks,
                () = tokio::time::sleep(Duration::from_millis(1)) => {
                    ticks += 1;
                    if ticks == 5 {
                        // Woken from elsewhere, as a socket would.
                        ready.store(true, Ordering::SeqCst);
                        let w = waker.lock().ok().and_then(|w| w.clone());
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                }
            }
        };
        assert_eq!(done, 5);
        // The first poll and the one after its wake-up; none for the other branch's ticks.
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
