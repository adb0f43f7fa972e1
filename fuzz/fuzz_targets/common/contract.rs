//! A `StreamSink` in front of another that asserts the calling contract documented in
//! `dicomtap_analyzer::capture`: per connection `on_open` once before anything else, then
//! `on_data` / `on_gap` / `on_end` per side in stream order (nothing on a side after its
//! `on_end`), then `on_close` once; timestamps never decrease within a connection (and
//! never go below `first_ts_us`); no empty gap. Also counts what
//! went through, per connection and side.

use std::collections::HashMap;

use dicomtap_analyzer::capture::{
    CloseReason, ConnId, ConnectionInfo, Side, StreamEnd, StreamSink,
};

#[derive(Debug, Default, Clone)]
pub struct Conn {
    pub closed: bool,
    pub ended: [bool; 2],
    pub last_ts: u64,
    /// Data bytes delivered per side (index `Side::index()`).
    pub data: [u64; 2],
    /// Gaps and their bytes per side.
    pub gaps: [u64; 2],
    pub gap_bytes: [u64; 2],
}

pub struct Contract<S> {
    pub inner: S,
    pub conns: HashMap<ConnId, Conn>,
    pub opened: u64,
    pub closed: u64,
}

impl<S: StreamSink> Contract<S> {
    pub fn new(inner: S) -> Self {
        Contract {
            inner,
            conns: HashMap::new(),
            opened: 0,
            closed: 0,
        }
    }

    fn live(&mut self, conn: ConnId, ts: u64, what: &str) -> &mut Conn {
        let c = self
            .conns
            .get_mut(&conn)
            .unwrap_or_else(|| panic!("{what} for connection {conn} before its on_open"));
        assert!(!c.closed, "{what} for connection {conn} after its on_close");
        assert!(
            ts >= c.last_ts,
            "{what} for connection {conn}: timestamp {ts} before the previous {}",
            c.last_ts
        );
        c.last_ts = ts;
        c
    }

    fn side_live(&mut self, conn: ConnId, from: Side, ts: u64, what: &str) -> &mut Conn {
        let c = self.live(conn, ts, what);
        assert!(
            !c.ended[from.index()],
            "{what} from the {from} of connection {conn} after its on_end"
        );
        c
    }

    /// Every connection opened was closed (call after `process` / `finish`).
    pub fn assert_all_closed(&self) {
        for (id, c) in &self.conns {
            assert!(c.closed, "connection {id} never closed");
        }
        assert_eq!(self.opened, self.closed);
    }
}

impl<S: StreamSink> StreamSink for Contract<S> {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        assert!(
            !self.conns.contains_key(&conn.id),
            "connection {} opened twice",
            conn.id
        );
        self.conns.insert(
            conn.id,
            Conn {
                last_ts: conn.first_ts_us,
                ..Conn::default()
            },
        );
        self.opened += 1;
        self.inner.on_open(conn);
    }

    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]) {
        let c = self.side_live(conn, from, ts_us, "on_data");
        c.data[from.index()] += data.len() as u64;
        self.inner.on_data(conn, from, ts_us, data);
    }

    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64) {
        let c = self.side_live(conn, from, ts_us, "on_gap");
        assert!(missing > 0, "empty gap on connection {conn}");
        c.gaps[from.index()] += 1;
        c.gap_bytes[from.index()] += missing;
        self.inner.on_gap(conn, from, ts_us, missing);
    }

    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd) {
        let c = self.side_live(conn, from, ts_us, "on_end");
        c.ended[from.index()] = true;
        self.inner.on_end(conn, from, ts_us, how);
    }

    fn on_close(&mut self, conn: ConnId, ts_us: u64) {
        self.on_close_with(conn, ts_us, CloseReason::Closed);
    }

    fn on_close_with(&mut self, conn: ConnId, ts_us: u64, why: CloseReason) {
        let c = self.live(conn, ts_us, "on_close");
        c.closed = true;
        self.closed += 1;
        self.inner.on_close_with(conn, ts_us, why);
    }
}
