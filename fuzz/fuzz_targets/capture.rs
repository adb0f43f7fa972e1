//! A whole capture file: `CaptureReader` (pcap / pcapng, link decoding, TCP reassembly)
//! driving `Analysis` (one wire engine per connection, sessions) with the conformance
//! `Checker` loaded with the bundled statements, as `dicomtap analyze --statements` does
//! (their reduced copies from fuzz/seeds/statement: cloning the full ones for every run
//! took most of the time).
//!
//! Input format: the bytes of a pcap or pcapng file (seeds in fuzz/seeds/capture are real
//! captures).
//!
//! Checked besides "no panic, no allocation over the limit": the `StreamSink` contract
//! (see common/contract.rs) between the reassembler and the analysis; every connection
//! opened is closed when `process` returns, even on an error; each opened connection
//! becomes a session or counts as non-DICOM; the stats agree with what the sink got
//! (connections, gaps and gap bytes, data delivered within the bytes captured); every
//! event (but data fragments), session and finding serializes to JSON.
//!
//! Regressions: fuzz/regressions/capture (`Checker::advance` overflowed on capture
//! times within a second of `u64::MAX` microseconds; fixed in e37e93f).
#![no_main]

#[path = "common/contract.rs"]
mod contract;

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use contract::Contract;
use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::{CaptureReader, ConnectionInfo};
use dicomtap_analyzer::conformance::checker::Checker;
use dicomtap_analyzer::conformance::{Checked, ConformanceFinding, FindingSink};
use dicomtap_analyzer::session::Session;
use dicomtap_analyzer::statement::{self, Statement};
use dicomtap_wire::{EngineConfig, Event, EventKind};
use libfuzzer_sys::fuzz_target;

fn statements() -> &'static [Statement] {
    static ST: OnceLock<Vec<Statement>> = OnceLock::new();
    ST.get_or_init(|| {
        [
            (
                "dcmtk-storescp.toml",
                include_str!("../seeds/statement/dcmtk-storescp-reduced.toml"),
            ),
            (
                "dcmtk-dcmqrscp.toml",
                include_str!("../seeds/statement/dcmtk-dcmqrscp-reduced.toml"),
            ),
            (
                "pynetdicom-storescp.toml",
                include_str!("../seeds/statement/pynetdicom-storescp-reduced.toml"),
            ),
            (
                "orthanc-1.10.toml",
                include_str!("../seeds/statement/orthanc-1.10-reduced.toml"),
            ),
        ]
        .iter()
        .map(|(name, text)| {
            statement::parse(text, Path::new(name)).expect("bundled statement loads")
        })
        .collect()
    })
}

#[derive(Default)]
struct Count {
    events: u64,
    sessions: u64,
    findings: u64,
}

impl AnalysisSink for Count {
    fn event(&mut self, _conn: &ConnectionInfo, event: &Event) {
        self.events += 1;
        if !matches!(event.kind, EventKind::DataFragment(_)) {
            serde_json::to_string(event).expect("events serialize");
        }
    }

    fn session(&mut self, _conn: &ConnectionInfo, session: Session) {
        self.sessions += 1;
        assert!(
            session.first_ts_us <= session.last_ts_us,
            "session ends before it starts"
        );
        serde_json::to_string(&session).expect("sessions serialize");
    }
}

impl FindingSink for Count {
    fn finding(&mut self, finding: &ConformanceFinding) {
        self.findings += 1;
        serde_json::to_string(finding).expect("findings serialize");
    }
}

/// Runs the capture through `analysis`; checks the contract and the stats; returns the
/// analysis and the number of connections.
fn run<S: AnalysisSink>(data: &[u8], analysis: Analysis<S>) -> Option<(Analysis<S>, u64)> {
    let mut reader = CaptureReader::new("fuzz", Cursor::new(data)).ok()?;
    let mut sink = Contract::new(analysis);
    let result = reader.process(&mut sink);
    let stats = reader.stats().clone();
    if let Ok(returned) = &result {
        assert_eq!(returned, &stats);
    }
    sink.assert_all_closed();
    assert_eq!(
        stats.connections, sink.opened,
        "connections counted vs opened"
    );
    let (gaps, gap_bytes, delivered) = sink.conns.values().fold((0, 0, 0), |(g, b, d), c| {
        (
            g + c.gaps[0] + c.gaps[1],
            b + c.gap_bytes[0] + c.gap_bytes[1],
            d + c.data[0] + c.data[1],
        )
    });
    assert_eq!(stats.gaps, gaps, "gaps counted vs delivered");
    assert_eq!(stats.gap_bytes, gap_bytes, "gap bytes counted vs delivered");
    assert!(
        delivered <= stats.bytes,
        "{delivered} bytes delivered of {} captured",
        stats.bytes
    );
    Some((sink.inner, stats.connections))
}

fuzz_target!(|data: &[u8]| {
    let checked = Checked::new(Checker::new(statements().to_vec()), Count::default());
    let analysis = Analysis::new(Checker::engine_config(EngineConfig::default()), checked);
    let Some((analysis, connections)) = run(data, analysis) else {
        return;
    };
    let non_dicom = analysis.non_dicom_connections();
    let mut checked = analysis.into_sink();
    checked.finish();
    let count = &checked.inner;
    assert_eq!(
        count.sessions + non_dicom,
        connections,
        "each connection is a session or non-DICOM"
    );
});
