//! Shared helpers of the capture tests: a recording sink, frame builders and pcap/pcapng
//! writers, and a deterministic PRNG so that "random" packet orders are reproducible.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dicomtap_analyzer::capture::{
    CloseReason, ConnId, ConnectionInfo, Side, StreamEnd, StreamSink,
};
use pcap_file::pcap::{PcapHeader, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::{DataLink, TsResolution};

pub fn public_dir() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures/public");
    if local.is_dir() {
        return local;
    }
    match std::env::var_os("DICOMTAP_SHARED") {
        Some(dir) => PathBuf::from(dir).join("captures/public"),
        None => local,
    }
}

/// One thing a sink was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Open(ConnectionInfo),
    Data(ConnId, Side, u64, Vec<u8>),
    Gap(ConnId, Side, u64, u64),
    End(ConnId, Side, u64, StreamEnd),
    Close(ConnId, u64, CloseReason),
}

/// Records every call, and checks the call protocol as it goes.
#[derive(Default)]
pub struct Recorder {
    pub events: Vec<Ev>,
    open: BTreeMap<ConnId, u64>,
    closed: Vec<ConnId>,
}

impl Recorder {
    fn check(&mut self, conn: ConnId, ts: u64) {
        let last = self
            .open
            .get_mut(&conn)
            .expect("call before on_open or after on_close");
        assert!(ts >= *last, "timestamps went backwards on {conn}");
        *last = ts;
    }

    pub fn opens(&self) -> Vec<ConnectionInfo> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Open(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn closes(&self) -> Vec<(ConnId, CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Close(c, _, why) => Some((*c, *why)),
                _ => None,
            })
            .collect()
    }

    /// One side's stream as parts, adjacent data merged.
    pub fn parts(&self, conn: ConnId, side: Side) -> Vec<Part> {
        let mut out: Vec<Part> = Vec::new();
        for e in &self.events {
            match e {
                Ev::Data(c, s, _, d) if *c == conn && *s == side => match out.last_mut() {
                    Some(Part::Data(prev)) => prev.extend_from_slice(d),
                    _ => out.push(Part::Data(d.clone())),
                },
                Ev::Gap(c, s, _, n) if *c == conn && *s == side => match out.last_mut() {
                    Some(Part::Gap(prev)) => *prev += n,
                    _ => out.push(Part::Gap(*n)),
                },
                Ev::End(c, s, _, how) if *c == conn && *s == side => out.push(Part::End(*how)),
                _ => {}
            }
        }
        out
    }

    /// One side's bytes, with gaps zero-filled.
    pub fn bytes(&self, conn: ConnId, side: Side) -> Vec<u8> {
        let mut v = Vec::new();
        for p in self.parts(conn, side) {
            match p {
                Part::Data(d) => v.extend_from_slice(&d),
                Part::Gap(n) => v.resize(v.len() + n as usize, 0),
                Part::End(_) => {}
            }
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Data(Vec<u8>),
    Gap(u64),
    End(StreamEnd),
}

impl StreamSink for Recorder {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        assert!(!self.open.contains_key(&conn.id) && !self.closed.contains(&conn.id));
        self.open.insert(conn.id, conn.first_ts_us);
        self.events.push(Ev::Open(conn.clone()));
    }
    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]) {
        self.check(conn, ts_us);
        assert!(!data.is_empty(), "empty on_data");
        self.events.push(Ev::Data(conn, from, ts_us, data.to_vec()));
    }
    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64) {
        self.check(conn, ts_us);
        assert!(missing > 0, "empty gap");
        self.events.push(Ev::Gap(conn, from, ts_us, missing));
    }
    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd) {
        self.check(conn, ts_us);
        self.events.push(Ev::End(conn, from, ts_us, how));
    }
    fn on_close(&mut self, _conn: ConnId, _ts_us: u64) {
        unreachable!("on_close_with is overridden");
    }
    fn on_close_with(&mut self, conn: ConnId, ts_us: u64, why: CloseReason) {
        self.check(conn, ts_us);
        self.open.remove(&conn);
        self.closed.push(conn);
        self.events.push(Ev::Close(conn, ts_us, why));
    }
}

/// xorshift64*: reproducible shuffles and payloads without a rand dependency.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A TCP segment to synthesize.
#[derive(Debug, Clone)]
pub struct Seg {
    pub ts_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

fn tcp_header(s: &Seg) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&s.src.port().to_be_bytes());
    t.extend_from_slice(&s.dst.port().to_be_bytes());
    t.extend_from_slice(&s.seq.to_be_bytes());
    t.extend_from_slice(&s.ack.to_be_bytes());
    // Data offset 8 words: 12 bytes of options (NOP NOP timestamp) that must be skipped.
    t.push(8 << 4);
    t.push(s.flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum (not checked), urgent pointer
    t.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    t
}

/// IPv4 or IPv6 packet (by address family); IPv6 gets a hop-by-hop header to skip.
pub fn ip_packet(s: &Seg) -> Vec<u8> {
    let mut tcp = tcp_header(s);
    tcp.extend_from_slice(&s.payload);
    match (s.src.ip(), s.dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            // IHL 6: 4 bytes of options (NOP x4) to skip.
            let total = (24 + tcp.len()) as u16;
            let mut p = vec![0x46, 0];
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]); // DF set
            p.extend_from_slice(&a.octets());
            p.extend_from_slice(&b.octets());
            p.extend_from_slice(&[1, 1, 1, 1]);
            p.extend_from_slice(&tcp);
            p
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let plen = (8 + tcp.len()) as u16;
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&plen.to_be_bytes());
            p.push(0); // hop-by-hop options first
            p.push(64);
            p.extend_from_slice(&a.octets());
            p.extend_from_slice(&b.octets());
            p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, len 0, PadN
            p.extend_from_slice(&tcp);
            p
        }
        _ => panic!("mixed address families"),
    }
}

fn ethertype(s: &Seg) -> u16 {
    if s.src.is_ipv4() { 0x0800 } else { 0x86DD }
}

/// Link encapsulations to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// 802.1ad outer tag plus 802.1Q inner tag.
    QinQ,
    Sll,
    Sll2,
    Raw,
    RawBsd,
    NullLe,
    NullBe,
    Loop,
}

impl Link {
    pub const ALL: [Link; 9] = [
        Link::Ethernet,
        Link::QinQ,
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::RawBsd,
        Link::NullLe,
        Link::NullBe,
        Link::Loop,
    ];

    pub fn linktype(self) -> u32 {
        match self {
            Link::Ethernet | Link::QinQ => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
            Link::RawBsd => 12,
            Link::NullLe | Link::NullBe => 0,
            Link::Loop => 108,
        }
    }

    pub fn frame(self, s: &Seg) -> Vec<u8> {
        let ip = ip_packet(s);
        let et = ethertype(s);
        let mut f = Vec::new();
        match self {
            Link::Ethernet | Link::QinQ => {
                f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
                if self == Link::QinQ {
                    f.extend_from_slice(&[0x88, 0xA8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0A]);
                }
                f.extend_from_slice(&et.to_be_bytes());
                f.extend_from_slice(&ip);
                // Minimum-size padding / FCS-like trailer that IP lengths must trim.
                f.extend_from_slice(&[0xEE; 6]);
            }
            Link::Sll => {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                f.extend_from_slice(&et.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            Link::Sll2 => {
                f.extend_from_slice(&et.to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                f.extend_from_slice(&ip);
            }
            Link::Raw | Link::RawBsd => f.extend_from_slice(&ip),
            Link::NullLe => {
                let af: u32 = if s.src.is_ipv4() { 2 } else { 30 };
                f.extend_from_slice(&af.to_le_bytes());
                f.extend_from_slice(&ip);
            }
            Link::NullBe | Link::Loop => {
                let af: u32 = if s.src.is_ipv4() { 2 } else { 24 };
                f.extend_from_slice(&af.to_be_bytes());
                f.extend_from_slice(&ip);
            }
        }
        f
    }
}

/// Write a classic pcap file (microsecond timestamps) with the given snap length.
pub fn write_pcap(path: &Path, link: Link, segs: &[Seg], snaplen: u32) {
    let file = std::fs::File::create(path).expect("create pcap");
    let header = PcapHeader {
        datalink: DataLink::from(link.linktype()),
        snaplen,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for s in segs {
        let frame = link.frame(s);
        let orig = frame.len() as u32;
        let cut = frame.len().min(snaplen as usize);
        let raw = pcap_file::pcap::RawPcapPacket {
            ts_sec: (s.ts_us / 1_000_000) as u32,
            ts_frac: (s.ts_us % 1_000_000) as u32,
            incl_len: cut as u32,
            orig_len: orig,
            data: Cow::Borrowed(&frame[..cut]),
        };
        w.write_raw_packet(&raw).expect("write packet");
    }
}

/// Write a pcapng file with two interfaces: 0 = Ethernet in nanoseconds, 1 = raw IP in
/// the default microseconds; packets alternate between them.
pub fn write_pcapng_two_ifaces(path: &Path, segs: &[Seg]) {
    let file = std::fs::File::create(path).expect("create pcapng");
    let mut w = PcapNgWriter::new(file).expect("pcapng header");
    let eth = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    };
    let raw = InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![],
    };
    w.write_pcapng_block(eth).expect("idb");
    w.write_pcapng_block(raw).expect("idb");
    for (i, s) in segs.iter().enumerate() {
        let (iface, data, units) = if i % 2 == 0 {
            (0, Link::Ethernet.frame(s), s.ts_us * 1000)
        } else {
            (1, Link::Raw.frame(s), s.ts_us)
        };
        let epb = EnhancedPacketBlock {
            interface_id: iface,
            // pcap-file stores the raw if_tsresol units in a Duration's nanoseconds.
            timestamp: Duration::from_nanos(units),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).expect("epb");
    }
    let _ = TsResolution::MicroSecond;
}

/// Scripted conversation: a handshake, both directions' data in `seg_max`-byte segments,
/// FIN both ways. Acks only acknowledge the handshake unless `live_acks`, so that any
/// reordering of the list stays consistent with what a receiver could have acked.
pub struct Script {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub c_isn: u32,
    pub s_isn: u32,
    pub c_data: Vec<u8>,
    pub s_data: Vec<u8>,
}

impl Script {
    pub fn new(seed: u64, c_len: usize, s_len: usize) -> Self {
        let mut rng = Prng::new(seed);
        // Looks like an A-ASSOCIATE-RQ at the start: type 1, length, version 1.
        let mut c_data = vec![0x01, 0x00];
        c_data.extend_from_slice(&((c_len - 6) as u32).to_be_bytes());
        c_data.extend_from_slice(&[0x00, 0x01]);
        c_data.extend(rng.bytes(c_len - 8));
        let mut s_data = vec![0x02, 0x00];
        s_data.extend_from_slice(&((s_len - 6) as u32).to_be_bytes());
        s_data.extend(rng.bytes(s_len - 6));
        Script {
            client: "10.0.0.1:50000".parse().expect("addr"),
            server: "10.0.0.2:104".parse().expect("addr"),
            c_isn: 1000,
            s_isn: 5000,
            c_data,
            s_data,
        }
    }

    pub fn v6(mut self) -> Self {
        self.client = "[2001:db8::1]:50000".parse().expect("addr");
        self.server = "[2001:db8::2]:11112".parse().expect("addr");
        self
    }

    /// Handshake, data, FINs. Returns (handshake, data segments, closing segments).
    pub fn segments(&self, seed: u64, seg_max: usize) -> (Vec<Seg>, Vec<Seg>, Vec<Seg>) {
        let mut rng = Prng::new(seed);
        let (c, s) = (self.client, self.server);
        let mut ts = 1_700_000_000_000_000u64;
        let mut mk = |src, dst, seq, ack, flags, payload: Vec<u8>| {
            ts += 100;
            Seg {
                ts_us: ts,
                src,
                dst,
                seq,
                ack,
                flags,
                payload,
            }
        };
        let c1 = self.c_isn.wrapping_add(1);
        let s1 = self.s_isn.wrapping_add(1);
        let hs = vec![
            mk(c, s, self.c_isn, 0, SYN, vec![]),
            mk(s, c, self.s_isn, c1, SYN | ACK, vec![]),
            mk(c, s, c1, s1, ACK, vec![]),
        ];
        let mut data = Vec::new();
        let (mut co, mut so) = (0usize, 0usize);
        while co < self.c_data.len() || so < self.s_data.len() {
            // The requestor speaks first: its first 8 bytes precede any answer.
            let client_turn = so >= self.s_data.len()
                || (co < self.c_data.len() && (co < 8 || rng.below(2) == 0));
            let n = if co < 8 {
                1 + rng.below(4) as usize
            } else {
                1 + rng.below(seg_max as u64) as usize
            };
            if client_turn {
                let end = (co + n).min(self.c_data.len());
                let seq = c1.wrapping_add(co as u32);
                data.push(mk(c, s, seq, s1, ACK | PSH, self.c_data[co..end].to_vec()));
                co = end;
            } else {
                let end = (so + n).min(self.s_data.len());
                let seq = s1.wrapping_add(so as u32);
                data.push(mk(s, c, seq, c1, ACK | PSH, self.s_data[so..end].to_vec()));
                so = end;
            }
        }
        let cf = c1.wrapping_add(self.c_data.len() as u32);
        let sf = s1.wrapping_add(self.s_data.len() as u32);
        let fin = vec![
            mk(c, s, cf, s1, FIN | ACK, vec![]),
            mk(s, c, sf, cf.wrapping_add(1), FIN | ACK, vec![]),
            mk(c, s, cf.wrapping_add(1), sf.wrapping_add(1), ACK, vec![]),
        ];
        (hs, data, fin)
    }
}

/// Run a capture file through the reader with `cfg`.
pub fn run(
    path: &Path,
    cfg: dicomtap_analyzer::capture::CaptureConfig,
) -> (
    Recorder,
    Result<dicomtap_analyzer::capture::CaptureStats, dicomtap_analyzer::capture::CaptureError>,
) {
    let mut rec = Recorder::default();
    let mut reader = dicomtap_analyzer::capture::CaptureReader::open(path)
        .expect("open capture")
        .with_config(cfg);
    let res = reader.process(&mut rec);
    (rec, res)
}

/// Write `segs` as an Ethernet pcap (snap length 65535) at `path` and run it through the
/// reader with the default configuration, which must process it without an error.
pub fn process(path: &Path, segs: &[Seg]) -> (Recorder, dicomtap_analyzer::capture::CaptureStats) {
    write_pcap(path, Link::Ethernet, segs, 65535);
    let (rec, res) = run(path, dicomtap_analyzer::capture::CaptureConfig::default());
    (rec, res.expect("process"))
}

/// The only connection the recorder saw.
pub fn only_conn(rec: &Recorder) -> ConnectionInfo {
    let opens = rec.opens();
    assert_eq!(opens.len(), 1, "{:?}", opens);
    opens[0].clone()
}

/// The recorder saw exactly the script's conversation: one connection between its client
/// and server, each side's data whole then closed, the connection closed.
pub fn assert_clean(rec: &Recorder, script: &Script) {
    let conn = only_conn(rec);
    assert_eq!(conn.client, script.client);
    assert_eq!(conn.server, script.server);
    assert_eq!(
        rec.parts(conn.id, Side::Requestor),
        vec![
            Part::Data(script.c_data.clone()),
            Part::End(StreamEnd::Close)
        ]
    );
    assert_eq!(
        rec.parts(conn.id, Side::Acceptor),
        vec![
            Part::Data(script.s_data.clone()),
            Part::End(StreamEnd::Close)
        ]
    );
    assert_eq!(rec.closes(), vec![(conn.id, CloseReason::Closed)]);
}

/// The script's handshake, data and FIN segments in order.
pub fn all_segments(script: &Script, seed: u64, seg_max: usize) -> Vec<Seg> {
    let (hs, data, fin) = script.segments(seed, seg_max);
    hs.into_iter().chain(data).chain(fin).collect()
}

/// Renumber timestamps so the list is in capture order again after reordering.
pub fn retime(segs: &mut [Seg]) {
    let base = 1_700_000_000_000_000u64;
    for (i, s) in segs.iter_mut().enumerate() {
        s.ts_us = base + i as u64 * 100;
    }
}
