//! Forensic replay: the requestor side of recorded associations (pcap/pcapng, from the
//! recorder or tcpdump with full payload) re-sent to a target, PDU by PDU, and what the
//! target answered set against what the original acceptor answered.
//!
//! Loading drives the capture reader and one wire engine per connection: the requestor's
//! byte stream is cut into PDUs, and for each PDU the loader notes how many *answers*
//! (A-ASSOCIATE-AC, final DIMSE responses, the acceptor's own requests, A-RELEASE-RP) the
//! original acceptor had given before it. Sending waits for the target to have given as many answers before each PDU
//! (with a timeout), so requests that depended on a response go after it. Responses the
//! requestor sent to the acceptor's own requests (C-STORE sub-operations of a C-GET,
//! N-EVENT-REPORTs) get their Message ID Being Responded To mapped onto the target's IDs.
//!
//! Associations whose recording is incomplete (capture gaps, headers-only snap length,
//! capture started after the A-ASSOCIATE-RQ, stream cut inside a PDU) are refused with
//! the reason. The original destination is refused unless explicitly allowed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use dicomtap_analyzer::capture::{
    CaptureError, CaptureReader, ConnId, ConnectionInfo, RequestorBy, Side, StreamEnd, StreamSink,
};
use dicomtap_wire::dimse::{SubOperations, decode_command, encode_command};
use dicomtap_wire::event::{Event, EventKind};
use dicomtap_wire::{Conversation, EngineConfig};
use serde::Serialize;

use dicomtap_wire::encode::{self, Pdv};

use crate::probe::link::{Incoming, Link, LinkError};

/// Errors of the replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Capture(#[from] CaptureError),
}

/// One requestor PDU as recorded.
#[derive(Debug, Clone)]
pub struct RecordedPdu {
    pub ts_us: u64,
    pub pdu_type: u8,
    pub bytes: Vec<u8>,
    /// Answers the original acceptor had given before this PDU was sent.
    pub answers_before: usize,
}

/// What one side of the conversation (original or replay) produced, reduced to what is
/// compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// "accepted", "rejected: ...", or "no answer".
    pub association: String,
    /// Context ID -> result.
    pub contexts: BTreeMap<u8, ContextOutcome>,
    /// Message ID (of the requestor's requests) -> outcome.
    pub messages: BTreeMap<u16, MessageOutcome>,
    /// How it ended.
    pub ending: String,
    pub duration_us: u64,
    #[serde(skip)]
    first_ts: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContextOutcome {
    pub abstract_syntax: String,
    pub result: String,
    pub transfer_syntax: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageOutcome {
    pub command: String,
    /// Final status code, as 4 hex digits.
    pub status: Option<String>,
    pub status_meaning: Option<String>,
    pub pending: u32,
    pub sub_operations: Option<SubOperations>,
    pub latency_us: Option<u64>,
}

impl Summary {
    fn observe(&mut self, e: &Event) {
        let first = *self.first_ts.get_or_insert(e.ts_us);
        self.duration_us = e.ts_us.saturating_sub(first);
        match &e.kind {
            EventKind::AssociateRq(rq) => {
                for pc in &rq.contexts {
                    self.contexts.entry(pc.id).or_default().abstract_syntax =
                        pc.abstract_syntax.clone();
                }
            }
            EventKind::AssociateAc(ac) => {
                self.association = "accepted".into();
                for r in &ac.results {
                    let c = self.contexts.entry(r.id).or_default();
                    c.result = r.result_name.to_string();
                    c.transfer_syntax = if r.accepted() {
                        r.transfer_syntax.clone()
                    } else {
                        None
                    };
                }
            }
            EventKind::AssociateRj(rj) => {
                self.association = format!("rejected: {}", rj.description)
            }
            EventKind::ReleaseRp => self.ending = "released".into(),
            EventKind::Abort(a) if self.ending.is_empty() => {
                self.ending = format!("aborted by the {}: {}", e.from, a.description);
            }
            EventKind::StreamEnd { how } if self.ending.is_empty() => {
                self.ending = format!(
                    "{} by the {}",
                    if *how == StreamEnd::Close {
                        "closed"
                    } else {
                        "reset"
                    },
                    e.from
                );
            }
            EventKind::Command(c) => {
                let cmd = &c.command;
                if e.from == Side::Requestor && cmd.is_request() {
                    if let Some(id) = cmd.message_id {
                        self.messages.entry(id).or_default().command = cmd.service().to_string();
                    }
                } else if e.from == Side::Acceptor
                    && cmd.is_response()
                    && let Some(id) = cmd.responded_to
                {
                    let m = self.messages.entry(id).or_default();
                    if m.command.is_empty() {
                        m.command = cmd.service().to_string();
                    }
                    match &cmd.status {
                        Some(s) if !s.class.is_final() => m.pending += 1,
                        s => {
                            m.status = s.as_ref().map(|s| s.code.clone());
                            m.status_meaning = s.as_ref().map(|s| s.meaning.to_string());
                            m.sub_operations = cmd.sub_operations;
                            m.latency_us = c.latency_us;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether an acceptor event is something the requestor may have waited for (an
/// "answer" in the dependency rule).
fn is_answer(e: &Event) -> bool {
    e.from == Side::Acceptor
        && match &e.kind {
            EventKind::AssociateAc(_) | EventKind::AssociateRj(_) | EventKind::ReleaseRp => true,
            // Final responses, and the acceptor's own requests (C-STORE sub-operations of
            // a C-GET, N-EVENT-REPORT), which the requestor answers.
            EventKind::Command(c) => {
                c.command.is_request() || c.command.status_class().is_none_or(|s| s.is_final())
            }
            _ => false,
        }
}

/// A recorded association.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts_us: u64,
    pub calling_ae: String,
    pub called_ae: String,
    pub pdus: Vec<RecordedPdu>,
    pub original: Summary,
    /// Message IDs of the acceptor's own requests (C-GET sub-operations, N-EVENT-REPORT),
    /// in order.
    pub acceptor_request_ids: Vec<u16>,
    /// Why it cannot be replayed.
    pub incomplete: Option<String>,
}

struct Loading {
    rec: Recorded,
    conv: Conversation,
    buf: Vec<u8>,
    answers: usize,
}

#[derive(Default)]
struct Loader {
    open: HashMap<ConnId, Loading>,
    done: Vec<Recorded>,
}

/// Largest requestor PDU kept; larger ones mark the association as not replayable.
const MAX_PDU: usize = 64 << 20;

impl Loading {
    fn refuse(&mut self, why: String) {
        if self.rec.incomplete.is_none() {
            self.rec.incomplete = Some(why);
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.conv.poll() {
            if is_answer(&e) {
                self.answers += 1;
            }
            if let EventKind::AssociateRq(rq) = &e.kind {
                self.rec.calling_ae = rq.calling_ae.trim().to_string();
                self.rec.called_ae = rq.called_ae.trim().to_string();
            }
            if e.from == Side::Acceptor
                && let EventKind::Command(c) = &e.kind
                && c.command.is_request()
                && let Some(id) = c.command.message_id
            {
                self.rec.acceptor_request_ids.push(id);
            }
            self.rec.original.observe(&e);
        }
    }

    fn requestor_bytes(&mut self, ts: u64, data: &[u8]) {
        if self.rec.incomplete.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.len() < 6 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[2], self.buf[3], self.buf[4], self.buf[5]]) as usize;
            if len + 6 > MAX_PDU {
                self.refuse(format!(
                    "a requestor PDU of {len} bytes exceeds the replay cap"
                ));
                self.buf.clear();
                return;
            }
            if self.buf.len() < len + 6 {
                break;
            }
            let bytes: Vec<u8> = self.buf.drain(..len + 6).collect();
            let pdu_type = bytes[0];
            if self.rec.pdus.is_empty() && pdu_type != 0x01 {
                self.refuse("the recording starts after the A-ASSOCIATE-RQ".into());
                return;
            }
            self.rec.pdus.push(RecordedPdu {
                ts_us: ts,
                pdu_type,
                bytes,
                answers_before: self.answers,
            });
        }
    }
}

impl StreamSink for Loader {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        let mut rec = Recorded {
            id: conn.id.0,
            client: conn.client,
            server: conn.server,
            first_ts_us: conn.first_ts_us,
            calling_ae: String::new(),
            called_ae: String::new(),
            pdus: Vec::new(),
            original: Summary::default(),
            acceptor_request_ids: Vec::new(),
            incomplete: None,
        };
        if conn.requestor_known_by != RequestorBy::SynSeen {
            rec.incomplete = Some(
                "the TCP handshake was not captured (recording started mid-connection)".into(),
            );
        }
        self.open.insert(
            conn.id,
            Loading {
                rec,
                conv: Conversation::new(EngineConfig::default()),
                buf: Vec::new(),
                answers: 0,
            },
        );
    }

    fn on_data(&mut self, conn: ConnId, from: Side, ts_us: u64, data: &[u8]) {
        let Some(l) = self.open.get_mut(&conn) else {
            return;
        };
        // Count the acceptor's answers up to now before cutting requestor PDUs.
        l.conv.feed(from, ts_us, data);
        if from == Side::Requestor {
            l.requestor_bytes(ts_us, data);
        }
        l.drain();
    }

    fn on_gap(&mut self, conn: ConnId, from: Side, ts_us: u64, missing: u64) {
        let Some(l) = self.open.get_mut(&conn) else {
            return;
        };
        l.refuse(format!(
            "{missing} bytes of the {from} stream are missing from the capture (loss or a snap length that cut the payload)"
        ));
        l.conv.gap(from, ts_us, missing);
        l.drain();
    }

    fn on_end(&mut self, conn: ConnId, from: Side, ts_us: u64, how: StreamEnd) {
        let Some(l) = self.open.get_mut(&conn) else {
            return;
        };
        l.conv.end(from, ts_us, how);
        l.drain();
    }

    fn on_close(&mut self, conn: ConnId, _ts_us: u64) {
        let Some(mut l) = self.open.remove(&conn) else {
            return;
        };
        l.drain();
        if !l.buf.is_empty() {
            let n = l.buf.len();
            l.refuse(format!(
                "the requestor stream ends inside a PDU ({n} bytes left over)"
            ));
        }
        if l.rec.pdus.is_empty() && l.rec.incomplete.is_none() {
            l.rec.incomplete = Some("no A-ASSOCIATE-RQ recorded".into());
        }
        self.done.push(l.rec);
    }
}

/// Reads a capture into its recorded associations (ordered by ID, as `dicomtap analyze`
/// numbers them).
pub fn load(path: &Path) -> Result<Vec<Recorded>, ReplayError> {
    let mut reader = CaptureReader::open(path)?;
    let mut loader = Loader::default();
    let result = reader.process(&mut loader);
    if let Err(e) = result
        && !e.is_truncation()
    {
        return Err(e.into());
    }
    let mut out = loader.done;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub to: SocketAddr,
    pub fast: bool,
    pub calling_ae: Option<String>,
    pub called_ae: Option<String>,
    /// Wait for each expected answer at most this long.
    pub timeout: Duration,
    pub allow_original_destination: bool,
    /// Every server address of the capture (all associations, not only the selected
    /// ones): a proxy recording holds both legs, and neither may be hit by accident.
    pub capture_destinations: Vec<SocketAddr>,
}

/// The replay of one association.
#[derive(Debug, Clone, Serialize)]
pub struct AssociationReplay {
    pub id: u64,
    pub client: SocketAddr,
    pub original_destination: SocketAddr,
    pub calling_ae: String,
    pub called_ae: String,
    pub pdus: usize,
    /// Why it was not replayed.
    pub refused: Option<String>,
    pub original: Summary,
    pub replay: Option<Summary>,
    /// Something that went wrong while sending (timeouts, the target closing early).
    pub problems: Vec<String>,
    /// Recorded messages not sent, each with why: the target refused their presentation
    /// context, or accepted it with another transfer syntax than the recorded bytes use.
    pub skipped: Vec<String>,
    pub differences: Vec<String>,
}

/// Rewrites the calling / called AE titles of an A-ASSOCIATE-RQ (bytes 10..26 called,
/// 26..42 calling).
pub fn rewrite_titles(rq: &mut [u8], calling: Option<&str>, called: Option<&str>) {
    if let Some(c) = called
        && let Some(f) = rq.get_mut(10..26)
    {
        f.copy_from_slice(&encode::ae_title(c));
    }
    if let Some(c) = calling
        && let Some(f) = rq.get_mut(26..42)
    {
        f.copy_from_slice(&encode::ae_title(c));
    }
}

/// The A-ASSOCIATE-RQ `rq` with every context the original acceptor accepted proposing
/// only the transfer syntax it chose (the one the recorded data sets are encoded in), so
/// that a target negotiating differently cannot pick another; `None` when `rq` does not
/// parse (it is then sent as recorded).
pub fn propose_recorded_syntaxes(rq: &[u8], original: &Summary) -> Option<Vec<u8>> {
    const FIXED: usize = 74;
    if rq.len() < FIXED || rq[0] != 0x01 {
        return None;
    }
    let mut out = rq[6..FIXED].to_vec();
    let mut pos = FIXED;
    // Each item is at least 4 bytes, so this ends.
    while pos < rq.len() {
        let head = rq.get(pos..pos + 4)?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let item = rq.get(pos..pos + 4 + len)?;
        pos += 4 + len;
        let chosen = (item[0] == 0x20 && len >= 4)
            .then(|| original.contexts.get(&item[4]))
            .flatten()
            .and_then(|c| c.transfer_syntax.as_deref());
        let Some(ts) = chosen else {
            out.extend_from_slice(item);
            continue;
        };
        let mut abstract_syntax = None;
        let mut syntax = None;
        let mut at = 8;
        while at < item.len() {
            let sub = item.get(at..at + 4)?;
            let sl = usize::from(u16::from_be_bytes([sub[2], sub[3]]));
            let whole = item.get(at..at + 4 + sl)?;
            let value = String::from_utf8_lossy(&whole[4..]);
            match sub[0] {
                0x30 => abstract_syntax = Some(whole),
                0x40 if value.trim_end_matches(['\0', ' ']) == ts => syntax = Some(whole),
                _ => {}
            }
            at += 4 + sl;
        }
        match (abstract_syntax, syntax) {
            (Some(a), Some(t)) => {
                let body = 4 + a.len() + t.len();
                out.extend_from_slice(&[0x20, 0]);
                out.extend_from_slice(&u16::try_from(body).ok()?.to_be_bytes());
                out.extend_from_slice(&item[4..8]);
                out.extend_from_slice(a);
                out.extend_from_slice(t);
            }
            _ => out.extend_from_slice(item),
        }
    }
    let mut pdu = Vec::with_capacity(out.len() + 6);
    encode::pdu(&mut pdu, 0x01, &out).ok()?;
    Some(pdu)
}

/// The contexts of the target's A-ASSOCIATE-AC the recorded data cannot be sent on, with
/// why: refused, or accepted with another transfer syntax than the original acceptor's.
fn blocked_contexts(
    original: &Summary,
    ac: &dicomtap_wire::assoc::AssociateAccept,
) -> HashMap<u8, String> {
    let mut blocked = HashMap::new();
    for r in &ac.results {
        let Some(o) = original.contexts.get(&r.id) else {
            continue;
        };
        let Some(recorded) = &o.transfer_syntax else {
            continue;
        };
        let ctx = format!("context {} ({})", r.id, name(&o.abstract_syntax));
        if !r.accepted() {
            blocked.insert(
                r.id,
                format!("the target refused {ctx} ({})", r.result_name),
            );
        } else if r.transfer_syntax.as_deref() != Some(recorded.as_str()) {
            blocked.insert(
                r.id,
                format!(
                    "the target accepted {ctx} with {}, the recorded data is in {}",
                    r.transfer_syntax
                        .as_deref()
                        .map_or_else(|| "no transfer syntax".into(), name),
                    name(recorded)
                ),
            );
        }
    }
    blocked
}

/// A removed message's context and command set.
type RemovedCommand = (u8, Vec<u8>);

/// A P-DATA-TF without its PDVs on `blocked` contexts: the new PDU (`None` when nothing
/// was removed; an empty PDU of 6 bytes when everything was), and the command sets of the
/// removed messages (their last command fragments), per context.
fn without_contexts(
    pdu: &[u8],
    blocked: &HashMap<u8, String>,
) -> (Option<Vec<u8>>, Vec<RemovedCommand>) {
    let mut out = Vec::with_capacity(pdu.len());
    let mut removed = Vec::new();
    let mut changed = false;
    let mut command: HashMap<u8, Vec<u8>> = HashMap::new();
    let mut pos = 6;
    while pos + 6 <= pdu.len() {
        let len = u32::from_be_bytes([pdu[pos], pdu[pos + 1], pdu[pos + 2], pdu[pos + 3]]) as usize;
        let Some(item) = pdu.get(pos..pos + 4 + len) else {
            return (None, Vec::new());
        };
        pos += 4 + len;
        if len < 2 {
            out.extend_from_slice(item);
            continue;
        }
        let (pc, ctrl) = (item[4], item[5]);
        if !blocked.contains_key(&pc) {
            out.extend_from_slice(item);
            continue;
        }
        changed = true;
        if ctrl & 1 == 1 {
            let c = command.entry(pc).or_default();
            c.extend_from_slice(&item[6..]);
            if ctrl & 2 == 2 {
                removed.push((pc, std::mem::take(c)));
            }
        }
    }
    if !changed {
        return (None, removed);
    }
    // No longer than the recorded PDU, so its length fits.
    let mut kept = Vec::with_capacity(out.len() + 6);
    let framed = encode::pdu(&mut kept, 0x04, &out);
    (framed.ok().map(|()| kept), removed)
}

/// Why an association cannot be replayed to `to`, if it cannot.
pub fn refusal(rec: &Recorded, opts: &ReplayOptions) -> Option<String> {
    if let Some(why) = &rec.incomplete {
        return Some(format!("incomplete recording: {why}"));
    }
    if !opts.allow_original_destination
        && (rec.server == opts.to || opts.capture_destinations.contains(&opts.to))
    {
        return Some(format!(
            "{} is an original destination in the capture; pass --allow-original-destination to send there",
            opts.to
        ));
    }
    None
}

/// A single-PDV command PDU that is a response: its new bytes with the responded-to ID
/// replaced, when `map` knows it.
fn remap_response(pdu: &[u8], map: &HashMap<u16, u16>) -> Option<Vec<u8>> {
    if pdu.first() != Some(&0x04) || pdu.len() < 12 {
        return None;
    }
    let item_len = u32::from_be_bytes([pdu[6], pdu[7], pdu[8], pdu[9]]) as usize;
    if item_len + 10 != pdu.len() || pdu[11] & 0x03 != 0x03 {
        return None;
    }
    let pc = pdu[10];
    let mut cmd = decode_command(pdu.get(12..)?).ok()?;
    if !cmd.is_response() {
        return None;
    }
    let new = *map.get(&cmd.responded_to?)?;
    if Some(new) == cmd.responded_to {
        return None;
    }
    cmd.responded_to = Some(new);
    let data = encode_command(&cmd);
    let mut out = Vec::with_capacity(data.len() + 12);
    let pdv = Pdv {
        pc_id: pc,
        command: true,
        last: true,
        data: &data,
    };
    encode::p_data(&mut out, &[pdv]).ok()?;
    Some(out)
}

/// Replays one association (already checked with [`refusal`]).
pub fn replay_one(rec: &Recorded, opts: &ReplayOptions) -> AssociationReplay {
    let mut out = AssociationReplay {
        id: rec.id,
        client: rec.client,
        original_destination: rec.server,
        calling_ae: opts
            .calling_ae
            .clone()
            .unwrap_or_else(|| rec.calling_ae.clone()),
        called_ae: opts
            .called_ae
            .clone()
            .unwrap_or_else(|| rec.called_ae.clone()),
        pdus: rec.pdus.len(),
        refused: refusal(rec, opts),
        original: rec.original.clone(),
        replay: None,
        problems: Vec::new(),
        skipped: Vec::new(),
        differences: Vec::new(),
    };
    if out.refused.is_some() {
        return out;
    }
    let mut link = match Link::connect(opts.to, opts.timeout) {
        Ok(l) => l,
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    link.keep_events = true;
    let mut answers = 0usize;
    let mut id_map: HashMap<u16, u16> = HashMap::new();
    let mut peer_requests = 0usize;
    let mut stopped = false;
    let start = Instant::now();
    let orig_start = rec.pdus.first().map(|p| p.ts_us).unwrap_or(0);
    // Handles one thing the target did; false when the association is over.
    // Handles one thing the target did: `Some(why)` when the association is over.
    // Contexts the recorded data cannot be sent on (refused, or accepted in another
    // transfer syntax than the recording's), with why.
    let mut blocked: HashMap<u8, String> = HashMap::new();
    let mut skipped_requests = 0usize;
    let handle = |i: Incoming,
                  answers: &mut usize,
                  peer_requests: &mut usize,
                  id_map: &mut HashMap<u16, u16>,
                  blocked: &mut HashMap<u8, String>|
     -> Option<String> {
        let what = i.describe();
        match i {
            Incoming::Accept(ac) => {
                *answers += 1;
                *blocked = blocked_contexts(&rec.original, &ac);
            }
            // Released: the requestor closes the connection now.
            Incoming::ReleaseRp => {
                *answers += 1;
                return Some(what);
            }
            Incoming::Reject(_) | Incoming::Abort(_) | Incoming::Closed(_) => return Some(what),
            Incoming::Message(m)
                if m.command.is_response()
                    && m.command.status_class().is_none_or(|c| c.is_final()) =>
            {
                *answers += 1;
            }
            Incoming::Message(m) if m.command.is_response() => {}
            Incoming::Message(m) => {
                if let (Some(orig), Some(new)) = (
                    rec.acceptor_request_ids.get(*peer_requests),
                    m.command.message_id,
                ) {
                    id_map.insert(*orig, new);
                }
                *peer_requests += 1;
                *answers += 1;
            }
            _ => {}
        }
        None
    };
    for (n, p) in rec.pdus.iter().enumerate() {
        if !opts.fast {
            let due = Duration::from_micros(p.ts_us.saturating_sub(orig_start));
            let elapsed = start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        // A skipped request gets no answer: do not wait for it.
        while answers + skipped_requests < p.answers_before {
            let deadline = Instant::now() + opts.timeout;
            match link.next(deadline, "an answer") {
                Ok(i) => {
                    if let Some(why) = handle(
                        i,
                        &mut answers,
                        &mut peer_requests,
                        &mut id_map,
                        &mut blocked,
                    ) {
                        out.problems.push(format!(
                            "the target ended the association ({why}) before PDU {n}"
                        ));
                        stopped = true;
                        break;
                    }
                }
                Err(LinkError::Timeout(..)) => {
                    out.problems.push(format!(
                        "timed out after {:?} waiting for answer {} before PDU {n}",
                        opts.timeout, p.answers_before
                    ));
                    stopped = true;
                    break;
                }
                Err(e) => {
                    out.problems.push(e.to_string());
                    stopped = true;
                    break;
                }
            }
        }
        if stopped {
            if n < rec.pdus.len() {
                out.problems
                    .push(format!("stopped before PDU {n} of {}", rec.pdus.len()));
            }
            break;
        }
        let mut bytes = p.bytes.clone();
        if n == 0 && p.pdu_type == 0x01 {
            // Propose, per context, the transfer syntax the recorded data sets are in.
            if let Some(b) = propose_recorded_syntaxes(&bytes, &rec.original) {
                bytes = b;
            }
            rewrite_titles(
                &mut bytes,
                opts.calling_ae.as_deref(),
                opts.called_ae.as_deref(),
            );
        } else if p.pdu_type == 0x04 && !blocked.is_empty() {
            let (kept, removed) = without_contexts(&bytes, &blocked);
            for (pc, command) in removed {
                let why = blocked.get(&pc).cloned().unwrap_or_default();
                let what = match decode_command(&command) {
                    Ok(c) => {
                        if c.is_request() {
                            skipped_requests += 1;
                        }
                        format!(
                            "message {} ({}{})",
                            dicomtap_wire::engine::message_label(c.message_id.or(c.responded_to)),
                            c.command,
                            c.affected_sop_instance
                                .as_deref()
                                .map(|i| format!(", SOP instance {i}"))
                                .unwrap_or_default()
                        )
                    }
                    Err(_) => format!("a message on context {pc}"),
                };
                out.skipped.push(format!("{what} not sent: {why}"));
            }
            match kept {
                Some(k) if k.len() > 6 => bytes = k,
                Some(_) => continue,
                None => {}
            }
            if let Some(b) = remap_response(&bytes, &id_map) {
                bytes = b;
            }
        } else if let Some(b) = remap_response(&bytes, &id_map) {
            bytes = b;
        }
        if let Err(e) = link.send_raw(&bytes) {
            out.problems.push(format!("sending PDU {n}: {e}"));
            stopped = true;
            break;
        }
    }
    if !stopped {
        // Collect the remaining answers until the target closes (or a quiet timeout).
        let deadline = Instant::now() + opts.timeout;
        while let Ok(i) = link.next(deadline, "the end") {
            if handle(
                i,
                &mut answers,
                &mut peer_requests,
                &mut id_map,
                &mut blocked,
            )
            .is_some()
            {
                break;
            }
        }
    }
    link.shutdown_write();
    let mut s = Summary::default();
    for e in &link.events {
        s.observe(e);
    }
    // The requestor's request names come from the recording (same message IDs).
    for (id, m) in s.messages.iter_mut() {
        if let Some(o) = rec.original.messages.get(id) {
            m.command = o.command.clone();
        }
    }
    for (id, c) in s.contexts.iter_mut() {
        if let Some(o) = rec.original.contexts.get(id) {
            c.abstract_syntax = o.abstract_syntax.clone();
        }
    }
    if s.association.is_empty() {
        s.association = "no answer".into();
    }
    out.differences = diff(&rec.original, &s);
    out.replay = Some(s);
    out
}

fn name(uid: &str) -> String {
    dicomtap_wire::uid::keyword(uid)
        .map(str::to_string)
        .unwrap_or_else(|| uid.to_string())
}

/// The differences between the original and the replay that matter.
pub fn diff(a: &Summary, b: &Summary) -> Vec<String> {
    let mut d = Vec::new();
    if a.association != b.association {
        d.push(format!(
            "association: {} -> {}",
            a.association, b.association
        ));
    }
    for (id, c) in &a.contexts {
        let other = b.contexts.get(id);
        let (r2, t2) = other
            .map(|o| (o.result.as_str(), o.transfer_syntax.clone()))
            .unwrap_or(("-", None));
        if c.result != r2 || c.transfer_syntax != t2 {
            d.push(format!(
                "context {id} {}: {} {} -> {} {}",
                name(&c.abstract_syntax),
                c.result,
                c.transfer_syntax.as_deref().map(name).unwrap_or_default(),
                r2,
                t2.as_deref().map(name).unwrap_or_default()
            ));
        }
    }
    let ids: std::collections::BTreeSet<u16> = a
        .messages
        .keys()
        .chain(b.messages.keys())
        .copied()
        .collect();
    for id in ids {
        let (x, y) = (a.messages.get(&id), b.messages.get(&id));
        let sx = x
            .and_then(|m| m.status.clone())
            .unwrap_or_else(|| "no response".into());
        let sy = y
            .and_then(|m| m.status.clone())
            .unwrap_or_else(|| "no response".into());
        let cmd = x.or(y).map(|m| m.command.clone()).unwrap_or_default();
        if sx != sy {
            d.push(format!("message {id} {cmd}: status {sx} -> {sy}"));
        }
        let (ox, oy) = (
            x.and_then(|m| m.sub_operations),
            y.and_then(|m| m.sub_operations),
        );
        if ox.is_some() && oy.is_some() && ox != oy {
            let f = |s: Option<SubOperations>| {
                let s = s.unwrap_or_default();
                format!(
                    "completed {} failed {} warning {}",
                    s.completed.unwrap_or(0),
                    s.failed.unwrap_or(0),
                    s.warning.unwrap_or(0)
                )
            };
            d.push(format!(
                "message {id} {cmd}: sub-operations {} -> {}",
                f(ox),
                f(oy)
            ));
        }
    }
    d
}

/// Text rendering of one association's replay.
pub fn to_text(r: &AssociationReplay, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "#{:<4} {} -> {} {} -> {}",
        r.id, r.client, r.original_destination, r.calling_ae, r.called_ae
    );
    if let Some(why) = &r.refused {
        let _ = writeln!(out, "    refused: {why}");
        return;
    }
    for p in &r.problems {
        let _ = writeln!(out, "    problem: {p}");
    }
    for p in &r.skipped {
        let _ = writeln!(out, "    skipped: {p}");
    }
    let Some(b) = &r.replay else { return };
    let a = &r.original;
    let _ = writeln!(out, "    {:<40} {:<36} replay", "", "original");
    let _ = writeln!(
        out,
        "    {:<40} {:<36} {}",
        "association", a.association, b.association
    );
    let accepted = |s: &Summary| {
        s.contexts
            .values()
            .filter(|c| c.result == "acceptance")
            .count()
    };
    let _ = writeln!(
        out,
        "    {:<40} {:<36} {} accepted",
        format!("contexts ({} proposed)", a.contexts.len()),
        format!("{} accepted", accepted(a)),
        accepted(b)
    );
    for (id, c) in &a.contexts {
        let o = b.contexts.get(id);
        if o.is_some_and(|o| o.result == c.result && o.transfer_syntax == c.transfer_syntax) {
            continue;
        }
        let f = |c: Option<&ContextOutcome>| {
            c.map(|c| {
                format!(
                    "{} {}",
                    c.result,
                    c.transfer_syntax.as_deref().map(name).unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "    {:<40} {:<36} {}",
            format!("pc {id} {}", name(&c.abstract_syntax)),
            f(Some(c)),
            f(o)
        );
    }
    let ids: std::collections::BTreeSet<u16> = a
        .messages
        .keys()
        .chain(b.messages.keys())
        .copied()
        .collect();
    for id in ids {
        let f = |m: Option<&MessageOutcome>| {
            m.map(|m| {
                format!(
                    "{} {}{}",
                    m.status.clone().unwrap_or_else(|| "no response".into()),
                    m.status_meaning.clone().unwrap_or_default(),
                    m.latency_us
                        .map(|l| format!(" {:.1} ms", l as f64 / 1000.0))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "-".into())
        };
        let (x, y) = (a.messages.get(&id), b.messages.get(&id));
        let cmd = x.or(y).map(|m| m.command.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:<40} {:<36} {}",
            format!("msg {id} {cmd}"),
            f(x),
            f(y)
        );
    }
    let _ = writeln!(out, "    {:<40} {:<36} {}", "ending", a.ending, b.ending);
    let _ = writeln!(
        out,
        "    {:<40} {:<36} {:.3} s",
        "duration",
        format!("{:.3} s", a.duration_us as f64 / 1e6),
        b.duration_us as f64 / 1e6
    );
    if r.differences.is_empty() {
        let _ = writeln!(out, "    no differences");
    } else {
        let _ = writeln!(out, "    {} differences:", r.differences.len());
        for d in &r.differences {
            let _ = writeln!(out, "      {d}");
        }
    }
}

/// Text for `--dry-run`: what would be sent, and when.
pub fn dry_run_text(rec: &Recorded, opts: &ReplayOptions, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "#{:<4} {} -> {} {} -> {}: {} PDUs to {}",
        rec.id,
        rec.client,
        rec.server,
        opts.calling_ae.as_deref().unwrap_or(&rec.calling_ae),
        opts.called_ae.as_deref().unwrap_or(&rec.called_ae),
        rec.pdus.len(),
        opts.to
    );
    if let Some(why) = refusal(rec, opts) {
        let _ = writeln!(out, "    refused: {why}");
        return;
    }
    let t0 = rec.pdus.first().map(|p| p.ts_us).unwrap_or(0);
    for p in &rec.pdus {
        let kind = match p.pdu_type {
            1 => "A-ASSOCIATE-RQ",
            4 => "P-DATA-TF",
            5 => "A-RELEASE-RQ",
            6 => "A-RELEASE-RP",
            7 => "A-ABORT",
            _ => "other PDU",
        };
        let _ = writeln!(
            out,
            "    +{:>9.3} s  {:<15} {:>9} bytes  after {} answers",
            p.ts_us.saturating_sub(t0) as f64 / 1e6,
            kind,
            p.bytes.len(),
            p.answers_before
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_rewritten_space_padded() {
        let mut rq = vec![0u8; 74];
        rewrite_titles(&mut rq, Some("NEWCALLING"), Some("NEWCALLED"));
        assert_eq!(&rq[10..26], b"NEWCALLED       ");
        assert_eq!(&rq[26..42], b"NEWCALLING      ");
    }

    #[test]
    fn responses_are_remapped() {
        let mut cmd = dicomtap_wire::dimse::Command::new(0x8001);
        cmd.responded_to = Some(5);
        cmd.status = Some(dicomtap_wire::status::classify(0, 0x8001));
        let data = encode_command(&cmd);
        let mut pdu = Vec::new();
        let pdv = Pdv {
            pc_id: 3,
            command: true,
            last: true,
            data: &data,
        };
        encode::p_data(&mut pdu, &[pdv]).unwrap();
        let map: HashMap<u16, u16> = [(5, 9)].into_iter().collect();
        let out = remap_response(&pdu, &map).unwrap_or_default();
        let back = decode_command(out.get(12..).unwrap_or_default()).ok();
        assert_eq!(back.and_then(|c| c.responded_to), Some(9));
        assert!(remap_response(&pdu, &HashMap::new()).is_none());
    }

    #[test]
    fn diff_reports_status_changes() {
        let mut a = Summary {
            association: "accepted".into(),
            ..Summary::default()
        };
        a.messages.insert(
            1,
            MessageOutcome {
                command: "C-STORE".into(),
                status: Some("0000".into()),
                ..MessageOutcome::default()
            },
        );
        let mut b = a.clone();
        if let Some(m) = b.messages.get_mut(&1) {
            m.status = Some("A700".into());
        }
        assert_eq!(diff(&a, &a), Vec::<String>::new());
        assert_eq!(
            diff(&a, &b),
            vec!["message 1 C-STORE: status 0000 -> A700".to_string()]
        );
    }
}
