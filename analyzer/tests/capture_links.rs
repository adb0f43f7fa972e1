//! Link layers and containers: every encapsulation carries the same conversation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture_support;

use std::io::Read;

use capture_support::{
    ACK, Link, Recorder, Script, Seg, all_segments, assert_clean, run, write_pcap,
    write_pcapng_two_ifaces,
};
use dicomtap_analyzer::capture::{CaptureConfig, CaptureFormat, CaptureReader};

fn segs(script: &Script) -> Vec<Seg> {
    all_segments(script, 5, 200)
}

#[test]
fn every_link_type_over_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().expect("tempdir");
    for link in Link::ALL {
        for v6 in [false, true] {
            let script = if v6 {
                Script::new(3, 2000, 900).v6()
            } else {
                Script::new(3, 2000, 900)
            };
            let path = dir.path().join(format!("{link:?}_{v6}.pcap"));
            write_pcap(&path, link, &segs(&script), 65535);
            let (rec, res) = run(&path, CaptureConfig::default());
            let stats = res.unwrap_or_else(|e| panic!("{link:?} v6={v6}: {e}"));
            assert_clean(&rec, &script);
            assert_eq!(
                stats.non_tcp_skipped + stats.malformed_skipped,
                0,
                "{link:?}"
            );
        }
    }
}

#[test]
fn pcapng_with_two_interfaces_and_resolutions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Script::new(4, 3000, 1000);
    let all = segs(&script);
    let path = dir.path().join("two.pcap");
    write_pcapng_two_ifaces(&path, &all);
    let reader = CaptureReader::open(&path).expect("open");
    assert_eq!(reader.format(), CaptureFormat::PcapNg);
    let (rec, res) = run(&path, CaptureConfig::default());
    res.expect("process");
    assert_clean(&rec, &script);
    // Nanosecond and microsecond interfaces both come out in microseconds.
    assert_eq!(rec.opens()[0].first_ts_us, all[0].ts_us);
    let last_ts = rec
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            capture_support::Ev::Close(_, ts, _) => Some(*ts),
            _ => None,
        })
        .expect("close");
    // Closed by the second FIN (the final ACK after it belongs to no connection).
    assert_eq!(last_ts, all[all.len() - 2].ts_us);
}

/// A pipe that hands out a few bytes per read, like `tcpdump -U -w - |`.
struct Trickle(Vec<u8>, usize, u64);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.2 = self.2.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n = (1 + (self.2 >> 60) as usize)
            .min(buf.len())
            .min(self.0.len() - self.1);
        buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
        self.1 += n;
        Ok(n)
    }
}

#[test]
fn streams_from_a_slow_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Script::new(6, 4000, 1500);
    for (name, ng) in [("pipe.pcap", false), ("pipe.pcapng", true)] {
        let path = dir.path().join(name);
        if ng {
            write_pcapng_two_ifaces(&path, &segs(&script));
        } else {
            write_pcap(&path, Link::Sll2, &segs(&script), 65535);
        }
        let bytes = std::fs::read(&path).expect("read back");
        let mut reader = CaptureReader::new("-", Trickle(bytes, 0, 1)).expect("header");
        let mut rec = Recorder::default();
        reader.process(&mut rec).expect("process");
        assert_clean(&rec, &script);
    }
}

#[test]
fn non_tcp_and_fragments_are_counted_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Script::new(8, 1000, 500);
    let all = segs(&script);
    let path = dir.path().join("mixed.pcap");
    write_pcap(&path, Link::Ethernet, &all, 65535);
    // Append: an ARP frame, a UDP datagram, an IPv4 fragment, a frame cut inside TCP.
    let mut extra: Vec<Vec<u8>> = Vec::new();
    let mut arp = vec![0xFF; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    extra.push(arp);
    let tcp_frame = Link::Ethernet.frame(&Seg {
        ts_us: 0,
        src: "10.9.9.9:1000".parse().expect("addr"),
        dst: "10.9.9.8:104".parse().expect("addr"),
        seq: 1,
        ack: 0,
        flags: ACK,
        payload: vec![1; 10],
    });
    let mut udp = tcp_frame.clone();
    udp[14 + 9] = 17;
    extra.push(udp);
    let mut frag = tcp_frame.clone();
    frag[14 + 6] = 0x20; // more fragments
    extra.push(frag);
    extra.push(tcp_frame[..14 + 24 + 10].to_vec());
    let mut file = std::fs::read(&path).expect("read");
    for f in &extra {
        for v in [0u32, 0, f.len() as u32, f.len() as u32] {
            file.extend_from_slice(&v.to_be_bytes());
        }
        file.extend_from_slice(f);
    }
    std::fs::write(&path, file).expect("write");
    let (rec, res) = run(&path, CaptureConfig::default());
    let stats = res.expect("process");
    assert_clean(&rec, &script);
    assert_eq!(stats.non_tcp_skipped, 2);
    assert_eq!(stats.fragments_skipped, 1);
    assert_eq!(stats.malformed_skipped, 1);
    assert_eq!(stats.packets, all.len() as u64 + 4);
}
