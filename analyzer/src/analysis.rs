//! Drives one wire engine per connection and folds its events into sessions.
//! [`ConnectionAnalysis`] is one connection's loop, driven by the capture [`Analysis`]
//! (which keeps the open connections of a capture) and by the live proxy alike. Sessions
//! are handed out as their connections close, so memory holds only the open ones,
//! whatever the capture's size.

use std::collections::HashMap;
use std::net::SocketAddr;

use dicomtap_wire::{Conversation, EngineConfig, Event, Side, StreamEnd};

use crate::capture::{CloseReason, ConnId, ConnectionInfo, RequestorBy, StreamSink};
use crate::session::{Session, SessionBuilder};

/// Receives what the analysis produces.
pub trait AnalysisSink {
    /// Every engine event, with its connection (for event logs and detail views).
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        let _ = (conn, event);
    }
    /// A finished association.
    fn session(&mut self, conn: &ConnectionInfo, session: Session);
}

/// What [`ConnectionAnalysis::drain`] hands the engine's events to, one by one.
pub trait ConnectionSink {
    /// Looks at the next event in place, after the session has folded it in; returns
    /// whether to [`take`](ConnectionSink::take) it (else it is dropped unmoved).
    fn look(&mut self, conn: &ConnectionInfo, event: &Event) -> bool;
    /// The event [`look`](ConnectionSink::look) asked for.
    fn take(&mut self, conn: &ConnectionInfo, event: Event);
}

/// One connection's analysis: its wire engine, fed both directions, and the session its
/// events fold into.
pub struct ConnectionAnalysis {
    info: ConnectionInfo,
    conv: Conversation,
    /// `None` when no one reads the session (the live proxy without statements).
    session: Option<SessionBuilder>,
}

impl ConnectionAnalysis {
    pub fn new(engine: EngineConfig, info: ConnectionInfo) -> Self {
        let session = SessionBuilder::new(info.id.0, Some(info.client), Some(info.server));
        ConnectionAnalysis {
            info,
            conv: Conversation::new(engine),
            session: Some(session),
        }
    }

    /// Without a session: only the events are wanted.
    pub fn without_session(mut self) -> Self {
        self.session = None;
        self
    }

    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The acceptor's real address, once known (a proxy learns it when it connects).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.info.server = server;
        if let Some(s) = self.session.as_mut() {
            s.set_server(server);
        }
    }

    /// The engine, e.g. to resynchronise a stream whose start was not seen.
    pub fn conversation_mut(&mut self) -> &mut Conversation {
        &mut self.conv
    }

    pub fn session(&self) -> Option<&SessionBuilder> {
        self.session.as_ref()
    }

    pub fn session_mut(&mut self) -> Option<&mut SessionBuilder> {
        self.session.as_mut()
    }

    pub fn feed(&mut self, from: Side, ts_us: u64, bytes: &[u8]) {
        self.conv.feed(from, ts_us, bytes);
    }

    pub fn gap(&mut self, from: Side, ts_us: u64, missing: u64) {
        self.conv.gap(from, ts_us, missing);
    }

    pub fn omitted(&mut self, from: Side, ts_us: u64, n: u64) {
        self.conv.omitted(from, ts_us, n);
    }

    pub fn end(&mut self, from: Side, ts_us: u64, how: StreamEnd) {
        self.conv.end(from, ts_us, how);
    }

    /// Hands every event ready to the session, then to `sink`.
    pub fn drain(&mut self, sink: &mut impl ConnectionSink) {
        while let Some(ev) = self.conv.peek_event() {
            if let Some(s) = self.session.as_mut() {
                s.observe(ev);
            }
            if sink.look(&self.info, ev) {
                if let Some(ev) = self.conv.poll() {
                    sink.take(&self.info, ev);
                }
            } else {
                self.conv.skip();
            }
        }
    }

    /// The connection and its finished session (`None` without one).
    pub fn finish(self) -> (ConnectionInfo, Option<Session>) {
        (self.info, self.session.map(SessionBuilder::finish))
    }
}

struct Open {
    conn: ConnectionAnalysis,
    /// A PDU was decoded: this connection carries DICOM.
    dicom: bool,
    /// The requestor's first bytes were looked at.
    classified: bool,
    /// The requestor's first bytes, held until there are enough to classify.
    probe: Vec<u8>,
    /// The acceptor's first bytes on a TLS connection, until its ServerHello is read.
    server_hello: Vec<u8>,
    /// The ServerHello was read.
    tls_read: bool,
    /// Events held until the connection is known to carry DICOM, so that other TCP
    /// traffic in a capture produces no noise.
    held: Vec<Event>,
}

/// Events held per connection before DICOM is recognised; beyond this they flow anyway.
const MAX_HELD: usize = 256;

/// A TLS record header of a ClientHello: handshake (0x16), version 3.x, then type 1.
pub fn tls_client_hello(b: &[u8]) -> Option<String> {
    if b.len() < 6 || b[0] != 0x16 || b[1] != 3 || b[2] > 4 || b[5] != 1 {
        return None;
    }
    // The ClientHello's own version field, after the 4-byte handshake header.
    let v = match b.get(9..11) {
        Some([3, 1]) => "1.0",
        Some([3, 2]) => "1.1",
        Some([3, 3]) => "1.2 or 1.3",
        _ => "unknown version",
    };
    Some(format!("TLS ClientHello ({v})"))
}

/// Association numbers remembered to keep those of later captures apart.
const MAX_TRACKED_IDS: usize = 1 << 20;

/// A [`StreamSink`] that analyses every connection it is given.
pub struct Analysis<S: AnalysisSink> {
    engine: EngineConfig,
    open: HashMap<ConnId, Open>,
    out: S,
    /// Association IDs continue across several captures.
    id_offset: u64,
    max_id: u64,
    /// IDs given out so far (up to [`MAX_TRACKED_IDS`]): a capture's connection keeps its
    /// own number (a recording's is the proxy's) unless an earlier capture used it.
    used_ids: std::collections::HashSet<u64>,
    /// More than one capture was given.
    several: bool,
    non_dicom: u64,
    server_ports: Vec<u16>,
}

impl<S: AnalysisSink> Analysis<S> {
    pub fn new(engine: EngineConfig, out: S) -> Self {
        Analysis {
            engine,
            open: HashMap::new(),
            out,
            id_offset: 0,
            max_id: 0,
            used_ids: std::collections::HashSet::new(),
            several: false,
            non_dicom: 0,
            server_ports: crate::capture::DEFAULT_SERVER_PORTS.to_vec(),
        }
    }

    /// Ports where TLS is reported as DICOM over TLS rather than ignored as other traffic.
    pub fn with_server_ports(mut self, ports: Vec<u16>) -> Self {
        self.server_ports = ports;
        self
    }

    /// TCP connections that never carried a DICOM PDU (and were not reported).
    pub fn non_dicom_connections(&self) -> u64 {
        self.non_dicom
    }

    /// The next capture: its associations keep their numbers where those are new (the
    /// rotated files of one recording continue the proxy's numbering), others are
    /// numbered on after the highest so far.
    pub fn next_capture(&mut self) {
        self.id_offset = self.max_id;
        self.several = true;
    }

    pub fn sink(&self) -> &S {
        &self.out
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.out
    }

    pub fn into_sink(self) -> S {
        self.out
    }

    fn drain(&mut self, conn: ConnId) {
        let Some(o) = self.open.get_mut(&conn) else {
            return;
        };
        let mut sink = Holding {
            out: &mut self.out,
            dicom: &mut o.dicom,
            held: &mut o.held,
        };
        o.conn.drain(&mut sink);
    }
}

/// Passes events on once the connection is known to carry DICOM, holding them until then.
struct Holding<'a, S> {
    out: &'a mut S,
    dicom: &'a mut bool,
    held: &'a mut Vec<Event>,
}

impl<S: AnalysisSink> ConnectionSink for Holding<'_, S> {
    fn look(&mut self, _conn: &ConnectionInfo, _event: &Event) -> bool {
        true
    }

    fn take(&mut self, conn: &ConnectionInfo, e: Event) {
        if !*self.dicom && is_pdu(&e) {
            *self.dicom = true;
            for held in std::mem::take(self.held) {
                self.out.event(conn, &held);
            }
        }
        if *self.dicom || self.held.len() >= MAX_HELD {
            self.out.event(conn, &e);
        } else {
            self.held.push(e);
        }
    }
}

impl Open {
    /// The connection is TLS (its bytes are not decoded).
    fn encrypted(&self) -> bool {
        self.conn
            .session()
            .is_some_and(|s| s.session().encrypted.is_some())
    }

    fn count_bytes(&mut self, from: Side, n: u64, ts_us: u64) {
        if let Some(s) = self.conn.session_mut() {
            s.bytes(from, n, ts_us);
        }
    }

    fn set_encrypted(&mut self, what: String) {
        if let Some(s) = self.conn.session_mut() {
            s.set_encrypted(what);
        }
    }
}

impl<S: AnalysisSink> StreamSink for Analysis<S> {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        let mut info = conn.clone();
        let tracked = self.used_ids.len() < MAX_TRACKED_IDS;
        info.id = if !self.several || (tracked && !self.used_ids.contains(&conn.id.0)) {
            conn.id
        } else {
            // Numbered from 1: taken numbers continue after the highest so far.
            self.id_offset += 1;
            ConnId(self.max_id.max(self.id_offset))
        };
        if tracked {
            self.used_ids.insert(info.id.0);
        }
        self.max_id = self.max_id.max(info.id.0);
        self.id_offset = self.max_id;
        let resync = info.requestor_known_by != RequestorBy::SynSeen;
        let mut analysis = ConnectionAnalysis::new(self.engine.clone(), info);
        if resync {
            // The capture may have started mid-stream: find the first PDU boundary.
            analysis.conversation_mut().resynchronize(Side::Requestor);
            analysis.conversation_mut().resynchronize(Side::Acceptor);
        }
        self.open.insert(
            conn.id,
            Open {
                conn: analysis,
                dicom: false,
                classified: false,
                probe: Vec::new(),
                server_hello: Vec::new(),
                tls_read: false,
                held: Vec::new(),
            },
        );
    }

    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]) {
        if let Some(o) = self.open.get_mut(&conn) {
            o.count_bytes(from, data.len() as u64, ts_us);
            if from == Side::Requestor && !o.classified {
                o.probe.extend_from_slice(data);
                if o.probe.len() < PROBE_LEN {
                    return;
                }
                let probe = std::mem::take(&mut o.probe);
                classify(o, &probe, &self.server_ports);
                if !o.encrypted() {
                    o.conn.feed(from, ts_us, &probe);
                }
            } else if !o.encrypted() {
                o.conn.feed(from, ts_us, data);
            } else if from == Side::Acceptor
                && !o.tls_read
                && o.server_hello.len() < MAX_SERVER_HELLO
            {
                // Read the version and cipher suite the server chose from its ServerHello.
                let take = data.len().min(MAX_SERVER_HELLO - o.server_hello.len());
                o.server_hello.extend_from_slice(&data[..take]);
                if let Some(chosen) = tls_server_hello(&o.server_hello) {
                    o.set_encrypted(chosen);
                    o.tls_read = true;
                    o.server_hello = Vec::new();
                }
            }
        }
        self.drain(conn);
    }

    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64) {
        if let Some(o) = self.open.get_mut(&conn) {
            if from == Side::Requestor && !o.classified {
                let probe = std::mem::take(&mut o.probe);
                classify(o, &probe, &self.server_ports);
                o.conn.feed(from, ts_us, &probe);
            }
            o.conn.gap(from, ts_us, missing);
        }
        self.drain(conn);
    }

    fn on_omitted(&mut self, conn: ConnId, from: Side, ts_us: u64, n: u64) {
        if let Some(o) = self.open.get_mut(&conn) {
            // They were on the wire: the association's byte counts include them.
            o.count_bytes(from, n, ts_us);
            if o.classified && !o.encrypted() {
                o.conn.omitted(from, ts_us, n);
            }
        }
        self.drain(conn);
    }

    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd) {
        if let Some(o) = self.open.get_mut(&conn) {
            if from == Side::Requestor && !o.classified {
                let probe = std::mem::take(&mut o.probe);
                classify(o, &probe, &self.server_ports);
                o.conn.feed(from, ts_us, &probe);
            }
            o.conn.end(from, ts_us, how);
        }
        self.drain(conn);
    }

    fn on_close(&mut self, conn: ConnId, ts_us: u64) {
        self.on_close_with(conn, ts_us, CloseReason::Closed);
    }

    fn on_close_with(&mut self, conn: ConnId, ts_us: u64, why: CloseReason) {
        let _ = (ts_us, why);
        self.drain(conn);
        if let Some(o) = self.open.remove(&conn) {
            if !o.dicom {
                self.non_dicom += 1;
                return;
            }
            if let (info, Some(session)) = o.conn.finish() {
                self.out.session(&info, session);
            }
        }
    }
}

/// Acceptor bytes kept to find the ServerHello's version and cipher suite.
const MAX_SERVER_HELLO: usize = 2048;

/// The version and cipher suite a TLS ServerHello chose, e.g.
/// "TLS 1.3, TLS_AES_128_GCM_SHA256"; `None` until the bytes hold a whole ServerHello.
pub fn tls_server_hello(b: &[u8]) -> Option<String> {
    if b.len() < 44 || b[0] != 0x16 || b[1] != 3 || b.get(5) != Some(&2) {
        return None;
    }
    let u16_at = |i: usize| b.get(i..i + 2).map(|v| u16::from_be_bytes([v[0], v[1]]));
    let hs_len = b
        .get(6..9)
        .map(|v| usize::from(v[0]) << 16 | usize::from(v[1]) << 8 | usize::from(v[2]))?;
    let end = 9 + hs_len;
    if b.len() < end {
        return None;
    }
    let mut version = u16_at(9)?;
    let sid = usize::from(*b.get(43)?);
    let p = 44 + sid;
    let suite = u16_at(p)?;
    // Extensions: supported_versions (43) carries the real version of TLS 1.3.
    if let Some(ext_len) = u16_at(p + 3) {
        let mut q = p + 5;
        let ext_end = (q + usize::from(ext_len)).min(end);
        while q + 4 <= ext_end {
            let (t, l) = (u16_at(q)?, usize::from(u16_at(q + 2)?));
            if t == 43 && l == 2 {
                version = u16_at(q + 4)?;
            }
            q += 4 + l;
        }
    }
    let version = match version {
        0x0301 => "TLS 1.0".to_string(),
        0x0302 => "TLS 1.1".to_string(),
        0x0303 => "TLS 1.2".to_string(),
        0x0304 => "TLS 1.3".to_string(),
        v => format!("TLS version 0x{v:04X}"),
    };
    let suite = match suite {
        0x1301 => "TLS_AES_128_GCM_SHA256".to_string(),
        0x1302 => "TLS_AES_256_GCM_SHA384".to_string(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".to_string(),
        0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string(),
        0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string(),
        0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string(),
        0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".to_string(),
        0xCCA8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".to_string(),
        0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".to_string(),
        0x009E => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256".to_string(),
        0x009F => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384".to_string(),
        0xC013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".to_string(),
        0xC014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA".to_string(),
        0x002F => "TLS_RSA_WITH_AES_128_CBC_SHA".to_string(),
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA".to_string(),
        0x000A => "TLS_RSA_WITH_3DES_EDE_CBC_SHA".to_string(),
        s => format!("cipher suite 0x{s:04X}"),
    };
    Some(format!("{version}, {suite}"))
}

/// Requestor bytes needed to tell an A-ASSOCIATE-RQ or a TLS ClientHello apart.
const PROBE_LEN: usize = 11;

/// Looks at the requestor's first bytes: TLS (not decoded; reported when on a DICOM port),
/// an A-ASSOCIATE-RQ, or anything else (the engine then only locks on to plausible PDUs).
fn classify(o: &mut Open, first: &[u8], server_ports: &[u16]) {
    o.classified = true;
    if let Some(tls) = tls_client_hello(first) {
        if server_ports.contains(&o.conn.info().server.port()) {
            o.dicom = true;
        }
        o.set_encrypted(tls);
    } else if !crate::capture::looks_like_associate_rq(first) {
        o.conn.conversation_mut().resynchronize(Side::Requestor);
        o.conn.conversation_mut().resynchronize(Side::Acceptor);
    }
}

/// Events that prove a connection carries DICOM.
fn is_pdu(e: &Event) -> bool {
    use dicomtap_wire::EventKind as K;
    matches!(
        e.kind,
        K::AssociateRq(_)
            | K::AssociateAc(_)
            | K::AssociateRj(_)
            | K::ReleaseRq
            | K::ReleaseRp
            | K::Abort(_)
            | K::PData(_)
    )
}

#[cfg(test)]
mod connection_tests {
    use super::*;
    use crate::capture::{ConnId, RequestorBy};

    /// Takes only the events of one kind, counting what it looked at.
    struct Picky {
        looked: usize,
        taken: Vec<Event>,
    }

    impl ConnectionSink for Picky {
        fn look(&mut self, _conn: &ConnectionInfo, event: &Event) -> bool {
            self.looked += 1;
            matches!(event.kind, dicomtap_wire::EventKind::Abort(_))
        }
        fn take(&mut self, _conn: &ConnectionInfo, event: Event) {
            self.taken.push(event);
        }
    }

    #[test]
    fn the_session_sees_every_event_and_the_sink_takes_what_it_asks_for() {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let info = ConnectionInfo {
            id: ConnId(3),
            client: addr(1000),
            server: addr(104),
            first_ts_us: 0,
            requestor_known_by: RequestorBy::SynSeen,
        };
        let mut c = ConnectionAnalysis::new(EngineConfig::default(), info);
        c.set_server(addr(11112));
        // A-RELEASE-RQ, then A-ABORT, then the stream's end.
        c.feed(Side::Requestor, 1, &[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
        c.feed(Side::Requestor, 2, &[0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
        c.end(Side::Requestor, 3, StreamEnd::Close);
        let mut sink = Picky {
            looked: 0,
            taken: Vec::new(),
        };
        c.drain(&mut sink);
        assert!(sink.looked >= 3, "looked at {}", sink.looked);
        assert_eq!(sink.taken.len(), 1);
        assert!(matches!(
            sink.taken[0].kind,
            dicomtap_wire::EventKind::Abort(_)
        ));
        let (info, session) = c.finish();
        assert_eq!(info.server, addr(11112));
        let session = session.unwrap_or_else(|| panic!("a session was kept"));
        assert_eq!(session.server, Some(addr(11112)));
        assert_eq!(session.last_ts_us, 3);
        let without = ConnectionAnalysis::new(EngineConfig::default(), info).without_session();
        assert!(without.finish().1.is_none());
    }
}
