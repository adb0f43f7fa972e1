//! One association's life before and around forwarding: its copies to the analysis task
//! and the recorder, the client's TLS handshake, the first PDU (access control and
//! routing read it), the upstream connection, and the answers the proxy gives itself
//! (A-ASSOCIATE-RJ).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicomtap_analyzer::text::escape_controls;
use dicomtap_wire::{Side, StreamEnd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::analysis::{AnalysisMsg, analyse};
use super::forward::forward;
use super::kinds::{Direction, Outcome, UpstreamErrorKind};
use super::{Shared, framing, origdst};
use crate::config::{Limits, ListenerConfig};
use crate::events::{Notice, ProxyNotice};
use crate::recorder::{RecordMsg, now_us};
use crate::tls::{Conn, Leg, ListenerTls};

/// One association's copies: to its analysis task, to the recorder, to the counters.
pub(super) struct Association {
    pub(super) id: u64,
    pub(super) client: SocketAddr,
    pub(super) listen: SocketAddr,
    pub(super) shared: Arc<Shared>,
    pub(super) analysis: mpsc::Sender<AnalysisMsg>,
    pub(super) analysis_gap: [AtomicU64; 2],
    pub(super) rec_skip: [AtomicU64; 2],
    pub(super) bytes: [AtomicU64; 2],
    /// `dicomtap_bytes_total` for each direction, resolved once (not per chunk).
    pub(super) bytes_metric: [prometheus::IntCounter; 2],
    pub(super) started: Instant,
    /// Milliseconds since `started` of the last byte either way.
    pub(super) last_activity_ms: AtomicU64,
    pub(super) recording: AtomicBool,
    /// Where the association is ([`Phase`] as u8), for the `closed` event of a cut.
    pub(super) phase: AtomicU8,
    /// The `closed` event was logged: it is logged exactly once.
    pub(super) closed_sent: AtomicBool,
    /// The client's first PDU has arrived whole (the ARTIM timer is stopped).
    pub(super) rq_done: AtomicBool,
}

/// The steps of an association, named in its `closed` event when the drain cuts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
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

    pub(super) fn text(self) -> &'static str {
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
    pub(super) fn new(
        id: u64,
        client: SocketAddr,
        listen: SocketAddr,
        shared: Arc<Shared>,
    ) -> Association {
        let (tx, rx) = mpsc::channel(shared.limits.analysis_queue_chunks.max(1));
        shared.analyses.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(analyse(id, client, listen, shared.clone(), rx));
        let bytes_metric = [Side::Requestor, Side::Acceptor].map(|side| {
            shared
                .metrics
                .bytes_total
                .with_label_values(&[Direction::of(side).as_str()])
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

    pub(super) fn count_rq_timeout(&self) {
        self.shared
            .metrics
            .connections_shed_total
            .with_label_values(&["associate_rq_timeout"])
            .inc();
    }

    /// When the client's A-ASSOCIATE-RQ must be complete: `associate_rq_timeout` after
    /// the connection was accepted (PS3.8 ARTIM).
    pub(super) fn rq_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.started + self.shared.limits.associate_rq_timeout)
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    pub(super) fn phase(&self) -> Phase {
        let p = self.phase.load(Ordering::Acquire);
        Phase::ALL
            .into_iter()
            .find(|x| *x as u8 == p)
            .unwrap_or(Phase::Forwarding)
    }

    /// The drain time ran out before forwarding began (connecting upstream, a TLS
    /// handshake, waiting for the first PDU, answering with an RJ): the sockets are
    /// already closed; log the end.
    pub(super) async fn cut_before_forwarding(&self) {
        let phase = self.phase();
        tracing::warn!(assoc = self.id, client = %self.client, "cut at drain while {}", phase.text());
        self.end(Side::Requestor, StreamEnd::Close).await;
        self.closed(&format!("cut at drain ({})", phase.text()));
    }

    pub(super) fn notice(&self, what: Notice) {
        let n = ProxyNotice {
            ts_us: now_us(),
            what,
        };
        // Notices are rare; wait-free try, then a spawned send so none is lost.
        self.control(AnalysisMsg::Notice(n));
    }

    pub(super) fn control(&self, msg: AnalysisMsg) {
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
    pub(super) async fn open_recording(
        &self,
        upstream: SocketAddr,
        proxy_local: Option<SocketAddr>,
    ) {
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
    pub(super) async fn tap(&self, from: Side, ts_us: u64, bytes: Bytes) {
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

    pub(super) async fn end(&self, from: Side, how: StreamEnd) {
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
    pub(super) fn closed(&self, how: &str) {
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

/// How reading the first PDU went.
pub(super) enum FirstPdu {
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
pub(super) async fn read_first_pdu(
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

pub(super) enum RejectWhy {
    Limit,
    /// `limits.max_associations_per_source` from this address.
    SourceLimit,
    Upstream,
    /// Access control: result 1 (permanent), source 1 (service-user), the denial's reason.
    Access(crate::access::Denial),
}

/// Answers the client with an A-ASSOCIATE-RJ (after its RQ, read here if not yet) and
/// closes.
pub(super) async fn reject(
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
            Outcome::ProxyRejectedLimit,
        ),
        RejectWhy::SourceLimit => (
            2,
            3,
            2,
            "per-source association limit reached",
            Outcome::ProxyRejectedLimit,
        ),
        RejectWhy::Upstream => (
            2,
            3,
            1,
            "upstream unavailable",
            Outcome::ProxyRejectedUpstream,
        ),
        RejectWhy::Access(d) => (
            1,
            1,
            d.reason,
            d.detail.as_str(),
            Outcome::ProxyRejectedAccess,
        ),
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
    let rj = dicomtap_wire::encode::associate_rj(result, source, reason);
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

pub(super) async fn run_association(
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
pub(super) async fn prepare(
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
    let target: Result<String, (UpstreamErrorKind, String)> = if lc.transparent {
        match origdst::original_dst(client.tcp(), listen.is_ipv6()) {
            Ok(dst) if dst == listen || client.tcp().local_addr().ok() == Some(dst) => Err((
                UpstreamErrorKind::Other,
                format!("connection to {dst} was not redirected (no original destination)"),
            )),
            Ok(dst) => Ok(dst.to_string()),
            Err(e) => Err((UpstreamErrorKind::Other, format!("SO_ORIGINAL_DST: {e}"))),
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
                        UpstreamErrorKind::NoRoute,
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
                .ok_or_else(|| (UpstreamErrorKind::NoRoute, "no default upstream".into())),
        }
    } else {
        lc.upstream
            .clone()
            .ok_or_else(|| (UpstreamErrorKind::NoRoute, "no upstream".into()))
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
            Ok(Err(e)) => Err((UpstreamErrorKind::of_connect(&e), format!("{t}: {e}"))),
            Err(_) => Err((
                UpstreamErrorKind::Timeout,
                format!("{t}: no connection within {:?}", limits.connect_timeout),
            )),
        },
        Err(e) => Err(e),
    };
    let upstream = match connected {
        Ok(s) => s,
        Err((kind, message)) => {
            tracing::warn!(assoc = id, client = %client_addr, "upstream {}: {message}", kind.as_str());
            assoc.notice(Notice::UpstreamError {
                kind: kind.as_str().into(),
                message,
            });
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
                kind: UpstreamErrorKind::Tls.as_str().into(),
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
pub(super) async fn tls_accept(
    assoc: &Association,
    tls: &ListenerTls,
    tcp: TcpStream,
) -> Option<Conn> {
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
            assoc.control(AnalysisMsg::Outcome(Outcome::TlsFailed));
            assoc.end(Side::Requestor, StreamEnd::Close).await;
            assoc.closed("TLS handshake failed");
            None
        }
    }
}
