//! Broken inputs fail with the file, the packet number and the byte offset, and never
//! panic; what came before a truncation is still delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture_support;

use std::io::Cursor;

use capture_support::{Link, Part, Recorder, Script, Seg, public_dir, write_pcap};
use dicomtap_analyzer::capture::{CaptureError, CaptureReader, CloseReason, Side};

#[test]
fn truncated_pcap_reports_the_packet_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Script::new(1, 1500, 500);
    let (hs, data, fin) = script.segments(2, 300);
    let all: Vec<Seg> = hs.into_iter().chain(data).chain(fin).collect();
    let path = dir.path().join("cut.pcap");
    write_pcap(&path, Link::Ethernet, &all, 65535);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&path, &bytes).expect("write");

    let mut reader = CaptureReader::open(&path).expect("open");
    let mut rec = Recorder::default();
    let err = reader.process(&mut rec).expect_err("truncated");
    assert!(err.is_truncation());
    let n = all.len() as u64;
    match &err {
        CaptureError::Truncated {
            file,
            packet,
            offset,
        } => {
            assert_eq!(*packet, n);
            assert!(file.ends_with("cut.pcap"));
            assert!(*offset > 24 && *offset < bytes.len() as u64);
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("packet {n}")) && msg.contains("cut.pcap"),
        "{msg}"
    );
    assert_eq!(reader.stats().truncated, 1);
    assert_eq!(reader.stats().packets, n - 1);
    // Everything before the cut was delivered and the connection closed.
    let conn = rec.opens()[0].id;
    assert_eq!(rec.bytes(conn, Side::Requestor), script.c_data);
    // Both FINs came before the cut final ACK.
    assert_eq!(rec.closes(), vec![(conn, CloseReason::Closed)]);
    let _ = Part::Gap(0);
}

#[test]
fn truncated_pcapng_in_every_possible_place() {
    let src = std::fs::read(public_dir().join("ndpi-dicom.pcap")).expect("read");
    for cut in (0..src.len())
        .step_by(97)
        .chain([src.len() - 1, src.len() - 4])
    {
        let input = Cursor::new(src[..cut].to_vec());
        match CaptureReader::new("cut.pcapng", input) {
            Err(e) => assert!(
                matches!(
                    e,
                    CaptureError::TooShort { .. } | CaptureError::Header { .. }
                ),
                "{cut}: {e}"
            ),
            Ok(mut reader) => {
                let mut rec = Recorder::default();
                match reader.process(&mut rec) {
                    Ok(_) => {}
                    Err(e) => {
                        assert!(e.to_string().starts_with("cut.pcapng: "), "{e}");
                        assert!(matches!(e, CaptureError::Truncated { .. }), "{cut}: {e}");
                    }
                }
                assert_eq!(rec.opens().len(), rec.closes().len());
            }
        }
    }
}

#[test]
fn garbage_is_not_a_capture() {
    let err = CaptureReader::new("junk.bin", Cursor::new(b"GET / HTTP/1.1\r\n".to_vec()))
        .err()
        .expect("error");
    assert!(matches!(err, CaptureError::UnknownFormat { .. }));
    assert!(err.to_string().starts_with("junk.bin: not a pcap"));
    let err = CaptureReader::new("empty", Cursor::new(Vec::new()))
        .err()
        .expect("error");
    assert!(matches!(err, CaptureError::TooShort { .. }));
    let err = CaptureReader::open("/nonexistent/x.pcap")
        .err()
        .expect("error");
    assert!(matches!(err, CaptureError::Open { .. }));
}

#[test]
fn corrupt_records_never_panic() {
    let src = std::fs::read(public_dir().join("ndpi-dicom.pcap")).expect("read");
    let mut rng = capture_support::Prng::new(99);
    for _ in 0..300 {
        let mut bytes = src.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        if let Ok(mut reader) = CaptureReader::new("fuzz", Cursor::new(bytes)) {
            let mut rec = Recorder::default();
            let _ = reader.process(&mut rec);
            assert_eq!(rec.opens().len(), rec.closes().len());
        }
    }
}
