//! Link/IP/TCP header decoding: the hand-written `link::decode` against the etherparse
//! one (`link_etherparse::decode`), on every frame of the largest public capture
//! (NULL/Loopback) and of the largest Ethernet capture of the fuzz corpus, decoded
//! `PASSES` times per repetition with each decoder, interleaved (the order alternates per
//! repetition); prints the median over the repetitions of ns per frame and of the ratio
//! etherparse / hand-written (docs/architecture.md, "Link-layer decoding").
//!
//! `cargo bench -p dicomtap-analyzer --bench link`

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/capture_support/mod.rs"]
mod capture_support;
#[path = "../tests/link_etherparse/mod.rs"]
mod link_etherparse;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use capture_support::public_dir;
use dicomtap_analyzer::capture::PacketReader;
use dicomtap_analyzer::capture::link::{self, Skip, TcpSegment};

const REPS: usize = 31;
const PASSES: usize = 20_000;

type Decoder = for<'a> fn(u32, &'a [u8]) -> Result<TcpSegment<'a>, Skip>;

fn largest(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("capture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a capture")
}

fn frames(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let mut reader = PacketReader::open(path).expect("open");
    let mut out = Vec::new();
    while let Ok(Some(p)) = reader.next_packet() {
        out.push((p.link_type, p.data.to_vec()));
    }
    out
}

/// Nanoseconds per frame for one repetition; the sum of payload lengths keeps the work.
fn pass(decode: Decoder, frames: &[(u32, Vec<u8>)]) -> (f64, u64) {
    let mut sum = 0u64;
    let t = Instant::now();
    for _ in 0..PASSES {
        for (lt, f) in frames {
            if let Ok(s) = decode(black_box(*lt), black_box(f)) {
                sum += s.payload.len() as u64 + u64::from(s.flags);
            }
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / (PASSES * frames.len()) as f64;
    (ns, black_box(sum))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/capture");
    let ethernet = std::fs::read_dir(&corpus)
        .expect("fuzz seeds")
        .map(|e| e.expect("entry").path())
        .filter(|p| frames(p).first().is_some_and(|(lt, _)| *lt == 1))
        .max_by_key(|p| frames(p).len())
        .expect("an Ethernet seed");
    println!(
        "capture                                           frames  hand ns  etherparse ns  ratio"
    );
    for path in [largest(&public_dir()), ethernet] {
        let frames = frames(&path);
        let (mut hand, mut ep, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        let (h0, e0) = (
            pass(link::decode, &frames),
            pass(link_etherparse::decode, &frames),
        );
        assert_eq!(h0.1, e0.1, "the decoders disagree on {}", path.display());
        for rep in 0..REPS {
            let (h, e) = if rep % 2 == 0 {
                let h = pass(link::decode, &frames).0;
                (h, pass(link_etherparse::decode, &frames).0)
            } else {
                let e = pass(link_etherparse::decode, &frames).0;
                (pass(link::decode, &frames).0, e)
            };
            hand.push(h);
            ep.push(e);
            ratio.push(e / h);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{name:<50}{:>6}{:>9.1}{:>15.1}{:>7.2}",
            frames.len(),
            median(&mut hand),
            median(&mut ep),
            median(&mut ratio)
        );
    }
}
