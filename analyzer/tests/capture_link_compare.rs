//! The hand-written link/IP/TCP decoder (`link::decode`) against the etherparse one
//! (`link_etherparse::decode`): the same result on every frame of every real capture
//! at hand and on synthesized frames of every link type, and no panic in either on
//! random or mutated frames (docs/architecture.md, "Link-layer decoding").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture_support;
mod link_etherparse;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use capture_support::{Link, Prng, Seg, public_dir};
use dicomtap_analyzer::capture::PacketReader;
use dicomtap_analyzer::capture::link::{self, Skip, TcpSegment};
use proptest::prelude::*;

/// Equal results; the two decoders word a `Malformed` reason differently, so only the
/// kind of skip is compared.
fn same(a: &Result<TcpSegment<'_>, Skip>, b: &Result<TcpSegment<'_>, Skip>) -> bool {
    match (a, b) {
        (Err(Skip::Malformed(_)), Err(Skip::Malformed(_))) => true,
        _ => a == b,
    }
}

/// The real captures: the public ones and the fuzz corpus (seeds and regressions).
fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [
        public_dir(),
        root.join("fuzz/seeds/capture"),
        root.join("fuzz/regressions/capture"),
    ] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("entry").path();
            if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every frame of `path` as (link type, bytes); stops at the first unreadable record
/// (the fuzz regression ends in one).
fn frames(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let mut reader = PacketReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    while let Ok(Some(p)) = reader.next_packet() {
        out.push((p.link_type, p.data.to_vec()));
    }
    out
}

#[test]
fn every_frame_of_every_real_capture_decodes_the_same() {
    let files = captures();
    assert!(files.len() >= 10, "captures found: {files:?}");
    let (mut n, mut tcp) = (0, 0);
    for path in &files {
        for (i, (lt, frame)) in frames(path).iter().enumerate() {
            let hand = link::decode(*lt, frame);
            let ep = link_etherparse::decode(*lt, frame);
            assert!(
                same(&hand, &ep),
                "{} frame {}: hand-written {hand:?}, etherparse {ep:?}",
                path.display(),
                i + 1
            );
            n += 1;
            tcp += usize::from(hand.is_ok());
        }
    }
    // 5 public files (12 frames), 6 seeds (56 frames), 1 regression (3 frames).
    assert!(n >= 70, "{n} frames");
    assert!(tcp >= 65, "{tcp} of {n} frames are TCP segments");
}

/// tshark's reading of the same frames, when installed: a frame it dissects as TCP
/// decodes to a segment with its source port and its payload length on the wire
/// (`tcp.len`), any other frame to a skip. (Both decoders agree on these frames.)
#[test]
fn real_captures_agree_with_tshark() {
    let mut checked = 0;
    for path in captures() {
        let Ok(out) = Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args([
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.len",
            ])
            .output()
        else {
            eprintln!("tshark not installed; skipping");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let frames = frames(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            frames.len(),
            "{}: tshark said\n{text}",
            path.display()
        );
        for (line, (lt, frame)) in lines.iter().zip(&frames) {
            let fields: Vec<&str> = line.split('\t').collect();
            let ours = link::decode(*lt, frame);
            match (fields.get(1).filter(|p| !p.is_empty()), fields.get(2)) {
                (Some(port), Some(len)) => {
                    let seg = ours.unwrap_or_else(|e| panic!("{}: {line}: {e:?}", path.display()));
                    assert_eq!(
                        seg.src.port().to_string(),
                        *port,
                        "{}: {line}",
                        path.display()
                    );
                    assert_eq!(seg.wire_len.to_string(), *len, "{}: {line}", path.display());
                }
                _ => assert!(ours.is_err(), "{}: {line}: {ours:?}", path.display()),
            }
            checked += 1;
        }
    }
    assert!(checked >= 70, "{checked} frames");
}

const LINKS: [Link; 9] = Link::ALL;

fn seg(v6: bool, payload: Vec<u8>) -> Seg {
    let (a, b) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        )
    };
    Seg {
        ts_us: 0,
        src: SocketAddr::new(a, 49152),
        dst: SocketAddr::new(b, 104),
        seq: 0x0102_0304,
        ack: 0x0506_0708,
        flags: 0x18,
        payload,
    }
}

/// Every link type over IPv4 (with options) and IPv6 (with a hop-by-hop header), TCP with
/// options, Ethernet padding; whole and cut at every length (a snap length anywhere).
#[test]
fn synthesized_frames_whole_and_snapped_decode_the_same() {
    let mut checked = 0;
    for link in LINKS {
        for v6 in [false, true] {
            for len in [0, 1, 17, 300] {
                let s = seg(v6, (0..len).map(|i| i as u8).collect());
                let frame = link.frame(&s);
                let whole = link::decode(link.linktype(), &frame).expect("whole frame decodes");
                assert_eq!((whole.src, whole.dst), (s.src, s.dst));
                assert_eq!(whole.payload, s.payload.as_slice());
                for cut in 0..=frame.len() {
                    let f = &frame[..cut];
                    let hand = link::decode(link.linktype(), f);
                    let ep = link_etherparse::decode(link.linktype(), f);
                    assert!(
                        same(&hand, &ep),
                        "{link:?} v6={v6} payload {len} cut at {cut}: hand-written {hand:?}, etherparse {ep:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

/// One random byte changed in a valid frame, many times: the same result, or one of the
/// differences documented in docs/architecture.md.
#[test]
fn mutated_frames_decode_the_same() {
    let mut rng = Prng::new(7);
    for link in LINKS {
        for v6 in [false, true] {
            let frame = link.frame(&seg(v6, vec![0xAB; 40]));
            for _ in 0..3000 {
                let mut f = frame.clone();
                let at = rng.below(f.len() as u64) as usize;
                f[at] = rng.next() as u8;
                let hand = link::decode(link.linktype(), &f);
                let ep = link_etherparse::decode(link.linktype(), &f);
                // The one difference: IPv6 next header 135 (mobility), 139 (HIP) or 140
                // (shim6) is an extension header to skip for the hand-written decoder,
                // an upper-layer protocol for etherparse.
                let ipv6_ext_unknown_to_etherparse = v6
                    && hand.is_ok()
                    && ep == Err(Skip::NotTcp)
                    && [135, 139, 140].contains(&f[at]);
                assert!(
                    same(&hand, &ep) || ipv6_ext_unknown_to_etherparse,
                    "{link:?} v6={v6} byte {at} = {:#04x}: hand-written {hand:?}, etherparse {ep:?}",
                    f[at]
                );
            }
        }
    }
}

fn link_type() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(12),
        Just(14),
        Just(101),
        Just(108),
        Just(113),
        Just(228),
        Just(229),
        Just(276),
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Random bytes: neither decoder panics, and a segment's payload lies in the frame.
    #[test]
    fn random_frames_never_panic(lt in link_type(), frame in proptest::collection::vec(any::<u8>(), 0..200)) {
        for s in [link::decode(lt, &frame), link_etherparse::decode(lt, &frame)].into_iter().flatten() {
            prop_assert!(s.payload.len() <= frame.len());
            prop_assert!(s.payload.len() as u64 <= u64::from(s.wire_len));
        }
    }

    /// A valid frame with random bytes overwritten and a random cut: neither panics.
    #[test]
    fn mutated_frames_never_panic(
        link in proptest::sample::select(LINKS.to_vec()),
        v6 in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut frame = link.frame(&seg(v6, vec![0x5A; 64]));
        for (at, b) in edits {
            let n = frame.len();
            frame[at % n] = b;
        }
        let n = frame.len();
        frame.truncate(cut % (n + 1));
        let decoded = [
            link::decode(link.linktype(), &frame),
            link_etherparse::decode(link.linktype(), &frame),
        ];
        for s in decoded.into_iter().flatten() {
            prop_assert!(s.payload.len() <= frame.len());
            prop_assert!(s.payload.len() as u64 <= u64::from(s.wire_len));
        }
    }
}
