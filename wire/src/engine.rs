//! The conversation engine: two byte streams of one TCP connection in, events out.

use std::collections::VecDeque;

use serde::Serialize;

use crate::event::{Event, Side};

/// Caps and switches of the engine. Every length read off the wire is held against these
/// before anything is allocated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest association PDU (RQ/AC/RJ/release/abort) that is buffered and decoded;
    /// larger ones are skipped and reported.
    pub max_association_pdu: u32,
    /// Largest command set reassembled from fragments.
    pub max_command_bytes: usize,
    /// How many bytes at the start of each data set the peek examines.
    pub peek_bytes: usize,
    /// Emit [`crate::event::EventKind::DataFragment`] events with data set bytes.
    pub emit_data: bool,
    /// Emit a [`crate::event::EventKind::PData`] event for every P-DATA-TF PDU.
    pub emit_pdata: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_association_pdu: 1 << 20,
            max_command_bytes: 64 * 1024,
            peek_bytes: 64 * 1024,
            emit_data: false,
            emit_pdata: true,
        }
    }
}

/// How a direction's byte stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// Orderly close (FIN).
    Close,
    /// Reset (RST) or an I/O error.
    Reset,
}

/// One association (one TCP connection): feed each direction's bytes, poll events.
pub struct Conversation {
    config: EngineConfig,
    events: VecDeque<Event>,
}

impl Conversation {
    pub fn new(config: EngineConfig) -> Self {
        Conversation {
            config,
            events: VecDeque::new(),
        }
    }

    /// Feeds the next bytes sent by `from`, seen at `ts_us` (microseconds since the epoch).
    pub fn feed(&mut self, from: Side, ts_us: u64, bytes: &[u8]) {
        let _ = (from, ts_us, bytes, &self.config);
    }

    /// Tells the engine that `missing` bytes of `from`'s stream were never seen.
    pub fn gap(&mut self, from: Side, ts_us: u64, missing: u64) {
        let _ = (from, ts_us, missing);
    }

    /// Tells the engine that `from`'s stream ended.
    pub fn end(&mut self, from: Side, ts_us: u64, how: StreamEnd) {
        let _ = (from, ts_us, how);
    }

    /// The next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
