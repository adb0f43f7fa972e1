//! The hand-written lines against serde_json's, byte for byte: every event the engine
//! produces from the real captures and the engine's seed scripts in the repository (and
//! the public captures when they are on the machine), the conformance findings the
//! bundled statements and a contrary one find in them, every notice, and hostile strings
//! in every string field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dicomtap_analyzer::analysis::{Analysis, AnalysisSink};
use dicomtap_analyzer::capture::{CaptureReader, ConnectionInfo};
use dicomtap_analyzer::conformance::{Checked, Checker, FindingSink, RuleId};
use dicomtap_analyzer::session::Session;
use dicomtap_wire::dimse::decode_command;
use dicomtap_wire::peek::peek_dataset;
use dicomtap_wire::status::{StatusClass, classify};
use dicomtap_wire::{Conversation, EngineConfig, FindingCode};

use super::*;
use crate::server::ProxyEvent;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The event's line both ways; panics with both when they differ. Returns the line.
fn same(ev: &ProxyEvent) -> String {
    let mut ours = Vec::new();
    head(&mut ours, ev.association, ev.client, ev.upstream);
    let written = kind(&mut ours, &ev.kind);
    let theirs = serde_json::to_vec(ev);
    match (written, theirs) {
        (Ok(()), Ok(theirs)) => {
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "hand-written (left) and serde_json (right) differ"
            );
            // Also what it is: one JSON object.
            assert!(
                serde_json::from_slice::<serde_json::Value>(&ours).is_ok_and(|v| v.is_object())
            );
            String::from_utf8_lossy(&ours).into_owned()
        }
        (Err(JsonError::DataFragment), Err(_)) => String::new(),
        (ours, theirs) => panic!("one failed: ours {ours:?}, serde_json {theirs:?}"),
    }
}

/// The event's kind as it appears in the line (`event`), for the coverage checks.
fn event_name(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("event")?.as_str().map(str::to_string)
}

/// Collects what the analysis sees.
#[derive(Default)]
struct Collect {
    events: Vec<(ConnectionInfo, Event)>,
    findings: Vec<ConformanceFinding>,
}

impl AnalysisSink for Collect {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        self.events.push((conn.clone(), event.clone()));
    }
    fn session(&mut self, _conn: &ConnectionInfo, _session: Session) {}
}

impl FindingSink for Collect {
    fn finding(&mut self, finding: &ConformanceFinding) {
        self.findings.push(finding.clone());
    }
}

/// A statement whose every claim the captures contradict: its AE titles are those of
/// the traffic, and it claims one SOP class none of them uses.
fn contrary_statement(titles: &[String]) -> String {
    let mut s = String::from(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"CONTRARY \\\"DEVICE\\\" \\u00e9\"\n",
    );
    for t in titles {
        s.push_str(&format!(
            "[[ae]]\ntitle = {t:?}\nacceptor = true\ninitiator = true\nmax_pdu_receive = 1024\n\
             [[ae.capability]]\nsop_class = \"1.2.840.10008.5.1.4.1.1.481.1\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ExplicitVRBigEndian\"]\n"
        ));
    }
    s
}

/// Runs `captures` through the analysis with `statements`: events and findings.
fn analyse(
    captures: &[PathBuf],
    statements: Vec<dicomtap_analyzer::statement::Statement>,
) -> Collect {
    let mut analysis = Analysis::new(
        Checker::engine_config(EngineConfig::default()),
        Checked::new(Checker::new(statements), Collect::default()),
    );
    for path in captures {
        let Ok(mut reader) = CaptureReader::open(path) else {
            panic!("{}: cannot open", path.display());
        };
        analysis
            .sink_mut()
            .checker
            .set_source(path.display().to_string());
        // A damaged capture (a fuzz regression) may end in an error: its events count.
        let _ = reader.process(&mut analysis);
        reader.finish(&mut analysis);
        analysis.next_capture();
    }
    let mut checked = analysis.into_sink();
    checked.finish();
    checked.into_parts().1
}

/// Every event in the line shapes the proxy writes, against `seen`.
fn check_events(c: &Collect, seen: &mut BTreeMap<String, usize>) {
    for (n, (conn, e)) in c.events.iter().enumerate() {
        let ev = ProxyEvent {
            association: conn.id.0,
            client: conn.client,
            upstream: (n % 3 != 0).then_some(conn.server),
            kind: ProxyEventKind::Wire(e.clone()),
        };
        if let Some(name) = event_name(&same(&ev)) {
            *seen.entry(name).or_default() += 1;
        }
    }
    for (n, f) in c.findings.iter().enumerate() {
        let ev = ProxyEvent {
            association: f.evidence.association,
            client: f.evidence.client.unwrap_or(addr("127.0.0.1:1")),
            upstream: (n % 2 == 0).then_some(f.evidence.server).flatten(),
            kind: ProxyEventKind::Conformance(ConformanceEvent {
                ts_us: f.evidence.ts_us,
                event: "conformance_finding",
                finding: f.clone(),
            }),
        };
        if let Some(name) = event_name(&same(&ev)) {
            *seen.entry(name).or_default() += 1;
        }
    }
}

#[test]
fn every_event_of_the_real_captures_is_written_as_serde_json_writes_it() {
    // (The snaplen-256 capture's data sets are cut short: no data set peeks here; the
    // engine seeds below have them.)
    let mut captures = files(&repo().join("fuzz/seeds/capture"));
    captures.extend(files(&repo().join("fuzz/regressions/capture")));
    assert!(captures.len() >= 6, "{captures:?}");
    // First the titles the traffic uses, for a statement they all contradict.
    let plain = analyse(&captures, Vec::new());
    let mut titles: Vec<String> = plain
        .events
        .iter()
        .filter_map(|(_, e)| match &e.kind {
            EventKind::AssociateRq(rq) => Some([rq.called_ae.clone(), rq.calling_ae.clone()]),
            _ => None,
        })
        .flatten()
        .filter(|t| !t.is_empty())
        .collect();
    titles.sort();
    titles.dedup();
    assert!(!titles.is_empty());
    let mut statements =
        dicomtap_analyzer::statement::load_dir(&repo().join("statements")).unwrap_or_default();
    let contrary = dicomtap_analyzer::statement::parse(
        &contrary_statement(&titles),
        Path::new("contrary.toml"),
    );
    match contrary {
        Ok(s) => statements.push(s),
        Err(e) => panic!("the contrary statement: {e}"),
    }
    let checked = analyse(&captures, statements);
    let mut seen = BTreeMap::new();
    check_events(&checked, &mut seen);
    for name in [
        "associate_rq",
        "associate_ac",
        "release_rq",
        "release_rp",
        "p_data",
        "command",
        "stream_end",
        "gap",
        "finding",
        "conformance_finding",
    ] {
        assert!(
            seen.contains_key(name),
            "no {name} in the captures: {seen:?}"
        );
    }
    assert!(
        checked.findings.len() >= 5,
        "{} findings",
        checked.findings.len()
    );

    // The public captures, when this machine has them (the same check, more traffic).
    let shared = std::env::var_os("DICOMTAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let public = files(&shared.join("captures/public"));
    let public: Vec<PathBuf> = public
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if !public.is_empty() {
        check_events(&analyse(&public, Vec::new()), &mut seen);
    }
}

/// Replays one engine seed script (the format of fuzz/fuzz_targets/engine.rs) with
/// `config`, collecting every event.
fn run_script(mut rest: &[u8], config: EngineConfig) -> Vec<Event> {
    let mut conv = Conversation::new(config);
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000_000u64;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let side = if op & 0x80 == 0 {
            Side::Requestor
        } else {
            Side::Acceptor
        };
        let kind = op & 0x7F;
        ts += u64::from(kind);
        match kind {
            0..=109 => {
                let Some((len, tail)) = rest.split_first_chunk::<2>() else {
                    break;
                };
                let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
                let (bytes, tail) = tail.split_at(len);
                rest = tail;
                if kind < 100 {
                    conv.feed(side, ts, bytes);
                } else {
                    for chunk in bytes.chunks(usize::from(kind - 99) + (usize::from(kind) % 7)) {
                        conv.feed(side, ts, chunk);
                    }
                }
            }
            110..=114 => {
                let Some((n, tail)) = rest.split_first_chunk::<4>() else {
                    break;
                };
                rest = tail;
                conv.gap(side, ts, u64::from(u32::from_be_bytes(*n)));
            }
            115..=119 => conv.resynchronize(side),
            120..=123 => conv.end(
                side,
                ts,
                if kind % 2 == 0 {
                    StreamEnd::Close
                } else {
                    StreamEnd::Reset
                },
            ),
            _ => out.extend(std::iter::from_fn(|| conv.poll())),
        }
    }
    conv.end(Side::Requestor, ts, StreamEnd::Close);
    conv.end(Side::Acceptor, ts, StreamEnd::Reset);
    out.extend(std::iter::from_fn(|| conv.poll()));
    out
}

#[test]
fn every_event_of_the_engine_seeds_commands_and_peeks_is_written_as_serde_json_writes_it() {
    let client = addr("10.1.2.3:40000");
    let up = addr("[fd00::2]:104");
    let wire = |n: usize, e: Event| ProxyEvent {
        association: n as u64,
        client,
        upstream: (n % 2 == 0).then_some(up),
        kind: ProxyEventKind::Wire(e),
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    let seeds = files(&repo().join("fuzz/seeds/engine"));
    assert!(seeds.len() >= 8);
    for seed in &seeds {
        let Ok(script) = std::fs::read(seed) else {
            panic!("{}", seed.display());
        };
        let Some((&caps, rest)) = script.split_first() else {
            continue;
        };
        let own = EngineConfig {
            max_association_pdu: [64, 1024, 16 * 1024, 1 << 20][usize::from(caps & 3)],
            max_command_bytes: [16, 256, 4096, 65536][usize::from(caps >> 2 & 3)],
            peek_bytes: [0, 64, 4096, 65536][usize::from(caps >> 4 & 3)],
            emit_data: caps & 0x40 != 0,
            emit_pdata: caps & 0x80 == 0,
        };
        // The seed's own caps, and the proxy's defaults (p_data lines, whole peeks).
        for config in [own, EngineConfig::default()] {
            for e in run_script(rest, config) {
                n += 1;
                if let Some(name) = event_name(&same(&wire(n, e))) {
                    *seen.entry(name).or_default() += 1;
                }
            }
        }
    }
    // The captures' data sets are cut short (snaplen 256); the seeds' are whole.
    for name in [
        "associate_rq",
        "associate_ac",
        "release_rq",
        "release_rp",
        "command",
        "p_data",
        "dataset_peek",
        "dataset_end",
        "stream_end",
        "finding",
    ] {
        assert!(seen.contains_key(name), "no {name} in the seeds: {seen:?}");
    }

    // Command sets and data sets of the other seeds, as command and peek events.
    let commands = files(&repo().join("fuzz/seeds/command"));
    assert!(commands.len() >= 10);
    for (i, path) in commands.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap_or_default();
        let Ok(command) = decode_command(&bytes) else {
            panic!("{}: does not decode", path.display());
        };
        let e = Event {
            ts_us: i as u64,
            from: Side::Requestor,
            offset: 0,
            kind: EventKind::Command(CommandEvent {
                pc_id: 1,
                abstract_syntax: (i % 2 == 0).then(|| "1.2.840.10008.1.1".to_string()),
                command,
                latency_us: (i % 3 == 0).then_some(1234),
            }),
        };
        same(&wire(i, e));
    }
    let peeks = files(&repo().join("fuzz/seeds/peek"));
    assert!(peeks.len() >= 10);
    for (i, path) in peeks.iter().enumerate() {
        let data = std::fs::read(path).unwrap_or_default();
        let Some((&sel, bytes)) = data.split_first() else {
            continue;
        };
        let encoding = [
            Encoding::ImplicitVrLittleEndian,
            Encoding::ExplicitVrLittleEndian,
            Encoding::ExplicitVrBigEndian,
            Encoding::DeflatedExplicitVrLittleEndian,
            Encoding::Encapsulated,
            Encoding::Unknown,
        ][usize::from((sel & 7) % 6)];
        let e = Event {
            ts_us: 5,
            from: Side::Acceptor,
            offset: u64::MAX,
            kind: EventKind::DatasetPeek(DatasetPeekEvent {
                pc_id: 255,
                transfer_syntax: (i % 2 == 1).then(|| "1.2.840.10008.1.2.1".to_string()),
                message_id: (i % 2 == 0).then_some(u16::MAX),
                peek: peek_dataset(bytes, encoding, sel & 0x80 != 0),
            }),
        };
        same(&wire(i, e));
    }
}

/// Strings that need escaping, and some that must not be escaped.
const HOSTILE: [&str; 12] = [
    "",
    "plain 1.2.840.10008.1.1",
    "a \"quoted\" word",
    "back\\slash \\\\ \\u0041 \\n",
    "\u{0}\u{1}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{e}\u{1b}\u{1f} controls",
    "\u{7f} delete, \u{80}\u{9f} C1, \u{a0} nbsp",
    "non-ASCII: é ü ß Ωμέγα Привет 日本語 한국어 😀 \u{10ffff}",
    "\u{2028}\u{2029} line separators, \u{feff} BOM, \u{fffd} replacement",
    "</script><!-- '&' -->",
    "\"",
    "\\",
    "ends with a control\u{1}",
];

fn hostile(i: usize) -> String {
    HOSTILE[i % HOSTILE.len()].to_string()
}

fn opt(i: usize) -> Option<String> {
    (i % 3 != 2).then(|| hostile(i))
}

fn assoc_rq(i: usize) -> AssociateRequest {
    AssociateRequest {
        protocol_version: 1,
        called_ae: hostile(i),
        calling_ae: hostile(i + 1),
        application_context: opt(i + 2),
        contexts: (0..(i % 4))
            .map(|k| ProposedContext {
                id: (2 * k + 1) as u8,
                abstract_syntax: hostile(i + k),
                transfer_syntaxes: (0..k).map(|t| hostile(i + t)).collect(),
            })
            .collect(),
        user_info: user_info(i),
        unknown: unknown(i),
    }
}

fn user_info(i: usize) -> UserInformation {
    UserInformation {
        max_length: (i % 2 == 0).then_some(u32::MAX - i as u32),
        implementation_class_uid: opt(i),
        implementation_version_name: opt(i + 1),
        async_window: (i % 2 == 1).then_some((0, u16::MAX)),
        role_selections: (0..(i % 3))
            .map(|k| RoleSelection {
                sop_class: hostile(i + k),
                scu: k % 2 == 0,
                scp: k % 2 == 1,
            })
            .collect(),
        extended_negotiation: (0..(i % 3))
            .map(|k| ExtendedNegotiation {
                sop_class: hostile(i + k),
                info: hostile(i + k + 1),
            })
            .collect(),
        common_extended_negotiation: (0..(i % 3))
            .map(|k| CommonExtendedNegotiation {
                sop_class: hostile(i + k),
                service_class: hostile(i + k + 1),
                related_general_sop_classes: (0..k).map(|t| hostile(i + t)).collect(),
            })
            .collect(),
        user_identity: (i % 2 == 0).then(|| UserIdentityRequest {
            identity_type: (i % 6) as u8,
            identity_type_name: dicomtap_wire::assoc::user_identity_type_name((i % 6) as u8),
            positive_response_requested: i % 4 == 0,
            username: opt(i),
            primary_field_length: i as u16,
            secondary_field_length: u16::MAX,
        }),
        user_identity_response_length: (i % 2 == 1).then_some(i as u16),
        unknown: unknown(i + 1),
    }
}

fn unknown(i: usize) -> Vec<UnknownItem> {
    (0..(i % 3))
        .map(|k| UnknownItem {
            item_type: (k * 100) as u8,
            length: u16::MAX,
            offset: u64::MAX - k as u64,
        })
        .collect()
}

fn command(i: usize) -> Command {
    let s = |k: usize| opt(i + k);
    let n = |k: usize| (((i + k) % 3) != 0).then_some((i * 997 + k) as u16);
    let notes = vec![
        CommandNote::NoGroupLength,
        CommandNote::GroupLengthMismatch {
            declared: u32::MAX,
            actual: u64::MAX,
        },
        CommandNote::UnknownElement {
            tag: hostile(i),
            offset: usize::MAX,
        },
        CommandNote::OutOfOrder {
            tag: hostile(i + 1),
            offset: 0,
        },
        CommandNote::Duplicate {
            tag: hostile(i + 2),
            offset: 7,
        },
        CommandNote::BadLength {
            tag: hostile(i + 3),
            offset: 8,
            length: 3,
        },
        CommandNote::UidPadding {
            tag: hostile(i + 4),
            offset: 9,
            value: hostile(i + 5),
        },
        CommandNote::InvalidUid {
            tag: hostile(i + 6),
            offset: 10,
            value: hostile(i + 7),
        },
        CommandNote::Missing {
            tag: hostile(i + 8),
        },
    ];
    let field = [0x0001u16, 0x8001, 0x0030, 0x8030, 0x0FFF, 0xFFFF][i % 6];
    Command {
        command_field: field,
        command: dicomtap_wire::dimse::command_name(field),
        message_id: n(0),
        responded_to: n(1),
        affected_sop_class: s(0),
        requested_sop_class: s(1),
        affected_sop_instance: s(2),
        requested_sop_instance: s(3),
        priority: n(2),
        has_dataset: i % 2 == 0,
        status: (i % 4 != 3)
            .then(|| classify([0x0000, 0xA700, 0xFF00, 0xB000, 0x1234][i % 5], field)),
        error_comment: s(4),
        error_id: n(3),
        offending_elements: (0..(i % 3)).map(|k| hostile(i + k)).collect(),
        sub_operations: (i % 2 == 1).then_some(SubOperations {
            remaining: n(4),
            completed: n(5),
            failed: n(6),
            warning: n(7),
        }),
        move_destination: s(5),
        move_originator_ae: s(6),
        move_originator_message_id: n(8),
        event_type_id: n(9),
        action_type_id: n(10),
        group_length: (i % 2 == 0).then_some(u32::MAX),
        data_set_type: n(11),
        attribute_identifiers: (0..(i % 2)).map(|k| hostile(i + k)).collect(),
        notes: if i % 3 == 0 { Vec::new() } else { notes },
    }
}

fn peek(i: usize) -> DatasetPeek {
    DatasetPeek {
        sop_class_uid: opt(i),
        sop_instance_uid: opt(i + 1),
        study_instance_uid: opt(i + 2),
        series_instance_uid: opt(i + 3),
        modality: opt(i + 4),
        specific_character_set: (0..(i % 3)).map(|k| hostile(i + k)).collect(),
        unchecked_character_sets: (0..(i % 2)).map(|k| hostile(i + k)).collect(),
        invalid_text: (0..(i % 3))
            .map(|k| InvalidText {
                tag: hostile(i + k),
                vr: hostile(i + k + 1),
                byte_offset: usize::MAX - k,
                reason: hostile(i + k + 2),
            })
            .collect(),
        private_creators: (0..(i % 3))
            .map(|k| PrivateCreator {
                group: u16::MAX,
                block: k as u8,
                creator: hostile(i + k),
                in_sequence: k % 2 == 0,
            })
            .collect(),
        examined: i * 1000,
        truncated: i % 2 == 0,
        error: opt(i + 5),
        encoding_found: [
            None,
            Some(Encoding::ImplicitVrLittleEndian),
            Some(Encoding::ExplicitVrLittleEndian),
            Some(Encoding::ExplicitVrBigEndian),
            Some(Encoding::DeflatedExplicitVrLittleEndian),
            Some(Encoding::Encapsulated),
            Some(Encoding::Unknown),
        ][i % 7],
    }
}

fn wire_kinds(i: usize) -> Vec<EventKind> {
    let mut kinds = vec![
        EventKind::AssociateRq(assoc_rq(i)),
        EventKind::AssociateAc(AssociateAccept {
            protocol_version: u16::MAX,
            called_ae: hostile(i),
            calling_ae: hostile(i + 1),
            application_context: opt(i + 2),
            results: (0..(i % 4))
                .map(|k| ContextResult {
                    id: (2 * k + 1) as u8,
                    result: k as u8,
                    result_name: dicomtap_wire::assoc::context_result_name(k as u8),
                    transfer_syntax: opt(i + k),
                })
                .collect(),
            user_info: user_info(i + 1),
            unknown: unknown(i + 2),
        }),
        EventKind::AssociateRj(AssociateReject {
            result: 1,
            source: 2,
            reason: 255,
            description: hostile(i),
        }),
        EventKind::ReleaseRq,
        EventKind::ReleaseRp,
        EventKind::Abort(Abort {
            source: 0,
            reason: 6,
            description: hostile(i + 1),
        }),
        EventKind::PData(PDataSummary {
            pdu_length: u32::MAX,
            pdvs: (0..(i % 4))
                .map(|k| PdvInfo {
                    pc_id: (2 * k + 1) as u8,
                    length: (k * 16384) as u32,
                    command: k % 2 == 0,
                    last: k % 3 == 0,
                })
                .collect(),
        }),
        EventKind::Command(CommandEvent {
            pc_id: 3,
            abstract_syntax: opt(i),
            command: command(i),
            latency_us: (i % 2 == 0).then_some(u64::MAX),
        }),
        EventKind::DatasetPeek(DatasetPeekEvent {
            pc_id: 5,
            transfer_syntax: opt(i + 1),
            message_id: (i % 2 == 1).then_some(0),
            peek: peek(i),
        }),
        EventKind::DatasetEnd(DatasetEndEvent {
            pc_id: 7,
            message_id: (i % 2 == 0).then_some(9),
            length: u64::MAX,
        }),
        EventKind::UnknownPdu {
            pdu_type: 0xFF,
            length: u32::MAX,
        },
        EventKind::Gap { missing: i as u64 },
        EventKind::Omitted { bytes: 10 },
        EventKind::Resync { skipped: 99 },
        EventKind::StreamEnd {
            how: StreamEnd::Close,
        },
        EventKind::StreamEnd {
            how: StreamEnd::Reset,
        },
    ];
    for (k, code) in FindingCode::ALL.iter().enumerate() {
        kinds.push(EventKind::Finding(Finding::new(
            *code,
            [Severity::Info, Severity::Warning, Severity::Error][(i + k) % 3],
            hostile(i + k),
        )));
    }
    kinds
}

fn notices(i: usize) -> Vec<Notice> {
    let mut suppressed = Notice::EventsSuppressed(Default::default());
    if let Notice::EventsSuppressed(s) = &mut suppressed
        && i % 2 == 1
    {
        for k in 0..HOSTILE.len() {
            s.findings.insert(hostile(k), k as u64);
        }
        s.small_p_data = 1;
        s.small_p_data_bytes = u64::MAX;
        s.over_budget = 2;
        s.contexts_not_logged = 3;
        s.pdvs_not_logged = 4;
        s.lines_logged = 5;
    }
    vec![
        Notice::Accepted {
            listen: addr("0.0.0.0:11112"),
        },
        Notice::UpstreamConnected {
            local: addr("[::1]:65535"),
        },
        Notice::UpstreamError {
            kind: hostile(i),
            message: hostile(i + 1),
        },
        Notice::ProxyReject {
            result: 1,
            source: 3,
            reason: 2,
            why: hostile(i + 2),
        },
        Notice::ProxyAbort {
            to: if i % 2 == 0 {
                Side::Requestor
            } else {
                Side::Acceptor
            },
            why: hostile(i + 3),
        },
        Notice::TlsEstablished {
            leg: hostile(i),
            version: hostile(i + 1),
            cipher_suite: hostile(i + 2),
            server_name: opt(i),
            peer_subject: opt(i + 1),
            peer_issuer: opt(i + 2),
            peer_fingerprint_sha256: opt(i + 3),
        },
        Notice::TlsHandshakeFailed {
            leg: hostile(i),
            result: hostile(i + 1),
            reason: hostile(i + 2),
        },
        Notice::AccessDenied {
            rule: hostile(i),
            detail: hostile(i + 1),
        },
        suppressed,
        Notice::Closed {
            bytes_from_requestor: 0,
            bytes_from_acceptor: u64::MAX,
            duration_us: i as u64,
            how: hostile(i + 4),
        },
    ]
}

fn conformance_finding(i: usize, rule: RuleId) -> ConformanceEvent {
    let all = i % 2 == 0;
    ConformanceEvent {
        ts_us: i as u64,
        event: "conformance_finding",
        finding: ConformanceFinding {
            rule,
            severity: [Severity::Info, Severity::Warning, Severity::Error][i % 3],
            device: hostile(i),
            ae: hostile(i + 1),
            claim: hostile(i + 2),
            observed: hostile(i + 3),
            evidence: Evidence {
                source: all.then(|| hostile(i + 4)),
                association: i as u64,
                client: all.then(|| addr("192.168.0.1:1")),
                server: (i % 3 == 0).then(|| addr("[fe80::1%7]:104")),
                from: all.then_some(Side::Acceptor),
                offset: all.then_some(u64::MAX),
                message_id: (i % 3 != 1).then_some(1),
                sop_instance: all.then(|| hostile(i + 5)),
                ts_us: 1,
                related: (0..(i % 3))
                    .map(|k| Related {
                        what: hostile(i + k),
                        association: k as u64,
                        message_id: (k % 2 == 0).then_some(k as u16),
                        ts_us: u64::MAX,
                    })
                    .collect(),
            },
        },
    }
}

#[test]
fn hostile_strings_and_every_kind_variant_and_option_are_written_as_serde_json_writes_them() {
    let clients = [
        addr("127.0.0.1:0"),
        addr("255.255.255.255:65535"),
        addr("[::ffff:10.0.0.1]:104"),
        addr("[fe80::1:2:3:4%42]:11112"),
        addr("[2001:db8::1]:1"),
    ];
    let mut lines = 0;
    for i in 0..3 * HOSTILE.len() {
        let client = clients[i % clients.len()];
        let upstream = (i % 2 == 0).then_some(clients[(i + 1) % clients.len()]);
        let association = [0, 1, 9, 10, 99, 100, 12_345, u64::MAX][i % 8];
        let ev = |kind| ProxyEvent {
            association,
            client,
            upstream,
            kind,
        };
        for (k, kind) in wire_kinds(i).into_iter().enumerate() {
            same(&ev(ProxyEventKind::Wire(Event {
                ts_us: [0, 1_700_000_000_000_000, u64::MAX][k % 3],
                from: if k % 2 == 0 {
                    Side::Requestor
                } else {
                    Side::Acceptor
                },
                offset: k as u64,
                kind,
            })));
            lines += 1;
        }
        for what in notices(i) {
            same(&ev(ProxyEventKind::Proxy(ProxyNotice { ts_us: 7, what })));
            lines += 1;
        }
        for rule in RuleId::ALL {
            same(&ev(ProxyEventKind::Conformance(conformance_finding(
                i, rule,
            ))));
            lines += 1;
        }
    }
    assert!(lines > 1000, "{lines}");
    // Data set fragments are never logged, either way.
    let fragment = ProxyEvent {
        association: 1,
        client: clients[0],
        upstream: None,
        kind: ProxyEventKind::Wire(Event {
            ts_us: 0,
            from: Side::Requestor,
            offset: 0,
            kind: EventKind::DataFragment(dicomtap_wire::event::DataFragment {
                pc_id: 1,
                bytes: vec![1, 2, 3],
                last: true,
            }),
        }),
    };
    let mut out = b"kept".to_vec();
    assert!(matches!(
        kind(&mut out, &fragment.kind),
        Err(JsonError::DataFragment)
    ));
    assert_eq!(out, b"kept", "nothing written");
    assert!(serde_json::to_vec(&fragment).is_err());
}

#[test]
fn integers_and_every_byte_in_a_string_are_serde_jsons() {
    let mut edges = vec![0u64, u64::MAX, u64::MAX - 1];
    let mut p = 1u64;
    for _ in 0..19 {
        p *= 10;
        edges.extend([p - 1, p, p + 1]);
    }
    for v in edges {
        let mut out = Vec::new();
        uint(&mut out, v);
        assert_eq!(out, serde_json::to_vec(&v).unwrap_or_default(), "{v}");
    }
    // Every scalar value of the first planes and the boundaries beyond, alone and
    // between text.
    let chars = (0u32..0x3000)
        .chain(0xD7F0..0xD800)
        .chain(0xE000..0xE100)
        .chain(0xFFF0..0x10010)
        .chain(0x10FFF0..0x110000)
        .filter_map(char::from_u32);
    for c in chars {
        for s in [c.to_string(), format!("a{c}b{c}{c}")] {
            let mut out = Vec::new();
            string(&mut out, &s);
            assert_eq!(
                out,
                serde_json::to_vec(&s).unwrap_or_default(),
                "U+{:04X}",
                c as u32
            );
        }
    }
    assert_eq!(
        StatusClass::of(0xFF01).as_str(),
        "pending",
        "the status class names are serde's (compared in the lines above)"
    );
}
