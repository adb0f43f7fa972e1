//! The flow table and TCP reassembly (`Reassembler::frame`) on structured input: TCP
//! segments of up to four connections between 10.0.0.1 and 10.0.0.2, both directions,
//! built into raw IPv4 frames (link type 101).
//!
//! Input (derived with `arbitrary`): the limits (out-of-order cap 128 B to 64 KiB, 1 to 4
//! open connections, gap timeout, ACK grace, idle timeout), the initial sequence numbers
//! (any u32, so wraparound is reached), whether payloads are *consistent* (each byte is
//! the low byte of its own sequence number, so every delivered byte can be checked for
//! its place) or arbitrary (overlaps may conflict), and the segments: connection,
//! direction, flags, sequence number relative to the direction's ISN (or absolute),
//! acknowledgement, time step (may go backwards, as in merged captures), payload, bytes
//! cut by a snap length, and an IP total length of 0 (TSO).
//!
//! Checked besides "no panic": the `StreamSink` contract (common/contract.rs); after every
//! frame the out-of-order bytes stay within `max_buffered_per_direction` x 2 x open
//! connections; data delivered per 4-tuple and direction never exceeds the payload
//! captured in that direction; with consistent payloads every delivered byte sits at
//! its sequence number (low byte, relative to the first byte delivered); after `finish`
//! every connection is closed, nothing is buffered, and the stats agree with what the
//! sink got (connections, gaps, gap bytes).
#![no_main]

#[path = "common/contract.rs"]
mod contract;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use contract::Contract;
use dicomtap_analyzer::capture::{
    CaptureConfig, CloseReason, ConnId, ConnectionInfo, Reassembler, Side, StreamEnd, StreamSink,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const CONNS: usize = 4;
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Server ports: two DICOM defaults, one unknown below the client ports, one above.
const SERVER_PORTS: [u16; CONNS] = [104, 11112, 5000, 50000];
const LINKTYPE_RAW: u32 = 101;

#[derive(Arbitrary, Debug)]
enum SeqAt {
    /// Relative to the direction's ISN (the SYN takes the first number).
    Rel(u16),
    /// Relative, backwards.
    Back(u16),
    Abs(u32),
}

#[derive(Arbitrary, Debug)]
enum Payload {
    /// `len` bytes (at most 4096); in consistent mode each is the low byte of its sequence
    /// number, otherwise a repeated value.
    Len(u16),
    /// These bytes (replaced by consistent bytes of the same length in consistent mode).
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Segment {
    conn: u8,
    /// From the server (10.0.0.2) to the client.
    from_server: bool,
    /// TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16).
    flags: u8,
    seq: SeqAt,
    /// Acknowledgement, relative to the other direction's ISN.
    ack: u16,
    /// Microseconds since the previous segment (may be negative).
    dt: i32,
    payload: Payload,
    /// Payload bytes not captured (snap length): the IP header still counts them.
    snapped: u8,
    /// IP total length 0, as with segmentation offload.
    tso: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cap: u8,
    max_connections: u8,
    gap_timeout: u8,
    ack_grace: u8,
    idle_timeout: u8,
    consistent: bool,
    isn: [[u32; 2]; CONNS],
    segments: Vec<Segment>,
}

fn endpoints(conn: usize, from_server: bool) -> (SocketAddr, SocketAddr) {
    let client = SocketAddr::new(CLIENT.into(), 40000 + conn as u16);
    let server = SocketAddr::new(SERVER.into(), SERVER_PORTS[conn]);
    if from_server {
        (server, client)
    } else {
        (client, server)
    }
}

/// An IPv4 + TCP frame (no options, checksums zero).
fn frame(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    wire_len: usize,
    tso: bool,
) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        unreachable!()
    };
    let total = if tso {
        0
    } else {
        (40 + wire_len).min(65535) as u16
    };
    let mut f = Vec::with_capacity(40 + payload.len());
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&s.ip().octets());
    f.extend_from_slice(&d.ip().octets());
    f.extend_from_slice(&s.port().to_be_bytes());
    f.extend_from_slice(&d.port().to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Records the delivered streams: with consistent payloads, checks every byte's place.
struct Streams {
    consistent: bool,
    info: HashMap<ConnId, ConnectionInfo>,
    /// Per connection and side: stream offset so far, and the low byte of the sequence
    /// number of offset 0 once the first byte fixed it.
    pos: HashMap<(ConnId, usize), (u64, Option<u8>)>,
    /// Data bytes delivered per (source, destination).
    delivered: HashMap<(SocketAddr, SocketAddr), u64>,
}

impl Streams {
    fn src_dst(&self, conn: ConnId, from: Side) -> (SocketAddr, SocketAddr) {
        let i = &self.info[&conn];
        match from {
            Side::Requestor => (i.client, i.server),
            Side::Acceptor => (i.server, i.client),
        }
    }
}

impl StreamSink for Streams {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        self.info.insert(conn.id, conn.clone());
    }

    fn on_data(&mut self, conn: ConnId, from: Side, _ts: u64, data: &[u8]) {
        let key = self.src_dst(conn, from);
        *self.delivered.entry(key).or_default() += data.len() as u64;
        let consistent = self.consistent;
        let (off, base) = self.pos.entry((conn, from.index())).or_default();
        if consistent && let Some(&first) = data.first() {
            let b = *base.get_or_insert(first.wrapping_sub(*off as u8));
            for (i, &byte) in data.iter().enumerate() {
                let want = b.wrapping_add((*off + i as u64) as u8);
                assert_eq!(
                    byte,
                    want,
                    "connection {conn}, {from}: byte at stream offset {} out of place",
                    *off + i as u64
                );
            }
        }
        *off += data.len() as u64;
    }

    fn on_gap(&mut self, conn: ConnId, from: Side, _ts: u64, missing: u64) {
        self.pos.entry((conn, from.index())).or_default().0 += missing;
    }

    fn on_end(&mut self, _: ConnId, _: Side, _: u64, _: StreamEnd) {}

    fn on_close(&mut self, _: ConnId, _: u64) {}

    fn on_close_with(&mut self, _: ConnId, _: u64, _: CloseReason) {}
}

fuzz_target!(|input: Input| {
    let cfg = CaptureConfig {
        max_buffered_per_direction: 128 << (input.cap % 10),
        max_connections: usize::from(input.max_connections % CONNS as u8) + 1,
        gap_timeout_us: [0, 1_000, 1_000_000, 10_000_000][usize::from(input.gap_timeout % 4)],
        ack_gap_grace_us: [0, 1_000, 200_000, 10_000_000][usize::from(input.ack_grace % 4)],
        idle_timeout_us: [1_000, 1_000_000, 600_000_000, u64::MAX]
            [usize::from(input.idle_timeout % 4)],
        ..CaptureConfig::default()
    };
    let cap = cfg.max_buffered_per_direction;
    let mut r = Reassembler::new(cfg);
    let mut sink = Contract::new(Streams {
        consistent: input.consistent,
        info: HashMap::new(),
        pos: HashMap::new(),
        delivered: HashMap::new(),
    });
    let mut sent: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    let mut ts: u64 = 1_700_000_000_000_000;
    for seg in &input.segments {
        let c = usize::from(seg.conn) % CONNS;
        let d = usize::from(seg.from_server);
        let (src, dst) = endpoints(c, seg.from_server);
        let isn = input.isn[c][d];
        let seq = match seg.seq {
            SeqAt::Rel(n) => isn.wrapping_add(u32::from(n)),
            SeqAt::Back(n) => isn.wrapping_sub(u32::from(n)),
            SeqAt::Abs(n) => n,
        };
        let ack = input.isn[c][1 - d].wrapping_add(u32::from(seg.ack));
        ts = ts.saturating_add_signed(i64::from(seg.dt));
        let len = match &seg.payload {
            Payload::Len(n) => usize::from(*n) % 4097,
            Payload::Bytes(b) => b.len(),
        };
        // The first payload byte's sequence number (after the SYN's).
        let data_seq = seq.wrapping_add(u32::from(seg.flags & 2 != 0));
        let payload: Vec<u8> = match (&seg.payload, input.consistent) {
            (_, true) => (0..len)
                .map(|i| data_seq.wrapping_add(i as u32) as u8)
                .collect(),
            (Payload::Len(_), false) => vec![seg.ack as u8; len],
            (Payload::Bytes(b), false) => b.clone(),
        };
        let captured = len.saturating_sub(usize::from(seg.snapped));
        // With TSO the IP header says nothing: what was captured is the whole payload.
        let wire = if seg.tso { captured } else { len };
        *sent.entry((src, dst)).or_default() += captured as u64;
        let f = frame(
            src,
            dst,
            seq,
            ack,
            seg.flags,
            &payload[..captured],
            wire,
            seg.tso,
        );
        r.frame(ts, LINKTYPE_RAW, &f, f.len() as u32, &mut sink);
        let open = r.open_connections();
        assert!(open <= CONNS);
        assert!(
            r.buffered_bytes() <= cap * 2 * open,
            "{} bytes buffered, cap {cap} per direction, {open} connections open",
            r.buffered_bytes()
        );
    }
    r.finish(&mut sink);
    assert_eq!(r.open_connections(), 0);
    assert_eq!(r.buffered_bytes(), 0);
    sink.assert_all_closed();
    for (key, &n) in &sink.inner.delivered {
        let s = sent.get(key).copied().unwrap_or(0);
        assert!(n <= s, "{key:?}: {n} bytes delivered, {s} captured");
    }
    let stats = r.stats();
    assert_eq!(stats.connections, sink.opened);
    let (gaps, gap_bytes) = sink.conns.values().fold((0, 0), |(g, b), c| {
        (
            g + c.gaps[0] + c.gaps[1],
            b + c.gap_bytes[0] + c.gap_bytes[1],
        )
    });
    assert_eq!(stats.gaps, gaps);
    assert_eq!(stats.gap_bytes, gap_bytes);
});
