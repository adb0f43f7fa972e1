//! Capture input: pcap / pcapng files or pipes in, one ordered byte stream per TCP
//! connection and direction out, ready to drive one `dicomtap_wire::Conversation` each.
//!
//! Layers, each usable on its own:
//! - [`reader::PacketReader`]: streaming pcap/pcapng records (format by magic number).
//! - [`link::decode`]: link/IP/TCP headers to a [`link::TcpSegment`].
//! - [`Reassembler`]: the flow table and per-direction TCP reassembly, sans-IO.
//! - [`CaptureReader`]: all three, driven to the end of the input.
//!
//! Output goes to a [`StreamSink`]. Per connection the calls are: `on_open` once (before
//! anything else: the requestor must be known to name sides), then `on_data` / `on_gap` /
//! `on_end` per side in stream order, then `on_close` once. Timestamps never decrease
//! within a connection.

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;

pub use dicomtap_wire::{Side, StreamEnd};

pub mod error;
pub mod flows;
pub mod link;
pub mod reader;
mod reassembly;

pub use error::CaptureError;
pub use flows::{Reassembler, looks_like_associate_rq};
pub use reader::{CaptureFormat, Packet, PacketReader};

/// Connection number, in order of first appearance in the capture (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How the association requestor (TCP client) was identified, strongest first. Reports
/// should say when it was only a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestorBy {
    /// The SYN (or SYN-ACK) was captured.
    SynSeen,
    /// No handshake seen; one side's first bytes look like an A-ASSOCIATE-RQ.
    AssociateRq,
    /// One endpoint uses a configured DICOM server port.
    PortHint,
    /// Nothing to go by: the higher port was taken for the client.
    Guess,
}

/// A connection as announced by [`StreamSink::on_open`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionInfo {
    pub id: ConnId,
    /// The TCP client, i.e. the association requestor ([`Side::Requestor`]).
    pub client: SocketAddr,
    /// The TCP server, i.e. the acceptor ([`Side::Acceptor`]).
    pub server: SocketAddr,
    /// Capture time of the connection's first packet, microseconds since the epoch.
    pub first_ts_us: u64,
    pub requestor_known_by: RequestorBy,
}

/// Why a connection was closed (beyond what the per-side `on_end` calls said).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// FIN seen and delivered both ways.
    Closed,
    /// A RST from either side.
    Reset,
    /// No packet for the configured idle timeout (capture time).
    IdleTimeout,
    /// Dropped to make room in a full flow table.
    Evicted,
    /// A new SYN with another initial sequence number reused the 4-tuple.
    Reused,
    /// Still open when the capture ended.
    CaptureEnd,
}

/// What a dicomtap recording's packet comment says about the packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingNote {
    /// The proxy's association number: the connection is numbered so.
    pub assoc: Option<u64>,
    /// Bytes of the packet's direction left out on purpose just before it.
    pub omitted_before: u64,
    /// Bytes of the packet's direction the recorder dropped before those (a gap).
    pub lost_before: u64,
}

/// Receives reassembled streams. All calls for one connection share its [`ConnId`].
pub trait StreamSink {
    /// A new connection; its sides are fixed from here on.
    fn on_open(&mut self, conn: &ConnectionInfo);
    /// In-order bytes sent by `from`.
    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]);
    /// `missing` bytes sent by `from` were not captured; the stream continues after them.
    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64);
    /// `n` bytes sent by `from` were left out of the recording on purpose (a dicomtap
    /// recording made with `payload = headers` says so); the stream continues after
    /// them. Defaults to [`on_gap`](Self::on_gap) for sinks that make no difference.
    fn on_omitted(&mut self, conn: ConnId, from: Side, ts_us: u64, n: u64) {
        self.on_gap(conn, from, ts_us, n);
    }
    /// `from`'s stream ended (FIN or RST). After a RST only the sender gets an `on_end`.
    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd);
    /// The connection is gone; no more calls for `conn`.
    fn on_close(&mut self, conn: ConnId, ts_us: u64);
    /// Like [`on_close`](Self::on_close), with the reason; override to keep the reason
    /// (for example to report an idle timeout). Defaults to `on_close`.
    fn on_close_with(&mut self, conn: ConnId, ts_us: u64, why: CloseReason) {
        let _ = why;
        self.on_close(conn, ts_us);
    }
}

/// Default DICOM server ports: 104 (well-known), 11112 (registered), 4242 (Orthanc),
/// 2761/2762 (DICOM over TLS).
pub const DEFAULT_SERVER_PORTS: [u16; 5] = [104, 11112, 4242, 2761, 2762];

/// Limits and heuristics of reassembly. Timeouts are in capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Ports that mark the server when the handshake and the A-ASSOCIATE-RQ were missed.
    pub server_ports: Vec<u16>,
    /// Out-of-order bytes held per direction before the oldest hole is declared a gap.
    pub max_buffered_per_direction: usize,
    /// A hole older than this is declared a gap (the segment was lost by the capture).
    pub gap_timeout_us: u64,
    /// A hole the receiver has acknowledged (so the capture, not the network, lost it)
    /// is declared a gap this long after the acknowledgement.
    pub ack_gap_grace_us: u64,
    /// A connection without packets for this long is closed.
    pub idle_timeout_us: u64,
    /// Open connections tracked at most; the least recently active is evicted.
    pub max_connections: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            server_ports: DEFAULT_SERVER_PORTS.to_vec(),
            max_buffered_per_direction: 4 << 20,
            gap_timeout_us: 10_000_000,
            ack_gap_grace_us: 200_000,
            idle_timeout_us: 600_000_000,
            max_connections: 65_536,
        }
    }
}

/// Counters of one capture run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Packet records read.
    pub packets: u64,
    /// Captured bytes of those records.
    pub bytes: u64,
    /// Packets captured shorter than on the wire (snap length).
    pub snapped_packets: u64,
    pub tcp_segments: u64,
    /// Not IP, or IP but not TCP.
    pub non_tcp_skipped: u64,
    /// IP fragments (not reassembled).
    pub fragments_skipped: u64,
    pub malformed_skipped: u64,
    pub unsupported_link_skipped: u64,
    /// ACK/FIN/RST-only segments of no known connection (typically after its close).
    pub no_connection_skipped: u64,
    /// Segments carrying only bytes already delivered.
    pub retransmissions: u64,
    /// Segments overlapping bytes already delivered or buffered.
    pub overlaps: u64,
    /// Overlaps whose bytes differed from the first copy (the first was kept).
    pub overlap_conflicts: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order: u64,
    /// Segments implausibly far ahead of the stream, dropped.
    pub out_of_window: u64,
    /// Gaps delivered, and the bytes they stand for.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes a dicomtap recording says it left out on purpose (`payload = headers`):
    /// not loss, and not counted in `gaps`.
    pub omitted_bytes: u64,
    /// Bytes a dicomtap recording says its recorder dropped (queue full, failed writes):
    /// the recording is incomplete. They are among the `gaps` too.
    pub recorder_lost_bytes: u64,
    pub connections: u64,
    pub connections_expired: u64,
    pub connections_evicted: u64,
    /// 1 when the capture ended inside a record.
    pub truncated: u64,
}

/// Reads a whole capture and drives a [`StreamSink`]: [`PacketReader`] + [`Reassembler`].
pub struct CaptureReader<R: Read> {
    packets: PacketReader<R>,
    reassembler: Reassembler,
}

impl CaptureReader<File> {
    /// Open a pcap or pcapng file (whatever its name says).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        Ok(CaptureReader {
            packets: PacketReader::open(path)?,
            reassembler: Reassembler::new(CaptureConfig::default()),
        })
    }
}

impl<R: Read> CaptureReader<R> {
    /// Read from any reader, e.g. stdin fed by `tcpdump -U -w -`; `name` is used in errors.
    pub fn new(name: impl Into<String>, input: R) -> Result<Self, CaptureError> {
        Ok(CaptureReader {
            packets: PacketReader::new(name, input)?,
            reassembler: Reassembler::new(CaptureConfig::default()),
        })
    }

    /// Replace the limits and heuristics (before [`process`](Self::process)).
    pub fn with_config(mut self, cfg: CaptureConfig) -> Self {
        self.reassembler = Reassembler::new(cfg);
        self
    }

    pub fn format(&self) -> CaptureFormat {
        self.packets.format()
    }

    /// Counters so far (also valid after `process` returned an error).
    pub fn stats(&self) -> &CaptureStats {
        self.reassembler.stats()
    }

    /// Read to the end, delivering every connection to `sink`; all connections are closed
    /// when it returns. On a truncated or corrupt record, everything before it is still
    /// delivered and closed, then the error is returned ([`CaptureError::is_truncation`]
    /// tells the benign case apart).
    pub fn process(&mut self, sink: &mut impl StreamSink) -> Result<CaptureStats, CaptureError> {
        self.process_observed(sink, true, |_, _| {})
    }

    /// Like [`process`](Self::process), calling `progress` after every packet with the
    /// statistics so far and the packet's capture time (passive monitoring exports them
    /// as they move). With `finish` false the connections stay open at the end of the
    /// input, for [`switch_input`](Self::switch_input) to continue them from the next
    /// file of a rotated capture.
    pub fn process_observed(
        &mut self,
        sink: &mut impl StreamSink,
        finish: bool,
        mut progress: impl FnMut(&CaptureStats, u64),
    ) -> Result<CaptureStats, CaptureError> {
        let result = loop {
            match self.packets.next_packet() {
                Ok(Some(p)) => {
                    let ts = p.ts_us;
                    self.reassembler.frame_noted(
                        p.ts_us,
                        p.link_type,
                        p.data,
                        p.orig_len,
                        RecordingNote {
                            assoc: p.recorded_assoc,
                            omitted_before: p.omitted_before,
                            lost_before: p.lost_before,
                        },
                        sink,
                    );
                    progress(self.reassembler.stats(), ts);
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    if e.is_truncation() {
                        self.reassembler.stats_mut().truncated += 1;
                    }
                    break Err(e);
                }
            }
        };
        if finish {
            self.reassembler.finish(sink);
        }
        result.map(|()| self.reassembler.stats().clone())
    }

    /// Continues with the next file of a rotated capture (`tcpdump -C` / `-G`): a new
    /// file header is read, the connections and statistics go on.
    pub fn switch_input(&mut self, name: impl Into<String>, input: R) -> Result<(), CaptureError> {
        self.packets = PacketReader::new(name, input)?;
        Ok(())
    }

    /// Closes every connection still open (the end of the last input).
    pub fn finish(&mut self, sink: &mut impl StreamSink) -> CaptureStats {
        self.reassembler.finish(sink);
        self.reassembler.stats().clone()
    }
}
