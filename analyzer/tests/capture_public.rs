//! The public third-party captures: pcapng named .pcap, NULL/Loopback link, one-way
//! A-ASSOCIATE-RQs split over segments, no handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture_support;

use std::process::Command;

use capture_support::{Part, public_dir, run};
use dicomtap_analyzer::capture::{
    CaptureConfig, CaptureFormat, CaptureReader, CloseReason, RequestorBy, Side,
};

#[test]
fn arq_2_is_one_connection_with_one_reassembled_rq() {
    let path = public_dir().join("tapirx-dicom_arq_2_get_testclient.pcap");
    let reader = CaptureReader::open(&path).expect("open");
    assert_eq!(reader.format(), CaptureFormat::PcapNg);
    let (rec, res) = run(&path, CaptureConfig::default());
    let stats = res.expect("process");
    let opens = rec.opens();
    assert_eq!(opens.len(), 1);
    let conn = &opens[0];
    assert_eq!(conn.requestor_known_by, RequestorBy::AssociateRq);
    assert_eq!(conn.server.port(), 104);
    assert_eq!(conn.client.port(), 49541);
    let rq = rec.bytes(conn.id, Side::Requestor);
    // "16503-byte A-ASSOCIATE-RQ" is the PDU length field; with its 6-byte header the
    // stream is the two segments' 16332 + 177 = 16509 bytes.
    assert_eq!(rq.len(), 16332 + 177);
    assert_eq!(rq[0], 0x01);
    assert_eq!(u32::from_be_bytes([rq[2], rq[3], rq[4], rq[5]]), 16503);
    // Two segments, but the sink may see them as two chunks: one stream either way.
    assert!(matches!(
        rec.parts(conn.id, Side::Requestor).as_slice(),
        [Part::Data(_)]
    ));
    assert!(rec.parts(conn.id, Side::Acceptor).is_empty());
    assert_eq!(rec.closes(), vec![(conn.id, CloseReason::CaptureEnd)]);
    assert_eq!(stats.packets, 2);
    assert_eq!(stats.gaps, 0);
    assert_eq!(stats.tcp_segments, 2);
    // 2018-11-16 21:27:18.136893 UTC, from the pcapng (microsecond if_tsresol).
    assert_eq!(conn.first_ts_us, 1_542_403_638_136_893);
}

#[test]
fn ndpi_merge_has_four_connections_each_one_rq() {
    let path = public_dir().join("ndpi-dicom.pcap");
    let (rec, res) = run(&path, CaptureConfig::default());
    let stats = res.expect("process");
    let opens = rec.opens();
    assert_eq!(opens.len(), 4);
    assert_eq!(stats.connections, 4);
    let mut sizes = Vec::new();
    for conn in &opens {
        assert!(matches!(
            conn.requestor_known_by,
            RequestorBy::AssociateRq | RequestorBy::SynSeen
        ));
        assert_eq!(conn.server.port(), 104);
        let rq = rec.bytes(conn.id, Side::Requestor);
        assert_eq!(rq[0], 0x01);
        assert_eq!(
            u32::from_be_bytes([rq[2], rq[3], rq[4], rq[5]]) as usize + 6,
            rq.len()
        );
        sizes.push(rq.len());
    }
    assert_eq!(sizes, vec![683, 16509, 16509, 683]);
    assert_eq!(rec.closes().len(), 4);
}

#[test]
fn every_public_capture_reads_cleanly() {
    let mut n = 0;
    for entry in std::fs::read_dir(public_dir()).expect("public captures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        n += 1;
        let (rec, res) = run(&path, CaptureConfig::default());
        let stats = res.expect("process");
        assert_eq!(
            stats.non_tcp_skipped + stats.malformed_skipped,
            0,
            "{path:?}"
        );
        assert_eq!(rec.opens().len(), rec.closes().len());
    }
    assert_eq!(n, 5);
}

/// Cross-check connection count and client->server bytes with tshark when installed.
#[test]
fn agrees_with_tshark_conversations() {
    let path = public_dir().join("ndpi-dicom.pcap");
    let Ok(out) = Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args(["-q", "-z", "conv,tcp"])
        .output()
    else {
        eprintln!("tshark not installed; skipping");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let convs: Vec<&str> = text.lines().filter(|l| l.contains("<->")).collect();
    let (rec, res) = run(&path, CaptureConfig::default());
    res.expect("process");
    assert_eq!(convs.len(), rec.opens().len(), "tshark said:\n{text}");
}
