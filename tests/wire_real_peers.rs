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

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dicomtap_wire::assoc::{AssociateAccept, AssociateRequest, UserInformation};
use dicomtap_wire::dimse::Command as Dimse;
use dicomtap_wire::{Conversation, EngineConfig, Event, EventKind, Severity, Side, StreamEnd};
use support::peers::{Dcmqrscp, orthanc, python_scp, storescp_with};
use support::{
    Capture, Proc, RunOutput, by_stream, command, free_port, hex_encode, require, require_python,
    run, run_ok, tcp_segments, temp_dir, tshark, tshark_fields,
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

#[test]
fn echoscu_to_storescp_and_the_pdu_command() {
    if !require(
        "echoscu_to_storescp",
        &["echoscu", "storescp", "dumpcap", "tshark"],
    ) {
        return;
    }
    let dir = temp_dir("echo");
    let dir = dir.path();
    let (mut scp, port) = start_storescp("storescp", dir, &[]);
    let cap = Capture::start("echo", &[port], dir);
    let echo = run_ok(
        "echoscu",
        command(
            "echoscu",
            &[
                "-v",
                "-aet",
                "ECHOSCU",
                "-aec",
                "STORESCP",
                "127.0.0.1",
                &port.to_string(),
            ],
        ),
        dir,
        PEER_TIMEOUT,
    );
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("echo", &pcap, &[port], dir);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    let rq = c.request().expect("an A-ASSOCIATE-RQ");
    assert_eq!(
        (rq.calling_ae.as_str(), rq.called_ae.as_str()),
        ("ECHOSCU", "STORESCP")
    );
    assert_eq!(c.pdu_types(Side::Requestor), [1, 4, 5]);
    assert_eq!(c.pdu_types(Side::Acceptor), [2, 4, 6]);
    assert_eq!(
        c.commands(Side::Requestor),
        [("C-ECHO-RQ".to_string(), None)]
    );
    assert_eq!(
        c.commands(Side::Acceptor),
        [("C-ECHO-RSP".to_string(), Some(0))]
    );
    let rsp = c.dimse(Side::Acceptor).next().expect("a response");
    assert_eq!(rsp.responded_to, Some(1));
    assert_eq!(
        lines_with(&echo.stderr, "Received Echo Response (Success)"),
        1
    );
    assert_eq!(
        lines_with(&scp.stderr(), "Received Echo Request"),
        1,
        "{}",
        scp.output()
    );
    // Latency of the response is measured from the capture's timestamps.
    let latency = c
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Command(cmd) if e.from == Side::Acceptor => cmd.latency_us,
            _ => None,
        })
        .expect("the C-ECHO-RSP carries a latency");
    assert!(latency < 10_000_000, "latency {latency} us");
    assert!(
        c.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::StreamEnd { .. })),
        "the FINs are seen as stream ends"
    );

    // The `dicomtap pdu` command on the same bytes: its JSON is exactly the engine's
    // events for a whole-stream feed, in both input forms.
    let exe = env!("CARGO_BIN_EXE_dicomtap");
    for (side, hex) in [(Side::Requestor, false), (Side::Acceptor, true)] {
        let bytes = c.bytes(side);
        let file = dir.join(format!("{side}.{}", if hex { "hex" } else { "bin" }));
        if hex {
            let text: Vec<String> = bytes.chunks(16).map(hex_encode).collect();
            std::fs::write(&file, text.join("\n")).expect("writing the hex stream");
        } else {
            std::fs::write(&file, &bytes).expect("writing the stream");
        }
        let mut args = vec![
            "pdu".to_string(),
            file.display().to_string(),
            "--json".into(),
            "--from".into(),
            side.to_string(),
        ];
        if hex {
            args.push("--hex".into());
        }
        let out = run_ok("dicomtap-pdu", command(exe, &args), dir, PEER_TIMEOUT);
        let got: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line of --json is JSON"))
            .collect();
        let expected: Vec<serde_json::Value> = replay(
            &[
                Action::Feed(side, 0, bytes.clone()),
                Action::End(side, 0, StreamEnd::Close),
            ],
            EngineConfig::default(),
            None,
        )
        .iter()
        .map(|e| serde_json::to_value(e).expect("events serialize"))
        .collect();
        assert_eq!(got, expected, "dicomtap pdu --json on the {side} stream");
        let kinds: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
        let want = match side {
            Side::Requestor => ["associate_rq", "command", "release_rq"],
            Side::Acceptor => ["associate_ac", "command", "release_rp"],
        };
        for k in want {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        // And as text.
        args.retain(|a| a != "--json");
        let text = run_ok("dicomtap-pdu-text", command(exe, &args), dir, PEER_TIMEOUT);
        let name = if side == Side::Requestor {
            "C-ECHO-RQ"
        } else {
            "C-ECHO-RSP"
        };
        assert!(text.stdout.contains(name), "{}", text.text());
    }
}

#[test]
fn pdu_command_input_errors() {
    let dir = temp_dir("pdu-errors");
    let dir = dir.path();
    let exe = env!("CARGO_BIN_EXE_dicomtap");
    let missing = dir.join("no-such-stream.bin");
    let out = run(
        "pdu-missing",
        command(exe, &["pdu".as_ref(), missing.as_os_str()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr.contains("no-such-stream.bin"), "{}", out.text());

    let odd = dir.join("odd.hex");
    std::fs::write(&odd, "01 00 00 00 00 0").expect("writing the hex file");
    let out = run(
        "pdu-odd",
        command(exe, &["pdu".as_ref(), odd.as_os_str(), "--hex".as_ref()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("odd.hex") && out.stderr.contains("byte offset"),
        "the error names the file and the offset: {}",
        out.text()
    );
    assert!(out.stdout.is_empty(), "{}", out.text());

    let bad = dir.join("bad.hex");
    std::fs::write(&bad, "01 00 zz").expect("writing the hex file");
    let out = run(
        "pdu-bad",
        command(exe, &["pdu".as_ref(), bad.as_os_str(), "--hex".as_ref()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("bad.hex") && out.stderr.contains("byte offset 6"),
        "{}",
        out.text()
    );
}

#[test]
fn storescu_to_storescp_with_every_kind_of_transfer_syntax() {
    if !require(
        "storescu_to_storescp",
        &["storescu", "storescp", "dcmdump", "dumpcap", "tshark"],
    ) {
        return;
    }
    let Some((_, data)) = require_python("storescu_to_storescp") else {
        return;
    };
    let t = |f: &str| data.test_files.join(f);
    let ch = |f: &str| data.charset_files.join(f);
    // (storescu transfer syntax option, files): each run is one association.
    let runs: Vec<(&str, Vec<PathBuf>)> = vec![
        (
            "-x=",
            vec![
                t("CT_small.dcm"),
                t("MR_small.dcm"),
                ch("chrFren.dcm"),
                ch("chrX1.dcm"),
                ch("chrRuss.dcm"),
                ch("chrH31.dcm"),
                ch("chrH32.dcm"),
            ],
        ),
        ("-xi", vec![t("CT_small.dcm"), ch("chrGerm.dcm")]),
        ("-xb", vec![t("MR_small_bigendian.dcm"), t("CT_small.dcm")]),
        ("-xd", vec![t("CT_small.dcm"), t("image_dfl.dcm")]),
        ("-xe", vec![t("MR_small_implicit.dcm")]),
        ("-xs", vec![t("SC_rgb_jpeg_gdcm.dcm")]),
        ("-xy", vec![t("SC_rgb_jpeg_dcmtk.dcm")]),
        ("-xx", vec![t("JPEG-lossy.dcm")]),
        ("-xw", vec![t("JPEG2000.dcm")]),
        (
            "-xv",
            vec![t("MR_small_jp2klossless.dcm"), t("examples_jpeg2k.dcm")],
        ),
        ("-xr", vec![t("MR_small_RLE.dcm")]),
        ("-xt", vec![t("MR_small_jpeg_ls_lossless.dcm")]),
    ];
    let dir = temp_dir("store");
    let dir = dir.path();
    // One storescp accepts every syntax it supports (preferring explicit little endian),
    // the other prefers explicit big endian: it takes the -xb run.
    let (mut scp, port) = start_storescp("storescp-all", dir, &["+xa"]);
    let (mut scp_be, port_be) = start_storescp("storescp-big", dir, &["+xb"]);
    let cap = Capture::start("store", &[port, port_be], dir);
    let mut sent = 0;
    for (i, (opt, files)) in runs.iter().enumerate() {
        let port = if *opt == "-xb" { port_be } else { port };
        let mut args: Vec<String> = vec![
            "-v".into(),
            opt.to_string(),
            "-aet".into(),
            "STORESCU".into(),
            "-aec".into(),
            "STORESCP".into(),
            "127.0.0.1".into(),
            port.to_string(),
        ];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let out = run_ok(
            &format!("storescu-{i}"),
            command("storescu", &args),
            dir,
            PEER_TIMEOUT,
        );
        assert_eq!(
            lines_with(&out.stderr, "Received Store Response (Success)"),
            files.len(),
            "storescu {opt}: every file stored\n{}",
            out.text()
        );
        sent += files.len();
    }
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));
    scp_be.stop("TERM", Duration::from_secs(5));

    let conns = analyse("store", &pcap, &[port, port_be], dir);
    assert_eq!(conns.len(), runs.len(), "one association per storescu run");
    assert_eq!(total(&conns, Side::Requestor, "C-STORE-RQ", None), sent);
    assert_eq!(total(&conns, Side::Acceptor, "C-STORE-RSP", Some(0)), sent);
    assert_eq!(
        lines_with(&scp.stderr(), "Received Store Request")
            + lines_with(&scp_be.stderr(), "Received Store Request"),
        sent,
        "{}\n{}",
        scp.output(),
        scp_be.output()
    );

    // The peeks name the very instances dcmdump reads from the files, with their
    // character sets, under every negotiated transfer syntax.
    let peeks = store_peeks("store", &conns);
    assert_eq!(peeks.len(), sent, "one data set peek per C-STORE-RQ");
    let mut expected: Vec<(String, Vec<String>)> = runs
        .iter()
        .flat_map(|(_, files)| files.iter().map(|f| file_identity(f, dir)))
        .collect();
    let mut got: Vec<(String, Vec<String>)> = peeks
        .iter()
        .map(|(u, _, cs)| (u.clone(), cs.clone()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "SOP instances and character sets, ours vs dcmdump's"
    );
    let syntaxes: BTreeSet<&str> = peeks.iter().map(|(_, ts, _)| ts.as_str()).collect();
    for ts in [
        "1.2.840.10008.1.2",      // implicit LE
        "1.2.840.10008.1.2.1",    // explicit LE
        "1.2.840.10008.1.2.2",    // explicit BE
        "1.2.840.10008.1.2.1.99", // deflated
        "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
        "1.2.840.10008.1.2.4.50", // JPEG baseline
        "1.2.840.10008.1.2.4.51", // JPEG extended
        "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
        "1.2.840.10008.1.2.4.91", // JPEG 2000
        "1.2.840.10008.1.2.5",    // RLE
        "1.2.840.10008.1.2.4.80", // JPEG-LS lossless
    ] {
        assert!(
            syntaxes.contains(ts),
            "a data set was sent in {ts}: {syntaxes:?}"
        );
    }
}

/// `storescu COMMON 127.0.0.1 PORT FILES`, to success.
fn storescu_to(common: &[&str], port: u16, files: &[PathBuf], dir: &Path) -> RunOutput {
    let cmd = support::peers::storescu_command(common, port, files);
    run_ok("storescu", cmd, dir, PEER_TIMEOUT)
}

/// A study-level C-FIND (`findscu COMMON -S`) for StudyInstanceUID, PatientName and
/// `key`, to success.
fn study_find(common: &[&str], key: &str, port: u16, dir: &Path) -> RunOutput {
    let p = port.to_string();
    let mut args: Vec<&str> = common.to_vec();
    args.push("-S");
    for k in [
        "QueryRetrieveLevel=STUDY",
        "StudyInstanceUID",
        "PatientName",
        key,
    ] {
        args.extend(["-k", k]);
    }
    args.extend(["127.0.0.1", &p]);
    run_ok("findscu", command("findscu", &args), dir, PEER_TIMEOUT)
}

#[test]
fn find_move_get_against_dcmqrscp() {
    let tools = [
        "dcmqrscp", "storescu", "findscu", "movescu", "getscu", "dcmdump", "dumpcap", "tshark",
    ];
    if !require("find_move_get_against_dcmqrscp", &tools) {
        return;
    }
    let Some((_, data)) = require_python("find_move_get_against_dcmqrscp") else {
        return;
    };
    let dir = temp_dir("qr");
    let dir = dir.path();
    // One AE (QRSCP), one move destination (MOVESCU: movescu itself).
    let move_port = free_port();
    let qr = Dcmqrscp::configure(dir, &[("MOVESCU", move_port)]);
    let port = qr.port;
    let mut scp = qr.start("dcmqrscp", dir, &["-v"]);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let (ct_uid, _) = file_identity(&files[0], dir);
    let study = {
        let out = run_ok(
            "dcmdump-study",
            command(
                "dcmdump",
                &["+P".as_ref(), "0020,000d".as_ref(), files[0].as_os_str()],
            ),
            dir,
            PEER_TIMEOUT,
        );
        let l = out.stdout.lines().next().unwrap_or("").to_string();
        l[l.find('[').expect("a value") + 1..l.find(']').expect("a value")].to_string()
    };
    let cap = Capture::start("qr", &[port, move_port], dir);
    let p = port.to_string();
    let common = ["-v", "-aet", "MOVESCU", "-aec", "QRSCP"];
    storescu_to(&common, port, &files, dir);
    let find = study_find(&common, "StudyDate", port, dir);
    let moved = dir.join("moved");
    let got = dir.join("got");
    std::fs::create_dir_all(&moved).expect("creating a directory");
    std::fs::create_dir_all(&got).expect("creating a directory");
    let study_key = format!("StudyInstanceUID={study}");
    let retrieve = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", &study_key];
    let mp = move_port.to_string();
    let md = moved.display().to_string();
    let mv = run_ok(
        "movescu",
        command(
            "movescu",
            &[
                &common[..],
                &["-aem", "MOVESCU", "--port", &mp, "-od", &md],
                &retrieve[..],
                &["127.0.0.1", &p],
            ]
            .concat(),
        ),
        dir,
        PEER_TIMEOUT,
    );
    let gd = got.display().to_string();
    let get = run_ok(
        "getscu",
        command(
            "getscu",
            &[
                &common[..],
                &["-od", &gd],
                &retrieve[..],
                &["127.0.0.1", &p],
            ]
            .concat(),
        ),
        dir,
        PEER_TIMEOUT,
    );
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("qr", &pcap, &[port, move_port], dir);
    // storescu, findscu, movescu (+ dcmqrscp's store sub-association to it), getscu.
    assert_eq!(
        conns.len(),
        5,
        "associations: {:?}",
        conns.iter().map(|c| c.stream).collect::<Vec<_>>()
    );
    assert_eq!(
        total(&conns, Side::Requestor, "C-STORE-RQ", None),
        3,
        "2 stores + 1 moved"
    );
    assert_eq!(
        total(&conns, Side::Acceptor, "C-STORE-RQ", None),
        1,
        "1 C-GET sub-operation"
    );
    assert_eq!(total(&conns, Side::Requestor, "C-STORE-RSP", Some(0)), 1);
    assert_eq!(
        total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF00)),
        lines_with(&find.stderr, "Find Response: "),
        "pending C-FIND-RSPs vs findscu's log\n{}",
        find.text()
    );
    assert_eq!(total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0)), 1);
    assert_eq!(
        lines_with(&mv.stderr, "Received Final Move Response (Success)"),
        1,
        "{}",
        mv.text()
    );
    assert_eq!(
        total(&conns, Side::Acceptor, "C-GET-RSP", Some(0)),
        1,
        "{}",
        get.text()
    );

    // The move: destination and sub-operation counters; the sub-association is opened by
    // dcmqrscp towards movescu's port.
    let move_rq = conns
        .iter()
        .flat_map(|c| c.dimse(Side::Requestor))
        .find(|c| c.command == "C-MOVE-RQ")
        .expect("a C-MOVE-RQ");
    assert_eq!(move_rq.move_destination.as_deref(), Some("MOVESCU"));
    let final_move = conns
        .iter()
        .flat_map(|c| c.dimse(Side::Acceptor))
        .filter(|c| c.command == "C-MOVE-RSP")
        .last()
        .expect("a C-MOVE-RSP");
    let sub = final_move.sub_operations.expect("sub-operation counters");
    assert_eq!((sub.completed, sub.failed), (Some(1), Some(0)));
    let sub_assoc = conns
        .iter()
        .find(|c| c.acceptor_port == move_port)
        .expect("the C-MOVE sub-association");
    assert_eq!(
        sub_assoc.request().map(|r| r.called_ae.as_str()),
        Some("MOVESCU")
    );
    // The C-GET: role selection proposed by getscu, stored instance is CT_small.
    let get_conn = conns
        .iter()
        .find(|c| c.dimse(Side::Requestor).any(|d| d.command == "C-GET-RQ"))
        .expect("the C-GET association");
    let rq = get_conn.request().expect("an A-ASSOCIATE-RQ");
    assert!(
        rq.user_info.role_selections.iter().any(|r| r.scp),
        "getscu proposes the SCP role for storage: {:?}",
        rq.user_info.role_selections
    );
    let stored: Vec<String> = store_peeks("qr", &conns).into_iter().map(|p| p.0).collect();
    assert_eq!(
        stored.iter().filter(|u| **u == ct_uid).count(),
        3,
        "CT stored, moved, got"
    );
}

const PY_SCP: &str = r#"
import sys
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

def on_store(event):
    print("STORED", event.request.AffectedSOPInstanceUID, flush=True)
    return 0x0000

def on_echo(event):
    print("ECHOED", flush=True)
    return 0x0000

ae = AE(ae_title="PYSCP")
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context(Verification)
print("LISTENING", flush=True)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, on_echo)])
"#;

/// Echo, then store every file, printing each status (tests/peers_py/store_scu.py).
const PY_SCU: &str = include_str!("peers_py/store_scu.py");

#[test]
fn pynetdicom_scu_to_pynetdicom_scp() {
    if !require("pynetdicom", &["dumpcap", "tshark", "dcmdump"]) {
        return;
    }
    let Some((python, data)) = require_python("pynetdicom") else {
        return;
    };
    let dir = temp_dir("pynetdicom");
    let dir = dir.path();
    std::fs::write(dir.join("scp.py"), PY_SCP).expect("writing the SCP script");
    std::fs::write(dir.join("scu.py"), PY_SCU).expect("writing the SCU script");
    let no_args: [&str; 0] = [];
    let (mut scp, port) = python_scp(
        "pynetdicom-scp",
        &python,
        &dir.join("scp.py"),
        &no_args,
        dir,
    );
    let p = port.to_string();
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("MR_small_implicit.dcm"),
        data.charset_files.join("chrX2.dcm"),
    ];
    let cap = Capture::start("pynetdicom", &[port], dir);
    let mut scu_cmd = Command::new(&python);
    scu_cmd.arg(dir.join("scu.py")).arg(&p).args(&files);
    let scu = run_ok("pynetdicom-scu", scu_cmd, dir, PEER_TIMEOUT);
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("pynetdicom", &pcap, &[port], dir);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(lines_with(&scu.stdout, "ECHO 0x0000"), 1, "{}", scu.text());
    assert_eq!(
        lines_with(&scu.stdout, "STORE 0x0000"),
        files.len(),
        "{}",
        scu.text()
    );
    assert_eq!(c.count(Side::Requestor, "C-ECHO-RQ", None), 1);
    assert_eq!(c.count(Side::Acceptor, "C-ECHO-RSP", Some(0)), 1);
    assert_eq!(c.count(Side::Acceptor, "C-STORE-RSP", Some(0)), files.len());
    let rq = c.request().expect("an A-ASSOCIATE-RQ");
    assert_eq!(
        (rq.calling_ae.as_str(), rq.called_ae.as_str()),
        ("PYSCU", "PYSCP")
    );
    assert!(
        rq.user_info
            .implementation_class_uid
            .as_deref()
            .is_some_and(|u| u.starts_with("1.2.826.0.1.3680043.9.3811.")),
        "pynetdicom's implementation class UID: {:?}",
        rq.user_info.implementation_class_uid
    );
    let scp_log = scp.stdout();
    let mut stored: Vec<String> = store_peeks("pynetdicom", &conns)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut logged: Vec<String> = scp_log
        .lines()
        .filter_map(|l| l.strip_prefix("STORED ").map(|u| u.trim().to_string()))
        .collect();
    let mut files_uids: Vec<String> = files.iter().map(|f| file_identity(f, dir).0).collect();
    stored.sort();
    logged.sort();
    files_uids.sort();
    assert_eq!(stored, files_uids, "peeked instances vs the files");
    assert_eq!(
        logged,
        files_uids,
        "the SCP's log vs the files\n{}",
        scp.output()
    );
}

#[test]
fn storescu_and_findscu_to_orthanc() {
    let tools = [
        "Orthanc", "storescu", "findscu", "echoscu", "dcmdump", "dumpcap", "tshark",
    ];
    if !require("orthanc", &tools) {
        return;
    }
    let Some((_, data)) = require_python("orthanc") else {
        return;
    };
    let dir_guard = temp_dir("orthanc");
    let dir = dir_guard.path();
    let port = free_port();
    let mut scp = orthanc(
        dir,
        "orthanc",
        port,
        serde_json::json!({
            "DicomAlwaysAllowFind": true,
            "DicomModalities": { "dicomtap": ["DICOMTAP", "127.0.0.1", free_port()] },
        }),
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.charset_files.join("chrX1.dcm"),
    ];
    let cap = Capture::start("orthanc", &[port], dir);
    let p = port.to_string();
    let common = ["-v", "-aet", "DICOMTAP", "-aec", "ORTHANC"];
    run_ok(
        "echoscu",
        command("echoscu", &[&common[..], &["127.0.0.1", &p]].concat()),
        dir,
        PEER_TIMEOUT,
    );
    let store = storescu_to(&common, port, &files, dir);
    assert_eq!(
        lines_with(&store.stderr, "Received Store Response (Success)"),
        files.len()
    );
    let find = study_find(&common, "SpecificCharacterSet=ISO_IR 192", port, dir);
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(10));

    let conns = analyse("orthanc", &pcap, &[port], dir);
    assert_eq!(conns.len(), 3, "echo, store, find");
    assert_eq!(total(&conns, Side::Acceptor, "C-ECHO-RSP", Some(0)), 1);
    assert_eq!(
        total(&conns, Side::Acceptor, "C-STORE-RSP", Some(0)),
        files.len()
    );
    let pending = total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF00))
        + total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF01));
    assert_eq!(
        pending,
        lines_with(&find.stderr, "Find Response: "),
        "{}",
        find.text()
    );
    assert!(pending >= 2, "Orthanc holds at least the CT and MR studies");
    let ac = conns[0].accept().expect("Orthanc accepts");
    assert!(ac.user_info.implementation_class_uid.is_some());
    let mut stored: Vec<String> = store_peeks("orthanc", &conns)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut uids: Vec<String> = files.iter().map(|f| file_identity(f, dir).0).collect();
    stored.sort();
    uids.sort();
    assert_eq!(stored, uids);
    drop(scp);
}

#[test]
fn public_captures_decode() {
    if !require("public_captures", &["tshark"]) {
        return;
    }
    let public = support::public_captures_dir();
    assert!(
        public.is_dir(),
        "{} is missing (set DICOMTAP_SHARED)",
        public.display()
    );
    let dir = temp_dir("public");
    let dir = dir.path();
    let implicit = "1.2.840.10008.1.2";
    let four: BTreeSet<&str> = [
        implicit,
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
    ]
    .into_iter()
    .collect();
    let decode = |name: &str| -> Vec<Connection> {
        let pcap = public.join(name);
        let conns = analyse(name, &pcap, &[104], dir);
        for c in &conns {
            assert_eq!(c.acceptor_port, 104, "{name}");
            assert!(
                c.sent(Side::Acceptor).next().is_none(),
                "{name}: one way only"
            );
            let rq = c.request().expect("an A-ASSOCIATE-RQ");
            let ui = &rq.user_info;
            assert_eq!(
                ui.implementation_class_uid.as_deref(),
                Some("1.2.826.0.1.3680043.9.7133.1.1")
            );
            assert_eq!(
                ui.implementation_version_name.as_deref(),
                Some("GODICOM_1_1")
            );
            assert_eq!(
                rq.application_context.as_deref(),
                Some("1.2.840.10008.3.1.1.1")
            );
        }
        conns
    };
    for (name, calling, called) in [
        (
            "tapirx-dicom_arq_1_find_testclient.pcap",
            "testclient",
            "testserver",
        ),
        (
            "tapirx-dicom_arq_3_find_bogus_local.pcap",
            "bogus_local",
            "bogus_remote",
        ),
    ] {
        let conns = decode(name);
        assert_eq!(conns.len(), 1, "{name}");
        let rq = conns[0].request().expect("an A-ASSOCIATE-RQ");
        assert_eq!(
            (rq.calling_ae.as_str(), rq.called_ae.as_str()),
            (calling, called)
        );
        assert_eq!(rq.contexts.len(), 4, "{name}: 4 query contexts");
        for ctx in &rq.contexts {
            let ts: BTreeSet<&str> = ctx.transfer_syntaxes.iter().map(String::as_str).collect();
            assert_eq!(
                ts, four,
                "{name}: context {} proposes the 4 syntaxes",
                ctx.id
            );
        }
        assert_eq!(rq.user_info.max_length, Some(4_194_304));
        assert_eq!(conns[0].bytes(Side::Requestor).len(), 677 + 6, "{name}");
    }
    for name in [
        "tapirx-dicom_arq_2_get_testclient.pcap",
        "tapirx-dicom_arq_4_get_bogus_local.pcap",
    ] {
        let conns = decode(name);
        assert_eq!(conns.len(), 1, "{name}");
        let rq = conns[0]
            .request()
            .expect("an A-ASSOCIATE-RQ split over two segments");
        assert_eq!(rq.contexts.len(), 123, "{name}");
        assert!(
            rq.user_info.role_selections.is_empty(),
            "{name}: no role selection"
        );
        assert_eq!(conns[0].bytes(Side::Requestor).len(), 16332 + 177, "{name}");
    }
    let conns = decode("ndpi-dicom.pcap");
    assert_eq!(conns.len(), 4, "ndpi: 4 flows");
    let contexts: Vec<usize> = conns
        .iter()
        .map(|c| c.request().map_or(0, |r| r.contexts.len()))
        .collect();
    assert_eq!(
        contexts.iter().filter(|n| **n == 4).count(),
        2,
        "{contexts:?}"
    );
    assert_eq!(
        contexts.iter().filter(|n| **n == 123).count(),
        2,
        "{contexts:?}"
    );
}
