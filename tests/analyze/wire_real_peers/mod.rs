//! Evidence that the wire engine decodes what real peers put on the wire.
//!
//! Each scenario starts a real SCP (DCMTK storescp/dcmqrscp, pynetdicom, Orthanc) on a
//! free 127.0.0.1 port, captures the loopback traffic with dumpcap, runs a real SCU, then
//! checks the capture three ways:
//! - our engine (the library, fed each TCP direction's payload in capture order with the
//!   frame timestamps) against tshark's DICOM dissector: the sequence of PDU types each
//!   way, AE titles, proposed context IDs, context results and accepted transfer syntaxes,
//!   Max Length, implementation class UID and version, and every DIMSE command with its
//!   status;
//! - our engine against the peers' own logs (stores, echoes, pending find responses);
//! - our engine against itself: every stream fed one byte at a time gives the same events.
//!
//! Conforming peers must produce no error-severity finding. The public captures in
//! `shared/captures/public` are decoded too, and the `dicomtap pdu` binary is run on a
//! captured stream and on bad input.
//!
//! Peers are installed by `scripts/install-test-peers.sh`; a missing one fails the test
//! (or skips it with `DICOMTAP_ALLOW_MISSING_PEERS=1`). With `DICOMTAP_FUZZ_SEEDS=DIR`,
//! the scenarios also write fuzz seeds (engine scripts, command sets, data set prefixes)
//! taken from the real traffic into `DIR/{engine,command,peek}`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dicomtap_wire::assoc::{AssociateAccept, AssociateRequest, UserInformation};
use dicomtap_wire::dimse::Command as Dimse;
use dicomtap_wire::{Conversation, EngineConfig, Event, EventKind, Severity, Side, StreamEnd};
use support::peers::{Dcmqrscp, orthanc, python_scp, storescp_with};
use support::{
    Capture, Proc, RunOutput, by_stream, command, free_port, hex_encode, require, require_peers,
    require_python, run, run_ok, tcp_segments, temp_dir, tshark, tshark_fields,
};

/// Longest any single peer invocation may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Our side: the engine fed with what the capture holds

/// What the test does to a conversation, in capture order.
#[derive(Debug, Clone)]
enum Action {
    Feed(Side, u64, Vec<u8>),
    Gap(Side, u64, u64),
    End(Side, u64, StreamEnd),
}

/// One TCP connection of a capture, as our engine decoded it.
#[derive(Debug)]
struct Connection {
    stream: u64,
    requestor_port: u16,
    acceptor_port: u16,
    actions: Vec<Action>,
    events: Vec<Event>,
}

/// Applies `actions` to a fresh engine; with `split`, every feed is cut into pieces of
/// that many bytes (same timestamp).
fn replay(actions: &[Action], config: EngineConfig, split: Option<usize>) -> Vec<Event> {
    let mut conv = Conversation::new(config);
    let mut events = Vec::new();
    for action in actions {
        match action {
            Action::Feed(side, ts, bytes) => match split {
                Some(n) => bytes.chunks(n).for_each(|c| conv.feed(*side, *ts, c)),
                None => conv.feed(*side, *ts, bytes),
            },
            Action::Gap(side, ts, missing) => conv.gap(*side, *ts, *missing),
            Action::End(side, ts, how) => conv.end(*side, *ts, *how),
        }
        while let Some(e) = conv.poll() {
            events.push(e);
        }
    }
    events
}

/// Every TCP connection of `pcap`, decoded by the engine. The requestor is the side that
/// sent the SYN (or, for captures that start late, the first payload); sequence numbers
/// are followed so that a hole becomes a `gap` and a retransmission is not fed twice.
fn decode_capture(pcap: &Path, dir: &Path) -> Vec<Connection> {
    let mut out = Vec::new();
    for (stream, segments) in by_stream(tcp_segments(pcap, dir)) {
        let requestor_port = segments
            .iter()
            .find(|s| s.syn && !s.ack)
            .or_else(|| segments.iter().find(|s| !s.payload.is_empty()))
            .map(|s| s.src_port);
        let Some(requestor_port) = requestor_port else {
            continue;
        };
        let acceptor_port = segments
            .iter()
            .find(|s| s.src_port == requestor_port)
            .map(|s| s.dst_port)
            .expect("the requestor sent a segment");
        let mut next: [Option<u64>; 2] = [None, None];
        let mut actions = Vec::new();
        for s in &segments {
            let side = if s.src_port == requestor_port {
                Side::Requestor
            } else {
                Side::Acceptor
            };
            let i = side.index();
            if s.syn {
                next[i] = Some(s.seq + 1);
            }
            if !s.payload.is_empty() {
                let expected = *next[i].get_or_insert(s.seq);
                let mut payload = s.payload.as_slice();
                if s.seq > expected {
                    actions.push(Action::Gap(side, s.ts_us, s.seq - expected));
                } else if s.seq < expected {
                    let dup = ((expected - s.seq) as usize).min(payload.len());
                    payload = &payload[dup..];
                }
                if !payload.is_empty() {
                    actions.push(Action::Feed(side, s.ts_us, payload.to_vec()));
                }
                next[i] = Some(next[i].unwrap_or(0).max(s.seq + s.payload.len() as u64));
            }
            if s.rst {
                actions.push(Action::End(side, s.ts_us, StreamEnd::Reset));
            } else if s.fin {
                actions.push(Action::End(side, s.ts_us, StreamEnd::Close));
            }
        }
        let events = replay(&actions, EngineConfig::default(), None);
        out.push(Connection {
            stream,
            requestor_port,
            acceptor_port,
            actions,
            events,
        });
    }
    out
}

impl Connection {
    fn port(&self, side: Side) -> u16 {
        match side {
            Side::Requestor => self.requestor_port,
            Side::Acceptor => self.acceptor_port,
        }
    }

    /// Everything `side` sent, as fed.
    fn bytes(&self, side: Side) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.actions {
            if let Action::Feed(s, _, b) = a
                && *s == side
            {
                out.extend_from_slice(b);
            }
        }
        out
    }

    fn sent(&self, side: Side) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.from == side)
    }

    /// PDU types `side` sent, in order.
    fn pdu_types(&self, side: Side) -> Vec<u8> {
        self.sent(side)
            .filter_map(|e| match &e.kind {
                EventKind::AssociateRq(_) => Some(1),
                EventKind::AssociateAc(_) => Some(2),
                EventKind::AssociateRj(_) => Some(3),
                EventKind::PData(_) => Some(4),
                EventKind::ReleaseRq => Some(5),
                EventKind::ReleaseRp => Some(6),
                EventKind::Abort(_) => Some(7),
                EventKind::UnknownPdu { pdu_type, .. } => Some(*pdu_type),
                _ => None,
            })
            .collect()
    }

    /// DIMSE commands `side` sent: name and status.
    fn commands(&self, side: Side) -> Commands {
        self.dimse(side)
            .map(|c| (c.command.to_string(), c.status.as_ref().map(|s| s.value)))
            .collect()
    }

    fn dimse(&self, side: Side) -> impl Iterator<Item = &Dimse> {
        self.sent(side).filter_map(|e| match &e.kind {
            EventKind::Command(c) => Some(&c.command),
            _ => None,
        })
    }

    fn request(&self) -> Option<&AssociateRequest> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::AssociateRq(rq) => Some(rq),
            _ => None,
        })
    }

    fn accept(&self) -> Option<&AssociateAccept> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::AssociateAc(ac) => Some(ac),
            _ => None,
        })
    }

    /// Findings at or above `min`, each with the bytes where it points, for messages.
    fn findings(&self, min: Severity) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Finding(f) if f.severity >= min => {
                    let bytes = self.bytes(e.from);
                    let at = (e.offset as usize).min(bytes.len());
                    let end = (at + 64).min(bytes.len());
                    Some(format!(
                        "{} {} from the {} at offset {} (stream {}, ts {}): {}; bytes there: {}",
                        f.severity,
                        f.code.id(),
                        e.from,
                        e.offset,
                        self.stream,
                        e.ts_us,
                        f.message,
                        hex_encode(&bytes[at..end])
                    ))
                }
                _ => None,
            })
            .collect()
    }

    fn count(&self, side: Side, name: &str, status: Option<u16>) -> usize {
        self.commands(side)
            .iter()
            .filter(|(n, s)| n == name && (status.is_none() || *s == status))
            .count()
    }
}

// ---------------------------------------------------------------------------------------
// Their side: tshark's DICOM dissector

/// DIMSE commands as (name, status), in order.
type Commands = Vec<(String, Option<u16>)>;

/// What tshark's DICOM dissector saw, keyed by (TCP stream, source port).
#[derive(Debug, Default)]
struct Dissection {
    pdu_types: BTreeMap<(u64, u16), Vec<u8>>,
    /// (called, calling) of each A-ASSOCIATE-RQ, per stream.
    ae_titles: BTreeMap<u64, (String, String)>,
    proposed_ids: BTreeMap<u64, Vec<u8>>,
    /// (id, result) of each context of the A-ASSOCIATE-AC, per stream.
    results: BTreeMap<u64, Vec<(u8, u8)>>,
    /// Transfer syntax UIDs of the A-ASSOCIATE-AC, in order, per stream.
    accepted_syntaxes: BTreeMap<u64, Vec<String>>,
    max_length: BTreeMap<(u64, u16), Vec<u32>>,
    implementation: BTreeMap<(u64, u16), (String, String)>,
    commands: BTreeMap<(u64, u16), Commands>,
}

fn num(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("tshark printed {s:?} where a number belongs"))
}

fn list(s: &str) -> Vec<&str> {
    s.split('|').filter(|v| !v.is_empty()).collect()
}

/// "Explicit VR Little Endian (1.2.840.10008.1.2.1)" -> "1.2.840.10008.1.2.1".
fn uid_in(s: &str) -> String {
    let s = s.trim();
    match (s.rfind('('), s.ends_with(')')) {
        (Some(open), true) => s[open + 1..s.len() - 1].to_string(),
        _ => s.to_string(),
    }
}

fn dissect(pcap: &Path, server_ports: &[u16], dir: &Path) -> Dissection {
    let mut decode_as = Vec::new();
    for p in server_ports {
        decode_as.push("-d".to_string());
        decode_as.push(format!("tcp.port=={p},dicom"));
    }
    let mut extra: Vec<&str> = decode_as.iter().map(String::as_str).collect();
    extra.extend(["-Y", "dicom"]);
    let rows = tshark_fields(
        pcap,
        &extra,
        &[
            "frame.number",
            "tcp.stream",
            "tcp.srcport",
            "dicom.pdu.type",
            "dicom.assoc.ae.called",
            "dicom.assoc.ae.calling",
            "dicom.pctx.id",
            "dicom.pctx.result",
            "dicom.pctx.xfer.syntax",
            "dicom.max_pdu_len",
            "dicom.userinfo.uid",
            "dicom.userinfo.version",
        ],
        dir,
    );
    let mut d = Dissection::default();
    let mut frames: BTreeMap<u64, (u64, u16)> = BTreeMap::new();
    for r in &rows {
        let f = |i: usize| r.get(i).map(String::as_str).unwrap_or("");
        let (frame, stream, port) = (num(f(0)), num(f(1)), num(f(2)) as u16);
        frames.insert(frame, (stream, port));
        let types: Vec<u8> = list(f(3)).into_iter().map(|t| num(t) as u8).collect();
        let key = (stream, port);
        d.pdu_types
            .entry(key)
            .or_default()
            .extend(types.iter().copied());
        let ids: Vec<u8> = list(f(6)).into_iter().map(|v| num(v) as u8).collect();
        if types.contains(&1) {
            let called = list(f(4)).first().map(|s| s.trim().to_string());
            let calling = list(f(5)).first().map(|s| s.trim().to_string());
            d.ae_titles.insert(
                stream,
                (called.unwrap_or_default(), calling.unwrap_or_default()),
            );
            d.proposed_ids.insert(stream, ids.clone());
        }
        if types.contains(&2) {
            let results: Vec<u8> = list(f(7)).into_iter().map(|v| num(v) as u8).collect();
            d.results
                .insert(stream, ids.iter().copied().zip(results).collect());
            d.accepted_syntaxes
                .insert(stream, list(f(8)).into_iter().map(uid_in).collect());
        }
        if types.contains(&1) || types.contains(&2) {
            d.max_length
                .entry(key)
                .or_default()
                .extend(list(f(9)).into_iter().map(|v| num(v) as u32));
            d.implementation.insert(
                key,
                (
                    list(f(10)).first().unwrap_or(&"").trim().to_string(),
                    list(f(11)).first().unwrap_or(&"").trim().to_string(),
                ),
            );
        }
    }

    // DIMSE commands and statuses, from the detailed view: tshark prints each command
    // element as "(0000,0100)  2 Command Field   C-STORE-RQ" and the status as
    // "(0000,0900)  2 Status   Success (0x00)".
    let file = pcap.to_str().expect("temporary paths are UTF-8");
    let mut args: Vec<&str> = vec!["-r", file, "-n"];
    args.extend(decode_as.iter().map(String::as_str));
    args.extend(["-Y", "dicom", "-O", "dicom", "-V"]);
    let text = tshark(&args, dir);
    //
    // Wireshark 4.0 misreads some command PDVs of the acceptor: on a context whose
    // transfer syntax is Deflated Explicit VR Little Endian it inflates the command set
    // (which is always Implicit VR Little Endian, PS3.7 6.3.1), and on JPEG and JPEG 2000
    // contexts it takes the response's command set for more of the encapsulated pixel
    // data of the request; it then shows no Command Field, or garbage ("Early termination
    // of tag"). Such a command is recorded as the wildcard [`UNDISSECTED`]; the peers'
    // logs vouch for those.
    let mut key: Option<(u64, u16)> = None;
    // The PDV being read: (its key, a command PDV, Command Field seen).
    let mut pdv: Option<((u64, u16), bool, bool)> = None;
    let close = |pdv: &mut Option<((u64, u16), bool, bool)>, d: &mut Dissection| {
        if let Some((k, true, false)) = pdv.take() {
            d.commands
                .entry(k)
                .or_default()
                .push((UNDISSECTED.to_string(), None));
        }
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Frame ")
            && let Some((n, _)) = rest.split_once(':')
        {
            close(&mut pdv, &mut d);
            key = n.trim().parse().ok().and_then(|n| frames.get(&n).copied());
            continue;
        }
        let t = line.trim_start();
        let Some(k) = key else { continue };
        if t.starts_with("PDV") {
            close(&mut pdv, &mut d);
            pdv = Some((k, false, false));
        } else if let Some(p) = pdv.as_mut()
            && t.starts_with("Flags:")
        {
            p.1 = t.contains("(Command, Last");
        }
        if t.starts_with("(0000,0100)") {
            if let Some(p) = pdv.as_mut() {
                p.2 = true;
            }
            let name = t.split_whitespace().last().unwrap_or("").to_string();
            d.commands.entry(k).or_default().push((name, None));
        } else if t.starts_with("(0000,0900)") {
            let code = t
                .rfind("(0x")
                .and_then(|i| t[i + 3..].split(')').next())
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            assert!(code.is_some(), "tshark status line without a code: {t:?}");
            if let Some(last) = d.commands.entry(k).or_default().last_mut() {
                last.1 = code;
            }
        }
    }
    close(&mut pdv, &mut d);
    d
}

/// What tshark shows for a command it could not dissect (see [`dissect`]).
const UNDISSECTED: &str = "<not dissected by tshark>";

/// Our commands match tshark's, but for those tshark could not dissect.
fn same_commands(ours: &[(String, Option<u16>)], theirs: &[(String, Option<u16>)]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .all(|(o, t)| (t.0 == UNDISSECTED && o.0 != "UNKNOWN") || o == t)
}

// ---------------------------------------------------------------------------------------
// The checks every scenario runs

/// Decodes `pcap` with our engine and with tshark, compares them, checks that no finding
/// is an error, that byte-at-a-time feeding changes nothing; returns the connections.
fn analyse(scenario: &str, pcap: &Path, server_ports: &[u16], dir: &Path) -> Vec<Connection> {
    let conns = decode_capture(pcap, dir);
    assert!(!conns.is_empty(), "{scenario}: no TCP connection captured");
    let theirs = dissect(pcap, server_ports, dir);
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for c in &conns {
        let s = c.stream;
        let ctx = format!(
            "{scenario}, TCP stream {s} ({} -> {})",
            c.requestor_port, c.acceptor_port
        );
        // The user information a side sent: Max Length, implementation class and version.
        let same_user_info = |ui: &UserInformation, port: u16, who: &str| {
            assert_eq!(
                ui.max_length.into_iter().collect::<Vec<_>>(),
                theirs
                    .max_length
                    .get(&(s, port))
                    .cloned()
                    .unwrap_or_default(),
                "{ctx}: {who}'s Max Length"
            );
            assert_eq!(
                Some(&(
                    ui.implementation_class_uid.clone().unwrap_or_default(),
                    ui.implementation_version_name.clone().unwrap_or_default()
                )),
                theirs.implementation.get(&(s, port)),
                "{ctx}: {who}'s implementation class UID and version"
            );
        };
        for side in [Side::Requestor, Side::Acceptor] {
            let key = (s, c.port(side));
            assert_eq!(
                c.pdu_types(side),
                theirs.pdu_types.get(&key).cloned().unwrap_or_default(),
                "{ctx}: PDU types sent by the {side}, ours vs tshark's"
            );
            let (ours, tsharks) = (
                c.commands(side),
                theirs.commands.get(&key).cloned().unwrap_or_default(),
            );
            assert!(
                same_commands(&ours, &tsharks),
                "{ctx}: DIMSE commands (name, status) sent by the {side}, ours vs tshark's:\n\
                 {ours:?}\n{tsharks:?}"
            );
            let undissected = tsharks.iter().filter(|t| t.0 == UNDISSECTED).count();
            if undissected > 0 {
                eprintln!(
                    "{ctx}: tshark could not dissect {undissected} command(s) of the {side}; \
                     ours: {ours:?}"
                );
            }
        }
        if let Some(rq) = c.request() {
            assert_eq!(
                Some(&(rq.called_ae.clone(), rq.calling_ae.clone())),
                theirs.ae_titles.get(&s),
                "{ctx}: (called, calling) AE titles"
            );
            let ids: Vec<u8> = rq.contexts.iter().map(|p| p.id).collect();
            assert_eq!(
                Some(&ids),
                theirs.proposed_ids.get(&s),
                "{ctx}: proposed IDs"
            );
            same_user_info(&rq.user_info, c.requestor_port, "requestor");
        }
        if let Some(ac) = c.accept() {
            let results: Vec<(u8, u8)> = ac.results.iter().map(|r| (r.id, r.result)).collect();
            assert_eq!(
                Some(&results),
                theirs.results.get(&s),
                "{ctx}: context results"
            );
            let syntaxes: Vec<String> = ac
                .results
                .iter()
                .filter_map(|r| r.transfer_syntax.clone())
                .collect();
            assert_eq!(
                Some(&syntaxes),
                theirs.accepted_syntaxes.get(&s),
                "{ctx}: transfer syntaxes of the A-ASSOCIATE-AC"
            );
            same_user_info(&ac.user_info, c.acceptor_port, "acceptor");
        }
        // Feeding one byte at a time (and in odd pieces) gives the very same events.
        for split in [1, 7] {
            assert!(
                replay(&c.actions, EngineConfig::default(), Some(split)) == c.events,
                "{ctx}: events differ when fed {split} byte(s) at a time"
            );
        }
        errors.extend(c.findings(Severity::Error));
        notes.extend(c.findings(Severity::Info));
        write_seeds(scenario, c);
    }
    for n in &notes {
        eprintln!("{scenario}: finding: {n}");
    }
    assert!(
        errors.is_empty(),
        "{scenario}: error findings on traffic of conforming peers:\n{}",
        errors.join("\n")
    );
    conns
}

/// Every data set peek of a C-STORE matches its command, was decoded with the accepted
/// transfer syntax of its context and ran into no malformed element. Returns the peeks
/// as (SOP instance, transfer syntax, character sets).
fn store_peeks(scenario: &str, conns: &[Connection]) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for c in conns {
        let ac = c.accept();
        let mut last_store: BTreeMap<(Side, u8), String> = BTreeMap::new();
        for e in &c.events {
            match &e.kind {
                EventKind::Command(cmd) if cmd.command.command == "C-STORE-RQ" => {
                    let uid = cmd
                        .command
                        .affected_sop_instance
                        .clone()
                        .unwrap_or_default();
                    last_store.insert((e.from, cmd.pc_id), uid);
                }
                EventKind::DatasetPeek(p) => {
                    let Some(uid) = last_store.remove(&(e.from, p.pc_id)) else {
                        continue;
                    };
                    let accepted = ac
                        .and_then(|ac| ac.results.iter().find(|r| r.id == p.pc_id))
                        .and_then(|r| r.transfer_syntax.clone());
                    assert_eq!(
                        p.transfer_syntax, accepted,
                        "{scenario}: data set on context {} peeked with the accepted syntax",
                        p.pc_id
                    );
                    assert_eq!(
                        p.peek.sop_instance_uid.as_deref(),
                        Some(uid.as_str()),
                        "{scenario}: SOP Instance UID of the data set vs the C-STORE-RQ"
                    );
                    assert!(
                        p.peek.error.is_none(),
                        "{scenario}: peek of {uid} stopped: {:?}",
                        p.peek.error
                    );
                    out.push((
                        uid,
                        p.transfer_syntax.clone().unwrap_or_default(),
                        p.peek.specific_character_set.clone(),
                    ));
                }
                _ => {}
            }
        }
    }
    out
}

/// (0008,0018) and (0008,0005) of a file, as dcmdump reads them.
fn file_identity(file: &Path, dir: &Path) -> (String, Vec<String>) {
    let out = run_ok(
        "dcmdump",
        command(
            "dcmdump",
            &[
                "+P".as_ref(),
                "0008,0018".as_ref(),
                "+P".as_ref(),
                "0008,0005".as_ref(),
                file.as_os_str(),
            ],
        ),
        dir,
        PEER_TIMEOUT,
    );
    let value = |tag: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(tag))
            .and_then(|l| Some(l[l.find('[')? + 1..l.find(']')?].to_string()))
    };
    let uid = value("(0008,0018)").unwrap_or_default();
    let charsets = value("(0008,0005)")
        .map(|v| v.split('\\').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    (uid, charsets)
}

fn total(conns: &[Connection], side: Side, name: &str, status: Option<u16>) -> usize {
    conns.iter().map(|c| c.count(side, name, status)).sum()
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

// ---------------------------------------------------------------------------------------
// Fuzz seeds from real traffic

fn seeds_dir() -> Option<PathBuf> {
    std::env::var_os("DICOMTAP_FUZZ_SEEDS").map(PathBuf::from)
}

/// Engine script (the format of fuzz/fuzz_targets/engine.rs), command sets and data set
/// prefixes from a connection, each file under 20 KB.
fn write_seeds(scenario: &str, c: &Connection) {
    let Some(root) = seeds_dir() else { return };
    const LIMIT: usize = 20 * 1024;
    let name = format!("{scenario}-{}", c.stream);
    for sub in ["engine", "command", "peek"] {
        std::fs::create_dir_all(root.join(sub)).expect("creating the seed directories");
    }
    // Engine: caps byte (1 MiB association PDUs, 64 KiB commands, 4 KiB peek), records.
    let mut script = vec![0x2F];
    for a in &c.actions {
        let side_bit = |s: &Side| if *s == Side::Acceptor { 0x80 } else { 0 };
        let mut rec = Vec::new();
        match a {
            Action::Feed(s, _, bytes) => {
                for chunk in bytes.chunks(usize::from(u16::MAX)) {
                    rec.push(side_bit(s));
                    rec.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    rec.extend_from_slice(chunk);
                }
            }
            Action::Gap(s, _, n) => {
                rec.push(110 | side_bit(s));
                rec.extend_from_slice(&(*n as u32).to_be_bytes());
            }
            Action::End(s, _, how) => {
                rec.push(if *how == StreamEnd::Close { 120 } else { 121 } | side_bit(s));
            }
        }
        if script.len() + rec.len() > LIMIT {
            break;
        }
        script.extend(rec);
    }
    std::fs::write(root.join("engine").join(&name), &script).expect("writing a seed");
    // Command sets and data set starts, from the PDV items of both directions.
    let config = EngineConfig {
        emit_data: true,
        ..EngineConfig::default()
    };
    let events = replay(&c.actions, config, None);
    let mut encodings: BTreeMap<u8, u8> = BTreeMap::new();
    if let Some(ac) = c.accept() {
        for r in &ac.results {
            let enc = r.transfer_syntax.as_deref().map_or(5, |ts| {
                use dicomtap_wire::syntax::Encoding::*;
                match dicomtap_wire::syntax::encoding_of(ts) {
                    ImplicitVrLittleEndian => 0,
                    ExplicitVrLittleEndian => 1,
                    ExplicitVrBigEndian => 2,
                    DeflatedExplicitVrLittleEndian => 3,
                    Encapsulated => 4,
                    Unknown => 5,
                }
            });
            encodings.insert(r.id, enc);
        }
    }
    let mut data: Vec<u8> = Vec::new();
    let mut n = 0;
    for e in &events {
        match &e.kind {
            EventKind::Command(cmd) => {
                let bytes = dicomtap_wire::dimse::encode_command(&cmd.command);
                let file = format!("{name}-{}", cmd.command.command);
                std::fs::write(root.join("command").join(file), bytes).expect("writing a seed");
            }
            EventKind::DataFragment(f) => {
                if data.is_empty() {
                    data.push(0x80 | encodings.get(&f.pc_id).copied().unwrap_or(5));
                }
                data.extend_from_slice(&f.bytes);
                if f.last {
                    if data.len() > LIMIT {
                        // A prefix: no longer the complete data set.
                        data.truncate(LIMIT);
                        data[0] &= 0x7F;
                    }
                    n += 1;
                    let file = root.join("peek").join(format!("{name}-{n}"));
                    std::fs::write(file, &data).expect("writing a seed");
                    data.clear();
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// storescp (verbose, AE STORESCP) listening on a fresh port, writing into
/// `dir/name-received`, with its log in `dir/name.stderr`.
fn start_storescp(name: &str, dir: &Path, extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["-v", "-aet", "STORESCP"];
    args.extend_from_slice(extra);
    storescp_with(name, &dir.join(format!("{name}-received")), dir, &args)
}

mod dcmtk;
mod pdu_command;
mod public_captures;
mod pynetdicom;
