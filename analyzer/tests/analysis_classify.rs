//! Which TCP connections of a capture are reported: DICOM ones, TLS on DICOM ports, and
//! not the rest of the traffic.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod capture_support;

use capture_support::{ACK, FIN, Link, SYN, Script, Seg, write_pcap};
use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::{CaptureReader, ConnectionInfo};
use dicomtap_analyzer::session::{Outcome, Session};
use dicomtap_wire::{EngineConfig, Event};

#[derive(Default)]
struct Collect {
    sessions: Vec<Session>,
    events: usize,
}

impl AnalysisSink for Collect {
    fn event(&mut self, _: &ConnectionInfo, _: &Event) {
        self.events += 1;
    }
    fn session(&mut self, _: &ConnectionInfo, s: Session) {
        self.sessions.push(s);
    }
}

/// A whole connection carrying `c` from client to server and `s` back.
fn conn(client: &str, server: &str, c: &[u8], s: &[u8], t0: u64) -> Vec<Seg> {
    let mut script = Script::new(1, 100, 100);
    script.client = client.parse().unwrap();
    script.server = server.parse().unwrap();
    script.c_data = c.to_vec();
    script.s_data = s.to_vec();
    let (mut a, b, c) = script.segments(7, 1400);
    a.extend(b);
    a.extend(c);
    for (i, seg) in a.iter_mut().enumerate() {
        seg.ts_us = t0 + i as u64 * 10;
    }
    let _ = (SYN, ACK, FIN);
    a
}

#[test]
fn only_dicom_and_tls_on_dicom_ports_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcap");
    let http = b"GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n".to_vec();
    let http_rsp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    // A TLS 1.2 ClientHello record header and the start of its handshake.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
    ];
    hello.extend([0u8; 0x3c - 2]);
    let dicom = Script::new(3, 300, 200);
    let mut segs = conn("10.0.0.1:40000", "10.0.0.2:80", &http, &http_rsp, 1_000_000);
    // A TLS 1.3 ServerHello choosing TLS_AES_128_GCM_SHA256 (supported_versions 0x0304).
    let mut server_hello = vec![
        0x16, 0x03, 0x03, 0x00, 0x32, 0x02, 0x00, 0x00, 0x2e, 0x03, 0x03,
    ];
    server_hello.extend([7u8; 32]);
    server_hello.extend([
        0x00, 0x13, 0x01, 0x00, 0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
    ]);
    segs.extend(conn(
        "10.0.0.1:40001",
        "10.0.0.2:2762",
        &hello,
        &server_hello,
        2_000_000,
    ));
    segs.extend(conn(
        "10.0.0.1:40002",
        "10.0.0.2:443",
        &hello,
        &[0x15, 0x03, 0x03, 0, 2, 2, 40],
        3_000_000,
    ));
    segs.extend(conn(
        "10.0.0.1:40003",
        "10.0.0.2:104",
        &dicom.c_data,
        &dicom.s_data,
        4_000_000,
    ));
    write_pcap(&path, Link::Ethernet, &segs, 65535);

    let mut analysis = Analysis::new(EngineConfig::default(), Collect::default());
    CaptureReader::open(&path)
        .unwrap()
        .process(&mut analysis)
        .unwrap();
    assert_eq!(
        analysis.non_dicom_connections(),
        2,
        "HTTP and TLS on 443 are not DICOM"
    );
    let out = analysis.into_sink();
    assert_eq!(out.sessions.len(), 2);
    let tls = out
        .sessions
        .iter()
        .find(|s| s.server.map(|a| a.port()) == Some(2762))
        .expect("TLS session on 2762");
    assert_eq!(
        tls.encrypted.as_deref(),
        Some("TLS 1.3, TLS_AES_128_GCM_SHA256")
    );
    assert_eq!(tls.outcome, Outcome::NegotiationNotSeen);
    let dicom = out
        .sessions
        .iter()
        .find(|s| s.server.map(|a| a.port()) == Some(104))
        .expect("DICOM session");
    assert!(dicom.encrypted.is_none());
    assert!(out.events > 0);
}
