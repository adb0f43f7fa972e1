//! Drives one wire engine per captured connection and folds its events into sessions.
//! Sessions are handed out as their connections close, so memory holds only the open
//! ones, whatever the capture's size.

use std::collections::HashMap;

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

struct Open {
    info: ConnectionInfo,
    conv: Conversation,
    session: SessionBuilder,
}

/// A [`StreamSink`] that analyses every connection it is given.
pub struct Analysis<S: AnalysisSink> {
    engine: EngineConfig,
    open: HashMap<ConnId, Open>,
    out: S,
    /// Association IDs continue across several captures.
    id_offset: u64,
    max_id: u64,
}

impl<S: AnalysisSink> Analysis<S> {
    pub fn new(engine: EngineConfig, out: S) -> Self {
        Analysis {
            engine,
            open: HashMap::new(),
            out,
            id_offset: 0,
            max_id: 0,
        }
    }

    /// Starts numbering the next capture's associations after this one's.
    pub fn next_capture(&mut self) {
        self.id_offset = self.max_id;
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
        while let Some(e) = o.conv.poll() {
            o.session.observe(&e);
            self.out.event(&o.info, &e);
        }
    }
}

impl<S: AnalysisSink> StreamSink for Analysis<S> {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        let mut info = conn.clone();
        info.id = ConnId(conn.id.0 + self.id_offset);
        self.max_id = self.max_id.max(info.id.0 + 1);
        let mut conv = Conversation::new(self.engine.clone());
        if info.requestor_known_by != RequestorBy::SynSeen {
            // The capture may have started mid-stream: find the first PDU boundary.
            conv.resynchronize(Side::Requestor);
            conv.resynchronize(Side::Acceptor);
        }
        let session = SessionBuilder::new(info.id.0, Some(info.client), Some(info.server));
        self.open.insert(
            conn.id,
            Open {
                info,
                conv,
                session,
            },
        );
    }

    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]) {
        if let Some(o) = self.open.get_mut(&conn) {
            o.session.bytes(from, data.len() as u64, ts_us);
            o.conv.feed(from, ts_us, data);
        }
        self.drain(conn);
    }

    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64) {
        if let Some(o) = self.open.get_mut(&conn) {
            o.conv.gap(from, ts_us, missing);
        }
        self.drain(conn);
    }

    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd) {
        if let Some(o) = self.open.get_mut(&conn) {
            o.conv.end(from, ts_us, how);
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
            let session = o.session.finish();
            self.out.session(&o.info, session);
        }
    }
}
