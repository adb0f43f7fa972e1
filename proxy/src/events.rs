//! The proxy's event types: what it saw or did for one association, as the event log,
//! the subscribers, the recorder and the fleet tap get it. Kept apart from the server so
//! that those consumers depend on the events, not on the forwarding code.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dicomtap_analyzer::conformance::ConformanceFinding;
use serde::Serialize;

/// Something the proxy saw or did, for one association.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyEvent {
    /// Association (connection) id, unique within one proxy run.
    #[serde(rename = "assoc")]
    pub association: u64,
    pub client: SocketAddr,
    /// The upstream, once chosen.
    pub upstream: Option<SocketAddr>,
    #[serde(flatten)]
    pub kind: ProxyEventKind,
}

impl ProxyEvent {
    /// The engine's event, when this is one.
    pub fn wire(&self) -> Option<&dicomtap_wire::Event> {
        match &self.kind {
            ProxyEventKind::Wire(e) => Some(e),
            ProxyEventKind::Proxy(_) | ProxyEventKind::Conformance(_) => None,
        }
    }

    /// When it happened, microseconds since the UNIX epoch.
    pub fn ts_us(&self) -> u64 {
        match &self.kind {
            ProxyEventKind::Wire(e) => e.ts_us,
            ProxyEventKind::Proxy(n) => n.ts_us,
            ProxyEventKind::Conformance(c) => c.ts_us,
        }
    }
}

/// An engine event, or one about the connection itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum ProxyEventKind {
    Wire(dicomtap_wire::Event),
    /// A conformance finding against a device statement (with `statements` configured).
    Conformance(ConformanceEvent),
    Proxy(ProxyNotice),
}

/// A conformance finding as it appears in the event log.
#[derive(Debug, Clone, Serialize)]
pub struct ConformanceEvent {
    pub ts_us: u64,
    /// Always `conformance_finding`.
    pub event: &'static str,
    #[serde(flatten)]
    pub finding: ConformanceFinding,
}

/// What the proxy itself did or met: connections, upstream failures, the answers it sent.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyNotice {
    pub ts_us: u64,
    #[serde(flatten)]
    pub what: Notice,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// A client connected to `listen`.
    Accepted { listen: SocketAddr },
    /// The upstream connection is up.
    UpstreamConnected { local: SocketAddr },
    /// The upstream could not be reached; `kind` is refused, unreachable, timeout,
    /// resolve or other.
    UpstreamError { kind: String, message: String },
    /// The proxy answered the client with an A-ASSOCIATE-RJ itself.
    ProxyReject {
        result: u8,
        source: u8,
        reason: u8,
        why: String,
    },
    /// The proxy sent an A-ABORT to `to` (requestor or acceptor).
    ProxyAbort {
        to: dicomtap_wire::Side,
        why: String,
    },
    /// A TLS handshake completed on `leg` (`client`: device to proxy, `upstream`: proxy
    /// to upstream); see docs/tls.md.
    TlsEstablished {
        leg: String,
        version: String,
        cipher_suite: String,
        server_name: Option<String>,
        peer_subject: Option<String>,
        peer_issuer: Option<String>,
        peer_fingerprint_sha256: Option<String>,
    },
    /// A TLS handshake failed; `result` is the metrics label, `reason` says why in words.
    TlsHandshakeFailed {
        leg: String,
        result: String,
        reason: String,
    },
    /// Access control refused the association (an A-ASSOCIATE-RJ follows); `rule` is
    /// source, calling_ae, called_ae or unreadable_rq. See docs/access-control.md.
    AccessDenied { rule: String, detail: String },
    /// Event-log lines of this association held back by its bounds (docs/events.md):
    /// logged once, before `closed`.
    EventsSuppressed(Suppressed),
    /// The association ended.
    Closed {
        bytes_from_requestor: u64,
        bytes_from_acceptor: u64,
        duration_us: u64,
        how: String,
    },
}

/// What one association's `events_suppressed` line says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    /// Findings not logged beyond the first of their kind: kind -> count.
    pub findings: BTreeMap<String, u64>,
    /// Small `p_data` lines not logged, and the PDU bytes they stood for.
    pub small_p_data: u64,
    pub small_p_data_bytes: u64,
    /// Other wire events not logged because the association's line budget was spent.
    pub over_budget: u64,
    /// Presentation contexts (A-ASSOCIATE-RQ) and results (-AC) left out of their lines.
    pub contexts_not_logged: u64,
    /// PDVs left out of `p_data` lines.
    pub pdvs_not_logged: u64,
    /// Lines this association logged.
    pub lines_logged: u64,
}

impl Suppressed {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.small_p_data == 0
            && self.over_budget == 0
            && self.contexts_not_logged == 0
            && self.pdvs_not_logged == 0
    }

    pub fn total(&self) -> u64 {
        self.findings.values().sum::<u64>() + self.small_p_data + self.over_budget
    }
}
