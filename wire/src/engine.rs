//! The conversation engine: the two byte streams of one TCP connection in, events out.
//!
//! Each direction is framed incrementally ("need more bytes" is a normal state);
//! association PDUs are buffered up to a cap and decoded whole; P-DATA is decoded as it
//! streams. The association state (negotiated contexts, max lengths, outstanding
//! requests) is shared by both directions so that cross-direction checks (a PDU larger
//! than the receiver advertised, a response without its request) need no second pass.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::assoc::{self, Notes, ProposedContext};
use crate::dimse;
use crate::event::{
    CommandEvent, DataFragment, DatasetEndEvent, DatasetPeekEvent, Event, EventKind, PDataSummary,
    PdvInfo, Side,
};
use crate::finding::{Finding, FindingCode, Severity};
use crate::pdata::{PdvParser, PdvPiece};
use crate::pdu::{self, HEADER_LEN, PduHeader, PduType, RESYNC_WINDOW};
use crate::peek;
use crate::status::StatusClass;
use crate::syntax::{self, Encoding};

/// Caps and switches of the engine. Every length read off the wire is held against these
/// before anything is allocated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest association PDU (RQ/AC/RJ/release/abort) that is buffered and decoded;
    /// larger ones are skipped and reported.
    pub max_association_pdu: u32,
    /// Largest command set reassembled from fragments.
    pub max_command_bytes: usize,
    /// How many bytes at the start of each data set the peek examines.
    pub peek_bytes: usize,
    /// Emit [`EventKind::DataFragment`] events with data set bytes (object export).
    pub emit_data: bool,
    /// Emit a [`EventKind::PData`] event for every P-DATA-TF PDU.
    pub emit_pdata: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_association_pdu: 1 << 20,
            max_command_bytes: 64 * 1024,
            peek_bytes: 64 * 1024,
            emit_data: false,
            emit_pdata: true,
        }
    }
}

/// How a direction's byte stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// Orderly close (FIN).
    Close,
    /// Reset (RST) or an I/O error.
    Reset,
}

impl StreamEnd {
    /// In words, for messages: "closed (FIN)" or "reset (RST)".
    pub fn describe(self) -> &'static str {
        match self {
            StreamEnd::Close => "closed (FIN)",
            StreamEnd::Reset => "reset (RST)",
        }
    }
}

/// A message ID in a message: the number, or "(unknown)" when no command said it.
pub fn message_label(id: Option<u16>) -> String {
    id.map_or_else(|| "(unknown)".to_string(), |id| id.to_string())
}

/// Where the association is, as far as the PDUs seen tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No A-ASSOCIATE-RQ seen (yet, or ever: a capture that started late).
    Unknown,
    Requested,
    Established,
    Rejected,
    Releasing,
    Released,
    Aborted,
}

impl Phase {
    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Unknown => "not yet seen negotiating",
            Phase::Requested => "requested (no answer yet)",
            Phase::Established => "established",
            Phase::Rejected => "rejected",
            Phase::Releasing => "releasing",
            Phase::Released => "released",
            Phase::Aborted => "aborted",
        }
    }
}

/// An accepted presentation context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedContext {
    pub id: u8,
    pub abstract_syntax: Option<String>,
    pub transfer_syntax: String,
    #[serde(skip)]
    pub encoding: Encoding,
}

#[derive(Debug)]
enum DirState {
    Header {
        buf: [u8; HEADER_LEN],
        have: usize,
    },
    Buffer {
        header: PduHeader,
        start: u64,
        buf: Vec<u8>,
    },
    Skip {
        header: PduHeader,
        start: u64,
        left: u64,
    },
    PData {
        start: u64,
        length: u32,
        parser: PdvParser,
        pdvs: Vec<PdvInfo>,
    },
    Resync {
        window: Vec<u8>,
        skipped: u64,
        start: u64,
    },
}

impl DirState {
    fn fresh() -> Self {
        DirState::Header {
            buf: [0; HEADER_LEN],
            have: 0,
        }
    }

    fn is_boundary(&self) -> bool {
        matches!(self, DirState::Header { have: 0, .. })
    }
}

#[derive(Debug)]
struct Direction {
    offset: u64,
    state: DirState,
    ended: bool,
    /// False right after a resynchronisation, until a PDU decodes cleanly: an unknown PDU
    /// type or a bad PDV length then means the boundary was a false one, not a PDU.
    trusted: bool,
}

/// Reassembly of one (sender, presentation context): the command being built and the
/// data set in flight.
#[derive(Debug, Default)]
struct Assembly {
    command: Vec<u8>,
    command_start: Option<u64>,
    command_overflow: bool,
    /// The last command said a data set follows.
    expecting_data: bool,
    message_id: Option<u16>,
    data: Option<DataState>,
}

#[derive(Debug)]
struct DataState {
    message_id: Option<u16>,
    start: u64,
    total: u64,
    peek_buf: Vec<u8>,
    peeked: bool,
    gap: bool,
}

/// One association (one TCP connection): feed each direction's bytes, poll events.
pub struct Conversation {
    config: EngineConfig,
    events: VecDeque<Event>,
    dirs: [Direction; 2],
    phase: Phase,
    /// The negotiation was seen from its start (so absences mean something).
    start_seen: bool,
    negotiation_not_seen_reported: bool,
    /// An A-ABORT PDU was seen (the phase is also `Aborted` after a TCP close while the
    /// association was up, after which the peer's A-ABORT is an answer, not a repeat).
    abort_seen: bool,
    proposed: SmallKeyMap<u8, ProposedContext>,
    accepted: SmallKeyMap<u8, AcceptedContext>,
    /// Max Length each side advertised it can receive (index: [`Side::index`]).
    max_length: [Option<u32>; 2],
    outstanding: SmallKeyMap<(Side, u16), (u64, u16)>,
    assemblies: SmallKeyMap<(Side, u8), Assembly>,
    reported_contexts: HashSet<(Side, u8), SmallKeys>,
    /// PDU headers read and not yet drained (type byte, length with the header), when
    /// asked for by [`Conversation::keep_pdu_headers`].
    pdu_headers: Option<Vec<(u8, u64)>>,
}

/// The engine's maps are keyed by sides, presentation context IDs and message IDs, and
/// looked up several times per PDV: SipHash cost more there than the decoding around it.
/// The key space is tiny (at most 2 x 65536 keys, and the tables are capped), so a hasher
/// that peers could steer into collisions cannot make them costly.
type SmallKeyMap<K, V> = HashMap<K, V, SmallKeys>;
type SmallKeys = BuildHasherDefault<SmallKeyHasher>;

/// A multiply-and-fold hash of the few integers of a key.
#[derive(Debug, Default, Clone, Copy)]
struct SmallKeyHasher(u64);

impl SmallKeyHasher {
    fn add(&mut self, v: u64) {
        let p = u128::from(self.0 ^ v) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for SmallKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Outstanding requests kept for latency pairing; beyond this, the oldest are not tracked.
const MAX_OUTSTANDING: usize = 4096;

/// A command reassembly buffer up to this size is kept for the next command.
const KEEP_COMMAND_BUFFER: usize = 4096;

impl Conversation {
    pub fn new(config: EngineConfig) -> Self {
        let dir = || Direction {
            offset: 0,
            state: DirState::fresh(),
            ended: false,
            trusted: true,
        };
        Conversation {
            config,
            events: VecDeque::new(),
            dirs: [dir(), dir()],
            phase: Phase::Unknown,
            start_seen: false,
            negotiation_not_seen_reported: false,
            abort_seen: false,
            proposed: SmallKeyMap::default(),
            accepted: SmallKeyMap::default(),
            max_length: [None, None],
            outstanding: SmallKeyMap::default(),
            assemblies: SmallKeyMap::default(),
            reported_contexts: HashSet::default(),
            pdu_headers: None,
        }
    }

    /// Keeps the type and length of every PDU header read from now on, for
    /// [`Conversation::drain_pdu_headers`]: a caller counting PDUs (the proxy's metrics)
    /// gets them from the engine's framing instead of framing the stream once more.
    pub fn keep_pdu_headers(&mut self) {
        self.pdu_headers.get_or_insert_with(Vec::new);
    }

    /// Calls `f(type byte, length including the 6-byte header)` for each PDU header read
    /// since the last call, in order (both directions), and forgets them.
    pub fn drain_pdu_headers(&mut self, mut f: impl FnMut(u8, u64)) {
        if let Some(headers) = self.pdu_headers.as_mut() {
            for (t, len) in headers.drain(..) {
                f(t, len);
            }
        }
    }

    /// Feeds the next bytes sent by `from`, seen at `ts_us` (microseconds since the epoch).
    pub fn feed(&mut self, from: Side, ts_us: u64, bytes: &[u8]) {
        let mut pos = 0;
        while pos < bytes.len() {
            pos += self.step(from, ts_us, &bytes[pos..]);
        }
    }

    /// Puts `from`'s direction into resynchronisation: the next bytes are scanned for a
    /// plausible PDU boundary. For streams whose start was not seen.
    pub fn resynchronize(&mut self, from: Side) {
        let d = &mut self.dirs[from.index()];
        if !matches!(d.state, DirState::Resync { .. }) {
            d.state = DirState::Resync {
                window: Vec::with_capacity(RESYNC_WINDOW),
                skipped: 0,
                start: d.offset,
            };
        }
    }

    /// Tells the engine that `missing` bytes of `from`'s stream were never seen (capture
    /// loss). Inside a data fragment the loss is absorbed (the data set is marked
    /// incomplete); anywhere else decoding resynchronises on the next PDU boundary.
    pub fn gap(&mut self, from: Side, ts_us: u64, missing: u64) {
        if missing == 0 {
            return;
        }
        let offset = self.dirs[from.index()].offset;
        self.emit(from, ts_us, offset, EventKind::Gap { missing });
        self.finding(
            from,
            ts_us,
            offset,
            FindingCode::CaptureGap,
            Severity::Warning,
            format!("{missing} bytes missing from the capture"),
        );
        self.skip_bytes(from, ts_us, missing, false);
    }

    /// Tells the engine that `n` bytes of `from`'s stream were left out of the recording
    /// on purpose (a dicomtap recording made with `payload = headers` keeps PDU and PDV
    /// headers, command sets and the start of each data set, and says what it left out).
    /// Inside a data fragment they are skipped without a finding: the data set is peeked
    /// as far as it was kept and its length still counts them. Anywhere else (the
    /// recorder never leaves out such bytes, so the recording is not what it claims)
    /// they are a gap.
    pub fn omitted(&mut self, from: Side, ts_us: u64, n: u64) {
        if n == 0 {
            return;
        }
        let i = from.index();
        let offset = self.dirs[i].offset;
        let fits = match &self.dirs[i].state {
            DirState::PData { parser, .. } => {
                parser.in_data()
                    && !parser.current_is_command()
                    && n <= u64::from(parser.data_left())
            }
            DirState::Skip { left, .. } => n < *left,
            _ => false,
        };
        if !fits {
            self.emit(from, ts_us, offset, EventKind::Gap { missing: n });
            self.finding(
                from,
                ts_us,
                offset,
                FindingCode::CaptureGap,
                Severity::Warning,
                format!(
                    "{n} bytes left out of the recording where only data set bytes can be \
                     left out: decoding resumes at the next PDU"
                ),
            );
            self.skip_bytes(from, ts_us, n, false);
            return;
        }
        self.emit(from, ts_us, offset, EventKind::Omitted { bytes: n });
        if let DirState::PData { parser, .. } = &self.dirs[i].state
            && let Some(pc) = parser.current_pc()
        {
            let unpeeked = self
                .assemblies
                .get(&(from, pc))
                .and_then(|a| a.data.as_ref())
                .is_some_and(|d| !d.peeked);
            if unpeeked {
                self.run_peek(from, ts_us, pc, false);
            }
        }
        self.skip_bytes(from, ts_us, n, true);
    }

    /// Skips `missing` bytes of `from`'s stream: absorbed inside a data fragment (the data
    /// set marked as missing bytes unless `on_purpose`) or an oversized PDU being skipped,
    /// else decoding resynchronises after them.
    fn skip_bytes(&mut self, from: Side, ts_us: u64, missing: u64, on_purpose: bool) {
        let i = from.index();
        let offset = self.dirs[i].offset;
        let state = std::mem::replace(&mut self.dirs[i].state, DirState::fresh());
        match state {
            DirState::Skip {
                header,
                start,
                left,
            } if missing < left => {
                self.dirs[i].state = DirState::Skip {
                    header,
                    start,
                    left: left - missing,
                };
                self.dirs[i].offset += missing;
            }
            DirState::PData {
                start,
                length,
                mut parser,
                pdvs,
            } if missing <= u64::from(parser.data_left()) && parser.in_data() => {
                let pc = parser.current_pc();
                let command = parser.current_is_command();
                let is_last = parser.current_is_last();
                // `missing` fits in the current fragment, so it fits in u32.
                let last_of_item = parser.skip_data(missing as u32);
                let last = last_of_item && is_last;
                if let Some(pc) = pc {
                    let asm = self.assemblies.entry((from, pc)).or_default();
                    if command {
                        asm.command_overflow = true;
                    } else if let Some(data) = asm.data.as_mut() {
                        data.gap |= !on_purpose;
                        data.total += missing;
                    }
                    if last_of_item {
                        self.finish_fragment(from, ts_us, offset + missing, pc, command, last);
                    }
                }
                self.dirs[i].offset += missing;
                if parser.remaining() == 0 {
                    self.finish_pdata(from, ts_us, start, length, &parser, pdvs);
                } else {
                    self.dirs[i].state = DirState::PData {
                        start,
                        length,
                        parser,
                        pdvs,
                    };
                }
            }
            other => {
                if !other.is_boundary() && !matches!(other, DirState::Resync { .. }) {
                    self.abandon_messages(from, ts_us, offset, "capture gap");
                } else {
                    // Whole PDUs were lost: a data set in flight may have lost fragments.
                    self.mark_data_gap(from);
                }
                self.dirs[i].offset += missing;
                let start = self.dirs[i].offset;
                self.dirs[i].state = DirState::Resync {
                    window: Vec::with_capacity(RESYNC_WINDOW),
                    skipped: 0,
                    start,
                };
            }
        }
    }

    /// Tells the engine that `from`'s stream ended.
    pub fn end(&mut self, from: Side, ts_us: u64, how: StreamEnd) {
        let i = from.index();
        if self.dirs[i].ended {
            return;
        }
        self.dirs[i].ended = true;
        let offset = self.dirs[i].offset;
        let state = std::mem::replace(&mut self.dirs[i].state, DirState::fresh());
        match &state {
            DirState::Header { have: 0, .. } => {}
            DirState::Resync {
                window,
                skipped,
                start,
            } => {
                let skipped = skipped + window.len() as u64;
                if skipped > 0 {
                    self.finding(
                        from,
                        ts_us,
                        *start,
                        FindingCode::Garbage,
                        Severity::Warning,
                        format!("{skipped} bytes at the end of the stream did not form a PDU"),
                    );
                }
            }
            other => {
                let (start, what) = match other {
                    DirState::Header { have, .. } => {
                        (offset - *have as u64, "PDU header".to_string())
                    }
                    DirState::Buffer { header, start, buf } => (
                        *start,
                        format!(
                            "{} ({} of {} bytes)",
                            header.pdu_type.name(),
                            buf.len(),
                            header.length
                        ),
                    ),
                    DirState::Skip {
                        header,
                        start,
                        left,
                    } => (
                        *start,
                        format!(
                            "{} ({left} of {} bytes missing)",
                            header.pdu_type.name(),
                            header.length
                        ),
                    ),
                    DirState::PData {
                        start,
                        length,
                        parser,
                        ..
                    } => (
                        *start,
                        format!(
                            "P-DATA-TF ({} of {length} bytes missing)",
                            parser.remaining()
                        ),
                    ),
                    DirState::Resync { .. } => (offset, String::new()),
                };
                self.finding(
                    from,
                    ts_us,
                    start,
                    FindingCode::TruncatedPdu,
                    Severity::Error,
                    format!("stream {} inside {what}", how.describe()),
                );
            }
        }
        self.abandon_messages(from, ts_us, offset, "end of stream");
        if matches!(self.phase, Phase::Established | Phase::Releasing) && self.start_seen {
            self.finding(
                from,
                ts_us,
                offset,
                FindingCode::ClosedWithoutRelease,
                Severity::Warning,
                format!(
                    "the {from} {} the connection while the association was {}",
                    match how {
                        StreamEnd::Close => "closed",
                        StreamEnd::Reset => "reset",
                    },
                    if self.phase == Phase::Releasing {
                        "releasing"
                    } else {
                        "established"
                    }
                ),
            );
            self.phase = Phase::Aborted;
        }
        self.emit(from, ts_us, offset, EventKind::StreamEnd { how });
    }

    /// The next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next event, left in place: for a consumer that mostly only looks at events (the
    /// live proxy without recording), moving each one out is a copy for nothing. Then
    /// [`Conversation::poll`] takes it or [`Conversation::skip`] drops it.
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// Drops the next event (see [`Conversation::peek_event`]).
    pub fn skip(&mut self) {
        self.events.pop_front();
    }

    /// Where the association is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the A-ASSOCIATE-RQ of this association was seen.
    pub fn start_seen(&self) -> bool {
        self.start_seen
    }

    /// The accepted presentation context `id`, if the negotiation was seen.
    pub fn accepted_context(&self, id: u8) -> Option<&AcceptedContext> {
        self.accepted.get(&id)
    }

    /// Accepted contexts, by ID.
    pub fn accepted_contexts(&self) -> impl Iterator<Item = &AcceptedContext> {
        self.accepted.values()
    }

    /// Max Length `side` advertised it can receive (0 = unlimited).
    pub fn max_length(&self, side: Side) -> Option<u32> {
        self.max_length[side.index()]
    }

    /// Bytes of `side`'s stream consumed so far.
    pub fn offset(&self, side: Side) -> u64 {
        self.dirs[side.index()].offset
    }

    fn emit(&mut self, from: Side, ts_us: u64, offset: u64, kind: EventKind) {
        self.events.push_back(Event {
            ts_us,
            from,
            offset,
            kind,
        });
    }

    fn finding(
        &mut self,
        from: Side,
        ts_us: u64,
        offset: u64,
        code: FindingCode,
        severity: Severity,
        msg: impl Into<String>,
    ) {
        self.emit(
            from,
            ts_us,
            offset,
            EventKind::Finding(Finding::new(code, severity, msg)),
        );
    }

    fn notes(&mut self, from: Side, ts_us: u64, notes: Notes) {
        for (offset, f) in notes {
            self.emit(from, ts_us, offset, EventKind::Finding(f));
        }
    }

    /// Consumes a prefix of `input` and returns its length (at least 1 for non-empty input).
    fn step(&mut self, from: Side, ts: u64, input: &[u8]) -> usize {
        let i = from.index();
        let offset = self.dirs[i].offset;
        let state = std::mem::replace(&mut self.dirs[i].state, DirState::fresh());
        let (taken, next) = match state {
            DirState::Header { mut buf, mut have } => {
                let take = (HEADER_LEN - have).min(input.len());
                buf[have..have + take].copy_from_slice(&input[..take]);
                have += take;
                if have < HEADER_LEN {
                    (take, DirState::Header { buf, have })
                } else {
                    let start = offset + take as u64 - HEADER_LEN as u64;
                    let header = PduHeader::parse(&buf);
                    (take, self.begin_pdu(from, ts, header, start))
                }
            }
            DirState::Buffer {
                header,
                start,
                mut buf,
            } => {
                let take = (header.length as usize - buf.len()).min(input.len());
                buf.extend_from_slice(&input[..take]);
                if buf.len() == header.length as usize {
                    self.dirs[i].trusted = true;
                    self.finish_pdu(from, ts, header, start, &buf);
                    (take, DirState::fresh())
                } else {
                    (take, DirState::Buffer { header, start, buf })
                }
            }
            DirState::Skip {
                header,
                start,
                left,
            } => {
                let take = left.min(input.len() as u64) as usize;
                let left = left - take as u64;
                if left == 0 {
                    (take, DirState::fresh())
                } else {
                    (
                        take,
                        DirState::Skip {
                            header,
                            start,
                            left,
                        },
                    )
                }
            }
            DirState::PData {
                start,
                length,
                mut parser,
                mut pdvs,
            } => {
                let (n, piece) = parser.step(input, offset);
                if matches!(piece, Some(PdvPiece::BadLength { .. })) && !self.dirs[i].trusted {
                    // A false boundary found by resynchronisation: keep scanning after it.
                    self.dirs[i].offset += n as u64;
                    self.dirs[i].state = DirState::Resync {
                        window: Vec::with_capacity(RESYNC_WINDOW),
                        skipped: self.dirs[i].offset - start,
                        start,
                    };
                    return n;
                }
                if let Some(piece) = piece {
                    self.on_pdv(from, ts, piece, offset, &mut pdvs);
                }
                if parser.remaining() == 0 {
                    self.dirs[i].offset += n as u64;
                    self.dirs[i].trusted = true;
                    self.finish_pdata(from, ts, start, length, &parser, pdvs);
                    return n;
                }
                (
                    n,
                    DirState::PData {
                        start,
                        length,
                        parser,
                        pdvs,
                    },
                )
            }
            DirState::Resync {
                mut window,
                mut skipped,
                start,
            } => {
                let take = (RESYNC_WINDOW - window.len()).min(input.len());
                window.extend_from_slice(&input[..take]);
                if window.len() < RESYNC_WINDOW {
                    (
                        take,
                        DirState::Resync {
                            window,
                            skipped,
                            start,
                        },
                    )
                } else if pdu::plausible_boundary(&window) {
                    if skipped > 0 {
                        self.emit(from, ts, start, EventKind::Resync { skipped });
                        self.finding(
                            from,
                            ts,
                            start,
                            FindingCode::Garbage,
                            Severity::Warning,
                            format!("skipped {skipped} bytes to find the next PDU boundary"),
                        );
                    }
                    // Replay the window through normal decoding from its first byte.
                    self.dirs[i].offset = offset + take as u64 - window.len() as u64;
                    self.dirs[i].state = DirState::fresh();
                    self.dirs[i].trusted = false;
                    self.feed(from, ts, &window);
                    return take;
                } else {
                    window.remove(0);
                    skipped += 1;
                    (
                        take,
                        DirState::Resync {
                            window,
                            skipped,
                            start,
                        },
                    )
                }
            }
        };
        let d = &mut self.dirs[i];
        d.offset += taken as u64;
        d.state = next;
        taken
    }

    fn begin_pdu(&mut self, from: Side, ts: u64, header: PduHeader, start: u64) -> DirState {
        if let Some(headers) = self.pdu_headers.as_mut() {
            headers.push((header.raw_type, u64::from(header.length) + 6));
        }
        if header.reserved != 0 {
            self.finding(
                from,
                ts,
                start + 1,
                FindingCode::ReservedField,
                Severity::Info,
                format!(
                    "{} reserved byte is 0x{:02X}, not 0",
                    header.pdu_type.name(),
                    header.reserved
                ),
            );
        }
        if self.phase == Phase::Aborted && self.start_seen && self.abort_seen {
            self.finding(
                from,
                ts,
                start,
                FindingCode::UnexpectedPdu,
                Severity::Error,
                format!("{} after A-ABORT", header.pdu_type.name()),
            );
        }
        match header.pdu_type {
            PduType::PData => {
                self.check_pdata_allowed(from, ts, start, header.length);
                if header.length == 0 {
                    self.finding(
                        from,
                        ts,
                        start,
                        FindingCode::PdvLength,
                        Severity::Error,
                        "P-DATA-TF with length 0 (no PDV item)",
                    );
                    if self.config.emit_pdata {
                        self.emit(
                            from,
                            ts,
                            start,
                            EventKind::PData(PDataSummary {
                                pdu_length: 0,
                                pdvs: Vec::new(),
                            }),
                        );
                    }
                    return DirState::fresh();
                }
                DirState::PData {
                    start,
                    length: header.length,
                    parser: PdvParser::new(header.length),
                    pdvs: Vec::new(),
                }
            }
            PduType::Unknown(_) if !self.dirs[from.index()].trusted => {
                // A false boundary found by resynchronisation: keep scanning.
                DirState::Resync {
                    window: Vec::with_capacity(RESYNC_WINDOW),
                    skipped: HEADER_LEN as u64,
                    start,
                }
            }
            PduType::Unknown(t) => {
                self.emit(
                    from,
                    ts,
                    start,
                    EventKind::UnknownPdu {
                        pdu_type: t,
                        length: header.length,
                    },
                );
                self.finding(
                    from,
                    ts,
                    start,
                    FindingCode::UnknownPduType,
                    Severity::Error,
                    format!(
                        "unknown PDU type 0x{t:02X} declaring {} bytes",
                        header.length
                    ),
                );
                if header.length <= self.config.max_association_pdu {
                    if header.length == 0 {
                        DirState::fresh()
                    } else {
                        DirState::Skip {
                            header,
                            start,
                            left: u64::from(header.length),
                        }
                    }
                } else {
                    // An absurd length on an unknown type is more likely garbage than a PDU.
                    DirState::Resync {
                        window: Vec::with_capacity(RESYNC_WINDOW),
                        skipped: HEADER_LEN as u64,
                        start,
                    }
                }
            }
            _ => {
                if header.length > self.config.max_association_pdu {
                    self.finding(from, ts, start, FindingCode::PduTooLarge, Severity::Error, format!("{} declares {} bytes, more than the {} buffered for association PDUs; skipped undecoded", header.pdu_type.name(), header.length, self.config.max_association_pdu));
                    return DirState::Skip {
                        header,
                        start,
                        left: u64::from(header.length),
                    };
                }
                if header.length == 0 {
                    self.finish_pdu(from, ts, header, start, &[]);
                    return DirState::fresh();
                }
                // Grows with the bytes that actually arrive, never from the declared length.
                DirState::Buffer {
                    header,
                    start,
                    buf: Vec::with_capacity((header.length as usize).min(64 * 1024)),
                }
            }
        }
    }

    fn check_pdata_allowed(&mut self, from: Side, ts: u64, start: u64, length: u32) {
        match self.phase {
            Phase::Established | Phase::Releasing => {}
            Phase::Unknown => {
                if !self.negotiation_not_seen_reported {
                    self.negotiation_not_seen_reported = true;
                    self.finding(from, ts, start, FindingCode::NegotiationNotSeen, Severity::Info, "P-DATA without the association negotiation (capture started late): contexts, transfer syntaxes and max lengths unknown; command sets are still decoded (always Implicit VR Little Endian)");
                }
            }
            Phase::Requested => self.finding(
                from,
                ts,
                start,
                FindingCode::UnexpectedPdu,
                Severity::Error,
                "P-DATA-TF before the association was accepted",
            ),
            Phase::Rejected => self.finding(
                from,
                ts,
                start,
                FindingCode::UnexpectedPdu,
                Severity::Error,
                "P-DATA-TF after A-ASSOCIATE-RJ",
            ),
            Phase::Released => self.finding(
                from,
                ts,
                start,
                FindingCode::UnexpectedPdu,
                Severity::Error,
                "P-DATA-TF after the association was released",
            ),
            Phase::Aborted => {}
        }
        if let Some(max) = self.max_length[from.peer().index()]
            && max != 0
            && length > max
        {
            self.finding(from, ts, start, FindingCode::PduExceedsMaxLength, Severity::Error, format!("P-DATA-TF of {length} bytes exceeds the {max} bytes the {} advertised as its Max Length", from.peer()));
        }
    }

    fn finish_pdu(&mut self, from: Side, ts: u64, header: PduHeader, start: u64, body: &[u8]) {
        let base = start + HEADER_LEN as u64;
        let mut notes = Notes::new();
        let what = header.pdu_type.name();
        if matches!(
            header.pdu_type,
            PduType::AssociateRj | PduType::ReleaseRq | PduType::ReleaseRp | PduType::Abort
        ) && header.length != 4
        {
            notes.push((
                start,
                Finding::new(
                    FindingCode::LengthMismatch,
                    Severity::Warning,
                    format!("{what} length is {}, 4 expected", header.length),
                ),
            ));
        }
        let expected_from = match header.pdu_type {
            PduType::AssociateRq => Some(Side::Requestor),
            PduType::AssociateAc | PduType::AssociateRj => Some(Side::Acceptor),
            _ => None,
        };
        if let Some(side) = expected_from
            && side != from
        {
            notes.push((
                start,
                Finding::new(
                    FindingCode::UnexpectedPdu,
                    Severity::Error,
                    format!("{what} sent by the {from}"),
                ),
            ));
        }
        let kind = match header.pdu_type {
            PduType::AssociateRq => assoc::decode_request(body, base, &mut notes).map(|rq| {
                if self.phase != Phase::Unknown {
                    notes.push((start, Finding::new(FindingCode::UnexpectedPdu, Severity::Error, "A-ASSOCIATE-RQ on a connection that already carried one")));
                }
                self.phase = Phase::Requested;
                self.start_seen = true;
                self.max_length[from.index()] = rq.user_info.max_length;
                self.proposed = rq.contexts.iter().map(|c| (c.id, c.clone())).collect();
                EventKind::AssociateRq(rq)
            }),
            PduType::AssociateAc => assoc::decode_accept(body, base, &mut notes).map(|ac| {
                if self.phase != Phase::Requested && self.start_seen {
                    notes.push((start, Finding::new(FindingCode::UnexpectedPdu, Severity::Error, "A-ASSOCIATE-AC without a pending A-ASSOCIATE-RQ")));
                }
                self.phase = Phase::Established;
                self.max_length[from.index()] = ac.user_info.max_length;
                self.accepted.clear();
                for r in &ac.results {
                    let proposed = self.proposed.get(&r.id);
                    if self.start_seen && proposed.is_none() {
                        notes.push((start, Finding::new(FindingCode::UnproposedContext, Severity::Error, format!("result for presentation context {} which was never proposed", r.id))));
                    }
                    if !r.accepted() {
                        continue;
                    }
                    let Some(ts) = r.transfer_syntax.clone() else { continue };
                    if let Some(p) = proposed
                        && !p.transfer_syntaxes.contains(&ts)
                    {
                        notes.push((start, Finding::new(FindingCode::TransferSyntaxNotProposed, Severity::Error, format!("presentation context {} accepted with transfer syntax {ts}, which was not proposed", r.id))));
                    }
                    let encoding = syntax::encoding_of(&ts);
                    self.accepted.insert(r.id, AcceptedContext { id: r.id, abstract_syntax: proposed.map(|p| p.abstract_syntax.clone()), transfer_syntax: ts, encoding });
                }
                EventKind::AssociateAc(ac)
            }),
            PduType::AssociateRj => assoc::decode_reject(body, base, &mut notes).map(|rj| {
                if self.phase != Phase::Requested && self.start_seen {
                    notes.push((start, Finding::new(FindingCode::UnexpectedPdu, Severity::Error, "A-ASSOCIATE-RJ without a pending A-ASSOCIATE-RQ")));
                }
                self.phase = Phase::Rejected;
                EventKind::AssociateRj(rj)
            }),
            PduType::ReleaseRq => {
                if self.phase != Phase::Established && self.start_seen {
                    notes.push((start, Finding::new(FindingCode::UnexpectedPdu, Severity::Error, format!("A-RELEASE-RQ while the association is {}", self.phase.describe()))));
                }
                self.phase = Phase::Releasing;
                Ok(EventKind::ReleaseRq)
            }
            PduType::ReleaseRp => {
                if self.phase != Phase::Releasing && self.start_seen {
                    notes.push((start, Finding::new(FindingCode::UnexpectedPdu, Severity::Error, "A-RELEASE-RP without an A-RELEASE-RQ")));
                }
                self.phase = Phase::Released;
                Ok(EventKind::ReleaseRp)
            }
            PduType::Abort => assoc::decode_abort(body, base, &mut notes).map(|a| {
                self.phase = Phase::Aborted;
                self.abort_seen = true;
                EventKind::Abort(a)
            }),
            PduType::PData | PduType::Unknown(_) => Err(String::new()),
        };
        match kind {
            Ok(kind) => {
                self.emit(from, ts, start, kind);
                self.notes(from, ts, notes);
            }
            Err(msg) => {
                self.notes(from, ts, notes);
                if !msg.is_empty() {
                    self.finding(
                        from,
                        ts,
                        start,
                        FindingCode::LengthMismatch,
                        Severity::Error,
                        format!("{what} not decoded: {msg}"),
                    );
                }
            }
        }
    }

    fn on_pdv(
        &mut self,
        from: Side,
        ts: u64,
        piece: PdvPiece<'_>,
        offset: u64,
        pdvs: &mut Vec<PdvInfo>,
    ) {
        match piece {
            PdvPiece::BadLength {
                offset,
                declared,
                remaining,
            } => {
                self.finding(from, ts, offset, FindingCode::PdvLength, Severity::Error, format!("PDV item declares {declared} bytes but its P-DATA-TF holds {remaining} more; rest of the PDU skipped"));
            }
            PdvPiece::Header {
                offset,
                pc_id,
                control,
                length,
            } => {
                let command = control & 1 != 0;
                let last = control & 2 != 0;
                pdvs.push(PdvInfo {
                    pc_id,
                    length: length - 2,
                    command,
                    last,
                });
                if control > 3 {
                    self.finding(
                        from,
                        ts,
                        offset + 5,
                        FindingCode::PdvControl,
                        Severity::Warning,
                        format!("PDV message control header 0x{control:02X} has reserved bits set"),
                    );
                }
                self.check_context(from, ts, offset, pc_id);
                self.begin_fragment(from, ts, offset, pc_id, command);
                if length == 2 {
                    self.finding(
                        from,
                        ts,
                        offset,
                        FindingCode::PdvLength,
                        Severity::Warning,
                        format!("empty PDV on presentation context {pc_id}"),
                    );
                    self.finish_fragment(from, ts, offset, pc_id, command, last);
                }
            }
            PdvPiece::Fragment {
                pc_id,
                control,
                bytes,
                last_of_item,
            } => {
                let command = control & 1 != 0;
                let last = control & 2 != 0;
                self.fragment_bytes(from, ts, offset, pc_id, command, bytes);
                if last_of_item {
                    self.finish_fragment(
                        from,
                        ts,
                        offset + bytes.len() as u64,
                        pc_id,
                        command,
                        last,
                    );
                }
            }
        }
    }

    fn check_context(&mut self, from: Side, ts: u64, offset: u64, pc_id: u8) {
        if self.reported_contexts.contains(&(from, pc_id)) {
            return;
        }
        let problem = if pc_id % 2 == 0 {
            Some((
                FindingCode::BadContextId,
                format!("PDV on presentation context {pc_id}, an even ID"),
            ))
        } else if self.start_seen
            && matches!(self.phase, Phase::Established | Phase::Releasing)
            && !self.accepted.contains_key(&pc_id)
        {
            Some((
                FindingCode::UnacceptedContext,
                format!("PDV on presentation context {pc_id}, which was not accepted"),
            ))
        } else {
            None
        };
        if let Some((code, msg)) = problem {
            self.reported_contexts.insert((from, pc_id));
            self.finding(from, ts, offset, code, Severity::Error, msg);
        }
    }

    /// Ordering checks at the first byte of a fragment.
    fn begin_fragment(&mut self, from: Side, ts: u64, offset: u64, pc_id: u8, command: bool) {
        let start_seen = self.start_seen;
        let asm = self.assemblies.entry((from, pc_id)).or_default();
        let mut problem = None;
        if command {
            if let Some(data) = asm.data.take() {
                problem = Some(format!(
                    "command fragment on context {pc_id} before the data set of message {} ended ({} bytes seen)",
                    message_label(data.message_id),
                    data.total
                ));
            }
            if asm.command_start.is_none() {
                asm.command_start = Some(offset);
            }
        } else if asm.data.is_none() {
            if !asm.expecting_data && start_seen {
                problem = Some(format!(
                    "data fragment on context {pc_id} without a command announcing a data set"
                ));
            }
            asm.expecting_data = false;
            asm.data = Some(DataState {
                message_id: asm.message_id,
                start: offset,
                total: 0,
                peek_buf: Vec::new(),
                peeked: false,
                gap: false,
            });
        }
        if let Some(msg) = problem {
            self.finding(
                from,
                ts,
                offset,
                FindingCode::PdvControl,
                Severity::Error,
                msg,
            );
        }
    }

    fn fragment_bytes(
        &mut self,
        from: Side,
        ts: u64,
        offset: u64,
        pc_id: u8,
        command: bool,
        bytes: &[u8],
    ) {
        let cap_cmd = self.config.max_command_bytes;
        let cap_peek = self.config.peek_bytes;
        let asm = self.assemblies.entry((from, pc_id)).or_default();
        if command {
            if asm.command.len() + bytes.len() > cap_cmd {
                if !asm.command_overflow {
                    asm.command_overflow = true;
                    self.finding(
                        from,
                        ts,
                        offset,
                        FindingCode::CommandTooLarge,
                        Severity::Error,
                        format!(
                            "command set on context {pc_id} exceeds {cap_cmd} bytes; not decoded"
                        ),
                    );
                }
            } else {
                asm.command.extend_from_slice(bytes);
            }
            return;
        }
        let Some(data) = asm.data.as_mut() else {
            return;
        };
        data.total += bytes.len() as u64;
        if !data.peeked && data.peek_buf.len() < cap_peek {
            let take = (cap_peek - data.peek_buf.len()).min(bytes.len());
            data.peek_buf.extend_from_slice(&bytes[..take]);
        }
        let full = !data.peeked && data.peek_buf.len() >= cap_peek;
        if self.config.emit_data {
            self.emit(
                from,
                ts,
                offset,
                EventKind::DataFragment(DataFragment {
                    pc_id,
                    bytes: bytes.to_vec(),
                    last: false,
                }),
            );
        }
        if full {
            self.run_peek(from, ts, pc_id, false);
        }
    }

    fn finish_fragment(
        &mut self,
        from: Side,
        ts: u64,
        offset: u64,
        pc_id: u8,
        command: bool,
        last: bool,
    ) {
        if !last {
            return;
        }
        if command {
            self.finish_command(from, ts, pc_id);
            return;
        }
        let needs_peek = self
            .assemblies
            .get(&(from, pc_id))
            .and_then(|a| a.data.as_ref())
            .is_some_and(|d| !d.peeked);
        if needs_peek {
            self.run_peek(from, ts, pc_id, true);
        }
        let Some(data) = self
            .assemblies
            .get_mut(&(from, pc_id))
            .and_then(|a| a.data.take())
        else {
            return;
        };
        if self.config.emit_data {
            self.emit(
                from,
                ts,
                offset,
                EventKind::DataFragment(DataFragment {
                    pc_id,
                    bytes: Vec::new(),
                    last: true,
                }),
            );
        }
        if data.gap {
            self.finding(
                from,
                ts,
                data.start,
                FindingCode::IncompleteMessage,
                Severity::Warning,
                format!(
                    "data set of message {} on context {pc_id} has bytes missing from the capture",
                    message_label(data.message_id)
                ),
            );
        }
        self.emit(
            from,
            ts,
            data.start,
            EventKind::DatasetEnd(DatasetEndEvent {
                pc_id,
                message_id: data.message_id,
                length: data.total,
            }),
        );
    }

    fn run_peek(&mut self, from: Side, ts: u64, pc_id: u8, complete: bool) {
        let accepted = self
            .accepted
            .get(&pc_id)
            .map(|c| (c.encoding, c.transfer_syntax.clone()));
        let Some(data) = self
            .assemblies
            .get_mut(&(from, pc_id))
            .and_then(|a| a.data.as_mut())
        else {
            return;
        };
        data.peeked = true;
        let buf = std::mem::take(&mut data.peek_buf);
        let (start, message_id, gap) = (data.start, data.message_id, data.gap);
        let (encoding, transfer_syntax) = match accepted {
            Some((e, ts)) => (e, Some(ts)),
            None => (guess_encoding(&buf), None),
        };
        // A peek across a capture gap would read shifted bytes as elements.
        if gap {
            return;
        }
        let peek = peek::peek_dataset(&buf, encoding, complete);
        if let Some(err) = &peek.error {
            self.finding(
                from,
                ts,
                start,
                FindingCode::MalformedDataset,
                Severity::Warning,
                format!(
                    "data set of message {} on context {pc_id}: {err}",
                    message_label(message_id)
                ),
            );
        }
        if let Some(found) = peek.encoding_found
            && transfer_syntax.is_some()
        {
            self.finding(from, ts, start, FindingCode::EncodingMismatch, Severity::Error, format!("data set of message {} on context {pc_id} is encoded as {}, not as its transfer syntax {} says", message_label(message_id), found.describe(), transfer_syntax.as_deref().unwrap_or_default()));
        }
        for bad in &peek.invalid_text {
            self.finding(
                from,
                ts,
                start,
                FindingCode::InvalidText,
                Severity::Warning,
                format!(
                    "{} ({}) is not valid in Specific Character Set \"{}\": {} at byte {}",
                    bad.tag,
                    bad.vr,
                    peek.specific_character_set.join("\\"),
                    bad.reason,
                    bad.byte_offset
                ),
            );
        }
        self.emit(
            from,
            ts,
            start,
            EventKind::DatasetPeek(DatasetPeekEvent {
                pc_id,
                transfer_syntax,
                message_id,
                peek,
            }),
        );
    }

    fn finish_command(&mut self, from: Side, ts: u64, pc_id: u8) {
        let Some(asm) = self.assemblies.get_mut(&(from, pc_id)) else {
            return;
        };
        let start = asm.command_start.take().unwrap_or(0);
        let overflow = std::mem::take(&mut asm.command_overflow);
        let decoded = (!overflow).then(|| dimse::decode_command(&asm.command));
        // Emptied, not taken: the next command on this context reuses the buffer (unless
        // it grew large).
        if asm.command.capacity() > KEEP_COMMAND_BUFFER {
            asm.command = Vec::new();
        } else {
            asm.command.clear();
        }
        let Some(decoded) = decoded else {
            asm.expecting_data = false;
            return;
        };
        match decoded {
            Ok(command) => {
                asm.expecting_data = command.has_dataset;
                asm.message_id = command.pairing_id();
                let latency_us = self.pair(from, ts, start, &command);
                let abstract_syntax = self
                    .accepted
                    .get(&pc_id)
                    .and_then(|c| c.abstract_syntax.clone());
                let notes: Vec<Finding> = command.notes.iter().map(|n| n.to_finding()).collect();
                self.emit(
                    from,
                    ts,
                    start,
                    EventKind::Command(CommandEvent {
                        pc_id,
                        abstract_syntax,
                        command,
                        latency_us,
                    }),
                );
                for f in notes {
                    self.emit(from, ts, start, EventKind::Finding(f));
                }
            }
            Err(e) => {
                asm.expecting_data = false;
                self.finding(
                    from,
                    ts,
                    start,
                    FindingCode::MalformedCommand,
                    Severity::Error,
                    format!("command set on context {pc_id} not decoded: {e}"),
                );
            }
        }
    }

    /// Pairs requests and responses by message ID; returns a response's latency.
    fn pair(&mut self, from: Side, ts: u64, start: u64, command: &dimse::Command) -> Option<u64> {
        if command.is_request() {
            if command.command_field == 0x0FFF {
                return None;
            }
            let id = command.message_id?;
            if self.outstanding.len() >= MAX_OUTSTANDING {
                return None;
            }
            if self
                .outstanding
                .insert((from, id), (ts, command.command_field))
                .is_some()
            {
                self.finding(
                    from,
                    ts,
                    start,
                    FindingCode::DuplicateMessageId,
                    Severity::Warning,
                    format!("message ID {id} reused while a request with it is outstanding"),
                );
            }
            return None;
        }
        let id = command.responded_to?;
        let key = (from.peer(), id);
        let Some(&(req_ts, field)) = self.outstanding.get(&key) else {
            if self.start_seen {
                self.finding(
                    from,
                    ts,
                    start,
                    FindingCode::UnmatchedResponse,
                    Severity::Warning,
                    format!(
                        "{} answers message ID {id}, which has no outstanding request",
                        command.command
                    ),
                );
            }
            return None;
        };
        if field | 0x8000 != command.command_field {
            self.finding(
                from,
                ts,
                start,
                FindingCode::UnmatchedResponse,
                Severity::Warning,
                format!(
                    "{} answers message ID {id}, a {}",
                    command.command,
                    dimse::command_name(field)
                ),
            );
        }
        let pending = command
            .status
            .as_ref()
            .is_some_and(|s| s.class == StatusClass::Pending);
        if !pending {
            self.outstanding.remove(&key);
        }
        Some(ts.saturating_sub(req_ts))
    }

    fn finish_pdata(
        &mut self,
        from: Side,
        ts: u64,
        start: u64,
        length: u32,
        parser: &PdvParser,
        pdvs: Vec<PdvInfo>,
    ) {
        if parser.partial_header() > 0 {
            self.finding(
                from,
                ts,
                start,
                FindingCode::PdvLength,
                Severity::Error,
                format!(
                    "P-DATA-TF ends {} bytes into a PDV item header",
                    parser.partial_header()
                ),
            );
        }
        if pdvs.is_empty() {
            self.finding(
                from,
                ts,
                start,
                FindingCode::PdvLength,
                Severity::Error,
                "P-DATA-TF without a PDV item",
            );
        }
        if self.config.emit_pdata {
            self.emit(
                from,
                ts,
                start,
                EventKind::PData(PDataSummary {
                    pdu_length: length,
                    pdvs,
                }),
            );
        }
    }

    /// Marks every data set `from` has in flight as missing bytes (no peek, reported
    /// incomplete when it ends).
    fn mark_data_gap(&mut self, from: Side) {
        for ((side, _), asm) in self.assemblies.iter_mut() {
            if *side == from
                && let Some(d) = asm.data.as_mut()
            {
                d.gap = true;
            }
        }
    }

    /// Reports commands and data sets of `from` that will never complete.
    fn abandon_messages(&mut self, from: Side, ts: u64, offset: u64, why: &str) {
        let mut lost = Vec::new();
        for ((side, pc), asm) in self.assemblies.iter_mut() {
            if *side != from {
                continue;
            }
            if asm.command_start.take().is_some() {
                lost.push(format!("command on context {pc}"));
            }
            asm.command.clear();
            if let Some(d) = asm.data.take() {
                lost.push(format!(
                    "data set of message {} on context {pc} ({} bytes seen)",
                    message_label(d.message_id),
                    d.total
                ));
            }
        }
        lost.sort();
        for what in lost {
            self.finding(
                from,
                ts,
                offset,
                FindingCode::IncompleteMessage,
                Severity::Warning,
                format!("{what} never completed ({why})"),
            );
        }
    }
}

/// For data sets whose context was never negotiated in view: explicit VR if the bytes after
/// the first tag look like a VR, else implicit.
fn guess_encoding(buf: &[u8]) -> Encoding {
    match buf.get(4..6) {
        Some(vr) if vr.iter().all(u8::is_ascii_uppercase) => Encoding::ExplicitVrLittleEndian,
        _ => Encoding::ImplicitVrLittleEndian,
    }
}

#[cfg(test)]
mod pdu_header_tests {
    use super::*;

    #[test]
    fn kept_pdu_headers_are_each_pdu_once_whatever_the_chunking() {
        let release = [0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0];
        let abort = [0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0];
        let mut c = Conversation::new(EngineConfig::default());
        // Nothing is kept before it is asked for.
        c.feed(Side::Requestor, 1, &release);
        let mut seen = Vec::new();
        c.drain_pdu_headers(|t, len| seen.push((t, len)));
        assert!(seen.is_empty());
        c.keep_pdu_headers();
        for b in release.iter().chain(&abort) {
            c.feed(Side::Acceptor, 2, std::slice::from_ref(b));
        }
        c.drain_pdu_headers(|t, len| seen.push((t, len)));
        assert_eq!(seen, [(0x05, 10), (0x07, 10)]);
        seen.clear();
        c.drain_pdu_headers(|t, len| seen.push((t, len)));
        assert!(seen.is_empty(), "drained once");
    }
}
