//! The live proxy: listeners, one task per association, byte-exact forwarding in both
//! directions, fault answers (A-ASSOCIATE-RJ, A-ABORT), and the copies handed to the
//! analysis engine, the metrics and the recorder.
//!
//! Forwarding never waits on understanding: each direction reads into its buffer, writes
//! the bytes on unchanged, then hands a copy to the association's analysis task through a
//! bounded queue (when it is full the engine is told of a gap) and to the recorder (drop and
//! count, or backpressure, as configured).

mod analysis;
mod association;
mod budget;
mod checking;
mod chunks;
mod forward;
pub mod framing;
mod kinds;
mod listener;
mod origdst;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dicomtap_analyzer::conformance::Checker;
use dicomtap_wire::EngineConfig;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, JoinHandle};

use crate::config::{EventTap, Limits, ProxyConfig};
use crate::metrics::Metrics;
use crate::recorder::{Recorder, RecorderHandle};
use crate::tls::ListenerTls;
use listener::accept_loop;

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
    /// Conformance rules, one task for all associations (Storage Commitment and
    /// simultaneous associations span several).
    checker: Option<checking::CheckerHandle>,
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
    /// The metrics endpoint's TLS, reloaded with the listeners'.
    metrics_tls: Option<Arc<ListenerTls>>,
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
        let metrics_tls = config
            .metrics_tls
            .as_ref()
            .map(ListenerTls::metrics)
            .transpose()
            .map_err(ProxyError::Tls)?
            .map(Arc::new);
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
                Some(checker)
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
            checker: checker.map(checking::CheckerHandle::start),
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
            let scheme = crate::metrics::http::scheme(metrics_tls.is_some());
            let addr = metrics_addr.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!("metrics on {scheme}://{addr}/metrics");
            let guard = crate::metrics::Guard {
                token: metrics_token.clone(),
                tls: metrics_tls.clone(),
            };
            tokio::spawn(crate::metrics::serve_guarded(
                l,
                metrics.clone(),
                stop_rx.clone(),
                guard,
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
            metrics_tls,
        })
    }

    /// Re-reads every TLS certificate, key and trust store (SIGHUP) and uses them for the
    /// handshakes from now on; open connections keep theirs. All or nothing: when a file
    /// cannot be used, the error is returned and the configurations in use stay. The
    /// metrics endpoint's TLS reloads with them. Returns the number of listeners with TLS.
    pub fn reload_tls(&self) -> Result<usize, ProxyError> {
        let all: Vec<&Arc<ListenerTls>> = self.tls.iter().chain(&self.metrics_tls).collect();
        let prepared = all
            .iter()
            .map(|t| t.prepare())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProxyError::Tls)?;
        for (t, p) in all.iter().zip(prepared) {
            t.install(p);
        }
        Ok(self.tls.iter().filter(|t| t.is_active()).count())
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
