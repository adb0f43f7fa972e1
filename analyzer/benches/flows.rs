//! The analyzer's flow table under a SYN flood (a port scan on a SPAN port): time per new
//! flow from 10,000 to 1,000,000 flows into the default 65,536-connection table, through
//! the same reassembler and analysis `dicomtap analyze`, `monitor` and `export` use.
//! Past the table's size every new flow evicts the least recently active one; the time
//! per flow must stay flat (docs/performance.md, "Connection table").
//!
//! `cargo bench -p dicomtap-analyzer --bench flows` (bounded: about 1.1 million SYNs).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::link::{TcpSegment, tcp_flags};
use dicomtap_analyzer::capture::{CaptureConfig, ConnectionInfo, Reassembler};
use dicomtap_analyzer::session::Session;
use dicomtap_wire::EngineConfig;

#[derive(Default)]
struct Count(u64);

impl AnalysisSink for Count {
    fn session(&mut self, _: &ConnectionInfo, _: Session) {
        self.0 += 1;
    }
}

/// `flows` SYNs from distinct addresses and ports, 10 µs apart; nanoseconds per flow and
/// the evictions.
fn flood(flows: u32) -> (f64, u64) {
    let mut r = Reassembler::new(CaptureConfig::default());
    let mut analysis = Analysis::new(EngineConfig::default(), Count::default());
    let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 104);
    let t = Instant::now();
    for i in 0..flows {
        let ip = Ipv4Addr::from(0x0a00_0000 | (i >> 14));
        let src = SocketAddr::new(IpAddr::V4(ip), 1024 + (i & 0x3fff) as u16);
        let seg = TcpSegment {
            src,
            dst,
            seq: i,
            ack: 0,
            flags: tcp_flags::SYN,
            payload: &[],
            wire_len: 0,
        };
        r.segment(u64::from(i) * 10, &seg, &mut analysis);
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(flows);
    r.finish(&mut analysis);
    (ns, r.stats().connections_evicted)
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("flows      ns/flow  evicted");
    let mut first = None;
    for flows in [10_000u32, 100_000, 1_000_000] {
        let (ns, evicted) = flood(flows);
        let base = *first.get_or_insert(ns);
        println!(
            "{flows:>9} {ns:>9.0} {evicted:>8}   ({:.2}x the 10,000-flow figure)",
            ns / base
        );
    }
}
